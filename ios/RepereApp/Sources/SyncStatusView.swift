import RepereKit
import SwiftUI

/// État de synchro: enrolment, unsent count, last answer from the server, the manual button,
/// and the records not on the server yet.
@MainActor
struct SyncStatusView: View {
    let client: RepereClient
    @EnvironmentObject private var scheduler: SyncScheduler
    @State private var enrolment: Enrolment?
    @State private var unsynced = 0
    @State private var records: [RecordLine] = []
    @State private var lastContact: String?
    /// The unsent records listed at most (the count says how many in all).
    private static let shown = 50
    @State private var problemCount = 0
    @State private var setAside: [SetAside] = []
    @State private var error: String?

    struct RecordLine: Identifiable {
        let id: String
        let label: String
        let state: RecordSyncState
    }

    var body: some View {
        List {
            if let error {
                ErrorRow(message: error)
            }
            Section("Serveur") {
                if let enrolment {
                    LabeledContent("Adresse", value: enrolment.serverUrl)
                } else {
                    Text("Tablette non inscrite")
                }
                NavigationLink(enrolment == nil ? "Inscrire la tablette" : "Réinscrire la tablette", value: Route.enrol)
            }
            Section("Synchronisation") {
                LabeledContent("Saisies non envoyées", value: "\(unsynced)")
                LabeledContent("Dernière synchro", value: lastContact.map { Day.display(instant: $0) } ?? "jamais")
                LabeledContent("Réseau", value: scheduler.isOnline ? "disponible" : "hors ligne")
                if let message = scheduler.lastError {
                    ErrorRow(message: message)
                }
                Button(scheduler.isSyncing ? "Synchronisation en cours…" : "Synchroniser") {
                    Task { await scheduler.syncNow() }
                }
                .disabled(scheduler.isSyncing || enrolment == nil)
                if problemCount > 0 {
                    ErrorRow(message: "Fiches à corriger après fusion : \(problemCount) (voir les fiches jeunes)")
                }
            }
            if !setAside.isEmpty {
                Section("Mises de côté sur la tablette (\(setAside.count))") {
                    ForEach(setAside, id: \.id) { item in
                        Text(item.userMessage)
                    }
                }
            }
            Section(unsynced > Self.shown ? "Pas encore sur le serveur (les \(Self.shown) plus anciennes)" : "Pas encore sur le serveur") {
                ForEach(records) { record in
                    HStack {
                        Text(record.label)
                        Spacer()
                        SyncBadge(state: record.state)
                    }
                }
            }
        }
        .navigationTitle("État de la synchro")
        .task {
            let changes = client.changes()
            await load()
            for await _ in changes {
                await load()
            }
        }
        // A sync that only pushed changes no record event: reload when one ends.
        .onChange(of: scheduler.isSyncing) { syncing in
            if !syncing {
                Task { await load() }
            }
        }
    }

    private func describe(_ ref: RecordRef) async throws -> String {
        switch ref.kind {
        case .youth:
            let youth = try await client.youth(id: ref.id)
            return "Jeune · \(youth.firstName ?? youth.alias ?? "sans nom")"
        case .contact:
            return "Visite · \(Day.display(instant: try await client.contact(id: ref.id).occurredAt))"
        case .tour: return "Tournée"
        case .action: return "Action"
        case .outcome: return "Solution"
        case .reviewTask: return "Réponse à la coordination"
        }
    }

    private func load() async {
        await attempt($error) {
            enrolment = try await client.enrolment()
            unsynced = try await client.unsyncedCount()
            problemCount = try await client.withProblems().count
            setAside = try await client.setAside()
            lastContact = try await client.lastServerContact()
            // What is not on the server yet, oldest change first, with why (pending, refused…).
            var lines: [RecordLine] = []
            for ref in try await client.unsynced().prefix(Self.shown) {
                let state = try await client.syncState(id: ref.id)
                lines.append(RecordLine(id: ref.id, label: try await describe(ref), state: state))
            }
            records = lines
        }
    }
}

/// Inscription: exchanges the administrator's one-time code for this tablet's credentials.
/// Re-enrolling into the same team keeps every record and unsent change. Into another team,
/// changes that cannot be sent first make the core refuse; forcing (with the same code) then
/// sets them aside on the tablet.
@MainActor
struct EnrolView: View {
    let client: RepereClient
    @EnvironmentObject private var scheduler: SyncScheduler
    @EnvironmentObject private var model: AppModel
    @Environment(\.dismiss) private var dismiss
    @State private var serverUrl = "https://"
    @State private var code = ""
    @State private var deviceLabel = "Tablette"
    @State private var busy = false
    /// Set when a change of team was refused: that many records could not be sent first.
    @State private var unsent: UInt32?
    @State private var error: String?

    var body: some View {
        Form {
            if let error {
                ErrorRow(message: error)
            }
            TextField("Adresse du serveur", text: $serverUrl)
                .textInputAutocapitalization(.never)
                .autocorrectionDisabled()
                .keyboardType(.URL)
            TextField("Code d'inscription", text: $code)
                .textInputAutocapitalization(.characters)
                .autocorrectionDisabled()
            TextField("Nom de la tablette", text: $deviceLabel)
            Button(busy ? "Inscription…" : "Inscrire") { Task { await enrol(force: false) } }
                .disabled(busy || code.isEmpty)
            if let unsent {
                Button("Changer d'équipe quand même (avec le même code) : \(unsent) fiche(s) mise(s) de côté, jamais envoyée(s)") {
                    Task { await enrol(force: true) }
                }
                .disabled(busy || code.isEmpty)
            }
        }
        .navigationTitle("Inscription de la tablette")
        .task {
            // Opened from the QR code's link: its server and code, to check and confirm.
            if let link = model.enrolmentLink {
                model.enrolmentLink = nil
                serverUrl = link.server
                code = link.code
                return
            }
            let current = try? await client.enrolment()
            if let url = current?.serverUrl {
                serverUrl = url
            }
        }
    }

    private func enrol(force: Bool) async {
        busy = true
        defer { busy = false }
        await attempt($error) {
            let trimmed = serverUrl.trimmingCharacters(in: .whitespaces)
            do {
                _ = try await client.enrol(serverUrl: trimmed, code: code.trimmingCharacters(in: .whitespaces), deviceLabel: deviceLabel, force: force)
            } catch RepereError.UnsentChanges(let count, let message) {
                unsent = count
                error = message
                return
            }
            unsent = nil
            dismiss()
            await scheduler.syncNow()
        }
    }
}

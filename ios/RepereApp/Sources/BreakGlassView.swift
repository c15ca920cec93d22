import RepereKit
import SwiftUI

/// « Accès exceptionnel »: a member asks, with a reason, to read one file of another team (its
/// reference comes from that team) for a while. The request leaves with the next sync (asked
/// at once here); the files lent and the requests' answers refresh by themselves, and a lent
/// file leaves the list at its end, by the tablet's clock.
@MainActor
struct AccessView: View {
    /// The durations offered, in minutes; the core's default (2 h) is picked first.
    static let durations: [UInt32] = [30, 60, 120, 240, 480]

    let client: RepereClient
    @EnvironmentObject private var scheduler: SyncScheduler
    @State private var reference = ""
    @State private var reason = ""
    @State private var minutes = RepereClient.accessLimits().defaultMinutes
    @State private var requests: [AccessRequest] = []
    @State private var lent: [LentFileSummary] = []
    @State private var sent = false
    @State private var busy = false
    @State private var error: String?
    private let limits = RepereClient.accessLimits()

    var body: some View {
        Form {
            if let error {
                ErrorRow(message: error)
            }
            Section {
                Text("Pour lire la fiche d'un jeune suivi par une autre équipe (urgence, situation partagée). La demande et son motif sont visibles de la coordination de cette équipe ; la fiche est en lecture seule et quitte la tablette à la fin de l'accès.")
                    .font(.callout)
                TextField("Référence de la fiche", text: $reference)
                    .textInputAutocapitalization(.never)
                    .autocorrectionDisabled()
                TextField("Motif", text: $reason, axis: .vertical)
                    .lineLimit(3...6)
                Text("\(reason.trimmingCharacters(in: .whitespacesAndNewlines).count) caractères (de \(limits.reasonMinChars) à \(limits.reasonMaxChars))")
                    .font(.caption)
                Picker("Durée", selection: $minutes) {
                    ForEach(Self.durations, id: \.self) { m in
                        Text(Self.label(minutes: m)).tag(m)
                    }
                }
                .pickerStyle(.segmented)
                Button("Demander l'accès") { Task { await ask() } }
                    .disabled(busy || reference.trimmingCharacters(in: .whitespaces).isEmpty)
                if sent {
                    Text("Demande enregistrée : elle part avec la synchronisation.").foregroundStyle(Color.accentColor)
                }
            }
            Section("Fiches prêtées (\(lent.count))") {
                ForEach(lent, id: \.grantId) { file in
                    NavigationLink(value: Route.lent(file.youthId)) {
                        VStack(alignment: .leading) {
                            Text(file.displayName).font(.headline)
                            Text("Équipe : \(file.teamName) · Accès jusqu'à \(Day.time(file.expiresAt))").font(.subheadline)
                        }
                    }
                }
            }
            if !requests.isEmpty {
                Section("Demandes") {
                    ForEach(requests, id: \.id) { request in
                        VStack(alignment: .leading, spacing: 2) {
                            Text("\(Day.display(instant: request.askedAt)) · \(Self.label(minutes: request.minutes)) · \(request.youthId)")
                                .font(.caption)
                            switch request.state {
                            case .pending:
                                Text("En attente : partira à la prochaine synchronisation")
                            case .granted(let expiresAt):
                                Text("Accordé jusqu'à \(Day.time(expiresAt))")
                            case .refused(_, let message):
                                Text("Refusé : \(message)").foregroundStyle(.red)
                            }
                        }
                    }
                }
            }
        }
        .navigationTitle("Accès exceptionnel")
        .task {
            await attempt($error) {
                for try await files in client.lentFileUpdates() {
                    lent = files
                }
            }
        }
        .task {
            await attempt($error) {
                for try await list in client.accessRequestUpdates() {
                    requests = list
                }
            }
        }
    }

    static func label(minutes: UInt32) -> String {
        minutes < 60 ? "\(minutes) min" : "\(minutes / 60) h"
    }

    private func ask() async {
        busy = true
        sent = false
        await attempt($error) {
            _ = try await client.requestAccess(youthId: reference.trimmingCharacters(in: .whitespaces), reason: reason, minutes: minutes)
            reference = ""
            reason = ""
            minutes = limits.defaultMinutes
            sent = true
        }
        busy = false
        if sent {
            _ = await scheduler.syncNow()
        }
    }
}

/// A lent file, read-only, while it lasts: « Accès terminé » once over or no longer lent.
@MainActor
struct LentFileView: View {
    let client: RepereClient
    let youthId: String
    @State private var file: LentFile?
    @State private var loaded = false
    /// Commune names by INSEE code, for the visits and the home commune.
    @State private var communes: [String: String] = [:]
    @State private var error: String?

    var body: some View {
        List {
            if let error {
                ErrorRow(message: error)
            }
            if let file {
                fileSections(file)
            } else if loaded {
                Text("Accès terminé : la fiche n'est plus sur la tablette.")
            }
        }
        .navigationTitle(file == nil ? "Accès exceptionnel" : "Fiche prêtée")
        .task {
            await attempt($error) {
                for try await lent in client.lentFileUpdates(youthId: youthId) {
                    if let lent {
                        let codes = ([lent.youth.homeCommune].compactMap { $0 } + lent.visits.map(\.visit.commune))
                        for code in Set(codes) where communes[code] == nil {
                            communes[code] = await RepereClient.commune(code: code)?.name ?? code
                        }
                    }
                    file = lent
                    loaded = true
                }
            }
        }
    }

    @ViewBuilder
    private func fileSections(_ file: LentFile) -> some View {
        let youth = file.youth
        Section {
            Text("Accès jusqu'à \(Day.time(file.expiresAt))").font(.headline).foregroundStyle(.red)
            Text("Fiche de l'équipe \(file.teamName), en lecture seule")
        }
        Section("Identité") {
            LabeledContent("Prénom", value: youth.firstName ?? "—")
            LabeledContent("Nom", value: youth.lastName ?? "—")
            LabeledContent("Surnom", value: youth.alias ?? "—")
            LabeledContent("Né(e) en", value: youth.birthYear.map { String($0) } ?? "—")
            LabeledContent("Habite à", value: youth.homeCommune.map { communes[$0] ?? $0 } ?? "—")
            LabeledContent("Téléphone", value: youth.phone ?? "—")
            LabeledContent("Situation", value: Labels.situation(youth.situation))
            LabeledContent("Statut", value: Labels.status(youth.status))
            LabeledContent("Premier contact", value: Day.display(day: youth.firstContactDate))
        }
        Section("Visites (\(file.visits.count))") {
            ForEach(file.visits, id: \.id) { lent in
                VStack(alignment: .leading, spacing: 4) {
                    Text("\(Day.display(instant: lent.visit.occurredAt)) · \(communes[lent.visit.commune] ?? lent.visit.commune) · \(Labels.contactKind(lent.visit.kind))")
                        .font(.headline)
                    if !lent.visit.notes.isEmpty {
                        Text(lent.visit.notes)
                    }
                    if let next = lent.visit.nextStep {
                        Text("Prochaine étape : \(next)")
                    }
                }
            }
        }
        Section("Actions (\(file.actions.count))") {
            ForEach(file.actions, id: \.id) { lent in
                Text("\(Labels.actionKind(lent.action.kind)) · à partir du \(Day.display(day: lent.action.startDate)) · \(Labels.actionStatus(lent.action.status))")
            }
        }
        Section("Résultats (\(file.outcomes.count))") {
            ForEach(file.outcomes, id: \.id) { lent in
                Text("\(Day.display(day: lent.outcome.date)) · \(Labels.outcomeKind(lent.outcome.kind))")
            }
        }
    }
}

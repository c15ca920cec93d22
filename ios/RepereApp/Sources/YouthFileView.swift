import RepereKit
import SwiftUI

/// Fiche jeune: identity, contacts, and the sync state of each record.
@MainActor
struct YouthFileView: View {
    let client: RepereClient
    let id: String
    @EnvironmentObject private var model: AppModel
    @State private var youth: Youth?
    @State private var homeCommuneName: String?
    @State private var sync: RecordSyncState?
    @State private var conflictCount = 0
    @State private var problems: [String] = []
    @State private var lines: [ContactLine] = []
    @State private var error: String?

    struct ContactLine: Identifiable {
        let id: String
        let contact: Contact
        let communeName: String
        let sync: RecordSyncState
        let conflicts: Int
        /// Problems of the visit as merged from two tablets' edits, to correct in its form.
        let problems: [String]
    }

    var body: some View {
        List {
            if let error {
                ErrorRow(message: error)
            }
            if let youth {
                Section("Identité") {
                    LabeledContent("Prénom", value: youth.firstName ?? "—")
                    LabeledContent("Surnom", value: youth.alias ?? "—")
                    LabeledContent("Né(e) en", value: youth.birthYear.map { String($0) } ?? "—")
                    LabeledContent("Habite à", value: homeCommuneName ?? "—")
                    LabeledContent("Situation", value: Labels.situation(youth.situation))
                    LabeledContent("Statut", value: Labels.status(youth.status))
                    LabeledContent("Premier contact", value: Day.display(day: youth.firstContactDate))
                    if let sync {
                        SyncBadge(state: sync)
                    }
                    ForEach(problems, id: \.self) { line in
                        ErrorRow(message: "À corriger : \(line)")
                    }
                }
            }
            if conflictCount > 0 {
                Section {
                    NavigationLink("\(conflictCount) conflit(s) à résoudre", value: Route.conflict(id))
                }
            }
            Section("Contacts (\(lines.count))") {
                ForEach(lines) { line in
                    VStack(alignment: .leading, spacing: 4) {
                        Text("\(Day.display(instant: line.contact.occurredAt)) · \(line.communeName) · \(Labels.contactKind(line.contact.kind))")
                            .font(.headline)
                        if !line.contact.notes.isEmpty {
                            Text(line.contact.notes).lineLimit(4)
                        }
                        if !line.contact.needs.isEmpty {
                            Text("Besoins : " + line.contact.needs.map { Labels.need($0) }.joined(separator: ", "))
                        }
                        if let next = line.contact.nextStep {
                            Text("Prochaine étape : \(next)")
                        }
                        SyncBadge(state: line.sync)
                        ForEach(line.problems, id: \.self) { problem in
                            ErrorRow(message: "À corriger : \(problem)")
                        }
                        NavigationLink(line.problems.isEmpty ? "Modifier" : "Corriger", value: Route.visit(line.id))
                        if line.conflicts > 0 {
                            NavigationLink("Conflit à résoudre", value: Route.conflict(line.id))
                        }
                    }
                }
            }
        }
        .navigationTitle(youth?.firstName ?? youth?.alias ?? "Fiche jeune")
        .task {
            let changes = client.changes()
            await load()
            // Any contact may be a new one of this person (contact events do not say whose).
            for await batch in changes {
                let relevant = batch.contains { $0.id == id || $0.kind == .contact }
                if relevant {
                    await load()
                }
            }
        }
    }

    private func load() async {
        await attempt($error) {
            let record = try await client.youth(id: id)
            var name: String?
            if let code = record.homeCommune {
                name = await RepereClient.commune(code: code)?.name ?? code
            }
            let state = try await client.syncState(id: id)
            let conflicts = try await client.conflicts(id: id)
            let recordProblems = try await client.problems(id: id)
            // The core gives contact ids only: one call per contact for the line, its state
            // and its conflicts.
            var loaded: [ContactLine] = []
            let ids = try await client.contactIds(ofYouth: id)
            for contactId in ids {
                let contact = try await client.contact(id: contactId)
                let communeName = await RepereClient.commune(code: contact.commune)?.name ?? contact.commune
                let contactState = try await client.syncState(id: contactId)
                let contactConflicts = try await client.conflicts(id: contactId)
                let contactProblems = try await client.problems(id: contactId)
                loaded.append(ContactLine(id: contactId, contact: contact, communeName: communeName, sync: contactState, conflicts: contactConflicts.count, problems: Labels.problems(contactProblems)))
            }
            loaded.sort { (Day.instant($0.contact.occurredAt) ?? .distantPast) > (Day.instant($1.contact.occurredAt) ?? .distantPast) }
            youth = record
            homeCommuneName = name
            sync = state
            conflictCount = conflicts.count
            problems = Labels.problems(recordProblems)
            lines = loaded
        }
    }
}

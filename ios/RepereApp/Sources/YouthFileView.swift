import RepereKit
import SwiftUI

/// Fiche jeune: the core's youth file (visits, actions, outcomes, open questions, with their
/// totals) in one query, queried again after every change; plus the person's own record for
/// the identity card, its sync state, conflicts and problems.
@MainActor
struct YouthFileView: View {
    let client: RepereClient
    let id: String
    @State private var file: YouthFile?
    @State private var youth: Youth?
    @State private var homeCommuneName: String?
    @State private var sync: RecordSyncState?
    @State private var conflictCount = 0
    @State private var problems: [String] = []
    @State private var answering: PendingQuestion?
    @State private var busy = false
    @State private var error: String?

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
            if let file {
                fileSections(file)
            }
        }
        .navigationTitle(file?.youth.displayName ?? "Fiche jeune")
        .sheet(item: $answering) { question in
            NavigationStack {
                AnswerView(client: client, taskId: question.id, question: question.question) { answering = nil }
            }
        }
        .task {
            // Subscribe before loading so no change slips in between; any record may belong
            // to this file (change events do not say whose).
            let changes = client.changes()
            await load()
            for await _ in changes {
                await load()
            }
        }
    }

    @ViewBuilder
    private func fileSections(_ file: YouthFile) -> some View {
        if file.openQuestionCount > 0 {
            Section(title("Questions de la coordination", file.openQuestions.count, file.openQuestionCount)) {
                ForEach(file.openQuestions, id: \.id) { question in
                    VStack(alignment: .leading, spacing: 4) {
                        Text(question.question).font(.headline)
                        Text("Posée par \(question.askedBy) le \(Day.display(instant: question.askedAt))").font(.caption)
                        if let at = question.visitOccurredAt {
                            Text("Visite du \(Day.display(instant: at))").font(.caption)
                        }
                        Button("Répondre") { answering = PendingQuestion(id: question.id, question: question.question) }
                    }
                }
            }
        }
        Section(title("Visites", file.visits.count, file.visitCount)) {
            ForEach(file.visits, id: \.id) { visit in
                VStack(alignment: .leading, spacing: 4) {
                    Text("\(Day.display(instant: visit.occurredAt)) · \(visit.communeName) · \(Labels.rawValues[visit.kind] ?? visit.kind)")
                        .font(.headline)
                    // Others met at the same visit (the summary names everyone, this person included).
                    let others = zip(visit.youthIds, visit.youthNames).filter { $0.0 != id }.map(\.1)
                    if !others.isEmpty {
                        Text("Avec : " + others.joined(separator: ", "))
                    }
                    if let due = visit.nextStepDue {
                        Text("Prochaine étape pour le \(Day.display(day: due))")
                    }
                    if visit.openQuestions > 0 {
                        Text("\(visit.openQuestions) question(s) de la coordination").foregroundStyle(Color.accentColor)
                    }
                    DecisionLine(decision: visit.decision)
                    NavigationLink("Ouvrir", value: Route.visit(visit.id))
                }
            }
        }
        Section(title("Actions", file.actions.count, file.actionCount)) {
            ForEach(file.actions, id: \.id) { action in
                VStack(alignment: .leading, spacing: 4) {
                    Text("\(Labels.rawValues[action.kind] ?? action.kind) · à partir du \(Day.display(day: action.startDate))")
                        .font(.headline)
                    Text(Labels.rawValues[action.status] ?? action.status)
                    if action.status == "planned" {
                        Button("Marquer fait") { Task { await markDone(action.id) } }
                            .disabled(busy)
                    }
                }
            }
        }
        Section(title("Résultats", file.outcomes.count, file.outcomeCount)) {
            ForEach(file.outcomes, id: \.id) { outcome in
                Text("\(Day.display(day: outcome.date)) · \(Labels.rawValues[outcome.kind] ?? outcome.kind)")
            }
        }
    }

    /// "Visites (20 sur 34)" when the file shows only the first page.
    private func title(_ name: String, _ shown: Int, _ total: UInt32) -> String {
        shown < Int(total) ? "\(name) (\(shown) sur \(total))" : "\(name) (\(total))"
    }

    private func load() async {
        await attempt($error) {
            let loaded = try await client.youthFile(youthId: id)
            let record = try await client.youth(id: id)
            var name: String?
            if let code = record.homeCommune {
                name = await RepereClient.commune(code: code)?.name ?? code
            }
            let state = try await client.syncState(id: id)
            let conflicts = try await client.conflicts(id: id)
            let recordProblems = try await client.problems(id: id)
            file = loaded
            youth = record
            homeCommuneName = name
            sync = state
            conflictCount = conflicts.count
            problems = Labels.problems(recordProblems)
        }
    }

    /// « Marquer fait »: an ordinary edit of the action as read, only its status changed.
    private func markDone(_ actionId: String) async {
        busy = true
        defer { busy = false }
        await attempt($error) {
            var action = try await client.action(id: actionId)
            action.status = .done
            _ = try await client.updateAction(action)
        }
    }
}

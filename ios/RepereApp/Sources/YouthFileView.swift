import RepereKit
import SwiftUI

/// Fiche jeune: the core's youth file (visits, actions, outcomes, open questions, with their
/// totals) in one query, queried again after every change; plus the person's own record for
/// the identity card, its sync state, conflicts and problems. « Voir plus » reads the next
/// page of a list (`youthVisits`, `youthActions`, `youthOutcomes`); a reload keeps as many
/// lines as were shown.
@MainActor
struct YouthFileView: View {
    /// How many lines of each list the file shows at first, and each « Voir plus » adds.
    static let page: UInt32 = 20

    let client: RepereClient
    let id: String
    @State private var file: YouthFile?
    /// The lines shown: the file's first page, then the pages « Voir plus » added.
    @State private var visits: [VisitSummary] = []
    @State private var actions: [ActionSummary] = []
    @State private var outcomes: [OutcomeSummary] = []
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
                    // What another team gives to ask for an exceptional access to this file.
                    LabeledContent("Référence", value: id).font(.caption).textSelection(.enabled)
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
        Section(title("Visites", visits.count, file.visitCount)) {
            ForEach(visits, id: \.id) { visit in
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
            if visits.count < Int(file.visitCount) {
                Button("Voir plus") { Task { await more { visits += try await client.youthVisits(youthId: id, offset: UInt32(visits.count), limit: Self.page) } } }
                    .disabled(busy)
            }
        }
        Section(title("Actions", actions.count, file.actionCount)) {
            ForEach(actions, id: \.id) { action in
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
            if actions.count < Int(file.actionCount) {
                Button("Voir plus") { Task { await more { actions += try await client.youthActions(youthId: id, offset: UInt32(actions.count), limit: Self.page) } } }
                    .disabled(busy)
            }
        }
        Section(title("Résultats", outcomes.count, file.outcomeCount)) {
            ForEach(outcomes, id: \.id) { outcome in
                Text("\(Day.display(day: outcome.date)) · \(Labels.rawValues[outcome.kind] ?? outcome.kind)")
            }
            if outcomes.count < Int(file.outcomeCount) {
                Button("Voir plus") { Task { await more { outcomes += try await client.youthOutcomes(youthId: id, offset: UInt32(outcomes.count), limit: Self.page) } } }
                    .disabled(busy)
            }
        }
    }

    /// "Visites (20 sur 34)" while the file shows only part of the list.
    private func title(_ name: String, _ shown: Int, _ total: UInt32) -> String {
        shown < Int(total) ? "\(name) (\(shown) sur \(total))" : "\(name) (\(total))"
    }

    private func load() async {
        await attempt($error) {
            let loaded = try await client.youthFile(youthId: id, limit: Self.page)
            // As many lines as were shown before the change, read again.
            let shownVisits = try await upTo(loaded.visits, visits.count, loaded.visitCount) {
                try await client.youthVisits(youthId: id, offset: $0, limit: $1)
            }
            let shownActions = try await upTo(loaded.actions, actions.count, loaded.actionCount) {
                try await client.youthActions(youthId: id, offset: $0, limit: $1)
            }
            let shownOutcomes = try await upTo(loaded.outcomes, outcomes.count, loaded.outcomeCount) {
                try await client.youthOutcomes(youthId: id, offset: $0, limit: $1)
            }
            let record = try await client.youth(id: id)
            var name: String?
            if let code = record.homeCommune {
                name = await RepereClient.commune(code: code)?.name ?? code
            }
            let state = try await client.syncState(id: id)
            let conflicts = try await client.conflicts(id: id)
            let recordProblems = try await client.problems(id: id)
            file = loaded
            visits = shownVisits
            actions = shownActions
            outcomes = shownOutcomes
            youth = record
            homeCommuneName = name
            sync = state
            conflictCount = conflicts.count
            problems = Labels.problems(recordProblems)
        }
    }

    /// The file's first page of a list, followed by the next ones up to `shown` lines.
    private func upTo<T>(_ first: [T], _ shown: Int, _ total: UInt32, _ page: (UInt32, UInt32) async throws -> [T]) async throws -> [T] {
        guard shown > first.count, first.count < Int(total) else {
            return first
        }
        return try await first + page(UInt32(first.count), UInt32(shown - first.count))
    }

    /// « Voir plus »: reads the next page of a list.
    private func more(_ body: () async throws -> Void) async {
        busy = true
        defer { busy = false }
        await attempt($error, body)
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

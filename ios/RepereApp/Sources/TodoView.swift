import RepereKit
import SwiftUI

/// « À faire »: the core's list, most urgent first, queried again after every change.
@MainActor
struct TodoView: View {
    /// How many lines the screen and the tour's button show.
    static let limit: UInt32 = 100
    let client: RepereClient
    @EnvironmentObject private var model: AppModel
    @State private var items: [TodoItem] = []
    @State private var loaded = false
    @State private var answering: PendingQuestion?
    @State private var error: String?

    var body: some View {
        List {
            if let error {
                ErrorRow(message: error)
            }
            if loaded && items.isEmpty {
                Text("Rien à faire pour l'instant.")
            }
            // A record can be « à faire » for several reasons: one line each.
            ForEach(items, id: \.self) { item in
                Button {
                    open(item)
                } label: {
                    VStack(alignment: .leading, spacing: 4) {
                        Text(Labels.todoReason(item.reason))
                            .font(.caption)
                            .foregroundStyle(isUrgent(item) ? Color.red : Color.accentColor)
                        Text(item.youthNames.isEmpty ? "—" : item.youthNames.joined(separator: ", "))
                            .font(.headline)
                        Text([item.place, item.date.map { Day.display(day: $0) }].compactMap { $0 }.joined(separator: " · "))
                            .font(.subheadline)
                        ForEach(detailLines(item), id: \.self) { line in
                            Text(line).lineLimit(3)
                        }
                    }
                }
            }
        }
        .navigationTitle("À faire (\(items.count))")
        .sheet(item: $answering) { question in
            NavigationStack {
                AnswerView(client: client, taskId: question.id, question: question.question) { answering = nil }
            }
        }
        .task {
            do {
                for try await latest in client.todoUpdates(limit: Self.limit) {
                    items = latest
                    loaded = true
                }
            } catch {
                self.error = userMessage(for: error)
            }
        }
    }

    private func isUrgent(_ item: TodoItem) -> Bool {
        item.reason == .nextStepOverdue || item.reason == .rejected
    }

    /// A question is answered here; a conflict opens its screen; a visit to correct, its form;
    /// everything else, the young person's file.
    private func open(_ item: TodoItem) {
        switch item.reason {
        case .openQuestion:
            answering = PendingQuestion(id: item.id, question: item.detail)
        case .conflict:
            model.path.append(.conflict(item.id))
        case .problems where item.kind == .contact:
            model.path.append(.visit(item.id))
        default:
            if let youthId = item.youthIds.first {
                model.path.append(.youth(youthId))
            } else if item.kind == .contact {
                model.path.append(.visit(item.id))
            }
        }
    }

    /// The detail as the field worker reads it: problems and conflicts with French field names.
    private func detailLines(_ item: TodoItem) -> [String] {
        switch item.reason {
        case .problems:
            return Labels.problems(item.detail)
        case .conflict:
            let fields = item.detail.components(separatedBy: ", ").map { Labels.fields[$0] ?? $0 }
            return ["Champs : " + fields.joined(separator: ", ")]
        case .openQuestion:
            return [item.detail, item.askedBy.map { "Posée par \($0)" }].compactMap { $0 }.filter { !$0.isEmpty }
        default:
            return item.detail.isEmpty ? [] : [item.detail]
        }
    }
}

/// A coordinator's question being answered (the sheet's item).
struct PendingQuestion: Identifiable {
    let id: String
    let question: String
}

/// Answers a coordinator's question about a visit; the answer syncs like any edit.
@MainActor
struct AnswerView: View {
    let client: RepereClient
    let taskId: String
    let question: String
    let onDone: () -> Void
    @State private var answer = ""
    @State private var sending = false
    @State private var error: String?

    var body: some View {
        Form {
            if let error {
                ErrorRow(message: error)
            }
            Section("Question de la coordination") {
                Text(question)
            }
            Section("Réponse") {
                TextField("Réponse", text: $answer, axis: .vertical).lineLimit(3...8)
            }
            Button("Envoyer") { Task { await send() } }
                .disabled(sending || answer.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty)
        }
        .navigationTitle("Répondre")
        .toolbar {
            ToolbarItem(placement: .cancellationAction) {
                Button("Annuler", action: onDone)
            }
        }
    }

    private func send() async {
        sending = true
        defer { sending = false }
        await attempt($error) {
            _ = try await client.answerReviewTask(id: taskId, answer: answer.trimmingCharacters(in: .whitespacesAndNewlines))
            onDone()
        }
    }
}

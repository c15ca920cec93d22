import RepereKit
import SwiftUI

/// Résolution de conflit: one record's fields edited at the same time on two tablets; the
/// user keeps one value per field.
@MainActor
struct ConflictView: View {
    let client: RepereClient
    let id: String
    @EnvironmentObject private var model: AppModel
    @Environment(\.dismiss) private var dismiss
    @State private var fields: [FieldConflict] = []
    @State private var loaded = false
    /// Roster names of the members who wrote the values (names are personal data: never logged).
    @State private var names: [String: String] = [:]
    @State private var error: String?

    var body: some View {
        List {
            if let error {
                ErrorRow(message: error)
            }
            ForEach(fields, id: \.field) { conflict in
                Section(Labels.fields[conflict.field] ?? conflict.field) {
                    ForEach(conflict.values, id: \.self) { value in
                        VStack(alignment: .leading, spacing: 4) {
                            Text(Labels.json(value.valueJson)).font(.headline)
                            Text(describe(value)).font(.caption).foregroundStyle(.secondary)
                            Button("Garder cette valeur") {
                                Task { await keep(conflict.field, value) }
                            }
                        }
                    }
                }
            }
        }
        .navigationTitle("Résolution de conflit")
        .task {
            let changes = client.changes()
            await load()
            for await batch in changes {
                let relevant = batch.contains { $0.id == id }
                if relevant {
                    await load()
                }
            }
        }
        .onChange(of: fields) { remaining in
            if loaded && remaining.isEmpty {
                dismiss()
            }
        }
    }

    private func load() async {
        await attempt($error) {
            let found = try await client.conflicts(id: id)
            var named: [String: String] = [:]
            for memberId in Set(found.flatMap { $0.values.compactMap(\.memberId) }) {
                named[memberId] = try await client.memberName(id: memberId)
            }
            names = named
            fields = found
            loaded = true
        }
    }

    private func keep(_ field: String, _ value: ConflictValue) async {
        await attempt($error) {
            try await client.resolveConflict(id: id, field: field, valueJson: value.valueJson)
        }
    }

    /// Who wrote the value and when: the member's name from the roster, and the writer's
    /// device clock, which may be wrong: said so on screen.
    private func describe(_ value: ConflictValue) -> String {
        let who: String
        if let member = value.memberId {
            who = member == model.memberId ? "vous" : (names[member] ?? Labels.unknownMember)
        } else {
            who = Labels.unknownMember
        }
        guard let written = value.writtenAt else {
            return "Saisi par \(who), à une date inconnue"
        }
        return "Saisi par \(who), le \(Day.display(instant: written)) (heure de sa tablette)"
    }
}

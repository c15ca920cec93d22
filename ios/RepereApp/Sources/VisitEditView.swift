import RepereKit
import SwiftUI

/// A visit's form. It keeps the record it was filled from (`seen`, which carries the version
/// read) and saves a copy with the user's changes: the core writes only those fields, so what
/// the other tablet of the binôme synced meanwhile (needs, a sentence in the notes) stays.
/// The form is not refilled when a sync changes the visit, which would drop what the user is
/// typing: it says so instead.
@MainActor
struct VisitEditView: View {
    let client: RepereClient
    let id: String
    @Environment(\.dismiss) private var dismiss
    @State private var seen: Contact?
    @State private var kind: ContactKind = .street
    @State private var notes = ""
    @State private var needs: Set<Need> = []
    @State private var nextStep = ""
    @State private var problems: [String] = []
    @State private var changedElsewhere = false
    /// The coordination's latest decision on this visit (a flag says what to do).
    @State private var decision: VisitDecision?
    @State private var saving = false
    @State private var error: String?

    var body: some View {
        Form {
            if let error {
                ErrorRow(message: error)
            }
            if changedElsewhere {
                Text("Cette visite a été modifiée sur une autre tablette depuis l'ouverture du formulaire : vos changements s'y ajouteront sans effacer les siens (un même champ changé des deux côtés sera signalé en conflit).")
                    .foregroundStyle(.blue)
            }
            if let decision {
                Text(Labels.decision(decision.state) + (decision.reason.isEmpty ? "" : " : \(decision.reason)") + " (\(Day.display(instant: decision.at)))")
                    .foregroundStyle(decision.asksForAction ? Color.red : Color.accentColor)
            }
            if !problems.isEmpty {
                Section("À corriger (modifications de deux tablettes fusionnées)") {
                    ForEach(problems, id: \.self) { line in
                        ErrorRow(message: line)
                    }
                }
            }
            if seen != nil {
                Section("Lieu du contact") {
                    if kind == .fromNewerVersion {
                        Text("Actuellement : \(Labels.newerVersion)")
                    }
                    Picker("Lieu", selection: $kind) {
                        ForEach(Labels.contactKinds, id: \.self) { Text(Labels.contactKind($0)).tag($0) }
                    }
                }
                Section("Besoins") {
                    ForEach(Labels.needs, id: \.self) { need in
                        Toggle(Labels.need(need), isOn: binding(for: need))
                    }
                    if needs.contains(.fromNewerVersion) {
                        Text("Et une \(Labels.newerVersion) (gardée telle quelle)")
                    }
                }
                Section("Notes") {
                    TextEditor(text: $notes).frame(minHeight: 80)
                }
                Section("Prochaine étape") {
                    TextField("Prochaine étape", text: $nextStep)
                }
                Button(saving ? "Enregistrement…" : "Enregistrer") { Task { await save() } }
                    .disabled(saving)
            }
        }
        .navigationTitle("Modifier la visite")
        .task {
            let changes = client.changes()
            await attempt($error) {
                let contact = try await client.contact(id: id)
                let text = try await client.problems(id: id)
                decision = try await client.visitDecision(contactId: id)
                fill(contact)
                problems = Labels.problems(text)
            }
            for await batch in changes {
                if batch.contains(where: { $0.id == id && $0.remote }) {
                    changedElsewhere = true
                }
            }
        }
    }

    private func binding(for need: Need) -> Binding<Bool> {
        Binding(
            get: { needs.contains(need) },
            set: { on in
                if on {
                    needs.insert(need)
                } else {
                    needs.remove(need)
                }
            }
        )
    }

    private func fill(_ contact: Contact) {
        seen = contact
        kind = contact.kind
        notes = contact.notes
        needs = Set(contact.needs)
        nextStep = contact.nextStep ?? ""
        changedElsewhere = false
    }

    private func save() async {
        guard var form = seen else {
            return
        }
        saving = true
        defer { saving = false }
        await attempt($error) {
            // No trimming: an untouched field must read as unchanged, character for character.
            form.kind = kind
            form.notes = notes
            form.needs = Array(needs)
            form.nextStep = nextStep.isEmpty ? nil : nextStep
            let stored = try await client.updateContact(form)
            let text = try await client.problems(id: id)
            problems = Labels.problems(text)
            // Merged with what came from elsewhere: a further edit starts from this version.
            fill(stored)
            if problems.isEmpty {
                dismiss()
            }
        }
    }
}

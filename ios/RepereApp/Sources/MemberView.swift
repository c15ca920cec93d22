import RepereKit
import SwiftUI

/// « Qui utilise la tablette ? »: the roster's active members (the roster comes with sync);
/// the one picked is saved in UserDefaults and given to `setMember` (`AppModel.chooseMember`),
/// so the following edits are theirs. Shown inside the tour of the day while nobody is
/// chosen, and as its own screen, reached from there, to change.
@MainActor
struct MemberChoice: View {
    let members: [TeamMember]
    var onChosen: () -> Void = {}
    @EnvironmentObject private var model: AppModel
    @State private var error: String?

    var body: some View {
        if let error {
            ErrorRow(message: error)
        }
        if members.isEmpty {
            Text("Équipe pas encore reçue : synchronisez la tablette une première fois.")
        }
        ForEach(members, id: \.id) { member in
            Button(member.id == model.chosenMemberId ? "\(member.name) (vous)" : member.name) {
                Task {
                    await attempt($error) {
                        try await model.chooseMember(member.id)
                        onChosen()
                    }
                }
            }
        }
    }
}

@MainActor
struct MemberView: View {
    let client: RepereClient
    @Environment(\.dismiss) private var dismiss
    @State private var members: [TeamMember] = []
    @State private var error: String?

    var body: some View {
        List {
            if let error {
                ErrorRow(message: error)
            }
            Section("Qui utilise la tablette ?") {
                MemberChoice(members: members) { dismiss() }
            }
        }
        .navigationTitle("Qui utilise la tablette ?")
        .task {
            await attempt($error) {
                for try await roster in client.rosterUpdates() {
                    members = roster.filter(\.active)
                }
            }
        }
    }
}

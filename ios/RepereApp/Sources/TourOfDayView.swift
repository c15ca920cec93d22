import RepereKit
import SwiftUI

/// Tournée du jour: the team's tour of the day (`toursOn(today)`, shared by the binôme's
/// tablets), the contacts made today, and « Qui utilise la tablette ? » while nobody is chosen.
@MainActor
struct TourOfDayView: View {
    let client: RepereClient
    @EnvironmentObject private var model: AppModel
    @State private var enrolment: Enrolment?
    @State private var checked = false
    /// The team's tour of the day, whichever of the binôme's tablets started it.
    @State private var tour: TourSummary?
    @State private var draft: [Commune] = []
    @State private var contacts: [VisitSummary] = []
    @State private var unsynced = 0
    /// The roster's active members, for « Qui utilise la tablette ? ».
    @State private var members: [TeamMember] = []
    /// Lines of « à faire », up to `TodoView.limit` (beyond that the button says "99+").
    @State private var todoCount = 0
    @State private var error: String?
    private let today = Day.today

    var body: some View {
        List {
            if let error {
                ErrorRow(message: error)
            }
            if checked && enrolment == nil {
                Section {
                    Text("Tablette non inscrite : inscrivez-la avant la première tournée.")
                    NavigationLink("Inscrire la tablette", value: Route.enrol)
                }
            } else {
                // The roster has come and nobody on it was chosen (or the chosen one left the team).
                if !members.isEmpty && !members.contains(where: { $0.id == model.chosenMemberId }) {
                    Section("Qui utilise la tablette ?") {
                        MemberChoice(members: members)
                    }
                }
                tourSection
            }
            Section("Contacts du jour (\(contacts.count))") {
                ForEach(contacts, id: \.id) { contact in
                    Button {
                        if let youthId = contact.youthIds.first {
                            model.path.append(.youth(youthId))
                        }
                    } label: {
                        VStack(alignment: .leading) {
                            Text(contact.youthNames.joined(separator: ", ")).font(.headline)
                            Text("\(Day.time(contact.occurredAt)) · \(contact.communeName) · \(Labels.rawValues[contact.kind] ?? contact.kind)")
                                .font(.subheadline)
                            DecisionLine(decision: contact.decision)
                        }
                    }
                }
            }
        }
        .navigationTitle("Tournée du \(Day.display(day: today))")
        .toolbar {
            ToolbarItem(placement: .primaryAction) {
                NavigationLink(value: Route.quickContact) {
                    Label("Nouveau contact", systemImage: "plus")
                }
                .disabled(enrolment == nil)
            }
            ToolbarItem(placement: .primaryAction) {
                NavigationLink(todoCount >= Int(TodoView.limit) ? "À faire (99+)" : "À faire (\(todoCount))", value: Route.todo)
            }
            // « Qui utilise la tablette ? » again, to change who is « vous ».
            ToolbarItem(placement: .secondaryAction) {
                if let me = members.first(where: { $0.id == model.chosenMemberId }) {
                    NavigationLink("\(me.name) (vous)", value: Route.member)
                }
            }
            ToolbarItem(placement: .secondaryAction) {
                NavigationLink(unsynced > 0 ? "Synchro (\(unsynced))" : "Synchro", value: Route.syncStatus)
            }
            ToolbarItem(placement: .secondaryAction) {
                NavigationLink("Accès exceptionnel", value: Route.access)
            }
        }
        .task {
            // Subscribe before loading so no change slips in between.
            let changes = client.changes()
            await load()
            for await _ in changes {
                await load()
            }
        }
        .task {
            // A sync may bring a new roster with no record changed: it has its own stream.
            await attempt($error) {
                for try await roster in client.rosterUpdates() {
                    members = roster.filter(\.active)
                }
            }
        }
    }

    @ViewBuilder
    private var tourSection: some View {
        if let tour {
            Section("Communes") {
                // The core names the route's communes ("" for a code its list does not know).
                ForEach(tour.communes.indices, id: \.self) { i in
                    let name = i < tour.communeNames.count ? tour.communeNames[i] : ""
                    Text(name.isEmpty ? tour.communes[i] : name)
                }
            }
        } else {
            Section("Communes de la tournée") {
                ForEach(draft, id: \.code) { Text($0.name) }
                CommuneSearch(title: "Ajouter une commune") { draft.append($0) }
                Button("Démarrer la tournée") { Task { await startTour() } }
                    .disabled(draft.isEmpty)
            }
        }
    }

    private func load() async {
        await attempt($error) {
            enrolment = try await client.enrolment()
            checked = true
            tour = try await client.toursOn(today).first
            // Today's visits, in order of time (a day's tour is well under a page).
            contacts = try await client.visitsOn(today)
            unsynced = try await client.unsyncedCount()
            todoCount = try await client.todo(limit: TodoView.limit).count
        }
    }

    private func startTour() async {
        guard let team = enrolment?.teamId else {
            return
        }
        await attempt($error) {
            let newTour = NewTour(teamId: team, date: today, communes: draft.map(\.code), status: .inProgress)
            _ = try await client.createTour(newTour)
            draft = []
        }
    }
}

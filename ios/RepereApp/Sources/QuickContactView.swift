import RepereKit
import SwiftUI

/// Saisie rapide: pick or search the young person (with the duplicate check shown BEFORE a
/// new one is created), then the contact.
@MainActor
struct QuickContactView: View {
    let client: RepereClient
    @EnvironmentObject private var model: AppModel
    @Environment(\.dismiss) private var dismiss

    @State private var query = ""
    @State private var results: [YouthSummary] = []
    @State private var selected: YouthSummary?
    @State private var creatingNew = false
    @State private var firstName = ""
    @State private var alias = ""
    @State private var birthYear = ""
    /// The core needs an age: the band when the year is not known (often, on the street).
    @State private var ageBand: AgeBand?
    @State private var homeCommune: Commune?
    @State private var noticeGiven = false
    @State private var similar: [SimilarYouth] = []

    @State private var kind: ContactKind = .street
    @State private var commune: Commune?
    @State private var notes = ""
    @State private var nextStep = ""
    /// « Présents »: the team's active members (the roster comes with sync).
    @State private var members: [TeamMember] = []
    @State private var present: Set<String> = []
    @State private var saving = false
    @State private var error: String?

    private var duplicateQuery: DuplicateQuery {
        DuplicateQuery(
            firstName: firstName.isEmpty ? nil : firstName,
            alias: alias.isEmpty ? nil : alias,
            lastName: nil,
            birthYear: Int32(birthYear),
            homeCommune: homeCommune?.code
        )
    }

    var body: some View {
        Form {
            if let error {
                ErrorRow(message: error)
            }
            Section("Jeune") {
                youthSection
            }
            if creatingNew && !similar.isEmpty {
                // "Déjà rencontré ? Kévin, ~19 ans, Stenay — vu 3 fois": the core writes it.
                Section("Déjà rencontré ?") {
                    ForEach(similar, id: \.youth.id) { match in
                        Button(match.description) { pick(match.youth) }
                    }
                    Text("Sinon, continuez : une nouvelle fiche sera créée.").font(.footnote)
                }
            }
            Section("Contact") {
                Picker("Lieu", selection: $kind) {
                    ForEach(Labels.contactKinds, id: \.self) { Text(Labels.contactKind($0)).tag($0) }
                }
                CommuneField(title: "Commune", commune: $commune)
                TextField("Notes", text: $notes, axis: .vertical).lineLimit(3...8)
                TextField("Prochaine étape", text: $nextStep)
            }
            Section("Présents") {
                if members.isEmpty {
                    Text("Équipe pas encore reçue (première synchronisation) : la visite est attribuée à cette tablette.")
                }
                ForEach(members, id: \.id) { member in
                    Toggle(member.id == model.memberId ? "\(member.name) (vous)" : member.name, isOn: Binding(
                        get: { present.contains(member.id) },
                        set: { isOn in
                            if isOn {
                                present.insert(member.id)
                            } else {
                                present.remove(member.id)
                            }
                        }
                    ))
                }
            }
            Button("Enregistrer") { Task { await save() } }
                .disabled(saving || (selected == nil && !creatingNew))
        }
        .navigationTitle("Nouveau contact")
        .task(id: query) { await search() }
        .task(id: duplicateQuery) { await checkDuplicates() }
        .task { await defaultCommune() }
        .task { await loadMembers() }
    }

    @ViewBuilder
    private var youthSection: some View {
        if let chosen = selected {
            HStack {
                Text(Labels.youthLine(chosen)).font(.headline)
                Spacer()
                Button("Changer") { selected = nil }
            }
        } else if creatingNew {
            TextField("Prénom", text: $firstName)
            TextField("Surnom", text: $alias)
            TextField("Année de naissance", text: $birthYear).keyboardType(.numberPad)
            Picker("Tranche d'âge", selection: $ageBand) {
                Text("—").tag(nil as AgeBand?)
                ForEach(Labels.ageBands, id: \.self) { Text(Labels.ageBand($0)).tag(Optional($0)) }
            }
            CommuneField(title: "Habite à", commune: $homeCommune)
            Toggle("Information sur ses données donnée", isOn: $noticeGiven)
            Button("Annuler") { creatingNew = false }
        } else {
            TextField("Rechercher (prénom, surnom, commune)", text: $query)
            ForEach(results, id: \.id) { youth in
                Button(Labels.youthLine(youth)) { pick(youth) }
            }
            Button("Nouveau jeune") { creatingNew = true }
        }
    }

    private func pick(_ youth: YouthSummary) {
        selected = youth
        creatingNew = false
    }

    // Both run from .task(id:): typing again cancels the pending call (debounce).
    private func search() async {
        try? await Task.sleep(for: .milliseconds(250))
        guard !Task.isCancelled else {
            return
        }
        let text = query.trimmingCharacters(in: .whitespaces)
        guard !text.isEmpty else {
            results = []
            return
        }
        let found = try? await client.searchYouth(text, limit: 20)
        results = found ?? []
    }

    private func checkDuplicates() async {
        try? await Task.sleep(for: .milliseconds(300))
        let probe = duplicateQuery
        guard !Task.isCancelled, probe.firstName != nil || probe.alias != nil else {
            similar = []
            return
        }
        let found = try? await client.similarYouth(probe)
        similar = found ?? []
    }

    private func loadMembers() async {
        await attempt($error) {
            members = try await client.roster().filter(\.active)
            // This tablet's member, if the roster knows it.
            if members.contains(where: { $0.id == model.memberId }) {
                present = [model.memberId]
            }
        }
    }

    /// The first commune of today's tour.
    private func defaultCommune() async {
        guard commune == nil else {
            return
        }
        let tours = try? await client.toursOn(Day.today)
        if let code = tours?.first?.communes.first {
            commune = await RepereClient.commune(code: code)
        }
    }

    private func save() async {
        saving = true
        defer { saving = false }
        await attempt($error) {
            let enrolment = try await client.enrolment()
            guard let team = enrolment?.teamId else {
                error = "Tablette non inscrite : inscrivez-la depuis l'écran Synchro."
                return
            }
            let today = Day.today
            // The team's tour of the day, whichever of the binôme's tablets started it.
            let tourId = try await client.toursOn(today).first?.id
            let contact = NewContact(
                teamId: team, youthIds: selected.map { [$0.id] } ?? [], tourId: tourId,
                // Before the first sync there is no roster: the visit is this tablet's member's.
                memberIds: members.isEmpty ? [model.memberId] : Array(present), occurredAt: Day.now(), commune: commune?.code ?? "",
                kind: kind, notes: notes, needs: [],
                nextStep: nextStep.isEmpty ? nil : nextStep, nextStepDue: nil
            )
            if selected != nil {
                _ = try await client.createContact(contact)
            } else {
                // One transaction: never a young person without the visit that found them. The
                // screen showed the likely duplicates while typing, so the person is confirmed new.
                _ = try await client.createYouthWithFirstVisit(newYouth(team: team, today: today), visit: contact, confirmedNew: true)
            }
            dismiss()
        }
    }

    // Outreach defaults; the rest is completed later in the youth file.
    private func newYouth(team: String, today: String) -> NewYouth {
        NewYouth(
            teamId: team, identityLevel: firstName.isEmpty ? .aliasOnly : .firstName,
            alias: alias.isEmpty ? nil : alias, firstName: firstName.isEmpty ? nil : firstName,
            lastName: nil, birthDate: nil, birthYear: Int32(birthYear), ageBand: ageBand, sex: nil,
            phone: nil, email: nil, otherContact: nil, homeCommune: homeCommune?.code,
            referralSource: .outreach, referralDetail: nil, referralDate: nil,
            profileFlags: [], situation: .unknown, followedBy: nil,
            firstContactDate: today, noticeGivenOn: noticeGiven ? today : nil, status: .identified
        )
    }
}

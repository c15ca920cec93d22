import RepereKit
import SwiftUI

/// Runs an action and shows the core's French sentence if it fails.
@MainActor
func attempt(_ message: Binding<String?>, _ body: () async throws -> Void) async {
    message.wrappedValue = nil
    do {
        try await body()
    } catch {
        message.wrappedValue = userMessage(for: error)
    }
}

struct ErrorRow: View {
    let message: String

    var body: some View {
        Text(message).foregroundStyle(.red)
    }
}

/// The decision's line under a visit, in red when it asks the binôme for action.
struct DecisionLine: View {
    let decision: VisitDecision?

    var body: some View {
        if let decision {
            Text(Labels.visitDecision(decision))
                .font(.caption)
                .foregroundStyle(decision.asksForAction ? Color.red : Color.accentColor)
        }
    }
}

struct SyncBadge: View {
    let state: RecordSyncState

    var body: some View {
        Text(Labels.syncState(state))
            .font(.caption)
            .foregroundStyle(Labels.isProblem(state) ? Color.red : Color.secondary)
    }
}

/// Search a commune by name (the list ships with the core; works offline).
struct CommuneSearch: View {
    let title: String
    let onPick: (Commune) -> Void
    @State private var query = ""
    @State private var hits: [Commune] = []

    var body: some View {
        TextField(title, text: $query)
            .task(id: query) {
                let prefix = query.trimmingCharacters(in: .whitespaces)
                hits = prefix.count < 2 ? [] : await RepereClient.searchCommunes(prefix, limit: 8)
            }
        ForEach(hits, id: \.code) { commune in
            Button("\(commune.name) (\(commune.postcodes.first ?? commune.department))") {
                onPick(commune)
                query = ""
            }
        }
    }
}

/// A chosen commune, or the search to choose one.
struct CommuneField: View {
    let title: String
    @Binding var commune: Commune?

    var body: some View {
        if let chosen = commune {
            HStack {
                Text("\(title) : \(chosen.name)")
                Spacer()
                Button("Changer") { commune = nil }
            }
        } else {
            CommuneSearch(title: title) { commune = $0 }
        }
    }
}

/// French labels. Summaries and conflicts carry enum values as snake_case strings
/// ("town_hall"), not as the generated enums, hence the string tables.
enum Labels {
    /// A value written by a newer version of the app, which this one cannot name
    /// (`.fromNewerVersion` in every enum). Shown as is, never offered in a picker: the core
    /// keeps it untouched while the field is left alone and refuses a form that would write it.
    static let newerVersion = "valeur d'une version plus récente"

    /// The values pickers offer (never `.fromNewerVersion`).
    static let contactKinds: [ContactKind] = [.street, .home, .townHall, .partnerPremises, .event, .phone, .socialNetwork, .other]
    static let needs: [Need] = [.housing, .health, .mobility, .employment, .training, .rights, .other]

    static func need(_ need: Need) -> String {
        switch need {
        case .housing: return "Logement"
        case .health: return "Santé"
        case .mobility: return "Mobilité"
        case .employment: return "Emploi"
        case .training: return "Formation"
        case .rights: return "Droits"
        case .other: return "Autre"
        case .fromNewerVersion: return newerVersion
        }
    }

    static func contactKind(_ kind: ContactKind) -> String {
        switch kind {
        case .street: return "Rue"
        case .home: return "Domicile"
        case .townHall: return "Mairie"
        case .partnerPremises: return "Chez un partenaire"
        case .event: return "Événement"
        case .phone: return "Téléphone"
        case .socialNetwork: return "Réseau social"
        case .other: return "Autre"
        case .fromNewerVersion: return newerVersion
        }
    }

    static let ageBands: [AgeBand] = [.from16To17, .from18To21, .from22To25, .from26To29]

    static func ageBand(_ band: AgeBand) -> String {
        switch band {
        case .from16To17: return "16-17 ans"
        case .from18To21: return "18-21 ans"
        case .from22To25: return "22-25 ans"
        case .from26To29: return "26-29 ans"
        case .fromNewerVersion: return newerVersion
        }
    }

    static func situation(_ situation: Situation) -> String {
        switch situation {
        case .neet: return "Sans emploi, études ni formation"
        case .inEducation: return "Scolarisé(e)"
        case .inEmployment: return "En emploi"
        case .inTraining: return "En formation"
        case .unknown: return "Inconnue"
        case .fromNewerVersion: return newerVersion
        }
    }

    static func status(_ status: YouthStatus) -> String {
        switch status {
        case .identified: return "Repéré(e)"
        case .mobilised: return "Mobilisé(e)"
        case .helped: return "Coup de main"
        case .closed: return "Suivi terminé"
        case .fromNewerVersion: return newerVersion
        }
    }

    static func actionKind(_ kind: ActionKind) -> String {
        switch kind {
        case .chantier5Days: return "Chantier de 5 jours"
        case .chantierMonth: return "Chantier d'un mois"
        case .sport: return "Sport"
        case .culture: return "Culture"
        case .appointment: return "Rendez-vous"
        case .other: return "Autre"
        case .fromNewerVersion: return newerVersion
        }
    }

    static func actionStatus(_ status: ActionStatus) -> String {
        switch status {
        case .planned: return "Prévue"
        case .done: return "Faite"
        case .noShow: return "Absent(e)"
        case .cancelled: return "Annulée"
        case .fromNewerVersion: return newerVersion
        }
    }

    static func outcomeKind(_ kind: OutcomeKind) -> String {
        switch kind {
        case .missionLocaleRegistration: return "Inscription à la Mission Locale"
        case .franceTravailRegistration: return "Inscription à France Travail"
        case .capEmploiRegistration: return "Inscription à Cap emploi"
        case .job: return "Emploi"
        case .training: return "Formation"
        case .returnToSchool: return "Retour en études"
        case .housing: return "Logement"
        case .healthCare: return "Soins"
        case .other: return "Autre"
        case .fromNewerVersion: return newerVersion
        }
    }

    static func syncState(_ state: RecordSyncState) -> String {
        switch state {
        case .neverSynced: return "Jamais envoyé"
        case .pending: return "Modifications à envoyer"
        case .synced: return "Synchronisé"
        case .rejected(let reason): return "Refusé par le serveur : \(reason)"
        }
    }

    static func isProblem(_ state: RecordSyncState) -> Bool {
        if case .rejected = state {
            return true
        }
        return false
    }

    static let rawValues: [String: String] = [
        "street": "Rue", "home": "Domicile", "town_hall": "Mairie", "partner_premises": "Chez un partenaire",
        "event": "Événement", "phone": "Téléphone", "social_network": "Réseau social", "other": "Autre",
        "neet": "Sans emploi, études ni formation", "in_education": "Scolarisé(e)", "in_employment": "En emploi",
        "in_training": "En formation", "unknown": "Inconnue",
        "identified": "Repéré(e)", "mobilised": "Mobilisé(e)", "helped": "Coup de main", "closed": "Suivi terminé",
        // Actions (kind, status) and outcomes, as the youth file's summaries spell them.
        "chantier5_days": "Chantier de 5 jours", "chantier_month": "Chantier d'un mois", "sport": "Sport",
        "culture": "Culture", "appointment": "Rendez-vous",
        "planned": "Prévue", "done": "Faite", "no_show": "Absent(e)", "cancelled": "Annulée",
        "mission_locale_registration": "Inscription à la Mission Locale",
        "france_travail_registration": "Inscription à France Travail",
        "cap_emploi_registration": "Inscription à Cap emploi", "job": "Emploi", "training": "Formation",
        "return_to_school": "Retour en études", "housing": "Logement", "health_care": "Soins",
        "_unknown": newerVersion,
    ]

    /// Shown for a member id the roster does not know (or no member at all).
    static let unknownMember = "membre inconnu"

    /// Why a line is « à faire ».
    static func todoReason(_ reason: TodoReason) -> String {
        switch reason {
        case .nextStepOverdue: return "Prochaine étape en retard"
        case .nextStepDueToday: return "Prochaine étape pour aujourd'hui"
        case .problems: return "Fiche à corriger"
        case .rejected: return "Refusée par le serveur"
        case .openQuestion: return "Question de la coordination"
        case .flagged: return "Signalée par la coordination"
        case .conflict: return "Conflit à résoudre"
        }
    }

    static func decision(_ state: DecisionState) -> String {
        switch state {
        case .approved: return "Validée par la coordination"
        case .flagged: return "Signalée par la coordination"
        case .question: return "Question de la coordination"
        }
    }

    /// A visit line's word on the coordination's decision: « Validée », « À revoir : raison ».
    static func visitDecision(_ decision: VisitDecision) -> String {
        switch decision.state {
        case .approved: return "Validée"
        case .flagged: return decision.reason.isEmpty ? "À revoir" : "À revoir : \(decision.reason)"
        case .question: return "Question de la coordination"
        }
    }

    static let fields: [String: String] = [
        "first_name": "Prénom", "alias": "Surnom", "last_name": "Nom", "birth_year": "Année de naissance",
        "birth_date": "Date de naissance", "age_band": "Tranche d'âge", "home_commune": "Commune de résidence", "phone": "Téléphone",
        "situation": "Situation", "status": "Statut", "followed_by": "Suivi par", "notes": "Notes",
        "next_step": "Prochaine étape", "next_step_due": "Échéance de la prochaine étape", "commune": "Commune",
        "kind": "Lieu du contact", "needs": "Besoins",
    ]

    /// The core's `problems` text (`field: problème; …`) as lines, with French field names.
    static func problems(_ text: String?) -> [String] {
        guard let text else {
            return []
        }
        return text.components(separatedBy: "; ").filter { !$0.isEmpty }.map { item in
            guard let range = item.range(of: ": ") else {
                return item
            }
            let field = String(item[..<range.lowerBound])
            let problem = String(item[range.upperBound...])
            return "\(fields[field] ?? field) : \(problem)"
        }
    }

    /// A conflict value, given as JSON: strings unquoted, known enum values in French.
    static func json(_ json: String) -> String {
        if json == "null" {
            return "(vide)"
        }
        if json.count >= 2, json.hasPrefix("\""), json.hasSuffix("\"") {
            let raw = String(json.dropFirst().dropLast())
            return rawValues[raw] ?? raw
        }
        return json
    }

    static func youthLine(_ youth: YouthSummary) -> String {
        var line = youth.displayName
        if let age = youth.age {
            line += youth.ageIsApproximate ? ", ~\(age) ans" : ", \(age) ans"
        }
        if let commune = youth.homeCommuneName {
            line += ", \(commune)"
        }
        return line
    }
}

/// Dates as the core wants them: days `YYYY-MM-DD`, instants RFC 3339 with the tablet's
/// UTC offset (the time the user lived, kept as entered).
enum Day {
    private static let dayFormat: DateFormatter = {
        let f = DateFormatter()
        f.calendar = Calendar(identifier: .iso8601)
        f.locale = Locale(identifier: "en_US_POSIX")
        f.dateFormat = "yyyy-MM-dd"
        return f
    }()

    private static let instantFormat: ISO8601DateFormatter = {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime]
        f.timeZone = .current
        return f
    }()

    // chrono's to_rfc3339 adds fractional seconds when there are some; this parser takes them.
    private static let fractionalFormat: ISO8601DateFormatter = {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f
    }()

    static var today: String { dayFormat.string(from: Date()) }
    static func now() -> String { instantFormat.string(from: Date()) }

    static func instant(_ rfc3339: String) -> Date? {
        instantFormat.date(from: rfc3339) ?? fractionalFormat.date(from: rfc3339)
    }

    static func display(day: String) -> String {
        guard let date = dayFormat.date(from: day) else {
            return day
        }
        return date.formatted(date: .numeric, time: .omitted)
    }

    static func display(_ date: Date) -> String {
        date.formatted(date: .numeric, time: .shortened)
    }

    static func display(instant rfc3339: String) -> String {
        instant(rfc3339).map { display($0) } ?? rfc3339
    }

    static func time(_ rfc3339: String) -> String {
        instant(rfc3339)?.formatted(date: .omitted, time: .shortened) ?? rfc3339
    }
}

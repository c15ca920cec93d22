import RepereKit
import SwiftUI

@main
struct RepereApp: App {
    @StateObject private var model = AppModel.shared

    init() {
        // BGTaskScheduler wants its handlers before launch completes.
        SyncScheduler.registerBackgroundRefresh {
            await AppModel.shared.backgroundSync()
        }
    }

    var body: some Scene {
        WindowGroup {
            RootView()
                .environmentObject(model)
                .task { await model.open() }
                // The QR code's enrolment link, opened by the camera app: anything else is
                // ignored.
                .onOpenURL { url in
                    if let link = EnrolmentLink.parse(url) {
                        model.openEnrolment(link)
                    }
                }
        }
    }
}

enum Route: Hashable {
    case quickContact
    case todo
    case youth(String)
    case conflict(String)
    case visit(String)
    case syncStatus
    case enrol
    case member
    case access
    case lent(String)
}

/// Opens the store once and keeps the few facts the core does not (see ios/README.md,
/// "API gaps"): who uses the tablet.
@MainActor
final class AppModel: ObservableObject {
    static let shared = AppModel()

    @Published private(set) var client: RepereClient?
    @Published private(set) var scheduler: SyncScheduler?
    @Published private(set) var openError: String?
    @Published var path: [Route] = []
    /// An enrolment link the app was opened with, until the enrolment screen takes it.
    @Published var enrolmentLink: EnrolmentLink?

    private let defaults = UserDefaults.standard

    /// The roster member who said « c'est moi » on this tablet (« Qui utilise la tablette ? »),
    /// or nil before anyone did: the tour of the day asks while it is nil (or no longer an
    /// active member) and the roster has come.
    @Published private(set) var chosenMemberId: String?

    private init() {
        chosenMemberId = UserDefaults.standard.string(forKey: "fr.repere.chosenMemberId")
    }

    /// The author of the next edits, given to `setMember`: the chosen member, or before anyone
    /// was chosen (no roster yet, before the first sync) an id made here once per installation.
    var memberId: String {
        if let chosen = chosenMemberId {
            return chosen
        }
        if let id = defaults.string(forKey: "fr.repere.memberId") {
            return id
        }
        let id = UUID().uuidString.lowercased()
        defaults.set(id, forKey: "fr.repere.memberId")
        return id
    }

    /// Shows « Inscription de la tablette » prefilled with the link's server and code, to
    /// check and confirm (works before the store is open: the screen waits for it).
    func openEnrolment(_ link: EnrolmentLink) {
        enrolmentLink = link
        path.append(.enrol)
    }

    /// Makes `id` this tablet's member: the core's author of the next edits, and remembered.
    func chooseMember(_ id: String) async throws {
        try await client?.setMember(id)
        defaults.set(id, forKey: "fr.repere.chosenMemberId")
        chosenMemberId = id
    }

    func open() async {
        guard client == nil else {
            return
        }
        do {
            let url = try Self.storeURL()
            // An existing store never gets a new key: it could not open it (see KeychainKeyStore).
            let exists = FileManager.default.fileExists(atPath: url.path)
            let key = try KeychainKeyStore().databaseKey(createIfMissing: !exists)
            let opened = try await RepereClient.open(path: url.path, key: key)
            try await opened.setMember(memberId)
            // Told to the server at each sync for the administrators' tablets page. A version
            // the core refuses (not a short version string) leaves the core's own there:
            // never a reason not to open the store.
            if let version = Bundle.main.object(forInfoDictionaryKey: "CFBundleShortVersionString") as? String {
                try? await opened.setAppVersion(version)
            }
            let scheduler = SyncScheduler(client: opened)
            client = opened
            self.scheduler = scheduler
            openError = nil
            scheduler.start()
            SyncScheduler.scheduleBackgroundRefresh()
        } catch {
            openError = userMessage(for: error)
        }
    }

    func backgroundSync() async -> Bool {
        await open()
        guard let scheduler else {
            return false
        }
        return await scheduler.syncNow()
    }

    /// Application Support/Repere/repere.db. Excluded from backups: its key never leaves this
    /// device. The default file protection (until first unlock) lets background sync open it.
    static func storeURL() throws -> URL {
        let support = try FileManager.default.url(for: .applicationSupportDirectory, in: .userDomainMask, appropriateFor: nil, create: true)
        var dir = support.appendingPathComponent("Repere", isDirectory: true)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        var values = URLResourceValues()
        values.isExcludedFromBackup = true
        try dir.setResourceValues(values)
        return dir.appendingPathComponent("repere.db")
    }
}

@MainActor
struct RootView: View {
    @EnvironmentObject private var model: AppModel

    var body: some View {
        if let client = model.client, let scheduler = model.scheduler {
            NavigationStack(path: $model.path) {
                TourOfDayView(client: client)
                    .navigationDestination(for: Route.self) { route in
                        switch route {
                        case .quickContact:
                            QuickContactView(client: client)
                        case .todo:
                            TodoView(client: client)
                        case .youth(let id):
                            YouthFileView(client: client, id: id)
                        case .conflict(let id):
                            ConflictView(client: client, id: id)
                        case .visit(let id):
                            VisitEditView(client: client, id: id)
                        case .syncStatus:
                            SyncStatusView(client: client)
                        case .enrol:
                            EnrolView(client: client)
                        case .member:
                            MemberView(client: client)
                        case .access:
                            AccessView(client: client)
                        case .lent(let youthId):
                            LentFileView(client: client, youthId: youthId)
                        }
                    }
            }
            .environmentObject(scheduler)
        } else if let message = model.openError {
            VStack(spacing: 16) {
                Text(message)
                Button("Réessayer") { Task { await model.open() } }
            }
            .padding()
        } else {
            ProgressView("Ouverture des données…")
        }
    }
}

import Foundation
import Network
#if os(iOS)
import BackgroundTasks
#endif

/// When to sync: as soon as the network comes back (NWPathMonitor), in the background
/// (a BGAppRefreshTask, when iOS allows it), and when the user taps "Synchroniser". One sync
/// at a time. A failed sync loses nothing (the core keeps every unsent change and applies a
/// retried upload once), so a failure just waits for the next trigger.
@MainActor
public final class SyncScheduler: ObservableObject {
    /// Also listed in the app's Info.plist (BGTaskSchedulerPermittedIdentifiers).
    public nonisolated static let refreshTaskIdentifier = "fr.repere.app.sync"

    @Published public private(set) var isSyncing = false
    @Published public private(set) var isOnline = false
    @Published public private(set) var lastSync: Date?
    @Published public private(set) var lastError: String?

    private let client: RepereClient
    private let monitor = NWPathMonitor()
    private let defaults: UserDefaults
    private static let lastSyncKey = "fr.repere.lastSync"

    public init(client: RepereClient, defaults: UserDefaults = .standard) {
        self.client = client
        self.defaults = defaults
        lastSync = defaults.object(forKey: Self.lastSyncKey) as? Date
    }

    deinit {
        monitor.cancel()
    }

    /// Starts watching the network; a path that becomes satisfied triggers a sync.
    public func start() {
        monitor.pathUpdateHandler = { [weak self] path in
            let online = path.status == .satisfied
            Task { @MainActor in
                self?.networkChanged(online: online)
            }
        }
        monitor.start(queue: DispatchQueue(label: "fr.repere.network"))
    }

    private func networkChanged(online: Bool) {
        let cameBack = online && !isOnline
        isOnline = online
        if cameBack {
            Task { await syncNow() }
        }
    }

    /// The button, the network trigger and the background task all land here.
    /// Returns whether a sync ran and succeeded.
    @discardableResult
    public func syncNow() async -> Bool {
        guard !isSyncing else {
            return false
        }
        isSyncing = true
        defer { isSyncing = false }
        do {
            let enrolment = try await client.enrolment()
            guard enrolment != nil else {
                return false // nothing to sync with until the tablet is enrolled
            }
            _ = try await client.sync()
            let now = Date()
            lastSync = now
            defaults.set(now, forKey: Self.lastSyncKey)
            lastError = nil
            return true
        } catch {
            lastError = userMessage(for: error)
            return false
        }
    }

    #if os(iOS)
    /// Registers the app-refresh handler. Must be called before the app finishes launching
    /// (from the App's init). `sync` opens the store if needed and syncs.
    public nonisolated static func registerBackgroundRefresh(_ sync: @escaping @Sendable () async -> Bool) {
        BGTaskScheduler.shared.register(forTaskWithIdentifier: refreshTaskIdentifier, using: nil) { task in
            // iOS runs each request once: ask for the next one first.
            scheduleBackgroundRefresh()
            let done = CompletionOnce(task)
            let work = Task {
                let ok = await sync()
                done.complete(success: ok)
            }
            // The core's sync cannot be interrupted: on expiry, report the task unfinished so
            // iOS retries later. Whatever was sent or received is kept.
            task.expirationHandler = {
                work.cancel()
                done.complete(success: false)
            }
        }
    }

    /// Asks iOS for a background refresh in 15 minutes at the earliest (iOS decides when).
    public nonisolated static func scheduleBackgroundRefresh() {
        let request = BGAppRefreshTaskRequest(identifier: refreshTaskIdentifier)
        request.earliestBeginDate = Date(timeIntervalSinceNow: 15 * 60)
        // Fails in the simulator and when Background App Refresh is off; the network trigger
        // and the button remain.
        try? BGTaskScheduler.shared.submit(request)
    }
    #endif
}

#if os(iOS)
/// setTaskCompleted must be called once: by the sync or by the expiration, whichever is first.
private final class CompletionOnce: @unchecked Sendable {
    // @unchecked: `task` is only used under `lock`, at most once.
    private let lock = NSLock()
    private var task: BGTask?

    init(_ task: BGTask) {
        self.task = task
    }

    func complete(success: Bool) {
        lock.lock()
        let pending = task
        task = nil
        lock.unlock()
        pending?.setTaskCompleted(success: success)
    }
}
#endif

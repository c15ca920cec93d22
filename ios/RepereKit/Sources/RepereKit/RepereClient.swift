@_exported import RepereFFI
import Foundation

/// The app's entry to the Repère core. Every FFI call blocks (disk, and the network for
/// `enrol` and `sync`), so each one runs on a private queue and is awaited through a
/// continuation: never on the main actor, never on Swift's cooperative thread pool.
/// The queue is concurrent because the core serialises store access itself and releases its
/// lock while waiting for the server, so a long sync does not hold up a search.
public final class RepereClient: Sendable {
    private let store: RepereStore
    private let queue = DispatchQueue(label: "fr.repere.core", qos: .userInitiated, attributes: .concurrent)
    private let fanOut = ChangeFanOut()

    private init(store: RepereStore) {
        self.store = store
        store.subscribe(listener: fanOut)
    }

    /// Opens (or creates) the encrypted store at `path` with the 32-byte key from
    /// `KeychainKeyStore`. The key is not kept here.
    public static func open(path: String, key: Data) async throws -> RepereClient {
        try await perform(on: .global(qos: .userInitiated)) {
            RepereClient(store: try RepereStore.open(path: path, key: key))
        }
    }

    private func run<T: Sendable>(_ body: @escaping @Sendable (RepereStore) throws -> T) async throws -> T {
        let store = self.store
        return try await perform(on: queue) { try body(store) }
    }

    // MARK: records

    public func setMember(_ memberId: String) async throws {
        try await run { try $0.setMember(memberId: memberId) }
    }

    /// The app's version (`CFBundleShortVersionString`), told to the server at each sync
    /// for the administrators' tablets page. Only a short version string starting with a
    /// digit is taken; anything else throws and changes nothing.
    public func setAppVersion(_ version: String) async throws {
        try await run { try $0.setAppVersion(version: version) }
    }

    public func appVersion() async throws -> String {
        try await run { $0.appVersion() }
    }

    // Records come in two shapes: `NewYouth`, `NewContact`… to create (no id or version yet),
    // and `Youth`, `Contact`… as read, carrying their `id` and the `version` they were read at.
    // A form keeps the record it was filled from and saves a copy with the user's changes:
    // the core writes only those fields, so what another tablet synced meanwhile is kept.
    // Each update returns the record as now stored (merged), to carry on editing from.

    public func createYouth(_ youth: NewYouth) async throws -> String {
        try await run { try $0.createYouth(youth: youth) }
    }

    public func updateYouth(_ youth: Youth) async throws -> Youth {
        try await run { try $0.updateYouth(youth: youth) }
    }

    public func youth(id: String) async throws -> Youth {
        try await run { try $0.getYouth(id: id) }
    }

    public func createContact(_ contact: NewContact) async throws -> String {
        try await run { try $0.createContact(contact: contact) }
    }

    public func updateContact(_ contact: Contact) async throws -> Contact {
        try await run { try $0.updateContact(contact: contact) }
    }

    public func contact(id: String) async throws -> Contact {
        try await run { try $0.getContact(id: id) }
    }

    public func createTour(_ tour: NewTour) async throws -> String {
        try await run { try $0.createTour(tour: tour) }
    }

    public func updateTour(_ tour: Tour) async throws -> Tour {
        try await run { try $0.updateTour(tour: tour) }
    }

    public func tour(id: String) async throws -> Tour {
        try await run { try $0.getTour(id: id) }
    }

    public func createAction(_ action: NewAction) async throws -> String {
        try await run { try $0.createAction(action: action) }
    }

    public func updateAction(_ action: Action) async throws -> Action {
        try await run { try $0.updateAction(action: action) }
    }

    public func action(id: String) async throws -> Action {
        try await run { try $0.getAction(id: id) }
    }

    public func createOutcome(_ outcome: NewOutcome) async throws -> String {
        try await run { try $0.createOutcome(outcome: outcome) }
    }

    public func updateOutcome(_ outcome: Outcome) async throws -> Outcome {
        try await run { try $0.updateOutcome(outcome: outcome) }
    }

    public func outcome(id: String) async throws -> Outcome {
        try await run { try $0.getOutcome(id: id) }
    }

    /// What is wrong with a record as merged (two valid edits from two tablets can make an
    /// invalid one; both are kept), as `field: problème` items joined by "; "; nil if valid.
    public func problems(id: String) async throws -> String? {
        try await run { try $0.problems(id: id) }
    }

    public func withProblems() async throws -> [RecordRef] {
        try await run { try $0.withProblems() }
    }

    /// Documents kept on the tablet but out of the lists, each with a French `userMessage`.
    public func setAside() async throws -> [SetAside] {
        try await run { try $0.setAside() }
    }

    /// Whether the offline lock holds: no record can be read or written until `sync` gets through.
    public func isLocked() async throws -> Bool {
        try await run { try $0.isLocked() }
    }

    /// Days without reaching the server before the records lock (30 by default; `nil`: never).
    public func setOfflineLockDays(_ days: UInt32?) async throws {
        try await run { try $0.setOfflineLockDays(days: days) }
    }

    // MARK: lists and search

    /// Accent- and case-insensitive ("kev sten" finds Kévin from Stenay).
    public func searchYouth(_ query: String, limit: UInt32 = 50) async throws -> [YouthSummary] {
        try await run { try $0.searchYouth(query: query, limit: limit) }
    }

    /// Call before creating a young person: possible duplicates, best first.
    public func similarYouth(_ query: DuplicateQuery, limit: UInt32 = 5) async throws -> [SimilarYouth] {
        try await run { try $0.findSimilarYouth(query: query, limit: limit) }
    }

    /// Most recent first.
    public func contacts(offset: UInt32 = 0, limit: UInt32 = 50) async throws -> [ContactSummary] {
        try await run { try $0.listContacts(offset: offset, limit: limit) }
    }

    public func contactIds(ofYouth youthId: String) async throws -> [String] {
        try await run { try $0.contactsOfYouth(youthId: youthId) }
    }

    // MARK: lists for the screens (issue 11)

    /// « à faire », most urgent first.
    public func todo(offset: UInt32 = 0, limit: UInt32 = 50) async throws -> [TodoItem] {
        try await run { try $0.todo(offset: offset, limit: limit) }
    }

    /// Visits, most recent first, with who was met and what is pending.
    public func recentVisits(offset: UInt32 = 0, limit: UInt32 = 50) async throws -> [VisitSummary] {
        try await run { try $0.recentVisits(offset: offset, limit: limit) }
    }

    /// The visits of `date` (`YYYY-MM-DD`, as entered on the tablet), in order of time.
    public func visitsOn(_ date: String, offset: UInt32 = 0, limit: UInt32 = 100) async throws -> [VisitSummary] {
        try await run { try $0.visitsOn(date: date, offset: offset, limit: limit) }
    }

    /// Tours from `from` to `to` (`YYYY-MM-DD`, inclusive), by date.
    public func tours(from: String, to: String? = nil, offset: UInt32 = 0, limit: UInt32 = 50) async throws -> [TourSummary] {
        try await run { try $0.toursBetween(from: from, to: to ?? from, offset: offset, limit: limit) }
    }

    /// The tours of one day (`YYYY-MM-DD`): the tour of the day, shared by the binôme's tablets.
    public func toursOn(_ date: String) async throws -> [TourSummary] {
        try await run { try $0.toursOn(date: date) }
    }

    /// A young person's file: who, and the first `limit` visits, actions, outcomes and open
    /// questions, with their totals.
    public func youthFile(youthId: String, limit: UInt32 = 20) async throws -> YouthFile {
        try await run { try $0.youthFile(youthId: youthId, limit: limit) }
    }

    public func youthVisits(youthId: String, offset: UInt32 = 0, limit: UInt32 = 50) async throws -> [VisitSummary] {
        try await run { try $0.youthVisits(youthId: youthId, offset: offset, limit: limit) }
    }

    public func youthActions(youthId: String, offset: UInt32 = 0, limit: UInt32 = 50) async throws -> [ActionSummary] {
        try await run { try $0.youthActions(youthId: youthId, offset: offset, limit: limit) }
    }

    public func youthOutcomes(youthId: String, offset: UInt32 = 0, limit: UInt32 = 50) async throws -> [OutcomeSummary] {
        try await run { try $0.youthOutcomes(youthId: youthId, offset: offset, limit: limit) }
    }

    public func youthQuestions(youthId: String, offset: UInt32 = 0, limit: UInt32 = 50) async throws -> [QuestionSummary] {
        try await run { try $0.youthQuestions(youthId: youthId, offset: offset, limit: limit) }
    }

    /// Creates the young person and their first visit in one transaction; unless
    /// `confirmedNew`, possible duplicates come back instead and nothing is created.
    public func createYouthWithFirstVisit(_ youth: NewYouth, visit: NewContact, confirmedNew: Bool = false) async throws -> FirstVisitResult {
        try await run { try $0.createYouthWithFirstVisit(youth: youth, visit: visit, confirmedNew: confirmedNew) }
    }

    /// « à faire », then again after every change (one stream per screen).
    public func todoUpdates(limit: UInt32 = 50) -> AsyncThrowingStream<[TodoItem], Error> {
        let changes = self.changes()
        return AsyncThrowingStream { continuation in
            let task = Task {
                do {
                    continuation.yield(try await self.todo(limit: limit))
                    for await _ in changes {
                        continuation.yield(try await self.todo(limit: limit))
                    }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    // MARK: conflicts and sync

    public func conflicts(id: String) async throws -> [FieldConflict] {
        try await run { try $0.conflicts(id: id) }
    }

    public func resolveConflict(id: String, field: String, valueJson: String) async throws {
        try await run { try $0.resolveConflict(id: id, field: field, valueJson: valueJson) }
    }

    // MARK: Team roster and coordination decisions (synced, read-only)

    /// The team's members, active first, by name; offer only active ones as « membres présents ».
    public func roster() async throws -> [TeamMember] {
        try await run { try $0.roster() }
    }

    /// The roster now, then again each time a sync brings a new one (or re-enrolment forgets it).
    public func rosterUpdates() -> AsyncThrowingStream<[TeamMember], Error> {
        let changes = fanOut.rosterStream()
        return AsyncThrowingStream { continuation in
            let task = Task {
                do {
                    continuation.yield(try await self.roster())
                    for await _ in changes {
                        continuation.yield(try await self.roster())
                    }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    /// A member's display name (active or not), or nil for an id the roster does not know.
    public func memberName(id: String) async throws -> String? {
        try await run { try $0.memberName(id: id) }
    }

    /// The coordinators' latest decision on a visit (approved, flagged with its reason, question).
    public func visitDecision(contactId: String) async throws -> VisitDecision? {
        try await run { try $0.visitDecision(contactId: contactId) }
    }

    /// Flagged visits on this tablet, newest first: they ask the binôme for action.
    public func flaggedVisits(offset: UInt32 = 0, limit: UInt32 = 50) async throws -> [VisitDecision] {
        try await run { try $0.flaggedVisits(offset: offset, limit: limit) }
    }

    // MARK: end of team roster and coordination decisions

    // MARK: break-the-glass (another team's file, read-only for a while)

    /// What a request may say: reason length, durations, the default (two hours).
    public static func accessLimits() -> AccessLimits {
        RepereFFI.accessLimits()
    }

    /// Asks for read access to the file `youthId` (the reference its team gives) for `minutes`,
    /// in the name of the member set with `setMember`, because of `reason`; the next `sync`
    /// carries it. Throws `RepereError.Validation` (« Demande non envoyée : … », each field to
    /// correct) for a bad reference, reason or duration, no member, or a file already here.
    public func requestAccess(youthId: String, reason: String, minutes: UInt32 = RepereClient.accessLimits().defaultMinutes) async throws -> String {
        try await run { try $0.requestAccess(youthId: youthId, reason: reason, minutes: minutes) }
    }

    /// The requests made here, newest first: pending, granted until its end, refused (for a day).
    public func accessRequests() async throws -> [AccessRequest] {
        try await run { try $0.accessRequests() }
    }

    /// The files lent to this tablet and not over, the soonest to end first.
    public func lentFiles() async throws -> [LentFileSummary] {
        try await run { try $0.lentFiles() }
    }

    /// The lent file of `youthId`, read-only; nil once over or no longer lent.
    public func lentFile(youthId: String) async throws -> LentFile? {
        try await run { try $0.lentFile(youthId: youthId) }
    }

    /// The requests now, then again after each change (made, answered, over).
    public func accessRequestUpdates() -> AsyncThrowingStream<[AccessRequest], Error> {
        lendingUpdates({ try await self.accessRequests() }) { requests in
            requests.compactMap { request in
                if case .granted(let expiresAt) = request.state {
                    return expiresAt
                }
                return nil
            }
        }
    }

    /// The lent files now, again after each change, and when the soonest ends (the tablet's clock).
    public func lentFileUpdates() -> AsyncThrowingStream<[LentFileSummary], Error> {
        lendingUpdates({ try await self.lentFiles() }) { files in files.map(\.expiresAt) }
    }

    /// One lent file, then nil as soon as it is over or no longer lent.
    public func lentFileUpdates(youthId: String) -> AsyncThrowingStream<LentFile?, Error> {
        lendingUpdates({ try await self.lentFile(youthId: youthId) }) { file in file.map { [$0.expiresAt] } ?? [] }
    }

    /// `query` now and after every lending change; also once the soonest of the ends it reports
    /// (RFC 3339) has passed, since nothing else tells when a lent file goes by the clock.
    private func lendingUpdates<T: Sendable>(
        _ query: @escaping @Sendable () async throws -> T,
        ends: @escaping @Sendable (T) -> [String]
    ) -> AsyncThrowingStream<T, Error> {
        let changes = fanOut.lendingStream()
        return AsyncThrowingStream { continuation in
            let (wakes, wake) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
            let forward = Task {
                for await _ in changes {
                    wake.yield(())
                }
            }
            let task = Task {
                var timer: Task<Void, Never>?
                defer {
                    timer?.cancel()
                    forward.cancel()
                }
                wake.yield(())
                do {
                    for await _ in wakes {
                        let value = try await query()
                        continuation.yield(value)
                        timer?.cancel()
                        if let soonest = ends(value).compactMap(lentUntil).min() {
                            let wait = max(0, soonest.timeIntervalSinceNow) + 0.5
                            timer = Task {
                                try? await Task.sleep(nanoseconds: UInt64(wait * 1_000_000_000))
                                if !Task.isCancelled {
                                    wake.yield(())
                                }
                            }
                        }
                    }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    // MARK: end of break-the-glass

    // MARK: coordinators' questions

    /// Coordinators' questions synced to this tablet.
    public func reviewTasks(openOnly: Bool = true) async throws -> [ReviewTask] {
        try await run { try $0.reviewTasks(openOnly: openOnly) }
    }

    /// Answers a coordinator's question; the answer syncs like any edit.
    public func answerReviewTask(id: String, answer: String) async throws -> ReviewTask {
        try await run { try $0.answerReviewTask(id: id, answer: answer) }
    }

    public func syncState(id: String) async throws -> RecordSyncState {
        try await run { try $0.syncState(id: id) }
    }

    public func unsyncedCount() async throws -> Int {
        let count = try await run { try $0.unsyncedCount() }
        return Int(count)
    }

    /// Records the server has not acknowledged yet, oldest change first (`syncState` says why).
    public func unsynced() async throws -> [RecordRef] {
        try await run { try $0.unsynced() }
    }

    /// When the tablet last got an answer from its server (RFC 3339, UTC); nil if never.
    public func lastServerContact() async throws -> String? {
        try await run { try $0.lastServerContact() }
    }

    /// Into another team, unsent changes are sent first with the current credentials; if some
    /// cannot be, this throws `RepereError.UnsentChanges`: call again with the same code and
    /// `force` to set them aside (see `setAside()`).
    public func enrol(serverUrl: String, code: String, deviceLabel: String, force: Bool = false) async throws -> Enrolment {
        try await run { try $0.enrol(serverUrl: serverUrl, code: code, deviceLabel: deviceLabel, force: force) }
    }

    public func enrolment() async throws -> Enrolment? {
        try await run { try $0.enrolment() }
    }

    /// Pushes and pulls until up to date, reporting records and bytes after each round; the
    /// HTTP connection is kept for the next sync. Cancelling the calling task stops it at
    /// once, even mid-request (it then throws `RepereError.Cancelled`); what it had applied
    /// stays and the next sync carries on. A sync cut short by the system loses nothing either.
    public func sync(progress: @escaping @Sendable (SyncProgress) -> Void = { _ in }) async throws -> SyncProgress {
        let listener = ProgressForwarder(progress)
        let cancellation = SyncCancellation()
        return try await withTaskCancellationHandler {
            try await run { try $0.sync(listener: listener, cancellation: cancellation) }
        } onCancel: {
            cancellation.cancel()
        }
    }

    /// Every committed change, local or pulled by sync, for refreshing screens. Each call
    /// gives a new stream (one per screen); it unregisters itself when its task ends.
    public func changes() -> AsyncStream<[ChangedRecord]> {
        fanOut.stream()
    }

    // MARK: communes (the list ships with the core; parsed once, on first use)

    public static func commune(code: String) async -> Commune? {
        let found = try? await perform(on: .global(qos: .userInitiated)) { communeByCode(code: code) }
        return found
    }

    public static func searchCommunes(_ prefix: String, limit: UInt32 = 20) async -> [Commune] {
        let found = try? await perform(on: .global(qos: .userInitiated)) {
            RepereFFI.searchCommunes(prefix: prefix, limit: limit)
        }
        return found ?? []
    }
}

/// An end the core gives (RFC 3339, with fractional seconds when it has some).
private func lentUntil(_ rfc3339: String) -> Date? {
    let plain = ISO8601DateFormatter()
    let fractional = ISO8601DateFormatter()
    fractional.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
    return plain.date(from: rfc3339) ?? fractional.date(from: rfc3339)
}

/// Runs a blocking call on `queue` and resumes the awaiting task with its result.
private func perform<T: Sendable>(on queue: DispatchQueue, _ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        queue.async {
            continuation.resume(with: Result { try body() })
        }
    }
}

/// Fans the core's callbacks (made on a core thread) out to one AsyncStream per listening
/// screen: record changes, and roster and lending changes apart.
final class ChangeFanOut: StoreListener, @unchecked Sendable {
    private let records = FanOut<[ChangedRecord]>()
    private let roster = FanOut<Void>()
    private let lending = FanOut<Void>()

    func onChange(changes: [ChangedRecord]) {
        records.yield(changes)
    }

    func onRosterChange() {
        roster.yield(())
    }

    func onLendingChange() {
        lending.yield(())
    }

    func stream() -> AsyncStream<[ChangedRecord]> {
        records.stream()
    }

    func rosterStream() -> AsyncStream<Void> {
        roster.stream()
    }

    func lendingStream() -> AsyncStream<Void> {
        lending.stream()
    }
}

final class FanOut<Element>: @unchecked Sendable {
    // @unchecked: `continuations` is only touched under `lock`.
    private let lock = NSLock()
    private var continuations: [UUID: AsyncStream<Element>.Continuation] = [:]

    func yield(_ element: Element) {
        lock.lock()
        let targets = Array(continuations.values)
        lock.unlock()
        for continuation in targets {
            continuation.yield(element)
        }
    }

    func stream() -> AsyncStream<Element> {
        AsyncStream(bufferingPolicy: .bufferingNewest(16)) { continuation in
            let id = UUID()
            lock.lock()
            continuations[id] = continuation
            lock.unlock()
            continuation.onTermination = { [weak self] _ in
                guard let self else { return }
                self.lock.lock()
                self.continuations[id] = nil
                self.lock.unlock()
            }
        }
    }
}

final class ProgressForwarder: SyncListener {
    private let handler: @Sendable (SyncProgress) -> Void

    init(_ handler: @escaping @Sendable (SyncProgress) -> Void) {
        self.handler = handler
    }

    func onProgress(progress: SyncProgress) {
        handler(progress)
    }
}

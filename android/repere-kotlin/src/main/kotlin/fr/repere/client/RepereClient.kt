package fr.repere.client

import fr.repere.ffi.AccessLimits
import fr.repere.ffi.AccessRequest
import fr.repere.ffi.Action
import fr.repere.ffi.LentFile
import fr.repere.ffi.LentFileSummary
import fr.repere.ffi.TeamMember
import fr.repere.ffi.VisitDecision
import fr.repere.ffi.ChangedRecord
import fr.repere.ffi.Commune
import fr.repere.ffi.Contact
import fr.repere.ffi.ContactSummary
import fr.repere.ffi.DuplicateQuery
import fr.repere.ffi.Enrolment
import fr.repere.ffi.Dimension
import fr.repere.ffi.FieldConflict
import fr.repere.ffi.Granularity
import fr.repere.ffi.HistoryEntry
import fr.repere.ffi.IndicatorRow
import fr.repere.ffi.NewAction
import fr.repere.ffi.NewContact
import fr.repere.ffi.NewOutcome
import fr.repere.ffi.NewTour
import fr.repere.ffi.NewYouth
import fr.repere.ffi.Outcome
import fr.repere.ffi.RecordRef
import fr.repere.ffi.RecordSyncState
import fr.repere.ffi.RepereException
import fr.repere.ffi.RepereStore
import fr.repere.ffi.ReviewTask
import fr.repere.ffi.SetAside
import fr.repere.ffi.SimilarYouth
import fr.repere.ffi.StoreListener
import fr.repere.ffi.SyncListener
import fr.repere.ffi.SyncProgress
import fr.repere.ffi.Tour
import fr.repere.ffi.Youth
import fr.repere.ffi.YouthSummary
import fr.repere.ffi.FirstVisitResult
import fr.repere.ffi.RecordKind
import fr.repere.ffi.TodoItem
import fr.repere.ffi.TourSummary
import fr.repere.ffi.VisitSummary
import fr.repere.ffi.communeByCode
import fr.repere.ffi.communesByPostcode
import fr.repere.ffi.searchCommunes
import fr.repere.ffi.SyncCancellation
import fr.repere.ffi.ActionSummary
import fr.repere.ffi.OutcomeSummary
import fr.repere.ffi.QuestionSummary
import fr.repere.ffi.YouthFile
import kotlinx.coroutines.CoroutineDispatcher
import kotlinx.coroutines.CoroutineStart
import kotlinx.coroutines.awaitCancellation
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.ensureActive
import kotlinx.coroutines.launch
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.delay
import kotlinx.coroutines.channels.BufferOverflow
import kotlinx.coroutines.flow.MutableSharedFlow
import kotlinx.coroutines.flow.SharedFlow
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.asSharedFlow
import kotlinx.coroutines.flow.channelFlow
import kotlinx.coroutines.flow.collectLatest
import kotlinx.coroutines.flow.conflate
import kotlinx.coroutines.flow.filter
import kotlinx.coroutines.flow.map
import kotlinx.coroutines.flow.onSubscription
import kotlinx.coroutines.withContext
import java.time.Duration
import java.time.Instant
import java.time.OffsetDateTime

/**
 * The app's entry to the Repère core: every call is a suspend function that runs on [io]
 * (never the main thread), errors are [RepereException] subclasses whose `userMessage`
 * can be shown as is, and [changes] tells the screens what to refresh.
 *
 * The 32-byte [key] comes from the platform keystore (Android Keystore); this class never
 * stores it.
 *
 * Records come in two shapes: `NewYouth`, `NewContact`… for creation (no id, no version
 * yet), and `Youth`, `Contact`… as read, carrying their `id` and the `version` they were read
 * at. A form keeps the record it was filled from and saves `record.copy(...)` with the
 * fields the user changed: the core writes only those, so what another tablet changed
 * meanwhile (merged in by a sync while the form was open) is kept.
 */
class RepereClient private constructor(
    private val store: RepereStore,
    private val io: CoroutineDispatcher,
) : AutoCloseable {

    private val changeFlow = MutableSharedFlow<List<ChangedRecord>>(
        extraBufferCapacity = 64,
        onBufferOverflow = BufferOverflow.DROP_OLDEST,
    )

    /** Every committed change, local or from sync. */
    val changes: SharedFlow<List<ChangedRecord>> = changeFlow.asSharedFlow()

    private val rosterChanges = MutableSharedFlow<Unit>(
        extraBufferCapacity = 1,
        onBufferOverflow = BufferOverflow.DROP_OLDEST,
    )

    private val lendingChanges = MutableSharedFlow<Unit>(
        extraBufferCapacity = 1,
        onBufferOverflow = BufferOverflow.DROP_OLDEST,
    )

    init {
        store.subscribe(object : StoreListener {
            override fun onChange(changes: List<ChangedRecord>) {
                changeFlow.tryEmit(changes)
            }

            override fun onRosterChange() {
                rosterChanges.tryEmit(Unit)
            }

            override fun onLendingChange() {
                lendingChanges.tryEmit(Unit)
            }
        })
    }

    companion object {
        suspend fun open(
            path: String,
            key: ByteArray,
            io: CoroutineDispatcher = Dispatchers.IO,
        ): RepereClient = withContext(io) { RepereClient(RepereStore.open(path, key), io) }

        fun commune(code: String): Commune? = communeByCode(code)
        fun searchCommunes(prefix: String, limit: Int = 20): List<Commune> =
            searchCommunes(prefix, limit.toUInt())
        fun communesByPostcode(postcode: String, limit: Int = 20): List<Commune> =
            communesByPostcode(postcode, limit.toUInt())

        /** What a break-the-glass request may say: reason length, durations, the default (2 h). */
        fun accessLimits(): AccessLimits = fr.repere.ffi.accessLimits()
    }

    private suspend fun <T> io(block: RepereStore.() -> T): T = withContext(io) { store.block() }

    suspend fun setMember(memberId: String) = io { setMember(memberId) }

    /**
     * The app's version (`versionName`), told to the server at each sync for the
     * administrators' tablets page. Only a short version string starting with a digit is
     * taken (see `RepereStore.setAppVersion`); anything else throws and changes nothing.
     */
    suspend fun setAppVersion(version: String) = io { setAppVersion(version) }

    suspend fun appVersion(): String = io { appVersion() }

    suspend fun createYouth(youth: NewYouth): String = io { createYouth(youth) }
    /** Saves a form filled from [youth] as read; returns the record as now stored (merged). */
    suspend fun updateYouth(youth: Youth): Youth = io { updateYouth(youth) }
    suspend fun youth(id: String): Youth = io { getYouth(id) }

    suspend fun createContact(contact: NewContact): String = io { createContact(contact) }
    /** Saves a form filled from [contact] as read; returns the record as now stored (merged). */
    suspend fun updateContact(contact: Contact): Contact = io { updateContact(contact) }
    suspend fun contact(id: String): Contact = io { getContact(id) }

    suspend fun createTour(tour: NewTour): String = io { createTour(tour) }
    suspend fun updateTour(tour: Tour): Tour = io { updateTour(tour) }
    suspend fun tour(id: String): Tour = io { getTour(id) }

    suspend fun createAction(action: NewAction): String = io { createAction(action) }
    suspend fun updateAction(action: Action): Action = io { updateAction(action) }
    suspend fun action(id: String): Action = io { getAction(id) }

    suspend fun createOutcome(outcome: NewOutcome): String = io { createOutcome(outcome) }
    suspend fun updateOutcome(outcome: Outcome): Outcome = io { updateOutcome(outcome) }
    suspend fun outcome(id: String): Outcome = io { getOutcome(id) }

    suspend fun searchYouth(query: String, limit: Int = 50): List<YouthSummary> =
        io { searchYouth(query, limit.toUInt()) }

    /** Call before creating a young person: possible duplicates, best first. */
    suspend fun similarYouth(query: DuplicateQuery, limit: Int = 5): List<SimilarYouth> =
        io { findSimilarYouth(query, limit.toUInt()) }

    suspend fun contacts(offset: Int = 0, limit: Int = 50): List<ContactSummary> =
        io { listContacts(offset.toUInt(), limit.toUInt()) }

    suspend fun contactsOf(youthId: String): List<String> = io { contactsOfYouth(youthId) }

    suspend fun conflicts(id: String): List<FieldConflict> = io { conflicts(id) }
    suspend fun resolveConflict(id: String, field: String, valueJson: String) =
        io { resolveConflict(id, field, valueJson) }

    suspend fun history(id: String): List<HistoryEntry> = io { history(id) }

    /**
     * What is wrong with a record as merged (two valid edits from two tablets can make an
     * invalid one; both are kept), or null. Show it to the field worker, whose edit fixes it.
     */
    suspend fun problems(id: String): String? = io { problems(id) }
    suspend fun withProblems(): List<RecordRef> = io { withProblems() }

    /** Documents kept on the tablet but out of the lists, each with a French `userMessage`. */
    suspend fun setAside(): List<SetAside> = io { setAside() }

    /** Whether the offline lock holds: no record can be read or written until [sync] gets through. */
    suspend fun isLocked(): Boolean = io { isLocked() }

    /** Days without reaching the server before the records lock (30 by default; `null`: never). */
    suspend fun setOfflineLockDays(days: UInt?) = io { setOfflineLockDays(days) }

    /** Coordinators' questions synced to this tablet. */
    suspend fun reviewTasks(openOnly: Boolean = true): List<ReviewTask> = io { reviewTasks(openOnly) }
    suspend fun answerReviewTask(id: String, answer: String): ReviewTask = io { answerReviewTask(id, answer) }

    // --- Team roster and coordination decisions (synced, read-only) ---

    /** The team's members, active first, by name; offer only active ones as « membres présents ». */
    suspend fun roster(): List<TeamMember> = io { roster() }
    /** The roster now, then again each time a sync brings a new one (or re-enrolment forgets it). */
    fun rosterFlow(): Flow<List<TeamMember>> =
        rosterChanges.onSubscription { emit(Unit) }.conflate().map { roster() }
    /** A member's display name (active or not), or null for an id the roster does not know. */
    suspend fun memberName(id: String): String? = io { memberName(id) }
    /** The coordinators' latest decision on a visit (approved, flagged with its reason, question). */
    suspend fun visitDecision(contactId: String): VisitDecision? = io { visitDecision(contactId) }
    /** Flagged visits on this tablet, newest first: they ask the binôme for action. */
    suspend fun flaggedVisits(offset: UInt = 0u, limit: UInt = 50u): List<VisitDecision> =
        io { flaggedVisits(offset, limit) }

    // --- end of team roster and coordination decisions ---

    // --- Break-the-glass: another team's file, read-only for a while ---

    /**
     * Asks for read access to the file [youthId] (the reference its team gives) for [minutes],
     * in the name of the member set with [setMember], because of [reason]. The next [sync]
     * carries it; [accessRequests] then says the answer and a granted file comes in [lentFiles].
     * Throws [RepereException.Validation] (« Demande non envoyée : … », each field to correct)
     * for a bad reference, reason or duration, no member, or a file already on the tablet.
     */
    suspend fun requestAccess(youthId: String, reason: String, minutes: Int = accessLimits().defaultMinutes.toInt()): String =
        io { requestAccess(youthId, reason, minutes.toUInt()) }
    /** The requests made here, newest first: pending, granted until its end, refused (for a day). */
    suspend fun accessRequests(): List<AccessRequest> = io { accessRequests() }
    /** The files lent to this tablet and not over, the soonest to end first. */
    suspend fun lentFiles(): List<LentFileSummary> = io { lentFiles() }
    /** The lent file of [youthId], read-only; null once over or no longer lent. */
    suspend fun lentFile(youthId: String): LentFile? = io { lentFile(youthId) }

    /** The requests now, then again after each change (made, answered, over). */
    fun accessRequestsFlow(): Flow<List<AccessRequest>> =
        lendingFlow({ accessRequests() }) { requests ->
            requests.mapNotNull { (it.state as? fr.repere.ffi.AccessState.Granted)?.expiresAt }
        }
    /** The lent files now, again after each change, and when the soonest ends (the tablet's clock). */
    fun lentFilesFlow(): Flow<List<LentFileSummary>> =
        lendingFlow({ lentFiles() }) { files -> files.map { it.expiresAt } }
    /** One lent file, then null as soon as it is over or no longer lent. */
    fun lentFileFlow(youthId: String): Flow<LentFile?> =
        lendingFlow({ lentFile(youthId) }) { file -> listOfNotNull(file?.expiresAt) }

    /**
     * [query] now and after every lending change; also once the soonest of the ends it reports
     * (RFC 3339) has passed, since nothing else tells when a lent file goes by the clock.
     */
    private fun <T> lendingFlow(query: suspend () -> T, ends: (T) -> List<String>): Flow<T> = channelFlow {
        lendingChanges.onSubscription { emit(Unit) }.collectLatest {
            while (true) {
                val value = query()
                send(value)
                val soonest = ends(value).minOfOrNull { OffsetDateTime.parse(it).toInstant() } ?: break
                delay(Duration.between(Instant.now(), soonest).toMillis().coerceAtLeast(0) + 500)
            }
        }
    }

    // --- end of break-the-glass ---

    /** The team's funder figures, computed offline by the same code as the dashboard. */
    suspend fun indicators(
        from: String,
        to: String,
        granularity: Granularity = Granularity.MONTH,
        dimension: Dimension? = null,
    ): List<IndicatorRow> = io { indicators(from, to, granularity, dimension) }

    suspend fun syncState(id: String): RecordSyncState = io { syncState(id) }
    suspend fun unsyncedCount(): Int = io { unsyncedCount().toInt() }
    /** Records the server has not acknowledged yet, oldest change first ([syncState] says why). */
    suspend fun unsynced(): List<RecordRef> = io { unsynced() }
    /** When the tablet last got an answer from its server (RFC 3339, UTC); null if never. */
    suspend fun lastServerContact(): String? = io { lastServerContact() }

    /**
     * Enrols (or re-enrols) the tablet. Into another team, unsent changes are sent first with
     * the current credentials; if some cannot be, this throws [RepereException.UnsentChanges]:
     * call again with the same code and [force] to set them aside (see [setAside]).
     */
    suspend fun enrol(serverUrl: String, code: String, deviceLabel: String, force: Boolean = false): Enrolment =
        io { enrol(serverUrl, code, deviceLabel, force) }
    suspend fun enrolment(): Enrolment? = io { enrolment() }

    /**
     * Pushes and pulls until up to date, reporting records and bytes after each round. The
     * store stays usable meanwhile (the core holds its lock only around the local steps, not
     * during the network waits), and the HTTP connection is kept for the next sync.
     *
     * Cancelling the calling coroutine stops the sync at once, even mid-request; what it
     * had applied stays and the next sync carries on. The coroutine then ends with a
     * `CancellationException`, as usual.
     */
    suspend fun sync(onProgress: (SyncProgress) -> Unit = {}): SyncProgress = coroutineScope {
        val cancellation = SyncCancellation()
        // Waits for this coroutine's cancellation, and passes it on to the core.
        val watcher = launch(start = CoroutineStart.UNDISPATCHED) {
            try {
                awaitCancellation()
            } finally {
                cancellation.cancel()
            }
        }
        try {
            withContext(io) {
                store.sync(object : SyncListener {
                    override fun onProgress(progress: SyncProgress) = onProgress(progress)
                }, cancellation)
            }
        } catch (e: RepereException.Cancelled) {
            // Stopped by this coroutine's cancellation: end as a cancelled coroutine does.
            ensureActive()
            throw e
        } finally {
            watcher.cancel()
        }
    }

    // ---- Lists for the screens (issue 11) ----------------------------------------------

    /** « à faire », most urgent first (overdue next steps, due today, problems, refusals, questions, conflicts). */
    suspend fun todo(offset: Int = 0, limit: Int = 50): List<TodoItem> =
        io { todo(offset.toUInt(), limit.toUInt()) }

    /** Visits, most recent first, with who was met and what is pending. */
    suspend fun recentVisits(offset: Int = 0, limit: Int = 50): List<VisitSummary> =
        io { recentVisits(offset.toUInt(), limit.toUInt()) }

    /** Tours from [from] to [to] (`YYYY-MM-DD`, inclusive), by date. */
    suspend fun tours(from: String, to: String = from, offset: Int = 0, limit: Int = 50): List<TourSummary> =
        io { toursBetween(from, to, offset.toUInt(), limit.toUInt()) }

    /** The tours of one day (`YYYY-MM-DD`): the tour of the day, shared by the binôme's tablets. */
    suspend fun toursOn(date: String): List<TourSummary> = io { toursOn(date) }

    /** A young person's file: who, and the first [limit] visits, actions, outcomes, open questions, with totals. */
    suspend fun youthFile(youthId: String, limit: Int = 20): YouthFile = io { youthFile(youthId, limit.toUInt()) }

    suspend fun youthVisits(youthId: String, offset: Int = 0, limit: Int = 50): List<VisitSummary> =
        io { youthVisits(youthId, offset.toUInt(), limit.toUInt()) }
    suspend fun youthActions(youthId: String, offset: Int = 0, limit: Int = 50): List<ActionSummary> =
        io { youthActions(youthId, offset.toUInt(), limit.toUInt()) }
    suspend fun youthOutcomes(youthId: String, offset: Int = 0, limit: Int = 50): List<OutcomeSummary> =
        io { youthOutcomes(youthId, offset.toUInt(), limit.toUInt()) }
    suspend fun youthQuestions(youthId: String, offset: Int = 0, limit: Int = 50): List<QuestionSummary> =
        io { youthQuestions(youthId, offset.toUInt(), limit.toUInt()) }

    /** The young person's file, queried again after every change that can alter it. */
    fun youthFileFlow(youthId: String, limit: Int = 20): Flow<YouthFile> =
        listFlow(RecordKind.values().toSet()) { youthFile(youthId, limit) }

    /**
     * Creates [youth] and its first [visit] in one transaction. Unless [confirmedNew], the
     * duplicate check runs first and its candidates come back instead (nothing created).
     */
    suspend fun createYouthWithFirstVisit(
        youth: NewYouth,
        visit: NewContact,
        confirmedNew: Boolean = false,
    ): FirstVisitResult = io { createYouthWithFirstVisit(youth, visit, confirmedNew) }

    /** A list that queries again after every change of one of [kinds]. */
    private fun <T> listFlow(kinds: Set<RecordKind>, query: suspend () -> T): Flow<T> =
        changes.onSubscription { emit(emptyList()) }
            .filter { changed -> changed.isEmpty() || changed.any { it.kind in kinds } }
            .conflate()
            .map { query() }

    fun todoFlow(limit: Int = 50): Flow<List<TodoItem>> =
        listFlow(RecordKind.values().toSet()) { todo(0, limit) }

    /** The visits of [date] (`YYYY-MM-DD`, as entered on the tablet), in order of time. */
    suspend fun visitsOn(date: String, offset: Int = 0, limit: Int = 100): List<VisitSummary> =
        io { visitsOn(date, offset.toUInt(), limit.toUInt()) }

    fun visitsOnFlow(date: String, limit: Int = 100): Flow<List<VisitSummary>> =
        listFlow(setOf(RecordKind.CONTACT, RecordKind.YOUTH, RecordKind.REVIEW_TASK)) { visitsOn(date, 0, limit) }

    fun recentVisitsFlow(limit: Int = 50): Flow<List<VisitSummary>> =
        listFlow(setOf(RecordKind.CONTACT, RecordKind.YOUTH, RecordKind.REVIEW_TASK)) { recentVisits(0, limit) }

    fun toursFlow(from: String, to: String = from): Flow<List<TourSummary>> =
        listFlow(setOf(RecordKind.TOUR, RecordKind.CONTACT)) { tours(from, to) }

    // ---- end of lists ---------------------------------------------------------------------

    override fun close() = store.close()
}

/** The sentence to show a field worker for any core error. */
val RepereException.userMessage: String
    get() = when (this) {
        is RepereException.Validation -> userMessage
        is RepereException.WrongKey -> userMessage
        is RepereException.InvalidKey -> userMessage
        is RepereException.NotFound -> userMessage
        is RepereException.Erased -> userMessage
        is RepereException.NoConflict -> userMessage
        is RepereException.NotEnrolled -> userMessage
        is RepereException.DeviceRevoked -> userMessage
        is RepereException.Cancelled -> userMessage
        is RepereException.Wiped -> userMessage
        is RepereException.Locked -> userMessage
        is RepereException.InvalidEnrolmentCode -> userMessage
        is RepereException.NetworkUnavailable -> userMessage
        is RepereException.ServerRejected -> userMessage
        is RepereException.Storage -> userMessage
        is RepereException.Internal -> userMessage
        is RepereException.UnknownVersion -> userMessage
        is RepereException.UnsentChanges -> userMessage
        is RepereException.IncompatibleServer -> userMessage
        is RepereException.InvalidServerResponse -> userMessage
        is RepereException.InvalidServerAddress -> userMessage
    }

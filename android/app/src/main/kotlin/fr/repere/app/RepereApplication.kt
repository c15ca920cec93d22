package fr.repere.app

import android.app.Application
import android.content.Context
import fr.repere.app.sync.SyncScheduler
import fr.repere.client.EnrolmentLink
import fr.repere.client.RepereClient
import fr.repere.ffi.RepereException
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.sync.Mutex
import kotlinx.coroutines.sync.withLock
import kotlinx.coroutines.withContext
import java.io.File
import java.util.UUID

class RepereApplication : Application() {
    val store by lazy { StoreHolder(this) }
    val prefs by lazy { AppPrefs(this) }

    /** An enrolment link the tablet was opened with, until the enrolment screen takes it. */
    val enrolmentLink = MutableStateFlow<EnrolmentLink?>(null)

    override fun onCreate() {
        super.onCreate()
        // Before any enrolment or sync: HTTPS is verified by Android's own trust manager.
        AndroidTls.init(this)
        // Sync whenever a network is there: every 15 minutes, and once at start (the binôme
        // often opens the app when back in signal). Both wait for connectivity.
        SyncScheduler.schedulePeriodic(this)
        SyncScheduler.syncNow(this, userAsked = false)
    }
}

val Context.repere: RepereApplication get() = applicationContext as RepereApplication

/**
 * The one open store of the process: the screens and SyncWorker share it (SQLite has a single
 * writer, and the core's change events must reach every screen). Opened on first use and kept
 * open for the life of the process.
 */
class StoreHolder(private val app: RepereApplication) {
    private val mutex = Mutex()
    @Volatile private var client: RepereClient? = null

    suspend fun client(): RepereClient = client ?: mutex.withLock {
        client ?: open().also { client = it }
    }

    private suspend fun open(): RepereClient {
        // noBackupFilesDir: never copied off the device (see the manifest's allowBackup).
        val db = File(app.noBackupFilesDir, "repere.db")
        // A missing key next to an existing store is never "fixed" by a new key: that could
        // not open the store, and the store must never be deleted (unsent work is in it).
        val key = withContext(Dispatchers.IO) { KeyProvider(app).databaseKey(createIfMissing = !db.exists()) }
        try {
            return RepereClient.open(db.path, key).also {
                it.setMember(app.prefs.memberId)
                // Told to the server at each sync for the administrators' tablets page. A
                // versionName the core refuses (not a short version string) leaves the core's
                // own version there: never a reason not to open the store.
                try {
                    it.setAppVersion(BuildConfig.VERSION_NAME)
                } catch (e: RepereException) {
                }
            }
        } finally {
            key.fill(0) // the core has its own copy; do not leave one on the JVM heap
        }
    }
}

/** Small facts the core does not keep (see README.md, "API gaps"). */
class AppPrefs(context: Context) {
    private val p = context.getSharedPreferences("repere", Context.MODE_PRIVATE)

    /**
     * The roster member who said « c'est moi » on this tablet (« Qui utilise la tablette ? »),
     * or null before anyone did. Screens watch it: the tour of the day asks while it is null
     * (or no longer an active member) and the roster has come.
     */
    val chosenMemberId: StateFlow<String?> get() = chosen
    private val chosen = MutableStateFlow(p.getString("chosen_member_id", null))

    /** Remembers [id] as this tablet's member; the caller also gives it to `setMember`. */
    fun chooseMember(id: String) {
        p.edit().putString("chosen_member_id", id).apply()
        chosen.value = id
    }

    /**
     * The author of the next edits, given to `setMember`: the chosen member, or before anyone
     * was chosen (no roster yet, before the first sync) an id made here once per installation.
     */
    val memberId: String
        get() = chosen.value ?: installationId

    private val installationId: String
        @Synchronized get() = p.getString("member_id", null)
            ?: UUID.randomUUID().toString().also { p.edit().putString("member_id", it).commit() }

    var lastSyncError: String?
        get() = p.getString("last_sync_error", null)
        set(v) = p.edit().putString("last_sync_error", v).apply()
}

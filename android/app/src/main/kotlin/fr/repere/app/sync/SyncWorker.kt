package fr.repere.app.sync

import android.content.Context
import androidx.work.BackoffPolicy
import androidx.work.Constraints
import androidx.work.CoroutineWorker
import androidx.work.ExistingPeriodicWorkPolicy
import androidx.work.ExistingWorkPolicy
import androidx.work.NetworkType
import androidx.work.OneTimeWorkRequestBuilder
import androidx.work.PeriodicWorkRequestBuilder
import androidx.work.WorkInfo
import androidx.work.WorkManager
import androidx.work.WorkerParameters
import fr.repere.app.repere
import fr.repere.client.userMessage
import fr.repere.ffi.RepereException
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.map
import kotlinx.coroutines.sync.Mutex
import kotlinx.coroutines.sync.withLock
import java.security.GeneralSecurityException
import java.util.concurrent.TimeUnit

/**
 * One push-and-pull with the server. A failed sync loses nothing (the core keeps every unsent
 * change and applies retried uploads once), so every failure is simply retried with backoff,
 * except those that need a person: a revoked or not yet enrolled tablet, or an app that speaks
 * no protocol version of the server's.
 */
class SyncWorker(context: Context, params: WorkerParameters) : CoroutineWorker(context, params) {
    override suspend fun doWork(): Result {
        val app = applicationContext.repere
        return try {
            val client = app.store.client()
            if (client.enrolment() == null) return Result.success() // nothing to sync with yet
            // Periodic and on-demand work may overlap: one sync at a time in the process.
            lock.withLock { client.sync() }
            app.prefs.lastSyncError = null
            Result.success()
        } catch (e: RepereException) {
            app.prefs.lastSyncError = e.userMessage
            // An app too old (or too new) for the server needs an update, not a retry; an
            // unusable server address needs a new enrolment.
            val needsPerson = e is RepereException.DeviceRevoked || e is RepereException.NotEnrolled ||
                e is RepereException.IncompatibleServer || e is RepereException.InvalidServerAddress
            if (needsPerson) Result.failure() else Result.retry()
        } catch (e: GeneralSecurityException) {
            app.prefs.lastSyncError = "Clé de chiffrement illisible : les données restent sur la tablette."
            Result.failure()
        }
    }

    private companion object {
        val lock = Mutex()
    }
}

object SyncScheduler {
    private const val PERIODIC = "repere-sync-periodic"
    private const val ON_DEMAND = "repere-sync-now"

    private val online = Constraints.Builder().setRequiredNetworkType(NetworkType.CONNECTED).build()

    fun schedulePeriodic(context: Context) {
        val request = PeriodicWorkRequestBuilder<SyncWorker>(15, TimeUnit.MINUTES)
            .setConstraints(online)
            .setBackoffCriteria(BackoffPolicy.EXPONENTIAL, 30, TimeUnit.SECONDS)
            .build()
        // KEEP: enqueuing again at each app start must not push the next run back.
        WorkManager.getInstance(context)
            .enqueueUniquePeriodicWork(PERIODIC, ExistingPeriodicWorkPolicy.KEEP, request)
    }

    /**
     * A one-off sync as soon as the network allows. When the user asks, a pending one (maybe
     * waiting out a backoff) is replaced so it runs now; if one is running, it is cancelled,
     * but its blocking core call completes first and the new one waits on the lock above.
     */
    fun syncNow(context: Context, userAsked: Boolean) {
        val request = OneTimeWorkRequestBuilder<SyncWorker>()
            .setConstraints(online)
            .setBackoffCriteria(BackoffPolicy.EXPONENTIAL, 30, TimeUnit.SECONDS)
            .build()
        val policy = if (userAsked) ExistingWorkPolicy.REPLACE else ExistingWorkPolicy.KEEP
        WorkManager.getInstance(context).enqueueUniqueWork(ON_DEMAND, policy, request)
    }

    /** The state of the on-demand sync, for the sync screen. */
    fun onDemandState(context: Context): Flow<WorkInfo.State?> =
        WorkManager.getInstance(context).getWorkInfosForUniqueWorkFlow(ON_DEMAND)
            .map { infos -> infos.lastOrNull()?.state }
}

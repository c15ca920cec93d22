@file:Suppress("unused", "UNUSED_PARAMETER")
package androidx.work
import android.content.Context
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.emptyFlow
import java.util.concurrent.TimeUnit
class WorkerParameters
abstract class ListenableWorker(val applicationContext: Context) {
    abstract class Result { companion object { fun success(): Result = TODO(); fun retry(): Result = TODO(); fun failure(): Result = TODO() } }
}
abstract class CoroutineWorker(context: Context, params: WorkerParameters) : ListenableWorker(context) { abstract suspend fun doWork(): Result }
enum class BackoffPolicy { EXPONENTIAL, LINEAR }
enum class NetworkType { CONNECTED }
enum class ExistingPeriodicWorkPolicy { KEEP, UPDATE }
enum class ExistingWorkPolicy { KEEP, REPLACE }
class Constraints { class Builder { fun setRequiredNetworkType(t: NetworkType) = this; fun build() = Constraints() } }
open class WorkRequest
class PeriodicWorkRequest : WorkRequest()
class OneTimeWorkRequest : WorkRequest()
class RequestBuilder<R : WorkRequest>(val r: R) { fun setConstraints(c: Constraints) = this; fun setBackoffCriteria(p: BackoffPolicy, d: Long, u: TimeUnit) = this; fun build(): R = r }
inline fun <reified W : ListenableWorker> PeriodicWorkRequestBuilder(n: Long, u: TimeUnit) = RequestBuilder(PeriodicWorkRequest())
inline fun <reified W : ListenableWorker> OneTimeWorkRequestBuilder() = RequestBuilder(OneTimeWorkRequest())
class WorkInfo(val state: State) { enum class State { ENQUEUED, RUNNING, SUCCEEDED, FAILED, BLOCKED, CANCELLED } }
class WorkManager {
    fun enqueueUniquePeriodicWork(name: String, p: ExistingPeriodicWorkPolicy, r: PeriodicWorkRequest) {}
    fun enqueueUniqueWork(name: String, p: ExistingWorkPolicy, r: OneTimeWorkRequest) {}
    fun getWorkInfosForUniqueWorkFlow(name: String): Flow<List<WorkInfo>> = emptyFlow()
    companion object { fun getInstance(c: Context) = WorkManager() }
}

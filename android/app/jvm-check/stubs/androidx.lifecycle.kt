@file:Suppress("unused", "UNUSED_PARAMETER", "UNCHECKED_CAST")
package androidx.lifecycle
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.MainScope
open class ViewModel
open class AndroidViewModel(private val app: android.app.Application) : ViewModel() { fun <T : android.app.Application> getApplication(): T = app as T }
val ViewModel.viewModelScope: CoroutineScope get() = MainScope()
class SavedStateHandle { operator fun <T> get(key: String): T? = null }

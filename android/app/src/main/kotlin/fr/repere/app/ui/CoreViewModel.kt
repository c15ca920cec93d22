package fr.repere.app.ui

import android.app.Application
import androidx.compose.runtime.getValue
import androidx.compose.runtime.mutableStateOf
import androidx.compose.runtime.setValue
import androidx.lifecycle.AndroidViewModel
import androidx.lifecycle.viewModelScope
import fr.repere.app.RepereApplication
import fr.repere.client.RepereClient
import fr.repere.client.userMessage
import fr.repere.ffi.ChangedRecord
import fr.repere.ffi.Commune
import fr.repere.ffi.RepereException
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.flow.filter
import kotlinx.coroutines.flow.onSubscription
import kotlinx.coroutines.launch
import kotlinx.coroutines.withContext
import java.security.GeneralSecurityException

/**
 * What every screen's ViewModel shares: the process's store, and failures turned into the
 * French sentence the core provides (`userMessage`), shown by the screen instead of crashing.
 * RepereClient already runs each call off the main thread.
 */
abstract class CoreViewModel(app: Application) : AndroidViewModel(app) {
    protected val repere = app as RepereApplication

    var error by mutableStateOf<String?>(null)
        protected set
    var busy by mutableStateOf(false)
        private set

    /** Runs [block]; returns null (and sets [error]) if the core refused. */
    protected suspend fun <T> safely(block: suspend RepereClient.() -> T): T? = try {
        repere.store.client().block()
    } catch (e: RepereException) {
        error = e.userMessage
        null
    } catch (e: GeneralSecurityException) {
        error = "Clé de chiffrement de la tablette illisible. Les données restent sur la tablette ; contactez l'administrateur."
        null
    }

    /** A user action: clears the last error, marks the screen busy meanwhile. */
    protected fun launchCore(block: suspend RepereClient.() -> Unit) = viewModelScope.launch {
        error = null
        busy = true
        try {
            safely(block)
        } finally {
            busy = false
        }
    }

    /**
     * Loads now, then again after each committed change [relevant] cares about, local or
     * pulled by a sync. Loading on subscription means no change slips in between.
     */
    protected fun loadAndWatch(relevant: (ChangedRecord) -> Boolean = { true }, load: suspend RepereClient.() -> Unit) {
        viewModelScope.launch {
            val client = safely { this } ?: return@launch
            client.changes
                .onSubscription { safely(load) }
                .filter { batch -> batch.any(relevant) }
                .collect { safely(load) }
        }
    }

    // The commune list is parsed once, on first use: keep that off the main thread.
    suspend fun searchCommunes(prefix: String): List<Commune> =
        withContext(Dispatchers.Default) { RepereClient.searchCommunes(prefix, 8) }

    protected suspend fun communeName(code: String): String =
        withContext(Dispatchers.Default) { RepereClient.commune(code)?.name ?: code }
}

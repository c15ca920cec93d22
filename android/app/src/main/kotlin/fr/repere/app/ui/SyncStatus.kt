package fr.repere.app.ui

import android.app.Application
import android.os.Build
import androidx.compose.foundation.layout.Row
import androidx.compose.foundation.layout.fillMaxWidth
import androidx.compose.foundation.lazy.items
import androidx.compose.material3.Button
import androidx.compose.material3.MaterialTheme
import androidx.compose.material3.OutlinedButton
import androidx.compose.material3.OutlinedTextField
import androidx.compose.material3.Text
import androidx.compose.runtime.Composable
import androidx.compose.runtime.LaunchedEffect
import androidx.compose.runtime.collectAsState
import androidx.compose.runtime.getValue
import androidx.compose.runtime.mutableStateOf
import androidx.compose.runtime.setValue
import androidx.compose.ui.Modifier
import androidx.lifecycle.viewModelScope
import androidx.lifecycle.viewmodel.compose.viewModel
import androidx.work.WorkInfo
import fr.repere.app.sync.SyncScheduler
import fr.repere.client.RepereClient
import fr.repere.ffi.Enrolment
import fr.repere.ffi.RecordKind
import fr.repere.ffi.RecordRef
import fr.repere.ffi.RecordSyncState
import fr.repere.ffi.RepereException
import kotlinx.coroutines.flow.SharingStarted
import kotlinx.coroutines.flow.getAndUpdate
import kotlinx.coroutines.flow.stateIn
import kotlinx.coroutines.launch

data class RecordLine(val id: String, val label: String, val sync: RecordSyncState)

/** The sync screen lists this many unsent records at most (the count says how many in all). */
const val UNSYNCED_SHOWN = 50

class SyncStatusViewModel(app: Application) : CoreViewModel(app) {
    var enrolled by mutableStateOf<Enrolment?>(null)
        private set
    var unsynced by mutableStateOf(0)
        private set
    var lastSyncAt by mutableStateOf<String?>(null)
        private set
    var lastSyncError by mutableStateOf<String?>(null)
        private set
    var records by mutableStateOf<List<RecordLine>>(emptyList())
        private set
    /** Records whose merged version has problems to correct (two tablets' edits combined). */
    var problemCount by mutableStateOf(0)
        private set
    /** Documents kept on the tablet but out of the lists, each as a French sentence. */
    var setAsideLines by mutableStateOf<List<String>>(emptyList())
        private set

    val work = SyncScheduler.onDemandState(app).stateIn(viewModelScope, SharingStarted.WhileSubscribed(5_000), null)

    private val load: suspend RepereClient.() -> Unit = {
        enrolled = enrolment()
        unsynced = unsyncedCount()
        lastSyncAt = lastServerContact()
        lastSyncError = repere.prefs.lastSyncError
        problemCount = withProblems().size
        setAsideLines = setAside().map { it.userMessage }
        // What is not on the server yet, oldest change first, with why (pending, refused…).
        records = unsynced().take(UNSYNCED_SHOWN).map { RecordLine(it.id, describe(it), syncState(it.id)) }
    }

    private suspend fun RepereClient.describe(ref: RecordRef): String = when (ref.kind) {
        RecordKind.YOUTH -> youth(ref.id).let { "Jeune · ${it.firstName ?: it.alias ?: "sans nom"}" }
        RecordKind.CONTACT -> "Visite · ${formatDateTime(contact(ref.id).occurredAt)}"
        RecordKind.TOUR -> "Tournée"
        RecordKind.ACTION -> "Action"
        RecordKind.OUTCOME -> "Solution"
        RecordKind.REVIEW_TASK -> "Réponse à la coordination"
    }

    init {
        loadAndWatch(load = load)
        // A sync that only pushed changes no record event; reload when the worker finishes.
        viewModelScope.launch { work.collect { safely(load) } }
    }

    fun syncNow() = SyncScheduler.syncNow(repere, userAsked = true)
}

@Composable
fun SyncStatusScreen(onEnrol: () -> Unit, vm: SyncStatusViewModel = viewModel()) {
    val work by vm.work.collectAsState()
    ScreenScaffold(title = "État de la synchro", error = vm.error) {
        val enrolled = vm.enrolled
        item { Text(if (enrolled != null) "Serveur : ${enrolled.serverUrl}" else "Tablette non inscrite") }
        item { OutlinedButton(onClick = onEnrol) { Text(if (enrolled == null) "Inscrire la tablette" else "Réinscrire la tablette") } }
        item { Text("Saisies non envoyées : ${vm.unsynced}", style = MaterialTheme.typography.titleMedium) }
        item { Text("Dernière synchro : " + (vm.lastSyncAt?.let { formatDateTime(it) } ?: "jamais")) }
        vm.lastSyncError?.let { item { Text(it, color = MaterialTheme.colorScheme.error) } }
        if (vm.problemCount > 0) item {
            Text("Fiches à corriger après fusion : ${vm.problemCount} (voir les fiches jeunes)", color = MaterialTheme.colorScheme.error)
        }
        if (vm.setAsideLines.isNotEmpty()) {
            item { Text("Mises de côté sur la tablette (${vm.setAsideLines.size})", style = MaterialTheme.typography.titleMedium) }
            vm.setAsideLines.forEach { line -> item { Text(line) } }
        }
        item { Text(workLabel(work)) }
        item {
            Button(onClick = { vm.syncNow() }, enabled = enrolled != null && work != WorkInfo.State.RUNNING) {
                Text("Synchroniser")
            }
        }
        item { Text("Pas encore sur le serveur", style = MaterialTheme.typography.titleMedium) }
        if (vm.unsynced > UNSYNCED_SHOWN) item { Text("(les $UNSYNCED_SHOWN plus anciennes sur ${vm.unsynced})") }
        items(vm.records, key = { it.id }) { r ->
            Row(Modifier.fillMaxWidth()) {
                Text(r.label, Modifier.weight(1f))
                SyncBadge(r.sync)
            }
        }
    }
}

private fun workLabel(state: WorkInfo.State?): String = when (state) {
    WorkInfo.State.ENQUEUED, WorkInfo.State.BLOCKED -> "En attente du réseau (ou d'un nouvel essai)…"
    WorkInfo.State.RUNNING -> "Synchronisation en cours…"
    WorkInfo.State.SUCCEEDED -> "Dernière demande : terminée"
    WorkInfo.State.FAILED -> "Dernière demande : échec (voir le message)"
    WorkInfo.State.CANCELLED, null -> ""
}

class EnrolViewModel(app: Application) : CoreViewModel(app) {
    var serverUrl by mutableStateOf("https://")
    var code by mutableStateOf("")
    var deviceLabel by mutableStateOf(Build.MODEL.orEmpty())
    var done by mutableStateOf(false)
        private set
    /** Set when a change of team was refused: that many records could not be sent first. */
    var unsent by mutableStateOf<Int?>(null)
        private set

    init {
        // Opened from the QR code's link: its server and code, to check and confirm.
        val link = repere.enrolmentLink.getAndUpdate { null }
        if (link != null) {
            serverUrl = link.server
            code = link.code
        } else {
            launchCore { enrolment()?.let { serverUrl = it.serverUrl } }
        }
    }

    /**
     * Re-enrolling into the same team keeps every record and unsent change. Into another
     * team, changes that cannot be sent first make the core refuse; [force] (with the same
     * code) then sets them aside on the tablet.
     */
    fun submit(force: Boolean = false) = launchCore {
        try {
            enrol(serverUrl.trim(), code.trim(), deviceLabel.trim(), force)
        } catch (e: RepereException.UnsentChanges) {
            unsent = e.count.toInt()
            error = e.userMessage
            return@launchCore
        }
        unsent = null
        SyncScheduler.syncNow(repere, userAsked = true)
        done = true
    }
}

@Composable
fun EnrolScreen(onDone: () -> Unit, vm: EnrolViewModel = viewModel()) {
    LaunchedEffect(vm.done) { if (vm.done) onDone() }
    ScreenScaffold(title = "Inscription de la tablette", error = vm.error) {
        item { OutlinedTextField(vm.serverUrl, { vm.serverUrl = it }, Modifier.fillMaxWidth(), label = { Text("Adresse du serveur") }, singleLine = true) }
        item { OutlinedTextField(vm.code, { vm.code = it }, Modifier.fillMaxWidth(), label = { Text("Code d'inscription") }, singleLine = true) }
        item { OutlinedTextField(vm.deviceLabel, { vm.deviceLabel = it }, Modifier.fillMaxWidth(), label = { Text("Nom de la tablette") }, singleLine = true) }
        item {
            Button(onClick = { vm.submit() }, enabled = !vm.busy && vm.code.isNotBlank()) {
                Text(if (vm.busy) "Inscription…" else "Inscrire")
            }
        }
        val unsent = vm.unsent
        if (unsent != null) item {
            OutlinedButton(onClick = { vm.submit(force = true) }, enabled = !vm.busy && vm.code.isNotBlank()) {
                Text("Changer d'équipe quand même (avec le même code) : $unsent fiche(s) mise(s) de côté, jamais envoyée(s)")
            }
        }
    }
}

@file:OptIn(ExperimentalMaterial3Api::class)

package fr.repere.app.ui

import android.app.Application
import androidx.compose.foundation.layout.Column
import androidx.compose.foundation.layout.Row
import androidx.compose.foundation.layout.fillMaxWidth
import androidx.compose.foundation.layout.padding
import androidx.compose.foundation.lazy.items
import androidx.compose.material3.Button
import androidx.compose.material3.Card
import androidx.compose.material3.ExperimentalMaterial3Api
import androidx.compose.material3.FilterChip
import androidx.compose.material3.MaterialTheme
import androidx.compose.material3.OutlinedButton
import androidx.compose.material3.OutlinedTextField
import androidx.compose.material3.Text
import androidx.compose.runtime.Composable
import androidx.compose.runtime.getValue
import androidx.compose.runtime.mutableStateOf
import androidx.compose.runtime.setValue
import androidx.compose.ui.Modifier
import androidx.compose.ui.unit.dp
import androidx.lifecycle.SavedStateHandle
import androidx.lifecycle.viewModelScope
import androidx.lifecycle.viewmodel.compose.viewModel
import fr.repere.app.sync.SyncScheduler
import fr.repere.client.RepereClient
import fr.repere.ffi.AccessRequest
import fr.repere.ffi.AccessState
import fr.repere.ffi.LentFile
import fr.repere.ffi.LentFileSummary
import kotlinx.coroutines.launch
import java.time.LocalDate

/** The durations offered, in minutes; the core's default (2 h) is picked first. */
private val durations = listOf(30, 60, 120, 240, 480)

private fun durationLabel(minutes: Int): String = if (minutes < 60) "$minutes min" else "${minutes / 60} h"

/**
 * « Accès exceptionnel »: a member asks, with a reason, to read one file of another team (its
 * reference comes from that team) for a while. The request leaves with the next sync (asked
 * at once here); the files lent and the requests' answers refresh by themselves, and a lent
 * file leaves the list at its end, by the tablet's clock.
 */
class AccessViewModel(app: Application) : CoreViewModel(app) {
    private val limits = RepereClient.accessLimits()
    var reference by mutableStateOf("")
    var reason by mutableStateOf("")
    var minutes by mutableStateOf(limits.defaultMinutes.toInt())
    var requests by mutableStateOf<List<AccessRequest>>(emptyList())
        private set
    var lent by mutableStateOf<List<LentFileSummary>>(emptyList())
        private set
    /** « Demande enregistrée » until the form is used again. */
    var sent by mutableStateOf(false)
        private set

    val reasonHint: String get() =
        "${reason.trim().length} caractères (de ${limits.reasonMinChars} à ${limits.reasonMaxChars})"

    init {
        viewModelScope.launch { safely { lentFilesFlow().collect { lent = it } } }
        viewModelScope.launch { safely { accessRequestsFlow().collect { requests = it } } }
    }

    fun ask() = launchCore {
        sent = false
        requestAccess(reference.trim(), reason, minutes)
        reference = ""
        reason = ""
        minutes = limits.defaultMinutes.toInt()
        sent = true
        SyncScheduler.syncNow(repere, userAsked = true)
    }
}

private fun AccessState.line(): String = when (this) {
    AccessState.Pending -> "En attente : partira à la prochaine synchronisation"
    is AccessState.Granted -> "Accordé jusqu'à ${formatTime(expiresAt)}"
    is AccessState.Refused -> "Refusé : $userMessage"
}

@Composable
fun AccessScreen(onOpen: (String) -> Unit, vm: AccessViewModel = viewModel()) {
    ScreenScaffold(title = "Accès exceptionnel", error = vm.error) {
        item {
            Text(
                "Pour lire la fiche d'un jeune suivi par une autre équipe (urgence, situation partagée). " +
                    "La demande et son motif sont visibles de la coordination de cette équipe ; la fiche " +
                    "est en lecture seule et quitte la tablette à la fin de l'accès.",
            )
        }
        item { OutlinedTextField(vm.reference, { vm.reference = it }, Modifier.fillMaxWidth(), label = { Text("Référence de la fiche") }, singleLine = true) }
        item {
            Column {
                OutlinedTextField(vm.reason, { vm.reason = it }, Modifier.fillMaxWidth(), label = { Text("Motif") }, minLines = 3)
                Text(vm.reasonHint, style = MaterialTheme.typography.bodySmall)
            }
        }
        item {
            Row {
                durations.forEach { m ->
                    FilterChip(selected = vm.minutes == m, onClick = { vm.minutes = m }, label = { Text(durationLabel(m)) })
                }
            }
        }
        item { Button(onClick = { vm.ask() }, enabled = !vm.busy && vm.reference.isNotBlank()) { Text("Demander l'accès") } }
        if (vm.sent) item { Text("Demande enregistrée : elle part avec la synchronisation.", color = MaterialTheme.colorScheme.primary) }

        item { Text("Fiches prêtées (${vm.lent.size})", style = MaterialTheme.typography.titleMedium) }
        items(vm.lent, key = { it.grantId }) { f ->
            Card(Modifier.fillMaxWidth()) {
                Column(Modifier.padding(12.dp)) {
                    Text(f.displayName, style = MaterialTheme.typography.titleSmall)
                    Text("Équipe : ${f.teamName} · Accès jusqu'à ${formatTime(f.expiresAt)}")
                    OutlinedButton(onClick = { onOpen(f.youthId) }) { Text("Ouvrir") }
                }
            }
        }

        if (vm.requests.isNotEmpty()) item { Text("Demandes", style = MaterialTheme.typography.titleMedium) }
        items(vm.requests, key = { it.id }) { r ->
            Column {
                Text("${formatDateTime(r.askedAt)} · ${durationLabel(r.minutes.toInt())} · ${r.youthId}", style = MaterialTheme.typography.bodySmall)
                val color = if (r.state is AccessState.Refused) MaterialTheme.colorScheme.error else MaterialTheme.colorScheme.onSurfaceVariant
                Text(r.state.line(), color = color)
            }
        }
    }
}

/** A lent file, read-only, while it lasts: null once over or no longer lent. */
class LentFileViewModel(app: Application, handle: SavedStateHandle) : CoreViewModel(app) {
    private val id: String = checkNotNull(handle["id"])
    var file by mutableStateOf<LentFile?>(null)
        private set
    var loaded by mutableStateOf(false)
        private set
    /** Commune names by INSEE code, for the visits and the home commune. */
    var communes by mutableStateOf<Map<String, String>>(emptyMap())
        private set

    init {
        viewModelScope.launch {
            safely {
                lentFileFlow(id).collect { f ->
                    val codes = listOfNotNull(f?.youth?.homeCommune) + f?.visits.orEmpty().map { it.visit.commune }
                    communes = codes.distinct().associateWith { communeName(it) }
                    file = f
                    loaded = true
                }
            }
        }
    }
}

@Composable
fun LentFileScreen(vm: LentFileViewModel = viewModel()) {
    val f = vm.file
    ScreenScaffold(title = f?.let { "Fiche prêtée" } ?: "Accès exceptionnel", error = vm.error) {
        if (f == null) {
            if (vm.loaded) item { Text("Accès terminé : la fiche n'est plus sur la tablette.") }
            return@ScreenScaffold
        }
        val y = f.youth
        item {
            Card(Modifier.fillMaxWidth()) {
                Column(Modifier.padding(12.dp)) {
                    Text("Accès jusqu'à ${formatTime(f.expiresAt)}", style = MaterialTheme.typography.titleMedium, color = MaterialTheme.colorScheme.error)
                    Text("Fiche de l'équipe ${f.teamName}, en lecture seule")
                }
            }
        }
        item {
            Column {
                Text(listOfNotNull(y.firstName, y.lastName).joinToString(" ").ifBlank { y.alias ?: "(sans nom)" }, style = MaterialTheme.typography.titleMedium)
                y.alias?.let { Text("Surnom : $it") }
                y.birthYear?.let { Text("Né(e) en $it") }
                y.homeCommune?.let { Text("Habite à ${vm.communes[it] ?: it}") }
                y.phone?.let { Text("Téléphone : $it") }
                Text("Situation : ${y.situation.label()}")
                Text("Statut : ${y.status.label()}")
                Text("Premier contact : ${formatDay(LocalDate.parse(y.firstContactDate))}")
            }
        }
        item { Text("Visites (${f.visits.size})", style = MaterialTheme.typography.titleMedium) }
        items(f.visits, key = { it.id }) { v ->
            Card(Modifier.fillMaxWidth()) {
                Column(Modifier.padding(12.dp)) {
                    Text("${formatDateTime(v.visit.occurredAt)} · ${vm.communes[v.visit.commune] ?: v.visit.commune} · ${v.visit.kind.label()}", style = MaterialTheme.typography.titleSmall)
                    if (v.visit.notes.isNotBlank()) Text(v.visit.notes)
                    v.visit.nextStep?.let { Text("Prochaine étape : $it") }
                }
            }
        }
        item { Text("Actions (${f.actions.size})", style = MaterialTheme.typography.titleMedium) }
        items(f.actions, key = { it.id }) { a ->
            Text("${a.action.kind.label()} · à partir du ${formatDay(LocalDate.parse(a.action.startDate))} · ${a.action.status.label()}")
        }
        item { Text("Résultats (${f.outcomes.size})", style = MaterialTheme.typography.titleMedium) }
        items(f.outcomes, key = { it.id }) { o ->
            Text("${formatDay(LocalDate.parse(o.outcome.date))} · ${o.outcome.kind.label()}")
        }
    }
}

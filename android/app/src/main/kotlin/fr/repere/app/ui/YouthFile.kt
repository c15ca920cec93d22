package fr.repere.app.ui

import android.app.Application
import androidx.compose.foundation.layout.Column
import androidx.compose.foundation.layout.fillMaxWidth
import androidx.compose.foundation.layout.padding
import androidx.compose.foundation.lazy.items
import androidx.compose.material3.Card
import androidx.compose.material3.MaterialTheme
import androidx.compose.material3.OutlinedButton
import androidx.compose.material3.Text
import androidx.compose.runtime.Composable
import androidx.compose.runtime.getValue
import androidx.compose.runtime.mutableStateOf
import androidx.compose.runtime.setValue
import androidx.compose.ui.Modifier
import androidx.compose.ui.unit.dp
import androidx.lifecycle.SavedStateHandle
import androidx.lifecycle.viewmodel.compose.viewModel
import fr.repere.ffi.Contact
import fr.repere.ffi.RecordKind
import fr.repere.ffi.RecordSyncState
import fr.repere.ffi.Youth
import java.time.LocalDate
import java.time.OffsetDateTime

data class ContactLine(
    val id: String,
    val contact: Contact,
    val communeName: String,
    val sync: RecordSyncState,
    val conflicts: Int,
    /** Problems of the visit as merged from two tablets' edits, to correct in its form. */
    val problems: List<String>,
)

class YouthFileViewModel(app: Application, handle: SavedStateHandle) : CoreViewModel(app) {
    val id: String = checkNotNull(handle["id"])
    var record by mutableStateOf<Youth?>(null)
        private set
    var homeCommuneName by mutableStateOf<String?>(null)
        private set
    var sync by mutableStateOf<RecordSyncState?>(null)
        private set
    var conflictCount by mutableStateOf(0)
        private set
    var problemLines by mutableStateOf<List<String>>(emptyList())
        private set
    var contactLines by mutableStateOf<List<ContactLine>>(emptyList())
        private set

    init {
        // Any contact may be a new one of this person (contact events do not say whose).
        loadAndWatch({ it.id == id || it.kind == RecordKind.CONTACT }) {
            val y = youth(id)
            record = y
            homeCommuneName = y.homeCommune?.let { communeName(it) }
            sync = syncState(id)
            conflictCount = conflicts(id).size
            problemLines = describeProblems(problems(id))
            // The core gives contact ids only: one call per contact for the line, its state
            // and its conflicts.
            contactLines = contactsOf(id).map { cid ->
                val c = contact(cid)
                ContactLine(cid, c, communeName(c.commune), syncState(cid), conflicts(cid).size, describeProblems(problems(cid)))
            }.sortedByDescending { OffsetDateTime.parse(it.contact.occurredAt).toInstant() }
        }
    }
}

@Composable
fun YouthFileScreen(onConflict: (String) -> Unit, onEditVisit: (String) -> Unit, vm: YouthFileViewModel = viewModel()) {
    val y = vm.record
    ScreenScaffold(title = y?.firstName ?: y?.alias ?: "Fiche jeune", error = vm.error) {
        if (y == null) return@ScreenScaffold
        item {
            Card(Modifier.fillMaxWidth()) {
                Column(Modifier.padding(12.dp)) {
                    y.alias?.let { Text("Surnom : $it") }
                    y.birthYear?.let { Text("Né(e) en $it") }
                    vm.homeCommuneName?.let { Text("Habite à $it") }
                    Text("Situation : ${y.situation.label()}")
                    Text("Statut : ${y.status.label()}")
                    Text("Premier contact : ${formatDay(LocalDate.parse(y.firstContactDate))}")
                    SyncBadge(vm.sync)
                    vm.problemLines.forEach { Text("À corriger : $it", color = MaterialTheme.colorScheme.error) }
                }
            }
        }
        if (vm.conflictCount > 0) item {
            OutlinedButton(onClick = { onConflict(vm.id) }) { Text("${vm.conflictCount} conflit(s) à résoudre") }
        }
        item { Text("Contacts (${vm.contactLines.size})", style = MaterialTheme.typography.titleMedium) }
        items(vm.contactLines, key = { it.id }) { line ->
            Card(Modifier.fillMaxWidth()) {
                Column(Modifier.padding(12.dp)) {
                    val c = line.contact
                    Text("${formatDateTime(c.occurredAt)} · ${line.communeName} · ${c.kind.label()}", style = MaterialTheme.typography.titleSmall)
                    if (c.notes.isNotBlank()) Text(c.notes, maxLines = 4)
                    if (c.needs.isNotEmpty()) Text("Besoins : " + c.needs.joinToString { it.label() })
                    c.nextStep?.let { Text("Prochaine étape : $it") }
                    SyncBadge(line.sync)
                    line.problems.forEach { Text("À corriger : $it", color = MaterialTheme.colorScheme.error) }
                    OutlinedButton(onClick = { onEditVisit(line.id) }) { Text(if (line.problems.isEmpty()) "Modifier" else "Corriger") }
                    if (line.conflicts > 0) OutlinedButton(onClick = { onConflict(line.id) }) { Text("Conflit à résoudre") }
                }
            }
        }
    }
}

@file:OptIn(ExperimentalMaterial3Api::class)

package fr.repere.app.ui

import android.app.Application
import androidx.compose.foundation.horizontalScroll
import androidx.compose.foundation.layout.Arrangement
import androidx.compose.foundation.layout.Row
import androidx.compose.foundation.layout.fillMaxWidth
import androidx.compose.foundation.rememberScrollState
import androidx.compose.material3.Button
import androidx.compose.material3.ExperimentalMaterial3Api
import androidx.compose.material3.FilterChip
import androidx.compose.material3.MaterialTheme
import androidx.compose.material3.OutlinedTextField
import androidx.compose.material3.Text
import androidx.compose.runtime.Composable
import androidx.compose.runtime.LaunchedEffect
import androidx.compose.runtime.getValue
import androidx.compose.runtime.mutableStateOf
import androidx.compose.runtime.setValue
import androidx.compose.ui.Modifier
import androidx.compose.ui.unit.dp
import androidx.lifecycle.SavedStateHandle
import androidx.lifecycle.viewModelScope
import androidx.lifecycle.viewmodel.compose.viewModel
import fr.repere.ffi.Contact
import fr.repere.ffi.ContactKind
import fr.repere.ffi.Need
import fr.repere.ffi.VisitDecision
import kotlinx.coroutines.flow.filter
import kotlinx.coroutines.launch

/**
 * A visit's form. It keeps the record it was filled from ([seen], which carries the version
 * read) and saves `seen.copy(...)`: the core writes only the fields changed here, so what the
 * other tablet of the binôme synced meanwhile (needs, a sentence in the notes) stays. The form
 * is not refilled when a sync changes the visit: that would drop what the user is typing.
 * It says so instead.
 */
class VisitEditViewModel(app: Application, handle: SavedStateHandle) : CoreViewModel(app) {
    val id: String = checkNotNull(handle["id"])
    private var seen by mutableStateOf<Contact?>(null)
    val loaded: Boolean get() = seen != null

    var kind by mutableStateOf(ContactKind.STREET)
    var notes by mutableStateOf("")
    var needs by mutableStateOf<Set<Need>>(emptySet())
    var nextStep by mutableStateOf("")
    /** What is wrong with the visit as merged from two tablets' edits (see the core's `problems`). */
    var problemLines by mutableStateOf<List<String>>(emptyList())
        private set
    var changedElsewhere by mutableStateOf(false)
        private set
    /** The coordination's latest decision on this visit (a flag says what to do). */
    var decision by mutableStateOf<VisitDecision?>(null)
        private set
    var saved by mutableStateOf(false)
        private set

    init {
        launchCore {
            fill(contact(id))
            problemLines = describeProblems(problems(id))
            decision = visitDecision(id)
        }
        viewModelScope.launch {
            val client = safely { this } ?: return@launch
            client.changes
                .filter { batch -> batch.any { it.id == id && it.remote } }
                .collect { changedElsewhere = true }
        }
    }

    private fun fill(c: Contact) {
        seen = c
        kind = c.kind
        notes = c.notes
        needs = c.needs.toSet()
        nextStep = c.nextStep.orEmpty()
        changedElsewhere = false
    }

    fun toggle(need: Need) {
        needs = if (need in needs) needs - need else needs + need
    }

    fun save() = launchCore {
        val form = seen ?: return@launchCore
        // No trimming: an untouched field must read as unchanged, byte for byte.
        val stored = updateContact(
            form.copy(kind = kind, notes = notes, needs = needs.toList(), nextStep = nextStep.ifBlank { null }),
        )
        problemLines = describeProblems(problems(id))
        // Merged with what came from elsewhere: a further edit starts from this version.
        fill(stored)
        saved = problemLines.isEmpty()
    }
}

@Composable
fun VisitEditScreen(onSaved: () -> Unit, vm: VisitEditViewModel = viewModel()) {
    LaunchedEffect(vm.saved) { if (vm.saved) onSaved() }
    ScreenScaffold(title = "Modifier la visite", error = vm.error) {
        if (!vm.loaded) return@ScreenScaffold
        if (vm.changedElsewhere) item {
            Text(
                "Cette visite a été modifiée sur une autre tablette depuis l'ouverture du formulaire : " +
                    "vos changements s'y ajouteront sans effacer les siens (un même champ changé des deux côtés sera signalé en conflit).",
                color = MaterialTheme.colorScheme.primary,
            )
        }
        vm.decision?.let { d ->
            item {
                val color = if (d.asksForAction) MaterialTheme.colorScheme.error else MaterialTheme.colorScheme.primary
                Text(d.state.label() + (if (d.reason.isBlank()) "" else " : ${d.reason}") + " (${formatDateTime(d.at)})", color = color)
            }
        }
        if (vm.problemLines.isNotEmpty()) item {
            Text("À corriger (modifications de deux tablettes fusionnées) :", color = MaterialTheme.colorScheme.error)
        }
        vm.problemLines.forEach { line -> item { Text(line, color = MaterialTheme.colorScheme.error) } }
        item { Text("Lieu du contact", style = MaterialTheme.typography.titleMedium) }
        if (vm.kind == ContactKind.FROM_NEWER_VERSION) item { Text("Actuellement : $NEWER_VERSION_LABEL") }
        item {
            Row(Modifier.horizontalScroll(rememberScrollState()), horizontalArrangement = Arrangement.spacedBy(8.dp)) {
                pickableContactKinds.forEach { k ->
                    FilterChip(selected = vm.kind == k, onClick = { vm.kind = k }, label = { Text(k.label()) })
                }
            }
        }
        item { Text("Besoins", style = MaterialTheme.typography.titleMedium) }
        item {
            Row(Modifier.horizontalScroll(rememberScrollState()), horizontalArrangement = Arrangement.spacedBy(8.dp)) {
                pickableNeeds.forEach { need ->
                    FilterChip(selected = need in vm.needs, onClick = { vm.toggle(need) }, label = { Text(need.label()) })
                }
            }
        }
        if (Need.FROM_NEWER_VERSION in vm.needs) item { Text("Et une $NEWER_VERSION_LABEL (gardée telle quelle)") }
        item {
            OutlinedTextField(vm.notes, { vm.notes = it }, Modifier.fillMaxWidth(), label = { Text("Notes") }, minLines = 3)
        }
        item {
            OutlinedTextField(vm.nextStep, { vm.nextStep = it }, Modifier.fillMaxWidth(), label = { Text("Prochaine étape") }, singleLine = true)
        }
        item {
            Button(onClick = { vm.save() }, enabled = !vm.busy) { Text("Enregistrer") }
        }
    }
}

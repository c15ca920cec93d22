package fr.repere.app.ui

import android.app.Application
import androidx.compose.foundation.layout.Column
import androidx.compose.foundation.layout.fillMaxWidth
import androidx.compose.foundation.layout.padding
import androidx.compose.material3.Button
import androidx.compose.material3.Card
import androidx.compose.material3.MaterialTheme
import androidx.compose.material3.Text
import androidx.compose.runtime.Composable
import androidx.compose.runtime.LaunchedEffect
import androidx.compose.runtime.getValue
import androidx.compose.runtime.mutableStateOf
import androidx.compose.runtime.setValue
import androidx.compose.ui.Modifier
import androidx.compose.ui.unit.dp
import androidx.lifecycle.SavedStateHandle
import androidx.lifecycle.viewmodel.compose.viewModel
import fr.repere.ffi.ConflictValue
import fr.repere.ffi.FieldConflict

/** One record's fields edited at the same time on two tablets: the user keeps one value. */
class ConflictViewModel(app: Application, handle: SavedStateHandle) : CoreViewModel(app) {
    val id: String = checkNotNull(handle["id"])
    var fields by mutableStateOf<List<FieldConflict>>(emptyList())
        private set
    var loaded by mutableStateOf(false)
        private set
    /** Roster names of the members who wrote the values (names are personal data: never logged). */
    private var names by mutableStateOf<Map<String, String?>>(emptyMap())

    init {
        loadAndWatch({ it.id == id }) {
            val found = conflicts(id)
            names = found.flatMap { c -> c.values.mapNotNull { it.memberId } }.distinct().associateWith { memberName(it) }
            fields = found
            loaded = true
        }
    }

    fun keep(field: String, value: ConflictValue) = launchCore { resolveConflict(id, field, value.valueJson) }

    /**
     * Who wrote the value and when: the member's name from the roster, and the writer's
     * device clock, which may be wrong: said so on screen.
     */
    fun describe(value: ConflictValue): String {
        val who = when (val member = value.memberId) {
            null -> UNKNOWN_MEMBER_LABEL
            repere.prefs.memberId -> "vous"
            else -> names[member] ?: UNKNOWN_MEMBER_LABEL
        }
        val at = value.writtenAt?.let { "le ${formatDateTime(it)} (heure de sa tablette)" } ?: "à une date inconnue"
        return "Saisi par $who, $at"
    }
}

@Composable
fun ConflictScreen(onDone: () -> Unit, vm: ConflictViewModel = viewModel()) {
    LaunchedEffect(vm.loaded, vm.fields) { if (vm.loaded && vm.fields.isEmpty()) onDone() }
    ScreenScaffold(title = "Résolution de conflit", error = vm.error) {
        vm.fields.forEach { conflict ->
            item(key = conflict.field) {
                Text(fieldLabels[conflict.field] ?: conflict.field, style = MaterialTheme.typography.titleMedium)
            }
            conflict.values.forEachIndexed { i, value ->
                item(key = "${conflict.field}#$i") {
                    Card(Modifier.fillMaxWidth()) {
                        Column(Modifier.padding(12.dp)) {
                            Text(displayJson(conflict.field, value.valueJson), style = MaterialTheme.typography.titleSmall)
                            Text(vm.describe(value), style = MaterialTheme.typography.bodySmall)
                            Button(onClick = { vm.keep(conflict.field, value) }, enabled = !vm.busy) { Text("Garder cette valeur") }
                        }
                    }
                }
            }
        }
    }
}

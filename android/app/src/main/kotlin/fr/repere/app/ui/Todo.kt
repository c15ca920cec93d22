package fr.repere.app.ui

import android.app.Application
import androidx.compose.foundation.clickable
import androidx.compose.foundation.layout.Column
import androidx.compose.foundation.layout.fillMaxWidth
import androidx.compose.foundation.layout.padding
import androidx.compose.foundation.lazy.items
import androidx.compose.material3.AlertDialog
import androidx.compose.material3.Card
import androidx.compose.material3.MaterialTheme
import androidx.compose.material3.OutlinedTextField
import androidx.compose.material3.Text
import androidx.compose.material3.TextButton
import androidx.compose.runtime.Composable
import androidx.compose.runtime.getValue
import androidx.compose.runtime.mutableStateOf
import androidx.compose.runtime.remember
import androidx.compose.runtime.setValue
import androidx.compose.ui.Modifier
import androidx.compose.ui.unit.dp
import androidx.lifecycle.viewModelScope
import androidx.lifecycle.viewmodel.compose.viewModel
import fr.repere.ffi.RecordKind
import fr.repere.ffi.TodoItem
import fr.repere.ffi.TodoReason
import kotlinx.coroutines.launch
import java.time.LocalDate

/** How many lines of « à faire » the screen and the tour's button show. */
const val TODO_LIMIT = 100

/** « À faire »: the core's list, most urgent first, queried again after every change. */
class TodoViewModel(app: Application) : CoreViewModel(app) {
    var items by mutableStateOf<List<TodoItem>>(emptyList())
        private set
    var loaded by mutableStateOf(false)
        private set
    /** The coordinator's question being answered, if any. */
    var answering by mutableStateOf<TodoItem?>(null)

    init {
        viewModelScope.launch {
            safely {
                todoFlow(TODO_LIMIT).collect {
                    items = it
                    loaded = true
                }
            }
        }
    }

    fun answer(taskId: String, text: String) = launchCore {
        answerReviewTask(taskId, text.trim())
        answering = null
    }
}

/** Where a line of « à faire » opens. */
sealed interface TodoTarget {
    data class YouthFile(val youthId: String) : TodoTarget
    data class Visit(val visitId: String) : TodoTarget
    data class Conflict(val recordId: String) : TodoTarget
}

private fun TodoItem.target(): TodoTarget? = when {
    reason == TodoReason.CONFLICT -> TodoTarget.Conflict(id)
    // A visit to correct opens its form; the others, the young person's file.
    reason == TodoReason.PROBLEMS && kind == RecordKind.CONTACT -> TodoTarget.Visit(id)
    else -> youthIds.firstOrNull()?.let { TodoTarget.YouthFile(it) }
        ?: if (kind == RecordKind.CONTACT) TodoTarget.Visit(id) else null
}

/** The detail as the field worker reads it: problems and conflicts with French field names. */
private fun TodoItem.detailLines(): List<String> = when (reason) {
    TodoReason.PROBLEMS -> describeProblems(detail)
    TodoReason.CONFLICT -> listOf("Champs : " + detail.split(", ").joinToString { fieldLabels[it] ?: it })
    TodoReason.OPEN_QUESTION -> listOfNotNull(detail.ifBlank { null }, askedBy?.let { "Posée par $it" })
    else -> listOfNotNull(detail.ifBlank { null })
}

@Composable
fun TodoScreen(onOpen: (TodoTarget) -> Unit, vm: TodoViewModel = viewModel()) {
    ScreenScaffold(title = "À faire (${vm.items.size})", error = vm.error) {
        if (vm.loaded && vm.items.isEmpty()) item { Text("Rien à faire pour l'instant.") }
        items(vm.items, key = { "${it.reason}/${it.id}" }) { item ->
            val target = item.target()
            val open = {
                if (item.reason == TodoReason.OPEN_QUESTION) vm.answering = item else target?.let(onOpen)
                Unit
            }
            Card(Modifier.fillMaxWidth().clickable(onClick = open)) {
                Column(Modifier.padding(12.dp)) {
                    val urgent = item.reason == TodoReason.NEXT_STEP_OVERDUE || item.reason == TodoReason.REJECTED
                    Text(
                        item.reason.label(), style = MaterialTheme.typography.labelSmall,
                        color = if (urgent) MaterialTheme.colorScheme.error else MaterialTheme.colorScheme.primary,
                    )
                    Text(item.youthNames.joinToString(", ").ifBlank { "—" }, style = MaterialTheme.typography.titleSmall)
                    Text(listOfNotNull(item.place, item.date?.let { formatDay(LocalDate.parse(it)) }).joinToString(" · "))
                    item.detailLines().forEach { Text(it, maxLines = 3) }
                }
            }
        }
    }
    vm.answering?.let { question ->
        AnswerDialog(question.detail, vm.error, vm.busy, onDismiss = { vm.answering = null }) { vm.answer(question.id, it) }
    }
}

/** Answers a coordinator's question about a visit; the answer syncs like any edit. */
@Composable
fun AnswerDialog(question: String, error: String?, busy: Boolean, onDismiss: () -> Unit, onSend: (String) -> Unit) {
    var answer by remember { mutableStateOf("") }
    AlertDialog(
        onDismissRequest = onDismiss,
        title = { Text("Question de la coordination") },
        text = {
            Column {
                Text(question)
                if (error != null) Text(error, color = MaterialTheme.colorScheme.error)
                OutlinedTextField(answer, { answer = it }, Modifier.fillMaxWidth(), label = { Text("Réponse") }, minLines = 3)
            }
        },
        confirmButton = { TextButton(onClick = { onSend(answer) }, enabled = answer.isNotBlank() && !busy) { Text("Envoyer") } },
        dismissButton = { TextButton(onClick = onDismiss) { Text("Annuler") } },
    )
}

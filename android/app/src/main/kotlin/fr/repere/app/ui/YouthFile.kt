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
import androidx.compose.material3.TextButton
import androidx.compose.runtime.Composable
import androidx.compose.runtime.getValue
import androidx.compose.runtime.mutableStateOf
import androidx.compose.runtime.setValue
import androidx.compose.ui.Modifier
import androidx.compose.ui.unit.dp
import androidx.lifecycle.SavedStateHandle
import androidx.lifecycle.viewModelScope
import androidx.lifecycle.viewmodel.compose.viewModel
import fr.repere.ffi.ActionStatus
import fr.repere.ffi.ActionSummary
import fr.repere.ffi.OutcomeSummary
import fr.repere.ffi.QuestionSummary
import fr.repere.ffi.RecordSyncState
import fr.repere.ffi.VisitSummary
import fr.repere.ffi.Youth
import fr.repere.ffi.YouthFile
import kotlinx.coroutines.launch
import java.time.LocalDate

/** How many lines of each list the file shows at first, and each « Voir plus » adds. */
private const val PAGE = 20

/**
 * Fiche jeune: the core's youth file (visits, actions, outcomes, open questions, with their
 * totals) in one query, queried again after every change; plus the person's own record for
 * the identity card, its sync state, conflicts and problems. « Voir plus » reads the next
 * page of a list (`youthVisits`, `youthActions`, `youthOutcomes`); a reload keeps as many
 * lines as were shown.
 */
class YouthFileViewModel(app: Application, handle: SavedStateHandle) : CoreViewModel(app) {
    val id: String = checkNotNull(handle["id"])
    var file by mutableStateOf<YouthFile?>(null)
        private set
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
    /** The coordinator's question being answered, if any. */
    var answering by mutableStateOf<QuestionSummary?>(null)
    /** The lines shown: the file's first page, then the pages « Voir plus » added. */
    var visits by mutableStateOf<List<VisitSummary>>(emptyList())
        private set
    var actions by mutableStateOf<List<ActionSummary>>(emptyList())
        private set
    var outcomes by mutableStateOf<List<OutcomeSummary>>(emptyList())
        private set

    init {
        viewModelScope.launch {
            safely {
                youthFileFlow(id, PAGE).collect { loaded ->
                    // As many lines as were shown before the change, read again.
                    visits = upTo(loaded.visits, visits.size, loaded.visitCount) { from, n -> youthVisits(id, from, n) }
                    actions = upTo(loaded.actions, actions.size, loaded.actionCount) { from, n -> youthActions(id, from, n) }
                    outcomes = upTo(loaded.outcomes, outcomes.size, loaded.outcomeCount) { from, n -> youthOutcomes(id, from, n) }
                    val y = youth(id)
                    record = y
                    homeCommuneName = y.homeCommune?.let { communeName(it) }
                    sync = syncState(id)
                    conflictCount = conflicts(id).size
                    problemLines = describeProblems(problems(id))
                    file = loaded
                }
            }
        }
    }

    fun moreVisits() = launchCore { visits = visits + youthVisits(id, visits.size, PAGE) }
    fun moreActions() = launchCore { actions = actions + youthActions(id, actions.size, PAGE) }
    fun moreOutcomes() = launchCore { outcomes = outcomes + youthOutcomes(id, outcomes.size, PAGE) }

    /** The file's first page of a list, followed by the next ones up to [shown] lines. */
    private suspend fun <T> upTo(first: List<T>, shown: Int, total: UInt, page: suspend (Int, Int) -> List<T>): List<T> =
        if (shown <= first.size || first.size.toUInt() >= total) first else first + page(first.size, shown - first.size)

    /** « Marquer fait »: an ordinary edit of the action as read, only its status changed. */
    fun markDone(actionId: String) = launchCore {
        updateAction(action(actionId).copy(status = ActionStatus.DONE))
    }

    fun answer(taskId: String, text: String) = launchCore {
        answerReviewTask(taskId, text.trim())
        answering = null
    }
}

@Composable
fun YouthFileScreen(onConflict: (String) -> Unit, onEditVisit: (String) -> Unit, vm: YouthFileViewModel = viewModel()) {
    val y = vm.record
    val file = vm.file
    ScreenScaffold(title = file?.youth?.displayName ?: "Fiche jeune", error = vm.error) {
        if (y == null || file == null) return@ScreenScaffold
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
                    // What another team gives to ask for an exceptional access to this file.
                    Text("Référence : ${vm.id}", style = MaterialTheme.typography.bodySmall)
                    vm.problemLines.forEach { Text("À corriger : $it", color = MaterialTheme.colorScheme.error) }
                }
            }
        }
        if (vm.conflictCount > 0) item {
            OutlinedButton(onClick = { onConflict(vm.id) }) { Text("${vm.conflictCount} conflit(s) à résoudre") }
        }

        if (file.openQuestionCount > 0u) {
            item { SectionTitle("Questions de la coordination", file.openQuestions.size, file.openQuestionCount) }
            items(file.openQuestions, key = { it.id }) { q ->
                Card(Modifier.fillMaxWidth()) {
                    Column(Modifier.padding(12.dp)) {
                        Text(q.question, style = MaterialTheme.typography.titleSmall)
                        Text("Posée par ${q.askedBy} le ${formatDateTime(q.askedAt)}", style = MaterialTheme.typography.bodySmall)
                        q.visitOccurredAt?.let { Text("Visite du ${formatDateTime(it)}", style = MaterialTheme.typography.bodySmall) }
                        OutlinedButton(onClick = { vm.answering = q }) { Text("Répondre") }
                    }
                }
            }
        }

        item { SectionTitle("Visites", vm.visits.size, file.visitCount) }
        items(vm.visits, key = { it.id }) { v ->
            Card(Modifier.fillMaxWidth()) {
                Column(Modifier.padding(12.dp)) {
                    Text("${formatDateTime(v.occurredAt)} · ${v.communeName} · ${enumLabel("kind", v.kind)}", style = MaterialTheme.typography.titleSmall)
                    // Others met at the same visit (the summary names everyone, this person included).
                    val others = v.youthNames.filterIndexed { i, _ -> v.youthIds.getOrNull(i) != vm.id }
                    if (others.isNotEmpty()) Text("Avec : " + others.joinToString(", "))
                    v.nextStepDue?.let { Text("Prochaine étape pour le ${formatDay(LocalDate.parse(it))}") }
                    if (v.openQuestions > 0u) Text("${v.openQuestions} question(s) de la coordination", color = MaterialTheme.colorScheme.primary)
                    DecisionLine(v.decision)
                    OutlinedButton(onClick = { onEditVisit(v.id) }) { Text("Ouvrir") }
                }
            }
        }

        if (vm.visits.size.toUInt() < file.visitCount) item { MoreButton(vm.busy) { vm.moreVisits() } }

        item { SectionTitle("Actions", vm.actions.size, file.actionCount) }
        items(vm.actions, key = { it.id }) { a ->
            Card(Modifier.fillMaxWidth()) {
                Column(Modifier.padding(12.dp)) {
                    Text("${enumLabel("action_kind", a.kind)} · à partir du ${formatDay(LocalDate.parse(a.startDate))}", style = MaterialTheme.typography.titleSmall)
                    Text(enumLabel("action_status", a.status))
                    if (a.status == "planned") OutlinedButton(onClick = { vm.markDone(a.id) }, enabled = !vm.busy) { Text("Marquer fait") }
                }
            }
        }

        if (vm.actions.size.toUInt() < file.actionCount) item { MoreButton(vm.busy) { vm.moreActions() } }

        item { SectionTitle("Résultats", vm.outcomes.size, file.outcomeCount) }
        items(vm.outcomes, key = { it.id }) { o ->
            Text("${formatDay(LocalDate.parse(o.date))} · ${enumLabel("outcome_kind", o.kind)}")
        }
        if (vm.outcomes.size.toUInt() < file.outcomeCount) item { MoreButton(vm.busy) { vm.moreOutcomes() } }
    }
    vm.answering?.let { q ->
        AnswerDialog(q.question, vm.error, vm.busy, onDismiss = { vm.answering = null }) { vm.answer(q.id, it) }
    }
}

@Composable
private fun MoreButton(busy: Boolean, onClick: () -> Unit) {
    TextButton(onClick = onClick, enabled = !busy) { Text("Voir plus") }
}

/** "Visites (20 sur 34)" while the file shows only part of the list. */
@Composable
private fun SectionTitle(title: String, shown: Int, total: UInt) {
    val count = if (shown.toUInt() < total) "$shown sur $total" else "$total"
    Text("$title ($count)", style = MaterialTheme.typography.titleMedium)
}

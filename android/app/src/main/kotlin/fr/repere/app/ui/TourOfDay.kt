package fr.repere.app.ui

import android.app.Application
import androidx.compose.foundation.clickable
import androidx.compose.foundation.layout.Column
import androidx.compose.foundation.layout.fillMaxWidth
import androidx.compose.foundation.layout.padding
import androidx.compose.foundation.lazy.items
import androidx.compose.material3.Button
import androidx.compose.material3.Card
import androidx.compose.material3.ExtendedFloatingActionButton
import androidx.compose.material3.MaterialTheme
import androidx.compose.material3.Text
import androidx.compose.material3.TextButton
import androidx.compose.runtime.Composable
import androidx.compose.runtime.getValue
import androidx.compose.runtime.mutableStateListOf
import androidx.compose.runtime.mutableStateOf
import androidx.compose.runtime.setValue
import androidx.compose.ui.Modifier
import androidx.compose.ui.unit.dp
import androidx.lifecycle.viewmodel.compose.viewModel
import fr.repere.ffi.Commune
import fr.repere.ffi.VisitSummary
import fr.repere.ffi.Enrolment
import fr.repere.ffi.NewTour
import fr.repere.ffi.TourSummary
import fr.repere.ffi.TourStatus
import java.time.LocalDate

class TourOfDayViewModel(app: Application) : CoreViewModel(app) {
    val today: LocalDate = LocalDate.now()
    var enrolled by mutableStateOf<Enrolment?>(null)
        private set
    var checked by mutableStateOf(false)
        private set
    var todayTour by mutableStateOf<TourSummary?>(null)
        private set
    var todayContacts by mutableStateOf<List<VisitSummary>>(emptyList())
        private set
    var unsynced by mutableStateOf(0)
        private set
    /** Lines of « à faire », up to [TODO_LIMIT] (beyond that the button says "99+"). */
    var todoCount by mutableStateOf(0)
        private set
    /** Communes picked before the tour is started. */
    val draftCommunes = mutableStateListOf<Commune>()

    init {
        loadAndWatch {
            enrolled = enrolment()
            checked = true
            // The team's tour of the day, whichever of the binôme's tablets started it.
            todayTour = toursOn(today.toString()).firstOrNull()
            // Today's visits, in order of time (a day's tour is well under a page).
            todayContacts = visitsOn(today.toString())
            unsynced = unsyncedCount()
            todoCount = todo(limit = TODO_LIMIT).size
        }
    }

    fun startTour() = launchCore {
        val team = enrolled?.teamId ?: return@launchCore
        val tour = NewTour(teamId = team, date = today.toString(), communes = draftCommunes.map { it.code }, status = TourStatus.IN_PROGRESS)
        createTour(tour)
        draftCommunes.clear()
    }
}

@Composable
fun TourOfDayScreen(
    onNewContact: () -> Unit,
    onYouth: (String) -> Unit,
    onTodo: () -> Unit,
    onSync: () -> Unit,
    onMember: () -> Unit,
    onAccess: () -> Unit,
    vm: TourOfDayViewModel = viewModel(),
    member: MemberViewModel = viewModel(),
) {
    ScreenScaffold(
        title = "Tournée du ${formatDay(vm.today)}",
        error = vm.error,
        actions = {
            // « Qui utilise la tablette ? » again, to change who is « vous ».
            member.chosenName?.let { TextButton(onClick = onMember) { Text("$it (vous)") } }
            TextButton(onClick = onTodo) {
                Text(if (vm.todoCount >= TODO_LIMIT) "À faire (99+)" else "À faire (${vm.todoCount})")
            }
            TextButton(onClick = onSync) { Text(if (vm.unsynced > 0) "Synchro (${vm.unsynced})" else "Synchro") }
            TextButton(onClick = onAccess) { Text("Accès exceptionnel") }
        },
        fab = { if (vm.enrolled != null) ExtendedFloatingActionButton(onClick = onNewContact) { Text("Nouveau contact") } },
    ) {
        if (vm.checked && vm.enrolled == null) {
            item { Text("Tablette non inscrite : inscrivez-la depuis l'écran Synchro avant la première tournée.") }
            return@ScreenScaffold
        }
        if (member.needsChoice) item { MemberChoice(member) }
        if (vm.todayTour == null) {
            item { Text("Communes de la tournée", style = MaterialTheme.typography.titleMedium) }
            items(vm.draftCommunes.toList()) { Text(it.name) }
            item { CommunePicker("Ajouter une commune", { vm.searchCommunes(it) }) { vm.draftCommunes.add(it) } }
            item {
                Button(onClick = { vm.startTour() }, enabled = vm.draftCommunes.isNotEmpty() && !vm.busy) {
                    Text("Démarrer la tournée")
                }
            }
        } else {
            item { Text("Communes : " + vm.todayTour?.communeNames.orEmpty().joinToString(" · ")) }
        }
        item { Text("Contacts du jour (${vm.todayContacts.size})", style = MaterialTheme.typography.titleMedium) }
        items(vm.todayContacts, key = { it.id }) { c ->
            Card(Modifier.fillMaxWidth().clickable { c.youthIds.firstOrNull()?.let(onYouth) }) {
                Column(Modifier.padding(12.dp)) {
                    Text(c.youthNames.joinToString(", "), style = MaterialTheme.typography.titleSmall)
                    Text("${formatTime(c.occurredAt)} · ${c.communeName} · ${enumLabel("kind", c.kind)}")
                    DecisionLine(c.decision)
                }
            }
        }
    }
}

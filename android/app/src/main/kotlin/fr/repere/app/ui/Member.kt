package fr.repere.app.ui

import android.app.Application
import androidx.compose.foundation.layout.Column
import androidx.compose.material3.MaterialTheme
import androidx.compose.material3.Text
import androidx.compose.material3.TextButton
import androidx.compose.runtime.Composable
import androidx.compose.runtime.LaunchedEffect
import androidx.compose.runtime.getValue
import androidx.compose.runtime.mutableStateOf
import androidx.compose.runtime.setValue
import androidx.lifecycle.viewModelScope
import androidx.lifecycle.viewmodel.compose.viewModel
import fr.repere.ffi.TeamMember
import kotlinx.coroutines.launch

/**
 * « Qui utilise la tablette ? »: the roster's active members (the roster comes with sync);
 * the one picked is saved in the app's preferences and given to `setMember`, so the
 * following edits are theirs. Shared by the tour of the day (asked while nobody is chosen)
 * and the screen reached from it to change.
 */
class MemberViewModel(app: Application) : CoreViewModel(app) {
    var members by mutableStateOf<List<TeamMember>>(emptyList())
        private set
    var chosen by mutableStateOf<String?>(null)
        private set
    var done by mutableStateOf(false)
        private set

    init {
        // The roster now, then each one a sync brings (it comes with no record changed).
        viewModelScope.launch { safely { rosterFlow().collect { list -> members = list.filter { it.active } } } }
        viewModelScope.launch { repere.prefs.chosenMemberId.collect { chosen = it } }
    }

    /** The roster has come and nobody on it was chosen (or the chosen one left the team). */
    val needsChoice: Boolean get() = members.isNotEmpty() && members.none { it.id == chosen }

    val chosenName: String? get() = members.find { it.id == chosen }?.name

    fun choose(member: TeamMember) = launchCore {
        setMember(member.id)
        repere.prefs.chooseMember(member.id)
        done = true
    }
}

/** The list of active members to pick from, « (vous) » after the chosen one. */
@Composable
fun MemberChoice(vm: MemberViewModel) {
    Column {
        Text("Qui utilise la tablette ?", style = MaterialTheme.typography.titleMedium)
        if (vm.members.isEmpty()) Text("Équipe pas encore reçue : synchronisez la tablette une première fois.")
        vm.members.forEach { m ->
            TextButton(onClick = { vm.choose(m) }, enabled = !vm.busy) {
                Text(if (m.id == vm.chosen) "${m.name} (vous)" else m.name)
            }
        }
    }
}

@Composable
fun MemberScreen(onDone: () -> Unit, vm: MemberViewModel = viewModel()) {
    LaunchedEffect(vm.done) { if (vm.done) onDone() }
    ScreenScaffold(title = "Qui utilise la tablette ?", error = vm.error) {
        item { MemberChoice(vm) }
    }
}

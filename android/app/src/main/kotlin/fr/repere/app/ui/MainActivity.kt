package fr.repere.app.ui

import android.content.Intent
import android.os.Bundle
import androidx.activity.ComponentActivity
import androidx.activity.compose.setContent
import androidx.compose.material3.MaterialTheme
import androidx.compose.material3.Surface
import androidx.compose.runtime.Composable
import androidx.compose.runtime.LaunchedEffect
import androidx.compose.runtime.collectAsState
import androidx.compose.runtime.getValue
import androidx.navigation.compose.NavHost
import androidx.navigation.compose.composable
import androidx.navigation.compose.rememberNavController
import fr.repere.app.repere
import fr.repere.client.EnrolmentLink
import kotlinx.coroutines.flow.StateFlow

class MainActivity : ComponentActivity() {
    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        // A relaunch after process death replays the same intent: only a fresh start reads it.
        if (savedInstanceState == null) takeEnrolmentLink(intent)
        setContent {
            MaterialTheme {
                Surface { RepereNavHost(repere.enrolmentLink) }
            }
        }
    }

    /** singleTop: a link opened while the app runs comes here, not to a second activity. */
    override fun onNewIntent(intent: Intent) {
        super.onNewIntent(intent)
        takeEnrolmentLink(intent)
    }

    /** Anything but an enrolment link of the right form is ignored. */
    private fun takeEnrolmentLink(intent: Intent?) {
        val link = intent?.dataString?.let(EnrolmentLink::parse) ?: return
        repere.enrolmentLink.value = link
    }
}

// Record ids travel as route arguments; each screen's ViewModel reads them from its
// SavedStateHandle, so a screen survives process death.
@Composable
private fun RepereNavHost(enrolmentLink: StateFlow<EnrolmentLink?>) {
    val nav = rememberNavController()
    val link by enrolmentLink.collectAsState()
    // The enrolment screen takes the link (EnrolViewModel) and clears it.
    LaunchedEffect(link) { if (link != null) nav.navigate("enrol") }
    NavHost(nav, startDestination = "tour") {
        composable("tour") {
            TourOfDayScreen(
                onNewContact = { nav.navigate("contact") },
                onYouth = { id -> nav.navigate("youth/$id") },
                onTodo = { nav.navigate("todo") },
                onSync = { nav.navigate("sync") },
                onMember = { nav.navigate("member") },
                onAccess = { nav.navigate("access") },
            )
        }
        composable("todo") {
            TodoScreen(onOpen = { target ->
                when (target) {
                    is TodoTarget.YouthFile -> nav.navigate("youth/${target.youthId}")
                    is TodoTarget.Visit -> nav.navigate("visit/${target.visitId}")
                    is TodoTarget.Conflict -> nav.navigate("conflict/${target.recordId}")
                }
            })
        }
        composable("member") { MemberScreen(onDone = { nav.popBackStack() }) }
        composable("contact") { QuickContactScreen(onSaved = { nav.popBackStack() }) }
        composable("youth/{id}") {
            YouthFileScreen(
                onConflict = { id -> nav.navigate("conflict/$id") },
                onEditVisit = { id -> nav.navigate("visit/$id") },
            )
        }
        composable("visit/{id}") { VisitEditScreen(onSaved = { nav.popBackStack() }) }
        composable("conflict/{id}") { ConflictScreen(onDone = { nav.popBackStack() }) }
        composable("access") { AccessScreen(onOpen = { id -> nav.navigate("lent/$id") }) }
        composable("lent/{id}") { LentFileScreen() }
        composable("sync") { SyncStatusScreen(onEnrol = { nav.navigate("enrol") }) }
        composable("enrol") { EnrolScreen(onDone = { nav.popBackStack() }) }
    }
}

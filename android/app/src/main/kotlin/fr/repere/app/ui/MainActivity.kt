package fr.repere.app.ui

import android.os.Bundle
import androidx.activity.ComponentActivity
import androidx.activity.compose.setContent
import androidx.compose.material3.MaterialTheme
import androidx.compose.material3.Surface
import androidx.compose.runtime.Composable
import androidx.navigation.compose.NavHost
import androidx.navigation.compose.composable
import androidx.navigation.compose.rememberNavController

class MainActivity : ComponentActivity() {
    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        setContent {
            MaterialTheme {
                Surface { RepereNavHost() }
            }
        }
    }
}

// Record ids travel as route arguments; each screen's ViewModel reads them from its
// SavedStateHandle, so a screen survives process death.
@Composable
private fun RepereNavHost() {
    val nav = rememberNavController()
    NavHost(nav, startDestination = "tour") {
        composable("tour") {
            TourOfDayScreen(
                onNewContact = { nav.navigate("contact") },
                onYouth = { id -> nav.navigate("youth/$id") },
                onTodo = { nav.navigate("todo") },
                onSync = { nav.navigate("sync") },
                onMember = { nav.navigate("member") },
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
        composable("sync") { SyncStatusScreen(onEnrol = { nav.navigate("enrol") }) }
        composable("enrol") { EnrolScreen(onDone = { nav.popBackStack() }) }
    }
}

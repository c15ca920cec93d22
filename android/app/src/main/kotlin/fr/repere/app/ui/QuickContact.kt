@file:OptIn(ExperimentalMaterial3Api::class)

package fr.repere.app.ui

import android.app.Application
import androidx.compose.foundation.horizontalScroll
import androidx.compose.foundation.layout.Arrangement
import androidx.compose.foundation.layout.Column
import androidx.compose.foundation.layout.Row
import androidx.compose.foundation.layout.fillMaxWidth
import androidx.compose.foundation.layout.padding
import androidx.compose.foundation.rememberScrollState
import androidx.compose.foundation.text.KeyboardOptions
import androidx.compose.material3.Button
import androidx.compose.material3.Card
import androidx.compose.material3.CardDefaults
import androidx.compose.material3.Checkbox
import androidx.compose.material3.ExperimentalMaterial3Api
import androidx.compose.material3.FilterChip
import androidx.compose.material3.MaterialTheme
import androidx.compose.material3.OutlinedTextField
import androidx.compose.material3.Text
import androidx.compose.material3.TextButton
import androidx.compose.runtime.Composable
import androidx.compose.runtime.LaunchedEffect
import androidx.compose.runtime.getValue
import androidx.compose.runtime.mutableStateOf
import androidx.compose.runtime.setValue
import androidx.compose.ui.Alignment
import androidx.compose.ui.Modifier
import androidx.compose.ui.text.input.KeyboardType
import androidx.compose.ui.unit.dp
import androidx.lifecycle.viewmodel.compose.viewModel
import fr.repere.client.RepereClient
import fr.repere.ffi.AgeBand
import fr.repere.ffi.Commune
import fr.repere.ffi.ContactKind
import fr.repere.ffi.DuplicateQuery
import fr.repere.ffi.IdentityLevel
import fr.repere.ffi.NewContact
import fr.repere.ffi.NewYouth
import fr.repere.ffi.ReferralSource
import fr.repere.ffi.SimilarYouth
import fr.repere.ffi.Situation
import fr.repere.ffi.TeamMember
import fr.repere.ffi.YouthStatus
import fr.repere.ffi.YouthSummary
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.delay
import kotlinx.coroutines.withContext
import java.time.LocalDate
import java.time.OffsetDateTime
import java.time.format.DateTimeFormatter
import java.time.temporal.ChronoUnit

class QuickContactViewModel(app: Application) : CoreViewModel(app) {
    private val today = LocalDate.now().toString()

    // The young person: an existing one (search) or a new one (after the duplicate check).
    var query by mutableStateOf("")
    var results by mutableStateOf<List<YouthSummary>>(emptyList())
        private set
    var selected by mutableStateOf<YouthSummary?>(null)
    var creatingNew by mutableStateOf(false)
    var firstName by mutableStateOf("")
    var alias by mutableStateOf("")
    var birthYear by mutableStateOf("")
    /** The core needs an age: the band when the year is not known (often, on the street). */
    var ageBand by mutableStateOf<AgeBand?>(null)
    var homeCommune by mutableStateOf<Commune?>(null)
    var noticeGiven by mutableStateOf(false)
    var similar by mutableStateOf<List<SimilarYouth>>(emptyList())
        private set

    // The contact itself.
    var kind by mutableStateOf(ContactKind.STREET)
    var commune by mutableStateOf<Commune?>(null)
    var notes by mutableStateOf("")
    var nextStep by mutableStateOf("")
    var saved by mutableStateOf(false)
        private set

    /** « Présents »: the team's active members (the roster comes with sync). */
    var members by mutableStateOf<List<TeamMember>>(emptyList())
        private set
    var present by mutableStateOf<Set<String>>(emptySet())
    /** This tablet's member (« vous »), as chosen in « Qui utilise la tablette ? ». */
    val me: String = repere.prefs.memberId

    init {
        launchCore {
            members = roster().filter { it.active }
            // This tablet's member, if the roster knows it.
            present = members.map { it.id }.filter { it == me }.toSet()
            // Default commune: the first one of today's tour.
            val code = toursOn(today).firstOrNull()?.communes?.firstOrNull() ?: return@launchCore
            commune = withContext(Dispatchers.Default) { RepereClient.commune(code) }
        }
    }

    fun toggle(member: TeamMember) {
        present = if (member.id in present) present - member.id else present + member.id
    }

    // Called from LaunchedEffect keyed on the input: typing again cancels the pending call.
    suspend fun search() {
        delay(250)
        results = if (query.isBlank()) emptyList() else safely { searchYouth(query, 20) }.orEmpty()
    }

    /** The duplicate check, shown BEFORE a new young person can be created. */
    suspend fun checkDuplicates() {
        delay(300)
        val probe = DuplicateQuery(
            firstName = firstName.ifBlank { null }, alias = alias.ifBlank { null }, lastName = null,
            birthYear = birthYear.toIntOrNull(), homeCommune = homeCommune?.code,
        )
        similar = if (probe.firstName == null && probe.alias == null) emptyList() else safely { similarYouth(probe) }.orEmpty()
    }

    fun pick(youth: YouthSummary) {
        selected = youth
        creatingNew = false
    }

    fun save() = launchCore {
        val team = enrolment()?.teamId ?: run {
            error = "Tablette non inscrite : inscrivez-la depuis l'écran Synchro."
            return@launchCore
        }
        val visit = NewContact(
            teamId = team, youthIds = listOfNotNull(selected?.id), tourId = toursOn(today).firstOrNull()?.id,
            // Before the first sync there is no roster: the visit is this tablet's member's.
            memberIds = if (members.isEmpty()) listOf(me) else present.toList(),
            // Always with seconds: OffsetDateTime.toString() drops ":00", which is not RFC 3339.
            occurredAt = OffsetDateTime.now().truncatedTo(ChronoUnit.SECONDS).format(DateTimeFormatter.ISO_OFFSET_DATE_TIME),
            commune = commune?.code.orEmpty(), kind = kind, notes = notes.trim(),
            nextStep = nextStep.ifBlank { null },
        )
        if (selected != null) {
            createContact(visit)
        } else {
            // One transaction: never a young person without the visit that found them. The
            // screen showed the likely duplicates while typing, so the person is confirmed new.
            createYouthWithFirstVisit(newYouth(team), visit, confirmedNew = true)
        }
        saved = true
    }

    // Outreach defaults; everything else is completed later in the youth file.
    private fun newYouth(team: String) = NewYouth(
        teamId = team,
        identityLevel = if (firstName.isNotBlank()) IdentityLevel.FIRST_NAME else IdentityLevel.ALIAS_ONLY,
        alias = alias.ifBlank { null }, firstName = firstName.ifBlank { null }, lastName = null,
        birthDate = null, birthYear = birthYear.toIntOrNull(), ageBand = ageBand, sex = null,
        phone = null, email = null, otherContact = null, homeCommune = homeCommune?.code,
        referralSource = ReferralSource.OUTREACH, referralDetail = null, referralDate = null,
        profileFlags = emptyList(), situation = Situation.UNKNOWN, followedBy = null,
        firstContactDate = today, noticeGivenOn = if (noticeGiven) today else null,
        status = YouthStatus.IDENTIFIED,
    )
}

@Composable
fun QuickContactScreen(onSaved: () -> Unit, vm: QuickContactViewModel = viewModel()) {
    LaunchedEffect(vm.saved) { if (vm.saved) onSaved() }
    LaunchedEffect(vm.query) { vm.search() }
    LaunchedEffect(vm.firstName, vm.alias, vm.birthYear, vm.homeCommune) { vm.checkDuplicates() }

    ScreenScaffold(title = "Nouveau contact", error = vm.error) {
        item { Text("Jeune", style = MaterialTheme.typography.titleMedium) }
        val selected = vm.selected
        when {
            selected != null -> item {
                Row(verticalAlignment = Alignment.CenterVertically) {
                    Text(selected.displayName, Modifier.weight(1f), style = MaterialTheme.typography.titleSmall)
                    TextButton(onClick = { vm.selected = null }) { Text("Changer") }
                }
            }
            vm.creatingNew -> {
                item { TextInput("Prénom", vm.firstName) { vm.firstName = it } }
                item { TextInput("Surnom", vm.alias) { vm.alias = it } }
                item { TextInput("Année de naissance", vm.birthYear, KeyboardType.Number) { vm.birthYear = it } }
                item {
                    Row(Modifier.horizontalScroll(rememberScrollState()), horizontalArrangement = Arrangement.spacedBy(8.dp)) {
                        pickableAgeBands.forEach { band ->
                            FilterChip(selected = vm.ageBand == band, onClick = { vm.ageBand = band }, label = { Text(band.label()) })
                        }
                    }
                }
                item {
                    val home = vm.homeCommune
                    if (home != null) TextButton(onClick = { vm.homeCommune = null }) { Text("Habite à ${home.name} (changer)") }
                    else CommunePicker("Commune de résidence", { vm.searchCommunes(it) }) { vm.homeCommune = it }
                }
                if (vm.similar.isNotEmpty()) item { DuplicateWarning(vm.similar) { vm.pick(it) } }
                item {
                    Row(verticalAlignment = Alignment.CenterVertically) {
                        Checkbox(vm.noticeGiven, { vm.noticeGiven = it })
                        Text("Information sur ses données donnée")
                    }
                }
            }
            else -> {
                item { TextInput("Rechercher (prénom, surnom, commune)", vm.query) { vm.query = it } }
                vm.results.forEach { y ->
                    item(key = y.id) { TextButton(onClick = { vm.pick(y) }) { Text(youthLine(y)) } }
                }
                item { TextButton(onClick = { vm.creatingNew = true }) { Text("Nouveau jeune") } }
            }
        }

        item { Text("Contact", style = MaterialTheme.typography.titleMedium) }
        item {
            Row(Modifier.horizontalScroll(rememberScrollState()), horizontalArrangement = Arrangement.spacedBy(8.dp)) {
                pickableContactKinds.forEach { k ->
                    FilterChip(selected = vm.kind == k, onClick = { vm.kind = k }, label = { Text(k.label()) })
                }
            }
        }
        item {
            val here = vm.commune
            if (here != null) TextButton(onClick = { vm.commune = null }) { Text("À ${here.name} (changer)") }
            else CommunePicker("Commune du contact", { vm.searchCommunes(it) }) { vm.commune = it }
        }
        item {
            OutlinedTextField(vm.notes, { vm.notes = it }, Modifier.fillMaxWidth(), label = { Text("Notes") }, minLines = 3)
        }
        item { TextInput("Prochaine étape", vm.nextStep) { vm.nextStep = it } }
        item { Text("Présents", style = MaterialTheme.typography.titleMedium) }
        if (vm.members.isEmpty()) item { Text("Équipe pas encore reçue (première synchronisation) : la visite est attribuée à cette tablette.") }
        vm.members.forEach { m ->
            item(key = m.id) {
                Row(verticalAlignment = Alignment.CenterVertically) {
                    Checkbox(m.id in vm.present, { vm.toggle(m) })
                    Text(if (m.id == vm.me) "${m.name} (vous)" else m.name)
                }
            }
        }
        item {
            Button(onClick = { vm.save() }, enabled = !vm.busy && (vm.selected != null || vm.creatingNew)) {
                Text("Enregistrer")
            }
        }
    }
}

/** "Déjà rencontré ? Kévin, ~19 ans, Stenay — vu 3 fois": the core writes the description. */
@Composable
private fun DuplicateWarning(similar: List<SimilarYouth>, onPick: (YouthSummary) -> Unit) {
    Card(colors = CardDefaults.cardColors(containerColor = MaterialTheme.colorScheme.tertiaryContainer)) {
        Column(Modifier.padding(12.dp)) {
            Text("Déjà rencontré ?", style = MaterialTheme.typography.titleSmall)
            similar.forEach { s ->
                TextButton(onClick = { onPick(s.youth) }) { Text(s.description) }
            }
            Text("Sinon, continuez : une nouvelle fiche sera créée.", style = MaterialTheme.typography.bodySmall)
        }
    }
}

@Composable
private fun TextInput(label: String, value: String, keyboard: KeyboardType = KeyboardType.Text, onChange: (String) -> Unit) {
    OutlinedTextField(
        value, onChange, Modifier.fillMaxWidth(), label = { Text(label) }, singleLine = true,
        keyboardOptions = KeyboardOptions(keyboardType = keyboard),
    )
}

private val pickableAgeBands = AgeBand.entries.filter { it != AgeBand.FROM_NEWER_VERSION }

private fun AgeBand.label(): String = when (this) {
    AgeBand.FROM16_TO17 -> "16-17 ans"
    AgeBand.FROM18_TO21 -> "18-21 ans"
    AgeBand.FROM22_TO25 -> "22-25 ans"
    AgeBand.FROM26_TO29 -> "26-29 ans"
    AgeBand.FROM_NEWER_VERSION -> NEWER_VERSION_LABEL
}

private fun youthLine(y: YouthSummary): String = buildString {
    append(y.displayName)
    y.age?.let { append(if (y.ageIsApproximate) ", ~$it ans" else ", $it ans") }
    y.homeCommuneName?.let { append(", $it") }
}

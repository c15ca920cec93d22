@file:OptIn(ExperimentalMaterial3Api::class)

package fr.repere.app.ui

import androidx.compose.foundation.layout.Arrangement
import androidx.compose.foundation.layout.Column
import androidx.compose.foundation.layout.PaddingValues
import androidx.compose.foundation.layout.RowScope
import androidx.compose.foundation.layout.fillMaxSize
import androidx.compose.foundation.layout.fillMaxWidth
import androidx.compose.foundation.layout.padding
import androidx.compose.foundation.lazy.LazyColumn
import androidx.compose.foundation.lazy.LazyListScope
import androidx.compose.material3.ExperimentalMaterial3Api
import androidx.compose.material3.MaterialTheme
import androidx.compose.material3.OutlinedTextField
import androidx.compose.material3.Scaffold
import androidx.compose.material3.Text
import androidx.compose.material3.TextButton
import androidx.compose.material3.TopAppBar
import androidx.compose.runtime.Composable
import androidx.compose.runtime.getValue
import androidx.compose.runtime.mutableStateOf
import androidx.compose.runtime.produceState
import androidx.compose.runtime.remember
import androidx.compose.runtime.setValue
import androidx.compose.ui.Modifier
import androidx.compose.ui.unit.dp
import fr.repere.ffi.ActionKind
import fr.repere.ffi.ActionStatus
import fr.repere.ffi.Commune
import fr.repere.ffi.ContactKind
import fr.repere.ffi.DecisionState
import fr.repere.ffi.OutcomeKind
import fr.repere.ffi.Need
import fr.repere.ffi.RecordSyncState
import fr.repere.ffi.Situation
import fr.repere.ffi.TodoReason
import fr.repere.ffi.VisitDecision
import fr.repere.ffi.YouthStatus
import java.time.LocalDate
import java.time.OffsetDateTime
import java.time.ZoneId
import java.time.format.DateTimeFormatter

/** Every screen: a title bar, the last error in red, then a scrolling column. */
@Composable
fun ScreenScaffold(
    title: String,
    error: String?,
    actions: @Composable RowScope.() -> Unit = {},
    fab: @Composable () -> Unit = {},
    content: LazyListScope.() -> Unit,
) {
    Scaffold(topBar = { TopAppBar(title = { Text(title) }, actions = actions) }, floatingActionButton = fab) { padding ->
        LazyColumn(
            Modifier.padding(padding).fillMaxSize(),
            contentPadding = PaddingValues(16.dp),
            verticalArrangement = Arrangement.spacedBy(8.dp),
        ) {
            if (error != null) item { Text(error, color = MaterialTheme.colorScheme.error) }
            content()
        }
    }
}

/** Search a commune by name (the list ships with the core; works offline). */
@Composable
fun CommunePicker(label: String, search: suspend (String) -> List<Commune>, onPick: (Commune) -> Unit) {
    var query by remember { mutableStateOf("") }
    val hits by produceState(emptyList<Commune>(), query) {
        value = if (query.trim().length < 2) emptyList() else search(query)
    }
    Column(Modifier.fillMaxWidth()) {
        OutlinedTextField(query, { query = it }, Modifier.fillMaxWidth(), label = { Text(label) }, singleLine = true)
        hits.forEach { c ->
            TextButton(onClick = { onPick(c); query = "" }) {
                Text("${c.name} (${c.postcodes.firstOrNull() ?: c.department})")
            }
        }
    }
}

@Composable
fun SyncBadge(state: RecordSyncState?) {
    if (state == null) return
    val color = when (state) {
        is RecordSyncState.Rejected -> MaterialTheme.colorScheme.error
        RecordSyncState.Synced -> MaterialTheme.colorScheme.primary
        else -> MaterialTheme.colorScheme.onSurfaceVariant
    }
    Text(state.label(), style = MaterialTheme.typography.labelSmall, color = color)
}

fun RecordSyncState.label(): String = when (this) {
    RecordSyncState.NeverSynced -> "Jamais envoyé"
    RecordSyncState.Pending -> "Modifications à envoyer"
    RecordSyncState.Synced -> "Synchronisé"
    is RecordSyncState.Rejected -> "Refusé par le serveur : $reason"
}

/**
 * A value written by a newer version of the app, which this one cannot name
 * (`FROM_NEWER_VERSION` in every enum). Shown as is; never offered in a picker: the core keeps
 * it untouched while the field is left alone, and refuses a form that would write it.
 */
const val NEWER_VERSION_LABEL = "valeur d'une version plus récente"

/** How summaries and conflict values spell such a value. */
private const val NEWER_VERSION_RAW = "_unknown"

/** The values a picker may offer: never [NEWER_VERSION_LABEL]'s. */
val pickableContactKinds = ContactKind.entries.filter { it != ContactKind.FROM_NEWER_VERSION }
val pickableNeeds = Need.entries.filter { it != Need.FROM_NEWER_VERSION }

fun ContactKind.label(): String = when (this) {
    ContactKind.STREET -> "Rue"
    ContactKind.HOME -> "Domicile"
    ContactKind.TOWN_HALL -> "Mairie"
    ContactKind.PARTNER_PREMISES -> "Chez un partenaire"
    ContactKind.EVENT -> "Événement"
    ContactKind.PHONE -> "Téléphone"
    ContactKind.SOCIAL_NETWORK -> "Réseau social"
    ContactKind.OTHER -> "Autre"
    ContactKind.FROM_NEWER_VERSION -> NEWER_VERSION_LABEL
}

fun Need.label(): String = when (this) {
    Need.HOUSING -> "Logement"
    Need.HEALTH -> "Santé"
    Need.MOBILITY -> "Mobilité"
    Need.EMPLOYMENT -> "Emploi"
    Need.TRAINING -> "Formation"
    Need.RIGHTS -> "Droits"
    Need.OTHER -> "Autre"
    Need.FROM_NEWER_VERSION -> NEWER_VERSION_LABEL
}

fun Situation.label(): String = when (this) {
    Situation.NEET -> "Sans emploi, études ni formation"
    Situation.IN_EDUCATION -> "Scolarisé(e)"
    Situation.IN_EMPLOYMENT -> "En emploi"
    Situation.IN_TRAINING -> "En formation"
    Situation.UNKNOWN -> "Inconnue"
    Situation.FROM_NEWER_VERSION -> NEWER_VERSION_LABEL
}

fun YouthStatus.label(): String = when (this) {
    YouthStatus.IDENTIFIED -> "Repéré(e)"
    YouthStatus.MOBILISED -> "Mobilisé(e)"
    YouthStatus.HELPED -> "Coup de main"
    YouthStatus.CLOSED -> "Suivi terminé"
    YouthStatus.FROM_NEWER_VERSION -> NEWER_VERSION_LABEL
}

fun ActionKind.label(): String = when (this) {
    ActionKind.CHANTIER5_DAYS -> "Chantier de 5 jours"
    ActionKind.CHANTIER_MONTH -> "Chantier d'un mois"
    ActionKind.SPORT -> "Sport"
    ActionKind.CULTURE -> "Culture"
    ActionKind.APPOINTMENT -> "Rendez-vous"
    ActionKind.OTHER -> "Autre"
    ActionKind.FROM_NEWER_VERSION -> NEWER_VERSION_LABEL
}

fun ActionStatus.label(): String = when (this) {
    ActionStatus.PLANNED -> "Prévue"
    ActionStatus.DONE -> "Faite"
    ActionStatus.NO_SHOW -> "Absent(e)"
    ActionStatus.CANCELLED -> "Annulée"
    ActionStatus.FROM_NEWER_VERSION -> NEWER_VERSION_LABEL
}

fun OutcomeKind.label(): String = when (this) {
    OutcomeKind.MISSION_LOCALE_REGISTRATION -> "Inscription à la Mission Locale"
    OutcomeKind.FRANCE_TRAVAIL_REGISTRATION -> "Inscription à France Travail"
    OutcomeKind.CAP_EMPLOI_REGISTRATION -> "Inscription à Cap emploi"
    OutcomeKind.JOB -> "Emploi"
    OutcomeKind.TRAINING -> "Formation"
    OutcomeKind.RETURN_TO_SCHOOL -> "Retour en études"
    OutcomeKind.HOUSING -> "Logement"
    OutcomeKind.HEALTH_CARE -> "Soins"
    OutcomeKind.OTHER -> "Autre"
    OutcomeKind.FROM_NEWER_VERSION -> NEWER_VERSION_LABEL
}

/** Why a line is « à faire ». */
fun TodoReason.label(): String = when (this) {
    TodoReason.NEXT_STEP_OVERDUE -> "Prochaine étape en retard"
    TodoReason.NEXT_STEP_DUE_TODAY -> "Prochaine étape pour aujourd'hui"
    TodoReason.PROBLEMS -> "Fiche à corriger"
    TodoReason.REJECTED -> "Refusée par le serveur"
    TodoReason.OPEN_QUESTION -> "Question de la coordination"
    TodoReason.FLAGGED -> "Signalée par la coordination"
    TodoReason.CONFLICT -> "Conflit à résoudre"
}

fun DecisionState.label(): String = when (this) {
    DecisionState.APPROVED -> "Validée par la coordination"
    DecisionState.FLAGGED -> "Signalée par la coordination"
    DecisionState.QUESTION -> "Question de la coordination"
}

/** A visit line's word on the coordination's decision: « Validée », « À revoir : raison ». */
fun VisitDecision.line(): String = when (state) {
    DecisionState.APPROVED -> "Validée"
    DecisionState.FLAGGED -> if (reason.isBlank()) "À revoir" else "À revoir : $reason"
    DecisionState.QUESTION -> "Question de la coordination"
}

/** The decision's line under a visit, in red when it asks the binôme for action. */
@Composable
fun DecisionLine(decision: VisitDecision?) {
    if (decision == null) return
    val color = if (decision.asksForAction) MaterialTheme.colorScheme.error else MaterialTheme.colorScheme.primary
    Text(decision.line(), style = MaterialTheme.typography.bodySmall, color = color)
}

/** Shown for a member id the roster does not know (or no member at all). */
const val UNKNOWN_MEMBER_LABEL = "membre inconnu"

/**
 * Summaries and conflicts carry enum values as snake_case strings ("town_hall"), not as the
 * enums: map them back by name, or show them as they are.
 */
fun enumLabel(field: String, raw: String): String = if (raw == NEWER_VERSION_RAW) NEWER_VERSION_LABEL else when (field) {
    "kind" -> ContactKind.entries.find { it.name.lowercase() == raw }?.label()
    "situation" -> Situation.entries.find { it.name.lowercase() == raw }?.label()
    "status" -> YouthStatus.entries.find { it.name.lowercase() == raw }?.label()
    "action_kind" -> ActionKind.entries.find { it.name.lowercase() == raw }?.label()
    "action_status" -> ActionStatus.entries.find { it.name.lowercase() == raw }?.label()
    "outcome_kind" -> OutcomeKind.entries.find { it.name.lowercase() == raw }?.label()
    else -> null
} ?: raw

/** A conflict value, given as JSON: strings unquoted, null as "(vide)". */
fun displayJson(field: String, json: String): String = when {
    json == "null" -> "(vide)"
    json.length >= 2 && json.startsWith('"') && json.endsWith('"') -> enumLabel(field, json.substring(1, json.length - 1))
    else -> json
}

val fieldLabels = mapOf(
    "first_name" to "Prénom", "alias" to "Surnom", "last_name" to "Nom", "birth_year" to "Année de naissance",
    "birth_date" to "Date de naissance", "age_band" to "Tranche d'âge", "home_commune" to "Commune de résidence", "phone" to "Téléphone",
    "situation" to "Situation", "status" to "Statut", "followed_by" to "Suivi par", "notes" to "Notes",
    "next_step" to "Prochaine étape", "next_step_due" to "Échéance de la prochaine étape", "commune" to "Commune",
    "kind" to "Lieu du contact", "needs" to "Besoins",
)

/**
 * The core's `problems` text (`field: problème; field: problème`, problems in French) as
 * lines for the screen, with French field names.
 */
fun describeProblems(text: String?): List<String> =
    text?.split("; ")?.filter { it.isNotBlank() }?.map { item ->
        val field = item.substringBefore(": ")
        val problem = item.substringAfter(": ")
        "${fieldLabels[field] ?: field} : $problem"
    }.orEmpty()

private val dayFormat = DateTimeFormatter.ofPattern("dd/MM/yyyy")
private val timeFormat = DateTimeFormatter.ofPattern("HH:mm")
private val dateTimeFormat = DateTimeFormatter.ofPattern("dd/MM/yyyy HH:mm")

/** Core instants are RFC 3339; show them in the tablet's time zone. */
private fun local(rfc3339: String) = OffsetDateTime.parse(rfc3339).atZoneSameInstant(ZoneId.systemDefault())

fun formatTime(rfc3339: String): String = local(rfc3339).format(timeFormat)
fun formatDateTime(rfc3339: String): String = local(rfc3339).format(dateTimeFormat)
fun formatDay(date: LocalDate): String = date.format(dayFormat)

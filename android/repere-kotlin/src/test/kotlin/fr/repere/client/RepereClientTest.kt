package fr.repere.client

import fr.repere.ffi.DecisionState
import fr.repere.ffi.ContactKind
import fr.repere.ffi.Dimension
import fr.repere.ffi.DuplicateQuery
import fr.repere.ffi.Granularity
import fr.repere.ffi.IdentityLevel
import fr.repere.ffi.Need
import fr.repere.ffi.NewContact
import fr.repere.ffi.NewYouth
import fr.repere.ffi.RecordRef
import fr.repere.ffi.RecordKind
import fr.repere.ffi.RecordSyncState
import fr.repere.ffi.ReferralSource
import fr.repere.ffi.RepereException
import fr.repere.ffi.ReviewTaskStatus
import fr.repere.ffi.Situation
import fr.repere.ffi.YouthStatus
import kotlinx.coroutines.async
import kotlinx.coroutines.delay
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import com.sun.net.httpserver.HttpServer
import java.net.InetSocketAddress
import java.net.URI
import java.net.URLEncoder
import java.net.http.HttpClient
import java.net.http.HttpRequest
import java.net.http.HttpResponse
import java.net.http.HttpResponse.BodyHandlers
import java.nio.file.Files
import java.time.OffsetDateTime
import java.time.format.DateTimeFormatter
import java.time.temporal.ChronoUnit
import kotlin.system.exitProcess
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertFalse
import kotlin.test.assertNull
import kotlin.test.assertTrue

/**
 * Kotlin tests of the bindings, run on the desktop JVM against the library built from this
 * workspace and a live repere-server (scripts/kotlin-tests.sh starts it and passes its
 * address and enrolment codes in the environment).
 */
private val key = ByteArray(32) { 7 }
private val teamId: String = env("REPERE_TEAM_ID")
private val today = OffsetDateTime.now().toLocalDate().toString()

private fun env(name: String): String = System.getenv(name) ?: error("$name is not set")

private fun tempStorePath(): String =
    Files.createTempDirectory("repere-kotlin").resolve("store.db").toString()

// Optional fields and lists have defaults: only what the form filled is named.
private fun kevin() = NewYouth(
    teamId = teamId, identityLevel = IdentityLevel.FIRST_NAME,
    firstName = "Kévin", birthYear = OffsetDateTime.now().year - 19, homeCommune = "55502",
    referralSource = ReferralSource.TOWN_HALL, situation = Situation.NEET,
    firstContactDate = today, noticeGivenOn = today, status = YouthStatus.IDENTIFIED,
)

private fun visit(youthId: String) = NewContact(
    teamId = teamId, youthIds = listOf(youthId), tourId = null,
    memberIds = listOf("0190a5c0-0000-7000-8000-000000000011"),
    // ISO_OFFSET_DATE_TIME always writes the seconds (toString() drops ":00"), as RFC 3339 needs.
    occurredAt = OffsetDateTime.now().minusHours(1).truncatedTo(ChronoUnit.SECONDS)
        .format(DateTimeFormatter.ISO_OFFSET_DATE_TIME),
    commune = "55502", kind = ContactKind.STREET, notes = "Devant la boulangerie.",
    needs = emptyList(), nextStep = null, nextStepDue = null,
)

private suspend fun openClient(path: String = tempStorePath()) = RepereClient.open(path, key)

/** Runs the server's admin command against the live server's data directory; its output. */
private fun admin(vararg args: String): String {
    val process = ProcessBuilder(env("REPERE_SERVER_BIN"), "admin", "--data-dir", env("REPERE_DATA_DIR"), *args)
        .redirectError(ProcessBuilder.Redirect.INHERIT).start()
    val out = process.inputStream.bufferedReader().readText().trim()
    assertEquals(0, process.waitFor(), "admin ${args.first()}")
    return out
}

/** A fresh one-time enrolment code (each test that enrols gets its own). */
private fun issueCode(team: String = teamId): String = admin("issue-code", "--team", team)

/** Two tablets of the same team, each enrolled with its own code and member. */
private suspend fun twoTablets(block: suspend (RepereClient, RepereClient) -> Unit) {
    val url = env("REPERE_SERVER_URL")
    openClient().use { a ->
        openClient().use { b ->
            a.setMember("0190a5c0-0000-7000-8000-0000000000a1")
            b.setMember("0190a5c0-0000-7000-8000-0000000000b2")
            a.enrol(url, issueCode(), "tablette A")
            b.enrol(url, issueCode(), "tablette B")
            block(a, b)
        }
    }
}

private val tests = linkedMapOf<String, suspend () -> Unit>(
    "creates, reads, searches and lists records" to {
        openClient().use { c ->
            val id = c.createYouth(kevin())
            assertEquals("Kévin", c.youth(id).firstName)
            val contactId = c.createContact(visit(id))
            assertEquals(listOf(contactId), c.contactsOf(id))
            val hits = c.searchYouth("kev sten")
            assertEquals(listOf(id), hits.map { it.id })
            assertEquals("Stenay", hits[0].homeCommuneName)
            assertEquals(listOf("Kévin"), c.contacts()[0].youthNames)
            assertEquals(RecordSyncState.NeverSynced, c.syncState(id))
            assertEquals("Stenay", RepereClient.commune("55502")?.name)
            assertTrue(RepereClient.searchCommunes("charleville").any { it.code == "08105" })
        }
    },
    "computes its own indicators and keeps each record's history" to {
        openClient().use { c ->
            c.setMember("0190a5c0-0000-7000-8000-0000000000a1")
            val id = c.createYouth(kevin())
            c.createContact(visit(id))
            c.updateYouth(c.youth(id).copy(alias = "Kéké"))
            val year = OffsetDateTime.now().year
            val rows = c.indicators("$year-01-01", "$year-12-31", Granularity.WHOLE, Dimension.COMMUNE)
            val total = rows.single { it.key == null }
            assertEquals(1u, total.identified)
            assertEquals("Stenay", rows.single { it.key == "55502" }.label)
            val history = c.history(id)
            assertEquals(listOf("alias"), history.last().fields)
            assertEquals("0190a5c0-0000-7000-8000-0000000000a1", history.last().memberId)
            assertTrue(c.reviewTasks().isEmpty())
            assertFailsWith<RepereException.Validation> { c.indicators("2026-12-31", "2026-01-01") }
        }
    },
    "warns of a likely duplicate before creation" to {
        openClient().use { c ->
            val id = c.createYouth(kevin())
            repeat(3) { c.createContact(visit(id)) }
            val similar = c.similarYouth(DuplicateQuery(
                firstName = "Kevyn", alias = null, lastName = null,
                birthYear = OffsetDateTime.now().year - 19, homeCommune = "55502",
            ))
            assertEquals(id, similar.first().youth.id)
            assertEquals("Kévin, ~19 ans, Stenay — vu 3 fois", similar.first().description)
        }
    },
    "lists what is not on the server yet, and when the server last answered" to {
        openClient().use { c ->
            assertEquals(null, c.lastServerContact(), "never reached a server")
            val youthId = c.createYouth(kevin())
            val contactId = c.createContact(visit(youthId))
            assertEquals(listOf(youthId, contactId), c.unsynced().map { it.id })
            assertEquals(RecordKind.CONTACT, c.unsynced().last().kind)
            c.enrol(env("REPERE_SERVER_URL"), issueCode(), "tablette synchro")
            val enrolledAt = OffsetDateTime.parse(c.lastServerContact() ?: error("no contact time"))
            assertTrue(enrolledAt.isAfter(OffsetDateTime.now().minusMinutes(5)))
            c.sync()
            assertTrue(c.unsynced().isEmpty())
            assertEquals(0, c.unsyncedCount())
        }
    },
    "reports its app version and what waits at each sync (administrators' tablets)" to {
        openClient().use { c ->
            assertFailsWith<RepereException.Internal> { c.setAppVersion("Amina Benali") }
            c.setAppVersion("3.1.4 (77)")
            assertEquals("3.1.4 (77)", c.appVersion())
            c.createYouth(kevin())
            c.enrol(env("REPERE_SERVER_URL"), issueCode(), "tablette version")
            c.sync()
            val row = admin("list-devices").lines().single { it.endsWith("\ttablette version") }
            assertEquals(listOf("3.1.4 (77)", "0"), row.split('\t').subList(5, 7), row)
        }
    },
    "reads the enrolment link of the QR code and nothing else" to {
        assertEquals(
            EnrolmentLink("https://repere.example.org:8443", "K7QM-2XWD-9F"),
            EnrolmentLink.parse("repere://enrol?server=https%3A%2F%2Frepere.example.org%3A8443&code=K7QM-2XWD-9F"),
        )
        assertEquals(
            EnrolmentLink("http://10.0.2.2:8080", "K7QM-2XWD-9F"),
            EnrolmentLink.parse("repere://enrol?code=k7qm-2xwd-9f&server=http%3A%2F%2F10.0.2.2%3A8080"),
        )
        val refused = listOf(
            "https://enrol?server=https%3A%2F%2Fa.fr&code=K7QM-2XWD-9F",
            "repere://enrole?server=https%3A%2F%2Fa.fr&code=K7QM-2XWD-9F",
            "repere://enrol/x?server=https%3A%2F%2Fa.fr&code=K7QM-2XWD-9F",
            "repere://enrol?server=https%3A%2F%2Fa.fr&code=K7QM-2XWD-9F#x",
            "repere://enrol?server=https%3A%2F%2Fa.fr",
            "repere://enrol?server=https%3A%2F%2Fa.fr&code=K7QM-2XWD-9F&code=K7QM-2XWD-9G",
            "repere://enrol?server=https%3A%2F%2Fa.fr&code=K7QM-2XWD-9F&label=Amina",
            "repere://enrol?server=ftp%3A%2F%2Fa.fr&code=K7QM-2XWD-9F",
            "repere://enrol?server=https%3A%2F%2Fme%40a.fr&code=K7QM-2XWD-9F",
            "repere://enrol?server=javascript%3Aalert(1)&code=K7QM-2XWD-9F",
            "repere://enrol?server=https%3A%2F%2Fa.fr&code=K7QM-2XWD-90",
            "repere://enrol?server=https%3A%2F%2Fa.fr&code=%ZZ",
            "repere://enrol?server=https%3A%2F%2Fa.fr&code=" + "K".repeat(3000),
            "pas un lien",
        )
        refused.forEach { assertEquals(null, EnrolmentLink.parse(it), it) }
    },
    "emits changes on the flow" to {
        openClient().use { c ->
            coroutineScopeTest { scope ->
                val next = scope.async { c.changes.first() }
                kotlinx.coroutines.yield()
                val id = c.createYouth(kevin())
                val changed = withTimeout(5_000) { next.await() }
                assertEquals(RecordKind.YOUTH, changed.single().kind)
                assertEquals(id, changed.single().id)
                assertEquals(false, changed.single().remote)
            }
        }
    },
    "validation errors name the fields, in French" to {
        openClient().use { c ->
            val e = assertFailsWith<RepereException.Validation> {
                c.createYouth(kevin().copy(birthYear = 1980, homeCommune = "99999"))
            }
            val codes = e.fields.associate { it.field to it.code }
            assertEquals("age_out_of_range", codes["birth_year"])
            assertEquals("unknown_commune", codes["home_commune"])
            val badDate = assertFailsWith<RepereException.Validation> {
                c.createYouth(kevin().copy(firstContactDate = "22/11/2026"))
            }
            assertEquals(listOf("first_contact_date" to "bad_format"), badDate.fields.map { it.field to it.code })
            assertTrue(e.userMessage.startsWith("Fiche non enregistrée"), e.userMessage)
            assertTrue(e.fields.first { it.field == "home_commune" }.userMessage.contains("INSEE"))
            assertEquals(0, c.unsyncedCount(), "nothing invalid is stored")
            assertFailsWith<RepereException.NotFound> { c.youth("not-an-id") }
        }
    },
    "a wrong key or a bad key is refused with a clear error" to {
        val path = tempStorePath()
        openClient(path).use { it.createYouth(kevin()) }
        val wrong = assertFailsWith<RepereException.WrongKey> { RepereClient.open(path, ByteArray(32) { 8 }) }
        assertTrue(wrong.userMessage.contains("clé"))
        assertFailsWith<RepereException.InvalidKey> { RepereClient.open(path, ByteArray(16)) }
        openClient(path).use { assertEquals(1, it.unsyncedCount(), "still readable with the right key") }
    },
    "sync errors: not enrolled, bad code, unreachable server, insecure address" to {
        openClient().use { c ->
            assertFailsWith<RepereException.NotEnrolled> { c.sync() }
            assertFailsWith<RepereException.InvalidEnrolmentCode> { c.enrol(env("REPERE_SERVER_URL"), "AAAA-BBBB-CC", "tablette test") }
            assertFailsWith<RepereException.NetworkUnavailable> { c.enrol("http://127.0.0.1:9", "AAAA-BBBB-CC", "tablette test") }
            val insecure = assertFailsWith<RepereException.InvalidServerAddress> {
                c.enrol("http://192.0.2.1:8080", "AAAA-BBBB-CC", "tablette test")
            }
            assertTrue(insecure.userMessage.startsWith("Adresse du serveur non sécurisée : utilisez https://"))
            assertEquals(null, c.enrolment())
        }
    },
    "a sync is cancelled with its coroutine, even mid-request, and the next one carries on" to {
        StallingProxy(URI(env("REPERE_SERVER_URL")).port).use { proxy ->
            openClient().use { c ->
                c.enrol(proxy.url, admin("issue-code", "--team", teamId).trim(), "tablette lente")
                c.createYouth(kevin())
                // The server now never answers: only the cancellation can end the sync.
                proxy.stalled = true
                coroutineScopeTest { scope ->
                    val running = scope.async { c.sync() }
                    delay(300)
                    running.cancel()
                    withTimeout(5_000) { running.join() }
                    assertTrue(running.isCancelled)
                }
                proxy.stalled = false
                assertEquals(1, c.unsyncedCount(), "nothing lost")
                assertEquals(1UL, c.sync().acknowledged)
                assertEquals(0, c.unsyncedCount())
            }
        }
    },
    "two tablets sync through the server and see a conflict" to {
        val url = env("REPERE_SERVER_URL")
        openClient().use { a ->
            openClient().use { b ->
                a.setMember("0190a5c0-0000-7000-8000-0000000000a1")
                b.setMember("0190a5c0-0000-7000-8000-0000000000b2")
                val enrolled = a.enrol(url, env("REPERE_CODE_A"), "tablette A")
                assertEquals(teamId, enrolled.teamId)
                b.enrol(url, env("REPERE_CODE_B"), "tablette B")
                val id = a.createYouth(kevin())
                var rounds = 0
                val pushed = a.sync { rounds++ }
                assertEquals(1UL, pushed.acknowledged)
                assertTrue(rounds >= 1)
                assertEquals(RecordSyncState.Synced, a.syncState(id))
                b.sync()
                assertEquals("Kévin", b.youth(id).firstName)

                a.updateYouth(a.youth(id).copy(status = YouthStatus.MOBILISED))
                b.updateYouth(b.youth(id).copy(status = YouthStatus.HELPED))
                assertEquals(RecordSyncState.Pending, a.syncState(id))
                a.sync(); b.sync(); a.sync()
                val conflicts = a.conflicts(id)
                assertEquals(listOf("status"), conflicts.map { it.field })
                assertEquals(setOf("\"mobilised\"", "\"helped\""), conflicts[0].values.map { it.valueJson }.toSet())
                assertEquals(conflicts, b.conflicts(id))
                a.resolveConflict(id, "status", "\"mobilised\"")
                a.sync(); b.sync()
                assertTrue(b.conflicts(id).isEmpty())
                assertEquals(YouthStatus.MOBILISED, b.youth(id).status)
            }
        }
    },
    "a form saved after a sync keeps what the other tablet changed meanwhile" to {
        twoTablets { a, b ->
            val youthId = a.createYouth(kevin())
            val visitId = a.createContact(visit(youthId))
            a.sync(); b.sync()
            // Tablet A opens the visit's form.
            val form = a.contact(visitId)
            // Meanwhile tablet B notes two needs and a sentence, and syncs.
            val onB = b.contact(visitId)
            b.updateContact(onB.copy(needs = listOf(Need.HOUSING, Need.RIGHTS), notes = onB.notes + " Cherche un logement à Verdun."))
            b.sync()
            // A syncs (pulls B's change), then saves the form it opened before, with only the next step changed.
            a.sync()
            val saved = a.updateContact(form.copy(nextStep = "Rendez-vous à la Mission Locale"))
            assertEquals(setOf(Need.HOUSING, Need.RIGHTS), saved.needs.toSet(), "the record returned is the merged one")
            assertFalse(saved.version.contentEquals(form.version), "with its new version")
            a.sync(); b.sync()
            for ((tablet, visit) in listOf("A" to a.contact(visitId), "B" to b.contact(visitId))) {
                assertEquals(setOf(Need.HOUSING, Need.RIGHTS), visit.needs.toSet(), "B's needs on $tablet")
                assertEquals("Devant la boulangerie. Cherche un logement à Verdun.", visit.notes, "B's sentence on $tablet")
                assertEquals("Rendez-vous à la Mission Locale", visit.nextStep, "A's next step on $tablet")
            }
            assertTrue(a.conflicts(visitId).isEmpty(), "no conflict on A")
            assertTrue(b.conflicts(visitId).isEmpty(), "no conflict on B")
            assertTrue(a.contact(visitId).version.contentEquals(b.contact(visitId).version), "same version on both")
        }
    },
    "a field changed on a stale form and on the other tablet becomes a listed conflict" to {
        twoTablets { a, b ->
            val visitId = a.createContact(visit(a.createYouth(kevin())))
            a.sync(); b.sync()
            val form = a.contact(visitId)
            b.updateContact(b.contact(visitId).copy(nextStep = "Appeler sa mère"))
            b.sync(); a.sync()
            assertEquals("Appeler sa mère", a.contact(visitId).nextStep, "A has B's value before saving")
            // A's form was filled before B's change: its save does not silently replace it.
            a.updateContact(form.copy(nextStep = "Rendez-vous à la Mission Locale"))
            a.sync(); b.sync()
            val conflicts = a.conflicts(visitId)
            assertEquals(listOf("next_step"), conflicts.map { it.field })
            assertEquals(
                setOf("\"Appeler sa mère\"", "\"Rendez-vous à la Mission Locale\""),
                conflicts[0].values.map { it.valueJson }.toSet(),
            )
            assertEquals(conflicts, b.conflicts(visitId))
            b.resolveConflict(visitId, "next_step", "\"Appeler sa mère\"")
            b.sync(); a.sync()
            assertTrue(a.conflicts(visitId).isEmpty())
            assertEquals("Appeler sa mère", a.contact(visitId).nextStep)
        }
    },
    "two valid edits that merge into an invalid visit show their problem until it is fixed" to {
        twoTablets { a, b ->
            val visitId = a.createContact(visit(a.createYouth(kevin())).copy(nextStep = "Appeler sa mère"))
            a.sync(); b.sync()
            // A clears the next step; B gives it a due date. Each edit is valid alone.
            a.updateContact(a.contact(visitId).copy(nextStep = null))
            val due = OffsetDateTime.now().toLocalDate().plusDays(7).toString()
            b.updateContact(b.contact(visitId).copy(nextStepDue = due))
            a.sync()
            // B's push would make the server's copy invalid: refused there, kept on B, merged with A's edit.
            assertEquals(1UL, b.sync().rejected)
            val merged = b.contact(visitId)
            assertEquals(null to due, merged.nextStep to merged.nextStepDue, "both edits kept on B")
            val problems = b.problems(visitId)
            assertTrue(problems != null && problems.startsWith("next_step: "), "problem shown on B: $problems")
            assertEquals(listOf(RecordRef(RecordKind.CONTACT, visitId)), b.withProblems())
            assertTrue(b.syncState(visitId) != RecordSyncState.Synced)
            assertNull(a.problems(visitId), "A's copy stayed valid")
            // The field worker's ordinary edit fixes it; then it syncs.
            b.updateContact(merged.copy(nextStep = "Rappeler la semaine prochaine"))
            assertNull(b.problems(visitId))
            assertTrue(b.withProblems().isEmpty())
            val fixed = b.sync()
            assertEquals(0UL, fixed.rejected)
            assertEquals(RecordSyncState.Synced, b.syncState(visitId))
            a.sync()
            val onA = a.contact(visitId)
            assertEquals("Rappeler la semaine prochaine" to due, onA.nextStep to onA.nextStepDue)
            assertNull(a.problems(visitId))
        }
    },
    "an update without the version read, or with another one, is refused and writes nothing" to {
        openClient().use { c ->
            val id = c.createYouth(kevin())
            val other = c.youth(c.createYouth(kevin().copy(firstName = "Léa")))
            val read = c.youth(id)
            val edited = read.copy(alias = "Kéké")
            for (version in listOf(ByteArray(0), ByteArray(5) { 1 }, ByteArray(32) { 1 }, other.version)) {
                val e = assertFailsWith<RepereException.UnknownVersion> { c.updateYouth(edited.copy(version = version)) }
                assertTrue(e.userMessage.contains("Rouvrez la fiche"), e.userMessage)
            }
            assertNull(c.youth(id).alias, "nothing written")
            assertEquals(1, c.history(id).size)
            assertEquals("Kéké", c.updateYouth(edited).alias)
        }
    },
    "a value from a newer app version is never written by this one" to {
        openClient().use { c ->
            val youthId = c.createYouth(kevin())
            val e = assertFailsWith<RepereException.Validation> {
                c.createContact(visit(youthId).copy(kind = ContactKind.FROM_NEWER_VERSION, needs = listOf(Need.FROM_NEWER_VERSION)))
            }
            assertEquals(setOf("kind" to "newer_version_value", "needs" to "newer_version_value"), e.fields.map { it.field to it.code }.toSet())
            val visitId = c.createContact(visit(youthId))
            val refused = assertFailsWith<RepereException.Validation> {
                c.updateContact(c.contact(visitId).copy(kind = ContactKind.FROM_NEWER_VERSION))
            }
            assertEquals(listOf("kind" to "newer_version_value"), refused.fields.map { it.field to it.code })
            assertTrue(refused.fields[0].userMessage.contains("version plus récente"), refused.fields[0].userMessage)
            assertEquals(ContactKind.STREET, c.contact(visitId).kind)
        }
    },
    "changing team with unsent changes is refused unless forced, then they are set aside" to {
        val url = env("REPERE_SERVER_URL")
        openClient().use { c ->
            c.setMember("0190a5c0-0000-7000-8000-0000000000a1")
            val enrolled = c.enrol(url, issueCode(), "tablette qui change d'équipe")
            val synced = c.createYouth(kevin())
            val progress = c.sync()
            assertEquals(0UL, progress.setAside)
            assertFalse(progress.serverRestored)
            // Revoked, the tablet cannot send what it changes next.
            admin("revoke-device", enrolled.deviceId)
            val unsent = c.createYouth(kevin().copy(firstName = "Léa"))
            val otherTeam = env("REPERE_OTHER_TEAM_ID")
            val code = issueCode(otherTeam)
            val e = assertFailsWith<RepereException.UnsentChanges> { c.enrol(url, code, "tablette qui change d'équipe") }
            assertEquals(1u, e.count)
            assertTrue(e.userMessage.startsWith("1 fiche modifiée sur cette tablette n'a pas été envoyée"), e.userMessage)
            assertEquals(teamId, c.enrolment()?.teamId, "still in its team")
            assertEquals("Léa", c.youth(unsent).firstName)
            // The same code again, forced: the unsent record is set aside.
            assertEquals(otherTeam, c.enrol(url, code, "tablette qui change d'équipe", force = true).teamId)
            val aside = c.setAside().single()
            assertEquals(listOf(unsent, "youth", "left_team"), listOf(aside.id, aside.kind, aside.reason))
            assertTrue(aside.userMessage.contains("équipe"), aside.userMessage)
            assertFailsWith<RepereException.NotFound> { c.youth(unsent) }
            assertFailsWith<RepereException.NotFound> { c.youth(synced) }
            assertEquals(0, c.unsyncedCount())
            c.sync()
        }
    },
    "an answer the app cannot decode is its own error, not an unreachable server" to {
        val fake = HttpServer.create(InetSocketAddress("127.0.0.1", 0), 0)
        fake.createContext("/") { exchange ->
            val body = "bonjour".toByteArray()
            exchange.sendResponseHeaders(200, body.size.toLong())
            exchange.responseBody.use { it.write(body) }
        }
        fake.start()
        try {
            openClient().use { c ->
                val e = assertFailsWith<RepereException.InvalidServerResponse> {
                    c.enrol("http://127.0.0.1:${fake.address.port}", "AAAA-BBBB-CC", "tablette test")
                }
                assertTrue(e.userMessage.contains("illisible"), e.userMessage)
                assertEquals(null, c.enrolment())
            }
        } finally {
            fake.stop(0)
        }
    },
    "answers a coordinator's question, and the answer reaches the visit page" to {
        openClient().use { c ->
            c.setMember("0190a5c0-0000-7000-8000-0000000000a1")
            c.enrol(env("REPERE_SERVER_URL"), env("REPERE_CODE_REVIEW"), "tablette revue")
            val youthId = c.createYouth(kevin())
            val contactId = c.createContact(visit(youthId))
            c.sync()
            val web = CoordinatorPages(env("REPERE_SERVER_URL"))
            web.login(env("REPERE_COORDINATOR_LOGIN"), env("REPERE_COORDINATOR_PASSWORD"))
            web.ask(contactId, "Quel club a signalé ce jeune ?")
            c.sync()
            val task = c.reviewTasks().single()
            assertEquals(contactId, task.contactId)
            assertEquals("Quel club a signalé ce jeune ?", task.question)
            val answered = c.answerReviewTask(task.id, "Le club de foot de Stenay.")
            assertEquals(ReviewTaskStatus.ANSWERED, answered.status)
            assertTrue(c.reviewTasks().isEmpty(), "no open question left")
            c.sync()
            assertTrue(web.visitPage(contactId).contains("Le club de foot de Stenay."))
            assertFailsWith<RepereException.Validation> { c.answerReviewTask(task.id, "  ") }
        }
    },
    // --- Transfers between teams ---
    "a young person transferred to the other team leaves this tablet, not as an erasure" to {
        val url = env("REPERE_SERVER_URL")
        val other = env("REPERE_OTHER_TEAM_ID")
        openClient().use { a ->
            openClient().use { b ->
                a.setMember("0190a5c0-0000-7000-8000-0000000000a1")
                b.setMember("0190a5c0-0000-7000-8000-0000000000b2")
                a.enrol(url, issueCode(), "tablette départ")
                b.enrol(url, issueCode(other), "tablette arrivée")
                val youthId = a.createYouth(kevin())
                val contactId = a.createContact(visit(youthId))
                a.sync()
                val web = CoordinatorPages(url)
                web.login(env("REPERE_COORDINATOR_LOGIN"), env("REPERE_COORDINATOR_PASSWORD"))
                web.transfer(youthId, other)
                val left = a.sync()
                assertEquals(1uL, left.transferred, "the young person left: $left")
                assertEquals(0uL, left.erased, "not an erasure")
                assertFailsWith<RepereException.NotFound> { a.youth(youthId) }
                assertEquals(listOf(youthId), a.contact(contactId).youthIds, "the visit stays")
                b.sync()
                assertEquals(other, b.youth(youthId).teamId)
            }
        }
    },
    // --- Break-the-glass (needs the server side of issue 12: grants and their pages) ---
    "break-the-glass: another team's file is lent, read only, and goes when its coordination ends the grant" to {
        val url = env("REPERE_SERVER_URL")
        val other = env("REPERE_OTHER_TEAM_ID")
        openClient().use { a ->
            openClient().use { b ->
                a.setMember("0190a5c0-0000-7000-8000-0000000000a1")
                b.setMember("0190a5c0-0000-7000-8000-0000000000b2")
                a.enrol(url, issueCode(), "tablette qui demande")
                b.enrol(url, issueCode(other), "tablette de l'autre équipe")
                val youthId = b.createYouth(kevin().copy(teamId = other))
                val contactId = b.createContact(visit(youthId).copy(teamId = other))
                b.sync()

                val id = a.requestAccess(youthId, "Urgence : hébergement à trouver ce soir")
                assertEquals(fr.repere.ffi.AccessState.Pending, a.accessRequests().single().state)
                a.sync()
                val granted = a.accessRequests().single { it.id == id }.state
                assertTrue(granted is fr.repere.ffi.AccessState.Granted, "granted: $granted")
                val listed = a.lentFiles().single()
                assertEquals(listOf(youthId, "Kévin", "Autre binôme"), listOf(listed.youthId, listed.displayName, listed.teamName))
                assertEquals(granted.expiresAt, listed.expiresAt)
                val ends = OffsetDateTime.parse(listed.expiresAt)
                assertTrue(ends.isAfter(OffsetDateTime.now().plusMinutes(110)), "about two hours: $ends")
                assertTrue(ends.isBefore(OffsetDateTime.now().plusMinutes(121)), "about two hours: $ends")
                val file = a.lentFile(youthId) ?: error("not lent")
                assertEquals("Kévin", file.youth.firstName)
                assertEquals(listOf(contactId), file.visits.map { it.id })
                assertEquals("Devant la boulangerie.", file.visits.single().visit.notes)
                // Read only, and out of the team's own records.
                assertFailsWith<RepereException.NotFound> { a.youth(youthId) }
                assertTrue(a.searchYouth("Kévin").none { it.id == youthId }, "not searchable")
                assertEquals(0, a.unsyncedCount())

                coroutineScopeTest { scope ->
                    val gone = scope.async { a.lentFilesFlow().first { it.isEmpty() } }
                    val web = CoordinatorPages(url)
                    web.login(env("REPERE_COORDINATOR_LOGIN"), env("REPERE_COORDINATOR_PASSWORD"))
                    web.endGrant(id)
                    a.sync()
                    withTimeout(5_000) { gone.await() }
                }
                assertNull(a.lentFile(youthId))
                assertTrue(a.accessRequests().none { it.id == id && it.state is fr.repere.ffi.AccessState.Granted })
            }
        }
    },
    "break-the-glass: a request for a reference nobody has is refused with its message" to {
        openClient().use { c ->
            c.setMember("0190a5c0-0000-7000-8000-0000000000a1")
            c.enrol(env("REPERE_SERVER_URL"), issueCode(), "tablette qui demande")
            val id = c.requestAccess(java.util.UUID.randomUUID().toString(), "Jeune rencontré à Stenay, dit suivi ailleurs", 30)
            c.sync()
            val state = c.accessRequests().single { it.id == id }.state
            assertTrue(state is fr.repere.ffi.AccessState.Refused, "refused: $state")
            assertEquals("unknown_file", state.code)
            assertTrue(state.userMessage.startsWith("Aucune fiche n'a cette référence"), state.userMessage)
            assertTrue(c.lentFiles().isEmpty())
        }
    },
    "break-the-glass: a request is checked on the tablet first" to {
        openClient().use { c ->
            c.setMember("0190a5c0-0000-7000-8000-0000000000a1")
            val ours = c.createYouth(kevin())
            val short = assertFailsWith<RepereException.Validation> { c.requestAccess(java.util.UUID.randomUUID().toString(), "urgence") }
            assertEquals(listOf("reason"), short.fields.map { it.field })
            assertEquals("Demande non envoyée : Le motif doit faire de 15 à 500 caractères.", short.userMessage)
            val held = assertFailsWith<RepereException.Validation> { c.requestAccess(ours, "Urgence : hébergement à trouver ce soir") }
            assertEquals(listOf("youth_id"), held.fields.map { it.field })
            val limits = RepereClient.accessLimits()
            assertEquals(listOf(15u, 500u, 15u, 480u, 120u), listOf(limits.reasonMinChars, limits.reasonMaxChars, limits.minMinutes, limits.maxMinutes, limits.defaultMinutes))
            assertTrue(c.accessRequests().isEmpty())
            val id = c.requestAccess(java.util.UUID.randomUUID().toString(), "Urgence : hébergement à trouver ce soir")
            assertEquals(listOf(id to 120u), c.accessRequests().map { it.id to it.minutes })
        }
    },
    // --- Team roster and coordination decisions ---
    "the team roster and a coordinator's flag reach the tablet" to {
        val amina = admin("add-member", "--team", teamId, "--name", "Amina")
        val julien = admin("add-member", "--team", teamId, "--name", "Julien")
        admin("deactivate-member", "--member", julien)
        openClient().use { c ->
            c.setMember(amina)
            c.enrol(env("REPERE_SERVER_URL"), issueCode(), "tablette équipe")
            val youthId = c.createYouth(kevin())
            val contactId = c.createContact(visit(youthId))
            c.sync()
            val roster = c.roster()
            val aminaFirst = roster.indexOfFirst { it.id == amina }
            val julienAt = roster.indexOfFirst { it.id == julien }
            assertTrue(aminaFirst in 0 until julienAt, "active members first: $roster")
            assertEquals(false, roster[julienAt].active)
            assertEquals("Julien", c.memberName(julien))
            assertEquals(null, c.visitDecision(contactId))
            val web = CoordinatorPages(env("REPERE_SERVER_URL"))
            web.login(env("REPERE_COORDINATOR_LOGIN"), env("REPERE_COORDINATOR_PASSWORD"))
            web.flag(contactId, "Commune à vérifier")
            admin("rename-member", "--member", julien, "--name", "Julien M.")
            coroutineScopeTest { scope ->
                // A sync that brings only team news still tells the screens: the new roster
                // on rosterFlow, the decided visit on the changes.
                val renamed = scope.async {
                    c.rosterFlow().first { members -> members.any { it.name == "Julien M." } }
                }
                val decided = scope.async { c.changes.first { changed -> changed.any { it.id == contactId } } }
                kotlinx.coroutines.yield()
                c.sync()
                assertEquals(roster.size, withTimeout(5_000) { renamed.await() }.size)
                val visit = withTimeout(5_000) { decided.await() }.single { it.id == contactId }
                assertEquals(RecordKind.CONTACT, visit.kind)
                assertTrue(visit.remote)
            }
            val decision = c.visitDecision(contactId) ?: error("the decision did not arrive")
            assertEquals(DecisionState.FLAGGED, decision.state)
            assertEquals("Commune à vérifier", decision.reason)
            assertTrue(decision.asksForAction)
            assertEquals(listOf(contactId), c.flaggedVisits().map { it.contactId })
            assertEquals("Julien M.", c.memberName(julien))
            // The lists carry it too: the recent visits and the youth file, in the same query.
            assertEquals(decision, c.recentVisits().single { it.id == contactId }.decision)
            val fileVisit = c.youthFile(youthId).visits.single()
            assertEquals(DecisionState.FLAGGED, fileVisit.decision?.state)
            assertEquals("Commune à vérifier", fileVisit.decision?.reason)
            assertEquals(decision, c.youthVisits(youthId).single().decision)
        }
    },
    // --- end of team roster and coordination decisions ---
    "a revoked tablet is refused, and keeps its unsent record for its next enrolment" to {
        openClient().use { c ->
            val enrolled = c.enrol(env("REPERE_SERVER_URL"), env("REPERE_CODE_REVOKE"), "tablette perdue")
            c.createYouth(kevin())
            c.sync()
            admin("revoke-device", enrolled.deviceId)
            c.createYouth(kevin().copy(firstName = "Léa"))
            val e = assertFailsWith<RepereException.DeviceRevoked> { c.sync() }
            assertTrue(e.userMessage.contains("révoqué"))
            assertEquals(1, c.unsyncedCount(), "the unsent record is kept")
            // A new code for the same team: nothing is refused, and the kept record goes.
            c.enrol(env("REPERE_SERVER_URL"), issueCode(), "tablette retrouvée")
            assertEquals(1UL, c.sync().acknowledged)
            assertEquals(0, c.unsyncedCount())
        }
    },
    "a lost tablet ordered wiped sends its unsent record, then empties its store" to {
        openClient().use { c ->
            val enrolled = c.enrol(env("REPERE_SERVER_URL"), issueCode(), "tablette égarée")
            val synced = c.createYouth(kevin())
            c.sync()
            admin("revoke-device", enrolled.deviceId, "--wipe")
            val unsent = c.createYouth(kevin().copy(firstName = "Léa"))
            val e = assertFailsWith<RepereException.Wiped> { c.sync() }
            assertTrue(e.userMessage.contains("effacées"))
            assertEquals(0, c.unsyncedCount())
            assertFailsWith<RepereException.NotFound> { c.youth(synced) }
            assertFailsWith<RepereException.NotFound> { c.youth(unsent) }
            assertFailsWith<RepereException.NotEnrolled> { c.sync() }
        }
    },
)

// ---- Lists for the screens (issue 11) ---------------------------------------------------
private val listTests = linkedMapOf<String, suspend () -> Unit>(
    "creates a young person with their first visit in one call, after the duplicate check" to {
        openClient().use { c ->
            val created = c.createYouthWithFirstVisit(kevin(), visit("").copy(youthIds = emptyList()))
                as fr.repere.ffi.FirstVisitResult.Created
            val again = c.createYouthWithFirstVisit(kevin().copy(firstName = "Kevyn"), visit("").copy(youthIds = emptyList()))
                as fr.repere.ffi.FirstVisitResult.PossibleDuplicates
            assertEquals(created.youthId, again.candidates.first().youth.id)
            assertFailsWith<RepereException.Validation> {
                c.createYouthWithFirstVisit(kevin(), visit("").copy(youthIds = emptyList(), commune = "99999"), confirmedNew = true)
            }
            assertEquals(2, c.unsyncedCount(), "nothing more stored")
            val visits = c.recentVisits()
            assertEquals(listOf(created.visitId), visits.map { it.id })
            assertEquals(listOf("Kévin"), visits[0].youthNames)
            assertEquals(visits, c.youthVisits(created.youthId))
            assertTrue(c.tours(today).isEmpty())
        }
    },
    "the tour of the day, and a young person's file with its actions, outcomes and pages" to {
        openClient().use { c ->
            val tourId = c.createTour(fr.repere.ffi.NewTour(teamId = teamId, date = today,
                communes = listOf("55502", "55029"), status = fr.repere.ffi.TourStatus.PLANNED))
            val ofTheDay = c.toursOn(today)
            assertEquals(listOf(tourId), ofTheDay.map { it.id })
            assertEquals(listOf("55502", "55029"), ofTheDay[0].communes)
            assertEquals("Stenay", ofTheDay[0].communeNames[0])
            val youthId = c.createYouth(kevin())
            val met = visit(youthId).copy(tourId = tourId)
            val visitId = c.createContact(met)
            // The day's visits by the day entered (an hour ago may be yesterday just after midnight).
            val metOn = OffsetDateTime.parse(met.occurredAt).toLocalDate()
            assertEquals(listOf(visitId), c.visitsOn(metOn.toString()).map { it.id })
            assertTrue(c.visitsOn(metOn.plusDays(1).toString()).isEmpty())
            assertEquals(listOf(visitId), withTimeout(5_000) { c.visitsOnFlow(metOn.toString()).first() }.map { it.id })
            val actionId = c.createAction(fr.repere.ffi.NewAction(teamId = teamId, youthId = youthId,
                kind = fr.repere.ffi.ActionKind.CHANTIER5_DAYS, startDate = today, status = fr.repere.ffi.ActionStatus.PLANNED))
            // An action can be marked done once it happened: « mobilisé » counts it.
            val done = c.updateAction(c.action(actionId).copy(status = fr.repere.ffi.ActionStatus.DONE))
            assertEquals(fr.repere.ffi.ActionStatus.DONE, done.status)
            val file = withTimeout(5_000) { c.youthFileFlow(youthId).first() }
            assertEquals("Kévin", file.youth.displayName)
            assertEquals(1u, file.visitCount)
            assertEquals(listOf(actionId), file.actions.map { it.id })
            assertEquals("done", file.actions[0].status)
            assertEquals(0u, file.outcomeCount)
            assertEquals(file.actions, c.youthActions(youthId))
            assertTrue(c.youthActions(youthId, offset = 1).isEmpty())
            assertTrue(c.youthOutcomes(youthId).isEmpty())
            assertTrue(c.youthQuestions(youthId).isEmpty())
            assertEquals(1u, c.toursOn(today)[0].visitCount)
        }
    },
    "lists overdue next steps in « à faire » and refreshes the flow" to {
        openClient().use { c ->
            val youthId = c.createYouth(kevin())
            val yesterday = OffsetDateTime.now().minusDays(1).toLocalDate().toString()
            val old = visit(youthId).copy(
                occurredAt = OffsetDateTime.now().minusDays(3).truncatedTo(ChronoUnit.SECONDS)
                    .format(DateTimeFormatter.ISO_OFFSET_DATE_TIME),
                nextStep = "Appeler", nextStepDue = yesterday,
            )
            val first = withTimeout(5_000) { c.todoFlow().first() }
            assertTrue(first.isEmpty())
            val visitId = c.createContact(old)
            val todo = c.todo()
            assertEquals(listOf(fr.repere.ffi.TodoReason.NEXT_STEP_OVERDUE), todo.map { it.reason })
            assertEquals(listOf(visitId, "Appeler", yesterday), listOf(todo[0].id, todo[0].detail, todo[0].date))
            assertEquals(todo, withTimeout(5_000) { c.todoFlow().first() })
        }
    },
)
// ---- end of lists --------------------------------------------------------------------------

/**
 * The coordinators' pages, driven over HTTP as a browser would (cookies, CSRF fields).
 * Cookies are kept by hand: java.net.CookieManager re-sends Max-Age cookies in RFC 2965 form.
 */
private class CoordinatorPages(private val base: String) {
    private val http = HttpClient.newHttpClient()
    private val cookies = linkedMapOf<String, String>()

    private fun send(request: HttpRequest.Builder): HttpResponse<String> {
        if (cookies.isNotEmpty()) {
            request.header("Cookie", cookies.entries.joinToString("; ") { "${it.key}=${it.value}" })
        }
        val response = http.send(request.build(), BodyHandlers.ofString())
        for (header in response.headers().allValues("set-cookie")) {
            val (name, value) = header.substringBefore(';').split('=', limit = 2)
            cookies[name.trim()] = value.trim()
        }
        return response
    }

    private fun get(path: String): String = send(HttpRequest.newBuilder(URI("$base$path")).GET()).body()

    private fun post(path: String, form: Map<String, String>): Int {
        val body = form.entries.joinToString("&") {
            URLEncoder.encode(it.key, Charsets.UTF_8) + "=" + URLEncoder.encode(it.value, Charsets.UTF_8)
        }
        return send(
            HttpRequest.newBuilder(URI("$base$path"))
                .header("Content-Type", "application/x-www-form-urlencoded")
                .POST(HttpRequest.BodyPublishers.ofString(body)),
        ).statusCode()
    }

    private fun csrf(page: String): String =
        Regex("""name="csrf" value="([^"]+)"""").find(page)?.groupValues?.get(1) ?: error("no CSRF field")

    fun login(login: String, password: String) {
        val form = get("/connexion")
        val status = post("/connexion", mapOf("csrf" to csrf(form), "login" to login, "password" to password))
        assertEquals(303, status, "login")
    }

    fun visitPage(contactId: String): String = get("/visites/$contactId")

    fun flag(contactId: String, reason: String) {
        val page = visitPage(contactId)
        val status = post("/visites/$contactId/signaler", mapOf("csrf" to csrf(page), "motif" to reason))
        assertEquals(303, status, "flag")
    }

    /** Asks for a young person's transfer to [team] and accepts it (the coordinator sees both teams). */
    fun transfer(youthId: String, team: String) {
        val form = get("/jeunes/$youthId/transfert")
        val asked = post("/transferts", mapOf("csrf" to csrf(form), "fiche" to youthId, "equipe" to team))
        assertEquals(303, asked, "transfer asked")
        val list = get("/transferts")
        val id = Regex("""data-testid="transfer-row" data-id="([^"]+)"""").find(list)?.groupValues?.get(1)
            ?: error("the transfer is not listed")
        assertEquals(303, post("/transferts/$id/accepter", mapOf("csrf" to csrf(list))), "transfer accepted")
    }

    /** Ends a break-the-glass grant early, as the coordination of the file's team does. */
    fun endGrant(grantId: String) {
        val list = get("/acces-exceptionnels")
        assertTrue(list.contains("""data-testid="grant-row" data-id="$grantId""""), "the grant is listed")
        assertEquals(303, post("/acces-exceptionnels/$grantId/terminer", mapOf("csrf" to csrf(list))), "grant ended")
    }

    fun ask(contactId: String, question: String) {
        val page = visitPage(contactId)
        val status = post("/visites/$contactId/question", mapOf("csrf" to csrf(page), "question" to question))
        assertEquals(303, status, "question")
    }
}

/**
 * A loopback TCP relay to the live server that, once [stalled], swallows what it is sent
 * and answers nothing: a server gone silent mid-request.
 */
private class StallingProxy(upstreamPort: Int) : AutoCloseable {
    private val listener = java.net.ServerSocket(0, 50, java.net.InetAddress.getLoopbackAddress())
    @Volatile var stalled = false
    val url = "http://127.0.0.1:${listener.localPort}"

    init {
        Thread {
            while (!listener.isClosed) {
                val client = try { listener.accept() } catch (e: java.io.IOException) { break }
                val upstream = java.net.Socket("127.0.0.1", upstreamPort)
                pump(client, upstream, swallowWhenStalled = true)
                pump(upstream, client, swallowWhenStalled = false)
            }
        }.apply { isDaemon = true }.start()
    }

    private fun pump(from: java.net.Socket, to: java.net.Socket, swallowWhenStalled: Boolean) {
        Thread {
            val buffer = ByteArray(16 * 1024)
            try {
                while (true) {
                    val n = from.getInputStream().read(buffer)
                    if (n < 0) break
                    if (!(swallowWhenStalled && stalled)) to.getOutputStream().write(buffer, 0, n)
                }
            } catch (e: java.io.IOException) {
                // Either side closed: the relay of this connection ends.
            } finally {
                from.close(); to.close()
            }
        }.apply { isDaemon = true }.start()
    }

    override fun close() = listener.close()
}

private suspend fun coroutineScopeTest(block: suspend (kotlinx.coroutines.CoroutineScope) -> Unit) =
    kotlinx.coroutines.coroutineScope { block(this) }

/** Runs every test, or those whose name contains one of [args]. */
fun main(args: Array<String>) {
    var passed = 0
    var failed = 0
    for ((name, test) in tests + listTests) {
        if (args.isNotEmpty() && args.none { name.contains(it) }) continue
        try {
            runBlocking { test() }
            passed++
            println("ok   $name")
        } catch (t: Throwable) {
            failed++
            println("FAIL $name: $t")
            t.printStackTrace()
        }
    }
    println("kotlin: $passed passed, $failed failed")
    if (failed > 0) exitProcess(1)
}

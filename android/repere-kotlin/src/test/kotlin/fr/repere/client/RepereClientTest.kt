package fr.repere.client

import fr.repere.ffi.ContactKind
import fr.repere.ffi.Dimension
import fr.repere.ffi.DuplicateQuery
import fr.repere.ffi.Granularity
import fr.repere.ffi.IdentityLevel
import fr.repere.ffi.RecordKind
import fr.repere.ffi.RecordSyncState
import fr.repere.ffi.ReferralSource
import fr.repere.ffi.RepereException
import fr.repere.ffi.ReviewTaskStatus
import fr.repere.ffi.Situation
import fr.repere.ffi.YouthStatus
import fr.repere.ffi.Contact
import fr.repere.ffi.Youth
import kotlinx.coroutines.async
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
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

private fun kevin() = Youth(
    teamId = teamId, identityLevel = IdentityLevel.FIRST_NAME, alias = null,
    firstName = "Kévin", lastName = null, birthDate = null,
    birthYear = OffsetDateTime.now().year - 19, ageBand = null, sex = null,
    phone = null, email = null, otherContact = null, homeCommune = "55502",
    referralSource = ReferralSource.TOWN_HALL, referralDetail = null, referralDate = null,
    profileFlags = emptyList(), situation = Situation.NEET, followedBy = null,
    firstContactDate = today, noticeGivenOn = today, status = YouthStatus.IDENTIFIED,
)

private fun visit(youthId: String) = Contact(
    teamId = teamId, youthIds = listOf(youthId), tourId = null,
    memberIds = listOf("0190a5c0-0000-7000-8000-000000000011"),
    // ISO_OFFSET_DATE_TIME always writes the seconds (toString() drops ":00"), as RFC 3339 needs.
    occurredAt = OffsetDateTime.now().minusHours(1).truncatedTo(ChronoUnit.SECONDS)
        .format(DateTimeFormatter.ISO_OFFSET_DATE_TIME),
    commune = "55502", kind = ContactKind.STREET, notes = "Devant la boulangerie.",
    needs = emptyList(), nextStep = null, nextStepDue = null,
)

private suspend fun openClient(path: String = tempStorePath()) = RepereClient.open(path, key)

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
            c.updateYouth(id, c.youth(id).copy(alias = "Kéké"))
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
    "sync errors: not enrolled, bad code, unreachable server" to {
        openClient().use { c ->
            assertFailsWith<RepereException.NotEnrolled> { c.sync() }
            assertFailsWith<RepereException.InvalidEnrolmentCode> { c.enrol(env("REPERE_SERVER_URL"), "AAAA-BBBB-CC", "tablette test") }
            assertFailsWith<RepereException.NetworkUnavailable> { c.enrol("http://127.0.0.1:9", "AAAA-BBBB-CC", "tablette test") }
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

                a.updateYouth(id, a.youth(id).copy(status = YouthStatus.MOBILISED))
                b.updateYouth(id, b.youth(id).copy(status = YouthStatus.HELPED))
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
    "a revoked tablet is refused" to {
        openClient().use { c ->
            val enrolled = c.enrol(env("REPERE_SERVER_URL"), env("REPERE_CODE_REVOKE"), "tablette perdue")
            c.createYouth(kevin())
            c.sync()
            val admin = ProcessBuilder(env("REPERE_SERVER_BIN"), "admin", "--data-dir", env("REPERE_DATA_DIR"),
                "revoke-device", enrolled.deviceId).inheritIO().start()
            assertEquals(0, admin.waitFor())
            c.createYouth(kevin().copy(firstName = "Léa"))
            val e = assertFailsWith<RepereException.DeviceRevoked> { c.sync() }
            assertTrue(e.userMessage.contains("révoqué"))
            assertEquals(1, c.unsyncedCount(), "the unsent record is kept")
        }
    },
)

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

    fun ask(contactId: String, question: String) {
        val page = visitPage(contactId)
        val status = post("/visites/$contactId/question", mapOf("csrf" to csrf(page), "question" to question))
        assertEquals(303, status, "question")
    }
}

private suspend fun coroutineScopeTest(block: suspend (kotlinx.coroutines.CoroutineScope) -> Unit) =
    kotlinx.coroutines.coroutineScope { block(this) }

fun main() {
    var passed = 0
    var failed = 0
    for ((name, test) in tests) {
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

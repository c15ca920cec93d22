package fr.repere.client

import java.net.URI
import java.net.URISyntaxException
import java.net.URLDecoder

/**
 * The enrolment link of the administrators' QR code (sync-server/README.md, "Enrolment
 * link"): `repere://enrol?server=<url>&code=<code>`, both percent-encoded. Opened by the
 * system camera app (or any app showing the link); the shell prefills its enrolment screen
 * with it and the binôme still presses « Inscrire ». Nothing is sent before that.
 */
data class EnrolmentLink(val server: String, val code: String) {
    companion object {
        private const val MAX_LINK_CHARS = 2048
        /** The server's code alphabet (no 0, 1, I, L, O, U), `XXXX-XXXX-XX` once grouped. */
        private val CODE = Regex("[ABCDEFGHJKMNPQRSTVWXYZ23456789]{4}-[ABCDEFGHJKMNPQRSTVWXYZ23456789]{4}-[ABCDEFGHJKMNPQRSTVWXYZ23456789]{2}")

        /**
         * The server and code of [link], or null for anything else: another scheme or host,
         * a path or fragment, a parameter missing, repeated or unknown, a server address that
         * is not `http(s)://host[:port][/path]` without user info, query or fragment, a code
         * not of the server's form.
         */
        fun parse(link: String): EnrolmentLink? {
            if (link.length > MAX_LINK_CHARS) return null
            val uri = try {
                URI(link.trim())
            } catch (e: URISyntaxException) {
                return null
            }
            if (!uri.scheme.equals("repere", ignoreCase = true) || uri.rawAuthority != "enrol") return null
            if (!uri.rawPath.isNullOrEmpty() || uri.rawFragment != null) return null
            val params = (uri.rawQuery ?: return null).split('&').map { part ->
                val eq = part.indexOf('=')
                if (eq <= 0) return null
                part.substring(0, eq) to (decode(part.substring(eq + 1)) ?: return null)
            }
            if (params.map { it.first }.sorted() != listOf("code", "server")) return null
            val values = params.toMap()
            val server = values.getValue("server")
            val code = values.getValue("code").uppercase()
            if (!isServerAddress(server) || !CODE.matches(code)) return null
            return EnrolmentLink(server, code)
        }

        /** RFC 3986 percent-decoding: `+` stays a plus sign (URLDecoder alone reads a space). */
        private fun decode(value: String): String? = try {
            URLDecoder.decode(value.replace("+", "%2B"), Charsets.UTF_8)
        } catch (e: IllegalArgumentException) {
            null
        }

        private fun isServerAddress(server: String): Boolean {
            val uri = try {
                URI(server)
            } catch (e: URISyntaxException) {
                return false
            }
            return (uri.scheme == "https" || uri.scheme == "http") && !uri.host.isNullOrEmpty() &&
                uri.rawUserInfo == null && uri.rawQuery == null && uri.rawFragment == null
        }
    }
}

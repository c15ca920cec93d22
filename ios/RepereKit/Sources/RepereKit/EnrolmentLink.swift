import Foundation

/// The enrolment link of the administrators' QR code (sync-server/README.md, "Enrolment
/// link"): `repere://enrol?server=<url>&code=<code>`, both percent-encoded. Opened by the
/// system camera app (or any app showing the link); the app prefills its enrolment screen
/// with it and the binôme still taps « Inscrire ». Nothing is sent before that.
public struct EnrolmentLink: Equatable, Sendable {
    public let server: String
    public let code: String

    public init(server: String, code: String) {
        self.server = server
        self.code = code
    }

    private static let maxLinkChars = 2048
    /// The server's code alphabet (no 0, 1, I, L, O, U).
    private static let alphabet = Set("ABCDEFGHJKMNPQRSTVWXYZ23456789")

    /// The server and code of `url`, or nil for anything else: another scheme or host, a
    /// path or fragment, a parameter missing, repeated or unknown, a server address that is
    /// not `http(s)://host[:port][/path]` without user info, query or fragment, a code not of
    /// the server's form (`XXXX-XXXX-XX`).
    public static func parse(_ url: URL) -> EnrolmentLink? {
        guard url.absoluteString.count <= maxLinkChars,
              let parts = URLComponents(url: url, resolvingAgainstBaseURL: false),
              parts.scheme?.lowercased() == "repere",
              parts.percentEncodedHost == "enrol",
              parts.user == nil, parts.password == nil, parts.port == nil,
              parts.percentEncodedPath.isEmpty,
              parts.fragment == nil,
              let items = parts.queryItems,
              items.map(\.name).sorted() == ["code", "server"],
              let server = items.first(where: { $0.name == "server" })?.value,
              let typed = items.first(where: { $0.name == "code" })?.value
        else {
            return nil
        }
        let code = typed.uppercased()
        guard isServerAddress(server), isCode(code) else {
            return nil
        }
        return EnrolmentLink(server: server, code: code)
    }

    private static func isCode(_ code: String) -> Bool {
        let groups = code.split(separator: "-", omittingEmptySubsequences: false)
        return groups.map(\.count) == [4, 4, 2] && groups.allSatisfy { $0.allSatisfy(alphabet.contains) }
    }

    private static func isServerAddress(_ server: String) -> Bool {
        guard let parts = URLComponents(string: server),
              parts.scheme == "https" || parts.scheme == "http",
              let host = parts.host, !host.isEmpty,
              parts.user == nil, parts.password == nil,
              parts.query == nil, parts.fragment == nil
        else {
            return false
        }
        return true
    }
}

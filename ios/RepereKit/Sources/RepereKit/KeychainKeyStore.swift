import Foundation
import Security

/// Keeps the store's 32-byte key in the Keychain. The key is random (SecRandomCopyBytes) and
/// stored AfterFirstUnlockThisDeviceOnly: readable while the tablet is locked once it has
/// been unlocked since boot (background sync needs that), and never copied off the device by
/// a backup or a migration, exactly like the store it opens (see the app's store location).
public struct KeychainKeyStore: Sendable {
    public enum KeyError: Error, Equatable {
        case keychain(OSStatus)
        case random(OSStatus)
        /// A store exists but its key does not: a new key could never open it.
        case missing

        public var userMessage: String {
            switch self {
            case .keychain(let status) where status == errSecInteractionNotAllowed:
                return "Déverrouillez la tablette une première fois pour accéder aux données."
            case .keychain, .random:
                return "Clé de chiffrement inaccessible. Les données restent sur la tablette ; réessayez ou contactez l'administrateur."
            case .missing:
                return "Clé de chiffrement introuvable pour les données de cette tablette. Rien n'a été effacé ; contactez l'administrateur."
            }
        }
    }

    private let service: String
    private let account: String

    public init(service: String = "fr.repere.store", account: String = "database-key") {
        self.service = service
        self.account = account
    }

    /// The key, created on first use. Pass `createIfMissing: false` when the store file
    /// already exists: the store must never be replaced, since it may hold unsent work.
    public func databaseKey(createIfMissing: Bool) throws -> Data {
        if let key = try read() {
            return key
        }
        guard createIfMissing else {
            throw KeyError.missing
        }
        var bytes = [UInt8](repeating: 0, count: 32)
        let random = SecRandomCopyBytes(kSecRandomDefault, bytes.count, &bytes)
        guard random == errSecSuccess else {
            throw KeyError.random(random)
        }
        var item = baseQuery
        item[kSecValueData as String] = Data(bytes)
        item[kSecAttrAccessible as String] = kSecAttrAccessibleAfterFirstUnlockThisDeviceOnly
        let status = SecItemAdd(item as CFDictionary, nil)
        if status == errSecDuplicateItem, let existing = try read() {
            return existing // another caller created it first
        }
        guard status == errSecSuccess else {
            throw KeyError.keychain(status)
        }
        return Data(bytes)
    }

    private var baseQuery: [String: Any] {
        [
            kSecClass as String: kSecClassGenericPassword,
            kSecAttrService as String: service,
            kSecAttrAccount as String: account,
            // On macOS, the iOS-style keychain (the only one honouring kSecAttrAccessible).
            kSecUseDataProtectionKeychain as String: true,
        ]
    }

    private func read() throws -> Data? {
        var query = baseQuery
        query[kSecReturnData as String] = true
        query[kSecMatchLimit as String] = kSecMatchLimitOne
        var result: CFTypeRef?
        let status = SecItemCopyMatching(query as CFDictionary, &result)
        if status == errSecItemNotFound {
            return nil
        }
        guard status == errSecSuccess, let data = result as? Data, data.count == 32 else {
            throw KeyError.keychain(status)
        }
        return data
    }
}

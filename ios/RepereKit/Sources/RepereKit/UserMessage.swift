import Foundation

public extension RepereError {
    /// The French sentence for the field worker; every case carries one. Show this, not
    /// `localizedDescription`: the generated `errorDescription` is a debug dump.
    var userMessage: String {
        switch self {
        case .Validation(_, let message),
             .WrongKey(let message),
             .InvalidKey(let message),
             .NotFound(let message),
             .Erased(let message),
             .NoConflict(let message),
             .NotEnrolled(let message),
             .DeviceRevoked(let message),
             .Cancelled(let message),
             .Wiped(let message),
             .Locked(_, let message),
             .InvalidEnrolmentCode(let message),
             .NetworkUnavailable(let message),
             .ServerRejected(let message),
             .Storage(let message),
             .Internal(let message),
             .UnknownVersion(let message),
             .UnsentChanges(_, let message),
             .IncompatibleServer(let message),
             .InvalidServerResponse(let message),
             .InvalidServerAddress(let message):
            return message
        }
    }

    /// The fields to mark on a form (validation errors only).
    var fieldProblems: [FieldProblem] {
        if case .Validation(let fields, _) = self {
            return fields
        }
        return []
    }
}

/// Any error RepereKit or the system throws, as a sentence for the screen.
public func userMessage(for error: Error) -> String {
    if let repere = error as? RepereError {
        return repere.userMessage
    }
    if let key = error as? KeychainKeyStore.KeyError {
        return key.userMessage
    }
    return "Erreur inattendue. Les données déjà enregistrées sont conservées ; réessayez, et signalez le problème s'il persiste."
}

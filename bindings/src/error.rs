//! The one error type a shell sees: stable variants, each with a French sentence a field
//! worker can act on. No personal data: core errors never carry typed values, and the
//! technical detail stays out of these messages.

use repere_core::{Error as CoreError, Problem};
use repere_transport::SetupError;

/// A field to correct, for marking the form.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct FieldProblem {
    /// The record field, as in the record type (`birth_date`, `commune`…).
    pub field: String,
    /// Stable code: required, empty, too_long, in_future, too_old, age_out_of_range,
    /// unknown_commune, bad_format, end_before_start, newer_version_value, inconsistent.
    pub code: String,
    /// French, for the form.
    pub user_message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum RepereError {
    #[error("{user_message}")]
    Validation {
        fields: Vec<FieldProblem>,
        user_message: String,
    },
    #[error("{user_message}")]
    WrongKey { user_message: String },
    #[error("{user_message}")]
    InvalidKey { user_message: String },
    #[error("{user_message}")]
    NotFound { user_message: String },
    #[error("{user_message}")]
    Erased { user_message: String },
    #[error("{user_message}")]
    NoConflict { user_message: String },
    #[error("{user_message}")]
    NotEnrolled { user_message: String },
    #[error("{user_message}")]
    DeviceRevoked { user_message: String },
    /// The sync was cancelled (`SyncCancellation::cancel`, or the Kotlin/Swift task was
    /// cancelled). What it had applied stays; the next sync carries on.
    #[error("{user_message}")]
    Cancelled { user_message: String },
    /// The tablet has not reached its server for `days` days: no record can be read or
    /// written until a sync gets through (a lost tablet keeps nothing readable).
    #[error("{user_message}")]
    Locked { days: u32, user_message: String },
    /// The coordination revoked this tablet and ordered its store deleted: it is now
    /// empty and not enrolled.
    #[error("{user_message}")]
    Wiped { user_message: String },
    #[error("{user_message}")]
    InvalidEnrolmentCode { user_message: String },
    #[error("{user_message}")]
    NetworkUnavailable { user_message: String },
    #[error("{user_message}")]
    ServerRejected { user_message: String },
    #[error("{user_message}")]
    Storage { user_message: String },
    #[error("{user_message}")]
    Internal { user_message: String },
    /// An update whose record carries no version, a damaged one, or one this store never
    /// had: the form was not filled from a record read on this tablet. Nothing was written.
    #[error("{user_message}")]
    UnknownVersion { user_message: String },
    /// Enrolling again would leave `count` records whose changes never reached the server
    /// (they could not be sent first). Sync, or enrol again with `force` to set them aside.
    #[error("{user_message}")]
    UnsentChanges { count: u32, user_message: String },
    /// The server speaks none of the protocol versions this app knows.
    #[error("{user_message}")]
    IncompatibleServer { user_message: String },
    /// The server answered, but the answer could not be decoded.
    #[error("{user_message}")]
    InvalidServerResponse { user_message: String },
    /// The server address cannot be used: not an `https://` address, or `http://` to
    /// another machine (the token and the records would travel in clear). Nothing was sent.
    #[error("{user_message}")]
    InvalidServerAddress { user_message: String },
}

fn msg(s: &str) -> String {
    s.to_string()
}

impl RepereError {
    pub fn validation(fields: Vec<FieldProblem>) -> RepereError {
        RepereError::Validation {
            user_message: format!(
                "Fiche non enregistrée : {} champ(s) à corriger ({}).",
                fields.len(),
                fields
                    .iter()
                    .map(|f| f.field.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            fields,
        }
    }

    pub fn unknown_version() -> RepereError {
        RepereError::UnknownVersion {
            user_message: msg(
                "Modification non enregistrée : cette fiche n'a pas été ouverte sur cette tablette (version absente ou inconnue). Rouvrez la fiche et refaites la modification.",
            ),
        }
    }

    pub fn internal() -> RepereError {
        RepereError::Internal {
            user_message: msg(
                "Erreur interne de l'application. Les données déjà enregistrées sont conservées ; réessayez, et signalez le problème s'il persiste.",
            ),
        }
    }
}

pub fn problem_code(p: &Problem) -> &'static str {
    match p {
        Problem::Required => "required",
        Problem::Empty => "empty",
        Problem::TooLong { .. } => "too_long",
        Problem::TooMany { .. } => "too_many",
        Problem::InFuture => "in_future",
        Problem::TooOld => "too_old",
        Problem::AgeOutOfRange => "age_out_of_range",
        Problem::UnknownCommune => "unknown_commune",
        Problem::BadFormat => "bad_format",
        Problem::EndBeforeStart => "end_before_start",
        Problem::NewerVersionValue => "newer_version_value",
        Problem::Inconsistent(_) => "inconsistent",
    }
}

impl From<CoreError> for RepereError {
    fn from(e: CoreError) -> Self {
        match e {
            CoreError::Invalid(v) => RepereError::validation(
                v.0.iter()
                    .map(|f| FieldProblem {
                        field: f.field.to_string(),
                        code: problem_code(&f.problem).to_string(),
                        user_message: f.problem.to_string(),
                    })
                    .collect(),
            ),
            CoreError::WrongKey => RepereError::WrongKey {
                user_message: msg("Impossible d'ouvrir les données de la tablette avec cette clé."),
            },
            CoreError::BadKeyLength { .. } => RepereError::InvalidKey {
                user_message: msg(
                    "La clé de chiffrement fournie n'a pas la bonne taille (32 octets).",
                ),
            },
            CoreError::NotFound { .. }
            | CoreError::NoRecord { .. }
            | CoreError::WrongKind { .. }
            | CoreError::UnknownField { .. } => RepereError::NotFound {
                user_message: msg("Fiche introuvable sur cette tablette."),
            },
            CoreError::Erased { .. } => RepereError::Erased {
                user_message: msg("Cette fiche a été effacée à la demande d'un coordinateur."),
            },
            CoreError::NoConflict { .. } => RepereError::NoConflict {
                user_message: msg("Ce champ n'a pas (ou plus) de conflit à résoudre."),
            },
            CoreError::NotEnrolled => RepereError::NotEnrolled {
                user_message: msg(
                    "Tablette non inscrite : saisissez le code d'inscription fourni par l'administrateur.",
                ),
            },
            CoreError::Cancelled => RepereError::Cancelled {
                user_message: msg(
                    "Synchronisation interrompue. Ce qui a déjà été échangé est conservé ; la suite partira à la prochaine synchronisation.",
                ),
            },
            CoreError::DeviceRevoked | CoreError::Unauthorized => RepereError::DeviceRevoked {
                user_message: msg(
                    "L'accès de cette tablette a été révoqué : demandez un nouveau code d'inscription. Les saisies non envoyées restent sur la tablette.",
                ),
            },
            CoreError::Locked { days } => RepereError::Locked {
                days,
                user_message: format!(
                    "Fiches verrouillées : la tablette n'a pas joint le serveur depuis plus de {days} jours. Synchronisez pour les déverrouiller."
                ),
            },
            CoreError::Wiped | CoreError::WipeOrdered => RepereError::Wiped {
                user_message: msg(
                    "La coordination a retiré cette tablette : ses fiches ont été effacées. Pour la réutiliser, demandez un nouveau code d'inscription.",
                ),
            },
            CoreError::InvalidEnrolmentCode => RepereError::InvalidEnrolmentCode {
                user_message: msg("Code d'inscription inconnu, déjà utilisé ou expiré."),
            },
            CoreError::UnknownVersion { .. } => RepereError::unknown_version(),
            CoreError::UnsentChanges { count } => RepereError::UnsentChanges {
                count: u32::try_from(count).unwrap_or(u32::MAX),
                user_message: if count == 1 {
                    msg(
                        "1 fiche modifiée sur cette tablette n'a pas été envoyée : synchronisez avant de changer d'équipe, ou forcez le changement pour la mettre de côté.",
                    )
                } else {
                    format!(
                        "{count} fiches modifiées sur cette tablette n'ont pas été envoyées : synchronisez avant de changer d'équipe, ou forcez le changement pour les mettre de côté."
                    )
                },
            },
            CoreError::NoCommonVersion { .. } => RepereError::IncompatibleServer {
                user_message: msg(
                    "Le serveur et cette application ne parlent pas la même version du protocole de synchronisation : mettez l'application à jour (ou, si elle l'est, prévenez l'administrateur du serveur). Les saisies restent sur la tablette.",
                ),
            },
            CoreError::Protocol(_) => RepereError::InvalidServerResponse {
                user_message: msg(
                    "Le serveur a répondu, mais sa réponse est illisible. Les saisies restent sur la tablette et partiront à la prochaine synchronisation ; signalez le problème s'il persiste.",
                ),
            },
            CoreError::Network(_) => RepereError::NetworkUnavailable {
                user_message: msg(
                    "Serveur injoignable. Les saisies restent sur la tablette et partiront à la prochaine synchronisation.",
                ),
            },
            CoreError::Server { status, .. } => RepereError::ServerRejected {
                user_message: format!(
                    "Le serveur a refusé la demande (code {status}). Les saisies restent sur la tablette."
                ),
            },
            CoreError::Query(_) => RepereError::validation(vec![FieldProblem {
                field: "period".into(),
                code: "bad_format".into(),
                user_message: msg(
                    "Période invalide : la fin précède le début, ou elle est trop longue.",
                ),
            }]),
            CoreError::NewerSchema { .. } => RepereError::Storage {
                user_message: msg(
                    "Ces données viennent d'une version plus récente de l'application : mettez l'application à jour.",
                ),
            },
            CoreError::CorruptStore(_) => RepereError::Storage {
                user_message: msg(
                    "Les données de cette tablette sont endommagées. Ne supprimez pas l'application : signalez le problème à l'administrateur.",
                ),
            },
            CoreError::Unserializable(_) | CoreError::InvalidSetting(_) => RepereError::internal(),
            CoreError::CorruptDocument { .. }
            | CoreError::Storage(_)
            | CoreError::Automerge(_)
            | CoreError::Io(_) => RepereError::Storage {
                user_message: msg(
                    "Erreur d'enregistrement sur la tablette. Réessayez ; si cela persiste, synchronisez et signalez le problème.",
                ),
            },
        }
    }
}

impl From<SetupError> for RepereError {
    fn from(e: SetupError) -> Self {
        match e {
            SetupError::InsecureAddress => RepereError::InvalidServerAddress {
                user_message: msg(
                    "Adresse du serveur non sécurisée : utilisez https:// (demandez l'adresse exacte à l'administrateur).",
                ),
            },
            SetupError::InvalidAddress => RepereError::InvalidServerAddress {
                user_message: msg(
                    "Adresse du serveur invalide : vérifiez-la auprès de l'administrateur (elle commence par https://).",
                ),
            },
            // The TLS set-up of the device failed: the network cannot be used for now.
            SetupError::Client(_) => RepereError::NetworkUnavailable {
                user_message: msg(
                    "Serveur injoignable. Les saisies restent sur la tablette et partiront à la prochaine synchronisation.",
                ),
            },
        }
    }
}

impl From<repere_transport::ClientError> for RepereError {
    fn from(e: repere_transport::ClientError) -> Self {
        match e {
            repere_transport::ClientError::Core(e) => e.into(),
            repere_transport::ClientError::Setup(e) => e.into(),
        }
    }
}

/// Runs `f`, turning a panic inside core into `RepereError::Internal` so that no panic
/// ever crosses the FFI.
pub fn guard<T>(f: impl FnOnce() -> Result<T, RepereError>) -> Result<T, RepereError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .unwrap_or_else(|_| Err(RepereError::internal()))
}

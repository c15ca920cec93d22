//! The core's one error type. Messages never carry personal data: they name fields,
//! record kinds and identifiers, never the values a field worker typed.

use std::fmt;

use crate::records::RecordKind;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The key given does not open this store (or the file is not a Repère store).
    #[error("the key does not open this store, or the file is not a Repère store")]
    WrongKey,
    #[error("the store key must be {expected} bytes")]
    BadKeyLength { expected: usize },
    /// The store was written by a newer version of the app; opening it here could lose data.
    #[error("this store was written by a newer version of the app (schema {found}, known {known})")]
    NewerSchema { found: u32, known: u32 },
    #[error("{0}")]
    Invalid(#[from] ValidationErrors),
    #[error("no {kind} record with id {id}")]
    NotFound { kind: RecordKind, id: uuid::Uuid },
    /// No record of any kind has this id (or it was set aside, see `Store::set_aside`).
    #[error("no record with id {id}")]
    NoRecord { id: uuid::Uuid },
    /// An edit names a version of the record this store never had (a token from another
    /// store, or a damaged one).
    #[error("the version given for {kind} {id} is not one this store has")]
    UnknownVersion { kind: RecordKind, id: uuid::Uuid },
    /// A stored value cannot be read as what the store expects (its own metadata).
    #[error("the store is damaged: {0}")]
    CorruptStore(&'static str),
    /// A record could not be turned into document fields (a bug, never user input).
    #[error("a {0} record does not serialize as a map of fields")]
    Unserializable(RecordKind),
    /// Changing team would leave changes that never reached the server.
    #[error(
        "{count} records were changed on this tablet and not sent: sync them before changing team, or force the change to set them aside"
    )]
    UnsentChanges { count: usize },
    #[error("record {id} is a {actual}, not a {expected}")]
    WrongKind {
        id: uuid::Uuid,
        expected: RecordKind,
        actual: RecordKind,
    },
    /// A stored or received document cannot be read as the record it claims to be.
    #[error("the {kind} document {id} is damaged or unreadable: {reason}")]
    CorruptDocument {
        kind: RecordKind,
        id: uuid::Uuid,
        reason: String,
    },
    #[error("record {id} has no conflict on field `{field}`")]
    NoConflict { id: uuid::Uuid, field: String },
    #[error("unknown field `{field}` for a {kind}")]
    UnknownField { kind: RecordKind, field: String },
    #[error("record {id} was erased")]
    Erased { id: uuid::Uuid },
    #[error("this tablet is not enrolled with a sync server")]
    NotEnrolled,
    /// The sync was stopped by its caller; what was applied stays.
    #[error("sync cancelled")]
    Cancelled,
    #[error("this tablet's access was revoked: ask an administrator for a new enrolment code")]
    DeviceRevoked,
    /// The server answered a sync with its order to delete this store (a revoked tablet).
    #[error("this tablet was revoked with an order to delete its store")]
    WipeOrdered,
    /// The tablet has not reached its server for `days` days: its records are locked until
    /// a sync gets through.
    #[error("records locked: the server was not reached for more than {days} days")]
    Locked { days: u32 },
    #[error("invalid setting: {0}")]
    InvalidSetting(String),
    /// This store was deleted at the coordination's order: it holds no record and is no
    /// longer enrolled.
    #[error("this tablet's store was deleted at the coordination's order")]
    Wiped,
    #[error("the server refused this tablet's credentials")]
    Unauthorized,
    #[error("the enrolment code is unknown, already used or expired")]
    InvalidEnrolmentCode,
    #[error("the server cannot be reached: {0}")]
    Network(String),
    #[error("the server failed ({status}): {message}")]
    Server { status: u16, message: String },
    #[error("sync protocol error: {0}")]
    Protocol(#[from] crate::sync::DecodeError),
    /// The server speaks none of the protocol versions this app knows.
    #[error("the server speaks none of this app's protocol versions ({min} to {max})")]
    NoCommonVersion { min: u8, max: u8 },
    #[error("indicator query: {0}")]
    Query(#[from] crate::indicators::QueryError),
    #[error("storage failure: {0}")]
    Storage(#[from] rusqlite::Error),
    #[error("document engine failure: {0}")]
    Automerge(#[from] automerge::AutomergeError),
    #[error("file system failure: {0}")]
    Io(#[from] std::io::Error),
}

/// What is wrong with one field, in words a field worker can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    Required,
    Empty,
    TooLong {
        max: usize,
    },
    /// More items than a set may hold (young people of a group visit, members present).
    TooMany {
        max: usize,
    },
    InFuture,
    TooOld,
    AgeOutOfRange,
    UnknownCommune,
    BadFormat,
    EndBeforeStart,
    /// A value set by a newer version of the app, which this version cannot write.
    NewerVersionValue,
    Inconsistent(&'static str),
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Required => f.write_str("à renseigner"),
            Problem::Empty => f.write_str("ne peut pas être vide"),
            Problem::TooLong { max } => write!(f, "trop long ({max} caractères au plus)"),
            Problem::TooMany { max } => write!(f, "trop d'éléments ({max} au plus)"),
            Problem::InFuture => f.write_str("date dans le futur"),
            Problem::TooOld => f.write_str("date trop ancienne"),
            Problem::AgeOutOfRange => {
                f.write_str("l'âge au premier contact doit être entre 16 et 29 ans")
            }
            Problem::UnknownCommune => f.write_str("code commune INSEE inconnu"),
            Problem::BadFormat => f.write_str("format invalide"),
            Problem::EndBeforeStart => f.write_str("la fin précède le début"),
            Problem::NewerVersionValue => f.write_str(
                "valeur d'une version plus récente de l'application : à modifier sur une tablette à jour",
            ),
            Problem::Inconsistent(why) => f.write_str(why),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: &'static str,
    pub problem: Problem,
}

/// Every problem found in a record at once, so the form can mark all fields in one go.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ValidationErrors(pub Vec<FieldError>);

impl ValidationErrors {
    pub fn push(&mut self, field: &'static str, problem: Problem) {
        self.0.push(FieldError { field, problem });
    }

    pub fn into_result(self) -> Result<(), ValidationErrors> {
        if self.0.is_empty() { Ok(()) } else { Err(self) }
    }

    pub fn has(&self, field: &str) -> bool {
        self.0.iter().any(|e| e.field == field)
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid record: ")?;
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{}: {}", e.field, e.problem)?;
        }
        Ok(())
    }
}

impl std::error::Error for ValidationErrors {}

//! What the hub needs from a database, as a trait: administration (organisations, teams,
//! users, devices, enrolment codes) and the record log (documents, tombstones, the change
//! log). `sqlite` is the embedded implementation; a PostgreSQL one can be added beside it.
//!
//! The trait is synchronous: the HTTP layer calls the hub inside
//! `tokio::task::spawn_blocking`. It is also object safe (`Arc<dyn Storage>`), so the
//! backend can be chosen at start-up.
//!
//! Every read and write happens inside a transaction given to a closure: [`Storage::write`]
//! and [`Storage::read`]. A whole sync request (all its pushes, the pull, the device's
//! last-seen time) runs in one `write` and is committed before the answer is sent.

pub mod sqlite;

use chrono::{DateTime, Utc};
use repere_core::RecordKind;
use uuid::Uuid;

/// SHA-256 of a secret (device token, enrolment code). Secrets themselves are never stored.
pub type SecretHash = [u8; 32];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organisation {
    pub id: Uuid,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Team {
    pub id: Uuid,
    pub organisation_id: Uuid,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Reviews the teams of their organisation.
    Coordinator,
    /// Manages organisations, teams, users and devices.
    Admin,
    /// A member of a binôme.
    Field,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Coordinator => "coordinator",
            Role::Admin => "admin",
            Role::Field => "field",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        [Role::Coordinator, Role::Admin, Role::Field]
            .into_iter()
            .find(|r| r.as_str() == s)
    }
}

/// A person with access to the coordinators' pages. Credentials come later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: Uuid,
    pub organisation_id: Uuid,
    pub name: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
}

/// A one-time enrolment code, known only by its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrolmentCode {
    pub code_hash: SecretHash,
    pub team_id: Uuid,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
    /// The device enrolled with it, once used.
    pub device_id: Option<Uuid>,
}

/// An enrolled tablet. Its token is known only by its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub id: Uuid,
    pub team_id: Uuid,
    pub organisation_id: Uuid,
    pub label: String,
    pub enrolled_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub last_sync_at: Option<DateTime<Utc>>,
}

/// A record's document as the server keeps it: compact bytes, at its latest log position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDocument {
    pub id: Uuid,
    pub kind: RecordKind,
    pub team_id: Uuid,
    /// `RecordDoc::save()` output.
    pub doc: Vec<u8>,
    /// The document's heads, sorted (Automerge change hashes).
    pub heads: Vec<[u8; 32]>,
    pub seq: u64,
    /// Server time of the last stored change.
    pub received_at: DateTime<Utc>,
}

/// What is left of an erased record: no content, only where it sits in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tombstone {
    pub id: Uuid,
    pub team_id: Uuid,
    pub seq: u64,
    pub erased_at: DateTime<Utc>,
}

/// A document to store at the next log position.
#[derive(Debug, Clone, Copy)]
pub struct DocumentWrite<'a> {
    pub id: Uuid,
    pub kind: RecordKind,
    pub team_id: Uuid,
    pub doc: &'a [u8],
    pub heads: &'a [[u8; 32]],
    /// The device that pushed the change (`None`: written by the server, e.g. demo data).
    pub device_id: Option<Uuid>,
    pub received_at: DateTime<Utc>,
}

/// Per-team figures for the administrators' overview (counts only).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TeamCounts {
    pub documents: u64,
    pub tombstones: u64,
    pub active_devices: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// A row the operation refers to does not exist (unknown organisation for a team…).
    #[error("{what} {id} does not exist")]
    NotFound { what: &'static str, id: Uuid },
    /// A row already exists with this identity.
    #[error("{what} {id} already exists")]
    Duplicate { what: &'static str, id: Uuid },
    /// Stored data that cannot be read back (a bug, or a file damaged outside the server).
    #[error("stored data is damaged: {0}")]
    Corrupt(String),
    /// The database was written by a newer server.
    #[error("the database schema is version {found}, this server knows up to {known}")]
    NewerSchema { found: u32, known: u32 },
    /// The database failed (disk full, locked too long, I/O error…). Worth retrying later.
    #[error("database failure: {0}")]
    Backend(String),
    /// The work given to a transaction stopped it; nothing was written.
    #[error("transaction rolled back")]
    Aborted,
}

pub type StorageResult<T> = Result<T, StorageError>;

/// Reads, inside a transaction (a consistent snapshot).
pub trait ReadTx {
    fn organisations(&mut self) -> StorageResult<Vec<Organisation>>;
    fn organisation(&mut self, id: Uuid) -> StorageResult<Option<Organisation>>;
    fn teams(&mut self) -> StorageResult<Vec<Team>>;
    fn team(&mut self, id: Uuid) -> StorageResult<Option<Team>>;
    fn team_counts(&mut self, team_id: Uuid) -> StorageResult<TeamCounts>;
    fn users(&mut self) -> StorageResult<Vec<User>>;
    fn enrolment_code(&mut self, code_hash: &SecretHash) -> StorageResult<Option<EnrolmentCode>>;
    fn device(&mut self, id: Uuid) -> StorageResult<Option<Device>>;
    fn device_by_token(&mut self, token_hash: &SecretHash) -> StorageResult<Option<Device>>;
    /// Every device, or a team's, in enrolment order.
    fn devices(&mut self, team_id: Option<Uuid>) -> StorageResult<Vec<Device>>;

    fn document(&mut self, id: Uuid) -> StorageResult<Option<StoredDocument>>;
    fn tombstone(&mut self, id: Uuid) -> StorageResult<Option<Tombstone>>;
    /// The highest log position given so far (0 when the log is empty).
    fn last_seq(&mut self) -> StorageResult<u64>;
    /// A team's documents with `seq > after`, in `seq` order, at most `limit`.
    fn documents_after(
        &mut self,
        team_id: Uuid,
        after: u64,
        limit: usize,
    ) -> StorageResult<Vec<StoredDocument>>;
    /// A team's tombstones with `after < seq <= up_to` (no upper bound when `None`), in
    /// `seq` order, at most `limit`.
    fn tombstones_after(
        &mut self,
        team_id: Uuid,
        after: u64,
        up_to: Option<u64>,
        limit: usize,
    ) -> StorageResult<Vec<Tombstone>>;
}

/// Reads and writes, inside one write transaction.
pub trait Tx: ReadTx {
    fn insert_organisation(&mut self, org: &Organisation) -> StorageResult<()>;
    /// Fails with `NotFound` when the organisation does not exist.
    fn insert_team(&mut self, team: &Team) -> StorageResult<()>;
    /// Fails with `NotFound` when the organisation does not exist.
    fn insert_user(&mut self, user: &User) -> StorageResult<()>;
    /// Fails with `NotFound` when the team does not exist.
    fn insert_enrolment_code(&mut self, code: &EnrolmentCode) -> StorageResult<()>;
    /// Marks an unused code as used by `device_id`; `false` if it was already used.
    fn use_enrolment_code(
        &mut self,
        code_hash: &SecretHash,
        device_id: Uuid,
        at: DateTime<Utc>,
    ) -> StorageResult<bool>;
    /// `device.organisation_id`, `revoked_at` and `last_sync_at` are ignored.
    fn insert_device(&mut self, device: &Device, token_hash: &SecretHash) -> StorageResult<()>;
    /// `false` if the device does not exist; revoking twice keeps the first time.
    fn revoke_device(&mut self, id: Uuid, at: DateTime<Utc>) -> StorageResult<bool>;
    fn touch_device(&mut self, id: Uuid, at: DateTime<Utc>) -> StorageResult<()>;

    /// Inserts or replaces a document, gives it the next log position and records the
    /// change in the change log. Returns the position.
    fn put_document(&mut self, doc: DocumentWrite<'_>) -> StorageResult<u64>;
    /// Deletes a document and leaves a tombstone at the next log position. `None` when
    /// there is no such document.
    fn erase_document(&mut self, id: Uuid, at: DateTime<Utc>) -> StorageResult<Option<Tombstone>>;
}

/// A transactional store for the hub.
///
/// # Contract for implementations
///
/// - `write` runs `work` in one transaction and commits it when `work` returns `Ok`, before
///   returning; it rolls everything back when `work` returns `Err` (the error is returned).
///   It may run `work` again after a serialization failure or deadlock, so `work` must not
///   have effects outside the transaction. `read` gives a consistent snapshot and never
///   writes.
/// - **Log positions** (`put_document`, `erase_document`) come from one increasing sequence
///   shared by documents and tombstones, and must become *visible* in increasing order: a
///   reader that sees position N+1 must already see N, or a device whose cursor passed N+1
///   would never get N. SQLite has one writer, so this holds by construction. A PostgreSQL
///   implementation (several server instances on one database) must take positions only
///   while holding a transaction-scoped advisory lock (`pg_advisory_xact_lock(<constant>)`,
///   taken just before the first position of the transaction and released by the commit),
///   so that transactions that write the log commit one after another in position order.
///   A bare `SEQUENCE` is not enough: a later transaction could commit first.
/// - Reading the log (`documents_after`, `tombstones_after`) inside `write` sees the
///   transaction's own writes.
pub trait Storage: Send + Sync {
    fn write(&self, work: &mut dyn FnMut(&mut dyn Tx) -> StorageResult<()>) -> StorageResult<()>;
    fn read(&self, work: &mut dyn FnMut(&mut dyn ReadTx) -> StorageResult<()>)
    -> StorageResult<()>;
}

impl dyn Storage + '_ {
    /// Runs `work` in a write transaction and returns its result. An `Err` from `work`
    /// rolls the transaction back and is returned as is.
    pub fn write_with<T, E: From<StorageError>>(
        &self,
        mut work: impl FnMut(&mut dyn Tx) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut out: Option<Result<T, E>> = None;
        let result = self.write(&mut |tx| {
            let r = work(tx);
            let failed = r.is_err();
            out = Some(r);
            if failed {
                Err(StorageError::Aborted)
            } else {
                Ok(())
            }
        });
        finish(result, out)
    }

    /// Runs `work` in a read transaction and returns its result.
    pub fn read_with<T, E: From<StorageError>>(
        &self,
        mut work: impl FnMut(&mut dyn ReadTx) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut out: Option<Result<T, E>> = None;
        let result = self.read(&mut |tx| {
            let r = work(tx);
            let failed = r.is_err();
            out = Some(r);
            if failed {
                Err(StorageError::Aborted)
            } else {
                Ok(())
            }
        });
        finish(result, out)
    }
}

fn finish<T, E: From<StorageError>>(
    result: StorageResult<()>,
    out: Option<Result<T, E>>,
) -> Result<T, E> {
    match (result, out) {
        // Committed: the work's value.
        (Ok(()), Some(Ok(v))) => Ok(v),
        // The work failed: its own error, not the rollback marker.
        (Err(StorageError::Aborted), Some(Err(e))) => Err(e),
        // Commit (or begin) failed.
        (Err(e), _) => Err(e.into()),
        (Ok(()), Some(Err(e))) => Err(e),
        (Ok(()), None) => Err(StorageError::Backend("transaction ran no work".into()).into()),
    }
}

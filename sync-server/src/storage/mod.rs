//! What the hub needs from a database, as a trait: administration (organisations, teams,
//! users, devices, enrolment codes) and the record log (documents, tombstones, the change
//! log). `sqlite` is the embedded implementation; `postgres` serves several instances on
//! one database.
//!
//! The trait is synchronous: the HTTP layer calls the hub inside
//! `tokio::task::spawn_blocking`. It is also object safe (`Arc<dyn Storage>`), so the
//! backend can be chosen at start-up.
//!
//! Every read and write happens inside a transaction given to a closure: [`Storage::write`]
//! and [`Storage::read`]. A whole sync request (all its pushes, the pull, the device's
//! last-seen time) runs in one `write` and is committed before the answer is sent.

pub mod postgres;
pub mod register;
pub mod sqlite;

use chrono::{DateTime, NaiveDate, Utc};
use repere_core::RecordKind;
use repere_core::indicators::Targets;
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

/// A person with access to the coordinators' pages (credentials: [`Credentials`]).
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
    /// The writer id the store named at enrolment (see `EnrolRequest::writer`): new changes
    /// from this device must be written under it. `None`: enrolled by an older app.
    pub writer: Option<Uuid>,
    /// The log position up to which the device has applied everything (its last cursor).
    pub applied_seq: u64,
    /// Ordered with its revocation: the tablet deletes its store at its next contact.
    pub wipe: Option<WipeOrder>,
    /// When the order was delivered (the tablet then deleted its store).
    pub wipe_sent_at: Option<DateTime<Utc>>,
    /// The app version it reported at its last accepted sync (protocol 7).
    pub app_version: Option<String>,
    /// How many of its records waited to be sent at its last accepted sync (protocol 7).
    pub unsent: Option<u64>,
}

/// How a revoked tablet is told to delete its store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WipeOrder {
    /// Its unsent changes are taken first, then the store goes.
    AfterPush,
    /// The store goes at once; nothing more is taken from it (a stolen tablet).
    Urgent,
}

impl WipeOrder {
    pub fn as_str(self) -> &'static str {
        match self {
            WipeOrder::AfterPush => "after_push",
            WipeOrder::Urgent => "urgent",
        }
    }

    pub fn parse(s: &str) -> Option<WipeOrder> {
        [WipeOrder::AfterPush, WipeOrder::Urgent]
            .into_iter()
            .find(|w| w.as_str() == s)
    }
}

/// An erasure asked for in the coordinators' pages (four eyes: decided by someone else).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErasureRequest {
    pub id: Uuid,
    pub organisation_id: Uuid,
    pub team_id: Uuid,
    pub record_id: Uuid,
    pub record_kind: RecordKind,
    /// `ErasureReason::as_str`.
    pub reason: String,
    pub requested_by: Uuid,
    pub requested_at: DateTime<Utc>,
    pub decision: Option<ErasureDecision>,
    pub executed: Option<ErasureExecuted>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErasureDecision {
    pub approved: bool,
    pub by: Uuid,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErasureExecuted {
    pub at: DateTime<Utc>,
    pub tombstone_seq: u64,
    pub also_erased: u32,
    pub removed_from: u32,
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
    /// The record's fields as JSON, when stored with the document.
    pub fields: Option<String>,
    /// How many times the record was rewritten (rectified); 0 if never.
    pub generation: u32,
}

/// A stored record's fields, without its document (for the retention rules).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordFields {
    pub id: Uuid,
    pub kind: RecordKind,
    pub team_id: Uuid,
    pub fields: String,
}

/// What is left of an erased record: no content, only where it sits in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tombstone {
    pub id: Uuid,
    pub team_id: Uuid,
    pub seq: u64,
    pub erased_at: DateTime<Utc>,
}

/// Where a young person's transfer to another team stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferState {
    Pending,
    Accepted,
    Refused,
    Cancelled,
}

impl TransferState {
    pub fn as_str(self) -> &'static str {
        match self {
            TransferState::Pending => "pending",
            TransferState::Accepted => "accepted",
            TransferState::Refused => "refused",
            TransferState::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<TransferState> {
        [
            TransferState::Pending,
            TransferState::Accepted,
            TransferState::Refused,
            TransferState::Cancelled,
        ]
        .into_iter()
        .find(|t| t.as_str() == s)
    }

    pub fn label(self) -> &'static str {
        match self {
            TransferState::Pending => "en attente",
            TransferState::Accepted => "accepté",
            TransferState::Refused => "refusé",
            TransferState::Cancelled => "annulé",
        }
    }
}

/// A young person's transfer from their team to another (ids only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    pub id: Uuid,
    pub youth_id: Uuid,
    pub from_team: Uuid,
    pub to_team: Uuid,
    pub requested_by: Uuid,
    pub requested_at: DateTime<Utc>,
    pub state: TransferState,
    pub decided_by: Option<Uuid>,
    pub decided_at: Option<DateTime<Utc>>,
}

/// Who reads a file under a break-the-glass grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grantee {
    /// A user of the pages.
    User(Uuid),
    /// A tablet, for the team member it declared.
    Device { device_id: Uuid, member_id: Uuid },
}

/// Break-the-glass: read access to one young person's file outside the reader's scope,
/// until `expires_at` unless ended before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessGrant {
    pub id: Uuid,
    pub youth_id: Uuid,
    /// The team holding the file when access was granted.
    pub team_id: Uuid,
    pub grantee: Grantee,
    /// Why: personal data, shown to the holding team's coordination, never logged.
    pub reason: String,
    pub granted_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    pub ended_by: Option<Uuid>,
}

impl AccessGrant {
    /// Whether the file may be read under it at `now`.
    pub fn active(&self, now: DateTime<Utc>) -> bool {
        self.ended_at.is_none() && now < self.expires_at
    }
}

/// A record that left a team (moved with a transferred young person), at its log position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Departure {
    pub id: Uuid,
    pub team_id: Uuid,
    pub seq: u64,
}

/// A document to store at the next log position.
#[derive(Debug, Clone, Copy)]
pub struct DocumentWrite<'a> {
    pub id: Uuid,
    pub kind: RecordKind,
    pub team_id: Uuid,
    pub doc: &'a [u8],
    pub heads: &'a [[u8; 32]],
    /// The record's fields as JSON (`RecordDoc::read_fields`), handed to tablets that pull
    /// the record for the first time.
    pub fields: &'a str,
    /// The device that pushed the change (`None`: written by the server, e.g. demo data).
    pub device_id: Option<Uuid>,
    pub received_at: DateTime<Utc>,
    /// The record's generation: the stored one, or one more when the server rewrites it.
    pub generation: u32,
}

/// Per-team figures for the administrators' overview (counts only).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TeamCounts {
    pub documents: u64,
    pub tombstones: u64,
    pub active_devices: u64,
}

/// A user with what signing in needs. The password hash is an Argon2id PHC string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub user: User,
    /// Lowercased; `None` until an administrator gives one.
    pub login: Option<String>,
    pub password_hash: Option<String>,
}

/// A rate limit as a token bucket: `burst` requests at once, then `per_second`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    /// At least 1.
    pub burst: f64,
    /// More than 0.
    pub per_second: f64,
}

/// A signed-in browser. Its cookie token is known only by its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub token_hash: SecretHash,
    pub user_id: Uuid,
    /// Required in every form the session posts (compared in constant time).
    pub csrf_token: String,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    /// Idle expiry: moved forward as the session is used.
    pub expires_at: DateTime<Utc>,
}

/// One line of the audit log: ids and fixed words, never personal data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// Given by the storage (ignored on insert).
    pub id: u64,
    pub at: DateTime<Utc>,
    /// The organisation whose journal shows it (`None`: an unknown login).
    pub organisation_id: Option<Uuid>,
    pub user_id: Option<Uuid>,
    pub action: String,
    pub target_id: Option<Uuid>,
    pub detail: String,
}

/// Where a visit stands in the coordinators' review.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VisitState {
    /// No decision yet (no stored review).
    ToReview,
    Approved,
    /// The latest action was a question to the binôme.
    Question,
    Flagged,
}

impl VisitState {
    pub const ALL: [VisitState; 4] = [
        VisitState::ToReview,
        VisitState::Approved,
        VisitState::Question,
        VisitState::Flagged,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            VisitState::ToReview => "to_review",
            VisitState::Approved => "approved",
            VisitState::Question => "question",
            VisitState::Flagged => "flagged",
        }
    }

    pub fn parse(s: &str) -> Option<VisitState> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// The French label the pages show.
    pub fn label(self) -> &'static str {
        match self {
            VisitState::ToReview => "à revoir",
            VisitState::Approved => "approuvée",
            VisitState::Question => "question posée",
            VisitState::Flagged => "signalée",
        }
    }
}

/// A coordinator's latest decision on a visit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VisitReview {
    pub contact_id: Uuid,
    /// Never `ToReview` (that is the absence of a review).
    pub state: VisitState,
    /// Why it was flagged.
    pub reason: Option<String>,
    pub user_id: Uuid,
    pub at: DateTime<Utc>,
}

/// A member of a team: the id records name, and a display name (personal data: shown on
/// the team's tablets and the coordinators' pages, never logged).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeamMember {
    pub id: Uuid,
    pub team_id: Uuid,
    pub display_name: String,
    /// Inactive members still name past records; tablets offer only active ones.
    pub active: bool,
    pub changed_at: DateTime<Utc>,
    /// The roster change that last touched it (a team's roster version is the highest).
    pub seq: u64,
}

/// One entry of the change log of a document: when the server stored a change of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    pub seq: u64,
    /// "change" or "erase".
    pub op: String,
    /// The device that pushed it (`None`: written by the server).
    pub device_id: Option<Uuid>,
    pub received_at: DateTime<Utc>,
}

/// A record as the coordinators' pages read it: its fields as JSON (derived from the
/// document, see `record_view` in the schema).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewRecord {
    pub id: Uuid,
    pub kind: RecordKind,
    pub team_id: Uuid,
    pub seq: u64,
    pub received_at: DateTime<Utc>,
    /// The record serialized with serde_json.
    pub fields: String,
}

/// A record's derived row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewWrite {
    pub record: ViewRecord,
    /// Contact: the day as entered on the device.
    pub day: Option<NaiveDate>,
    /// Contact: the instant, for ordering.
    pub at_ms: Option<i64>,
    pub commune: Option<String>,
    /// Action, outcome: the young person; review task: the contact.
    pub ref_id: Option<Uuid>,
    /// Contact: the young people met.
    pub youth_ids: Vec<Uuid>,
}

/// A visit in a list, with its review (if any).
pub type VisitRow = (ViewRecord, Option<VisitReview>);

/// A young person's derived row (`youth_summary`): computed from the view rows of their
/// records, so that lists, exports and indicators read one row per young person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YouthSummary {
    pub youth_id: Uuid,
    pub team_id: Uuid,
    /// `YouthStatus`'s serde id.
    pub status: String,
    /// Folded names, alias and home commune name: what the list's search matches.
    pub search: String,
    pub first_contact: NaiveDate,
    /// The day (as entered) of the latest visit naming them.
    pub last_visit: Option<NaiveDate>,
    pub visits: u32,
    pub actions: u32,
    pub outcomes: u32,
    /// `repere_core::indicators::Reached` as JSON; `None` when never visited.
    pub reached: Option<String>,
}

/// A young person's derived row with their own view row.
pub type YouthRow = (YouthSummary, ViewRecord);

/// Which young people a list shows. `teams` is the caller's scope: always given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct YouthFilter {
    pub teams: Vec<Uuid>,
    /// `YouthStatus`'s serde id.
    pub status: Option<String>,
    /// Folded words that `search` must all contain.
    pub words: Vec<String>,
    pub offset: usize,
    pub limit: usize,
}

/// Which visits (contacts) a list shows. `teams` is the caller's scope: always given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VisitFilter {
    pub teams: Vec<Uuid>,
    /// First and last day (as entered on the device), both included.
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    /// INSEE codes; `Some(empty)` matches nothing.
    pub communes: Option<Vec<String>>,
    pub state: Option<VisitState>,
    pub offset: usize,
    pub limit: usize,
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
    /// The devices enrolled with this writer id (a store enrolled again, in enrolment
    /// order) and their token hashes.
    fn devices_of_writer(&mut self, writer: Uuid) -> StorageResult<Vec<(Device, SecretHash)>>;
    /// Every device, or a team's, in enrolment order.
    fn devices(&mut self, team_id: Option<Uuid>) -> StorageResult<Vec<Device>>;
    fn erasure_request(&mut self, id: Uuid) -> StorageResult<Option<ErasureRequest>>;
    /// The organisation's erasure requests, newest first.
    fn erasure_requests(&mut self, organisation_id: Uuid) -> StorageResult<Vec<ErasureRequest>>;

    fn document(&mut self, id: Uuid) -> StorageResult<Option<StoredDocument>>;
    fn tombstone(&mut self, id: Uuid) -> StorageResult<Option<Tombstone>>;
    /// The coordinators' questions (review tasks) about a visit: they quote it, so they are
    /// erased with it.
    /// The actions, outcomes and visits that name this young person.
    fn records_of_youth(&mut self, youth_id: Uuid) -> StorageResult<Vec<StoredDocument>>;
    fn review_tasks_of(&mut self, contact_id: Uuid) -> StorageResult<Vec<Uuid>>;
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

    /// A team's departures with `after < seq <= up_to` (no upper bound when `None`), in
    /// `seq` order, at most `limit`.
    fn departures_after(
        &mut self,
        team_id: Uuid,
        after: u64,
        up_to: Option<u64>,
        limit: usize,
    ) -> StorageResult<Vec<Departure>>;
    /// Whether the record left this team (and has not come back).
    fn departed(&mut self, id: Uuid, team_id: Uuid) -> StorageResult<bool>;
    fn transfer(&mut self, id: Uuid) -> StorageResult<Option<Transfer>>;
    /// The transfers from or to any of these teams, newest first.
    fn transfers_of(&mut self, teams: &[Uuid]) -> StorageResult<Vec<Transfer>>;
    fn access_grant(&mut self, id: Uuid) -> StorageResult<Option<AccessGrant>>;
    /// The grants on files held by these teams, newest first, at most `limit`.
    fn access_grants_on(&mut self, teams: &[Uuid], limit: usize)
    -> StorageResult<Vec<AccessGrant>>;
    /// The grants to one user or tablet, newest first, at most `limit`.
    fn access_grants_to(
        &mut self,
        grantee: Grantee,
        limit: usize,
    ) -> StorageResult<Vec<AccessGrant>>;

    // --- Coordinators' workspace ---

    fn credentials(&mut self, user_id: Uuid) -> StorageResult<Option<Credentials>>;
    /// `login` lowercased.
    fn credentials_by_login(&mut self, login: &str) -> StorageResult<Option<Credentials>>;
    fn session(&mut self, token_hash: &SecretHash) -> StorageResult<Option<Session>>;
    /// A user's sessions, newest first (expired ones included until they are swept).
    fn user_sessions(&mut self, user_id: Uuid) -> StorageResult<Vec<Session>>;
    /// An organisation's audit entries, newest first (only those about `target` if given),
    /// with the total count.
    fn audit_entries(
        &mut self,
        organisation_id: Uuid,
        target: Option<Uuid>,
        offset: usize,
        limit: usize,
    ) -> StorageResult<(Vec<AuditEntry>, u64)>;
    fn targets(&mut self, organisation_id: Uuid) -> StorageResult<Option<Targets>>;
    /// The organisation's retention rule in months, if it set one.
    fn retention_months(&mut self, organisation_id: Uuid) -> StorageResult<Option<u32>>;
    /// Every stored record of these kinds: id, kind, team and fields JSON (no document).
    fn record_fields(&mut self, kinds: &[RecordKind]) -> StorageResult<Vec<RecordFields>>;
    fn server_secret(&mut self, name: &str) -> StorageResult<Option<Vec<u8>>>;
    /// When the server stored changes of a document, in log order.
    fn change_log(&mut self, doc_id: Uuid) -> StorageResult<Vec<LogEntry>>;
    /// Every team's documents with `seq > after`, in `seq` order, at most `limit`.
    fn documents_since(&mut self, after: u64, limit: usize) -> StorageResult<Vec<StoredDocument>>;
    /// The log position the derived view has caught up with.
    fn view_seq(&mut self) -> StorageResult<u64>;
    fn view_record(&mut self, id: Uuid) -> StorageResult<Option<ViewRecord>>;
    /// Records of `kind` referring to `ref_id` (a young person's actions, a contact's tasks).
    fn view_by_ref(&mut self, kind: RecordKind, ref_id: Uuid) -> StorageResult<Vec<ViewRecord>>;
    /// The contacts that list a young person.
    fn view_contacts_of_youth(&mut self, youth_id: Uuid) -> StorageResult<Vec<ViewRecord>>;
    /// A page of visits, newest first, each with its review, and how many match in all.
    fn visits(&mut self, filter: &VisitFilter) -> StorageResult<(Vec<VisitRow>, u64)>;
    /// Young people whose derived row is out of date (`put_view` and `delete_view` mark
    /// them), at most `limit`.
    fn dirty_youth(&mut self, limit: usize) -> StorageResult<Vec<Uuid>>;
    /// A page of young people with their derived rows, most recently visited first
    /// (`last_visit` descending, never visited last, then `first_contact` and id
    /// descending), and how many match in all.
    fn youth_page(&mut self, filter: &YouthFilter) -> StorageResult<(Vec<YouthRow>, u64)>;
    /// The young people of these teams with ids above `after`, by id, at most `limit`
    /// (an export reads them page by page).
    fn youth_rows_after(
        &mut self,
        teams: &[Uuid],
        after: Option<Uuid>,
        limit: usize,
    ) -> StorageResult<Vec<YouthRow>>;
    /// The `reached` facts of the young people of these teams (those ever visited).
    fn reached_facts(&mut self, teams: &[Uuid]) -> StorageResult<Vec<String>>;
    fn visit_review(&mut self, contact_id: Uuid) -> StorageResult<Option<VisitReview>>;
    /// Decisions on `team_id`'s visits at positions after `after`, by position.
    fn decisions_after(
        &mut self,
        team_id: Uuid,
        after: u64,
        limit: usize,
    ) -> StorageResult<Vec<(u64, VisitReview)>>;
    /// The highest decision position ever given.
    fn last_decision_seq(&mut self) -> StorageResult<u64>;
    /// A team's members, active or not, by name.
    fn team_members(&mut self, team_id: Uuid) -> StorageResult<Vec<TeamMember>>;
    fn team_member(&mut self, id: Uuid) -> StorageResult<Option<TeamMember>>;

    // --- Coordinator accounts: throttling, disabled users, second factor ---

    /// Sign-in attempts since `since` (included) with this account key, and with this
    /// address key.
    fn login_attempt_counts(
        &mut self,
        account_key: &SecretHash,
        address_key: &SecretHash,
        since: DateTime<Utc>,
    ) -> StorageResult<(u64, u64)>;
    /// When an administrator disabled the user (`None`: enabled, or no such user).
    fn user_disabled_at(&mut self, user_id: Uuid) -> StorageResult<Option<DateTime<Utc>>>;
    /// Whether the session's sign-in was confirmed with a second factor.
    fn session_second_factor(&mut self, token_hash: &SecretHash) -> StorageResult<bool>;
    fn login_challenge(&mut self, token_hash: &SecretHash)
    -> StorageResult<Option<LoginChallenge>>;
    fn user_totp(&mut self, user_id: Uuid) -> StorageResult<Option<UserTotp>>;
    /// How many of the user's recovery codes are still unused.
    fn unused_recovery_codes(&mut self, user_id: Uuid) -> StorageResult<u64>;
}

/// Reads and writes, inside one write transaction.
pub trait Tx: ReadTx {
    fn insert_organisation(&mut self, org: &Organisation) -> StorageResult<()>;
    /// Fails with `NotFound` when the organisation does not exist.
    fn rename_organisation(&mut self, id: Uuid, name: &str) -> StorageResult<()>;
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
    /// Orders a (revoked) device to wipe its store; an urgent order replaces a later one.
    fn order_wipe(&mut self, id: Uuid, order: WipeOrder) -> StorageResult<()>;
    fn wipe_sent(&mut self, id: Uuid, at: DateTime<Utc>) -> StorageResult<()>;
    /// A sync from the device: when, the cursor it sent (what it has applied), and what it
    /// said of itself (`None`: not said, an older app or a version string refused).
    fn touch_device(
        &mut self,
        id: Uuid,
        at: DateTime<Utc>,
        applied_seq: u64,
        app_version: Option<&str>,
        unsent: Option<u32>,
    ) -> StorageResult<()>;
    fn insert_erasure_request(&mut self, request: &ErasureRequest) -> StorageResult<()>;
    fn decide_erasure_request(&mut self, id: Uuid, decision: &ErasureDecision)
    -> StorageResult<()>;
    fn executed_erasure_request(
        &mut self,
        id: Uuid,
        executed: &ErasureExecuted,
    ) -> StorageResult<()>;

    /// Inserts or replaces a document, gives it the next log position and records the
    /// change in the change log. Returns the position.
    fn put_document(&mut self, doc: DocumentWrite<'_>) -> StorageResult<u64>;
    /// Deletes a document and leaves a tombstone at the next log position. `None` when
    /// there is no such document. Whatever was derived from it (its `record_view` rows, a
    /// visit's review) goes in the same transaction.
    fn erase_document(&mut self, id: Uuid, at: DateTime<Utc>) -> StorageResult<Option<Tombstone>>;
    /// A tombstone for a record the server never stored (one that arrives naming only
    /// erased young people), at the next log position.
    fn bury(&mut self, id: Uuid, team_id: Uuid, at: DateTime<Utc>) -> StorageResult<Tombstone>;

    /// Records that `id` left `team_id`, at the next log position; a record coming back to
    /// a team it had left loses that departure.
    fn put_departure(&mut self, id: Uuid, team_id: Uuid, at: DateTime<Utc>) -> StorageResult<u64>;
    fn delete_departure(&mut self, id: Uuid, team_id: Uuid) -> StorageResult<()>;
    fn insert_transfer(&mut self, transfer: &Transfer) -> StorageResult<()>;
    /// `Duplicate` if the id is taken.
    fn insert_access_grant(&mut self, grant: &AccessGrant) -> StorageResult<()>;
    /// Ends a grant not ended yet; `false` if it was.
    fn end_access_grant(&mut self, id: Uuid, by: Uuid, at: DateTime<Utc>) -> StorageResult<bool>;
    /// Ends a pending transfer; `false` if it was no longer pending.
    fn end_transfer(
        &mut self,
        id: Uuid,
        state: TransferState,
        by: Uuid,
        at: DateTime<Utc>,
    ) -> StorageResult<bool>;

    // --- Coordinators' workspace ---

    /// Changes a user's role; `false` when the user does not exist.
    fn set_user_role(&mut self, user_id: Uuid, role: Role) -> StorageResult<bool>;
    /// Sets (or clears) a user's login; `Duplicate` if another user has it.
    fn set_login(&mut self, user_id: Uuid, login: Option<&str>) -> StorageResult<()>;
    /// `NotFound` when the user does not exist.
    fn set_password_hash(
        &mut self,
        user_id: Uuid,
        hash: &str,
        at: DateTime<Utc>,
    ) -> StorageResult<()>;
    fn insert_session(&mut self, session: &Session) -> StorageResult<()>;
    fn touch_session(
        &mut self,
        token_hash: &SecretHash,
        last_seen_at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> StorageResult<()>;
    fn delete_session(&mut self, token_hash: &SecretHash) -> StorageResult<()>;
    fn delete_user_sessions(&mut self, user_id: Uuid) -> StorageResult<()>;
    /// Deletes sessions expired at `now`; returns how many.
    fn delete_expired_sessions(&mut self, now: DateTime<Utc>) -> StorageResult<u64>;
    fn insert_audit(&mut self, entry: &AuditEntry) -> StorageResult<()>;
    /// Stores a visit's latest decision at the next decision position.
    fn put_visit_review(&mut self, review: &VisitReview) -> StorageResult<()>;
    /// Adds or changes a team member at the next roster position; returns it.
    fn put_team_member(&mut self, member: &TeamMember) -> StorageResult<u64>;
    /// `NotFound` when the organisation does not exist.
    fn set_retention_months(
        &mut self,
        organisation_id: Uuid,
        months: u32,
        at: DateTime<Utc>,
    ) -> StorageResult<()>;
    fn set_targets(
        &mut self,
        organisation_id: Uuid,
        targets: &Targets,
        at: DateTime<Utc>,
    ) -> StorageResult<()>;
    /// Replaces the secret of that name (the log epoch after a restore).
    fn replace_server_secret(
        &mut self,
        name: &str,
        value: &[u8],
        at: DateTime<Utc>,
    ) -> StorageResult<()>;
    /// Keeps an existing secret of that name; returns the one stored.
    fn insert_server_secret(
        &mut self,
        name: &str,
        value: &[u8],
        at: DateTime<Utc>,
    ) -> StorageResult<Vec<u8>>;
    /// Writes a record's view row. The young people it named before and names now are
    /// marked for their derived rows to be computed again (`dirty_youth`).
    fn put_view(&mut self, row: &ViewWrite) -> StorageResult<()>;
    /// Deletes a record's view row, marking as `put_view` does; a young person's own
    /// derived row goes at once (an erased name must not wait for a refresh).
    fn delete_view(&mut self, id: Uuid) -> StorageResult<()>;
    /// Replaces a young person's derived row and clears their mark.
    fn put_youth_summary(&mut self, summary: &YouthSummary) -> StorageResult<()>;
    /// Deletes a young person's derived row (no longer in the view) and clears their mark.
    fn delete_youth_summary(&mut self, youth_id: Uuid) -> StorageResult<()>;
    fn set_view_seq(&mut self, seq: u64) -> StorageResult<()>;

    // --- Coordinator accounts: throttling, disabled users, second factor ---

    fn insert_login_attempt(
        &mut self,
        account_key: &SecretHash,
        address_key: &SecretHash,
        at: DateTime<Utc>,
    ) -> StorageResult<()>;
    /// Forgets the attempts of this account key from this address key (a sign-in succeeded).
    fn delete_login_attempts(
        &mut self,
        account_key: &SecretHash,
        address_key: &SecretHash,
    ) -> StorageResult<()>;
    /// Deletes attempts before `before` and throttle notices over at `now`.
    fn prune_login_attempts(
        &mut self,
        before: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StorageResult<()>;
    /// Takes one token from the bucket `key` (full when new, refilled continuously), or
    /// refuses (`false`, nothing written). Atomic against concurrent takers, on every
    /// instance sharing the database.
    fn take_token(
        &mut self,
        key: &SecretHash,
        bucket: Bucket,
        now: DateTime<Utc>,
    ) -> StorageResult<bool>;
    /// Deletes the buckets that are full again at `now`; returns how many.
    fn prune_rate_buckets(&mut self, now: DateTime<Utc>) -> StorageResult<u64>;
    /// Takes the throttle notice of `key` until `until` unless one is still running at
    /// `now`; `true` when taken (the caller audits once per throttled window).
    fn claim_throttle_notice(
        &mut self,
        key: &SecretHash,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> StorageResult<bool>;
    /// Disables (`Some`) or enables (`None`) a user; `NotFound` when there is no such user.
    fn set_user_disabled(&mut self, user_id: Uuid, at: Option<DateTime<Utc>>) -> StorageResult<()>;
    /// Marks a session as confirmed with a second factor.
    fn set_session_second_factor(
        &mut self,
        token_hash: &SecretHash,
        at: DateTime<Utc>,
    ) -> StorageResult<()>;
    /// Deletes the user's sessions but `keep`; returns how many.
    fn delete_user_sessions_except(
        &mut self,
        user_id: Uuid,
        keep: &SecretHash,
    ) -> StorageResult<u64>;
    /// Deletes every session and sign-in challenge of the user; returns how many sessions.
    fn revoke_user_sessions(&mut self, user_id: Uuid) -> StorageResult<u64>;
    fn insert_login_challenge(&mut self, challenge: &LoginChallenge) -> StorageResult<()>;
    fn delete_login_challenge(&mut self, token_hash: &SecretHash) -> StorageResult<()>;
    /// Deletes the user's challenges, and every challenge expired at `now`.
    fn delete_login_challenges(&mut self, user_id: Uuid, now: DateTime<Utc>) -> StorageResult<()>;
    /// Stores a new, unconfirmed TOTP secret for the user; `false` (nothing written) when
    /// the user already has a confirmed one.
    fn put_pending_totp(
        &mut self,
        user_id: Uuid,
        secret: &[u8],
        at: DateTime<Utc>,
    ) -> StorageResult<bool>;
    /// Confirms the user's pending TOTP secret with the step of the code given; `false`
    /// when there was none pending.
    fn confirm_totp(&mut self, user_id: Uuid, step: u64, at: DateTime<Utc>) -> StorageResult<bool>;
    /// Records that the code of `step` was used, if it is later than the last one used;
    /// `false` (nothing written) otherwise: a code is accepted once.
    fn advance_totp_step(&mut self, user_id: Uuid, step: u64) -> StorageResult<bool>;
    /// Deletes the user's TOTP secret and recovery codes.
    fn delete_totp(&mut self, user_id: Uuid) -> StorageResult<()>;
    /// Replaces the user's recovery codes.
    fn replace_recovery_codes(
        &mut self,
        user_id: Uuid,
        code_hashes: &[SecretHash],
        at: DateTime<Utc>,
    ) -> StorageResult<()>;
    /// Marks an unused recovery code as used; `false` when unknown or already used.
    fn use_recovery_code(
        &mut self,
        user_id: Uuid,
        code_hash: &SecretHash,
        at: DateTime<Utc>,
    ) -> StorageResult<bool>;
}

/// A transactional store for the hub.
///
/// # Contract for implementations
///
/// - `write` runs `work` in one transaction and commits it when `work` returns `Ok`, before
///   returning; it rolls everything back when `work` returns `Err` (the error is returned).
///   It may run `work` again after a serialization failure or deadlock, so `work` must not
///   have effects outside the transaction. Concurrent `write`s may share one transaction
///   and one commit (SQLite's group commit): each work stays all-or-nothing, sees the works
///   run before it, and `write` returns only once its work is durable. `read` gives a
///   consistent snapshot and never writes.
/// - **Log positions** (`put_document`, `erase_document`) come from one increasing sequence
///   shared by documents and tombstones, and must become *visible* in increasing order: a
///   reader that sees position N+1 must already see N, or a device whose cursor passed N+1
///   would never get N. SQLite has one writer, so this holds by construction (group commit
///   included). On PostgreSQL (several instances on one database) positions are taken from
///   a counter row while holding a transaction-scoped advisory lock, so that transactions
///   that write the log commit one after another in position order; and a transaction
///   whose snapshot began before another one committed positions must not take one (its
///   pull would pass over what it cannot see): the counter row's update fails it and it
///   runs again holding the lock from its start. A bare `SEQUENCE`, even under the lock,
///   is not enough (docs/sync-protocol.md, "A log no tablet can skip").
/// - Reading the log (`documents_after`, `tombstones_after`) inside `write` sees the
///   transaction's own writes.
pub trait Storage: Send + Sync {
    fn write(&self, work: &mut dyn FnMut(&mut dyn Tx) -> StorageResult<()>) -> StorageResult<()>;
    /// Writes a consistent copy of the whole database to `to` (a new file).
    fn backup(&self, to: &std::path::Path) -> StorageResult<()>;
    /// After an erasure: leaves no copy of erased bytes in the storage's side files (the
    /// deleted rows themselves are overwritten as they are deleted).
    fn scrub(&self) -> StorageResult<()>;
    fn read(&self, work: &mut dyn FnMut(&mut dyn ReadTx) -> StorageResult<()>)
    -> StorageResult<()>;
    /// The database's size in bytes (for the metrics).
    fn size_bytes(&self) -> StorageResult<u64>;
    /// Whether the database answers a real query and its write lock can be taken within
    /// `within` (nothing is written). The error is a short reason safe to tell anyone (no
    /// path, no data); the details go to the log.
    fn health(&self, within: std::time::Duration) -> Result<(), &'static str>;
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

/// A password accepted for an account with a second factor, waiting for the code. The
/// browser holds the token; only its SHA-256 is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginChallenge {
    pub token_hash: SecretHash,
    pub user_id: Uuid,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// A user's TOTP secret (RFC 6238).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserTotp {
    pub secret: Vec<u8>,
    pub created_at: DateTime<Utc>,
    /// `None` while set up but not confirmed with a code.
    pub confirmed_at: Option<DateTime<Utc>>,
    /// The latest time step whose code was accepted.
    pub last_step: u64,
}

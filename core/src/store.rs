//! `Store`: the one entry point of the core. It owns the encrypted connection; callers
//! get records, summaries and events, never SQL.

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use uuid::Uuid;

use crate::bounded::{self, Bounds};
use crate::communes::Communes;
use crate::document::{
    Author, FieldConflict, JsonFields, RecordDoc, UNKNOWN_VALUE, to_json_fields,
};
use crate::error::{Error, Result};
use crate::index;
use crate::records::{
    Action, AnyRecord, Contact, Outcome, Record, RecordKind, Tour, ValidationContext, Youth,
};
use crate::storage;

/// Where time comes from. Tests pin it; the app uses the system clock.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// Whether the server has a record's latest local changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncState {
    /// Created here and never acknowledged by the server.
    NeverSynced,
    /// Acknowledged once, changed here since.
    Pending,
    Synced,
    /// The server refused the last push; the reason is safe to show.
    Rejected {
        reason: String,
    },
}

impl SyncState {
    fn code(&self) -> i64 {
        match self {
            SyncState::NeverSynced => 0,
            SyncState::Pending => 1,
            SyncState::Synced => 2,
            SyncState::Rejected { .. } => 3,
        }
    }
}

/// Where a change came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Local,
    Remote,
}

/// The version of a record a user saw: its document's heads. Every read hands one back
/// and every update takes one, so an edit writes only what the user changed relative to
/// what they saw (DESIGN.md decision 11). Opaque: shells store and pass it as bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Version(Vec<automerge::ChangeHash>);

impl Version {
    pub(crate) fn of(mut heads: Vec<automerge::ChangeHash>) -> Version {
        heads.sort();
        Version(heads)
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        heads_to_bytes(&self.0)
    }

    /// `None` for bytes that cannot be a version (empty, or not whole 32-byte hashes).
    pub fn from_bytes(bytes: &[u8]) -> Option<Version> {
        if bytes.is_empty() || !bytes.len().is_multiple_of(32) {
            return None;
        }
        Some(Version::of(heads_from_bytes(bytes)))
    }

    pub(crate) fn heads(&self) -> &[automerge::ChangeHash] {
        &self.0
    }
}

/// A record as read, with the version it was read at.
#[derive(Debug, Clone, PartialEq)]
pub struct Versioned<R> {
    pub id: Uuid,
    pub version: Version,
    pub record: R,
}

/// A document kept aside (see [`Store::set_aside`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetAside {
    pub id: Uuid,
    /// The kind as received: a name, or `kind #N` for a kind from a newer version.
    pub kind: String,
    /// `newer_kind`, `unreadable` or `left_team`.
    pub reason: String,
}

/// Told to listeners after every committed write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreEvent {
    pub origin: Origin,
    /// Records written; from sync, also the visits a coordinator's decision is about.
    pub changed: Vec<(RecordKind, Uuid)>,
    /// The team's roster changed (a sync brought it, or re-enrolment forgot it).
    pub roster_changed: bool,
    /// The break-the-glass requests or the lent files changed: a request made or answered,
    /// a file lent, changed, ended or expired (see `Store::lent_files`).
    pub lending_changed: bool,
}

impl StoreEvent {
    pub(crate) fn records(origin: Origin, changed: Vec<(RecordKind, Uuid)>) -> StoreEvent {
        StoreEvent {
            origin,
            changed,
            roster_changed: false,
            lending_changed: false,
        }
    }

    pub(crate) fn lending(origin: Origin) -> StoreEvent {
        StoreEvent {
            lending_changed: true,
            ..StoreEvent::records(origin, Vec::new())
        }
    }
}

pub type Listener = Arc<dyn Fn(&StoreEvent) + Send + Sync>;

pub struct StoreOptions {
    pub clock: Arc<dyn Clock>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            clock: Arc::new(SystemClock),
        }
    }
}

pub struct Store {
    pub(crate) conn: Connection,
    pub(crate) author: Author,
    clock: Arc<dyn Clock>,
    pub(crate) listeners: Vec<Listener>,
    /// Reported to the server at each sync (see [`Store::set_app_version`]).
    pub(crate) app_version: String,
}

const DEVICE_ID_KEY: &str = "device_id";

/// `+`: sorted after the index of unsynced records found them, rather than every
/// document read in `local_seq` order.
pub(crate) const UNSYNCED: &str =
    "SELECT kind, id FROM documents WHERE sync_state <> 2 ORDER BY +local_seq";

impl Store {
    /// Opens or creates the store at `path` with the 32-byte key from the platform keystore.
    pub fn open(path: impl AsRef<Path>, key: &[u8]) -> Result<Store> {
        Self::open_with(path, key, StoreOptions::default())
    }

    pub fn open_with(path: impl AsRef<Path>, key: &[u8], options: StoreOptions) -> Result<Store> {
        let conn = storage::open(path.as_ref(), key)?;
        let device_id = match conn
            .query_row(
                "SELECT value FROM meta WHERE key = ?1",
                [DEVICE_ID_KEY],
                |r| r.get::<_, Vec<u8>>(0),
            )
            .optional()?
        {
            Some(bytes) => Uuid::from_slice(&bytes)
                .map_err(|_| Error::CorruptStore("device id in store metadata is malformed"))?,
            None => {
                // Random, never derived from anything: a restored or copied store must not
                // reuse another device's Automerge actor.
                let id = Uuid::new_v4();
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES (?1, ?2)",
                    params![DEVICE_ID_KEY, id.as_bytes().as_slice()],
                )?;
                id
            }
        };
        let mut store = Store {
            conn,
            author: Author {
                device_id,
                member_id: Uuid::nil(),
            },
            clock: options.clock,
            listeners: Vec::new(),
            app_version: env!("CARGO_PKG_VERSION").to_string(),
        };
        if storage::needs_reindex(&store.conn)? {
            store.rebuild_index()?;
        }
        store.retry_set_aside()?;
        store.purge_lending()?;
        Ok(store)
    }

    pub fn device_id(&self) -> Uuid {
        self.author.device_id
    }

    /// The team member using the tablet; recorded as the author of every later edit.
    pub fn set_member(&mut self, member_id: Uuid) {
        self.author.member_id = member_id;
    }

    /// The app's version as the shell names it (Android `versionName`, iOS
    /// `CFBundleShortVersionString`), told to the server at each sync for the
    /// administrators' tablets page; until set, this core's version. Refused unless it
    /// is a short version string (`protocol::app_version`): never anything personal.
    pub fn set_app_version(&mut self, version: &str) -> Result<()> {
        let version = crate::sync::protocol::app_version(version).ok_or_else(|| {
            Error::InvalidSetting(format!(
                "an app version is 1 to {} characters (digits, letters, . - + _ ( ) and spaces) starting with a digit",
                crate::sync::protocol::APP_VERSION_MAX_CHARS
            ))
        })?;
        self.app_version = version.to_string();
        Ok(())
    }

    pub fn app_version(&self) -> &str {
        &self.app_version
    }

    pub fn member_id(&self) -> Uuid {
        self.author.member_id
    }

    /// The SQLCipher version linked into this build.
    pub fn cipher_version(&self) -> String {
        storage::cipher_version(&self.conn)
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Calls `listener` after every committed write, local or from sync.
    pub fn subscribe(&mut self, listener: Listener) {
        self.listeners.push(listener);
    }

    /// Runs several writes in one transaction: all are kept or none.
    pub fn batch<T>(&mut self, f: impl FnOnce(&mut Batch<'_>) -> Result<T>) -> Result<T> {
        self.unlocked()?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut batch = Batch {
            tx,
            author: self.author,
            now: self.clock.now(),
            changed: Vec::new(),
        };
        let out = f(&mut batch)?;
        let Batch { tx, changed, .. } = batch;
        tx.commit()?;
        notify(&self.listeners, StoreEvent::records(Origin::Local, changed));
        Ok(out)
    }

    /// Validates and stores a new record; returns its new id.
    pub fn create<R: Record>(&mut self, record: &R) -> Result<Uuid> {
        self.batch(|b| b.create(record))
    }

    /// Validates `record` (a form filled from the version `seen`) and writes the fields
    /// the user changed relative to `seen`. Changes merged in since stay; a field changed
    /// here and elsewhere becomes a visible conflict. Returns the record's new version.
    pub fn update<R: Record>(&mut self, id: Uuid, seen: &Version, record: &R) -> Result<Version> {
        self.batch(|b| b.update(id, seen, record))
    }

    /// Reads, changes and writes back a record in one transaction (nothing can merge in
    /// between, so the closure always sees the latest version).
    pub fn edit<R: Record>(&mut self, id: Uuid, f: impl FnOnce(&mut R)) -> Result<R> {
        self.batch(|b| {
            let Versioned {
                version,
                mut record,
                ..
            } = b.read::<R>(id)?;
            f(&mut record);
            b.update(id, &version, &record)?;
            Ok(record)
        })
    }

    /// A record without its version, for display only (`read` for a form).
    pub fn get<R: Record>(&self, id: Uuid) -> Result<R> {
        self.unlocked()?;
        load_doc(&self.conn, R::KIND, id, self.author)?.read()
    }

    /// A record with the version it was read at: what a form starts from.
    pub fn read<R: Record>(&self, id: Uuid) -> Result<Versioned<R>> {
        self.unlocked()?;
        read_versioned(&self.conn, id, self.author)
    }

    /// The current version of a record.
    pub fn version(&self, id: Uuid) -> Result<Version> {
        Ok(Version::of(self.load_any_doc(id)?.heads()))
    }

    pub fn youth(&self, id: Uuid) -> Result<Youth> {
        self.get(id)
    }

    pub fn contact(&self, id: Uuid) -> Result<Contact> {
        self.get(id)
    }

    pub fn tour(&self, id: Uuid) -> Result<Tour> {
        self.get(id)
    }

    pub fn action(&self, id: Uuid) -> Result<Action> {
        self.get(id)
    }

    pub fn outcome(&self, id: Uuid) -> Result<Outcome> {
        self.get(id)
    }

    fn existing_kind(&self, id: Uuid) -> Result<RecordKind> {
        self.kind_of(id)?.ok_or(Error::NoRecord { id })
    }

    /// The kind of a stored record, if it exists.
    pub fn kind_of(&self, id: Uuid) -> Result<Option<RecordKind>> {
        let kind: Option<String> = self
            .conn
            .prepare_cached("SELECT kind FROM documents WHERE id = ?1")?
            .query_row([id.as_bytes().as_slice()], |r| r.get(0))
            .optional()?;
        Ok(kind.as_deref().and_then(RecordKind::parse))
    }

    /// Who changed which field of a record, and when.
    pub fn history(&self, id: Uuid) -> Result<Vec<crate::document::HistoryEntry>> {
        self.unlocked()?;
        Ok(self.load_any_doc(id)?.history())
    }

    /// Deletes every record and every trace of them (derived tables, search index, set-aside
    /// documents, lent files and break-the-glass requests, the enrolment): what a revoked tablet does when the server orders it, and
    /// what an app offers to forget a tablet. The rows are zeroed (`secure_delete`), the
    /// file rebuilt without free pages and the WAL cut; the store stays open, empty and not
    /// enrolled (the app may then delete the file).
    pub fn wipe(&mut self) -> Result<()> {
        let tables: Vec<String> = {
            let mut stmt = self.conn.prepare(
                "SELECT name FROM sqlite_master
                  WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE 'youth_fts_%'",
            )?;
            stmt.query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?
        };
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        for table in &tables {
            tx.execute(&format!("DELETE FROM \"{table}\""), [])?;
        }
        tx.commit()?;
        storage::scrub(&self.conn)?;
        self.conn.execute_batch("VACUUM;")?;
        storage::scrub(&self.conn)?;
        Ok(())
    }

    /// Every record in the store, by kind and id.
    pub fn ids(&self) -> Result<Vec<(RecordKind, Uuid)>> {
        self.kinds_and_ids("SELECT kind, id FROM documents ORDER BY id")
    }

    fn kinds_and_ids(&self, sql: &str) -> Result<Vec<(RecordKind, Uuid)>> {
        let mut stmt = self.conn.prepare_cached(sql)?;
        let rows = stmt.query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (kind, id) = row?;
            if let (Some(kind), Ok(id)) = (RecordKind::parse(&kind), Uuid::from_slice(&id)) {
                out.push((kind, id));
            }
        }
        Ok(out)
    }

    /// Any record, whatever its kind.
    pub fn record(&self, id: Uuid) -> Result<AnyRecord> {
        self.unlocked()?;
        self.load_any_doc(id)?.read_record()
    }

    /// Fields of a record that hold several values after concurrent edits, each value with
    /// who wrote it and when.
    pub fn conflicts(&self, id: Uuid) -> Result<Vec<FieldConflict>> {
        self.unlocked()?;
        let kind = self.existing_kind(id)?;
        Ok(load_doc(&self.conn, kind, id, self.author)?.conflicts())
    }

    /// Resolves a conflict by choosing `value` (one of the listed values or a new one). It is
    /// an ordinary edit: it is validated, stored and synced like any other.
    pub fn resolve_conflict(
        &mut self,
        id: Uuid,
        field: &str,
        value: serde_json::Value,
    ) -> Result<()> {
        let kind = self.existing_kind(id)?;
        self.batch(|b| b.resolve_conflict(kind, id, field, value))
    }

    pub fn sync_state(&self, id: Uuid) -> Result<SyncState> {
        let row: Option<(i64, Option<String>)> = self
            .conn
            .prepare_cached("SELECT sync_state, reject_reason FROM documents WHERE id = ?1")?
            .query_row([id.as_bytes().as_slice()], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        match row {
            None => Err(Error::NoRecord { id }),
            Some((0, _)) => Ok(SyncState::NeverSynced),
            Some((1, _)) => Ok(SyncState::Pending),
            Some((3, reason)) => Ok(SyncState::Rejected {
                reason: reason.unwrap_or_default(),
            }),
            Some(_) => Ok(SyncState::Synced),
        }
    }

    /// What is wrong with a record as merged, when two valid edits made it invalid (for
    /// example a next-step date kept by one tablet while the other cleared the next step).
    /// Both edits are kept; an ordinary edit that fixes the fields clears it.
    pub fn problems(&self, id: Uuid) -> Result<Option<String>> {
        self.conn
            .prepare_cached("SELECT problems FROM documents WHERE id = ?1")?
            .query_row([id.as_bytes().as_slice()], |r| r.get(0))
            .optional()?
            .ok_or(Error::NoRecord { id })
    }

    /// Records whose merged version fails validation (see `problems`).
    pub fn with_problems(&self) -> Result<Vec<(RecordKind, Uuid)>> {
        self.kinds_and_ids(
            "SELECT kind, id FROM documents WHERE problems IS NOT NULL ORDER BY local_seq",
        )
    }

    /// Documents kept aside: record kinds from a newer app version, bytes this version
    /// cannot read, unsent changes of a team this tablet left. Kept byte for byte.
    pub fn set_aside(&self) -> Result<Vec<SetAside>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id, kind, reason FROM set_aside ORDER BY set_at, id")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, kind, reason) = row?;
            out.push(SetAside {
                id: Uuid::from_slice(&id).map_err(|_| Error::CorruptStore("set-aside id"))?,
                kind,
                reason,
            });
        }
        Ok(out)
    }

    /// Tries again the documents set aside because this version could not read them (an
    /// upgraded app may): those that now read are merged in. Runs at every open.
    fn retry_set_aside(&mut self) -> Result<usize> {
        let rows: Vec<(Vec<u8>, String, Vec<u8>)> = {
            let mut stmt = self.conn.prepare(
                "SELECT id, kind, doc FROM set_aside WHERE reason IN ('newer_kind', 'unreadable')",
            )?;
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<rusqlite::Result<_>>()?
        };
        let now = self.now();
        let mut taken = 0;
        for (raw_id, kind, bytes) in rows {
            let Ok(id) = Uuid::from_slice(&raw_id) else {
                continue;
            };
            let Some(kind) = RecordKind::parse(&kind) else {
                continue;
            };
            let Ok(decoded) = decode(kind, id, &bytes, self.author) else {
                continue;
            };
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            match merge_decoded(&tx, self.author, decoded, Source::Server, now) {
                Ok(_) | Err(Error::Erased { .. }) => {}
                Err(e) => return Err(e),
            }
            tx.execute("DELETE FROM set_aside WHERE id = ?1", [raw_id.as_slice()])?;
            tx.commit()?;
            taken += 1;
        }
        Ok(taken)
    }

    /// Records with changes the server has not acknowledged, oldest change first.
    pub fn unsynced(&self) -> Result<Vec<(RecordKind, Uuid)>> {
        self.kinds_and_ids(UNSYNCED)
    }

    /// How many records [`Store::unsynced`] would list, without listing them.
    pub fn unsent_count(&self) -> Result<u32> {
        let count: i64 = self.conn.query_row(
            "SELECT count(*) FROM documents WHERE sync_state <> 2",
            [],
            |r| r.get(0),
        )?;
        Ok(u32::try_from(count).unwrap_or(u32::MAX))
    }

    /// Marks a record as acknowledged by the server at `heads` (used by sync). If the
    /// document moved on since, it stays pending.
    pub fn mark_synced(
        &mut self,
        id: Uuid,
        acknowledged_heads: &[automerge::ChangeHash],
    ) -> Result<()> {
        let kind = self.existing_kind(id)?;
        let mut doc = load_doc(&self.conn, kind, id, self.author)?;
        let current = doc.heads();
        let state = if current.as_slice() == acknowledged_heads {
            SyncState::Synced
        } else {
            SyncState::Pending
        };
        let heads = heads_to_bytes(acknowledged_heads);
        self.conn
            .prepare_cached(
                "UPDATE documents SET sync_state = ?2, reject_reason = NULL, synced_heads = ?3
                 WHERE id = ?1",
            )?
            .execute(params![id.as_bytes().as_slice(), state.code(), heads])?;
        Ok(())
    }

    /// The current heads of a record's document.
    pub fn heads(&self, id: Uuid) -> Result<Vec<automerge::ChangeHash>> {
        Ok(self.load_any_doc(id)?.heads())
    }

    /// A record's whole document, compact (for handing to another replica).
    pub fn export_document(&self, id: Uuid) -> Result<(RecordKind, Vec<u8>)> {
        self.unlocked()?;
        let mut doc = self.load_any_doc(id)?;
        Ok((doc.kind, doc.save()))
    }

    fn load_any_doc(&self, id: Uuid) -> Result<RecordDoc> {
        let kind = self.existing_kind(id)?;
        load_doc(&self.conn, kind, id, self.author)
    }

    /// Merges a document received from another replica (a peer tablet, a file) into the
    /// local copy, or stores it if the record is new here. Local unsent changes are kept:
    /// merging never drops an operation. A document that cannot be read as its kind is
    /// refused and nothing is stored. What comes this way is never taken as acknowledged
    /// by the server: a new record is "never synced", a changed one "pending".
    pub fn merge_remote(&mut self, kind: RecordKind, id: Uuid, bytes: &[u8]) -> Result<bool> {
        let now = self.now();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let changed = merge_in(&tx, self.author, kind, id, bytes, now)?;
        tx.commit()?;
        if changed {
            notify(
                &self.listeners,
                StoreEvent::records(Origin::Remote, vec![(kind, id)]),
            );
        }
        Ok(changed)
    }

    /// Drops and rebuilds every derived table from the documents (also done at opening
    /// after a migration of an existing store, once: a few seconds at 60,000 records).
    pub fn rebuild_index(&mut self) -> Result<usize> {
        let author = self.author;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        index::clear(&tx)?;
        let mut count = 0;
        {
            let mut stmt = tx.prepare("SELECT id, kind, doc FROM documents")?;
            let mut conflicts = tx.prepare(
                "UPDATE documents SET conflicts = ?2 WHERE id = ?1 AND conflicts IS NOT ?2",
            )?;
            let mut rows = stmt.query([])?;
            while let Some(row) = rows.next()? {
                let id = Uuid::from_slice(&row.get::<_, Vec<u8>>(0)?).unwrap_or_default();
                let kind = RecordKind::parse(&row.get::<_, String>(1)?);
                let bytes: Vec<u8> = row.get(2)?;
                let Some(kind) = kind else { continue };
                let mut doc = RecordDoc::load(kind, id, &bytes, author)?;
                index::index(&tx, id, &read_any(&doc)?, true)?;
                conflicts.execute(params![
                    id.as_bytes().as_slice(),
                    conflicted_fields(&mut doc)
                ])?;
                count += 1;
            }
        }
        storage::reindexed(&tx)?;
        tx.commit()?;
        Ok(count)
    }

    pub(crate) fn conn(&self) -> &Connection {
        &self.conn
    }
}

/// Writes inside one transaction (see [`Store::batch`]).
pub struct Batch<'a> {
    tx: Transaction<'a>,
    author: Author,
    now: DateTime<Utc>,
    changed: Vec<(RecordKind, Uuid)>,
}

impl Batch<'_> {
    fn ctx(&self) -> ValidationContext<'static> {
        ValidationContext {
            now: self.now,
            communes: Communes::global(),
        }
    }

    pub fn create<R: Record>(&mut self, record: &R) -> Result<Uuid> {
        let fields = to_json_fields(record)?;
        check_no_newer_values(R::KIND, &JsonFields::new(), &fields)?;
        record.validate(&self.ctx())?;
        let id = Uuid::now_v7();
        let mut doc = RecordDoc::create(R::KIND, id, self.author, &fields, self.now)?;
        self.tx
            .prepare_cached(
                "INSERT INTO documents (id, kind, team_id, doc, sync_state, local_seq)
                 VALUES (?1, ?2, ?3, ?4, 0, (SELECT coalesce(max(local_seq), 0) + 1 FROM documents))",
            )?
            .execute(params![
                id.as_bytes().as_slice(),
                R::KIND.as_str(),
                record.team_id().as_bytes().as_slice(),
                doc.save(),
            ])?;
        index::index(&self.tx, id, &record.clone().into_any(), true)?;
        self.changed.push((R::KIND, id));
        Ok(id)
    }

    pub fn get<R: Record>(&self, id: Uuid) -> Result<R> {
        load_doc(&self.tx, R::KIND, id, self.author)?.read()
    }

    pub fn read<R: Record>(&self, id: Uuid) -> Result<Versioned<R>> {
        read_versioned(&self.tx, id, self.author)
    }

    /// See [`Store::update`].
    pub fn update<R: Record>(&mut self, id: Uuid, seen: &Version, record: &R) -> Result<Version> {
        let mut doc = load_doc(&self.tx, R::KIND, id, self.author)?;
        // What the user saw, as this version reads it: a value from a newer app version
        // reads as "unknown" on both sides, so it counts as unchanged and keeps its bytes.
        let seen_fields = to_json_fields(&doc.read_at::<R>(seen.heads())?)?;
        let new = to_json_fields(record)?;
        check_no_newer_values(R::KIND, &seen_fields, &new)?;
        record.validate(&self.ctx())?;
        if doc.update_against(seen.heads(), &seen_fields, &new, self.now)? {
            let merged = doc.read_record()?;
            self.store_local_change(id, &mut doc, &merged)?;
            index::index(&self.tx, id, &merged, false)?;
            self.changed.push((R::KIND, id));
        }
        Ok(Version::of(doc.heads()))
    }

    fn resolve_conflict(
        &mut self,
        kind: RecordKind,
        id: Uuid,
        field: &str,
        value: serde_json::Value,
    ) -> Result<()> {
        let mut doc = load_doc(&self.tx, kind, id, self.author)?;
        let record = doc.resolve_conflict(field, &value, &self.ctx())?;
        self.store_local_change(id, &mut doc, &record)?;
        index::index(&self.tx, id, &record, false)?;
        self.changed.push((kind, id));
        Ok(())
    }

    fn store_local_change(
        &mut self,
        id: Uuid,
        doc: &mut RecordDoc,
        merged: &AnyRecord,
    ) -> Result<()> {
        // A synced or rejected record becomes pending; a never-synced one stays so.
        self.tx
            .prepare_cached(
                "UPDATE documents SET doc = ?2, team_id = ?3,
                    sync_state = CASE sync_state WHEN 0 THEN 0 ELSE 1 END,
                    reject_reason = NULL, problems = ?4, conflicts = ?5,
                    local_seq = (SELECT max(local_seq) + 1 FROM documents)
                 WHERE id = ?1",
            )?
            .execute(params![
                id.as_bytes().as_slice(),
                doc.save(),
                merged.team_id().as_bytes().as_slice(),
                merge_problems(merged, self.now),
                conflicted_fields(doc),
            ])?;
        Ok(())
    }
}

/// Where a received document comes from: the server's pull acknowledges what it holds,
/// a peer's copy acknowledges nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    Server,
    Peer,
}

/// Merges a peer's document into the local copy inside `tx`; returns whether the local
/// record changed. Erased records stay erased.
pub(crate) fn merge_in(
    tx: &Connection,
    author: Author,
    kind: RecordKind,
    id: Uuid,
    bytes: &[u8],
    now: DateTime<Utc>,
) -> Result<bool> {
    if is_erased(tx, id)? {
        return Err(Error::Erased { id });
    }
    merge_decoded(
        tx,
        author,
        decode(kind, id, bytes, author)?,
        Source::Peer,
        now,
    )
    .map(|merged| merged != Merged::Unchanged)
}

fn is_erased(tx: &Connection, id: Uuid) -> Result<bool> {
    Ok(tx
        .prepare_cached("SELECT count(*) FROM erased WHERE id = ?1")?
        .query_row([id.as_bytes().as_slice()], |r| r.get::<_, i64>(0))?
        > 0)
}

/// A received document already parsed (parsing is the costly part, done in parallel).
pub(crate) struct Decoded<'a> {
    pub remote: RecordDoc,
    pub record: AnyRecord,
    pub bytes: &'a [u8],
}

/// Parses a received document and reads its record: the part of applying a pull that
/// needs no database, so it can run on several threads. The bytes are first read within
/// bounds (`bounded`): nothing received can make the tablet build a huge document.
pub(crate) fn decode(
    kind: RecordKind,
    id: Uuid,
    bytes: &[u8],
    author: Author,
) -> Result<Decoded<'_>> {
    bounded::measure(bytes, Bounds::RECORD).map_err(|e| Error::CorruptDocument {
        kind,
        id,
        reason: e.to_string(),
    })?;
    let remote = RecordDoc::load(kind, id, bytes, author)?;
    let record = read_any(&remote)?;
    Ok(Decoded {
        remote,
        record,
        bytes,
    })
}

/// Merges a decoded document into the local copy, or stores it if new here. The merged
/// record is validated: two valid edits can merge into an invalid record, which is kept
/// whole and listed for the field worker to resolve (`Store::problems`).
pub(crate) fn merge_decoded(
    tx: &Connection,
    author: Author,
    decoded: Decoded<'_>,
    source: Source,
    now: DateTime<Utc>,
) -> Result<Merged> {
    let Decoded {
        mut remote,
        record,
        bytes,
    } = decoded;
    let (kind, id) = (remote.kind, remote.id);
    if is_erased(tx, id)? {
        return Err(Error::Erased { id });
    }
    match load_doc(tx, kind, id, author) {
        Ok(mut local) => {
            if !local.same_generation(&mut remote) {
                return match source {
                    Source::Server => replace_generation(tx, local, remote, &record, now),
                    // Which of two generations is newer only the server knows: it brings it.
                    Source::Peer => Ok(Merged::Unchanged),
                };
            }
            let before = local.heads();
            local.merge(&mut remote)?;
            if local.heads() == before {
                return Ok(Merged::Unchanged);
            }
            let record = read_any(&local)?;
            // From a peer, the server may lack what came in: a synced record is pending.
            let state = match source {
                Source::Server => "sync_state",
                Source::Peer => "CASE sync_state WHEN 2 THEN 1 ELSE sync_state END",
            };
            tx.prepare_cached(&format!(
                "UPDATE documents SET doc = ?2, team_id = ?3, problems = ?4, sync_state = {state},
                    conflicts = ?5, local_seq = (SELECT max(local_seq) + 1 FROM documents)
                 WHERE id = ?1"
            ))?
            .execute(params![
                id.as_bytes().as_slice(),
                local.save(),
                record.team_id().as_bytes().as_slice(),
                merge_problems(&record, now),
                conflicted_fields(&mut local),
            ])?;
            index::index(tx, id, &record, false)?;
        }
        Err(Error::NotFound { .. }) => {
            insert_received(tx, kind, id, bytes, &remote.heads(), &record, source)?;
            // A document can arrive already holding a conflict (two tablets' edits merged
            // elsewhere); a new record is otherwise stored without one.
            if let Some(fields) = conflicted_fields(&mut remote) {
                tx.prepare_cached("UPDATE documents SET conflicts = ?2 WHERE id = ?1")?
                    .execute(params![id.as_bytes().as_slice(), fields])?;
            }
        }
        Err(e) => return Err(e),
    }
    Ok(Merged::Changed)
}

/// What merging a received document did to the local copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Merged {
    Unchanged,
    Changed,
    /// Replaced by a new generation of the record; `dropped_edits` local edits not yet
    /// acknowledged were of fields the new generation changed too (the rectification wins);
    /// `carried`: the others were written again on top, to be pushed.
    Replaced {
        dropped_edits: usize,
        carried: bool,
    },
}

/// The server rewrote the record (a rectification): the local copy, and every byte of its
/// history, is replaced by the new generation. Edits made here that the server had not
/// acknowledged are written again on top, except to fields the rewrite changed.
pub(crate) fn replace_generation(
    tx: &Connection,
    local: RecordDoc,
    mut remote: RecordDoc,
    record: &AnyRecord,
    now: DateTime<Utc>,
) -> Result<Merged> {
    let (kind, id) = (remote.kind, remote.id);
    let bid = id.as_bytes().as_slice();
    let (state, synced): (i64, Option<Vec<u8>>) = tx
        .prepare_cached("SELECT sync_state, synced_heads FROM documents WHERE id = ?1")?
        .query_row([bid], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let ours = local.read_fields();
    let synced = synced.map(|b| heads_from_bytes(&b)).unwrap_or_default();
    // Never acknowledged (or acknowledged at heads this copy lost): nothing is known to
    // be a local edit, so nothing is carried over.
    let base = if state == SyncState::Synced.code() || synced.is_empty() {
        ours.clone()
    } else {
        local
            .read_fields_at(&synced)
            .unwrap_or_else(|_| ours.clone())
    };
    let server_heads = remote.heads();
    let theirs = remote.read_fields();
    let (fields, dropped_edits) = crate::document::carry_over_edits(kind, &base, &ours, &theirs);
    let edited = remote.update(&theirs, &fields, now)?;
    let record = if edited {
        read_any(&remote)?
    } else {
        record.clone()
    };
    let state = if edited {
        SyncState::Pending.code()
    } else {
        SyncState::Synced.code()
    };
    tx.prepare_cached(
        "UPDATE documents SET doc = ?2, team_id = ?3, problems = ?4, sync_state = ?5,
            synced_heads = ?6, reject_reason = NULL, conflicts = ?7,
            local_seq = (SELECT max(local_seq) + 1 FROM documents)
         WHERE id = ?1",
    )?
    .execute(params![
        bid,
        remote.save(),
        record.team_id().as_bytes().as_slice(),
        merge_problems(&record, now),
        state,
        heads_to_bytes(&server_heads),
        conflicted_fields(&mut remote),
    ])?;
    index::index(tx, id, &record, false)?;
    Ok(Merged::Replaced {
        dropped_edits,
        carried: edited,
    })
}

/// Stores a record new to this device as it came (no need to save the document again):
/// from the server, synced at the heads it came with; from a peer, never synced.
pub(crate) fn insert_received(
    tx: &Connection,
    kind: RecordKind,
    id: Uuid,
    bytes: &[u8],
    heads: &[automerge::ChangeHash],
    record: &AnyRecord,
    source: Source,
) -> Result<()> {
    let (state, synced) = match source {
        Source::Server => (SyncState::Synced.code(), Some(heads_to_bytes(heads))),
        Source::Peer => (SyncState::NeverSynced.code(), None),
    };
    tx.prepare_cached(
        "INSERT INTO documents (id, kind, team_id, doc, sync_state, synced_heads, local_seq)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, (SELECT coalesce(max(local_seq), 0) + 1 FROM documents))",
    )?
    .execute(params![
        id.as_bytes().as_slice(),
        kind.as_str(),
        record.team_id().as_bytes().as_slice(),
        bytes,
        state,
        synced,
    ])?;
    index::index(tx, id, record, true)
}

fn read_versioned<R: Record>(conn: &Connection, id: Uuid, author: Author) -> Result<Versioned<R>> {
    let mut doc = load_doc(conn, R::KIND, id, author)?;
    Ok(Versioned {
        id,
        version: Version::of(doc.heads()),
        record: doc.read()?,
    })
}

/// A form may not write a value it only knows as "from a newer version".
pub(crate) fn check_no_newer_values(
    kind: RecordKind,
    seen: &JsonFields,
    new: &JsonFields,
) -> Result<()> {
    let mut errs = crate::error::ValidationErrors::default();
    for &(name, _) in kind.schema() {
        let (before, after) = (seen.get(name), new.get(name));
        if before == after {
            continue;
        }
        let newly_unknown = match (before, after) {
            (_, Some(serde_json::Value::String(s))) => s == UNKNOWN_VALUE,
            (Some(serde_json::Value::Array(b)), Some(serde_json::Value::Array(a))) => {
                a.iter().any(|v| v == UNKNOWN_VALUE && !b.contains(v))
            }
            (_, Some(serde_json::Value::Array(a))) => a.iter().any(|v| v == UNKNOWN_VALUE),
            _ => false,
        };
        if newly_unknown {
            errs.push(name, crate::error::Problem::NewerVersionValue);
        }
    }
    Ok(errs.into_result()?)
}

/// The fields of a document holding several values after concurrent edits, as stored in
/// `documents.conflicts` (schema names joined by ", "); `None` when there is none. Only
/// counts values: cheap enough for every write.
pub(crate) fn conflicted_fields(doc: &mut RecordDoc) -> Option<String> {
    let fields: Vec<String> = doc.conflicts().into_iter().map(|c| c.field).collect();
    (!fields.is_empty()).then(|| fields.join(", "))
}

/// The validation problems of a record as merged (two valid edits can merge into an
/// invalid record), as the text stored beside it; `None` when it is valid.
pub(crate) fn merge_problems(record: &AnyRecord, now: DateTime<Utc>) -> Option<String> {
    let ctx = ValidationContext {
        now,
        communes: Communes::global(),
    };
    record.validate(&ctx).err().map(|e| {
        e.0.iter()
            .map(|f| format!("{}: {}", f.field, f.problem))
            .collect::<Vec<_>>()
            .join("; ")
    })
}

pub(crate) fn heads_to_bytes(heads: &[automerge::ChangeHash]) -> Vec<u8> {
    heads.iter().flat_map(|h| h.0).collect()
}

pub(crate) fn heads_from_bytes(bytes: &[u8]) -> Vec<automerge::ChangeHash> {
    bytes
        .chunks_exact(32)
        .filter_map(|c| automerge::ChangeHash::try_from(c).ok())
        .collect()
}

/// Tells the listeners of a committed change; nothing when nothing changed.
pub(crate) fn notify(listeners: &[Listener], event: StoreEvent) {
    if event.changed.is_empty() && !event.roster_changed && !event.lending_changed {
        return;
    }
    for l in listeners {
        l(&event);
    }
}

pub(crate) fn load_doc(
    conn: &Connection,
    kind: RecordKind,
    id: Uuid,
    author: Author,
) -> Result<RecordDoc> {
    let row: Option<(String, Vec<u8>)> = conn
        .prepare_cached("SELECT kind, doc FROM documents WHERE id = ?1")?
        .query_row([id.as_bytes().as_slice()], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((stored_kind, bytes)) = row else {
        return Err(Error::NotFound { kind, id });
    };
    match RecordKind::parse(&stored_kind) {
        Some(k) if k == kind => RecordDoc::load(kind, id, &bytes, author),
        Some(actual) => Err(Error::WrongKind {
            id,
            expected: kind,
            actual,
        }),
        None => Err(Error::CorruptDocument {
            kind,
            id,
            reason: "unknown record kind in store".into(),
        }),
    }
}

pub(crate) fn any_from_fields(kind: RecordKind, id: Uuid, fields: JsonFields) -> Result<AnyRecord> {
    AnyRecord::from_fields(kind, fields).map_err(|e| Error::CorruptDocument {
        kind,
        id,
        // serde's message names the field and expected type, never the value.
        reason: e.to_string(),
    })
}

pub(crate) fn any_to_fields(record: &AnyRecord) -> Result<JsonFields> {
    match record.to_json() {
        Ok(serde_json::Value::Object(map)) => Ok(map),
        _ => Err(Error::Unserializable(record.kind())),
    }
}

pub(crate) fn read_any(doc: &RecordDoc) -> Result<AnyRecord> {
    doc.read_record()
}

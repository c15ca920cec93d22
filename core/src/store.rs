//! `Store`: the one entry point of the core. It owns the encrypted connection; callers
//! get records, summaries and events, never SQL.

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use uuid::Uuid;

use crate::communes::Communes;
use crate::document::{Author, FieldConflict, JsonFields, RecordDoc, to_json_fields};
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

/// Told to listeners after every committed write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreEvent {
    pub origin: Origin,
    pub changed: Vec<(RecordKind, Uuid)>,
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
}

const DEVICE_ID_KEY: &str = "device_id";

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
            Some(bytes) => Uuid::from_slice(&bytes).map_err(|_| Error::CorruptDocument {
                kind: RecordKind::Youth,
                id: Uuid::nil(),
                reason: "device id in store metadata is malformed".into(),
            })?,
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
        Ok(Store {
            conn,
            author: Author {
                device_id,
                member_id: Uuid::nil(),
            },
            clock: options.clock,
            listeners: Vec::new(),
        })
    }

    pub fn device_id(&self) -> Uuid {
        self.author.device_id
    }

    /// The team member using the tablet; recorded as the author of every later edit.
    pub fn set_member(&mut self, member_id: Uuid) {
        self.author.member_id = member_id;
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
        notify(&self.listeners, Origin::Local, changed);
        Ok(out)
    }

    /// Validates and stores a new record; returns its new id.
    pub fn create<R: Record>(&mut self, record: &R) -> Result<Uuid> {
        self.batch(|b| b.create(record))
    }

    /// Validates `record` and writes the fields that differ from the stored version.
    pub fn update<R: Record>(&mut self, id: Uuid, record: &R) -> Result<()> {
        self.batch(|b| b.update(id, record))
    }

    /// Reads, changes and writes back a record in one go.
    pub fn edit<R: Record>(&mut self, id: Uuid, f: impl FnOnce(&mut R)) -> Result<R> {
        self.batch(|b| {
            let mut record: R = b.get(id)?;
            f(&mut record);
            b.update(id, &record)?;
            Ok(record)
        })
    }

    pub fn get<R: Record>(&self, id: Uuid) -> Result<R> {
        load_doc(&self.conn, R::KIND, id, self.author)?.read()
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
        self.kind_of(id)?.ok_or(Error::NotFound {
            kind: RecordKind::Youth,
            id,
        })
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
        Ok(self.load_any_doc(id)?.history())
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
        self.load_any_doc(id)?.read_record()
    }

    /// Fields of a record that hold several values after concurrent edits, each value with
    /// who wrote it and when.
    pub fn conflicts(&self, id: Uuid) -> Result<Vec<FieldConflict>> {
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
            None => Err(Error::NotFound {
                kind: RecordKind::Youth,
                id,
            }),
            Some((0, _)) => Ok(SyncState::NeverSynced),
            Some((1, _)) => Ok(SyncState::Pending),
            Some((3, reason)) => Ok(SyncState::Rejected {
                reason: reason.unwrap_or_default(),
            }),
            Some(_) => Ok(SyncState::Synced),
        }
    }

    /// Records with changes the server has not acknowledged, oldest change first.
    pub fn unsynced(&self) -> Result<Vec<(RecordKind, Uuid)>> {
        self.kinds_and_ids(
            "SELECT kind, id FROM documents WHERE sync_state <> 2 ORDER BY local_seq",
        )
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
        let mut doc = self.load_any_doc(id)?;
        Ok((doc.kind, doc.save()))
    }

    fn load_any_doc(&self, id: Uuid) -> Result<RecordDoc> {
        let kind = self.existing_kind(id)?;
        load_doc(&self.conn, kind, id, self.author)
    }

    /// Merges a document received from another replica (a peer or the server) into the
    /// local copy, or stores it if the record is new here. Local unsent changes are kept:
    /// merging never drops an operation. A document that cannot be read as its kind is
    /// refused and nothing is stored.
    pub fn merge_remote(&mut self, kind: RecordKind, id: Uuid, bytes: &[u8]) -> Result<bool> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let changed = merge_in(&tx, self.author, kind, id, bytes)?;
        tx.commit()?;
        if changed {
            notify(&self.listeners, Origin::Remote, vec![(kind, id)]);
        }
        Ok(changed)
    }

    /// Drops and rebuilds every derived table from the documents.
    pub fn rebuild_index(&mut self) -> Result<usize> {
        let author = self.author;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        index::clear(&tx)?;
        let mut count = 0;
        {
            let mut stmt = tx.prepare("SELECT id, kind, doc FROM documents")?;
            let mut rows = stmt.query([])?;
            while let Some(row) = rows.next()? {
                let id = Uuid::from_slice(&row.get::<_, Vec<u8>>(0)?).unwrap_or_default();
                let kind = RecordKind::parse(&row.get::<_, String>(1)?);
                let bytes: Vec<u8> = row.get(2)?;
                let Some(kind) = kind else { continue };
                let doc = RecordDoc::load(kind, id, &bytes, author)?;
                index::index(&tx, id, &read_any(&doc)?, true)?;
                count += 1;
            }
        }
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
        record.validate(&self.ctx())?;
        let id = Uuid::now_v7();
        let fields = to_json_fields(record)?;
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

    pub fn update<R: Record>(&mut self, id: Uuid, record: &R) -> Result<()> {
        record.validate(&self.ctx())?;
        let mut doc = load_doc(&self.tx, R::KIND, id, self.author)?;
        let old = doc.read_fields();
        let new = to_json_fields(record)?;
        if doc.update(&old, &new, self.now)? {
            self.store_local_change(id, &mut doc, record.team_id())?;
            index::index(&self.tx, id, &record.clone().into_any(), false)?;
            self.changed.push((R::KIND, id));
        }
        Ok(())
    }

    fn resolve_conflict(
        &mut self,
        kind: RecordKind,
        id: Uuid,
        field: &str,
        value: serde_json::Value,
    ) -> Result<()> {
        let mut doc = load_doc(&self.tx, kind, id, self.author)?;
        if !doc.conflicts().iter().any(|c| c.field == field) {
            return Err(Error::NoConflict {
                id,
                field: field.chars().take(64).collect(),
            });
        }
        // Validate the record as it will read once the value is chosen.
        let mut fields: JsonFields = doc.read_fields();
        fields.insert(field.to_string(), value.clone());
        let record = any_from_fields(kind, id, fields)?;
        record.validate(&self.ctx())?;
        doc.overwrite_scalar(field, &value, self.now)?;
        self.store_local_change(id, &mut doc, record.team_id())?;
        index::index(&self.tx, id, &record, false)?;
        self.changed.push((kind, id));
        Ok(())
    }

    fn store_local_change(&mut self, id: Uuid, doc: &mut RecordDoc, team_id: Uuid) -> Result<()> {
        // A synced or rejected record becomes pending; a never-synced one stays so.
        self.tx
            .prepare_cached(
                "UPDATE documents SET doc = ?2, team_id = ?3,
                    sync_state = CASE sync_state WHEN 0 THEN 0 ELSE 1 END,
                    reject_reason = NULL,
                    local_seq = (SELECT max(local_seq) + 1 FROM documents)
                 WHERE id = ?1",
            )?
            .execute(params![
                id.as_bytes().as_slice(),
                doc.save(),
                team_id.as_bytes().as_slice()
            ])?;
        Ok(())
    }
}

/// Merges another replica's document into the local copy inside `tx`; returns whether the
/// local record changed. Erased records stay erased.
pub(crate) fn merge_in(
    tx: &Connection,
    author: Author,
    kind: RecordKind,
    id: Uuid,
    bytes: &[u8],
) -> Result<bool> {
    if is_erased(tx, id)? {
        return Err(Error::Erased { id });
    }
    let remote = RecordDoc::load(kind, id, bytes, author)?;
    let record = read_any(&remote)?;
    merge_decoded(
        tx,
        author,
        Decoded {
            remote,
            record,
            bytes,
        },
    )
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
/// needs no database, so it can run on several threads.
pub(crate) fn decode(
    kind: RecordKind,
    id: Uuid,
    bytes: &[u8],
    author: Author,
) -> Result<Decoded<'_>> {
    let remote = RecordDoc::load(kind, id, bytes, author)?;
    let record = read_any(&remote)?;
    Ok(Decoded {
        remote,
        record,
        bytes,
    })
}

/// [`merge_in`] for a document already decoded.
pub(crate) fn merge_decoded(tx: &Connection, author: Author, decoded: Decoded<'_>) -> Result<bool> {
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
            let before = local.heads();
            local.merge(&mut remote)?;
            if local.heads() == before {
                return Ok(false);
            }
            let record = read_any(&local)?;
            tx.prepare_cached(
                "UPDATE documents SET doc = ?2, team_id = ?3,
                    local_seq = (SELECT max(local_seq) + 1 FROM documents)
                 WHERE id = ?1",
            )?
            .execute(params![
                id.as_bytes().as_slice(),
                local.save(),
                record.team_id().as_bytes().as_slice()
            ])?;
            index::index(tx, id, &record, false)?;
        }
        Err(Error::NotFound { .. }) => {
            insert_received(tx, kind, id, bytes, &remote.heads(), &record)?;
        }
        Err(e) => return Err(e),
    }
    Ok(true)
}

/// Stores a record new to this device as it came (no need to save the document again),
/// marked synced at the heads it came with.
pub(crate) fn insert_received(
    tx: &Connection,
    kind: RecordKind,
    id: Uuid,
    bytes: &[u8],
    heads: &[automerge::ChangeHash],
    record: &AnyRecord,
) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO documents (id, kind, team_id, doc, sync_state, synced_heads, local_seq)
         VALUES (?1, ?2, ?3, ?4, 2, ?5, (SELECT coalesce(max(local_seq), 0) + 1 FROM documents))",
    )?
    .execute(params![
        id.as_bytes().as_slice(),
        kind.as_str(),
        record.team_id().as_bytes().as_slice(),
        bytes,
        heads_to_bytes(heads),
    ])?;
    index::index(tx, id, record, true)
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

pub(crate) fn notify(listeners: &[Listener], origin: Origin, changed: Vec<(RecordKind, Uuid)>) {
    if changed.is_empty() {
        return;
    }
    let event = StoreEvent { origin, changed };
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
    let v = serde_json::Value::Object(fields);
    let corrupt = |e: serde_json::Error| Error::CorruptDocument {
        kind,
        id,
        reason: e.to_string(),
    };
    Ok(match kind {
        RecordKind::Youth => AnyRecord::Youth(serde_json::from_value(v).map_err(corrupt)?),
        RecordKind::Contact => AnyRecord::Contact(serde_json::from_value(v).map_err(corrupt)?),
        RecordKind::Tour => AnyRecord::Tour(serde_json::from_value(v).map_err(corrupt)?),
        RecordKind::Action => AnyRecord::Action(serde_json::from_value(v).map_err(corrupt)?),
        RecordKind::Outcome => AnyRecord::Outcome(serde_json::from_value(v).map_err(corrupt)?),
        RecordKind::ReviewTask => {
            AnyRecord::ReviewTask(serde_json::from_value(v).map_err(corrupt)?)
        }
    })
}

pub(crate) fn read_any(doc: &RecordDoc) -> Result<AnyRecord> {
    doc.read_record()
}

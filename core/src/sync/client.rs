//! The device's side of sync, as steps over the store: prepare a request, apply a
//! response. `Store::sync` strings them together over a `Transport` with retries.
//! The steps are public so a shell can hold its store lock only around them, not
//! across the network wait.

use std::cell::RefCell;
use std::collections::HashSet;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use automerge::ChangeHash;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::protocol::{
    self, Ack, ENROL_PATH, EnrolRequest, EnrolResponse, ErrorBody, ErrorCode, PulledDoc, PushDoc,
    RejectCode, SYNC_PATH, SyncRequest, SyncResponse,
};
use crate::error::{Error, Result};
use crate::index;
use crate::records::RecordKind;
use crate::store::{
    Decoded, Origin, Store, decode, heads_from_bytes, heads_to_bytes, insert_received, load_doc,
    merge_decoded, notify,
};

/// How the device reaches the server. `HttpTransport` is the real one; tests use others.
pub trait Transport: Send + Sync {
    fn post(
        &self,
        path: &str,
        token: Option<&str>,
        body: Vec<u8>,
    ) -> Result<Vec<u8>, TransportError>;
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TransportError {
    /// No answer: no signal, connection cut, timeout. Worth retrying.
    #[error("network failure: {0}")]
    Network(String),
    /// The server answered with an error status.
    #[error("HTTP status {status}")]
    Status {
        status: u16,
        body: Option<ErrorBody>,
    },
}

/// What the device knows of its enrolment (the token stays inside the store).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enrolment {
    /// Where this device syncs, e.g. `https://sync.example.org`.
    pub server_url: String,
    pub device_id: Uuid,
    pub team_id: Uuid,
    pub organisation_id: Uuid,
}

#[derive(Serialize, Deserialize)]
struct StoredEnrolment {
    #[serde(flatten)]
    enrolment: Enrolment,
    token: String,
}

#[derive(Debug, Clone)]
pub struct SyncOptions {
    /// Documents asked for per round.
    pub pull_limit: u32,
    /// Push bytes per round; a larger record still goes, alone.
    pub max_push_bytes: usize,
    /// Tries per round before giving up (the next `sync` starts over safely).
    pub max_attempts: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for SyncOptions {
    fn default() -> Self {
        SyncOptions {
            pull_limit: 1000,
            max_push_bytes: 2 * 1024 * 1024,
            max_attempts: 5,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
        }
    }
}

/// Running totals of one `sync` call, reported after each round.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncProgress {
    pub rounds: u32,
    pub pushed: usize,
    pub acknowledged: usize,
    pub rejected: usize,
    pub pulled: usize,
    pub erased: usize,
    /// Bytes sent and received in request and response bodies.
    pub bytes_up: usize,
    pub bytes_down: usize,
}

pub type SyncReport = SyncProgress;

/// One prepared request and what it was built from.
pub struct SyncBatch {
    request: SyncRequest,
    token: String,
    /// The heads each pushed record had when its changes were taken.
    sent: Vec<(Uuid, Vec<ChangeHash>)>,
}

impl SyncBatch {
    pub fn body(&self) -> Vec<u8> {
        protocol::encode(&self.request)
    }

    pub fn token(&self) -> &str {
        &self.token
    }

    pub fn pushed_ids(&self) -> impl Iterator<Item = Uuid> + '_ {
        self.sent.iter().map(|(id, _)| *id)
    }
}

const ENROLMENT_KEY: &str = "enrolment";
const CURSOR_KEY: &str = "cursor";

fn meta_get(conn: &Connection, key: &str) -> Result<Option<Vec<u8>>> {
    Ok(conn
        .prepare_cached("SELECT value FROM meta WHERE key = ?1")?
        .query_row([key], |r| r.get(0))
        .optional()?)
}

fn meta_put(conn: &Connection, key: &str, value: &[u8]) -> Result<()> {
    conn.prepare_cached("INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)")?
        .execute(params![key, value])?;
    Ok(())
}

fn stored_enrolment(conn: &Connection) -> Result<Option<StoredEnrolment>> {
    Ok(meta_get(conn, ENROLMENT_KEY)?.and_then(|b| serde_json::from_slice(&b).ok()))
}

fn cursor(conn: &Connection) -> Result<u64> {
    Ok(meta_get(conn, CURSOR_KEY)?
        .and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
        .map_or(0, u64::from_be_bytes))
}

impl Store {
    pub fn enrolment(&self) -> Result<Option<Enrolment>> {
        Ok(stored_enrolment(&self.conn)?.map(|s| s.enrolment))
    }

    /// Exchanges a one-time enrolment code for this device's credentials. Re-enrolling
    /// keeps every record and unsent change; only the pull starts again from the beginning.
    pub fn enrol(
        &mut self,
        transport: &dyn Transport,
        server_url: &str,
        code: &str,
        device_label: &str,
    ) -> Result<Enrolment> {
        let body = protocol::encode(&EnrolRequest {
            code: code.trim().to_string(),
            device_label: device_label.to_string(),
        });
        let bytes = transport
            .post(ENROL_PATH, None, body)
            .map_err(|e| map_transport_error(&e))?;
        let resp: EnrolResponse = protocol::decode(&bytes)?;
        let stored = StoredEnrolment {
            enrolment: Enrolment {
                server_url: server_url.to_string(),
                device_id: resp.device_id,
                team_id: resp.team_id,
                organisation_id: resp.organisation_id,
            },
            token: resp.token,
        };
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        meta_put(
            &tx,
            ENROLMENT_KEY,
            &serde_json::to_vec(&stored).unwrap_or_default(),
        )?;
        meta_put(&tx, CURSOR_KEY, &0u64.to_be_bytes())?;
        tx.commit()?;
        Ok(stored.enrolment)
    }

    /// Builds the next request: unacknowledged records (not `skip`ped) up to the byte
    /// budget, and the pull cursor.
    pub fn sync_prepare(
        &mut self,
        options: &SyncOptions,
        skip: &HashSet<Uuid>,
    ) -> Result<SyncBatch> {
        let token = stored_enrolment(&self.conn)?
            .ok_or(Error::NotEnrolled)?
            .token;
        let mut pushes = Vec::new();
        let mut sent = Vec::new();
        let mut budget = options.max_push_bytes;
        let pending: Vec<(Uuid, RecordKind, Option<Vec<u8>>)> = {
            let mut stmt = self.conn.prepare_cached(
                "SELECT id, kind, synced_heads FROM documents
                  WHERE sync_state IN (0, 1) ORDER BY local_seq",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok((
                    r.get::<_, Vec<u8>>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<Vec<u8>>>(2)?,
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (id, kind, heads) = row?;
                if let (Ok(id), Some(kind)) = (Uuid::from_slice(&id), RecordKind::parse(&kind)) {
                    out.push((id, kind, heads));
                }
            }
            out
        };
        for (id, kind, synced) in pending {
            if skip.contains(&id) {
                continue;
            }
            let mut doc = load_doc(&self.conn, kind, id, self.author)?;
            let changes =
                doc.changes_since(&heads_from_bytes(synced.as_deref().unwrap_or_default()));
            if changes.len() > budget && !pushes.is_empty() {
                break;
            }
            budget = budget.saturating_sub(changes.len());
            sent.push((id, doc.heads()));
            pushes.push(PushDoc { id, kind, changes });
        }
        Ok(SyncBatch {
            request: SyncRequest {
                cursor: cursor(&self.conn)?,
                pushes,
                pull_limit: options.pull_limit,
            },
            token,
            sent,
        })
    }

    /// Applies a server response in one transaction: erasures, pulled documents, acks,
    /// rejections and the new cursor are stored together or not at all.
    pub fn sync_apply(&mut self, batch: &SyncBatch, resp: &SyncResponse) -> Result<()> {
        let author = self.author;
        // Records new here come with their validated fields: stored and indexed without
        // parsing the document. The others are parsed (on every core) and merged. Parsing
        // happens before the write lock; a damaged document fails the whole response
        // (nothing applied, cursor unchanged), so the next exchange repeats it.
        let mut fresh = Vec::new();
        let mut to_merge = Vec::new();
        {
            let mut known = self.conn.prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM documents WHERE id = ?1)
                     OR EXISTS (SELECT 1 FROM erased WHERE id = ?1)",
            )?;
            for d in &resp.docs {
                let here: bool = known.query_row([d.id.as_bytes().as_slice()], |r| r.get(0))?;
                match (here, record_from_fields(d)) {
                    (false, Some(record)) => fresh.push((d, record)),
                    _ => to_merge.push(d),
                }
            }
        }
        let decoded = decode_all(&to_merge, author)?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut changed = Vec::new();
        for id in &resp.erased {
            if let Some(kind) = erase_local(&tx, *id)? {
                changed.push((kind, *id));
            }
        }
        for (d, record) in fresh {
            let heads: Vec<ChangeHash> = d.heads.iter().map(|h| ChangeHash(*h)).collect();
            insert_received(&tx, d.kind, d.id, &d.doc, &heads, &record)?;
            changed.push((d.kind, d.id));
        }
        for decoded in decoded {
            let (kind, id) = (decoded.remote.kind, decoded.remote.id);
            match merge_decoded(&tx, author, decoded) {
                Ok(true) => changed.push((kind, id)),
                Ok(false) | Err(Error::Erased { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        for ack in &resp.acks {
            let sent = batch
                .sent
                .iter()
                .find(|(id, _)| *id == ack.id)
                .map(|(_, h)| h.as_slice());
            acknowledge(&tx, author, ack, sent.unwrap_or_default())?;
        }
        for rej in &resp.rejections {
            if rej.code == RejectCode::Erased {
                if let Some(kind) = erase_local(&tx, rej.id)? {
                    changed.push((kind, rej.id));
                }
            } else if rej.code == RejectCode::MissingHistory {
                // The next push sends the whole document.
                tx.prepare_cached(
                    "UPDATE documents SET sync_state = 1, synced_heads = NULL WHERE id = ?1",
                )?
                .execute([rej.id.as_bytes().as_slice()])?;
            } else {
                tx.prepare_cached(
                    "UPDATE documents SET sync_state = 3, reject_reason = ?2 WHERE id = ?1",
                )?
                .execute(params![rej.id.as_bytes().as_slice(), rej.reason])?;
            }
        }
        meta_put(&tx, CURSOR_KEY, &resp.cursor.to_be_bytes())?;
        tx.commit()?;
        notify(&self.listeners, Origin::Remote, changed);
        Ok(())
    }

    /// Pushes every unacknowledged change and pulls everything new, in as many rounds as
    /// needed. Safe to call again after any failure: nothing unsent is ever dropped, and
    /// a repeated round changes nothing.
    pub fn sync(
        &mut self,
        transport: &dyn Transport,
        options: &SyncOptions,
        progress: &mut dyn FnMut(&SyncProgress),
    ) -> Result<SyncReport> {
        let store = RefCell::new(self);
        run_sync(
            &|step| step(&mut store.borrow_mut()),
            transport,
            options,
            progress,
        )
    }
}

/// [`Store::sync`] for a store shared between threads: the lock is held only while a
/// request is prepared and while a response is applied, never during the network wait,
/// so the app stays usable while a slow sync runs.
pub fn sync_shared(
    store: &Mutex<Store>,
    transport: &dyn Transport,
    options: &SyncOptions,
    progress: &mut dyn FnMut(&SyncProgress),
) -> Result<SyncReport> {
    run_sync(
        &|step| step(&mut store.lock().unwrap_or_else(PoisonError::into_inner)),
        transport,
        options,
        progress,
    )
}

type StoreStep<'a> = &'a mut dyn FnMut(&mut Store) -> Result<()>;

/// One exchange done: the request, its body and the server's answer (or the failure).
type Exchanged = (SyncBatch, Vec<u8>, Result<(SyncResponse, usize)>);

fn run_sync(
    with_store: &dyn Fn(StoreStep<'_>) -> Result<()>,
    transport: &dyn Transport,
    options: &SyncOptions,
    progress: &mut dyn FnMut(&SyncProgress),
) -> Result<SyncReport> {
    let mut report = SyncProgress::default();
    let mut attempted: HashSet<Uuid> = HashSet::new();
    let mut ahead: Option<Exchanged> = None;
    loop {
        let (batch, body, answer) = match ahead.take() {
            Some(exchanged) => exchanged,
            None => {
                let mut prepared = None;
                with_store(&mut |s| {
                    prepared = Some(s.sync_prepare(options, &attempted)?);
                    Ok(())
                })?;
                let Some(batch) = prepared else {
                    return Ok(report);
                };
                let body = batch.body();
                let answer = exchange(transport, &batch, &body, options);
                (batch, body, answer)
            }
        };
        let (resp, resp_len) = answer?;
        let pushed = batch.request.pushes.len();
        // While a pull-only page is applied, the next page is already asked for: the server
        // and the network work while the tablet writes. If applying fails, the page fetched
        // ahead is dropped and nothing of it is stored.
        let applied = std::thread::scope(|scope| {
            let next = (resp.more && pushed == 0).then(|| {
                let next = SyncBatch {
                    request: SyncRequest {
                        cursor: resp.cursor,
                        pushes: Vec::new(),
                        pull_limit: options.pull_limit,
                    },
                    token: batch.token.clone(),
                    sent: Vec::new(),
                };
                scope.spawn(move || {
                    let body = next.body();
                    let answer = exchange(transport, &next, &body, options);
                    (next, body, answer)
                })
            });
            let applied = with_store(&mut |s| s.sync_apply(&batch, &resp));
            let fetched = next.and_then(|h| h.join().ok());
            applied.map(|()| fetched)
        });
        ahead = applied?;
        attempted.extend(batch.pushed_ids());
        report.rounds += 1;
        report.pushed += pushed;
        report.acknowledged += resp.acks.len();
        report.rejected += resp.rejections.len();
        report.pulled += resp.docs.len();
        report.erased += resp.erased.len();
        report.bytes_up += body.len();
        report.bytes_down += resp_len;
        progress(&report);
        if !resp.more && pushed == 0 {
            return Ok(report);
        }
    }
}

/// The record a pulled document says it holds, if its fields read as that kind.
fn record_from_fields(d: &PulledDoc) -> Option<crate::records::AnyRecord> {
    if d.fields.is_empty() || d.heads.is_empty() {
        return None;
    }
    let fields: crate::document::JsonFields = serde_json::from_str(&d.fields).ok()?;
    crate::store::any_from_fields(d.kind, d.id, fields).ok()
}

/// Parses pulled documents on every core: parsing Automerge is most of the cost of a
/// large initial sync, and it needs no database.
fn decode_all<'a>(
    docs: &[&'a PulledDoc],
    author: crate::document::Author,
) -> Result<Vec<Decoded<'a>>> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8);
    let chunk = docs.len().div_ceil(threads).max(64);
    std::thread::scope(|scope| {
        let workers: Vec<_> = docs
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|d| decode(d.kind, d.id, &d.doc, author))
                        .collect::<Result<Vec<_>>>()
                })
            })
            .collect();
        let mut out = Vec::with_capacity(docs.len());
        for w in workers {
            out.extend(
                w.join()
                    .map_err(|_| Error::Network("a document could not be read".into()))??,
            );
        }
        Ok(out)
    })
}

/// One round trip with retries and exponential backoff on transient failures.
fn exchange(
    transport: &dyn Transport,
    batch: &SyncBatch,
    body: &[u8],
    options: &SyncOptions,
) -> Result<(SyncResponse, usize)> {
    let mut delay = options.initial_backoff;
    let mut attempt = 1;
    loop {
        let (transient, error) = match transport.post(SYNC_PATH, Some(batch.token()), body.to_vec())
        {
            Ok(bytes) => match protocol::decode::<SyncResponse>(&bytes) {
                Ok(resp) => return Ok((resp, bytes.len())),
                // A body damaged on the way is worth another try, like a cut connection.
                Err(e) => (true, Error::Protocol(e)),
            },
            Err(e) => (is_transient(&e), map_transport_error(&e)),
        };
        if !transient || attempt >= options.max_attempts {
            return Err(error);
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(options.max_backoff);
        attempt += 1;
    }
}

fn is_transient(e: &TransportError) -> bool {
    match e {
        TransportError::Network(_) => true,
        TransportError::Status { status, .. } => *status >= 500 || *status == 429 || *status == 408,
    }
}

fn map_transport_error(e: &TransportError) -> Error {
    match e {
        TransportError::Network(m) => Error::Network(m.clone()),
        TransportError::Status { status, body } => match body.as_ref().map(|b| b.error) {
            Some(ErrorCode::DeviceRevoked) => Error::DeviceRevoked,
            Some(ErrorCode::Unauthorized) => Error::Unauthorized,
            Some(ErrorCode::InvalidEnrolmentCode) => Error::InvalidEnrolmentCode,
            _ => Error::Server {
                status: *status,
                message: body.as_ref().map(|b| b.message.clone()).unwrap_or_default(),
            },
        },
    }
}

/// Deletes every local trace of an erased record and remembers the id.
fn erase_local(tx: &Connection, id: Uuid) -> Result<Option<RecordKind>> {
    let bid = id.as_bytes().as_slice();
    let kind: Option<String> = tx
        .prepare_cached("SELECT kind FROM documents WHERE id = ?1")?
        .query_row([bid], |r| r.get(0))
        .optional()?;
    index::remove(tx, id)?;
    tx.prepare_cached("DELETE FROM documents WHERE id = ?1")?
        .execute([bid])?;
    tx.prepare_cached("INSERT OR IGNORE INTO erased (id, erased_at) VALUES (?1, datetime('now'))")?
        .execute([bid])?;
    Ok(kind.as_deref().and_then(RecordKind::parse))
}

fn acknowledge(
    tx: &Connection,
    author: crate::document::Author,
    ack: &Ack,
    sent: &[ChangeHash],
) -> Result<()> {
    let bid = ack.id.as_bytes().as_slice();
    let kind: Option<String> = tx
        .prepare_cached("SELECT kind FROM documents WHERE id = ?1")?
        .query_row([bid], |r| r.get(0))
        .optional()?;
    let Some(kind) = kind.as_deref().and_then(RecordKind::parse) else {
        return Ok(()); // erased meanwhile
    };
    let server_heads: Vec<ChangeHash> = ack.heads.iter().map(|h| ChangeHash(*h)).collect();
    let mut doc = load_doc(tx, kind, ack.id, author)?;
    let (state, synced) = if doc.covered_by(&server_heads) {
        (2, server_heads)
    } else if doc.knows(&server_heads) {
        (1, server_heads)
    } else {
        (1, sent.to_vec())
    };
    tx.prepare_cached(
        "UPDATE documents SET sync_state = ?2, reject_reason = NULL, synced_heads = ?3 WHERE id = ?1",
    )?
    .execute(params![bid, state, heads_to_bytes(&synced)])?;
    Ok(())
}

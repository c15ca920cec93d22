//! The device's side of sync, as steps over the store: prepare a request, apply a
//! response. `Store::sync` strings them together over a `Transport` with retries.
//! The steps are public so a shell can hold its store lock only around them, not
//! across the network wait.

use std::cell::RefCell;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use automerge::ChangeHash;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::protocol::{
    self, Ack, DeviceReport, ENROL_PATH, EnrolRequest, EnrolResponse, ErrorBody, ErrorCode,
    PulledDoc, PushDoc, RejectCode, SYNC_PATH, SyncRequest, SyncResponse,
};
use crate::bounded::{self, Bounds};
use crate::error::{Error, Result};
use crate::index;
use crate::records::RecordKind;
use crate::storage::{meta_get, meta_put};
use crate::store::{
    Decoded, Merged, Origin, Source, Store, StoreEvent, decode, heads_from_bytes, heads_to_bytes,
    insert_received, load_doc, merge_decoded, notify,
};

/// How the device reaches the server. `HttpTransport` is the real one; tests use others.
pub trait Transport: Send + Sync {
    fn post(
        &self,
        path: &str,
        token: Option<&str>,
        body: Vec<u8>,
    ) -> Result<Vec<u8>, TransportError>;

    /// `post` that gives up with [`TransportError::Cancelled`] as soon as `cancel` is set,
    /// even while waiting for the answer. A transport that cannot be interrupted keeps the
    /// default: the sync then stops when the request in flight ends.
    fn post_cancellable(
        &self,
        path: &str,
        token: Option<&str>,
        body: Vec<u8>,
        cancel: &Cancellation,
    ) -> Result<Vec<u8>, TransportError> {
        let _ = cancel;
        self.post(path, token, body)
    }
}

/// Stops a running sync from another thread (the user left the screen, the app went to
/// the background). Cloning shares the flag. Stopping is always safe: what was applied
/// stays, what was not is sent or fetched again by the next sync.
#[derive(Debug, Clone, Default)]
pub struct Cancellation(Arc<AtomicBool>);

impl Cancellation {
    pub fn new() -> Cancellation {
        Cancellation::default()
    }

    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    fn check(&self) -> Result<()> {
        if self.is_cancelled() {
            Err(Error::Cancelled)
        } else {
            Ok(())
        }
    }

    /// Sleeps `delay`, waking early if cancelled.
    fn sleep(&self, delay: Duration) -> Result<()> {
        let step = Duration::from_millis(20);
        let mut left = delay;
        while !left.is_zero() {
            self.check()?;
            let nap = left.min(step);
            std::thread::sleep(nap);
            left -= nap;
        }
        self.check()
    }
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
    /// The sync was cancelled while the request was in flight.
    #[error("cancelled")]
    Cancelled,
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
    /// Records pushed per round (at most `protocol::MAX_PUSHES`).
    pub max_push_records: usize,
    /// Tries per round before giving up (the next `sync` starts over safely).
    pub max_attempts: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// Set from another thread to stop the sync (see [`Cancellation`]).
    pub cancel: Cancellation,
}

impl Default for SyncOptions {
    fn default() -> Self {
        SyncOptions {
            pull_limit: 1000,
            max_push_bytes: 2 * 1024 * 1024,
            // Fewer, larger rounds: each costs a commit on both sides and the server
            // reads a round's records on every core (10,000 visits: 3.2 s in rounds of
            // 1,000, 2.2–2.6 s in rounds of 2,000, within the 2 MiB budget above).
            max_push_records: 2000,
            max_attempts: 5,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            cancel: Cancellation::default(),
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
    /// Records that left this tablet's team (a young person transferred to another team,
    /// with what moved with them): deleted here, not erased (« transféré à une autre
    /// équipe »). Unsent changes to them are dropped with them.
    pub transferred: usize,
    /// Received documents this version cannot read (a newer record kind, damaged bytes):
    /// kept aside byte for byte, see `Store::set_aside`; they never block the sync.
    pub set_aside: usize,
    /// Records coordination rewrote (a rectification): the copy here was replaced, its
    /// old history gone.
    pub rewritten: usize,
    /// Edits made here and not yet sent, to fields such a rewrite changed: the rewrite wins.
    pub edits_dropped: usize,
    /// The server was restored from a backup: everything was offered to it again.
    pub server_restored: bool,
    /// Bytes sent and received in request and response bodies.
    pub bytes_up: usize,
    pub bytes_down: usize,
}

pub type SyncReport = SyncProgress;

/// One prepared request and what it was built from.
pub struct SyncBatch {
    request: SyncRequest,
    token: String,
    /// The protocol version the request is sent in (lowered if the server is older).
    version: u8,
    /// The heads each pushed record had when its changes were taken.
    sent: Vec<(Uuid, Vec<ChangeHash>)>,
}

impl SyncBatch {
    pub fn body(&self) -> Vec<u8> {
        protocol::encode_request(self.version, &self.request)
    }

    pub fn token(&self) -> &str {
        &self.token
    }

    pub fn pushed_ids(&self) -> impl Iterator<Item = Uuid> + '_ {
        self.sent.iter().map(|(id, _)| *id)
    }
}

/// Records to push. `sync_state <> 2` lets the planner take the index of unsynced records
/// instead of reading every document in `local_seq` order: an empty sync grew with the
/// store (5 ms at 1,000 records, 21 ms at 10,000).
const UNACKNOWLEDGED: &str = "SELECT id, kind, synced_heads FROM documents
     WHERE sync_state <> 2 AND sync_state IN (0, 1) ORDER BY local_seq";

/// Records to push from which never-acknowledged ones go as their stored documents.
const BULK_PUSH: usize = 100;

const ENROLMENT_KEY: &str = "enrolment";
const CURSOR_KEY: &str = "cursor";
const EPOCH_KEY: &str = "server_epoch";
const PENDING_ENROLMENT_KEY: &str = "pending_enrolment";

/// Credentials obtained for another team while unsent changes of the current one could
/// not be pushed: used when the same code is given again with `force`.
#[derive(Serialize, Deserialize)]
struct PendingEnrolment {
    code: String,
    enrolment: StoredEnrolment,
}

/// Redeems a one-time code with the server, naming the store's writer id (and proving
/// it with the current token when the store was enrolled before). A server older than
/// version 3 gets the request again in the newest layout it speaks.
fn redeem(
    transport: &dyn Transport,
    server_url: &str,
    request: &EnrolRequest,
) -> Result<StoredEnrolment> {
    let mut version = protocol::PROTOCOL_VERSION;
    let bytes = loop {
        match transport.post(ENROL_PATH, None, protocol::encode_enrol(version, request)) {
            Ok(bytes) => break bytes,
            Err(TransportError::Status {
                body: Some(body), ..
            }) if body.error == ErrorCode::UnsupportedVersion => {
                version = step_down(version, body.versions)?;
            }
            Err(e) => return Err(map_transport_error(&e)),
        }
    };
    let resp: EnrolResponse = protocol::decode(&bytes)?;
    Ok(StoredEnrolment {
        enrolment: Enrolment {
            server_url: server_url.to_string(),
            device_id: resp.device_id,
            team_id: resp.team_id,
            organisation_id: resp.organisation_id,
        },
        token: resp.token,
    })
}

/// The version to try after `unsupported_version`: the newest the server says it speaks
/// below the one refused, or else the next lower one.
fn step_down(refused: u8, server_speaks: Option<(u8, u8)>) -> Result<u8> {
    let lower = match server_speaks {
        Some((_, newest)) => newest.min(refused.saturating_sub(1)),
        None => refused.saturating_sub(1),
    };
    if lower < protocol::PROTOCOL_MIN_VERSION {
        return Err(Error::NoCommonVersion {
            min: protocol::PROTOCOL_MIN_VERSION,
            max: protocol::PROTOCOL_VERSION,
        });
    }
    Ok(lower)
}

/// What applying an answer did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// Taken: how many received documents had to be set aside, how many copies were
    /// replaced by a new generation of their record, and how many local edits not yet
    /// acknowledged that replacement dropped (edits of fields the rewrite changed).
    Stored {
        set_aside: usize,
        rewritten: usize,
        edits_dropped: usize,
        /// Replaced copies with local edits carried over: pushed again in this sync.
        again: Vec<Uuid>,
    },
    /// The server's log epoch changed (it was restored from a backup): nothing of the
    /// answer was taken; every record is pending again and the pull restarts from 0.
    ServerRestored,
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

    /// Exchanges a one-time enrolment code for this device's credentials.
    ///
    /// Re-enrolling into the same team keeps every record and unsent change; only the pull
    /// starts again. Into another team, unsent changes are first pushed with the current
    /// credentials; if some cannot be (no network, revoked tablet), the switch is refused
    /// with `UnsentChanges` and the credentials just obtained wait, unused, for the same
    /// code to be given again with `force`, which sets those records aside (kept, never
    /// sent, see `set_aside`). The old team's synced records leave the tablet.
    pub fn enrol(
        &mut self,
        transport: &dyn Transport,
        server_url: &str,
        code: &str,
        device_label: &str,
        force: bool,
    ) -> Result<Enrolment> {
        let code = code.trim();
        let current = stored_enrolment(&self.conn)?;
        let waiting = meta_get(&self.conn, PENDING_ENROLMENT_KEY)?
            .and_then(|b| serde_json::from_slice::<PendingEnrolment>(&b).ok())
            .filter(|p| p.code == code);
        let stored = match waiting {
            Some(pending) => pending.enrolment,
            None => {
                if current.is_some() && !self.unsynced()?.is_empty() {
                    // One try: the person is waiting at the enrolment screen. A failure
                    // here is what the count below reports.
                    let once = SyncOptions {
                        max_attempts: 1,
                        ..SyncOptions::default()
                    };
                    let _ = self.sync(transport, &once, &mut |_| {});
                }
                let request = EnrolRequest {
                    code: code.to_string(),
                    // The server keeps 100 characters and refuses large enrolment bodies.
                    device_label: device_label.chars().take(100).collect(),
                    writer: Some(self.author.device_id),
                    previous_token: current.as_ref().map(|c| c.token.clone()),
                };
                redeem(transport, server_url, &request)?
            }
        };
        let team = stored.enrolment.team_id;
        if current.is_some_and(|c| c.enrolment.team_id != team) && !force {
            let count: i64 = self.conn.query_row(
                "SELECT count(*) FROM documents WHERE sync_state <> 2 AND team_id <> ?1",
                [team.as_bytes().as_slice()],
                |r| r.get(0),
            )?;
            let count = usize::try_from(count).unwrap_or(usize::MAX);
            if count > 0 {
                let pending = PendingEnrolment {
                    code: code.to_string(),
                    enrolment: stored,
                };
                meta_put(
                    &self.conn,
                    PENDING_ENROLMENT_KEY,
                    &serde_json::to_vec(&pending).unwrap_or_default(),
                )?;
                return Err(Error::UnsentChanges { count });
            }
        }
        let now = self.now();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let left = leave_other_teams(&tx, team)?;
        meta_put(
            &tx,
            ENROLMENT_KEY,
            &serde_json::to_vec(&stored).unwrap_or_default(),
        )?;
        meta_put(&tx, CURSOR_KEY, &0u64.to_be_bytes())?;
        tx.prepare_cached("DELETE FROM meta WHERE key IN (?1, ?2)")?
            .execute([EPOCH_KEY, PENDING_ENROLMENT_KEY])?;
        crate::roster::forget(&tx)?;
        let forgot_lent = crate::lending::forget_lent(&tx)?;
        crate::lock::reached_server(&tx, now)?;
        tx.commit()?;
        if forgot_lent {
            crate::storage::cut_wal(&self.conn)?;
        }
        notify(
            &self.listeners,
            StoreEvent {
                origin: Origin::Remote,
                changed: left,
                roster_changed: true,
                lending_changed: forgot_lent,
            },
        );
        Ok(stored.enrolment)
    }

    /// Builds the next request: unacknowledged records (not `skip`ped) up to the byte
    /// budget, the pull cursor, and the break-the-glass requests waiting (the oldest
    /// [`crate::ASKED_PER_SYNC`]).
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
            let mut stmt = self.conn.prepare_cached(UNACKNOWLEDGED)?;
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
            // Referenced kinds first, each kind in the order it was changed: a young person
            // edited after their visit was recorded still reaches the server before it.
            out.sort_by_key(|(_, kind, _)| kind.push_rank());
            out
        };
        // A tablet back with many records sends each never acknowledged one as its stored
        // document, unloaded (and the server loads a document twice as fast as a change);
        // a few go as their changes, which are smaller.
        let bulk = pending.len() >= BULK_PUSH;
        for (id, kind, synced) in pending {
            if skip.contains(&id) {
                continue;
            }
            let (changes, heads) = match synced.as_deref() {
                // Never acknowledged: the stored document goes as it is, its heads read off
                // its header, without loading it.
                None if bulk => match whole_document(&self.conn, id)? {
                    Some(whole) => whole,
                    None => {
                        let mut doc = load_doc(&self.conn, kind, id, self.author)?;
                        (doc.changes_since(&[]), doc.heads())
                    }
                },
                synced => {
                    let mut doc = load_doc(&self.conn, kind, id, self.author)?;
                    let since = heads_from_bytes(synced.unwrap_or_default());
                    (doc.changes_since(&since), doc.heads())
                }
            };
            let full = pushes.len() >= options.max_push_records.clamp(1, protocol::MAX_PUSHES);
            if full || (changes.len() > budget && !pushes.is_empty()) {
                break;
            }
            budget = budget.saturating_sub(changes.len());
            sent.push((id, heads));
            pushes.push(PushDoc {
                id,
                kind: kind.into(),
                changes,
            });
        }
        Ok(SyncBatch {
            request: SyncRequest {
                cursor: cursor(&self.conn)?,
                pushes,
                pull_limit: options.pull_limit,
                team: crate::roster::since(&self.conn)?,
                report: DeviceReport {
                    app_version: self.app_version.clone(),
                    unsent: self.unsent_count()?,
                },
                access_requests: crate::lending::pending(
                    &self.conn,
                    crate::lending::ASKED_PER_SYNC,
                )?,
            },
            token,
            version: protocol::PROTOCOL_VERSION,
            sent,
        })
    }

    /// Applies a server response in one transaction: erasures, pulled documents, acks,
    /// rejections, the answers to break-the-glass requests, the lent files (from an answer
    /// that ends the sync) and the new cursor are stored together or not at all.
    pub fn sync_apply(&mut self, batch: &SyncBatch, resp: &SyncResponse) -> Result<Applied> {
        let author = self.author;
        if resp.epoch != 0 {
            let known = meta_get(&self.conn, EPOCH_KEY)?
                .and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
                .map(u64::from_be_bytes);
            match known {
                Some(e) if e != resp.epoch => {
                    self.server_restored(resp.epoch)?;
                    return Ok(Applied::ServerRestored);
                }
                Some(_) => {}
                None => meta_put(&self.conn, EPOCH_KEY, &resp.epoch.to_be_bytes())?,
            }
        }
        // Records new here come with their validated fields: stored and indexed without
        // parsing the document. The others are parsed (on every core) and merged. Parsing
        // happens before the write lock. A document this version cannot read (a newer
        // record kind, damaged bytes) is set aside on its own: it never blocks the sync.
        let mut fresh = Vec::new();
        let mut to_merge = Vec::new();
        let mut unknown = Vec::new();
        // Copies already at the server's heads (a re-enrolled tablet pulling what it holds):
        // nothing to merge, only their sync state to set, without parsing either copy.
        let mut in_step = Vec::new();
        {
            let mut known = self.conn.prepare_cached(
                "SELECT (SELECT doc FROM documents WHERE id = ?1),
                        EXISTS (SELECT 1 FROM erased WHERE id = ?1)",
            )?;
            for d in &resp.docs {
                let Some(kind) = d.kind.known() else {
                    unknown.push((d, SetAsideReason::NewerKind));
                    continue;
                };
                let (local, erased): (Option<Vec<u8>>, bool) = known
                    .query_row([d.id.as_bytes().as_slice()], |r| Ok((r.get(0)?, r.get(1)?)))?;
                let here = match local {
                    Some(bytes) => {
                        let heads = pulled_heads(d);
                        if !heads.is_empty() && bounded::document_heads(&bytes) == Some(heads) {
                            in_step.push(d);
                            continue;
                        }
                        true
                    }
                    None => erased,
                };
                match (here, record_from_fields(kind, d)) {
                    // Stored without being parsed, so read within bounds here (`decode`
                    // does it for the others).
                    (false, Some(_)) if bounded::measure(&d.doc, Bounds::RECORD).is_err() => {
                        unknown.push((d, SetAsideReason::Unreadable));
                    }
                    (false, Some(record)) => fresh.push((kind, d, record)),
                    _ => to_merge.push((kind, d)),
                }
            }
        }
        let (decoded, unreadable) = decode_all(&to_merge, author);
        unknown.extend(
            unreadable
                .into_iter()
                .map(|d| (d, SetAsideReason::Unreadable)),
        );
        let set_aside_count = unknown.len();
        let now = self.now();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut changed = Vec::new();
        let mut replaced = std::collections::HashSet::new();
        let mut again = Vec::new();
        let mut edits_dropped = 0;
        for id in &resp.erased {
            if let Some(kind) = erase_local(&tx, *id)? {
                changed.push((kind, *id));
            }
        }
        for id in &resp.moved {
            if let Some(kind) = drop_local(&tx, *id)? {
                changed.push((kind, *id));
            }
        }
        for (d, reason) in unknown {
            set_aside(&tx, d.id, &d.kind.to_string(), &d.doc, reason)?;
        }
        for d in in_step {
            // Written only if something changes: a re-enrolled tablet's copies mostly
            // already say so.
            tx.prepare_cached(
                "UPDATE documents SET sync_state = 2, reject_reason = NULL, synced_heads = ?2
                 WHERE id = ?1
                   AND (sync_state <> 2 OR reject_reason IS NOT NULL OR synced_heads IS NOT ?2)",
            )?
            .execute(params![d.id.as_bytes().as_slice(), d.heads.concat()])?;
        }
        for (kind, d, record) in fresh {
            let heads: Vec<ChangeHash> = d.heads.iter().map(|h| ChangeHash(*h)).collect();
            insert_received(&tx, kind, d.id, &d.doc, &heads, &record, Source::Server)?;
            changed.push((kind, d.id));
        }
        for (decoded, heads) in decoded {
            let (kind, id) = (decoded.remote.kind, decoded.remote.id);
            // The server's copy changed: a record it refused is offered again, since what
            // it now has (a teammate's own changes, a fixed reference) may be what it lacked.
            tx.prepare_cached(
                "UPDATE documents SET sync_state = 1, reject_reason = NULL
                 WHERE id = ?1 AND sync_state = 3",
            )?
            .execute([id.as_bytes().as_slice()])?;
            match merge_decoded(&tx, author, decoded, Source::Server, now) {
                Ok(Merged::Changed) => {
                    mark_pulled(&tx, author, kind, id, &heads)?;
                    changed.push((kind, id));
                }
                Ok(Merged::Unchanged) => mark_pulled(&tx, author, kind, id, &heads)?,
                Ok(Merged::Replaced {
                    dropped_edits,
                    carried,
                }) => {
                    replaced.insert(id);
                    if carried {
                        again.push(id);
                    }
                    edits_dropped += dropped_edits;
                    changed.push((kind, id));
                }
                Err(Error::Erased { .. }) => {}
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
            let sent = batch.sent.iter().find(|(id, _)| *id == rej.id);
            if rej.code == RejectCode::Erased {
                if let Some(kind) = erase_local(&tx, rej.id)? {
                    changed.push((kind, rej.id));
                }
            } else if rej.code == RejectCode::Transferred {
                if let Some(kind) = drop_local(&tx, rej.id)? {
                    changed.push((kind, rej.id));
                }
            } else if rej.code == RejectCode::Rewritten {
                // The server sends the new generation with the refusal; a copy already
                // replaced above is left as it is. Otherwise the next push offers it whole
                // and is refused again, with the new generation, until it comes.
                if !replaced.contains(&rej.id) {
                    tx.prepare_cached(
                        "UPDATE documents SET sync_state = 1, synced_heads = NULL WHERE id = ?1",
                    )?
                    .execute([rej.id.as_bytes().as_slice()])?;
                }
            } else if rej.code == RejectCode::MissingHistory && replaced.contains(&rej.id) {
                // Refused because it built on the old generation, replaced since.
            } else if rej.code == RejectCode::MissingHistory {
                // The next push sends the whole document.
                tx.prepare_cached(
                    "UPDATE documents SET sync_state = 1, synced_heads = NULL WHERE id = ?1",
                )?
                .execute([rej.id.as_bytes().as_slice()])?;
            } else if edited_since(&tx, author, rej.id, sent.map(|(_, h)| h.as_slice()))? {
                // Edited while its push was refused: the new edit may fix it, send it.
                tx.prepare_cached(
                    "UPDATE documents SET sync_state = CASE sync_state WHEN 0 THEN 0 ELSE 1 END,
                        reject_reason = NULL WHERE id = ?1",
                )?
                .execute([rej.id.as_bytes().as_slice()])?;
            } else {
                tx.prepare_cached(
                    "UPDATE documents SET sync_state = 3, reject_reason = ?2 WHERE id = ?1",
                )?
                .execute(params![rej.id.as_bytes().as_slice(), rej.reason])?;
            }
        }
        let news = crate::roster::apply(&tx, &resp.team)?;
        changed.extend(news.decided.into_iter().map(|id| (RecordKind::Contact, id)));
        let lending =
            crate::lending::apply(&tx, batch.version, &resp.access, &resp.lent, resp.more, now)?;
        meta_put(&tx, CURSOR_KEY, &resp.cursor.to_be_bytes())?;
        crate::lock::reached_server(&tx, now)?;
        tx.commit()?;
        // Erased records and the old generations of rewritten ones leave no byte behind.
        let erased_here = !resp.erased.is_empty()
            || !resp.moved.is_empty()
            || !replaced.is_empty()
            || resp
                .rejections
                .iter()
                .any(|r| matches!(r.code, RejectCode::Erased | RejectCode::Transferred));
        if erased_here {
            crate::storage::scrub(&self.conn)?;
        } else if lending.removed {
            crate::storage::cut_wal(&self.conn)?;
        }
        notify(
            &self.listeners,
            StoreEvent {
                origin: Origin::Remote,
                changed,
                roster_changed: news.roster_changed,
                lending_changed: lending.changed,
            },
        );
        Ok(Applied::Stored {
            set_aside: set_aside_count,
            rewritten: replaced.len(),
            edits_dropped,
            again,
        })
    }

    /// The server's log is another one than the cursor counts in (restored from a
    /// backup): offer it every record again, whole, and pull from the start, so that
    /// nothing it acknowledged before the restore is lost and nothing after is skipped.
    fn server_restored(&mut self, epoch: u64) -> Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "UPDATE documents SET synced_heads = NULL,
                sync_state = CASE sync_state WHEN 0 THEN 0 ELSE 1 END, reject_reason = NULL",
            [],
        )?;
        meta_put(&tx, CURSOR_KEY, &0u64.to_be_bytes())?;
        meta_put(&tx, EPOCH_KEY, &epoch.to_be_bytes())?;
        crate::roster::forget(&tx)?;
        tx.commit()?;
        notify(
            &self.listeners,
            StoreEvent {
                origin: Origin::Remote,
                changed: Vec::new(),
                roster_changed: true,
                lending_changed: false,
            },
        );
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
    let mut version = protocol::PROTOCOL_VERSION;
    // Break-the-glass requests go in the first request of a sync, until an answer was taken.
    let mut asked = false;
    loop {
        options.cancel.check()?;
        let (batch, body, answer) = match ahead.take() {
            Some(exchanged) => exchanged,
            None => {
                let mut prepared = None;
                with_store(&mut |s| {
                    prepared = Some(s.sync_prepare(options, &attempted)?);
                    Ok(())
                })?;
                let Some(mut batch) = prepared else {
                    return Ok(report);
                };
                batch.version = version;
                if asked {
                    batch.request.access_requests.clear();
                }
                let answer = exchange(transport, &mut batch, options);
                let body = batch.body();
                (batch, body, answer)
            }
        };
        let (resp, resp_len) = match answer {
            Ok(answered) => answered,
            // A revoked tablet told to delete its store (after its last pushes were taken).
            Err(Error::WipeOrdered) => {
                with_store(&mut |s| s.wipe())?;
                return Err(Error::Wiped);
            }
            Err(e) => return Err(e),
        };
        version = batch.version;
        let pushed = batch.request.pushes.len();
        // While a pull-only page is applied, the next page is already asked for: the server
        // and the network work while the tablet writes. If applying fails, the page fetched
        // ahead is dropped and nothing of it is stored.
        let applied = std::thread::scope(|scope| {
            let next = (resp.more && pushed == 0).then(|| {
                let mut next = SyncBatch {
                    request: SyncRequest {
                        cursor: resp.cursor,
                        pushes: Vec::new(),
                        pull_limit: options.pull_limit,
                        team: resp.team.since(batch.request.team),
                        // Nothing was pushed: what waits is what the last request said.
                        report: batch.request.report.clone(),
                        // Asked in the first request of the sync, answered in its answer.
                        access_requests: Vec::new(),
                    },
                    token: batch.token.clone(),
                    version,
                    sent: Vec::new(),
                };
                scope.spawn(move || {
                    let answer = exchange(transport, &mut next, options);
                    let body = next.body();
                    (next, body, answer)
                })
            });
            let mut outcome = Applied::ServerRestored;
            let applied = with_store(&mut |s| {
                outcome = s.sync_apply(&batch, &resp)?;
                Ok(())
            });
            let fetched = next.and_then(|h| h.join().ok());
            applied.map(|()| (fetched, outcome))
        });
        let (fetched, outcome) = applied?;
        ahead = fetched;
        report.rounds += 1;
        report.bytes_up += body.len();
        report.bytes_down += resp_len;
        let push_again;
        if let Applied::Stored {
            set_aside,
            rewritten,
            edits_dropped,
            again,
        } = outcome
        {
            asked = true;
            push_again = !again.is_empty();
            report.set_aside += set_aside;
            report.rewritten += rewritten;
            report.edits_dropped += edits_dropped;
            attempted.extend(batch.pushed_ids());
            // Edits carried over to a new generation go in this sync, not the next one.
            for id in again {
                attempted.remove(&id);
            }
        } else {
            // Nothing of this answer was kept: everything is offered again, and the pull
            // restarts from the beginning of the new log.
            ahead = None;
            attempted.clear();
            report.server_restored = true;
            progress(&report);
            continue;
        }
        report.pushed += pushed;
        report.acknowledged += resp.acks.len();
        report.rejected += resp.rejections.len();
        report.pulled += resp.docs.len();
        report.erased += resp.erased.len();
        report.transferred += resp.moved.len()
            + resp
                .rejections
                .iter()
                .filter(|r| r.code == RejectCode::Transferred)
                .count();
        progress(&report);
        // Erasures applied are reported at once: the next request's cursor says they are
        // done (the server's receipts of erasures count on it).
        let report_erasures = !resp.erased.is_empty();
        if !resp.more && pushed == 0 && !push_again && !report_erasures {
            return Ok(report);
        }
    }
}

/// A stored document that is one document chunk, with the heads its header names.
fn whole_document(conn: &Connection, id: Uuid) -> Result<Option<(Vec<u8>, Vec<ChangeHash>)>> {
    let bytes: Vec<u8> = conn
        .prepare_cached("SELECT doc FROM documents WHERE id = ?1")?
        .query_row([id.as_bytes().as_slice()], |r| r.get(0))?;
    Ok(bounded::document_heads(&bytes)
        .map(|heads| (bytes, heads.into_iter().map(ChangeHash).collect())))
}

/// The heads the server says a pulled document has, sorted as a document stores them.
fn pulled_heads(d: &PulledDoc) -> Vec<[u8; 32]> {
    let mut heads = d.heads.clone();
    heads.sort_unstable();
    heads
}

/// The record a pulled document says it holds, if its fields read as that kind.
fn record_from_fields(kind: RecordKind, d: &PulledDoc) -> Option<crate::records::AnyRecord> {
    if d.fields.is_empty() || d.heads.is_empty() {
        return None;
    }
    let fields: crate::document::JsonFields = serde_json::from_str(&d.fields).ok()?;
    crate::store::any_from_fields(kind, d.id, fields).ok()
}

type DecodedPull<'a> = (Decoded<'a>, Vec<ChangeHash>);

/// Parses pulled documents on every core: parsing Automerge is most of the cost of a
/// large initial sync, and it needs no database. Returns the documents read (with the
/// heads the server sent) and those that could not be.
fn decode_all<'a>(
    docs: &[(RecordKind, &'a PulledDoc)],
    author: crate::document::Author,
) -> (Vec<DecodedPull<'a>>, Vec<&'a PulledDoc>) {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8);
    let chunk = docs.len().div_ceil(threads).max(64);
    let read = |(kind, d): &(RecordKind, &'a PulledDoc)| {
        decode(*kind, d.id, &d.doc, author)
            .map(|mut decoded| {
                // Without heads beside it (version 9 and bytes that are not one document
                // chunk), the server's heads are those of the whole document it sent.
                let heads = if d.heads.is_empty() {
                    decoded.remote.heads()
                } else {
                    d.heads.iter().map(|h| ChangeHash(*h)).collect()
                };
                (decoded, heads)
            })
            .map_err(|_| *d)
    };
    std::thread::scope(|scope| {
        let workers: Vec<_> = docs
            .chunks(chunk)
            .map(|part| scope.spawn(move || part.iter().map(read).collect::<Vec<_>>()))
            .collect();
        let mut ok = Vec::with_capacity(docs.len());
        let mut failed = Vec::new();
        for (worker, part) in workers.into_iter().zip(docs.chunks(chunk)) {
            // A worker that panicked (a bug in the document engine) sets its part aside.
            let results = worker
                .join()
                .unwrap_or_else(|_| part.iter().map(|(_, d)| Err(*d)).collect());
            for r in results {
                match r {
                    Ok(decoded) => ok.push(decoded),
                    Err(d) => failed.push(d),
                }
            }
        }
        (ok, failed)
    })
}

/// One round trip with retries and exponential backoff on transient failures. A server
/// that does not speak the request's protocol version gets it again in the newest version
/// both sides speak (it says which, or else the next lower one is tried).
fn exchange(
    transport: &dyn Transport,
    batch: &mut SyncBatch,
    options: &SyncOptions,
) -> Result<(SyncResponse, usize)> {
    let mut delay = options.initial_backoff;
    let mut attempt = 1;
    loop {
        options.cancel.check()?;
        let sent = transport.post_cancellable(
            SYNC_PATH,
            Some(batch.token()),
            batch.body(),
            &options.cancel,
        );
        let (transient, error) = match sent {
            Ok(bytes) => match protocol::decode_response(&bytes) {
                Ok(resp) => return Ok((resp, bytes.len())),
                // A body damaged on the way is worth another try, like a cut connection.
                Err(e) => (true, Error::Protocol(e)),
            },
            Err(TransportError::Status {
                body: Some(body), ..
            }) if body.error == ErrorCode::UnsupportedVersion => {
                batch.version = step_down(batch.version, body.versions)?;
                continue;
            }
            Err(e) => (is_transient(&e), map_transport_error(&e)),
        };
        if !transient || attempt >= options.max_attempts {
            return Err(error);
        }
        options.cancel.sleep(delay)?;
        delay = (delay * 2).min(options.max_backoff);
        attempt += 1;
    }
}

fn is_transient(e: &TransportError) -> bool {
    match e {
        TransportError::Network(_) => true,
        TransportError::Status { status, .. } => *status >= 500 || *status == 429 || *status == 408,
        TransportError::Cancelled => false,
    }
}

fn map_transport_error(e: &TransportError) -> Error {
    match e {
        TransportError::Network(m) => Error::Network(m.clone()),
        TransportError::Cancelled => Error::Cancelled,
        TransportError::Status { status, body } => match body.as_ref().map(|b| b.error) {
            Some(ErrorCode::DeviceRevoked) => Error::DeviceRevoked,
            Some(ErrorCode::WipeOrdered) => Error::WipeOrdered,
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
    let kind = drop_local(tx, id)?;
    tx.prepare_cached("INSERT OR IGNORE INTO erased (id, erased_at) VALUES (?1, datetime('now'))")?
        .execute([id.as_bytes().as_slice()])?;
    Ok(kind)
}

/// Deletes every local trace of a record that left this tablet's team (transferred with
/// its young person), unsent changes included. The id is not remembered as erased: the
/// record lives on in its new team and may come back one day.
fn drop_local(tx: &Connection, id: Uuid) -> Result<Option<RecordKind>> {
    let bid = id.as_bytes().as_slice();
    let kind: Option<String> = tx
        .prepare_cached("SELECT kind FROM documents WHERE id = ?1")?
        .query_row([bid], |r| r.get(0))
        .optional()?;
    index::remove(tx, id)?;
    crate::roster::erase_decision(tx, id)?;
    tx.prepare_cached("DELETE FROM documents WHERE id = ?1")?
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
    let row: Option<(String, Vec<u8>)> = tx
        .prepare_cached("SELECT kind, doc FROM documents WHERE id = ?1")?
        .query_row([bid], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((kind, stored)) = row else {
        return Ok(()); // erased meanwhile
    };
    let Some(kind) = RecordKind::parse(&kind) else {
        return Ok(());
    };
    let server_heads: Vec<ChangeHash> = ack.heads.iter().map(|h| ChangeHash(*h)).collect();
    // The common case, read off the stored document's header: nothing was written here
    // since the push, and the server has exactly what was sent.
    let mut acked = ack.heads.clone();
    acked.sort_unstable();
    if !acked.is_empty() && bounded::document_heads(&stored) == Some(acked) {
        tx.prepare_cached(
            "UPDATE documents SET sync_state = 2, reject_reason = NULL, synced_heads = ?2
             WHERE id = ?1",
        )?
        .execute(params![bid, heads_to_bytes(&server_heads)])?;
        return Ok(());
    }
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

/// Why a received or local document was set aside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SetAsideReason {
    /// A record kind from a newer app version.
    NewerKind,
    /// Bytes this version cannot read as the kind they claim.
    Unreadable,
    /// Unsent changes of a team this tablet left (forced re-enrolment).
    LeftTeam,
}

impl SetAsideReason {
    fn as_str(self) -> &'static str {
        match self {
            SetAsideReason::NewerKind => "newer_kind",
            SetAsideReason::Unreadable => "unreadable",
            SetAsideReason::LeftTeam => "left_team",
        }
    }
}

fn set_aside(
    tx: &Connection,
    id: Uuid,
    kind: &str,
    doc: &[u8],
    reason: SetAsideReason,
) -> Result<()> {
    tx.prepare_cached(
        "INSERT OR REPLACE INTO set_aside (id, kind, doc, reason, set_at)
         VALUES (?1, ?2, ?3, ?4, datetime('now'))",
    )?
    .execute(params![
        id.as_bytes().as_slice(),
        kind,
        doc,
        reason.as_str()
    ])?;
    Ok(())
}

/// After re-enrolment into `team`: the records of other teams leave the tablet; those
/// with unsent changes are set aside rather than lost.
fn leave_other_teams(tx: &Connection, team: Uuid) -> Result<Vec<(RecordKind, Uuid)>> {
    let team = team.as_bytes().as_slice();
    tx.execute(
        "INSERT OR REPLACE INTO set_aside (id, kind, doc, reason, team_id, set_at)
         SELECT id, kind, doc, ?2, team_id, datetime('now') FROM documents
          WHERE team_id <> ?1 AND sync_state <> 2",
        params![team, SetAsideReason::LeftTeam.as_str()],
    )?;
    let mut left = Vec::new();
    {
        let mut stmt = tx.prepare("SELECT kind, id FROM documents WHERE team_id <> ?1")?;
        let mut rows = stmt.query([team])?;
        while let Some(row) = rows.next()? {
            let (kind, id): (String, Vec<u8>) = (row.get(0)?, row.get(1)?);
            if let (Some(kind), Ok(id)) = (RecordKind::parse(&kind), Uuid::from_slice(&id)) {
                left.push((kind, id));
            }
        }
    }
    for (_, id) in &left {
        index::remove(tx, *id)?;
    }
    tx.execute("DELETE FROM documents WHERE team_id <> ?1", [team])?;
    Ok(left)
}

/// Whether a record was edited on this tablet after the push that was answered (`sent`
/// heads): changes merged in from elsewhere meanwhile do not count.
fn edited_since(
    tx: &Connection,
    author: crate::document::Author,
    id: Uuid,
    sent: Option<&[ChangeHash]>,
) -> Result<bool> {
    let Some(sent) = sent else { return Ok(false) };
    let Some(kind) = kind_in(tx, id)? else {
        return Ok(false);
    };
    let mut doc = load_doc(tx, kind, id, author)?;
    Ok(doc.automerge().get_changes(sent).iter().any(|c| {
        crate::document::Author::from_actor(c.actor_id())
            .is_some_and(|a| a.device_id == author.device_id)
    }))
}

fn kind_in(tx: &Connection, id: Uuid) -> Result<Option<RecordKind>> {
    let kind: Option<String> = tx
        .prepare_cached("SELECT kind FROM documents WHERE id = ?1")?
        .query_row([id.as_bytes().as_slice()], |r| r.get(0))
        .optional()?;
    Ok(kind.as_deref().and_then(RecordKind::parse))
}

/// After merging a pulled document: if the server's heads cover every local change, the
/// record is in step with the server at those heads.
fn mark_pulled(
    tx: &Connection,
    author: crate::document::Author,
    kind: RecordKind,
    id: Uuid,
    server_heads: &[ChangeHash],
) -> Result<()> {
    let mut doc = load_doc(tx, kind, id, author)?;
    if server_heads.is_empty() || !doc.covered_by(server_heads) {
        return Ok(());
    }
    tx.prepare_cached(
        "UPDATE documents SET sync_state = 2, reject_reason = NULL, synced_heads = ?2
         WHERE id = ?1",
    )?
    .execute(params![
        id.as_bytes().as_slice(),
        heads_to_bytes(server_heads)
    ])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What an empty sync reads must not grow with the records the store holds.
    #[test]
    fn records_to_push_are_found_by_the_index_of_unsynced_records() {
        let dir = tempfile::tempdir().expect("dir");
        let store = Store::open(dir.path().join("s.db"), &[7; crate::KEY_LEN]).expect("store");
        for sql in [UNACKNOWLEDGED, crate::store::UNSYNCED] {
            let plan: Vec<String> = store
                .conn
                .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .expect("plan")
                .query_map([], |r| r.get::<_, String>(3))
                .expect("rows")
                .collect::<rusqlite::Result<_>>()
                .expect("plan rows");
            assert!(
                plan.iter().any(|step| step.contains("documents_unsynced")),
                "{sql}: {plan:?}"
            );
        }
    }
}

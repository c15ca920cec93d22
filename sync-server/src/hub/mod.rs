//! The hub's protocol logic (docs/sync-protocol.md) over a [`Storage`]: enrolment,
//! authentication, one sync exchange, erasure. No sockets: `http` is a thin adapter, and
//! tests drive the hub directly.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use automerge::{AutoCommit, ChangeHash};
use chrono::{DateTime, Utc};
use repere_core::bounded::{self, Bounds};
use repere_core::document::{Author, JsonFields, RecordDoc};
use repere_core::records::ValidationContext;
use repere_core::sync::protocol::{
    self, Ack, Decision, DecisionState, EnrolRequest, EnrolResponse, ErrorCode, LEND_VERSION,
    MAX_PUSHES, Member, PROTOCOL_VERSION, PulledDoc, PushDoc, REPORT_VERSION, REWRITE_VERSION,
    RejectCode, Rejection, Roster, SyncRequest, SyncResponse, TEAM_NEWS_VERSION, TeamNews,
    TeamSince,
};
use repere_core::{AnyRecord, Clock, Communes, Error as CoreError, RecordKind, SystemClock};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::pushed::{self, Shape};

pub mod lend;
mod rectify;
pub mod transfer;
use crate::secret::{self, RandomError};
use crate::storage::register::{ErasureRegister, Rewrite};
use crate::storage::{
    AuditEntry, Bucket, Departure, Device, DocumentWrite, SecretHash, Storage, StorageError,
    StoredDocument, Tombstone, Tx, VisitState, WipeOrder,
};
pub use rectify::Rectified;

/// The most documents one response carries, whatever the device asks.
pub const MAX_PULL_LIMIT: u32 = 1000;
/// Document bytes per response: well under what a device accepts (32 MiB inflated).
pub const MAX_PULL_BYTES: usize = 16 * 1024 * 1024;
/// Visit decisions per response (a reason is at most 1,000 characters).
pub const MAX_PULL_DECISIONS: usize = 1000;
/// Tombstones per response (16 bytes each).
pub const MAX_PULL_TOMBSTONES: usize = 10_000;
/// A record's merged document, saved (a visit with long notes is tens of kilobytes).
pub const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;
/// Changes in one record's history.
pub const MAX_CHANGES: u64 = 10_000;
/// Where the log epoch is kept (see docs/sync-protocol.md, "Server restore").
const LOG_EPOCH: &str = "log_epoch";
/// Device labels are shown to administrators; longer ones are cut.
pub const LABEL_MAX_CHARS: usize = 100;

#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error("the enrolment code is unknown, already used or expired")]
    InvalidEnrolmentCode,
    #[error("missing or unknown device credentials")]
    Unauthorized,
    #[error("this device's access was revoked")]
    DeviceRevoked,
    #[error("this device was revoked with an order to delete its store: delete it now")]
    WipeOrdered,
    #[error("too many syncs from this tablet in a short time: try again in a few seconds")]
    RateLimited,
    #[error("{what} {id} does not exist")]
    NotFound { what: &'static str, id: Uuid },
    /// The enrolling store named a writer id that is another device's, without the token
    /// that proves it is that store enrolling again.
    #[error(
        "this tablet's writer id is already another tablet's: enrol from a fresh store, or \
         from the store that holds that tablet's credentials"
    )]
    WriterTaken,
    /// Input an administrator or a client got wrong; the message says what.
    #[error("{0}")]
    BadInput(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<RandomError> for HubError {
    fn from(e: RandomError) -> Self {
        HubError::Internal(e.to_string())
    }
}

impl HubError {
    /// The stable error code of the wire protocol.
    pub fn code(&self) -> ErrorCode {
        match self {
            HubError::InvalidEnrolmentCode => ErrorCode::InvalidEnrolmentCode,
            HubError::Unauthorized => ErrorCode::Unauthorized,
            HubError::DeviceRevoked => ErrorCode::DeviceRevoked,
            HubError::WipeOrdered => ErrorCode::WipeOrdered,
            HubError::RateLimited => ErrorCode::RateLimited,
            HubError::NotFound { .. } | HubError::BadInput(_) | HubError::WriterTaken => {
                ErrorCode::MalformedRequest
            }
            HubError::Storage(StorageError::NotFound { .. } | StorageError::Duplicate { .. }) => {
                ErrorCode::MalformedRequest
            }
            HubError::Storage(_) | HubError::Internal(_) => ErrorCode::Internal,
        }
    }

    /// The HTTP status that goes with it.
    pub fn http_status(&self) -> u16 {
        match self.code() {
            ErrorCode::Unauthorized | ErrorCode::DeviceRevoked => 401,
            ErrorCode::WipeOrdered => 410,
            ErrorCode::InvalidEnrolmentCode => 403,
            ErrorCode::TooLarge => 413,
            ErrorCode::RateLimited => 429,
            ErrorCode::Internal => 500,
            ErrorCode::MalformedRequest | ErrorCode::UnsupportedVersion => 400,
        }
    }

    /// What the client may be told: server failures stay in the server's log.
    pub fn public_message(&self) -> String {
        match self.code() {
            ErrorCode::Internal => "the server failed; try again later".to_string(),
            _ => self.to_string(),
        }
    }
}

/// Counts of one exchange, for the log (no content, no names).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncStats {
    pub pushed: usize,
    pub stored: usize,
    pub acked: usize,
    pub rejected: usize,
    pub pulled: usize,
    pub erased: usize,
}

pub struct Hub {
    storage: Arc<dyn Storage>,
    clock: Arc<dyn Clock>,
    /// The exports' pseudonym key, derived from the server key and kept out of the
    /// database; `None` (no server key: demo, development) keeps one in the database.
    pseudonym_key: Option<[u8; 32]>,
    /// Where erasures are registered outside the database (see `storage::register`).
    register: Option<ErasureRegister>,
}

/// Syncs a device may make in a burst (an initial pull of 100,000 records is 100 pages),
/// and how many come back each second after. Kept in the database (`rate_buckets`), so
/// that every instance on it counts the same syncs.
pub const SYNC_BUCKET: Bucket = Bucket {
    burst: 150.0,
    per_second: 5.0,
};

/// A device's sync budget in `rate_buckets` (a device id is no secret: a plain hash).
fn sync_budget_key(device: Uuid) -> SecretHash {
    let mut hash = Sha256::new();
    hash.update(b"sync-budget\0");
    hash.update(device.as_bytes());
    hash.finalize().into()
}

/// What became of one pushed record.
enum Outcome {
    Accepted {
        heads: Vec<[u8; 32]>,
        stored: bool,
        /// The merged document holds nothing the device lacks: no need to send it back.
        device_has_all: bool,
    },
    Rejected(RejectCode, String),
}

fn reject(code: RejectCode, reason: impl Into<String>) -> Result<Outcome, HubError> {
    Ok(Outcome::Rejected(code, reason.into()))
}

/// The server reads and merges documents but never writes content: a nil actor.
fn server_author() -> Author {
    Author {
        device_id: Uuid::nil(),
        member_id: Uuid::nil(),
    }
}

impl Hub {
    pub fn new(storage: Arc<dyn Storage>) -> Hub {
        Hub::with_clock(storage, Arc::new(SystemClock))
    }

    pub fn with_clock(storage: Arc<dyn Storage>, clock: Arc<dyn Clock>) -> Hub {
        Hub {
            storage,
            clock,
            pseudonym_key: None,
            register: None,
        }
    }

    /// Registers every erasure in `register` before it commits, for restores.
    pub fn with_register(mut self, register: ErasureRegister) -> Hub {
        self.register = Some(register);
        self
    }

    /// After a restore: erases again every registered record the database holds (it was
    /// erased after the backup was made), then rewrites again every record rectified after
    /// the backup, before any tablet syncs.
    pub fn reapply_register(&self) -> Result<Reapplied, HubError> {
        let Some(register) = &self.register else {
            return Ok(Reapplied::default());
        };
        let entries = register.entries()?;
        let now = self.now();
        let reapplied = self
            .storage()
            .write_with(|tx| -> Result<Reapplied, HubError> {
                let mut reapplied = Reapplied::default();
                for entry in &entries.erased {
                    if tx.tombstone(entry.id)?.is_some() {
                        continue;
                    }
                    if tx.erase_document(entry.id, now)?.is_none() {
                        tx.bury(entry.id, entry.team_id, entry.erased_at)?;
                    }
                    reapplied.erased += 1;
                }
                for entry in &entries.rewritten {
                    let Some(stored) = tx.document(entry.id)? else {
                        continue; // erased since, or created after the backup
                    };
                    if stored.generation >= entry.generation {
                        continue;
                    }
                    rectify::rewrite_again(tx, &stored, entry, now)?;
                    reapplied.rewritten += 1;
                }
                Ok(reapplied)
            })?;
        if reapplied != Reapplied::default() {
            self.storage().scrub()?;
        }
        Ok(reapplied)
    }

    /// Takes the pseudonym key from the server key instead of the database.
    pub fn with_server_key(mut self, key: &crate::keys::ServerKey) -> Hub {
        self.pseudonym_key = Some(key.pseudonym_key());
        self
    }

    pub fn pseudonym_key(&self) -> Option<[u8; 32]> {
        self.pseudonym_key
    }

    pub fn storage(&self) -> &dyn Storage {
        &*self.storage
    }

    /// Server time, to the millisecond (the precision it is stored with).
    pub fn now(&self) -> DateTime<Utc> {
        let now = self.clock.now();
        DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now)
    }

    /// Exchanges a one-time code for a new device and its bearer token.
    pub fn enrol(&self, request: EnrolRequest) -> Result<EnrolResponse, HubError> {
        let canonical =
            secret::normalize_code(&request.code).ok_or(HubError::InvalidEnrolmentCode)?;
        let code_hash = secret::code_hash(&canonical);
        let label = clean_label(&request.device_label);
        let now = self.now();
        let (response, device) = self.storage().write_with(|tx| -> Result<_, HubError> {
            let code = tx
                .enrolment_code(&code_hash)?
                .ok_or(HubError::InvalidEnrolmentCode)?;
            if code.used_at.is_some() || code.expires_at <= now {
                return Err(HubError::InvalidEnrolmentCode);
            }
            let team = tx.team(code.team_id)?.ok_or(HubError::NotFound {
                what: "team",
                id: code.team_id,
            })?;
            if let Some(writer) = request.writer {
                check_writer(tx, writer, request.previous_token.as_deref())?;
            }
            let token = secret::new_token()?;
            let device = Device {
                id: Uuid::now_v7(),
                team_id: team.id,
                organisation_id: team.organisation_id,
                label: label.clone(),
                enrolled_at: now,
                revoked_at: None,
                last_sync_at: None,
                writer: request.writer,
                applied_seq: 0,
                wipe: None,
                wipe_sent_at: None,
                app_version: None,
                unsent: None,
            };
            tx.insert_device(&device, &secret::token_hash(&token))?;
            if !tx.use_enrolment_code(&code_hash, device.id, now)? {
                return Err(HubError::InvalidEnrolmentCode);
            }
            let response = EnrolResponse {
                device_id: device.id,
                team_id: device.team_id,
                organisation_id: device.organisation_id,
                token,
            };
            Ok((response, device))
        })?;
        tracing::info!(device = %device.id, team = %device.team_id, "device enrolled");
        Ok(response)
    }

    /// The device a bearer token belongs to.
    pub fn authenticate(&self, token: &str) -> Result<Device, HubError> {
        if token.is_empty() || token.len() > 256 {
            return Err(HubError::Unauthorized);
        }
        let hash = secret::token_hash(token);
        let device = self
            .storage()
            .read_with(|tx| Ok::<_, HubError>(tx.device_by_token(&hash)?))?;
        match device {
            None => Err(HubError::Unauthorized),
            // A wipe order is delivered by the sync itself.
            Some(d) if d.revoked_at.is_some() && d.wipe.is_none() => Err(HubError::DeviceRevoked),
            Some(d) => Ok(d),
        }
    }

    /// One exchange: every push, then the pull, in one transaction committed before this
    /// returns.
    pub fn sync(&self, device: &Device, request: SyncRequest) -> Result<SyncResponse, HubError> {
        self.sync_with_stats(device, request, PROTOCOL_VERSION)
            .map(|(r, _)| r)
    }

    /// One exchange with a device that speaks protocol `version` (what it can be told
    /// depends on it: before version 4 a rewritten record can only be erased on it).
    pub fn sync_with_stats(
        &self,
        device: &Device,
        request: SyncRequest,
        version: u8,
    ) -> Result<(SyncResponse, SyncStats), HubError> {
        let now = self.now();
        let limit = request.pull_limit.clamp(1, MAX_PULL_LIMIT) as usize;
        let ctx = ValidationContext {
            now,
            communes: Communes::global(),
        };
        let budget = sync_budget_key(device.id);
        if request.pushes.len() > MAX_PUSHES {
            self.spend_sync_budget(&budget, now)?;
            return Err(HubError::BadInput(format!(
                "at most {MAX_PUSHES} records per request"
            )));
        }
        // Everything that needs no stored data is done before the write lock is taken, on
        // every core: the bounded reading and the first look at each pushed record's bytes,
        // which loads a new record's whole document (most of the cost of a large push).
        let (checked, mut loaded) = check_pushes(&request.pushes, &ctx, PRELOAD_ITEMS);
        let answer = self.storage().write_with(|tx| -> Result<_, HubError> {
            // The budget is spent with the sync itself: one commit for both.
            if !tx.take_token(&budget, SYNC_BUCKET, now)? {
                return Err(HubError::RateLimited);
            }
            // Revoked (or moved) since it authenticated: refuse before touching anything. A
            // wipe order takes the unsent changes first (not when urgent), then is delivered.
            let taking_last_pushes = match tx.device(device.id)? {
                Some(d) if d.team_id != device.team_id => return Err(HubError::Unauthorized),
                Some(d) if d.revoked_at.is_none() => false,
                Some(d) => match d.wipe {
                    Some(WipeOrder::AfterPush) if !request.pushes.is_empty() => true,
                    Some(_) => return Ok(None),
                    None => return Err(HubError::DeviceRevoked),
                },
                None => return Err(HubError::Unauthorized),
            };
            let mut response = SyncResponse {
                acks: Vec::new(),
                rejections: Vec::new(),
                docs: Vec::new(),
                erased: Vec::new(),
                cursor: request.cursor,
                more: false,
                epoch: log_epoch(tx, now)?,
                team: TeamNews::default(),
                moved: Vec::new(),
                access: Vec::new(),
                lent: Vec::new(),
            };
            let mut stats = SyncStats {
                pushed: request.pushes.len(),
                ..SyncStats::default()
            };
            // Records whose merged document the device already has entirely, by heads.
            let mut device_has: HashMap<Uuid, Vec<[u8; 32]>> = HashMap::new();
            // Referenced kinds first (an older app sends in the order records changed).
            let mut order: Vec<(usize, &PushDoc, &Checked)> = request
                .pushes
                .iter()
                .zip(&checked)
                .enumerate()
                .map(|(i, (push, checked))| (i, push, checked))
                .collect();
            order.sort_by_key(|(_, _, checked)| match checked {
                Ok(first_look) => first_look.kind.push_rank(),
                Err(_) => u8::MAX,
            });
            for (i, push, checked) in order {
                let outcome = match checked {
                    // Taken once: should the storage run this transaction again, the bytes
                    // are loaded again.
                    Ok(first_look) => {
                        push_one(tx, device, push, first_look, loaded[i].take(), &ctx)?
                    }
                    Err((code, reason)) => Outcome::Rejected(*code, reason.clone()),
                };
                match outcome {
                    Outcome::Accepted {
                        heads,
                        stored,
                        device_has_all,
                    } => {
                        if device_has_all {
                            device_has.insert(push.id, heads.clone());
                        } else {
                            device_has.remove(&push.id);
                        }
                        stats.stored += usize::from(stored);
                        response.acks.push(Ack { id: push.id, heads });
                    }
                    Outcome::Rejected(code, reason) => {
                        tracing::info!(device = %device.id, record = %push.id, ?code, "push refused");
                        response.rejections.push(Rejection {
                            id: push.id,
                            code,
                            reason,
                        });
                    }
                }
            }
            // Only a short version string is kept: the field carries nothing else. The
            // tablet counted its unsent records before this push: what it still holds
            // unsent after this exchange is that, less the records just acknowledged.
            let report = (version >= REPORT_VERSION).then_some(&request.report);
            let acked = u32::try_from(response.acks.len()).unwrap_or(u32::MAX);
            tx.touch_device(
                device.id,
                now,
                request.cursor,
                report.and_then(|r| protocol::app_version(&r.app_version)),
                report.map(|r| r.unsent.saturating_sub(acked)),
            )?;
            let pulled = Pulled {
                device,
                version,
                device_has: &device_has,
            };
            // A tablet about to be wiped is sent nothing more.
            if !taking_last_pushes {
                pull(tx, &pulled, request.cursor, limit, &mut response)?;
                send_rewritten(tx, &pulled, &mut response)?;
                if version >= TEAM_NEWS_VERSION {
                    team_news(tx, device.team_id, request.team, &mut response)?;
                }
                if version >= LEND_VERSION {
                    response.access = lend::answer(tx, device, &request.access_requests, now)?;
                }
                // Whole in the answer that ends the sync, so the tablet can drop the rest.
                if version >= LEND_VERSION && !response.more {
                    response.lent = lend::lent(tx, device, now)?;
                }
            }
            stats.acked = response.acks.len();
            stats.rejected = response.rejections.len();
            stats.pulled = response.docs.len();
            stats.erased = response.erased.len();
            Ok(Some((response, stats)))
        });
        let answer = match answer {
            Err(HubError::RateLimited) => return Err(HubError::RateLimited),
            // A failed sync was rolled back with its token: it is spent on its own, so
            // that failing requests are not free.
            Err(e) => {
                self.spend_sync_budget(&budget, now)?;
                return Err(e);
            }
            Ok(answer) => answer,
        };
        match answer {
            Some(answer) => Ok(answer),
            None => {
                self.storage()
                    .write_with(|tx| Ok::<_, HubError>(tx.wipe_sent(device.id, now)?))?;
                tracing::warn!(device = %device.id, "wipe order delivered");
                Err(HubError::WipeOrdered)
            }
        }
    }

    /// Counts an enrolment attempt from `ip` against `bucket`; `false`: refused. In the
    /// database, so that every instance counts the same attempts; buckets full again go.
    pub fn admit_enrolment(&self, ip: std::net::IpAddr, bucket: Bucket) -> Result<bool, HubError> {
        let fresh = crate::coord::throttle::fresh_key()?;
        let now = self.now();
        self.storage().write_with(|tx| -> Result<_, HubError> {
            tx.prune_rate_buckets(now)?;
            let key = crate::coord::throttle::enrolment_key(tx, ip, &fresh, now)?;
            Ok(tx.take_token(&key, bucket, now)?)
        })
    }

    /// Takes one sync from the device's budget, or refuses: one tablet (or a stolen token)
    /// cannot take the server's write lock for itself.
    fn spend_sync_budget(&self, key: &SecretHash, now: DateTime<Utc>) -> Result<(), HubError> {
        let taken = self
            .storage()
            .write_with(|tx| Ok::<_, HubError>(tx.take_token(key, SYNC_BUCKET, now)?))?;
        if taken {
            Ok(())
        } else {
            Err(HubError::RateLimited)
        }
    }

    /// Gives the log a new epoch: after a restore from a backup, every tablet then offers
    /// the server everything it holds and pulls again from the start.
    pub fn new_log_epoch(&self) -> Result<u64, HubError> {
        let epoch = secret::new_epoch()?;
        let now = self.now();
        self.storage().write_with(|tx| -> Result<_, HubError> {
            tx.replace_server_secret(LOG_EPOCH, &epoch.to_be_bytes(), now)?;
            Ok(())
        })?;
        tracing::info!(epoch, "new log epoch");
        Ok(epoch)
    }

    /// Erases a record at the request of the person (see [`Hub::erase_because`]).
    pub fn erase(&self, record_id: Uuid) -> Result<Erasure, HubError> {
        self.erase_because(record_id, ErasureReason::Request)
    }

    /// Erases a record: its document goes, a content-free tombstone stays, and every device
    /// of its team deletes its copy at the next sync; erasing twice is harmless. One
    /// transaction, one journal entry with the reason. The questions about a visit go with
    /// it. Erasing a young person also erases their actions and outcomes and the visits
    /// where they were the only young person (with those visits' questions); group visits
    /// are rewritten without them.
    pub fn erase_because(
        &self,
        record_id: Uuid,
        reason: ErasureReason,
    ) -> Result<Erasure, HubError> {
        let now = self.now();
        let (erasure, new) = self.storage().write_with(|tx| -> Result<_, HubError> {
            if let Some(existing) = tx.tombstone(record_id)? {
                return Ok((Erasure::already(existing), false));
            }
            let stored = tx.document(record_id)?.ok_or(HubError::NotFound {
                what: "record",
                id: record_id,
            })?;
            let mut erasure = Erasure::already(Tombstone {
                id: record_id,
                team_id: stored.team_id,
                seq: 0,
                erased_at: now,
            });
            let mut tombstones = Vec::new();
            let mut rewrites = Vec::new();
            if stored.kind == RecordKind::Youth {
                for linked in tx.records_of_youth(record_id)? {
                    let alone = linked.kind != RecordKind::Contact
                        || match load_stored(&linked)?.read_record() {
                            Ok(AnyRecord::Contact(c)) => c.youth_ids.len() <= 1,
                            _ => true,
                        };
                    if alone {
                        erase_with_questions(tx, linked.id, now, &mut tombstones)?;
                        erasure.also_erased.push(linked.id);
                    } else {
                        rewrites.push(remove_from_visit(tx, &linked, record_id, now)?);
                        erasure.removed_from.push(linked.id);
                    }
                }
            }
            erasure.tombstone = erase_with_questions(tx, record_id, now, &mut tombstones)?;
            // In the register before the commit: a restore re-applies it even if the
            // process stops right after.
            if let Some(register) = &self.register {
                register.append(&tombstones)?;
                register.append_rewrites(&rewrites)?;
            }
            let organisation_id = tx.team(stored.team_id)?.map(|t| t.organisation_id);
            tx.insert_audit(&AuditEntry {
                id: 0,
                at: now,
                organisation_id,
                user_id: None,
                action: crate::coord::audit::ERASE_RECORD.to_string(),
                target_id: Some(record_id),
                detail: format!(
                    "{} : {} fiche(s) liée(s) effacée(s), retiré de {} visite(s) de groupe ; \
                     motif : {}",
                    stored.kind,
                    erasure.also_erased.len(),
                    erasure.removed_from.len(),
                    reason.label()
                ),
            })?;
            Ok((erasure, true))
        })?;
        if new {
            self.storage().scrub()?;
            let t = &erasure.tombstone;
            tracing::info!(
                record = %record_id, team = %t.team_id, seq = t.seq,
                linked = erasure.also_erased.len(), group_visits = erasure.removed_from.len(),
                "record erased"
            );
        }
        Ok(erasure)
    }
}

/// Why a record is erased, for the journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErasureReason {
    /// The person asked (GDPR art. 17).
    Request,
    /// The retention period ended (docs/DATA-PROTECTION.md, "Retention").
    EndOfRetention,
    /// Recorded by mistake (a duplicate, the wrong person).
    Error,
}

impl ErasureReason {
    pub const ALL: [ErasureReason; 3] = [
        ErasureReason::Request,
        ErasureReason::EndOfRetention,
        ErasureReason::Error,
    ];

    /// The word used on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            ErasureReason::Request => "request",
            ErasureReason::EndOfRetention => "retention",
            ErasureReason::Error => "error",
        }
    }

    pub fn parse(s: &str) -> Option<ErasureReason> {
        ErasureReason::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// The French label of the journal.
    pub fn label(self) -> &'static str {
        match self {
            ErasureReason::Request => "demande de la personne",
            ErasureReason::EndOfRetention => "fin de la durée de conservation",
            ErasureReason::Error => "erreur de saisie",
        }
    }
}

/// What `reapply_register` did after a restore.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reapplied {
    /// Records erased again.
    pub erased: usize,
    /// Records rewritten again, the fields their rectification changed emptied.
    pub rewritten: usize,
}

/// What one erasure removed.
#[derive(Debug, Clone, PartialEq)]
pub struct Erasure {
    /// The erased record's tombstone (the first one if it was erased before).
    pub tombstone: Tombstone,
    /// Records erased with it: a young person's actions, outcomes, visits where they were
    /// alone, and the questions about those visits.
    pub also_erased: Vec<Uuid>,
    /// Group visits the young person was removed from.
    pub removed_from: Vec<Uuid>,
}

impl Erasure {
    fn already(tombstone: Tombstone) -> Erasure {
        Erasure {
            tombstone,
            also_erased: Vec::new(),
            removed_from: Vec::new(),
        }
    }
}

/// Erases one record and the coordinators' questions about it (they quote it); every
/// tombstone left goes to `left`.
fn erase_with_questions(
    tx: &mut dyn Tx,
    id: Uuid,
    now: DateTime<Utc>,
    left: &mut Vec<Tombstone>,
) -> Result<Tombstone, HubError> {
    for task in tx.review_tasks_of(id)? {
        left.extend(tx.erase_document(task, now)?);
    }
    let tombstone = tx
        .erase_document(id, now)?
        .ok_or(HubError::NotFound { what: "record", id })?;
    left.push(tombstone);
    Ok(tombstone)
}

/// A group visit rewritten as a new generation without one of its young people: its
/// history, which named them, goes with the old generation. Returns what the register keeps.
fn remove_from_visit(
    tx: &mut dyn Tx,
    stored: &StoredDocument,
    youth_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Rewrite, HubError> {
    let internal = |e: CoreError| HubError::Internal(format!("group visit: {e}"));
    let doc = load_stored(stored)?;
    let AnyRecord::Contact(mut contact) = doc.read_record().map_err(internal)? else {
        return Err(HubError::Internal("group visit is not a contact".into()));
    };
    contact.youth_ids.remove(&youth_id);
    let fields = repere_core::document::to_json_fields(&contact).map_err(internal)?;
    let generation = rectify::rewrite(tx, stored, &fields, stored.generation + 1, now)?;
    Ok(Rewrite {
        id: stored.id,
        team_id: stored.team_id,
        at: now,
        generation,
        fields: vec!["youth_ids".into()],
    })
}

/// Stores a document the server itself changed (a coordinator's question, a young person
/// removed from a group visit) at the next log position.
pub(crate) fn put_server_change(
    tx: &mut dyn Tx,
    doc: &mut RecordDoc,
    team_id: Uuid,
    generation: u32,
    now: DateTime<Utc>,
) -> Result<(), HubError> {
    let heads = heads_of(doc);
    let bytes = doc.save();
    let fields = serde_json::to_string(&doc.read_fields()).unwrap_or_default();
    tx.put_document(DocumentWrite {
        id: doc.id,
        kind: doc.kind,
        team_id,
        doc: &bytes,
        heads: &heads,
        fields: &fields,
        device_id: None,
        received_at: now,
        generation,
    })?;
    Ok(())
}

/// A writer id is given to one store: a new one (never bound), or the same store enrolling
/// again, which proves it with a token of a device already bound to it (revoked or not).
/// The nil writer is the server's own.
fn check_writer(
    tx: &mut dyn Tx,
    writer: Uuid,
    previous_token: Option<&str>,
) -> Result<(), HubError> {
    if writer.is_nil() {
        return Err(HubError::WriterTaken);
    }
    let bound = tx.devices_of_writer(writer)?;
    if bound.is_empty() {
        return Ok(());
    }
    let proof = previous_token.map(secret::token_hash);
    let proven = proof.is_some_and(|proof| {
        bound
            .iter()
            .any(|(_, hash)| secret::hashes_match(hash, &proof))
    });
    if proven {
        Ok(())
    } else {
        Err(HubError::WriterTaken)
    }
}

/// The log's epoch, made the first time a device asks.
fn log_epoch(tx: &mut dyn Tx, now: DateTime<Utc>) -> Result<u64, HubError> {
    let stored = match tx.server_secret(LOG_EPOCH)? {
        Some(bytes) => bytes,
        None => tx.insert_server_secret(LOG_EPOCH, &secret::new_epoch()?.to_be_bytes(), now)?,
    };
    <[u8; 8]>::try_from(stored.as_slice())
        .map(u64::from_be_bytes)
        .map_err(|_| HubError::Internal("the stored log epoch is malformed".into()))
}

/// What can be known of a pushed record without the database: its kind and the shape of
/// its bytes, read within bounds; or why it is refused.
type Checked = Result<FirstLook, (RejectCode, String)>;

struct FirstLook {
    kind: RecordKind,
    shape: Shape,
    /// Changes the bytes hold (read within bounds).
    changes: u64,
    /// Items of their largest column: about the operations loading them builds.
    items: u64,
}

/// Operations of the documents one request may keep loaded before the write lock, summed
/// over its records (each one's largest column, read within bounds): about 2,500 visits
/// with notes, or five records at the per-record bound. Past it, a record is loaded in
/// the transaction, one at a time, as before: a request of records each as large as the
/// bounds allow costs the server no more than that.
const PRELOAD_ITEMS: u64 = 1_000_000;

/// [`check_push`] for every pushed record, on as many threads as there are cores, with
/// what can be read of the document each one's bytes load as on their own, for a record
/// the server turns out not to have (kept apart: it is taken by value), within
/// [`PRELOAD_ITEMS`].
fn check_pushes(
    pushes: &[PushDoc],
    ctx: &ValidationContext<'_>,
    preload_items: u64,
) -> (Vec<Checked>, Vec<Option<NewRecord>>) {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8);
    let chunk = pushes.len().div_ceil(threads).max(32);
    let budget = AtomicU64::new(preload_items);
    let budget = &budget;
    let parts: Vec<Vec<(Checked, Option<NewRecord>)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = pushes
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|push| check_push(push, ctx, budget))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            // A panic in the first look is contained by `on_received`; should a thread
            // still fail, its records are refused rather than the whole request.
            .zip(pushes.chunks(chunk))
            .map(|(h, part)| {
                h.join().unwrap_or_else(|_| {
                    part.iter()
                        .map(|_| {
                            let refused = (RejectCode::Malformed, "refused: unreadable".into());
                            (Err(refused), None)
                        })
                        .collect()
                })
            })
            .collect()
    });
    parts.into_iter().flatten().unzip()
}

fn check_push(
    push: &PushDoc,
    ctx: &ValidationContext<'_>,
    budget: &AtomicU64,
) -> (Checked, Option<NewRecord>) {
    match first_look(push) {
        Ok((look, loaded)) => {
            let within = budget
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                    left.checked_sub(look.items)
                })
                .is_ok();
            let new = loaded.filter(|_| within).map(|doc| {
                read_new(
                    RecordDoc::from_loaded(look.kind, push.id, doc, server_author()),
                    ctx,
                )
            });
            (Ok(look), new)
        }
        Err(refused) => (Err(refused), None),
    }
}

/// What a document's own content says, for protocol steps 2 to 4: its kind marker and
/// shape (a pushed change could rewrite the marker, add fields or nest objects the schema
/// does not have), the record its fields read as, and that record's validation.
struct Reading {
    /// `Err(None)`: the kind marker was changed; `Err(Some(reason))`: the shape.
    shape: Result<(), Option<String>>,
    record: Option<(JsonFields, AnyRecord)>,
    /// Field names and problems, never values.
    validation: Result<(), String>,
}

impl Reading {
    fn of(doc: &mut RecordDoc, kind: RecordKind, ctx: &ValidationContext<'_>) -> Reading {
        let shape = if !has_kind(doc, kind) {
            Err(None)
        } else {
            doc.check_shape().map_err(Some)
        };
        let fields = doc.read_fields();
        let record = AnyRecord::from_fields(kind, fields.clone())
            .ok()
            .map(|record| (fields, record));
        let validation = match &record {
            Some((_, record)) => record.validate(ctx).map_err(|e| e.to_string()),
            None => Ok(()),
        };
        Reading {
            shape,
            record,
            validation,
        }
    }
}

/// A pushed document that loads on its own, read before the write lock as the record
/// the server does not have yet (most pushes): only what needs the database is left for
/// inside the transaction.
type NewRecord = Result<(RecordDoc, Reading), CoreError>;

fn read_new(loaded: Result<RecordDoc, CoreError>, ctx: &ValidationContext<'_>) -> NewRecord {
    loaded.map(|mut doc| {
        let kind = doc.kind;
        let reading = Reading::of(&mut doc, kind, ctx);
        (doc, reading)
    })
}

fn first_look(push: &PushDoc) -> Result<(FirstLook, Option<AutoCommit>), (RejectCode, String)> {
    // A kind this server does not know (a tablet newer than the server): refused alone.
    let kind = push.kind.known().ok_or_else(|| {
        (
            RejectCode::Malformed,
            format!("this server does not know record {}", push.kind),
        )
    })?;
    if push.changes.len() > MAX_DOCUMENT_BYTES {
        return Err((
            RejectCode::Invalid,
            format!("record too large (more than {MAX_DOCUMENT_BYTES} bytes)"),
        ));
    }
    // Inflated size and operation counts are bounded before Automerge builds anything.
    let measured = bounded::measure(&push.changes, Bounds::RECORD)
        .map_err(|e| (RejectCode::Malformed, format!("refused: {e}")))?;
    let (shape, loaded) = pushed::inspect(&push.changes);
    Ok((
        FirstLook {
            kind,
            shape,
            changes: measured.changes,
            items: measured.max_items,
        },
        loaded,
    ))
}

/// Protocol steps 1–6 for one pushed record, inside the request's transaction.
fn push_one(
    tx: &mut dyn Tx,
    device: &Device,
    push: &PushDoc,
    first_look: &FirstLook,
    new: Option<NewRecord>,
    ctx: &ValidationContext<'_>,
) -> Result<Outcome, HubError> {
    let id = push.id;
    let kind = first_look.kind;
    // 1. Erased records never come back.
    if tx.tombstone(id)?.is_some() {
        return reject(
            RejectCode::Erased,
            "this record was erased: delete the copy on this tablet",
        );
    }
    // 2. The server's copy (or nothing) merged with the pushed bytes.
    let stored = tx.document(id)?;
    let (mut doc, before, pushed_heads, reading) = match &stored {
        Some(stored) => {
            // Scope first: nothing about another team's record is looked at or revealed,
            // but a record that left this very team is said so (the team knew it).
            if stored.team_id != device.team_id {
                if tx.departed(id, device.team_id)? {
                    return transferred();
                }
                return out_of_scope();
            }
            if stored.kind != kind {
                return reject(
                    RejectCode::Malformed,
                    format!("record {id} is a {}, not a {kind}", stored.kind),
                );
            }
            let pushed_heads = match &first_look.shape {
                Shape::Malformed => return reject(RejectCode::Malformed, malformed_reason(push)),
                Shape::Document { heads } => Some(heads.clone()),
                Shape::Changes { heads } => heads.clone(),
            };
            let mut doc = match load_stored(stored)?.with_incremental(&push.changes) {
                // Whole, valid bytes that cannot join the stored history: another generation.
                // Two generations rewritten by the server both hold its change of seq 1, and
                // Automerge refuses the pair unless they are byte for byte the same (made in
                // the same second).
                Err(_)
                    if stored.generation > 0
                        && matches!(first_look.shape, Shape::Document { .. }) =>
                {
                    return rewritten();
                }
                Err(_) => return reject(RejectCode::Malformed, malformed_reason(push)),
                // Built on history a rewritten record no longer has: an older generation.
                Ok((_, false)) if stored.generation > 0 => return rewritten(),
                Ok((_, false)) => return missing_history(),
                Ok((doc, true)) => doc,
            };
            if starts_another_generation(&mut doc, &stored.heads) {
                if stored.generation > 0 {
                    return rewritten();
                }
                return reject(
                    RejectCode::Malformed,
                    "these changes start another record with the same id",
                );
            }
            (doc, Some(stored.heads.clone()), pushed_heads, None)
        }
        None => match new.unwrap_or_else(|| {
            read_new(
                RecordDoc::load(kind, id, &push.changes, server_author()),
                ctx,
            )
        }) {
            Ok((mut doc, reading)) => {
                if !doc.automerge().get_missing_deps(&[]).is_empty() {
                    return missing_history();
                }
                let heads = heads_of(&mut doc);
                (doc, None, Some(heads), Some(reading))
            }
            Err(CoreError::WrongKind { actual, .. }) => {
                return reject(
                    RejectCode::Malformed,
                    format!("the document is a {actual}, not a {kind}"),
                );
            }
            Err(_) => {
                return match first_look.shape {
                    // Well-formed changes on a base the server never had (lost history).
                    Shape::Changes { .. } => missing_history(),
                    _ => reject(RejectCode::Malformed, malformed_reason(push)),
                };
            }
        },
    };
    let reading = match reading {
        Some(read_before_the_lock) => read_before_the_lock,
        None => Reading::of(&mut doc, kind, ctx),
    };
    match reading.shape {
        Ok(()) => {}
        Err(None) => return reject(RejectCode::Malformed, malformed_reason(push)),
        Err(Some(reason)) => return reject(RejectCode::Malformed, reason),
    }
    if let Some(refusal) = authorship(tx, device, &mut doc, before.as_deref().unwrap_or_default())?
    {
        return Ok(refusal);
    }
    let Some((fields, record)) = reading.record else {
        // serde's message could quote a value: keep it out of the answer.
        return reject(
            RejectCode::Malformed,
            format!("the fields cannot be read as a {kind} record"),
        );
    };
    // 3. Scope after the merge, and the rules of the kind.
    if record.team_id() != device.team_id {
        return out_of_scope();
    }
    // A stale tablet's new record about young people erased since: erased on arrival, as
    // the erasure's cascade would have done, so it never reaches another tablet.
    // A stale tablet's new action or outcome of a young person transferred away since:
    // their path is the new team's now.
    if stored.is_none() && about_departed_youth(tx, device, &record)? {
        return transferred();
    }
    if stored.is_none() && about_erased_youth_only(tx, device, &record)? {
        tx.bury(id, device.team_id, ctx.now)?;
        return reject(
            RejectCode::Erased,
            "this record is about a young person who was erased: delete the copy on this tablet",
        );
    }
    if let Some(refusal) = kind_rules(tx, device, stored.as_ref(), &record)? {
        return Ok(refusal);
    }
    // 4. Validation of the merged record (field names and problems, never values).
    if let Err(errors) = reading.validation {
        return reject(RejectCode::Invalid, errors);
    }
    // 5. Store when something changed, at the next log position.
    let heads = heads_of(&mut doc);
    let changed = before.as_ref() != Some(&heads);
    if changed {
        // A new record pushed whole is stored as it came: those bytes loaded as a document
        // with exactly these heads, and were measured before the lock.
        let whole = stored.is_none()
            && bounded::document_heads(&push.changes).is_some_and(|pushed| pushed == heads);
        let (bytes, changes) = if whole {
            (push.changes.clone(), Some(first_look.changes))
        } else {
            let bytes = doc.save();
            let changes = bounded::measure(&bytes, Bounds::RECORD)
                .ok()
                .map(|m| m.changes);
            (bytes, changes)
        };
        if bytes.len() > MAX_DOCUMENT_BYTES || changes.is_none_or(|c| c > MAX_CHANGES) {
            return reject(
                RejectCode::Invalid,
                "this record has grown past what one record may hold",
            );
        }
        let fields = serde_json::to_string(&fields).unwrap_or_default();
        tx.put_document(DocumentWrite {
            id,
            kind,
            team_id: record.team_id(),
            doc: &bytes,
            heads: &heads,
            fields: &fields,
            device_id: Some(device.id),
            received_at: ctx.now,
            generation: stored.as_ref().map_or(0, |s| s.generation),
        })?;
    }
    // 6. Ack with the merged heads.
    let device_has_all = pushed_heads.as_ref() == Some(&heads);
    Ok(Outcome::Accepted {
        heads,
        stored: changed,
        device_has_all,
    })
}

/// Nobody writes as somebody else: every change the server does not have yet must be
/// written under this device's writer id. A device enrolled by an older app (no writer
/// id bound) may use any writer id that is not bound to a device, nor the server's.
/// Changes a teammate wrote and this tablet relays (after a server restore) are refused
/// until the teammate's own tablet has pushed them; the tablet offers the record again
/// once the server's copy changes.
fn authorship(
    tx: &mut dyn Tx,
    device: &Device,
    doc: &mut RecordDoc,
    known_heads: &[[u8; 32]],
) -> Result<Option<Outcome>, HubError> {
    let have: Vec<ChangeHash> = known_heads.iter().map(|h| ChangeHash(*h)).collect();
    let writers: BTreeSet<Option<Uuid>> = doc
        .automerge()
        .get_changes_meta(&have)
        .iter()
        .map(|change| Author::from_actor(&change.actor).map(|a| a.device_id))
        .collect();
    for writer in writers {
        let own = match (writer, device.writer) {
            (None, _) => false,
            (Some(w), _) if w.is_nil() => false,
            (Some(w), Some(bound)) => w == bound,
            (Some(w), None) => tx.devices_of_writer(w)?.is_empty(),
        };
        if !own {
            return Ok(Some(Outcome::Rejected(
                RejectCode::Invalid,
                "holds changes written on another tablet (or by the server) that the server \
                 does not have yet: only the tablet that wrote them may send them; this record \
                 is offered again once the server has them"
                    .into(),
            )));
        }
    }
    Ok(None)
}

/// The same answer whether the id belongs to another team or the record was moved there:
/// a tablet learns nothing about other teams' records.
fn out_of_scope() -> Result<Outcome, HubError> {
    reject(
        RejectCode::OutOfScope,
        "this record cannot be written by this tablet's team",
    )
}

/// What a tablet may do with each kind beyond its scope: coordinators' questions are the
/// server's (a tablet may only answer them), and references point to records of the same
/// team (or erased from it).
fn kind_rules(
    tx: &mut dyn Tx,
    device: &Device,
    stored: Option<&StoredDocument>,
    record: &AnyRecord,
) -> Result<Option<Outcome>, HubError> {
    let refuse = |reason: &str| Some(Outcome::Rejected(RejectCode::Invalid, reason.into()));
    let references: Vec<(Uuid, RecordKind)> = match record {
        AnyRecord::ReviewTask(task) => {
            let Some(stored) = stored else {
                return Ok(refuse(
                    "questions are asked by coordination, not by tablets",
                ));
            };
            let before = load_stored(stored)?.read_record();
            let Ok(AnyRecord::ReviewTask(before)) = before else {
                return Ok(refuse(
                    "questions are asked by coordination, not by tablets",
                ));
            };
            let asked_unchanged = before.contact_id == task.contact_id
                && before.question == task.question
                && before.asked_by == task.asked_by
                && before.asked_at == task.asked_at;
            if !asked_unchanged {
                return Ok(refuse("a tablet may only answer a question"));
            }
            Vec::new()
        }
        AnyRecord::Contact(c) => c
            .youth_ids
            .iter()
            .map(|y| (*y, RecordKind::Youth))
            .chain(c.tour_id.map(|t| (t, RecordKind::Tour)))
            .collect(),
        AnyRecord::Action(a) => vec![(a.youth_id, RecordKind::Youth)],
        AnyRecord::Outcome(o) => vec![(o.youth_id, RecordKind::Youth)],
        AnyRecord::Youth(_) | AnyRecord::Tour(_) => Vec::new(),
    };
    for (id, kind) in references {
        // A visit stays with the team that made it when its young person is transferred.
        let known = match tx.document(id)? {
            Some(d) => {
                d.kind == kind
                    && (d.team_id == device.team_id || tx.departed(id, device.team_id)?)
            }
            None => tx
                .tombstone(id)?
                .is_some_and(|t| t.team_id == device.team_id),
        };
        if !known {
            return Ok(refuse(&format!(
                "refers to a {kind} this team does not have: send it first"
            )));
        }
    }
    Ok(None)
}

/// Whether every young person a visit, action or outcome names was erased from this team.
fn about_erased_youth_only(
    tx: &mut dyn Tx,
    device: &Device,
    record: &AnyRecord,
) -> Result<bool, HubError> {
    let youth: Vec<Uuid> = match record {
        AnyRecord::Contact(c) => c.youth_ids.iter().copied().collect(),
        AnyRecord::Action(a) => vec![a.youth_id],
        AnyRecord::Outcome(o) => vec![o.youth_id],
        AnyRecord::Youth(_) | AnyRecord::Tour(_) | AnyRecord::ReviewTask(_) => return Ok(false),
    };
    if youth.is_empty() {
        return Ok(false);
    }
    for id in youth {
        if tx
            .tombstone(id)?
            .is_none_or(|t| t.team_id != device.team_id)
        {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Whether a new action or outcome names a young person who left this team.
fn about_departed_youth(
    tx: &mut dyn Tx,
    device: &Device,
    record: &AnyRecord,
) -> Result<bool, HubError> {
    let youth = match record {
        AnyRecord::Action(a) => a.youth_id,
        AnyRecord::Outcome(o) => o.youth_id,
        _ => return Ok(false),
    };
    Ok(tx.departed(youth, device.team_id)?
        && tx
            .document(youth)?
            .is_some_and(|d| d.team_id != device.team_id))
}

fn transferred() -> Result<Outcome, HubError> {
    reject(
        RejectCode::Transferred,
        "transféré à une autre équipe : cette fiche n'est plus sur cette tablette",
    )
}

/// Whether the changes merged in past `known_heads` include a first change (one with no
/// dependencies): the pushed bytes are another generation of the record than the stored one.
fn starts_another_generation(doc: &mut RecordDoc, known_heads: &[[u8; 32]]) -> bool {
    let have: Vec<ChangeHash> = known_heads.iter().map(|h| ChangeHash(*h)).collect();
    doc.automerge()
        .get_changes_meta(&have)
        .iter()
        .any(|change| change.deps.is_empty())
}

fn rewritten() -> Result<Outcome, HubError> {
    reject(
        RejectCode::Rewritten,
        "coordination rewrote this record: the tablet replaces its copy with the new one",
    )
}

fn missing_history() -> Result<Outcome, HubError> {
    reject(
        RejectCode::MissingHistory,
        "the changes build on history the server does not have: send the whole document",
    )
}

fn malformed_reason(push: &PushDoc) -> String {
    format!(
        "the bytes are not an Automerge document of a {} record",
        push.kind
    )
}

fn load_stored(stored: &StoredDocument) -> Result<RecordDoc, HubError> {
    RecordDoc::load(stored.kind, stored.id, &stored.doc, server_author()).map_err(|e| {
        HubError::Storage(StorageError::Corrupt(format!(
            "stored document {} cannot be loaded: {e}",
            stored.id
        )))
    })
}

fn heads_of(doc: &mut RecordDoc) -> Vec<[u8; 32]> {
    pushed::sorted(doc.heads().iter().map(|h| h.0))
}

fn has_kind(doc: &mut RecordDoc, kind: repere_core::RecordKind) -> bool {
    doc.stored_kind() == Some(kind)
}

/// One log entry the pull may send.
enum Entry {
    Doc(StoredDocument),
    Gone(Tombstone),
    Left(Departure),
}

impl Entry {
    fn seq(&self) -> u64 {
        match self {
            Entry::Doc(d) => d.seq,
            Entry::Gone(t) => t.seq,
            Entry::Left(d) => d.seq,
        }
    }
}

/// Who a pull is for.
struct Pulled<'a> {
    device: &'a Device,
    /// The protocol version the device speaks.
    version: u8,
    /// Records whose merged document the device already has entirely, by heads.
    device_has: &'a HashMap<Uuid, Vec<[u8; 32]>>,
}

impl Pulled<'_> {
    /// A device older than protocol 4 would merge a new generation into its old copy (and
    /// keep the old bytes): it is told to erase its copy instead.
    fn can_replace(&self) -> bool {
        self.version >= REWRITE_VERSION
    }
}

fn pulled_doc(doc: StoredDocument) -> PulledDoc {
    PulledDoc {
        id: doc.id,
        kind: doc.kind.into(),
        doc: doc.doc,
        heads: doc.heads,
        fields: doc.fields.unwrap_or_default(),
    }
}

/// A push refused as built on an older generation comes back with the new generation, even
/// if the pull does not reach it, so the tablet replaces its copy in this exchange.
fn send_rewritten(
    tx: &mut dyn Tx,
    pulled: &Pulled<'_>,
    response: &mut SyncResponse,
) -> Result<(), HubError> {
    if !pulled.can_replace() {
        return Ok(());
    }
    let refused: Vec<Uuid> = response
        .rejections
        .iter()
        .filter(|r| r.code == RejectCode::Rewritten)
        .map(|r| r.id)
        .filter(|id| !response.docs.iter().any(|d| d.id == *id))
        .collect();
    for id in refused {
        if let Some(doc) = tx.document(id)? {
            response.docs.push(pulled_doc(doc));
        }
    }
    Ok(())
}

/// The device's team's documents and tombstones after `cursor`, in log order, within the
/// count and byte budgets.
fn pull(
    tx: &mut dyn Tx,
    pulled: &Pulled<'_>,
    cursor: u64,
    limit: usize,
    response: &mut SyncResponse,
) -> Result<(), HubError> {
    let (device, device_has) = (pulled.device, pulled.device_has);
    let last = tx.last_seq()?;
    // A cursor past the end of the log means this server lost positions (restored from a
    // backup): start over, merging again changes nothing, skipping would lose records.
    let from = if cursor > last {
        tracing::warn!(device = %device.id, cursor, last, "device cursor is ahead of the log; pulling everything again");
        0
    } else {
        cursor
    };
    let team = device.team_id;
    // What the device has just pushed is not sent back (below), nor counted in the page:
    // a push of more records than a page would otherwise have the next page send them.
    let mut docs = tx.documents_after(team, from, limit + device_has.len() + 1)?;
    let mut sent = 0;
    let page_end = docs
        .iter()
        .position(|d| {
            sent += usize::from(device_has.get(&d.id) != Some(&d.heads));
            sent > limit
        })
        .unwrap_or(docs.len());
    let mut more = page_end < docs.len();
    docs.truncate(page_end);
    let doc_cut = if more {
        docs.last().map(|d| d.seq)
    } else {
        None
    };
    // Every kind of entry stops at the lowest position where one of them was cut.
    let mut cut = doc_cut;
    let mut tombstones = tx.tombstones_after(team, from, cut, MAX_PULL_TOMBSTONES + 1)?;
    if tombstones.len() > MAX_PULL_TOMBSTONES {
        more = true;
        tombstones.truncate(MAX_PULL_TOMBSTONES);
        cut = tombstones.last().map(|t| t.seq);
    }
    let mut departures = tx.departures_after(team, from, cut, MAX_PULL_TOMBSTONES + 1)?;
    if departures.len() > MAX_PULL_TOMBSTONES {
        more = true;
        departures.truncate(MAX_PULL_TOMBSTONES);
        cut = departures.last().map(|d| d.seq);
    }
    if let Some(cut) = cut {
        docs.retain(|d| d.seq <= cut);
        tombstones.retain(|t| t.seq <= cut);
    }
    let mut entries: Vec<Entry> = docs
        .into_iter()
        .map(Entry::Doc)
        .chain(tombstones.into_iter().map(Entry::Gone))
        .chain(departures.into_iter().map(Entry::Left))
        .collect();
    entries.sort_by_key(Entry::seq);

    let mut new_cursor = from;
    let mut bytes = 0usize;
    for entry in entries {
        match entry {
            Entry::Doc(doc) if doc.generation > 0 && !pulled.can_replace() => {
                response.erased.push(doc.id);
                new_cursor = doc.seq;
            }
            Entry::Doc(doc) => {
                let skip = device_has.get(&doc.id) == Some(&doc.heads);
                if !skip {
                    if !response.docs.is_empty() && bytes + doc.doc.len() > MAX_PULL_BYTES {
                        more = true;
                        break;
                    }
                    bytes += doc.doc.len();
                    new_cursor = doc.seq;
                    response.docs.push(pulled_doc(doc));
                } else {
                    new_cursor = doc.seq;
                }
            }
            Entry::Gone(t) => {
                response.erased.push(t.id);
                new_cursor = t.seq;
            }
            Entry::Left(d) => {
                response.moved.push(d.id);
                new_cursor = d.seq;
            }
        }
    }
    response.cursor = new_cursor;
    response.more = more;
    Ok(())
}

/// The team's roster if the device holds another version of it, and the decisions on the
/// team's visits after the device's position (those on erased visits are gone with them;
/// other teams' never match). A position past the last one given means the server was
/// restored from a backup: everything again.
fn team_news(
    tx: &mut dyn Tx,
    team_id: Uuid,
    since: TeamSince,
    response: &mut SyncResponse,
) -> Result<(), HubError> {
    let members = tx.team_members(team_id)?;
    let version = members.iter().map(|m| m.seq).max().unwrap_or(0);
    if version != since.roster {
        response.team.roster = Some(Roster {
            version,
            members: members
                .into_iter()
                .map(|m| Member {
                    id: m.id,
                    name: m.display_name,
                    active: m.active,
                })
                .collect(),
        });
    }
    let last = tx.last_decision_seq()?;
    let from = if since.decisions > last {
        0
    } else {
        since.decisions
    };
    let mut decisions = tx.decisions_after(team_id, from, MAX_PULL_DECISIONS + 1)?;
    let more = decisions.len() > MAX_PULL_DECISIONS;
    decisions.truncate(MAX_PULL_DECISIONS);
    response.team.decisions_cursor = match decisions.last() {
        Some((seq, _)) if more => *seq,
        // Nothing of this team waits further: the positions of other teams' are skipped.
        _ => last,
    };
    response.more |= more;
    response.team.decisions = decisions
        .into_iter()
        .filter_map(|(_, r)| {
            let state = match r.state {
                VisitState::Approved => DecisionState::Approved,
                VisitState::Flagged => DecisionState::Flagged,
                VisitState::Question => DecisionState::Question,
                VisitState::ToReview => return None,
            };
            Some(Decision {
                contact_id: r.contact_id,
                state,
                reason: r.reason.unwrap_or_default(),
                at_ms: r.at.timestamp_millis(),
            })
        })
        .collect();
    Ok(())
}

/// What administrators will see: printable, one line, bounded.
fn clean_label(label: &str) -> String {
    let cleaned: String = label
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(LABEL_MAX_CHARS)
        .collect();
    if cleaned.is_empty() {
        "tablette".to_string()
    } else {
        cleaned
    }
}

#[cfg(test)]
mod tests {
    use repere_core::demo::DemoData;
    use repere_core::document::to_json_fields;

    use super::*;

    /// Past the budget, records are still checked, and loaded later, in the transaction.
    #[test]
    fn documents_kept_loaded_before_the_lock_stay_within_the_budget() {
        let author = Author {
            device_id: Uuid::now_v7(),
            member_id: Uuid::now_v7(),
        };
        let mut demo = DemoData::new(
            7,
            Uuid::now_v7(),
            [author.member_id, Uuid::now_v7()],
            Utc::now(),
        );
        let pushes: Vec<PushDoc> = (0..100)
            .map(|_| {
                let youth = demo.youth();
                let fields = to_json_fields(&youth).expect("fields");
                let id = Uuid::now_v7();
                let mut doc = RecordDoc::create(RecordKind::Youth, id, author, &fields, Utc::now())
                    .expect("document");
                PushDoc {
                    id,
                    kind: RecordKind::Youth.into(),
                    changes: doc.save(),
                }
            })
            .collect();
        let ctx = ValidationContext {
            now: Utc::now(),
            communes: Communes::global(),
        };
        let items = bounded::measure(&pushes[0].changes, Bounds::RECORD)
            .expect("measured")
            .max_items;
        let (checked, loaded) = check_pushes(&pushes, &ctx, items * 10);
        assert!(checked.iter().all(Result::is_ok));
        let kept = loaded.iter().filter(|l| l.is_some()).count();
        assert!((1..=10).contains(&kept), "{kept} kept loaded");
        let (_, loaded) = check_pushes(&pushes, &ctx, PRELOAD_ITEMS);
        assert!(
            loaded.iter().all(Option::is_some),
            "an ordinary push is read whole"
        );
    }
}

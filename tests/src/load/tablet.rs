//! One simulated tablet at the protocol level: real Automerge record documents made with
//! core's record API, real enrolment and sync messages over HTTP with its bearer token,
//! and in memory what a store keeps for sync (each record's bytes, heads and acknowledged
//! heads, the cursor, the log epoch, the roster position). It follows core's sync steps
//! (`core/src/sync/client.rs`): pushes in push-rank order within the same bounds, a push
//! followed by another exchange, pulled documents applied before acknowledgements,
//! retries with backoff on transient failures.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use automerge::ChangeHash;
use chrono::{Duration as Days, Utc};
use repere_core::demo::DemoData;
use repere_core::document::{Author, RecordDoc, to_json_fields};
use repere_core::records::{Record, RecordKind};
use repere_core::sync::protocol::{
    self, CONTENT_TYPE, DeviceReport, ENROL_PATH, EnrolRequest, EnrolResponse, ErrorBody,
    PROTOCOL_VERSION, PushDoc, RejectCode, SYNC_PATH, SyncRequest, SyncResponse, TeamSince,
};
use serde_json::Value as Json;
use uuid::Uuid;

use super::Rng;

/// What core's default `SyncOptions` send per round.
const PULL_LIMIT: u32 = 1000;
const MAX_PUSH_RECORDS: usize = 1000;
const MAX_PUSH_BYTES: usize = 2 * 1024 * 1024;
/// Core's default retries: 5 tries, backoff from 500 ms doubling to 30 s.
const MAX_ATTEMPTS: u32 = 5;
const INITIAL_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A note edited past this length starts again (the server refuses notes past 20,000
/// characters, and concurrent appends from several tablets add up).
const NOTES_RESTART_AT: usize = 2_000;
/// The app version the tablets report.
const APP_VERSION: &str = "0.1.0-load";

/// One request's failure, as the error tables name it (never a record's content).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    Network(String),
    Status { status: u16, code: Option<String> },
    Decode,
}

impl Failure {
    /// Worth another try, as core's `is_transient` decides.
    fn transient(&self) -> bool {
        match self {
            Failure::Network(_) | Failure::Decode => true,
            Failure::Status { status, .. } => *status >= 500 || *status == 429 || *status == 408,
        }
    }

    pub fn label(&self) -> String {
        match self {
            // reqwest's messages name the kind of failure (timeout, connection refused).
            Failure::Network(m) => format!("network: {m}"),
            Failure::Status {
                status,
                code: Some(code),
            } => format!("HTTP {status} {code}"),
            Failure::Status { status, code: None } => format!("HTTP {status}"),
            Failure::Decode => "undecodable answer".into(),
        }
    }
}

/// What one sync (all its exchanges) did.
#[derive(Debug, Clone, Default)]
pub struct SyncOutcome {
    /// Exchanges answered.
    pub requests: u32,
    pub pushed: usize,
    pub acked: usize,
    pub pulled: usize,
    pub bytes_up: usize,
    pub bytes_down: usize,
    /// One entry per failed attempt (retried or not) and per refused record.
    pub errors: Vec<String>,
    /// Gave up: the retries were spent or the failure was not transient.
    pub failed: bool,
}

/// A record as a store keeps it for sync.
struct Held {
    kind: RecordKind,
    /// The compact document (or, for a record made here, its saved bytes).
    bytes: Vec<u8>,
    heads: Vec<ChangeHash>,
    /// What the server acknowledged (empty: never): later changes are what is pushed.
    synced: Vec<ChangeHash>,
    /// Changes here that the server has not acknowledged.
    pending: bool,
    /// Order of the last local change (core's `local_seq`).
    seq: u64,
}

pub struct Tablet {
    pub index: usize,
    pub team: Uuid,
    pub server: String,
    http: reqwest::Client,
    /// The store's writer id: the device part of its Automerge actor.
    writer: Uuid,
    author: Author,
    token: Option<String>,
    cursor: u64,
    epoch: Option<u64>,
    team_since: TeamSince,
    records: HashMap<Uuid, Held>,
    youth: Vec<Uuid>,
    contacts: Vec<Uuid>,
    seq: u64,
    /// Every record made here, for the convergence check.
    pub created: Vec<Uuid>,
    demo: DemoData,
    rng: Rng,
}

impl Tablet {
    pub fn new(index: usize, team: Uuid, server: &str, http: reqwest::Client, seed: u64) -> Tablet {
        let mut rng = Rng::new(seed);
        let writer = Uuid::from_u64_pair(rng.next_u64(), rng.next_u64());
        let members = [Uuid::from_u64_pair(rng.next_u64(), rng.next_u64()); 2];
        Tablet {
            index,
            team,
            server: server.trim_end_matches('/').to_string(),
            http,
            writer,
            author: Author {
                device_id: writer,
                member_id: members[0],
            },
            token: None,
            cursor: 0,
            epoch: None,
            team_since: TeamSince::default(),
            records: HashMap::new(),
            youth: Vec::new(),
            contacts: Vec::new(),
            seq: 0,
            created: Vec::new(),
            demo: DemoData::new(seed, team, members, Utc::now() - Days::days(1)),
            rng,
        }
    }

    /// Redeems `code`, naming this tablet's writer id; retried like a sync.
    pub async fn enrol(&mut self, code: &str) -> SyncOutcome {
        let request = EnrolRequest {
            code: code.to_string(),
            device_label: format!("tablette de charge {}", self.index),
            writer: Some(self.writer),
            previous_token: None,
        };
        let body = protocol::encode_enrol(PROTOCOL_VERSION, &request);
        let mut out = SyncOutcome::default();
        let Some(bytes) = self.exchange_as(ENROL_PATH, None, body, &mut out).await else {
            out.failed = true;
            return out;
        };
        match protocol::decode::<EnrolResponse>(&bytes) {
            Ok(r) if r.team_id == self.team => self.token = Some(r.token),
            Ok(_) => out
                .errors
                .push("enrolled into another team than the code's".into()),
            Err(_) => out.errors.push(Failure::Decode.label()),
        }
        out.failed = self.token.is_none();
        out
    }

    pub fn enrolled(&self) -> bool {
        self.token.is_some()
    }

    /// Records with changes the server has not acknowledged.
    pub fn unsent(&self) -> usize {
        self.records.values().filter(|h| h.pending).count()
    }

    /// The field work between two syncs: `visits` visits (each with a new young person
    /// with probability `new_youth`, else one the team already follows) and `edits` notes
    /// added to visits of the team. Returns how many records were made or changed.
    pub fn work(
        &mut self,
        visits: u32,
        edits: u32,
        new_youth: f64,
    ) -> Result<usize, repere_core::Error> {
        let mut changed = 0;
        for _ in 0..visits {
            let youth = if self.youth.is_empty() || self.rng.chance(new_youth) {
                let y = self.demo.youth();
                changed += 1;
                self.create(&y)?
            } else {
                self.youth[self.rng.below(self.youth.len())]
            };
            let c = self.demo.contact(&[youth]);
            self.create(&c)?;
            changed += 1;
        }
        for _ in 0..edits {
            if self.contacts.is_empty() {
                break;
            }
            let id = self.contacts[self.rng.below(self.contacts.len())];
            self.add_note(id)?;
            changed += 1;
        }
        Ok(changed)
    }

    /// A caseload of `records` records (two young people for three visits), as a team's
    /// first tablet would hold before the others enrol.
    pub fn seed(&mut self, records: usize) -> Result<(), repere_core::Error> {
        let youth = (records * 2).div_ceil(5).max(usize::from(records > 0));
        for _ in 0..youth {
            let y = self.demo.youth();
            self.create(&y)?;
        }
        for i in 0..records.saturating_sub(youth) {
            let c = self.demo.contact(&[self.youth[i % self.youth.len()]]);
            self.create(&c)?;
        }
        Ok(())
    }

    fn create<R: Record>(&mut self, record: &R) -> Result<Uuid, repere_core::Error> {
        let id = Uuid::now_v7();
        let fields = to_json_fields(record)?;
        let mut doc = RecordDoc::create(R::KIND, id, self.author, &fields, Utc::now())?;
        self.seq += 1;
        let held = Held {
            kind: R::KIND,
            bytes: doc.save(),
            heads: doc.heads(),
            synced: Vec::new(),
            pending: true,
            seq: self.seq,
        };
        self.records.insert(id, held);
        self.listed(R::KIND, id);
        self.created.push(id);
        Ok(id)
    }

    fn add_note(&mut self, id: Uuid) -> Result<(), repere_core::Error> {
        let Some(held) = self.records.get_mut(&id) else {
            return Ok(());
        };
        let mut doc = RecordDoc::load(held.kind, id, &held.bytes, self.author)?;
        let old = doc.read_fields();
        let mut new = old.clone();
        let notes = old.get("notes").and_then(Json::as_str).unwrap_or_default();
        let note = if notes.chars().count() > NOTES_RESTART_AT {
            "Revu en équipe.".to_string()
        } else {
            format!("{notes} Rappelé le {}.", Utc::now().format("%d/%m à %H:%M"))
        };
        new.insert("notes".into(), Json::String(note));
        if doc.update(&old, &new, Utc::now())? {
            self.seq += 1;
            held.bytes = doc.save();
            held.heads = doc.heads();
            held.pending = true;
            held.seq = self.seq;
        }
        Ok(())
    }

    fn listed(&mut self, kind: RecordKind, id: Uuid) {
        match kind {
            RecordKind::Youth => self.youth.push(id),
            RecordKind::Contact => self.contacts.push(id),
            _ => {}
        }
    }

    fn forget(&mut self, id: Uuid) {
        if let Some(held) = self.records.remove(&id) {
            let list = match held.kind {
                RecordKind::Youth => &mut self.youth,
                RecordKind::Contact => &mut self.contacts,
                _ => return,
            };
            list.retain(|i| *i != id);
        }
    }

    /// Every record held here with its heads (sorted), for the convergence check.
    pub fn holdings(&self) -> BTreeMap<Uuid, Vec<ChangeHash>> {
        self.records
            .iter()
            .map(|(id, h)| {
                let mut heads = h.heads.clone();
                heads.sort();
                (*id, heads)
            })
            .collect()
    }

    /// One sync, as `Store::sync` runs it: exchanges until nothing is left to push and
    /// nothing more waits to be pulled.
    pub async fn sync(&mut self) -> SyncOutcome {
        let mut out = SyncOutcome::default();
        let Some(token) = self.token.clone() else {
            out.errors.push("not enrolled".into());
            out.failed = true;
            return out;
        };
        let mut attempted: HashSet<Uuid> = HashSet::new();
        loop {
            let (request, sent) = self.prepare(&attempted);
            let pushed = request.pushes.len();
            let body = protocol::encode_request(PROTOCOL_VERSION, &request);
            let Some(bytes) = self
                .exchange_as(SYNC_PATH, Some(&token), body, &mut out)
                .await
            else {
                out.failed = true;
                return out;
            };
            let Ok(resp) = protocol::decode_response(&bytes) else {
                out.errors.push(Failure::Decode.label());
                out.failed = true;
                return out;
            };
            out.pushed += pushed;
            let restarted = self.apply(&sent, &resp, &mut out);
            if restarted {
                attempted.clear();
                continue;
            }
            attempted.extend(sent.iter().map(|(id, _)| *id));
            if !resp.more && pushed == 0 && resp.erased.is_empty() {
                return out;
            }
        }
    }

    /// The next request: unacknowledged records not tried in this sync, referenced kinds
    /// first, within core's bounds; and the heads each pushed record had.
    fn prepare(&self, attempted: &HashSet<Uuid>) -> (SyncRequest, Vec<(Uuid, Vec<ChangeHash>)>) {
        let mut pending: Vec<(&Uuid, &Held)> = self
            .records
            .iter()
            .filter(|(id, h)| h.pending && !attempted.contains(id))
            .collect();
        pending.sort_by_key(|(_, h)| (h.kind.push_rank(), h.seq));
        let mut pushes = Vec::new();
        let mut sent = Vec::new();
        let mut budget = MAX_PUSH_BYTES;
        for (id, held) in pending {
            let changes = match RecordDoc::load(held.kind, *id, &held.bytes, self.author) {
                Ok(mut doc) => doc.changes_since(&held.synced),
                // Bytes made here always load; a record that would not is left out.
                Err(_) => continue,
            };
            if pushes.len() >= MAX_PUSH_RECORDS || (changes.len() > budget && !pushes.is_empty()) {
                break;
            }
            budget = budget.saturating_sub(changes.len());
            sent.push((*id, held.heads.clone()));
            pushes.push(PushDoc {
                id: *id,
                kind: held.kind.into(),
                changes,
            });
        }
        let request = SyncRequest {
            cursor: self.cursor,
            pushes,
            pull_limit: PULL_LIMIT,
            team: self.team_since,
            report: DeviceReport {
                app_version: APP_VERSION.into(),
                unsent: u32::try_from(self.unsent()).unwrap_or(u32::MAX),
            },
            access_requests: Vec::new(),
        };
        (request, sent)
    }

    /// Takes an answer as `Store::sync_apply` does: erasures, pulled documents, acks,
    /// refusals, roster, cursor. Returns `true` when the server's log restarted (another
    /// epoch): everything is offered again and the pull starts over.
    fn apply(
        &mut self,
        sent: &[(Uuid, Vec<ChangeHash>)],
        resp: &SyncResponse,
        out: &mut SyncOutcome,
    ) -> bool {
        if resp.epoch != 0 {
            match self.epoch {
                Some(e) if e != resp.epoch => {
                    out.errors.push("the server's log epoch changed".into());
                    self.epoch = Some(resp.epoch);
                    self.cursor = 0;
                    self.team_since = TeamSince::default();
                    for held in self.records.values_mut() {
                        held.synced.clear();
                        held.pending = true;
                    }
                    return true;
                }
                Some(_) => {}
                None => self.epoch = Some(resp.epoch),
            }
        }
        for id in resp.erased.iter().chain(&resp.moved) {
            self.forget(*id);
        }
        for d in &resp.docs {
            out.pulled += 1;
            let Some(kind) = d.kind.known() else {
                out.errors
                    .push(format!("pulled a record of unknown {}", d.kind));
                continue;
            };
            let server: Vec<ChangeHash> = d.heads.iter().map(|h| ChangeHash(*h)).collect();
            match self.records.get_mut(&d.id) {
                None => {
                    self.records.insert(
                        d.id,
                        Held {
                            kind,
                            bytes: d.doc.clone(),
                            heads: server.clone(),
                            synced: server,
                            pending: false,
                            seq: 0,
                        },
                    );
                    self.listed(kind, d.id);
                }
                // Everything here was acknowledged, so the server's copy holds it.
                Some(held) if !held.pending => {
                    held.bytes = d.doc.clone();
                    held.heads = server.clone();
                    held.synced = server;
                }
                Some(held) => {
                    let merged = RecordDoc::load(kind, d.id, &held.bytes, self.author).and_then(
                        |mut ours| {
                            let mut theirs = RecordDoc::load(kind, d.id, &d.doc, self.author)?;
                            ours.merge(&mut theirs)?;
                            Ok(ours)
                        },
                    );
                    match merged {
                        Ok(mut doc) => {
                            held.bytes = doc.save();
                            held.heads = doc.heads();
                            if !server.is_empty() && doc.covered_by(&server) {
                                held.synced = server;
                                held.pending = false;
                            }
                        }
                        Err(_) => out.errors.push("a pulled document did not merge".into()),
                    }
                }
            }
        }
        for ack in &resp.acks {
            out.acked += 1;
            let Some(held) = self.records.get_mut(&ack.id) else {
                continue;
            };
            let mut server: Vec<ChangeHash> = ack.heads.iter().map(|h| ChangeHash(*h)).collect();
            server.sort();
            let mut mine = held.heads.clone();
            mine.sort();
            if mine == server {
                held.synced = server;
                held.pending = false;
                continue;
            }
            let Ok(mut doc) = RecordDoc::load(held.kind, ack.id, &held.bytes, self.author) else {
                continue;
            };
            if doc.covered_by(&server) {
                held.synced = server;
                held.pending = false;
            } else if doc.knows(&server) {
                held.synced = server;
            } else if let Some((_, heads)) = sent.iter().find(|(id, _)| *id == ack.id) {
                held.synced = heads.clone();
            }
        }
        for rej in &resp.rejections {
            out.errors.push(format!("record refused: {:?}", rej.code));
            match rej.code {
                RejectCode::Erased | RejectCode::Transferred => self.forget(rej.id),
                RejectCode::MissingHistory | RejectCode::Rewritten => {
                    if let Some(held) = self.records.get_mut(&rej.id) {
                        held.synced.clear();
                    }
                }
                // Kept unsent until changed again (core's refused state).
                _ => {
                    if let Some(held) = self.records.get_mut(&rej.id) {
                        held.pending = false;
                    }
                }
            }
        }
        self.team_since = resp.team.since(self.team_since);
        if let Some(roster) = &resp.team.roster {
            let active: Vec<Uuid> = roster
                .members
                .iter()
                .filter(|m| m.active)
                .map(|m| m.id)
                .collect();
            if let Some(first) = active.first() {
                let second = active.get(1).unwrap_or(first);
                self.author.member_id = *first;
                self.demo.member_ids = [*first, *second];
            }
        }
        self.cursor = resp.cursor;
        false
    }

    /// One exchange with core's retries: every failed attempt is counted in `out`.
    async fn exchange_as(
        &self,
        path: &str,
        token: Option<&str>,
        body: Vec<u8>,
        out: &mut SyncOutcome,
    ) -> Option<Vec<u8>> {
        let mut delay = INITIAL_BACKOFF;
        for attempt in 1..=MAX_ATTEMPTS {
            out.bytes_up += body.len();
            match self.post(path, token, body.clone()).await {
                Ok(bytes) => {
                    out.requests += 1;
                    out.bytes_down += bytes.len();
                    return Some(bytes);
                }
                Err(failure) => {
                    out.errors.push(failure.label());
                    if !failure.transient() || attempt == MAX_ATTEMPTS {
                        return None;
                    }
                }
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(MAX_BACKOFF);
        }
        None
    }

    async fn post(
        &self,
        path: &str,
        token: Option<&str>,
        body: Vec<u8>,
    ) -> Result<Vec<u8>, Failure> {
        let mut req = self
            .http
            .post(format!("{}{path}", self.server))
            .header(reqwest::header::CONTENT_TYPE, CONTENT_TYPE)
            .body(body);
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| Failure::Network(network_kind(&e)))?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| Failure::Network(network_kind(&e)))?;
        if status.is_success() {
            return Ok(bytes.to_vec());
        }
        let code = serde_json::from_slice::<ErrorBody>(&bytes)
            .ok()
            .and_then(|b| serde_json::to_value(b.error).ok())
            .and_then(|v| v.as_str().map(str::to_string));
        Err(Failure::Status {
            status: status.as_u16(),
            code,
        })
    }
}

/// A network failure's kind, short enough to group by.
fn network_kind(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timeout".into()
    } else if e.is_connect() {
        "connection refused or failed".into()
    } else if e.is_body() || e.is_decode() {
        "answer cut".into()
    } else {
        "request failed".into()
    }
}

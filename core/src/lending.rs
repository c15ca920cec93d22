//! Break-the-glass on the tablet (issue 12, protocol version 8): a team member who must
//! see a young person outside their team states why and asks for read access to that one
//! file for a while. The request waits here until a sync carries it; the server answers it
//! and, while the grant lasts, lends the whole file in every answer that ends a sync.
//!
//! A lent file is kept apart from the team's records (schema 10): no document, no index, no
//! list, search, indicator, unsent count or push sees it, and no write path finds it (its
//! ids are unknown to them). It goes at its end by the tablet's own clock — checked at every
//! read of lent files, at opening and at each sync — or as soon as an answer that ends a
//! sync no longer lends it; its bytes go with it (`secure_delete`, then the WAL is cut).

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use uuid::Uuid;

use crate::error::{Error, Problem, Result, ValidationErrors};
use crate::records::{Action, AnyRecord, Contact, Outcome, RecordKind, Youth};
use crate::store::{Origin, Store, StoreEvent, any_from_fields, notify};
use crate::sync::protocol::{
    ACCESS_MINUTES, ACCESS_REASON_CHARS, AccessAnswer, AccessOutcome, AccessRefusal, AccessRequest,
    LEND_VERSION, LentFile, LentRecord,
};

/// Requests one sync carries at most (the server's bound too); the others wait for the
/// next one.
pub const ASKED_PER_SYNC: usize = crate::sync::protocol::MAX_ACCESS_REQUESTS;
/// How long a refusal stays listed once it came: the reason given is personal data.
const REFUSAL_KEPT_MS: i64 = 24 * 60 * 60 * 1000;

/// Where a break-the-glass request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessState {
    /// Not answered yet: sent at each sync until it is (a server older than protocol 8
    /// never answers; it then waits for the server's update).
    Pending,
    /// Readable until then (server clock); the file comes with the answer that ends the
    /// sync. The request goes with its file.
    Granted { expires_at: DateTime<Utc> },
    /// [`AccessRefusal::message`] says why, for the field worker.
    Refused(AccessRefusal),
}

/// A break-the-glass request made on this tablet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AskedAccess {
    pub id: Uuid,
    pub youth_id: Uuid,
    pub member_id: Uuid,
    /// Personal data: shown, never logged.
    pub reason: String,
    pub minutes: u32,
    /// Tablet clock.
    pub asked_at: DateTime<Utc>,
    pub state: AccessState,
}

/// A file lent to this tablet, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LentFileSummary {
    pub grant_id: Uuid,
    pub youth_id: Uuid,
    pub display_name: String,
    /// The team that holds the file: who to call about it.
    pub team_name: String,
    pub expires_at: DateTime<Utc>,
}

/// A lent file, to read only: the young person and their visits, actions and outcomes as
/// the team holding the file has them.
#[derive(Debug, Clone, PartialEq)]
pub struct LentYouthFile {
    pub grant_id: Uuid,
    pub youth_id: Uuid,
    pub team_name: String,
    pub expires_at: DateTime<Utc>,
    pub youth: Youth,
    /// Most recent first.
    pub visits: Vec<(Uuid, Contact)>,
    /// Latest start first.
    pub actions: Vec<(Uuid, Action)>,
    /// Latest first.
    pub outcomes: Vec<(Uuid, Outcome)>,
}

const PENDING: &str = "pending";
const GRANTED: &str = "granted";
const REFUSED: &str = "refused";

/// The stable code of a refusal, as stored (and as the shells name it).
pub fn refusal_code(refusal: AccessRefusal) -> &'static str {
    match refusal {
        AccessRefusal::UnknownFile => "unknown_file",
        AccessRefusal::OwnTeam => "own_team",
        AccessRefusal::BadReason => "bad_reason",
        AccessRefusal::BadDuration => "bad_duration",
        AccessRefusal::TooMany => "too_many",
    }
}

fn parse_refusal(code: &str) -> Option<AccessRefusal> {
    [
        AccessRefusal::UnknownFile,
        AccessRefusal::OwnTeam,
        AccessRefusal::BadReason,
        AccessRefusal::BadDuration,
        AccessRefusal::TooMany,
    ]
    .into_iter()
    .find(|r| refusal_code(*r) == code)
}

fn uuid_of(bytes: &[u8]) -> Result<Uuid> {
    Uuid::from_slice(bytes).map_err(|_| Error::CorruptStore("malformed id among lent files"))
}

fn time_of(ms: i64) -> Result<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms)
        .ok_or(Error::CorruptStore("malformed time among lent files"))
}

/// The requests the next sync carries: those not answered, oldest first, at most `limit`.
pub(crate) fn pending(conn: &Connection, limit: usize) -> Result<Vec<AccessRequest>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, youth_id, member_id, reason, minutes FROM access_requests
          WHERE state = ?1 ORDER BY asked_at, id LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![PENDING, limit as i64], |r| {
        Ok((
            r.get::<_, Vec<u8>>(0)?,
            r.get::<_, Vec<u8>>(1)?,
            r.get::<_, Vec<u8>>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, u32>(4)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (id, youth_id, member_id, reason, minutes) = row?;
        out.push(AccessRequest {
            id: uuid_of(&id)?,
            youth_id: uuid_of(&youth_id)?,
            member_id: uuid_of(&member_id)?,
            reason,
            minutes,
        });
    }
    Ok(out)
}

/// What an answer did to the requests and the lent files.
#[derive(Debug, Default)]
pub(crate) struct LendingApplied {
    /// Something a screen shows changed.
    pub changed: bool,
    /// Bytes of a lent file were deleted or overwritten: the WAL is to be cut.
    pub removed: bool,
}

/// Stores, inside the answer's transaction, what it says of the requests and, when it ends
/// the sync, the whole set of lent files; then purges what expired by the tablet's clock.
/// An answer in a version older than 8 lends nothing and answers nothing: requests stay
/// pending and the files held stay until their own end.
pub(crate) fn apply(
    tx: &Connection,
    version: u8,
    answers: &[AccessAnswer],
    lent: &[LentFile],
    more: bool,
    now: DateTime<Utc>,
) -> Result<LendingApplied> {
    let now_ms = now.timestamp_millis();
    let mut applied = LendingApplied::default();
    let mut answer = tx.prepare_cached(
        "UPDATE access_requests SET state = ?2, refusal = ?3, expires_at = ?4, answered_at = ?5
          WHERE id = ?1 AND state = ?6",
    )?;
    for a in answers {
        let (state, refusal, expires) = match a.outcome {
            AccessOutcome::Granted { expires_at_ms } => (GRANTED, None, Some(expires_at_ms)),
            AccessOutcome::Refused(r) => (REFUSED, Some(refusal_code(r)), None),
        };
        let updated = answer.execute(params![
            a.id.as_bytes().as_slice(),
            state,
            refusal,
            expires,
            now_ms,
            PENDING
        ])?;
        applied.changed |= updated > 0;
    }
    if version >= LEND_VERSION && !more {
        let replaced = replace_lent(tx, lent, now_ms)?;
        applied.changed |= replaced;
        applied.removed |= replaced;
    }
    let purged = purge(tx, now)?;
    applied.changed |= purged;
    applied.removed |= purged;
    Ok(applied)
}

/// The lent set becomes `lent`: each file given is stored or updated, each held one not
/// given is deleted. A file already over by the tablet's clock, or whose young person's
/// own record is missing or unreadable, is not kept. Returns whether anything changed.
fn replace_lent(tx: &Connection, lent: &[LentFile], now_ms: i64) -> Result<bool> {
    let mut changed = false;
    let mut kept = HashSet::new();
    let mut upsert_file = tx.prepare_cached(
        "INSERT INTO lent_files (grant_id, youth_id, team_name, expires_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (grant_id) DO UPDATE SET youth_id = excluded.youth_id,
            team_name = excluded.team_name, expires_at = excluded.expires_at
          WHERE youth_id IS NOT excluded.youth_id OR team_name IS NOT excluded.team_name
             OR expires_at IS NOT excluded.expires_at",
    )?;
    let mut upsert_record = tx.prepare_cached(
        "INSERT INTO lent_records (grant_id, id, kind, fields) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (grant_id, id) DO UPDATE SET kind = excluded.kind, fields = excluded.fields
          WHERE kind IS NOT excluded.kind OR fields IS NOT excluded.fields",
    )?;
    for file in lent {
        if file.expires_at_ms <= now_ms {
            continue;
        }
        let records: Vec<(RecordKind, &LentRecord)> = file
            .records
            .iter()
            .filter_map(|r| r.kind.known().map(|k| (k, r)))
            .filter(|(kind, r)| decode(*kind, r).is_ok())
            .collect();
        if !records
            .iter()
            .any(|(kind, r)| *kind == RecordKind::Youth && r.id == file.youth_id)
        {
            continue;
        }
        let grant = file.grant_id.as_bytes().as_slice();
        changed |= upsert_file.execute(params![
            grant,
            file.youth_id.as_bytes().as_slice(),
            file.team_name,
            file.expires_at_ms
        ])? > 0;
        let mut ids = HashSet::new();
        for (kind, r) in &records {
            changed |= upsert_record.execute(params![
                grant,
                r.id.as_bytes().as_slice(),
                kind.as_str(),
                r.fields
            ])? > 0;
            ids.insert(r.id);
        }
        let held = ids_in(
            tx,
            "SELECT id FROM lent_records WHERE grant_id = ?1",
            params![grant],
        )?;
        for gone in held.into_iter().filter(|id| !ids.contains(id)) {
            tx.prepare_cached("DELETE FROM lent_records WHERE grant_id = ?1 AND id = ?2")?
                .execute(params![grant, gone.as_bytes().as_slice()])?;
            changed = true;
        }
        kept.insert(file.grant_id);
    }
    let held = ids_in(tx, "SELECT grant_id FROM lent_files", [])?;
    for gone in held.into_iter().filter(|id| !kept.contains(id)) {
        end_grant(tx, gone)?;
        changed = true;
    }
    Ok(changed)
}

/// A file no longer lent goes with its records (cascade) and its request.
fn end_grant(tx: &Connection, grant: Uuid) -> Result<()> {
    let grant = grant.as_bytes().as_slice();
    tx.prepare_cached("DELETE FROM lent_files WHERE grant_id = ?1")?
        .execute([grant])?;
    tx.prepare_cached("DELETE FROM access_requests WHERE id = ?1 AND state = ?2")?
        .execute(params![grant, GRANTED])?;
    Ok(())
}

fn ids_in(conn: &Connection, sql: &str, args: impl rusqlite::Params) -> Result<Vec<Uuid>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map(args, |r| r.get::<_, Vec<u8>>(0))?;
    let mut out = Vec::new();
    for row in rows {
        out.push(uuid_of(&row?)?);
    }
    Ok(out)
}

/// Deletes the files over by the tablet's clock (with their records), the requests granted
/// for them, and refusals older than a day. Returns whether anything went.
pub(crate) fn purge(conn: &Connection, now: DateTime<Utc>) -> Result<bool> {
    let now = now.timestamp_millis();
    let files = conn
        .prepare_cached("DELETE FROM lent_files WHERE expires_at <= ?1")?
        .execute([now])?;
    let asked = conn
        .prepare_cached(
            "DELETE FROM access_requests
              WHERE (state = ?1 AND expires_at <= ?2) OR (state = ?3 AND answered_at <= ?4)",
        )?
        .execute(params![GRANTED, now, REFUSED, now - REFUSAL_KEPT_MS])?;
    Ok(files + asked > 0)
}

/// Forgets every lent file (the tablet enrolled again: its grants were its old
/// credentials'; the next sync lends again what is still lent to it). Requests stay.
pub(crate) fn forget_lent(tx: &Connection) -> Result<bool> {
    Ok(tx.prepare_cached("DELETE FROM lent_files")?.execute([])? > 0)
}

fn decode(kind: RecordKind, r: &LentRecord) -> Result<AnyRecord> {
    decode_fields(kind, r.id, &r.fields)
}

fn decode_fields(kind: RecordKind, id: Uuid, fields: &str) -> Result<AnyRecord> {
    let fields = serde_json::from_str(fields).map_err(|e| Error::CorruptDocument {
        kind,
        id,
        // serde's message names the position and what was expected, never the value.
        reason: e.to_string(),
    })?;
    any_from_fields(kind, id, fields)
}

fn lent_youth(id: Uuid, fields: &str) -> Result<Youth> {
    match decode_fields(RecordKind::Youth, id, fields)? {
        AnyRecord::Youth(y) => Ok(y),
        _ => Err(Error::CorruptStore("a lent young person is not one")),
    }
}

impl Store {
    /// Asks for read access to the file of `youth_id`, a young person of another team, for
    /// `minutes` (see [`ACCESS_MINUTES`]; the screen offers
    /// [`crate::sync::protocol::ACCESS_DEFAULT_MINUTES`]), in the name of the tablet's
    /// current member (`set_member`), because of `reason` (trimmed, see
    /// [`ACCESS_REASON_CHARS`]). Queued: the next sync carries it. Refused here, with every
    /// field to correct at once (`Error::Invalid`), when no member is set, when the reason
    /// or the duration is out of bounds, or when the file is on this tablet already.
    pub fn request_access(&mut self, youth_id: Uuid, reason: &str, minutes: u32) -> Result<Uuid> {
        self.unlocked()?;
        let reason = reason.trim();
        let mut errs = ValidationErrors::default();
        if self.member_id().is_nil() {
            errs.push("member_id", Problem::Required);
        }
        if !ACCESS_REASON_CHARS.contains(&reason.chars().count()) {
            errs.push(
                "reason",
                Problem::Inconsistent(AccessRefusal::BadReason.message()),
            );
        }
        if !ACCESS_MINUTES.contains(&minutes) {
            errs.push(
                "minutes",
                Problem::Inconsistent(AccessRefusal::BadDuration.message()),
            );
        }
        if self.kind_of(youth_id)?.is_some() {
            errs.push(
                "youth_id",
                Problem::Inconsistent(AccessRefusal::OwnTeam.message()),
            );
        }
        errs.into_result()?;
        let id = Uuid::now_v7();
        self.conn
            .prepare_cached(
                "INSERT INTO access_requests (id, youth_id, member_id, reason, minutes, asked_at, state)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                id.as_bytes().as_slice(),
                youth_id.as_bytes().as_slice(),
                self.member_id().as_bytes().as_slice(),
                reason,
                minutes,
                self.now().timestamp_millis(),
                PENDING
            ])?;
        notify(&self.listeners, StoreEvent::lending(Origin::Local));
        Ok(id)
    }

    /// The break-the-glass requests made here, newest first: pending, granted (until the
    /// file's end; the request goes with it) or refused (listed for a day).
    pub fn access_requests(&self) -> Result<Vec<AskedAccess>> {
        self.purge_lending()?;
        self.unlocked()?;
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, youth_id, member_id, reason, minutes, asked_at, state, refusal, expires_at
               FROM access_requests ORDER BY asked_at DESC, id DESC",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                r.get::<_, Vec<u8>>(1)?,
                r.get::<_, Vec<u8>>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, u32>(4)?,
                r.get::<_, i64>(5)?,
                r.get::<_, String>(6)?,
                r.get::<_, Option<String>>(7)?,
                r.get::<_, Option<i64>>(8)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, youth_id, member_id, reason, minutes, asked_at, state, refusal, expires) =
                row?;
            let state = match (
                state.as_str(),
                refusal.as_deref().and_then(parse_refusal),
                expires,
            ) {
                (PENDING, _, _) => AccessState::Pending,
                (GRANTED, _, Some(ms)) => AccessState::Granted {
                    expires_at: time_of(ms)?,
                },
                (REFUSED, Some(refusal), _) => AccessState::Refused(refusal),
                _ => return Err(Error::CorruptStore("malformed break-the-glass request")),
            };
            out.push(AskedAccess {
                id: uuid_of(&id)?,
                youth_id: uuid_of(&youth_id)?,
                member_id: uuid_of(&member_id)?,
                reason,
                minutes,
                asked_at: time_of(asked_at)?,
                state,
            });
        }
        Ok(out)
    }

    /// The files lent to this tablet and not over, the soonest to end first.
    pub fn lent_files(&self) -> Result<Vec<LentFileSummary>> {
        self.purge_lending()?;
        self.unlocked()?;
        let mut stmt = self.conn.prepare_cached(
            "SELECT f.grant_id, f.youth_id, f.team_name, f.expires_at, r.fields
               FROM lent_files f JOIN lent_records r ON r.grant_id = f.grant_id AND r.id = f.youth_id
              ORDER BY f.expires_at, f.grant_id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                r.get::<_, Vec<u8>>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, String>(4)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (grant_id, youth_id, team_name, expires_at, fields) = row?;
            let youth_id = uuid_of(&youth_id)?;
            out.push(LentFileSummary {
                grant_id: uuid_of(&grant_id)?,
                youth_id,
                display_name: lent_youth(youth_id, &fields)?.display_name(),
                team_name,
                expires_at: time_of(expires_at)?,
            });
        }
        Ok(out)
    }

    /// The file of `youth_id` lent to this tablet, read-only; `None` when it is not lent,
    /// or no longer (over by the tablet's clock, or no longer lent by the server). Lent
    /// twice, the grant that ends last is read.
    pub fn lent_file(&self, youth_id: Uuid) -> Result<Option<LentYouthFile>> {
        self.purge_lending()?;
        self.unlocked()?;
        let file: Option<(Vec<u8>, String, i64)> = self
            .conn
            .prepare_cached(
                "SELECT grant_id, team_name, expires_at FROM lent_files WHERE youth_id = ?1
                  ORDER BY expires_at DESC, grant_id DESC LIMIT 1",
            )?
            .query_row([youth_id.as_bytes().as_slice()], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()?;
        let Some((grant, team_name, expires_at)) = file else {
            return Ok(None);
        };
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id, kind, fields FROM lent_records WHERE grant_id = ?1")?;
        let rows = stmt.query_map([grant.as_slice()], |r| {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?;
        let (mut youth, mut visits, mut actions, mut outcomes) =
            (None, Vec::new(), Vec::new(), Vec::new());
        for row in rows {
            let (id, kind, fields) = row?;
            let id = uuid_of(&id)?;
            let Some(kind) = RecordKind::parse(&kind) else {
                continue;
            };
            match decode_fields(kind, id, &fields)? {
                AnyRecord::Youth(y) if id == youth_id => youth = Some(y),
                AnyRecord::Contact(c) => visits.push((id, c)),
                AnyRecord::Action(a) => actions.push((id, a)),
                AnyRecord::Outcome(o) => outcomes.push((id, o)),
                _ => {}
            }
        }
        let youth = youth.ok_or(Error::CorruptStore("a lent file without its young person"))?;
        visits.sort_by(|(a, x), (b, y)| y.occurred_at.cmp(&x.occurred_at).then(b.cmp(a)));
        actions.sort_by(|(a, x), (b, y)| y.start_date.cmp(&x.start_date).then(b.cmp(a)));
        outcomes.sort_by(|(a, x), (b, y)| y.date.cmp(&x.date).then(b.cmp(a)));
        Ok(Some(LentYouthFile {
            grant_id: uuid_of(&grant)?,
            youth_id,
            team_name,
            expires_at: time_of(expires_at)?,
            youth,
            visits,
            actions,
            outcomes,
        }))
    }

    /// Deletes what is over by the tablet's clock (see [`purge`]), leaving no byte of it in
    /// the WAL, and tells the listeners.
    pub(crate) fn purge_lending(&self) -> Result<()> {
        if purge(&self.conn, self.now())? {
            crate::storage::cut_wal(&self.conn)?;
            notify(&self.listeners, StoreEvent::lending(Origin::Local));
        }
        Ok(())
    }
}

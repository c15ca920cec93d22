//! The transaction given to `work`: every trait method as SQL on one PostgreSQL
//! transaction, the same queries and orderings as the SQLite storage.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use postgres::types::{FromSql, ToSql};
use postgres::{Row, Statement, Transaction};
use repere_core::RecordKind;
use repere_core::indicators::Targets;
use uuid::Uuid;

use super::{LOG_LOCK, backend, is_conflict};
use crate::storage::{
    AccessGrant, AuditEntry, Bucket, Credentials, Departure, Device, DocumentWrite, EnrolmentCode,
    ErasureDecision, ErasureExecuted, ErasureRequest, Grantee, LogEntry, LoginChallenge,
    Organisation, ReadTx, RecordFields, Role, SecretHash, Session, StorageError, StorageResult,
    StoredDocument, Team, TeamCounts, TeamMember, Tombstone, Transfer, TransferState, Tx, User,
    UserTotp, ViewRecord, ViewWrite, VisitFilter, VisitReview, VisitRow, VisitState, WipeOrder,
    YouthFilter, YouthRow, YouthSummary,
};

type Param<'a> = &'a (dyn ToSql + Sync);

/// Why a statement of the transaction failed (PostgreSQL then refuses every later one).
pub(crate) enum Failure {
    /// A serialization failure or a deadlock: the transaction may be run again.
    Conflict,
    Other(StorageError),
}

pub(crate) struct PgTx<'c> {
    tx: Transaction<'c>,
    statements: &'c mut HashMap<String, Statement>,
    /// Whether the transaction holds the log lock (`LOG_LOCK`).
    locked: bool,
    /// The first statement that failed.
    failure: Option<Failure>,
}

impl<'c> PgTx<'c> {
    pub(crate) fn new(
        tx: Transaction<'c>,
        statements: &'c mut HashMap<String, Statement>,
    ) -> PgTx<'c> {
        PgTx {
            tx,
            statements,
            locked: false,
            failure: None,
        }
    }

    pub(crate) fn take_failure(&mut self) -> Option<Failure> {
        self.failure.take()
    }

    pub(crate) fn commit(self) -> Result<(), postgres::Error> {
        self.tx.commit()
    }

    /// Takes the log lock unless held: before the transaction's first position.
    pub(crate) fn take_log_lock(&mut self) -> StorageResult<()> {
        if !self.locked {
            self.exec("SELECT pg_advisory_xact_lock($1)", &[&LOG_LOCK])?;
            self.locked = true;
        }
        Ok(())
    }

    fn fail(&mut self, e: postgres::Error) -> StorageError {
        let err = backend(&e);
        if self.failure.is_none() {
            self.failure = Some(if is_conflict(&e) {
                Failure::Conflict
            } else {
                Failure::Other(StorageError::Backend(err.to_string()))
            });
        }
        err
    }

    fn statement(&mut self, sql: &str) -> StorageResult<Statement> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let prepared = self.tx.prepare(sql);
        let s = prepared.map_err(|e| self.fail(e))?;
        self.statements.insert(sql.to_string(), s.clone());
        Ok(s)
    }

    fn rows(&mut self, sql: &str, params: &[Param<'_>]) -> StorageResult<Vec<Row>> {
        let stmt = self.statement(sql)?;
        let result = self.tx.query(&stmt, params);
        result.map_err(|e| self.fail(e))
    }

    fn opt(&mut self, sql: &str, params: &[Param<'_>]) -> StorageResult<Option<Row>> {
        Ok(self.rows(sql, params)?.into_iter().next())
    }

    fn one(&mut self, sql: &str, params: &[Param<'_>]) -> StorageResult<Row> {
        self.opt(sql, params)?
            .ok_or_else(|| StorageError::Backend("a query returned no row".into()))
    }

    fn exec(&mut self, sql: &str, params: &[Param<'_>]) -> StorageResult<u64> {
        let stmt = self.statement(sql)?;
        let result = self.tx.execute(&stmt, params);
        result.map_err(|e| self.fail(e))
    }

    fn map<T>(
        &mut self,
        sql: &str,
        params: &[Param<'_>],
        f: impl Fn(&Row) -> StorageResult<T>,
    ) -> StorageResult<Vec<T>> {
        self.rows(sql, params)?.iter().map(f).collect()
    }

    fn map_opt<T>(
        &mut self,
        sql: &str,
        params: &[Param<'_>],
        f: impl Fn(&Row) -> StorageResult<T>,
    ) -> StorageResult<Option<T>> {
        self.opt(sql, params)?.as_ref().map(f).transpose()
    }

    /// Marks the young people that the view row of `id` names (itself if a young person,
    /// the one of an action or outcome, those met at a visit) for their summary to be
    /// computed again.
    fn mark_youth_of(&mut self, id: Uuid) -> StorageResult<()> {
        self.exec(
            "INSERT INTO youth_summary_dirty (youth_id)
             SELECT id FROM record_view WHERE id = $1 AND kind = 'youth'
             UNION SELECT ref_id FROM record_view
              WHERE id = $1 AND kind IN ('action', 'outcome') AND ref_id IS NOT NULL
             UNION SELECT youth_id FROM record_view_youth WHERE contact_id = $1
             ON CONFLICT DO NOTHING",
            &[&id],
        )?;
        Ok(())
    }

    fn exists(&mut self, sql: &str, id: &Uuid) -> StorageResult<bool> {
        Ok(self.opt(sql, &[id])?.is_some())
    }

    fn count(&mut self, sql: &str, params: &[Param<'_>]) -> StorageResult<u64> {
        let n: i64 = get(&self.one(sql, params)?, 0)?;
        Ok(n.max(0) as u64)
    }

    fn counter(&mut self, name: &str) -> StorageResult<u64> {
        seq_of(get(
            &self.one("SELECT value FROM counters WHERE name = $1", &[&name])?,
            0,
        )?)
    }

    /// Takes the next position of a counter, under the log lock. When another transaction
    /// took one and committed after this one's snapshot, the update fails with a
    /// serialization failure (at REPEATABLE READ): `work` runs again.
    fn next_counter(&mut self, name: &str) -> StorageResult<u64> {
        self.take_log_lock()?;
        seq_of(get(
            &self.one(
                "UPDATE counters SET value = value + 1 WHERE name = $1 RETURNING value",
                &[&name],
            )?,
            0,
        )?)
    }

    fn next_seq(
        &mut self,
        doc_id: Uuid,
        op: &str,
        device_id: Option<Uuid>,
        at: DateTime<Utc>,
    ) -> StorageResult<u64> {
        let seq = self.next_counter("log")?;
        self.exec(
            "INSERT INTO change_log (seq, doc_id, op, device_id, received_at)
             VALUES ($1, $2, $3, $4, $5)",
            &[&to_i64(seq), &doc_id, &op, &device_id, &ms(at)],
        )?;
        Ok(seq)
    }
}

fn get<'a, T: FromSql<'a>>(r: &'a Row, i: usize) -> StorageResult<T> {
    r.try_get(i)
        .map_err(|e| StorageError::Corrupt(format!("column {i}: {e}")))
}

fn corrupt(what: &str) -> StorageError {
    StorageError::Corrupt(what.to_string())
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn time(ms: i64) -> StorageResult<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms).ok_or_else(|| corrupt("time out of range"))
}

fn time_at(r: &Row, i: usize) -> StorageResult<DateTime<Utc>> {
    time(get(r, i)?)
}

fn opt_time_at(r: &Row, i: usize) -> StorageResult<Option<DateTime<Utc>>> {
    get::<Option<i64>>(r, i)?.map(time).transpose()
}

fn seq_of(v: i64) -> StorageResult<u64> {
    u64::try_from(v).map_err(|_| corrupt("negative log position"))
}

fn u32_at(r: &Row, i: usize) -> StorageResult<u32> {
    u32::try_from(get::<i64>(r, i)?).map_err(|_| corrupt("count out of range"))
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn limit_of(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn hash_at(r: &Row, i: usize) -> StorageResult<SecretHash> {
    let bytes: Vec<u8> = get(r, i)?;
    bytes.try_into().map_err(|_| corrupt("malformed hash"))
}

fn heads_to_blob(heads: &[[u8; 32]]) -> Vec<u8> {
    heads.iter().flatten().copied().collect()
}

fn heads_from_blob(bytes: &[u8]) -> StorageResult<Vec<[u8; 32]>> {
    if !bytes.len().is_multiple_of(32) {
        return Err(corrupt("malformed heads"));
    }
    Ok(bytes
        .chunks_exact(32)
        .filter_map(|c| <[u8; 32]>::try_from(c).ok())
        .collect())
}

fn kind_at(r: &Row, i: usize) -> StorageResult<RecordKind> {
    let kind: String = get(r, i)?;
    RecordKind::parse(&kind).ok_or_else(|| corrupt("unknown record kind"))
}

fn org_row(r: &Row) -> StorageResult<Organisation> {
    Ok(Organisation {
        id: get(r, 0)?,
        name: get(r, 1)?,
        created_at: time_at(r, 2)?,
    })
}

fn team_row(r: &Row) -> StorageResult<Team> {
    Ok(Team {
        id: get(r, 0)?,
        organisation_id: get(r, 1)?,
        name: get(r, 2)?,
        created_at: time_at(r, 3)?,
    })
}

fn user_row(r: &Row) -> StorageResult<User> {
    let role: String = get(r, 3)?;
    Ok(User {
        id: get(r, 0)?,
        organisation_id: get(r, 1)?,
        name: get(r, 2)?,
        role: Role::parse(&role).ok_or_else(|| corrupt("unknown role"))?,
        created_at: time_at(r, 4)?,
    })
}

/// How many columns `DEVICE_COLUMNS` selects.
const DEVICE_COLUMN_COUNT: usize = 13;
const DEVICE_COLUMNS: &str =
    "d.id, d.team_id, t.organisation_id, d.label, d.enrolled_at, d.revoked_at, d.last_sync_at,
     d.writer, d.applied_seq, d.wipe, d.wipe_sent_at, d.app_version, d.unsent
     FROM devices d JOIN teams t ON t.id = d.team_id";

fn device_row(r: &Row) -> StorageResult<Device> {
    Ok(Device {
        id: get(r, 0)?,
        team_id: get(r, 1)?,
        organisation_id: get(r, 2)?,
        label: get(r, 3)?,
        enrolled_at: time_at(r, 4)?,
        revoked_at: opt_time_at(r, 5)?,
        last_sync_at: opt_time_at(r, 6)?,
        writer: get(r, 7)?,
        applied_seq: seq_of(get(r, 8)?)?,
        wipe: get::<Option<String>>(r, 9)?
            .map(|w| WipeOrder::parse(&w).ok_or_else(|| corrupt("unknown wipe order")))
            .transpose()?,
        wipe_sent_at: opt_time_at(r, 10)?,
        app_version: get(r, 11)?,
        unsent: get::<Option<i64>>(r, 12)?.map(seq_of).transpose()?,
    })
}

const ERASURE_REQUEST_COLUMNS: &str = "id, organisation_id, team_id, record_id, record_kind, \
     reason, requested_by, requested_at, decision, decided_by, decided_at, executed_at, \
     tombstone_seq, also_erased, removed_from FROM erasure_requests";

fn erasure_request_row(r: &Row) -> StorageResult<ErasureRequest> {
    let decision: Option<String> = get(r, 8)?;
    let decision = match (decision.as_deref(), get(r, 9)?, opt_time_at(r, 10)?) {
        (Some(d), Some(by), Some(at)) => Some(ErasureDecision {
            approved: d == "approved",
            by,
            at,
        }),
        _ => None,
    };
    let executed = match (opt_time_at(r, 11)?, get::<Option<i64>>(r, 12)?) {
        (Some(at), Some(seq)) => Some(ErasureExecuted {
            at,
            tombstone_seq: seq_of(seq)?,
            also_erased: u32_at(r, 13)?,
            removed_from: u32_at(r, 14)?,
        }),
        _ => None,
    };
    Ok(ErasureRequest {
        id: get(r, 0)?,
        organisation_id: get(r, 1)?,
        team_id: get(r, 2)?,
        record_id: get(r, 3)?,
        record_kind: kind_at(r, 4)?,
        reason: get(r, 5)?,
        requested_by: get(r, 6)?,
        requested_at: time_at(r, 7)?,
        decision,
        executed,
    })
}

const TRANSFER_COLUMNS: &str = "id, youth_id, from_team, to_team, requested_by, requested_at, \
     state, decided_by, decided_at FROM transfers";

fn transfer_row(r: &Row) -> StorageResult<Transfer> {
    let state: String = get(r, 6)?;
    Ok(Transfer {
        id: get(r, 0)?,
        youth_id: get(r, 1)?,
        from_team: get(r, 2)?,
        to_team: get(r, 3)?,
        requested_by: get(r, 4)?,
        requested_at: time_at(r, 5)?,
        state: TransferState::parse(&state).ok_or_else(|| corrupt("unknown transfer state"))?,
        decided_by: get(r, 7)?,
        decided_at: opt_time_at(r, 8)?,
    })
}

const GRANT_COLUMNS: &str = "id, youth_id, team_id, user_id, device_id, member_id, reason, \
     granted_at, expires_at, ended_at, ended_by FROM access_grants";

fn grant_row(r: &Row) -> StorageResult<AccessGrant> {
    let grantee = match (get::<Option<Uuid>>(r, 3)?, get::<Option<Uuid>>(r, 4)?) {
        (Some(user), None) => Grantee::User(user),
        (None, Some(device_id)) => Grantee::Device {
            device_id,
            member_id: get::<Option<Uuid>>(r, 5)?.unwrap_or_default(),
        },
        _ => return Err(corrupt("a grant names one user or one tablet")),
    };
    Ok(AccessGrant {
        id: get(r, 0)?,
        youth_id: get(r, 1)?,
        team_id: get(r, 2)?,
        grantee,
        reason: get(r, 6)?,
        granted_at: time_at(r, 7)?,
        expires_at: time_at(r, 8)?,
        ended_at: opt_time_at(r, 9)?,
        ended_by: get(r, 10)?,
    })
}

const DOCUMENT_COLUMNS: &str =
    "id, kind, team_id, doc, heads, seq, received_at, fields, generation FROM documents";

fn document_row(r: &Row) -> StorageResult<StoredDocument> {
    let heads: Vec<u8> = get(r, 4)?;
    Ok(StoredDocument {
        id: get(r, 0)?,
        kind: kind_at(r, 1)?,
        team_id: get(r, 2)?,
        doc: get(r, 3)?,
        heads: heads_from_blob(&heads)?,
        seq: seq_of(get(r, 5)?)?,
        received_at: time_at(r, 6)?,
        fields: get(r, 7)?,
        generation: u32_at(r, 8)?,
    })
}

fn tombstone_row(r: &Row) -> StorageResult<Tombstone> {
    Ok(Tombstone {
        id: get(r, 0)?,
        team_id: get(r, 1)?,
        seq: seq_of(get(r, 2)?)?,
        erased_at: time_at(r, 3)?,
    })
}

fn day_at(r: &Row, i: usize) -> StorageResult<NaiveDate> {
    let day: String = get(r, i)?;
    day.parse().map_err(|_| corrupt("malformed date"))
}

const CREDENTIAL_COLUMNS: &str =
    "id, organisation_id, name, role, created_at, login, password_hash FROM users";

fn credentials_row(r: &Row) -> StorageResult<Credentials> {
    Ok(Credentials {
        user: user_row(r)?,
        login: get(r, 5)?,
        password_hash: get(r, 6)?,
    })
}

const SESSION_COLUMNS: &str =
    "token_hash, user_id, csrf_token, created_at, last_seen_at, expires_at FROM sessions";

fn session_row(r: &Row) -> StorageResult<Session> {
    Ok(Session {
        token_hash: hash_at(r, 0)?,
        user_id: get(r, 1)?,
        csrf_token: get(r, 2)?,
        created_at: time_at(r, 3)?,
        last_seen_at: time_at(r, 4)?,
        expires_at: time_at(r, 5)?,
    })
}

fn audit_row(r: &Row) -> StorageResult<AuditEntry> {
    Ok(AuditEntry {
        id: seq_of(get(r, 0)?)?,
        at: time_at(r, 1)?,
        organisation_id: get(r, 2)?,
        user_id: get(r, 3)?,
        action: get(r, 4)?,
        target_id: get(r, 5)?,
        detail: get(r, 6)?,
    })
}

const MEMBER_COLUMNS: &str = "id, team_id, display_name, active, changed_at, seq FROM team_members";

fn member_row(r: &Row) -> StorageResult<TeamMember> {
    Ok(TeamMember {
        id: get(r, 0)?,
        team_id: get(r, 1)?,
        display_name: get(r, 2)?,
        active: get(r, 3)?,
        changed_at: time_at(r, 4)?,
        seq: seq_of(get(r, 5)?)?,
    })
}

/// A review from columns `at..at + 5` (all NULL: no review, from a LEFT JOIN).
fn review_row(r: &Row, at: usize) -> StorageResult<Option<VisitReview>> {
    let Some(contact_id) = get::<Option<Uuid>>(r, at)? else {
        return Ok(None);
    };
    let state: String = get(r, at + 1)?;
    Ok(Some(VisitReview {
        contact_id,
        state: VisitState::parse(&state).ok_or_else(|| corrupt("unknown review state"))?,
        reason: get(r, at + 2)?,
        user_id: get(r, at + 3)?,
        at: time_at(r, at + 4)?,
    }))
}

const VIEW_COLUMNS: &str = "v.id, v.kind, v.team_id, v.seq, v.received_at, v.fields";

fn view_row(r: &Row) -> StorageResult<ViewRecord> {
    view_row_at(r, 0)
}

fn view_row_at(r: &Row, at: usize) -> StorageResult<ViewRecord> {
    Ok(ViewRecord {
        id: get(r, at)?,
        kind: kind_at(r, at + 1)?,
        team_id: get(r, at + 2)?,
        seq: seq_of(get(r, at + 3)?)?,
        received_at: time_at(r, at + 4)?,
        fields: get(r, at + 5)?,
    })
}

const SUMMARY_COLUMNS: &str = "s.youth_id, s.team_id, s.status, s.search, s.first_contact, \
     s.last_visit, s.visits, s.actions, s.outcomes, s.reached";

/// A `youth_summary` row (`SUMMARY_COLUMNS`) followed by its view row (`VIEW_COLUMNS`).
fn youth_row(r: &Row) -> StorageResult<YouthRow> {
    let count = |i: usize| -> StorageResult<u32> {
        Ok(u32::try_from(get::<i64>(r, i)?.max(0)).unwrap_or(u32::MAX))
    };
    let last_visit: Option<String> = get(r, 5)?;
    let summary = YouthSummary {
        youth_id: get(r, 0)?,
        team_id: get(r, 1)?,
        status: get(r, 2)?,
        search: get(r, 3)?,
        first_contact: day_at(r, 4)?,
        last_visit: last_visit
            .map(|d| d.parse().map_err(|_| corrupt("malformed date")))
            .transpose()?,
        visits: count(6)?,
        actions: count(7)?,
        outcomes: count(8)?,
        reached: get(r, 9)?,
    };
    Ok((summary, view_row_at(r, 10)?))
}

impl ReadTx for PgTx<'_> {
    fn organisations(&mut self) -> StorageResult<Vec<Organisation>> {
        self.map(
            "SELECT id, name, created_at FROM organisations ORDER BY created_at, id",
            &[],
            org_row,
        )
    }

    fn organisation(&mut self, id: Uuid) -> StorageResult<Option<Organisation>> {
        self.map_opt(
            "SELECT id, name, created_at FROM organisations WHERE id = $1",
            &[&id],
            org_row,
        )
    }

    fn teams(&mut self) -> StorageResult<Vec<Team>> {
        self.map(
            "SELECT id, organisation_id, name, created_at FROM teams ORDER BY created_at, id",
            &[],
            team_row,
        )
    }

    fn team(&mut self, id: Uuid) -> StorageResult<Option<Team>> {
        self.map_opt(
            "SELECT id, organisation_id, name, created_at FROM teams WHERE id = $1",
            &[&id],
            team_row,
        )
    }

    fn team_counts(&mut self, team_id: Uuid) -> StorageResult<TeamCounts> {
        Ok(TeamCounts {
            documents: self.count(
                "SELECT count(*) FROM documents WHERE team_id = $1",
                &[&team_id],
            )?,
            tombstones: self.count(
                "SELECT count(*) FROM tombstones WHERE team_id = $1",
                &[&team_id],
            )?,
            active_devices: self.count(
                "SELECT count(*) FROM devices WHERE team_id = $1 AND revoked_at IS NULL",
                &[&team_id],
            )?,
        })
    }

    fn users(&mut self) -> StorageResult<Vec<User>> {
        self.map(
            "SELECT id, organisation_id, name, role, created_at FROM users ORDER BY created_at, id",
            &[],
            user_row,
        )
    }

    fn enrolment_code(&mut self, code_hash: &SecretHash) -> StorageResult<Option<EnrolmentCode>> {
        self.map_opt(
            "SELECT code_hash, team_id, created_at, expires_at, used_at, device_id
               FROM enrolment_codes WHERE code_hash = $1",
            &[&code_hash.as_slice()],
            |r| {
                Ok(EnrolmentCode {
                    code_hash: hash_at(r, 0)?,
                    team_id: get(r, 1)?,
                    created_at: time_at(r, 2)?,
                    expires_at: time_at(r, 3)?,
                    used_at: opt_time_at(r, 4)?,
                    device_id: get(r, 5)?,
                })
            },
        )
    }

    fn device(&mut self, id: Uuid) -> StorageResult<Option<Device>> {
        self.map_opt(
            &format!("SELECT {DEVICE_COLUMNS} WHERE d.id = $1"),
            &[&id],
            device_row,
        )
    }

    fn device_by_token(&mut self, token_hash: &SecretHash) -> StorageResult<Option<Device>> {
        self.map_opt(
            &format!("SELECT {DEVICE_COLUMNS} WHERE d.token_hash = $1"),
            &[&token_hash.as_slice()],
            device_row,
        )
    }

    fn devices_of_writer(&mut self, writer: Uuid) -> StorageResult<Vec<(Device, SecretHash)>> {
        // The device's columns, then its token hash; `n` orders those enrolled in the
        // same millisecond.
        let columns = DEVICE_COLUMNS.replacen(" FROM devices", ", d.token_hash FROM devices", 1);
        self.map(
            &format!("SELECT {columns} WHERE d.writer = $1 ORDER BY d.enrolled_at, d.n"),
            &[&writer],
            |r| Ok((device_row(r)?, hash_at(r, DEVICE_COLUMN_COUNT)?)),
        )
    }

    fn devices(&mut self, team_id: Option<Uuid>) -> StorageResult<Vec<Device>> {
        self.map(
            &format!(
                "SELECT {DEVICE_COLUMNS} WHERE $1::uuid IS NULL OR d.team_id = $1
                  ORDER BY d.enrolled_at, d.id"
            ),
            &[&team_id],
            device_row,
        )
    }

    fn erasure_request(&mut self, id: Uuid) -> StorageResult<Option<ErasureRequest>> {
        self.map_opt(
            &format!("SELECT {ERASURE_REQUEST_COLUMNS} WHERE id = $1"),
            &[&id],
            erasure_request_row,
        )
    }

    fn erasure_requests(&mut self, organisation_id: Uuid) -> StorageResult<Vec<ErasureRequest>> {
        self.map(
            &format!(
                "SELECT {ERASURE_REQUEST_COLUMNS} WHERE organisation_id = $1
                  ORDER BY requested_at DESC, id DESC"
            ),
            &[&organisation_id],
            erasure_request_row,
        )
    }

    fn document(&mut self, id: Uuid) -> StorageResult<Option<StoredDocument>> {
        self.map_opt(
            &format!("SELECT {DOCUMENT_COLUMNS} WHERE id = $1"),
            &[&id],
            document_row,
        )
    }

    fn tombstone(&mut self, id: Uuid) -> StorageResult<Option<Tombstone>> {
        self.map_opt(
            "SELECT id, team_id, seq, erased_at FROM tombstones WHERE id = $1",
            &[&id],
            tombstone_row,
        )
    }

    fn records_of_youth(&mut self, youth_id: Uuid) -> StorageResult<Vec<StoredDocument>> {
        // `fields` is JSON text (`json`, not `jsonb`: any text serde_json wrote parses).
        self.map(
            &format!(
                "SELECT {DOCUMENT_COLUMNS}
                  WHERE (kind IN ('action', 'outcome') AND fields::json ->> 'youth_id' = $1)
                     OR (kind = 'contact' AND CASE
                           WHEN json_typeof(fields::json -> 'youth_ids') = 'array'
                           THEN EXISTS (
                               SELECT 1 FROM json_array_elements_text(fields::json -> 'youth_ids') AS y (v)
                                WHERE y.v = $1)
                           ELSE false END)
                  ORDER BY seq"
            ),
            &[&youth_id.to_string()],
            document_row,
        )
    }

    fn review_tasks_of(&mut self, contact_id: Uuid) -> StorageResult<Vec<Uuid>> {
        self.map(
            "SELECT id FROM documents
              WHERE kind = 'review_task' AND fields::json ->> 'contact_id' = $1
              ORDER BY seq",
            &[&contact_id.to_string()],
            |r| get(r, 0),
        )
    }

    fn last_seq(&mut self) -> StorageResult<u64> {
        // The counter keeps the highest position ever given, even if its row is gone.
        self.counter("log")
    }

    fn documents_after(
        &mut self,
        team_id: Uuid,
        after: u64,
        limit: usize,
    ) -> StorageResult<Vec<StoredDocument>> {
        self.map(
            &format!(
                "SELECT {DOCUMENT_COLUMNS} WHERE team_id = $1 AND seq > $2 ORDER BY seq LIMIT $3"
            ),
            &[&team_id, &to_i64(after), &limit_of(limit)],
            document_row,
        )
    }

    fn tombstones_after(
        &mut self,
        team_id: Uuid,
        after: u64,
        up_to: Option<u64>,
        limit: usize,
    ) -> StorageResult<Vec<Tombstone>> {
        self.map(
            "SELECT id, team_id, seq, erased_at FROM tombstones
              WHERE team_id = $1 AND seq > $2 AND ($3::bigint IS NULL OR seq <= $3)
              ORDER BY seq LIMIT $4",
            &[
                &team_id,
                &to_i64(after),
                &up_to.map(to_i64),
                &limit_of(limit),
            ],
            tombstone_row,
        )
    }

    fn departures_after(
        &mut self,
        team_id: Uuid,
        after: u64,
        up_to: Option<u64>,
        limit: usize,
    ) -> StorageResult<Vec<Departure>> {
        self.map(
            "SELECT id, team_id, seq FROM departures
              WHERE team_id = $1 AND seq > $2 AND ($3::bigint IS NULL OR seq <= $3)
              ORDER BY seq LIMIT $4",
            &[
                &team_id,
                &to_i64(after),
                &up_to.map(to_i64),
                &limit_of(limit),
            ],
            |r| {
                Ok(Departure {
                    id: get(r, 0)?,
                    team_id: get(r, 1)?,
                    seq: seq_of(get(r, 2)?)?,
                })
            },
        )
    }

    fn departed(&mut self, id: Uuid, team_id: Uuid) -> StorageResult<bool> {
        Ok(self
            .opt(
                "SELECT 1 FROM departures WHERE id = $1 AND team_id = $2",
                &[&id, &team_id],
            )?
            .is_some())
    }

    fn transfer(&mut self, id: Uuid) -> StorageResult<Option<Transfer>> {
        self.map_opt(
            &format!("SELECT {TRANSFER_COLUMNS} WHERE id = $1"),
            &[&id],
            transfer_row,
        )
    }

    fn transfers_of(&mut self, teams: &[Uuid]) -> StorageResult<Vec<Transfer>> {
        self.map(
            &format!(
                "SELECT {TRANSFER_COLUMNS} WHERE from_team = ANY($1) OR to_team = ANY($1)
                  ORDER BY requested_at DESC, id DESC"
            ),
            &[&teams],
            transfer_row,
        )
    }

    fn access_grant(&mut self, id: Uuid) -> StorageResult<Option<AccessGrant>> {
        self.map_opt(
            &format!("SELECT {GRANT_COLUMNS} WHERE id = $1"),
            &[&id],
            grant_row,
        )
    }

    fn access_grants_on(
        &mut self,
        teams: &[Uuid],
        limit: usize,
    ) -> StorageResult<Vec<AccessGrant>> {
        self.map(
            &format!(
                "SELECT {GRANT_COLUMNS} WHERE team_id = ANY($1)
                  ORDER BY granted_at DESC, id DESC LIMIT $2"
            ),
            &[&teams, &limit_of(limit)],
            grant_row,
        )
    }

    fn access_grants_to(
        &mut self,
        grantee: Grantee,
        limit: usize,
    ) -> StorageResult<Vec<AccessGrant>> {
        let (column, id) = match grantee {
            Grantee::User(id) => ("user_id", id),
            Grantee::Device { device_id, .. } => ("device_id", device_id),
        };
        self.map(
            &format!(
                "SELECT {GRANT_COLUMNS} WHERE {column} = $1
                  ORDER BY granted_at DESC, id DESC LIMIT $2"
            ),
            &[&id, &limit_of(limit)],
            grant_row,
        )
    }

    fn credentials(&mut self, user_id: Uuid) -> StorageResult<Option<Credentials>> {
        self.map_opt(
            &format!("SELECT {CREDENTIAL_COLUMNS} WHERE id = $1"),
            &[&user_id],
            credentials_row,
        )
    }

    fn credentials_by_login(&mut self, login: &str) -> StorageResult<Option<Credentials>> {
        self.map_opt(
            &format!("SELECT {CREDENTIAL_COLUMNS} WHERE login = $1"),
            &[&login],
            credentials_row,
        )
    }

    fn session(&mut self, token_hash: &SecretHash) -> StorageResult<Option<Session>> {
        self.map_opt(
            &format!("SELECT {SESSION_COLUMNS} WHERE token_hash = $1"),
            &[&token_hash.as_slice()],
            session_row,
        )
    }

    fn user_sessions(&mut self, user_id: Uuid) -> StorageResult<Vec<Session>> {
        self.map(
            &format!(
                "SELECT {SESSION_COLUMNS} WHERE user_id = $1 ORDER BY created_at DESC, token_hash"
            ),
            &[&user_id],
            session_row,
        )
    }

    fn audit_entries(
        &mut self,
        organisation_id: Uuid,
        target: Option<Uuid>,
        offset: usize,
        limit: usize,
    ) -> StorageResult<(Vec<AuditEntry>, u64)> {
        let total = self.count(
            "SELECT count(*) FROM audit_log
              WHERE organisation_id = $1 AND ($2::uuid IS NULL OR target_id = $2)",
            &[&organisation_id, &target],
        )?;
        let entries = self.map(
            "SELECT id, at, organisation_id, user_id, action, target_id, detail FROM audit_log
              WHERE organisation_id = $1 AND ($2::uuid IS NULL OR target_id = $2)
              ORDER BY id DESC LIMIT $3 OFFSET $4",
            &[
                &organisation_id,
                &target,
                &limit_of(limit),
                &limit_of(offset),
            ],
            audit_row,
        )?;
        Ok((entries, total))
    }

    fn targets(&mut self, organisation_id: Uuid) -> StorageResult<Option<Targets>> {
        self.map_opt(
            "SELECT identified, mobilised, from_day, to_day FROM targets
              WHERE organisation_id = $1",
            &[&organisation_id],
            |r| {
                let count = |v: Option<i64>| v.map(|n| u32::try_from(n.max(0)).unwrap_or(u32::MAX));
                Ok(Targets {
                    identified: count(get(r, 0)?),
                    mobilised: count(get(r, 1)?),
                    from: day_at(r, 2)?,
                    to: day_at(r, 3)?,
                })
            },
        )
    }

    fn retention_months(&mut self, organisation_id: Uuid) -> StorageResult<Option<u32>> {
        self.map_opt(
            "SELECT months FROM retention_rules WHERE organisation_id = $1",
            &[&organisation_id],
            |r| u32_at(r, 0),
        )
    }

    fn record_fields(&mut self, kinds: &[RecordKind]) -> StorageResult<Vec<RecordFields>> {
        let mut out = Vec::new();
        for kind in kinds {
            let kind = *kind;
            out.extend(self.map(
                "SELECT id, team_id, fields FROM documents WHERE kind = $1 ORDER BY seq",
                &[&kind.as_str()],
                |r| {
                    Ok(RecordFields {
                        id: get(r, 0)?,
                        kind,
                        team_id: get(r, 1)?,
                        fields: get::<Option<String>>(r, 2)?.unwrap_or_default(),
                    })
                },
            )?);
        }
        Ok(out)
    }

    fn server_secret(&mut self, name: &str) -> StorageResult<Option<Vec<u8>>> {
        self.map_opt(
            "SELECT value FROM server_secrets WHERE name = $1",
            &[&name],
            |r| get(r, 0),
        )
    }

    fn change_log(&mut self, doc_id: Uuid) -> StorageResult<Vec<LogEntry>> {
        self.map(
            "SELECT seq, op, device_id, received_at FROM change_log WHERE doc_id = $1 ORDER BY seq",
            &[&doc_id],
            |r| {
                Ok(LogEntry {
                    seq: seq_of(get(r, 0)?)?,
                    op: get(r, 1)?,
                    device_id: get(r, 2)?,
                    received_at: time_at(r, 3)?,
                })
            },
        )
    }

    fn documents_since(&mut self, after: u64, limit: usize) -> StorageResult<Vec<StoredDocument>> {
        self.map(
            &format!("SELECT {DOCUMENT_COLUMNS} WHERE seq > $1 ORDER BY seq LIMIT $2"),
            &[&to_i64(after), &limit_of(limit)],
            document_row,
        )
    }

    fn view_seq(&mut self) -> StorageResult<u64> {
        let seq: i64 = get(
            &self.one("SELECT seq FROM view_state WHERE id = 1", &[])?,
            0,
        )?;
        Ok(seq.max(0) as u64)
    }

    fn view_record(&mut self, id: Uuid) -> StorageResult<Option<ViewRecord>> {
        self.map_opt(
            &format!("SELECT {VIEW_COLUMNS} FROM record_view v WHERE v.id = $1"),
            &[&id],
            view_row,
        )
    }

    fn view_by_ref(&mut self, kind: RecordKind, ref_id: Uuid) -> StorageResult<Vec<ViewRecord>> {
        self.map(
            &format!(
                "SELECT {VIEW_COLUMNS} FROM record_view v
                  WHERE v.ref_id = $1 AND v.kind = $2 ORDER BY v.seq"
            ),
            &[&ref_id, &kind.as_str()],
            view_row,
        )
    }

    fn view_contacts_of_youth(&mut self, youth_id: Uuid) -> StorageResult<Vec<ViewRecord>> {
        self.map(
            &format!(
                "SELECT {VIEW_COLUMNS} FROM record_view_youth l
                   JOIN record_view v ON v.id = l.contact_id
                  WHERE l.youth_id = $1 ORDER BY v.at_ms DESC NULLS LAST, v.id DESC"
            ),
            &[&youth_id],
            view_row,
        )
    }

    fn visits(&mut self, filter: &VisitFilter) -> StorageResult<(Vec<VisitRow>, u64)> {
        let mut params: Vec<Box<dyn ToSql + Sync>> = vec![Box::new(filter.teams.clone())];
        let mut conditions = vec!["v.kind = 'contact' AND v.team_id = ANY($1)".to_string()];
        let mut bind = |value: Box<dyn ToSql + Sync>| {
            params.push(value);
            format!("${}", params.len())
        };
        if let Some(from) = filter.from {
            conditions.push(format!("v.day >= {}", bind(Box::new(from.to_string()))));
        }
        if let Some(to) = filter.to {
            conditions.push(format!("v.day <= {}", bind(Box::new(to.to_string()))));
        }
        if let Some(communes) = &filter.communes {
            conditions.push(format!(
                "v.commune = ANY({})",
                bind(Box::new(communes.clone()))
            ));
        }
        match filter.state {
            None => {}
            Some(VisitState::ToReview) => conditions.push("r.contact_id IS NULL".into()),
            Some(state) => conditions.push(format!(
                "r.state = {}",
                bind(Box::new(state.as_str().to_string()))
            )),
        }
        let from_where = format!(
            "FROM record_view v LEFT JOIN visit_reviews r ON r.contact_id = v.id WHERE {}",
            conditions.join(" AND ")
        );
        let limit = bind(Box::new(limit_of(filter.limit)));
        let offset = bind(Box::new(limit_of(filter.offset)));
        let refs: Vec<Param<'_>> = params.iter().map(|p| p.as_ref()).collect();
        let filters = &refs[..refs.len() - 2];
        let total = self.count(&format!("SELECT count(*) {from_where}"), filters)?;
        // SQLite puts NULL first in ascending order, so last in descending order.
        let rows = self.map(
            &format!(
                "SELECT {VIEW_COLUMNS}, r.contact_id, r.state, r.reason, r.user_id, r.at
                 {from_where} ORDER BY v.at_ms DESC NULLS LAST, v.id DESC
                 LIMIT {limit} OFFSET {offset}"
            ),
            &refs,
            |r| Ok((view_row(r)?, review_row(r, 6)?)),
        )?;
        Ok((rows, total))
    }

    fn dirty_youth(&mut self, limit: usize) -> StorageResult<Vec<Uuid>> {
        self.map(
            "SELECT youth_id FROM youth_summary_dirty ORDER BY youth_id LIMIT $1",
            &[&limit_of(limit)],
            |r| get(r, 0),
        )
    }

    fn youth_page(&mut self, filter: &YouthFilter) -> StorageResult<(Vec<YouthRow>, u64)> {
        let mut params: Vec<Box<dyn ToSql + Sync>> = vec![Box::new(filter.teams.clone())];
        let mut conditions = vec!["s.team_id = ANY($1)".to_string()];
        let mut bind = |value: Box<dyn ToSql + Sync>| {
            params.push(value);
            format!("${}", params.len())
        };
        if let Some(status) = &filter.status {
            conditions.push(format!("s.status = {}", bind(Box::new(status.clone()))));
        }
        for word in &filter.words {
            conditions.push(format!(
                "strpos(s.search, {}) > 0",
                bind(Box::new(word.clone()))
            ));
        }
        let filtered = conditions.join(" AND ");
        let limit = bind(Box::new(limit_of(filter.limit)));
        let offset = bind(Box::new(limit_of(filter.offset)));
        let refs: Vec<Param<'_>> = params.iter().map(|p| p.as_ref()).collect();
        let total = self.count(
            &format!("SELECT count(*) FROM youth_summary s WHERE {filtered}"),
            &refs[..refs.len() - 2],
        )?;
        // The page is chosen on the summaries alone; only its rows are joined to the view.
        // NULLS LAST: SQLite's order (NULL is the smallest value there).
        let order = "s.last_visit DESC NULLS LAST, s.first_contact DESC, s.youth_id DESC";
        let rows = self.map(
            &format!(
                "SELECT {SUMMARY_COLUMNS}, {VIEW_COLUMNS}
                   FROM (SELECT * FROM youth_summary s WHERE {filtered}
                          ORDER BY {order} LIMIT {limit} OFFSET {offset}) s
                   JOIN record_view v ON v.id = s.youth_id
                  ORDER BY {order}"
            ),
            &refs,
            youth_row,
        )?;
        Ok((rows, total))
    }

    fn youth_rows_after(
        &mut self,
        teams: &[Uuid],
        after: Option<Uuid>,
        limit: usize,
    ) -> StorageResult<Vec<YouthRow>> {
        // No record has the nil id: it comes before every one.
        let after = after.unwrap_or(Uuid::nil());
        self.map(
            &format!(
                "SELECT {SUMMARY_COLUMNS}, {VIEW_COLUMNS}
                   FROM (SELECT * FROM youth_summary s
                          WHERE s.team_id = ANY($1) AND s.youth_id > $2
                          ORDER BY s.youth_id LIMIT $3) s
                   JOIN record_view v ON v.id = s.youth_id
                  ORDER BY s.youth_id"
            ),
            &[&teams, &after, &limit_of(limit)],
            youth_row,
        )
    }

    fn reached_facts(&mut self, teams: &[Uuid]) -> StorageResult<Vec<String>> {
        self.map(
            "SELECT reached FROM youth_summary
              WHERE team_id = ANY($1) AND reached IS NOT NULL ORDER BY youth_id",
            &[&teams],
            |r| get(r, 0),
        )
    }

    fn visit_review(&mut self, contact_id: Uuid) -> StorageResult<Option<VisitReview>> {
        Ok(self
            .map_opt(
                "SELECT contact_id, state, reason, user_id, at FROM visit_reviews
                  WHERE contact_id = $1",
                &[&contact_id],
                |r| review_row(r, 0),
            )?
            .flatten())
    }

    fn decisions_after(
        &mut self,
        team_id: Uuid,
        after: u64,
        limit: usize,
    ) -> StorageResult<Vec<(u64, VisitReview)>> {
        let rows = self.map(
            "SELECT r.contact_id, r.state, r.reason, r.user_id, r.at, r.seq
               FROM visit_reviews r JOIN documents d ON d.id = r.contact_id
              WHERE d.team_id = $1 AND r.seq > $2 ORDER BY r.seq LIMIT $3",
            &[&team_id, &to_i64(after), &limit_of(limit)],
            |r| Ok((seq_of(get(r, 5)?)?, review_row(r, 0)?)),
        )?;
        Ok(rows
            .into_iter()
            .filter_map(|(seq, review)| review.map(|r| (seq, r)))
            .collect())
    }

    fn last_decision_seq(&mut self) -> StorageResult<u64> {
        self.counter("decisions")
    }

    fn team_members(&mut self, team_id: Uuid) -> StorageResult<Vec<TeamMember>> {
        self.map(
            &format!("SELECT {MEMBER_COLUMNS} WHERE team_id = $1 ORDER BY display_name, id"),
            &[&team_id],
            member_row,
        )
    }

    fn team_member(&mut self, id: Uuid) -> StorageResult<Option<TeamMember>> {
        self.map_opt(
            &format!("SELECT {MEMBER_COLUMNS} WHERE id = $1"),
            &[&id],
            member_row,
        )
    }

    fn login_attempt_counts(
        &mut self,
        account_key: &SecretHash,
        address_key: &SecretHash,
        since: DateTime<Utc>,
    ) -> StorageResult<(u64, u64)> {
        let row = self.one(
            "SELECT (SELECT count(*) FROM login_attempts WHERE account_key = $1 AND at >= $3),
                    (SELECT count(*) FROM login_attempts WHERE address_key = $2 AND at >= $3)",
            &[&account_key.as_slice(), &address_key.as_slice(), &ms(since)],
        )?;
        let (account, address): (i64, i64) = (get(&row, 0)?, get(&row, 1)?);
        Ok((account.max(0) as u64, address.max(0) as u64))
    }

    fn user_disabled_at(&mut self, user_id: Uuid) -> StorageResult<Option<DateTime<Utc>>> {
        Ok(self
            .map_opt(
                "SELECT disabled_at FROM users WHERE id = $1",
                &[&user_id],
                |r| opt_time_at(r, 0),
            )?
            .flatten())
    }

    fn session_second_factor(&mut self, token_hash: &SecretHash) -> StorageResult<bool> {
        let at = self.map_opt(
            "SELECT second_factor_at FROM sessions WHERE token_hash = $1",
            &[&token_hash.as_slice()],
            |r| get::<Option<i64>>(r, 0),
        )?;
        Ok(at.flatten().is_some())
    }

    fn login_challenge(
        &mut self,
        token_hash: &SecretHash,
    ) -> StorageResult<Option<LoginChallenge>> {
        self.map_opt(
            "SELECT token_hash, user_id, created_at, expires_at FROM login_challenges
              WHERE token_hash = $1",
            &[&token_hash.as_slice()],
            |r| {
                Ok(LoginChallenge {
                    token_hash: hash_at(r, 0)?,
                    user_id: get(r, 1)?,
                    created_at: time_at(r, 2)?,
                    expires_at: time_at(r, 3)?,
                })
            },
        )
    }

    fn user_totp(&mut self, user_id: Uuid) -> StorageResult<Option<UserTotp>> {
        self.map_opt(
            "SELECT secret, created_at, confirmed_at, last_step FROM user_totp
              WHERE user_id = $1",
            &[&user_id],
            |r| {
                Ok(UserTotp {
                    secret: get(r, 0)?,
                    created_at: time_at(r, 1)?,
                    confirmed_at: opt_time_at(r, 2)?,
                    last_step: seq_of(get(r, 3)?)?,
                })
            },
        )
    }

    fn unused_recovery_codes(&mut self, user_id: Uuid) -> StorageResult<u64> {
        self.count(
            "SELECT count(*) FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL",
            &[&user_id],
        )
    }
}

impl Tx for PgTx<'_> {
    fn insert_organisation(&mut self, org: &Organisation) -> StorageResult<()> {
        if self.exists("SELECT 1 FROM organisations WHERE id = $1", &org.id)? {
            return Err(StorageError::Duplicate {
                what: "organisation",
                id: org.id,
            });
        }
        self.exec(
            "INSERT INTO organisations (id, name, created_at) VALUES ($1, $2, $3)",
            &[&org.id, &org.name, &ms(org.created_at)],
        )?;
        Ok(())
    }

    fn rename_organisation(&mut self, id: Uuid, name: &str) -> StorageResult<()> {
        let n = self.exec(
            "UPDATE organisations SET name = $2 WHERE id = $1",
            &[&id, &name],
        )?;
        if n == 0 {
            return Err(StorageError::NotFound {
                what: "organisation",
                id,
            });
        }
        Ok(())
    }

    fn insert_team(&mut self, team: &Team) -> StorageResult<()> {
        if !self.exists(
            "SELECT 1 FROM organisations WHERE id = $1",
            &team.organisation_id,
        )? {
            return Err(StorageError::NotFound {
                what: "organisation",
                id: team.organisation_id,
            });
        }
        if self.exists("SELECT 1 FROM teams WHERE id = $1", &team.id)? {
            return Err(StorageError::Duplicate {
                what: "team",
                id: team.id,
            });
        }
        self.exec(
            "INSERT INTO teams (id, organisation_id, name, created_at) VALUES ($1, $2, $3, $4)",
            &[
                &team.id,
                &team.organisation_id,
                &team.name,
                &ms(team.created_at),
            ],
        )?;
        Ok(())
    }

    fn insert_user(&mut self, user: &User) -> StorageResult<()> {
        if !self.exists(
            "SELECT 1 FROM organisations WHERE id = $1",
            &user.organisation_id,
        )? {
            return Err(StorageError::NotFound {
                what: "organisation",
                id: user.organisation_id,
            });
        }
        if self.exists("SELECT 1 FROM users WHERE id = $1", &user.id)? {
            return Err(StorageError::Duplicate {
                what: "user",
                id: user.id,
            });
        }
        self.exec(
            "INSERT INTO users (id, organisation_id, name, role, created_at)
             VALUES ($1, $2, $3, $4, $5)",
            &[
                &user.id,
                &user.organisation_id,
                &user.name,
                &user.role.as_str(),
                &ms(user.created_at),
            ],
        )?;
        Ok(())
    }

    fn insert_enrolment_code(&mut self, code: &EnrolmentCode) -> StorageResult<()> {
        if !self.exists("SELECT 1 FROM teams WHERE id = $1", &code.team_id)? {
            return Err(StorageError::NotFound {
                what: "team",
                id: code.team_id,
            });
        }
        self.exec(
            "INSERT INTO enrolment_codes (code_hash, team_id, created_at, expires_at, used_at, device_id)
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &code.code_hash.as_slice(),
                &code.team_id,
                &ms(code.created_at),
                &ms(code.expires_at),
                &code.used_at.map(ms),
                &code.device_id,
            ],
        )?;
        Ok(())
    }

    fn use_enrolment_code(
        &mut self,
        code_hash: &SecretHash,
        device_id: Uuid,
        at: DateTime<Utc>,
    ) -> StorageResult<bool> {
        let n = self.exec(
            "UPDATE enrolment_codes SET used_at = $2, device_id = $3
              WHERE code_hash = $1 AND used_at IS NULL",
            &[&code_hash.as_slice(), &ms(at), &device_id],
        )?;
        Ok(n == 1)
    }

    fn insert_device(&mut self, device: &Device, token_hash: &SecretHash) -> StorageResult<()> {
        if !self.exists("SELECT 1 FROM teams WHERE id = $1", &device.team_id)? {
            return Err(StorageError::NotFound {
                what: "team",
                id: device.team_id,
            });
        }
        self.exec(
            "INSERT INTO devices (id, team_id, label, token_hash, enrolled_at, writer)
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &device.id,
                &device.team_id,
                &device.label,
                &token_hash.as_slice(),
                &ms(device.enrolled_at),
                &device.writer,
            ],
        )?;
        Ok(())
    }

    fn revoke_device(&mut self, id: Uuid, at: DateTime<Utc>) -> StorageResult<bool> {
        let n = self.exec(
            "UPDATE devices SET revoked_at = coalesce(revoked_at, $2) WHERE id = $1",
            &[&id, &ms(at)],
        )?;
        Ok(n == 1)
    }

    fn order_wipe(&mut self, id: Uuid, order: WipeOrder) -> StorageResult<()> {
        self.exec(
            "UPDATE devices SET wipe = CASE WHEN wipe = 'urgent' THEN wipe ELSE $2 END
              WHERE id = $1",
            &[&id, &order.as_str()],
        )?;
        Ok(())
    }

    fn wipe_sent(&mut self, id: Uuid, at: DateTime<Utc>) -> StorageResult<()> {
        self.exec(
            "UPDATE devices SET wipe_sent_at = coalesce(wipe_sent_at, $2) WHERE id = $1",
            &[&id, &ms(at)],
        )?;
        Ok(())
    }

    fn touch_device(
        &mut self,
        id: Uuid,
        at: DateTime<Utc>,
        applied_seq: u64,
        app_version: Option<&str>,
        unsent: Option<u32>,
    ) -> StorageResult<()> {
        self.exec(
            "UPDATE devices SET last_sync_at = $2, applied_seq = $3, app_version = $4,
                unsent = $5
              WHERE id = $1",
            &[
                &id,
                &ms(at),
                &to_i64(applied_seq),
                &app_version,
                &unsent.map(i64::from),
            ],
        )?;
        Ok(())
    }

    fn insert_erasure_request(&mut self, q: &ErasureRequest) -> StorageResult<()> {
        self.exec(
            "INSERT INTO erasure_requests (id, organisation_id, team_id, record_id, record_kind,
                reason, requested_by, requested_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            &[
                &q.id,
                &q.organisation_id,
                &q.team_id,
                &q.record_id,
                &q.record_kind.as_str(),
                &q.reason,
                &q.requested_by,
                &ms(q.requested_at),
            ],
        )?;
        Ok(())
    }

    fn decide_erasure_request(&mut self, id: Uuid, d: &ErasureDecision) -> StorageResult<()> {
        let changed = self.exec(
            "UPDATE erasure_requests SET decision = $2, decided_by = $3, decided_at = $4
              WHERE id = $1 AND decision IS NULL",
            &[
                &id,
                &if d.approved { "approved" } else { "refused" },
                &d.by,
                &ms(d.at),
            ],
        )?;
        if changed == 0 {
            return Err(StorageError::NotFound {
                what: "undecided erasure request",
                id,
            });
        }
        Ok(())
    }

    fn executed_erasure_request(&mut self, id: Uuid, e: &ErasureExecuted) -> StorageResult<()> {
        self.exec(
            "UPDATE erasure_requests SET executed_at = $2, tombstone_seq = $3,
                also_erased = $4, removed_from = $5 WHERE id = $1",
            &[
                &id,
                &ms(e.at),
                &to_i64(e.tombstone_seq),
                &i64::from(e.also_erased),
                &i64::from(e.removed_from),
            ],
        )?;
        Ok(())
    }

    fn put_document(&mut self, doc: DocumentWrite<'_>) -> StorageResult<u64> {
        let seq = self.next_seq(doc.id, "change", doc.device_id, doc.received_at)?;
        self.exec(
            "INSERT INTO documents
                (id, kind, team_id, doc, heads, seq, received_at, fields, generation)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (id) DO UPDATE SET
                kind = excluded.kind, team_id = excluded.team_id, doc = excluded.doc,
                heads = excluded.heads, seq = excluded.seq, received_at = excluded.received_at,
                fields = excluded.fields, generation = excluded.generation",
            &[
                &doc.id,
                &doc.kind.as_str(),
                &doc.team_id,
                &doc.doc,
                &heads_to_blob(doc.heads),
                &to_i64(seq),
                &ms(doc.received_at),
                &doc.fields,
                &i64::from(doc.generation),
            ],
        )?;
        Ok(seq)
    }

    fn erase_document(&mut self, id: Uuid, at: DateTime<Utc>) -> StorageResult<Option<Tombstone>> {
        let Some(team_id) =
            self.map_opt("SELECT team_id FROM documents WHERE id = $1", &[&id], |r| {
                get::<Uuid>(r, 0)
            })?
        else {
            return Ok(None);
        };
        self.exec("DELETE FROM documents WHERE id = $1", &[&id])?;
        self.delete_view(id)?;
        self.exec("DELETE FROM visit_reviews WHERE contact_id = $1", &[&id])?;
        // The reasons given to read an erased young person's file go with it.
        self.exec("DELETE FROM access_grants WHERE youth_id = $1", &[&id])?;
        self.bury(id, team_id, at).map(Some)
    }

    fn bury(&mut self, id: Uuid, team_id: Uuid, at: DateTime<Utc>) -> StorageResult<Tombstone> {
        let seq = self.next_seq(id, "erase", None, at)?;
        self.exec(
            "INSERT INTO tombstones (id, team_id, seq, erased_at) VALUES ($1, $2, $3, $4)",
            &[&id, &team_id, &to_i64(seq), &ms(at)],
        )?;
        Ok(Tombstone {
            id,
            team_id,
            seq,
            erased_at: at,
        })
    }

    fn put_departure(&mut self, id: Uuid, team_id: Uuid, at: DateTime<Utc>) -> StorageResult<u64> {
        let seq = self.next_seq(id, "leave", None, at)?;
        self.exec(
            "INSERT INTO departures (id, team_id, seq, left_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (id, team_id) DO UPDATE SET seq = excluded.seq, left_at = excluded.left_at",
            &[&id, &team_id, &to_i64(seq), &ms(at)],
        )?;
        Ok(seq)
    }

    fn delete_departure(&mut self, id: Uuid, team_id: Uuid) -> StorageResult<()> {
        self.exec(
            "DELETE FROM departures WHERE id = $1 AND team_id = $2",
            &[&id, &team_id],
        )?;
        Ok(())
    }

    fn insert_transfer(&mut self, t: &Transfer) -> StorageResult<()> {
        self.exec(
            "INSERT INTO transfers (id, youth_id, from_team, to_team, requested_by,
                requested_at, state, decided_by, decided_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            &[
                &t.id,
                &t.youth_id,
                &t.from_team,
                &t.to_team,
                &t.requested_by,
                &ms(t.requested_at),
                &t.state.as_str(),
                &t.decided_by,
                &t.decided_at.map(ms),
            ],
        )?;
        Ok(())
    }

    fn insert_access_grant(&mut self, g: &AccessGrant) -> StorageResult<()> {
        if self.access_grant(g.id)?.is_some() {
            return Err(StorageError::Duplicate {
                what: "access grant",
                id: g.id,
            });
        }
        let (user, device, member) = match g.grantee {
            Grantee::User(user) => (Some(user), None, None),
            Grantee::Device {
                device_id,
                member_id,
            } => (None, Some(device_id), Some(member_id)),
        };
        self.exec(
            "INSERT INTO access_grants (id, youth_id, team_id, user_id, device_id,
                member_id, reason, granted_at, expires_at, ended_at, ended_by)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            &[
                &g.id,
                &g.youth_id,
                &g.team_id,
                &user,
                &device,
                &member,
                &g.reason,
                &ms(g.granted_at),
                &ms(g.expires_at),
                &g.ended_at.map(ms),
                &g.ended_by,
            ],
        )?;
        Ok(())
    }

    fn end_access_grant(&mut self, id: Uuid, by: Uuid, at: DateTime<Utc>) -> StorageResult<bool> {
        let changed = self.exec(
            "UPDATE access_grants SET ended_at = $2, ended_by = $3
              WHERE id = $1 AND ended_at IS NULL",
            &[&id, &ms(at), &by],
        )?;
        Ok(changed == 1)
    }

    fn end_transfer(
        &mut self,
        id: Uuid,
        state: TransferState,
        by: Uuid,
        at: DateTime<Utc>,
    ) -> StorageResult<bool> {
        let changed = self.exec(
            "UPDATE transfers SET state = $2, decided_by = $3, decided_at = $4
              WHERE id = $1 AND state = 'pending'",
            &[&id, &state.as_str(), &by, &ms(at)],
        )?;
        Ok(changed == 1)
    }

    fn set_user_role(&mut self, user_id: Uuid, role: Role) -> StorageResult<bool> {
        let n = self.exec(
            "UPDATE users SET role = $2 WHERE id = $1",
            &[&user_id, &role.as_str()],
        )?;
        Ok(n == 1)
    }

    fn set_login(&mut self, user_id: Uuid, login: Option<&str>) -> StorageResult<()> {
        if let Some(login) = login {
            let other = self.map_opt(
                "SELECT id FROM users WHERE login = $1 AND id <> $2",
                &[&login, &user_id],
                |r| get::<Uuid>(r, 0),
            )?;
            if let Some(other) = other {
                return Err(StorageError::Duplicate {
                    what: "login of user",
                    id: other,
                });
            }
        }
        let n = self.exec(
            "UPDATE users SET login = $2 WHERE id = $1",
            &[&user_id, &login],
        )?;
        if n == 0 {
            return Err(StorageError::NotFound {
                what: "user",
                id: user_id,
            });
        }
        Ok(())
    }

    fn set_password_hash(
        &mut self,
        user_id: Uuid,
        hash: &str,
        at: DateTime<Utc>,
    ) -> StorageResult<()> {
        let n = self.exec(
            "UPDATE users SET password_hash = $2, password_set_at = $3 WHERE id = $1",
            &[&user_id, &hash, &ms(at)],
        )?;
        if n == 0 {
            return Err(StorageError::NotFound {
                what: "user",
                id: user_id,
            });
        }
        Ok(())
    }

    fn insert_session(&mut self, session: &Session) -> StorageResult<()> {
        self.exec(
            "INSERT INTO sessions (token_hash, user_id, csrf_token, created_at, last_seen_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &session.token_hash.as_slice(),
                &session.user_id,
                &session.csrf_token,
                &ms(session.created_at),
                &ms(session.last_seen_at),
                &ms(session.expires_at),
            ],
        )?;
        Ok(())
    }

    fn touch_session(
        &mut self,
        token_hash: &SecretHash,
        last_seen_at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> StorageResult<()> {
        self.exec(
            "UPDATE sessions SET last_seen_at = $2, expires_at = $3 WHERE token_hash = $1",
            &[&token_hash.as_slice(), &ms(last_seen_at), &ms(expires_at)],
        )?;
        Ok(())
    }

    fn delete_session(&mut self, token_hash: &SecretHash) -> StorageResult<()> {
        self.exec(
            "DELETE FROM sessions WHERE token_hash = $1",
            &[&token_hash.as_slice()],
        )?;
        Ok(())
    }

    fn delete_user_sessions(&mut self, user_id: Uuid) -> StorageResult<()> {
        self.exec("DELETE FROM sessions WHERE user_id = $1", &[&user_id])?;
        Ok(())
    }

    fn delete_expired_sessions(&mut self, now: DateTime<Utc>) -> StorageResult<u64> {
        self.exec("DELETE FROM sessions WHERE expires_at <= $1", &[&ms(now)])
    }

    fn insert_audit(&mut self, entry: &AuditEntry) -> StorageResult<()> {
        self.exec(
            "INSERT INTO audit_log (at, organisation_id, user_id, action, target_id, detail)
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &ms(entry.at),
                &entry.organisation_id,
                &entry.user_id,
                &entry.action,
                &entry.target_id,
                &entry.detail,
            ],
        )?;
        Ok(())
    }

    fn put_visit_review(&mut self, review: &VisitReview) -> StorageResult<()> {
        let seq = self.next_counter("decisions")?;
        self.exec(
            "INSERT INTO visit_reviews (contact_id, state, reason, user_id, at, seq)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (contact_id) DO UPDATE SET
                state = excluded.state, reason = excluded.reason,
                user_id = excluded.user_id, at = excluded.at, seq = excluded.seq",
            &[
                &review.contact_id,
                &review.state.as_str(),
                &review.reason,
                &review.user_id,
                &ms(review.at),
                &to_i64(seq),
            ],
        )?;
        Ok(())
    }

    fn put_team_member(&mut self, member: &TeamMember) -> StorageResult<u64> {
        let seq = self.next_counter("roster")?;
        self.exec(
            "INSERT INTO team_members (id, team_id, display_name, active, changed_at, seq)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (id) DO UPDATE SET
                team_id = excluded.team_id, display_name = excluded.display_name,
                active = excluded.active, changed_at = excluded.changed_at,
                seq = excluded.seq",
            &[
                &member.id,
                &member.team_id,
                &member.display_name,
                &member.active,
                &ms(member.changed_at),
                &to_i64(seq),
            ],
        )?;
        Ok(seq)
    }

    fn set_retention_months(
        &mut self,
        organisation_id: Uuid,
        months: u32,
        at: DateTime<Utc>,
    ) -> StorageResult<()> {
        if !self.exists(
            "SELECT 1 FROM organisations WHERE id = $1",
            &organisation_id,
        )? {
            return Err(StorageError::NotFound {
                what: "organisation",
                id: organisation_id,
            });
        }
        self.exec(
            "INSERT INTO retention_rules (organisation_id, months, updated_at)
             VALUES ($1, $2, $3)
             ON CONFLICT (organisation_id) DO UPDATE SET
                months = excluded.months, updated_at = excluded.updated_at",
            &[&organisation_id, &i64::from(months), &ms(at)],
        )?;
        Ok(())
    }

    fn set_targets(
        &mut self,
        organisation_id: Uuid,
        targets: &Targets,
        at: DateTime<Utc>,
    ) -> StorageResult<()> {
        if !self.exists(
            "SELECT 1 FROM organisations WHERE id = $1",
            &organisation_id,
        )? {
            return Err(StorageError::NotFound {
                what: "organisation",
                id: organisation_id,
            });
        }
        self.exec(
            "INSERT INTO targets (organisation_id, identified, mobilised, from_day, to_day, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (organisation_id) DO UPDATE SET
                identified = excluded.identified, mobilised = excluded.mobilised,
                from_day = excluded.from_day, to_day = excluded.to_day,
                updated_at = excluded.updated_at",
            &[
                &organisation_id,
                &targets.identified.map(i64::from),
                &targets.mobilised.map(i64::from),
                &targets.from.to_string(),
                &targets.to.to_string(),
                &ms(at),
            ],
        )?;
        Ok(())
    }

    fn replace_server_secret(
        &mut self,
        name: &str,
        value: &[u8],
        at: DateTime<Utc>,
    ) -> StorageResult<()> {
        self.exec(
            "INSERT INTO server_secrets (name, value, created_at) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO UPDATE SET value = excluded.value, created_at = excluded.created_at",
            &[&name, &value, &ms(at)],
        )?;
        Ok(())
    }

    fn insert_server_secret(
        &mut self,
        name: &str,
        value: &[u8],
        at: DateTime<Utc>,
    ) -> StorageResult<Vec<u8>> {
        self.exec(
            "INSERT INTO server_secrets (name, value, created_at) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO NOTHING",
            &[&name, &value, &ms(at)],
        )?;
        self.server_secret(name)?
            .ok_or_else(|| StorageError::Backend("server secret not stored".into()))
    }

    fn put_view(&mut self, row: &ViewWrite) -> StorageResult<()> {
        let r = &row.record;
        self.mark_youth_of(r.id)?;
        self.exec(
            "INSERT INTO record_view (id, kind, team_id, seq, received_at, fields, day, at_ms, commune, ref_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             ON CONFLICT (id) DO UPDATE SET
                kind = excluded.kind, team_id = excluded.team_id, seq = excluded.seq,
                received_at = excluded.received_at, fields = excluded.fields,
                day = excluded.day, at_ms = excluded.at_ms, commune = excluded.commune,
                ref_id = excluded.ref_id",
            &[
                &r.id,
                &r.kind.as_str(),
                &r.team_id,
                &to_i64(r.seq),
                &ms(r.received_at),
                &r.fields,
                &row.day.map(|d| d.to_string()),
                &row.at_ms,
                &row.commune,
                &row.ref_id,
            ],
        )?;
        self.exec(
            "DELETE FROM record_view_youth WHERE contact_id = $1",
            &[&r.id],
        )?;
        for youth in &row.youth_ids {
            self.exec(
                "INSERT INTO record_view_youth (contact_id, youth_id) VALUES ($1, $2)
                 ON CONFLICT DO NOTHING",
                &[&r.id, youth],
            )?;
        }
        self.mark_youth_of(r.id)
    }

    fn delete_view(&mut self, id: Uuid) -> StorageResult<()> {
        self.mark_youth_of(id)?;
        self.exec("DELETE FROM youth_summary WHERE youth_id = $1", &[&id])?;
        self.exec("DELETE FROM record_view WHERE id = $1", &[&id])?;
        self.exec(
            "DELETE FROM record_view_youth WHERE contact_id = $1",
            &[&id],
        )?;
        Ok(())
    }

    fn put_youth_summary(&mut self, summary: &YouthSummary) -> StorageResult<()> {
        let s = summary;
        self.exec(
            "INSERT INTO youth_summary
                (youth_id, team_id, status, search, first_contact, last_visit, visits,
                 actions, outcomes, reached)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             ON CONFLICT (youth_id) DO UPDATE SET
                team_id = excluded.team_id, status = excluded.status,
                search = excluded.search, first_contact = excluded.first_contact,
                last_visit = excluded.last_visit, visits = excluded.visits,
                actions = excluded.actions, outcomes = excluded.outcomes,
                reached = excluded.reached",
            &[
                &s.youth_id,
                &s.team_id,
                &s.status,
                &s.search,
                &s.first_contact.to_string(),
                &s.last_visit.map(|d| d.to_string()),
                &i64::from(s.visits),
                &i64::from(s.actions),
                &i64::from(s.outcomes),
                &s.reached,
            ],
        )?;
        self.exec(
            "DELETE FROM youth_summary_dirty WHERE youth_id = $1",
            &[&s.youth_id],
        )?;
        Ok(())
    }

    fn delete_youth_summary(&mut self, youth_id: Uuid) -> StorageResult<()> {
        self.exec(
            "DELETE FROM youth_summary WHERE youth_id = $1",
            &[&youth_id],
        )?;
        self.exec(
            "DELETE FROM youth_summary_dirty WHERE youth_id = $1",
            &[&youth_id],
        )?;
        Ok(())
    }

    fn set_view_seq(&mut self, seq: u64) -> StorageResult<()> {
        self.exec(
            "UPDATE view_state SET seq = $1 WHERE id = 1",
            &[&to_i64(seq)],
        )?;
        Ok(())
    }

    fn insert_login_attempt(
        &mut self,
        account_key: &SecretHash,
        address_key: &SecretHash,
        at: DateTime<Utc>,
    ) -> StorageResult<()> {
        self.exec(
            "INSERT INTO login_attempts (at, account_key, address_key) VALUES ($1, $2, $3)",
            &[&ms(at), &account_key.as_slice(), &address_key.as_slice()],
        )?;
        Ok(())
    }

    fn delete_login_attempts(
        &mut self,
        account_key: &SecretHash,
        address_key: &SecretHash,
    ) -> StorageResult<()> {
        self.exec(
            "DELETE FROM login_attempts WHERE account_key = $1 AND address_key = $2",
            &[&account_key.as_slice(), &address_key.as_slice()],
        )?;
        Ok(())
    }

    fn prune_login_attempts(
        &mut self,
        before: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StorageResult<()> {
        self.exec("DELETE FROM login_attempts WHERE at < $1", &[&ms(before)])?;
        self.exec(
            "DELETE FROM login_throttle_notices WHERE until <= $1",
            &[&ms(now)],
        )?;
        Ok(())
    }

    fn take_token(
        &mut self,
        key: &SecretHash,
        bucket: Bucket,
        now: DateTime<Utc>,
    ) -> StorageResult<bool> {
        // One statement, as on SQLite: the row is locked while the bucket is refilled and
        // spent (a concurrent taker waits, then conflicts and runs its work again).
        let n = self.exec(
            "INSERT INTO rate_buckets (key, tokens, at, full_at)
             VALUES ($1, $2::float8 - 1, $4::bigint, $4::bigint + 1000.0 / $3::float8)
             ON CONFLICT (key) DO UPDATE SET
               tokens = least($2::float8, rate_buckets.tokens
                          + greatest(0, $4::bigint - rate_buckets.at) * $3::float8 / 1000.0) - 1,
               at = $4::bigint,
               full_at = $4::bigint + ($2::float8 - (least($2::float8, rate_buckets.tokens
                          + greatest(0, $4::bigint - rate_buckets.at) * $3::float8 / 1000.0) - 1))
                         * 1000.0 / $3::float8
             WHERE least($2::float8, rate_buckets.tokens
                     + greatest(0, $4::bigint - rate_buckets.at) * $3::float8 / 1000.0) >= 1",
            &[&key.as_slice(), &bucket.burst, &bucket.per_second, &ms(now)],
        )?;
        Ok(n > 0)
    }

    fn prune_rate_buckets(&mut self, now: DateTime<Utc>) -> StorageResult<u64> {
        self.exec(
            "DELETE FROM rate_buckets WHERE full_at <= $1::bigint",
            &[&ms(now)],
        )
    }

    fn claim_throttle_notice(
        &mut self,
        key: &SecretHash,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> StorageResult<bool> {
        let n = self.exec(
            "INSERT INTO login_throttle_notices (key, until) VALUES ($1, $3)
             ON CONFLICT (key) DO UPDATE SET until = excluded.until
              WHERE login_throttle_notices.until <= $2",
            &[&key.as_slice(), &ms(now), &ms(until)],
        )?;
        Ok(n > 0)
    }

    fn set_user_disabled(&mut self, user_id: Uuid, at: Option<DateTime<Utc>>) -> StorageResult<()> {
        let n = self.exec(
            "UPDATE users SET disabled_at = $2 WHERE id = $1",
            &[&user_id, &at.map(ms)],
        )?;
        if n == 0 {
            return Err(StorageError::NotFound {
                what: "user",
                id: user_id,
            });
        }
        Ok(())
    }

    fn set_session_second_factor(
        &mut self,
        token_hash: &SecretHash,
        at: DateTime<Utc>,
    ) -> StorageResult<()> {
        self.exec(
            "UPDATE sessions SET second_factor_at = $2 WHERE token_hash = $1",
            &[&token_hash.as_slice(), &ms(at)],
        )?;
        Ok(())
    }

    fn delete_user_sessions_except(
        &mut self,
        user_id: Uuid,
        keep: &SecretHash,
    ) -> StorageResult<u64> {
        self.exec(
            "DELETE FROM sessions WHERE user_id = $1 AND token_hash <> $2",
            &[&user_id, &keep.as_slice()],
        )
    }

    fn revoke_user_sessions(&mut self, user_id: Uuid) -> StorageResult<u64> {
        let n = self.exec("DELETE FROM sessions WHERE user_id = $1", &[&user_id])?;
        self.exec(
            "DELETE FROM login_challenges WHERE user_id = $1",
            &[&user_id],
        )?;
        Ok(n)
    }

    fn insert_login_challenge(&mut self, challenge: &LoginChallenge) -> StorageResult<()> {
        self.exec(
            "INSERT INTO login_challenges (token_hash, user_id, created_at, expires_at)
             VALUES ($1, $2, $3, $4)",
            &[
                &challenge.token_hash.as_slice(),
                &challenge.user_id,
                &ms(challenge.created_at),
                &ms(challenge.expires_at),
            ],
        )?;
        Ok(())
    }

    fn delete_login_challenge(&mut self, token_hash: &SecretHash) -> StorageResult<()> {
        self.exec(
            "DELETE FROM login_challenges WHERE token_hash = $1",
            &[&token_hash.as_slice()],
        )?;
        Ok(())
    }

    fn delete_login_challenges(&mut self, user_id: Uuid, now: DateTime<Utc>) -> StorageResult<()> {
        self.exec(
            "DELETE FROM login_challenges WHERE user_id = $1 OR expires_at <= $2",
            &[&user_id, &ms(now)],
        )?;
        Ok(())
    }

    fn put_pending_totp(
        &mut self,
        user_id: Uuid,
        secret: &[u8],
        at: DateTime<Utc>,
    ) -> StorageResult<bool> {
        let n = self.exec(
            "INSERT INTO user_totp (user_id, secret, created_at, confirmed_at, last_step)
             VALUES ($1, $2, $3, NULL, 0)
             ON CONFLICT (user_id) DO UPDATE SET
                secret = excluded.secret, created_at = excluded.created_at, last_step = 0
              WHERE user_totp.confirmed_at IS NULL",
            &[&user_id, &secret, &ms(at)],
        )?;
        Ok(n > 0)
    }

    fn confirm_totp(&mut self, user_id: Uuid, step: u64, at: DateTime<Utc>) -> StorageResult<bool> {
        let n = self.exec(
            "UPDATE user_totp SET confirmed_at = $2, last_step = $3
              WHERE user_id = $1 AND confirmed_at IS NULL",
            &[&user_id, &ms(at), &to_i64(step)],
        )?;
        Ok(n > 0)
    }

    fn advance_totp_step(&mut self, user_id: Uuid, step: u64) -> StorageResult<bool> {
        let n = self.exec(
            "UPDATE user_totp SET last_step = $2
              WHERE user_id = $1 AND confirmed_at IS NOT NULL AND last_step < $2",
            &[&user_id, &to_i64(step)],
        )?;
        Ok(n > 0)
    }

    fn delete_totp(&mut self, user_id: Uuid) -> StorageResult<()> {
        self.exec("DELETE FROM user_totp WHERE user_id = $1", &[&user_id])?;
        self.exec("DELETE FROM recovery_codes WHERE user_id = $1", &[&user_id])?;
        Ok(())
    }

    fn replace_recovery_codes(
        &mut self,
        user_id: Uuid,
        code_hashes: &[SecretHash],
        at: DateTime<Utc>,
    ) -> StorageResult<()> {
        self.exec("DELETE FROM recovery_codes WHERE user_id = $1", &[&user_id])?;
        for hash in code_hashes {
            self.exec(
                "INSERT INTO recovery_codes (user_id, code_hash, created_at) VALUES ($1, $2, $3)",
                &[&user_id, &hash.as_slice(), &ms(at)],
            )?;
        }
        Ok(())
    }

    fn use_recovery_code(
        &mut self,
        user_id: Uuid,
        code_hash: &SecretHash,
        at: DateTime<Utc>,
    ) -> StorageResult<bool> {
        let n = self.exec(
            "UPDATE recovery_codes SET used_at = $3
              WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL",
            &[&user_id, &code_hash.as_slice(), &ms(at)],
        )?;
        Ok(n > 0)
    }
}

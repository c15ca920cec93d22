//! Break-the-glass for tablets (protocol 8; docs/sync-protocol.md, "Break-the-glass"): a
//! team member asks from their tablet to read one young person's file outside their team,
//! with a reason; access is granted at once for a limited time, journaled in both
//! organisations and shown to the coordination of the team holding the file. While it
//! lasts the file is lent whole, read-only, in the answer that ends each sync; the tablet
//! deletes it at expiry by its own clock, or when an answer no longer lends it.

use chrono::{DateTime, Duration, Utc};
use repere_core::RecordKind;
use repere_core::sync::protocol::{
    ACCESS_MINUTES, ACCESS_REASON_CHARS, AccessAnswer, AccessOutcome, AccessRefusal, AccessRequest,
    LentFile, LentRecord, MAX_ACCESS_REQUESTS,
};
use uuid::Uuid;

use super::HubError;
use crate::coord::audit;
use crate::coord::short_id;
use crate::storage::{AccessGrant, AuditEntry, Device, Grantee, ReadTx, Tx};

/// Files lent to one tablet at once (the newest grants).
const MAX_LENT: usize = 20;

/// The records of a lent file: the young person's and what is about them, visits included.
fn lent_kind(kind: RecordKind) -> bool {
    matches!(
        kind,
        RecordKind::Youth | RecordKind::Contact | RecordKind::Action | RecordKind::Outcome
    )
}

/// Checks a break-the-glass request's reason and duration; the trimmed reason.
pub fn check_request(reason: &str, minutes: u32) -> Result<&str, AccessRefusal> {
    let reason = reason.trim();
    if !ACCESS_REASON_CHARS.contains(&reason.chars().count()) {
        return Err(AccessRefusal::BadReason);
    }
    if !ACCESS_MINUTES.contains(&minutes) {
        return Err(AccessRefusal::BadDuration);
    }
    Ok(reason)
}

/// One journal row in each organisation concerned: the reader's and the file's (ids and
/// fixed words only; the reason stays in the grant, shown to the file's coordination).
pub(crate) fn journal_both_sides(
    tx: &mut dyn Tx,
    reader_organisation: Uuid,
    author: Option<Uuid>,
    action: &'static str,
    grant: &AccessGrant,
    now: DateTime<Utc>,
) -> Result<(), HubError> {
    let reader = match grant.grantee {
        Grantee::User(user) => format!("compte {}", short_id(user)),
        Grantee::Device { device_id, .. } => format!("tablette {}", short_id(device_id)),
    };
    let minutes = (grant.expires_at - grant.granted_at).num_minutes();
    let detail = format!(
        "accès exceptionnel {} : {reader}, fiche de l'équipe {}, {minutes} min",
        short_id(grant.id),
        short_id(grant.team_id)
    );
    let mut organisations = vec![reader_organisation];
    if let Some(team) = tx.team(grant.team_id)?
        && team.organisation_id != reader_organisation
    {
        organisations.push(team.organisation_id);
    }
    for organisation_id in organisations {
        tx.insert_audit(&AuditEntry {
            id: 0,
            at: now,
            organisation_id: Some(organisation_id),
            user_id: author,
            action: action.to_string(),
            target_id: Some(grant.youth_id),
            detail: detail.clone(),
        })?;
    }
    Ok(())
}

/// Answers a tablet's requests inside its sync's transaction. A request id already
/// granted to this tablet is answered as the first time (a lost answer grants nothing
/// twice); an id another tablet used is answered as an unknown file.
pub(crate) fn answer(
    tx: &mut dyn Tx,
    device: &Device,
    requests: &[AccessRequest],
    now: DateTime<Utc>,
) -> Result<Vec<AccessAnswer>, HubError> {
    let mut answers = Vec::with_capacity(requests.len());
    for (i, request) in requests.iter().enumerate() {
        let outcome = if i >= MAX_ACCESS_REQUESTS {
            AccessOutcome::Refused(AccessRefusal::TooMany)
        } else {
            answer_one(tx, device, request, now)?
        };
        answers.push(AccessAnswer {
            id: request.id,
            outcome,
        });
    }
    Ok(answers)
}

fn answer_one(
    tx: &mut dyn Tx,
    device: &Device,
    request: &AccessRequest,
    now: DateTime<Utc>,
) -> Result<AccessOutcome, HubError> {
    if let Some(known) = tx.access_grant(request.id)? {
        return Ok(match known.grantee {
            Grantee::Device { device_id, .. } if device_id == device.id => AccessOutcome::Granted {
                expires_at_ms: known.expires_at.timestamp_millis(),
            },
            _ => AccessOutcome::Refused(AccessRefusal::UnknownFile),
        });
    }
    let reason = match check_request(&request.reason, request.minutes) {
        Ok(reason) => reason,
        Err(refusal) => return Ok(AccessOutcome::Refused(refusal)),
    };
    let Some(youth) = tx
        .document(request.youth_id)?
        .filter(|d| d.kind == RecordKind::Youth)
    else {
        return Ok(AccessOutcome::Refused(AccessRefusal::UnknownFile));
    };
    if youth.team_id == device.team_id {
        return Ok(AccessOutcome::Refused(AccessRefusal::OwnTeam));
    }
    let grant = AccessGrant {
        id: request.id,
        youth_id: youth.id,
        team_id: youth.team_id,
        grantee: Grantee::Device {
            device_id: device.id,
            member_id: request.member_id,
        },
        reason: reason.to_string(),
        granted_at: now,
        expires_at: now + Duration::minutes(i64::from(request.minutes)),
        ended_at: None,
        ended_by: None,
    };
    tx.insert_access_grant(&grant)?;
    journal_both_sides(
        tx,
        device.organisation_id,
        None,
        audit::BREAK_GLASS_GRANTED,
        &grant,
        now,
    )?;
    tracing::warn!(grant = %grant.id, device = %device.id, record = %youth.id, "break-the-glass access granted to a tablet");
    Ok(AccessOutcome::Granted {
        expires_at_ms: grant.expires_at.timestamp_millis(),
    })
}

/// Every file lent to the tablet now: its active grants' files, whole. A file that came
/// into the tablet's own team since is not lent: the tablet pulls it as its own.
pub(crate) fn lent(
    tx: &mut dyn ReadTx,
    device: &Device,
    now: DateTime<Utc>,
) -> Result<Vec<LentFile>, HubError> {
    let grantee = Grantee::Device {
        device_id: device.id,
        member_id: Uuid::nil(),
    };
    let mut files = Vec::new();
    for grant in tx.access_grants_to(grantee, MAX_LENT)? {
        if !grant.active(now) {
            continue;
        }
        let Some(youth) = tx
            .document(grant.youth_id)?
            .filter(|d| d.kind == RecordKind::Youth && d.team_id != device.team_id)
        else {
            continue;
        };
        let team_name = tx
            .team(youth.team_id)?
            .map_or_else(|| "équipe inconnue".to_string(), |t| t.name);
        let mut records = vec![youth];
        records.extend(
            tx.records_of_youth(grant.youth_id)?
                .into_iter()
                .filter(|d| lent_kind(d.kind)),
        );
        files.push(LentFile {
            grant_id: grant.id,
            youth_id: grant.youth_id,
            team_name,
            expires_at_ms: grant.expires_at.timestamp_millis(),
            records: records
                .into_iter()
                .map(|d| LentRecord {
                    id: d.id,
                    kind: d.kind.into(),
                    fields: d.fields.unwrap_or_default(),
                })
                .collect(),
        });
    }
    Ok(files)
}

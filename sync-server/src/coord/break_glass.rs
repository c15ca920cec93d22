//! Break-the-glass on the pages (issue 12): a coordinator who must read a young person's
//! file outside their organisation (an emergency, a shared case) gives its reference and a
//! reason, and reads it at once, read-only, for a limited time (2 hours by default). It
//! needs a second factor; every grant, reading and early end is journaled in both
//! organisations, and the coordination of the team holding the file sees each grant with
//! its reason and may end it. Tablets ask the same through the sync (`hub::lend`); their
//! grants are listed here too.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use repere_core::RecordKind;
use repere_core::sync::protocol::AccessRefusal;
use uuid::Uuid;

use super::audit;
use super::view::YouthDetail;
use super::{Coordinator, Workspace, accounts, short_id};
use crate::hub::HubError;
use crate::hub::lend::{check_request, journal_both_sides};
use crate::storage::{AccessGrant, Grantee, ReadTx};

/// Grants listed per side on the page (the newest).
const LISTED: usize = 200;

/// A grant as the page lists it, for one coordinator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantItem {
    pub grant: AccessGrant,
    /// The young person's name for the holding team's coordination and, while it lasts,
    /// for the reader; else only a short id.
    pub youth_label: String,
    pub holding_team: String,
    /// Who reads: an account by name, or a tablet and the member it declared.
    pub reader: String,
    pub reader_organisation: String,
    /// The file is one of the coordinator's teams'.
    pub incoming: bool,
    pub active: bool,
}

/// What a grant's page shows its reader.
#[derive(Debug, Clone)]
pub enum LentPage {
    /// The file, read-only, until the grant ends.
    Open {
        item: GrantItem,
        detail: Box<YouthDetail>,
    },
    /// Expired or ended: nothing more is shown.
    Over(GrantItem),
}

fn refused(refusal: AccessRefusal) -> HubError {
    HubError::BadInput(refusal.message().into())
}

impl Workspace {
    /// Grants the coordinator read access to the file `youth_id` for `minutes`; the
    /// grant's id. An access to the same file still running is returned as it is.
    pub fn break_glass(
        &self,
        who: &Coordinator,
        youth_id: Uuid,
        reason: &str,
        minutes: u32,
    ) -> Result<Uuid, HubError> {
        if !accounts::may_export_names(who) {
            return Err(HubError::BadInput(
                "Un accès exceptionnel demande une connexion confirmée par la double \
                 authentification : activez-la dans « Mon compte », puis reconnectez-vous."
                    .into(),
            ));
        }
        let reason = check_request(reason, minutes).map_err(refused)?;
        let now = self.now();
        let id = self
            .hub()
            .storage()
            .write_with(|tx| -> Result<Uuid, HubError> {
                let youth = tx
                    .document(youth_id)?
                    .filter(|d| d.kind == RecordKind::Youth)
                    .ok_or_else(|| refused(AccessRefusal::UnknownFile))?;
                if who.in_scope(youth.team_id) {
                    return Err(HubError::BadInput(
                        "Cette fiche est dans votre périmètre : ouvrez-la depuis la liste des \
                         jeunes."
                            .into(),
                    ));
                }
                let running = tx
                    .access_grants_to(Grantee::User(who.user.id), LISTED)?
                    .into_iter()
                    .find(|g| g.youth_id == youth_id && g.active(now));
                if let Some(running) = running {
                    return Ok(running.id);
                }
                let grant = AccessGrant {
                    id: Uuid::now_v7(),
                    youth_id,
                    team_id: youth.team_id,
                    grantee: Grantee::User(who.user.id),
                    reason: reason.to_string(),
                    granted_at: now,
                    expires_at: now + Duration::minutes(i64::from(minutes)),
                    ended_at: None,
                    ended_by: None,
                };
                tx.insert_access_grant(&grant)?;
                journal_both_sides(
                    tx,
                    who.organisation.id,
                    Some(who.user.id),
                    audit::BREAK_GLASS_GRANTED,
                    &grant,
                    now,
                )?;
                Ok(grant.id)
            })?;
        tracing::warn!(grant = %id, user = %who.user.id, record = %youth_id, "break-the-glass access granted on the pages");
        Ok(id)
    }

    /// The grants on the coordinator's teams' files, and the coordinator's own, newest
    /// first.
    pub fn access_grants(
        &self,
        who: &Coordinator,
    ) -> Result<(Vec<GrantItem>, Vec<GrantItem>), HubError> {
        let now = self.now();
        self.hub().storage().read_with(|tx| -> Result<_, HubError> {
            let names = Names::load(tx)?;
            let incoming = tx.access_grants_on(&who.team_ids(), LISTED)?;
            let outgoing = tx.access_grants_to(Grantee::User(who.user.id), LISTED)?;
            let incoming = incoming
                .into_iter()
                .map(|g| item(tx, who, &names, g, now))
                .collect::<Result<_, _>>()?;
            let outgoing = outgoing
                .into_iter()
                .map(|g| item(tx, who, &names, g, now))
                .collect::<Result<_, _>>()?;
            Ok((incoming, outgoing))
        })
    }

    /// The file lent by one of the coordinator's grants (`None`: not theirs, or the file
    /// is gone). Each opening is journaled in both organisations.
    pub fn lent_file(&self, who: &Coordinator, id: Uuid) -> Result<Option<LentPage>, HubError> {
        let now = self.now();
        let found = self
            .hub()
            .storage()
            .read_with(|tx| -> Result<_, HubError> {
                let Some(grant) = tx
                    .access_grant(id)?
                    .filter(|g| g.grantee == Grantee::User(who.user.id))
                else {
                    return Ok(None);
                };
                let Some(team) = tx.team(grant.team_id)? else {
                    return Ok(None);
                };
                let Some(organisation) = tx.organisation(team.organisation_id)? else {
                    return Ok(None);
                };
                let names = Names::load(tx)?;
                let item = item(tx, who, &names, grant, now)?;
                Ok(Some((item, team, organisation)))
            })?;
        let Some((item, team, organisation)) = found else {
            return Ok(None);
        };
        if !item.active {
            return Ok(Some(LentPage::Over(item)));
        }
        // Read as the holding team's coordination would, without its rights: the page
        // built from it offers no action.
        let reader = Coordinator {
            user: who.user.clone(),
            organisation,
            teams: vec![team],
            second_factor: who.second_factor,
        };
        let Some(detail) = self.youth_detail(&reader, item.grant.youth_id)? else {
            return Ok(None);
        };
        self.hub()
            .storage()
            .write_with(|tx| -> Result<(), HubError> {
                journal_both_sides(
                    tx,
                    who.organisation.id,
                    Some(who.user.id),
                    audit::BREAK_GLASS_VIEWED,
                    &item.grant,
                    now,
                )
            })?;
        Ok(Some(LentPage::Open {
            item,
            detail: Box::new(detail),
        }))
    }

    /// Ends a grant before its time: by its reader, or by the coordination of the team
    /// holding the file. A tablet's copy goes at its next sync.
    pub fn end_access_grant(&self, who: &Coordinator, id: Uuid) -> Result<(), HubError> {
        let now = self.now();
        self.hub()
            .storage()
            .write_with(|tx| -> Result<(), HubError> {
                let grant = tx
                    .access_grant(id)?
                    .filter(|g| g.grantee == Grantee::User(who.user.id) || who.in_scope(g.team_id))
                    .ok_or(HubError::NotFound {
                        what: "access grant",
                        id,
                    })?;
                if !grant.active(now) || !tx.end_access_grant(id, who.user.id, now)? {
                    return Err(HubError::BadInput(
                        "Cet accès exceptionnel a déjà pris fin.".into(),
                    ));
                }
                let reader_organisation = reader_organisation(tx, &grant)?;
                journal_both_sides(
                    tx,
                    reader_organisation.unwrap_or(who.organisation.id),
                    Some(who.user.id),
                    audit::BREAK_GLASS_ENDED,
                    &grant,
                    now,
                )
            })?;
        tracing::info!(grant = %id, "break-the-glass access ended early");
        Ok(())
    }
}

fn reader_organisation(tx: &mut dyn ReadTx, g: &AccessGrant) -> Result<Option<Uuid>, HubError> {
    Ok(match g.grantee {
        Grantee::User(user) => tx
            .users()?
            .into_iter()
            .find(|u| u.id == user)
            .map(|u| u.organisation_id),
        Grantee::Device { device_id, .. } => tx.device(device_id)?.map(|d| d.organisation_id),
    })
}

/// Names looked up once per page.
struct Names {
    users: HashMap<Uuid, (String, Uuid)>,
    organisations: HashMap<Uuid, String>,
    teams: HashMap<Uuid, String>,
}

impl Names {
    fn load(tx: &mut dyn ReadTx) -> Result<Names, HubError> {
        Ok(Names {
            users: tx
                .users()?
                .into_iter()
                .map(|u| (u.id, (u.name, u.organisation_id)))
                .collect(),
            organisations: tx
                .organisations()?
                .into_iter()
                .map(|o| (o.id, o.name))
                .collect(),
            teams: tx.teams()?.into_iter().map(|t| (t.id, t.name)).collect(),
        })
    }

    fn organisation(&self, id: Option<Uuid>) -> String {
        id.and_then(|id| self.organisations.get(&id).cloned())
            .unwrap_or_else(|| "organisation inconnue".into())
    }
}

fn item(
    tx: &mut dyn ReadTx,
    who: &Coordinator,
    names: &Names,
    grant: AccessGrant,
    now: DateTime<Utc>,
) -> Result<GrantItem, HubError> {
    let active = grant.active(now);
    let incoming = who.in_scope(grant.team_id);
    let (reader, reader_org) = match grant.grantee {
        Grantee::User(user) => match names.users.get(&user) {
            Some((name, org)) => (name.clone(), Some(*org)),
            None => (format!("compte {}", short_id(user)), None),
        },
        Grantee::Device {
            device_id,
            member_id,
        } => {
            let device = tx.device(device_id)?;
            let member = tx
                .team_member(member_id)?
                .map_or_else(|| "membre non déclaré".to_string(), |m| m.display_name);
            let tablet = device.as_ref().map_or_else(
                || format!("tablette {}", short_id(device_id)),
                |d| format!("tablette « {} »", d.label),
            );
            (
                format!("{member} ({tablet})"),
                device.map(|d| d.organisation_id),
            )
        }
    };
    let mine = grant.grantee == Grantee::User(who.user.id);
    let named = incoming || (mine && active);
    let youth_label = named
        .then(|| crate::coord::transfer::youth_name(tx, grant.youth_id))
        .transpose()?
        .flatten()
        .unwrap_or_else(|| format!("Jeune {}", short_id(grant.youth_id)));
    Ok(GrantItem {
        youth_label,
        holding_team: names
            .teams
            .get(&grant.team_id)
            .cloned()
            .unwrap_or_else(|| "équipe inconnue".into()),
        reader,
        reader_organisation: names.organisation(reader_org),
        incoming,
        active,
        grant,
    })
}

//! Administration over the same storage: organisations, teams, users, enrolment codes,
//! devices. Used by `repere-server admin …`, the demo seeding and the tests.

use chrono::Duration;
use uuid::Uuid;

use crate::coord::audit::{self, Audit};
use crate::hub::{Hub, HubError};
use crate::secret;
use crate::storage::{
    Device, EnrolmentCode, Organisation, Role, Team, TeamCounts, TeamMember, User, WipeOrder,
};

/// How long an enrolment code stays valid unless told otherwise.
pub const DEFAULT_CODE_TTL: Duration = Duration::days(7);
/// Codes longer-lived than this are refused: a code is for a tablet being set up now.
pub const MAX_CODE_TTL: Duration = Duration::days(90);
const NAME_MAX_CHARS: usize = 200;

/// An organisation with its teams and their figures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrganisationOverview {
    pub organisation: Organisation,
    pub teams: Vec<(Team, TeamCounts)>,
    pub users: usize,
}

/// A freshly issued code: the code itself is shown once and never stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedCode {
    pub code: String,
    pub stored: EnrolmentCode,
}

pub(crate) fn clean_name(what: &str, name: &str) -> Result<String, HubError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(HubError::BadInput(format!("the {what} name is empty")));
    }
    if name.chars().count() > NAME_MAX_CHARS {
        return Err(HubError::BadInput(format!(
            "the {what} name is longer than {NAME_MAX_CHARS} characters"
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(HubError::BadInput(format!(
            "the {what} name contains control characters"
        )));
    }
    Ok(name.to_string())
}

/// A display name shown on tablets: one line, bounded. Personal data: never in an error.
fn clean_display_name(name: &str) -> Result<String, HubError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > DISPLAY_NAME_MAX_CHARS {
        return Err(HubError::BadInput(format!(
            "a member's display name has 1 to {DISPLAY_NAME_MAX_CHARS} characters"
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(HubError::BadInput(
            "a member's display name contains control characters".into(),
        ));
    }
    Ok(name.to_string())
}

/// Display names stay short: a first name, perhaps an initial.
pub const DISPLAY_NAME_MAX_CHARS: usize = 60;

impl Hub {
    /// Adds a member to a team's roster (sent to its tablets at their next sync).
    pub fn add_member(&self, team_id: Uuid, display_name: &str) -> Result<TeamMember, HubError> {
        let display_name = clean_display_name(display_name)?;
        let now = self.now();
        let member = self.storage().write_with(|tx| -> Result<_, HubError> {
            if tx.team(team_id)?.is_none() {
                return Err(HubError::NotFound {
                    what: "team",
                    id: team_id,
                });
            }
            let mut member = TeamMember {
                id: Uuid::now_v7(),
                team_id,
                display_name: display_name.clone(),
                active: true,
                changed_at: now,
                seq: 0,
            };
            member.seq = tx.put_team_member(&member)?;
            Ok(member)
        })?;
        tracing::info!(member = %member.id, team = %team_id, "team member added");
        Ok(member)
    }

    /// Renames a member (the tablets show the new name on every record).
    pub fn rename_member(&self, id: Uuid, display_name: &str) -> Result<TeamMember, HubError> {
        let display_name = clean_display_name(display_name)?;
        self.change_member(id, "renamed", |m| m.display_name.clone_from(&display_name))
    }

    /// Marks a member inactive (left the team) or active again. Inactive members still
    /// name their past records on the tablets but are no longer offered for new ones.
    pub fn set_member_active(&self, id: Uuid, active: bool) -> Result<TeamMember, HubError> {
        let what = if active { "reactivated" } else { "deactivated" };
        self.change_member(id, what, |m| m.active = active)
    }

    fn change_member(
        &self,
        id: Uuid,
        what: &'static str,
        change: impl Fn(&mut TeamMember),
    ) -> Result<TeamMember, HubError> {
        let now = self.now();
        let member = self.storage().write_with(|tx| -> Result<_, HubError> {
            let mut member = tx.team_member(id)?.ok_or(HubError::NotFound {
                what: "team member",
                id,
            })?;
            change(&mut member);
            member.changed_at = now;
            member.seq = tx.put_team_member(&member)?;
            Ok(member)
        })?;
        tracing::info!(member = %id, team = %member.team_id, "team member {what}");
        Ok(member)
    }

    /// A team's roster, by name.
    pub fn members(&self, team_id: Uuid) -> Result<Vec<TeamMember>, HubError> {
        self.storage()
            .read_with(|tx| Ok::<_, HubError>(tx.team_members(team_id)?))
    }

    pub fn create_organisation(&self, name: &str) -> Result<Organisation, HubError> {
        let org = Organisation {
            id: Uuid::now_v7(),
            name: clean_name("organisation", name)?,
            created_at: self.now(),
        };
        self.storage().write_with(|tx| -> Result<(), HubError> {
            tx.insert_organisation(&org)?;
            let audit =
                Audit::administration(org.id, None, audit::ORGANISATION_CREATED, org.id, "");
            tx.insert_audit(&audit.entry(org.created_at))?;
            Ok(())
        })?;
        tracing::info!(organisation = %org.id, "organisation created");
        Ok(org)
    }

    pub fn create_team(&self, organisation_id: Uuid, name: &str) -> Result<Team, HubError> {
        self.create_team_by(organisation_id, name, None)
    }

    /// A new team, journaled in its organisation (`author`: the administrator on the
    /// pages, `None` for `repere-server admin`).
    pub fn create_team_by(
        &self,
        organisation_id: Uuid,
        name: &str,
        author: Option<Uuid>,
    ) -> Result<Team, HubError> {
        let team = Team {
            id: Uuid::now_v7(),
            organisation_id,
            name: clean_name("team", name)?,
            created_at: self.now(),
        };
        self.storage().write_with(|tx| -> Result<(), HubError> {
            tx.insert_team(&team)?;
            let audit =
                Audit::administration(organisation_id, author, audit::TEAM_CREATED, team.id, "");
            tx.insert_audit(&audit.entry(team.created_at))?;
            Ok(())
        })?;
        tracing::info!(team = %team.id, organisation = %organisation_id, "team created");
        Ok(team)
    }

    pub fn create_user(
        &self,
        organisation_id: Uuid,
        name: &str,
        role: Role,
    ) -> Result<User, HubError> {
        self.create_user_by(organisation_id, name, role, None, None)
    }

    /// A user with a login for the coordinators' pages (then `set_password`).
    pub fn create_user_with_login(
        &self,
        organisation_id: Uuid,
        name: &str,
        role: Role,
        login: Option<&str>,
    ) -> Result<User, HubError> {
        self.create_user_by(organisation_id, name, role, login, None)
    }

    /// A new user, with a login if given, journaled in its organisation (its role; never
    /// the name or the login). `author` as for [`Hub::create_team_by`].
    pub fn create_user_by(
        &self,
        organisation_id: Uuid,
        name: &str,
        role: Role,
        login: Option<&str>,
        author: Option<Uuid>,
    ) -> Result<User, HubError> {
        let login = login
            .map(|login| {
                let login = crate::coord::auth::normalize_login(login);
                if login.is_empty() || login.chars().any(|c| c.is_control() || c.is_whitespace()) {
                    return Err(HubError::BadInput(
                        "a login must not be empty nor contain spaces".into(),
                    ));
                }
                Ok(login)
            })
            .transpose()?;
        let user = User {
            id: Uuid::now_v7(),
            organisation_id,
            name: clean_name("user", name)?,
            role,
            created_at: self.now(),
        };
        self.storage().write_with(|tx| -> Result<(), HubError> {
            tx.insert_user(&user)?;
            if let Some(login) = &login {
                tx.set_login(user.id, Some(login))?;
            }
            let audit = Audit::administration(
                organisation_id,
                author,
                audit::USER_CREATED,
                user.id,
                format!("rôle {}", role.as_str()),
            );
            tx.insert_audit(&audit.entry(user.created_at))?;
            Ok(())
        })?;
        tracing::info!(user = %user.id, organisation = %organisation_id, role = role.as_str(), "user created");
        Ok(user)
    }

    /// Every user with their login (no password hashes).
    pub fn logins(&self) -> Result<Vec<(User, Option<String>, bool)>, HubError> {
        self.storage().read_with(|tx| -> Result<_, HubError> {
            let mut out = Vec::new();
            for user in tx.users()? {
                if let Some(c) = tx.credentials(user.id)? {
                    out.push((user, c.login, c.password_hash.is_some()));
                }
            }
            Ok(out)
        })
    }

    /// A new one-time enrolment code for a team, valid for `ttl`.
    pub fn issue_code(&self, team_id: Uuid, ttl: Duration) -> Result<IssuedCode, HubError> {
        self.issue_code_by(team_id, ttl, None)
    }

    /// [`Hub::issue_code`], journaled in the team's organisation (the team and the expiry;
    /// never the code). `author` as for [`Hub::create_team_by`].
    pub fn issue_code_by(
        &self,
        team_id: Uuid,
        ttl: Duration,
        author: Option<Uuid>,
    ) -> Result<IssuedCode, HubError> {
        if ttl <= Duration::zero() || ttl > MAX_CODE_TTL {
            return Err(HubError::BadInput(format!(
                "a code's lifetime must be positive and at most {} days",
                MAX_CODE_TTL.num_days()
            )));
        }
        let code = secret::new_code()?;
        let canonical = secret::normalize_code(&code)
            .ok_or_else(|| HubError::Internal("generated code does not normalize".into()))?;
        let now = self.now();
        let stored = EnrolmentCode {
            code_hash: secret::code_hash(&canonical),
            team_id,
            created_at: now,
            expires_at: now + ttl,
            used_at: None,
            device_id: None,
        };
        self.storage().write_with(|tx| -> Result<(), HubError> {
            let team = tx.team(team_id)?.ok_or(HubError::NotFound {
                what: "team",
                id: team_id,
            })?;
            tx.insert_enrolment_code(&stored)?;
            let audit = Audit::administration(
                team.organisation_id,
                author,
                audit::CODE_ISSUED,
                team_id,
                format!(
                    "valable jusqu'au {}",
                    stored.expires_at.format("%Y-%m-%d %H:%M UTC")
                ),
            );
            tx.insert_audit(&audit.entry(now))?;
            Ok(())
        })?;
        tracing::info!(team = %team_id, expires_at = %stored.expires_at, "enrolment code issued");
        Ok(IssuedCode { code, stored })
    }

    pub fn devices(&self, team_id: Option<Uuid>) -> Result<Vec<Device>, HubError> {
        self.storage()
            .read_with(|tx| Ok::<_, HubError>(tx.devices(team_id)?))
    }

    /// Refuses the device's token from now on. Its unsent changes stay on the tablet.
    pub fn revoke_device(&self, device_id: Uuid) -> Result<Device, HubError> {
        self.revoke_device_with(device_id, None)
    }

    /// Revokes the device and, with `wipe`, orders it to delete its store at its next
    /// contact (after sending its unsent changes, unless the order is urgent).
    pub fn revoke_device_with(
        &self,
        device_id: Uuid,
        wipe: Option<WipeOrder>,
    ) -> Result<Device, HubError> {
        self.revoke_device_by(device_id, wipe, None)
    }

    /// [`Hub::revoke_device_with`], journaled in the device's organisation (the device and
    /// the wipe order). `author` as for [`Hub::create_team_by`].
    pub fn revoke_device_by(
        &self,
        device_id: Uuid,
        wipe: Option<WipeOrder>,
        author: Option<Uuid>,
    ) -> Result<Device, HubError> {
        let now = self.now();
        let device = self.storage().write_with(|tx| -> Result<_, HubError> {
            if !tx.revoke_device(device_id, now)? {
                return Err(HubError::NotFound {
                    what: "device",
                    id: device_id,
                });
            }
            if let Some(order) = wipe {
                tx.order_wipe(device_id, order)?;
            }
            let device = tx.device(device_id)?.ok_or(HubError::NotFound {
                what: "device",
                id: device_id,
            })?;
            let audit = Audit::administration(
                device.organisation_id,
                author,
                audit::DEVICE_REVOKED,
                device_id,
                match wipe {
                    None => "sans effacement",
                    Some(WipeOrder::AfterPush) => "effacement après envoi",
                    Some(WipeOrder::Urgent) => "effacement urgent",
                },
            );
            tx.insert_audit(&audit.entry(now))?;
            Ok(device)
        })?;
        tracing::info!(device = %device_id, wipe = ?wipe, "device revoked");
        Ok(device)
    }

    pub fn users(&self) -> Result<Vec<User>, HubError> {
        self.storage()
            .read_with(|tx| Ok::<_, HubError>(tx.users()?))
    }

    /// Whether no organisation exists yet (a fresh database).
    pub fn is_empty(&self) -> Result<bool, HubError> {
        self.storage()
            .read_with(|tx| Ok::<_, HubError>(tx.organisations()?.is_empty()))
    }

    pub fn overview(&self) -> Result<Vec<OrganisationOverview>, HubError> {
        self.storage().read_with(|tx| -> Result<_, HubError> {
            let users = tx.users()?;
            let teams = tx.teams()?;
            let mut out = Vec::new();
            for organisation in tx.organisations()? {
                let mut org_teams = Vec::new();
                for team in teams
                    .iter()
                    .filter(|t| t.organisation_id == organisation.id)
                {
                    org_teams.push((team.clone(), tx.team_counts(team.id)?));
                }
                out.push(OrganisationOverview {
                    users: users
                        .iter()
                        .filter(|u| u.organisation_id == organisation.id)
                        .count(),
                    organisation,
                    teams: org_teams,
                });
            }
            Ok(out)
        })
    }
}

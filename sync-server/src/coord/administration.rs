//! What an administrator does from the pages (issue 12): the consortium's organisations,
//! their organisation's teams, user accounts, tablets and enrolment codes. Each action
//! calls the same `Hub` function as the `repere-server admin` command, with the
//! administrator as the journal line's author.
//!
//! **Scope.** Only a signed-in user with the `admin` role gets here (`Unauthorized`
//! otherwise, shown as 403); they act on their own organisation only, and a team, user or
//! tablet of another organisation answers exactly like an unknown id (`NotFound`, 404).
//! The one exception is the consortium itself (docs/ARCHITECTURE.md: the organisations on
//! this server): an administrator sees every organisation's name and size and creates a
//! new organisation with its first administrator, who then runs it; they do not get into it.

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use super::audit::{self, Audit};
use super::auth::hash_password;
use super::reports::random_password;
use super::{Coordinator, Workspace};
use crate::admin::{IssuedCode, OrganisationOverview, clean_name};
use crate::hub::HubError;
use crate::storage::{
    Device, Organisation, ReadTx, Role, StorageError, Team, TeamCounts, User, WipeOrder,
};

/// A user account as the administration pages list it (no secret of any kind).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub user: User,
    pub login: Option<String>,
    pub has_password: bool,
    pub disabled_at: Option<DateTime<Utc>>,
    /// The second factor is set up (confirmed).
    pub second_factor: bool,
    /// Sessions not yet swept (some may be over).
    pub sessions: usize,
}

/// A new account and, for a role that signs in, its first password (shown once).
#[derive(Debug, Clone)]
pub struct NewAccount {
    pub user: User,
    pub password: Option<String>,
}

/// A new organisation and its first administrator, whose password is shown once.
#[derive(Debug, Clone)]
pub struct NewOrganisation {
    pub organisation: Organisation,
    pub admin: User,
    pub login: String,
    pub password: String,
}

fn admin_only(who: &Coordinator) -> Result<(), HubError> {
    if who.user.role == Role::Admin {
        Ok(())
    } else {
        Err(HubError::Unauthorized)
    }
}

fn not_yours(what: &'static str, id: Uuid) -> HubError {
    HubError::NotFound { what, id }
}

impl Workspace {
    /// The consortium's organisations (every organisation on this server), in creation
    /// order, with their teams and how many accounts each has.
    pub fn admin_organisations(
        &self,
        who: &Coordinator,
    ) -> Result<Vec<OrganisationOverview>, HubError> {
        admin_only(who)?;
        self.hub().overview()
    }

    /// Creates an organisation of the consortium with its first administrator (login and
    /// a generated password, returned to be shown once), in one transaction: no
    /// organisation is left without an administrator. Journaled in both organisations
    /// (ids only): the author's, and the new one's, where the new administrator reads who
    /// made their account.
    pub fn admin_create_organisation(
        &self,
        who: &Coordinator,
        name: &str,
        admin_name: &str,
        login: &str,
    ) -> Result<NewOrganisation, HubError> {
        admin_only(who)?;
        let name = clean_name("organisation", name).map_err(|_| {
            HubError::BadInput(
                "Le nom de l'organisation doit avoir de 1 à 200 caractères, sur une ligne.".into(),
            )
        })?;
        let admin_name = clean_name("user", admin_name).map_err(|_| {
            HubError::BadInput(
                "Le nom de l'administrateur doit avoir de 1 à 200 caractères, sur une ligne."
                    .into(),
            )
        })?;
        let login = super::auth::normalize_login(login);
        if login.is_empty() {
            return Err(HubError::BadInput(
                "Le premier administrateur a besoin d'un identifiant.".into(),
            ));
        }
        check_login_fr(&login)?;
        let taken = self
            .hub()
            .storage()
            .read_with(|tx| -> Result<_, HubError> {
                Ok(tx.credentials_by_login(&login)?.is_some())
            })?;
        if taken {
            return Err(login_taken());
        }
        // Hashed before the write transaction: the hash is slow on purpose.
        let password = random_password()?;
        let hash = hash_password(&password)?;
        let now = self.now();
        let organisation = Organisation {
            id: Uuid::now_v7(),
            name,
            created_at: now,
        };
        let admin = User {
            id: Uuid::now_v7(),
            organisation_id: organisation.id,
            name: admin_name,
            role: Role::Admin,
            created_at: now,
        };
        let author = Some(who.user.id);
        self.hub()
            .storage()
            .write_with(|tx| -> Result<(), HubError> {
                if same_name_elsewhere(tx, &organisation.name, None)? {
                    return Err(name_taken());
                }
                tx.insert_organisation(&organisation)?;
                tx.insert_user(&admin)?;
                tx.set_login(admin.id, Some(&login))?;
                tx.set_password_hash(admin.id, &hash, now)?;
                for journal in [who.organisation.id, organisation.id] {
                    let line = Audit::administration(
                        journal,
                        author,
                        audit::ORGANISATION_CREATED,
                        organisation.id,
                        "",
                    );
                    tx.insert_audit(&line.entry(now))?;
                }
                let created =
                    Audit::by_administrator(&admin, author, audit::USER_CREATED, "rôle admin");
                tx.insert_audit(&created.entry(now))?;
                let password_set = Audit::by_administrator(
                    &admin,
                    author,
                    audit::PASSWORD_SET,
                    "0 sessions fermées",
                );
                tx.insert_audit(&password_set.entry(now))?;
                Ok(())
            })
            .map_err(|e| match e {
                // Taken meanwhile by a concurrent creation.
                HubError::Storage(StorageError::Duplicate { .. }) => login_taken(),
                e => e,
            })?;
        tracing::info!(organisation = %organisation.id, user = %admin.id, author = %who.user.id,
            "organisation created with its first administrator");
        Ok(NewOrganisation {
            organisation,
            admin,
            login,
            password,
        })
    }

    /// Renames the administrator's own organisation (journaled without either name).
    pub fn admin_rename_organisation(
        &self,
        who: &Coordinator,
        name: &str,
    ) -> Result<Organisation, HubError> {
        admin_only(who)?;
        let name = clean_name("organisation", name).map_err(french_name_error)?;
        let id = who.organisation.id;
        let now = self.now();
        let renamed = self
            .hub()
            .storage()
            .write_with(|tx| -> Result<_, HubError> {
                if same_name_elsewhere(tx, &name, Some(id))? {
                    return Err(name_taken());
                }
                tx.rename_organisation(id, &name)?;
                let line = Audit::administration(
                    id,
                    Some(who.user.id),
                    audit::ORGANISATION_RENAMED,
                    id,
                    "",
                );
                tx.insert_audit(&line.entry(now))?;
                tx.organisation(id)?.ok_or(HubError::NotFound {
                    what: "organisation",
                    id,
                })
            })?;
        tracing::info!(organisation = %id, author = %who.user.id, "organisation renamed");
        Ok(renamed)
    }

    /// The organisation's teams with their figures.
    pub fn admin_teams(&self, who: &Coordinator) -> Result<Vec<(Team, TeamCounts)>, HubError> {
        admin_only(who)?;
        Ok(self
            .hub()
            .overview()?
            .into_iter()
            .find(|o| o.organisation.id == who.organisation.id)
            .map(|o| o.teams)
            .unwrap_or_default())
    }

    pub fn admin_create_team(&self, who: &Coordinator, name: &str) -> Result<Team, HubError> {
        admin_only(who)?;
        self.hub()
            .create_team_by(who.organisation.id, name, Some(who.user.id))
            .map_err(french_name_error)
    }

    /// The organisation's accounts, in creation order.
    pub fn admin_accounts(&self, who: &Coordinator) -> Result<Vec<Account>, HubError> {
        admin_only(who)?;
        self.hub().storage().read_with(|tx| -> Result<_, HubError> {
            let mut out = Vec::new();
            for user in tx.users()? {
                if user.organisation_id != who.organisation.id {
                    continue;
                }
                let credentials = tx.credentials(user.id)?;
                out.push(Account {
                    login: credentials.as_ref().and_then(|c| c.login.clone()),
                    has_password: credentials.is_some_and(|c| c.password_hash.is_some()),
                    disabled_at: tx.user_disabled_at(user.id)?,
                    second_factor: tx
                        .user_totp(user.id)?
                        .is_some_and(|t| t.confirmed_at.is_some()),
                    sessions: tx.user_sessions(user.id)?.len(),
                    user,
                });
            }
            Ok(out)
        })
    }

    /// One account of the organisation (`NotFound` for another organisation's).
    pub fn admin_account(&self, who: &Coordinator, id: Uuid) -> Result<Account, HubError> {
        self.admin_accounts(who)?
            .into_iter()
            .find(|a| a.user.id == id)
            .ok_or(not_yours("user", id))
    }

    /// Creates an account of the organisation. A coordinator or administrator needs a
    /// login and gets a generated password, returned to be shown once; a field account
    /// (which cannot sign in) needs neither.
    pub fn admin_create_account(
        &self,
        who: &Coordinator,
        name: &str,
        role: Role,
        login: &str,
    ) -> Result<NewAccount, HubError> {
        admin_only(who)?;
        let login = super::auth::normalize_login(login);
        let signs_in = role != Role::Field;
        if signs_in && login.is_empty() {
            return Err(HubError::BadInput(
                "Un compte de coordination ou d'administration a besoin d'un identifiant.".into(),
            ));
        }
        if !login.is_empty() {
            check_login_fr(&login)?;
            let taken = self
                .hub()
                .storage()
                .read_with(|tx| Ok::<_, HubError>(tx.credentials_by_login(&login)?.is_some()))?;
            if taken {
                return Err(login_taken());
            }
        }
        let user = self
            .hub()
            .create_user_by(
                who.organisation.id,
                name,
                role,
                (!login.is_empty()).then_some(login.as_str()),
                Some(who.user.id),
            )
            .map_err(|e| match e {
                // Taken meanwhile by a concurrent creation.
                HubError::Storage(StorageError::Duplicate { .. }) => login_taken(),
                e => french_name_error(e),
            })?;
        let password = if signs_in {
            let password = random_password()?;
            self.hub()
                .set_password_by(user.id, &password, None, Some(who.user.id))?;
            Some(password)
        } else {
            None
        };
        Ok(NewAccount { user, password })
    }

    /// Changes an account's role (not one's own: an administrator cannot lock themself out).
    pub fn admin_set_role(&self, who: &Coordinator, id: Uuid, role: Role) -> Result<(), HubError> {
        let account = self.admin_account(who, id)?;
        not_self(who, id, "changer votre propre rôle")?;
        if role != Role::Field && account.login.is_none() {
            return Err(HubError::BadInput(
                "Ce compte n'a pas d'identifiant : il ne peut pas se connecter aux pages.".into(),
            ));
        }
        self.hub().set_role(id, role, Some(who.user.id))
    }

    /// Disables an account (sign-in refused, sessions ended); not one's own.
    pub fn admin_disable(&self, who: &Coordinator, id: Uuid) -> Result<u64, HubError> {
        self.admin_account(who, id)?;
        not_self(who, id, "désactiver votre propre compte")?;
        self.hub().disable_user_by(id, Some(who.user.id))
    }

    pub fn admin_enable(&self, who: &Coordinator, id: Uuid) -> Result<(), HubError> {
        self.admin_account(who, id)?;
        self.hub().enable_user_by(id, Some(who.user.id))
    }

    pub fn admin_revoke_sessions(&self, who: &Coordinator, id: Uuid) -> Result<u64, HubError> {
        self.admin_account(who, id)?;
        self.hub().revoke_sessions_by(id, Some(who.user.id))
    }

    pub fn admin_reset_second_factor(&self, who: &Coordinator, id: Uuid) -> Result<u64, HubError> {
        self.admin_account(who, id)?;
        self.hub().reset_second_factor_by(id, Some(who.user.id))
    }

    /// A new generated password for an account (its sessions end), to be shown once.
    pub fn admin_reset_password(&self, who: &Coordinator, id: Uuid) -> Result<String, HubError> {
        let account = self.admin_account(who, id)?;
        if account.login.is_none() {
            return Err(HubError::BadInput(
                "Ce compte n'a pas d'identifiant : il ne peut pas se connecter aux pages.".into(),
            ));
        }
        let password = random_password()?;
        self.hub()
            .set_password_by(id, &password, None, Some(who.user.id))?;
        Ok(password)
    }

    /// The organisation's tablets, by team then enrolment.
    pub fn admin_devices(&self, who: &Coordinator) -> Result<Vec<Device>, HubError> {
        admin_only(who)?;
        let mut devices: Vec<Device> = self
            .hub()
            .devices(None)?
            .into_iter()
            .filter(|d| d.organisation_id == who.organisation.id)
            .collect();
        let order = |d: &Device| who.teams.iter().position(|t| t.id == d.team_id);
        devices.sort_by_key(|d| (order(d), d.enrolled_at, d.id));
        Ok(devices)
    }

    /// One tablet of the organisation (`NotFound` for another organisation's).
    pub fn admin_device(&self, who: &Coordinator, id: Uuid) -> Result<Device, HubError> {
        self.admin_devices(who)?
            .into_iter()
            .find(|d| d.id == id)
            .ok_or(not_yours("device", id))
    }

    /// Revokes a tablet of the organisation, with a wipe order if asked.
    pub fn admin_revoke_device(
        &self,
        who: &Coordinator,
        id: Uuid,
        wipe: Option<WipeOrder>,
    ) -> Result<Device, HubError> {
        let device = self.admin_device(who, id)?;
        self.hub()
            .revoke_device_by(device.id, wipe, Some(who.user.id))
    }

    /// A one-time enrolment code for one of the organisation's teams.
    pub fn admin_issue_code(
        &self,
        who: &Coordinator,
        team: Uuid,
        ttl: Duration,
    ) -> Result<IssuedCode, HubError> {
        admin_only(who)?;
        if !who.in_scope(team) {
            return Err(not_yours("team", team));
        }
        self.hub()
            .issue_code_by(team, ttl, Some(who.user.id))
            .map_err(|e| match e {
                HubError::BadInput(_) => HubError::BadInput(format!(
                    "La durée de validité va de 1 heure à {} jours.",
                    crate::admin::MAX_CODE_TTL.num_days()
                )),
                e => e,
            })
    }
}

fn not_self(who: &Coordinator, id: Uuid, what: &str) -> Result<(), HubError> {
    if who.user.id == id {
        return Err(HubError::BadInput(format!(
            "Vous ne pouvez pas {what} : demandez-le à un autre administrateur."
        )));
    }
    Ok(())
}

fn login_taken() -> HubError {
    HubError::BadInput("Cet identifiant est déjà utilisé : choisissez-en un autre.".into())
}

fn name_taken() -> HubError {
    HubError::BadInput("Une organisation du consortium porte déjà ce nom.".into())
}

/// Whether another organisation than `except` has this name (ignoring case): the
/// consortium's figures name organisations, and a double click must not make two.
fn same_name_elsewhere<T: ReadTx + ?Sized>(
    tx: &mut T,
    name: &str,
    except: Option<Uuid>,
) -> Result<bool, HubError> {
    let name = name.to_lowercase();
    Ok(tx
        .organisations()?
        .iter()
        .any(|o| Some(o.id) != except && o.name.to_lowercase() == name))
}

fn check_login_fr(login: &str) -> Result<(), HubError> {
    if login.chars().count() > 200 || login.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(HubError::BadInput(
            "Un identifiant a de 1 à 200 caractères, sans espace.".into(),
        ));
    }
    Ok(())
}

/// The names' rules, said in French (the hub's messages are the command line's).
fn french_name_error(e: HubError) -> HubError {
    match e {
        HubError::BadInput(_) => {
            HubError::BadInput("Le nom doit avoir de 1 à 200 caractères, sur une ligne.".into())
        }
        e => e,
    }
}

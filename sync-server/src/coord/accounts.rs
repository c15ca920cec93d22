//! Coordinator accounts: what administrators do to them (`repere-server admin
//! disable-user`, `enable-user`, `revoke-sessions`, `reset-second-factor`) and the second
//! factor their owners set up from the pages (TOTP with 10 single-use recovery codes).
//!
//! The second factor is required, once set up, at every sign-in, and must be set up (and
//! proven in the session) before an export with names.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::audit::{self, Audit};
use super::auth::{PASSWORD_MAX_BYTES, PASSWORD_MIN_CHARS, hash_password, verify_password};
use super::{Coordinator, Workspace, throttle, totp};
use crate::hub::{Hub, HubError};
use crate::secret;
use crate::storage::{Role, Tx, User};

/// Recovery codes made when the second factor is set up (each works once).
pub const RECOVERY_CODES: usize = 10;

/// A TOTP secret being set up, as the page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TotpSetup {
    /// Base32, in groups of four (what people type into an authenticator app).
    pub secret: String,
    /// The `otpauth://totp/…` URI (what an app reads from a link).
    pub uri: String,
}

/// Where a user's second factor stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecondFactorStatus {
    /// When it was confirmed (`None`: not set up).
    pub enabled_at: Option<DateTime<Utc>>,
    /// A setup is started and waits for its first code.
    pub pending: bool,
    pub recovery_codes_left: u64,
}

/// Whether this session may export names: its sign-in proved a second factor.
pub fn may_export_names(who: &Coordinator) -> bool {
    who.second_factor
}

fn setup_of(secret: &[u8], account: &str) -> TotpSetup {
    TotpSetup {
        secret: totp::grouped(&totp::base32(secret)),
        uri: totp::otpauth_uri(secret, account),
    }
}

impl Hub {
    /// Runs an administration command on a user in one transaction, with its audit line
    /// (`work` returns its result and the line's detail). `author`: the administrator on
    /// the pages, `None` for `repere-server admin`.
    fn account_action<T>(
        &self,
        user_id: Uuid,
        author: Option<Uuid>,
        action: &'static str,
        work: impl Fn(&mut dyn Tx, &User, DateTime<Utc>) -> Result<(T, String), HubError>,
    ) -> Result<T, HubError> {
        let now = self.now();
        self.storage().write_with(|tx| -> Result<_, HubError> {
            let user = tx
                .credentials(user_id)?
                .ok_or(HubError::NotFound {
                    what: "user",
                    id: user_id,
                })?
                .user;
            let (out, detail) = work(tx, &user, now)?;
            tx.insert_audit(&Audit::by_administrator(&user, author, action, detail).entry(now))?;
            Ok(out)
        })
    }

    /// Disables a user: sign-in is refused and every session ends. Returns how many
    /// sessions ended.
    pub fn disable_user(&self, user_id: Uuid) -> Result<u64, HubError> {
        self.disable_user_by(user_id, None)
    }

    pub fn disable_user_by(&self, user_id: Uuid, author: Option<Uuid>) -> Result<u64, HubError> {
        let ended =
            self.account_action(user_id, author, audit::USER_DISABLED, |tx, user, now| {
                if tx.user_disabled_at(user.id)?.is_none() {
                    tx.set_user_disabled(user.id, Some(now))?;
                }
                let n = tx.revoke_user_sessions(user.id)?;
                Ok((n, format!("{n} sessions fermées")))
            })?;
        tracing::info!(user = %user_id, sessions = ended, "user disabled");
        Ok(ended)
    }

    /// Lets a disabled user sign in again.
    pub fn enable_user(&self, user_id: Uuid) -> Result<(), HubError> {
        self.enable_user_by(user_id, None)
    }

    pub fn enable_user_by(&self, user_id: Uuid, author: Option<Uuid>) -> Result<(), HubError> {
        self.account_action(user_id, author, audit::USER_ENABLED, |tx, user, _| {
            tx.set_user_disabled(user.id, None)?;
            Ok(((), String::new()))
        })?;
        tracing::info!(user = %user_id, "user enabled");
        Ok(())
    }

    /// Ends every session (and pending sign-in) of a user. Returns how many sessions.
    pub fn revoke_sessions(&self, user_id: Uuid) -> Result<u64, HubError> {
        self.revoke_sessions_by(user_id, None)
    }

    pub fn revoke_sessions_by(&self, user_id: Uuid, author: Option<Uuid>) -> Result<u64, HubError> {
        let ended =
            self.account_action(user_id, author, audit::SESSIONS_REVOKED, |tx, user, _| {
                let n = tx.revoke_user_sessions(user.id)?;
                Ok((n, format!("{n} sessions fermées")))
            })?;
        tracing::info!(user = %user_id, sessions = ended, "sessions revoked");
        Ok(ended)
    }

    /// Removes a user's second factor and recovery codes (a lost phone) and ends their
    /// sessions; they sign in with the password alone and set it up again.
    pub fn reset_second_factor(&self, user_id: Uuid) -> Result<u64, HubError> {
        self.reset_second_factor_by(user_id, None)
    }

    pub fn reset_second_factor_by(
        &self,
        user_id: Uuid,
        author: Option<Uuid>,
    ) -> Result<u64, HubError> {
        let ended = self.account_action(
            user_id,
            author,
            audit::SECOND_FACTOR_RESET,
            |tx, user, _| {
                tx.delete_totp(user.id)?;
                let n = tx.revoke_user_sessions(user.id)?;
                Ok((n, format!("{n} sessions fermées")))
            },
        )?;
        tracing::info!(user = %user_id, sessions = ended, "second factor reset");
        Ok(ended)
    }

    /// Changes a user's role (their sessions end: what they may do changes with it).
    pub fn set_role(
        &self,
        user_id: Uuid,
        role: Role,
        author: Option<Uuid>,
    ) -> Result<(), HubError> {
        self.account_action(user_id, author, audit::ROLE_CHANGED, |tx, user, _| {
            tx.set_user_role(user.id, role)?;
            let n = tx.revoke_user_sessions(user.id)?;
            Ok((
                (),
                format!(
                    "{} → {} ; {n} sessions fermées",
                    user.role.as_str(),
                    role.as_str()
                ),
            ))
        })?;
        tracing::info!(user = %user_id, role = role.as_str(), "role changed");
        Ok(())
    }

    /// Whether an administrator disabled the user.
    pub fn is_disabled(&self, user_id: Uuid) -> Result<bool, HubError> {
        self.storage()
            .read_with(|tx| Ok::<_, HubError>(tx.user_disabled_at(user_id)?.is_some()))
    }
}

impl Workspace {
    pub fn second_factor_status(&self, who: &Coordinator) -> Result<SecondFactorStatus, HubError> {
        self.hub().storage().read_with(|tx| -> Result<_, HubError> {
            let totp = tx.user_totp(who.user.id)?;
            Ok(SecondFactorStatus {
                enabled_at: totp.as_ref().and_then(|t| t.confirmed_at),
                pending: totp.as_ref().is_some_and(|t| t.confirmed_at.is_none()),
                recovery_codes_left: tx.unused_recovery_codes(who.user.id)?,
            })
        })
    }

    /// Starts (or starts again) setting up TOTP: a new secret, unconfirmed until a code of
    /// it is given. Refused when the second factor is already set up.
    pub fn start_totp_setup(&self, who: &Coordinator) -> Result<TotpSetup, HubError> {
        let mut secret = [0u8; totp::SECRET_BYTES];
        getrandom::fill(&mut secret)
            .map_err(|e| HubError::Internal(format!("random source failed: {e}")))?;
        let now = self.now();
        let setup = self
            .hub()
            .storage()
            .write_with(|tx| -> Result<_, HubError> {
                let login = tx
                    .credentials(who.user.id)?
                    .and_then(|c| c.login)
                    .unwrap_or_default();
                if !tx.put_pending_totp(who.user.id, &secret, now)? {
                    return Err(HubError::BadInput(
                        "La double authentification est déjà activée.".into(),
                    ));
                }
                Ok(setup_of(&secret, &login))
            })?;
        tracing::info!(user = %who.user.id, "second factor setup started");
        Ok(setup)
    }

    /// The setup in progress, if any.
    pub fn pending_totp_setup(&self, who: &Coordinator) -> Result<Option<TotpSetup>, HubError> {
        self.hub().storage().read_with(|tx| -> Result<_, HubError> {
            let Some(totp) = tx.user_totp(who.user.id)? else {
                return Ok(None);
            };
            if totp.confirmed_at.is_some() {
                return Ok(None);
            }
            let login = tx
                .credentials(who.user.id)?
                .and_then(|c| c.login)
                .unwrap_or_default();
            Ok(Some(setup_of(&totp.secret, &login)))
        })
    }

    /// Confirms the setup with a code of the new secret: the second factor is on, this
    /// session counts as confirmed with it, the user's other sessions end (they were
    /// opened with a password alone), and the recovery codes are returned, to be shown
    /// once (only their hashes are kept). A wrong code is `BadInput`.
    pub fn confirm_totp_setup(
        &self,
        who: &Coordinator,
        session_token: &str,
        code: &str,
    ) -> Result<Vec<String>, HubError> {
        let codes = (0..RECOVERY_CODES)
            .map(|_| secret::new_code())
            .collect::<Result<Vec<_>, _>>()?;
        let hashes = codes
            .iter()
            .map(|c| {
                secret::normalize_code(c)
                    .map(|canonical| secret::code_hash(&canonical))
                    .ok_or_else(|| HubError::Internal("generated code does not normalize".into()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let session = secret::token_hash(session_token);
        let now = self.now();
        let code: String = code.chars().take(64).collect();
        self.hub()
            .storage()
            .write_with(|tx| -> Result<_, HubError> {
                if tx.session(&session)?.is_none_or(|s| s.user_id != who.user.id) {
                    return Err(HubError::BadInput("La session a expiré.".into()));
                }
                let Some(totp) = tx
                    .user_totp(who.user.id)?
                    .filter(|t| t.confirmed_at.is_none())
                else {
                    return Err(HubError::BadInput(
                        "Aucune activation en cours : recommencez depuis la page Mon compte."
                            .into(),
                    ));
                };
                let Some(step) = totp::matching_step(&totp.secret, &code, now) else {
                    return Err(HubError::BadInput(
                        "Code incorrect : vérifiez l'heure du téléphone et saisissez le code affiché."
                            .into(),
                    ));
                };
                tx.confirm_totp(who.user.id, step, now)?;
                tx.replace_recovery_codes(who.user.id, &hashes, now)?;
                tx.set_session_second_factor(&session, now)?;
                let ended = tx.delete_user_sessions_except(who.user.id, &session)?;
                tx.delete_login_challenges(who.user.id, now)?;
                tx.insert_audit(
                    &Audit::by(
                        who,
                        audit::SECOND_FACTOR_ENABLED,
                        None,
                        format!("{RECOVERY_CODES} codes de secours ; {ended} autres sessions fermées"),
                    )
                    .entry(now),
                )?;
                Ok(())
            })?;
        tracing::info!(user = %who.user.id, "second factor enabled");
        Ok(codes)
    }
}

/// One of the user's own sessions, as « Mon compte » lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnSession {
    /// The hex SHA-256 of its cookie token (what the server keeps; not the token).
    pub id: String,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    /// The session of this request.
    pub current: bool,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Workspace {
    /// Changes the user's own password: the current one is checked (each try counted by
    /// the sign-in throttle, so a left-open session cannot be used to guess it), then every
    /// other session and pending sign-in ends. Returns how many sessions ended. A wrong
    /// current password, a new one that breaks the rule or too many tries is `BadInput`
    /// with a French message.
    pub fn change_own_password(
        &self,
        who: &Coordinator,
        session_token: &str,
        ip: IpAddr,
        current: &str,
        new: &str,
    ) -> Result<u64, HubError> {
        if new.chars().count() < PASSWORD_MIN_CHARS || new.len() > PASSWORD_MAX_BYTES {
            return Err(HubError::BadInput(format!(
                "Le nouveau mot de passe doit avoir au moins {PASSWORD_MIN_CHARS} caractères."
            )));
        }
        let now = self.now();
        let fresh = throttle::fresh_key()?;
        let (admitted, credentials, keys) =
            self.hub()
                .storage()
                .write_with(|tx| -> Result<_, HubError> {
                    let credentials = tx.credentials(who.user.id)?.ok_or(HubError::NotFound {
                        what: "user",
                        id: who.user.id,
                    })?;
                    let login = credentials.login.clone().unwrap_or_default();
                    let keys = throttle::keys(tx, &login, ip, &fresh, now)?;
                    let admitted = throttle::admit(tx, &keys, Some(&who.user), now)?;
                    Ok((admitted, credentials, keys))
                })?;
        if admitted.is_err() {
            return Err(HubError::BadInput(
                "Trop de tentatives : réessayez dans un quart d'heure.".into(),
            ));
        }
        let right = credentials
            .password_hash
            .as_deref()
            .is_some_and(|phc| verify_password(current, phc));
        if !right {
            tracing::info!(user = %who.user.id, "password change refused");
            return Err(HubError::BadInput(
                "Le mot de passe actuel est incorrect.".into(),
            ));
        }
        let hash = hash_password(new)?;
        let session = secret::token_hash(session_token);
        let ended = self
            .hub()
            .storage()
            .write_with(|tx| -> Result<_, HubError> {
                if tx
                    .session(&session)?
                    .is_none_or(|s| s.user_id != who.user.id)
                {
                    return Err(HubError::BadInput("La session a expiré.".into()));
                }
                tx.set_password_hash(who.user.id, &hash, now)?;
                let ended = tx.delete_user_sessions_except(who.user.id, &session)?;
                tx.delete_login_challenges(who.user.id, now)?;
                throttle::forget(tx, &keys)?;
                tx.insert_audit(
                    &Audit::by(
                        who,
                        audit::PASSWORD_CHANGED,
                        Some(who.user.id),
                        format!("{ended} autres sessions fermées"),
                    )
                    .entry(now),
                )?;
                Ok(ended)
            })?;
        tracing::info!(user = %who.user.id, sessions = ended, "own password changed");
        Ok(ended)
    }

    /// The user's sessions still open, newest first.
    pub fn own_sessions(
        &self,
        who: &Coordinator,
        session_token: &str,
    ) -> Result<Vec<OwnSession>, HubError> {
        let current = secret::token_hash(session_token);
        let now = self.now();
        let sessions = self
            .hub()
            .storage()
            .read_with(|tx| Ok::<_, HubError>(tx.user_sessions(who.user.id)?))?;
        Ok(sessions
            .into_iter()
            .filter(|s| !self.sessions().is_over(s, now))
            .map(|s| OwnSession {
                id: hex(&s.token_hash),
                created_at: s.created_at,
                last_seen_at: s.last_seen_at,
                current: s.token_hash == current,
            })
            .collect())
    }

    /// Ends one of the user's other sessions (`NotFound` for an unknown one or another
    /// user's; the current one ends with « Se déconnecter »).
    pub fn end_own_session(
        &self,
        who: &Coordinator,
        session_token: &str,
        id: &str,
    ) -> Result<(), HubError> {
        let current = hex(&secret::token_hash(session_token));
        if id == current {
            return Err(HubError::BadInput(
                "C'est la session en cours : utilisez « Se déconnecter ».".into(),
            ));
        }
        let now = self.now();
        self.hub()
            .storage()
            .write_with(|tx| -> Result<(), HubError> {
                let Some(session) = tx
                    .user_sessions(who.user.id)?
                    .into_iter()
                    .find(|s| hex(&s.token_hash) == id)
                else {
                    return Err(HubError::NotFound {
                        what: "session",
                        id: Uuid::nil(),
                    });
                };
                tx.delete_session(&session.token_hash)?;
                tx.insert_audit(
                    &Audit::by(
                        who,
                        audit::SESSION_ENDED,
                        Some(who.user.id),
                        format!(
                            "session ouverte le {}",
                            session.created_at.format("%Y-%m-%d %H:%M UTC")
                        ),
                    )
                    .entry(now),
                )?;
                Ok(())
            })?;
        tracing::info!(user = %who.user.id, "own session ended");
        Ok(())
    }
}

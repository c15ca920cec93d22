//! Signing in: Argon2id password hashes, server-side sessions (a random cookie token
//! known only by its SHA-256, 12 hours idle expiry), a CSRF token per session, and a
//! limit on failed attempts per (address, login) and per address.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Mutex, OnceLock};

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use chrono::{DateTime, Duration, Utc};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use super::audit::{self, Audit};
use super::{Coordinator, Workspace};
use crate::hub::{Hub, HubError};
use crate::secret;
use crate::storage::{Credentials, Role, Session, User};

/// A session unused for this long is over.
pub const SESSION_IDLE: Duration = Duration::hours(12);
/// A session's expiry is moved forward at most this often (a write per page otherwise).
pub const SESSION_TOUCH_EVERY: Duration = Duration::minutes(1);
/// Failed sign-ins are counted over this window.
pub const LOGIN_WINDOW: Duration = Duration::minutes(15);
/// Failures allowed per (address, login) in the window; the next attempt gets 429.
pub const MAX_FAILURES_PER_LOGIN: usize = 5;
/// Failures allowed per address in the window, whatever the login.
pub const MAX_FAILURES_PER_ADDRESS: usize = 20;
pub const PASSWORD_MIN_CHARS: usize = 12;
pub const PASSWORD_MAX_BYTES: usize = 1024;
const LOGIN_MAX_CHARS: usize = 200;

/// An Argon2id (default parameters) PHC string of `password`, with a random salt.
pub fn hash_password(password: &str) -> Result<String, HubError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| HubError::Internal(format!("password hashing failed: {e}")))
}

/// Whether `password` matches the PHC string (a malformed string matches nothing).
pub fn verify_password(password: &str, phc: &str) -> bool {
    if password.len() > PASSWORD_MAX_BYTES {
        return false;
    }
    match PasswordHash::new(phc) {
        Ok(hash) => Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .is_ok(),
        Err(_) => false,
    }
}

/// Spends the time of one verification, so an unknown login answers as slowly as a
/// known one.
fn verify_nothing(password: &str) {
    static DUMMY: OnceLock<Option<String>> = OnceLock::new();
    if let Some(phc) = DUMMY.get_or_init(|| hash_password("pas-un-vrai-mot-de-passe").ok()) {
        let _ = verify_password(password, phc);
    }
}

/// Checks a new password's length (the only rule: long passphrases beat composition rules).
pub fn check_new_password(password: &str) -> Result<(), HubError> {
    if password.chars().count() < PASSWORD_MIN_CHARS {
        return Err(HubError::BadInput(format!(
            "the password must have at least {PASSWORD_MIN_CHARS} characters"
        )));
    }
    if password.len() > PASSWORD_MAX_BYTES {
        return Err(HubError::BadInput(format!(
            "the password must be at most {PASSWORD_MAX_BYTES} bytes"
        )));
    }
    Ok(())
}

/// The stored form of a login: trimmed and lowercased.
pub fn normalize_login(login: &str) -> String {
    login.trim().to_lowercase()
}

fn check_login(login: &str) -> Result<String, HubError> {
    let login = normalize_login(login);
    if login.is_empty()
        || login.chars().count() > LOGIN_MAX_CHARS
        || login.chars().any(|c| c.is_control() || c.is_whitespace())
    {
        return Err(HubError::BadInput(
            "a login must be 1 to 200 characters, without spaces".into(),
        ));
    }
    Ok(login)
}

/// Constant-time comparison of two tokens.
pub fn tokens_match(expected: &str, given: &str) -> bool {
    expected.len() == given.len() && bool::from(expected.as_bytes().ct_eq(given.as_bytes()))
}

impl Hub {
    /// Sets a user's password (and login, if given; a user needs one to sign in). Every
    /// session of the user ends.
    pub fn set_password(
        &self,
        user_id: Uuid,
        password: &str,
        login: Option<&str>,
    ) -> Result<Credentials, HubError> {
        check_new_password(password)?;
        let login = login.map(check_login).transpose()?;
        let hash = hash_password(password)?;
        let now = self.now();
        let credentials = self.storage().write_with(|tx| -> Result<_, HubError> {
            if tx.credentials(user_id)?.is_none() {
                return Err(HubError::NotFound {
                    what: "user",
                    id: user_id,
                });
            }
            if let Some(login) = &login {
                tx.set_login(user_id, Some(login))?;
            }
            tx.set_password_hash(user_id, &hash, now)?;
            tx.delete_user_sessions(user_id)?;
            let credentials = tx.credentials(user_id)?.ok_or(HubError::NotFound {
                what: "user",
                id: user_id,
            })?;
            if credentials.login.is_none() {
                return Err(HubError::BadInput(
                    "this user has no login yet: give one with --login".into(),
                ));
            }
            Ok(credentials)
        })?;
        tracing::info!(user = %user_id, "password set");
        Ok(credentials)
    }

    /// A user by id, or by login.
    pub fn find_user(&self, id_or_login: &str) -> Result<Credentials, HubError> {
        let id = Uuid::parse_str(id_or_login.trim()).ok();
        let login = normalize_login(id_or_login);
        self.storage().read_with(|tx| -> Result<_, HubError> {
            let found = match id {
                Some(id) => tx.credentials(id)?,
                None => tx.credentials_by_login(&login)?,
            };
            found.ok_or_else(|| HubError::BadInput("no user with this id or login".into()))
        })
    }
}

/// A successful sign-in: the cookie token (shown once) and the session's CSRF token.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub token: String,
    pub csrf: String,
    pub coordinator: Coordinator,
}

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// Unknown login, wrong password, or a role that may not sign in: one answer for all.
    #[error("identifiant ou mot de passe incorrect")]
    Invalid,
    #[error("trop de tentatives")]
    RateLimited,
    #[error(transparent)]
    Failed(#[from] HubError),
}

/// A session found from its cookie.
#[derive(Debug, Clone)]
pub struct CurrentSession {
    pub coordinator: Coordinator,
    pub csrf: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum LimitKey {
    Login(IpAddr, String),
    Address(IpAddr),
}

/// Failed sign-ins, in memory (a restart forgets them; several server instances each
/// count their own).
#[derive(Default)]
pub struct LoginLimiter {
    failures: Mutex<HashMap<LimitKey, VecDeque<DateTime<Utc>>>>,
}

/// Past this many tracked keys, those with no recent failure are dropped.
const LIMITER_PRUNE_AT: usize = 10_000;

impl LoginLimiter {
    fn keys(ip: IpAddr, login: &str) -> [(LimitKey, usize); 2] {
        [
            (
                LimitKey::Login(ip, login.to_string()),
                MAX_FAILURES_PER_LOGIN,
            ),
            (LimitKey::Address(ip), MAX_FAILURES_PER_ADDRESS),
        ]
    }

    /// Whether this attempt must be refused.
    pub fn blocked(&self, ip: IpAddr, login: &str, now: DateTime<Utc>) -> bool {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        Self::keys(ip, login).into_iter().any(|(key, max)| {
            failures.get_mut(&key).is_some_and(|times| {
                while times.front().is_some_and(|t| *t <= now - LOGIN_WINDOW) {
                    times.pop_front();
                }
                times.len() >= max
            })
        })
    }

    pub fn record_failure(&self, ip: IpAddr, login: &str, now: DateTime<Utc>) {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if failures.len() >= LIMITER_PRUNE_AT {
            failures.retain(|_, times| times.back().is_some_and(|t| *t > now - LOGIN_WINDOW));
        }
        for (key, max) in Self::keys(ip, login) {
            let times = failures.entry(key).or_default();
            times.push_back(now);
            while times.len() > max {
                times.pop_front();
            }
        }
    }

    /// A successful sign-in forgets that login's failures from that address.
    pub fn clear(&self, ip: IpAddr, login: &str) {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        failures.remove(&LimitKey::Login(ip, login.to_string()));
    }
}

fn may_sign_in(user: &User) -> bool {
    matches!(user.role, Role::Coordinator | Role::Admin)
}

impl Workspace {
    /// Signs in a coordinator or administrator. Every attempt is audited (failures under
    /// the user's organisation when the login exists).
    pub fn login(&self, ip: IpAddr, login: &str, password: &str) -> Result<SignedIn, LoginError> {
        let login = normalize_login(login);
        let login: String = login.chars().take(LOGIN_MAX_CHARS).collect();
        let now = self.now();
        let credentials = self
            .hub()
            .storage()
            .read_with(|tx| Ok::<_, HubError>(tx.credentials_by_login(&login)?))?;
        let known = credentials.as_ref().map(|c| &c.user);
        if self.limiter.blocked(ip, &login, now) {
            self.record(Audit::about_user(
                known,
                audit::LOGIN_RATE_LIMITED,
                None,
                "",
            ))?;
            tracing::warn!("sign-in attempts rate-limited");
            return Err(LoginError::RateLimited);
        }
        let refusal = match &credentials {
            None => {
                verify_nothing(password);
                Some("identifiant inconnu")
            }
            Some(c) => match &c.password_hash {
                None => {
                    verify_nothing(password);
                    Some("aucun mot de passe défini")
                }
                Some(phc) => {
                    let good = verify_password(password, phc);
                    if !good {
                        Some("mot de passe incorrect")
                    } else if !may_sign_in(&c.user) {
                        Some("rôle sans accès aux pages de coordination")
                    } else {
                        None
                    }
                }
            },
        };
        if let Some(reason) = refusal {
            self.limiter.record_failure(ip, &login, now);
            self.record(Audit::about_user(known, audit::LOGIN_FAILURE, None, reason))?;
            tracing::info!("sign-in refused");
            return Err(LoginError::Invalid);
        }
        let Some(user) = credentials.map(|c| c.user) else {
            return Err(LoginError::Invalid);
        };
        self.limiter.clear(ip, &login);
        let token = secret::new_token().map_err(HubError::from)?;
        let csrf = secret::new_token().map_err(HubError::from)?;
        let session = Session {
            token_hash: secret::token_hash(&token),
            user_id: user.id,
            csrf_token: csrf.clone(),
            created_at: now,
            last_seen_at: now,
            expires_at: now + SESSION_IDLE,
        };
        let coordinator = self
            .hub()
            .storage()
            .write_with(|tx| -> Result<_, HubError> {
                tx.delete_expired_sessions(now)?;
                tx.insert_session(&session)?;
                let coordinator =
                    Coordinator::load(tx, user.clone())?.ok_or(HubError::NotFound {
                        what: "organisation",
                        id: user.organisation_id,
                    })?;
                tx.insert_audit(
                    &Audit::by(&coordinator, audit::LOGIN_SUCCESS, None, "").entry(now),
                )?;
                Ok(coordinator)
            })?;
        tracing::info!(user = %user.id, "signed in");
        Ok(SignedIn {
            token,
            csrf,
            coordinator,
        })
    }

    /// The session of a cookie token, if it is valid; its idle expiry moves forward.
    pub fn session(&self, token: &str) -> Result<Option<CurrentSession>, HubError> {
        if token.is_empty() || token.len() > 256 {
            return Ok(None);
        }
        let hash = secret::token_hash(token);
        let now = self.now();
        let found = self
            .hub()
            .storage()
            .read_with(|tx| -> Result<_, HubError> {
                let Some(session) = tx.session(&hash)? else {
                    return Ok(None);
                };
                let Some(credentials) = tx.credentials(session.user_id)? else {
                    return Ok(None);
                };
                Ok(Some((session, credentials)))
            })?;
        let Some((session, credentials)) = found else {
            return Ok(None);
        };
        if session.expires_at <= now || !may_sign_in(&credentials.user) {
            self.hub()
                .storage()
                .write_with(|tx| Ok::<_, HubError>(tx.delete_session(&hash)?))?;
            return Ok(None);
        }
        // A write (which waits for any sync in progress) at most once a minute per session.
        if now - session.last_seen_at >= SESSION_TOUCH_EVERY {
            self.hub().storage().write_with(|tx| {
                Ok::<_, HubError>(tx.touch_session(&hash, now, now + SESSION_IDLE)?)
            })?;
        }
        let coordinator = self
            .hub()
            .storage()
            .read_with(|tx| Coordinator::load(tx, credentials.user.clone()))?;
        Ok(coordinator.map(|coordinator| CurrentSession {
            coordinator,
            csrf: session.csrf_token,
        }))
    }

    /// Ends the session of a cookie token (a token with no session is ignored).
    pub fn logout(&self, token: &str) -> Result<(), HubError> {
        let hash = secret::token_hash(token);
        let now = self.now();
        self.hub()
            .storage()
            .write_with(|tx| -> Result<(), HubError> {
                let Some(session) = tx.session(&hash)? else {
                    return Ok(());
                };
                tx.delete_session(&hash)?;
                if let Some(c) = tx.credentials(session.user_id)? {
                    tx.insert_audit(
                        &Audit::about_user(Some(&c.user), audit::LOGOUT, None, "").entry(now),
                    )?;
                }
                Ok(())
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_with_argon2id_and_verify() {
        let phc = hash_password("correct horse battery").expect("hash");
        assert!(phc.starts_with("$argon2id$"), "{phc}");
        assert!(verify_password("correct horse battery", &phc));
        assert!(!verify_password("correct horse batterie", &phc));
        assert!(!verify_password("correct horse battery", "not a hash"));
        let again = hash_password("correct horse battery").expect("hash");
        assert_ne!(phc, again, "a random salt each time");
        assert!(check_new_password("court").is_err());
        assert!(check_new_password("assez long pour passer").is_ok());
    }

    #[test]
    fn tokens_compare_in_constant_time_and_exactly() {
        assert!(tokens_match("abc", "abc"));
        assert!(!tokens_match("abc", "abd"));
        assert!(!tokens_match("abc", "ab"));
        assert!(!tokens_match("abc", ""));
    }

    #[test]
    fn limiter_blocks_after_five_failures_for_fifteen_minutes() {
        let limiter = LoginLimiter::default();
        let ip: IpAddr = [127, 0, 0, 1].into();
        let other: IpAddr = [127, 0, 0, 2].into();
        let t0 = Utc::now();
        for i in 0..MAX_FAILURES_PER_LOGIN {
            assert!(!limiter.blocked(ip, "a", t0), "attempt {i}");
            limiter.record_failure(ip, "a", t0);
        }
        assert!(limiter.blocked(ip, "a", t0));
        assert!(
            !limiter.blocked(ip, "b", t0),
            "another login from the address"
        );
        assert!(!limiter.blocked(other, "a", t0), "the same login elsewhere");
        assert!(!limiter.blocked(ip, "a", t0 + LOGIN_WINDOW + Duration::seconds(1)));
        // Many logins from one address.
        for n in 0..MAX_FAILURES_PER_ADDRESS {
            limiter.record_failure(other, &format!("user{n}"), t0);
        }
        assert!(limiter.blocked(other, "someone-new", t0));
    }
}

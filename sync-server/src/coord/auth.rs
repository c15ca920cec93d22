//! Signing in: Argon2id password hashes, server-side sessions (a random cookie token
//! known only by its SHA-256) with an idle and an absolute lifetime, a CSRF token per
//! session, throttled attempts (`throttle`, in the database), and a second factor (TOTP or
//! a recovery code, `accounts`) for the accounts that have one.

use std::net::IpAddr;
use std::sync::OnceLock;

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use chrono::{DateTime, Duration, Utc};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use super::audit::{self, Audit};
use super::throttle::{self, AttemptKeys};
use super::{Coordinator, Workspace, totp};
use crate::hub::{Hub, HubError};
use crate::secret;
use crate::storage::{Credentials, LoginChallenge, Role, Session, Tx, User};

/// By default a session unused for this long is over (`--session-idle-minutes`).
pub const SESSION_IDLE: Duration = Duration::hours(2);
/// By default a session is over this long after sign-in, used or not (`--session-max-hours`).
pub const SESSION_LIFETIME: Duration = Duration::hours(12);
/// A session's expiry is moved forward at most this often (a write per page otherwise).
pub const SESSION_TOUCH_EVERY: Duration = Duration::minutes(1);
/// How long a browser has to give the second factor once the password is accepted.
pub const CHALLENGE_TTL: Duration = Duration::minutes(5);
pub const PASSWORD_MIN_CHARS: usize = 12;
pub const PASSWORD_MAX_BYTES: usize = 1024;
const LOGIN_MAX_CHARS: usize = 200;
/// Longest second-factor input looked at (a recovery code with dashes and spaces).
const CODE_MAX_CHARS: usize = 64;

/// How long sessions last: `idle` without use, `lifetime` after sign-in whatever the use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionPolicy {
    pub idle: Duration,
    pub lifetime: Duration,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        SessionPolicy {
            idle: SESSION_IDLE,
            lifetime: SESSION_LIFETIME,
        }
    }
}

impl SessionPolicy {
    /// The expiry of a session created at `created` and used at `now`.
    pub fn expiry(&self, created: DateTime<Utc>, now: DateTime<Utc>) -> DateTime<Utc> {
        (now + self.idle).min(created + self.lifetime)
    }

    /// Whether a session is over at `now`.
    pub fn is_over(&self, session: &Session, now: DateTime<Utc>) -> bool {
        session.expires_at <= now
            || now - session.last_seen_at >= self.idle
            || now - session.created_at >= self.lifetime
    }
}

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
    /// session (and pending sign-in) of the user ends.
    pub fn set_password(
        &self,
        user_id: Uuid,
        password: &str,
        login: Option<&str>,
    ) -> Result<Credentials, HubError> {
        self.set_password_by(user_id, password, login, None)
    }

    /// [`Hub::set_password`], journaled in the user's organisation (never the password).
    /// `author`: the administrator on the pages, `None` for `repere-server admin`.
    pub fn set_password_by(
        &self,
        user_id: Uuid,
        password: &str,
        login: Option<&str>,
        author: Option<Uuid>,
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
            let ended = tx.revoke_user_sessions(user_id)?;
            let credentials = tx.credentials(user_id)?.ok_or(HubError::NotFound {
                what: "user",
                id: user_id,
            })?;
            if credentials.login.is_none() {
                return Err(HubError::BadInput(
                    "this user has no login yet: give one with --login".into(),
                ));
            }
            tx.insert_audit(
                &Audit::by_administrator(
                    &credentials.user,
                    author,
                    audit::PASSWORD_SET,
                    format!("{ended} sessions fermées"),
                )
                .entry(now),
            )?;
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

/// The password was right and the account has a second factor: the browser keeps `token`
/// (a cookie) for [`CHALLENGE_TTL`] and sends it back with the code.
#[derive(Debug, Clone)]
pub struct SecondFactorChallenge {
    pub token: String,
}

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// Unknown login, wrong password or code, a disabled account, or a role that may not
    /// sign in: one answer for all.
    #[error("identifiant ou mot de passe incorrect")]
    Invalid,
    #[error("trop de tentatives")]
    RateLimited,
    /// The password is right; the account's second factor is asked next.
    #[error("second facteur requis")]
    NeedsSecondFactor(SecondFactorChallenge),
    /// The second-factor step is unknown or over: start again with the password.
    #[error("connexion expirée")]
    Expired,
    #[error(transparent)]
    Failed(#[from] HubError),
}

/// A session found from its cookie.
#[derive(Debug, Clone)]
pub struct CurrentSession {
    pub coordinator: Coordinator,
    pub csrf: String,
}

fn may_sign_in(user: &User) -> bool {
    matches!(user.role, Role::Coordinator | Role::Admin)
}

/// The fresh tokens of a session about to open (made outside the transaction, which may
/// run more than once).
struct NewTokens {
    token: String,
    csrf: String,
}

impl NewTokens {
    fn new() -> Result<NewTokens, HubError> {
        Ok(NewTokens {
            token: secret::new_token()?,
            csrf: secret::new_token()?,
        })
    }
}

/// What the password step decided, inside its second transaction.
enum PasswordStep {
    SignedIn(Coordinator),
    Challenge,
    Refused,
}

/// What the code step decided, inside its transaction.
enum CodeStep {
    SignedIn(Coordinator),
    Wrong,
    Throttled,
    Expired,
}

impl Workspace {
    /// The session lifetimes in force.
    pub fn sessions(&self) -> SessionPolicy {
        self.sessions
    }

    /// Opens a session for `user` inside `tx`: stores it (with the second factor if
    /// proven: `Some(how)`, audited as such), forgets the attempts of this sign-in and
    /// audits it.
    fn open_session(
        &self,
        tx: &mut dyn Tx,
        user: &User,
        tokens: &NewTokens,
        keys: &AttemptKeys,
        second_factor: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Coordinator, HubError> {
        let session = Session {
            token_hash: secret::token_hash(&tokens.token),
            user_id: user.id,
            csrf_token: tokens.csrf.clone(),
            created_at: now,
            last_seen_at: now,
            expires_at: self.sessions.expiry(now, now),
        };
        tx.delete_expired_sessions(now)?;
        tx.insert_session(&session)?;
        if second_factor.is_some() {
            tx.set_session_second_factor(&session.token_hash, now)?;
        }
        throttle::forget(tx, keys)?;
        let mut coordinator = Coordinator::load(tx, user.clone())?.ok_or(HubError::NotFound {
            what: "organisation",
            id: user.organisation_id,
        })?;
        coordinator.second_factor = second_factor.is_some();
        let detail = second_factor.unwrap_or_default();
        tx.insert_audit(&Audit::by(&coordinator, audit::LOGIN_SUCCESS, None, detail).entry(now))?;
        Ok(coordinator)
    }

    /// Signs in a coordinator or administrator with a password. The attempt is counted
    /// and stored before the password is checked (`throttle`). An account with a second
    /// factor gets [`LoginError::NeedsSecondFactor`] instead of a session. Every attempt
    /// is audited (failures under the user's organisation when the login exists; refusals
    /// by the throttle once per window).
    pub fn login(&self, ip: IpAddr, login: &str, password: &str) -> Result<SignedIn, LoginError> {
        let login = normalize_login(login);
        let login: String = login.chars().take(LOGIN_MAX_CHARS).collect();
        let now = self.now();
        let fresh = throttle::fresh_key()?;
        let (admitted, credentials, keys) =
            self.hub()
                .storage()
                .write_with(|tx| -> Result<_, HubError> {
                    let keys = throttle::keys(tx, &login, ip, &fresh, now)?;
                    let credentials = tx.credentials_by_login(&login)?;
                    let admitted =
                        throttle::admit(tx, &keys, credentials.as_ref().map(|c| &c.user), now)?;
                    Ok((admitted, credentials, keys))
                })?;
        if admitted.is_err() {
            return Err(LoginError::RateLimited);
        }
        let known = credentials.as_ref().map(|c| &c.user);
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
                    if !verify_password(password, phc) {
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
            self.record(Audit::about_user(known, audit::LOGIN_FAILURE, None, reason))?;
            tracing::info!("sign-in refused");
            return Err(LoginError::Invalid);
        }
        let Some(user) = credentials.map(|c| c.user) else {
            return Err(LoginError::Invalid);
        };
        let tokens = NewTokens::new()?;
        let challenge = secret::new_token().map_err(HubError::from)?;
        let step = self
            .hub()
            .storage()
            .write_with(|tx| -> Result<_, HubError> {
                if tx.user_disabled_at(user.id)?.is_some() {
                    tx.insert_audit(
                        &Audit::about_user(
                            Some(&user),
                            audit::LOGIN_FAILURE,
                            None,
                            "compte désactivé",
                        )
                        .entry(now),
                    )?;
                    return Ok(PasswordStep::Refused);
                }
                if tx
                    .user_totp(user.id)?
                    .is_some_and(|t| t.confirmed_at.is_some())
                {
                    tx.delete_login_challenges(user.id, now)?;
                    tx.insert_login_challenge(&LoginChallenge {
                        token_hash: secret::token_hash(&challenge),
                        user_id: user.id,
                        created_at: now,
                        expires_at: now + CHALLENGE_TTL,
                    })?;
                    return Ok(PasswordStep::Challenge);
                }
                let coordinator = self.open_session(tx, &user, &tokens, &keys, None, now)?;
                Ok(PasswordStep::SignedIn(coordinator))
            })?;
        match step {
            PasswordStep::SignedIn(coordinator) => {
                tracing::info!(user = %user.id, "signed in");
                Ok(SignedIn {
                    token: tokens.token,
                    csrf: tokens.csrf,
                    coordinator,
                })
            }
            PasswordStep::Challenge => {
                tracing::info!(user = %user.id, "password accepted, second factor asked");
                Err(LoginError::NeedsSecondFactor(SecondFactorChallenge {
                    token: challenge,
                }))
            }
            PasswordStep::Refused => {
                tracing::info!("sign-in refused");
                Err(LoginError::Invalid)
            }
        }
    }

    /// The second step of a sign-in: the challenge's token and a TOTP code (or an unused
    /// recovery code). The attempt is throttled like a password; a TOTP code is accepted
    /// once, a recovery code is used up, both in the same transaction as the check.
    pub fn login_second_factor(
        &self,
        ip: IpAddr,
        challenge: &str,
        code: &str,
    ) -> Result<SignedIn, LoginError> {
        if challenge.is_empty() || challenge.len() > 256 {
            return Err(LoginError::Expired);
        }
        let code: String = code.chars().take(CODE_MAX_CHARS).collect();
        let hash = secret::token_hash(challenge);
        let now = self.now();
        let fresh = throttle::fresh_key()?;
        let tokens = NewTokens::new()?;
        let step = self
            .hub()
            .storage()
            .write_with(|tx| -> Result<_, HubError> {
                let Some(pending) = tx.login_challenge(&hash)? else {
                    return Ok(CodeStep::Expired);
                };
                let credentials = tx.credentials(pending.user_id)?;
                let Some((user, login)) = credentials
                    .filter(|_| pending.expires_at > now)
                    .and_then(|c| c.login.map(|l| (c.user, l)))
                else {
                    tx.delete_login_challenge(&hash)?;
                    return Ok(CodeStep::Expired);
                };
                let keys = throttle::keys(tx, &login, ip, &fresh, now)?;
                if throttle::admit(tx, &keys, Some(&user), now)?.is_err() {
                    return Ok(CodeStep::Throttled);
                }
                let totp = tx.user_totp(user.id)?.filter(|t| t.confirmed_at.is_some());
                let (Some(totp), true, None) =
                    (totp, may_sign_in(&user), tx.user_disabled_at(user.id)?)
                else {
                    tx.delete_login_challenge(&hash)?;
                    return Ok(CodeStep::Expired);
                };
                // A recovery code has 10 symbols, a TOTP code 6 digits: never both.
                let accepted = match secret::normalize_code(&code) {
                    Some(canonical) => tx
                        .use_recovery_code(user.id, &secret::code_hash(&canonical), now)?
                        .then_some("avec un code de secours"),
                    None => match totp::matching_step(&totp.secret, &code, now) {
                        Some(step) => tx
                            .advance_totp_step(user.id, step)?
                            .then_some("avec double authentification"),
                        None => None,
                    },
                };
                let Some(how) = accepted else {
                    tx.insert_audit(
                        &Audit::about_user(
                            Some(&user),
                            audit::LOGIN_FAILURE,
                            None,
                            "code de double authentification incorrect",
                        )
                        .entry(now),
                    )?;
                    return Ok(CodeStep::Wrong);
                };
                tx.delete_login_challenge(&hash)?;
                let coordinator = self.open_session(tx, &user, &tokens, &keys, Some(how), now)?;
                Ok(CodeStep::SignedIn(coordinator))
            })?;
        match step {
            CodeStep::SignedIn(coordinator) => {
                tracing::info!(user = %coordinator.user.id, "signed in with a second factor");
                Ok(SignedIn {
                    token: tokens.token,
                    csrf: tokens.csrf,
                    coordinator,
                })
            }
            CodeStep::Wrong => {
                tracing::info!("second factor refused");
                Err(LoginError::Invalid)
            }
            CodeStep::Throttled => Err(LoginError::RateLimited),
            CodeStep::Expired => Err(LoginError::Expired),
        }
    }

    /// The session of a cookie token, if it is valid; its idle expiry moves forward (never
    /// past its absolute end). A disabled user's sessions are over.
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
                let disabled = tx.user_disabled_at(session.user_id)?.is_some();
                let second_factor = tx.session_second_factor(&hash)?;
                Ok(Some((session, credentials, disabled, second_factor)))
            })?;
        let Some((session, credentials, disabled, second_factor)) = found else {
            return Ok(None);
        };
        if self.sessions.is_over(&session, now) || disabled || !may_sign_in(&credentials.user) {
            self.hub()
                .storage()
                .write_with(|tx| Ok::<_, HubError>(tx.delete_session(&hash)?))?;
            return Ok(None);
        }
        // A write (which waits for any sync in progress) at most once a minute per session.
        if now - session.last_seen_at >= SESSION_TOUCH_EVERY {
            let expires = self.sessions.expiry(session.created_at, now);
            self.hub()
                .storage()
                .write_with(|tx| Ok::<_, HubError>(tx.touch_session(&hash, now, expires)?))?;
        }
        let coordinator = self
            .hub()
            .storage()
            .read_with(|tx| Coordinator::load(tx, credentials.user.clone()))?;
        Ok(coordinator.map(|mut coordinator| {
            coordinator.second_factor = second_factor;
            CurrentSession {
                coordinator,
                csrf: session.csrf_token,
            }
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
    fn sessions_end_when_idle_or_at_their_absolute_lifetime() {
        let policy = SessionPolicy::default();
        let t0 = DateTime::from_timestamp(1_750_000_000, 0).expect("time");
        let session = |last_seen: DateTime<Utc>| Session {
            token_hash: [0; 32],
            user_id: Uuid::nil(),
            csrf_token: String::new(),
            created_at: t0,
            last_seen_at: last_seen,
            expires_at: policy.expiry(t0, last_seen),
        };
        assert_eq!(policy.expiry(t0, t0), t0 + SESSION_IDLE);
        let late = t0 + SESSION_LIFETIME - Duration::minutes(30);
        assert_eq!(
            policy.expiry(t0, late),
            t0 + SESSION_LIFETIME,
            "never past the end"
        );
        assert!(!policy.is_over(&session(t0), t0 + SESSION_IDLE - Duration::seconds(1)));
        assert!(policy.is_over(&session(t0), t0 + SESSION_IDLE));
        let used = session(late);
        assert!(!policy.is_over(&used, late + Duration::minutes(29)));
        assert!(policy.is_over(&used, t0 + SESSION_LIFETIME));
    }
}

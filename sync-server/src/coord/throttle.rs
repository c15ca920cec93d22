//! Sign-in throttling, in the database: every attempt (a password, or a second-factor code)
//! is counted and stored **before** it is checked, in the same write transaction as the
//! count, so concurrent attempts cannot exceed the limits and a restart forgets nothing.
//!
//! Two limits over a sliding window: per account (the typed login, whatever the address)
//! and per client address (whatever the login; an IPv6 address counts by its /64). A
//! successful sign-in forgets that login's attempts from that address. Logins and
//! addresses are kept only as HMAC-SHA256 under a server key: never in clear.

use std::net::IpAddr;

use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::audit::{self, Audit};
use crate::hub::HubError;
use crate::storage::{SecretHash, Tx, User};

/// Attempts are counted over this window.
pub const LOGIN_WINDOW: Duration = Duration::minutes(15);
/// Attempts allowed per account (login) in the window, from any address.
pub const MAX_ATTEMPTS_PER_ACCOUNT: u64 = 10;
/// Attempts allowed per client address in the window, whatever the login.
pub const MAX_ATTEMPTS_PER_ADDRESS: u64 = 20;

/// The name of the throttle's HMAC key in `server_secrets`.
const THROTTLE_KEY: &str = "login_throttle_key";

/// Which limit refused an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Account,
    Address,
}

/// The stored identities of an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttemptKeys {
    pub account: SecretHash,
    pub address: SecretHash,
}

/// What an address counts as: IPv4 whole, IPv6 by its /64 (one client holds a whole /64).
pub fn address_bytes(ip: IpAddr) -> Vec<u8> {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets()[..8].to_vec(),
    }
}

fn keyed(key: &[u8], domain: &[u8], value: &[u8]) -> Result<SecretHash, HubError> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key)
        .map_err(|e| HubError::Internal(format!("throttle key unusable: {e}")))?;
    mac.update(domain);
    mac.update(&[0]);
    mac.update(value);
    let mut out = [0u8; 32];
    out.copy_from_slice(&mac.finalize().into_bytes());
    Ok(out)
}

/// 32 random bytes, the throttle key if none is stored yet.
pub(crate) fn fresh_key() -> Result<[u8; 32], HubError> {
    let mut key = [0u8; 32];
    getrandom::fill(&mut key)
        .map_err(|e| HubError::Internal(format!("random source failed: {e}")))?;
    Ok(key)
}

/// The keys of an attempt for a (normalised) login from an address. `fresh` becomes the
/// server's throttle key if it has none yet.
pub(crate) fn keys(
    tx: &mut dyn Tx,
    login: &str,
    ip: IpAddr,
    fresh: &[u8; 32],
    now: DateTime<Utc>,
) -> Result<AttemptKeys, HubError> {
    let key = tx.insert_server_secret(THROTTLE_KEY, fresh, now)?;
    Ok(AttemptKeys {
        account: keyed(&key, b"account", login.as_bytes())?,
        address: keyed(&key, b"address", &address_bytes(ip))?,
    })
}

/// The key of an address's enrolment attempts in `rate_buckets` (an HMAC, as for
/// sign-ins: the address is never stored).
pub(crate) fn enrolment_key(
    tx: &mut dyn Tx,
    ip: IpAddr,
    fresh: &[u8; 32],
    now: DateTime<Utc>,
) -> Result<SecretHash, HubError> {
    let key = tx.insert_server_secret(THROTTLE_KEY, fresh, now)?;
    keyed(&key, b"enrolment-address", &address_bytes(ip))
}

/// Counts the attempt against both limits and stores it, or refuses it. A refusal is
/// audited once per throttled window and key (about `user` when the login is known), not
/// once per request.
pub(crate) fn admit(
    tx: &mut dyn Tx,
    keys: &AttemptKeys,
    user: Option<&User>,
    now: DateTime<Utc>,
) -> Result<Result<(), Limit>, HubError> {
    let since = now - LOGIN_WINDOW;
    tx.prune_login_attempts(since, now)?;
    let (by_account, by_address) = tx.login_attempt_counts(&keys.account, &keys.address, since)?;
    let limit = if by_account >= MAX_ATTEMPTS_PER_ACCOUNT {
        Some((Limit::Account, keys.account))
    } else if by_address >= MAX_ATTEMPTS_PER_ADDRESS {
        Some((Limit::Address, keys.address))
    } else {
        None
    };
    if let Some((limit, key)) = limit {
        if tx.claim_throttle_notice(&key, now, now + LOGIN_WINDOW)? {
            let detail = match limit {
                Limit::Account => "limite par compte",
                Limit::Address => "limite par adresse",
            };
            tx.insert_audit(
                &Audit::about_user(user, audit::LOGIN_RATE_LIMITED, None, detail).entry(now),
            )?;
            tracing::warn!(limit = ?limit, "sign-in attempts throttled");
        }
        return Ok(Err(limit));
    }
    tx.insert_login_attempt(&keys.account, &keys.address, now)?;
    Ok(Ok(()))
}

/// A sign-in succeeded: that login's attempts from that address are forgotten.
pub(crate) fn forget(tx: &mut dyn Tx, keys: &AttemptKeys) -> Result<(), HubError> {
    tx.delete_login_attempts(&keys.account, &keys.address)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_addresses_count_by_their_64_prefix() {
        let a: IpAddr = "2001:db8:1:2::1".parse().expect("ip");
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().expect("ip");
        let c: IpAddr = "2001:db8:1:3::1".parse().expect("ip");
        assert_eq!(address_bytes(a), address_bytes(b));
        assert_ne!(address_bytes(a), address_bytes(c));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().expect("ip");
        let v4: IpAddr = "192.0.2.7".parse().expect("ip");
        assert_eq!(address_bytes(mapped), address_bytes(v4));
    }

    #[test]
    fn keys_separate_domains_and_values() {
        let key = [9u8; 32];
        let a = keyed(&key, b"account", b"camille").expect("mac");
        assert_eq!(a, keyed(&key, b"account", b"camille").expect("mac"));
        assert_ne!(a, keyed(&key, b"address", b"camille").expect("mac"));
        assert_ne!(a, keyed(&key, b"account", b"camille2").expect("mac"));
        assert_ne!(a, keyed(&[8u8; 32], b"account", b"camille").expect("mac"));
    }
}

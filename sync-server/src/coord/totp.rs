//! Time-based one-time passwords (RFC 6238 over RFC 4226's HOTP), as phone authenticator
//! apps compute them: HMAC-SHA-1, 30-second steps from the Unix epoch, 6 digits. Secrets
//! are 20 random bytes, shown to people in base32 (RFC 4648) and in an `otpauth://` URI.

use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;

/// Seconds per time step.
pub const STEP_SECONDS: i64 = 30;
/// Digits of a code.
pub const DIGITS: u32 = 6;
/// Bytes of a new secret (RFC 4226 recommends 160 bits).
pub const SECRET_BYTES: usize = 20;
/// Steps accepted on each side of the current one (clock drift between phone and server).
pub const DRIFT_STEPS: u64 = 1;
/// The issuer shown by authenticator apps.
pub const ISSUER: &str = "Repère";

const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// RFC 4226 HOTP: the `digits`-digit code of `counter` (HMAC-SHA-1, dynamic truncation).
pub fn hotp(secret: &[u8], counter: u64, digits: u32) -> u32 {
    // HMAC accepts keys of any length: the error case cannot happen.
    let Ok(mut mac) = <Hmac<Sha1> as KeyInit>::new_from_slice(secret) else {
        return 0;
    };
    mac.update(&counter.to_be_bytes());
    let hash = mac.finalize().into_bytes();
    let offset = usize::from(hash[hash.len() - 1] & 0x0f);
    let binary = (u32::from(hash[offset]) & 0x7f) << 24
        | u32::from(hash[offset + 1]) << 16
        | u32::from(hash[offset + 2]) << 8
        | u32::from(hash[offset + 3]);
    binary % 10u32.pow(digits)
}

/// The time step of an instant (`None` before 1970).
pub fn step_at(t: DateTime<Utc>) -> Option<u64> {
    u64::try_from(t.timestamp().div_euclid(STEP_SECONDS)).ok()
}

/// The code of a step, zero-padded to `digits`.
pub fn code_of_step(secret: &[u8], step: u64, digits: u32) -> String {
    format!(
        "{:0width$}",
        hotp(secret, step, digits),
        width = digits as usize
    )
}

/// The 6-digit code at an instant.
pub fn code_at(secret: &[u8], t: DateTime<Utc>) -> String {
    code_of_step(secret, step_at(t).unwrap_or(0), DIGITS)
}

/// The step whose code `typed` is, among the current one and `DRIFT_STEPS` on each side
/// (latest first); `None` when it matches none. Spaces in `typed` are ignored. The caller
/// keeps only steps later than the last one used, so a code works once.
pub fn matching_step(secret: &[u8], typed: &str, now: DateTime<Utc>) -> Option<u64> {
    let typed: String = typed.chars().filter(|c| !c.is_whitespace()).collect();
    if typed.len() != DIGITS as usize || !typed.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let current = step_at(now)?;
    let first = current.saturating_sub(DRIFT_STEPS);
    (first..=current.saturating_add(DRIFT_STEPS))
        .rev()
        .find(|step| {
            let expected = code_of_step(secret, *step, DIGITS);
            crate::coord::auth::tokens_match(&expected, &typed)
        })
}

/// RFC 4648 base32, upper case, without padding (what authenticator apps expect).
pub fn base32(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let mut buffer: u32 = 0;
    let mut bits = 0u32;
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(BASE32[((buffer >> bits) & 0x1f) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(BASE32[((buffer << (5 - bits)) & 0x1f) as usize] as char);
    }
    out
}

/// The base32 text in groups of four, easier to copy by hand.
pub fn grouped(base32: &str) -> String {
    base32
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Percent-encodes a URI component (everything but unreserved characters).
fn uri_component(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The `otpauth://totp/…` URI of a secret for an account (Key Uri Format).
pub fn otpauth_uri(secret: &[u8], account: &str) -> String {
    format!(
        "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECONDS}",
        uri_component(ISSUER),
        uri_component(account),
        base32(secret),
        uri_component(ISSUER),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1 rows: the seed is the ASCII "12345678901234567890" and
    /// the codes have 8 digits.
    #[test]
    fn rfc_6238_sha1_test_vectors() {
        let seed = b"12345678901234567890";
        let vectors: [(i64, u64, &str); 6] = [
            (59, 0x1, "94287082"),
            (1_111_111_109, 0x23523EC, "07081804"),
            (1_111_111_111, 0x23523ED, "14050471"),
            (1_234_567_890, 0x273EF07, "89005924"),
            (2_000_000_000, 0x3F940AA, "69279037"),
            (20_000_000_000, 0x27BC86AA, "65353130"),
        ];
        for (unix, step, code) in vectors {
            let t = DateTime::from_timestamp(unix, 0).expect("time");
            assert_eq!(step_at(t), Some(step), "step at {unix}");
            assert_eq!(code_of_step(seed, step, 8), code, "code at {unix}");
            // The 6-digit code is the same value's last six digits.
            assert_eq!(code_at(seed, t), code[2..], "6 digits at {unix}");
        }
    }

    /// RFC 4226 appendix D: HOTP values of counters 0 to 9 (6 digits).
    #[test]
    fn rfc_4226_hotp_test_vectors() {
        let seed = b"12345678901234567890";
        let expected = [
            755224, 287082, 359152, 969429, 338314, 254676, 287922, 162583, 399871, 520489,
        ];
        for (counter, value) in expected.into_iter().enumerate() {
            assert_eq!(hotp(seed, counter as u64, 6), value, "counter {counter}");
        }
    }

    #[test]
    fn codes_match_within_one_step_of_drift_only() {
        let seed = b"12345678901234567890";
        let now = DateTime::from_timestamp(1_111_111_111, 0).expect("time");
        let step = step_at(now).expect("step");
        for s in [step - 1, step, step + 1] {
            let code = code_of_step(seed, s, DIGITS);
            assert_eq!(matching_step(seed, &code, now), Some(s));
            let spaced = format!("{} {}", &code[..3], &code[3..]);
            assert_eq!(matching_step(seed, &spaced, now), Some(s));
        }
        for s in [step - 2, step + 2] {
            let code = code_of_step(seed, s, DIGITS);
            assert_eq!(matching_step(seed, &code, now), None, "step {s}");
        }
        assert_eq!(matching_step(seed, "12345", now), None);
        assert_eq!(matching_step(seed, "abcdef", now), None);
        assert_eq!(matching_step(seed, "1234567", now), None);
    }

    #[test]
    fn base32_follows_rfc_4648() {
        // RFC 4648 section 10, without the padding.
        for (input, output) in [
            ("", ""),
            ("f", "MY"),
            ("fo", "MZXQ"),
            ("foo", "MZXW6"),
            ("foob", "MZXW6YQ"),
            ("fooba", "MZXW6YTB"),
            ("foobar", "MZXW6YTBOI"),
        ] {
            assert_eq!(base32(input.as_bytes()), output, "{input}");
        }
        assert_eq!(
            base32(b"12345678901234567890"),
            "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
        );
        assert_eq!(grouped("ABCDEFGHIJ"), "ABCD EFGH IJ");
    }

    #[test]
    fn otpauth_uri_names_the_account_issuer_and_parameters() {
        let uri = otpauth_uri(b"12345678901234567890", "camille@ml.fr");
        assert_eq!(
            uri,
            "otpauth://totp/Rep%C3%A8re:camille%40ml.fr?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\
             &issuer=Rep%C3%A8re&algorithm=SHA1&digits=6&period=30"
        );
    }
}

//! Secrets the server hands out: device tokens and one-time enrolment codes. Both are
//! random and high-entropy enough that a plain SHA-256 is the right thing to store (a slow
//! password hash protects guessable secrets; these are not guessable).

use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::storage::SecretHash;

/// Unambiguous on a screen and on paper: no 0/O, 1/I/L, U/V confusion.
pub const CODE_ALPHABET: &[u8; 30] = b"ABCDEFGHJKMNPQRSTVWXYZ23456789";
/// 10 symbols of 30: about 49 bits, with a 7-day lifetime and a rate-limited endpoint.
pub const CODE_LEN: usize = 10;
/// Where the dashes go when a code is shown: ABCD-EFGH-JK.
const CODE_GROUPS: [usize; 3] = [4, 4, 2];
const TOKEN_BYTES: usize = 32;

#[derive(Debug, thiserror::Error)]
#[error("the operating system's random source failed: {0}")]
pub struct RandomError(String);

pub(crate) fn random_bytes(buf: &mut [u8]) -> Result<(), RandomError> {
    getrandom::fill(buf).map_err(|e| RandomError(e.to_string()))
}

/// A new log epoch: random, never 0 (0 means "no epoch" to a version 1 device).
pub fn new_epoch() -> Result<u64, RandomError> {
    loop {
        let mut bytes = [0u8; 8];
        random_bytes(&mut bytes)?;
        let epoch = u64::from_be_bytes(bytes);
        if epoch != 0 {
            return Ok(epoch);
        }
    }
}

pub fn sha256(bytes: &[u8]) -> SecretHash {
    let digest = Sha256::digest(bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_slice());
    out
}

/// A new bearer token: 256 random bits, base64url without padding (43 characters).
pub fn new_token() -> Result<String, RandomError> {
    let mut bytes = [0u8; TOKEN_BYTES];
    random_bytes(&mut bytes)?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

pub fn token_hash(token: &str) -> SecretHash {
    sha256(token.as_bytes())
}

/// Compares two secret hashes in constant time.
pub fn hashes_match(a: &SecretHash, b: &SecretHash) -> bool {
    subtle::ConstantTimeEq::ct_eq(a.as_slice(), b.as_slice()).into()
}

/// A new enrolment code, formatted for people: `ABCD-EFGH-JK`.
pub fn new_code() -> Result<String, RandomError> {
    let mut symbols = Vec::with_capacity(CODE_LEN);
    // Rejection sampling keeps every symbol equally likely (256 is not a multiple of 30).
    let limit = (256 / CODE_ALPHABET.len() * CODE_ALPHABET.len()) as u8;
    while symbols.len() < CODE_LEN {
        let mut buf = [0u8; 16];
        random_bytes(&mut buf)?;
        for byte in buf {
            if byte < limit && symbols.len() < CODE_LEN {
                symbols.push(CODE_ALPHABET[byte as usize % CODE_ALPHABET.len()]);
            }
        }
    }
    let mut out = String::with_capacity(CODE_LEN + CODE_GROUPS.len() - 1);
    let mut rest = symbols.as_slice();
    for (i, group) in CODE_GROUPS.iter().enumerate() {
        if i > 0 {
            out.push('-');
        }
        let (head, tail) = rest.split_at(*group);
        out.extend(head.iter().map(|&c| c as char));
        rest = tail;
    }
    Ok(out)
}

/// The canonical form of a typed code (case, spaces and dashes do not matter), or `None`
/// when it cannot be a code at all.
pub fn normalize_code(typed: &str) -> Option<String> {
    if typed.len() > 64 {
        return None;
    }
    let code: String = typed
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    let valid = code.len() == CODE_LEN && code.bytes().all(|c| CODE_ALPHABET.contains(&c));
    valid.then_some(code)
}

/// The stored hash of a code, from its canonical form.
pub fn code_hash(canonical: &str) -> SecretHash {
    sha256(canonical.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_grouped_and_normalize_back() {
        let code = new_code().expect("random");
        assert_eq!(code.len(), 12);
        assert_eq!(code.matches('-').count(), 2);
        let canonical = normalize_code(&code).expect("valid");
        assert_eq!(canonical.len(), CODE_LEN);
        assert_eq!(
            normalize_code(&format!(" {} ", code.to_lowercase())),
            Some(canonical)
        );
        assert_eq!(
            normalize_code("ABCD-EFGH-J0"),
            None,
            "0 is not in the alphabet"
        );
        assert_eq!(normalize_code("ABCD"), None);
    }

    #[test]
    fn tokens_are_long_and_distinct() {
        let (a, b) = (new_token().expect("random"), new_token().expect("random"));
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
        assert_ne!(token_hash(&a), token_hash(&b));
    }
}

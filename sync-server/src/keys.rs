//! The server's master key: it encrypts the database (SQLCipher) and the backups, and the
//! pseudonymisation key of the exports is derived from it. It lives outside the data
//! directory — a key file (`--key-file`, `REPERE_KEY_FILE`) or the environment
//! (`REPERE_KEY`) — so that a copy of the data directory alone reads as random bytes.

use std::fmt;
use std::io::Write;
use std::path::Path;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::secret::{RandomError, random_bytes};

/// 32 bytes, written as 64 hexadecimal characters in the key file.
#[derive(Clone, PartialEq, Eq)]
pub struct ServerKey([u8; 32]);

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(
        "the key must be 64 hexadecimal characters (32 bytes): make one with `repere-server admin new-key --to FILE`"
    )]
    Malformed,
    #[error("cannot read the key file {path}: {reason}")]
    Unreadable { path: String, reason: String },
    #[error(
        "the key file must not be inside the data directory: a copy of the data would carry its key"
    )]
    InsideDataDir,
    #[error("{0} already exists: the new key is not written over it")]
    Exists(String),
    #[error("cannot write the key file: {0}")]
    Write(String),
    #[error(transparent)]
    Random(#[from] RandomError),
}

impl fmt::Debug for ServerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ServerKey(…)")
    }
}

impl ServerKey {
    pub fn from_hex(text: &str) -> Result<ServerKey, KeyError> {
        let text = text.trim();
        if text.len() != 64 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(KeyError::Malformed);
        }
        let mut key = [0u8; 32];
        for (i, byte) in key.iter_mut().enumerate() {
            *byte =
                u8::from_str_radix(&text[2 * i..2 * i + 2], 16).map_err(|_| KeyError::Malformed)?;
        }
        Ok(ServerKey(key))
    }

    /// Reads a key file, refusing one kept inside `data_dir`.
    pub fn from_file(path: &Path, data_dir: &Path) -> Result<ServerKey, KeyError> {
        let unreadable = |e: std::io::Error| KeyError::Unreadable {
            path: path.display().to_string(),
            reason: e.to_string(),
        };
        let file = path.canonicalize().map_err(unreadable)?;
        if data_dir
            .canonicalize()
            .is_ok_and(|dir| file.starts_with(dir))
        {
            return Err(KeyError::InsideDataDir);
        }
        ServerKey::from_hex(&std::fs::read_to_string(&file).map_err(unreadable)?)
    }

    pub fn generate() -> Result<ServerKey, KeyError> {
        let mut key = [0u8; 32];
        random_bytes(&mut key)?;
        Ok(ServerKey(key))
    }

    /// Writes a new key file readable by its owner only; never over an existing file.
    pub fn write_new_file(&self, path: &Path) -> Result<(), KeyError> {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => KeyError::Exists(path.display().to_string()),
            _ => KeyError::Write(e.to_string()),
        })?;
        writeln!(file, "{}", self.hex())
            .and_then(|()| file.sync_all())
            .map_err(|e| KeyError::Write(e.to_string()))
    }

    fn hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// SQLCipher's raw-key form (`PRAGMA key`): used as the page key, no passphrase
    /// derivation (the key is already random).
    pub fn sqlcipher_key(&self) -> String {
        format!("\"x'{}'\"", self.hex())
    }

    /// The key of the exports' pseudonyms, derived so that it is never stored with the data.
    pub fn pseudonym_key(&self) -> [u8; 32] {
        self.derive(b"repere pseudonym key v1")
    }

    fn derive(&self, purpose: &[u8]) -> [u8; 32] {
        let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0) else {
            unreachable!("HMAC takes keys of any length")
        };
        mac.update(purpose);
        mac.finalize().into_bytes().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_hex_refuses_the_rest_and_never_shows_itself() {
        let key = ServerKey::from_hex(&format!("{}\n", "ab".repeat(32))).expect("hex");
        assert_eq!(format!("{key:?}"), "ServerKey(…)");
        assert!(matches!(
            ServerKey::from_hex("abc"),
            Err(KeyError::Malformed)
        ));
        assert!(matches!(
            ServerKey::from_hex(&"zz".repeat(32)),
            Err(KeyError::Malformed)
        ));
        assert_ne!(key.pseudonym_key(), key.0);
    }

    #[test]
    fn a_key_file_is_new_private_and_kept_out_of_the_data_directory() {
        let dir = tempfile::tempdir().expect("dir");
        let data = dir.path().join("data");
        std::fs::create_dir(&data).expect("data dir");
        let key = ServerKey::generate().expect("key");
        let outside = dir.path().join("repere.key");
        key.write_new_file(&outside).expect("write");
        assert!(matches!(
            key.write_new_file(&outside),
            Err(KeyError::Exists(_))
        ));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&outside)
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(ServerKey::from_file(&outside, &data).expect("read"), key);
        let inside = data.join("repere.key");
        key.write_new_file(&inside).expect("write");
        assert!(matches!(
            ServerKey::from_file(&inside, &data),
            Err(KeyError::InsideDataDir)
        ));
    }
}

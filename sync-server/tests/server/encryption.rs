//! The server's database at rest: encrypted under the server key, a plaintext one
//! encrypted once when a key is first given, and a clear error without the right key.

use repere_server::keys::ServerKey;
use repere_server::{Hub, SqliteStorage};
use std::sync::Arc;

#[test]
fn a_plaintext_database_is_encrypted_once_and_then_needs_its_key() {
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path().join("server");
    let org = {
        let hub = Hub::new(Arc::new(
            SqliteStorage::open_dir(&data, None).expect("plain"),
        ));
        hub.create_organisation("Mission Locale en clair")
            .expect("org")
    };
    let db = data.join("repere.db");
    assert!(
        std::fs::read(&db)
            .expect("db")
            .starts_with(b"SQLite format 3")
    );

    let key = ServerKey::generate().expect("key");
    let hub = Hub::new(Arc::new(
        SqliteStorage::open_dir(&data, Some(&key)).expect("encrypted on first open"),
    ));
    let kept = hub
        .storage()
        .read_with(|tx| tx.organisations())
        .expect("read");
    assert!(kept.iter().any(|o| o.id == org.id), "nothing lost");
    drop(hub);
    let bytes = std::fs::read(&db).expect("db");
    assert!(!bytes.starts_with(b"SQLite format 3"));
    assert!(
        !bytes.windows(7).any(|w| w == b"en clair"),
        "no plaintext left in the database file"
    );
    assert!(
        !data.join("repere.db-wal").exists() || {
            let wal = std::fs::read(data.join("repere.db-wal")).expect("wal");
            !wal.windows(8).any(|w| w == b"en clair")
        }
    );

    let without = SqliteStorage::open_dir(&data, None)
        .err()
        .expect("needs its key");
    assert!(without.to_string().contains("encrypted"), "{without}");
    let wrong = ServerKey::generate().expect("key");
    let refused = SqliteStorage::open_dir(&data, Some(&wrong))
        .err()
        .expect("wrong key");
    assert!(
        refused.to_string().contains("cannot be read with this key"),
        "{refused}"
    );
    // The right key still opens it, unchanged.
    assert!(SqliteStorage::open_dir(&data, Some(&key)).is_ok());
}

//! PostgreSQL only (skipped, with a note, without `REPERE_TEST_DATABASE_URL`): several
//! storages on one database behave like several server instances.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::Utc;
use repere_core::RecordKind;
use repere_server::storage::postgres::testing::fresh_database;
use repere_server::storage::{DocumentWrite, Organisation, StorageError, Team};
use repere_server::{PostgresStorage, Storage};
use uuid::Uuid;

use crate::common::{DATABASE_URL_VAR, database_url};

const INSTANCES: usize = 3;
const WRITERS_PER_INSTANCE: usize = 2;
const WRITES_PER_WRITER: usize = 30;

/// A small deterministic generator (xorshift) for the sleeps.
struct Jitter(u64);

impl Jitter {
    fn sleep(&mut self, max_ms: u64) {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        std::thread::sleep(Duration::from_micros(self.0 % (max_ms * 1000 + 1)));
    }
}

fn skipped() -> bool {
    if database_url().is_none() {
        eprintln!("skipped: set {DATABASE_URL_VAR} to run the PostgreSQL tests");
        return true;
    }
    false
}

#[test]
fn readers_of_several_instances_see_every_log_position_once_and_in_order() {
    if skipped() {
        return;
    }
    let base = database_url().expect("url");
    let database = fresh_database(&base).expect("test database");
    // Instances starting at once migrate once (the others wait for the migration lock).
    let url = database.url().to_string();
    let starting: Vec<_> = (0..INSTANCES)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || PostgresStorage::connect(&url))
        })
        .collect();
    let instances: Vec<Arc<dyn Storage>> = starting
        .into_iter()
        .map(|h| Arc::new(h.join().expect("thread").expect("connect")) as Arc<dyn Storage>)
        .collect();

    let org = Organisation {
        id: Uuid::now_v7(),
        name: "Mission Locale test".into(),
        created_at: Utc::now(),
    };
    let team = Team {
        id: Uuid::now_v7(),
        organisation_id: org.id,
        name: "Binôme A".into(),
        created_at: Utc::now(),
    };
    instances[0]
        .write_with(|tx| -> Result<(), StorageError> {
            tx.insert_organisation(&org)?;
            tx.insert_team(&team)
        })
        .expect("team");

    let writing = Arc::new(AtomicBool::new(true));
    let readers: Vec<_> = instances
        .iter()
        .map(|storage| {
            let storage = storage.clone();
            let writing = writing.clone();
            std::thread::spawn(move || {
                let mut seen = Vec::new();
                let mut cursor = 0u64;
                loop {
                    // Read whether writers are done before reading: the last pass then
                    // sees everything.
                    let last_pass = !writing.load(Ordering::SeqCst);
                    let docs = storage
                        .read_with(|tx| -> Result<_, StorageError> {
                            tx.documents_after(team.id, cursor, 7)
                        })
                        .expect("read");
                    if let Some(last) = docs.last() {
                        cursor = last.seq;
                    }
                    let empty = docs.is_empty();
                    seen.extend(docs.into_iter().map(|d| d.seq));
                    if last_pass && empty {
                        return seen;
                    }
                }
            })
        })
        .collect();

    let writers: Vec<_> = (0..INSTANCES * WRITERS_PER_INSTANCE)
        .map(|w| {
            let storage = instances[w % INSTANCES].clone();
            std::thread::spawn(move || {
                let mut jitter = Jitter(0x9e37_79b9_7f4a_7c15 ^ (w as u64 + 1));
                let mut seqs = Vec::new();
                for _ in 0..WRITES_PER_WRITER {
                    let id = Uuid::now_v7();
                    let (seq, below) = storage
                        .write_with(|tx| -> Result<_, StorageError> {
                            // Something read first: the snapshot is taken before the
                            // position, as in a sync (authentication, then merges).
                            tx.device(id)?;
                            jitter.sleep(2);
                            let seq = tx.put_document(DocumentWrite {
                                id,
                                kind: RecordKind::Youth,
                                team_id: team.id,
                                doc: b"doc",
                                heads: &[[1; 32]],
                                fields: "{}",
                                device_id: None,
                                received_at: Utc::now(),
                                generation: 0,
                            })?;
                            jitter.sleep(2);
                            // What a pull after the pushes would see: every position
                            // below this one (a sync's cursor moves past them all).
                            let below: Vec<u64> = tx
                                .documents_after(team.id, 0, usize::MAX)?
                                .into_iter()
                                .map(|d| d.seq)
                                .collect();
                            Ok((seq, below))
                        })
                        .expect("write");
                    assert_eq!(
                        below,
                        (1..=seq).collect::<Vec<_>>(),
                        "the transaction that took {seq} sees every position before it"
                    );
                    seqs.push(seq);
                    jitter.sleep(1);
                }
                seqs
            })
        })
        .collect();
    let mut written = BTreeSet::new();
    for w in writers {
        for seq in w.join().expect("writer") {
            assert!(written.insert(seq), "position {seq} given twice");
        }
    }
    writing.store(false, Ordering::SeqCst);
    let all: Vec<u64> = written.into_iter().collect();
    assert_eq!(
        all.len(),
        INSTANCES * WRITERS_PER_INSTANCE * WRITES_PER_WRITER
    );
    for (i, r) in readers.into_iter().enumerate() {
        let seen = r.join().expect("reader");
        assert_eq!(
            seen, all,
            "reader {i} saw every position exactly once, in order, none passed over"
        );
    }
    let last = instances[1]
        .read_with(|tx| -> Result<_, StorageError> { tx.last_seq() })
        .expect("last");
    assert_eq!(Some(&last), all.last());
    drop(instances);
    drop(database);
}

#[test]
fn concurrent_merges_of_one_record_on_several_instances_lose_no_update() {
    if skipped() {
        return;
    }
    let base = database_url().expect("url");
    let database = fresh_database(&base).expect("test database");
    let instances: Vec<Arc<dyn Storage>> = (0..INSTANCES)
        .map(|_| {
            Arc::new(PostgresStorage::connect(database.url()).expect("connect")) as Arc<dyn Storage>
        })
        .collect();
    let team = Team {
        id: Uuid::now_v7(),
        organisation_id: Uuid::now_v7(),
        name: "Binôme A".into(),
        created_at: Utc::now(),
    };
    let record = Uuid::now_v7();
    // The document holds a counter: each write reads it, waits, and stores one more, as a
    // sync reads the stored document, merges and stores the result.
    let team_id = team.id;
    let write = move |tx: &mut dyn repere_server::storage::Tx, n: u64| {
        let doc = n.to_be_bytes();
        tx.put_document(DocumentWrite {
            id: record,
            kind: RecordKind::Youth,
            team_id,
            doc: &doc,
            heads: &[],
            fields: "{}",
            device_id: None,
            received_at: Utc::now(),
            generation: 0,
        })
    };
    instances[0]
        .write_with(|tx| -> Result<_, StorageError> {
            tx.insert_organisation(&Organisation {
                id: team.organisation_id,
                name: "Mission Locale test".into(),
                created_at: Utc::now(),
            })?;
            tx.insert_team(&team)?;
            write(tx, 0)
        })
        .expect("record");
    let writers: Vec<_> = (0..INSTANCES * WRITERS_PER_INSTANCE)
        .map(|w| {
            let storage = instances[w % INSTANCES].clone();
            std::thread::spawn(move || {
                let mut jitter = Jitter(0x2545_f491_4f6c_dd1d ^ (w as u64 + 1));
                for _ in 0..WRITES_PER_WRITER / 2 {
                    storage
                        .write_with(|tx| -> Result<_, StorageError> {
                            let stored = tx.document(record)?.expect("stored");
                            let n = u64::from_be_bytes(stored.doc.try_into().expect("8 bytes"));
                            jitter.sleep(1);
                            write(tx, n + 1)
                        })
                        .expect("write");
                }
            })
        })
        .collect();
    for w in writers {
        w.join().expect("writer");
    }
    let stored = instances[2]
        .read_with(|tx| -> Result<_, StorageError> { tx.document(record) })
        .expect("read")
        .expect("stored");
    let n = u64::from_be_bytes(stored.doc.try_into().expect("8 bytes"));
    assert_eq!(
        n,
        (INSTANCES * WRITERS_PER_INSTANCE * WRITES_PER_WRITER / 2) as u64,
        "every increment is kept: a merge that read an older document runs again"
    );
    drop(instances);
    drop(database);
}

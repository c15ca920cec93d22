//! A server restored from a backup, against the real server process: the tablets notice
//! the new log epoch, give back what the server lost, and miss nothing written after.

use std::collections::BTreeSet;

use repere_core::sync::protocol::{self, SyncRequest};
use repere_core::sync::{Transport, TransportError};
use repere_core::{RecordKind, SyncState};
use repere_tests::{Device, TestServer, snapshot};
use repere_transport::HttpTransport;
use uuid::Uuid;

fn youth_ids(d: &Device) -> BTreeSet<Uuid> {
    d.store
        .ids()
        .expect("ids")
        .into_iter()
        .filter(|(k, _)| *k == RecordKind::Youth)
        .map(|(_, id)| id)
        .collect()
}

fn new_youth(d: &mut Device) -> Uuid {
    let y = d.demo.youth();
    d.store.create(&y).expect("valid youth")
}

#[test]
fn a_restored_server_loses_nothing_acknowledged_and_skips_nothing_written_after() {
    let mut server = TestServer::start();
    let team = server.setup(1)[0];
    let mut t1 = Device::enrolled(&server, team, 1);
    let mut t2 = Device::enrolled(&server, team, 2);
    let kept = new_youth(&mut t1);
    let to_erase = new_youth(&mut t1);
    t1.sync(&server).expect("sync");
    let backup = server.data.path().join("sauvegarde.db");
    server.admin(&["backup", "--to", backup.to_str().expect("utf-8 path")]);

    // After the backup: acknowledged records the restored server will not have.
    let lost = new_youth(&mut t1);
    let lost_too = new_youth(&mut t1);
    t1.sync(&server).expect("sync");
    assert_eq!(t1.store.sync_state(lost).expect("state"), SyncState::Synced);
    t2.sync(&server).expect("t2 has everything");

    // On SQLite the data directory's lock tells a running server; on PostgreSQL the
    // instances cannot be seen from the command: the operator stops them (README).
    if server.database.is_none() {
        let running =
            server.try_admin(&["restore", "--from", backup.to_str().expect("utf-8 path")]);
        assert!(
            running
                .as_ref()
                .is_err_and(|e| e.contains("stop it before restoring")),
            "a restore under a running server is refused: {running:?}"
        );
    }
    server.kill();
    server.admin(&["restore", "--from", backup.to_str().expect("utf-8 path")]);
    server.restart();

    // The restored server is written past t1's cursor: by t2, and by an erasure.
    let mut after = Vec::new();
    for _ in 0..6 {
        after.push(new_youth(&mut t2));
    }
    t2.sync(&server).expect("t2 syncs after the restore");
    server.admin(&["erase", &to_erase.to_string()]);

    let report = t1.sync(&server).expect("t1 syncs after the restore");
    assert!(report.server_restored, "{report:?}");
    t2.sync(&server).expect("t2 again");
    t1.sync(&server).expect("t1 again");

    let expected: BTreeSet<Uuid> = [kept, lost, lost_too]
        .into_iter()
        .chain(after.iter().copied())
        .collect();
    assert_eq!(
        youth_ids(&t1),
        expected,
        "t1: every record, the erased one gone"
    );
    assert_eq!(
        youth_ids(&t2),
        expected,
        "t2: the lost records came back from t1"
    );
    assert_eq!(snapshot(&t1.store), snapshot(&t2.store));
    for d in [&t1, &t2] {
        assert!(d.store.unsynced().expect("unsynced").is_empty());
    }
    // A fresh tablet gets them all from the server.
    let fresh = {
        let mut d = Device::enrolled(&server, team, 3);
        d.sync(&server).expect("fresh tablet");
        d
    };
    assert_eq!(youth_ids(&fresh), expected);
}

#[test]
fn the_server_answers_a_version_1_tablet_in_version_1() {
    let server = TestServer::start();
    let team = server.setup(1)[0];
    let mut d = Device::enrolled(&server, team, 4);
    new_youth(&mut d);
    d.sync(&server).expect("sync");
    let token = {
        // The bearer token stays in the store; a version 1 request is built by hand.
        let batch = d
            .store
            .sync_prepare(
                &repere_core::sync::SyncOptions::default(),
                &Default::default(),
            )
            .expect("prepare");
        batch.token().to_string()
    };
    let body = protocol::encode_as(
        1,
        &SyncRequest {
            cursor: 0,
            pushes: vec![],
            pull_limit: 10,
            team: Default::default(),
            report: Default::default(),
            access_requests: Vec::new(),
        },
    );
    let transport = HttpTransport::new(&server.url()).expect("transport");
    let bytes = transport
        .post(protocol::SYNC_PATH, Some(&token), body)
        .expect("answer");
    assert_eq!(protocol::version_of(&bytes), Ok(1));
    let answer = protocol::decode_response(&bytes).expect("a version 1 answer");
    assert_eq!(answer.docs.len(), 1);
    assert_eq!(answer.epoch, 0);

    // A version this server does not speak: refused, saying which it speaks.
    let mut future = protocol::encode(&SyncRequest {
        cursor: 0,
        pushes: vec![],
        pull_limit: 10,
        team: Default::default(),
        report: Default::default(),
        access_requests: Vec::new(),
    });
    future[2] = 9;
    match transport.post(protocol::SYNC_PATH, Some(&token), future) {
        Err(TransportError::Status {
            status: 400,
            body: Some(body),
        }) => {
            assert_eq!(body.error, protocol::ErrorCode::UnsupportedVersion);
            assert_eq!(
                body.versions,
                Some((protocol::PROTOCOL_MIN_VERSION, protocol::PROTOCOL_VERSION))
            );
        }
        other => panic!("expected unsupported_version, got {other:?}"),
    }
}

#[test]
fn restoring_an_older_backup_erases_again_what_was_erased_since() {
    let mut server = TestServer::start();
    let team = server.setup(1)[0];
    let mut t1 = Device::enrolled(&server, team, 5);
    let kept = new_youth(&mut t1);
    let erased = new_youth(&mut t1);
    let visit = t1.demo.contact(&[erased]);
    let visit = t1.store.create(&visit).expect("visit");
    t1.sync(&server).expect("sync");
    let backup = server.keys.as_ref().expect("keys").path().join("avant.db");
    server.admin(&["backup", "--to", backup.to_str().expect("utf-8 path")]);

    // Erased after the backup, with the visit (the cascade).
    server.admin(&["erase", &erased.to_string()]);
    server.kill();
    server.admin(&["restore", "--from", backup.to_str().expect("utf-8 path")]);
    server.restart();

    // A fresh tablet pulls the restored server: the erased records are not there.
    let mut fresh = Device::enrolled(&server, team, 6);
    fresh.sync(&server).expect("fresh tablet");
    assert_eq!(youth_ids(&fresh), BTreeSet::from([kept]));
    assert!(
        fresh.store.contact(visit).is_err(),
        "the visit went with them"
    );
    // The tablet that made them does not send them back either.
    t1.sync(&server).expect("t1");
    fresh.sync(&server).expect("fresh again");
    assert_eq!(youth_ids(&fresh), BTreeSet::from([kept]));
    assert_eq!(youth_ids(&t1), BTreeSet::from([kept]));
}

#[test]
fn restoring_an_older_backup_rectifies_again_what_was_rectified_since() {
    use repere_core::records::{Contact, ProfileFlag, Youth};

    let mut server = TestServer::start();
    let team = server.setup(1)[0];
    let mut t1 = Device::enrolled(&server, team, 7);
    let mut youth = t1.demo.youth();
    youth.profile_flags = [ProfileFlag::Disability].into();
    let flagged = t1.store.create(&youth).expect("youth");
    let erased = new_youth(&mut t1);
    let group = t1.demo.contact(&[flagged, erased]);
    let group = t1.store.create(&group).expect("group visit");
    t1.sync(&server).expect("sync");
    let backup = server.keys.as_ref().expect("keys").path().join("avant.db");
    server.admin(&["backup", "--to", backup.to_str().expect("utf-8 path")]);

    // After the backup: the flag rectified away; a young person of the group visit erased
    // (the visit rewritten without them).
    server.admin(&[
        "rectify",
        &flagged.to_string(),
        "--remove",
        "profile_flags=disability",
    ]);
    server.admin(&["erase", &erased.to_string()]);
    t1.sync(&server).expect("sync");
    server.kill();
    let said = server.admin(&["restore", "--from", backup.to_str().expect("utf-8 path")]);
    assert!(said.is_empty() || !said.contains("disability"), "{said}");
    server.restart();

    let mut fresh = Device::enrolled(&server, team, 8);
    fresh.sync(&server).expect("fresh tablet");
    let read = fresh.store.get::<Youth>(flagged).expect("youth");
    assert!(read.profile_flags.is_empty(), "the flag does not come back");
    assert_eq!(fresh.store.history(flagged).expect("history").len(), 1);
    let visit = fresh.store.get::<Contact>(group).expect("group visit");
    assert_eq!(
        visit.youth_ids.into_iter().collect::<Vec<_>>(),
        vec![flagged]
    );
    // The tablet that holds the rectified generation replaces it by the one rewritten
    // again and sends nothing of the old one back.
    t1.sync(&server).expect("t1");
    fresh.sync(&server).expect("fresh again");
    assert!(
        fresh
            .store
            .get::<Youth>(flagged)
            .expect("youth")
            .profile_flags
            .is_empty()
    );
    assert!(
        t1.store
            .get::<Youth>(flagged)
            .expect("youth")
            .profile_flags
            .is_empty()
    );
    assert_eq!(
        t1.store.sync_state(group).expect("state"),
        repere_core::SyncState::Synced
    );
}

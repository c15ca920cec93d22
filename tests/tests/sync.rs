//! End-to-end sync: the real server process, several tablets, bad networks.

use std::collections::BTreeSet;

use repere_core::records::{Contact, Sex, Youth, YouthStatus};
use repere_core::sync::Cancellation;
use repere_core::{Error, RecordKind, SyncState};
use repere_tests::proxy::{Cut, CutProxy, Direction};
use repere_tests::tls::TlsRelay;
use repere_tests::{Device, TestServer, snapshot, status_of};
use repere_transport::SyncClient;
use uuid::Uuid;

fn new_youth(d: &mut Device) -> Uuid {
    let y = d.demo.youth();
    d.store.create(&y).expect("valid youth")
}

#[test]
fn two_tablets_converge_in_either_order_with_visible_conflicts() {
    for reverse in [false, true] {
        let server = TestServer::start();
        let team = server.setup(1)[0];
        let mut a = Device::enrolled(&server, team, 1);
        let mut b = Device::enrolled(&server, team, 2);
        a.store.set_member(Uuid::from_u128(0xa));
        b.store.set_member(Uuid::from_u128(0xb));
        let id = new_youth(&mut a);
        a.sync(&server).expect("sync");
        b.sync(&server).expect("sync");
        assert_eq!(snapshot(&a.store), snapshot(&b.store));

        // Offline: different fields on each tablet, and the same field on both.
        a.store
            .edit::<Youth>(id, |y| y.alias = Some("Kéké".into()))
            .expect("edit");
        b.store
            .edit::<Youth>(id, |y| y.sex = Some(Sex::Other))
            .expect("edit");
        a.store
            .edit::<Youth>(id, |y| y.status = YouthStatus::Mobilised)
            .expect("edit");
        b.store
            .edit::<Youth>(id, |y| y.status = YouthStatus::Helped)
            .expect("edit");
        let (first, second) = if reverse {
            (&mut b, &mut a)
        } else {
            (&mut a, &mut b)
        };
        first.sync(&server).expect("sync");
        second.sync(&server).expect("sync");
        first.sync(&server).expect("sync");

        assert_eq!(snapshot(&a.store), snapshot(&b.store));
        let y = a.store.youth(id).expect("reads");
        assert_eq!(y.alias.as_deref(), Some("Kéké"));
        assert_eq!(y.sex, Some(Sex::Other));
        for d in [&a, &b] {
            let conflicts = d.store.conflicts(id).expect("conflicts");
            assert_eq!(conflicts.len(), 1);
            assert_eq!(conflicts[0].field, "status");
            let authors: BTreeSet<_> = conflicts[0]
                .values
                .iter()
                .filter_map(|v| v.author.map(|a| a.member_id))
                .collect();
            assert_eq!(
                authors,
                BTreeSet::from([Uuid::from_u128(0xa), Uuid::from_u128(0xb)])
            );
            assert_eq!(d.store.sync_state(id).expect("state"), SyncState::Synced);
        }
        // The server holds the same document: a fresh tablet gets exactly it.
        let mut fresh = Device::enrolled(&server, team, 3);
        fresh.sync(&server).expect("sync");
        assert_eq!(snapshot(&fresh.store), snapshot(&a.store));
    }
}

#[test]
fn another_team_never_receives_nor_writes_the_records() {
    let server = TestServer::start();
    let teams = server.setup(2);
    let mut a = Device::enrolled(&server, teams[0], 1);
    let mut other = Device::enrolled(&server, teams[1], 2);
    let id = new_youth(&mut a);
    let c = a.demo.contact(&[id]);
    a.store.create(&c).expect("valid");
    a.sync(&server).expect("sync");
    let own = new_youth(&mut other);
    let report = other.sync(&server).expect("sync");
    assert_eq!(report.pulled, 0, "nothing of team A");
    assert_eq!(
        other.store.ids().expect("ids"),
        vec![(RecordKind::Youth, own)]
    );

    // Even holding a copy of team A's record, team B cannot push into it, nor move it.
    let (kind, doc) = a.store.export_document(id).expect("export");
    other.store.merge_remote(kind, id, &doc).expect("merge");
    other
        .store
        .edit::<Youth>(id, |y| y.alias = Some("intrus".into()))
        .expect("edit");
    other.sync(&server).expect("sync");
    assert!(matches!(
        other.store.sync_state(id).expect("state"),
        SyncState::Rejected { .. }
    ));
    other
        .store
        .edit::<Youth>(id, |y| y.team_id = teams[1])
        .expect("edit");
    other.sync(&server).expect("sync");
    assert!(matches!(
        other.store.sync_state(id).expect("state"),
        SyncState::Rejected { .. }
    ));
    a.sync(&server).expect("sync");
    assert_ne!(
        a.store.youth(id).expect("reads").alias.as_deref(),
        Some("intrus")
    );
    assert_eq!(a.store.youth(id).expect("reads").team_id, teams[0]);
    let mut fresh = Device::enrolled(&server, teams[0], 3);
    fresh.sync(&server).expect("sync");
    assert_ne!(
        fresh.store.youth(id).expect("reads").alias.as_deref(),
        Some("intrus")
    );
}

#[test]
fn a_revoked_tablet_is_refused_and_keeps_its_unsent_records() {
    let server = TestServer::start();
    let team = server.setup(1)[0];
    let mut d = Device::enrolled(&server, team, 1);
    new_youth(&mut d);
    d.sync(&server).expect("sync");
    let device_id = d
        .store
        .enrolment()
        .expect("read")
        .expect("enrolled")
        .device_id;
    server.admin(&["revoke-device", &device_id.to_string()]);
    let unsent = new_youth(&mut d);
    assert!(matches!(d.sync(&server), Err(Error::DeviceRevoked)));
    assert_eq!(
        d.store.sync_state(unsent).expect("state"),
        SyncState::NeverSynced
    );
    // Re-enrolled with a new code, it sends what it kept.
    d.enrol(&server.url(), &server.code(team))
        .expect("re-enrol");
    d.sync(&server).expect("sync");
    assert_eq!(
        d.store.sync_state(unsent).expect("state"),
        SyncState::Synced
    );
}

#[test]
fn erasure_reaches_every_tablet_and_a_stale_one_cannot_bring_it_back() {
    let server = TestServer::start();
    let team = server.setup(1)[0];
    let mut a = Device::enrolled(&server, team, 1);
    let mut b = Device::enrolled(&server, team, 2);
    let mut stale = Device::enrolled(&server, team, 3);
    let id = new_youth(&mut a);
    let keep = new_youth(&mut a);
    a.sync(&server).expect("sync");
    b.sync(&server).expect("sync");
    stale.sync(&server).expect("sync");
    stale
        .store
        .edit::<Youth>(id, |y| y.alias = Some("hors ligne".into()))
        .expect("offline edit");

    server.admin(&["erase", &id.to_string()]);
    for d in [&mut a, &mut b] {
        let report = d.sync(&server).expect("sync");
        assert_eq!(report.erased, 1);
        assert_eq!(d.store.kind_of(id).expect("lookup"), None);
        assert!(d.store.kind_of(keep).expect("lookup").is_some());
    }
    stale.sync(&server).expect("sync");
    assert_eq!(
        stale.store.kind_of(id).expect("lookup"),
        None,
        "the stale copy is deleted"
    );
    assert!(matches!(
        stale.store.merge_remote(RecordKind::Youth, id, b"x"),
        Err(Error::Erased { .. })
    ));
    let mut fresh = Device::enrolled(&server, team, 4);
    fresh.sync(&server).expect("sync");
    assert_eq!(
        fresh.store.ids().expect("ids"),
        vec![(RecordKind::Youth, keep)]
    );
}

#[test]
fn connections_cut_at_any_byte_lose_and_duplicate_nothing() {
    let server = TestServer::start();
    let team = server.setup(1)[0];
    let proxy = CutProxy::start(server.port);
    let mut d = Device::enrolled(&server, team, 1);
    let mut created = Vec::new();
    let mut failures = 0;
    let cuts: Vec<usize> = vec![
        1, 16, 64, 150, 200, 300, 500, 800, 1200, 2000, 3000, 5000, 8000,
    ];
    for (i, &after_bytes) in cuts.iter().enumerate() {
        for direction in [Direction::Up, Direction::Down] {
            for _ in 0..3 {
                let youth = new_youth(&mut d);
                created.push(youth);
                let c = d.demo.contact(&[youth]);
                created.push(d.store.create(&c).expect("valid"));
            }
            // Every try of this round is cut: the sync fails, and nothing is lost.
            proxy.arm(Some(Cut {
                direction,
                after_bytes,
                times: 3,
            }));
            let failed = d.sync_via(&proxy.url());
            // A cut past the end of a small exchange lets it through.
            if failed.is_ok() {
                continue;
            }
            assert!(
                matches!(failed, Err(Error::Network(_)) | Err(Error::Protocol(_))),
                "cut {i}: {failed:?}"
            );
            failures += 1;
            // One cut, then the retry goes through.
            proxy.arm(Some(Cut {
                direction,
                after_bytes,
                times: 1,
            }));
            d.sync_via(&proxy.url()).expect("retry succeeds");
        }
    }
    assert!(
        failures >= cuts.len(),
        "most cuts must break an exchange, only {failures} did"
    );
    proxy.arm(None);
    d.sync_via(&proxy.url()).expect("sync");
    assert!(d.store.unsynced().expect("list").is_empty());
    let mut fresh = Device::enrolled(&server, team, 2);
    fresh.sync(&server).expect("sync");
    let got: BTreeSet<Uuid> = fresh
        .store
        .ids()
        .expect("ids")
        .into_iter()
        .map(|(_, id)| id)
        .collect();
    assert_eq!(
        got,
        created.iter().copied().collect::<BTreeSet<_>>(),
        "every record once, none lost"
    );
    assert_eq!(snapshot(&fresh.store), snapshot(&d.store));
}

#[test]
fn a_server_killed_mid_push_loses_nothing_acknowledged() {
    let mut server = TestServer::start();
    let team = server.setup(1)[0];
    let mut d = Device::enrolled(&server, team, 1);
    let mut all = Vec::new();
    let mut interrupted = 0;
    for round in 0..6u64 {
        let batch: Vec<Youth> = (0..150).map(|_| d.demo.youth()).collect();
        d.store
            .batch(|b| {
                batch
                    .iter()
                    .try_for_each(|y| b.create(y).map(|id| all.push(id)))
            })
            .expect("batch");
        let url = server.url();
        let handle = std::thread::spawn(move || {
            let result = d.sync_via(&url);
            (d, result)
        });
        std::thread::sleep(std::time::Duration::from_millis(5 + round * 15));
        server.kill();
        let (back, _) = handle.join().expect("sync thread");
        d = back;
        let acknowledged: Vec<Uuid> = all
            .iter()
            .copied()
            .filter(|id| d.store.sync_state(*id).expect("state") == SyncState::Synced)
            .collect();
        if acknowledged.len() < all.len() {
            interrupted += 1;
        }
        server.restart();
        let mut check = Device::enrolled(&server, team, 100 + round);
        check.sync(&server).expect("sync");
        for id in &acknowledged {
            assert!(
                check.store.kind_of(*id).expect("lookup").is_some(),
                "acknowledged record lost"
            );
        }
        d.sync(&server).expect("completes on retry");
    }
    assert!(interrupted > 0, "the kill never landed mid-sync");
    assert!(d.store.unsynced().expect("list").is_empty());
    let mut fresh = Device::enrolled(&server, team, 99);
    fresh.sync(&server).expect("sync");
    assert_eq!(fresh.store.ids().expect("ids").len(), all.len());
}

#[test]
fn garbage_truncated_oversized_and_replayed_requests_get_clear_errors() {
    let server = TestServer::start();
    let team = server.setup(1)[0];
    let mut d = Device::enrolled(&server, team, 1);
    new_youth(&mut d);
    d.sync(&server).expect("sync");
    let token = {
        // The token is inside the encrypted store: enrol a raw client instead.
        let code = server.code(team);
        let body =
            repere_core::sync::protocol::encode(&repere_core::sync::protocol::EnrolRequest {
                code,
                device_label: "raw".into(),
                writer: None,
                previous_token: None,
            });
        let resp = post(server.port, "/v1/enrol", None, &body);
        assert_eq!(resp.status, 200, "{}", resp.head);
        repere_core::sync::protocol::decode::<repere_core::sync::protocol::EnrolResponse>(
            &resp.body,
        )
        .expect("enrol")
        .token
    };
    let request = repere_core::sync::protocol::encode(&repere_core::sync::protocol::SyncRequest {
        cursor: 0,
        pushes: vec![],
        pull_limit: 100,
        team: Default::default(),
        report: Default::default(),
        access_requests: Vec::new(),
    });
    let cases: Vec<(&str, Option<&str>, Vec<u8>, u16)> = vec![
        (
            "garbage",
            Some(&token),
            b"\x00\xffnot a message".to_vec(),
            400,
        ),
        ("truncated", Some(&token), request[..3].to_vec(), 400),
        (
            "other version",
            Some(&token),
            [b"RP\x09\x00".as_slice(), &request[4..]].concat(),
            400,
        ),
        ("no token", None, request.clone(), 401),
        ("bad token", Some("forged"), request.clone(), 401),
        ("oversized", Some(&token), vec![b'R'; 9 * 1024 * 1024], 413),
    ];
    for (name, tok, body, status) in cases {
        let resp = post(server.port, "/v1/sync", tok, &body);
        assert_eq!(resp.status, status, "{name}: {}", resp.head);
        let text = String::from_utf8_lossy(&resp.body);
        assert!(
            text.contains("\"error\""),
            "{name}: JSON error body, got {text}"
        );
        assert!(server.healthy(), "{name}: still serving");
    }
    // A replayed request is harmless: same answer, nothing written twice.
    let first = post(server.port, "/v1/sync", Some(&token), &request);
    let second = post(server.port, "/v1/sync", Some(&token), &request);
    assert_eq!(first.status, 200);
    assert_eq!(first.body, second.body);
    let mut fresh = Device::enrolled(&server, team, 2);
    fresh.sync(&server).expect("sync");
    assert_eq!(fresh.store.ids().expect("ids").len(), 1);
}

struct Answer {
    status: u16,
    head: String,
    body: Vec<u8>,
}

fn post(port: u16, path: &str, token: Option<&str>, body: &[u8]) -> Answer {
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
         Content-Type: application/x-repere-sync\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(t) = token {
        req.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    req.push_str("\r\n");
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body);
    let resp = raw_bytes(port, &bytes);
    let split = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(resp.len());
    let head = String::from_utf8_lossy(&resp[..split]).to_string();
    Answer {
        status: status_of(&head),
        head,
        body: resp.get(split + 4..).unwrap_or_default().to_vec(),
    }
}

fn raw_bytes(port: u16, bytes: &[u8]) -> Vec<u8> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .expect("timeout");
    // The server may answer 413 and close before the whole body is sent.
    let _ = s.write_all(bytes);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

#[test]
fn contacts_and_notes_merge_through_the_server() {
    let server = TestServer::start();
    let team = server.setup(1)[0];
    let mut a = Device::enrolled(&server, team, 1);
    let mut b = Device::enrolled(&server, team, 2);
    let y = new_youth(&mut a);
    let c = a.demo.contact(&[y]);
    let cid = a.store.create(&c).expect("valid");
    a.sync(&server).expect("sync");
    b.sync(&server).expect("sync");
    a.store
        .edit::<Contact>(cid, |c| c.notes.push_str(" [A]"))
        .expect("edit");
    b.store
        .edit::<Contact>(cid, |c| c.notes.insert_str(0, "[B] "))
        .expect("edit");
    a.sync(&server).expect("sync");
    b.sync(&server).expect("sync");
    a.sync(&server).expect("sync");
    let notes = a.store.contact(cid).expect("reads").notes;
    assert!(
        notes.starts_with("[B] ") && notes.ends_with(" [A]"),
        "{notes}"
    );
    assert_eq!(b.store.contact(cid).expect("reads").notes, notes);
}

#[test]
fn a_fresh_tablet_pulls_many_pages_in_order() {
    let server = TestServer::start();
    let team = server.setup(1)[0];
    let mut a = Device::enrolled(&server, team, 1);
    let batch: Vec<Youth> = (0..1200).map(|_| a.demo.youth()).collect();
    a.store
        .batch(|b| batch.iter().try_for_each(|y| b.create(y).map(drop)))
        .expect("batch");
    a.sync(&server).expect("push");
    let mut fresh = Device::enrolled(&server, team, 2);
    let transport = repere_transport::HttpTransport::new(&server.url()).expect("transport");
    let options = repere_core::sync::SyncOptions {
        pull_limit: 100,
        ..repere_tests::fast_retries()
    };
    let mut rounds = Vec::new();
    let report = fresh
        .store
        .sync(&transport, &options, &mut |p| rounds.push(p.pulled))
        .expect("sync");
    assert_eq!(report.pulled, 1200);
    assert!(report.rounds >= 12, "{} rounds", report.rounds);
    assert!(
        rounds.windows(2).all(|w| w[0] < w[1]),
        "progress grows page by page"
    );
    assert_eq!(snapshot(&fresh.store), snapshot(&a.store));
    assert_eq!(
        fresh.store.search_youth("a", 2000).expect("search").len(),
        { a.store.search_youth("a", 2000).expect("search").len() }
    );
    // Nothing new: one round trip.
    assert_eq!(fresh.sync(&server).expect("sync").rounds, 1);
}

#[test]
fn syncs_over_https_reuse_the_store_s_connection_without_a_new_handshake() {
    let server = TestServer::start();
    let team = server.setup(1)[0];
    let relay = TlsRelay::start(server.port);
    let Device {
        dir: _dir,
        store,
        mut demo,
        ..
    } = Device::new(team, 41);
    let client = SyncClient::with_extra_root(store, repere_tests::tls::CA_PEM);
    client
        .enrol(&relay.url(), &server.code(team), "tablette https", false)
        .expect("enrols over https");
    client.store().create(&demo.youth()).expect("youth");
    let never = Cancellation::new();
    let first = client.sync(&never, &mut |_| {}).expect("first sync");
    assert_eq!(first.acknowledged, 1);
    assert_eq!(
        relay.handshakes(),
        1,
        "enrolment and sync on one TLS connection"
    );
    let second = client.sync(&never, &mut |_| {}).expect("empty sync");
    assert_eq!(
        (second.rounds, second.pushed, second.pulled),
        (1, 0, 0),
        "an empty sync is one round trip"
    );
    assert_eq!(
        relay.handshakes(),
        1,
        "no new handshake for the second sync"
    );
    // The platform's trust store alone does not know the test authority: refused.
    let Device {
        dir: _d2, store, ..
    } = Device::new(team, 42);
    let untrusting = SyncClient::new(store);
    assert!(matches!(
        untrusting.enrol(&relay.url(), &server.code(team), "tablette", false),
        Err(repere_transport::ClientError::Core(
            repere_core::Error::Network(_)
        ))
    ));
}

#[test]
fn a_re_enrolled_tablet_pulls_what_it_holds_without_rewriting_anything() {
    let server = TestServer::start();
    let team = server.setup(1)[0];
    let mut a = Device::enrolled(&server, team, 1);
    let youth: Vec<Uuid> = (0..30).map(|_| new_youth(&mut a)).collect();
    for y in &youth {
        let c = a.demo.contact(&[*y]);
        a.store.create(&c).expect("contact");
    }
    let pushed = a.sync(&server).expect("push");
    assert_eq!(pushed.acknowledged, 60);
    let ids = a.store.ids().expect("ids");
    let before: Vec<_> = ids
        .iter()
        .map(|(_, id)| a.store.export_document(*id).expect("document"))
        .collect();
    assert!(
        ids.iter()
            .all(|(_, id)| a.store.sync_state(*id).expect("state") == SyncState::Synced),
        "acknowledged whole: synced"
    );
    // Re-enrolment restarts the pull at 0: every record comes again.
    a.enrol(&server.url(), &server.code(team))
        .expect("re-enrols");
    // One record edited since: pushed in the same sync, never taken as in step.
    let edited = youth[0];
    a.store
        .edit(edited, |y: &mut Youth| y.alias = Some("Kiki".into()))
        .expect("edit");
    let written = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = written.clone();
    a.store
        .subscribe(std::sync::Arc::new(move |e: &repere_core::StoreEvent| {
            seen.lock()
                .expect("lock")
                .extend(e.changed.iter().map(|(_, id)| *id));
        }));
    let report = a.sync(&server).expect("re-pull");
    assert_eq!(report.pulled, 59, "all but the record pushed in this sync");
    assert_eq!(report.acknowledged, 1);
    for ((_, id), old) in ids.iter().zip(&before) {
        assert_eq!(a.store.sync_state(*id).expect("state"), SyncState::Synced);
        if *id != edited {
            assert_eq!(
                &a.store.export_document(*id).expect("document"),
                old,
                "a copy in step is left byte for byte"
            );
        }
    }
    assert_eq!(
        a.store.youth(edited).expect("youth").alias.as_deref(),
        Some("Kiki")
    );
    let written = written.lock().expect("lock");
    assert!(written.is_empty(), "the re-pull wrote {written:?}");
}

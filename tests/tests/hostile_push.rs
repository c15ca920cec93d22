//! A tablet running a modified app, against the real server process: what it pushes is
//! read within bounds, refused alone, and never costs the server memory out of proportion
//! with the request; the server keeps answering `/healthz` meanwhile.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ObjType};
use repere_core::RecordKind;
use repere_core::records::{Contact, ReviewTask, ReviewTaskStatus};
use repere_core::sync::protocol::{self, PushDoc, RejectCode, SyncRequest, SyncResponse};
use repere_tests::{Device, TestServer};
use uuid::Uuid;

/// POSTs a sync body with the tablet's token over a plain socket; returns the status and
/// the body.
fn post_sync(port: u16, token: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        protocol::SYNC_PATH,
        protocol::CONTENT_TYPE,
        body.len()
    );
    s.write_all(head.as_bytes()).expect("head");
    s.write_all(body).expect("body");
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let split = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP answer");
    let status = String::from_utf8_lossy(&out[..split])
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, out[split + 4..].to_vec())
}

fn push_alone(
    port: u16,
    token: &str,
    id: Uuid,
    kind: RecordKind,
    changes: Vec<u8>,
) -> SyncResponse {
    let body = protocol::encode(&SyncRequest {
        cursor: 0,
        pushes: vec![PushDoc {
            id,
            kind: kind.into(),
            changes,
        }],
        pull_limit: 1,
        team: Default::default(),
        report: Default::default(),
        access_requests: Vec::new(),
    });
    let (status, body) = post_sync(port, token, &body);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    protocol::decode_response(&body).expect("an answer")
}

/// The server's peak resident memory so far, in KiB (Linux).
fn peak_kib(server: &TestServer) -> u64 {
    let status =
        std::fs::read_to_string(format!("/proc/{}/status", server.pid())).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn assert_healthy_within_a_second(server: &TestServer) {
    let t = Instant::now();
    assert!(server.healthy(), "/healthz answers");
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
}

/// An honest contact's document, then rewritten by the modified app.
fn contact_doc(d: &mut Device) -> (Uuid, Vec<u8>) {
    let youth = d.demo.youth();
    let youth_id = d.store.create(&youth).expect("youth");
    let contact = d.demo.contact(&[youth_id]);
    let id = d.store.create(&contact).expect("contact");
    let (_, bytes) = d.store.export_document(id).expect("export");
    (id, bytes)
}

#[test]
fn a_deflated_string_bomb_is_refused_without_the_memory_it_would_take() {
    let server = TestServer::start();
    let team = server.setup(1)[0];
    let mut d = Device::enrolled(&server, team, 1);
    d.sync(&server).expect("first sync");
    let token = d.token();
    let before = peak_kib(&server);
    // 256 MB of one letter in a note: Automerge's column compression makes it ~250 KB,
    // the envelope's deflate ~1 KB.
    let (id, bytes) = contact_doc(&mut d);
    let mut doc = AutoCommit::load(&bytes).expect("load");
    doc.put(automerge::ROOT, "j", "x".repeat(256 * 1024 * 1024))
        .expect("bomb");
    let bomb = doc.save();
    let envelope = protocol::encode(&SyncRequest {
        cursor: 0,
        pushes: vec![PushDoc {
            id,
            kind: RecordKind::Contact.into(),
            changes: bomb,
        }],
        pull_limit: 1,
        team: Default::default(),
        report: Default::default(),
        access_requests: Vec::new(),
    });
    eprintln!("bomb request: {} bytes", envelope.len());
    assert!(envelope.len() < 1024 * 1024);
    let started = Instant::now();
    let (status, body) = post_sync(server.port, &token, &envelope);
    assert_eq!(status, 200);
    let answer = protocol::decode_response(&body).expect("answer");
    assert_eq!(answer.rejections.len(), 1);
    assert_eq!(answer.rejections[0].code, RejectCode::Malformed);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_healthy_within_a_second(&server);
    let after = peak_kib(&server);
    eprintln!("server peak memory: {before} KiB before, {after} KiB after the bomb");
    assert!(
        after < before + 64 * 1024,
        "the server's peak grew by {} KiB",
        after - before
    );
}

#[test]
fn what_a_modified_app_writes_beyond_its_rights_is_refused_alone() {
    let server = TestServer::start();
    let teams = server.setup(2);
    let mut d = Device::enrolled(&server, teams[0], 2);
    let mut other = Device::enrolled(&server, teams[1], 3);
    let foreign_youth = {
        let y = other.demo.youth();
        let id = other.store.create(&y).expect("youth");
        other.sync(&server).expect("sync");
        id
    };
    let token = d.token();
    let (id, bytes) = contact_doc(&mut d);

    // A field the schema does not have, holding a nested object.
    let mut doc = AutoCommit::load(&bytes).expect("load");
    let nested = doc
        .put_object(automerge::ROOT, "zz", ObjType::Map)
        .expect("nested");
    doc.put(&nested, "deep", 1).expect("put");
    let answer = push_alone(server.port, &token, id, RecordKind::Contact, doc.save());
    assert_eq!(answer.rejections.len(), 1, "{answer:?}");
    assert_eq!(answer.rejections[0].code, RejectCode::Malformed);

    // A reference to another team's young person, and to one that does not exist: the
    // same refusal, so nothing is learnt about the other team.
    let mut reasons = Vec::new();
    for youth in [foreign_youth, Uuid::now_v7()] {
        let mut contact: Contact = d.store.get(id).expect("read");
        contact.youth_ids = [youth].into();
        let fields = repere_core::document::to_json_fields(&contact).expect("fields");
        let author = repere_core::Author {
            device_id: d.store.device_id(),
            member_id: Uuid::nil(),
        };
        let new_id = Uuid::now_v7();
        let doc = repere_core::document::RecordDoc::create(
            RecordKind::Contact,
            new_id,
            author,
            &fields,
            chrono::Utc::now(),
        )
        .expect("doc")
        .save();
        let answer = push_alone(server.port, &token, new_id, RecordKind::Contact, doc);
        assert_eq!(answer.rejections.len(), 1, "{answer:?}");
        reasons.push((
            answer.rejections[0].code,
            answer.rejections[0].reason.clone(),
        ));
    }
    assert_eq!(reasons[0], reasons[1]);

    // A coordinator's question made up by a tablet.
    let task = ReviewTask {
        team_id: teams[0],
        contact_id: id,
        question: "Question inventée".into(),
        asked_by: "coordination".into(),
        asked_at: chrono::Utc::now().fixed_offset(),
        answer: String::new(),
        answered_by: None,
        answered_at: None,
        status: ReviewTaskStatus::Open,
    };
    let fields = repere_core::document::to_json_fields(&task).expect("fields");
    let task_id = Uuid::now_v7();
    let doc = repere_core::document::RecordDoc::create(
        RecordKind::ReviewTask,
        task_id,
        repere_core::Author {
            device_id: d.store.device_id(),
            member_id: Uuid::nil(),
        },
        &fields,
        chrono::Utc::now(),
    )
    .expect("doc")
    .save();
    let answer = push_alone(server.port, &token, task_id, RecordKind::ReviewTask, doc);
    assert_eq!(answer.rejections.len(), 1, "{answer:?}");
    assert_eq!(answer.rejections[0].code, RejectCode::Invalid);

    // Too many records in one request: refused as a whole, cheaply.
    let pushes = (0..5_001)
        .map(|_| PushDoc {
            id: Uuid::now_v7(),
            kind: RecordKind::Youth.into(),
            changes: vec![0],
        })
        .collect();
    let body = protocol::encode(&SyncRequest {
        cursor: 0,
        pushes,
        pull_limit: 1,
        team: Default::default(),
        report: Default::default(),
        access_requests: Vec::new(),
    });
    let (status, _) = post_sync(server.port, &token, &body);
    assert_eq!(status, 400);

    // The honest records still sync, and the server is well.
    d.sync(&server).expect("honest sync");
    assert_healthy_within_a_second(&server);
    let fresh = {
        let mut f = Device::enrolled(&server, teams[0], 4);
        f.sync(&server).expect("sync");
        f
    };
    assert!(fresh.store.kind_of(id).expect("kind").is_some());
    assert!(fresh.store.kind_of(task_id).expect("kind").is_none());
}

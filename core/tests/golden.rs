//! Golden files of the wire protocol: the bytes of each version's messages are pinned in
//! core/tests/golden/, so an accidental change to the wire fails here. A deliberate change
//! is a new protocol version with its own files (`REPERE_BLESS=1` writes missing ones).

use std::path::PathBuf;

use repere_core::RecordKind;
use repere_core::sync::protocol::{
    self, AccessAnswer, AccessOutcome, AccessRefusal, AccessRequest, Ack, Decision, DecisionState,
    DeviceReport, EnrolRequest, EnrolResponse, LentFile, LentRecord, Member, PulledDoc, PushDoc,
    RejectCode, Rejection, Roster, SyncRequest, SyncResponse, TeamNews, TeamSince,
};
use uuid::Uuid;

fn id(n: u128) -> Uuid {
    Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0000 | n)
}

fn request() -> SyncRequest {
    SyncRequest {
        cursor: 1234,
        pushes: vec![PushDoc {
            id: id(1),
            kind: RecordKind::Contact.into(),
            changes: (0u8..40).collect(),
        }],
        pull_limit: 1000,
        team: Default::default(),
        report: Default::default(),
        access_requests: Vec::new(),
    }
}

fn response(epoch: u64) -> SyncResponse {
    SyncResponse {
        acks: vec![Ack {
            id: id(1),
            heads: vec![[7; 32]],
        }],
        rejections: vec![Rejection {
            id: id(2),
            code: RejectCode::Invalid,
            reason: "commune: code commune INSEE inconnu".into(),
        }],
        docs: vec![PulledDoc {
            id: id(3),
            kind: RecordKind::ReviewTask.into(),
            doc: (0u8..64).rev().collect(),
            heads: vec![[9; 32]],
            fields: r#"{"status":"open"}"#.into(),
        }],
        erased: vec![id(4)],
        cursor: 1240,
        more: true,
        epoch,
        team: Default::default(),
        moved: Vec::new(),
        access: Vec::new(),
        lent: Vec::new(),
    }
}

fn enrol_request() -> EnrolRequest {
    EnrolRequest {
        code: "ABCD-EFGH-JK".into(),
        device_label: "tablette 2 — équipe Stenay".into(),
        writer: Some(id(8)),
        previous_token: Some("ancien-jeton".into()),
    }
}

fn enrol_response() -> EnrolResponse {
    EnrolResponse {
        device_id: id(5),
        team_id: id(6),
        organisation_id: id(7),
        token: "jeton-de-test".into(),
    }
}

fn golden(version: u8, name: &str, bytes: &[u8]) {
    let path: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "tests",
        "golden",
        &format!("v{version}"),
        &format!("{name}.bin"),
    ]
    .iter()
    .collect();
    if !path.exists() && std::env::var_os("REPERE_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().expect("folder")).expect("mkdir");
        std::fs::write(&path, bytes).expect("write golden file");
    }
    let pinned = std::fs::read(&path).unwrap_or_else(|_| panic!("missing {}", path.display()));
    assert_eq!(
        pinned, bytes,
        "the wire encoding of {name} in version {version} changed: a change to the wire is a \
         new protocol version"
    );
}

#[test]
fn version_1_messages_are_pinned_and_still_read() {
    let v1 = 1;
    golden(
        v1,
        "sync_request",
        &protocol::encode_request(v1, &request()),
    );
    golden(
        v1,
        "sync_response",
        &protocol::encode_response(v1, &response(77)),
    );
    golden(
        v1,
        "enrol_request",
        &protocol::encode_enrol(v1, &enrol_request()),
    );
    golden(
        v1,
        "enrol_response",
        &protocol::encode_as(v1, &enrol_response()),
    );
    // A version 1 answer reads with no epoch.
    let bytes = protocol::encode_response(v1, &response(77));
    assert_eq!(protocol::decode_response(&bytes), Ok(response(0)));
    let req = protocol::encode_request(v1, &request());
    assert_eq!(protocol::decode_request(&req), Ok(request()));
}

#[test]
fn version_2_messages_are_pinned() {
    let v2 = 2;
    golden(
        v2,
        "sync_request",
        &protocol::encode_request(v2, &request()),
    );
    golden(
        v2,
        "sync_response",
        &protocol::encode_response(v2, &response(77)),
    );
    golden(
        v2,
        "enrol_request",
        &protocol::encode_enrol(v2, &enrol_request()),
    );
    golden(
        v2,
        "enrol_response",
        &protocol::encode_as(v2, &enrol_response()),
    );
    let bytes = protocol::encode_response(v2, &response(77));
    assert_eq!(protocol::decode_response(&bytes), Ok(response(77)));
    // Before version 3 an enrolment names no writer id.
    let old = protocol::encode_enrol(v2, &enrol_request());
    let read = protocol::decode_enrol(&old, 1024).expect("v2 enrolment");
    assert_eq!((read.writer, read.previous_token), (None, None));
    assert_eq!(read.code, enrol_request().code);
}

#[test]
fn version_3_messages_are_pinned() {
    let v3 = 3;
    golden(
        v3,
        "sync_request",
        &protocol::encode_request(v3, &request()),
    );
    golden(
        v3,
        "sync_response",
        &protocol::encode_response(v3, &response(77)),
    );
    let enrol = protocol::encode_enrol(v3, &enrol_request());
    golden(v3, "enrol_request", &enrol);
    assert_eq!(protocol::decode_enrol(&enrol, 1024), Ok(enrol_request()));
    golden(
        v3,
        "enrol_response",
        &protocol::encode_as(v3, &enrol_response()),
    );
}

#[test]
fn a_record_kind_from_a_newer_version_decodes_as_an_unknown_code() {
    let mut msg = response(1);
    msg.docs[0].kind = protocol::WireKind(42);
    let decoded = protocol::decode_response(&protocol::encode(&msg)).expect("decodes");
    assert_eq!(decoded.docs[0].kind.known(), None);
    // Version 1's encoding of kinds is the variant index: codes are pinned to it.
    for (code, kind) in RecordKind::ALL.iter().enumerate() {
        assert_eq!(kind.wire_code() as usize, code);
        assert_eq!(RecordKind::from_wire(code as u32), Some(*kind));
    }
}

#[test]
fn version_4_messages_are_pinned_and_older_devices_are_told_erased() {
    let v4 = 4;
    let mut rewritten = response(77);
    rewritten.rejections.push(Rejection {
        id: id(9),
        code: RejectCode::Rewritten,
        reason: "rewritten".into(),
    });
    golden(
        v4,
        "sync_request",
        &protocol::encode_request(v4, &request()),
    );
    let bytes = protocol::encode_response(v4, &rewritten);
    golden(v4, "sync_response", &bytes);
    assert_eq!(protocol::decode_response(&bytes), Ok(rewritten.clone()));
    let enrol = protocol::encode_enrol(v4, &enrol_request());
    golden(v4, "enrol_request", &enrol);
    golden(
        v4,
        "enrol_response",
        &protocol::encode_as(v4, &enrol_response()),
    );
    // A version 3 device cannot replace its copy: it deletes it.
    let old = protocol::decode_response(&protocol::encode_response(3, &rewritten)).expect("v3");
    assert_eq!(old.rejections[1].code, RejectCode::Erased);
    assert_eq!(old.rejections[0], rewritten.rejections[0]);
}

fn team_news() -> TeamNews {
    TeamNews {
        roster: Some(Roster {
            version: 12,
            members: vec![
                Member {
                    id: id(10),
                    name: "Amina".into(),
                    active: true,
                },
                Member {
                    id: id(11),
                    name: "Julien".into(),
                    active: false,
                },
            ],
        }),
        decisions: vec![
            Decision {
                contact_id: id(12),
                state: DecisionState::Flagged,
                reason: "commune à vérifier".into(),
                at_ms: 1_780_000_000_000,
            },
            Decision {
                contact_id: id(13),
                state: DecisionState::Approved,
                reason: String::new(),
                at_ms: 1_780_000_000_001,
            },
        ],
        decisions_cursor: 31,
    }
}

#[test]
fn version_5_messages_are_pinned_and_older_devices_are_sent_no_team_news() {
    let v5 = 5;
    let mut req = request();
    req.team = TeamSince {
        roster: 11,
        decisions: 30,
    };
    let bytes = protocol::encode_request(v5, &req);
    golden(v5, "sync_request", &bytes);
    assert_eq!(protocol::decode_request(&bytes), Ok(req.clone()));
    let mut resp = response(77);
    resp.team = team_news();
    let bytes = protocol::encode_response(v5, &resp);
    golden(v5, "sync_response", &bytes);
    assert_eq!(protocol::decode_response(&bytes), Ok(resp.clone()));
    golden(
        v5,
        "enrol_request",
        &protocol::encode_enrol(v5, &enrol_request()),
    );
    golden(
        v5,
        "enrol_response",
        &protocol::encode_as(v5, &enrol_response()),
    );
    // A version 4 device's request reads as knowing nothing of the team; its answer carries
    // no team news and stays byte for byte what version 4 pinned.
    let old = protocol::decode_request(&protocol::encode_request(4, &req)).expect("v4");
    assert_eq!(old.team, TeamSince::default());
    assert_eq!(old.cursor, req.cursor);
    let old = protocol::decode_response(&protocol::encode_response(4, &resp)).expect("v4");
    assert_eq!(old.team, TeamNews::default());
    assert_eq!(
        protocol::encode_response(4, &resp),
        protocol::encode_response(4, &response(77))
    );
}

#[test]
fn version_6_messages_are_pinned_and_older_devices_are_told_a_transfer_as_an_erasure() {
    let v6 = 6;
    let req = request();
    let bytes = protocol::encode_request(v6, &req);
    golden(v6, "sync_request", &bytes);
    assert_eq!(protocol::decode_request(&bytes), Ok(req));
    let mut resp = response(77);
    resp.team = team_news();
    resp.moved = vec![id(5)];
    resp.rejections.push(Rejection {
        id: id(6),
        code: RejectCode::Transferred,
        reason: "transféré à une autre équipe".into(),
    });
    let bytes = protocol::encode_response(v6, &resp);
    golden(v6, "sync_response", &bytes);
    assert_eq!(protocol::decode_response(&bytes), Ok(resp.clone()));
    golden(
        v6,
        "enrol_request",
        &protocol::encode_enrol(v6, &enrol_request()),
    );
    golden(
        v6,
        "enrol_response",
        &protocol::encode_as(v6, &enrol_response()),
    );
    // A version 5 device drops a moved record the only way it knows: as erased.
    for old in 1..=5 {
        let told = protocol::decode_response(&protocol::encode_response(old, &resp)).expect("old");
        assert!(told.moved.is_empty());
        assert_eq!(told.erased, vec![id(4), id(5)], "version {old}");
        assert_eq!(
            told.rejections.iter().map(|r| r.code).collect::<Vec<_>>(),
            vec![RejectCode::Invalid, RejectCode::Erased],
            "version {old}"
        );
    }
}

#[test]
fn version_7_messages_are_pinned_and_older_requests_report_nothing() {
    let v7 = 7;
    let mut req = request();
    req.team = TeamSince {
        roster: 11,
        decisions: 30,
    };
    req.report = DeviceReport {
        app_version: "1.4.0 (1042)".into(),
        unsent: 3,
    };
    let bytes = protocol::encode_request(v7, &req);
    golden(v7, "sync_request", &bytes);
    assert_eq!(protocol::decode_request(&bytes), Ok(req.clone()));
    let mut resp = response(77);
    resp.team = team_news();
    resp.moved = vec![id(5)];
    let bytes = protocol::encode_response(v7, &resp);
    golden(v7, "sync_response", &bytes);
    assert_eq!(protocol::decode_response(&bytes), Ok(resp));
    golden(
        v7,
        "enrol_request",
        &protocol::encode_enrol(v7, &enrol_request()),
    );
    golden(
        v7,
        "enrol_response",
        &protocol::encode_as(v7, &enrol_response()),
    );
    // A version 5 or 6 request keeps its team position and reports nothing, byte for byte
    // what those versions pinned.
    for old in 5..=6 {
        let bytes = protocol::encode_request(old, &req);
        let read = protocol::decode_request(&bytes).expect("old request");
        assert_eq!(read.report, DeviceReport::default(), "version {old}");
        assert_eq!(read.team, req.team, "version {old}");
        let mut unreported = req.clone();
        unreported.report = DeviceReport::default();
        assert_eq!(bytes, protocol::encode_request(old, &unreported));
    }
}

#[test]
fn version_8_messages_are_pinned_and_older_devices_ask_for_and_are_lent_nothing() {
    let v8 = 8;
    let mut req = request();
    req.report = DeviceReport {
        app_version: "1.5.0 (1100)".into(),
        unsent: 1,
    };
    req.access_requests = vec![AccessRequest {
        id: id(9),
        youth_id: id(10),
        member_id: id(11),
        reason: "urgence : jeune hébergé par notre équipe ce soir".into(),
        minutes: 120,
    }];
    let bytes = protocol::encode_request(v8, &req);
    golden(v8, "sync_request", &bytes);
    assert_eq!(protocol::decode_request(&bytes), Ok(req.clone()));
    let mut resp = response(77);
    resp.more = false;
    resp.team = team_news();
    resp.moved = vec![id(5)];
    resp.access = vec![
        AccessAnswer {
            id: id(9),
            outcome: AccessOutcome::Granted {
                expires_at_ms: 1_760_000_000_000,
            },
        },
        AccessAnswer {
            id: id(12),
            outcome: AccessOutcome::Refused(AccessRefusal::UnknownFile),
        },
    ];
    resp.lent = vec![LentFile {
        grant_id: id(9),
        youth_id: id(10),
        team_name: "Binôme Verdun".into(),
        expires_at_ms: 1_760_000_000_000,
        records: vec![LentRecord {
            id: id(10),
            kind: RecordKind::Youth.into(),
            fields: r#"{"first_name":"Test"}"#.into(),
        }],
    }];
    let bytes = protocol::encode_response(v8, &resp);
    golden(v8, "sync_response", &bytes);
    assert_eq!(protocol::decode_response(&bytes), Ok(resp.clone()));
    golden(
        v8,
        "enrol_request",
        &protocol::encode_enrol(v8, &enrol_request()),
    );
    golden(
        v8,
        "enrol_response",
        &protocol::encode_as(v8, &enrol_response()),
    );
    // A version 7 request is what version 7 pinned: no access asked; a version 6 or 7
    // answer carries nothing lent.
    let bytes = protocol::encode_request(7, &req);
    let read = protocol::decode_request(&bytes).expect("v7 request");
    assert!(read.access_requests.is_empty());
    assert_eq!(read.report, req.report);
    for old in 6..=7 {
        let told = protocol::decode_response(&protocol::encode_response(old, &resp)).expect("old");
        assert!(
            told.access.is_empty() && told.lent.is_empty(),
            "version {old}"
        );
        assert_eq!(told.moved, resp.moved, "version {old}");
    }
}

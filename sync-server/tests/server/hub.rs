//! The hub without sockets: enrolment, scopes, validation, idempotence, erasure, paging.

use chrono::Duration;
use repere_core::sync::protocol::{self, EnrolRequest, PushDoc, RejectCode, SyncRequest};
use repere_core::{Error as CoreError, RecordKind, Store, SyncState};
use repere_server::HubError;
use uuid::Uuid;

use crate::common::{KEY, doc_bytes, env, pull_all, push, request};

#[test]
fn enrol_with_valid_used_expired_and_unknown_codes() {
    let env = env();
    let code = env.code(&env.team_a);
    let enrol = |code: &str| {
        env.hub.enrol(EnrolRequest {
            code: code.to_string(),
            device_label: "tablette 1".into(),
            writer: None,
            previous_token: None,
        })
    };

    // Valid, typed carelessly (lower case, spaces): the device gets its team and a token.
    let typed = code.to_lowercase().replace('-', " ");
    let resp = enrol(&typed).expect("valid code enrols");
    assert_eq!(resp.team_id, env.team_a.id);
    assert_eq!(resp.organisation_id, env.org.id);
    assert!(resp.token.len() >= 43);
    let device = env.hub.authenticate(&resp.token).expect("token works");
    assert_eq!(device.id, resp.device_id);
    assert_eq!(device.label, "tablette 1");

    // Used: refused.
    assert!(matches!(enrol(&code), Err(HubError::InvalidEnrolmentCode)));
    // Unknown, and not even shaped like a code.
    assert!(matches!(
        enrol("ABCD-EFGH-JK"),
        Err(HubError::InvalidEnrolmentCode)
    ));
    assert!(matches!(
        enrol("hello"),
        Err(HubError::InvalidEnrolmentCode)
    ));
    assert!(matches!(enrol(""), Err(HubError::InvalidEnrolmentCode)));
    // Expired.
    let short = env
        .hub
        .issue_code(env.team_b.id, Duration::hours(1))
        .expect("code");
    env.clock.advance(Duration::hours(2));
    assert!(matches!(
        enrol(&short.code),
        Err(HubError::InvalidEnrolmentCode)
    ));

    // Unknown tokens.
    assert!(matches!(
        env.hub.authenticate("nope"),
        Err(HubError::Unauthorized)
    ));
    assert!(matches!(
        env.hub.authenticate(""),
        Err(HubError::Unauthorized)
    ));
    // Codes for a team that does not exist cannot be issued.
    assert!(
        env.hub
            .issue_code(Uuid::now_v7(), Duration::days(1))
            .is_err()
    );
}

#[test]
fn revoked_device_is_refused() {
    let env = env();
    let mut tablet = env.tablet(&env.team_a, "tablette-a1");
    let youth = tablet.demo.youth();
    let id = tablet.store.create(&youth).expect("create");
    tablet.sync_ok();
    let (device, token) = env.raw_device(&env.team_a);

    env.hub.revoke_device(device.id).expect("revoke");
    env.hub.revoke_device(tablet.device_id).expect("revoke");

    assert!(matches!(
        env.hub.authenticate(&token),
        Err(HubError::DeviceRevoked)
    ));
    // A request that authenticated just before the revocation is refused too.
    assert!(matches!(
        env.hub.sync(&device, request(0, vec![])),
        Err(HubError::DeviceRevoked)
    ));
    // The tablet sees DeviceRevoked and keeps its data and unsent changes.
    tablet
        .store
        .edit::<repere_core::records::Youth>(id, |y| y.alias = Some("Titi".into()))
        .expect("offline edit");
    assert!(matches!(tablet.sync(), Err(CoreError::DeviceRevoked)));
    assert_eq!(
        tablet.store.sync_state(id).expect("state"),
        SyncState::Pending
    );
    let listed = env.hub.devices(Some(env.team_a.id)).expect("list");
    assert!(listed.iter().all(|d| d.revoked_at.is_some()));
    assert!(matches!(
        env.hub.revoke_device(Uuid::now_v7()),
        Err(HubError::NotFound { .. })
    ));
}

#[test]
fn pushed_record_reaches_its_team_only() {
    let env = env();
    let mut a1 = env.tablet(&env.team_a, "a1");
    let mut a2 = env.tablet(&env.team_a, "a2");
    let mut b1 = env.tablet(&env.team_b, "b1");

    let youth = a1.demo.youth();
    let youth_id = a1.store.create(&youth).expect("create youth");
    let contact = a1.demo.contact(&[youth_id]);
    let contact_id = a1.store.create(&contact).expect("create contact");

    let report = a1.sync_ok();
    assert_eq!(report.pushed, 2);
    assert_eq!(report.acknowledged, 2);
    assert_eq!(report.rejected, 0);
    assert_eq!(
        report.pulled, 0,
        "the pusher does not get its own records back"
    );
    assert_eq!(
        a1.store.sync_state(youth_id).expect("state"),
        SyncState::Synced
    );
    assert_eq!(
        a1.store.sync_state(contact_id).expect("state"),
        SyncState::Synced
    );

    let report = a2.sync_ok();
    assert_eq!(report.pulled, 2);
    assert_eq!(a2.store.youth(youth_id).expect("pulled youth"), youth);
    assert_eq!(
        a2.store.contact(contact_id).expect("pulled contact"),
        contact
    );

    let report = b1.sync_ok();
    assert_eq!(report.pulled, 0);
    assert!(
        b1.store.youth(youth_id).is_err(),
        "another team never sees it"
    );

    // Edits on both tablets of team A merge field by field through the hub.
    a1.store
        .edit::<repere_core::records::Youth>(youth_id, |y| y.alias = Some("Le Grand".into()))
        .expect("edit alias");
    a2.store
        .edit::<repere_core::records::Youth>(youth_id, |y| y.phone = Some("06 12 34 56 78".into()))
        .expect("edit phone");
    let report = a1.sync_ok();
    assert_eq!(
        (report.acknowledged, report.pulled),
        (1, 0),
        "changes only, nothing sent back"
    );
    let report = a2.sync_ok();
    assert_eq!(
        (report.acknowledged, report.pulled),
        (1, 1),
        "a2 gets the merged document"
    );
    let report = a1.sync_ok();
    assert_eq!(report.pulled, 1);
    let on_a1 = a1.store.youth(youth_id).expect("a1");
    let on_a2 = a2.store.youth(youth_id).expect("a2");
    assert_eq!(on_a1, on_a2);
    assert_eq!(on_a1.alias.as_deref(), Some("Le Grand"));
    assert_eq!(on_a1.phone.as_deref(), Some("06 12 34 56 78"));
    assert_eq!(
        a1.store.sync_state(youth_id).expect("state"),
        SyncState::Synced
    );
    assert_eq!(
        a2.store.sync_state(youth_id).expect("state"),
        SyncState::Synced
    );
}

#[test]
fn push_into_another_teams_record_is_out_of_scope() {
    let env = env();
    let mut a1 = env.tablet(&env.team_a, "a1");
    let youth = a1.demo.youth();
    let id = a1.store.create(&youth).expect("create");
    a1.sync_ok();

    let (b_device, _) = env.raw_device(&env.team_b);
    // Team B's device pushes a copy of team A's record, even edited to claim team B.
    let (_, a_doc) = a1.store.export_document(id).expect("export");
    let mut stolen = youth.clone();
    stolen.team_id = env.team_b.id;
    let resp = env
        .hub
        .sync(
            &b_device,
            request(
                0,
                vec![
                    PushDoc {
                        id,
                        kind: RecordKind::Youth.into(),
                        changes: a_doc,
                    },
                    push(id, &stolen),
                ],
            ),
        )
        .expect("sync");
    assert!(resp.acks.is_empty());
    assert_eq!(resp.rejections.len(), 2);
    assert!(
        resp.rejections
            .iter()
            .all(|r| r.code == RejectCode::OutOfScope)
    );
    assert!(resp.docs.is_empty());

    // A new record that names another team is out of scope too.
    let mut foreign = a1.demo.youth();
    foreign.team_id = env.team_a.id;
    let new_id = Uuid::now_v7();
    let resp = env
        .hub
        .sync(&b_device, request(0, vec![push(new_id, &foreign)]))
        .expect("sync");
    assert_eq!(resp.rejections[0].code, RejectCode::OutOfScope);
    // Nothing was stored: team A's device pulls nothing new.
    let (a_device, _) = env.raw_device(&env.team_a);
    let (pages, _) = pull_all(&env.hub, &a_device, 0, 100);
    let pulled: Vec<Uuid> = pages
        .iter()
        .flat_map(|p| p.docs.iter().map(|d| d.id))
        .collect();
    assert_eq!(pulled, vec![id]);
}

#[test]
fn invalid_record_is_rejected_while_the_others_are_accepted() {
    let env = env();
    let (device, _) = env.raw_device(&env.team_a);
    let mut demo = repere_core::demo::DemoData::new(
        5,
        env.team_a.id,
        [Uuid::now_v7(), Uuid::now_v7()],
        chrono::Utc::now(),
    );
    let good = demo.youth();
    let mut bad = demo.youth();
    bad.home_commune = Some("99999".into());
    bad.first_contact_date = chrono::Utc::now().date_naive() + Duration::days(30);
    let (good_id, bad_id) = (Uuid::now_v7(), Uuid::now_v7());
    let contact_id = Uuid::now_v7();
    let contact = demo.contact(&[good_id]);

    let resp = env
        .hub
        .sync(
            &device,
            request(
                0,
                vec![
                    push(good_id, &good),
                    push(bad_id, &bad),
                    push(contact_id, &contact),
                ],
            ),
        )
        .expect("sync");
    let acked: Vec<Uuid> = resp.acks.iter().map(|a| a.id).collect();
    assert_eq!(acked, vec![good_id, contact_id]);
    assert_eq!(resp.rejections.len(), 1);
    let rejection = &resp.rejections[0];
    assert_eq!(
        (rejection.id, rejection.code),
        (bad_id, RejectCode::Invalid)
    );
    assert!(
        rejection.reason.contains("home_commune"),
        "{}",
        rejection.reason
    );
    assert!(
        rejection.reason.contains("first_contact_date"),
        "{}",
        rejection.reason
    );
    assert!(
        !rejection.reason.contains("99999"),
        "values never leave in reasons"
    );

    // Bytes that are no record of the stated kind.
    let (garbage_id, wrong_kind_id) = (Uuid::now_v7(), Uuid::now_v7());
    let resp = env
        .hub
        .sync(
            &device,
            request(
                resp.cursor,
                vec![
                    PushDoc {
                        id: garbage_id,
                        kind: RecordKind::Youth.into(),
                        changes: b"definitely not automerge".to_vec(),
                    },
                    PushDoc {
                        id: wrong_kind_id,
                        kind: RecordKind::Contact.into(),
                        changes: doc_bytes(wrong_kind_id, &good),
                    },
                    PushDoc {
                        id: good_id,
                        kind: RecordKind::Contact.into(),
                        changes: vec![],
                    },
                    PushDoc {
                        id: good_id,
                        kind: RecordKind::Youth.into(),
                        changes: vec![1, 2, 3],
                    },
                    // Bytes on which Automerge itself panics, as a new record and on a
                    // stored one: refused, and the hub goes on.
                    PushDoc {
                        id: Uuid::now_v7(),
                        kind: RecordKind::Youth.into(),
                        changes: AUTOMERGE_PANICS_ON.to_vec(),
                    },
                    PushDoc {
                        id: good_id,
                        kind: RecordKind::Contact.into(),
                        changes: AUTOMERGE_PANICS_ON.to_vec(),
                    },
                ],
            ),
        )
        .expect("sync");
    assert!(resp.acks.is_empty());
    let codes: Vec<RejectCode> = resp.rejections.iter().map(|r| r.code).collect();
    assert_eq!(codes, vec![RejectCode::Malformed; 6]);
}

#[test]
fn changes_on_history_the_server_lacks_are_missing_history() {
    let env = env();
    let mut a1 = env.tablet(&env.team_a, "a1");
    let youth = a1.demo.youth();
    let id = a1.store.create(&youth).expect("create");
    let base = a1.store.heads(id).expect("heads");
    a1.store
        .edit::<repere_core::records::Youth>(id, |y| y.alias = Some("Momo".into()))
        .expect("edit");
    // Only the changes after `base`, for a record the server never received.
    let (_, whole) = a1.store.export_document(id).expect("export");
    let mut doc = repere_core::document::RecordDoc::load(
        RecordKind::Youth,
        id,
        &whole,
        repere_core::document::Author {
            device_id: Uuid::nil(),
            member_id: Uuid::nil(),
        },
    )
    .expect("load");
    let changes = doc.changes_since(&base);
    let (device, _) = env.raw_device(&env.team_a);
    let resp = env
        .hub
        .sync(
            &device,
            request(
                0,
                vec![PushDoc {
                    id,
                    kind: RecordKind::Youth.into(),
                    changes,
                }],
            ),
        )
        .expect("sync");
    assert_eq!(resp.rejections[0].code, RejectCode::MissingHistory);

    // The device then sends the whole document, which is accepted.
    let report = a1.sync_ok();
    assert_eq!(report.acknowledged, 1);
    assert_eq!(a1.store.sync_state(id).expect("state"), SyncState::Synced);
}

#[test]
fn retried_identical_push_gets_the_same_ack_and_no_new_position() {
    let env = env();
    let (device, _) = env.raw_device(&env.team_a);
    let mut demo = repere_core::demo::DemoData::new(
        9,
        env.team_a.id,
        [Uuid::now_v7(), Uuid::now_v7()],
        chrono::Utc::now(),
    );
    let id = Uuid::now_v7();
    let req = request(0, vec![push(id, &demo.youth())]);
    let last_seq = |hub: &repere_server::Hub| {
        hub.storage()
            .read_with(|tx| Ok::<_, HubError>(tx.last_seq()?))
            .expect("seq")
    };

    let first = env.hub.sync(&device, req.clone()).expect("first");
    let seq_after_first = last_seq(&env.hub);
    // The answer was lost: the device sends the very same request again.
    let second = env.hub.sync(&device, req).expect("retry");
    assert_eq!(first.acks, second.acks);
    assert_eq!(last_seq(&env.hub), seq_after_first, "no new log position");
    assert_eq!(first.cursor, second.cursor);
    assert!(
        second.docs.is_empty(),
        "the device already has exactly this document"
    );

    // Another device of the team gets it once.
    let (other, _) = env.raw_device(&env.team_a);
    let (pages, _) = pull_all(&env.hub, &other, 0, 100);
    assert_eq!(pages.iter().map(|p| p.docs.len()).sum::<usize>(), 1);
}

#[test]
fn erased_record_leaves_a_tombstone_and_cannot_come_back() {
    let env = env();
    let mut a1 = env.tablet(&env.team_a, "a1");
    let mut a2 = env.tablet(&env.team_a, "a2");
    let youth = a1.demo.youth();
    let id = a1.store.create(&youth).expect("create");
    let kept = a1.store.create(&a1.demo.youth()).expect("create another");
    a1.sync_ok();
    a2.sync_ok();
    assert!(a2.store.youth(id).is_ok());

    // a1 edits offline while the record is erased on the server.
    a1.store
        .edit::<repere_core::records::Youth>(id, |y| y.alias = Some("Bibi".into()))
        .expect("stale edit");
    let tombstone = env.hub.erase(id).expect("erase").tombstone;
    assert_eq!(tombstone.team_id, env.team_a.id);
    assert_eq!(
        env.hub.erase(id).expect("erase again").tombstone,
        tombstone,
        "idempotent"
    );
    assert!(matches!(
        env.hub.erase(Uuid::now_v7()),
        Err(HubError::NotFound { .. })
    ));

    let report = a2.sync_ok();
    assert_eq!(report.erased, 1);
    assert!(a2.store.youth(id).is_err(), "a2 deleted its copy");
    assert!(a2.store.youth(kept).is_ok());

    // The stale tablet's push is refused with Erased and it deletes its copy.
    let report = a1.sync_ok();
    assert_eq!(report.rejected + report.erased, 2);
    assert!(a1.store.youth(id).is_err());

    // A direct push of the old document is refused too, and nothing reappears.
    let (device, _) = env.raw_device(&env.team_a);
    let resp = env
        .hub
        .sync(&device, request(0, vec![push(id, &youth)]))
        .expect("sync");
    assert_eq!(resp.rejections[0].code, RejectCode::Erased);
    assert_eq!(resp.erased, vec![id]);
    let pulled: Vec<Uuid> = resp.docs.iter().map(|d| d.id).collect();
    assert_eq!(pulled, vec![kept]);
    let counts = env.hub.overview().expect("overview");
    let (_, team_counts) = &counts[0].teams[0];
    assert_eq!((team_counts.documents, team_counts.tombstones), (1, 1));
}

#[test]
fn pulls_page_with_more_and_resume_from_the_cursor() {
    let env = env();
    let mut a1 = env.tablet(&env.team_a, "a1");
    let mut ids = Vec::new();
    for _ in 0..25 {
        let youth = a1.demo.youth();
        ids.push(a1.store.create(&youth).expect("create"));
    }
    a1.sync_ok();
    env.hub.erase(ids[3]).expect("erase");

    let (device, _) = env.raw_device(&env.team_a);
    let (pages, cursor) = pull_all(&env.hub, &device, 0, 10);
    assert_eq!(pages.len(), 3);
    assert!(pages[0].more && pages[1].more && !pages[2].more);
    assert!(pages.iter().all(|p| p.docs.len() <= 10));
    assert!(pages.windows(2).all(|w| w[0].cursor < w[1].cursor));
    let mut pulled: Vec<Uuid> = pages
        .iter()
        .flat_map(|p| p.docs.iter().map(|d| d.id))
        .collect();
    pulled.sort();
    let mut expected: Vec<Uuid> = ids.iter().copied().filter(|id| *id != ids[3]).collect();
    expected.sort();
    assert_eq!(pulled, expected, "every document exactly once");
    let erased: Vec<Uuid> = pages.iter().flat_map(|p| p.erased.clone()).collect();
    assert_eq!(erased, vec![ids[3]]);

    // A device asking for 0 still makes progress; one asking for a million gets the cap.
    let first = env
        .hub
        .sync(
            &device,
            SyncRequest {
                cursor: 0,
                pushes: vec![],
                pull_limit: 0,
                team: Default::default(),
                report: Default::default(),
                access_requests: Vec::new(),
            },
        )
        .expect("sync");
    assert_eq!(first.docs.len(), 1);
    assert!(first.more);
    let all = env
        .hub
        .sync(
            &device,
            SyncRequest {
                cursor: 0,
                pushes: vec![],
                pull_limit: u32::MAX,
                team: Default::default(),
                report: Default::default(),
                access_requests: Vec::new(),
            },
        )
        .expect("sync");
    assert_eq!(all.docs.len(), 24);
    assert_eq!(all.cursor, cursor);

    // A fresh tablet gets everything through core's sync loop.
    let mut a2 = env.tablet(&env.team_a, "a2");
    let report = a2
        .store
        .sync(
            &a2.transport,
            &repere_core::sync::SyncOptions {
                pull_limit: 7,
                ..Default::default()
            },
            &mut |_| {},
        )
        .expect("sync");
    assert_eq!(report.pulled, 24);
    assert!(report.rounds >= 4);
}

#[test]
fn empty_sync_returns_the_same_cursor_and_stays_tiny() {
    let env = env();
    let mut a1 = env.tablet(&env.team_a, "a1");
    for _ in 0..5 {
        let youth = a1.demo.youth();
        a1.store.create(&youth).expect("create");
    }
    a1.sync_ok();
    let (device, _) = env.raw_device(&env.team_a);
    let (_, cursor) = pull_all(&env.hub, &device, 0, 100);
    assert!(cursor > 0);

    let req = request(cursor, vec![]);
    assert!(protocol::encode(&req).len() < 20);
    let resp = env.hub.sync(&device, req).expect("empty sync");
    assert_eq!(resp.cursor, cursor);
    assert!(resp.docs.is_empty() && resp.erased.is_empty() && resp.acks.is_empty());
    assert!(!resp.more);
    // Four bytes of envelope, a few of cursor and flags, the 64-bit epoch (up to ten bytes
    // as a varint) and one byte per empty list: the answer stays under 28 bytes however
    // many records there are.
    assert!(protocol::encode(&resp).len() < 28);

    // Nothing at all for a new team: the cursor stays where it was (0).
    let (b_device, _) = env.raw_device(&env.team_b);
    let resp = env.hub.sync(&b_device, request(0, vec![])).expect("empty");
    assert_eq!((resp.cursor, resp.docs.len(), resp.more), (0, 0, false));
}

#[test]
fn a_cursor_ahead_of_the_log_pulls_everything_again() {
    let env = env();
    let mut a1 = env.tablet(&env.team_a, "a1");
    let youth = a1.demo.youth();
    let id = a1.store.create(&youth).expect("create");
    a1.sync_ok();
    let (device, _) = env.raw_device(&env.team_a);
    // As after the server was restored from an older backup.
    let resp = env
        .hub
        .sync(&device, request(1_000_000, vec![]))
        .expect("sync");
    assert_eq!(resp.docs.iter().map(|d| d.id).collect::<Vec<_>>(), vec![id]);
    assert!(resp.cursor < 1_000_000);
}

#[test]
fn a_reenrolled_tablet_keeps_its_unsent_records() {
    let env = env();
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("t.db");
    let transport = crate::common::HubTransport(env.hub.clone());
    let mut store = Store::open(&path, &KEY).expect("store");
    store
        .enrol(
            &transport,
            "http://hub.test",
            &env.code(&env.team_a),
            "t",
            false,
        )
        .expect("enrol");
    let mut demo = repere_core::demo::DemoData::new(
        77,
        env.team_a.id,
        [Uuid::now_v7(), Uuid::now_v7()],
        chrono::Utc::now(),
    );
    let id = store.create(&demo.youth()).expect("create");
    store
        .enrol(
            &transport,
            "http://hub.test",
            &env.code(&env.team_a),
            "t",
            false,
        )
        .expect("re-enrol");
    store
        .sync(&transport, &Default::default(), &mut |_| {})
        .expect("sync");
    assert_eq!(store.sync_state(id).expect("state"), SyncState::Synced);
}

#[test]
fn concurrent_pushes_are_each_pulled_exactly_once() {
    let env = env();
    let (reader, _) = env.raw_device(&env.team_a);
    let writers: Vec<_> = (0..4).map(|_| env.raw_device(&env.team_a).0).collect();
    let mut expected = Vec::new();
    let mut seen = Vec::new();
    let mut cursor = 0;
    std::thread::scope(|scope| {
        let handles: Vec<_> = writers
            .iter()
            .enumerate()
            .map(|(w, device)| {
                let hub = env.hub.clone();
                let team = env.team_a.id;
                scope.spawn(move || {
                    let mut demo = repere_core::demo::DemoData::new(
                        100 + w as u64,
                        team,
                        [Uuid::now_v7(), Uuid::now_v7()],
                        chrono::Utc::now(),
                    );
                    let mut ids = Vec::new();
                    for _ in 0..10 {
                        let id = Uuid::now_v7();
                        let resp = hub
                            .sync(device, request(0, vec![push(id, &demo.youth())]))
                            .expect("push");
                        assert_eq!(resp.acks.len(), 1);
                        ids.push(id);
                    }
                    ids
                })
            })
            .collect();
        // Meanwhile a reader pulls page by page: positions must never be skipped.
        for _ in 0..20 {
            let (pages, c) = pull_all(&env.hub, &reader, cursor, 3);
            cursor = c;
            seen.extend(pages.iter().flat_map(|p| p.docs.iter().map(|d| d.id)));
        }
        for h in handles {
            expected.extend(h.join().expect("writer"));
        }
    });
    let (pages, _) = pull_all(&env.hub, &reader, cursor, 3);
    seen.extend(pages.iter().flat_map(|p| p.docs.iter().map(|d| d.id)));
    seen.sort();
    expected.sort();
    assert_eq!(seen, expected, "every record once, none skipped");
}

#[test]
fn one_tablet_cannot_sync_without_pause_beyond_its_budget() {
    let env = env();
    let (device, _) = env.raw_device(&env.team_a);
    let (other, _) = env.raw_device(&env.team_a);
    let burst = repere_server::hub::SYNC_BUCKET.burst as usize;
    for _ in 0..burst {
        env.hub
            .sync(&device, request(0, vec![]))
            .expect("within budget");
    }
    let refused = env.hub.sync(&device, request(0, vec![]));
    assert!(matches!(refused, Err(HubError::RateLimited)), "{refused:?}");
    assert_eq!(HubError::RateLimited.http_status(), 429);
    // Another tablet is not held back; the first gets syncs back as time passes.
    env.hub
        .sync(&other, request(0, vec![]))
        .expect("other tablet");
    env.clock.advance(Duration::seconds(1));
    for _ in 0..repere_server::hub::SYNC_BUCKET.per_second as usize {
        env.hub.sync(&device, request(0, vec![])).expect("refilled");
    }
    assert!(env.hub.sync(&device, request(0, vec![])).is_err());
}

#[test]
fn failing_syncs_spend_the_budget_too() {
    let env = env();
    let (device, _) = env.raw_device(&env.team_a);
    let junk = PushDoc {
        id: Uuid::now_v7(),
        kind: RecordKind::Youth.into(),
        changes: vec![1, 2, 3],
    };
    let too_many = || {
        request(
            0,
            vec![junk.clone(); repere_core::sync::protocol::MAX_PUSHES + 1],
        )
    };
    for _ in 0..repere_server::hub::SYNC_BUCKET.burst as usize {
        let refused = env.hub.sync(&device, too_many());
        assert!(matches!(refused, Err(HubError::BadInput(_))), "{refused:?}");
    }
    let refused = env.hub.sync(&device, request(0, vec![]));
    assert!(matches!(refused, Err(HubError::RateLimited)), "{refused:?}");
}

#[test]
fn a_tablet_with_thousands_of_new_records_pushes_them_in_rounds_the_server_accepts() {
    let env = env();
    let mut a = env.tablet(&env.team_a, "a");
    let youth: Vec<_> = (0..2_500).map(|_| a.demo.youth()).collect();
    a.store
        .batch(|b| youth.iter().try_for_each(|y| b.create(y).map(drop)))
        .expect("youth");
    let report = a.sync_ok();
    assert_eq!(report.acknowledged, 2_500);
    assert!(report.rounds >= 3, "{report:?}");
    assert!(a.store.unsynced().expect("unsynced").is_empty());
}

#[test]
fn a_push_naming_a_young_person_sent_later_in_the_same_request_is_accepted() {
    let env = env();
    let (device, _) = env.raw_device(&env.team_a);
    let mut demo = repere_core::demo::DemoData::new(
        9,
        env.team_a.id,
        [Uuid::now_v7(), Uuid::now_v7()],
        chrono::Utc::now(),
    );
    let youth_id = Uuid::now_v7();
    let youth = demo.youth();
    let mut visit = demo.contact(&[youth_id]);
    visit.tour_id = None;
    let action = demo.action(youth_id);
    // In the order an older app sends records that changed: the young person last.
    let pushes = vec![
        push(Uuid::now_v7(), &visit),
        push(Uuid::now_v7(), &action),
        push(youth_id, &youth),
    ];
    let resp = env.hub.sync(&device, request(0, pushes)).expect("sync");
    assert_eq!(resp.rejections, vec![]);
    assert_eq!(resp.acks.len(), 3);
}

/// A change chunk naming an actor that authors nothing (found by fuzz/received_document):
/// Automerge 0.12 unwraps the actor's index and panics while loading it.
const AUTOMERGE_PANICS_ON: [u8; 123] = [
    133, 111, 74, 131, 44, 87, 173, 62, 1, 113, 0, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12,
    12, 12, 12, 124, 0, 0, 0, 0, 0, 0, 0, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 58, 0, 0, 0, 0,
    0, 0, 0, 12, 12, 12, 12, 12, 12, 12, 12, 132, 133, 111, 86, 134, 1, 166, 1, 42, 0, 70, 255,
    255, 255, 255, 247, 255, 255, 167, 167, 167, 167, 167, 167, 167, 255, 255, 255, 255, 255, 255,
    255, 255, 255, 255, 255, 255, 255, 255, 58, 0, 0, 0, 0, 0, 255, 255, 255, 255, 1, 2, 255, 255,
    255, 255, 255, 255, 255, 255, 255, 16, 0, 0,
];

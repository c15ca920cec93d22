//! Nobody writes as somebody else: a device's new changes must carry the writer id its
//! store named at enrolment; another tablet's or the server's are refused, and a writer id
//! is only given again to the store that proves it holds it.

use chrono::Utc;
use repere_core::document::{Author, RecordDoc, to_json_fields};
use repere_core::records::Youth;
use repere_core::sync::protocol::{EnrolRequest, PushDoc, RejectCode, SyncResponse};
use repere_core::{Record, SyncState};
use repere_server::HubError;
use repere_server::storage::Device;
use uuid::Uuid;

use crate::common::{Env, env, request};

fn device(env: &Env, id: Uuid) -> Device {
    env.hub
        .storage()
        .read_with(|tx| tx.device(id))
        .expect("read")
        .expect("device exists")
}

/// A new young person written under `writer` (the device part of the actor).
fn youth_push(env: &Env, writer: Uuid) -> (Uuid, PushDoc) {
    let id = Uuid::now_v7();
    let youth = repere_core::demo::DemoData::new(
        1,
        env.team_a.id,
        [Uuid::now_v7(), Uuid::now_v7()],
        Utc::now(),
    )
    .youth();
    let author = Author {
        device_id: writer,
        member_id: Uuid::now_v7(),
    };
    let fields = to_json_fields(&youth).expect("fields");
    let changes = RecordDoc::create(Youth::KIND, id, author, &fields, Utc::now())
        .expect("document")
        .save();
    (
        id,
        PushDoc {
            id,
            kind: Youth::KIND.into(),
            changes,
        },
    )
}

fn push_one(env: &Env, device: &Device, push: PushDoc) -> SyncResponse {
    env.hub
        .sync(device, request(0, vec![push]))
        .expect("sync answers")
}

#[test]
fn new_changes_must_carry_the_pushing_tablets_writer_id() {
    let env = env();
    let one = env.tablet(&env.team_a, "one");
    let two = env.tablet(&env.team_a, "two");
    let two_device = device(&env, two.device_id);
    assert_eq!(two_device.writer, Some(two.store.device_id()));

    // As the teammate's tablet, or as the server: refused, nothing stored.
    for forged in [one.store.device_id(), Uuid::nil()] {
        let (id, push) = youth_push(&env, forged);
        let resp = push_one(&env, &two_device, push);
        assert!(resp.acks.is_empty());
        assert_eq!(resp.rejections.len(), 1);
        assert_eq!(resp.rejections[0].code, RejectCode::Invalid);
        assert!(resp.rejections[0].reason.contains("another tablet"));
        let stored = env
            .hub
            .storage()
            .read_with(|tx| tx.document(id))
            .expect("read");
        assert!(stored.is_none(), "a forged record is not stored");
    }
    // Under its own writer id: accepted.
    let (_, push) = youth_push(&env, two.store.device_id());
    let resp = push_one(&env, &two_device, push);
    assert_eq!((resp.acks.len(), resp.rejections.len()), (1, 0));
}

#[test]
fn a_device_of_an_older_app_may_not_use_a_bound_writer_id() {
    let env = env();
    let one = env.tablet(&env.team_a, "one");
    let (legacy, _) = env.raw_device(&env.team_a);
    assert_eq!(legacy.writer, None);
    let (_, forged) = youth_push(&env, one.store.device_id());
    assert_eq!(push_one(&env, &legacy, forged).rejections.len(), 1);
    let (_, own) = youth_push(&env, Uuid::new_v4());
    assert_eq!(push_one(&env, &legacy, own).acks.len(), 1);
}

#[test]
fn a_teammates_changes_relayed_wait_for_the_teammate_then_both_sync() {
    let env = env();
    let mut one = env.tablet(&env.team_a, "one");
    let mut two = env.tablet(&env.team_a, "two");
    let id = one.store.create(&one.demo.youth()).expect("create");
    one.sync_ok();
    two.sync_ok();
    // Offline, tablet one edits; its document reaches tablet two (as a peer would bring
    // it), which edits on top and reaches the server first.
    one.store
        .edit::<Youth>(id, |y| y.phone = Some("0600000001".into()))
        .expect("edit on one");
    let (kind, bytes) = one.store.export_document(id).expect("export");
    two.store.merge_remote(kind, id, &bytes).expect("merge");
    two.store
        .edit::<Youth>(id, |y| y.alias = Some("Jo".into()))
        .expect("edit on two");
    let report = two.sync_ok();
    assert_eq!(
        report.rejected, 1,
        "tablet one's change is not tablet two's to send"
    );
    assert!(matches!(
        two.store.sync_state(id).expect("state"),
        SyncState::Rejected { .. }
    ));
    // Tablet one sends its own change; tablet two's record is then offered again and taken.
    one.sync_ok();
    two.sync_ok();
    two.sync_ok();
    assert_eq!(two.store.sync_state(id).expect("state"), SyncState::Synced);
    one.sync_ok();
    let on_one = one.store.get::<Youth>(id).expect("read");
    assert_eq!(on_one.phone.as_deref(), Some("0600000001"));
    assert_eq!(on_one.alias.as_deref(), Some("Jo"));
}

#[test]
fn a_writer_id_is_given_again_only_to_the_store_that_holds_it() {
    let env = env();
    let mut one = env.tablet(&env.team_a, "one");
    let taken = one.store.device_id();
    let claim = |writer: Uuid, previous_token: Option<&str>| {
        env.hub.enrol(EnrolRequest {
            code: env.code(&env.team_a),
            device_label: "autre".into(),
            writer: Some(writer),
            previous_token: previous_token.map(str::to_string),
        })
    };
    assert!(matches!(claim(taken, None), Err(HubError::WriterTaken)));
    assert!(matches!(
        claim(taken, Some("pas-le-bon-jeton")),
        Err(HubError::WriterTaken)
    ));
    assert!(matches!(
        claim(Uuid::nil(), None),
        Err(HubError::WriterTaken)
    ));
    assert!(
        claim(Uuid::new_v4(), None).is_ok(),
        "a new writer id is free"
    );

    // The store itself enrols again (it sends its current token): same writer id.
    let again = one
        .store
        .enrol(
            &one.transport,
            "http://hub.test",
            &env.code(&env.team_a),
            "one",
            false,
        )
        .expect("re-enrol");
    assert_ne!(again.device_id, one.device_id);
    assert_eq!(device(&env, again.device_id).writer, Some(taken));
    let id = one.store.create(&one.demo.youth()).expect("create");
    one.sync_ok();
    assert_eq!(one.store.sync_state(id).expect("state"), SyncState::Synced);
}

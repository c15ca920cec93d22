//! Rectification without history: a record rewritten as a new generation holds only its
//! current values, the tablets replace their copies, a stale tablet cannot bring the old
//! generation back, and the old values are gone from every file of the server.

use std::path::Path;
use std::sync::Arc;

use repere_core::RecordKind;
use repere_core::document::{JsonFields, RecordDoc};
use repere_core::records::{Contact, ProfileFlag, Youth};
use repere_core::sync::protocol::{self, RejectCode};
use repere_server::{Hub, SqliteStorage};
use serde_json::json;

use crate::common::{HubTransport, KEY, env, request};

fn changes(pairs: &[(&str, serde_json::Value)]) -> JsonFields {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

fn holds(dir: &Path, needle: &str) -> Vec<String> {
    crate::common::files_holding(dir, needle)
}

fn stored_changes(hub: &Hub, id: uuid::Uuid) -> (u32, usize) {
    let stored = hub
        .storage()
        .read_with(|tx| tx.document(id))
        .expect("read")
        .expect("stored");
    let mut doc = RecordDoc::load(
        stored.kind,
        id,
        &stored.doc,
        repere_core::Author {
            device_id: uuid::Uuid::nil(),
            member_id: uuid::Uuid::nil(),
        },
    )
    .expect("loads");
    (stored.generation, doc.automerge().get_changes(&[]).len())
}

#[test]
fn a_removed_flag_leaves_no_byte_on_the_server_and_the_tablets_replace_their_copies() {
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path().join("server");
    // No key: the pages can be read in clear, which the byte search needs.
    let hub = Arc::new(Hub::new(Arc::new(
        SqliteStorage::open_dir(&data, None).expect("storage"),
    )));
    let org = hub.create_organisation("ML").expect("org");
    let team = hub.create_team(org.id, "Binôme").expect("team");
    let tablet = |name: &str| {
        let code = hub
            .issue_code(team.id, chrono::Duration::days(1))
            .expect("code")
            .code;
        let mut store =
            repere_core::Store::open(dir.path().join(format!("{name}.db")), &KEY).expect("store");
        store
            .enrol(
                &HubTransport(hub.clone()),
                "http://hub.test",
                &code,
                name,
                false,
            )
            .expect("enrol");
        store
    };
    let sync = |store: &mut repere_core::Store| {
        store
            .sync(&HubTransport(hub.clone()), &Default::default(), &mut |_| {})
            .expect("sync")
    };
    let (mut one, mut two) = (tablet("une"), tablet("deux"));
    let mut demo = repere_core::demo::DemoData::new(
        3,
        team.id,
        [uuid::Uuid::now_v7(), uuid::Uuid::now_v7()],
        chrono::Utc::now(),
    );
    let mut youth = demo.youth();
    youth.profile_flags = [ProfileFlag::Disability, ProfileFlag::CareLeaver].into();
    youth.alias = Some("Pseudo-Pangolin".into());
    let id = one.create(&youth).expect("youth");
    sync(&mut one);
    one.edit::<Youth>(id, |y| y.alias = Some("Pseudo-Pangolin-Bis".into()))
        .expect("edit");
    sync(&mut one);
    sync(&mut two);
    assert!(!holds(&data, "disability").is_empty(), "control search");
    assert!(!holds(&data, "Pangolin-Bis").is_empty(), "control search");

    let rectified = hub
        .rectify(
            id,
            &changes(&[
                ("profile_flags", json!(["care_leaver"])),
                ("alias", json!("Pseudo-Pangolin")),
            ]),
            None,
        )
        .expect("rectify");
    assert_eq!(rectified.generation, 1);
    assert_eq!(rectified.changed, vec!["alias", "profile_flags"]);
    assert_eq!(holds(&data, "disability"), Vec::<String>::new());
    assert_eq!(holds(&data, "Pangolin-Bis"), Vec::<String>::new());
    assert_eq!(stored_changes(&hub, id), (1, 1), "one change: no history");

    for store in [&mut one, &mut two] {
        let report = sync(store);
        assert_eq!((report.rewritten, report.edits_dropped), (1, 0));
        let read = store.get::<Youth>(id).expect("youth");
        assert_eq!(read.profile_flags, [ProfileFlag::CareLeaver].into());
        assert_eq!(read.alias.as_deref(), Some("Pseudo-Pangolin"));
        let history = store.history(id).expect("history");
        assert_eq!(
            history.len(),
            1,
            "the tablet's copy has no old history either"
        );
        assert_eq!(
            store.sync_state(id).expect("state"),
            repere_core::SyncState::Synced
        );
    }
    // The tablets go on editing the new generation.
    one.edit::<Youth>(id, |y| y.alias = Some("Pseudo-Pangolin-Ter".into()))
        .expect("edit");
    assert_eq!(sync(&mut one).rejected, 0);
    sync(&mut two);
    assert_eq!(
        two.get::<Youth>(id).expect("youth").alias.as_deref(),
        Some("Pseudo-Pangolin-Ter")
    );
    let (entries, _) = hub
        .storage()
        .read_with(|tx| tx.audit_entries(org.id, Some(id), 0, 10))
        .expect("journal");
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].action, "rectify_record");
    assert!(!entries[0].detail.contains("care"), "field names only");
}

#[test]
fn a_stale_tablet_keeps_its_other_edits_but_cannot_bring_the_old_generation_back() {
    let env = env();
    let mut author = env.tablet(&env.team_a, "une");
    let mut stale = env.tablet(&env.team_a, "deux");
    let mut youth = author.demo.youth();
    youth.profile_flags = [ProfileFlag::JusticeMeasure].into();
    let id = author.store.create(&youth).expect("youth");
    author.sync_ok();
    stale.sync_ok();
    // Offline: a new phone number, and a flag added, on the old generation.
    stale
        .store
        .edit::<Youth>(id, |y| {
            y.phone = Some("06 12 34 56 78".into());
            y.profile_flags.insert(ProfileFlag::SchoolDropout);
        })
        .expect("edit");
    env.hub
        .rectify(id, &changes(&[("profile_flags", json!([]))]), None)
        .expect("rectify");

    let report = stale.sync_ok();
    assert_eq!(report.rewritten, 1);
    assert_eq!(
        report.edits_dropped, 1,
        "the flag edit loses to the rectification"
    );
    let read = stale.store.get::<Youth>(id).expect("youth");
    assert!(read.profile_flags.is_empty());
    assert_eq!(read.phone.as_deref(), Some("06 12 34 56 78"), "kept");
    let (generation, _) = stored_changes(&env.hub, id);
    assert_eq!(
        generation, 1,
        "the phone number went on top of the new generation"
    );
    author.sync_ok();
    let on_author = author.store.get::<Youth>(id).expect("youth");
    assert_eq!(on_author.phone.as_deref(), Some("06 12 34 56 78"));
    assert!(on_author.profile_flags.is_empty());

    // A copy of the old generation pushed whole (a tablet that missed everything) is
    // refused, the server's copy unchanged, and the answer carries the new generation.
    let (device, _) = env.raw_device(&env.team_a);
    let before = env
        .hub
        .storage()
        .read_with(|tx| tx.document(id))
        .expect("read");
    let old = crate::common::push(id, &youth);
    let resp = env.hub.sync(&device, request(0, vec![old])).expect("sync");
    assert_eq!(resp.rejections.len(), 1);
    assert_eq!(resp.rejections[0].code, RejectCode::Rewritten);
    assert!(resp.docs.iter().any(|d| d.id == id));
    let after = env
        .hub
        .storage()
        .read_with(|tx| tx.document(id))
        .expect("read");
    assert_eq!(before.map(|d| d.heads), after.map(|d| d.heads));
}

#[test]
fn an_app_older_than_protocol_4_erases_a_rewritten_record_instead_of_merging_it() {
    let env = env();
    let mut tablet = env.tablet(&env.team_a, "une");
    let youth = tablet.demo.youth();
    let id = tablet.store.create(&youth).expect("youth");
    tablet.sync_ok();
    let (device, _) = env.raw_device(&env.team_a);
    env.hub
        .rectify(id, &changes(&[("referral_detail", json!(null))]), None)
        .expect("rectify");
    let (resp, _) = env
        .hub
        .sync_with_stats(&device, request(0, vec![]), 3)
        .expect("pull");
    assert!(resp.docs.iter().all(|d| d.id != id));
    assert!(resp.erased.contains(&id));
    let (resp, _) = env
        .hub
        .sync_with_stats(
            &device,
            request(0, vec![crate::common::push(id, &youth)]),
            3,
        )
        .expect("push");
    assert!(
        resp.docs.iter().all(|d| d.id != id),
        "not sent to an older app"
    );
    let wire = protocol::decode_response(&protocol::encode_response(3, &resp)).expect("v3");
    assert_eq!(wire.rejections[0].code, RejectCode::Erased);
    // The current app replaces its copy.
    assert_eq!(tablet.sync_ok().rewritten, 1);
}

#[test]
fn a_rectification_is_refused_when_it_would_make_the_record_invalid_or_names_no_field() {
    let env = env();
    let mut tablet = env.tablet(&env.team_a, "une");
    let id = tablet.store.create(&tablet.demo.youth()).expect("youth");
    tablet.sync_ok();
    let unreadable = env
        .hub
        .rectify(id, &changes(&[("first_contact_date", json!(null))]), None)
        .expect_err("a required field");
    assert!(
        unreadable.to_string().contains("cannot be read"),
        "{unreadable}"
    );
    let refused = env
        .hub
        .rectify(
            id,
            &changes(&[
                ("identity_level", json!("full_identity")),
                ("last_name", json!(null)),
            ]),
            None,
        )
        .expect_err("a full identity needs a last name");
    assert!(refused.to_string().contains("refused"), "{refused}");
    assert!(refused.to_string().contains("last_name"), "{refused}");
    let unknown = env
        .hub
        .rectify(id, &changes(&[("nom_inconnu", json!("x"))]), None)
        .expect_err("unknown field");
    assert!(unknown.to_string().contains("no field"), "{unknown}");
    let (generation, _) = stored_changes(&env.hub, id);
    assert_eq!(generation, 0, "nothing written");
    // With no change, only the history goes.
    let rectified = env
        .hub
        .rectify(id, &JsonFields::new(), None)
        .expect("history only");
    assert!(rectified.changed.is_empty());
    assert_eq!(stored_changes(&env.hub, id), (1, 1));
    assert_eq!(tablet.sync_ok().rewritten, 1);
}

#[test]
fn a_group_visit_is_rewritten_without_the_erased_young_person() {
    let env = env();
    let mut tablet = env.tablet(&env.team_a, "une");
    let gone = tablet.store.create(&tablet.demo.youth()).expect("youth");
    let stays = tablet.store.create(&tablet.demo.youth()).expect("youth");
    let group = tablet.demo.contact(&[gone, stays]);
    let group = tablet.store.create(&group).expect("group visit");
    tablet.sync_ok();
    env.hub.erase(gone).expect("erase");
    let (generation, changes) = stored_changes(&env.hub, group);
    assert_eq!(
        (generation, changes),
        (1, 1),
        "its history named the young person"
    );
    let stored = env
        .hub
        .storage()
        .read_with(|tx| tx.document(group))
        .expect("read")
        .expect("stored");
    let needle = gone.to_string();
    assert!(
        !String::from_utf8_lossy(&stored.doc).contains(&needle),
        "the erased id is not in the document"
    );
    assert_eq!(stored.kind, RecordKind::Contact);
    let report = tablet.sync_ok();
    assert_eq!(report.rewritten, 1);
    let visit = tablet.store.get::<Contact>(group).expect("visit");
    assert_eq!(visit.youth_ids.into_iter().collect::<Vec<_>>(), vec![stays]);
}

/// A whole copy of an older rewritten generation, offered again (a tablet sends everything
/// after the server was restored from a backup), is refused as that: an older generation,
/// with the new one in the answer. Automerge cannot hold both (each starts with the server's
/// change of seq 1, different unless made in the same second); that is no reason to call
/// the tablet's bytes malformed.
#[test]
fn an_older_rewritten_generation_pushed_whole_is_refused_as_rewritten_not_malformed() {
    let env = env();
    let mut tablet = env.tablet(&env.team_a, "une");
    let mut youth = tablet.demo.youth();
    youth.profile_flags = [ProfileFlag::JusticeMeasure, ProfileFlag::SchoolDropout].into();
    let id = tablet.store.create(&youth).expect("youth");
    tablet.sync_ok();
    env.hub
        .rectify(
            id,
            &changes(&[("profile_flags", json!(["school_dropout"]))]),
            None,
        )
        .expect("rectify");
    assert_eq!(tablet.sync_ok().rewritten, 1);
    let (_, held) = tablet.store.export_document(id).expect("export");

    env.clock.advance(chrono::Duration::seconds(2));
    env.hub
        .rectify(id, &changes(&[("profile_flags", json!([]))]), None)
        .expect("rectify again");
    let (device, _) = env.raw_device(&env.team_a);
    let whole = protocol::PushDoc {
        id,
        kind: RecordKind::Youth.into(),
        changes: held,
    };
    let resp = env
        .hub
        .sync(&device, request(0, vec![whole]))
        .expect("sync");
    assert_eq!(resp.rejections.len(), 1);
    assert_eq!(resp.rejections[0].code, RejectCode::Rewritten);
    assert!(
        resp.docs.iter().any(|d| d.id == id),
        "the new generation comes with it"
    );
}

//! Erasure to the byte, in-process: with the hub's storage open (as under a running server,
//! where no connection closes to checkpoint the WAL), an erased record's values are gone
//! from every file of the data directory as soon as the erasure returns.

use std::path::Path;
use std::sync::Arc;

use repere_core::records::Youth;
use repere_server::{Hub, SqliteStorage};

use crate::common::{HubTransport, KEY};

fn holds(dir: &Path, needle: &str) -> Vec<String> {
    crate::common::files_holding(dir, needle)
}

#[test]
fn the_wal_keeps_no_copy_of_an_erased_record() {
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path().join("server");
    // No key: the pages can be read in clear, which is what this test needs.
    let hub = Arc::new(Hub::new(Arc::new(
        SqliteStorage::open_dir(&data, None).expect("storage"),
    )));
    let org = hub.create_organisation("ML").expect("org");
    let team = hub.create_team(org.id, "Binôme").expect("team");
    let code = hub
        .issue_code(team.id, chrono::Duration::days(1))
        .expect("code")
        .code;
    let transport = HubTransport(hub.clone());
    let mut store =
        repere_core::Store::open(dir.path().join("tablet.db"), &KEY).expect("tablet store");
    store
        .enrol(&transport, "http://hub.test", &code, "t", false)
        .expect("enrol");
    let mut demo = repere_core::demo::DemoData::new(
        5,
        team.id,
        [uuid::Uuid::now_v7(), uuid::Uuid::now_v7()],
        chrono::Utc::now(),
    );
    let mut youth = demo.youth();
    youth.alias = Some("Pseudo-Ornithorynque".into());
    let id = store.create(&youth).expect("youth");
    store
        .sync(&transport, &Default::default(), &mut |_| {})
        .expect("sync");
    store
        .edit::<Youth>(id, |y| y.alias = Some("Pseudo-Ornithorynque bis".into()))
        .expect("edit");
    store
        .sync(&transport, &Default::default(), &mut |_| {})
        .expect("sync");
    assert!(
        !holds(&data, "Ornithorynque").is_empty(),
        "the control search finds the value while it is held"
    );
    hub.erase(id).expect("erase");
    assert_eq!(holds(&data, "Ornithorynque"), Vec::<String>::new());
}

#[test]
fn erasing_a_young_person_takes_their_file_and_leaves_group_visits_without_them() {
    use repere_core::records::Contact;

    let env = crate::common::env();
    let mut tablet = env.tablet(&env.team_a, "une");
    let mut other = env.tablet(&env.team_a, "deux");
    let gone = tablet.store.create(&tablet.demo.youth()).expect("youth");
    let stays = tablet.store.create(&tablet.demo.youth()).expect("youth");
    let alone = tablet.demo.contact(&[gone]);
    let alone = tablet.store.create(&alone).expect("visit alone");
    let group = tablet.demo.contact(&[gone, stays]);
    let group = tablet.store.create(&group).expect("group visit");
    let action = tablet.demo.action(gone);
    let action = tablet.store.create(&action).expect("action");
    let outcome = tablet.demo.outcome(gone);
    let outcome = tablet.store.create(&outcome).expect("outcome");
    let kept_action = tablet.demo.action(stays);
    let kept_action = tablet.store.create(&kept_action).expect("other's action");
    tablet.sync_ok();
    other.sync_ok();

    let erasure = env.hub.erase(gone).expect("erase");
    let mut linked = erasure.also_erased.clone();
    linked.sort();
    let mut expected = vec![alone, action, outcome];
    expected.sort();
    assert_eq!(linked, expected);
    assert_eq!(erasure.removed_from, vec![group]);

    for t in [&mut tablet, &mut other] {
        t.sync_ok();
        let mut ids: Vec<_> = t
            .store
            .ids()
            .expect("ids")
            .into_iter()
            .map(|(_, id)| id)
            .collect();
        ids.sort();
        let mut left = vec![stays, group, kept_action];
        left.sort();
        assert_eq!(ids, left, "the file went, the others stayed");
        let visit = t.store.get::<Contact>(group).expect("group visit");
        assert_eq!(visit.youth_ids.into_iter().collect::<Vec<_>>(), vec![stays]);
        assert_eq!(
            t.store.sync_state(group).expect("state"),
            repere_core::SyncState::Synced
        );
    }
    // The tablet may go on editing the group visit.
    tablet
        .store
        .edit::<Contact>(group, |c| c.next_step = Some("Rappeler".into()))
        .expect("edit");
    assert_eq!(tablet.sync_ok().rejected, 0);

    // One journal entry, with ids and counts only.
    let (entries, _) = env
        .hub
        .storage()
        .read_with(|tx| tx.audit_entries(env.org.id, Some(gone), 0, 10))
        .expect("journal");
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].action, "erase_record");
    assert!(
        entries[0].detail.contains("3 fiche(s)"),
        "{}",
        entries[0].detail
    );
    for id in [alone, action, outcome] {
        let tombstone = env
            .hub
            .storage()
            .read_with(|tx| tx.tombstone(id))
            .expect("read");
        assert!(tombstone.is_some(), "every linked record has its tombstone");
    }
}

#[test]
fn a_stale_tablets_new_visit_of_an_erased_young_person_is_erased_on_arrival() {
    let env = crate::common::env();
    let mut tablet = env.tablet(&env.team_a, "une");
    let mut stale = env.tablet(&env.team_a, "deux");
    let gone = tablet.store.create(&tablet.demo.youth()).expect("youth");
    tablet.sync_ok();
    stale.sync_ok();
    env.hub.erase(gone).expect("erase");
    // Offline, the stale tablet still shows the young person and records a visit.
    let visit = stale.demo.contact(&[gone]);
    let visit = stale.store.create(&visit).expect("visit");
    let report = stale.sync_ok();
    assert_eq!(report.rejected, 1);
    assert!(
        stale.store.ids().expect("ids").is_empty(),
        "both copies deleted"
    );
    let buried = env
        .hub
        .storage()
        .read_with(|tx| tx.tombstone(visit))
        .expect("read");
    assert!(
        buried.is_some(),
        "a tombstone, so no other copy can come back"
    );
    tablet.sync_ok();
    assert!(tablet.store.ids().expect("ids").is_empty());
}

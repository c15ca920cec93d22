//! App versions side by side and merged-invalid records, through the hub: what a newer
//! tablet writes travels through an older one intact, and two valid edits that merge into
//! an invalid record are kept and shown on the tablet.

use automerge::{AutoCommit, ObjType, ReadDoc, ScalarValue, Value, transaction::Transactable};
use repere_core::records::{Contact, ContactKind, Need};
use repere_core::{RecordKind, SyncState};

use crate::common::env;

fn scalar(doc: &AutoCommit, key: &str) -> Option<String> {
    match doc.get(automerge::ROOT, key).ok()?? {
        (Value::Scalar(s), _) => match s.as_ref() {
            ScalarValue::Str(s) => Some(s.to_string()),
            _ => None,
        },
        _ => None,
    }
}

#[test]
fn a_newer_tablets_values_travel_through_the_server_and_an_older_tablet_intact() {
    let env = env();
    let mut newer = env.tablet(&env.team_a, "récente");
    let mut older = env.tablet(&env.team_a, "ancienne");
    let youth = newer.demo.youth();
    let youth_id = newer.store.create(&youth).expect("youth");
    let contact = newer.demo.contact(&[youth_id]);
    let id = newer.store.create(&contact).expect("contact");
    // What a newer app version writes: a contact kind and a need this one does not know.
    // (A new field is refused by a server that does not know it: servers are upgraded
    // before tablets.)
    let (_, bytes) = newer.store.export_document(id).expect("export");
    let mut doc = AutoCommit::load(&bytes)
        .expect("load")
        .with_actor(automerge::ActorId::from(
            [newer.store.device_id().as_bytes().as_slice(), &[0xAB; 16]].concat(),
        ));
    doc.put(automerge::ROOT, "g", "visio").expect("kind");
    let Ok(Some((Value::Object(ObjType::Map), needs))) = doc.get(automerge::ROOT, "i") else {
        panic!("needs container")
    };
    doc.put(&needs, "culture", true).expect("need");
    newer
        .store
        .merge_remote(RecordKind::Contact, id, &doc.save())
        .expect("merge");
    newer.sync_ok();
    older.sync_ok();

    let form = older.store.read::<Contact>(id).expect("read");
    assert_eq!(form.record.kind, ContactKind::FromNewerVersion);
    let mut mine = form.record.clone();
    mine.next_step = Some("Rappeler jeudi".into());
    older.store.update(id, &form.version, &mine).expect("edit");
    older.sync_ok();
    assert_eq!(
        older.store.sync_state(id).expect("state"),
        SyncState::Synced
    );
    newer.sync_ok();

    let (_, back) = newer.store.export_document(id).expect("export");
    let back = AutoCommit::load(&back).expect("load");
    assert_eq!(scalar(&back, "g").as_deref(), Some("visio"));
    assert_eq!(scalar(&back, "j").as_deref(), Some("Rappeler jeudi"));
    let Ok(Some((Value::Object(ObjType::Map), needs))) = back.get(automerge::ROOT, "i") else {
        panic!("needs container")
    };
    assert!(back.keys(&needs).any(|k| k == "culture"));
    let read: Contact = newer.store.get(id).expect("read");
    assert!(read.needs.contains(&Need::FromNewerVersion));
}

#[test]
fn two_valid_edits_that_merge_invalid_are_refused_by_the_server_and_shown_on_the_tablet() {
    let env = env();
    let mut a = env.tablet(&env.team_a, "a");
    let mut b = env.tablet(&env.team_a, "b");
    let youth = a.demo.youth();
    let youth_id = a.store.create(&youth).expect("youth");
    let mut contact = a.demo.contact(&[youth_id]);
    contact.next_step = Some("Appeler".into());
    contact.next_step_due = None;
    let id = a.store.create(&contact).expect("contact");
    a.sync_ok();
    b.sync_ok();
    a.store
        .edit::<Contact>(id, |c| {
            c.next_step_due = Some(c.occurred_at.date_naive() + chrono::Duration::days(2))
        })
        .expect("a: due date");
    b.store
        .edit::<Contact>(id, |c| c.next_step = None)
        .expect("b: no next step");
    a.sync_ok();
    let report = b.sync_ok();
    assert_eq!(report.rejected, 1, "{report:?}");
    // B holds both edits, listed with what to fix; the server kept only the valid one.
    let merged: Contact = b.store.get(id).expect("read");
    assert!(merged.next_step.is_none() && merged.next_step_due.is_some());
    assert!(
        b.store
            .problems(id)
            .expect("problems")
            .is_some_and(|p| p.contains("next_step"))
    );
    assert!(matches!(
        b.store.sync_state(id).expect("state"),
        SyncState::Rejected { .. }
    ));
    // The field worker resolves it; everyone converges on a valid record.
    b.store
        .edit::<Contact>(id, |c| {
            c.next_step = Some("Rendez-vous à la mission locale".into())
        })
        .expect("fix");
    assert_eq!(b.store.problems(id).expect("problems"), None);
    b.sync_ok();
    a.sync_ok();
    let fixed: Contact = a.store.get(id).expect("read");
    assert_eq!(
        fixed.next_step.as_deref(),
        Some("Rendez-vous à la mission locale")
    );
    assert!(fixed.next_step_due.is_some());
    assert_eq!(b.store.sync_state(id).expect("state"), SyncState::Synced);
}

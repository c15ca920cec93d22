//! Edits against the version seen, schema growth and app versions side by side
//! (DESIGN.md decisions 11 and 12), through the public `Store` API as the shells use it.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use automerge::{AutoCommit, ObjType, ReadDoc, ScalarValue, Value, transaction::Transactable};
use common::{TestStore, open_store};
use proptest::prelude::*;
use repere_core::records::{Contact, ContactKind, Need};
use repere_core::{Error, Problem, RecordKind, Store, SyncState};
use uuid::Uuid;

/// Two tablets of one team holding the same visit.
fn two_tablets() -> (TestStore, TestStore, Uuid) {
    let mut a = open_store(1);
    let mut b = open_store(2);
    a.store.set_member(Uuid::from_u128(11));
    b.store.set_member(Uuid::from_u128(12));
    let youth = a.demo.youth();
    let youth_id = a.store.create(&youth).expect("youth");
    let mut contact = a.demo.contact(&[youth_id]);
    contact.needs = BTreeSet::from([Need::Employment]);
    contact.notes = "Rencontré devant la boulangerie.".into();
    contact.next_step = None;
    contact.next_step_due = None;
    let id = a.store.create(&contact).expect("contact");
    copy(&a.store, &mut b.store, youth_id);
    copy(&a.store, &mut b.store, id);
    (a, b, id)
}

/// Hands one record's document from one tablet to the other (as a sync would).
fn copy(from: &Store, to: &mut Store, id: Uuid) {
    let (kind, bytes) = from.export_document(id).expect("export");
    to.merge_remote(kind, id, &bytes).expect("merge");
}

#[test]
fn a_form_saved_after_a_sync_keeps_what_the_sync_brought() {
    let (mut a, mut b, id) = two_tablets();
    // A opens the visit's form.
    let form = a.store.read::<Contact>(id).expect("read");
    // B adds two needs and a sentence, and its change reaches A (background sync).
    b.store
        .edit::<Contact>(id, |c| {
            c.needs.insert(Need::Housing);
            c.needs.insert(Need::Rights);
            c.notes.push_str(" Cherche un logement à Verdun.");
        })
        .expect("B edits");
    copy(&b.store, &mut a.store, id);
    // A saves its form with one change of its own.
    let mut mine = form.record.clone();
    mine.next_step = Some("Rappeler lundi".into());
    a.store.update(id, &form.version, &mine).expect("A saves");
    copy(&a.store, &mut b.store, id);
    for store in [&a.store, &b.store] {
        let c: Contact = store.get(id).expect("read");
        assert_eq!(
            c.needs,
            BTreeSet::from([Need::Employment, Need::Housing, Need::Rights])
        );
        assert_eq!(
            c.notes,
            "Rencontré devant la boulangerie. Cherche un logement à Verdun."
        );
        assert_eq!(c.next_step.as_deref(), Some("Rappeler lundi"));
        assert!(store.conflicts(id).expect("conflicts").is_empty());
    }
}

#[test]
fn the_same_field_changed_on_both_sides_is_a_visible_conflict() {
    let (mut a, mut b, id) = two_tablets();
    let form = a.store.read::<Contact>(id).expect("read");
    b.store
        .edit::<Contact>(id, |c| c.kind = ContactKind::Phone)
        .expect("B edits");
    copy(&b.store, &mut a.store, id);
    let mut mine = form.record.clone();
    mine.kind = ContactKind::Home;
    a.store.update(id, &form.version, &mine).expect("A saves");
    copy(&a.store, &mut b.store, id);
    for store in [&a.store, &b.store] {
        let conflicts = store.conflicts(id).expect("conflicts");
        assert_eq!(conflicts.len(), 1, "{conflicts:?}");
        assert_eq!(conflicts[0].field, "kind");
        let values: BTreeSet<String> = conflicts[0]
            .values
            .iter()
            .map(|v| v.value.as_str().unwrap_or_default().to_string())
            .collect();
        assert_eq!(values, BTreeSet::from(["home".into(), "phone".into()]));
    }
}

#[test]
fn clearing_a_field_while_another_tablet_sets_it_is_a_conflict_not_a_loss() {
    let (mut a, mut b, id) = two_tablets();
    a.store
        .edit::<Contact>(id, |c| {
            c.next_step = Some("Appeler la mission locale".into())
        })
        .expect("set");
    copy(&a.store, &mut b.store, id);
    let form = a.store.read::<Contact>(id).expect("read");
    b.store
        .edit::<Contact>(id, |c| c.next_step = Some("Accompagner au CCAS".into()))
        .expect("B changes it");
    copy(&b.store, &mut a.store, id);
    let mut mine = form.record.clone();
    mine.next_step = None;
    a.store.update(id, &form.version, &mine).expect("A clears");
    let conflicts = a.store.conflicts(id).expect("conflicts");
    assert_eq!(conflicts.len(), 1, "{conflicts:?}");
    let values: Vec<&serde_json::Value> = conflicts[0].values.iter().map(|v| &v.value).collect();
    assert!(values.contains(&&serde_json::json!("Accompagner au CCAS")));
    assert!(values.contains(&&serde_json::Value::Null));
}

#[test]
fn a_version_from_elsewhere_is_refused_and_an_unchanged_form_writes_nothing() {
    let (mut a, b, id) = two_tablets();
    let form = a.store.read::<Contact>(id).expect("read");
    let before = a.store.version(id).expect("version");
    assert_eq!(
        a.store
            .update(id, &form.version, &form.record)
            .expect("no-op"),
        before
    );
    let other = b.store.read::<Contact>(id).expect("read");
    let foreign = repere_core::Version::from_bytes(&[9u8; 32]).expect("shape");
    assert!(matches!(
        a.store.update(id, &foreign, &other.record),
        Err(Error::UnknownVersion { .. })
    ));
    assert!(repere_core::Version::from_bytes(&[1, 2, 3]).is_none());
}

#[test]
fn an_edit_against_an_old_version_after_own_later_edits_keeps_both() {
    let (mut a, _b, id) = two_tablets();
    let form = a.store.read::<Contact>(id).expect("read");
    a.store
        .edit::<Contact>(id, |c| {
            c.needs.insert(Need::Health);
        })
        .expect("own later edit");
    let mut mine = form.record.clone();
    mine.next_step = Some("Revoir vendredi".into());
    a.store
        .update(id, &form.version, &mine)
        .expect("save old form");
    let c: Contact = a.store.get(id).expect("read");
    assert!(c.needs.contains(&Need::Health));
    assert_eq!(c.next_step.as_deref(), Some("Revoir vendredi"));
    // The history still names this tablet's member as the author of both edits.
    let history = a.store.history(id).expect("history");
    assert!(
        history
            .iter()
            .rev()
            .take(2)
            .all(|h| h.author.map(|x| x.member_id) == Some(Uuid::from_u128(11)))
    );
}

#[test]
fn two_valid_edits_that_merge_into_an_invalid_record_are_kept_and_listed() {
    let (mut a, mut b, id) = two_tablets();
    a.store
        .edit::<Contact>(id, |c| c.next_step = Some("Appeler".into()))
        .expect("set");
    copy(&a.store, &mut b.store, id);
    // A sets a due date for the next step; B concurrently removes the next step.
    let a_form = a.store.read::<Contact>(id).expect("read");
    let mut due = a_form.record.clone();
    due.next_step_due = Some(due.occurred_at.date_naive() + chrono::Duration::days(3));
    a.store.update(id, &a_form.version, &due).expect("A valid");
    b.store
        .edit::<Contact>(id, |c| c.next_step = None)
        .expect("B valid");
    copy(&b.store, &mut a.store, id);
    let merged: Contact = a.store.get(id).expect("read");
    assert!(merged.next_step_due.is_some() && merged.next_step.is_none());
    let problems = a.store.problems(id).expect("problems").expect("listed");
    assert!(problems.contains("next_step"), "{problems}");
    assert_eq!(
        a.store.with_problems().expect("list"),
        vec![(RecordKind::Contact, id)]
    );
    // An ordinary edit that fixes it clears the listing.
    a.store
        .edit::<Contact>(id, |c| c.next_step = Some("Appeler".into()))
        .expect("fix");
    assert_eq!(a.store.problems(id).expect("problems"), None);
}

#[test]
fn what_comes_from_a_peer_is_never_taken_as_acknowledged_by_the_server() {
    let (a, b, id) = two_tablets();
    assert_eq!(
        b.store.sync_state(id).expect("state"),
        SyncState::NeverSynced
    );
    drop(a);
    assert!(
        b.store
            .unsynced()
            .expect("unsynced")
            .iter()
            .any(|(_, i)| *i == id)
    );
}

// ---- Schema growth: containers created concurrently ---------------------------------

/// A contact document as an older app version wrote it: without the `needs` set and the
/// `notes` text (as if both fields had been added to the schema later).
fn old_document(a: &Store, id: Uuid) -> Vec<u8> {
    let (_, bytes) = a.export_document(id).expect("export");
    let mut doc = AutoCommit::load(&bytes).expect("load");
    // Positions of `notes` (h) and `needs` (i) in the contact schema.
    doc.delete(automerge::ROOT, "h").expect("drop notes");
    doc.delete(automerge::ROOT, "i").expect("drop needs");
    doc.save()
}

#[test]
fn two_tablets_first_writing_a_field_added_later_both_keep_their_writes() {
    let (a, mut b, id) = two_tablets();
    let old = old_document(&a.store, id);
    let mut c = open_store(3);
    c.store.set_member(Uuid::from_u128(13));
    // Both tablets get the old document (the deletes dominate the earlier values).
    b.store
        .merge_remote(RecordKind::Contact, id, &old)
        .expect("b");
    c.store
        .merge_remote(RecordKind::Contact, id, &old)
        .expect("c");
    for store in [&b.store, &c.store] {
        let contact: Contact = store.get(id).expect("read");
        assert!(contact.needs.is_empty() && contact.notes.is_empty());
    }
    b.store
        .edit::<Contact>(id, |x| {
            x.needs.insert(Need::Mobility);
            x.notes = "Permis en cours.".into();
        })
        .expect("b writes first");
    c.store
        .edit::<Contact>(id, |x| {
            x.needs.insert(Need::Health);
            x.notes = "Rendez-vous CMP.".into();
        })
        .expect("c writes first");
    copy(&b.store, &mut c.store, id);
    copy(&c.store, &mut b.store, id);
    for store in [&b.store, &c.store] {
        let contact: Contact = store.get(id).expect("read");
        assert_eq!(
            contact.needs,
            BTreeSet::from([Need::Health, Need::Mobility])
        );
        assert!(
            contact.notes.contains("Permis en cours."),
            "{}",
            contact.notes
        );
        assert!(
            contact.notes.contains("Rendez-vous CMP."),
            "{}",
            contact.notes
        );
    }
    // The next edit of the notes writes them into one container again.
    b.store
        .edit::<Contact>(id, |x| x.notes.push_str(" Suivi."))
        .expect("edit");
    copy(&b.store, &mut c.store, id);
    let contact: Contact = c.store.get(id).expect("read");
    assert_eq!(contact.notes.matches("Permis en cours.").count(), 1);
    assert!(contact.notes.ends_with(" Suivi."));
}

// ---- App versions side by side ------------------------------------------------------

/// What a newer app version writes into a contact: a contact kind this version does not
/// know, a need it does not know, and a field past the end of this version's schema.
fn written_by_newer_version(bytes: &[u8]) -> Vec<u8> {
    let mut doc = AutoCommit::load(bytes)
        .expect("load")
        .with_actor(automerge::ActorId::from([0xAB; 32].to_vec()));
    doc.put(automerge::ROOT, "g", "visio").expect("kind");
    let needs = match doc.get(automerge::ROOT, "i").expect("needs") {
        Some((Value::Object(ObjType::Map), obj)) => obj,
        other => panic!("needs container expected, got {other:?}"),
    };
    doc.put(&needs, "culture", true).expect("need");
    doc.put(automerge::ROOT, "Z", "champ d'une version future")
        .expect("new field");
    doc.save()
}

fn scalar(doc: &AutoCommit, key: &str) -> Option<String> {
    match doc.get(automerge::ROOT, key).expect("get")? {
        (Value::Scalar(s), _) => match s.as_ref() {
            ScalarValue::Str(s) => Some(s.to_string()),
            _ => None,
        },
        _ => None,
    }
}

#[test]
fn a_record_from_a_newer_version_travels_through_an_older_tablet_intact() {
    let (a, mut old, id) = two_tablets();
    let (_, bytes) = a.store.export_document(id).expect("export");
    let newer = written_by_newer_version(&bytes);
    old.store
        .merge_remote(RecordKind::Contact, id, &newer)
        .expect("the older tablet takes it");
    // The older tablet reads it, showing what it does not know as such.
    let form = old.store.read::<Contact>(id).expect("read");
    assert_eq!(form.record.kind, ContactKind::FromNewerVersion);
    assert!(form.record.needs.contains(&Need::FromNewerVersion));
    // It edits another field…
    let mut mine = form.record.clone();
    mine.next_step = Some("Rappeler".into());
    mine.needs.insert(Need::Training);
    old.store.update(id, &form.version, &mine).expect("edit");
    // Back on the newer side, everything it wrote is there, byte for byte.
    let (_, back) = old.store.export_document(id).expect("export");
    let doc = AutoCommit::load(&back).expect("load");
    assert_eq!(scalar(&doc, "g").as_deref(), Some("visio"));
    assert_eq!(
        scalar(&doc, "Z").as_deref(),
        Some("champ d'une version future")
    );
    assert_eq!(scalar(&doc, "j").as_deref(), Some("Rappeler"));
    let needs = match doc.get(automerge::ROOT, "i").expect("needs") {
        Some((Value::Object(ObjType::Map), obj)) => obj,
        other => panic!("needs container expected, got {other:?}"),
    };
    let keys: BTreeSet<String> = doc.keys(&needs).collect();
    assert_eq!(
        keys,
        BTreeSet::from(["culture".into(), "employment".into(), "training".into()])
    );
}

#[test]
fn a_form_cannot_set_a_value_it_only_knows_as_newer() {
    let (mut a, _b, id) = two_tablets();
    let form = a.store.read::<Contact>(id).expect("read");
    let mut bad = form.record.clone();
    bad.kind = ContactKind::FromNewerVersion;
    match a.store.update(id, &form.version, &bad) {
        Err(Error::Invalid(errs)) => {
            assert!(
                errs.0
                    .iter()
                    .any(|e| e.field == "kind" && e.problem == Problem::NewerVersionValue)
            )
        }
        other => panic!("expected a validation error, got {other:?}"),
    }
    let mut new = form.record.clone();
    new.kind = ContactKind::FromNewerVersion;
    assert!(
        matches!(a.store.create(&new), Err(Error::Invalid(_))),
        "a new record cannot hold a value it only knows as newer"
    );
    let mut demo_contact = form.record.clone();
    demo_contact.needs.insert(Need::FromNewerVersion);
    assert!(matches!(
        a.store.update(id, &form.version, &demo_contact),
        Err(Error::Invalid(_))
    ));
}

// ---- Model-based: random interleavings on three replicas ----------------------------

const KINDS: [ContactKind; 3] = [ContactKind::Street, ContactKind::Phone, ContactKind::Event];
const NEEDS: [Need; 4] = [Need::Housing, Need::Health, Need::Mobility, Need::Training];

#[derive(Debug, Clone)]
enum Change {
    NextStep,
    ClearNextStep,
    Kind(usize),
    AddNeed(usize),
    RemoveNeed(usize),
    Note(u8),
}

#[derive(Debug, Clone)]
enum Op {
    /// Replica opens a form (reads the record with its version).
    Read(usize),
    /// Replica saves its open form (or a fresh one) with a change.
    Save(usize, Change),
    /// Replica edits through the closure API.
    Edit(usize, Change),
    /// Two replicas exchange their documents (a sync, a peer session).
    Exchange(usize, usize),
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        Just(Change::NextStep),
        Just(Change::ClearNextStep),
        (0..KINDS.len()).prop_map(Change::Kind),
        (0..NEEDS.len()).prop_map(Change::AddNeed),
        (0..NEEDS.len()).prop_map(Change::RemoveNeed),
        any::<u8>().prop_map(Change::Note),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..3usize).prop_map(Op::Read),
        (0..3usize, change()).prop_map(|(r, c)| Op::Save(r, c)),
        (0..3usize, change()).prop_map(|(r, c)| Op::Edit(r, c)),
        (0..3usize, 0..3usize).prop_map(|(a, b)| Op::Exchange(a, b)),
    ]
}

/// One write the model remembers: which field, what value, and which earlier writes its
/// author had seen (those it may legitimately supersede).
#[derive(Debug, Clone)]
struct Write {
    field: &'static str,
    value: serde_json::Value,
    seen: BTreeSet<usize>,
}

struct Model {
    writes: Vec<Write>,
    /// Write ids each replica's document holds.
    known: [BTreeSet<usize>; 3],
    forms: [Option<(repere_core::Versioned<Contact>, BTreeSet<usize>)>; 3],
    markers: Vec<String>,
}

/// Applies a change to a form; returns the writes it makes relative to what it holds.
fn apply(
    c: &mut Contact,
    change: &Change,
    n: usize,
    markers: &mut Vec<String>,
) -> Vec<(&'static str, serde_json::Value)> {
    match change {
        Change::NextStep => {
            let v = format!("étape {n}");
            c.next_step = Some(v.clone());
            c.next_step_due = None;
            vec![("next_step", v.into())]
        }
        Change::ClearNextStep => {
            if c.next_step.is_none() {
                return vec![];
            }
            c.next_step = None;
            c.next_step_due = None;
            vec![("next_step", serde_json::Value::Null)]
        }
        Change::Kind(k) => {
            if c.kind == KINDS[*k] {
                return vec![];
            }
            c.kind = KINDS[*k];
            vec![("kind", serde_json::to_value(KINDS[*k]).expect("json"))]
        }
        Change::AddNeed(i) => {
            if !c.needs.insert(NEEDS[*i]) {
                return vec![];
            }
            vec![("needs+", serde_json::to_value(NEEDS[*i]).expect("json"))]
        }
        Change::RemoveNeed(i) => {
            if !c.needs.remove(&NEEDS[*i]) {
                return vec![];
            }
            vec![("needs-", serde_json::to_value(NEEDS[*i]).expect("json"))]
        }
        Change::Note(pos) => {
            let marker = format!("‹{n}›");
            let chars: Vec<char> = c.notes.chars().collect();
            // Insert between markers, never inside one, so each stays findable.
            let mut depth = 0;
            let mut allowed = vec![0];
            for (i, ch) in chars.iter().enumerate() {
                match ch {
                    '‹' => depth += 1,
                    '›' => depth -= 1,
                    _ => {}
                }
                if depth == 0 {
                    allowed.push(i + 1);
                }
            }
            let at = allowed[usize::from(*pos) * allowed.len() / 256];
            let mut notes: String = chars[..at].iter().collect();
            notes.push_str(&marker);
            notes.extend(&chars[at..]);
            c.notes = notes;
            markers.push(marker.clone());
            vec![("notes", marker.into())]
        }
    }
}

fn run(ops: &[Op]) -> Result<(), TestCaseError> {
    let stores: Vec<TestStore> = (0..3).map(|i| open_store(10 + i)).collect();
    let mut stores = stores;
    for (i, s) in stores.iter_mut().enumerate() {
        s.store.set_member(Uuid::from_u128(100 + i as u128));
    }
    let youth = stores[0].demo.youth();
    let youth_id = stores[0].store.create(&youth).expect("youth");
    let mut base = stores[0].demo.contact(&[youth_id]);
    base.next_step = None;
    base.next_step_due = None;
    base.needs = BTreeSet::new();
    base.notes = "Début.".into();
    base.kind = ContactKind::Street;
    let id = stores[0].store.create(&base).expect("contact");
    for i in 1..3 {
        let (kind, bytes) = stores[0].store.export_document(id).expect("export");
        stores[i]
            .store
            .merge_remote(kind, id, &bytes)
            .expect("merge");
    }
    let mut m = Model {
        writes: Vec::new(),
        known: Default::default(),
        forms: Default::default(),
        markers: Vec::new(),
    };
    for op in ops {
        match op {
            Op::Read(r) => {
                let form = stores[*r].store.read::<Contact>(id).expect("read");
                m.forms[*r] = Some((form, m.known[*r].clone()));
            }
            Op::Save(r, change) | Op::Edit(r, change) => {
                let (mut record, version, seen) = match (op, m.forms[*r].take()) {
                    (Op::Save(..), Some((form, seen))) => (form.record, Some(form.version), seen),
                    _ => {
                        let now = stores[*r].store.read::<Contact>(id).expect("read");
                        (now.record, None, m.known[*r].clone())
                    }
                };
                let n = m.writes.len();
                let made = apply(&mut record, change, n, &mut m.markers);
                if made.is_empty() {
                    continue;
                }
                match version {
                    Some(v) => {
                        stores[*r].store.update(id, &v, &record).expect("save");
                    }
                    None => {
                        let target = record.clone();
                        stores[*r]
                            .store
                            .edit::<Contact>(id, |c| *c = target)
                            .expect("edit");
                    }
                }
                for (field, value) in made {
                    let w = m.writes.len();
                    m.writes.push(Write {
                        field,
                        value,
                        seen: seen.clone(),
                    });
                    m.known[*r].insert(w);
                }
            }
            Op::Exchange(a, b) if a != b => {
                let (ka, ba) = stores[*a].store.export_document(id).expect("export");
                let (kb, bb) = stores[*b].store.export_document(id).expect("export");
                stores[*b].store.merge_remote(ka, id, &ba).expect("merge");
                stores[*a].store.merge_remote(kb, id, &bb).expect("merge");
                let union: BTreeSet<usize> = m.known[*a].union(&m.known[*b]).copied().collect();
                m.known[*a] = union.clone();
                m.known[*b] = union;
            }
            Op::Exchange(..) => {}
        }
    }
    // Everyone meets everyone.
    for (a, b) in [(0, 1), (1, 2), (0, 2), (0, 1)] {
        let (ka, ba) = stores[a].store.export_document(id).expect("export");
        stores[b].store.merge_remote(ka, id, &ba).expect("merge");
        let (kb, bb) = stores[b].store.export_document(id).expect("export");
        stores[a].store.merge_remote(kb, id, &bb).expect("merge");
    }
    let finals: Vec<Contact> = stores
        .iter()
        .map(|s| s.store.get(id).expect("read"))
        .collect();
    prop_assert_eq!(&finals[0], &finals[1]);
    prop_assert_eq!(&finals[1], &finals[2]);
    let fin = &finals[0];
    let conflicts: BTreeMap<String, Vec<serde_json::Value>> = stores[0]
        .store
        .conflicts(id)
        .expect("conflicts")
        .into_iter()
        .map(|c| (c.field, c.values.into_iter().map(|v| v.value).collect()))
        .collect();
    let fields = serde_json::to_value(fin).expect("json");
    for (w, write) in m.writes.iter().enumerate() {
        // Superseded: a later write to the same field by someone who had seen this one.
        let same_field = |other: &Write| match (write.field, other.field) {
            ("needs+", "needs-") | ("needs-", "needs+") => other.value == write.value,
            (a, b) => a == b && !a.starts_with("needs") && a != "notes",
        };
        let superseded = m
            .writes
            .iter()
            .any(|o| o.seen.contains(&w) && same_field(o));
        match write.field {
            "notes" => prop_assert!(
                fin.notes.contains(write.value.as_str().unwrap_or_default()),
                "insertion {} lost from {:?}",
                write.value,
                fin.notes
            ),
            "needs+" if !superseded => prop_assert!(
                fields["needs"]
                    .as_array()
                    .is_some_and(|a| a.contains(&write.value)),
                "need {} added, never removed by one who saw it, is gone",
                write.value
            ),
            "needs-" | "needs+" => {}
            field if !superseded => {
                let shown = &fields[field];
                let listed = conflicts
                    .get(field)
                    .is_some_and(|v| v.contains(&write.value));
                prop_assert!(
                    shown == &write.value || listed,
                    "{field} = {} written and never seen by another writer is lost (final {shown}, conflicts {:?})",
                    write.value,
                    conflicts.get(field)
                );
            }
            _ => {}
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("REPERE_SOAK").map_or(48, |_| 1000),
        ..ProptestConfig::default()
    })]

    #[test]
    fn no_write_is_lost_under_random_interleavings(ops in proptest::collection::vec(op(), 1..40)) {
        run(&ops)?;
    }
}

//! Property tests of the merge: replicas that receive the same changes, in any order and
//! even twice, end identical, and no replica's edit is lost.

use std::collections::BTreeSet;

use chrono::{TimeZone, Utc};
use proptest::prelude::*;
use repere_core::document::{Author, RecordDoc, to_json_fields};
use repere_core::records::{Contact, ContactKind, Need, Record};
use serde_json::Value as Json;
use uuid::Uuid;

const NEEDS: [Need; 4] = [Need::Housing, Need::Health, Need::Mobility, Need::Training];
const KINDS: [ContactKind; 3] = [ContactKind::Street, ContactKind::Phone, ContactKind::Event];
const COMMUNES: [&str; 3] = ["55502", "55545", "08409"];

#[derive(Debug, Clone)]
enum Edit {
    Kind(usize),
    Commune(usize),
    AddNeed(usize),
    RemoveNeed(usize),
    /// Inserts a marker unique to this edit at a relative position in the notes.
    Note(u8),
    NextStep(Option<u8>),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (0..KINDS.len()).prop_map(Edit::Kind),
        (0..COMMUNES.len()).prop_map(Edit::Commune),
        (0..NEEDS.len()).prop_map(Edit::AddNeed),
        (0..NEEDS.len()).prop_map(Edit::RemoveNeed),
        any::<u8>().prop_map(Edit::Note),
        proptest::option::of(any::<u8>()).prop_map(Edit::NextStep),
    ]
}

fn base() -> Contact {
    Contact {
        team_id: Uuid::from_u128(1),
        youth_ids: BTreeSet::from([Uuid::from_u128(2)]),
        tour_id: None,
        member_ids: BTreeSet::from([Uuid::from_u128(3)]),
        occurred_at: Utc
            .with_ymd_and_hms(2026, 11, 2, 10, 0, 0)
            .single()
            .expect("date")
            .fixed_offset(),
        commune: "55502".into(),
        kind: ContactKind::Street,
        notes: "Rencontre devant la mairie.".into(),
        needs: BTreeSet::from([Need::Housing]),
        next_step: None,
        next_step_due: None,
    }
}

fn author(i: usize) -> Author {
    Author {
        device_id: Uuid::from_u128(100 + i as u128),
        member_id: Uuid::from_u128(200 + i as u128),
    }
}

/// What one replica intends the record to hold after its own edits.
#[derive(Default)]
struct Intent {
    scalars: Vec<(&'static str, Json)>,
    needs_added: BTreeSet<Need>,
    markers: Vec<String>,
}

fn apply(doc: &mut RecordDoc, replica: usize, edits: &[Edit], intent: &mut Intent) {
    let now = Utc
        .with_ymd_and_hms(2026, 11, 3, 9, 0, 0)
        .single()
        .expect("date");
    for (n, e) in edits.iter().enumerate() {
        let old: Contact = doc.read().expect("readable");
        let mut new = old.clone();
        match e {
            Edit::Kind(k) => new.kind = KINDS[*k],
            Edit::Commune(c) => new.commune = COMMUNES[*c].into(),
            Edit::AddNeed(i) => {
                // Adding what is already there writes nothing, so it claims nothing.
                if new.needs.insert(NEEDS[*i]) {
                    intent.needs_added.insert(NEEDS[*i]);
                }
            }
            Edit::RemoveNeed(i) => {
                new.needs.remove(&NEEDS[*i]);
                intent.needs_added.remove(&NEEDS[*i]);
            }
            Edit::Note(pos) => {
                let marker = format!("[r{replica}e{n}]");
                let chars: Vec<char> = new.notes.chars().collect();
                // Insert between words or markers, never inside an earlier marker.
                let boundaries: Vec<usize> = (0..=chars.len())
                    .filter(|&i| i == 0 || i == chars.len() || matches!(chars[i - 1], ' ' | ']'))
                    .collect();
                let at = boundaries[usize::from(*pos) % boundaries.len()];
                new.notes = chars[..at]
                    .iter()
                    .chain(marker.chars().collect::<Vec<_>>().iter())
                    .chain(chars[at..].iter())
                    .collect();
                intent.markers.push(marker);
            }
            Edit::NextStep(s) => new.next_step = s.map(|s| format!("étape {s}")),
        }
        let (o, nf) = (
            to_json_fields(&old).expect("json"),
            to_json_fields(&new).expect("json"),
        );
        doc.update(&o, &nf, now).expect("update");
        for &(name, _) in Contact::SCHEMA {
            if o.get(name) != nf.get(name) && !matches!(name, "needs" | "notes") {
                intent.scalars.retain(|(f, _)| *f != name);
                intent
                    .scalars
                    .push((name, nf.get(name).cloned().unwrap_or(Json::Null)));
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn replicas_converge_and_keep_every_edit(
        edits in proptest::collection::vec(proptest::collection::vec(edit(), 1..6), 2..4),
        orders in proptest::collection::vec(any::<proptest::sample::Index>(), 16),
        duplicate in any::<bool>(),
    ) {
        let id = Uuid::from_u128(9);
        let fields = to_json_fields(&base()).expect("json");
        let t0 = Utc.with_ymd_and_hms(2026, 11, 2, 10, 0, 0).single().expect("date");
        let mut origin = RecordDoc::create(Contact::KIND, id, author(99), &fields, t0).expect("create");
        let base_bytes = origin.save();
        let base_heads = origin.heads();

        let mut replicas = Vec::new();
        let mut intents = Vec::new();
        for (i, e) in edits.iter().enumerate() {
            let mut doc = RecordDoc::load(Contact::KIND, id, &base_bytes, author(i)).expect("load");
            let mut intent = Intent::default();
            apply(&mut doc, i, e, &mut intent);
            replicas.push(doc);
            intents.push(intent);
        }
        let changes: Vec<Vec<automerge::Change>> = replicas
            .iter_mut()
            .map(|d| d.automerge().get_changes(&base_heads))
            .collect();

        // Each replica receives every other replica's changes, one by one, in its own
        // shuffled order (dependencies may arrive after their dependents), maybe twice.
        for (i, doc) in replicas.iter_mut().enumerate() {
            let mut incoming: Vec<automerge::Change> = changes
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .flat_map(|(_, c)| c.iter().cloned())
                .collect();
            if duplicate {
                incoming.extend(incoming.clone());
            }
            for k in (1..incoming.len()).rev() {
                let j = orders[k % orders.len()].index(k + 1);
                incoming.swap(k, j);
            }
            for change in incoming {
                doc.automerge().apply_changes(vec![change]).expect("apply");
            }
        }

        let first_fields = replicas[0].read_fields();
        let first_heads = { let mut h = replicas[0].heads(); h.sort(); h };
        for doc in replicas.iter_mut().skip(1) {
            prop_assert_eq!(doc.read_fields(), first_fields.clone());
            let mut h = doc.heads();
            h.sort();
            prop_assert_eq!(h, first_heads.clone());
        }

        let merged: Contact = replicas[0].read().expect("readable");
        let conflicts = replicas[0].conflicts();
        for intent in &intents {
            for marker in &intent.markers {
                prop_assert!(merged.notes.contains(marker.as_str()), "lost {} in {}", marker, merged.notes);
            }
            for need in &intent.needs_added {
                prop_assert!(merged.needs.contains(need), "lost need {:?}", need);
            }
            for (field, value) in &intent.scalars {
                let shown = first_fields.get(*field).cloned().unwrap_or(Json::Null);
                let kept = match conflicts.iter().find(|c| c.field == *field) {
                    Some(c) => c.values.iter().any(|v| &v.value == value),
                    None => &shown == value,
                };
                // A value set to "absent" is a deletion: it loses to a concurrent write.
                prop_assert!(kept || value.is_null(), "lost {} = {}", field, value);
            }
        }
    }
}

mod common;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use chrono::{Duration, NaiveDate};
use common::*;
use repere_core::records::{
    AgeBand, Contact, IdentityLevel, ProfileFlag, ReferralSource, Situation, Youth, YouthStatus,
};
use repere_core::{DuplicateProbe, Error, Origin, Problem, RecordKind, Store, SyncState};
use uuid::Uuid;

fn kevin() -> Youth {
    Youth {
        team_id: team(),
        identity_level: IdentityLevel::FirstName,
        alias: None,
        first_name: Some("Kévin".into()),
        last_name: None,
        birth_date: None,
        birth_year: Some(2007),
        age_band: None,
        sex: None,
        phone: Some("06 12 34 56 78".into()),
        email: None,
        other_contact: None,
        home_commune: Some("55502".into()), // Stenay
        referral_source: ReferralSource::TownHall,
        referral_detail: None,
        referral_date: None,
        profile_flags: BTreeSet::from([ProfileFlag::SchoolDropout]),
        situation: Situation::Neet,
        followed_by: None,
        first_contact_date: NaiveDate::from_ymd_opt(2026, 11, 2).expect("date"),
        notice_given_on: None,
        status: YouthStatus::Identified,
    }
}

fn visit(youth: Uuid) -> Contact {
    Contact {
        team_id: team(),
        youth_ids: BTreeSet::from([youth]),
        tour_id: None,
        member_ids: BTreeSet::from([Uuid::from_u128(11)]),
        occurred_at: (now() - Duration::hours(2)).fixed_offset(),
        commune: "55502".into(),
        kind: repere_core::records::ContactKind::Street,
        notes: "Devant la boulangerie.".into(),
        needs: BTreeSet::new(),
        next_step: None,
        next_step_due: None,
    }
}

/// Both replicas send each other their copy of a record.
fn exchange(a: &mut Store, b: &mut Store, id: Uuid) {
    let (kind, doc) = a.export_document(id).expect("export");
    b.merge_remote(kind, id, &doc).expect("merge");
    let (kind, doc) = b.export_document(id).expect("export");
    a.merge_remote(kind, id, &doc).expect("merge");
}

fn problems(err: Error) -> Vec<(&'static str, Problem)> {
    match err {
        Error::Invalid(v) => v.0.into_iter().map(|e| (e.field, e.problem)).collect(),
        other => panic!("expected a validation error, got {other}"),
    }
}

#[test]
fn creates_reads_and_edits_records() {
    let mut t = open_store(1);
    let id = t.store.create(&kevin()).expect("valid youth");
    assert_eq!(t.store.youth(id).expect("reads back"), kevin());
    let c = t.store.create(&visit(id)).expect("valid contact");
    assert_eq!(
        t.store.contact(c).expect("reads").youth_ids,
        BTreeSet::from([id])
    );

    let edited = t
        .store
        .edit::<Youth>(id, |y| y.status = YouthStatus::Mobilised)
        .expect("edit");
    assert_eq!(t.store.youth(id).expect("reads"), edited);
    assert!(matches!(t.store.contact(id), Err(Error::WrongKind { .. })));
    assert!(matches!(
        t.store.youth(Uuid::now_v7()),
        Err(Error::NotFound { .. })
    ));
}

#[test]
fn validation_names_each_bad_field_and_stores_nothing() {
    let mut t = open_store(2);
    let mut y = kevin();
    y.birth_year = Some(1980);
    y.home_commune = Some("99999".into());
    y.first_name = Some("x".repeat(81));
    y.referral_date = Some(NaiveDate::from_ymd_opt(2027, 6, 1).expect("date"));
    let p = problems(t.store.create(&y).expect_err("invalid"));
    assert!(p.contains(&("birth_year", Problem::AgeOutOfRange)), "{p:?}");
    assert!(
        p.contains(&("home_commune", Problem::UnknownCommune)),
        "{p:?}"
    );
    assert!(
        p.contains(&("first_name", Problem::TooLong { max: 80 })),
        "{p:?}"
    );
    assert!(p.contains(&("referral_date", Problem::InFuture)), "{p:?}");
    assert!(t.store.search_youth("x", 10).expect("search").is_empty());
    assert!(t.store.unsynced().expect("list").is_empty());

    // An exact birth date makes the age exact: 15 on the day of first contact is refused.
    let mut young = kevin();
    young.identity_level = IdentityLevel::FullIdentity;
    young.last_name = Some("Martin".into());
    young.birth_year = None;
    young.birth_date = NaiveDate::from_ymd_opt(2010, 11, 3);
    let p = problems(t.store.create(&young).expect_err("too young"));
    assert_eq!(p, vec![("birth_date", Problem::AgeOutOfRange)]);
    young.birth_date = NaiveDate::from_ymd_opt(2010, 11, 2);
    t.store.create(&young).expect("16 that very day");

    let mut nameless = kevin();
    nameless.identity_level = IdentityLevel::AliasOnly;
    nameless.first_name = None;
    nameless.birth_year = None;
    let p = problems(t.store.create(&nameless).expect_err("no alias, no age"));
    assert!(p.contains(&("alias", Problem::Required)));
    assert!(p.contains(&("age_band", Problem::Required)));
    nameless.alias = Some("Kéké".into());
    nameless.age_band = Some(AgeBand::From18To21);
    t.store
        .create(&nameless)
        .expect("alias and band are enough");

    let y = t.store.create(&kevin()).expect("valid");
    let mut c = visit(y);
    c.occurred_at = (now() + Duration::days(3)).fixed_offset();
    c.youth_ids.clear();
    let p = problems(t.store.create(&c).expect_err("future contact"));
    assert!(p.contains(&("occurred_at", Problem::InFuture)));
    assert!(p.contains(&("youth_ids", Problem::Required)));
    // A tablet clock a few hours ahead is tolerated.
    let mut c = visit(y);
    c.occurred_at = (now() + Duration::hours(5)).fixed_offset();
    t.store.create(&c).expect("within tolerance");
    // An invalid edit leaves the stored record as it was.
    let before = t.store.youth(y).expect("reads");
    let err = t
        .store
        .edit::<Youth>(y, |y| y.email = Some("not an email".into()));
    assert_eq!(
        problems(err.expect_err("bad email")),
        vec![("email", Problem::BadFormat)]
    );
    assert_eq!(t.store.youth(y).expect("reads"), before);
}

#[test]
fn wrong_key_is_refused_and_the_file_holds_no_plaintext() {
    let t = open_store(3);
    let mut store = t.store;
    let mut y = kevin();
    y.first_name = Some("Zéphyrine".into());
    y.last_name = Some("Quillardemblier".into());
    y.identity_level = IdentityLevel::FullIdentity;
    y.birth_year = None;
    y.birth_date = NaiveDate::from_ymd_opt(2006, 4, 5);
    y.phone = Some("07 98 76 54 32".into());
    let id = store.create(&y).expect("valid");
    let mut c = visit(id);
    c.notes = "Hébergée chez sa tante à Stenay, cherche un apprentissage".into();
    store.create(&c).expect("valid");
    assert!(
        store.cipher_version().starts_with('4'),
        "SQLCipher is linked"
    );
    drop(store);

    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(t.dir.path()).expect("dir") {
        bytes.extend(std::fs::read(entry.expect("entry").path()).expect("read"));
    }
    assert!(bytes.len() > 4096);
    for needle in [
        "Quillardemblier",
        "Zéphyrine",
        "zephyrine",
        "07 98 76",
        "apprentissage",
        "SQLite format",
    ] {
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
            "plaintext {needle:?} found in the database files"
        );
    }

    let wrong = Store::open(t.dir.path().join("store.db"), &[8; 32]);
    assert!(matches!(wrong, Err(Error::WrongKey)), "{:?}", wrong.err());
    let short = Store::open(t.dir.path().join("store.db"), &[7; 16]);
    assert!(matches!(short, Err(Error::BadKeyLength { expected: 32 })));
    // The wrong attempts damaged nothing.
    let store = open_at(&t.dir, &KEY);
    assert_eq!(
        store.youth(id).expect("still there").last_name.as_deref(),
        Some("Quillardemblier")
    );
}

#[test]
fn a_file_that_is_not_a_store_is_refused() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("store.db");
    std::fs::write(
        &path,
        b"this is not a database, just some text that is long enough ".repeat(100),
    )
    .expect("write");
    assert!(matches!(Store::open(&path, &KEY), Err(Error::WrongKey)));
}

#[test]
fn search_ignores_accents_and_case_and_finds_communes() {
    let mut t = open_store(4);
    let k = t.store.create(&kevin()).expect("valid");
    let mut chloe = kevin();
    chloe.first_name = Some("Chloé".into());
    chloe.alias = Some("Clo".into());
    chloe.home_commune = Some("08105".into()); // Charleville-Mézières
    let c = t.store.create(&chloe).expect("valid");

    let ids = |q: &str| -> Vec<Uuid> {
        t.store
            .search_youth(q, 10)
            .expect("search")
            .into_iter()
            .map(|y| y.id)
            .collect()
    };
    assert_eq!(ids("kevin"), vec![k]);
    assert_eq!(ids("KÉV"), vec![k]);
    assert_eq!(ids("chloe"), vec![c]);
    assert_eq!(ids("clo"), vec![c], "alias");
    assert_eq!(ids("stenay"), vec![k], "home commune");
    assert_eq!(ids("kev sten"), vec![k], "every word must match");
    assert_eq!(ids("mezieres"), vec![c], "commune words");
    assert!(ids("kevin charleville").is_empty());
    assert!(ids("").is_empty());
    assert!(ids("\"*) OR (").is_empty(), "FTS syntax in input is inert");

    let hit = &t.store.search_youth("kévin", 1).expect("search")[0];
    assert_eq!(hit.display_name, "Kévin");
    assert_eq!(hit.home_commune_name.as_deref(), Some("Stenay"));
    assert_eq!(hit.age, Some(19));
    assert!(hit.age_is_approximate);
}

#[test]
fn duplicate_check_finds_spelling_variants_nearby() {
    let mut t = open_store(5);
    let k = t.store.create(&kevin()).expect("valid");
    for _ in 0..3 {
        t.store.create(&visit(k)).expect("valid");
    }
    for _ in 0..200 {
        let y = t.demo.youth();
        t.store.create(&y).expect("demo youth is valid");
    }
    let probe = DuplicateProbe {
        first_name: Some("Kevyn".into()),
        birth_year: Some(2008),
        home_commune: Some("55502".into()),
        ..Default::default()
    };
    let similar = t.store.find_similar_youth(&probe, 5).expect("check");
    let first = similar.first().expect("a candidate");
    assert_eq!(first.youth.id, k);
    assert!(first.same_commune && first.birth_year_close);
    assert_eq!(first.describe(), "Kévin, ~19 ans, Stenay — vu 3 fois");

    // A typo the phonetic key does not catch is still found through commune and year.
    let typo = DuplicateProbe {
        first_name: Some("Kebin".into()),
        ..probe.clone()
    };
    assert!(
        t.store
            .find_similar_youth(&typo, 5)
            .expect("check")
            .iter()
            .any(|s| s.youth.id == k)
    );

    let stranger = DuplicateProbe {
        first_name: Some("Gwendoline".into()),
        birth_year: Some(1999),
        home_commune: Some("08409".into()),
        ..Default::default()
    };
    assert!(
        t.store
            .find_similar_youth(&stranger, 5)
            .expect("check")
            .iter()
            .all(|s| s.youth.id != k)
    );
}

#[test]
fn lists_contacts_newest_first() {
    let mut t = open_store(6);
    let k = t.store.create(&kevin()).expect("valid");
    let mut ids = Vec::new();
    for h in [5, 1, 3] {
        let mut c = visit(k);
        c.occurred_at = (now() - Duration::hours(h)).fixed_offset();
        ids.push((h, t.store.create(&c).expect("valid")));
    }
    let page = t.store.list_contacts(0, 2).expect("list");
    assert_eq!(page.len(), 2);
    assert_eq!(page[0].id, ids[1].1);
    assert_eq!(page[1].id, ids[2].1);
    assert_eq!(page[0].youth_names, vec!["Kévin".to_string()]);
    assert_eq!(page[0].commune_name, "Stenay");
    assert_eq!(t.store.list_contacts(2, 2).expect("list")[0].id, ids[0].1);
    assert_eq!(t.store.contacts_of_youth(k).expect("list").len(), 3);
}

#[test]
fn tracks_sync_state_and_notifies_listeners() {
    let mut t = open_store(7);
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    t.store.subscribe(Arc::new(move |e| {
        sink.lock().expect("lock").push(e.clone())
    }));

    let id = t.store.create(&kevin()).expect("valid");
    assert_eq!(
        t.store.sync_state(id).expect("state"),
        SyncState::NeverSynced
    );
    assert_eq!(
        t.store.unsynced().expect("list"),
        vec![(RecordKind::Youth, id)]
    );
    t.store
        .edit::<Youth>(id, |y| y.alias = Some("Kéké".into()))
        .expect("edit");
    assert_eq!(
        t.store.sync_state(id).expect("state"),
        SyncState::NeverSynced
    );

    let heads = t.store.heads(id).expect("heads");
    t.store.mark_synced(id, &heads).expect("ack");
    assert_eq!(t.store.sync_state(id).expect("state"), SyncState::Synced);
    assert!(t.store.unsynced().expect("list").is_empty());

    t.store
        .edit::<Youth>(id, |y| y.status = YouthStatus::Helped)
        .expect("edit");
    assert_eq!(t.store.sync_state(id).expect("state"), SyncState::Pending);
    // An acknowledgement of older heads leaves newer local changes pending.
    t.store.mark_synced(id, &heads).expect("stale ack");
    assert_eq!(t.store.sync_state(id).expect("state"), SyncState::Pending);

    // An edit that changes nothing writes nothing and tells nobody.
    t.store.edit::<Youth>(id, |_| {}).expect("no-op");
    let events = events.lock().expect("lock");
    assert_eq!(events.len(), 3);
    assert!(
        events
            .iter()
            .all(|e| e.origin == Origin::Local && e.changed == vec![(RecordKind::Youth, id)])
    );
}

#[test]
fn concurrent_edits_merge_field_by_field_and_conflicts_are_visible() {
    let mut a = open_store(8);
    let mut b = open_store(9);
    let (ma, mb) = (Uuid::from_u128(11), Uuid::from_u128(12));
    a.store.set_member(ma);
    b.store.set_member(mb);
    let id = a.store.create(&kevin()).expect("valid");
    let (kind, doc) = a.store.export_document(id).expect("export");
    b.store.merge_remote(kind, id, &doc).expect("merge");
    let cid = a.store.create(&visit(id)).expect("valid");
    let (kind, doc) = a.store.export_document(cid).expect("export");
    b.store.merge_remote(kind, cid, &doc).expect("merge");

    // Different fields: both survive. Same field: a conflict. Notes: merged text.
    a.store
        .edit::<Youth>(id, |y| y.alias = Some("Kéké".into()))
        .expect("edit");
    b.store
        .edit::<Youth>(id, |y| y.sex = Some(repere_core::records::Sex::Male))
        .expect("edit");
    a.store
        .edit::<Youth>(id, |y| y.status = YouthStatus::Mobilised)
        .expect("edit");
    b.store
        .edit::<Youth>(id, |y| y.status = YouthStatus::Helped)
        .expect("edit");
    a.store
        .edit::<Contact>(cid, |c| c.notes.push_str(" Veut passer le permis."))
        .expect("edit");
    b.store
        .edit::<Contact>(cid, |c| c.notes.insert_str(0, "Avec son cousin. "))
        .expect("edit");

    exchange(&mut a.store, &mut b.store, id);
    exchange(&mut a.store, &mut b.store, cid);

    let ya = a.store.youth(id).expect("reads");
    let yb = b.store.youth(id).expect("reads");
    assert_eq!(ya, yb);
    assert_eq!(ya.alias.as_deref(), Some("Kéké"));
    assert_eq!(ya.sex, Some(repere_core::records::Sex::Male));
    let notes = a.store.contact(cid).expect("reads").notes;
    assert_eq!(
        notes,
        "Avec son cousin. Devant la boulangerie. Veut passer le permis."
    );
    assert_eq!(b.store.contact(cid).expect("reads").notes, notes);

    let conflicts = a.store.conflicts(id).expect("conflicts");
    assert_eq!(conflicts, b.store.conflicts(id).expect("conflicts"));
    assert_eq!(conflicts.len(), 1);
    let c = &conflicts[0];
    assert_eq!(c.field, "status");
    let mut values: Vec<_> = c
        .values
        .iter()
        .map(|v| {
            (
                v.value.as_str().unwrap_or(""),
                v.author.map(|a| a.member_id),
            )
        })
        .collect();
    values.sort();
    assert_eq!(values, vec![("helped", Some(mb)), ("mobilised", Some(ma))]);
    assert!(c.values.iter().all(|v| v.written_at == Some(now())));
    assert_eq!(
        c.values[0].value,
        serde_json::to_value(ya.status).expect("json"),
        "shown value first"
    );

    // Resolving is an ordinary, validated edit that then syncs like any other.
    let bad = a
        .store
        .resolve_conflict(id, "status", serde_json::json!("nonsense"));
    assert!(
        matches!(
            bad,
            Err(Error::CorruptDocument { .. }) | Err(Error::Invalid(_))
        ),
        "{bad:?}"
    );
    assert!(matches!(
        a.store
            .resolve_conflict(id, "alias", serde_json::json!("x")),
        Err(Error::NoConflict { .. })
    ));
    a.store
        .resolve_conflict(id, "status", serde_json::json!("mobilised"))
        .expect("resolve");
    assert!(a.store.conflicts(id).expect("conflicts").is_empty());
    let (kind, doc) = a.store.export_document(id).expect("export");
    b.store.merge_remote(kind, id, &doc).expect("merge");
    assert!(b.store.conflicts(id).expect("conflicts").is_empty());
    assert_eq!(
        b.store.youth(id).expect("reads").status,
        YouthStatus::Mobilised
    );
}

#[test]
fn a_conflict_with_a_cleared_value_resolves_to_the_empty_value() {
    let mut a = open_store(30);
    let mut b = open_store(31);
    let id = a.store.create(&kevin()).expect("valid");
    let mut v = visit(id);
    v.next_step = Some("Rappeler la mission locale".into());
    let cid = a.store.create(&v).expect("valid");
    exchange(&mut a.store, &mut b.store, cid);
    a.store
        .edit::<Contact>(cid, |c| c.next_step = None)
        .expect("edit");
    b.store
        .edit::<Contact>(cid, |c| c.next_step = Some("Passer au local jeudi".into()))
        .expect("edit");
    exchange(&mut a.store, &mut b.store, cid);
    let conflicts = a.store.conflicts(cid).expect("conflicts");
    assert_eq!(conflicts.len(), 1);
    assert!(conflicts[0].values.iter().any(|v| v.value.is_null()));
    a.store
        .resolve_conflict(cid, "next_step", serde_json::Value::Null)
        .expect("resolve");
    assert!(a.store.conflicts(cid).expect("conflicts").is_empty());
    exchange(&mut a.store, &mut b.store, cid);
    assert!(b.store.conflicts(cid).expect("conflicts").is_empty());
    assert_eq!(b.store.contact(cid).expect("reads").next_step, None);
}

#[test]
fn merge_refuses_unreadable_documents_without_storing() {
    let mut t = open_store(10);
    let id = Uuid::now_v7();
    assert!(
        t.store
            .merge_remote(RecordKind::Youth, id, b"garbage")
            .is_err()
    );
    let mut other = open_store(11);
    let cid = other.store.create(&kevin()).expect("valid");
    let (_, doc) = other.store.export_document(cid).expect("export");
    assert!(matches!(
        t.store.merge_remote(RecordKind::Contact, cid, &doc),
        Err(Error::WrongKind { .. })
    ));
    assert!(t.store.kind_of(cid).expect("lookup").is_none());
    assert!(t.store.kind_of(id).expect("lookup").is_none());
}

#[test]
fn rebuild_index_restores_lists_and_search() {
    let mut t = open_store(12);
    let mut youth = Vec::new();
    for _ in 0..50 {
        let y = t.demo.youth();
        youth.push(t.store.create(&y).expect("valid"));
    }
    for y in &youth[..20] {
        let c = t.demo.contact(&[*y]);
        t.store.create(&c).expect("valid");
        let a = t.demo.action(*y);
        t.store.create(&a).expect("valid");
    }
    let tour = t.demo.tour();
    t.store.create(&tour).expect("valid");
    let search_before = t.store.search_youth("l", 100).expect("search");
    let list_before = t.store.list_contacts(0, 100).expect("list");
    assert_eq!(t.store.rebuild_index().expect("rebuild"), 50 + 20 + 20 + 1);
    assert_eq!(
        t.store.search_youth("l", 100).expect("search"),
        search_before
    );
    assert_eq!(t.store.list_contacts(0, 100).expect("list"), list_before);
    assert!(!search_before.is_empty());
}

#[test]
fn records_survive_reopening() {
    let t = open_store(13);
    let mut store = t.store;
    let id = store.create(&kevin()).expect("valid");
    let device = store.device_id();
    drop(store);
    let store = open_at(&t.dir, &KEY);
    assert_eq!(store.device_id(), device);
    assert_eq!(store.youth(id).expect("reads"), kevin());
    assert_eq!(store.search_youth("kevin", 5).expect("search").len(), 1);
}

#[test]
fn history_tells_who_changed_which_field() {
    let mut t = open_store(14);
    t.store.set_member(Uuid::from_u128(0xa));
    let id = t.store.create(&kevin()).expect("valid");
    t.store.set_member(Uuid::from_u128(0xb));
    t.store
        .edit::<Youth>(id, |y| y.alias = Some("Kéké".into()))
        .expect("edit");
    t.store
        .edit::<Youth>(id, |y| {
            y.profile_flags.insert(ProfileFlag::CareLeaver);
            y.status = YouthStatus::Helped;
        })
        .expect("edit");
    let history = t.store.history(id).expect("history");
    assert_eq!(history.len(), 3);
    assert_eq!(
        history[0].author.map(|a| a.member_id),
        Some(Uuid::from_u128(0xa))
    );
    assert!(history[0].fields.contains(&"first_name".to_string()));
    assert_eq!(history[1].fields, vec!["alias".to_string()]);
    assert_eq!(
        history[1].author.map(|a| a.member_id),
        Some(Uuid::from_u128(0xb))
    );
    assert_eq!(
        history[2].fields,
        vec!["profile_flags".to_string(), "status".to_string()]
    );
    assert!(history.iter().all(|h| h.written_at == Some(now())));
}

#[test]
fn review_tasks_are_answered_on_the_tablet() {
    use repere_core::records::{ReviewTask, ReviewTaskStatus};
    let mut t = open_store(15);
    let y = t.store.create(&kevin()).expect("valid");
    let c = t.store.create(&visit(y)).expect("valid");
    let task = ReviewTask {
        team_id: team(),
        contact_id: c,
        question: "Quel est le nom du club cité ?".into(),
        asked_by: "Coordination".into(),
        asked_at: (now() - Duration::hours(1)).fixed_offset(),
        answer: String::new(),
        answered_by: None,
        answered_at: None,
        status: ReviewTaskStatus::Open,
    };
    let id = t.store.create(&task).expect("valid task");
    assert_eq!(t.store.review_tasks(true).expect("tasks").len(), 1);
    t.store.set_member(Uuid::from_u128(0xa));
    let answered = t
        .store
        .answer_review_task(id, "Le club de foot de Stenay.")
        .expect("answer");
    assert_eq!(answered.status, ReviewTaskStatus::Answered);
    assert_eq!(answered.answered_by, Some(Uuid::from_u128(0xa)));
    assert!(t.store.review_tasks(true).expect("tasks").is_empty());
    assert_eq!(t.store.review_tasks(false).expect("tasks").len(), 1);
    assert!(matches!(
        t.store.answer_review_task(id, "  "),
        Err(Error::Invalid(_))
    ));
}

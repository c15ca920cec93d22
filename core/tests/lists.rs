//! The screens' lists (tours, a young person's file, « à faire », recent visits) and the
//! one-call creation of a young person with their first visit.

mod common;

use std::collections::{BTreeSet, HashSet};

use chrono::{Duration, NaiveDate};
use common::*;
use repere_core::records::{
    Action, ActionKind, ActionStatus, Contact, ContactKind, IdentityLevel, Outcome, OutcomeKind,
    ReferralSource, ReviewTask, ReviewTaskStatus, Situation, Tour, TourStatus, Youth, YouthStatus,
};
use repere_core::sync::protocol::{
    self, ENROL_PATH, EnrolResponse, RejectCode, Rejection, SyncResponse,
};
use repere_core::sync::{SyncOptions, Transport, TransportError};
use repere_core::{Error, FirstVisit, RecordKind, Store, TodoReason};
use uuid::Uuid;

fn day(offset_days: i64) -> NaiveDate {
    now().date_naive() + Duration::days(offset_days)
}

fn youth(first_name: &str, birth_year: i32) -> Youth {
    Youth {
        team_id: team(),
        identity_level: IdentityLevel::FirstName,
        alias: None,
        first_name: Some(first_name.into()),
        last_name: None,
        birth_date: None,
        birth_year: Some(birth_year),
        age_band: None,
        sex: None,
        phone: None,
        email: None,
        other_contact: None,
        home_commune: Some("55502".into()), // Stenay
        referral_source: ReferralSource::TownHall,
        referral_detail: None,
        referral_date: None,
        profile_flags: BTreeSet::new(),
        situation: Situation::Neet,
        followed_by: None,
        first_contact_date: day(-30),
        notice_given_on: None,
        status: YouthStatus::Identified,
    }
}

/// A visit `days_ago` days ago (plus `minutes` to order visits of one day).
fn visit(youth: &[Uuid], days_ago: i64, minutes: i64) -> Contact {
    Contact {
        team_id: team(),
        youth_ids: youth.iter().copied().collect(),
        tour_id: None,
        member_ids: BTreeSet::from([Uuid::from_u128(11)]),
        occurred_at: (now() - Duration::days(days_ago) - Duration::hours(2)
            + Duration::minutes(minutes))
        .fixed_offset(),
        commune: "55502".into(),
        kind: ContactKind::Street,
        notes: String::new(),
        needs: BTreeSet::new(),
        next_step: None,
        next_step_due: None,
    }
}

fn with_step(mut c: Contact, step: &str, due: NaiveDate) -> Contact {
    c.next_step = Some(step.into());
    c.next_step_due = Some(due);
    c
}

fn question(contact: Uuid, hours_ago: i64, text: &str) -> ReviewTask {
    ReviewTask {
        team_id: team(),
        contact_id: contact,
        question: text.into(),
        asked_by: "Coordination".into(),
        asked_at: (now() - Duration::hours(hours_ago)).fixed_offset(),
        answer: String::new(),
        answered_by: None,
        answered_at: None,
        status: ReviewTaskStatus::Open,
    }
}

#[test]
fn tours_of_a_day_and_of_a_period_are_sorted_and_paged() {
    let mut t = open_store(1);
    let tour = |date, communes: &[&str]| Tour {
        team_id: team(),
        date,
        communes: communes.iter().map(|c| c.to_string()).collect(),
        status: TourStatus::Planned,
    };
    let late = t.store.create(&tour(day(3), &["08105"])).expect("tour");
    let today = t
        .store
        .create(&tour(day(0), &["55502", "08105"]))
        .expect("tour");
    let early = t.store.create(&tour(day(-2), &[])).expect("tour");
    t.store.create(&tour(day(30), &[])).expect("tour");
    let y = t.store.create(&youth("Kévin", 2007)).expect("youth");
    let mut v = visit(&[y], 0, 0);
    v.tour_id = Some(today);
    t.store.create(&v).expect("visit");

    let on = t.store.tours_on(day(0)).expect("tours");
    assert_eq!(on.len(), 1);
    assert_eq!(on[0].id, today);
    assert_eq!(on[0].commune_names, ["Stenay", "Charleville-Mézières"]);
    assert_eq!(on[0].communes, ["55502", "08105"]);
    assert_eq!(on[0].status, "planned");
    assert_eq!(on[0].visit_count, 1);

    let week: Vec<Uuid> = t
        .store
        .tours_between(day(-7), day(7), 0, 10)
        .expect("tours")
        .iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(week, [early, today, late], "by date, the far one left out");
    let second: Vec<Uuid> = t
        .store
        .tours_between(day(-7), day(7), 1, 1)
        .expect("tours")
        .iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(second, [today]);
}

#[test]
fn recent_visits_newest_first_with_who_and_what_is_pending() {
    let mut t = open_store(2);
    let kevin = t.store.create(&youth("Kévin", 2007)).expect("youth");
    let lea = t.store.create(&youth("Léa", 2005)).expect("youth");
    let old = t.store.create(&visit(&[kevin], 5, 0)).expect("visit");
    let group = t
        .store
        .create(&with_step(
            visit(&[lea, kevin], 1, 0),
            "Revoir le groupe",
            day(3),
        ))
        .expect("visit");
    t.store
        .create(&question(group, 1, "Qui d'autre était là ?"))
        .expect("question");

    let page = t.store.recent_visits(0, 10).expect("visits");
    assert_eq!(page.iter().map(|v| v.id).collect::<Vec<_>>(), [group, old]);
    assert_eq!(page[0].youth_names, ["Kévin", "Léa"], "sorted by name");
    assert_eq!(page[0].youth_ids, [kevin, lea], "in the names' order");
    assert_eq!(page[0].commune_name, "Stenay");
    assert_eq!(page[0].next_step_due, Some(day(3)));
    assert_eq!(page[0].open_questions, 1);
    assert_eq!(page[1].next_step_due, None);
    assert_eq!(
        t.store
            .recent_visits(1, 10)
            .expect("visits")
            .iter()
            .map(|v| v.id)
            .collect::<Vec<_>>(),
        [old]
    );
}

#[test]
fn a_youth_file_lists_visits_actions_outcomes_and_open_questions() {
    let mut t = open_store(3);
    let kevin = t.store.create(&youth("Kévin", 2007)).expect("youth");
    let other = t.store.create(&youth("Léa", 2005)).expect("youth");
    let visits: Vec<Uuid> = (0..4)
        .map(|i| t.store.create(&visit(&[kevin], 10 - i, 0)).expect("visit"))
        .collect();
    t.store.create(&visit(&[other], 0, 0)).expect("visit");
    let action = |start, status| Action {
        team_id: team(),
        youth_id: kevin,
        kind: ActionKind::Sport,
        start_date: start,
        end_date: None,
        status,
        detail: None,
    };
    let a_old = t
        .store
        .create(&action(day(-20), ActionStatus::Done))
        .expect("action");
    let a_new = t
        .store
        .create(&action(day(5), ActionStatus::Planned))
        .expect("action");
    let outcome = t
        .store
        .create(&Outcome {
            team_id: team(),
            youth_id: kevin,
            kind: OutcomeKind::MissionLocaleRegistration,
            date: day(-1),
            organisation: None,
        })
        .expect("outcome");
    let q_late = t
        .store
        .create(&question(visits[3], 1, "Et son frère ?"))
        .expect("question");
    let q_early = t
        .store
        .create(&question(visits[0], 5, "Quel club ?"))
        .expect("question");
    let answered = t
        .store
        .create(&question(visits[1], 6, "Déjà répondu"))
        .expect("question");
    t.store
        .answer_review_task(answered, "Oui.")
        .expect("answered");

    let file = t.store.youth_file(kevin, 2).expect("file");
    assert_eq!(file.youth.display_name, "Kévin");
    assert_eq!(file.youth.home_commune_name.as_deref(), Some("Stenay"));
    assert_eq!(file.visit_count, 4);
    assert_eq!(
        file.visits.iter().map(|v| v.id).collect::<Vec<_>>(),
        [visits[3], visits[2]],
        "first page, most recent first"
    );
    assert_eq!(
        file.actions.iter().map(|a| a.id).collect::<Vec<_>>(),
        [a_new, a_old]
    );
    assert_eq!(file.actions[0].status, "planned");
    assert_eq!(file.action_count, 2);
    assert_eq!(file.outcomes.len(), 1);
    assert_eq!(file.outcomes[0].id, outcome);
    assert_eq!(file.outcomes[0].kind, "mission_locale_registration");
    assert_eq!(
        file.open_questions
            .iter()
            .map(|q| (q.id, q.question.as_str()))
            .collect::<Vec<_>>(),
        [(q_early, "Quel club ?"), (q_late, "Et son frère ?")],
        "open ones only, oldest first"
    );
    assert_eq!(file.open_questions[0].visit_id, visits[0]);
    assert_eq!(file.open_question_count, 2);

    let rest: Vec<Uuid> = t
        .store
        .youth_visits(kevin, 2, 10)
        .expect("visits")
        .iter()
        .map(|v| v.id)
        .collect();
    assert_eq!(rest, [visits[1], visits[0]]);
    assert!(matches!(
        t.store.youth_file(Uuid::now_v7(), 5),
        Err(Error::NotFound { .. })
    ));
}

#[test]
fn todo_lists_next_steps_due_or_overdue_that_no_later_visit_took_over() {
    let mut t = open_store(4);
    let kevin = t.store.create(&youth("Kévin", 2007)).expect("youth");
    let lea = t.store.create(&youth("Léa", 2005)).expect("youth");
    let sam = t.store.create(&youth("Sam", 2004)).expect("youth");
    let overdue_most = t
        .store
        .create(&with_step(visit(&[kevin], 20, 0), "Appeler", day(-10)))
        .expect("visit");
    let overdue = t
        .store
        .create(&with_step(visit(&[lea], 10, 0), "Rappeler", day(-2)))
        .expect("visit");
    t.store
        .create(&with_step(visit(&[sam], 3, 0), "Mission Locale", day(0)))
        .expect("visit");
    t.store
        .create(&with_step(visit(&[sam], 3, 1), "Plus tard", day(4)))
        .expect("visit");
    t.store
        .create(&visit(&[kevin], 30, 0))
        .expect("earlier visit, no step");

    let todo = t.store.todo(0, 20).expect("todo");
    let got: Vec<(TodoReason, Uuid, Option<NaiveDate>)> =
        todo.iter().map(|i| (i.reason, i.id, i.date)).collect();
    assert_eq!(
        got,
        [
            (TodoReason::NextStepOverdue, overdue_most, Some(day(-10))),
            (TodoReason::NextStepOverdue, overdue, Some(day(-2))),
        ],
        "Sam's step due today was taken over by the visit a minute later; the one not due yet is left out"
    );
    assert_eq!(todo[0].detail, "Appeler");
    assert_eq!(todo[0].youth_names, ["Kévin"]);
    assert_eq!(todo[0].place.as_deref(), Some("Stenay"));
    assert_eq!(todo[0].visit_id, Some(overdue_most));
    assert_eq!(todo[0].kind, RecordKind::Contact);

    // Léa seen again: her overdue step is taken over. The later visit's own step, due
    // today, takes its place.
    let again = t
        .store
        .create(&with_step(visit(&[lea], 1, 0), "Dossier CAF", day(0)))
        .expect("visit");
    let got: Vec<(TodoReason, Uuid)> = t
        .store
        .todo(0, 20)
        .expect("todo")
        .iter()
        .map(|i| (i.reason, i.id))
        .collect();
    assert_eq!(
        got,
        [
            (TodoReason::NextStepOverdue, overdue_most),
            (TodoReason::NextStepDueToday, again),
        ]
    );

    // Clearing the next step, or moving the later visit away, updates the list; a
    // rebuild of the index gives the same rows.
    t.store
        .edit::<Contact>(overdue_most, |c| {
            c.next_step = None;
            c.next_step_due = None;
        })
        .expect("edit");
    t.store
        .edit::<Contact>(again, |c| {
            c.occurred_at = (now() - Duration::days(15)).fixed_offset();
            c.next_step_due = Some(day(-14));
        })
        .expect("edit");
    let expected = [(TodoReason::NextStepOverdue, overdue)];
    let ids = |s: &Store| -> Vec<(TodoReason, Uuid)> {
        s.todo(0, 20)
            .expect("todo")
            .iter()
            .map(|i| (i.reason, i.id))
            .collect()
    };
    assert_eq!(
        ids(&t.store),
        expected,
        "Léa's later visit moved before the other: that one is current again"
    );
    t.store.rebuild_index().expect("rebuild");
    assert_eq!(ids(&t.store), expected, "same after a rebuild");
}

#[test]
fn todo_orders_sources_by_urgency_and_pages_across_them() {
    let mut a = open_store(5);
    let mut b = open_store(6);
    let kevin = a.store.create(&youth("Kévin", 2007)).expect("youth");
    let step = a
        .store
        .create(&with_step(visit(&[kevin], 5, 0), "Appeler", day(-1)))
        .expect("visit");
    let lea = a.store.create(&youth("Léa", 2005)).expect("youth");
    let seen = a.store.create(&visit(&[lea], 2, 0)).expect("visit");
    let q = a
        .store
        .create(&question(seen, 3, "Quel club ?"))
        .expect("question");

    // A conflict: both tablets change Léa's status.
    let (kind, doc) = a.store.export_document(lea).expect("export");
    b.store.merge_remote(kind, lea, &doc).expect("merge");
    a.store
        .edit::<Youth>(lea, |y| y.status = YouthStatus::Mobilised)
        .expect("edit");
    b.store
        .edit::<Youth>(lea, |y| y.status = YouthStatus::Helped)
        .expect("edit");
    let (kind, doc) = b.store.export_document(lea).expect("export");
    a.store.merge_remote(kind, lea, &doc).expect("merge");

    // A merged record with problems: one tablet clears the next step, the other gives it
    // a due date; each edit is valid alone.
    let sam = a.store.create(&youth("Sam", 2004)).expect("youth");
    let mut undated = visit(&[sam], 1, 0);
    undated.next_step = Some("Rappeler".into());
    let broken = a.store.create(&undated).expect("visit");
    for id in [sam, broken] {
        let (kind, doc) = a.store.export_document(id).expect("export");
        b.store.merge_remote(kind, id, &doc).expect("merge");
    }
    a.store
        .edit::<Contact>(broken, |c| c.next_step = None)
        .expect("edit");
    b.store
        .edit::<Contact>(broken, |c| c.next_step_due = Some(day(5)))
        .expect("edit");
    let (kind, doc) = b.store.export_document(broken).expect("export");
    a.store.merge_remote(kind, broken, &doc).expect("merge");
    let problems = a.store.problems(broken).expect("problems").expect("some");

    let got: Vec<(TodoReason, RecordKind, Uuid)> = a
        .store
        .todo(0, 20)
        .expect("todo")
        .iter()
        .map(|i| (i.reason, i.kind, i.id))
        .collect();
    assert_eq!(
        got,
        [
            (TodoReason::NextStepOverdue, RecordKind::Contact, step),
            (TodoReason::Problems, RecordKind::Contact, broken),
            (TodoReason::OpenQuestion, RecordKind::ReviewTask, q),
            (TodoReason::Conflict, RecordKind::Youth, lea),
        ]
    );
    let items = a.store.todo(0, 20).expect("todo");
    assert_eq!(items[1].detail, problems);
    assert_eq!(items[1].youth_names, ["Sam"]);
    assert_eq!(items[1].visit_id, None);
    let question_item = &items[2];
    assert_eq!(question_item.detail, "Quel club ?");
    assert_eq!(question_item.asked_by.as_deref(), Some("Coordination"));
    assert_eq!(question_item.visit_id, Some(seen));
    assert_eq!(question_item.youth_names, ["Léa"]);
    assert_eq!(
        question_item.date,
        Some((now() - Duration::hours(3)).date_naive())
    );
    assert_eq!(items[3].detail, "status");
    assert_eq!(items[3].youth_names, ["Léa"]);
    assert_eq!(
        items[3].date,
        Some(day(-30)),
        "the young person's first contact"
    );

    // Pages cut across sources.
    let page = |s: &Store, offset, limit| -> Vec<Uuid> {
        s.todo(offset, limit)
            .expect("todo")
            .iter()
            .map(|i| i.id)
            .collect()
    };
    assert_eq!(page(&a.store, 0, 2), [step, broken]);
    assert_eq!(page(&a.store, 1, 2), [broken, q]);
    assert_eq!(page(&a.store, 3, 5), [lea]);
    assert!(page(&a.store, 4, 5).is_empty());

    // Resolving the conflict takes it off the list.
    a.store
        .resolve_conflict(lea, "status", serde_json::json!("mobilised"))
        .expect("resolve");
    assert_eq!(page(&a.store, 0, 10), [step, broken, q]);
    // Answering the question, or fixing the merged visit, too.
    a.store.answer_review_task(q, "Le foot.").expect("answer");
    a.store
        .edit::<Contact>(broken, |c| c.next_step = Some("Rappeler jeudi".into()))
        .expect("fix");
    assert_eq!(page(&a.store, 0, 10), [step]);
}

#[test]
fn a_conflict_that_arrives_in_a_document_new_here_is_listed() {
    let mut a = open_store(8);
    let mut b = open_store(9);
    let sam = a.store.create(&youth("Sam", 2004)).expect("youth");
    let (kind, doc) = a.store.export_document(sam).expect("export");
    b.store.merge_remote(kind, sam, &doc).expect("merge");
    a.store
        .edit::<Youth>(sam, |y| y.status = YouthStatus::Mobilised)
        .expect("edit");
    b.store
        .edit::<Youth>(sam, |y| y.status = YouthStatus::Helped)
        .expect("edit");
    let (kind, doc) = b.store.export_document(sam).expect("export");
    a.store.merge_remote(kind, sam, &doc).expect("merge");
    // A third tablet receives the record whole, conflict included.
    let mut c = open_store(10);
    let (kind, doc) = a.store.export_document(sam).expect("export");
    c.store.merge_remote(kind, sam, &doc).expect("merge");
    let on_c: Vec<(TodoReason, Uuid, String)> = c
        .store
        .todo(0, 10)
        .expect("todo")
        .into_iter()
        .map(|i| (i.reason, i.id, i.detail))
        .collect();
    assert_eq!(on_c, [(TodoReason::Conflict, sam, "status".to_string())]);
}

/// Enrols without a server: answers the enrolment only.
struct EnrolOnly;

impl Transport for EnrolOnly {
    fn post(&self, path: &str, _: Option<&str>, _: Vec<u8>) -> Result<Vec<u8>, TransportError> {
        assert_eq!(path, ENROL_PATH);
        Ok(protocol::encode(&EnrolResponse {
            device_id: Uuid::now_v7(),
            team_id: team(),
            organisation_id: Uuid::from_u128(9),
            token: "jeton".into(),
        }))
    }
}

#[test]
fn todo_lists_records_the_server_refused_with_its_reason_and_not_erased_ones() {
    let mut t = open_store(11);
    t.store
        .enrol(&EnrolOnly, "https://sync.test", "CODE", "tablette", false)
        .expect("enrols");
    let kevin = t.store.create(&youth("Kévin", 2007)).expect("youth");
    let lea = t.store.create(&youth("Léa", 2005)).expect("youth");
    let gone = t
        .store
        .create(&with_step(visit(&[lea], 3, 0), "Appeler", day(-1)))
        .expect("visit");
    let batch = t
        .store
        .sync_prepare(&SyncOptions::default(), &HashSet::new())
        .expect("prepare");
    let resp = SyncResponse {
        acks: vec![],
        rejections: vec![Rejection {
            id: kevin,
            code: RejectCode::Invalid,
            reason: "home_commune: code commune INSEE inconnu".into(),
        }],
        docs: vec![],
        // Erased on the server meanwhile: Léa and her visit.
        erased: vec![lea, gone],
        cursor: 1,
        more: false,
        epoch: 1,
        team: Default::default(),
        moved: vec![],
        access: Vec::new(),
        lent: Vec::new(),
    };
    t.store.sync_apply(&batch, &resp).expect("apply");
    let todo = t.store.todo(0, 10).expect("todo");
    assert_eq!(
        todo.iter().map(|i| (i.reason, i.id)).collect::<Vec<_>>(),
        [(TodoReason::Rejected, kevin)],
        "the erased visit's step is gone"
    );
    assert_eq!(todo[0].detail, "home_commune: code commune INSEE inconnu");
    assert_eq!(todo[0].youth_names, ["Kévin"]);
    assert!(t.store.recent_visits(0, 10).expect("visits").is_empty());
}

#[test]
fn visit_summaries_carry_the_coordination_s_decision() {
    use protocol::{Decision, DecisionState, TeamNews};
    let mut t = open_store(13);
    t.store
        .enrol(&EnrolOnly, "https://sync.test", "CODE", "tablette", false)
        .expect("enrols");
    let kevin = t.store.create(&youth("Kévin", 2007)).expect("youth");
    let flagged = t.store.create(&visit(&[kevin], 3, 0)).expect("visit");
    let approved = t.store.create(&visit(&[kevin], 2, 0)).expect("visit");
    let undecided = t.store.create(&visit(&[kevin], 1, 0)).expect("visit");
    t.store
        .create(&with_step(visit(&[kevin], 4, 0), "Appeler", day(-1)))
        .expect("visit");
    let decision = |contact_id, state, reason: &str| Decision {
        contact_id,
        state,
        reason: reason.into(),
        at_ms: 1_780_000_000_000,
    };
    let batch = t
        .store
        .sync_prepare(&SyncOptions::default(), &HashSet::new())
        .expect("prepare");
    let resp = SyncResponse {
        acks: vec![],
        rejections: vec![],
        docs: vec![],
        erased: vec![],
        cursor: 1,
        more: false,
        epoch: 1,
        team: TeamNews {
            roster: None,
            decisions: vec![
                decision(flagged, DecisionState::Flagged, "Commune à vérifier"),
                decision(approved, DecisionState::Approved, ""),
            ],
            decisions_cursor: 2,
        },
        moved: vec![],
        access: Vec::new(),
        lent: Vec::new(),
    };
    t.store.sync_apply(&batch, &resp).expect("apply");

    let states =
        |visits: &[repere_core::VisitSummary]| -> Vec<(Uuid, Option<(DecisionState, String)>)> {
            visits
                .iter()
                .map(|v| {
                    let d = v.decision.as_ref();
                    assert!(d.is_none_or(|d| d.contact_id == v.id), "its own decision");
                    (v.id, d.map(|d| (d.state, d.reason.clone())))
                })
                .collect()
        };
    let expected = [
        (undecided, None),
        (approved, Some((DecisionState::Approved, String::new()))),
        (
            flagged,
            Some((DecisionState::Flagged, "Commune à vérifier".to_string())),
        ),
    ];
    let recent = t.store.recent_visits(0, 3).expect("visits");
    assert_eq!(states(&recent), expected);
    assert_eq!(
        recent[1].decision,
        t.store.visit_decision(approved).expect("decision"),
        "the same decision as the visit's own call"
    );
    let file = t.store.youth_file(kevin, 3).expect("file");
    assert_eq!(states(&file.visits), expected);
    assert_eq!(
        states(&t.store.youth_visits(kevin, 2, 1).expect("visits")),
        [expected[2].clone()]
    );
    assert_eq!(file.visit_count, 4, "the join adds no row");
    assert_eq!(t.store.recent_visits(0, 10).expect("visits").len(), 4);
}

#[test]
fn a_young_person_and_their_first_visit_are_created_together_or_not_at_all() {
    let mut t = open_store(12);
    let kevin = youth("Kévin", 2007);
    let first = visit(&[], 0, 0);

    // An invalid visit: neither is created, and the problems of both come together.
    let mut bad_visit = first.clone();
    bad_visit.commune = "99999".into();
    let mut bad_youth = kevin.clone();
    bad_youth.birth_year = Some(1980);
    match t
        .store
        .create_youth_with_first_visit(&bad_youth, &bad_visit, true)
    {
        Err(Error::Invalid(e)) => {
            assert!(e.has("birth_year") && e.has("commune"), "{e}");
        }
        other => panic!("expected invalid, got {other:?}"),
    }
    match t
        .store
        .create_youth_with_first_visit(&kevin, &bad_visit, true)
    {
        Err(Error::Invalid(e)) => assert!(e.has("commune") && !e.has("youth_ids"), "{e}"),
        other => panic!("expected invalid, got {other:?}"),
    }
    assert!(t.store.ids().expect("ids").is_empty(), "nothing stored");

    let Ok(FirstVisit::Created { youth_id, visit_id }) =
        t.store.create_youth_with_first_visit(&kevin, &first, false)
    else {
        panic!("created");
    };
    assert_eq!(
        t.store.contact(visit_id).expect("visit").youth_ids,
        BTreeSet::from([youth_id])
    );
    assert_eq!(
        t.store.contacts_of_youth(youth_id).expect("visits"),
        [visit_id]
    );

    // The same person again: candidates, nothing created.
    let again = youth("Kevyn", 2007);
    match t.store.create_youth_with_first_visit(&again, &first, false) {
        Ok(FirstVisit::PossibleDuplicates(similar)) => {
            assert_eq!(similar[0].youth.id, youth_id);
            assert_eq!(similar[0].youth.contact_count, 1);
        }
        other => panic!("expected candidates, got {other:?}"),
    }
    assert_eq!(t.store.ids().expect("ids").len(), 2);
    // Confirmed as someone else: created.
    assert!(matches!(
        t.store.create_youth_with_first_visit(&again, &first, true),
        Ok(FirstVisit::Created { .. })
    ));
    assert_eq!(t.store.ids().expect("ids").len(), 4);
}

/// One step of the random sequences below: a visit created or edited, for some of three
/// young people (bits of `youth`), at one of a few times (ties included), with or without
/// a next step.
#[derive(Debug, Clone)]
enum VisitOp {
    Create {
        youth: u8,
        slot: i64,
        step: bool,
    },
    Edit {
        visit: usize,
        youth: u8,
        slot: i64,
        step: bool,
    },
}

fn visit_op() -> impl proptest::strategy::Strategy<Value = VisitOp> {
    use proptest::prelude::*;
    prop_oneof![
        (1..8u8, 0..5i64, any::<bool>()).prop_map(|(youth, slot, step)| VisitOp::Create {
            youth,
            slot,
            step
        }),
        (0..16usize, 1..8u8, 0..5i64, any::<bool>()).prop_map(|(visit, youth, slot, step)| {
            VisitOp::Edit {
                visit,
                youth,
                slot,
                step,
            }
        }),
    ]
}

fn visit_at(people: &[Uuid], youth: u8, slot: i64, step: bool) -> Contact {
    let chosen: Vec<Uuid> = (0..3)
        .filter(|b| youth & (1 << b) != 0)
        .map(|b| people[b])
        .collect();
    let mut c = visit(&chosen, 0, 0);
    c.occurred_at = (now() - Duration::days(10) + Duration::hours(slot)).fixed_offset();
    if step {
        c.next_step = Some("Rappeler".into());
        c.next_step_due = Some(day(-1));
    }
    c
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig {
        cases: std::env::var("REPERE_SOAK").map_or(32, |_| 500),
        ..proptest::prelude::ProptestConfig::default()
    })]

    /// The open next steps kept up visit by visit are those a reading of all the visits
    /// gives: a step is open while none of its young people has a later visit.
    #[test]
    fn open_next_steps_follow_every_write_as_a_rebuild_would(
        ops in proptest::collection::vec(visit_op(), 1..24)
    ) {
        let mut t = open_store(21);
        let people: Vec<Uuid> = ["Ana", "Bob", "Cem"]
            .iter()
            .map(|n| t.store.create(&youth(n, 2006)).expect("youth"))
            .collect();
        let mut visits: Vec<(Uuid, Contact)> = Vec::new();
        for op in ops {
            match op {
                VisitOp::Create { youth, slot, step } => {
                    let c = visit_at(&people, youth, slot, step);
                    visits.push((t.store.create(&c).expect("visit"), c));
                }
                VisitOp::Edit { visit, youth, slot, step } if !visits.is_empty() => {
                    let i = visit % visits.len();
                    let c = visit_at(&people, youth, slot, step);
                    let written = c.clone();
                    t.store.edit::<Contact>(visits[i].0, move |old| *old = written).expect("edit");
                    visits[i].1 = c;
                }
                VisitOp::Edit { .. } => {}
            }
        }
        let expected: BTreeSet<Uuid> = visits
            .iter()
            .filter(|(_, s)| s.next_step.is_some())
            .filter(|(_, s)| {
                !visits.iter().any(|(_, o)| {
                    o.occurred_at > s.occurred_at && !o.youth_ids.is_disjoint(&s.youth_ids)
                })
            })
            .map(|(id, _)| *id)
            .collect();
        let open = |s: &Store| -> BTreeSet<Uuid> {
            s.todo(0, 100)
                .expect("todo")
                .iter()
                .filter(|i| i.reason == TodoReason::NextStepOverdue)
                .map(|i| i.id)
                .collect()
        };
        proptest::prop_assert_eq!(open(&t.store), expected.clone());
        t.store.rebuild_index().expect("rebuild");
        proptest::prop_assert_eq!(open(&t.store), expected);
    }
}

/// A day's visits are those entered on that day in the tablet's own time zone, in order of
/// time, whatever day it was in UTC; other days are not read.
#[test]
fn visits_of_a_day_are_by_the_day_entered_in_order_of_time() {
    let mut t = open_store(14);
    let kevin = t.store.create(&youth("Kévin", 2007)).expect("youth");
    let at = |s: &str| -> chrono::DateTime<chrono::FixedOffset> { s.parse().expect("instant") };
    let on = |when: &str| Contact {
        occurred_at: at(when),
        ..visit(&[kevin], 0, 0)
    };
    // 23:30 in UTC−5 on 2 May is 3 May in UTC: still a visit of 2 May.
    let late = t
        .store
        .create(&on("2026-05-02T23:30:00-05:00"))
        .expect("visit");
    let morning = t
        .store
        .create(&on("2026-05-02T09:15:00+02:00"))
        .expect("visit");
    let noon = t
        .store
        .create(&on("2026-05-02T12:00:00+02:00"))
        .expect("visit");
    t.store
        .create(&on("2026-05-03T08:00:00+02:00"))
        .expect("visit");
    t.store
        .create(&on("2026-05-01T18:00:00+02:00"))
        .expect("visit");
    let day: NaiveDate = "2026-05-02".parse().expect("day");
    let ids = |offset, limit| -> Vec<Uuid> {
        t.store
            .visits_on(day, offset, limit)
            .expect("visits")
            .iter()
            .map(|v| v.id)
            .collect()
    };
    assert_eq!(ids(0, 10), [morning, noon, late]);
    assert_eq!(ids(1, 1), [noon], "paged");
    let first = &t.store.visits_on(day, 0, 1).expect("visits")[0];
    assert_eq!(first.youth_ids, [kevin]);
    assert!(
        t.store
            .visits_on("2026-05-04".parse().expect("day"), 0, 10)
            .expect("visits")
            .is_empty()
    );
}

//! Conflicts resolved on the coordinators' pages (issue 11): keep a value or type another,
//! as the coordinator's own synced change; refused values, other scopes and forms without
//! their CSRF token change nothing.

use chrono::Duration;
use repere_core::document::RecordDoc;
use repere_core::records::{
    Action, ActionKind, ActionStatus, Contact, ContactKind, Outcome, OutcomeKind, Youth,
    YouthStatus,
};
use repere_core::{Author, RecordKind};
use repere_server::HubError;
use repere_server::coord::Workspace;
use repere_server::coord::conflicts::Resolution;
use repere_server::storage::{AuditEntry, Role};
use uuid::Uuid;

use crate::common::{Env, Tablet, env, signed_in_user};
use crate::coord::{Browser, PASSWORD, coordinator, other_organisation, server, visit};

/// Two tablets of team A edited the same visit offline: `kind`, `next_step` and `commune`
/// each hold two values on the server (and on both tablets).
fn conflicted_visit(env: &Env) -> (Tablet, Tablet, Uuid, Uuid) {
    let mut a = env.tablet(&env.team_a, "binome-a");
    let mut b = env.tablet(&env.team_a, "binome-a-bis");
    let (youth_id, contact_id) = visit(&mut a);
    b.sync_ok();
    a.store
        .edit::<Contact>(contact_id, |c| {
            c.kind = ContactKind::Home;
            c.next_step = Some("Rappeler la mission locale".into());
            c.commune = "55545".into();
        })
        .expect("edit on a");
    b.store
        .edit::<Contact>(contact_id, |c| {
            c.kind = ContactKind::Phone;
            c.next_step = Some("Passer au local jeudi".into());
            c.commune = "55043".into();
        })
        .expect("edit on b");
    a.sync_ok();
    b.sync_ok();
    a.sync_ok();
    assert_eq!(a.store.conflicts(contact_id).expect("conflicts").len(), 3);
    (a, b, youth_id, contact_id)
}

fn conflicted_fields(env: &Env, id: Uuid, kind: RecordKind) -> Vec<String> {
    let stored = env
        .hub
        .storage()
        .read_with(|tx| Ok::<_, HubError>(tx.document(id)?))
        .expect("read")
        .expect("stored");
    let nil = Author {
        device_id: Uuid::nil(),
        member_id: Uuid::nil(),
    };
    RecordDoc::load(kind, id, &stored.doc, nil)
        .expect("document")
        .conflicts()
        .into_iter()
        .map(|c| c.field)
        .collect()
}

fn journal(env: &Env, id: Uuid) -> Vec<AuditEntry> {
    env.hub
        .storage()
        .read_with(|tx| Ok::<_, HubError>(tx.audit_entries(env.org.id, Some(id), 0, 100)?.0))
        .expect("journal")
        .into_iter()
        .filter(|e| e.action == "resolve_conflict")
        .collect()
}

#[test]
fn a_coordinator_keeps_one_value_and_the_tablets_pull_it() {
    let env = env();
    let coordinator_id = coordinator(&env, "camille@ml.test");
    let (mut a, mut b, _, contact_id) = conflicted_visit(&env);
    let server = server(&env);
    let mut browser = Browser::new(&server);
    let token = browser.signed_in("camille@ml.test", PASSWORD);

    let page = browser.get(&format!("/visites/{contact_id}"));
    assert_eq!(page.status, 200);
    assert!(page.body.contains(r#"data-testid="conflicts-section""#));
    assert!(page.body.contains(r#"data-field="kind""#));
    // French labels of both values, with their tablets.
    assert!(page.body.contains("Domicile") && page.body.contains("Téléphone"));
    assert!(page.body.contains("tablette « binome-a »"));

    // Tablet A keeps an unsent edit of another field meanwhile.
    a.store
        .edit::<Contact>(contact_id, |c| c.notes = "Vu avec sa sœur".into())
        .expect("unsent edit");

    let done = browser.post(
        &format!("/fiches/{contact_id}/conflit"),
        &[("csrf", &token), ("champ", "kind"), ("choix", "\"phone\"")],
    );
    assert_eq!(done.status, 303);
    assert_eq!(
        done.location.as_deref(),
        Some(format!("/visites/{contact_id}?ok=conflit").as_str())
    );
    assert_eq!(
        conflicted_fields(&env, contact_id, RecordKind::Contact),
        vec!["commune", "next_step"]
    );
    let page = browser.get(done.location.as_deref().expect("back to the visit"));
    assert!(!page.body.contains(r#"data-field="kind""#));
    assert!(page.body.contains("Conflit résolu"));

    // Journaled with the field's name, never a value.
    let entries = journal(&env, contact_id);
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].user_id, Some(coordinator_id));
    assert!(!entries[0].detail.contains("phone") && !entries[0].detail.contains("Téléphone"));

    // Both tablets pull it; the unsent edit survives and goes up.
    a.sync_ok();
    b.sync_ok();
    for t in [&a, &b] {
        let fields: Vec<String> = t
            .store
            .conflicts(contact_id)
            .expect("conflicts")
            .into_iter()
            .map(|c| c.field)
            .collect();
        assert!(!fields.contains(&"kind".to_string()));
        assert_eq!(
            t.store.get::<Contact>(contact_id).expect("reads").kind,
            ContactKind::Phone
        );
    }
    assert_eq!(
        b.store.get::<Contact>(contact_id).expect("reads").notes,
        "Vu avec sa sœur"
    );
    // The coordinator's change: nil device, the user's id.
    let stored = env
        .hub
        .storage()
        .read_with(|tx| Ok::<_, HubError>(tx.document(contact_id)?))
        .expect("read")
        .expect("stored");
    let mut doc = RecordDoc::load(
        RecordKind::Contact,
        contact_id,
        &stored.doc,
        Author {
            device_id: Uuid::nil(),
            member_id: Uuid::nil(),
        },
    )
    .expect("doc");
    let by_coordinator = doc.history().into_iter().any(|h| {
        h.author
            == Some(Author {
                device_id: Uuid::nil(),
                member_id: coordinator_id,
            })
            && h.fields == vec!["kind".to_string()]
    });
    assert!(by_coordinator);
}

#[test]
fn a_coordinator_types_another_value() {
    let env = env();
    coordinator(&env, "camille@ml.test");
    let (mut a, _, _, contact_id) = conflicted_visit(&env);
    let server = server(&env);
    let mut browser = Browser::new(&server);
    let token = browser.signed_in("camille@ml.test", PASSWORD);
    let done = browser.post(
        &format!("/fiches/{contact_id}/conflit"),
        &[
            ("csrf", &token),
            ("champ", "next_step"),
            ("choix", "autre"),
            ("valeur", "  Rendez-vous lundi à 10 h  "),
        ],
    );
    assert_eq!(done.status, 303);
    a.sync_ok();
    let contact = a.store.get::<Contact>(contact_id).expect("reads");
    assert_eq!(
        contact.next_step.as_deref(),
        Some("Rendez-vous lundi à 10 h")
    );
    assert!(
        a.store
            .conflicts(contact_id)
            .expect("conflicts")
            .iter()
            .all(|c| c.field != "next_step")
    );
    // A commune typed by its code.
    let done = browser.post(
        &format!("/fiches/{contact_id}/conflit"),
        &[
            ("csrf", &token),
            ("champ", "commune"),
            ("choix", "autre"),
            ("valeur", "55502"),
        ],
    );
    assert_eq!(done.status, 303);
    a.sync_ok();
    assert_eq!(
        a.store.get::<Contact>(contact_id).expect("reads").commune,
        "55502"
    );
}

#[test]
fn an_invalid_value_is_refused_in_french_and_nothing_is_lost() {
    let env = env();
    coordinator(&env, "camille@ml.test");
    let (_, _, _, contact_id) = conflicted_visit(&env);
    let server = server(&env);
    let mut browser = Browser::new(&server);
    let token = browser.signed_in("camille@ml.test", PASSWORD);
    let too_long = "x".repeat(600);
    for (field, typed) in [("commune", "99999"), ("next_step", too_long.as_str())] {
        let refused = browser.post(
            &format!("/fiches/{contact_id}/conflit"),
            &[
                ("csrf", &token),
                ("champ", field),
                ("choix", "autre"),
                ("valeur", typed),
            ],
        );
        assert_eq!(refused.status, 422, "{field}");
        assert!(refused.body.contains(r#"data-testid="conflict-error""#));
        assert!(refused.body.contains("Valeur refusée"), "{}", refused.body);
        // What was typed is still in the form.
        assert!(refused.body.contains(&format!(r#"value="{typed}""#)));
    }
    // An empty value, or a field with no conflict.
    for (field, choice, typed) in [("kind", "autre", ""), ("notes", "autre", "x")] {
        let refused = browser.post(
            &format!("/fiches/{contact_id}/conflit"),
            &[
                ("csrf", &token),
                ("champ", field),
                ("choix", choice),
                ("valeur", typed),
            ],
        );
        assert_eq!(refused.status, 422, "{field}");
    }
    assert_eq!(
        conflicted_fields(&env, contact_id, RecordKind::Contact),
        vec!["commune", "kind", "next_step"]
    );
    assert!(journal(&env, contact_id).is_empty());
}

#[test]
fn another_scope_and_a_missing_csrf_token_change_nothing() {
    let env = env();
    coordinator(&env, "camille@ml.test");
    let (_, _, _, contact_id) = conflicted_visit(&env);
    let (_, elsewhere) = other_organisation(&env);
    let server = server(&env);

    let mut outsider = Browser::new(&server);
    let token = outsider.signed_in(&elsewhere, PASSWORD);
    let refused = outsider.post(
        &format!("/fiches/{contact_id}/conflit"),
        &[("csrf", &token), ("champ", "kind"), ("choix", "\"phone\"")],
    );
    assert_eq!(refused.status, 404);

    let mut browser = Browser::new(&server);
    browser.signed_in("camille@ml.test", PASSWORD);
    let refused = browser.post(
        &format!("/fiches/{contact_id}/conflit"),
        &[("champ", "kind"), ("choix", "\"phone\"")],
    );
    assert_eq!(refused.status, 403);
    assert_eq!(
        conflicted_fields(&env, contact_id, RecordKind::Contact),
        vec!["commune", "kind", "next_step"]
    );

    // A coordinator whose scope is only team B: answered as an unknown id.
    let mut only_b = signed_in_user(&env, "Alix", Role::Coordinator, false);
    only_b.teams.retain(|t| t.id == env.team_b.id);
    let ws = Workspace::new(env.hub.clone());
    let err = ws
        .resolve_conflict(
            &only_b,
            contact_id,
            "kind",
            &Resolution::Keep("\"phone\"".into()),
        )
        .expect_err("out of scope");
    assert!(matches!(err, HubError::NotFound { .. }));
    assert!(journal(&env, contact_id).is_empty());
}

#[test]
fn a_young_persons_file_shows_and_resolves_its_conflicts() {
    let env = env();
    coordinator(&env, "camille@ml.test");
    let mut a = env.tablet(&env.team_a, "binome-a");
    let mut b = env.tablet(&env.team_a, "binome-a-bis");
    let (youth_id, _) = visit(&mut a);
    b.sync_ok();
    // Two statuses other than the current one, and a third to type.
    let current = a.store.get::<Youth>(youth_id).expect("reads").status;
    let others: Vec<YouthStatus> = [
        YouthStatus::Identified,
        YouthStatus::Mobilised,
        YouthStatus::Helped,
        YouthStatus::Closed,
    ]
    .into_iter()
    .filter(|s| *s != current)
    .collect();
    a.store
        .edit::<Youth>(youth_id, |y| y.status = others[0])
        .expect("edit");
    b.store
        .edit::<Youth>(youth_id, |y| y.status = others[1])
        .expect("edit");
    a.sync_ok();
    b.sync_ok();
    assert_eq!(
        conflicted_fields(&env, youth_id, RecordKind::Youth),
        vec!["status"]
    );
    let server = server(&env);
    let mut browser = Browser::new(&server);
    let token = browser.signed_in("camille@ml.test", PASSWORD);
    let page = browser.get(&format!("/jeunes/{youth_id}"));
    assert!(
        page.body.contains(r#"data-field="status""#),
        "{}",
        page.body
    );
    assert!(page.body.contains(r#"data-testid="conflict-other""#));
    // The other value is chosen from the kind's statuses.
    let typed = serde_json::to_value(others[2]).expect("id");
    let done = browser.post(
        &format!("/fiches/{youth_id}/conflit"),
        &[
            ("csrf", &token),
            ("champ", "status"),
            ("choix", "autre"),
            ("valeur", typed.as_str().expect("a string")),
        ],
    );
    assert_eq!(done.status, 303);
    assert_eq!(
        done.location.as_deref(),
        Some(format!("/jeunes/{youth_id}?ok=conflit").as_str())
    );
    a.sync_ok();
    assert!(a.store.conflicts(youth_id).expect("conflicts").is_empty());
    assert_eq!(
        a.store.get::<Youth>(youth_id).expect("reads").status,
        others[2]
    );
    assert_eq!(journal(&env, youth_id).len(), 1);
}

/// Two tablets of team A edited the same action and outcome of a young person offline:
/// the action's `status` and `end_date` (cleared on one, set on the other) and the
/// outcome's `kind` each hold two values.
fn conflicted_action(env: &Env) -> (Tablet, Tablet, Uuid, Uuid, Uuid) {
    let mut a = env.tablet(&env.team_a, "binome-a");
    let mut b = env.tablet(&env.team_a, "binome-a-bis");
    let (youth_id, _) = visit(&mut a);
    let mut action = a.demo.action(youth_id);
    action.kind = ActionKind::Sport;
    action.end_date = Some(action.start_date);
    let action_id = a.store.create(&action).expect("action");
    let mut outcome = a.demo.outcome(youth_id);
    outcome.kind = OutcomeKind::MissionLocaleRegistration;
    let outcome_id = a.store.create(&outcome).expect("outcome");
    a.sync_ok();
    b.sync_ok();
    a.store
        .edit::<Action>(action_id, |x| {
            x.status = ActionStatus::NoShow;
            x.end_date = None;
        })
        .expect("edit on a");
    b.store
        .edit::<Action>(action_id, |x| {
            x.status = ActionStatus::Cancelled;
            x.end_date = Some(x.start_date + Duration::days(2));
        })
        .expect("edit on b");
    a.store
        .edit::<Outcome>(outcome_id, |o| o.kind = OutcomeKind::Job)
        .expect("edit on a");
    b.store
        .edit::<Outcome>(outcome_id, |o| o.kind = OutcomeKind::Training)
        .expect("edit on b");
    a.sync_ok();
    b.sync_ok();
    a.sync_ok();
    assert_eq!(
        conflicted_fields(env, action_id, RecordKind::Action),
        vec!["end_date", "status"]
    );
    assert_eq!(
        conflicted_fields(env, outcome_id, RecordKind::Outcome),
        vec!["kind"]
    );
    (a, b, youth_id, action_id, outcome_id)
}

#[test]
fn actions_and_outcomes_show_and_resolve_their_conflicts_on_the_young_persons_page() {
    let env = env();
    let coordinator_id = coordinator(&env, "camille@ml.test");
    let (mut a, mut b, youth_id, action_id, outcome_id) = conflicted_action(&env);
    let server = server(&env);
    let mut browser = Browser::new(&server);
    let token = browser.signed_in("camille@ml.test", PASSWORD);

    let page = browser.get(&format!("/jeunes/{youth_id}"));
    assert_eq!(page.status, 200);
    for id in [action_id, outcome_id] {
        assert!(
            page.body.contains(&format!(
                r#"data-testid="conflicts-section" data-record-id="{id}""#
            )),
            "{}",
            page.body
        );
    }
    assert_eq!(
        page.body
            .matches(r#"data-testid="record-conflict""#)
            .count(),
        2
    );
    // French labels of both values, a select of the kind's values, the empty value.
    assert!(page.body.contains("Absence") && page.body.contains("Annulée"));
    assert!(
        page.body
            .contains(r#"<option value="planned">Prévue</option>"#)
    );
    assert!(page.body.contains("Emploi") && page.body.contains("Formation"));
    assert!(
        page.body
            .contains(r#"<option value="health_care">Soins</option>"#)
    );
    assert!(page.body.contains("(vide)"));
    assert!(page.body.contains("tablette « binome-a-bis »"));

    // An end before the start: refused in French on the young person's page.
    let start = a.store.get::<Action>(action_id).expect("reads").start_date;
    let before = (start - Duration::days(3)).format("%d/%m/%Y").to_string();
    let refused = browser.post(
        &format!("/fiches/{action_id}/conflit"),
        &[
            ("csrf", &token),
            ("champ", "end_date"),
            ("choix", "autre"),
            ("valeur", &before),
        ],
    );
    assert_eq!(refused.status, 422);
    assert!(refused.body.contains(r#"data-testid="youth-detail""#));
    assert!(
        refused.body.contains("Valeur refusée : fin"),
        "{}",
        refused.body
    );
    assert!(refused.body.contains(&format!(r#"value="{before}""#)));
    assert_eq!(
        refused
            .body
            .matches(r#"data-testid="conflict-error""#)
            .count(),
        1
    );
    assert!(journal(&env, action_id).is_empty());

    // The status chosen from the list, the empty end date kept, the outcome's kind kept.
    for (record, field, choice, typed) in [
        (action_id, "status", "autre", "done"),
        (action_id, "end_date", "null", ""),
        (outcome_id, "kind", "\"training\"", ""),
    ] {
        let done = browser.post(
            &format!("/fiches/{record}/conflit"),
            &[
                ("csrf", &token),
                ("champ", field),
                ("choix", choice),
                ("valeur", typed),
            ],
        );
        assert_eq!(done.status, 303, "{field}: {}", done.body);
        assert_eq!(
            done.location.as_deref(),
            Some(format!("/jeunes/{youth_id}?ok=conflit").as_str())
        );
    }
    assert!(conflicted_fields(&env, action_id, RecordKind::Action).is_empty());
    assert!(conflicted_fields(&env, outcome_id, RecordKind::Outcome).is_empty());
    let page = browser.get(&format!("/jeunes/{youth_id}?ok=conflit"));
    assert!(!page.body.contains(r#"data-testid="conflicts-section""#));
    assert!(page.body.contains("Conflit résolu"));

    // Journaled with the kind and the field's name, never a value.
    let entries = journal(&env, action_id);
    assert_eq!(entries.len(), 2);
    assert!(entries.iter().all(|e| e.user_id == Some(coordinator_id)));
    assert!(entries.iter().all(|e| e.detail.contains("action")));
    assert!(
        entries
            .iter()
            .all(|e| !e.detail.contains("done") && !e.detail.contains("Réalisée"))
    );
    let entries = journal(&env, outcome_id);
    assert_eq!(entries.len(), 1);
    assert!(!entries[0].detail.contains("training") && !entries[0].detail.contains("Formation"));

    // Both tablets pull it.
    a.sync_ok();
    b.sync_ok();
    for t in [&a, &b] {
        assert!(t.store.conflicts(action_id).expect("conflicts").is_empty());
        assert!(t.store.conflicts(outcome_id).expect("conflicts").is_empty());
        let action = t.store.get::<Action>(action_id).expect("reads");
        assert_eq!(action.status, ActionStatus::Done);
        assert_eq!(action.end_date, None);
        assert_eq!(
            t.store.get::<Outcome>(outcome_id).expect("reads").kind,
            OutcomeKind::Training
        );
    }
}

#[test]
fn an_actions_conflict_out_of_scope_or_without_csrf_changes_nothing() {
    let env = env();
    coordinator(&env, "camille@ml.test");
    let (_, _, _, action_id, outcome_id) = conflicted_action(&env);
    let (_, elsewhere) = other_organisation(&env);
    let server = server(&env);

    let mut outsider = Browser::new(&server);
    let token = outsider.signed_in(&elsewhere, PASSWORD);
    for id in [action_id, outcome_id] {
        let refused = outsider.post(
            &format!("/fiches/{id}/conflit"),
            &[("csrf", &token), ("champ", "kind"), ("choix", "\"job\"")],
        );
        assert_eq!(refused.status, 404);
    }
    let mut browser = Browser::new(&server);
    browser.signed_in("camille@ml.test", PASSWORD);
    let refused = browser.post(
        &format!("/fiches/{outcome_id}/conflit"),
        &[("champ", "kind"), ("choix", "\"job\"")],
    );
    assert_eq!(refused.status, 403);

    let mut only_b = signed_in_user(&env, "Alix", Role::Coordinator, false);
    only_b.teams.retain(|t| t.id == env.team_b.id);
    let ws = Workspace::new(env.hub.clone());
    let err = ws
        .resolve_conflict(
            &only_b,
            action_id,
            "status",
            &Resolution::Keep("\"no_show\"".into()),
        )
        .expect_err("out of scope");
    assert!(matches!(err, HubError::NotFound { .. }));
    assert_eq!(ws.conflict_page(&only_b, action_id).expect("reads"), None);

    assert_eq!(
        conflicted_fields(&env, action_id, RecordKind::Action),
        vec!["end_date", "status"]
    );
    assert_eq!(
        conflicted_fields(&env, outcome_id, RecordKind::Outcome),
        vec!["kind"]
    );
    assert!(journal(&env, action_id).is_empty() && journal(&env, outcome_id).is_empty());
}

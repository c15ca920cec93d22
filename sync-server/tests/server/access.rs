//! The right of access: everything held about one young person, with every record's
//! history and the journal of who viewed or exported them, refused without a second
//! factor, scoped to the organisation, and itself journaled.

use repere_core::RecordKind;
use repere_server::coord::access::AccessFormat;
use repere_server::coord::{Coordinator, Workspace};
use repere_server::storage::Role;

use crate::common::env;

fn coordinator(env: &crate::common::Env, second_factor: bool) -> Coordinator {
    crate::common::signed_in_user(
        env,
        "Camille Coordination",
        Role::Coordinator,
        second_factor,
    )
}

#[test]
fn the_access_file_holds_every_record_its_history_and_who_looked_and_is_journaled() {
    let env = env();
    let mut tablet = env.tablet(&env.team_a, "une");
    let youth = tablet.store.create(&tablet.demo.youth()).expect("youth");
    let other = tablet
        .store
        .create(&tablet.demo.youth())
        .expect("someone else");
    let mut visit = tablet.demo.contact(&[youth]);
    visit.tour_id = None;
    let visit = tablet.store.create(&visit).expect("visit");
    let action = tablet.demo.action(youth);
    let action = tablet.store.create(&action).expect("action");
    let outcome = tablet.demo.outcome(youth);
    let outcome = tablet.store.create(&outcome).expect("outcome");
    let elsewhere = tablet.demo.action(other);
    let elsewhere = tablet.store.create(&elsewhere).expect("another's action");
    tablet
        .store
        .edit::<repere_core::records::Youth>(youth, |y| y.phone = Some("06 01 02 03 04".into()))
        .expect("edit");
    // The young person was changed last, yet reaches the server before what names them.
    assert_eq!(tablet.sync_ok().rejected, 0);
    let ws = Workspace::new(env.hub.clone());
    let who = coordinator(&env, true);
    ws.refresh_view().expect("view");
    let question = ws.ask(&who, visit, "Rappel prévu ?").expect("question");
    ws.youth(&who, youth).expect("view").expect("in scope");

    let file = ws
        .access_file(&who, youth, AccessFormat::Json)
        .expect("file")
        .expect("in scope");
    let ids: Vec<_> = file.records.iter().map(|r| (r.kind, r.id)).collect();
    assert_eq!(ids[0], (RecordKind::Youth, youth), "the young person first");
    for expected in [
        (RecordKind::Contact, visit),
        (RecordKind::Action, action),
        (RecordKind::Outcome, outcome),
        (RecordKind::ReviewTask, question),
    ] {
        assert!(ids.contains(&expected), "{expected:?} in {ids:?}");
    }
    assert!(!ids.iter().any(|(_, id)| *id == elsewhere || *id == other));
    let history = &file.records[0].history;
    assert_eq!(history.len(), 2, "created, then the phone");
    assert!(history[1].fields.contains(&"phone".to_string()));
    assert!(
        history[1].author.contains("tablette « une »"),
        "{}",
        history[1].author
    );
    let asked = file
        .records
        .iter()
        .find(|r| r.id == question)
        .expect("question");
    assert!(
        asked.history[0].author.contains("Camille Coordination"),
        "{}",
        asked.history[0].author
    );
    let actions: Vec<&str> = file.audit.iter().map(|a| a.entry.action.as_str()).collect();
    assert!(
        actions.contains(&"view_youth") && actions.contains(&"ask_question"),
        "{actions:?}"
    );
    let json = file.to_json();
    assert_eq!(json["records"][0]["kind"], "youth");
    assert_eq!(json["records"][0]["fields"]["phone"], "06 01 02 03 04");

    // Itself journaled: the next file shows the first one.
    let again = ws
        .access_file(&who, youth, AccessFormat::Page)
        .expect("file")
        .expect("in scope");
    assert_eq!(again.audit[0].entry.action, "access_file");
    assert!(again.audit[0].entry.detail.contains("fichier JSON"));
    assert_eq!(
        again.audit[0].user_name.as_deref(),
        Some("Camille Coordination")
    );
}

#[test]
fn the_access_file_needs_a_second_factor_and_stays_in_the_organisation() {
    let env = env();
    let mut tablet = env.tablet(&env.team_a, "une");
    let youth = tablet.store.create(&tablet.demo.youth()).expect("youth");
    tablet.sync_ok();
    let ws = Workspace::new(env.hub.clone());
    let without = coordinator(&env, false);
    assert!(matches!(
        ws.access_file(&without, youth, AccessFormat::Page),
        Err(repere_server::HubError::Unauthorized)
    ));
    let other_org = env.hub.create_organisation("Autre ML").expect("org");
    let mut outsider = coordinator(&env, true);
    outsider.organisation = other_org;
    outsider.teams = vec![];
    assert_eq!(
        ws.access_file(&outsider, youth, AccessFormat::Json)
            .expect("answer"),
        None
    );
    let (entries, _) = env
        .hub
        .storage()
        .read_with(|tx| tx.audit_entries(env.org.id, Some(youth), 0, 10))
        .expect("journal");
    assert_eq!(entries[0].action, "access_file_refused");
}

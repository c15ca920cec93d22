//! A young person transferred to another team (issue 12): asked by the source team's
//! coordination, accepted or refused by the destination's, cancelled by either side while
//! pending; on acceptance the young person, their actions and outcomes change team, their
//! visits stay; the old team's tablets drop what moved (not as an erasure), the new
//! team's receive it, and the figures count the young person once, for their new team.

use chrono::NaiveDate;
use repere_core::indicators::{Granularity, IndicatorQuery};
use repere_core::records::{Action, Contact, Outcome, Youth};
use repere_core::{Error as CoreError, RecordKind};
use repere_server::HubError;
use repere_server::coord::reports::DashboardQuery;
use repere_server::coord::{Coordinator, Workspace};
use repere_server::storage::{Role, Team, TransferState};
use uuid::Uuid;

use crate::common::{Env, Tablet, env};
use crate::coord::{Browser, PASSWORD, coordinator, other_organisation, server};

/// A coordinator who sees only `teams` (as if their organisation had only those).
fn coordination(env: &Env, name: &str, teams: &[&Team]) -> Coordinator {
    let mut who = crate::common::signed_in_user(env, name, Role::Coordinator, false);
    who.teams = teams.iter().map(|t| (*t).clone()).collect();
    who
}

/// A coordinator of a third organisation, with its own team.
fn third_party(env: &Env) -> Coordinator {
    let org = env.hub.create_organisation("Tierce").expect("org");
    let team = env.hub.create_team(org.id, "Binôme tiers").expect("team");
    let user = env
        .hub
        .create_user_with_login(org.id, "Tiers", Role::Admin, None)
        .expect("user");
    Coordinator {
        user,
        organisation: org,
        teams: vec![team],
        second_factor: true,
    }
}

/// A young person met on `tablet` with a visit, an action and an outcome, synced.
struct Path {
    youth: Uuid,
    visit: Uuid,
    action: Uuid,
    outcome: Uuid,
}

fn path(tablet: &mut Tablet) -> Path {
    let mut youth = tablet.demo.youth();
    youth.first_name = Some("Zéphyrine".into());
    let youth = tablet.store.create(&youth).expect("youth");
    let visit = tablet
        .store
        .create(&tablet.demo.contact(&[youth]))
        .expect("visit");
    let action = tablet
        .store
        .create(&tablet.demo.action(youth))
        .expect("action");
    let outcome = tablet
        .store
        .create(&tablet.demo.outcome(youth))
        .expect("outcome");
    tablet.sync_ok();
    Path {
        youth,
        visit,
        action,
        outcome,
    }
}

fn team_of(env: &Env, id: Uuid) -> Option<Uuid> {
    env.hub
        .storage()
        .read_with(|tx| tx.document(id))
        .expect("read")
        .map(|d| d.team_id)
}

fn gone<R: repere_core::Record>(tablet: &Tablet, id: Uuid) -> bool {
    matches!(
        tablet.store.get::<R>(id),
        Err(CoreError::NotFound { .. } | CoreError::NoRecord { .. })
    )
}

fn whole() -> (NaiveDate, NaiveDate) {
    (
        NaiveDate::from_ymd_opt(2000, 1, 1).expect("date"),
        NaiveDate::from_ymd_opt(2100, 12, 31).expect("date"),
    )
}

/// Young people reached (identified or helped) on a tablet, all periods.
fn reached_on(tablet: &Tablet) -> u32 {
    let (from, to) = whole();
    let report = tablet
        .store
        .indicators(&IndicatorQuery {
            from,
            to,
            granularity: Granularity::Whole,
            teams: None,
            dimension: None,
        })
        .expect("indicators");
    let total = &report.rows[0].figures;
    total.identified + total.helped
}

/// Young people reached for `team` on the dashboard of `who`.
fn reached_on_dashboard(ws: &Workspace, who: &Coordinator, team: Uuid) -> u32 {
    let (from, to) = whole();
    let d = ws
        .dashboard(
            who,
            &DashboardQuery {
                from,
                to,
                granularity: Granularity::Whole,
                dimension: None,
                team: Some(team),
            },
        )
        .expect("dashboard");
    d.totals.identified + d.totals.helped
}

fn journal_actions(env: &Env, organisation: Uuid) -> Vec<(String, Option<Uuid>)> {
    env.hub
        .storage()
        .read_with(|tx| tx.audit_entries(organisation, None, 0, 1000))
        .expect("journal")
        .0
        .into_iter()
        .filter(|e| e.action.starts_with("transfer_"))
        .map(|e| (e.action, e.target_id))
        .collect()
}

#[test]
fn an_accepted_transfer_moves_the_young_person_and_their_path_and_the_old_team_drops_them() {
    let env = env();
    let mut a = env.tablet(&env.team_a, "depart");
    let mut b = env.tablet(&env.team_b, "arrivee");
    let p = path(&mut a);
    b.sync_ok();
    let ws = Workspace::new(env.hub.clone());
    let source = coordination(&env, "Source", &[&env.team_a]);
    let destination = coordination(&env, "Destination", &[&env.team_b]);
    let third = third_party(&env);

    let (name, destinations) = ws
        .transfer_form(&source, p.youth)
        .expect("form")
        .expect("in scope");
    assert!(name.contains("Zéphyrine"));
    assert!(destinations.iter().any(|d| d.team_id == env.team_b.id));
    assert!(destinations.iter().all(|d| d.team_id != env.team_a.id));
    assert_eq!(ws.transfer_form(&destination, p.youth).expect("form"), None);
    assert!(
        ws.request_transfer(&destination, p.youth, env.team_b.id)
            .is_err(),
        "only the young person's team asks"
    );
    let id = ws
        .request_transfer(&source, p.youth, env.team_b.id)
        .expect("asked");
    assert_eq!(
        ws.request_transfer(&source, p.youth, env.team_b.id)
            .expect("asked again"),
        id,
        "one pending transfer per young person"
    );

    // The destination sees whom it is asked to take; a third organisation sees nothing.
    let incoming = ws.transfers(&destination).expect("list");
    assert_eq!(incoming.len(), 1);
    assert!(incoming[0].incoming && incoming[0].pending());
    assert!(incoming[0].youth_label.contains("Zéphyrine"));
    assert!(ws.transfers(&third).expect("list").is_empty());
    assert_eq!(ws.transfer_item(&third, id).expect("item"), None);
    for refused in [
        ws.accept_transfer(&third, id).map(|_| ()),
        ws.refuse_transfer(&third, id),
        ws.cancel_transfer(&third, id),
    ] {
        assert!(
            matches!(refused, Err(HubError::NotFound { .. })),
            "{refused:?}"
        );
    }
    // The source does not accept for the destination.
    assert!(matches!(
        ws.accept_transfer(&source, id),
        Err(HubError::BadInput(_))
    ));
    assert_eq!(
        team_of(&env, p.youth),
        Some(env.team_a.id),
        "nothing moved yet"
    );

    let mut moved = ws.accept_transfer(&destination, id).expect("accepted");
    moved.sort();
    let mut path_ids = vec![p.youth, p.action, p.outcome];
    path_ids.sort();
    assert_eq!(moved, path_ids);
    for id in &path_ids {
        assert_eq!(team_of(&env, *id), Some(env.team_b.id));
    }
    assert_eq!(
        team_of(&env, p.visit),
        Some(env.team_a.id),
        "the visit stays"
    );
    assert!(
        ws.cancel_transfer(&source, id).is_err(),
        "accepted: too late"
    );
    let item = ws.transfer_item(&source, id).expect("item").expect("seen");
    assert_eq!(item.transfer.state, TransferState::Accepted);
    assert!(
        !item.youth_label.contains("Zéphyrine"),
        "the old team no longer sees the name"
    );
    let item = ws
        .transfer_item(&destination, id)
        .expect("item")
        .expect("seen");
    assert!(item.youth_label.contains("Zéphyrine"));

    // The move is the coordinator's own change, read back by every replica.
    let youth_doc = env
        .hub
        .storage()
        .read_with(|tx| tx.document(p.youth))
        .expect("read")
        .expect("there");
    let doc = repere_core::document::RecordDoc::load(
        RecordKind::Youth,
        p.youth,
        &youth_doc.doc,
        repere_core::Author {
            device_id: Uuid::nil(),
            member_id: Uuid::nil(),
        },
    )
    .expect("load");
    assert_eq!(doc.read::<Youth>().expect("youth").team_id, env.team_b.id);

    // The old team's tablet drops the young person and their path, not as an erasure,
    // and keeps its visit; the new team's receives them.
    let report = a.sync_ok();
    assert_eq!(report.transferred, 3);
    assert_eq!(report.erased, 0);
    assert!(gone::<Youth>(&a, p.youth));
    assert!(gone::<Action>(&a, p.action));
    assert!(gone::<Outcome>(&a, p.outcome));
    assert!(a.store.get::<Contact>(p.visit).is_ok());
    b.sync_ok();
    assert_eq!(
        b.store.get::<Youth>(p.youth).expect("youth").team_id,
        env.team_b.id
    );
    assert_eq!(
        b.store.get::<Action>(p.action).expect("action").team_id,
        env.team_b.id
    );
    assert!(b.store.get::<Outcome>(p.outcome).is_ok());
    assert!(gone::<Contact>(&b, p.visit));

    // The source team can still edit its visit naming the young person who left.
    a.store
        .edit::<Contact>(p.visit, |c| c.next_step = Some("Passer le relais".into()))
        .expect("edit the visit");
    let report = a.sync_ok();
    assert_eq!(report.rejected, 0, "the visit stays the source team's");

    // Figures: once, for the current team, on the dashboard; the old team's tablet no
    // longer counts them; the new team's counts them once its own visit is there.
    let both = coordination(&env, "Les deux", &[&env.team_a, &env.team_b]);
    assert_eq!(reached_on_dashboard(&ws, &both, env.team_a.id), 0);
    assert_eq!(reached_on_dashboard(&ws, &both, env.team_b.id), 1);
    assert_eq!(reached_on(&a), 0);
    assert_eq!(reached_on(&b), 0, "no visit of the new team yet");
    b.store
        .create(&b.demo.contact(&[p.youth]))
        .expect("the new team meets them");
    b.sync_ok();
    assert_eq!(reached_on(&b), 1);
    assert_eq!(
        reached_on_dashboard(&ws, &both, env.team_b.id),
        1,
        "still once"
    );
    assert_eq!(reached_on_dashboard(&ws, &both, env.team_a.id), 0);

    let actions = journal_actions(&env, env.org.id);
    assert_eq!(
        actions,
        vec![
            ("transfer_accepted".to_string(), Some(p.youth)),
            ("transfer_requested".to_string(), Some(p.youth)),
        ]
    );
}

#[test]
fn a_refused_or_cancelled_transfer_moves_nothing() {
    let env = env();
    let mut a = env.tablet(&env.team_a, "reste");
    let p = path(&mut a);
    let ws = Workspace::new(env.hub.clone());
    let source = coordination(&env, "Source", &[&env.team_a]);
    let destination = coordination(&env, "Destination", &[&env.team_b]);

    let id = ws
        .request_transfer(&source, p.youth, env.team_b.id)
        .expect("asked");
    assert!(matches!(
        ws.refuse_transfer(&source, id),
        Err(HubError::BadInput(_))
    ));
    ws.refuse_transfer(&destination, id).expect("refused");
    assert!(
        ws.accept_transfer(&destination, id).is_err(),
        "no longer pending"
    );
    let refused = ws
        .transfer_item(&destination, id)
        .expect("item")
        .expect("seen");
    assert_eq!(refused.transfer.state, TransferState::Refused);
    assert!(
        !refused.youth_label.contains("Zéphyrine"),
        "a refused destination is not told the name any more"
    );

    let again = ws
        .request_transfer(&source, p.youth, env.team_b.id)
        .expect("asked again");
    assert_ne!(again, id);
    // An erasure waiting for a decision about their path holds the transfer back.
    let erasure = ws
        .request_erasure(&source, p.action, repere_server::hub::ErasureReason::Error)
        .expect("erasure asked");
    let held = ws
        .accept_transfer(&destination, again)
        .expect_err("held back");
    assert!(held.to_string().contains("effacement"), "{held}");
    let admin = crate::common::signed_in_user(&env, "DPO", Role::Admin, false);
    ws.decide_erasure(&admin, erasure, false)
        .expect("erasure refused");
    ws.cancel_transfer(&source, again)
        .expect("cancelled by the source");
    let third = ws
        .request_transfer(&source, p.youth, env.team_b.id)
        .expect("asked a third time");
    ws.cancel_transfer(&destination, third)
        .expect("cancelled by the destination");
    assert!(ws.accept_transfer(&destination, third).is_err());

    assert_eq!(team_of(&env, p.youth), Some(env.team_a.id));
    let report = a.sync_ok();
    assert_eq!(report.transferred, 0);
    assert!(a.store.get::<Youth>(p.youth).is_ok());
    let states: Vec<TransferState> = ws
        .transfers(&source)
        .expect("list")
        .into_iter()
        .map(|i| i.transfer.state)
        .collect();
    assert_eq!(
        states,
        vec![
            TransferState::Cancelled,
            TransferState::Cancelled,
            TransferState::Refused
        ]
    );
    assert!(
        matches!(
            ws.request_transfer(&source, p.youth, env.team_a.id),
            Err(HubError::BadInput(_))
        ),
        "not to its own team"
    );
}

#[test]
fn unsent_edits_of_a_transferred_young_person_are_refused_and_the_tablet_keeps_nothing() {
    let env = env();
    let mut a = env.tablet(&env.team_a, "en-retard");
    let mut b = env.tablet(&env.team_b, "nouvelle");
    let p = path(&mut a);
    let ws = Workspace::new(env.hub.clone());
    let source = coordination(&env, "Source", &[&env.team_a]);
    let destination = coordination(&env, "Destination", &[&env.team_b]);
    let id = ws
        .request_transfer(&source, p.youth, env.team_b.id)
        .expect("asked");
    ws.accept_transfer(&destination, id).expect("accepted");

    // Offline, before it hears of the transfer, the old team's tablet edits the young
    // person, adds an action for them and records a visit with them.
    a.store
        .edit::<Youth>(p.youth, |y| y.alias = Some("Zézé".into()))
        .expect("edit");
    let new_action = a.store.create(&a.demo.action(p.youth)).expect("action");
    let new_visit = a.store.create(&a.demo.contact(&[p.youth])).expect("visit");
    let report = a.sync_ok();
    assert_eq!(report.erased, 0);
    assert!(report.transferred >= 4, "{report:?}");
    assert!(gone::<Youth>(&a, p.youth));
    assert!(gone::<Action>(&a, new_action));
    assert!(gone::<Action>(&a, p.action));
    assert_eq!(
        a.store.sync_state(new_visit).expect("state"),
        repere_core::SyncState::Synced,
        "a visit made by the old team stays its own"
    );
    assert_eq!(team_of(&env, new_visit), Some(env.team_a.id));
    assert_eq!(team_of(&env, new_action), None, "refused, not stored");

    b.sync_ok();
    let youth = b.store.get::<Youth>(p.youth).expect("youth");
    assert_ne!(
        youth.alias.as_deref(),
        Some("Zézé"),
        "the late edit is not there"
    );
    assert!(gone::<Action>(&b, new_action));

    // Nothing of the young person's own record is left in the old tablet's files.
    drop(a);
    let leaks = crate::common::files_holding(env.dir.path(), "Zézé");
    assert!(
        leaks.iter().all(|f| !f.contains("en-retard")),
        "the old tablet keeps no byte of the refused edit: {leaks:?}"
    );
}

#[test]
fn pages_ask_and_accept_a_transfer_to_another_organisation_with_csrf_and_scopes() {
    let env = env();
    coordinator(&env, "camille@ml.test");
    let (elsewhere, dominique) = other_organisation(&env);
    let mut a = env.tablet(&env.team_a, "page-depart");
    let p = path(&mut a);
    let server = server(&env);

    let mut camille = Browser::new(&server);
    let token = camille.signed_in("camille@ml.test", PASSWORD);
    let youth_page = camille.get(&format!("/jeunes/{}", p.youth));
    assert!(
        youth_page
            .body
            .contains(&format!("/jeunes/{}/transfert", p.youth))
    );
    let form = camille.get(&format!("/jeunes/{}/transfert", p.youth));
    assert_eq!(form.status, 200);
    assert!(
        form.body.contains(&elsewhere.id.to_string()),
        "another organisation's team"
    );
    let (youth, team) = (p.youth.to_string(), elsewhere.id.to_string());
    let ask = |csrf: &str| {
        vec![
            ("fiche".to_string(), youth.clone()),
            ("equipe".to_string(), team.clone()),
            ("csrf".to_string(), csrf.to_string()),
        ]
    };
    let post = |browser: &mut Browser, form: Vec<(String, String)>| {
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        browser.post("/transferts", &form)
    };
    let page = post(
        &mut camille,
        ask("0000000000000000000000000000000000000000000"),
    );
    assert_eq!(page.status, 403, "no CSRF token, no request");
    assert!(
        camille
            .get("/transferts")
            .body
            .contains(r#"data-testid="transfer-empty""#),
        "nothing asked"
    );
    let page = post(&mut camille, ask(&token));
    assert_eq!(page.status, 303, "{}", page.body);
    let list = camille.get("/transferts");
    assert!(list.body.contains(r#"data-state="pending""#));
    assert!(
        !list.body.contains(r#"data-testid="transfer-accept""#),
        "not the source's to accept"
    );

    let mut dom = Browser::new(&server);
    let dom_token = dom.signed_in(&dominique, PASSWORD);
    let list = dom.get("/transferts");
    assert!(list.body.contains("Zéphyrine"), "the destination sees whom");
    assert!(list.body.contains(r#"data-testid="transfer-accept""#));
    let row = list
        .body
        .find(r#"data-testid="transfer-row" data-id=""#)
        .expect("a row")
        + r#"data-testid="transfer-row" data-id=""#.len();
    let id = list.body[row..].split('"').next().expect("id").to_string();
    // A third organisation's coordinator sees nothing and cannot accept.
    let third = env.hub.create_organisation("Tierce").expect("org");
    env.hub.create_team(third.id, "Binôme tiers").expect("team");
    let user = env
        .hub
        .create_user_with_login(third.id, "Tiers", Role::Admin, Some("tiers@ailleurs"))
        .expect("user");
    env.hub
        .set_password(user.id, PASSWORD, None)
        .expect("password");
    let mut tiers = Browser::new(&server);
    let tiers_token = tiers.signed_in("tiers@ailleurs", PASSWORD);
    assert!(!tiers.get("/transferts").body.contains(&id));
    let accept = format!("/transferts/{id}/accepter");
    assert_eq!(tiers.post(&accept, &[("csrf", &tiers_token)]).status, 404);
    assert_eq!(dom.post(&accept, &[]).status, 403, "CSRF");
    assert_eq!(team_of(&env, p.youth), Some(env.team_a.id));
    let done = dom.post(&accept, &[("csrf", &dom_token)]);
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(team_of(&env, p.youth), Some(elsewhere.id));
    assert!(
        dom.get("/transferts")
            .body
            .contains(r#"data-state="accepted""#)
    );

    // Both organisations' journals hold the acceptance, by ids.
    assert!(
        journal_actions(&env, env.org.id).contains(&("transfer_accepted".into(), Some(p.youth)))
    );
    assert!(
        journal_actions(&env, elsewhere.organisation_id)
            .contains(&("transfer_accepted".into(), Some(p.youth)))
    );
    // The destination's dashboard counts the young person whose visit stayed behind.
    let ws = Workspace::new(env.hub.clone());
    let dest = crate::common::signed_in_user(&env, "x", Role::Coordinator, false);
    let dest = Coordinator {
        organisation: env
            .hub
            .storage()
            .read_with(|tx| tx.organisation(elsewhere.organisation_id))
            .expect("read")
            .expect("org"),
        teams: vec![elsewhere.clone()],
        ..dest
    };
    assert_eq!(reached_on_dashboard(&ws, &dest, elsewhere.id), 1);
    let src = coordination(&env, "Source", &[&env.team_a, &env.team_b]);
    assert_eq!(reached_on_dashboard(&ws, &src, env.team_a.id), 0);
    a.sync_ok();
    assert!(gone::<Youth>(&a, p.youth));
}

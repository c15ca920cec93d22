//! The team's roster and the coordinators' decisions reach the team's tablets (protocol
//! version 5), and only them; older devices are sent neither.

use repere_core::sync::protocol::{DecisionState, TeamSince};
use repere_server::coord::Workspace;
use repere_server::storage::Role;

use crate::common::{env, pull_all, request, signed_in_user};
use crate::coord::visit;

#[test]
fn the_roster_reaches_the_team_tablets_with_names_and_states() {
    let env = env();
    let amina = env.hub.add_member(env.team_a.id, "Amina").expect("add");
    let julien = env.hub.add_member(env.team_a.id, " Julien ").expect("add");
    let other = env.hub.add_member(env.team_b.id, "Zoé").expect("add");
    assert_eq!(julien.display_name, "Julien");
    assert!(env.hub.add_member(env.team_a.id, "  ").is_err());
    assert!(env.hub.add_member(env.team_a.id, &"x".repeat(61)).is_err());

    let mut tablet = env.tablet(&env.team_a, "roster-a");
    tablet.sync_ok();
    let roster = tablet.store.roster().expect("roster");
    let names: Vec<(&str, bool)> = roster.iter().map(|m| (m.name.as_str(), m.active)).collect();
    assert_eq!(names, vec![("Amina", true), ("Julien", true)]);
    assert_eq!(tablet.store.member_name(other.id).expect("read"), None);

    env.hub
        .set_member_active(amina.id, false)
        .expect("deactivate");
    env.hub
        .rename_member(julien.id, "Julien M.")
        .expect("rename");
    tablet.sync_ok();
    let roster = tablet.store.roster().expect("roster");
    let names: Vec<(&str, bool)> = roster.iter().map(|m| (m.name.as_str(), m.active)).collect();
    assert_eq!(
        names,
        vec![("Julien M.", true), ("Amina", false)],
        "active first"
    );
    assert_eq!(
        tablet.store.member_name(amina.id).expect("read").as_deref(),
        Some("Amina"),
        "an inactive member still names past records"
    );
    assert!(
        env.hub
            .rename_member(uuid::Uuid::now_v7(), "Personne")
            .is_err()
    );
}

#[test]
fn the_roster_is_sent_only_when_the_device_holds_another_version() {
    let env = env();
    env.hub.add_member(env.team_a.id, "Amina").expect("add");
    let (device, _) = env.raw_device(&env.team_a);
    let first = env.hub.sync(&device, request(0, vec![])).expect("sync");
    let roster = first.team.roster.clone().expect("roster sent");
    assert_eq!(roster.members.len(), 1);
    let mut again = request(first.cursor, vec![]);
    again.team = first.team.since(TeamSince::default());
    let second = env.hub.sync(&device, again.clone()).expect("sync");
    assert_eq!(second.team.roster, None, "the device has this version");
    env.hub.add_member(env.team_a.id, "Julien").expect("add");
    let third = env.hub.sync(&device, again).expect("sync");
    assert_eq!(third.team.roster.expect("changed").members.len(), 2);
}

#[test]
fn decisions_reach_only_the_visit_team_and_leave_with_an_erased_visit() {
    let env = env();
    let who = signed_in_user(&env, "Camille", Role::Coordinator, true);
    let ws = Workspace::new(env.hub.clone());
    let mut a = env.tablet(&env.team_a, "decide-a");
    let mut b = env.tablet(&env.team_b, "decide-b");
    let (_, approved) = visit(&mut a);
    let (_, flagged) = visit(&mut a);
    let (_, elsewhere) = visit(&mut b);
    ws.approve(&who, approved).expect("approve");
    ws.flag(&who, flagged, "Commune à vérifier").expect("flag");
    ws.flag(&who, elsewhere, "Autre équipe").expect("flag");
    a.sync_ok();
    b.sync_ok();

    let d = a
        .store
        .visit_decision(approved)
        .expect("read")
        .expect("sent");
    assert_eq!(d.state, DecisionState::Approved);
    assert!(!d.asks_for_action());
    let d = a
        .store
        .visit_decision(flagged)
        .expect("read")
        .expect("sent");
    assert_eq!(
        (d.state, d.reason.as_str()),
        (DecisionState::Flagged, "Commune à vérifier")
    );
    let todo = a.store.flagged_visits(0, 10).expect("list");
    assert_eq!(
        todo.iter().map(|d| d.contact_id).collect::<Vec<_>>(),
        vec![flagged]
    );
    assert_eq!(
        a.store.visit_decision(elsewhere).expect("read"),
        None,
        "another team's"
    );
    assert_eq!(b.store.flagged_visits(0, 10).expect("list").len(), 1);

    // A later decision replaces the earlier one.
    ws.approve(&who, flagged).expect("approve");
    a.sync_ok();
    assert!(a.store.flagged_visits(0, 10).expect("list").is_empty());

    // An erased visit's decision is gone on the server and on the tablet.
    ws.flag(&who, flagged, "Doublon").expect("flag");
    a.sync_ok();
    assert_eq!(a.store.flagged_visits(0, 10).expect("list").len(), 1);
    env.hub.erase(flagged).expect("erase");
    a.sync_ok();
    assert_eq!(a.store.visit_decision(flagged).expect("read"), None);
    assert!(a.store.flagged_visits(0, 10).expect("list").is_empty());
    let (device, _) = env.raw_device(&env.team_a);
    let (pages, _) = pull_all(&env.hub, &device, 0, 500);
    let sent: Vec<_> = pages.iter().flat_map(|p| &p.team.decisions).collect();
    assert_eq!(sent.len(), 1, "only the approved visit's decision is left");
    assert_eq!(sent[0].contact_id, approved);
}

#[test]
fn a_version_4_device_is_sent_no_roster_and_no_decisions() {
    let env = env();
    env.hub.add_member(env.team_a.id, "Amina").expect("add");
    let who = signed_in_user(&env, "Camille", Role::Coordinator, true);
    let mut a = env.tablet(&env.team_a, "old-a");
    let (_, contact) = visit(&mut a);
    Workspace::new(env.hub.clone())
        .flag(&who, contact, "à revoir")
        .expect("flag");
    let (device, _) = env.raw_device(&env.team_a);
    let (resp, _) = env
        .hub
        .sync_with_stats(&device, request(0, vec![]), 4)
        .expect("sync");
    assert_eq!(resp.team, Default::default());
    let (resp, _) = env
        .hub
        .sync_with_stats(&device, request(0, vec![]), 5)
        .expect("sync");
    assert!(resp.team.roster.is_some());
    assert_eq!(resp.team.decisions.len(), 1);
}

//! Break-the-glass (issue 12): read access to one young person's file outside one's scope,
//! with a reason, for a limited time; journaled in both organisations, shown with its
//! reason to the coordination of the team holding the file, ended early by it or by the
//! reader, expired by the clock; on the tablet side asked and lent through the sync
//! (protocol 8).

use chrono::Duration;
use repere_core::RecordKind;
use repere_core::sync::protocol::{
    AccessOutcome, AccessRefusal, AccessRequest, SyncRequest, SyncResponse,
};
use repere_server::HubError;
use repere_server::coord::audit;
use repere_server::coord::break_glass::LentPage;
use repere_server::coord::{Coordinator, Workspace};
use repere_server::storage::{Device, Role};
use uuid::Uuid;

use crate::common::{Env, env, request};

const REASON: &str = "Urgence : le jeune est hébergé ce soir par notre association";

/// A coordinator of another organisation, with its own team.
fn outsider(env: &Env, name: &str, second_factor: bool) -> Coordinator {
    let org = env.hub.create_organisation(name).expect("org");
    let team = env
        .hub
        .create_team(org.id, "Binôme d'ailleurs")
        .expect("team");
    let user = env
        .hub
        .create_user_with_login(org.id, name, Role::Coordinator, None)
        .expect("user");
    Coordinator {
        user,
        organisation: org,
        teams: vec![team],
        second_factor,
    }
}

/// A young person of team A with one visit, synced; their id.
fn youth_of_team_a(env: &Env) -> Uuid {
    let mut tablet = env.tablet(&env.team_a, "tablette-a");
    let mut youth = tablet.demo.youth();
    youth.first_name = Some("Zéphyrine".into());
    let youth = tablet.store.create(&youth).expect("youth");
    tablet
        .store
        .create(&tablet.demo.contact(&[youth]))
        .expect("visit");
    tablet.sync_ok();
    youth
}

fn journal(env: &Env, organisation: Uuid, target: Uuid) -> Vec<(String, String)> {
    env.hub
        .storage()
        .read_with(|tx| tx.audit_entries(organisation, Some(target), 0, 100))
        .expect("journal")
        .0
        .into_iter()
        .map(|e| (e.action, e.detail))
        .collect()
}

fn bad_input(r: Result<Uuid, HubError>) -> String {
    match r {
        Err(HubError::BadInput(message)) => message,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn a_coordinator_elsewhere_reads_a_file_for_two_hours_and_both_journals_say_so() {
    let env = env();
    let ws = Workspace::new(env.hub.clone());
    let youth = youth_of_team_a(&env);
    let reader = outsider(&env, "Association partenaire", true);
    let owner = crate::common::signed_in_user(&env, "Coordination A", Role::Coordinator, false);

    // Refusals, each with a message and nothing granted.
    let without_second_factor = outsider(&env, "Sans double facteur", false);
    assert!(
        bad_input(ws.break_glass(&without_second_factor, youth, REASON, 120))
            .contains("double authentification")
    );
    assert!(bad_input(ws.break_glass(&reader, youth, "urgence", 120)).contains("motif"));
    assert!(bad_input(ws.break_glass(&reader, youth, REASON, 5)).contains("durée"));
    assert!(
        bad_input(ws.break_glass(&reader, Uuid::now_v7(), REASON, 120)).contains("Aucune fiche")
    );
    let mut in_scope = owner.clone();
    in_scope.second_factor = true;
    assert!(bad_input(ws.break_glass(&in_scope, youth, REASON, 120)).contains("périmètre"));
    assert!(ws.access_grants(&owner).expect("grants").0.is_empty());

    let grant = ws
        .break_glass(&reader, youth, REASON, 120)
        .expect("granted");
    assert_eq!(
        ws.break_glass(&reader, youth, REASON, 120).expect("again"),
        grant,
        "one running grant per file"
    );
    let Some(LentPage::Open { item, detail }) = ws.lent_file(&reader, grant).expect("lent") else {
        panic!("the file is open");
    };
    assert_eq!(detail.id, youth);
    assert_eq!(detail.contacts.len(), 1, "the visit is part of the file");
    assert_eq!(item.youth_label, detail.youth.display_name());

    // The owning coordination sees who, why and until when.
    let (incoming, _) = ws.access_grants(&owner).expect("grants");
    assert_eq!(incoming.len(), 1);
    assert_eq!(incoming[0].grant.reason, REASON);
    assert_eq!(incoming[0].reader, "Association partenaire");
    assert!(incoming[0].active && incoming[0].incoming);
    // Both journals, ids only: never the reason.
    for organisation in [env.org.id, reader.organisation.id] {
        let lines = journal(&env, organisation, youth);
        let actions: Vec<&str> = lines.iter().map(|(a, _)| a.as_str()).collect();
        assert!(actions.contains(&audit::BREAK_GLASS_GRANTED), "{actions:?}");
        assert!(actions.contains(&audit::BREAK_GLASS_VIEWED), "{actions:?}");
        assert!(
            lines.iter().all(|(_, d)| !d.contains("hébergé")),
            "{lines:?}"
        );
    }
    // Nobody else reads it through this grant.
    let stranger = outsider(&env, "Tierce", true);
    assert!(ws.lent_file(&stranger, grant).expect("read").is_none());
    assert!(matches!(
        ws.end_access_grant(&stranger, grant),
        Err(HubError::NotFound { .. })
    ));

    // Two hours later it is over, by itself.
    env.clock.advance(Duration::minutes(121));
    assert!(matches!(
        ws.lent_file(&reader, grant).expect("read"),
        Some(LentPage::Over(_))
    ));
    assert!(!ws.access_grants(&owner).expect("grants").0[0].active);
    assert!(matches!(
        ws.end_access_grant(&owner, grant),
        Err(HubError::BadInput(_))
    ));
}

#[test]
fn the_owning_coordination_ends_a_grant_and_an_erasure_takes_its_reason() {
    let env = env();
    let ws = Workspace::new(env.hub.clone());
    let youth = youth_of_team_a(&env);
    let reader = outsider(&env, "Association partenaire", true);
    let owner = crate::common::signed_in_user(&env, "Coordination A", Role::Coordinator, false);
    let grant = ws
        .break_glass(&reader, youth, REASON, 480)
        .expect("granted");
    ws.end_access_grant(&owner, grant).expect("ended");
    assert!(
        matches!(ws.lent_file(&reader, grant).expect("read"), Some(LentPage::Over(item)) if item.grant.ended_at.is_some())
    );
    assert!(
        journal(&env, reader.organisation.id, youth)
            .iter()
            .any(|(a, _)| a == audit::BREAK_GLASS_ENDED)
    );

    env.hub.erase(youth).expect("erased");
    let left = env
        .hub
        .storage()
        .read_with(|tx| tx.access_grant(grant))
        .expect("read");
    assert!(left.is_none(), "the reason went with the file");
    assert!(ws.access_grants(&reader).expect("grants").1.is_empty());
}

fn ask(env: &Env, device: &Device, requests: Vec<AccessRequest>) -> SyncResponse {
    env.hub
        .sync(
            device,
            SyncRequest {
                access_requests: requests,
                ..request(0, Vec::new())
            },
        )
        .expect("sync")
}

fn asking(youth: Uuid, reason: &str, minutes: u32) -> AccessRequest {
    AccessRequest {
        id: Uuid::new_v4(),
        youth_id: youth,
        member_id: Uuid::now_v7(),
        reason: reason.into(),
        minutes,
    }
}

#[test]
fn a_tablet_of_another_team_is_lent_the_file_until_it_expires() {
    let env = env();
    let ws = Workspace::new(env.hub.clone());
    let youth = youth_of_team_a(&env);
    let (device_b, _) = env.raw_device(&env.team_b);
    let (device_a, _) = env.raw_device(&env.team_a);

    let first = asking(youth, REASON, 120);
    let resp = ask(&env, &device_b, vec![first.clone()]);
    let AccessOutcome::Granted { expires_at_ms } = resp.access[0].outcome else {
        panic!("granted: {:?}", resp.access);
    };
    assert_eq!(resp.lent.len(), 1);
    let lent = &resp.lent[0];
    assert_eq!(
        (lent.grant_id, lent.youth_id, lent.expires_at_ms),
        (first.id, youth, expires_at_ms)
    );
    assert_eq!(lent.team_name, "Binôme A");
    let kinds: Vec<_> = lent.records.iter().map(|r| r.kind.known()).collect();
    assert_eq!(
        kinds,
        vec![Some(RecordKind::Youth), Some(RecordKind::Contact)]
    );
    assert!(lent.records[0].fields.contains("Zéphyrine"));

    // A lost answer: the same request again grants nothing more.
    let again = ask(&env, &device_b, vec![first.clone()]);
    assert_eq!(
        again.access[0].outcome,
        AccessOutcome::Granted { expires_at_ms }
    );
    let owner = crate::common::signed_in_user(&env, "Coordination", Role::Coordinator, false);
    let (incoming, _) = ws.access_grants(&owner).expect("grants");
    assert_eq!(incoming.len(), 1, "one grant");
    assert!(
        incoming[0].reader.contains("tablette"),
        "{}",
        incoming[0].reader
    );

    // Refusals: another tablet reusing the id, the tablet's own team, bad reason and
    // duration, too many at once.
    let refused = |resp: &SyncResponse, i: usize| match resp.access[i].outcome {
        AccessOutcome::Refused(r) => r,
        other => panic!("refused expected: {other:?}"),
    };
    let reused = ask(&env, &device_a, vec![first.clone()]);
    assert_eq!(refused(&reused, 0), AccessRefusal::UnknownFile);
    assert!(reused.lent.is_empty());
    let own = ask(&env, &device_a, vec![asking(youth, REASON, 120)]);
    assert_eq!(refused(&own, 0), AccessRefusal::OwnTeam);
    let bad = ask(
        &env,
        &device_b,
        vec![
            asking(youth, "vite", 120),
            asking(youth, REASON, 600),
            asking(Uuid::now_v7(), REASON, 60),
        ],
    );
    assert_eq!(
        (0..3).map(|i| refused(&bad, i)).collect::<Vec<_>>(),
        vec![
            AccessRefusal::BadReason,
            AccessRefusal::BadDuration,
            AccessRefusal::UnknownFile
        ]
    );
    let many: Vec<_> = (0..21)
        .map(|_| asking(Uuid::now_v7(), REASON, 60))
        .collect();
    let too_many = ask(&env, &device_b, many);
    assert_eq!(refused(&too_many, 20), AccessRefusal::TooMany);

    // An older app is neither answered nor lent anything.
    let (old, _) = env
        .hub
        .sync_with_stats(
            &device_b,
            SyncRequest {
                access_requests: vec![asking(youth, REASON, 60)],
                ..request(0, Vec::new())
            },
            7,
        )
        .expect("v7 sync");
    assert!(old.access.is_empty() && old.lent.is_empty());

    // Expired: no longer lent.
    env.clock.advance(Duration::minutes(121));
    assert!(ask(&env, &device_b, Vec::new()).lent.is_empty());
}

#[test]
fn a_grant_ended_by_the_owning_coordination_is_no_longer_lent() {
    let env = env();
    let ws = Workspace::new(env.hub.clone());
    let youth = youth_of_team_a(&env);
    let (device_b, _) = env.raw_device(&env.team_b);
    let request = asking(youth, REASON, 480);
    assert_eq!(ask(&env, &device_b, vec![request.clone()]).lent.len(), 1);
    let owner = crate::common::signed_in_user(&env, "Coordination", Role::Coordinator, false);
    ws.end_access_grant(&owner, request.id).expect("ended");
    assert!(ask(&env, &device_b, Vec::new()).lent.is_empty());
}

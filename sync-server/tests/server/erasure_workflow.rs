//! The erasure workflow: asked by a coordinator, decided by an administrator (the
//! data-protection officer) who did not ask (four eyes), executed at once, with a receipt
//! saying which of the team's tablets applied it (confirmed by their next sync), which are
//! revoked and which have not synced since.

use repere_server::coord::erasure::TabletState;
use repere_server::coord::{Coordinator, Workspace};
use repere_server::hub::ErasureReason;
use repere_server::storage::Role;

use crate::common::{Env, env};

fn person(env: &Env, name: &str, role: Role) -> Coordinator {
    crate::common::signed_in_user(env, name, role, false)
}

fn states(ws: &Workspace, who: &Coordinator, id: uuid::Uuid) -> Vec<(String, &'static str)> {
    let receipt = ws
        .erasure_receipt(who, id)
        .expect("receipt")
        .expect("in scope");
    let mut out: Vec<_> = receipt
        .tablets
        .into_iter()
        .map(|t| {
            let state = match t.state {
                TabletState::Confirmed { .. } => "confirmed",
                TabletState::Waiting { .. } => "waiting",
                TabletState::Revoked { .. } => "revoked",
            };
            (t.label, state)
        })
        .collect();
    out.sort();
    out
}

#[test]
fn an_erasure_is_asked_decided_by_another_person_executed_and_confirmed_by_each_tablet() {
    let env = env();
    let mut one = env.tablet(&env.team_a, "une");
    let mut two = env.tablet(&env.team_a, "deux");
    let lost = env.tablet(&env.team_a, "perdue");
    let youth = one.store.create(&one.demo.youth()).expect("youth");
    one.sync_ok();
    two.sync_ok();
    env.hub.revoke_device(lost.device_id).expect("revoke");
    let ws = Workspace::new(env.hub.clone());
    ws.refresh_view().expect("view");
    let coordinator = person(&env, "Camille Coordination", Role::Coordinator);
    let dpo = person(&env, "Dominique DPO", Role::Admin);

    let asked = ws
        .request_erasure(&coordinator, youth, ErasureReason::Request)
        .expect("asked");
    assert_eq!(
        ws.request_erasure(&coordinator, youth, ErasureReason::Request)
            .expect("asked again"),
        asked,
        "one request per record waiting"
    );
    let receipt = ws
        .erasure_receipt(&coordinator, asked)
        .expect("receipt")
        .expect("there");
    assert!(receipt.item.request.decision.is_none());
    assert!(!receipt.may_decide, "a coordinator does not decide");
    assert!(ws.decide_erasure(&coordinator, asked, true).is_err());
    assert!(
        ws.erasure_receipt(&dpo, asked)
            .expect("receipt")
            .expect("there")
            .may_decide
    );

    // Four eyes: the officer cannot approve their own request.
    let other = one.store.create(&one.demo.youth()).expect("youth");
    one.sync_ok();
    ws.refresh_view().expect("view");
    let own = ws
        .request_erasure(&dpo, other, ErasureReason::Error)
        .expect("asked");
    let refused = ws.decide_erasure(&dpo, own, true).expect_err("own request");
    assert!(refused.to_string().contains("autre personne"), "{refused}");
    ws.decide_erasure(&person(&env, "Alex Admin", Role::Admin), own, false)
        .expect("refused by an administrator");
    assert!(
        env.hub
            .storage()
            .read_with(|tx| tx.document(other))
            .expect("read")
            .is_some(),
        "a refused request erases nothing"
    );

    ws.decide_erasure(&dpo, asked, true).expect("approved");
    let receipt = ws
        .erasure_receipt(&coordinator, asked)
        .expect("receipt")
        .expect("there");
    assert!(receipt.item.request.executed.is_some());
    assert_eq!(receipt.item.decided_by.as_deref(), Some("Dominique DPO"));
    assert!(
        !receipt.item.label.contains(' ') || receipt.item.label.starts_with("Fiche jeune "),
        "no name once erased: {}",
        receipt.item.label
    );
    assert!(
        env.hub
            .storage()
            .read_with(|tx| tx.tombstone(youth))
            .expect("read")
            .is_some()
    );
    assert_eq!(
        states(&ws, &coordinator, asked),
        vec![
            ("deux".to_string(), "waiting"),
            ("perdue".to_string(), "revoked"),
            ("une".to_string(), "waiting"),
        ]
    );
    one.sync_ok();
    assert!(
        one.store
            .ids()
            .expect("ids")
            .iter()
            .all(|(_, id)| *id != youth)
    );
    assert_eq!(
        states(&ws, &coordinator, asked),
        vec![
            ("deux".to_string(), "waiting"),
            ("perdue".to_string(), "revoked"),
            ("une".to_string(), "confirmed"),
        ]
    );
    two.sync_ok();
    assert_eq!(
        states(&ws, &coordinator, asked)[0],
        ("deux".to_string(), "confirmed")
    );
    assert!(
        ws.decide_erasure(&dpo, asked, false).is_err(),
        "decided once"
    );

    let (entries, _) = env
        .hub
        .storage()
        .read_with(|tx| tx.audit_entries(env.org.id, Some(youth), 0, 10))
        .expect("journal");
    let actions: Vec<&str> = entries.iter().map(|e| e.action.as_str()).collect();
    for expected in ["erasure_requested", "erasure_approved", "erase_record"] {
        assert!(actions.contains(&expected), "{expected} in {actions:?}");
    }
}

//! Revoked or lost tablets: a revocation may order the tablet to delete its store at its
//! next contact — after its unsent changes are taken, or at once when urgent — and the
//! server notes when the order was delivered. A revocation without the order leaves the
//! tablet its data (it is refused and keeps its unsent changes).

use repere_core::Error as CoreError;
use repere_server::storage::WipeOrder;

use crate::common::env;

#[test]
fn a_wipe_order_takes_the_unsent_changes_then_empties_the_store() {
    let env = env();
    let mut tablet = env.tablet(&env.team_a, "égarée");
    let synced = tablet.store.create(&tablet.demo.youth()).expect("youth");
    tablet.sync_ok();
    env.hub
        .revoke_device_with(tablet.device_id, Some(WipeOrder::AfterPush))
        .expect("revoke");
    let unsent = tablet.store.create(&tablet.demo.youth()).expect("youth");
    assert!(matches!(tablet.sync(), Err(CoreError::Wiped)));
    assert!(tablet.store.ids().expect("ids").is_empty(), "nothing left");
    assert_eq!(
        tablet.store.enrolment().expect("read"),
        None,
        "not enrolled"
    );
    for id in [synced, unsent] {
        assert!(
            env.hub
                .storage()
                .read_with(|tx| tx.document(id))
                .expect("read")
                .is_some(),
            "the server has every record, the unsent one too"
        );
    }
    let device = env
        .hub
        .storage()
        .read_with(|tx| tx.device(tablet.device_id))
        .expect("read")
        .expect("device");
    assert!(device.wipe_sent_at.is_some());
    assert!(matches!(tablet.sync(), Err(CoreError::NotEnrolled)));
}

#[test]
fn an_urgent_wipe_takes_nothing_more_and_a_plain_revocation_keeps_the_data() {
    let env = env();
    let mut stolen = env.tablet(&env.team_a, "volée");
    stolen.store.create(&stolen.demo.youth()).expect("youth");
    stolen.sync_ok();
    env.hub
        .revoke_device_with(stolen.device_id, Some(WipeOrder::Urgent))
        .expect("revoke");
    let unsent = stolen.store.create(&stolen.demo.youth()).expect("youth");
    assert!(matches!(stolen.sync(), Err(CoreError::Wiped)));
    assert!(stolen.store.ids().expect("ids").is_empty());
    assert!(
        env.hub
            .storage()
            .read_with(|tx| tx.document(unsent))
            .expect("read")
            .is_none(),
        "nothing more is taken from a stolen tablet"
    );

    let mut revoked = env.tablet(&env.team_a, "rendue");
    revoked.store.create(&revoked.demo.youth()).expect("youth");
    env.hub.revoke_device(revoked.device_id).expect("revoke");
    assert!(matches!(revoked.sync(), Err(CoreError::DeviceRevoked)));
    assert_eq!(revoked.store.ids().expect("ids").len(), 1, "its data stays");
}

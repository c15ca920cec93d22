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

#[test]
fn a_tablet_that_has_not_reached_the_server_for_30_days_locks_its_records_until_it_syncs() {
    use std::sync::{Arc, Mutex};

    use repere_core::{Store, StoreOptions};

    let env = env();
    let clock = Arc::new(crate::common::TestClock(Mutex::new(chrono::Utc::now())));
    let mut store = Store::open_with(
        env.dir.path().join("isolée.db"),
        &crate::common::KEY,
        StoreOptions {
            clock: clock.clone(),
        },
    )
    .expect("store");
    assert!(
        !store.is_locked().expect("lock"),
        "never locked before enrolment"
    );
    let transport = crate::common::HubTransport(env.hub.clone());
    store
        .enrol(
            &transport,
            "http://hub.test",
            &env.code(&env.team_a),
            "isolée",
            false,
        )
        .expect("enrol");
    let mut demo = repere_core::demo::DemoData::new(
        4,
        env.team_a.id,
        [uuid::Uuid::now_v7(), uuid::Uuid::now_v7()],
        chrono::Utc::now(),
    );
    let youth = store.create(&demo.youth()).expect("youth");
    let sync = |store: &mut Store| store.sync(&transport, &Default::default(), &mut |_| {});
    sync(&mut store).expect("sync");

    clock.advance(chrono::Duration::days(29));
    assert!(store.youth(youth).is_ok(), "29 days: still open");
    clock.advance(chrono::Duration::days(2));
    assert!(store.is_locked().expect("lock"));
    assert!(matches!(
        store.youth(youth),
        Err(CoreError::Locked { days: 30 })
    ));
    assert!(matches!(
        store.search_youth("", 10),
        Err(CoreError::Locked { .. })
    ));
    assert!(matches!(
        store.create(&demo.youth()),
        Err(CoreError::Locked { .. })
    ));
    assert!(matches!(
        store.history(youth),
        Err(CoreError::Locked { .. })
    ));
    // A sync that reaches the server unlocks.
    sync(&mut store).expect("sync while locked");
    assert!(!store.is_locked().expect("lock"));
    assert!(store.youth(youth).is_ok());

    // The app may set another period, or none.
    store.set_offline_lock_days(Some(60)).expect("set");
    clock.advance(chrono::Duration::days(40));
    assert!(!store.is_locked().expect("lock"));
    store.set_offline_lock_days(None).expect("set");
    clock.advance(chrono::Duration::days(400));
    assert!(!store.is_locked().expect("lock"));
    assert!(store.set_offline_lock_days(Some(0)).is_err());
}

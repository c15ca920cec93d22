//! A lost tablet, against the real server process: `admin revoke-device --wipe` orders it to
//! delete its store; at its next sync it sends what it had not sent, then deletes every
//! record — no byte of them is left in its store's pages (decrypted and searched).

use repere_core::Error;
use repere_tests::{Device, KEY, TestServer, pages};

const NEEDLE: &str = "Pseudo-Tapir-Perdu";

#[test]
fn a_lost_tablet_sends_its_last_changes_then_leaves_no_byte_of_its_records() {
    let server = TestServer::start();
    let team = server.setup(1)[0];
    let mut tablet = Device::enrolled(&server, team, 61);
    let mut youth = tablet.demo.youth();
    youth.alias = Some(NEEDLE.into());
    tablet.store.create(&youth).expect("youth");
    tablet.sync(&server).expect("sync");
    let mut late = tablet.demo.youth();
    late.alias = Some(format!("{NEEDLE}-Tardif"));
    let late = tablet.store.create(&late).expect("unsent youth");
    let path = tablet.dir.path().join("store.db");
    assert!(
        pages::contains(&pages::plaintext(&path, &KEY), NEEDLE),
        "control"
    );

    let device = tablet
        .store
        .enrolment()
        .expect("read")
        .expect("enrolled")
        .device_id;
    server.admin(&["revoke-device", &device.to_string(), "--wipe"]);
    let listed = server.admin(&["list-devices"]);
    assert!(listed.contains("wipe ordered"), "{listed}");

    assert!(matches!(tablet.sync(&server), Err(Error::Wiped)));
    assert!(tablet.store.ids().expect("ids").is_empty());
    assert!(
        !pages::contains(&pages::plaintext(&path, &KEY), NEEDLE),
        "no byte left"
    );
    assert!(server.admin(&["list-devices"]).contains("revoked, wiped"));

    // The record it had not sent reached the server: a fresh tablet of the team pulls it.
    let mut fresh = Device::enrolled(&server, team, 62);
    fresh.sync(&server).expect("sync");
    assert!(
        fresh
            .store
            .ids()
            .expect("ids")
            .iter()
            .any(|(_, id)| *id == late)
    );
}

/// A clock the test moves.
struct Moved(std::sync::Mutex<chrono::DateTime<chrono::Utc>>);

impl repere_core::Clock for Moved {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        *self.0.lock().expect("clock")
    }
}

#[test]
fn a_tablet_out_of_reach_for_30_days_locks_its_records_until_a_sync_gets_through() {
    use std::sync::Arc;

    let server = TestServer::start();
    let team = server.setup(1)[0];
    let dir = tempfile::tempdir().expect("dir");
    let clock = Arc::new(Moved(std::sync::Mutex::new(chrono::Utc::now())));
    let mut store = repere_core::Store::open_with(
        dir.path().join("store.db"),
        &KEY,
        repere_core::StoreOptions {
            clock: clock.clone(),
        },
    )
    .expect("store");
    let transport = repere_transport::HttpTransport::new(&server.url()).expect("transport");
    store
        .enrol(
            &transport,
            &server.url(),
            &server.code(team),
            "tablette isolée",
            false,
        )
        .expect("enrol");
    let mut demo = repere_core::demo::DemoData::new(
        63,
        team,
        [uuid::Uuid::now_v7(), uuid::Uuid::now_v7()],
        chrono::Utc::now(),
    );
    let youth = store.create(&demo.youth()).expect("youth");
    store
        .sync(&transport, &repere_tests::fast_retries(), &mut |_| {})
        .expect("sync");
    *clock.0.lock().expect("clock") += chrono::Duration::days(31);
    assert!(matches!(
        store.youth(youth),
        Err(Error::Locked { days: 30 })
    ));
    store
        .sync(&transport, &repere_tests::fast_retries(), &mut |_| {})
        .expect("a locked tablet still syncs");
    assert!(store.youth(youth).is_ok(), "unlocked by the sync");
}

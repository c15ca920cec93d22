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

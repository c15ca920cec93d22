//! Rectification without history, against the real server process (`admin rectify`): a
//! removed flag, a redacted note and a corrected alias leave no byte of the old values in
//! the server's files nor in the tablets' stores (their pages decrypted and searched), and
//! the tablets keep working on the new generation, also after restarts.

use std::path::Path;

use repere_core::records::{Contact, ProfileFlag, Youth};
use repere_tests::pages;
use repere_tests::{Device, KEY, TestServer};

/// Old values, to be gone after the rectification.
const GONE: [&str; 3] = [
    "Pseudo-Hippocampe-Ancien",
    "phrase-caviardee-mandragore",
    "disability",
];
/// Kept values, to be found before and after.
const KEPT: &str = "phrase-gardee-edelweiss";

fn server_holds(dir: &Path, needle: &str) -> bool {
    std::fs::read_dir(dir).expect("dir").any(|e| {
        let path = e.expect("entry").path();
        std::fs::read(&path).is_ok_and(|bytes| pages::contains(&bytes, needle))
    })
}

fn tablet_pages(tablet: &Device) -> Vec<u8> {
    pages::plaintext(&tablet.dir.path().join("store.db"), &KEY)
}

#[test]
fn rectified_values_leave_no_byte_on_the_server_nor_on_the_tablets() {
    let mut server = TestServer::start_plaintext_demo();
    let team = server.setup(1)[0];
    let mut one = Device::enrolled(&server, team, 41);
    let mut two = Device::enrolled(&server, team, 42);
    let mut youth = one.demo.youth();
    youth.alias = Some("Pseudo-Hippocampe-Ancien".into());
    youth.profile_flags = [ProfileFlag::Disability, ProfileFlag::CareLeaver].into();
    let youth_id = one.store.create(&youth).expect("youth");
    let mut visit = one.demo.contact(&[youth_id]);
    visit.notes = format!("{KEPT}. Puis phrase-caviardee-mandragore.");
    let visit_id = one.store.create(&visit).expect("visit");
    one.sync(&server).expect("sync");
    two.sync(&server).expect("sync");
    // The searches see the values while they are held (demo data may hold other flags).
    for needle in &GONE[..2] {
        assert!(
            server_holds(server.data.path(), needle),
            "control: {needle}"
        );
    }
    for tablet in [&one, &two] {
        let clear = tablet_pages(tablet);
        for needle in GONE.iter().chain([&KEPT]) {
            assert!(
                pages::contains(&clear, needle),
                "control on a tablet: {needle}"
            );
        }
    }

    server.admin(&[
        "rectify",
        &youth_id.to_string(),
        "--remove",
        "profile_flags=disability",
        "--set",
        "alias=Pseudo-Hippocampe",
    ]);
    server.admin(&[
        "rectify",
        &visit_id.to_string(),
        "--set",
        &format!("notes={KEPT}."),
    ]);
    for needle in &GONE[..2] {
        assert!(
            !server_holds(server.data.path(), needle),
            "server still holds {needle}"
        );
    }

    for tablet in [&mut one, &mut two] {
        let report = tablet.sync(&server).expect("sync");
        assert_eq!(report.rewritten, 2);
        let read = tablet.store.get::<Youth>(youth_id).expect("youth");
        assert_eq!(read.profile_flags, [ProfileFlag::CareLeaver].into());
        assert_eq!(read.alias.as_deref(), Some("Pseudo-Hippocampe"));
        assert_eq!(
            tablet.store.get::<Contact>(visit_id).expect("visit").notes,
            format!("{KEPT}.")
        );
        assert_eq!(tablet.store.history(youth_id).expect("history").len(), 1);
        let clear = tablet_pages(tablet);
        assert!(
            pages::contains(&clear, KEPT),
            "the search still reads the store"
        );
        for needle in GONE {
            assert!(
                !pages::contains(&clear, needle),
                "a tablet still holds {needle}"
            );
        }
    }

    // The tablets go on: an edit of the new generation goes through and reaches the other.
    one.store
        .edit::<Contact>(visit_id, |c| c.next_step = Some("Rappeler lundi".into()))
        .expect("edit");
    assert_eq!(one.sync(&server).expect("sync").rejected, 0);
    server.kill();
    server.restart();
    two.sync(&server).expect("sync after restart");
    assert_eq!(
        two.store
            .get::<Contact>(visit_id)
            .expect("visit")
            .next_step
            .as_deref(),
        Some("Rappeler lundi")
    );
    for needle in &GONE[..2] {
        assert!(
            !server_holds(server.data.path(), needle),
            "after a restart: {needle}"
        );
    }
    // Reopened, the store still holds none of it.
    let path = two.dir.path().join("store.db");
    drop(std::mem::replace(
        &mut two.store,
        repere_core::Store::open(&path, &KEY).expect("reopen"),
    ));
    let clear = tablet_pages(&two);
    for needle in GONE {
        assert!(
            !pages::contains(&clear, needle),
            "after reopening: {needle}"
        );
    }
}

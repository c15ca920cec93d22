//! Erasure removes bytes (DESIGN decision 14), against the real server process: after an
//! erasure, no byte of the erased records is left in any file of the server's data
//! directory — database, WAL, side files — neither at once nor after a restart. The proof
//! reads a plaintext (demo, no key) server's files, after checking that the same search
//! finds the values before the erasure; and a server with its key keeps nothing readable.

use std::path::Path;

use repere_core::records::{Contact, Youth};
use repere_tests::{Device, KEY, TestServer, pages};

const NEEDLES: [&str; 5] = [
    "Zéphyrine",
    "Quartzbleu",
    "0611223344",
    "phrase-distinctive-xylophone",
    "seconde-phrase-marmotte",
];

/// The needles found in any file under `dir`.
fn found_in(dir: &Path) -> Vec<(String, &'static str)> {
    let mut hits = Vec::new();
    for entry in std::fs::read_dir(dir).expect("data dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            hits.extend(found_in(&path));
            continue;
        }
        let bytes = std::fs::read(&path).expect("read file");
        for needle in NEEDLES {
            if bytes.windows(needle.len()).any(|w| w == needle.as_bytes()) {
                hits.push((path.display().to_string(), needle));
            }
        }
    }
    hits
}

/// A young person and their visit, with the needles, synced, edited, synced.
fn written(server: &TestServer, tablet: &mut Device) -> (uuid::Uuid, uuid::Uuid) {
    let mut youth = tablet.demo.youth();
    while youth.identity_level != repere_core::records::IdentityLevel::FullIdentity {
        youth = tablet.demo.youth();
    }
    youth.first_name = Some("Zéphyrine".into());
    youth.last_name = Some("Quartzbleu".into());
    youth.phone = Some("0611223344".into());
    let youth_id = tablet.store.create(&youth).expect("youth");
    let mut contact = tablet.demo.contact(&[youth_id]);
    contact.notes = "Rencontre au stade : phrase-distinctive-xylophone.".into();
    let contact_id = tablet.store.create(&contact).expect("contact");
    tablet.sync(server).expect("sync");
    tablet
        .store
        .edit::<Contact>(contact_id, |c| {
            c.notes.push_str(" Puis seconde-phrase-marmotte.");
        })
        .expect("edit");
    tablet
        .store
        .edit::<Youth>(youth_id, |y| y.alias = Some("Zéphyrine Q.".into()))
        .expect("edit youth");
    tablet.sync(server).expect("sync");
    (youth_id, contact_id)
}

#[test]
fn an_erased_record_leaves_no_byte_in_the_servers_files_even_after_a_restart() {
    let mut server = TestServer::start_plaintext_demo();
    let team = server.setup(1)[0];
    let mut tablet = Device::enrolled(&server, team, 31);
    let (youth_id, contact_id) = written(&server, &mut tablet);
    // The search sees the values while they are held (plaintext fields, the WAL).
    let before = found_in(server.data.path());
    for needle in NEEDLES {
        assert!(
            before.iter().any(|(_, n)| *n == needle),
            "the control search should find {needle} before the erasure: {before:?}"
        );
    }

    // The tablet's store, its pages decrypted (free and overwritten ones included).
    let store_path = tablet.dir.path().join("store.db");
    let on_tablet = |path: &Path| {
        let clear = pages::plaintext(path, &KEY);
        NEEDLES
            .into_iter()
            .filter(|n| pages::contains(&clear, n))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        on_tablet(&store_path),
        NEEDLES.to_vec(),
        "control on the tablet"
    );

    server.admin(&["erase", &contact_id.to_string()]);
    server.admin(&["erase", &youth_id.to_string()]);
    assert_eq!(
        found_in(server.data.path()),
        vec![],
        "right after the erasure"
    );
    tablet.sync(&server).expect("sync");
    assert!(tablet.store.ids().expect("ids").is_empty());
    assert_eq!(on_tablet(&store_path), Vec::<&str>::new(), "on the tablet");
    tablet.store = repere_core::Store::open(&store_path, &KEY).expect("reopen");
    assert_eq!(
        on_tablet(&store_path),
        Vec::<&str>::new(),
        "tablet reopened"
    );
    server.kill();
    server.restart();
    tablet.sync(&server).expect("sync after restart");
    assert_eq!(found_in(server.data.path()), vec![], "after a restart");
}

#[test]
fn a_server_with_its_key_keeps_nothing_readable_in_its_data_directory() {
    // Its files: SQLite's (PostgreSQL's disk is the operator's, docs/SCALING.md).
    let server = TestServer::start_sqlite();
    let team = server.setup(1)[0];
    let mut tablet = Device::enrolled(&server, team, 32);
    written(&server, &mut tablet);
    assert_eq!(found_in(server.data.path()), vec![]);
    let header = std::fs::read(server.data.path().join("repere.db")).expect("db");
    assert!(
        !header.starts_with(b"SQLite format 3"),
        "the database is encrypted"
    );
    let backup = server
        .keys
        .as_ref()
        .expect("key dir")
        .path()
        .join("copie.db");
    server.admin(&["backup", "--to", backup.to_str().expect("utf-8")]);
    let copy = std::fs::read(&backup).expect("backup");
    assert!(
        !copy.starts_with(b"SQLite format 3"),
        "the backup is encrypted too"
    );
    assert_eq!(found_in(backup.parent().expect("dir")), vec![]);
}

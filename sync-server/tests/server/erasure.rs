//! Erasure to the byte, in-process: with the hub's storage open (as under a running server,
//! where no connection closes to checkpoint the WAL), an erased record's values are gone
//! from every file of the data directory as soon as the erasure returns.

use std::path::Path;
use std::sync::Arc;

use repere_core::records::Youth;
use repere_server::{Hub, SqliteStorage};

use crate::common::{HubTransport, KEY};

fn holds(dir: &Path, needle: &str) -> Vec<String> {
    std::fs::read_dir(dir)
        .expect("dir")
        .filter_map(|e| {
            let path = e.expect("entry").path();
            let bytes = std::fs::read(&path).ok()?;
            bytes
                .windows(needle.len())
                .any(|w| w == needle.as_bytes())
                .then(|| path.display().to_string())
        })
        .collect()
}

#[test]
fn the_wal_keeps_no_copy_of_an_erased_record() {
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path().join("server");
    // No key: the pages can be read in clear, which is what this test needs.
    let hub = Arc::new(Hub::new(Arc::new(
        SqliteStorage::open_dir(&data, None).expect("storage"),
    )));
    let org = hub.create_organisation("ML").expect("org");
    let team = hub.create_team(org.id, "Binôme").expect("team");
    let code = hub
        .issue_code(team.id, chrono::Duration::days(1))
        .expect("code")
        .code;
    let transport = HubTransport(hub.clone());
    let mut store =
        repere_core::Store::open(dir.path().join("tablet.db"), &KEY).expect("tablet store");
    store
        .enrol(&transport, "http://hub.test", &code, "t", false)
        .expect("enrol");
    let mut demo = repere_core::demo::DemoData::new(
        5,
        team.id,
        [uuid::Uuid::now_v7(), uuid::Uuid::now_v7()],
        chrono::Utc::now(),
    );
    let mut youth = demo.youth();
    youth.alias = Some("Pseudo-Ornithorynque".into());
    let id = store.create(&youth).expect("youth");
    store
        .sync(&transport, &Default::default(), &mut |_| {})
        .expect("sync");
    store
        .edit::<Youth>(id, |y| y.alias = Some("Pseudo-Ornithorynque bis".into()))
        .expect("edit");
    store
        .sync(&transport, &Default::default(), &mut |_| {})
        .expect("sync");
    assert!(
        !holds(&data, "Ornithorynque").is_empty(),
        "the control search finds the value while it is held"
    );
    hub.erase(id).expect("erase");
    assert_eq!(holds(&data, "Ornithorynque"), Vec::<String>::new());
}

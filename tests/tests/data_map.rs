//! The DPIA data map as the real binary prints it (`repere-server admin data-map`, with no
//! data directory nor key) is the one docs/DATA-MAP.md holds; the tests of core check that it
//! covers every field of the schema.

use std::process::Command;

#[test]
fn the_printed_data_map_is_the_one_in_the_docs() {
    let out = Command::new(repere_tests::server_bin())
        .args(["admin", "data-map"])
        .env_remove("REPERE_KEY")
        .env_remove("REPERE_KEY_FILE")
        .output()
        .expect("admin data-map runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8(out.stdout).expect("utf-8");
    let docs = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/DATA-MAP.md"))
        .expect("docs/DATA-MAP.md");
    assert_eq!(
        printed, docs,
        "regenerate: cargo run -p repere-server -- admin data-map > docs/DATA-MAP.md"
    );
    for needle in [
        "profile_flags",
        "Donnée sensible",
        "notes",
        "Droit d'accès",
        "`transfers`",
        "`departures`",
        "`erasure_requests`",
    ] {
        assert!(printed.contains(needle), "{needle}");
    }
}

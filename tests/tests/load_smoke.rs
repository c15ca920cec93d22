//! The load tool's smoke run: a few tablets for a few seconds against a real server, with
//! every kind of sync, no error, and every tablet holding its team's records at the end.

use std::ffi::OsString;
use std::time::Duration;

use repere_tests::load::{self, Admin, Config};
use repere_tests::{TestServer, server_bin};

#[test]
fn ten_tablets_converge_without_errors() {
    let server = TestServer::start();
    let mut envs = Vec::new();
    if let Some(key) = server.key_file() {
        envs.push(("REPERE_KEY_FILE".to_string(), key.into_os_string()));
    }
    let admin = Admin {
        program: server_bin(),
        args: std::iter::once(OsString::from("admin"))
            .chain(server.data_args())
            .collect(),
        envs,
    };
    let mut config = Config::new(vec![server.url()], admin);
    config.tablets = 10;
    config.teams = 3;
    config.seed_records = 30;
    config.duration = Duration::from_secs(10);
    config.ramp_up = Duration::from_secs(2);
    config.sync_every = Duration::from_secs(1);
    config.visits_per_sync = 1.5;
    config.edits_per_sync = 1.0;
    config.offline_fraction = 0.3;
    config.offline_for = Duration::from_secs(3);
    config.server_pids = vec![server.pid()];
    // On PostgreSQL the size comes from /metrics only.
    if server.database.is_none() {
        config.db_files = vec![server.data.path().join("repere.db")];
    }
    config.seed = 7;

    let report = load::run(&config).expect("the load runs");
    let text = report.markdown();
    println!("{text}");
    assert_eq!(report.recorder.errors, Default::default(), "{text}");
    assert!(report.convergence.ok(), "{:?}", report.convergence);
    assert_eq!(report.convergence.tablets, 10);
    let incremental = report.latency(load::stats::Kind::Incremental);
    assert!(incremental.count > 0, "{text}");
    // Seed 7 sends 3 tablets offline, each long enough to miss a sync, back within the run.
    assert!(
        report.latency(load::stats::Kind::CatchUp).count > 0,
        "{text}"
    );
    assert!(report.recorder.pushed > 0 && report.recorder.pulled > 0);
    assert!(
        report.processes[0].peak() > 0,
        "the server's memory was sampled"
    );
    let svg = load::chart::svg(&report, 0.0);
    assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
    assert!(report.json()["convergence"]["ok"].as_bool() == Some(true));
}

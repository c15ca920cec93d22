//! Storage benchmarks: `cargo bench -p repere-server --bench storage [-- NAME]`, NAME one
//! of `group_commit`, `dashboard`, `initial_pull` (all when omitted). `initial_pull` runs
//! on PostgreSQL too when `REPERE_BENCH_DATABASE_URL` names a server (a throwaway database
//! is made on it). Under `cargo test` (no `--bench`
//! argument) a small smoke version runs instead. Figures: docs/BENCHMARKS.md.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{Datelike, NaiveDate, Utc};
use repere_core::demo::DemoData;
use repere_core::indicators::Granularity;
use repere_core::{AnyRecord, RecordKind};
use repere_server::coord::reports::{DashboardQuery, YouthExport};
use repere_server::coord::{Coordinator, Workspace, YouthQuery};
use repere_server::storage::{
    DocumentWrite, Organisation, Role, Storage, StorageError, Team, User, ViewWrite,
};
use repere_server::{Hub, SqliteStorage};
use uuid::Uuid;

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let run = |name: &str| filter.as_deref().is_none_or(|f| name.contains(f));
    if run("group_commit") {
        let (threads, each) = if full { (32, 100) } else { (4, 5) };
        for works in [1, 64] {
            // One caller alone: no batch forms, the latency is the same.
            group_commit(1, each * 4, works);
            group_commit(threads, each, works);
        }
    }
    if run("dashboard") {
        dashboard(if full { 100_000 } else { 2_000 });
    }
    if run("initial_pull") {
        let (team, others) = if full {
            (10_000, 990_000)
        } else {
            (200, 2_000)
        };
        let pg = std::env::var("REPERE_BENCH_DATABASE_URL").ok();
        for total_others in [0, others] {
            let dir = tempfile::tempdir().expect("temp dir");
            let sqlite = SqliteStorage::open_dir(dir.path(), None).expect("open");
            initial_pull("SQLite", Arc::new(sqlite), team, total_others);
            if let Some(base) = &pg {
                let db = repere_server::storage::postgres::testing::fresh_database(base)
                    .expect("a throwaway PostgreSQL database");
                let storage = repere_server::storage::postgres::PostgresStorage::connect(db.url())
                    .expect("PostgreSQL");
                initial_pull("PostgreSQL", Arc::new(storage), team, total_others);
            }
        }
    }
}

/// A fresh tablet's initial pull of its team's `team` records (real documents: young
/// people) while the database holds `others` records of 99 other teams: the pull reads
/// its team's slice of the log by index, so its cost must not grow with them. The other
/// teams' documents are one 600-byte blob each (never parsed by a pull: only their number
/// and size matter), written straight into the log.
fn initial_pull(backend: &str, storage: Arc<dyn Storage>, team: usize, others: usize) {
    use repere_core::document::{Author, RecordDoc, to_json_fields};
    use repere_core::sync::protocol::{EnrolRequest, SyncRequest};

    let hub = Hub::new(storage.clone());
    let org = hub.create_organisation("Org").expect("org");
    let teams: Vec<Team> = (0..100)
        .map(|i| {
            hub.create_team(org.id, &format!("Équipe {i}"))
                .expect("team")
        })
        .collect();
    let now = Utc::now();
    let blob = vec![7u8; 600];
    let heads = [[1u8; 32]];
    let load_started = Instant::now();
    for chunk in 0..others.div_ceil(10_000) {
        let n = 10_000.min(others - chunk * 10_000);
        storage
            .write_with(|tx| {
                for i in 0..n {
                    let team = &teams[1 + (chunk * 10_000 + i) % 99];
                    tx.put_document(DocumentWrite {
                        id: Uuid::now_v7(),
                        kind: RecordKind::Youth,
                        team_id: team.id,
                        doc: &blob,
                        heads: &heads,
                        fields: "{}",
                        device_id: None,
                        received_at: now,
                        generation: 0,
                    })?;
                }
                Ok::<_, StorageError>(())
            })
            .expect("other teams' records");
    }
    let loaded = load_started.elapsed();
    // The measured team's records: real documents, as tablets pushed them.
    let mut data = DemoData::new(1, teams[0].id, [Uuid::now_v7(), Uuid::now_v7()], now);
    let author = Author {
        device_id: Uuid::now_v7(),
        member_id: Uuid::now_v7(),
    };
    let docs: Vec<(Uuid, Vec<u8>, String)> = (0..team)
        .map(|_| {
            let youth = data.youth();
            let id = Uuid::now_v7();
            let fields = to_json_fields(&youth).expect("fields");
            let bytes = RecordDoc::create(RecordKind::Youth, id, author, &fields, now)
                .expect("document")
                .save();
            let json = AnyRecord::from(youth).to_json().expect("json").to_string();
            (id, bytes, json)
        })
        .collect();
    storage
        .write_with(|tx| {
            for (id, bytes, fields) in &docs {
                tx.put_document(DocumentWrite {
                    id: *id,
                    kind: RecordKind::Youth,
                    team_id: teams[0].id,
                    doc: bytes,
                    heads: &heads,
                    fields,
                    device_id: None,
                    received_at: now,
                    generation: 0,
                })?;
            }
            Ok::<_, StorageError>(())
        })
        .expect("the team's records");
    let mut times = Vec::new();
    for _ in 0..3 {
        let code = hub
            .issue_code(teams[0].id, chrono::Duration::hours(1))
            .expect("code");
        let token = hub
            .enrol(EnrolRequest {
                code: code.code,
                device_label: "bench".into(),
                writer: None,
                previous_token: None,
            })
            .expect("enrol")
            .token;
        let device = hub.authenticate(&token).expect("device");
        let started = Instant::now();
        let (mut cursor, mut pulled) = (0, 0);
        loop {
            let answer = hub
                .sync(
                    &device,
                    SyncRequest {
                        cursor,
                        pushes: Vec::new(),
                        pull_limit: repere_server::hub::MAX_PULL_LIMIT,
                        team: Default::default(),
                        report: Default::default(),
                        access_requests: Vec::new(),
                    },
                )
                .expect("pull");
            pulled += answer.docs.len();
            cursor = answer.cursor;
            if !answer.more {
                break;
            }
        }
        assert_eq!(pulled, team, "the whole team, nothing else");
        times.push(started.elapsed());
    }
    times.sort();
    let median = times[1].as_secs_f64();
    println!(
        "initial_pull {backend}: {team} records of one team among {} in the database: \
         median {:.0} ms, {:.0} records/s (target ≥ 20,000; others loaded in {:.1} s)",
        team + others,
        median * 1e3,
        team as f64 / median,
        loaded.as_secs_f64()
    );
}

/// The dashboard of an organisation of four teams holding `records` records (young people,
/// their visits, actions and outcomes, in the demo's proportions), written straight into
/// the coordinators' view as the view refresh would.
fn dashboard(records: usize) {
    let dir = tempfile::tempdir().expect("temp dir");
    let storage = Arc::new(SqliteStorage::open_dir(dir.path(), None).expect("open"));
    let hub = Arc::new(Hub::new(storage.clone()));
    let workspace = Workspace::new(Arc::clone(&hub));
    let now = Utc::now();
    let organisation = Organisation {
        id: Uuid::now_v7(),
        name: "Org".into(),
        created_at: now,
    };
    let teams: Vec<Team> = (0..4)
        .map(|i| Team {
            id: Uuid::now_v7(),
            organisation_id: organisation.id,
            name: format!("Équipe {i}"),
            created_at: now,
        })
        .collect();
    let user = User {
        id: Uuid::now_v7(),
        organisation_id: organisation.id,
        name: "Coordination".into(),
        role: Role::Coordinator,
        created_at: now,
    };
    let mut rows: Vec<ViewWrite> = Vec::with_capacity(records);
    let mut n = 0;
    'fill: loop {
        for (t, team) in teams.iter().enumerate() {
            let mut data = DemoData::new(
                t as u64 + 10 * n as u64,
                team.id,
                [Uuid::now_v7(), Uuid::now_v7()],
                now,
            );
            for _ in 0..100 {
                let youth_id = Uuid::now_v7();
                rows.push(view_row(youth_id, team.id, data.youth().into()));
                for _ in 0..1 + n % 3 {
                    rows.push(view_row(
                        Uuid::now_v7(),
                        team.id,
                        data.contact(&[youth_id]).into(),
                    ));
                }
                if n % 3 == 0 {
                    rows.push(view_row(
                        Uuid::now_v7(),
                        team.id,
                        data.action(youth_id).into(),
                    ));
                }
                if n % 5 == 0 {
                    rows.push(view_row(
                        Uuid::now_v7(),
                        team.id,
                        data.outcome(youth_id).into(),
                    ));
                }
                n += 1;
                if rows.len() >= records {
                    break 'fill;
                }
            }
        }
    }
    let youth = rows
        .iter()
        .filter(|r| r.record.kind == RecordKind::Youth)
        .count();
    (&*storage as &dyn Storage)
        .write_with(|tx| {
            tx.insert_organisation(&organisation)?;
            for team in &teams {
                tx.insert_team(team)?;
            }
            tx.insert_user(&user)?;
            for row in &rows {
                tx.put_view(row)?;
            }
            Ok::<_, StorageError>(())
        })
        .expect("view rows");
    let started = Instant::now();
    workspace.refresh_view().expect("summaries");
    println!(
        "dashboard: {} records ({youth} young people): summaries computed in {:.1} s",
        rows.len(),
        started.elapsed().as_secs_f64()
    );
    let who = Coordinator {
        user,
        organisation,
        teams,
        second_factor: false,
    };
    let today = now.date_naive();
    let query = DashboardQuery {
        from: NaiveDate::from_ymd_opt(today.year() - 1, 1, 1).unwrap_or(today),
        to: today,
        granularity: Granularity::Month,
        dimension: None,
        team: None,
    };
    let mut times = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let dashboard = workspace.dashboard(&who, &query).expect("dashboard");
        times.push(started.elapsed());
        assert!(dashboard.totals.identified + dashboard.totals.helped > 0);
    }
    report("dashboard: by month since last January 1st", times);
    let mut times = Vec::new();
    for page in [1, 2, 500] {
        let started = Instant::now();
        let list = workspace
            .youth_list(
                &who,
                &YouthQuery {
                    team: None,
                    status: None,
                    search: None,
                    page,
                },
            )
            .expect("youth list");
        times.push(started.elapsed());
        assert_eq!(list.total, youth as u64);
    }
    report("dashboard: a page of the youth list", times);
    let started = Instant::now();
    let export = workspace
        .youth_csv(&who, &YouthExport::default())
        .expect("export");
    assert_eq!(export.rows, youth);
    println!(
        "dashboard: the pseudonymised youth export ({} rows): {:.0} ms",
        export.rows,
        started.elapsed().as_secs_f64() * 1e3
    );
}

fn report(what: &str, mut times: Vec<Duration>) {
    times.sort();
    println!(
        "{what}: median {:.0} ms (best {:.0} ms, target ≤ 500 ms)",
        times[times.len() / 2].as_secs_f64() * 1e3,
        times[0].as_secs_f64() * 1e3
    );
}

/// A record's view row, as the view refresh derives it from the record's document.
fn view_row(id: Uuid, team_id: Uuid, record: AnyRecord) -> ViewWrite {
    repere_server::coord::view::view_write(&record, id, team_id, 0, Utc::now()).expect("json")
}

/// `threads` callers each writing `each` small documents, one `write` per document (a
/// sync request's transaction), with at most `works` works per commit.
fn group_commit(threads: usize, each: usize, works: usize) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut storage = SqliteStorage::open_dir(dir.path(), None).expect("open");
    storage.set_group_limits(works, Duration::from_millis(5));
    let team = Uuid::now_v7();
    let now = Utc::now();
    (&storage as &dyn Storage)
        .write_with(|tx| {
            let org = Uuid::now_v7();
            tx.insert_organisation(&Organisation {
                id: org,
                name: "Org".into(),
                created_at: now,
            })?;
            tx.insert_team(&Team {
                id: team,
                organisation_id: org,
                name: "Team".into(),
                created_at: now,
            })
        })
        .expect("team");
    let storage = Arc::new(storage);
    let doc = vec![7u8; 600];
    let started = Instant::now();
    let writers: Vec<_> = (0..threads)
        .map(|_| {
            let (storage, doc) = (Arc::clone(&storage), doc.clone());
            std::thread::spawn(move || {
                for _ in 0..each {
                    (&*storage as &dyn Storage)
                        .write_with(|tx| {
                            tx.put_document(DocumentWrite {
                                id: Uuid::now_v7(),
                                kind: RecordKind::Contact,
                                team_id: team,
                                doc: &doc,
                                heads: &[[1; 32]],
                                fields: "{}",
                                device_id: None,
                                received_at: Utc::now(),
                                generation: 0,
                            })?;
                            Ok::<_, StorageError>(())
                        })
                        .expect("write");
                }
            })
        })
        .collect();
    for w in writers {
        w.join().expect("writer");
    }
    let took = started.elapsed();
    let writes = threads * each;
    println!(
        "group_commit: {threads} threads × {each} writes, at most {works} per commit: \
         {:.0} writes/s, {:.2} ms per write and caller ({:.1} s)",
        writes as f64 / took.as_secs_f64(),
        took.as_secs_f64() * 1e3 * threads as f64 / writes as f64,
        took.as_secs_f64()
    );
}

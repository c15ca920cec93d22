//! Observability (issue 12): `/metrics` counted by real syncs and refused to whoever may not
//! read it, `/healthz` over the real database and its write lock, and the JSON log lines
//! of a real server process; the consortium's figures for an administrator and for a
//! coordinator.

use std::io::Read as _;
use std::net::IpAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::Utc;
use repere_core::demo::DemoData;
use repere_core::sync::protocol::{self, SyncRequest, SyncResponse};
use repere_server::Storage as _;
use repere_server::http::{HttpConfig, MetricsConfig};
use repere_server::web::PagesConfig;
use uuid::Uuid;

use crate::common::{env, push, server_key, sqlite_env};
use crate::http::start;

/// The value of one series (name with its labels, exactly as written).
fn value(text: &str, series: &str) -> f64 {
    let prefix = format!("{series} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no series {series} in:\n{text}"))
        .parse()
        .expect("a number")
}

fn sync_request(pushes: Vec<protocol::PushDoc>) -> Vec<u8> {
    protocol::encode(&SyncRequest {
        cursor: 0,
        pushes,
        pull_limit: 100,
        team: Default::default(),
        report: Default::default(),
        access_requests: Vec::new(),
    })
}

#[test]
fn metrics_count_syncs_records_rejections_latency_and_silent_tablets() {
    let env = env();
    let server = start(env.hub.clone(), HttpConfig::default());
    let client = reqwest::blocking::Client::new();
    let url = |path: &str| format!("{}{path}", server.base);
    let (_, token) = env.raw_device(&env.team_a);
    let mut demo = DemoData::new(
        5,
        env.team_a.id,
        [Uuid::now_v7(), Uuid::now_v7()],
        Utc::now(),
    );
    let mine = demo.youth();
    let mut foreign = demo.youth();
    foreign.team_id = env.team_b.id;

    // One record stored, one rejected as out of scope: the sync itself goes through.
    let resp = client
        .post(url("/v1/sync"))
        .bearer_auth(&token)
        .body(sync_request(vec![
            push(Uuid::now_v7(), &mine),
            push(Uuid::now_v7(), &foreign),
        ]))
        .send()
        .expect("sync");
    assert_eq!(resp.status().as_u16(), 200);
    let answer: SyncResponse =
        protocol::decode_response(&resp.bytes().expect("body")).expect("answer");
    assert_eq!((answer.acks.len(), answer.rejections.len()), (1, 1));
    // A second device pulls the stored record.
    let (_, other) = env.raw_device(&env.team_a);
    let resp = client
        .post(url("/v1/sync"))
        .bearer_auth(&other)
        .body(sync_request(vec![]))
        .send()
        .expect("sync");
    assert_eq!(resp.status().as_u16(), 200);
    // A sync refused as a whole, and a page.
    let resp = client
        .post(url("/v1/sync"))
        .bearer_auth("not-a-token")
        .body(sync_request(vec![]))
        .send()
        .expect("sync");
    assert_eq!(resp.status().as_u16(), 401);
    let resp = client.get(url("/connexion")).send().expect("page");
    assert_eq!(resp.status().as_u16(), 200);

    let resp = client.get(url("/metrics")).send().expect("metrics");
    assert_eq!(resp.status().as_u16(), 200);
    assert!(
        resp.headers()[reqwest::header::CONTENT_TYPE]
            .to_str()
            .expect("type")
            .starts_with("text/plain; version=0.0.4")
    );
    let text = resp.text().expect("text");
    assert_eq!(
        value(&text, r#"repere_sync_requests_total{outcome="ok"}"#),
        2.0
    );
    assert_eq!(
        value(&text, r#"repere_sync_requests_total{outcome="rejected"}"#),
        1.0
    );
    assert_eq!(
        value(&text, r#"repere_sync_requests_total{outcome="error"}"#),
        0.0
    );
    assert_eq!(
        value(&text, r#"repere_refusals_total{code="unauthorized"}"#),
        1.0
    );
    assert_eq!(value(&text, "repere_records_pushed_total"), 2.0);
    assert_eq!(value(&text, "repere_records_pulled_total"), 1.0);
    assert_eq!(
        value(
            &text,
            r#"repere_records_rejected_total{code="out_of_scope"}"#
        ),
        1.0
    );
    assert_eq!(
        value(&text, r#"repere_records_rejected_total{code="invalid"}"#),
        0.0
    );
    assert_eq!(
        value(
            &text,
            r#"repere_http_request_duration_seconds_count{group="sync"}"#
        ),
        3.0
    );
    assert_eq!(
        value(
            &text,
            r#"repere_http_request_duration_seconds_bucket{group="sync",le="+Inf"}"#
        ),
        3.0
    );
    assert_eq!(
        value(
            &text,
            r#"repere_http_request_duration_seconds_count{group="pages"}"#
        ),
        1.0
    );
    assert!(value(&text, "repere_database_size_bytes") > 4096.0);
    assert_eq!(value(&text, r#"repere_tablets_silent{days="7"}"#), 0.0);
    // No team, organisation or device in any label.
    for needle in [
        env.team_a.id.to_string(),
        env.team_a.name.clone(),
        env.org.name.clone(),
        env.org.id.to_string(),
    ] {
        assert!(!text.contains(&needle), "{needle} in the metrics");
    }

    // Eight days on, both tablets are silent; one that syncs again is not.
    env.clock.advance(chrono::Duration::days(8));
    let text = client
        .get(url("/metrics"))
        .send()
        .expect("metrics")
        .text()
        .expect("text");
    assert_eq!(value(&text, r#"repere_tablets_silent{days="7"}"#), 2.0);
    let resp = client
        .post(url("/v1/sync"))
        .bearer_auth(&other)
        .body(sync_request(vec![]))
        .send()
        .expect("sync");
    assert_eq!(resp.status().as_u16(), 200);
    let text = client
        .get(url("/metrics"))
        .send()
        .expect("metrics")
        .text()
        .expect("text");
    assert_eq!(value(&text, r#"repere_tablets_silent{days="7"}"#), 1.0);
}

/// Status, content type and body, to compare a refusal with an unknown address.
fn answer(resp: reqwest::blocking::Response) -> (u16, String, String) {
    let status = resp.status().as_u16();
    let kind = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .map(|v| v.to_str().expect("type").to_string())
        .unwrap_or_default();
    (status, kind, resp.text().expect("body"))
}

#[test]
fn metrics_are_refused_like_an_unknown_address_without_the_token_or_from_elsewhere() {
    let env = env();
    let client = reqwest::blocking::Client::new();
    let config = HttpConfig {
        metrics: MetricsConfig {
            token: Some("jeton-de-supervision".into()),
            ..MetricsConfig::default()
        },
        ..HttpConfig::default()
    };
    let server = start(env.hub.clone(), config);
    let url = |path: &str| format!("{}{path}", server.base);
    let unknown = answer(client.get(url("/nulle-part")).send().expect("unknown"));
    assert_eq!(unknown.0, 404);
    // With a token, loopback is not enough.
    let refusals = [
        client.get(url("/metrics")).send(),
        client
            .get(url("/metrics"))
            .bearer_auth("jeton-de-supervisio")
            .send(),
        client
            .get(url("/metrics"))
            .bearer_auth("jeton-de-supervision-et-plus")
            .send(),
        client
            .post(url("/metrics"))
            .bearer_auth("jeton-de-supervision")
            .send(),
    ];
    for refused in refusals {
        assert_eq!(answer(refused.expect("metrics")), unknown);
    }
    let resp = client
        .get(url("/metrics"))
        .bearer_auth("jeton-de-supervision")
        .send()
        .expect("metrics");
    assert_eq!(resp.status().as_u16(), 200);
    assert!(
        resp.text()
            .expect("text")
            .contains("repere_sync_requests_total")
    );
    drop(server);

    // Without a token, behind a reverse proxy on loopback: only a client the proxy says
    // is on loopback.
    let proxy: IpAddr = "127.0.0.1".parse().expect("ip");
    let config = HttpConfig {
        pages: PagesConfig {
            trusted_proxy: Some(proxy),
            ..PagesConfig::default()
        },
        ..HttpConfig::default()
    };
    let server = start(env.hub.clone(), config);
    let url = |path: &str| format!("{}{path}", server.base);
    let unknown = answer(client.get(url("/nulle-part")).send().expect("unknown"));
    let from_afar = client
        .get(url("/metrics"))
        .header("x-forwarded-for", "203.0.113.9")
        .send()
        .expect("metrics");
    assert_eq!(answer(from_afar), unknown);
    // A client cannot claim loopback: the proxy's own entry is the last one.
    let forged = client
        .get(url("/metrics"))
        .header("x-forwarded-for", "127.0.0.1, 203.0.113.9")
        .send()
        .expect("metrics");
    assert_eq!(answer(forged), unknown);
    let unsaid = client.get(url("/metrics")).send().expect("metrics");
    assert_eq!(answer(unsaid), unknown);
    let local = client
        .get(url("/metrics"))
        .header("x-forwarded-for", "127.0.0.1")
        .send()
        .expect("metrics");
    assert_eq!(local.status().as_u16(), 200);
}

#[test]
fn health_is_503_while_the_write_lock_is_held_here_or_in_the_file_and_200_once_released() {
    let env = sqlite_env();
    let within = Duration::from_secs(1);
    let config = HttpConfig {
        health_lock_timeout: within,
        ..HttpConfig::default()
    };
    let server = start(env.hub.clone(), config);
    let client = reqwest::blocking::Client::new();
    let health = || {
        let resp = client
            .get(format!("{}/healthz", server.base))
            .send()
            .expect("healthz");
        (resp.status().as_u16(), resp.text().expect("text"))
    };
    assert_eq!(health(), (200, "ok".to_string()));

    // A write transaction that does not end (a request stuck in the database).
    let (held_tx, held) = std::sync::mpsc::channel();
    let (release, released) = std::sync::mpsc::channel::<()>();
    let hub = env.hub.clone();
    let writer = std::thread::spawn(move || {
        hub.storage()
            .write(&mut |_tx| {
                held_tx.send(()).expect("held");
                let _ = released.recv();
                Ok(())
            })
            .expect("write");
    });
    held.recv().expect("lock held");
    // Probes at once share one check: they all wait for it, no longer.
    let started = Instant::now();
    let answers = std::thread::scope(|scope| {
        let running: Vec<_> = (0..4).map(|_| scope.spawn(health)).collect();
        running
            .into_iter()
            .map(|p| p.join().expect("probe"))
            .collect::<Vec<_>>()
    });
    for (status, reason) in answers {
        assert_eq!(status, 503);
        assert_eq!(reason, "database write lock held too long");
    }
    assert!(started.elapsed() >= within);
    assert!(started.elapsed() < within * 3, "{:?}", started.elapsed());
    release.send(()).expect("release");
    writer.join().expect("writer");
    assert_eq!(health(), (200, "ok".to_string()));

    // The same in the file: another process's write transaction (an admin command opens
    // the data directory the same way).
    let other =
        repere_server::SqliteStorage::open_dir(&env.dir.path().join("server"), Some(&server_key()))
            .expect("second opening");
    let (held_tx, held) = std::sync::mpsc::channel();
    let (release, released) = std::sync::mpsc::channel::<()>();
    let writer = std::thread::spawn(move || {
        other
            .write(&mut |_tx| {
                held_tx.send(()).expect("held");
                let _ = released.recv();
                Ok(())
            })
            .expect("write");
    });
    held.recv().expect("lock held");
    let (status, reason) = health();
    assert_eq!(status, 503);
    assert_eq!(reason, "database write lock held too long");
    release.send(()).expect("release");
    writer.join().expect("writer");
    assert_eq!(health(), (200, "ok".to_string()));
}

/// A free loopback port (taken and given back; the server binds it right after).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

fn json_lines(stderr: &str) -> Vec<serde_json::Value> {
    stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
            assert!(v.is_object(), "not an object: {l}");
            assert!(v["timestamp"].is_string() && v["level"].is_string(), "{l}");
            v
        })
        .collect()
}

#[test]
fn a_server_started_with_log_format_json_writes_json_lines_only() {
    let dir = tempfile::tempdir().expect("dir");
    let port = free_port();
    let logs = dir.path().join("stderr.log");
    let password = "mot-de-passe-des-journaux";
    let args = |log: &std::path::Path| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_repere-server"));
        c.args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(dir.path().join("data"))
        .args([
            "--demo",
            "--demo-password",
            password,
            "--insecure-http",
            "--log-format",
            "json",
        ])
        .env_remove("REPERE_KEY")
        .env_remove("REPERE_KEY_FILE")
        .env_remove("REPERE_METRICS_TOKEN")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).expect("log file"));
        c
    };
    let mut child = args(&logs).spawn().expect("server starts");
    let client = reqwest::blocking::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let up = client
            .get(format!("{base}/healthz"))
            .send()
            .is_ok_and(|r| r.status().is_success());
        if up {
            break;
        }
        if child.try_wait().expect("wait").is_some() {
            let stderr = std::fs::read_to_string(&logs).unwrap_or_default();
            panic!("the server stopped before answering /healthz:\n{stderr}");
        }
        assert!(Instant::now() < deadline, "server did not answer /healthz");
        std::thread::sleep(Duration::from_millis(100));
    }
    // A refused sync, and a second server on the same data directory, which stops on an
    // error.
    let resp = client
        .post(format!("{base}/v1/sync"))
        .bearer_auth("not-a-token")
        .body(sync_request(vec![]))
        .send()
        .expect("sync");
    assert_eq!(resp.status().as_u16(), 401);
    let second_logs = dir.path().join("second.log");
    let second = args(&second_logs).status().expect("second server");
    assert!(!second.success());
    let stopped = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(stopped.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().expect("wait").is_none() {
        assert!(Instant::now() < deadline, "server did not stop");
        std::thread::sleep(Duration::from_millis(100));
    }

    let mut stderr = String::new();
    std::fs::File::open(&logs)
        .expect("log")
        .read_to_string(&mut stderr)
        .expect("read");
    let lines = json_lines(&stderr);
    let message = |v: &serde_json::Value| v["message"].as_str().unwrap_or_default().to_string();
    assert!(
        lines
            .iter()
            .any(|v| message(v) == "repere-server listening" && v["address"].is_string()),
        "{stderr}"
    );
    assert!(
        lines
            .iter()
            .any(|v| v["level"] == "WARN" && message(v).contains("--insecure-http")),
        "{stderr}"
    );
    assert!(
        lines.iter().any(|v| message(v) == "repere-server stopped"),
        "{stderr}"
    );
    assert!(!stderr.contains(password));
    let second = std::fs::read_to_string(&second_logs).expect("second log");
    let second = json_lines(&second);
    assert!(
        second.iter().any(|v| v["level"] == "ERROR"
            && v["error"]
                .as_str()
                .is_some_and(|e| e.contains("another repere-server"))),
        "{second:?}"
    );
}

/// The number in the element with this `data-testid` after `from` in `html`.
fn number_after(html: &str, from: &str, testid: &str) -> u32 {
    let start = html.find(from).unwrap_or_else(|| panic!("no {from}"));
    let marker = format!(r#"data-testid="{testid}">"#);
    let at = html[start..]
        .find(&marker)
        .unwrap_or_else(|| panic!("no {testid} after {from}"))
        + start
        + marker.len();
    html[at..]
        .split('<')
        .next()
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("{testid} is not a number"))
}

const FIGURE_IDS: [&str; 6] = [
    "identified",
    "helped",
    "mobilised",
    "chantier_participants",
    "youth_with_outcome",
    "outcomes",
];

#[test]
fn the_consortium_figures_show_every_organisation_to_an_administrator_and_their_own_to_a_coordinator()
 {
    use crate::coord::{Browser, PASSWORD, coordinator, other_organisation, server, visit};
    use repere_server::storage::Role;

    let env = env();
    coordinator(&env, "camille@ml.test");
    let admin = env
        .hub
        .create_user_with_login(env.org.id, "Alex Admin", Role::Admin, Some("alex@ml.test"))
        .expect("admin");
    env.hub
        .set_password(admin.id, PASSWORD, None)
        .expect("password");
    let (other_team, other_login) = other_organisation(&env);
    let other_org = other_team.organisation_id;
    let mut ours = env.tablet(&env.team_a, "ours");
    visit(&mut ours);
    visit(&mut ours);
    let mut theirs = env.tablet(&other_team, "theirs");
    visit(&mut theirs);
    let server = server(&env);
    let row = |org: Uuid| format!(r#"data-organisation-id="{org}""#);

    // The administrator: one row per organisation of the server, and their total.
    let mut alex = Browser::new(&server);
    alex.signed_in("alex@ml.test", PASSWORD);
    assert!(
        alex.get("/tableau-de-bord")
            .body
            .contains(r#"data-testid="consortium-link""#)
    );
    let page = alex.get("/tableau-de-bord/consortium");
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Autre association") && page.body.contains("Mission Locale test"));
    // Each young person with a visit in the period is identified or helped.
    let met = |html: &str, org: Uuid| {
        number_after(html, &row(org), "org-identified")
            + number_after(html, &row(org), "org-helped")
    };
    assert_eq!(met(&page.body, env.org.id), 2);
    assert_eq!(met(&page.body, other_org), 1);
    for id in FIGURE_IDS {
        assert_eq!(
            number_after(&page.body, "consortium-total", &format!("consortium-{id}")),
            number_after(&page.body, &row(env.org.id), &format!("org-{id}"))
                + number_after(&page.body, &row(other_org), &format!("org-{id}")),
            "{id}"
        );
    }

    // Each organisation's row holds what its coordinators' dashboard shows; a coordinator's
    // consortium page holds their organisation alone.
    for (login, org, other) in [
        ("camille@ml.test", env.org.id, other_org),
        (other_login.as_str(), other_org, env.org.id),
    ] {
        let mut browser = Browser::new(&server);
        browser.signed_in(login, PASSWORD);
        let dashboard = browser.get("/tableau-de-bord");
        assert!(!dashboard.body.contains(r#"data-testid="consortium-link""#));
        for id in FIGURE_IDS {
            assert_eq!(
                number_after(&dashboard.body, "totals", &format!("total-{id}")),
                number_after(&page.body, &row(org), &format!("org-{id}")),
                "{login}: {id}"
            );
        }
        let own = browser.get("/tableau-de-bord/consortium");
        assert_eq!(own.status, 200);
        assert!(own.body.contains(&row(org)));
        assert!(!own.body.contains(&row(other)) && !own.body.contains(&other.to_string()));
        assert!(!own.body.contains(r#"data-testid="consortium-total""#));
        assert_eq!(
            own.body.matches(r#"data-testid="consortium-row""#).count(),
            1
        );
    }

    // The period: a wrong date or an end before the start is said (400); a period before
    // the visits counts nothing.
    let bad = alex.get("/tableau-de-bord/consortium?du=hier");
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains(r#"data-testid="consortium-error""#));
    let reversed = alex.get("/tableau-de-bord/consortium?du=2024-05-01&au=2024-04-01");
    assert_eq!(reversed.status, 400);
    let before = alex.get("/tableau-de-bord/consortium?du=2020-01-01&au=2020-12-31");
    assert_eq!(before.status, 200);
    assert_eq!(
        met(&before.body, env.org.id) + met(&before.body, other_org),
        0
    );
}

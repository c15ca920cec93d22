//! Coordinator accounts: the sign-in throttle (stored in the database, counted before the
//! check), the trusted proxy's forwarded address, session lifetimes, disabled users and
//! revoked sessions (hub and `repere-server admin`), the second factor (TOTP, recovery
//! codes) at sign-in and for the export with names, and spreadsheet-safe CSV.

use std::net::IpAddr;
use std::process::Command;
use std::sync::{Arc, Barrier};

use chrono::Duration;
use repere_core::Clock;
use repere_server::coord::auth::CHALLENGE_TTL;
use repere_server::coord::reports::YouthExport;
use repere_server::coord::throttle::{
    LOGIN_WINDOW, MAX_ATTEMPTS_PER_ACCOUNT, MAX_ATTEMPTS_PER_ADDRESS,
};
use repere_server::coord::{LoginError, SessionPolicy, SignedIn, Workspace, totp};
use repere_server::http::HttpConfig;
use repere_server::storage::AuditEntry;
use repere_server::web::PagesConfig;
use repere_server::{Hub, HubError, SqliteStorage};
use uuid::Uuid;

use crate::common::{Env, env, sqlite_env};
use crate::coord::{Browser, PASSWORD, coordinator, csrf, parse_csv, server};
use crate::http::start;

const LOGIN: &str = "camille@ml.test";

/// Every audit line of the environment's organisation, oldest first.
fn journal(env: &Env) -> Vec<AuditEntry> {
    let (mut entries, _) = env
        .hub
        .storage()
        .read_with(|tx| Ok::<_, HubError>(tx.audit_entries(env.org.id, None, 0, 100_000)?))
        .expect("journal");
    entries.reverse();
    entries
}

fn count(env: &Env, action: &str) -> usize {
    journal(env).iter().filter(|e| e.action == action).count()
}

/// RFC 4648 base32 (spaces ignored), as a person copies the secret from the page.
fn base32_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = Vec::new();
    let mut buffer: u32 = 0;
    let mut bits = 0;
    for c in text.bytes().filter(|c| !c.is_ascii_whitespace()) {
        let value = ALPHABET
            .iter()
            .position(|a| *a == c)
            .unwrap_or_else(|| panic!("{c} is not base32"));
        buffer = (buffer << 5) | value as u32;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    out
}

fn unescape(html: &str) -> String {
    html.replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// The text of every element with this `data-testid` (up to its first child tag).
fn testid_texts(html: &str, testid: &str) -> Vec<String> {
    let marker = format!(r#"data-testid="{testid}""#);
    html.match_indices(&marker)
        .map(|(at, _)| {
            let rest = &html[at..];
            let start = rest.find('>').expect("end of tag") + 1;
            let text = rest[start..].split('<').next().expect("text");
            unescape(text.trim())
        })
        .collect()
}

fn testid_text(html: &str, testid: &str) -> String {
    testid_texts(html, testid)
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no {testid} in {html}"))
}

fn code(secret: &[u8], step: u64) -> String {
    totp::code_of_step(secret, step, totp::DIGITS)
}

fn step_now(env: &Env) -> u64 {
    totp::step_at(env.clock.now()).expect("step")
}

/// A 6-digit code that no step around now has.
fn wrong_code(env: &Env, secret: &[u8]) -> String {
    let step = step_now(env);
    let valid: Vec<String> = (step - 1..=step + 1).map(|s| code(secret, s)).collect();
    (0..1000)
        .map(|n| format!("{:06}", 100_000 + n))
        .find(|c| !valid.contains(c))
        .expect("a wrong code")
}

/// Sets up the second factor through the pages in the browser's session: returns the
/// secret (read as a person would from the page) and the recovery codes shown.
pub(crate) fn enable_second_factor(
    env: &Env,
    browser: &mut Browser,
    token: &str,
) -> (Vec<u8>, Vec<String>) {
    let started = browser.post("/compte/double-authentification", &[("csrf", token)]);
    assert_eq!(started.status, 303, "{}", started.body);
    assert_eq!(
        started.location.as_deref(),
        Some("/compte/double-authentification")
    );
    let setup = browser.get("/compte/double-authentification");
    assert_eq!(setup.status, 200);
    let secret = base32_decode(&testid_text(&setup.body, "totp-secret"));
    assert_eq!(secret.len(), totp::SECRET_BYTES);
    let done = browser.post(
        "/compte/double-authentification/confirmer",
        &[
            ("csrf", token),
            ("code", &totp::code_at(&secret, env.clock.now())),
        ],
    );
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(done.body.contains(r#"data-testid="second-factor-enabled""#));
    let codes = testid_texts(&done.body, "recovery-code");
    (secret, codes)
}

/// Sets up the second factor through the workspace: the secret.
fn enable_second_factor_in(env: &Env, ws: &Workspace, signed: &SignedIn) -> Vec<u8> {
    let setup = ws
        .start_totp_setup(&signed.coordinator)
        .expect("setup starts");
    let secret = base32_decode(&setup.secret);
    ws.confirm_totp_setup(
        &signed.coordinator,
        &signed.token,
        &totp::code_at(&secret, env.clock.now()),
    )
    .expect("confirmed");
    secret
}

fn reopened(env: &Env) -> Workspace {
    let storage = SqliteStorage::open_dir(
        &env.dir.path().join("server"),
        Some(&crate::common::server_key()),
    )
    .expect("reopen");
    Workspace::new(Arc::new(Hub::with_clock(
        Arc::new(storage),
        env.clock.clone(),
    )))
}

#[test]
fn concurrent_wrong_passwords_cannot_exceed_the_account_limit_and_a_restart_forgets_nothing() {
    let env = sqlite_env();
    coordinator(&env, LOGIN);
    let ws = Arc::new(Workspace::new(env.hub.clone()));
    let limit = MAX_ATTEMPTS_PER_ACCOUNT as usize;

    // A success forgets this login's failures from this address.
    let office: IpAddr = [192, 0, 2, 10].into();
    for _ in 0..limit - 1 {
        assert!(matches!(
            ws.login(office, LOGIN, "pas le bon mot de passe"),
            Err(LoginError::Invalid)
        ));
    }
    ws.login(office, LOGIN, PASSWORD).expect("signs in");

    // Three times the limit at once, each from its own address: the account limit holds
    // across addresses, and only the limit's worth reach the password check.
    let n = 3 * limit;
    let barrier = Arc::new(Barrier::new(n));
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let ws = ws.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let ip = IpAddr::from([10, 0, 0, i as u8 + 1]);
                barrier.wait();
                ws.login(ip, LOGIN, "encore un mauvais mot de passe")
            })
        })
        .collect();
    let results: Vec<_> = handles
        .into_iter()
        .map(|h| h.join().expect("thread"))
        .collect();
    let refused = |r: &&Result<SignedIn, LoginError>| matches!(r, Err(LoginError::Invalid));
    let throttled = |r: &&Result<SignedIn, LoginError>| matches!(r, Err(LoginError::RateLimited));
    assert_eq!(results.iter().filter(refused).count(), limit);
    assert_eq!(results.iter().filter(throttled).count(), n - limit);
    assert_eq!(count(&env, "login_failure"), 2 * limit - 1);
    assert_eq!(
        count(&env, "login_rate_limited"),
        1,
        "one audit line for the throttled window, not one per request"
    );

    // Only the admitted attempts are stored, under keyed hashes of the login (one) and of
    // the addresses (one each), never in clear.
    let db = rusqlite::Connection::open(env.dir.path().join("server").join("repere.db"))
        .expect("database");
    db.execute_batch(&format!(
        "PRAGMA key = \"x'{}'\";",
        crate::common::SERVER_KEY_HEX
    ))
    .expect("key");
    let keys: Vec<(Vec<u8>, Vec<u8>)> = db
        .prepare("SELECT account_key, address_key FROM login_attempts")
        .expect("query")
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("rows")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert_eq!(keys.len(), limit);
    assert!(keys.iter().all(|(a, b)| a.len() == 32 && b.len() == 32));
    let accounts: std::collections::BTreeSet<_> = keys.iter().map(|k| &k.0).collect();
    let addresses: std::collections::BTreeSet<_> = keys.iter().map(|k| &k.1).collect();
    assert_eq!(accounts.len(), 1);
    assert_eq!(addresses.len(), limit);
    drop(db);

    // Even the right password, from yet another address, waits for the window.
    let elsewhere: IpAddr = [198, 51, 100, 1].into();
    assert!(matches!(
        ws.login(elsewhere, LOGIN, PASSWORD),
        Err(LoginError::RateLimited)
    ));
    // The counts are in the database: a restarted server still refuses.
    let restarted = reopened(&env);
    assert!(matches!(
        restarted.login(elsewhere, LOGIN, PASSWORD),
        Err(LoginError::RateLimited)
    ));
    assert_eq!(count(&env, "login_rate_limited"), 1);
    // Once the window has passed, the password works again.
    env.clock.advance(LOGIN_WINDOW + Duration::seconds(1));
    restarted
        .login(elsewhere, LOGIN, PASSWORD)
        .expect("signs in after the window");
}

#[test]
fn the_address_limit_counts_every_login_and_holds_no_other_address_up() {
    let env = env();
    coordinator(&env, LOGIN);
    let ws = Workspace::new(env.hub.clone());
    let here: IpAddr = [192, 0, 2, 1].into();
    for i in 0..MAX_ATTEMPTS_PER_ADDRESS {
        assert!(matches!(
            ws.login(
                here,
                &format!("inconnu{i}@ml.test"),
                "un mot de passe au hasard"
            ),
            Err(LoginError::Invalid)
        ));
    }
    // Whatever the login, even a right password, from this address: refused.
    for login in [LOGIN, "encore-un@ml.test"] {
        let pw = if login == LOGIN { PASSWORD } else { "faux" };
        assert!(matches!(
            ws.login(here, login, pw),
            Err(LoginError::RateLimited)
        ));
    }
    // The same /64 of IPv6 is one address; another address is not held up.
    let v6a: IpAddr = "2001:db8:5:6::1".parse().expect("ip");
    let v6b: IpAddr = "2001:db8:5:6::2".parse().expect("ip");
    for i in 0..MAX_ATTEMPTS_PER_ADDRESS {
        let ip = if i % 2 == 0 { v6a } else { v6b };
        let _ = ws.login(ip, &format!("v6-{i}@ml.test"), "faux mot de passe");
    }
    assert!(matches!(
        ws.login(v6b, LOGIN, PASSWORD),
        Err(LoginError::RateLimited)
    ));
    ws.login([192, 0, 2, 2].into(), LOGIN, PASSWORD)
        .expect("another address signs in");
    // One audit line per throttled window and address (about the known login here).
    assert_eq!(count(&env, "login_rate_limited"), 2);
    assert!(
        journal(&env)
            .iter()
            .filter(|e| e.action == "login_rate_limited")
            .all(|e| e.detail == "limite par adresse")
    );
    // A new window, a new line.
    env.clock.advance(LOGIN_WINDOW + Duration::seconds(1));
    ws.login(here, LOGIN, PASSWORD).expect("the window is over");
    for i in 0..MAX_ATTEMPTS_PER_ADDRESS {
        let _ = ws.login(here, &format!("re{i}@ml.test"), "faux mot de passe");
    }
    assert!(matches!(
        ws.login(here, LOGIN, PASSWORD),
        Err(LoginError::RateLimited)
    ));
    assert_eq!(count(&env, "login_rate_limited"), 3);
}

#[test]
fn forwarded_addresses_count_only_from_the_trusted_proxy() {
    let env = env();
    coordinator(&env, LOGIN);
    let proxied = start(
        env.hub.clone(),
        HttpConfig {
            pages: PagesConfig {
                trusted_proxy: Some([127, 0, 0, 1].into()),
                ..PagesConfig::default()
            },
            ..HttpConfig::default()
        },
    );
    let mut client = Browser::new(&proxied);
    client.forwarded_for = Some("198.51.100.7".into());
    for i in 0..MAX_ATTEMPTS_PER_ADDRESS {
        let page = client.login(&format!("x{i}@ml.test"), "faux mot de passe");
        assert_eq!(page.status, 401);
    }
    assert_eq!(client.login(LOGIN, PASSWORD).status, 429);
    // The client cannot step aside by putting an address of its own first: the proxy's
    // own entry is the last one.
    client.forwarded_for = Some("203.0.113.9, 198.51.100.7".into());
    assert_eq!(client.login(LOGIN, PASSWORD).status, 429);
    // Another client behind the same proxy signs in.
    let mut neighbour = Browser::new(&proxied);
    neighbour.forwarded_for = Some("198.51.100.8".into());
    let page = neighbour.login(LOGIN, PASSWORD);
    assert_eq!(page.status, 303);
    assert_eq!(page.location.as_deref(), Some("/visites"));

    // Without --trusted-proxy the header is ignored: every request counts for the
    // connection's own address.
    let env = crate::common::env();
    coordinator(&env, LOGIN);
    let direct = server(&env);
    let mut client = Browser::new(&direct);
    for i in 0..MAX_ATTEMPTS_PER_ADDRESS {
        client.forwarded_for = Some(format!("198.51.100.{}", i + 1));
        let page = client.login(&format!("y{i}@ml.test"), "faux mot de passe");
        assert_eq!(page.status, 401);
    }
    client.forwarded_for = Some("203.0.113.200".into());
    let limited = client.login(LOGIN, PASSWORD);
    assert_eq!(limited.status, 429);
    assert!(limited.body.contains(r#"data-testid="login-rate-limited""#));
}

#[test]
fn configured_session_lifetimes_apply() {
    let env = env();
    coordinator(&env, LOGIN);
    let server = start(
        env.hub.clone(),
        HttpConfig {
            pages: PagesConfig {
                sessions: SessionPolicy {
                    idle: Duration::minutes(30),
                    lifetime: Duration::hours(1),
                },
                ..PagesConfig::default()
            },
            ..HttpConfig::default()
        },
    );
    let mut browser = Browser::new(&server);
    browser.signed_in(LOGIN, PASSWORD);
    for _ in 0..2 {
        env.clock.advance(Duration::minutes(29));
        assert_eq!(browser.get("/visites").status, 200);
    }
    env.clock.advance(Duration::minutes(2));
    assert_eq!(browser.get("/visites").status, 303, "one hour in all");
    browser.signed_in(LOGIN, PASSWORD);
    env.clock.advance(Duration::minutes(30));
    assert_eq!(browser.get("/visites").status, 303, "30 idle minutes");
}

#[test]
fn disabled_users_cannot_sign_in_and_revoked_sessions_end() {
    let env = env();
    let id = coordinator(&env, LOGIN);
    let server = server(&env);
    let mut a = Browser::new(&server);
    let mut b = Browser::new(&server);
    a.signed_in(LOGIN, PASSWORD);
    b.signed_in(LOGIN, PASSWORD);

    assert_eq!(env.hub.revoke_sessions(id).expect("revoke"), 2);
    for browser in [&mut a, &mut b] {
        let page = browser.get("/visites");
        assert_eq!(page.status, 303);
        assert_eq!(page.location.as_deref(), Some("/connexion"));
    }

    a.signed_in(LOGIN, PASSWORD);
    assert_eq!(env.hub.disable_user(id).expect("disable"), 1);
    assert!(env.hub.is_disabled(id).expect("state"));
    assert_eq!(a.get("/visites").status, 303, "the session ended");
    let refused = a.login(LOGIN, PASSWORD);
    assert_eq!(refused.status, 401, "the right password is refused");
    assert!(
        refused
            .body
            .contains("Identifiant ou mot de passe incorrect")
    );
    assert!(!a.cookies.contains_key("__Host-repere_session"));

    env.hub.enable_user(id).expect("enable");
    a.signed_in(LOGIN, PASSWORD);
    let lines = journal(&env);
    for action in ["sessions_revoked", "user_disabled", "user_enabled"] {
        let line = lines
            .iter()
            .find(|e| e.action == action)
            .unwrap_or_else(|| panic!("{action} audited"));
        assert_eq!(line.target_id, Some(id));
        assert_eq!(
            line.user_id, None,
            "done by an administrator, not a session"
        );
    }
    assert!(
        lines
            .iter()
            .any(|e| e.action == "login_failure" && e.detail == "compte désactivé")
    );
    let page = a.get("/journal");
    assert!(page.body.contains("Compte désactivé (administrateur)"));
}

#[test]
fn admin_commands_disable_enable_revoke_and_reset_by_login_or_id() {
    let env = sqlite_env();
    let id = coordinator(&env, LOGIN);
    let data = env.dir.path().join("server");
    let admin = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_repere-server"))
            .arg("admin")
            .arg("--data-dir")
            .arg(&data)
            .args(args)
            .env("REPERE_KEY", crate::common::SERVER_KEY_HEX)
            .output()
            .expect("repere-server runs");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).trim().to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let server = server(&env);
    let mut browser = Browser::new(&server);
    browser.signed_in(LOGIN, PASSWORD);

    let (ok, out, err) = admin(&["revoke-sessions", "--user", LOGIN]);
    assert!(ok, "{err}");
    assert_eq!(out, id.to_string());
    assert!(err.contains("1 session(s) ended"), "{err}");
    assert_eq!(browser.get("/visites").status, 303);

    browser.signed_in(LOGIN, PASSWORD);
    let (ok, _, err) = admin(&["disable-user", "--user", &id.to_string()]);
    assert!(ok, "{err}");
    assert_eq!(browser.get("/visites").status, 303);
    assert_eq!(browser.login(LOGIN, PASSWORD).status, 401);
    let (ok, _, err) = admin(&["enable-user", "--user", LOGIN]);
    assert!(ok, "{err}");
    let token = browser.signed_in(LOGIN, PASSWORD);

    // A lost phone: the second factor is removed and the sessions end.
    enable_second_factor(&env, &mut browser, &token);
    let (ok, _, err) = admin(&["reset-second-factor", "--user", LOGIN]);
    assert!(ok, "{err}");
    assert_eq!(browser.get("/visites").status, 303);
    let page = browser.login(LOGIN, PASSWORD);
    assert_eq!(
        page.location.as_deref(),
        Some("/visites"),
        "the password alone again"
    );

    let (ok, _, err) = admin(&["disable-user", "--user", "personne@ml.test"]);
    assert!(!ok);
    assert!(err.contains("no user with this id or login"), "{err}");
    assert!(!err.contains("personne"), "the typed login is not echoed");
}

#[test]
fn a_second_factor_set_up_from_the_pages_is_asked_at_every_sign_in() {
    let env = env();
    coordinator(&env, LOGIN);
    let server = server(&env);
    let mut earlier = Browser::new(&server);
    earlier.signed_in(LOGIN, PASSWORD);
    let mut browser = Browser::new(&server);
    let token = browser.signed_in(LOGIN, PASSWORD);

    let account = browser.get("/compte");
    assert_eq!(account.status, 200);
    assert!(account.body.contains(r#"data-enabled="no""#));
    let started = browser.post("/compte/double-authentification", &[("csrf", &token)]);
    assert_eq!(started.status, 303);
    let setup = browser.get("/compte/double-authentification");
    let shown = testid_text(&setup.body, "totp-secret");
    let secret = base32_decode(&shown);
    assert_eq!(secret.len(), 20, "160-bit secret");
    let uri = testid_text(&setup.body, "totp-uri");
    assert_eq!(
        uri,
        format!(
            "otpauth://totp/Rep%C3%A8re:camille%40ml.test?secret={}&issuer=Rep%C3%A8re\
             &algorithm=SHA1&digits=6&period=30",
            shown.replace(' ', "")
        )
    );
    // Not on until a code of it is given.
    let wrong = browser.post(
        "/compte/double-authentification/confirmer",
        &[("csrf", &token), ("code", &wrong_code(&env, &secret))],
    );
    assert_eq!(wrong.status, 400);
    assert!(wrong.body.contains(r#"data-testid="totp-error""#));
    assert!(browser.get("/compte").body.contains(r#"data-enabled="no""#));
    let step = step_now(&env);
    let done = browser.post(
        "/compte/double-authentification/confirmer",
        &[("csrf", &token), ("code", &code(&secret, step))],
    );
    assert_eq!(done.status, 200);
    let recovery = testid_texts(&done.body, "recovery-code");
    assert_eq!(recovery.len(), 10);
    assert_eq!(
        recovery
            .iter()
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        10
    );
    for c in &recovery {
        assert!(repere_server::secret::normalize_code(c).is_some(), "{c}");
    }
    // The session that set it up goes on; the one opened with the password alone ended.
    assert_eq!(browser.get("/visites").status, 200);
    assert_eq!(earlier.get("/visites").status, 303);
    let account = browser.get("/compte");
    assert!(account.body.contains(r#"data-enabled="yes""#));
    assert!(account.body.contains(r#"data-count="10""#));
    // Starting again is refused while it is on.
    let again = browser.post("/compte/double-authentification", &[("csrf", &token)]);
    assert_eq!(
        again.location.as_deref(),
        Some("/compte?erreur=deja-active")
    );

    // Signing in again: the password alone gives no session.
    assert_eq!(
        browser.post("/deconnexion", &[("csrf", &token)]).status,
        303
    );
    let first = browser.login(LOGIN, PASSWORD);
    assert_eq!(first.status, 303);
    assert_eq!(first.location.as_deref(), Some("/connexion/code"));
    assert!(!browser.cookies.contains_key("__Host-repere_session"));
    assert!(browser.cookies.contains_key("__Host-repere_challenge"));
    assert_eq!(browser.get("/visites").status, 303);
    let form = browser.get("/connexion/code");
    assert_eq!(form.status, 200);
    assert!(form.body.contains(r#"data-testid="second-factor-form""#));
    let t = csrf(&form.body);
    let bad = browser.post(
        "/connexion/code",
        &[("csrf", &t), ("code", &wrong_code(&env, &secret))],
    );
    assert_eq!(bad.status, 401);
    assert!(bad.body.contains(r#"data-testid="second-factor-error""#));
    // The code that confirmed the setup was used: not again.
    let t = csrf(&bad.body);
    let replay = browser.post(
        "/connexion/code",
        &[("csrf", &t), ("code", &code(&secret, step))],
    );
    assert_eq!(replay.status, 401);
    // The next one is accepted (one step of clock drift each way).
    let t = csrf(&replay.body);
    let next = code(&secret, step + 1);
    let signed = browser.post("/connexion/code", &[("csrf", &t), ("code", &next)]);
    assert_eq!(signed.status, 303);
    assert_eq!(signed.location.as_deref(), Some("/visites"));
    assert!(!browser.cookies.contains_key("__Host-repere_challenge"));
    assert_eq!(browser.get("/visites").status, 200);

    // Another browser replaying that code: refused.
    let mut other = Browser::new(&server);
    assert_eq!(
        other.login(LOGIN, PASSWORD).location.as_deref(),
        Some("/connexion/code")
    );
    let t = csrf(&other.get("/connexion/code").body);
    assert_eq!(
        other
            .post("/connexion/code", &[("csrf", &t), ("code", &next)])
            .status,
        401
    );
    // A recovery code works once (as typed on paper: lower case, no dashes).
    let typed = recovery[3].replace('-', "").to_lowercase();
    let t = csrf(&other.get("/connexion/code").body);
    let by_recovery = other.post("/connexion/code", &[("csrf", &t), ("code", &typed)]);
    assert_eq!(by_recovery.status, 303);
    let mut third = Browser::new(&server);
    third.login(LOGIN, PASSWORD);
    let t = csrf(&third.get("/connexion/code").body);
    assert_eq!(
        third
            .post("/connexion/code", &[("csrf", &t), ("code", &recovery[3])])
            .status,
        401,
        "a recovery code is used up"
    );
    assert!(other.get("/compte").body.contains(r#"data-count="9""#));

    // The journal tells how each sign-in went, without secrets or codes.
    let lines = journal(&env);
    let details: Vec<&str> = lines
        .iter()
        .filter(|e| e.action == "login_success")
        .map(|e| e.detail.as_str())
        .collect();
    assert!(details.contains(&"avec double authentification"));
    assert!(details.contains(&"avec un code de secours"));
    assert_eq!(count(&env, "second_factor_enabled"), 1);
    let page = browser.get("/journal").body;
    assert!(!page.contains(&recovery[3]));
    assert!(!page.contains(&shown));
}

#[test]
fn second_factor_codes_are_throttled_like_passwords_and_the_step_expires() {
    let env = env();
    coordinator(&env, LOGIN);
    let ws = Workspace::new(env.hub.clone());
    let ip: IpAddr = [192, 0, 2, 50].into();
    let signed = ws.login(ip, LOGIN, PASSWORD).expect("password alone, once");
    let secret = enable_second_factor_in(&env, &ws, &signed);

    // Five minutes to give the code.
    let Err(LoginError::NeedsSecondFactor(challenge)) = ws.login(ip, LOGIN, PASSWORD) else {
        panic!("the password alone is not enough any more");
    };
    assert!(challenge.token.len() >= 43);
    env.clock.advance(CHALLENGE_TTL + Duration::seconds(1));
    assert!(matches!(
        ws.login_second_factor(
            ip,
            &challenge.token,
            &totp::code_at(&secret, env.clock.now())
        ),
        Err(LoginError::Expired)
    ));
    assert!(matches!(
        ws.login_second_factor(ip, "pas-un-jeton", "123456"),
        Err(LoginError::Expired)
    ));

    // Each code is an attempt of the account, counted before it is checked: with the
    // two passwords above still pending, the limit leaves this many wrong codes.
    let Err(LoginError::NeedsSecondFactor(challenge)) = ws.login(ip, LOGIN, PASSWORD) else {
        panic!("second factor asked");
    };
    let mut wrong = 0;
    loop {
        match ws.login_second_factor(ip, &challenge.token, &wrong_code(&env, &secret)) {
            Err(LoginError::Invalid) => wrong += 1,
            Err(LoginError::RateLimited) => break,
            other => panic!("unexpected {:?}", other.map(|s| s.coordinator.user.id)),
        }
        assert!(wrong <= MAX_ATTEMPTS_PER_ACCOUNT, "never throttled");
    }
    assert_eq!(wrong, MAX_ATTEMPTS_PER_ACCOUNT - 2);
    let right = totp::code_at(&secret, env.clock.now());
    assert!(matches!(
        ws.login_second_factor(ip, &challenge.token, &right),
        Err(LoginError::RateLimited)
    ));
    // After the window, with a new challenge, the code signs in with the second factor.
    env.clock.advance(LOGIN_WINDOW + Duration::seconds(1));
    let Err(LoginError::NeedsSecondFactor(challenge)) = ws.login(ip, LOGIN, PASSWORD) else {
        panic!("second factor asked");
    };
    let signed = ws
        .login_second_factor(
            ip,
            &challenge.token,
            &totp::code_at(&secret, env.clock.now()),
        )
        .expect("signs in");
    assert!(signed.coordinator.second_factor);
    // The challenge is spent.
    assert!(matches!(
        ws.login_second_factor(ip, &challenge.token, &right),
        Err(LoginError::Expired)
    ));
}

#[test]
fn the_export_with_names_needs_a_second_factor_in_the_session() {
    let env = env();
    coordinator(&env, LOGIN);
    let mut tablet = env.tablet(&env.team_a, "noms");
    crate::coord::named_youth(&mut tablet, 3);
    let server = server(&env);
    let mut browser = Browser::new(&server);
    let token = browser.signed_in(LOGIN, PASSWORD);

    let exports = browser.get("/exports");
    assert!(
        exports
            .body
            .contains(r#"data-testid="export-names-need-second-factor""#)
    );
    assert!(exports.body.contains("disabled"));
    let refused = browser.post(
        "/exports/jeunes.csv",
        &[("csrf", &token), ("avec_noms", "oui")],
    );
    assert_eq!(refused.status, 403);
    assert!(
        refused
            .body
            .contains(r#"data-testid="second-factor-required""#)
    );
    assert!(refused.body.contains(r#"href="/compte""#));
    assert!(!refused.body.contains("Zéphyrine"));
    assert_eq!(count(&env, "export_youth_named_refused"), 1);
    assert_eq!(count(&env, "export_youth_named"), 0);
    // The pseudonymised export is unaffected.
    assert_eq!(browser.get("/exports/jeunes.csv").status, 200);
    // In the workspace too, whatever the pages do.
    let ws = Workspace::new(env.hub.clone());
    let who = ws
        .login([127, 0, 0, 1].into(), LOGIN, PASSWORD)
        .expect("login")
        .coordinator;
    assert!(matches!(
        ws.youth_csv(
            &who,
            &YouthExport {
                names: true,
                ..YouthExport::default()
            }
        ),
        Err(HubError::Unauthorized)
    ));

    enable_second_factor(&env, &mut browser, &token);
    let exports = browser.get("/exports");
    assert!(
        !exports
            .body
            .contains(r#"data-testid="export-names-need-second-factor""#)
    );
    let named = browser.post(
        "/exports/jeunes.csv",
        &[("csrf", &token), ("avec_noms", "oui")],
    );
    assert_eq!(named.status, 200);
    assert!(named.body.contains("Zéphyrine"));
    assert_eq!(count(&env, "export_youth_named"), 1);
}

#[test]
fn csv_cells_a_spreadsheet_would_run_are_neutralised() {
    let env = env();
    coordinator(&env, LOGIN);
    let team = env
        .hub
        .create_team(env.org.id, "=Équipe piégée")
        .expect("team");
    let mut tablet = env.tablet(&team, "piege");
    let mut youth = tablet.demo.youth();
    youth.first_name = Some("=HYPERLINK(\"http://exemple.invalid\",\"clic\")".into());
    youth.last_name = Some("+33 6 12 34 56 78".into());
    youth.alias = Some("@SUM(1+1)".into());
    let risky = tablet.store.create(&youth).expect("youth");
    let mut plain = tablet.demo.youth();
    plain.first_name = Some("Léa".into());
    plain.last_name = Some("-Dupont".into());
    plain.alias = Some("Lou".into());
    let other = tablet.store.create(&plain).expect("youth");
    let contact = tablet.demo.contact(&[risky, other]);
    tablet.store.create(&contact).expect("contact");
    tablet.sync_ok();

    let server = server(&env);
    let mut browser = Browser::new(&server);
    let token = browser.signed_in(LOGIN, PASSWORD);
    enable_second_factor(&env, &mut browser, &token);
    let named = browser.post(
        "/exports/jeunes.csv",
        &[("csrf", &token), ("avec_noms", "oui")],
    );
    assert_eq!(named.status, 200);
    let rows = parse_csv(&named.body);
    let column = |name: &str| rows[0].iter().position(|c| c == name).expect(name);
    let row = |id: Uuid| {
        rows.iter()
            .find(|r| r[column("id")] == id.to_string())
            .expect("row")
    };
    let r = row(risky);
    assert_eq!(
        r[column("first_name")],
        "'=HYPERLINK(\"http://exemple.invalid\",\"clic\")"
    );
    assert_eq!(r[column("last_name")], "'+33 6 12 34 56 78");
    assert_eq!(r[column("alias")], "'@SUM(1+1)");
    assert_eq!(r[column("team")], "'=Équipe piégée");
    let p = row(other);
    assert_eq!(p[column("first_name")], "Léa", "other cells are unchanged");
    assert_eq!(p[column("last_name")], "'-Dupont");
    let formula = |cell: &String| cell.starts_with(['=', '+', '-', '@', '\t', '\r']);
    for export in [
        named.body.as_str(),
        &browser.get("/exports/jeunes.csv").body,
    ] {
        let rows = parse_csv(export);
        assert!(rows.iter().flatten().all(|c| !formula(c)), "{export}");
    }
    // The indicators by team carry the team's name, neutralised too.
    let today = chrono::Utc::now().date_naive();
    let from = today - Duration::days(800);
    let indicators = browser.get(&format!(
        "/exports/indicateurs.csv?du={from}&au={today}&granularite=whole&dimension=team"
    ));
    let rows = parse_csv(&indicators.body);
    assert!(rows.iter().any(|r| r[5] == "'=Équipe piégée"), "{rows:?}");
    assert!(rows.iter().flatten().all(|c| !formula(c)));
}

//! Every form of the coordinators' pages under arbitrary bodies (issue 9: the login form
//! and the others are read by axum's `Form` and then by our handlers): random fields and
//! values, the real field names with odd values, broken percent-encoding, invalid UTF-8,
//! other content types, with and without the session's CSRF token. Each answer is a
//! refusal or an ordinary page, never a server error, and the server keeps serving.
//! `REPERE_SOAK` runs many more cases.

use proptest::prelude::*;
use uuid::Uuid;

use crate::common::env;
use crate::coord::{Browser, PASSWORD, coordinator, server, visit};

/// The names the pages' forms use, so that random bodies reach the handlers' own checks.
const FIELDS: &[&str] = &[
    "csrf",
    "login",
    "password",
    "code",
    "reason",
    "question",
    "answer",
    "field",
    "value",
    "choice",
    "youth_id",
    "scope",
    "note",
    "new_password",
    "current_password",
];

#[derive(Debug, Clone)]
enum Body {
    /// `name=value` pairs, percent-encoded as a browser would.
    Pairs(Vec<(String, String)>),
    /// Bytes as they come: broken escapes, invalid UTF-8, no `=`.
    Raw(Vec<u8>),
}

fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => proptest::sample::select(FIELDS).prop_map(str::to_string),
        1 => ".{0,12}",
    ]
}

fn field_value() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,40}",
        Just(String::new()),
        Just(Uuid::nil().to_string()),
        Just("=cmd|' /C calc'!A0".to_string()),
        (1..20_000usize).prop_map(|n| "é".repeat(n)),
        Just("%00\u{0}\u{202e}<script>".to_string()),
    ]
}

fn body() -> impl Strategy<Value = Body> {
    prop_oneof![
        4 => proptest::collection::vec((field_name(), field_value()), 0..8).prop_map(Body::Pairs),
        1 => proptest::collection::vec(any::<u8>(), 0..300).prop_map(Body::Raw),
    ]
}

/// A route of the pages that takes a form; `{id}` becomes one of `ids`.
const ROUTES: &[&str] = &[
    "/connexion",
    "/connexion/code",
    "/deconnexion",
    "/visites/{id}/approuver",
    "/visites/{id}/question",
    "/visites/{id}/signaler",
    "/questions/{id}/cloturer",
    "/fiches/{id}/conflit",
    "/effacements",
    "/effacements/{id}/approuver",
    "/effacements/{id}/refuser",
    "/compte",
];

fn encode(pairs: &[(String, String)]) -> Vec<u8> {
    let enc = |s: &str| -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                    (b as char).to_string()
                }
                b' ' => "+".to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
        .into_bytes()
}

#[test]
fn no_form_body_makes_the_pages_fail_or_stop() {
    let env = env();
    coordinator(&env, "camille@ml.test");
    let mut tablet = env.tablet(&env.team_a, "binome-a");
    let (youth_id, contact_id) = visit(&mut tablet);
    let server = server(&env);
    let mut browser = Browser::new(&server);
    let token = browser.signed_in("camille@ml.test", PASSWORD);
    let ids = [
        contact_id.to_string(),
        youth_id.to_string(),
        Uuid::now_v7().to_string(),
        "pas-un-identifiant".to_string(),
        "%FF%00".to_string(),
    ];
    // The sign-in forms carry their own token (and cookie), not the session's.
    let mut signing_in = Browser::new(&server);
    let login_token = crate::coord::csrf(&signing_in.get("/connexion").body);
    let cookie_header = |b: &Browser| {
        b.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    };
    let (session_cookies, login_cookies) = (cookie_header(&browser), cookie_header(&signing_in));
    // A connection per request: a refusal sent before the body was read may close its
    // connection, and a kept-alive one could be reused just as it closes.
    let client = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(0)
        .build()
        .expect("client");

    let cases = std::env::var("REPERE_SOAK").map_or(256, |_| 5000);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases,
        ..ProptestConfig::default()
    });
    // Mostly well-formed requests with the right token and cookies, so that most cases get
    // past the token checks into the handlers.
    let likely = || proptest::bool::weighted(0.8);
    let case = (
        proptest::sample::select(ROUTES),
        0..ids.len(),
        body(),
        likely(),
        prop_oneof![
            4 => Just("application/x-www-form-urlencoded"),
            1 => Just("application/json"),
            1 => Just(""),
        ],
        likely(),
    );
    runner
        .run(
            &case,
            |(route, id, body, with_token, content_type, with_cookies)| {
                let (form_token, cookies) = match route.starts_with("/connexion") {
                    true => (&login_token, &login_cookies),
                    false => (&token, &session_cookies),
                };
                let bytes = match body {
                    Body::Pairs(mut pairs) => {
                        if with_token {
                            pairs.insert(0, ("csrf".into(), form_token.clone()));
                        }
                        encode(&pairs)
                    }
                    Body::Raw(bytes) => bytes,
                };
                let url = format!("{}{}", server.base, route.replace("{id}", &ids[id]));
                let mut request = client.post(url).body(bytes);
                if !content_type.is_empty() {
                    request = request.header(reqwest::header::CONTENT_TYPE, content_type);
                }
                if with_cookies {
                    request = request.header(reqwest::header::COOKIE, cookies.as_str());
                }
                let status = request
                    .send()
                    .map_err(|e| TestCaseError::fail(format!("{route}: no answer ({e})")))?
                    .status();
                prop_assert!(!status.is_server_error(), "{route} answered {status}");
                Ok(())
            },
        )
        .expect("no server error");

    // Still serving, and the session still works (unless a random body signed it out).
    let page = browser.get("/visites");
    assert!(matches!(page.status, 200 | 303), "{}", page.status);
    assert_eq!(browser.get("/healthz").status, 200);
}

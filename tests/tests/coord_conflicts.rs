//! A conflict resolved on the coordinators' pages, end to end: two tablets make it through
//! the real server process, a coordinator resolves it over HTTP (sign-in, CSRF, form), and
//! a tablet's next sync brings the chosen value with no conflict left, its unsent edit of
//! another field kept.

use std::collections::HashMap;

use repere_core::SyncState;
use repere_core::records::Youth;
use repere_tests::{Device, TestServer, raw_request, status_of};
use uuid::Uuid;

const PASSWORD: &str = "un mot de passe assez long";

/// A browser without JavaScript over raw HTTP/1.1: cookies kept, no redirect followed.
struct Pages {
    port: u16,
    cookies: HashMap<String, String>,
}

struct Answer {
    status: u16,
    location: Option<String>,
    body: String,
}

fn encode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn csrf(html: &str) -> String {
    let marker = r#"name="csrf" value=""#;
    let start = html.find(marker).expect("a CSRF field") + marker.len();
    html[start..].split('"').next().expect("token").to_string()
}

impl Pages {
    fn request(&mut self, method: &str, path: &str, form: Option<&[(&str, &str)]>) -> Answer {
        let body = form.map_or_else(String::new, |f| {
            f.iter()
                .map(|(k, v)| format!("{k}={}", encode(v)))
                .collect::<Vec<_>>()
                .join("&")
        });
        let cookies = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let raw = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nCookie: {cookies}\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let answer = raw_request(self.port, raw.as_bytes()).expect("the server answers");
        let (head, body) = answer.split_once("\r\n\r\n").expect("headers");
        let mut location = None;
        for line in head.lines().skip(1) {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            match name.to_ascii_lowercase().as_str() {
                "location" => location = Some(value.to_string()),
                "set-cookie" => {
                    let (pair, attrs) = value.split_once(';').unwrap_or((value, ""));
                    let (k, v) = pair.split_once('=').expect("name=value");
                    if v.is_empty() || attrs.contains("Max-Age=0") {
                        self.cookies.remove(k);
                    } else {
                        self.cookies.insert(k.to_string(), v.to_string());
                    }
                }
                _ => {}
            }
        }
        Answer {
            status: status_of(&answer),
            location,
            body: body.to_string(),
        }
    }

    /// Signs in; returns the session's CSRF token.
    fn sign_in(port: u16, login: &str) -> (Pages, String) {
        let mut pages = Pages {
            port,
            cookies: HashMap::new(),
        };
        let form = pages.request("GET", "/connexion", None);
        assert_eq!(form.status, 200);
        let token = csrf(&form.body);
        let signed = pages.request(
            "POST",
            "/connexion",
            Some(&[("csrf", &token), ("login", login), ("password", PASSWORD)]),
        );
        assert_eq!(signed.status, 303, "{}", signed.body);
        let visits = pages.request("GET", "/visites", None);
        assert_eq!(visits.status, 200);
        let token = csrf(&visits.body);
        (pages, token)
    }
}

#[test]
fn a_conflict_resolved_on_the_pages_reaches_the_tablets() {
    let server = TestServer::start_with(&["--insecure-http"]);
    let org = server.admin(&["create-org", "--name", "Organisation de test"]);
    let team = Uuid::parse_str(&server.admin(&["create-team", "--org", &org, "--name", "Binôme"]))
        .expect("team id");
    let coordinator = server.coordinator(&org, "camille@ml.test", PASSWORD);
    let mut a = Device::enrolled(&server, team, 1);
    let mut b = Device::enrolled(&server, team, 2);
    let youth = a.demo.youth();
    let id = a.store.create(&youth).expect("youth");
    a.sync(&server).expect("sync");
    b.sync(&server).expect("sync");

    // The same field edited offline on both tablets.
    a.store
        .edit::<Youth>(id, |y| y.alias = Some("Kéké".into()))
        .expect("edit");
    b.store
        .edit::<Youth>(id, |y| y.alias = Some("Kiki".into()))
        .expect("edit");
    a.sync(&server).expect("sync");
    b.sync(&server).expect("sync");
    assert_eq!(b.store.conflicts(id).expect("conflicts").len(), 1);

    // Tablet A edits another field and does not sync yet.
    a.store
        .edit::<Youth>(id, |y| y.referral_detail = Some("Vu au city stade".into()))
        .expect("edit");

    let (mut pages, token) = Pages::sign_in(server.port, "camille@ml.test");
    let page = pages.request("GET", &format!("/jeunes/{id}"), None);
    assert_eq!(page.status, 200);
    assert!(page.body.contains(r#"data-field="alias""#));
    assert!(page.body.contains("Kéké") && page.body.contains("Kiki"));
    let done = pages.request(
        "POST",
        &format!("/fiches/{id}/conflit"),
        Some(&[("csrf", &token), ("champ", "alias"), ("choix", "\"Kiki\"")]),
    );
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(
        done.location.as_deref(),
        Some(format!("/jeunes/{id}?ok=conflit").as_str())
    );

    // Tablet A's next sync: the chosen value, no conflict, its own edit kept and pushed.
    a.sync(&server).expect("sync");
    assert!(a.store.conflicts(id).expect("conflicts").is_empty());
    let y = a.store.youth(id).expect("reads");
    assert_eq!(y.alias.as_deref(), Some("Kiki"));
    assert_eq!(y.referral_detail.as_deref(), Some("Vu au city stade"));
    assert_eq!(a.store.sync_state(id).expect("state"), SyncState::Synced);
    // The resolution is the coordinator's change (nil device, the user's id).
    let by_coordinator = a.store.history(id).expect("history").into_iter().any(|h| {
        h.author
            .is_some_and(|w| w.device_id.is_nil() && w.member_id == coordinator)
            && h.fields == vec!["alias".to_string()]
    });
    assert!(by_coordinator);
    b.sync(&server).expect("sync");
    assert!(b.store.conflicts(id).expect("conflicts").is_empty());
    assert_eq!(
        b.store.youth(id).expect("reads").referral_detail.as_deref(),
        Some("Vu au city stade")
    );
}

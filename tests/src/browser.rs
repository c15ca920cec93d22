//! The coordinators' pages driven over raw HTTP/1.1, as a browser without JavaScript.

use std::collections::HashMap;

use crate::{raw_request, status_of};

/// The password the tests give coordinators.
pub const PASSWORD: &str = "un mot de passe assez long";

/// A browser without JavaScript over raw HTTP/1.1: cookies kept, no redirect followed.
pub struct Pages {
    pub port: u16,
    pub cookies: HashMap<String, String>,
}

pub struct Answer {
    pub status: u16,
    pub location: Option<String>,
    pub body: String,
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

pub fn csrf(html: &str) -> String {
    let marker = r#"name="csrf" value=""#;
    let start = html.find(marker).expect("a CSRF field") + marker.len();
    html[start..].split('"').next().expect("token").to_string()
}

impl Pages {
    pub fn request(&mut self, method: &str, path: &str, form: Option<&[(&str, &str)]>) -> Answer {
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
    pub fn sign_in(port: u16, login: &str) -> (Pages, String) {
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

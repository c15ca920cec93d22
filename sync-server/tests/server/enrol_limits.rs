//! `/v1/enrol`, the endpoint anyone on the network reaches, over real loopback sockets: a
//! tiny body limit (stated or streamed), a bounded inflation, the code normalised and
//! checked before any database work, the label cut; `/v1/sync` keeps its larger limit.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use repere_core::sync::protocol::{self, EnrolRequest, EnrolResponse, ErrorBody, ErrorCode};
use repere_server::http::{ENROL_MAX_BODY_BYTES, HttpConfig};
use repere_server::hub::LABEL_MAX_CHARS;

use crate::common::env;
use crate::http::start;

fn error_of(resp: reqwest::blocking::Response) -> (u16, ErrorCode) {
    let status = resp.status().as_u16();
    let body: ErrorBody =
        serde_json::from_slice(&resp.bytes().expect("body")).expect("JSON error body");
    (status, body.error)
}

/// Sends a body of unknown length (chunked) in one write, so that the server has read it
/// all when it answers; returns the answer's status and error code.
fn post_chunked(base: &str, path: &str, body: &[u8]) -> (u16, ErrorCode) {
    let addr = base.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    .into_bytes();
    for chunk in body.chunks(500) {
        request.extend(format!("{:x}\r\n", chunk.len()).bytes());
        request.extend(chunk);
        request.extend(b"\r\n");
    }
    request.extend(b"0\r\n\r\n");
    s.write_all(&request).expect("request");
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP answer");
    let status = String::from_utf8_lossy(&answer[..split])
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body: ErrorBody = serde_json::from_slice(&answer[split + 4..]).expect("JSON error body");
    (status, body.error)
}

#[test]
fn enrolment_bodies_past_their_small_limit_are_refused_before_decoding() {
    let env = env();
    let server = start(env.hub.clone(), HttpConfig::default());
    let client = reqwest::blocking::Client::new();
    let enrol = format!("{}/v1/enrol", server.base);

    // Stated too large.
    let resp = client
        .post(&enrol)
        .body(vec![b'R'; ENROL_MAX_BODY_BYTES + 1])
        .send()
        .expect("send");
    assert_eq!(error_of(resp), (413, ErrorCode::TooLarge));
    // Streamed without a length: cut at the limit.
    assert_eq!(
        post_chunked(
            &server.base,
            "/v1/enrol",
            &[b'R'; ENROL_MAX_BODY_BYTES + 500]
        ),
        (413, ErrorCode::TooLarge)
    );
    // Under it, the same way, the body is read (and refused for what it is).
    assert_eq!(
        post_chunked(&server.base, "/v1/enrol", &[b'R'; ENROL_MAX_BODY_BYTES]),
        (400, ErrorCode::MalformedRequest)
    );
    // Small on the wire, large once inflated: refused at the enrolment's own bound.
    let bomb = protocol::encode(&EnrolRequest {
        code: env.code(&env.team_a),
        device_label: "a".repeat(200_000),
        writer: None,
        previous_token: None,
    });
    assert!(bomb.len() < ENROL_MAX_BODY_BYTES, "{} bytes", bomb.len());
    let resp = client.post(&enrol).body(bomb).send().expect("send");
    assert_eq!(error_of(resp), (413, ErrorCode::TooLarge));

    // The sync endpoint keeps the general limit: a 100 KiB body is read (and refused for
    // what it is, not for its size).
    let (_, token) = env.raw_device(&env.team_a);
    let resp = client
        .post(format!("{}/v1/sync", server.base))
        .bearer_auth(&token)
        .body(vec![b'R'; 100 * 1024])
        .send()
        .expect("send");
    assert_eq!(error_of(resp), (400, ErrorCode::MalformedRequest));
}

#[test]
fn enrolment_codes_are_normalised_and_checked_first_and_labels_cut() {
    let env = env();
    let server = start(env.hub.clone(), HttpConfig::default());
    let client = reqwest::blocking::Client::new();
    let enrol = format!("{}/v1/enrol", server.base);
    let post = |code: String, label: String| {
        client
            .post(&enrol)
            .body(protocol::encode(&EnrolRequest {
                code,
                device_label: label,
                writer: None,
                previous_token: None,
            }))
            .send()
            .expect("send")
    };

    // Things that cannot be a code are refused as an unknown code.
    for junk in ["", "Z", &"Z".repeat(60), "ABCD-EFGH-J0", "ÀBCD-EFGH-JK"] {
        let resp = post(junk.to_string(), "tablette".into());
        assert_eq!(
            error_of(resp),
            (403, ErrorCode::InvalidEnrolmentCode),
            "{junk:?}"
        );
    }

    // A code typed in lower case with spaces is the code; a long label is cut.
    let code = env.code(&env.team_a);
    let typed = format!(" {} ", code.to_lowercase().replace('-', " "));
    let long_label = format!("tablette {}", "é".repeat(300));
    let resp = post(typed, long_label.clone());
    assert_eq!(resp.status().as_u16(), 200);
    let answer: EnrolResponse = protocol::decode(&resp.bytes().expect("body")).expect("decodes");
    assert_eq!(answer.team_id, env.team_a.id);
    let device = env
        .hub
        .devices(Some(env.team_a.id))
        .expect("devices")
        .into_iter()
        .find(|d| d.id == answer.device_id)
        .expect("enrolled");
    assert_eq!(device.label.chars().count(), LABEL_MAX_CHARS);
    assert!(long_label.starts_with(&device.label));
    // Normalised, it is the same single-use code.
    let resp = post(code, "tablette".into());
    assert_eq!(error_of(resp), (403, ErrorCode::InvalidEnrolmentCode));
}

/// The limits live in the database: two servers on it count the same attempts and syncs.
#[test]
fn two_hubs_on_one_database_share_the_enrolment_and_sync_limits() {
    use std::sync::Arc;

    use repere_server::storage::Bucket;
    use repere_server::{Hub, SqliteStorage};

    let dir = tempfile::tempdir().expect("temp dir");
    let storage: Arc<dyn repere_server::storage::Storage> = Arc::new(
        SqliteStorage::open_dir(dir.path(), Some(&crate::common::server_key())).expect("storage"),
    );
    let (one, two) = (Hub::new(storage.clone()), Hub::new(storage));
    let bucket = Bucket {
        burst: 3.0,
        per_second: 0.05,
    };
    let ip: std::net::IpAddr = "192.0.2.7".parse().expect("address");
    let other: std::net::IpAddr = "192.0.2.8".parse().expect("address");
    let admitted: Vec<bool> = [&one, &two, &one, &two]
        .iter()
        .map(|hub| hub.admit_enrolment(ip, bucket).expect("counted"))
        .collect();
    assert_eq!(admitted, [true, true, true, false]);
    assert!(two.admit_enrolment(other, bucket).expect("counted"));
}

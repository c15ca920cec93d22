//! The HTTP adapter over real loopback sockets: core's own HTTP transport end to end, and
//! every kind of bad request mapped to its status and error code.

use std::sync::Arc;
use std::thread::JoinHandle;

use repere_core::Store;
use repere_core::sync::SyncOptions;
use repere_core::sync::protocol::{
    self, CONTENT_TYPE, EnrolRequest, ErrorBody, ErrorCode, SyncRequest, SyncResponse,
};
use repere_server::Hub;
use repere_server::http::{HttpConfig, router};
use repere_server::metrics::Metrics;
use repere_server::serve::{ServeLimits, serve};
use repere_transport::HttpTransport;
use uuid::Uuid;

use crate::common::{KEY, env};

pub struct Server {
    pub base: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

pub fn start(hub: Arc<Hub>, config: HttpConfig) -> Server {
    start_with(hub, config, ServeLimits::default())
}

/// The server as `repere-server serve` runs it: the router within connection limits.
pub fn start_with(hub: Arc<Hub>, config: HttpConfig, limits: ServeLimits) -> Server {
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            addr_tx
                .send(listener.local_addr().expect("addr"))
                .expect("send addr");
            let metrics = Arc::new(Metrics::default());
            let app = router(hub, &config, metrics.clone());
            serve(listener, app, limits, metrics, async {
                let _ = stop_rx.await;
            })
            .await
            .expect("serve");
        });
    });
    let addr = addr_rx.recv().expect("server started");
    Server {
        base: format!("http://{addr}"),
        stop: Some(stop_tx),
        thread: Some(thread),
    }
}

fn error_of(resp: reqwest::blocking::Response) -> (u16, ErrorCode) {
    let status = resp.status().as_u16();
    let body: ErrorBody =
        serde_json::from_slice(&resp.bytes().expect("body")).expect("JSON error body");
    (status, body.error)
}

#[test]
fn core_http_transport_enrols_and_syncs_through_the_server() {
    let env = env();
    let server = start(env.hub.clone(), HttpConfig::default());
    let transport = HttpTransport::new(&server.base).expect("transport");
    let dir = tempfile::tempdir().expect("dir");

    let mut a1 = Store::open(dir.path().join("a1.db"), &KEY).expect("store");
    a1.enrol(
        &transport,
        &server.base,
        &env.code(&env.team_a),
        "a1",
        false,
    )
    .expect("enrol over HTTP");
    let mut demo = repere_core::demo::DemoData::new(
        3,
        env.team_a.id,
        [Uuid::now_v7(), Uuid::now_v7()],
        chrono::Utc::now(),
    );
    let youth = demo.youth();
    let id = a1.create(&youth).expect("create");
    let report = a1
        .sync(&transport, &SyncOptions::default(), &mut |_| {})
        .expect("sync over HTTP");
    assert_eq!(report.acknowledged, 1);

    let mut a2 = Store::open(dir.path().join("a2.db"), &KEY).expect("store");
    a2.enrol(
        &transport,
        &server.base,
        &env.code(&env.team_a),
        "a2",
        false,
    )
    .expect("enrol");
    let report = a2
        .sync(&transport, &SyncOptions::default(), &mut |_| {})
        .expect("sync");
    assert_eq!(report.pulled, 1);
    assert_eq!(a2.youth(id).expect("pulled"), youth);

    // A wrong code is final, not retried.
    let mut a3 = Store::open(dir.path().join("a3.db"), &KEY).expect("store");
    assert!(matches!(
        a3.enrol(&transport, &server.base, "ZZZZ-ZZZZ-ZZ", "a3", false),
        Err(repere_core::Error::InvalidEnrolmentCode)
    ));
}

#[test]
fn bad_requests_get_their_status_and_code_and_the_server_keeps_serving() {
    let env = env();
    let config = HttpConfig {
        max_body_bytes: 4096,
        enrol_per_minute: 3,
        ..HttpConfig::default()
    };
    let server = start(env.hub.clone(), config);
    let client = reqwest::blocking::Client::new();
    let url = |path: &str| format!("{}{path}", server.base);
    let (device, token) = env.raw_device(&env.team_a);
    let sync_body = protocol::encode(&SyncRequest {
        cursor: 0,
        pushes: vec![],
        pull_limit: 100,
        team: Default::default(),
        report: Default::default(),
        access_requests: Vec::new(),
    });

    let health = client.get(url("/healthz")).send().expect("healthz");
    assert_eq!(health.status().as_u16(), 200);
    assert_eq!(health.text().expect("text"), "ok");

    // Authentication.
    let resp = client
        .post(url("/v1/sync"))
        .body(sync_body.clone())
        .send()
        .expect("send");
    assert_eq!(error_of(resp), (401, ErrorCode::Unauthorized));
    let resp = client
        .post(url("/v1/sync"))
        .bearer_auth("not-a-token")
        .body(sync_body.clone())
        .send()
        .expect("send");
    assert_eq!(error_of(resp), (401, ErrorCode::Unauthorized));

    // A good exchange.
    let resp = client
        .post(url("/v1/sync"))
        .bearer_auth(&token)
        .body(sync_body.clone())
        .send()
        .expect("send");
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(
        resp.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some(CONTENT_TYPE)
    );
    let answer: SyncResponse = protocol::decode(&resp.bytes().expect("body")).expect("decodes");
    assert_eq!(answer.cursor, 0);

    // Bodies that are not messages, other versions, too large.
    let resp = client
        .post(url("/v1/sync"))
        .bearer_auth(&token)
        .body("garbage")
        .send()
        .expect("send");
    assert_eq!(error_of(resp), (400, ErrorCode::MalformedRequest));
    let mut other_version = sync_body.clone();
    other_version[2] = 9;
    let resp = client
        .post(url("/v1/sync"))
        .bearer_auth(&token)
        .body(other_version)
        .send()
        .expect("send");
    assert_eq!(error_of(resp), (400, ErrorCode::UnsupportedVersion));
    let resp = client
        .post(url("/v1/sync"))
        .bearer_auth(&token)
        .body(vec![0u8; 10_000])
        .send()
        .expect("send");
    assert_eq!(error_of(resp), (413, ErrorCode::TooLarge));

    // Enrolment: a wrong code, then the per-address limit.
    let bad_code = protocol::encode(&EnrolRequest {
        code: "ABCD-EFGH-JK".into(),
        device_label: "x".into(),
        writer: None,
        previous_token: None,
    });
    for _ in 0..2 {
        let resp = client
            .post(url("/v1/enrol"))
            .body(bad_code.clone())
            .send()
            .expect("send");
        assert_eq!(error_of(resp), (403, ErrorCode::InvalidEnrolmentCode));
    }
    let resp = client
        .post(url("/v1/enrol"))
        .body(b"junk".to_vec())
        .send()
        .expect("send");
    assert_eq!(error_of(resp), (400, ErrorCode::MalformedRequest));
    let resp = client
        .post(url("/v1/enrol"))
        .body(bad_code)
        .send()
        .expect("send");
    assert!(resp.headers().contains_key("retry-after"));
    assert_eq!(error_of(resp), (429, ErrorCode::RateLimited));

    // Revocation.
    env.hub.revoke_device(device.id).expect("revoke");
    let resp = client
        .post(url("/v1/sync"))
        .bearer_auth(&token)
        .body(sync_body)
        .send()
        .expect("send");
    assert_eq!(error_of(resp), (401, ErrorCode::DeviceRevoked));

    // Still serving.
    let health = client.get(url("/healthz")).send().expect("healthz");
    assert_eq!(health.status().as_u16(), 200);
    let resp = client.get(url("/v1/nothing-here")).send().expect("send");
    assert_eq!(resp.status().as_u16(), 404);
}

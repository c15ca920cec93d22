//! Helpers for the server's tests: a hub on a temporary SQLite file (or, when
//! `REPERE_TEST_DATABASE_URL` names a PostgreSQL server, on a throwaway database of its
//! own), an organisation with two teams, device stores (core's `Store`) talking to the hub
//! in-process or over HTTP.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};
use repere_core::demo::DemoData;
use repere_core::document::{Author, RecordDoc, to_json_fields};
use repere_core::sync::protocol::{
    self, ENROL_PATH, EnrolRequest, ErrorBody, PushDoc, SYNC_PATH, SyncRequest, SyncResponse,
};
use repere_core::sync::{SyncOptions, Transport, TransportError};
use repere_core::{Clock, Record, Store};
use repere_server::storage::postgres::testing::{TestDatabase, fresh_database};
use repere_server::storage::{Device, Organisation, Team};
use repere_server::{Hub, HubError, PostgresStorage, SqliteStorage, Storage};
use tempfile::TempDir;
use uuid::Uuid;

pub const KEY: [u8; 32] = [7; 32];
/// The server key of the test hubs (their databases are encrypted, as in service).
pub const SERVER_KEY_HEX: &str = "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a";

pub fn server_key() -> repere_server::keys::ServerKey {
    repere_server::keys::ServerKey::from_hex(SERVER_KEY_HEX).expect("test key")
}

/// A clock the tests can move.
pub struct TestClock(pub Mutex<DateTime<Utc>>);

impl TestClock {
    pub fn advance(&self, by: Duration) {
        let mut t = self.0.lock().expect("clock");
        *t += by;
    }
}

impl Clock for TestClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().expect("clock")
    }
}

pub struct Env {
    pub dir: TempDir,
    pub hub: Arc<Hub>,
    pub clock: Arc<TestClock>,
    pub org: Organisation,
    pub team_a: Team,
    pub team_b: Team,
    /// The PostgreSQL database of this test, dropped after the hub.
    pub database: Option<TestDatabase>,
}

/// The base URL of the PostgreSQL server the tests run on, if any.
pub const DATABASE_URL_VAR: &str = "REPERE_TEST_DATABASE_URL";

pub fn database_url() -> Option<String> {
    std::env::var(DATABASE_URL_VAR)
        .ok()
        .filter(|url| !url.is_empty())
}

/// The storage of a test hub: a fresh PostgreSQL database when `REPERE_TEST_DATABASE_URL`
/// is set, else an encrypted SQLite file in `dir`.
pub fn test_storage(dir: &std::path::Path) -> (Arc<dyn Storage>, Option<TestDatabase>) {
    match database_url() {
        Some(base) => {
            let database = fresh_database(&base).expect("test database");
            let storage = PostgresStorage::connect(database.url()).expect("server storage");
            (Arc::new(storage), Some(database))
        }
        None => (
            Arc::new(
                SqliteStorage::open_dir(&dir.join("server"), Some(&server_key()))
                    .expect("server storage"),
            ),
            None,
        ),
    }
}

/// The test environment on the storage `REPERE_TEST_DATABASE_URL` chooses.
pub fn env() -> Env {
    let dir = tempfile::tempdir().expect("temp dir");
    let (storage, database) = test_storage(dir.path());
    env_on(dir, storage, database)
}

/// The test environment on SQLite whatever the environment says, for the tests that reach
/// into its file (the data directory, another process opening it).
pub fn sqlite_env() -> Env {
    let dir = tempfile::tempdir().expect("temp dir");
    let storage = SqliteStorage::open_dir(&dir.path().join("server"), Some(&server_key()))
        .expect("server storage");
    env_on(dir, Arc::new(storage), None)
}

fn env_on(dir: TempDir, storage: Arc<dyn Storage>, database: Option<TestDatabase>) -> Env {
    let clock = Arc::new(TestClock(Mutex::new(Utc::now())));
    let hub = Arc::new(Hub::with_clock(storage, clock.clone()));
    let org = hub.create_organisation("Mission Locale test").expect("org");
    let team_a = hub.create_team(org.id, "Binôme A").expect("team a");
    let team_b = hub.create_team(org.id, "Binôme B").expect("team b");
    Env {
        dir,
        hub,
        clock,
        org,
        team_a,
        team_b,
        database,
    }
}

impl Env {
    pub fn code(&self, team: &Team) -> String {
        self.hub
            .issue_code(team.id, Duration::days(7))
            .expect("code")
            .code
    }

    /// A device enrolled directly with the hub (no store): its id, team and token.
    pub fn raw_device(&self, team: &Team) -> (Device, String) {
        let resp = self
            .hub
            .enrol(EnrolRequest {
                code: self.code(team),
                device_label: "tablette de test".into(),
                writer: None,
                previous_token: None,
            })
            .expect("enrol");
        let device = self.hub.authenticate(&resp.token).expect("token works");
        (device, resp.token)
    }

    /// A device store, enrolled for `team` through the in-process transport.
    pub fn tablet(&self, team: &Team, name: &str) -> Tablet {
        let path = self.dir.path().join(format!("{name}.db"));
        let mut store = Store::open(&path, &KEY).expect("device store");
        store.set_member(Uuid::now_v7());
        let transport = HubTransport(self.hub.clone());
        let enrolment = store
            .enrol(&transport, "http://hub.test", &self.code(team), name, false)
            .expect("tablet enrols");
        assert_eq!(enrolment.team_id, team.id);
        let demo = DemoData::new(
            u64::from(name.bytes().map(u32::from).sum::<u32>()),
            team.id,
            [Uuid::now_v7(), Uuid::now_v7()],
            Utc::now(),
        );
        Tablet {
            store,
            transport,
            demo,
            device_id: enrolment.device_id,
        }
    }
}

pub struct Tablet {
    pub store: Store,
    pub transport: HubTransport,
    pub demo: DemoData,
    pub device_id: Uuid,
}

impl Tablet {
    pub fn sync(&mut self) -> repere_core::Result<repere_core::sync::SyncReport> {
        self.store
            .sync(&self.transport, &SyncOptions::default(), &mut |_| {})
    }

    pub fn sync_ok(&mut self) -> repere_core::sync::SyncReport {
        self.sync().expect("sync succeeds")
    }
}

/// Core's `Transport` answered by the hub in-process: the same decode/encode and error
/// mapping as the HTTP adapter, without sockets.
pub struct HubTransport(pub Arc<Hub>);

fn status(e: &HubError) -> TransportError {
    TransportError::Status {
        status: e.http_status(),
        body: Some(ErrorBody {
            error: e.code(),
            message: e.public_message(),
            versions: None,
        }),
    }
}

impl Transport for HubTransport {
    fn post(
        &self,
        path: &str,
        token: Option<&str>,
        body: Vec<u8>,
    ) -> Result<Vec<u8>, TransportError> {
        let bad = |e: protocol::DecodeError| TransportError::Status {
            status: 400,
            body: Some(ErrorBody {
                error: protocol::ErrorCode::MalformedRequest,
                message: e.to_string(),
                versions: None,
            }),
        };
        match path {
            ENROL_PATH => {
                let req = protocol::decode_enrol(&body, 4096).map_err(bad)?;
                let resp = self.0.enrol(req).map_err(|e| status(&e))?;
                Ok(protocol::encode(&resp))
            }
            SYNC_PATH => {
                let device = self
                    .0
                    .authenticate(token.unwrap_or_default())
                    .map_err(|e| status(&e))?;
                let version = protocol::version_of(&body).map_err(bad)?;
                let req: SyncRequest = protocol::decode_request(&body).map_err(bad)?;
                let (resp, _) = self
                    .0
                    .sync_with_stats(&device, req, version)
                    .map_err(|e| status(&e))?;
                Ok(protocol::encode_response(version, &resp))
            }
            _ => Err(TransportError::Status {
                status: 404,
                body: None,
            }),
        }
    }
}

/// A record's whole document, as a device would push it the first time.
pub fn doc_bytes<R: Record>(id: Uuid, record: &R) -> Vec<u8> {
    let author = Author {
        device_id: Uuid::now_v7(),
        member_id: Uuid::now_v7(),
    };
    let fields = to_json_fields(record).expect("fields");
    RecordDoc::create(R::KIND, id, author, &fields, Utc::now())
        .expect("document")
        .save()
}

pub fn push<R: Record>(id: Uuid, record: &R) -> PushDoc {
    PushDoc {
        id,
        kind: R::KIND.into(),
        changes: doc_bytes(id, record),
    }
}

pub fn request(cursor: u64, pushes: Vec<PushDoc>) -> SyncRequest {
    SyncRequest {
        cursor,
        pushes,
        pull_limit: 500,
        team: Default::default(),
        report: Default::default(),
        access_requests: Vec::new(),
    }
}

/// Pulls everything from `cursor` on, page by page.
pub fn pull_all(
    hub: &Hub,
    device: &Device,
    mut cursor: u64,
    limit: u32,
) -> (Vec<SyncResponse>, u64) {
    let mut pages = Vec::new();
    loop {
        let resp = hub
            .sync(
                device,
                SyncRequest {
                    cursor,
                    pushes: vec![],
                    pull_limit: limit,
                    team: Default::default(),
                    report: Default::default(),
                    access_requests: Vec::new(),
                },
            )
            .expect("pull");
        cursor = resp.cursor;
        let more = resp.more;
        pages.push(resp);
        if !more {
            return (pages, cursor);
        }
        assert!(pages.len() < 1000, "paging never ends");
    }
}

/// A signed-in user of the environment's organisation, seeing both teams, as the pages
/// would load them.
pub fn signed_in_user(
    env: &Env,
    name: &str,
    role: repere_server::storage::Role,
    second_factor: bool,
) -> repere_server::coord::Coordinator {
    let user = env
        .hub
        .create_user_with_login(env.org.id, name, role, None)
        .expect("user");
    repere_server::coord::Coordinator {
        user,
        organisation: env
            .hub
            .storage()
            .read_with(|tx| tx.organisation(env.org.id))
            .expect("read")
            .expect("org"),
        teams: vec![env.team_a.clone(), env.team_b.clone()],
        second_factor,
    }
}

/// The files directly under `dir` that hold `needle`, byte for byte.
pub fn files_holding(dir: &std::path::Path, needle: &str) -> Vec<String> {
    std::fs::read_dir(dir)
        .expect("dir")
        .filter_map(|e| {
            let path = e.expect("entry").path();
            let bytes = std::fs::read(&path).ok()?;
            bytes
                .windows(needle.len())
                .any(|w| w == needle.as_bytes())
                .then(|| path.display().to_string())
        })
        .collect()
}

//! Break-the-glass on the tablet (protocol 8) against scripted server answers: a request
//! queued, sent and answered; the lent file read, then gone at its end by the tablet's
//! clock or when an answer that ends a sync no longer lends it; lent records kept out of
//! everything else; older servers; wipe.

mod common;

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};
use common::{KEY, now};
use repere_core::demo::DemoData;
use repere_core::records::{Contact, Youth};
use repere_core::sync::protocol::{
    self, ACCESS_DEFAULT_MINUTES, AccessAnswer, AccessOutcome, AccessRefusal, ENROL_PATH,
    EnrolResponse, ErrorBody, ErrorCode, LentFile, LentRecord, SyncRequest, SyncResponse,
};
use repere_core::sync::{SyncOptions, Transport, TransportError};
use repere_core::{AccessState, Clock, Error, RecordKind, Store, StoreEvent, StoreOptions};
use tempfile::TempDir;
use uuid::Uuid;

const REASON: &str = "Urgence : hébergement à trouver ce soir";

/// A clock the test moves.
#[derive(Clone)]
struct MovingClock(Arc<Mutex<DateTime<Utc>>>);

impl MovingClock {
    fn advance(&self, by: Duration) {
        *self.0.lock().expect("clock") += by;
    }
}

impl Clock for MovingClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().expect("clock")
    }
}

type Answer = Box<dyn Fn(u8, &SyncRequest) -> Result<Vec<u8>, TransportError> + Send + Sync>;

/// Answers each sync request with the next scripted answer (the last one repeats), and
/// remembers the versions and requests it saw.
struct Scripted {
    answers: Mutex<Vec<Answer>>,
    seen: Mutex<Vec<(u8, SyncRequest)>>,
}

impl Scripted {
    fn new(answers: Vec<Answer>) -> Scripted {
        Scripted {
            answers: Mutex::new(answers),
            seen: Mutex::new(Vec::new()),
        }
    }

    fn seen(&self) -> Vec<(u8, SyncRequest)> {
        std::mem::take(&mut *self.seen.lock().expect("lock"))
    }

    fn then(&self, answers: Vec<Answer>) {
        *self.answers.lock().expect("lock") = answers;
    }
}

impl Transport for Scripted {
    fn post(
        &self,
        path: &str,
        _token: Option<&str>,
        body: Vec<u8>,
    ) -> Result<Vec<u8>, TransportError> {
        if path == ENROL_PATH {
            return Ok(protocol::encode(&EnrolResponse {
                device_id: Uuid::now_v7(),
                team_id: common::team(),
                organisation_id: Uuid::from_u128(9),
                token: "jeton".into(),
            }));
        }
        let version = protocol::version_of(&body).expect("a message");
        let request = protocol::decode_request(&body).expect("a request");
        self.seen
            .lock()
            .expect("lock")
            .push((version, request.clone()));
        let mut answers = self.answers.lock().expect("lock");
        let answer = if answers.len() > 1 {
            answers.remove(0)
        } else {
            answers.pop().expect("an answer")
        };
        let out = answer(version, &request);
        if answers.is_empty() {
            answers.push(answer);
        }
        out
    }
}

fn response(req: &SyncRequest) -> SyncResponse {
    SyncResponse {
        acks: Vec::new(),
        rejections: Vec::new(),
        docs: Vec::new(),
        erased: Vec::new(),
        cursor: req.cursor.max(1),
        more: false,
        epoch: 1,
        team: Default::default(),
        moved: Vec::new(),
        access: Vec::new(),
        lent: Vec::new(),
    }
}

/// A server of protocol 8 that answers each request with `outcome` and lends `lent`
/// (built from the request ids it granted so far).
fn lends(
    outcome: impl Fn(&protocol::AccessRequest) -> AccessOutcome + Send + Sync + 'static,
    lent: impl Fn(&[Uuid]) -> Vec<LentFile> + Send + Sync + 'static,
) -> Answer {
    let granted = Mutex::new(Vec::new());
    Box::new(move |version, req| {
        let mut granted = granted.lock().expect("lock");
        let mut resp = response(req);
        for asked in &req.access_requests {
            let outcome = outcome(asked);
            if matches!(outcome, AccessOutcome::Granted { .. }) {
                granted.push(asked.id);
            }
            resp.access.push(AccessAnswer {
                id: asked.id,
                outcome,
            });
        }
        resp.lent = lent(&granted);
        Ok(protocol::encode_response(version, &resp))
    })
}

/// A server older than protocol 8: refuses it and answers in version 7.
fn older_server() -> Answer {
    Box::new(|version, req| {
        if version >= protocol::LEND_VERSION {
            return Err(TransportError::Status {
                status: 400,
                body: Some(ErrorBody {
                    error: ErrorCode::UnsupportedVersion,
                    message: "version".into(),
                    versions: Some((1, 7)),
                }),
            });
        }
        Ok(protocol::encode_response(version, &response(req)))
    })
}

fn options() -> SyncOptions {
    SyncOptions {
        max_attempts: 2,
        initial_backoff: std::time::Duration::from_millis(1),
        ..SyncOptions::default()
    }
}

struct Tablet {
    dir: TempDir,
    store: Store,
    clock: MovingClock,
    events: Arc<Mutex<Vec<StoreEvent>>>,
}

impl Tablet {
    fn lending_events(&self) -> usize {
        let events = std::mem::take(&mut *self.events.lock().expect("lock"));
        events.iter().filter(|e| e.lending_changed).count()
    }

    fn sync(&mut self, transport: &Scripted) {
        self.store
            .sync(transport, &options(), &mut |_| {})
            .expect("syncs");
    }
}

fn tablet(transport: &Scripted) -> Tablet {
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = MovingClock(Arc::new(Mutex::new(now())));
    let mut store = Store::open_with(
        dir.path().join("store.db"),
        &KEY,
        StoreOptions {
            clock: Arc::new(clock.clone()),
        },
    )
    .expect("store opens");
    store.set_member(Uuid::from_u128(11));
    store
        .enrol(transport, "https://sync.test", "CODE", "tablette A", false)
        .expect("enrols");
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = events.clone();
    store.subscribe(Arc::new(move |e: &StoreEvent| {
        seen.lock().expect("lock").push(e.clone())
    }));
    Tablet {
        dir,
        store,
        clock,
        events,
    }
}

/// A young person of another team, with a visit, an action and an outcome.
struct Elsewhere {
    youth_id: Uuid,
    youth: Youth,
    contact_id: Uuid,
    contact: Contact,
    records: Vec<LentRecord>,
}

fn elsewhere(seed: u64) -> Elsewhere {
    let other_team = Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0002);
    let mut demo = DemoData::new(seed, other_team, [Uuid::from_u128(21); 2], now());
    let mut youth = demo.youth();
    youth.first_name = Some("Zélie".into());
    youth.last_name = Some("Marchal".into());
    youth.alias = None;
    let youth_id = Uuid::now_v7();
    let contact_id = Uuid::now_v7();
    let contact = demo.contact(&[youth_id]);
    let action = demo.action(youth_id);
    let outcome = demo.outcome(youth_id);
    let record = |id: Uuid, kind: RecordKind, fields: String| LentRecord {
        id,
        kind: kind.into(),
        fields,
    };
    let records = vec![
        record(youth_id, RecordKind::Youth, json(&youth)),
        record(contact_id, RecordKind::Contact, json(&contact)),
        record(Uuid::now_v7(), RecordKind::Action, json(&action)),
        record(Uuid::now_v7(), RecordKind::Outcome, json(&outcome)),
    ];
    Elsewhere {
        youth_id,
        youth,
        contact_id,
        contact,
        records,
    }
}

/// A record's fields as JSON, as the server sends them.
fn json<T: serde::Serialize>(record: &T) -> String {
    serde_json::to_string(record).expect("serializes")
}

fn lent_file(grant_id: Uuid, file: &Elsewhere, expires_at: DateTime<Utc>) -> LentFile {
    LentFile {
        grant_id,
        youth_id: file.youth_id,
        team_name: "Binôme Stenay".into(),
        expires_at_ms: expires_at.timestamp_millis(),
        records: file.records.clone(),
    }
}

/// A server that grants every request until `ends` and lends `file` for each grant.
fn grants(file: &Arc<Elsewhere>, ends: DateTime<Utc>) -> Answer {
    let file = file.clone();
    lends(granted_until(ends), move |granted| {
        granted.iter().map(|g| lent_file(*g, &file, ends)).collect()
    })
}

fn granted_until(at: DateTime<Utc>) -> impl Fn(&protocol::AccessRequest) -> AccessOutcome {
    move |_| AccessOutcome::Granted {
        expires_at_ms: at.timestamp_millis(),
    }
}

#[test]
fn a_request_is_queued_sent_once_granted_and_its_file_read_until_its_end() {
    let file = Arc::new(elsewhere(1));
    let ends = now() + Duration::minutes(i64::from(ACCESS_DEFAULT_MINUTES));
    let transport = Scripted::new(vec![grants(&file, ends)]);
    let mut t = tablet(&transport);
    t.lending_events();

    let id = t
        .store
        .request_access(
            file.youth_id,
            &format!("  {REASON}  "),
            ACCESS_DEFAULT_MINUTES,
        )
        .expect("queued");
    assert_eq!(t.lending_events(), 1, "the screen is told");
    let asked = t.store.access_requests().expect("list");
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0].id, id);
    assert_eq!(asked[0].reason, REASON, "trimmed");
    assert_eq!(asked[0].member_id, Uuid::from_u128(11));
    assert_eq!(asked[0].asked_at, now());
    assert_eq!(asked[0].state, AccessState::Pending);
    assert!(t.store.lent_files().expect("list").is_empty());

    t.sync(&transport);
    let seen = transport.seen();
    assert_eq!(seen[0].0, protocol::PROTOCOL_VERSION);
    assert_eq!(seen[0].1.access_requests.len(), 1);
    let sent = &seen[0].1.access_requests[0];
    assert_eq!(
        (sent.id, sent.youth_id, sent.member_id, sent.reason.as_str()),
        (id, file.youth_id, Uuid::from_u128(11), REASON)
    );
    assert_eq!(sent.minutes, ACCESS_DEFAULT_MINUTES);
    assert!(t.lending_events() >= 1);
    assert_eq!(
        t.store.access_requests().expect("list")[0].state,
        AccessState::Granted { expires_at: ends }
    );
    let listed = t.store.lent_files().expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (
            listed[0].grant_id,
            listed[0].youth_id,
            listed[0].display_name.as_str(),
            listed[0].team_name.as_str(),
            listed[0].expires_at
        ),
        (id, file.youth_id, "Zélie M.", "Binôme Stenay", ends)
    );
    let read = t
        .store
        .lent_file(file.youth_id)
        .expect("read")
        .expect("lent");
    assert_eq!(read.youth, file.youth);
    assert_eq!(read.visits, vec![(file.contact_id, file.contact.clone())]);
    assert_eq!((read.actions.len(), read.outcomes.len()), (1, 1));
    assert_eq!((read.grant_id, read.expires_at), (id, ends));

    // Answered: the next sync asks nothing again, and the same lending changes nothing.
    t.sync(&transport);
    assert!(
        transport
            .seen()
            .iter()
            .all(|(_, r)| r.access_requests.is_empty())
    );
    assert_eq!(t.lending_events(), 0);

    // Its end, by the tablet's clock: gone from every read, with its request.
    t.clock.advance(Duration::minutes(119));
    assert!(t.store.lent_file(file.youth_id).expect("read").is_some());
    t.clock.advance(Duration::minutes(1));
    assert_eq!(t.store.lent_file(file.youth_id).expect("read"), None);
    assert_eq!(t.lending_events(), 1, "the screens are told");
    assert!(t.store.lent_files().expect("list").is_empty());
    assert!(t.store.access_requests().expect("list").is_empty());
}

#[test]
fn a_refusal_is_kept_with_its_code_and_message_for_a_day() {
    let transport = Scripted::new(vec![lends(
        |_| AccessOutcome::Refused(AccessRefusal::UnknownFile),
        |_| Vec::new(),
    )]);
    let mut t = tablet(&transport);
    let id = t
        .store
        .request_access(Uuid::now_v7(), REASON, 60)
        .expect("queued");
    t.sync(&transport);
    let asked = t.store.access_requests().expect("list");
    assert_eq!(asked[0].id, id);
    assert_eq!(
        asked[0].state,
        AccessState::Refused(AccessRefusal::UnknownFile)
    );
    assert_eq!(
        repere_core::refusal_code(AccessRefusal::UnknownFile),
        "unknown_file"
    );
    assert!(
        AccessRefusal::UnknownFile
            .message()
            .starts_with("Aucune fiche n'a cette référence")
    );
    t.clock.advance(Duration::hours(23));
    assert_eq!(t.store.access_requests().expect("list").len(), 1);
    t.clock.advance(Duration::hours(1));
    assert!(t.store.access_requests().expect("list").is_empty());
}

#[test]
fn a_file_no_longer_lent_by_a_final_answer_goes_and_a_partial_answer_changes_nothing() {
    let file = Arc::new(elsewhere(2));
    let ends = now() + Duration::hours(2);
    let transport = Scripted::new(vec![grants(&file, ends)]);
    let mut t = tablet(&transport);
    t.store
        .request_access(file.youth_id, REASON, 120)
        .expect("queued");
    t.sync(&transport);
    assert_eq!(t.store.lent_files().expect("list").len(), 1);
    t.lending_events();

    // An answer with more to pull says nothing of what is lent.
    let batch = t
        .store
        .sync_prepare(&options(), &Default::default())
        .expect("prepare");
    let mut partial = response(&SyncRequest {
        cursor: 1,
        pushes: Vec::new(),
        pull_limit: 10,
        team: Default::default(),
        report: Default::default(),
        access_requests: Vec::new(),
    });
    partial.more = true;
    t.store.sync_apply(&batch, &partial).expect("apply");
    assert_eq!(t.store.lent_files().expect("list").len(), 1);
    assert_eq!(t.lending_events(), 0);

    // The coordination ended the grant: the final answer no longer lends it.
    transport.then(vec![Box::new(|version, req| {
        Ok(protocol::encode_response(version, &response(req)))
    })]);
    t.sync(&transport);
    assert_eq!(t.lending_events(), 1);
    assert!(t.store.lent_files().expect("list").is_empty());
    assert_eq!(t.store.lent_file(file.youth_id).expect("read"), None);
    assert!(
        t.store.access_requests().expect("list").is_empty(),
        "the request went with its file"
    );
}

#[test]
fn what_is_over_by_the_tablet_s_clock_or_unreadable_is_not_kept() {
    let over = elsewhere(3);
    let mut broken = elsewhere(4);
    broken.records[0].fields = "{\"pas\": \"une fiche\"}".into();
    let files = vec![
        lent_file(Uuid::now_v7(), &over, now() - Duration::seconds(1)),
        lent_file(Uuid::now_v7(), &broken, now() + Duration::hours(1)),
    ];
    let transport = Scripted::new(vec![Box::new(move |version, req| {
        let mut resp = response(req);
        resp.lent = files.clone();
        Ok(protocol::encode_response(version, &resp))
    })]);
    let mut t = tablet(&transport);
    t.sync(&transport);
    assert!(t.store.lent_files().expect("list").is_empty());
}

#[test]
fn lent_records_stay_out_of_the_team_s_records_and_are_never_pushed_or_edited() {
    let file = Arc::new(elsewhere(5));
    let ends = now() + Duration::hours(2);
    let transport = Scripted::new(vec![grants(&file, ends)]);
    let mut t = tablet(&transport);
    t.store
        .request_access(file.youth_id, REASON, 120)
        .expect("queued");
    t.sync(&transport);
    transport.seen();
    assert!(t.store.lent_file(file.youth_id).expect("read").is_some());

    let s = &mut t.store;
    assert!(s.ids().expect("ids").is_empty());
    assert!(s.search_youth("Zélie", 10).expect("search").is_empty());
    assert!(s.list_contacts(0, 10).expect("list").is_empty());
    assert!(s.recent_visits(0, 10).expect("list").is_empty());
    assert!(s.todo(0, 10).expect("todo").is_empty());
    assert!(s.indicator_facts().expect("facts").is_empty());
    assert!(s.unsynced().expect("unsynced").is_empty());
    assert_eq!(s.unsent_count().expect("count"), 0);
    assert_eq!(s.kind_of(file.youth_id).expect("kind"), None);
    assert!(matches!(
        s.youth(file.youth_id),
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        s.youth_file(file.youth_id, 10),
        Err(Error::NotFound { .. } | Error::NoRecord { .. })
    ));
    assert!(matches!(
        s.edit::<Youth>(file.youth_id, |y| y.alias = Some("Zel".into())),
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        s.resolve_conflict(file.contact_id, "notes", "x".into()),
        Err(Error::NoRecord { .. })
    ));
    assert!(matches!(
        s.version(file.contact_id),
        Err(Error::NoRecord { .. })
    ));

    t.sync(&transport);
    assert!(transport.seen().iter().all(|(_, r)| r.pushes.is_empty()));
}

#[test]
fn a_request_is_checked_here_first() {
    let transport = Scripted::new(vec![lends(
        |_| AccessOutcome::Refused(AccessRefusal::UnknownFile),
        |_| Vec::new(),
    )]);
    let mut t = tablet(&transport);
    let youth = t.store_youth();
    let ours = t.store.create(&youth).expect("our young person");
    let problems = |e: Error| match e {
        Error::Invalid(v) => v.0.iter().map(|f| f.field).collect::<Vec<_>>(),
        other => panic!("not a validation error: {other}"),
    };
    let short = t
        .store
        .request_access(Uuid::now_v7(), "   urgence      ", 120)
        .expect_err("too short once trimmed");
    assert_eq!(problems(short), ["reason"]);
    let held = t.store.request_access(ours, REASON, 120).expect_err("ours");
    assert_eq!(problems(held), ["youth_id"]);
    let long = t
        .store
        .request_access(Uuid::now_v7(), REASON, 8 * 60 + 1)
        .expect_err("too long");
    assert_eq!(problems(long), ["minutes"]);
    let err = t
        .store
        .request_access(ours, &"x".repeat(501), 14)
        .expect_err("all at once");
    assert_eq!(problems(err), ["reason", "minutes", "youth_id"]);
    t.store.set_member(Uuid::nil());
    let nobody = t
        .store
        .request_access(Uuid::now_v7(), REASON, 120)
        .expect_err("nobody");
    assert_eq!(problems(nobody), ["member_id"]);
    assert!(t.store.access_requests().expect("list").is_empty());
    t.store.set_member(Uuid::from_u128(11));
    assert!(
        t.store
            .request_access(Uuid::now_v7(), &"é".repeat(15), 15)
            .is_ok(),
        "the bounds are characters, inclusive"
    );
}

impl Tablet {
    fn store_youth(&self) -> Youth {
        DemoData::new(9, common::team(), [Uuid::from_u128(11); 2], now()).youth()
    }
}

#[test]
fn one_sync_carries_at_most_twenty_requests_in_its_first_request() {
    // A push makes a second round: its request asks nothing again.
    let transport = Scripted::new(vec![Box::new(|version, req| {
        Ok(protocol::encode_response(version, &response(req)))
    })]);
    let mut t = tablet(&transport);
    for _ in 0..25 {
        t.store
            .request_access(Uuid::now_v7(), REASON, 120)
            .expect("queued");
    }
    let youth = t.store_youth();
    t.store.create(&youth).expect("a record to push");
    t.sync(&transport);
    let seen = transport.seen();
    assert!(seen.len() >= 2, "{} requests", seen.len());
    assert_eq!(seen[0].1.access_requests.len(), repere_core::ASKED_PER_SYNC);
    assert!(seen[1..].iter().all(|(_, r)| r.access_requests.is_empty()));
}

#[test]
fn an_older_server_leaves_requests_pending_and_lent_files_until_their_end() {
    let file = Arc::new(elsewhere(6));
    let ends = now() + Duration::hours(2);
    let transport = Scripted::new(vec![grants(&file, ends)]);
    let mut t = tablet(&transport);
    t.store
        .request_access(file.youth_id, REASON, 120)
        .expect("queued");
    t.sync(&transport);
    assert_eq!(t.store.lent_files().expect("list").len(), 1);

    transport.seen();

    // The server went back to a version that cannot lend.
    transport.then(vec![older_server()]);
    let waiting = t
        .store
        .request_access(Uuid::now_v7(), REASON, 30)
        .expect("queued");
    t.sync(&transport);
    let versions: Vec<u8> = transport.seen().iter().map(|(v, _)| *v).collect();
    assert_eq!(versions, [8, 7]);
    let asked = t.store.access_requests().expect("list");
    assert_eq!(
        asked.iter().find(|a| a.id == waiting).map(|a| a.state),
        Some(AccessState::Pending)
    );
    assert_eq!(t.store.lent_files().expect("list").len(), 1, "kept");
    t.clock.advance(Duration::hours(2));
    t.sync(&transport);
    assert!(
        t.store.lent_files().expect("list").is_empty(),
        "until its end"
    );
}

#[test]
fn reopening_purges_what_is_over_and_a_wipe_removes_everything() {
    let file = Arc::new(elsewhere(7));
    let ends = now() + Duration::hours(1);
    let transport = Scripted::new(vec![grants(&file, ends)]);
    let mut t = tablet(&transport);
    t.store
        .request_access(file.youth_id, REASON, 60)
        .expect("queued");
    t.sync(&transport);
    t.store
        .request_access(Uuid::now_v7(), REASON, 60)
        .expect("queued");
    assert_eq!(t.store.lent_files().expect("list").len(), 1);

    // Opened again past its end: gone before anything reads it.
    let path = t.dir.path().join("store.db");
    let later = MovingClock(Arc::new(Mutex::new(ends)));
    let reopened = Store::open_with(
        &path,
        &KEY,
        StoreOptions {
            clock: Arc::new(later),
        },
    )
    .expect("reopens");
    assert!(reopened.lent_files().expect("list").is_empty());
    drop(reopened);
    // Its records went with it (not only the file's row).
    let raw = rusqlite::Connection::open(&path).expect("raw");
    let hex: String = KEY.iter().map(|b| format!("{b:02x}")).collect();
    raw.execute_batch(&format!("PRAGMA key = \"x'{hex}'\";"))
        .expect("key");
    let rows: i64 = raw
        .query_row("SELECT count(*) FROM lent_records", [], |r| r.get(0))
        .expect("count");
    assert_eq!(rows, 0);
    drop(raw);

    assert_eq!(t.store.lent_files().expect("list").len(), 0);
    assert_eq!(t.store.access_requests().expect("list").len(), 1);
    t.store.wipe().expect("wipe");
    assert!(t.store.access_requests().expect("list").is_empty());

    // A wipe takes a file still lent too.
    let transport = Scripted::new(vec![grants(&file, ends)]);
    let mut u = tablet(&transport);
    u.store
        .request_access(file.youth_id, REASON, 60)
        .expect("queued");
    u.sync(&transport);
    assert_eq!(u.store.lent_files().expect("list").len(), 1);
    u.store.wipe().expect("wipe");
    assert!(u.store.lent_files().expect("list").is_empty());
    assert_eq!(u.store.lent_file(file.youth_id).expect("read"), None);
    assert!(u.store.access_requests().expect("list").is_empty());
}

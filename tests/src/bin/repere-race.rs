//! Races Repère against the peers' sync benchmark (PouchDB ↔ express-pouchdb and
//! automerge-repo, in ../shared/peers) on the same workload of N contact records, then
//! prints one markdown table with the peers' medians next to ours.
//!
//!   repere-race --workload build/peers/data/contacts-10000.jsonl --reps 3 \
//!     --peers-out build/peers/out --out-dir target/race
//!
//! `scripts/race-peers.sh` generates the workload, runs the peers and then this. Progress
//! goes to stderr, the table to stdout and to `OUT_DIR/report-N.md`, every figure of every
//! rep to `OUT_DIR/report-N.json`.
//!
//! How a workload record (`{id, youthId, teamId, date, commune, kind, needs, nextStep,
//! notes}`) becomes ours:
//! - one `Youth` per distinct youthId, created before the contacts: alias only, aged
//!   18–21, met on outreach, NEET, first contact on its earliest workload date;
//! - one `Contact` per record, for our id of that young person: the date at 10:00 UTC
//!   (the workload has no time of day), the commune, the kind (street, home, phone), the
//!   needs (a set: the workload's order of them is not kept), the next step (no due
//!   date), the notes, and one team member present;
//! - teamId is ignored: every record is in one team, and one tablet pushes them all;
//! - communes: the workload draws "55001"–"55580" and "08001"–"08580", and many of those
//!   are not INSEE codes (Meuse has 499 communes, Ardennes 447), which our validation
//!   refuses. Such a code becomes the real commune of the same département at position
//!   (its number mod their count) in code order; the report says how many were remapped.
//!
//! Each rep has a fresh server (the release or debug `repere-server` of this binary's
//! profile, on SQLite) and fresh stores. Phases, all syncs through a counting proxy:
//! - local create (setup): tablet A writes the young people, then the contacts, with
//!   `store.batch`, 1,000 records per batch;
//! - (a) upload: A syncs until everything is acknowledged;
//! - (b) initial download: fresh tablet B (enrolled beforehand) syncs; then, untimed,
//!   every young person and every contact on B is checked field by field;
//! - (d) empty sync: B syncs again, nothing to move;
//! - (e) re-pull (the merge path): A, which holds everything, is enrolled again into the
//!   same team with a new code, which keeps its records and restarts its pull at 0, and
//!   syncs; then A is checked as B was.
//!
//! Any failed sync, any count off, any field that differs: the run stops with an error.

use std::collections::{BTreeSet, HashMap};
use std::fmt::Debug;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveTime, TimeDelta, Utc};
use clap::Parser;
use repere_core::records::{
    AgeBand, Contact, ContactKind, IdentityLevel, Need, ReferralSource, Situation, Youth,
    YouthStatus,
};
use repere_core::{Communes, Store};
use repere_tests::proxy::CutProxy;
use repere_tests::{Device, TestServer, fast_retries};
use repere_transport::HttpTransport;
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

type Fallible<T> = Result<T, String>;

/// The team member recorded as present at every visit.
const MEMBER: Uuid = Uuid::from_u128(0xb1);
/// Records per `store.batch` in the local phase.
const BATCH: usize = 1000;

#[derive(Parser)]
#[command(
    name = "repere-race",
    about = "Runs Repère on the peers' workload and prints one table with the peers' figures"
)]
struct Args {
    /// The workload, JSON Lines (node gen-workload.mjs --n N --out FILE)
    #[arg(long)]
    workload: PathBuf,
    /// Repetitions, each with a fresh server and fresh stores; the table shows medians
    #[arg(long, default_value_t = 3)]
    reps: usize,
    /// The peers' out directory (peer-pouch.mjs, peer-automerge.mjs: one JSON per rep);
    /// their files for the same N go into the table
    #[arg(long)]
    peers_out: Option<PathBuf>,
    /// Where report-N.md and report-N.json go (default: target/race)
    #[arg(long)]
    out_dir: Option<PathBuf>,
}

/// One workload record, as gen-workload.mjs writes it (teamId is ignored, see above).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Line {
    id: Uuid,
    youth_id: Uuid,
    date: NaiveDate,
    commune: String,
    kind: String,
    needs: Vec<String>,
    next_step: String,
    notes: String,
}

/// A workload record with its values in our terms.
struct Visit {
    id: Uuid,
    youth: Uuid,
    date: NaiveDate,
    /// The workload's code, or the real one it was remapped to.
    commune: String,
    kind: ContactKind,
    needs: BTreeSet<Need>,
    next_step: String,
    notes: String,
}

struct Workload {
    visits: Vec<Visit>,
    /// Distinct youthIds in order of first appearance, with their earliest date.
    youths: Vec<(Uuid, NaiveDate)>,
    remapped: usize,
}

impl Workload {
    fn n(&self) -> usize {
        self.visits.len()
    }

    /// Records moved by a full sync: young people and contacts.
    fn records(&self) -> usize {
        self.youths.len() + self.visits.len()
    }
}

fn load_workload(path: &Path) -> Fallible<Workload> {
    let file = fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut communes = CommuneMap::default();
    let mut visits = Vec::new();
    let mut youths: Vec<(Uuid, NaiveDate)> = Vec::new();
    let mut youth_at: HashMap<Uuid, usize> = HashMap::new();
    let mut remapped = 0;
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let at = || format!("{} line {}", path.display(), i + 1);
        let line = line.map_err(|e| format!("{}: {e}", at()))?;
        if line.trim().is_empty() {
            continue;
        }
        let l: Line = serde_json::from_str(&line).map_err(|e| format!("{}: {e}", at()))?;
        let kind = match l.kind.as_str() {
            "street" => ContactKind::Street,
            "home" => ContactKind::Home,
            "phone" => ContactKind::Phone,
            other => return Err(format!("{}: unknown kind {other:?}", at())),
        };
        let needs = l
            .needs
            .iter()
            .map(|n| match n.as_str() {
                "housing" => Ok(Need::Housing),
                "health" => Ok(Need::Health),
                "mobility" => Ok(Need::Mobility),
                "employment" => Ok(Need::Employment),
                "training" => Ok(Need::Training),
                "rights" => Ok(Need::Rights),
                other => Err(format!("{}: unknown need {other:?}", at())),
            })
            .collect::<Fallible<BTreeSet<Need>>>()?;
        let commune = communes
            .real(&l.commune)
            .ok_or_else(|| format!("{}: commune {:?} is in no département", at(), l.commune))?;
        remapped += usize::from(commune != l.commune);
        match youth_at.get(&l.youth_id) {
            Some(&k) => youths[k].1 = youths[k].1.min(l.date),
            None => {
                youth_at.insert(l.youth_id, youths.len());
                youths.push((l.youth_id, l.date));
            }
        }
        visits.push(Visit {
            id: l.id,
            youth: l.youth_id,
            date: l.date,
            commune,
            kind,
            needs,
            next_step: l.next_step,
            notes: l.notes,
        });
    }
    if visits.is_empty() {
        return Err(format!("{}: no records", path.display()));
    }
    Ok(Workload {
        visits,
        youths,
        remapped,
    })
}

/// Real INSEE codes by département, in code order, built on first use of each.
#[derive(Default)]
struct CommuneMap(HashMap<String, Vec<&'static str>>);

impl CommuneMap {
    fn real(&mut self, code: &str) -> Option<String> {
        let all = Communes::global();
        if all.get(code).is_some() {
            return Some(code.to_string());
        }
        let department = code.get(..2)?;
        let number: usize = code.get(2..)?.parse().ok()?;
        let real = self
            .0
            .entry(department.to_string())
            .or_insert_with(|| all.in_department(department).map(|c| c.code).collect());
        (!real.is_empty()).then(|| real[number % real.len()].to_string())
    }
}

/// 10:00 UTC on the workload's day.
fn occurred_at(date: NaiveDate) -> DateTime<FixedOffset> {
    (date.and_time(NaiveTime::MIN) + TimeDelta::hours(10))
        .and_utc()
        .fixed_offset()
}

fn youth_of(team: Uuid, workload_id: Uuid, first_contact: NaiveDate) -> Youth {
    Youth {
        team_id: team,
        identity_level: IdentityLevel::AliasOnly,
        alias: Some(format!("Jeune {}", &workload_id.simple().to_string()[..8])),
        first_name: None,
        last_name: None,
        birth_date: None,
        birth_year: None,
        age_band: Some(AgeBand::From18To21),
        sex: None,
        phone: None,
        email: None,
        other_contact: None,
        home_commune: None,
        referral_source: ReferralSource::Outreach,
        referral_detail: None,
        referral_date: None,
        profile_flags: BTreeSet::new(),
        situation: Situation::Neet,
        followed_by: None,
        first_contact_date: first_contact,
        notice_given_on: None,
        status: YouthStatus::Identified,
    }
}

fn contact_of(v: &Visit, team: Uuid, youth: Uuid) -> Contact {
    Contact {
        team_id: team,
        youth_ids: BTreeSet::from([youth]),
        tour_id: None,
        member_ids: BTreeSet::from([MEMBER]),
        occurred_at: occurred_at(v.date),
        commune: v.commune.clone(),
        kind: v.kind,
        notes: v.notes.clone(),
        needs: v.needs.clone(),
        next_step: Some(v.next_step.clone()),
        next_step_due: None,
    }
}

/// What tablet A created: our ids for the workload's.
struct Made {
    /// (our id, the record), in the workload's order of young people.
    youths: Vec<(Uuid, Youth)>,
    youth_ids: HashMap<Uuid, Uuid>,
    /// Our id of each workload record, by index.
    contacts: Vec<Uuid>,
}

fn create_all(store: &mut Store, work: &Workload, team: Uuid) -> Fallible<Made> {
    let mut youths = Vec::with_capacity(work.youths.len());
    for chunk in work.youths.chunks(BATCH) {
        store
            .batch(|b| {
                for &(wid, first) in chunk {
                    let y = youth_of(team, wid, first);
                    youths.push((b.create(&y)?, y));
                }
                Ok(())
            })
            .map_err(|e| format!("local create of young people: {e}"))?;
    }
    let youth_ids: HashMap<Uuid, Uuid> = work
        .youths
        .iter()
        .zip(&youths)
        .map(|((wid, _), (id, _))| (*wid, *id))
        .collect();
    let mut contacts = Vec::with_capacity(work.n());
    for chunk in work.visits.chunks(BATCH) {
        store
            .batch(|b| {
                for v in chunk {
                    contacts.push(b.create(&contact_of(v, team, youth_ids[&v.youth]))?);
                }
                Ok(())
            })
            .map_err(|e| format!("local create of contacts: {e}"))?;
    }
    Ok(Made {
        youths,
        youth_ids,
        contacts,
    })
}

fn differ<T: PartialEq + Debug>(out: &mut Vec<String>, field: &str, got: &T, want: &T) {
    if got != want {
        out.push(format!("{field}: {got:?} instead of {want:?}"));
    }
}

/// Every field of a contact read back, against its workload record.
fn contact_differences(v: &Visit, got: &Contact, team: Uuid, youth: Uuid) -> Vec<String> {
    // Destructured so that a new field of `Contact` fails to compile here until checked.
    let Contact {
        team_id,
        youth_ids,
        tour_id,
        member_ids,
        occurred_at: at,
        commune,
        kind,
        notes,
        needs,
        next_step,
        next_step_due,
    } = got;
    let mut d = Vec::new();
    differ(&mut d, "team_id", team_id, &team);
    differ(&mut d, "youth_ids", youth_ids, &BTreeSet::from([youth]));
    differ(&mut d, "tour_id", tour_id, &None);
    differ(&mut d, "member_ids", member_ids, &BTreeSet::from([MEMBER]));
    differ(&mut d, "date", &at.date_naive(), &v.date);
    differ(&mut d, "occurred_at", at, &occurred_at(v.date));
    differ(&mut d, "commune", commune, &v.commune);
    differ(&mut d, "kind", kind, &v.kind);
    differ(&mut d, "notes", notes, &v.notes);
    differ(&mut d, "needs", needs, &v.needs);
    differ(&mut d, "next_step", next_step, &Some(v.next_step.clone()));
    differ(&mut d, "next_step_due", next_step_due, &None);
    d
}

/// Checks that `store` holds exactly what A created, field by field.
fn verify(store: &Store, work: &Workload, made: &Made, team: Uuid, who: &str) -> Fallible<()> {
    let held = store.ids().map_err(|e| format!("{who}: ids: {e}"))?.len();
    if held != work.records() {
        return Err(format!(
            "{who} holds {held} records instead of {}",
            work.records()
        ));
    }
    let mut bad = Vec::new();
    for (id, want) in &made.youths {
        match store.youth(*id) {
            Ok(got) if got == *want => {}
            Ok(got) => bad.push(format!("young person {id}: {got:?} instead of {want:?}")),
            Err(e) => bad.push(format!("young person {id}: {e}")),
        }
    }
    for (v, id) in work.visits.iter().zip(&made.contacts) {
        let youth = made.youth_ids[&v.youth];
        match store.contact(*id) {
            Ok(got) => {
                let d = contact_differences(v, &got, team, youth);
                if !d.is_empty() {
                    bad.push(format!("contact {} (ours {id}): {}", v.id, d.join("; ")));
                }
            }
            Err(e) => bad.push(format!("contact {} (ours {id}): {e}", v.id)),
        }
    }
    if bad.is_empty() {
        return Ok(());
    }
    Err(format!(
        "{who}: {} records differ from the workload; the first ones:\n  {}",
        bad.len(),
        bad[..bad.len().min(5)].join("\n  ")
    ))
}

/// One phase of one rep. Wire bytes are what crossed the proxy (HTTP headers included);
/// body bytes are what `SyncProgress` counted in request and response bodies.
#[derive(Debug, Clone, Copy, Default)]
struct Phase {
    seconds: f64,
    wire_up: usize,
    wire_down: usize,
    body_up: usize,
    body_down: usize,
    /// HTTP round trips (`SyncProgress.rounds`).
    rounds: u32,
    connections: usize,
}

impl Phase {
    fn json(&self) -> Value {
        json!({
            "seconds": self.seconds, "wire_up": self.wire_up, "wire_down": self.wire_down,
            "body_up": self.body_up, "body_down": self.body_down, "rounds": self.rounds,
            "tcp_connections": self.connections,
        })
    }
}

/// The proxy counts a chunk just after passing it on: wait until its counts stop moving.
fn settle(proxy: &CutProxy) {
    let mut last = proxy.counts();
    loop {
        std::thread::sleep(Duration::from_millis(25));
        let now = proxy.counts();
        if now == last {
            return;
        }
        last = now;
    }
}

fn timed_sync(
    device: &mut Device,
    proxy: &CutProxy,
    what: &str,
) -> Fallible<(Phase, repere_core::sync::SyncProgress)> {
    // Made before the clock starts: building the HTTPS client (root certificates) is a
    // tablet's start-up cost, not its sync's.
    let transport = HttpTransport::new(&proxy.url()).map_err(|e| format!("{what}: {e}"))?;
    settle(proxy);
    let ((up, down), conns) = (proxy.counts(), proxy.connections());
    let t = Instant::now();
    let p = device
        .store
        .sync(&transport, &fast_retries(), &mut |_| {})
        .map_err(|e| format!("{what}: sync failed: {e}"))?;
    let seconds = t.elapsed().as_secs_f64();
    settle(proxy);
    let (up1, down1) = proxy.counts();
    let phase = Phase {
        seconds,
        wire_up: up1 - up,
        wire_down: down1 - down,
        body_up: p.bytes_up,
        body_down: p.bytes_down,
        rounds: p.rounds,
        connections: proxy.connections() - conns,
    };
    Ok((phase, p))
}

fn check(ok: bool, what: impl FnOnce() -> String) -> Fallible<()> {
    if ok { Ok(()) } else { Err(what()) }
}

struct Rep {
    local: Phase,
    upload: Phase,
    download: Phase,
    empty: Phase,
    repull: Phase,
    /// Peak RSS in kB (VmHWM) of the server over the whole rep.
    server_kb: Option<u64>,
    /// Peak RSS in kB of this process (tablets A and B) over the rep, or since the process
    /// started when the kernel refused to reset it.
    tablets_kb: Option<u64>,
    tablets_reset: bool,
    /// SyncProgress of (a), (b), (d), (e): what moved.
    counts: Vec<Value>,
}

fn progress_json(p: &repere_core::sync::SyncProgress) -> Value {
    json!({"pushed": p.pushed, "acknowledged": p.acknowledged, "rejected": p.rejected,
           "pulled": p.pulled, "rounds": p.rounds})
}

fn enrolled(server: &TestServer, team: Uuid, seed: u64) -> Fallible<Device> {
    let mut d = Device::new(team, seed);
    d.store.set_member(MEMBER);
    d.enrol(&server.url(), &server.code(team))
        .map_err(|e| format!("enrolment: {e}"))?;
    Ok(d)
}

fn run_rep(work: &Workload) -> Fallible<Rep> {
    let records = work.records();
    let server = TestServer::start_sqlite();
    let team = *server.setup(1).first().ok_or("the server made no team")?;
    let proxy = CutProxy::start(server.port);
    // Writing 5 to clear_refs resets this process's VmHWM (Linux ≥ 4.0).
    let tablets_reset = fs::write("/proc/self/clear_refs", "5").is_ok();
    let mut a = enrolled(&server, team, 1)?;

    let t = Instant::now();
    let made = create_all(&mut a.store, work, team)?;
    let local = Phase {
        seconds: t.elapsed().as_secs_f64(),
        ..Phase::default()
    };
    eprintln!("  local create: {:.2} s", local.seconds);

    let (upload, p) = timed_sync(&mut a, &proxy, "(a) upload")?;
    check(p.acknowledged == records && p.rejected == 0, || {
        format!("(a) upload: {p:?}, expected {records} acknowledged")
    })?;
    let left = a.store.unsynced().map_err(|e| e.to_string())?.len();
    check(left == 0, || format!("(a) upload: {left} records unsent"))?;
    let mut counts = vec![progress_json(&p)];
    eprintln!("  (a) upload: {:.2} s", upload.seconds);

    let mut b = enrolled(&server, team, 2)?;
    let (download, p) = timed_sync(&mut b, &proxy, "(b) initial download")?;
    check(p.pulled == records, || {
        format!("(b) initial download: {p:?}, expected {records} pulled")
    })?;
    counts.push(progress_json(&p));
    eprintln!("  (b) initial download: {:.2} s", download.seconds);
    verify(&b.store, work, &made, team, "(b) tablet B")?;

    let (empty, p) = timed_sync(&mut b, &proxy, "(d) empty sync")?;
    check(p.pulled == 0 && p.pushed == 0, || {
        format!("(d) empty sync moved records: {p:?}")
    })?;
    counts.push(progress_json(&p));
    eprintln!("  (d) empty sync: {:.3} s", empty.seconds);

    a.enrol(&server.url(), &server.code(team))
        .map_err(|e| format!("(e) enrolling A again: {e}"))?;
    let (repull, p) = timed_sync(&mut a, &proxy, "(e) re-pull")?;
    check(p.pulled == records && p.pushed == 0, || {
        format!("(e) re-pull: {p:?}, expected {records} pulled")
    })?;
    counts.push(progress_json(&p));
    eprintln!("  (e) re-pull onto A: {:.2} s", repull.seconds);
    verify(&a.store, work, &made, team, "(e) tablet A")?;

    Ok(Rep {
        local,
        upload,
        download,
        empty,
        repull,
        server_kb: peak_rss_kb(&server.pid().to_string()),
        tablets_kb: peak_rss_kb("self"),
        tablets_reset,
        counts,
    })
}

/// VmHWM of a process, in kB.
fn peak_rss_kb(pid: &str) -> Option<u64> {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

fn median(mut xs: Vec<f64>) -> Option<f64> {
    xs.retain(|x| x.is_finite());
    xs.sort_by(f64::total_cmp);
    let m = xs.len() / 2;
    match xs.len() {
        0 => None,
        n if n % 2 == 1 => Some(xs[m]),
        _ => Some((xs[m - 1] + xs[m]) / 2.0),
    }
}

/// One system's medians in one phase, whatever the system.
#[derive(Debug, Clone, Default)]
struct Row {
    ok: usize,
    runs: usize,
    seconds: Option<f64>,
    up: Option<f64>,
    down: Option<f64>,
    /// Repère only: request and response bodies.
    body: Option<(f64, f64)>,
    /// HTTP requests (Repère: round trips; automerge: sync messages the server received).
    requests: Option<f64>,
    connections: Option<f64>,
}

impl Row {
    fn bytes(&self) -> Option<f64> {
        Some(self.up? + self.down?)
    }

    fn json(&self) -> Value {
        json!({"ok_runs": self.ok, "runs": self.runs, "seconds": self.seconds,
               "bytes_up": self.up, "bytes_down": self.down, "bytes_total": self.bytes(),
               "body_up": self.body.map(|b| b.0), "body_down": self.body.map(|b| b.1),
               "requests": self.requests, "tcp_connections": self.connections})
    }
}

const PHASES: [(&str, &str); 5] = [
    ("local", "local create (setup)"),
    ("a_upload", "(a) upload"),
    ("b_download", "(b) initial download"),
    ("d_empty_sync", "(d) empty sync"),
    ("e_repull", "(e) re-pull onto a full tablet (merge path)"),
];

fn repere_rows(reps: &[Rep]) -> HashMap<&'static str, Row> {
    let pick = |f: fn(&Rep) -> Phase, local: bool| {
        let ph: Vec<Phase> = reps.iter().map(f).collect();
        let m = |g: fn(&Phase) -> f64| median(ph.iter().map(g).collect());
        Row {
            ok: reps.len(),
            runs: reps.len(),
            seconds: m(|p| p.seconds),
            up: (!local).then(|| m(|p| p.wire_up as f64)).flatten(),
            down: (!local).then(|| m(|p| p.wire_down as f64)).flatten(),
            body: (!local)
                .then(|| Some((m(|p| p.body_up as f64)?, m(|p| p.body_down as f64)?)))
                .flatten(),
            requests: (!local).then(|| m(|p| f64::from(p.rounds))).flatten(),
            connections: (!local).then(|| m(|p| p.connections as f64)).flatten(),
        }
    };
    HashMap::from([
        ("local", pick(|r| r.local, true)),
        ("a_upload", pick(|r| r.upload, false)),
        ("b_download", pick(|r| r.download, false)),
        ("d_empty_sync", pick(|r| r.empty, false)),
        ("e_repull", pick(|r| r.repull, false)),
    ])
}

/// A peer's stock runs for one N (the tuned variants' files, `-ka…`/`-w…`, are left out).
struct Peer {
    name: &'static str,
    rows: HashMap<&'static str, Row>,
    /// Median peak RSS in MiB: server, A, B (complete runs only).
    rss: [Option<f64>; 3],
    failures: Vec<String>,
}

fn load_peer(dir: &Path, prefix: &str, name: &'static str, n: usize) -> Fallible<Option<Peer>> {
    let head = format!("{prefix}-n{n}-r");
    let mut runs: Vec<Value> = Vec::new();
    let entries = fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for entry in entries {
        let path = entry.map_err(|e| format!("{}: {e}", dir.display()))?.path();
        let Some(file) = path.file_name().and_then(|f| f.to_str()) else {
            continue;
        };
        let is_stock_rep = file
            .strip_prefix(&head)
            .and_then(|rest| rest.strip_suffix(".json"))
            .is_some_and(|rep| !rep.is_empty() && rep.bytes().all(|b| b.is_ascii_digit()));
        if is_stock_rep {
            let text = fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            runs.push(serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?);
        }
    }
    if runs.is_empty() {
        return Ok(None);
    }
    let num = |v: &Value, k: &str| v.get(k).and_then(Value::as_f64);
    let mut rows = HashMap::new();
    let locals: Vec<f64> = runs
        .iter()
        .filter_map(|r| num(r.get("local")?, "seconds"))
        .collect();
    rows.insert(
        "local",
        Row {
            ok: locals.len(),
            runs: runs.len(),
            seconds: median(locals),
            ..Row::default()
        },
    );
    for (key, _) in &PHASES[1..4] {
        let ph: Vec<&Value> = runs
            .iter()
            .filter_map(|r| {
                r.get("phases")?
                    .as_array()?
                    .iter()
                    .find(|p| p.get("phase").and_then(Value::as_str) == Some(key))
            })
            .collect();
        let m = |k: &str| median(ph.iter().filter_map(|p| num(p, k)).collect());
        rows.insert(
            *key,
            Row {
                ok: ph.len(),
                runs: runs.len(),
                seconds: m("seconds"),
                up: m("bytesUp"),
                down: m("bytesDown"),
                body: None,
                requests: m("httpRequests").or_else(|| m("serverSyncMsgsReceived")),
                connections: m("connections"),
            },
        );
    }
    let complete: Vec<&Value> = runs.iter().filter(|r| r.get("error").is_none()).collect();
    let rss = ["server", "clientA", "clientB"].map(|k| {
        median(
            complete
                .iter()
                .filter_map(|r| num(r.get("peakRssMiB")?, k))
                .collect(),
        )
    });
    let failures = runs
        .iter()
        .filter_map(|r| {
            let error = r.get("error")?.as_str()?.lines().next()?;
            Some(format!(
                "rep {}: {error}",
                r.get("rep").unwrap_or(&Value::Null)
            ))
        })
        .collect();
    Ok(Some(Peer {
        name,
        rows,
        rss,
        failures,
    }))
}

/// Stdout of a command, trimmed; `None` if it cannot run or fails.
fn output_of(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn fmt(x: Option<f64>, decimals: usize) -> String {
    let Some(x) = x else { return "–".into() };
    let s = format!("{x:.decimals$}");
    let (int, frac) = s
        .split_once('.')
        .map_or((s.as_str(), None), |(i, f)| (i, Some(f)));
    let (sign, digits) = int.strip_prefix('-').map_or(("", int), |d| ("-", d));
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    match frac {
        Some(f) => format!("{sign}{grouped}.{f}"),
        None => format!("{sign}{grouped}"),
    }
}

fn ratio(x: Option<f64>, decimals: usize) -> String {
    match x {
        // Two significant digits at least: automerge's empty sync is ~1,000 times ours.
        Some(r) if r.is_finite() && r < 0.1 => format!("×{r:.4}"),
        Some(r) if r.is_finite() => format!("×{r:.decimals$}"),
        _ => "–".into(),
    }
}

struct Context {
    n: usize,
    records: usize,
    youths: usize,
    remapped: usize,
    reps: usize,
    date: String,
    nproc: usize,
    load_before: String,
    load_after: String,
    node: String,
    commit: String,
    profile: &'static str,
}

fn table(cx: &Context, ours: &HashMap<&str, Row>, peers: &[Peer], reps: &[Rep]) -> String {
    let n = cx.n as f64;
    let mut s = format!(
        "## Repère vs the peers, N = {} workload contacts\n\n\
         {} · {} cores (`nproc`) · load average {} before, {} after · node {} · commit {} · \
         repere-server {} build on SQLite · medians: Repère over {} rep(s), each peer over its ok runs.\n\n\
         Repère moves {} records per full sync: the {} contacts and the {} young people they \
         refer to; the peers move {} documents. \"contacts/s\" and \"B/contact\" divide by the \
         N workload contacts for every system (comparable); \"records/s\" and \"B/record\" divide \
         by the records each system moved. Bytes are on the wire through a counting proxy, HTTP \
         headers included.\n\n",
        fmt(Some(n), 0),
        cx.date,
        cx.nproc,
        cx.load_before,
        cx.load_after,
        cx.node,
        cx.commit,
        cx.profile,
        cx.reps,
        fmt(Some(cx.records as f64), 0),
        fmt(Some(n), 0),
        fmt(Some(cx.youths as f64), 0),
        fmt(Some(n), 0),
    );
    s.push_str(
        "| phase | system | ok runs | seconds | contacts/s | records/s | bytes up / down | \
         B/contact | B/record | HTTP requests | TCP conns | Repère speed ÷ this | Repère bytes ÷ this |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    let empty = Row::default();
    for (key, label) in PHASES {
        let ours = ours.get(key).unwrap_or(&empty);
        for (system, row, records) in peers
            .iter()
            .map(|p| (p.name, p.rows.get(key), cx.n))
            .chain([("**Repère**", Some(ours), cx.records)])
        {
            let Some(row) = row else { continue };
            if row.runs == 0 {
                continue;
            }
            let is_ours = system == "**Repère**";
            let per_sec = |count: f64| Some(count / row.seconds?);
            let speed = (!is_ours)
                .then(|| Some(row.seconds? / ours.seconds?))
                .flatten();
            let bytes = (!is_ours)
                .then(|| Some(ours.bytes()? / row.bytes()?))
                .flatten();
            let wire = match (row.up, row.down) {
                (Some(u), Some(d)) => format!("{} / {}", fmt(Some(u), 0), fmt(Some(d), 0)),
                _ => "–".into(),
            };
            s.push_str(&format!(
                "| {label} | {system} | {}/{} | {} | {} | {} | {wire} | {} | {} | {} | {} | {} | {} |\n",
                row.ok,
                row.runs,
                fmt(row.seconds, 3),
                fmt(per_sec(n), 0),
                fmt(per_sec(records as f64), 0),
                fmt(row.bytes().map(|b| b / n), 1),
                fmt(row.bytes().map(|b| b / records as f64), 1),
                fmt(row.requests, 0),
                fmt(row.connections, 0),
                ratio(speed, 2),
                ratio(bytes, 2),
            ));
        }
    }
    let mib = |kb: fn(&Rep) -> Option<u64>| {
        median(
            reps.iter()
                .filter_map(kb)
                .map(|k| k as f64 / 1024.0)
                .collect(),
        )
    };
    for p in peers {
        s.push_str(&format!(
            "| peak RSS MiB server / A / B | {} | | {} / {} / {} | | | | | | | | | |\n",
            p.name,
            fmt(p.rss[0], 0),
            fmt(p.rss[1], 0),
            fmt(p.rss[2], 0)
        ));
    }
    s.push_str(&format!(
        "| peak RSS MiB server / tablets A+B | **Repère** | | {} / {} | | | | | | | | | |\n",
        fmt(mib(|r| r.server_kb), 0),
        fmt(mib(|r| r.tablets_kb), 0)
    ));
    let body = |key: &str| {
        ours.get(key)
            .and_then(|r| r.body)
            .map_or("–".into(), |(u, d)| {
                format!("{} / {}", fmt(Some(u), 0), fmt(Some(d), 0))
            })
    };
    s.push_str(&format!(
        "\nRepère's body bytes (SyncProgress, up / down): (a) {}, (b) {}, (d) {}, (e) {}. \
         \"HTTP requests\": Repère's sync round trips (SyncProgress.rounds; enrolment is not \
         counted), PouchDB's requests as express-pouchdb counted them, automerge-repo's sync \
         messages received by the server in (d) (it has no HTTP requests). \
         \"Repère speed ÷ this\" = this system's seconds ÷ Repère's (above 1: Repère is faster), \
         i.e. the ratio of contacts/s; \"Repère bytes ÷ this\" = Repère's wire bytes ÷ this \
         system's (below 1: Repère sends less). (e) has no peer counterpart. Local create is \
         setup, not comparable (PouchDB: one bulkDocs; automerge: N repo.create; Repère: {} \
         batches of ≤ 1,000 records, each validated, indexed and encrypted). Tablets A and B of \
         Repère run in this one process{}. {} workload contacts had a commune code that is not \
         an INSEE code and were remapped within their département.\n",
        body("a_upload"),
        body("b_download"),
        body("d_empty_sync"),
        body("e_repull"),
        cx.youths.div_ceil(BATCH) + cx.n.div_ceil(BATCH),
        if reps.iter().all(|r| r.tablets_reset) {
            " (its peak reset at the start of each rep)"
        } else {
            " (its peak since the process started: it could not be reset)"
        },
        fmt(Some(cx.remapped as f64), 0),
    ));
    for p in peers {
        for f in &p.failures {
            s.push_str(&format!("\n- {} failed, {f}", p.name));
        }
    }
    s.push('\n');
    s
}

fn run(args: &Args) -> Fallible<()> {
    if args.reps == 0 {
        return Err("--reps must be at least 1".into());
    }
    let work = load_workload(&args.workload)?;
    let n = work.n();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let out_dir = args.out_dir.clone().unwrap_or_else(|| {
        std::env::var_os("CARGO_TARGET_DIR")
            .map_or_else(|| root.join("target"), PathBuf::from)
            .join("race")
    });
    let load_before = load_average();
    eprintln!(
        "repere-race: N = {n} contacts, {} young people, {} communes remapped; {} reps",
        work.youths.len(),
        work.remapped,
        args.reps
    );
    let mut reps = Vec::with_capacity(args.reps);
    for rep in 1..=args.reps {
        eprintln!("rep {rep}/{}", args.reps);
        reps.push(run_rep(&work).map_err(|e| format!("rep {rep}: {e}"))?);
    }
    let ours = repere_rows(&reps);
    let mut peers = Vec::new();
    if let Some(dir) = &args.peers_out {
        for (prefix, name) in [("pouchdb", "PouchDB"), ("automerge", "automerge-repo")] {
            peers.extend(load_peer(dir, prefix, name, n)?);
        }
    }
    let git = |a: &[&str]| {
        let root = root.to_string_lossy().into_owned();
        output_of("git", &[&["-C", root.as_str()], a].concat())
    };
    let commit = match (
        git(&["rev-parse", "--short", "HEAD"]),
        git(&["status", "--porcelain", "--untracked-files=no"]),
    ) {
        (Some(c), Some(changes)) if !changes.is_empty() => format!("{c} (+ uncommitted changes)"),
        (Some(c), _) => c,
        (None, _) => "unknown".into(),
    };
    let cx = Context {
        n,
        records: work.records(),
        youths: work.youths.len(),
        remapped: work.remapped,
        reps: reps.len(),
        date: Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
        nproc: std::thread::available_parallelism().map_or(0, |p| p.get()),
        load_before,
        load_after: load_average(),
        node: output_of("node", &["--version"]).unwrap_or_else(|| "not found".into()),
        commit,
        profile: if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
    };
    let md = table(&cx, &ours, &peers, &reps);
    print!("{md}");

    let rows_json = |rows: &HashMap<&str, Row>| {
        Value::Object(
            rows.iter()
                .map(|(k, r)| (k.to_string(), r.json()))
                .collect(),
        )
    };
    let report = json!({
        "n": n, "youths": cx.youths, "records_moved": cx.records,
        "communes_remapped": cx.remapped, "workload": args.workload,
        "date": cx.date, "nproc": cx.nproc, "load_average_before": cx.load_before,
        "load_average_after": cx.load_after, "node": cx.node, "commit": cx.commit,
        "profile": cx.profile,
        "repere": {
            "median": rows_json(&ours),
            "reps": reps.iter().map(|r| json!({
                "local": r.local.json(), "a_upload": r.upload.json(),
                "b_download": r.download.json(), "d_empty_sync": r.empty.json(),
                "e_repull": r.repull.json(), "server_peak_rss_kb": r.server_kb,
                "tablets_peak_rss_kb": r.tablets_kb, "tablets_peak_reset": r.tablets_reset,
                "sync_progress_a_b_d_e": r.counts,
            })).collect::<Vec<_>>(),
        },
        "peers": peers.iter().map(|p| json!({
            "system": p.name, "median": rows_json(&p.rows),
            "peak_rss_mib_server_a_b": p.rss, "failures": p.failures,
        })).collect::<Vec<_>>(),
    });
    fs::create_dir_all(&out_dir).map_err(|e| format!("{}: {e}", out_dir.display()))?;
    let md_path = out_dir.join(format!("report-{n}.md"));
    fs::write(&md_path, &md).map_err(|e| format!("{}: {e}", md_path.display()))?;
    let json_path = out_dir.join(format!("report-{n}.json"));
    let pretty = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
    fs::write(&json_path, pretty).map_err(|e| format!("{}: {e}", json_path.display()))?;
    eprintln!("wrote {} and {}", md_path.display(), json_path.display());
    Ok(())
}

fn main() -> ExitCode {
    match run(&Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("repere-race: FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}

//! Store benchmarks: `cargo bench -p repere-core --bench store [-- NAME]`, NAME one of
//! `create_contact`, `save_form`, `large_store`, `indicators_60k` (all when omitted).
//! Under `cargo test` (no `--bench` argument) it runs a small smoke version instead.
//! Figures and targets: docs/BENCHMARKS.md.

use std::path::Path;
use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use repere_core::demo::DemoData;
use repere_core::document::{RecordDoc, to_json_fields};
use repere_core::indicators::{self, Dimension, Granularity, IndicatorInput, IndicatorQuery};
use repere_core::records::{ActionStatus, Contact};
use repere_core::{AnyRecord, Author, DuplicateProbe, Record, Store};
use rusqlite::Connection;
use uuid::Uuid;

const KEY: [u8; 32] = [42; 32];

struct Sizes {
    compare_ops: usize,
    youth: usize,
    contacts: usize,
    repeats: usize,
    /// The indicators' caseload: young people; twice as many visits, then actions and
    /// outcomes, 60,000 records in all at full size.
    caseload: usize,
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let sizes = if full {
        Sizes {
            compare_ops: 2_000,
            youth: 50_000,
            contacts: 10_000,
            repeats: 50,
            caseload: 15_000,
        }
    } else {
        Sizes {
            compare_ops: 50,
            youth: 500,
            contacts: 100,
            repeats: 3,
            caseload: 150,
        }
    };
    // The first argument that is not a flag picks the benchmarks whose name contains it.
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let run = |name: &str| filter.as_deref().is_none_or(|f| name.contains(f));
    let dir = tempfile::tempdir().expect("temp dir");
    if run("create_contact") {
        create_contact_vs_plain_insert(&dir.path().join("compare.db"), sizes.compare_ops);
    }
    if run("save_form") {
        save_form(&dir.path().join("forms.db"), sizes.compare_ops / 4);
    }
    if run("large_store") {
        large_store(&dir.path().join("large.db"), &sizes);
    }
    if run("indicators_60k") {
        indicators_60k(&dir.path().join("indicators.db"), &sizes);
    }
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn demo() -> DemoData {
    DemoData::new(
        7,
        Uuid::from_u128(1),
        [Uuid::from_u128(2), Uuid::from_u128(3)],
        Utc::now(),
    )
}

/// CPU time (user + system) of the calling thread, to the nanosecond. `getrusage` and
/// `/proc` count in clock ticks or lag behind the running thread; this clock is exact, so
/// a single commit can be measured. Declared here rather than adding the libc crate: std
/// links the C library already.
fn thread_cpu_time() -> Duration {
    #[repr(C)]
    struct Timespec {
        tv_sec: i64,
        tv_nsec: i64,
    }
    const CLOCK_THREAD_CPUTIME_ID: i32 = 3;
    unsafe extern "C" {
        fn clock_gettime(clock: i32, tp: *mut Timespec) -> i32;
    }
    let mut ts = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec (the layout and clock id of 64-bit Linux).
    let rc = unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// The WAL's state between commits, from the wal-index header at the start of the
/// `-shm` file (https://sqlite.org/walformat.html; native byte order).
struct WalIndex {
    /// The last valid frame (`mxFrame`).
    frames: u32,
    /// Changes each time a commit rewinds the WAL after a full checkpoint (`aSalt`).
    salt: [u8; 8],
    page_size: u32,
}

/// Read between commits, when no writer is active. Unlike the WAL file's size, it tells a
/// commit's own frames apart from the checkpoints' rewinds.
fn wal_index(db: &Path) -> WalIndex {
    use std::io::Read;
    let mut shm = db.as_os_str().to_owned();
    shm.push("-shm");
    let mut h = [0u8; 40];
    std::fs::File::open(&shm)
        .and_then(|mut f| f.read_exact(&mut h))
        .expect("wal-index header");
    let size = u16::from_ne_bytes([h[14], h[15]]);
    WalIndex {
        frames: u32::from_ne_bytes([h[16], h[17], h[18], h[19]]),
        salt: [h[32], h[33], h[34], h[35], h[36], h[37], h[38], h[39]],
        page_size: if size == 1 { 65_536 } else { u32::from(size) },
    }
}

/// The page numbers of the WAL's frames `frames` (0-based), from their plaintext headers.
fn wal_pages(db: &Path, frames: std::ops::Range<u32>, page_size: u32) -> Vec<u32> {
    use std::io::{Read, Seek, SeekFrom};
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    let mut file = std::fs::File::open(&wal).expect("wal");
    frames
        .map(|i| {
            let mut page = [0u8; 4];
            file.seek(SeekFrom::Start(
                32 + u64::from(i) * u64::from(page_size + 24),
            ))
            .and_then(|_| file.read_exact(&mut page))
            .expect("wal frame header");
            u32::from_be_bytes(page)
        })
        .collect()
}

/// What one side spent over the whole loop.
#[derive(Default)]
struct Cost {
    wall: Vec<Duration>,
    cpu: Duration,
    frames: u64,
    /// How many times each page was written, to name the B-trees behind the frames.
    pages: std::collections::HashMap<u32, u64>,
}

impl Cost {
    /// Times `commit` (one committed transaction) and counts the WAL frames it appended.
    fn measure(&mut self, db: &Path, commit: impl FnOnce()) {
        let before = wal_index(db);
        let (t, cpu) = (Instant::now(), thread_cpu_time());
        commit();
        self.cpu += thread_cpu_time() - cpu;
        self.wall.push(t.elapsed());
        let after = wal_index(db);
        // A new salt: this commit rewound the WAL after a checkpoint and wrote its frames
        // from the start.
        let first = if after.salt == before.salt {
            before.frames
        } else {
            0
        };
        self.frames += u64::from(after.frames - first);
        for page in wal_pages(db, first..after.frames, after.page_size) {
            *self.pages.entry(page).or_default() += 1;
        }
    }

    /// Pages written per record by B-tree (table or index), most first. Page 1, the file's
    /// header (its size, rewritten when the file grows), counts as `sqlite_schema`.
    fn by_btree(&self, conn: &Connection) -> String {
        let mut names = std::collections::BTreeMap::<String, u64>::new();
        let mut stmt = conn
            .prepare("SELECT name, pageno FROM dbstat")
            .expect("dbstat");
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, u32>(1)?)))
            .expect("dbstat");
        let mut seen = 0;
        for row in rows {
            let (name, page) = row.expect("dbstat row");
            if let Some(count) = self.pages.get(&page) {
                *names.entry(name).or_default() += count;
                seen += count;
            }
        }
        let free = self.pages.values().sum::<u64>() - seen;
        let mut names: Vec<_> = names
            .into_iter()
            .chain([("free list".into(), free)])
            .collect();
        names.sort_by_key(|(_, c)| std::cmp::Reverse(*c));
        names
            .iter()
            .filter(|(_, c)| *c > 0)
            .map(|(name, c)| format!("{name} {:.2}", *c as f64 / self.wall.len() as f64))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Same encrypted file, same pragmas, one committed transaction per record on both sides.
/// Wall time is the median per record; CPU time (this thread's user + system) and WAL
/// frames (pages written, each one page plus a 24-byte frame header) are totals over the
/// loop divided by the records. Run twice: alternating record by record, so that both sides
/// see the same disk (the figure of record); then in blocks of 100 records per side, because
/// alternating makes each commit empty the other connection's page cache (it then reads and
/// decrypts again every page it descends), which a tablet, with one connection, never pays.
fn create_contact_vs_plain_insert(path: &Path, n: usize) {
    let mut store = Store::open(path, &KEY).expect("store");
    let raw = Connection::open(path).expect("raw connection");
    let hex: String = KEY.iter().map(|b| format!("{b:02x}")).collect();
    raw.execute_batch(&format!(
        "PRAGMA key = \"x'{hex}'\"; PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;
         CREATE TABLE IF NOT EXISTS plain_json (id BLOB PRIMARY KEY, json TEXT NOT NULL);"
    ))
    .expect("plain table");
    let mut d = demo();
    let youth = store.create(&d.youth()).expect("youth");
    let mut run = |block: usize| {
        let (mut ours, mut plain) = (Cost::default(), Cost::default());
        for _ in 0..n.div_ceil(block) {
            for _ in 0..block {
                let contact = d.contact(&[youth]);
                ours.measure(path, || {
                    store.create(&contact).expect("create");
                });
            }
            for _ in 0..block {
                let contact = d.contact(&[youth]);
                plain.measure(path, || {
                    let json = serde_json::to_string(&contact).expect("json");
                    let tx = raw.unchecked_transaction().expect("tx");
                    tx.execute(
                        "INSERT INTO plain_json (id, json) VALUES (?1, ?2)",
                        rusqlite::params![Uuid::now_v7().as_bytes().as_slice(), json],
                    )
                    .expect("insert");
                    tx.commit().expect("commit");
                });
            }
        }
        (ours, plain)
    };
    let (ours, plain) = run(1);
    let (ours_blocks, plain_blocks) = run(100.min(n));
    let page = wal_index(path).page_size;
    let per = |c: &Cost| {
        let records = c.wall.len() as f64;
        (
            median(c.wall.clone()).as_secs_f64() * 1e6,
            c.cpu.as_secs_f64() * 1e6 / records,
            c.frames as f64 / records,
        )
    };
    let kb = |frames: f64| frames * f64::from(page + 24) / 1024.0;
    for (how, ours, plain) in [
        ("record by record", &ours, &plain),
        ("in blocks of 100", &ours_blocks, &plain_blocks),
    ] {
        let ((ow, oc, of), (pw, pc, pf)) = (per(ours), per(plain));
        println!(
            "create contact, {how}: wall {ow:.1} µs median, CPU {oc:.1} µs, {of:.2} pages ({:.1} KiB) written per record; \
             plain JSON insert: wall {pw:.1} µs, CPU {pc:.1} µs, {pf:.2} pages ({:.1} KiB); \
             ratios (target ≤ 3): wall {:.2}, CPU {:.2}, pages {:.2}",
            kb(of),
            kb(pf),
            ow / pw,
            oc / pc,
            of / pf,
        );
    }
    // What no store layout can save: the record's Automerge document, made and saved as
    // `Store::create` does, without the database.
    let author = Author {
        device_id: Uuid::from_u128(4),
        member_id: Uuid::from_u128(5),
    };
    let cpu = thread_cpu_time();
    for _ in 0..n {
        let contact = d.contact(&[youth]);
        let fields = to_json_fields(&contact).expect("fields");
        RecordDoc::create(Contact::KIND, Uuid::now_v7(), author, &fields, Utc::now())
            .expect("document")
            .save();
    }
    println!(
        "create contact, of which its Automerge document (made and saved, no database): CPU {:.1} µs per record",
        (thread_cpu_time() - cpu).as_secs_f64() * 1e6 / n as f64
    );
    println!(
        "create contact, pages per record by B-tree: {}",
        ours.by_btree(&raw)
    );
    println!(
        "plain JSON insert, pages per record by B-tree: {}",
        plain.by_btree(&raw)
    );
}

/// Saving a visit's form (decision 11): against the version it was read at when nothing
/// changed since, and when a colleague's change was merged in while it was open (the edit
/// is then made at the old version and merged back).
fn save_form(path: &Path, n: usize) {
    let mut store = Store::open(path, &KEY).expect("store");
    let mut colleague = Store::open(path.with_extension("b.db"), &KEY).expect("store");
    let mut d = demo();
    let youth = store.create(&d.youth()).expect("youth");
    let (mut current, mut stale) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for i in 0..n {
        let id = store.create(&d.contact(&[youth])).expect("contact");
        let form = store.read::<Contact>(id).expect("read");
        let mut record = form.record.clone();
        record.next_step = Some(format!("étape {i}"));
        let t = Instant::now();
        let version = store.update(id, &form.version, &record).expect("save");
        current.push(t.elapsed());

        // A colleague edits the notes; it reaches this tablet while the form is open.
        let (kind, bytes) = store.export_document(id).expect("export");
        colleague.merge_remote(kind, id, &bytes).expect("merge");
        colleague
            .edit::<Contact>(id, |c| c.notes.push_str(" Ajout d'un collègue."))
            .expect("edit");
        let (kind, bytes) = colleague.export_document(id).expect("export");
        store.merge_remote(kind, id, &bytes).expect("merge");
        record.next_step = Some(format!("étape {i} bis"));
        let t = Instant::now();
        store
            .update(id, &version, &record)
            .expect("save stale form");
        stale.push(t.elapsed());
    }
    println!(
        "save a visit's form (one field changed, committed): {:.1} µs median against the current version, {:.1} µs when a colleague's change came in while it was open",
        median(current).as_secs_f64() * 1e6,
        median(stale).as_secs_f64() * 1e6,
    );
}

fn large_store(path: &Path, sizes: &Sizes) {
    let mut d = demo();
    let t = Instant::now();
    {
        let mut store = Store::open(path, &KEY).expect("store");
        let mut ids = Vec::with_capacity(sizes.youth);
        for chunk in 0..sizes.youth.div_ceil(1000) {
            let batch: Vec<_> = (0..1000.min(sizes.youth - chunk * 1000))
                .map(|_| d.youth())
                .collect();
            store
                .batch(|b| {
                    for y in &batch {
                        ids.push(b.create(y)?);
                    }
                    Ok(())
                })
                .expect("youth batch");
        }
        for chunk in 0..sizes.contacts.div_ceil(1000) {
            let batch: Vec<_> = (0..1000.min(sizes.contacts - chunk * 1000))
                .map(|i| d.contact(&[ids[(chunk * 1000 + i) * 7 % ids.len()]]))
                .collect();
            store
                .batch(|b| batch.iter().try_for_each(|c| b.create(c).map(drop)))
                .expect("contact batch");
        }
    }
    let records = sizes.youth + sizes.contacts;
    println!(
        "built a store of {} young people + {} contacts in {:.1} s ({} bytes on disk)",
        sizes.youth,
        sizes.contacts,
        t.elapsed().as_secs_f64(),
        dir_size(path)
    );

    let mut open_list = Vec::new();
    for _ in 0..sizes.repeats {
        let t = Instant::now();
        let store = Store::open(path, &KEY).expect("open");
        let page = store.list_contacts(0, 50).expect("list");
        open_list.push(t.elapsed());
        assert_eq!(page.len(), 50.min(sizes.contacts));
    }
    println!(
        "open a store of {records} records + list the first 50 contacts: {:.2} ms median (target ≤ 50 ms)",
        median(open_list).as_secs_f64() * 1e3
    );

    let store = Store::open(path, &KEY).expect("open");
    let queries = [
        "kev",
        "chloé",
        "martin",
        "stenay",
        "lea verdun",
        "océane",
        "dupont kevin",
        "sedan",
    ];
    let mut search = Vec::new();
    for i in 0..sizes.repeats * queries.len() {
        let t = Instant::now();
        let hits = store
            .search_youth(queries[i % queries.len()], 50)
            .expect("search");
        search.push(t.elapsed());
        std::hint::black_box(hits);
    }
    println!(
        "name search among {} young people (50 hits max): {:.2} ms median (target ≤ 10 ms)",
        sizes.youth,
        median(search).as_secs_f64() * 1e3
    );

    let probes = [
        ("Kevyn", 2007, "55502"),
        ("Chloe", 2004, "08105"),
        ("Matheo", 2001, "55545"),
        ("Oceanne", 2003, "08409"),
    ];
    let mut dup = Vec::new();
    for i in 0..sizes.repeats * probes.len() {
        let (name, year, commune) = probes[i % probes.len()];
        let probe = DuplicateProbe {
            first_name: Some(name.into()),
            birth_year: Some(year),
            home_commune: Some(commune.into()),
            ..Default::default()
        };
        let t = Instant::now();
        let similar = store.find_similar_youth(&probe, 5).expect("duplicates");
        dup.push(t.elapsed());
        std::hint::black_box(similar);
    }
    println!(
        "duplicate check among {} young people: {:.2} ms median (target ≤ 10 ms)",
        sizes.youth,
        median(dup).as_secs_f64() * 1e3
    );
    drop(store);
    lists(path, sizes, &mut d);
}

/// The screens' lists (issue 11) on the same store, with a few tours, actions, outcomes
/// and questions added, and one young person with a long file. Cold: the first call right
/// after opening; warm: repeated calls on the open store.
fn lists(path: &Path, sizes: &Sizes, d: &mut DemoData) {
    use repere_core::records::{ReviewTask, ReviewTaskStatus};
    let mut store = Store::open(path, &KEY).expect("open");
    let heavy = store.create(&d.youth()).expect("youth");
    let extra = sizes.contacts / 10;
    store
        .batch(|b| {
            for _ in 0..extra {
                b.create(&d.tour())?;
                b.create(&d.action(heavy))?;
            }
            for _ in 0..40 {
                let visit = b.create(&d.contact(&[heavy]))?;
                b.create(&ReviewTask {
                    team_id: Uuid::from_u128(1),
                    contact_id: visit,
                    question: "Quel club ?".into(),
                    asked_by: "Coordination".into(),
                    asked_at: (Utc::now() - chrono::Duration::hours(1)).fixed_offset(),
                    answer: String::new(),
                    answered_by: None,
                    answered_at: None,
                    status: ReviewTaskStatus::Open,
                })?;
                b.create(&d.outcome(heavy))?;
            }
            Ok(())
        })
        .expect("extras");
    drop(store);
    let today = Utc::now().date_naive();
    type Query = fn(&Store, Uuid, chrono::NaiveDate) -> usize;
    let queries: [(&str, Query); 6] = [
        ("« à faire », first 50", |s, _, _| {
            s.todo(0, 50).expect("todo").len()
        }),
        ("recent visits, first 50", |s, _, _| {
            s.recent_visits(0, 50).expect("visits").len()
        }),
        ("visits of a day (yesterday's)", |s, _, t| {
            s.visits_on(t - chrono::Duration::days(1), 0, 100)
                .expect("visits")
                .len()
        }),
        ("tours of a day", |s, _, t| {
            s.tours_on(t).expect("tours").len()
        }),
        ("tours of a year, first 50", |s, _, t| {
            s.tours_between(t - chrono::Duration::days(365), t, 0, 50)
                .expect("tours")
                .len()
        }),
        (
            "a young person's file (40 visits, actions, outcomes, questions; 20 of each)",
            |s, y, _| s.youth_file(y, 20).expect("file").visits.len(),
        ),
    ];
    for (name, query) in queries {
        let mut cold = Vec::new();
        for _ in 0..sizes.repeats.min(10) {
            let store = Store::open(path, &KEY).expect("open");
            let t = Instant::now();
            std::hint::black_box(query(&store, heavy, today));
            cold.push(t.elapsed());
        }
        let store = Store::open(path, &KEY).expect("open");
        let mut warm = Vec::new();
        for _ in 0..sizes.repeats {
            let t = Instant::now();
            std::hint::black_box(query(&store, heavy, today));
            warm.push(t.elapsed());
        }
        println!(
            "list {name}: cold {:.2} ms, warm {:.2} ms median (target ≤ 10 ms)",
            median(cold).as_secs_f64() * 1e3,
            median(warm).as_secs_f64() * 1e3
        );
    }
}

/// A caseload of `caseload` young people, two visits each (one in five a group visit of two
/// or three), two actions for three young people (three in four done), one outcome for three.
fn indicators_60k(path: &Path, sizes: &Sizes) {
    let mut d = demo();
    let n = sizes.caseload;
    let t = Instant::now();
    let mut ids = Vec::with_capacity(n);
    {
        let mut store = Store::open(path, &KEY).expect("store");
        let youth: Vec<_> = (0..n).map(|_| d.youth()).collect();
        for chunk in youth.chunks(1000) {
            store
                .batch(|b| {
                    for y in chunk {
                        ids.push(b.create(y)?);
                    }
                    Ok(())
                })
                .expect("youth batch");
        }
        let mut records: Vec<AnyRecord> = Vec::new();
        for i in 0..2 * n {
            let group = if i % 5 == 0 { 1 + i % 2 } else { 0 };
            let who: Vec<_> = (0..=group).map(|g| ids[(i * 7 + g * 13) % n]).collect();
            records.push(d.contact(&who).into());
        }
        for i in 0..2 * n / 3 {
            let mut a = d.action(ids[(i * 11) % n]);
            if i % 4 == 3 {
                a.status = ActionStatus::Planned;
            }
            records.push(a.into());
        }
        for i in 0..n / 3 {
            records.push(d.outcome(ids[(i * 5) % n]).into());
        }
        for chunk in records.chunks(1000) {
            store
                .batch(|b| {
                    for r in chunk {
                        match r {
                            AnyRecord::Contact(c) => b.create(c).map(drop)?,
                            AnyRecord::Action(a) => b.create(a).map(drop)?,
                            AnyRecord::Outcome(o) => b.create(o).map(drop)?,
                            _ => {}
                        }
                    }
                    Ok(())
                })
                .expect("batch");
        }
    }
    let records = n + 2 * n + 2 * n / 3 + n / 3;
    println!(
        "indicators_60k: built a caseload of {records} records ({n} young people) in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let today = Utc::now().date_naive();
    let query = |dimension| IndicatorQuery {
        from: today - TimeDelta::days(730),
        to: today,
        granularity: Granularity::Month,
        teams: None,
        dimension,
    };
    let (total, by_commune) = (query(None), query(Some(Dimension::Commune)));

    // Cold: a store just opened (empty page cache: every page read is decrypted again).
    let mut cold = Vec::new();
    for _ in 0..sizes.repeats.min(20) {
        let store = Store::open(path, &KEY).expect("open");
        let t = Instant::now();
        let report = store.indicators(&by_commune).expect("indicators");
        cold.push(t.elapsed());
        std::hint::black_box(report);
    }
    let store = Store::open(path, &KEY).expect("open");
    let (mut read, mut counted, mut warm_total, mut warm_commune) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..sizes.repeats {
        let t = Instant::now();
        let facts = store.indicator_facts().expect("facts");
        read.push(t.elapsed());
        let t = Instant::now();
        std::hint::black_box(indicators::count(&facts, &by_commune).expect("count"));
        counted.push(t.elapsed());
        let t = Instant::now();
        std::hint::black_box(store.indicators(&total).expect("indicators"));
        warm_total.push(t.elapsed());
        let t = Instant::now();
        std::hint::black_box(store.indicators(&by_commune).expect("indicators"));
        warm_commune.push(t.elapsed());
    }
    let ms = |v: Vec<Duration>| median(v).as_secs_f64() * 1e3;
    println!(
        "indicators_60k: tablet indicators over {records} records, 24 months by commune: cold {:.1} ms, warm {:.1} ms median (target ≤ 50 ms); totals only, warm {:.1} ms; of which reading the rows {:.1} ms, counting {:.1} ms",
        ms(cold),
        ms(warm_commune),
        ms(warm_total),
        ms(read),
        ms(counted),
    );

    // The way before issue 11, for comparison: every document parsed.
    let t = Instant::now();
    let mut input = IndicatorInput::default();
    for (_, id) in store.ids().expect("ids") {
        input.add(id, store.record(id).expect("record"));
    }
    let report = indicators::compute(&input, &by_commune).expect("compute");
    println!(
        "indicators_60k: the same from the documents (every one parsed): {:.0} ms",
        t.elapsed().as_secs_f64() * 1e3
    );
    assert_eq!(
        report,
        store.indicators(&by_commune).expect("indicators"),
        "the tablet's figures are the documents' figures"
    );
}

fn dir_size(path: &Path) -> u64 {
    let Some(dir) = path.parent() else { return 0 };
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

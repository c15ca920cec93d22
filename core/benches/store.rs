//! Store benchmarks: `cargo bench -p repere-core --bench store [-- NAME]`, NAME one of
//! `create_contact`, `save_form`, `large_store`, `indicators_60k` (all when omitted).
//! Under `cargo test` (no `--bench` argument) it runs a small smoke version instead.
//! Figures and targets: docs/BENCHMARKS.md.

use std::path::Path;
use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use repere_core::demo::DemoData;
use repere_core::indicators::{self, Dimension, Granularity, IndicatorInput, IndicatorQuery};
use repere_core::records::{ActionStatus, Contact};
use repere_core::{AnyRecord, DuplicateProbe, Store};
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

/// Same encrypted file, same pragmas, one committed transaction per record on both sides.
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
    let (mut ours, mut plain) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for _ in 0..n {
        let contact = d.contact(&[youth]);
        let t = Instant::now();
        store.create(&contact).expect("create");
        ours.push(t.elapsed());

        let contact = d.contact(&[youth]);
        let t = Instant::now();
        let json = serde_json::to_string(&contact).expect("json");
        let tx = raw.unchecked_transaction().expect("tx");
        tx.execute(
            "INSERT INTO plain_json (id, json) VALUES (?1, ?2)",
            rusqlite::params![Uuid::now_v7().as_bytes().as_slice(), json],
        )
        .expect("insert");
        tx.commit().expect("commit");
        plain.push(t.elapsed());
    }
    let (o, p) = (median(ours), median(plain));
    println!(
        "create contact: {:.1} µs median; plain JSON insert: {:.1} µs; ratio {:.2} (target ≤ 3)",
        o.as_secs_f64() * 1e6,
        p.as_secs_f64() * 1e6,
        o.as_secs_f64() / p.as_secs_f64()
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

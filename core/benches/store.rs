//! Store benchmarks: `cargo bench -p repere-core --bench store`.
//! Under `cargo test` (no `--bench` argument) it runs a small smoke version instead.
//! Figures and targets: docs/BENCHMARKS.md.

use std::path::Path;
use std::time::{Duration, Instant};

use chrono::Utc;
use repere_core::demo::DemoData;
use repere_core::records::Contact;
use repere_core::{DuplicateProbe, Store};
use rusqlite::Connection;
use uuid::Uuid;

const KEY: [u8; 32] = [42; 32];

struct Sizes {
    compare_ops: usize,
    youth: usize,
    contacts: usize,
    repeats: usize,
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let sizes = if full {
        Sizes {
            compare_ops: 2_000,
            youth: 50_000,
            contacts: 10_000,
            repeats: 50,
        }
    } else {
        Sizes {
            compare_ops: 50,
            youth: 500,
            contacts: 100,
            repeats: 3,
        }
    };
    let dir = tempfile::tempdir().expect("temp dir");
    create_contact_vs_plain_insert(&dir.path().join("compare.db"), sizes.compare_ops);
    save_form(&dir.path().join("forms.db"), sizes.compare_ops / 4);
    large_store(&dir.path().join("large.db"), &sizes);
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
    let queries: [(&str, Query); 5] = [
        ("« à faire », first 50", |s, _, _| {
            s.todo(0, 50).expect("todo").len()
        }),
        ("recent visits, first 50", |s, _, _| {
            s.recent_visits(0, 50).expect("visits").len()
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

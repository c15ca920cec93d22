//! Sync benchmarks against the real server on loopback: `cargo bench -p repere-tests`.
//! Under `cargo test` (no `--bench` argument) it runs a small smoke version.
//! Figures and targets: docs/BENCHMARKS.md.

use std::io::Write;
use std::time::{Duration, Instant};

use repere_core::records::Contact;
use repere_tests::proxy::CutProxy;
use repere_tests::{Device, TestServer};

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let (youth, contacts, devices, rounds): (usize, usize, usize, usize) = if full {
        (4_000, 6_000, 50, 20)
    } else {
        (40, 60, 4, 2)
    };
    let server = TestServer::start();
    let teams = server.setup(2);
    let proxy = CutProxy::start(server.port);

    // A team's caseload, pushed by one tablet.
    let mut a = Device::enrolled(&server, teams[0], 1);
    let mut ids = Vec::new();
    for chunk in 0..youth.div_ceil(1000) {
        let batch: Vec<_> = (0..1000.min(youth - chunk * 1000))
            .map(|_| a.demo.youth())
            .collect();
        a.store
            .batch(|b| {
                batch
                    .iter()
                    .try_for_each(|y| b.create(y).map(|id| ids.push(id)))
            })
            .expect("youth");
    }
    for chunk in 0..contacts.div_ceil(1000) {
        let batch: Vec<Contact> = (0..1000.min(contacts - chunk * 1000))
            .map(|i| a.demo.contact(&[ids[(chunk * 1000 + i) % ids.len()]]))
            .collect();
        a.store
            .batch(|b| batch.iter().try_for_each(|c| b.create(c).map(drop)))
            .expect("contacts");
    }
    let records = youth + contacts;
    let t = Instant::now();
    let pushed = a.sync(&server).expect("push");
    println!(
        "push of {records} new records by one tablet: {:.2} s ({:.0} records/s, {} bytes up)",
        t.elapsed().as_secs_f64(),
        records as f64 / t.elapsed().as_secs_f64(),
        pushed.bytes_up
    );

    // A fresh tablet of the team gets everything.
    let mut fresh = Device::enrolled(&server, teams[0], 2);
    let t = Instant::now();
    let pulled = fresh.sync(&server).expect("initial sync");
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(pulled.pulled, records);
    println!(
        "initial sync of {records} records to a fresh tablet: {secs:.2} s, {:.0} records/s (target ≥ 30,000), {} bytes down ({:.0} B/record), {} rounds",
        records as f64 / secs,
        pulled.bytes_down,
        pulled.bytes_down as f64 / records as f64,
        pulled.rounds
    );

    // Empty sync: nothing new on either side, bytes counted on the wire with HTTP headers.
    fresh.sync_via(&proxy.url()).expect("warm");
    proxy.take_counts();
    let empty = fresh.sync_via(&proxy.url()).expect("empty sync");
    let (up, down) = proxy.take_counts();
    println!(
        "empty sync: {} round trip(s); bodies {} B up / {} B down; on the wire with HTTP headers {up} B up / {down} B down (target < 512 each way)",
        empty.rounds, empty.bytes_up, empty.bytes_down
    );

    // The same over HTTPS with the store's own client (as the apps sync): a local TLS
    // endpoint counts the handshakes; the second sync must need none. 100 stay within one
    // device's burst of syncs (`SYNC_BUCKET`): past it the server refuses with 429 before
    // reading the request, which closes the connection, and the retry opens a new one.
    https_empty_sync(&server, teams[1], if full { 100 } else { 5 });

    // One new contact, with a note of its own.
    let mut c = fresh.demo.contact(&[ids[0]]);
    c.notes = "Rencontré au city-stade avec deux amis ; il cherche un apprentissage en menuiserie \
               mais n'a pas de moyen de transport depuis Mouzon."
        .into();
    let json = serde_json::to_string(&c).expect("json");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(json.as_bytes()).expect("gzip");
    let gz = gz.finish().expect("gzip").len();
    fresh.store.create(&c).expect("contact");
    proxy.take_counts();
    let one = fresh.sync_via(&proxy.url()).expect("sync one");
    let (up, _) = proxy.take_counts();
    let marginal = one.bytes_up.saturating_sub(empty.bytes_up);
    println!(
        "one new contact: request body {} B ({marginal} B over an empty sync); its JSON {} B, gzip'd {gz} B: ratio {:.2} (target ≤ 1.5); wire {up} B up with headers",
        one.bytes_up,
        json.len(),
        marginal as f64 / gz as f64
    );

    // Throughput: tablets of another team syncing small changes at once.
    let mut tablets: Vec<Device> = (0..devices)
        .map(|i| Device::enrolled(&server, teams[1], 100 + i as u64))
        .collect();
    for d in &mut tablets {
        d.sync(&server).expect("first sync");
    }
    let url = server.url();
    let t = Instant::now();
    let handles: Vec<_> = tablets
        .into_iter()
        .map(|mut d| {
            let url = url.clone();
            std::thread::spawn(move || {
                let mut latencies = Vec::new();
                for _ in 0..rounds {
                    let y = d.demo.youth();
                    d.store.create(&y).expect("youth");
                    let s = Instant::now();
                    d.sync_via(&url).expect("incremental sync");
                    latencies.push(s.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies: Vec<Duration> = handles
        .into_iter()
        .flat_map(|h| h.join().expect("thread"))
        .collect();
    let secs = t.elapsed().as_secs_f64();
    latencies.sort();
    println!(
        "{devices} tablets syncing at once: {} incremental syncs in {secs:.2} s = {:.0} syncs/s; latency median {:.1} ms, p95 {:.1} ms",
        latencies.len(),
        latencies.len() as f64 / secs,
        latencies[latencies.len() / 2].as_secs_f64() * 1e3,
        latencies[latencies.len() * 95 / 100].as_secs_f64() * 1e3
    );
}

fn https_empty_sync(server: &TestServer, team: uuid::Uuid, repeats: usize) {
    use repere_core::sync::Cancellation;
    let relay = repere_tests::tls::TlsRelay::start(server.port);
    let device = Device::new(team, 77);
    let client =
        repere_transport::SyncClient::with_extra_root(device.store, repere_tests::tls::CA_PEM);
    client
        .enrol(&relay.url(), &server.code(team), "tablette https", false)
        .expect("enrols over https");
    let never = Cancellation::new();
    client.sync(&never, &mut |_| {}).expect("first sync");
    let after_first = relay.handshakes();
    let mut times = Vec::new();
    let mut rounds = 0;
    for _ in 0..repeats {
        let t = Instant::now();
        rounds += client.sync(&never, &mut |_| {}).expect("empty sync").rounds;
        times.push(t.elapsed());
    }
    times.sort();
    println!(
        "empty sync over HTTPS, again ({repeats}×): {:.2} round trip(s) each, {} new TLS handshake(s) after the first sync (target 1 and 0); median {:.2} ms",
        rounds as f64 / repeats as f64,
        relay.handshakes() - after_first,
        times[times.len() / 2].as_secs_f64() * 1e3
    );
    drop(device.dir);
}

//! Several stateless server instances on one PostgreSQL database (issue 13): tablets push
//! to all of them at once while others pull from all of them, and no tablet's cursor may
//! pass over a log position committed after a later one (the sequence-gap trap). Runs
//! when `REPERE_TEST_DATABASE_URL` names a PostgreSQL server (`scripts/test-all.sh` sets
//! it); skipped with a note otherwise.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use repere_core::sync::Transport;
use repere_core::sync::protocol::{self, PROTOCOL_VERSION, SYNC_PATH, SyncRequest};
use repere_tests::{Device, TestServer, snapshot};
use repere_transport::HttpTransport;
use uuid::Uuid;

const INSTANCES: usize = 3;
const TEAMS: usize = 2;
/// Pushing tablets per team and instance, and the rounds each makes.
const PUSHERS: usize = 2;
const ROUNDS: usize = 8;

/// What a raw puller saw: every cursor it was given, and each record with the cursor of
/// the answer that brought it.
#[derive(Default)]
struct Seen {
    cursors: Vec<u64>,
    records: BTreeMap<Uuid, u64>,
}

/// One pull page at a time (small pages: many cursors), as a tablet's sync client does.
fn pull_page(t: &HttpTransport, token: &str, cursor: u64, seen: &mut Seen) -> (u64, bool) {
    let request = SyncRequest {
        cursor,
        pushes: Vec::new(),
        pull_limit: 5,
        team: Default::default(),
        report: Default::default(),
        access_requests: Vec::new(),
    };
    let body = protocol::encode_request(PROTOCOL_VERSION, &request);
    // A refusal (the device's sync budget, 429) is waited out, as the tablets do.
    let mut tries = 0;
    let answer = loop {
        match t.post(SYNC_PATH, Some(token), body.clone()) {
            Ok(answer) => break answer,
            Err(e) if tries < 30 => {
                tries += 1;
                eprintln!("pull refused ({e}); waiting");
                std::thread::sleep(Duration::from_millis(500));
            }
            Err(e) => panic!("pull failed: {e}"),
        }
    };
    let response = protocol::decode_response(&answer).expect("a sync answer");
    assert!(
        response.cursor >= cursor,
        "cursor went back from {cursor} to {}",
        response.cursor
    );
    for doc in &response.docs {
        seen.records.entry(doc.id).or_insert(response.cursor);
    }
    seen.cursors.push(response.cursor);
    (response.cursor, response.more)
}

#[test]
fn tablets_on_three_instances_miss_no_position_of_the_shared_log() {
    let Some(servers) = TestServer::instances(INSTANCES, &[]) else {
        eprintln!("skipped: REPERE_TEST_DATABASE_URL is not set (scripts/test-all.sh sets it)");
        return;
    };
    let teams = servers[0].setup(TEAMS);
    let servers = Arc::new(servers);

    // Raw pullers: one per team on every instance, polling while the pushes run.
    let pushing = Arc::new(AtomicBool::new(true));
    let mut pullers = Vec::new();
    for (t, &team) in teams.iter().enumerate() {
        for i in 0..INSTANCES {
            let mut tablet = Device::enrolled(&servers[i], team, 900 + (t * INSTANCES + i) as u64);
            let token = tablet.token();
            let url = servers[i].url();
            let pushing = pushing.clone();
            pullers.push(std::thread::spawn(move || {
                let transport = HttpTransport::new(&url).expect("transport");
                let mut seen = Seen::default();
                let mut cursor = 0;
                loop {
                    let still_pushing = pushing.load(Ordering::SeqCst);
                    let (next, more) = pull_page(&transport, &token, cursor, &mut seen);
                    cursor = next;
                    if !more {
                        if !still_pushing {
                            break;
                        }
                        std::thread::sleep(Duration::from_millis(150));
                    }
                }
                (team, seen, tablet)
            }));
        }
    }

    // Pushing tablets (real stores) on every instance, each syncing after every round.
    let made: Arc<Mutex<BTreeMap<Uuid, BTreeSet<Uuid>>>> = Arc::default();
    let mut pushers = Vec::new();
    for (t, &team) in teams.iter().enumerate() {
        for i in 0..INSTANCES {
            for p in 0..PUSHERS {
                let servers = servers.clone();
                let made = made.clone();
                let seed = 100 + (((t * INSTANCES) + i) * PUSHERS + p) as u64;
                pushers.push(std::thread::spawn(move || {
                    let server = &servers[i];
                    let mut tablet = Device::enrolled(server, team, seed);
                    let mut mine = BTreeSet::new();
                    for _ in 0..ROUNDS {
                        let youth = tablet.demo.youth();
                        let y = tablet.store.create(&youth).expect("youth");
                        let contact = tablet.demo.contact(&[y]);
                        let c = tablet.store.create(&contact).expect("contact");
                        mine.extend([y, c]);
                        tablet.sync(server).expect("push");
                    }
                    made.lock()
                        .expect("made")
                        .entry(team)
                        .or_default()
                        .extend(mine);
                    tablet
                }));
            }
        }
    }
    let pushers: Vec<Device> = pushers
        .into_iter()
        .map(|h| h.join().expect("pusher"))
        .collect();
    pushing.store(false, Ordering::SeqCst);
    let made = made.lock().expect("made").clone();

    for handle in pullers {
        let (team, seen, mut tablet) = handle.join().expect("puller");
        let expected = &made[&team];
        let got: BTreeSet<Uuid> = seen.records.keys().copied().collect();
        let missed: Vec<_> = expected.difference(&got).collect();
        assert!(
            missed.is_empty(),
            "a puller passed over {} of {} records of its team: {missed:?}",
            missed.len(),
            expected.len()
        );
        assert!(got.is_subset(expected), "a record of another team came");
        assert!(seen.cursors.windows(2).all(|w| w[0] <= w[1]));
        // The same tablet's own store, synced through each instance in turn, holds them all.
        for server in servers.iter() {
            tablet.sync(server).expect("catch-up");
        }
        let held: BTreeSet<Uuid> = snapshot(&tablet.store).into_iter().map(|r| r.0).collect();
        assert_eq!(&held, expected, "a store is short of its team's records");
    }
    // Every pushing tablet, after one more sync, holds exactly its team's records.
    for mut tablet in pushers {
        let server = &servers[0];
        tablet.sync(server).expect("final sync");
        let held: BTreeSet<Uuid> = snapshot(&tablet.store).into_iter().map(|r| r.0).collect();
        assert_eq!(held, made[&tablet.team]);
    }
    let per_team = INSTANCES * PUSHERS * ROUNDS * 2;
    assert!(made.values().all(|ids| ids.len() == per_team));
}

//! Randomized convergence: tablets of one team make random edits, go offline and sync in
//! random orders; at the end every replica is identical and every edit is there.
//! A few seeds run by default; REPERE_SOAK=1 runs many more, longer.

use std::collections::BTreeSet;

use repere_core::RecordKind;
use repere_core::records::{Contact, Youth, YouthStatus};
use repere_tests::{Device, TestServer, snapshot};
use uuid::Uuid;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn ids_of(d: &Device, kind: RecordKind) -> Vec<Uuid> {
    d.store
        .ids()
        .expect("ids")
        .into_iter()
        .filter(|(k, _)| *k == kind)
        .map(|(_, id)| id)
        .collect()
}

fn run(seed: u64, steps: usize) {
    let server = TestServer::start();
    let team = server.setup(1)[0];
    let mut devices: Vec<Device> = (0..3)
        .map(|i| Device::enrolled(&server, team, seed * 10 + i))
        .collect();
    for (i, d) in devices.iter_mut().enumerate() {
        d.store.set_member(Uuid::from_u128(i as u128 + 1));
    }
    let mut online = [true; 3];
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut created: BTreeSet<Uuid> = BTreeSet::new();
    let mut markers: Vec<(Uuid, String)> = Vec::new();

    for step in 0..steps {
        let i = rng.below(devices.len());
        let d = &mut devices[i];
        match rng.below(12) {
            0..=2 => {
                let y = d.demo.youth();
                created.insert(d.store.create(&y).expect("valid youth"));
            }
            3..=4 => {
                let youth = ids_of(d, RecordKind::Youth);
                if !youth.is_empty() {
                    let c = d.demo.contact(&[youth[rng.below(youth.len())]]);
                    created.insert(d.store.create(&c).expect("valid contact"));
                }
            }
            5..=6 => {
                let contacts = ids_of(d, RecordKind::Contact);
                if !contacts.is_empty() {
                    let id = contacts[rng.below(contacts.len())];
                    let marker = format!("[{seed}.{step}]");
                    d.store
                        .edit::<Contact>(id, |c| c.notes.push_str(&marker))
                        .expect("edit notes");
                    markers.push((id, marker));
                }
            }
            7 => {
                let youth = ids_of(d, RecordKind::Youth);
                if !youth.is_empty() {
                    let status = [
                        YouthStatus::Identified,
                        YouthStatus::Mobilised,
                        YouthStatus::Helped,
                    ][rng.below(3)];
                    let id = youth[rng.below(youth.len())];
                    d.store
                        .edit::<Youth>(id, |y| y.status = status)
                        .expect("edit status");
                }
            }
            8..=10 => {
                if online[i] {
                    d.sync(&server).expect("sync");
                }
            }
            _ => online[i] = !online[i],
        }
    }

    for _ in 0..2 {
        for d in &mut devices {
            d.sync(&server).expect("final sync");
        }
    }
    let reference = snapshot(&devices[0].store);
    for d in &devices[1..] {
        assert_eq!(
            snapshot(&d.store),
            reference,
            "seed {seed}: replicas differ"
        );
    }
    let ids: BTreeSet<Uuid> = reference.iter().map(|(id, _, _)| *id).collect();
    assert_eq!(ids, created, "seed {seed}: records lost or invented");
    for (id, marker) in &markers {
        let notes = devices[0].store.contact(*id).expect("contact").notes;
        assert!(
            notes.contains(marker.as_str()),
            "seed {seed}: lost note edit {marker}"
        );
    }
    for d in &devices {
        assert!(
            d.store.unsynced().expect("list").is_empty(),
            "seed {seed}: unsynced left"
        );
    }
}

#[test]
fn random_edits_offline_periods_and_sync_orders_converge() {
    let soak = std::env::var_os("REPERE_SOAK").is_some();
    let (seeds, steps) = if soak { (100, 400) } else { (6, 80) };
    for seed in 1..=seeds {
        run(seed, steps);
    }
}

//! Helpers shared by the core's integration tests.
#![allow(dead_code)]

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use repere_core::demo::DemoData;
use repere_core::{Clock, Store, StoreOptions};
use tempfile::TempDir;
use uuid::Uuid;

pub const KEY: [u8; 32] = [7; 32];

pub struct FixedClock(pub DateTime<Utc>);

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        self.0
    }
}

pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, 10, 30, 0)
        .single()
        .expect("valid date")
}

pub struct TestStore {
    pub dir: TempDir,
    pub store: Store,
    pub demo: DemoData,
}

pub fn team() -> Uuid {
    Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0001)
}

pub fn open_store(seed: u64) -> TestStore {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = open_at(&dir, &KEY);
    let demo = DemoData::new(
        seed,
        team(),
        [Uuid::from_u128(11), Uuid::from_u128(12)],
        now(),
    );
    TestStore { dir, store, demo }
}

pub fn open_at(dir: &TempDir, key: &[u8]) -> Store {
    Store::open_with(
        dir.path().join("store.db"),
        key,
        StoreOptions {
            clock: Arc::new(FixedClock(now())),
        },
    )
    .expect("store opens")
}

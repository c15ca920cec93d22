//! Repère's sync server: the hub the tablets sync with (docs/sync-protocol.md).
//!
//! - [`hub`]: the protocol logic (enrol, authenticate, sync, erase) over a storage trait;
//! - [`keys`]: the master key (database encryption, pseudonyms), kept outside the data;
//! - [`storage`]: that trait and its embedded SQLite implementation;
//! - [`http`]: the thin axum adapter;
//! - [`metrics`]: the counters `/metrics` serves (Prometheus text);
//! - [`serve`]: serving it over TCP within connection limits and timeouts;
//! - [`admin`], [`demo`]: administration and demo seeding over the same hub;
//! - [`coord`]: the coordinators' workspace (sign-in, review, indicators, exports, audit);
//! - [`web`]: its French pages, served by the same process on the same port.

pub mod admin;
pub mod coord;
pub mod demo;
pub mod http;
pub mod hub;
pub mod keys;
pub mod metrics;
mod pushed;
pub mod retention;
pub mod secret;
pub mod serve;
pub mod storage;
pub mod web;

pub use hub::{Hub, HubError};
pub use storage::Storage;
pub use storage::postgres::PostgresStorage;
pub use storage::sqlite::SqliteStorage;

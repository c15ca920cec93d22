//! Sync: the protocol shared with the server and the device's side of it. The logic works
//! on messages and the store, over a `Transport`; no code here touches sockets (the
//! tablet's HTTP transport is the `repere-transport` crate).

mod client;
pub mod protocol;

pub use client::{
    Applied, Cancellation, Enrolment, SyncBatch, SyncOptions, SyncProgress, SyncReport, Transport,
    TransportError, sync_shared,
};
pub use protocol::DecodeError;

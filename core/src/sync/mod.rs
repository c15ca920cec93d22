//! Sync: the protocol shared with the server, the device's side of it, and its HTTP
//! transport. The logic works on messages and the store; only `http` touches sockets.

mod client;
mod http;
pub mod protocol;

pub use client::{
    Applied, Enrolment, SyncBatch, SyncOptions, SyncProgress, SyncReport, Transport,
    TransportError, sync_shared,
};
pub use http::HttpTransport;
pub use protocol::DecodeError;

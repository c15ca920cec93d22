//! The server's tests: the hub driven directly (no sockets) with core's device stores, and
//! the HTTP adapter over real loopback sockets.
#![allow(dead_code)]

mod common;
mod http;
mod hub;

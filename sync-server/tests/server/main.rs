//! The server's tests: the hub driven directly (no sockets) with core's device stores, the
//! HTTP adapter over real loopback sockets, and the coordinators' pages.
#![allow(dead_code)]

mod access;
mod accounts;
mod admin_pages;
mod authorship;
mod break_glass;
mod common;
mod conflicts;
mod coord;
mod encryption;
mod enrol_limits;
mod erasure;
mod erasure_workflow;
mod exports;
mod filters;
mod hostile_forms;
mod http;
mod hub;
mod observe;
mod postgres;
mod rectify;
mod retention;
mod roster;
mod transfer;
mod versions;
mod wipe;

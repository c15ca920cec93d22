//! The uniffi skin of repere-core: type and error conversion, nothing else.
//! Kotlin package `fr.repere.ffi`, Swift module `RepereFFI` (see uniffi.toml).

#[cfg(target_os = "android")]
mod android;
mod communes;
mod error;
mod lending;
mod lists;
mod records;
mod review;
mod roster;
mod store;
#[cfg(test)]
mod tests;

pub use error::{FieldProblem, RepereError};
pub use records::{
    Action, Contact, NewAction, NewContact, NewOutcome, NewTour, NewYouth, Outcome, Tour, Youth,
};
pub use store::RepereStore;

uniffi::setup_scaffolding!("repere");

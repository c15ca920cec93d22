//! Repère core: the records of the outreach work (young people, contacts, tours,
//! mobilisation actions, outcomes), each an Automerge document, kept in an encrypted
//! SQLite store on the device, searchable offline and merged without conflicts lost.
//!
//! [`Store`] is the one entry point. No network I/O happens in this crate.

pub mod bounded;
pub mod communes;
pub mod demo;
pub mod document;
pub mod error;
mod index;
pub mod indicators;
mod lending;
mod lists;
pub mod lock;
pub mod records;
mod review;
pub mod roster;
mod search;
mod storage;
mod store;
pub mod sync;
pub mod text;

pub use communes::{Commune, Communes};
pub use document::{Author, ConflictValue, FieldConflict, HistoryEntry};
pub use error::{Error, FieldError, Problem, Result, ValidationErrors};
pub use lending::{
    ASKED_PER_SYNC, AccessState, AskedAccess, LentFileSummary, LentYouthFile, refusal_code,
};
pub use lists::{
    ActionSummary, DUPLICATES_SHOWN, FirstVisit, OutcomeSummary, QuestionSummary, TodoItem,
    TodoReason, TourSummary, VisitSummary, YouthFile, probe_of,
};
pub use records::{AnyRecord, Record, RecordKind};
pub use roster::{TeamMember, VisitDecision};
pub use search::{ContactSummary, DuplicateProbe, SimilarYouth, YouthSummary};
pub use storage::KEY_LEN;
pub use store::{
    Batch, Clock, Listener, Origin, SetAside, Store, StoreEvent, StoreOptions, SyncState,
    SystemClock, Version, Versioned,
};

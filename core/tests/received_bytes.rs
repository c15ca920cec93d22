//! Bytes from elsewhere (a push, a pull, a peer) that the fuzzer found
//! (fuzz/fuzz_targets/received_document.rs): each is refused with an error, never a panic.
use repere_core::document::{Author, RecordDoc};
use repere_core::{Error, RecordKind};
use uuid::Uuid;

/// A change chunk naming an actor that authors nothing: Automerge 0.12 unwraps the actor's
/// index in its change import and panics.
const NAMES_AN_ACTOR_THAT_AUTHORS_NOTHING: [u8; 123] = [
    133, 111, 74, 131, 44, 87, 173, 62, 1, 113, 0, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12,
    12, 12, 12, 124, 0, 0, 0, 0, 0, 0, 0, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 58, 0, 0, 0, 0,
    0, 0, 0, 12, 12, 12, 12, 12, 12, 12, 12, 132, 133, 111, 86, 134, 1, 166, 1, 42, 0, 70, 255,
    255, 255, 255, 247, 255, 255, 167, 167, 167, 167, 167, 167, 167, 255, 255, 255, 255, 255, 255,
    255, 255, 255, 255, 255, 255, 255, 255, 58, 0, 0, 0, 0, 0, 255, 255, 255, 255, 1, 2, 255, 255,
    255, 255, 255, 255, 255, 255, 255, 16, 0, 0,
];

#[test]
fn a_change_naming_an_actor_that_authors_nothing_is_refused_without_a_panic() {
    let author = Author {
        device_id: Uuid::nil(),
        member_id: Uuid::nil(),
    };
    let loaded = RecordDoc::load(
        RecordKind::Youth,
        Uuid::nil(),
        &NAMES_AN_ACTOR_THAT_AUTHORS_NOTHING,
        author,
    );
    assert!(matches!(loaded, Err(Error::CorruptDocument { .. })));
}

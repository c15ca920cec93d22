//! Automerge bytes received from elsewhere (a push on the server, a pull or a peer on a
//! tablet): the bounded reading, then — only within bounds — the document load, the shape
//! check, the record read and its validation. Nothing may panic, hang or grow unbounded.
#![no_main]

use std::sync::Once;

use libfuzzer_sys::fuzz_target;
use repere_core::bounded::{self, Bounds};
use repere_core::document::{Author, RecordDoc};
use repere_core::records::ValidationContext;
use repere_core::{Communes, RecordKind};
use uuid::Uuid;

static CONTAINED_PANICS_ARE_NOT_CRASHES: Once = Once::new();

fuzz_target!(|input: &[u8]| {
    // libfuzzer-sys aborts in its panic hook, before any unwinding; the reading code
    // contains Automerge's own panics on crafted bytes (`document::on_received`), so only a
    // panic that escapes the target is a crash: libfuzzer-sys still aborts on that one.
    CONTAINED_PANICS_ARE_NOT_CRASHES.call_once(|| std::panic::set_hook(Box::new(|_| {})));
    let Some((&kind, bytes)) = input.split_first() else {
        return;
    };
    let kind = RecordKind::ALL[usize::from(kind) % RecordKind::ALL.len()];
    if bounded::measure(bytes, Bounds::RECORD).is_err() {
        return;
    }
    let author = Author {
        device_id: Uuid::nil(),
        member_id: Uuid::nil(),
    };
    let Ok(doc) = RecordDoc::load(kind, Uuid::nil(), bytes, author) else {
        return;
    };
    let _ = doc.check_shape();
    if let Ok(record) = doc.read_record() {
        let ctx = ValidationContext {
            now: chrono_now(),
            communes: Communes::global(),
        };
        let _ = record.validate(&ctx);
    }
});

fn chrono_now() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(1_790_000_000, 0).unwrap_or_default()
}

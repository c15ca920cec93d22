//! Record fields as JSON (what the server stores beside each document and sends to
//! tablets, which index records from it): reading them as a record and validating it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use repere_core::records::{AnyRecord, ValidationContext};
use repere_core::{Communes, RecordKind};

fuzz_target!(|input: &[u8]| {
    let Some((&kind, json)) = input.split_first() else {
        return;
    };
    let kind = RecordKind::ALL[usize::from(kind) % RecordKind::ALL.len()];
    let Ok(fields) = serde_json::from_slice(json) else {
        return;
    };
    if let Ok(record) = AnyRecord::from_fields(kind, fields) {
        let ctx = ValidationContext {
            now: chrono::DateTime::from_timestamp(1_790_000_000, 0).unwrap_or_default(),
            communes: Communes::global(),
        };
        let _ = record.validate(&ctx);
        let _ = record.to_json();
    }
});

//! The sync protocol's envelope and messages, as the server and the tablets decode them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use repere_core::sync::protocol::{self, EnrolResponse};

fuzz_target!(|bytes: &[u8]| {
    if protocol::version_of(bytes).is_ok() {
        let _ = protocol::decode_request(bytes);
        // The enrolment request as the server reads it from anyone on the network.
        if let Ok(enrol) = protocol::decode_enrol(bytes, 2048) {
            let again = protocol::encode_enrol(protocol::PROTOCOL_VERSION, &enrol);
            assert_eq!(protocol::decode_enrol(&again, 1 << 20).ok(), Some(enrol));
        }
        let _ = protocol::decode::<EnrolResponse>(bytes);
        if let Ok(response) = protocol::decode_response(bytes) {
            // What decodes re-encodes to something that decodes the same.
            let again = protocol::encode_response(protocol::PROTOCOL_VERSION, &response);
            assert_eq!(protocol::decode_response(&again).ok(), Some(response));
        }
    }
});

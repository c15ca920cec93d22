//! The coordinators' sign-in form (and every other form of the pages) as the server reads
//! it: axum's `Form` decodes the body with serde_urlencoded into a map of strings, then the
//! handler takes `csrf`, `login` and `password` and trims and lowercases the login. Nothing
//! may panic, hang or grow unbounded, and what decodes must come back the same once encoded
//! again (no field can be read two ways).
#![no_main]

use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    let Ok(form) = serde_urlencoded::from_bytes::<HashMap<String, String>>(body) else {
        return;
    };
    for field in ["csrf", "login", "password"] {
        let value = form.get(field).cloned().unwrap_or_default();
        std::hint::black_box(value.trim().to_lowercase());
    }
    let again = serde_urlencoded::to_string(&form).expect("a map of strings always encodes");
    let back: HashMap<String, String> =
        serde_urlencoded::from_str(&again).expect("what was encoded decodes");
    assert_eq!(back, form, "a form reads the same after a round trip");
});

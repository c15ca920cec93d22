//! Generates the Kotlin and Swift bindings from the built library (scripts/gen-bindings.sh).
fn main() {
    uniffi::uniffi_bindgen_main()
}

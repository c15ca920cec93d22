//! Android only: the one call that is not uniffi. reqwest's rustls verifies the server's
//! certificate with `rustls-platform-verifier`, i.e. Android's own trust manager (the
//! system store, user-added and managed CAs), which it reaches through the JVM: it needs
//! the app's Context once, before the first HTTPS request. The app calls
//! `fr.repere.app.AndroidTls.init(context)` at start (android/README.md, "HTTPS").
//!
//! Not compiled here (no Android target on this machine): the same body against jni 0.22's
//! types, and the JNI name called from a Kotlin `object`, were checked on the desktop JVM.

use jni::EnvUnowned;
use jni::objects::{JClass, JObject};

/// A failure (or a panic) becomes a Java `RuntimeException` in the caller, never an unwind
/// across the JNI boundary.
#[unsafe(no_mangle)]
pub extern "system" fn Java_fr_repere_app_AndroidTls_init<'local>(
    mut env: EnvUnowned<'local>,
    _class: JClass<'local>,
    context: JObject<'local>,
) {
    env.with_env(|env| rustls_platform_verifier::android::init_with_env(env, context))
        .resolve::<jni::errors::ThrowRuntimeExAndDefault>()
}

package fr.repere.app

import android.content.Context

/**
 * Hands the app's Context to the core's certificate verifier (Android's trust manager: the
 * system store, plus CAs a device policy installs) before any HTTPS request. Called once, at
 * the start of the process; the JNI function is in bindings/src/android.rs. Throws a
 * RuntimeException if the verifier's Kotlin component (the `rustls-platform-verifier` AAR)
 * is missing from the build.
 */
object AndroidTls {
    init {
        System.loadLibrary("repere_ffi")
    }

    @JvmStatic external fun init(context: Context)
}

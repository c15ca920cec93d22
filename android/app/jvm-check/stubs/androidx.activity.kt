@file:Suppress("unused", "UNUSED_PARAMETER")
package androidx.activity
open class ComponentActivity : android.content.Context() {
    open fun onCreate(savedInstanceState: android.os.Bundle?) {}
    // Activity.getIntent()/setIntent(): a platform type in Kotlin, nullable here.
    var intent: android.content.Intent? = null
    open fun onNewIntent(intent: android.content.Intent) {}
}

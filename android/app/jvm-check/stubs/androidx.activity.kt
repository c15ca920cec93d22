@file:Suppress("unused", "UNUSED_PARAMETER")
package androidx.activity
open class ComponentActivity : android.content.Context() { open fun onCreate(savedInstanceState: android.os.Bundle?) {} }

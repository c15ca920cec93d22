@file:Suppress("unused", "UNUSED_PARAMETER")
package android.app
open class Application : android.content.Context() { open fun onCreate() {} }

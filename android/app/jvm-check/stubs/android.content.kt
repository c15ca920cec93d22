@file:Suppress("unused", "UNUSED_PARAMETER")
package android.content
open class SharedPreferences {
    fun getString(k: String, d: String?): String? = d
    fun edit(): Editor = Editor()
    class Editor { fun putString(k: String, v: String?): Editor = this; fun apply() {}; fun commit(): Boolean = true }
}
open class Context {
    open val applicationContext: Context get() = this
    val noBackupFilesDir: java.io.File get() = java.io.File("/tmp")
    fun getSharedPreferences(name: String, mode: Int): SharedPreferences = SharedPreferences()
    companion object { const val MODE_PRIVATE = 0 }
}
open class Intent { val dataString: String? get() = null }

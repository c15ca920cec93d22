@file:Suppress("unused", "UNUSED_PARAMETER")
package android.os
class Bundle
object Build { @JvmField val MODEL: String = "x" }

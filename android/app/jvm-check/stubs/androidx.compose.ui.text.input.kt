@file:Suppress("unused", "UNUSED_PARAMETER")
package androidx.compose.ui.text.input
enum class KeyboardType { Text, Number }

@file:Suppress("unused", "UNUSED_PARAMETER")
package androidx.compose.ui.text
class TextStyle

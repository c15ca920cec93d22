@file:Suppress("unused", "UNUSED_PARAMETER")
package androidx.compose.ui.graphics
class Color

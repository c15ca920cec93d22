@file:Suppress("unused", "UNUSED_PARAMETER")
package androidx.compose.foundation.text
class KeyboardOptions(val keyboardType: androidx.compose.ui.text.input.KeyboardType)

@file:Suppress("unused", "UNUSED_PARAMETER")
package androidx.compose.foundation
import androidx.compose.ui.Modifier
import androidx.compose.runtime.Composable
class ScrollState
@Composable fun rememberScrollState() = ScrollState()
fun Modifier.horizontalScroll(s: ScrollState): Modifier = this
fun Modifier.clickable(onClick: () -> Unit): Modifier = this

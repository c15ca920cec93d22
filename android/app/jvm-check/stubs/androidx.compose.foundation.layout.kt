@file:Suppress("unused", "UNUSED_PARAMETER")
package androidx.compose.foundation.layout
import androidx.compose.ui.Modifier
import androidx.compose.ui.Alignment
import androidx.compose.ui.unit.Dp
import androidx.compose.runtime.Composable
interface RowScope { fun Modifier.weight(w: Float): Modifier = this }
interface ColumnScope
class PaddingValues(all: Dp)
object Arrangement { interface HorizontalOrVertical; fun spacedBy(d: Dp): HorizontalOrVertical = object : HorizontalOrVertical {} }
fun Modifier.padding(p: PaddingValues): Modifier = this
fun Modifier.padding(d: Dp): Modifier = this
fun Modifier.fillMaxSize(): Modifier = this
fun Modifier.fillMaxWidth(): Modifier = this
@Composable fun Row(modifier: Modifier = Modifier, horizontalArrangement: Arrangement.HorizontalOrVertical? = null, verticalAlignment: Alignment.Vertical? = null, content: @Composable RowScope.() -> Unit) {}
@Composable fun Column(modifier: Modifier = Modifier, content: @Composable ColumnScope.() -> Unit) {}

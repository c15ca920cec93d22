@file:Suppress("unused", "UNUSED_PARAMETER")
package androidx.compose.foundation.lazy
import androidx.compose.ui.Modifier
import androidx.compose.runtime.Composable
import androidx.compose.foundation.layout.*
interface LazyItemScope
interface LazyListScope { fun item(key: Any? = null, content: @Composable LazyItemScope.() -> Unit) }
fun <T> LazyListScope.items(items: List<T>, key: ((T) -> Any)? = null, itemContent: @Composable LazyItemScope.(T) -> Unit) {}
@Composable fun LazyColumn(modifier: Modifier = Modifier, contentPadding: PaddingValues? = null, verticalArrangement: Arrangement.HorizontalOrVertical? = null, content: LazyListScope.() -> Unit) {}

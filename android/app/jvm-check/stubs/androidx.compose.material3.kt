@file:Suppress("unused", "UNUSED_PARAMETER")
package androidx.compose.material3
import androidx.compose.ui.Modifier
import androidx.compose.ui.graphics.Color
import androidx.compose.ui.text.TextStyle
import androidx.compose.runtime.Composable
import androidx.compose.foundation.layout.*
import androidx.compose.foundation.text.KeyboardOptions
@RequiresOptIn annotation class ExperimentalMaterial3Api
class ColorScheme(val error: Color, val primary: Color, val onSurfaceVariant: Color, val tertiaryContainer: Color)
class Typography(val titleMedium: TextStyle, val titleSmall: TextStyle, val labelSmall: TextStyle, val bodySmall: TextStyle)
object MaterialTheme { val colorScheme: ColorScheme @Composable get() = TODO(); val typography: Typography @Composable get() = TODO() }
@Composable fun MaterialTheme(content: @Composable () -> Unit) {}
@Composable fun Surface(content: @Composable () -> Unit) {}
@Composable fun Text(text: String, modifier: Modifier = Modifier, color: Color? = null, style: TextStyle? = null, maxLines: Int = 0) {}
@Composable fun Button(onClick: () -> Unit, modifier: Modifier = Modifier, enabled: Boolean = true, content: @Composable RowScope.() -> Unit) {}
@Composable fun TextButton(onClick: () -> Unit, modifier: Modifier = Modifier, enabled: Boolean = true, content: @Composable RowScope.() -> Unit) {}
@Composable fun OutlinedButton(onClick: () -> Unit, modifier: Modifier = Modifier, enabled: Boolean = true, content: @Composable RowScope.() -> Unit) {}
@Composable fun ExtendedFloatingActionButton(onClick: () -> Unit, modifier: Modifier = Modifier, content: @Composable RowScope.() -> Unit) {}
class CardColors
object CardDefaults { @Composable fun cardColors(containerColor: Color): CardColors = CardColors() }
@Composable fun Card(modifier: Modifier = Modifier, colors: CardColors? = null, content: @Composable ColumnScope.() -> Unit) {}
@Composable fun Checkbox(checked: Boolean, onCheckedChange: ((Boolean) -> Unit)?, modifier: Modifier = Modifier) {}
@ExperimentalMaterial3Api @Composable fun FilterChip(selected: Boolean, onClick: () -> Unit, label: @Composable () -> Unit, modifier: Modifier = Modifier) {}
@Composable fun OutlinedTextField(value: String, onValueChange: (String) -> Unit, modifier: Modifier = Modifier, label: @Composable (() -> Unit)? = null, singleLine: Boolean = false, minLines: Int = 1, keyboardOptions: KeyboardOptions? = null) {}
@Composable fun Scaffold(modifier: Modifier = Modifier, topBar: @Composable () -> Unit = {}, floatingActionButton: @Composable () -> Unit = {}, content: @Composable (PaddingValues) -> Unit) {}
@ExperimentalMaterial3Api @Composable fun TopAppBar(title: @Composable () -> Unit, modifier: Modifier = Modifier, actions: @Composable RowScope.() -> Unit = {}) {}
@Composable fun AlertDialog(onDismissRequest: () -> Unit, confirmButton: @Composable () -> Unit, modifier: Modifier = Modifier, dismissButton: (@Composable () -> Unit)? = null, title: (@Composable () -> Unit)? = null, text: (@Composable () -> Unit)? = null) {}

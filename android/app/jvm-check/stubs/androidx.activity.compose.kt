@file:Suppress("unused", "UNUSED_PARAMETER")
package androidx.activity.compose
fun androidx.activity.ComponentActivity.setContent(content: @androidx.compose.runtime.Composable () -> Unit) {}

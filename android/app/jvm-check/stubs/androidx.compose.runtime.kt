@file:Suppress("unused", "UNUSED_PARAMETER")
package androidx.compose.runtime
import kotlin.reflect.KProperty
@Target(AnnotationTarget.FUNCTION, AnnotationTarget.TYPE, AnnotationTarget.PROPERTY_GETTER) annotation class Composable
interface State<T> { val value: T }
class MutableState<T>(override var value: T) : State<T>
operator fun <T> State<T>.getValue(thisObj: Any?, property: KProperty<*>): T = value
operator fun <T> MutableState<T>.setValue(thisObj: Any?, property: KProperty<*>, value: T) { this.value = value }
fun <T> mutableStateOf(value: T): MutableState<T> = MutableState(value)
class SnapshotStateList<T> : MutableList<T> by ArrayList()
fun <T> mutableStateListOf(): SnapshotStateList<T> = SnapshotStateList()
@Composable fun <T> remember(calc: () -> T): T = calc()
interface ProduceStateScope<T> : kotlinx.coroutines.CoroutineScope { var value: T }
@Composable fun <T> produceState(initialValue: T, key1: Any?, producer: suspend ProduceStateScope<T>.() -> Unit): State<T> = mutableStateOf(initialValue)
@Composable fun LaunchedEffect(key1: Any?, block: suspend kotlinx.coroutines.CoroutineScope.() -> Unit) {}
@Composable fun LaunchedEffect(key1: Any?, key2: Any?, block: suspend kotlinx.coroutines.CoroutineScope.() -> Unit) {}
@Composable fun LaunchedEffect(vararg keys: Any?, block: suspend kotlinx.coroutines.CoroutineScope.() -> Unit) {}
@Composable fun <T> kotlinx.coroutines.flow.StateFlow<T>.collectAsState(): State<T> = mutableStateOf(value)

@file:Suppress("unused", "UNUSED_PARAMETER")
package androidx.navigation.compose
import androidx.compose.runtime.Composable
class NavHostController { fun navigate(route: String) {}; fun popBackStack(): Boolean = true }
class NavBackStackEntry
class NavGraphBuilder
@Composable fun rememberNavController() = NavHostController()
@Composable fun NavHost(navController: NavHostController, startDestination: String, builder: NavGraphBuilder.() -> Unit) {}
fun NavGraphBuilder.composable(route: String, content: @Composable (NavBackStackEntry) -> Unit) {}

// Repère Android: the plain Kotlin client (:repere-kotlin, also tested on the desktop JVM)
// and the thin Compose shell (:app). See README.md: this build was written, never run here.
pluginManagement {
    repositories {
        google()
        mavenCentral()
        gradlePluginPortal()
    }
}

dependencyResolutionManagement {
    repositoriesMode.set(RepositoriesMode.FAIL_ON_PROJECT_REPOS)
    repositories {
        google()
        mavenCentral()
    }
}

rootProject.name = "repere-android"
include(":repere-kotlin", ":app")

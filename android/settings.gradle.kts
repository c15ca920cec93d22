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
        // The Kotlin component of rustls-platform-verifier (HTTPS through Android's trust
        // manager), published by its authors as a Maven repository.
        maven {
            url = uri("https://github.com/rustls/rustls-platform-verifier/raw/maven-archive/android-release-support/maven/")
        }
    }
}

rootProject.name = "repere-android"
include(":repere-kotlin", ":app")

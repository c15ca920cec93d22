// Plugin versions in one place; each module applies what it needs.
plugins {
    id("com.android.application") version "8.7.3" apply false
    kotlin("android") version "2.1.0" apply false
    kotlin("jvm") version "2.1.0" apply false
    kotlin("plugin.compose") version "2.1.0" apply false
}

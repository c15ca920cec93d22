// The Android shell: Compose screens, WorkManager sync, Android Keystore key. All data logic
// is in the Rust core, reached through :repere-kotlin (RepereClient). Never built here.
plugins {
    id("com.android.application")
    kotlin("android")
    kotlin("plugin.compose")
}

android {
    namespace = "fr.repere.app"
    compileSdk = 35

    defaultConfig {
        applicationId = "fr.repere.app"
        minSdk = 26
        targetSdk = 35
        versionCode = 1
        versionName = "0.1.0"
        // The ABIs android/build-rust.sh builds librepere_ffi.so for (into src/main/jniLibs/).
        ndk { abiFilters += listOf("arm64-v8a", "armeabi-v7a", "x86_64") }
    }

    buildTypes {
        release {
            isMinifyEnabled = true
            proguardFiles(getDefaultProguardFile("proguard-android-optimize.txt"), "proguard-rules.pro")
        }
    }

    // buildConfig: BuildConfig.VERSION_NAME is given to the core, which reports it at each sync.
    buildFeatures {
        compose = true
        buildConfig = true
    }

    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }
}

kotlin { jvmToolchain(17) }

// The verifier's Kotlin component must be exactly the version of the Rust crate
// `rustls-platform-verifier-android` that librepere_ffi.so was built with: read it from the
// workspace's Cargo.lock.
abstract class RustlsVerifierVersion : ValueSource<String, RustlsVerifierVersion.Params> {
    interface Params : ValueSourceParameters {
        val lockFile: RegularFileProperty
    }

    override fun obtain(): String {
        val lines = parameters.lockFile.get().asFile.readLines()
        val at = lines.indexOfFirst { it.trim() == "name = \"rustls-platform-verifier-android\"" }
        return lines.drop(at + 1).takeIf { at >= 0 }
            ?.firstOrNull { it.trimStart().startsWith("version = ") }
            ?.substringAfter('"')?.substringBefore('"')
            ?: error("rustls-platform-verifier-android not found in Cargo.lock")
    }
}

val rustlsVerifierVersion = providers.of(RustlsVerifierVersion::class.java) {
    parameters.lockFile.set(rootProject.layout.projectDirectory.file("../Cargo.lock"))
}

configurations.configureEach {
    resolutionStrategy.eachDependency {
        if (requested.group == "rustls" && requested.name == "rustls-platform-verifier") {
            useVersion(rustlsVerifierVersion.get())
            because("the Kotlin component must match the Rust crate in librepere_ffi.so")
        }
    }
}

dependencies {
    // HTTPS through Android's trust manager (AndroidTls.init): versioned from Cargo.lock above.
    implementation("rustls:rustls-platform-verifier")

    // The client and bindings, without the desktop JNA jar: on Android JNA comes as an AAR
    // that carries libjnidispatch.so for each ABI (two JNA copies would clash).
    implementation(project(":repere-kotlin")) { exclude(group = "net.java.dev.jna") }
    implementation("net.java.dev.jna:jna:5.15.0@aar")

    implementation(platform("androidx.compose:compose-bom:2024.12.01"))
    implementation("androidx.compose.ui:ui")
    implementation("androidx.compose.material3:material3")
    implementation("androidx.activity:activity-compose:1.9.3")
    implementation("androidx.navigation:navigation-compose:2.8.5")
    implementation("androidx.lifecycle:lifecycle-viewmodel-compose:2.8.7")
    implementation("androidx.work:work-runtime-ktx:2.10.0")
}

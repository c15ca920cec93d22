// Plain Kotlin/JVM library: RepereClient plus the uniffi-generated bindings (package fr.repere.ffi).
// No Android API here, so the same sources compile and run on a desktop JVM
// (scripts/kotlin-tests.sh does exactly that, without Gradle).
plugins {
    `java-library`
    kotlin("jvm")
}

// android/ sits one level below the repository root.
val repoRoot: File = rootDir.parentFile
// Generated at build time by uniffi-bindgen, never committed: they always match the Rust
// of this checkout. The directory also holds the Swift files; only *.kt are compiled.
val bindingsDir: File = repoRoot.resolve("build/bindings")
val regenerate = providers.gradleProperty("repere.regenerateBindings").isPresent

// Runs scripts/gen-bindings.sh (cargo build --workspace, then the workspace's uniffi-bindgen).
// cargo takes minutes on a clean tree, so this runs only when the bindings are missing or
// when asked: ./gradlew :repere-kotlin:compileKotlin -Prepere.regenerateBindings
// (android/build-rust.sh also generates them, next to the Android libraries it builds).
val generateBindings by tasks.registering(Exec::class) {
    description = "Generates the uniffi Kotlin bindings into build/bindings (scripts/gen-bindings.sh)."
    workingDir = repoRoot
    commandLine(repoRoot.resolve("scripts/gen-bindings.sh").path, "release")
    outputs.dir(bindingsDir)
    val marker = bindingsDir.resolve("fr/repere/ffi/repere.kt")
    onlyIf { regenerate || !marker.exists() }
}

kotlin {
    jvmToolchain(17)
    sourceSets["main"].kotlin.srcDir(files(bindingsDir).builtBy(generateBindings))
}

dependencies {
    // The bindings expose JNA types (Structure, Pointer) in their public classes. The app
    // swaps this jar for JNA's Android AAR (native dispatch library per ABI), see app/build.gradle.kts.
    api("net.java.dev.jna:jna:5.15.0")
    // RepereClient's API uses SharedFlow and CoroutineDispatcher.
    api("org.jetbrains.kotlinx:kotlinx-coroutines-core:1.9.0")
    testImplementation(kotlin("test"))
}

// The tests are a main() harness against a live repere-server and the host build of
// librepere_ffi (no JUnit: the same file runs through scripts/kotlin-tests.sh). From the
// repository root, after `cargo build --workspace` and with the server's details in the env:
//   scripts/with-test-server.sh gradle -p android :repere-kotlin:clientTests
tasks.register<JavaExec>("clientTests") {
    group = "verification"
    description = "Runs RepereClientTest against target/debug/librepere_ffi and a test server."
    mainClass.set("fr.repere.client.RepereClientTestKt")
    classpath = sourceSets["test"].runtimeClasspath
    systemProperty("jna.library.path", repoRoot.resolve("target/debug").path)
}

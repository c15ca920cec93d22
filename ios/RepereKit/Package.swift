// swift-tools-version: 5.9
// RepereKit: the Rust core (RepereFFIC.xcframework + the uniffi-generated RepereFFI.swift,
// both produced by ../build-xcframework.sh) and the hand-written async layer the app uses.
import PackageDescription

let package = Package(
    name: "RepereKit",
    platforms: [.iOS(.v16), .macOS(.v13)],
    products: [
        .library(name: "RepereKit", targets: ["RepereKit"]),
    ],
    targets: [
        // Static library + RepereFFIC.h + module map, one slice per platform.
        .binaryTarget(name: "RepereFFIC", path: "RepereFFIC.xcframework"),
        // Generated: Sources/RepereFFI/RepereFFI.swift is copied in by build-xcframework.sh.
        .target(
            name: "RepereFFI",
            dependencies: ["RepereFFIC"],
            path: "Sources/RepereFFI",
            exclude: ["README.md"],
            // reqwest's rustls checks certificates with the platform verifier (Security.framework).
            linkerSettings: [.linkedFramework("Security")]
        ),
        .target(name: "RepereKit", dependencies: ["RepereFFI"], path: "Sources/RepereKit"),
    ]
)

// swift-tools-version:6.0
// Pier: an embeddable offline-first sync library. See docs/ARCHITECTURE.md for the module map.
import PackageDescription

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "Pier",
    platforms: [.macOS(.v14)],
    products: [
        // The C library. CMake (or scripts/build-lib) builds it in release mode with the Swift
        // runtime linked statically, a SONAME and a version script, and installs it as libpier.so.
        .library(name: "PierC", type: .dynamic, targets: ["PierC"]),
        .library(name: "Pier", targets: ["Pier"]),
        .library(name: "PierWire", targets: ["PierWire"]),
        .executable(name: "pier", targets: ["pier"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        // Only PierPostgres (and its tests) use it: libpier.so must never link NIO.
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.81.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.29.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.6.0"),
    ],
    targets: [
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        // include/pier.h itself, so PierC reads the option and report structs with the
        // exact layout C callers use.
        .systemLibrary(name: "CPier"),

        .target(name: "PierStore", dependencies: ["CSQLite"], swiftSettings: strict),
        .target(name: "PierWire", dependencies: ["CZlib"], swiftSettings: strict),
        .target(name: "PierServer", dependencies: ["PierStore", "PierWire", "CSQLite"], swiftSettings: strict),
        .target(name: "PierSync", dependencies: ["PierStore", "PierWire", "CSQLite"], swiftSettings: strict),
        // The PostgreSQL master store. Kept out of Pier and PierC: libpier.so must not link NIO.
        .target(
            name: "PierPostgres",
            dependencies: [
                "PierServer", "PierStore",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .target(name: "Pier", dependencies: ["PierStore", "PierSync", "PierServer"], swiftSettings: strict),
        .target(name: "PierC", dependencies: ["Pier", "PierStore", "PierServer", "PierSync", "PierWire", "CPier"], exclude: ["pier.map"], swiftSettings: strict),
        .executableTarget(
            name: "pier",
            dependencies: [
                "Pier", "PierStore", "PierWire",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strict
        ),

        .executableTarget(
            name: "pier-bench-wire", dependencies: ["PierWire", "CZlib"], path: "benchmarks/wire",
            swiftSettings: strict
        ),

        .executableTarget(
            name: "pier-bench-sync", dependencies: ["Pier", "CSQLite"], path: "benchmarks/sync",
            swiftSettings: strict
        ),

        .testTarget(name: "PierStoreTests", dependencies: ["PierStore", "CSQLite"], swiftSettings: strict),
        .testTarget(name: "PierTests", dependencies: ["Pier"], swiftSettings: strict),
        .testTarget(name: "PierServerTests", dependencies: ["PierServer", "PierWire", "PierPostgres", "Pier", "PierSync"], swiftSettings: strict),
        .testTarget(name: "PierSyncTests", dependencies: ["Pier", "PierSync", "PierServer", "PierWire", "CSQLite"], swiftSettings: strict),
        .testTarget(
            name: "PierWireTests", dependencies: ["PierWire"],
            swiftSettings: strict
        ),
    ],
    swiftLanguageModes: [.v6]
)

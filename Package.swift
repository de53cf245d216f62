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
        // Only PierHTTP, PierPostgres, the pier CLI and their tests use these; libpier.so never
        // links them (swift-crypto excepted: PierCrypto's AES-GCM is in libpier.so).
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/vapor/jwt-kit", from: "5.8.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
    ],
    targets: [
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CDeflate", pkgConfig: "libdeflate", providers: [.apt(["libdeflate-dev"])]),
        .systemLibrary(name: "CCurl", pkgConfig: "libcurl", providers: [.apt(["libcurl4-openssl-dev"])]),
        // include/pier.h itself, so PierC reads the option and report structs with the
        // exact layout C callers use.
        .systemLibrary(name: "CPier"),

        .target(name: "PierStore", dependencies: ["CSQLite"], swiftSettings: strict),
        // Encryption at rest: the encrypting VFS, key header, rekey. swift-crypto's AES-GCM,
        // SHA-256 and PBKDF2 (FoundationEssentials only, no full Foundation).
        .target(
            name: "PierCrypto",
            dependencies: [
                "PierStore", "CSQLite",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
            ],
            swiftSettings: strict
        ),
        .target(name: "PierWire", dependencies: ["CDeflate"], swiftSettings: strict),
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
        .target(name: "PierCurl", dependencies: ["PierSync", "PierStore", "PierWire", "CCurl"], swiftSettings: strict),
        .target(name: "Pier", dependencies: ["PierStore", "PierCrypto", "PierSync", "PierServer", "PierCurl"], swiftSettings: strict),
        .target(name: "PierC", dependencies: ["Pier", "PierStore", "PierCrypto", "PierServer", "PierSync", "PierWire", "PierCurl", "CPier"], exclude: ["pier.map"], swiftSettings: strict),
        // `pier serve`: the HTTP binding of PROTOCOL.md section 12 (Hummingbird 2), JWT and
        // API-key authentication, Prometheus metrics, admin endpoints.
        .target(
            name: "PierHTTP",
            dependencies: [
                "PierServer", "PierStore", "PierWire",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "pier",
            dependencies: [
                "Pier", "PierStore", "PierWire", "PierHTTP", "PierPostgres",
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

        .executableTarget(
            name: "pier-bench-crypto", dependencies: ["Pier"], path: "benchmarks/crypto",
            exclude: ["peers.py", "setup-peers"], swiftSettings: strict
        ),

        .executableTarget(
            name: "pier-bench-load", dependencies: ["Pier", "CSQLite"], path: "benchmarks/load",
            swiftSettings: strict
        ),

        .executableTarget(
            name: "pier-hostile", dependencies: ["Pier", "PierWire", "CSQLite", "CZlib"], path: "reliability/hostile",
            swiftSettings: strict
        ),

        .testTarget(name: "PierStoreTests", dependencies: ["PierStore", "CSQLite"], swiftSettings: strict),
        .testTarget(name: "PierCryptoTests", dependencies: ["PierCrypto", "Pier", "PierStore", "CSQLite"], swiftSettings: strict),
        .testTarget(name: "PierTests", dependencies: ["Pier"], swiftSettings: strict),
        .testTarget(name: "PierServerTests", dependencies: ["PierServer", "PierWire", "PierPostgres", "Pier", "PierSync"], swiftSettings: strict),
        .testTarget(name: "PierSyncTests", dependencies: ["Pier", "PierSync", "PierServer", "PierWire", "CSQLite"], swiftSettings: strict),
        .testTarget(name: "PierCLITests", dependencies: ["Pier"], swiftSettings: strict),
        .testTarget(name: "PierCurlTests", dependencies: ["PierCurl", "PierSync", "PierWire"], swiftSettings: strict),
        .testTarget(
            name: "PierHTTPTests",
            dependencies: [
                "PierHTTP", "Pier", "PierWire",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "PierWireTests", dependencies: ["PierWire"],
            swiftSettings: strict
        ),
    ],
    swiftLanguageModes: [.v6]
)

// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "CloudTap",
    platforms: [.macOS(.v14), .iOS(.v17)],
    products: [
        .library(name: "PaymentCore", targets: ["PaymentCore"]),
        .library(name: "EMV", targets: ["EMV"]),
        .library(name: "PaymentCrypto", targets: ["PaymentCrypto"]),
        .library(name: "ISO8583", targets: ["ISO8583"]),
        .library(name: "ISO8583Link", targets: ["ISO8583Link"]),
        .library(name: "Storage", targets: ["Storage"]),
        .library(name: "IssuerHost", targets: ["IssuerHost"]),
        .library(name: "CloudWire", targets: ["CloudWire"]),
        .library(name: "Wallet", targets: ["Wallet"]),
        .library(name: "Terminal", targets: ["Terminal"]),
        .library(name: "TokenService", targets: ["TokenService"]),
        .library(name: "Switch", targets: ["Switch"]),
        .library(name: "Server", targets: ["Server"]),
        .library(name: "QR", targets: ["QR"]),
        .executable(name: "cloudtap", targets: ["cloudtap"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/vapor/sql-kit.git", from: "3.36.0"),
        .package(url: "https://github.com/vapor/sqlite-kit.git", from: "4.5.2"),
        .package(url: "https://github.com/vapor/postgres-kit.git", from: "2.17.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
    ],
    targets: [
        .target(name: "PaymentCore"),
        .target(name: "EMV", dependencies: ["PaymentCore"]),
        .target(
            name: "PaymentCrypto",
            dependencies: [
                "PaymentCore",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
            ]
        ),
        .target(name: "ISO8583", dependencies: ["PaymentCore", "EMV"], resources: [.copy("Dialects")]),
        .target(name: "LoopExecutor", dependencies: [.product(name: "NIOCore", package: "swift-nio")]),
        .target(
            name: "ISO8583Link",
            dependencies: [
                "ISO8583", "PaymentCore", "LoopExecutor",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
        .systemLibrary(name: "CSQLite3", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        .target(name: "CSQLiteWAL", dependencies: ["CSQLite3"]),
        .target(name: "SQLiteDirect", dependencies: ["CSQLite3", "CSQLiteWAL"]),
        .target(name: "CAllocator"),
        .target(
            name: "Storage",
            dependencies: [
                "SQLiteDirect",
                "PaymentCore",
                "LoopExecutor",
                .product(name: "SQLKit", package: "sql-kit"),
                .product(name: "SQLiteKit", package: "sqlite-kit"),
                .product(name: "PostgresKit", package: "postgres-kit"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .target(
            name: "IssuerHost",
            dependencies: ["PaymentCore", "PaymentCrypto", "Storage", .product(name: "SQLKit", package: "sql-kit")]
        ),
        .target(name: "CloudWire", dependencies: ["PaymentCore", "PaymentCrypto", .product(name: "Crypto", package: "swift-crypto")]),
        .target(name: "Wallet", dependencies: ["PaymentCore", "EMV", "PaymentCrypto", "CloudWire", "QR", .product(name: "Crypto", package: "swift-crypto"),
                                               .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
                                               .product(name: "NIOHTTP1", package: "swift-nio")]),
        .target(name: "PCSC", dependencies: []),
        .target(name: "QR", dependencies: ["PaymentCore", "EMV"]),
        .target(name: "Terminal", dependencies: ["PaymentCore", "EMV", "PaymentCrypto", "ISO8583", "ISO8583Link", "PCSC", "QR",
                                                 .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio")]),
        .target(
            name: "TokenService",
            dependencies: ["PaymentCore", "PaymentCrypto", "Storage", "CloudWire", .product(name: "SQLKit", package: "sql-kit"),
                           .product(name: "Crypto", package: "swift-crypto")]
        ),
        .target(
            name: "Server",
            dependencies: ["TokenService", "IssuerHost", "Switch", "Terminal", "QR", "PaymentCore", "PaymentCrypto", "CloudWire", .product(name: "Hummingbird", package: "hummingbird"),
                           .product(name: "HummingbirdTLS", package: "hummingbird"),
                           .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOSSL", package: "swift-nio-ssl"),
                           .product(name: "Logging", package: "swift-log"),
                           .product(name: "HTTPTypes", package: "swift-http-types"),
                           .product(name: "Metrics", package: "swift-metrics"),
                           .product(name: "Crypto", package: "swift-crypto")],
            resources: [.copy("Resources/openapi.json")]
        ),
        // Not "Network": packages test `canImport(Network)` for Apple's framework of that name.
        .target(
            name: "Switch",
            dependencies: ["PaymentCore", "EMV", "PaymentCrypto", "ISO8583", "ISO8583Link", "Storage", "TokenService", "IssuerHost",
                           .product(name: "SQLKit", package: "sql-kit"), .product(name: "Logging", package: "swift-log"),
                           .product(name: "Metrics", package: "swift-metrics")]
        ),
        .target(name: "CTestSpawn", path: "Tests/CTestSpawn"),
        .target(name: "TestSupport", dependencies: ["CTestSpawn"], path: "Tests/TestSupport"),
        .target(name: "StorageTestSupport", dependencies: ["Storage", "TestSupport", .product(name: "Logging", package: "swift-log")], path: "Tests/StorageTestSupport"),
        .target(name: "TLSTestSupport", dependencies: ["TestSupport"], path: "Tests/TLSTestSupport"),
        .executableTarget(
            name: "cloudtap",
            dependencies: ["QR", "CAllocator",
                "PaymentCore", "EMV", "PaymentCrypto", "ISO8583", "ISO8583Link", "LoopExecutor", "Storage", "TokenService", "IssuerHost",
                "CloudWire", "Wallet", "Terminal", "PCSC", "Switch", "Server",
                .product(name: "Hummingbird", package: "hummingbird"), .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Metrics", package: "swift-metrics"), .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "TestSupportTests", dependencies: ["TestSupport"]),
        .testTarget(name: "PaymentCoreTests", dependencies: ["PaymentCore", "TestSupport"]),
        .testTarget(name: "EMVTests", dependencies: ["EMV", "TestSupport"]),
        .testTarget(name: "QRTests", dependencies: ["QR", "EMV", "PaymentCore", "TestSupport"]),
        .testTarget(name: "PaymentCryptoTests", dependencies: ["PaymentCrypto", "EMV", "TestSupport", .product(name: "Crypto", package: "swift-crypto")], resources: [.copy("Vectors")]),
        .testTarget(name: "ISO8583Tests", dependencies: ["ISO8583", "TestSupport"], resources: [.copy("Samples")]),
        .testTarget(
            name: "ISO8583LinkTests",
            dependencies: ["ISO8583Link", "ISO8583", "TLSTestSupport", "TestSupport", .product(name: "NIOCore", package: "swift-nio"),
                           .product(name: "NIOEmbedded", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio")]
        ),
        .testTarget(name: "StorageTests", dependencies: ["Storage", "StorageTestSupport", "SQLiteDirect", "LoopExecutor", .product(name: "SQLKit", package: "sql-kit"),
                                                          .product(name: "Logging", package: "swift-log")]),
        .testTarget(name: "IssuerHostTests", dependencies: ["IssuerHost", "Storage", "StorageTestSupport", "PaymentCrypto", "PaymentCore"]),
        .testTarget(name: "TokenServiceTests", dependencies: ["TokenService", "Storage", "StorageTestSupport", "PaymentCrypto", "PaymentCore"]),
        .testTarget(name: "CloudFlowTests", dependencies: ["TokenService", "CloudWire", "Wallet", "Terminal", "QR", "EMV", "Switch", "ISO8583", "IssuerHost", "Server", "Storage", "StorageTestSupport", "PaymentCrypto", "PaymentCore",
                                                           .product(name: "Crypto", package: "swift-crypto"), .product(name: "Logging", package: "swift-log"),
                                                           .product(name: "SQLKit", package: "sql-kit")]),
        .testTarget(name: "ServerTests", dependencies: ["Server", "CloudWire", "Wallet", "Terminal", "Switch", "QR", "TokenService", "IssuerHost", "Storage", "StorageTestSupport", "TLSTestSupport", "PaymentCrypto",
                                                        "PaymentCore", .product(name: "HummingbirdTesting", package: "hummingbird"),
                                                        .product(name: "Hummingbird", package: "hummingbird"),
                                                        .product(name: "HTTPTypes", package: "swift-http-types"),
                                                        .product(name: "NIOCore", package: "swift-nio"),
                                                        .product(name: "NIOSSL", package: "swift-nio-ssl"),
                                                        .product(name: "Crypto", package: "swift-crypto")]),
        .testTarget(name: "WalletTests", dependencies: ["Wallet", "Terminal", "CloudWire", "PCSC", "ISO8583", "EMV", "PaymentCrypto", "PaymentCore", "TestSupport",
                                                        .product(name: "Crypto", package: "swift-crypto")]),
        .testTarget(name: "CLITests", dependencies: ["cloudtap", "ISO8583", "ISO8583Link", "Storage", "StorageTestSupport", "TestSupport", "Switch", .product(name: "SQLKit", package: "sql-kit"),
                                                  .product(name: "Logging", package: "swift-log")]),
    ],
    swiftLanguageModes: [.v6]
)

// swift-tools-version: 6.1
// Lamina: a self-hosted, AWS-Lambda-compatible function host for Linux. See DESIGN.md for the map.
import PackageDescription

/// Executables link with lld and packed relative relocations (RELR): a static-stdlib Swift binary
/// has ~100k relative relocations, and applying them from a 2.8 MB table at every start cost
/// `lamina` 1.5 ms of its 7 ms start-up (glibc >= 2.36 understands RELR; lld ships with Swift).
let fastStartLinking: [LinkerSetting] = [
    .unsafeFlags(["-Xclang-linker", "-fuse-ld=lld", "-Xlinker", "-z", "-Xlinker", "pack-relative-relocs"], .when(platforms: [.linux])),
]

let package = Package(
    name: "lamina",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "lamina", targets: ["lamina"]),
        .executable(name: "lamina-sandbox", targets: ["lamina-sandbox"]),
        .library(name: "LaminaSandbox", targets: ["LaminaSandbox"]),
        .library(name: "LaminaLayers", targets: ["LaminaLayers"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-crypto", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/weichsel/ZIPFoundation", from: "0.9.20"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
    ],
    targets: [
        // Raw Linux: the sandbox child (clone .. execve) and syscalls Swift cannot call safely.
        .target(name: "CLinux"),
        // libseccomp, to compile seccomp allowlists into BPF once per profile.
        .systemLibrary(name: "CSeccomp", pkgConfig: "libseccomp", providers: [.apt(["libseccomp-dev"])]),
        .target(
            name: "LaminaSandbox",
            dependencies: [
                "CLinux", "CSeccomp",
                .product(name: "Logging", package: "swift-log"),
            ],
            exclude: ["README.md"]
        ),
        .target(
            name: "LaminaLayers",
            dependencies: [
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "ZIPFoundation", package: "ZIPFoundation"),
                .product(name: "Logging", package: "swift-log"),
            ],
            exclude: ["README.md"]
        ),
        // Builds the root filesystem layers from rootfs/ recipes; needs both sandboxes and layers,
        // so it sits beside the host rather than inside either.
        .target(
            name: "LaminaRootfs",
            dependencies: [
                "LaminaLayers", "LaminaSandbox",
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .target(
            name: "LaminaBilling",
            dependencies: ["LaminaStore", .product(name: "Crypto", package: "swift-crypto")],
            exclude: ["README.md"]
        ),
        .target(
            name: "LaminaStore",
            dependencies: [.product(name: "GRDB", package: "GRDB.swift")],
            exclude: ["README.md"]
        ),
        .target(
            name: "LaminaRuntime",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            exclude: ["README.md"]
        ),
        .target(
            name: "LaminaHost",
            dependencies: [
                "LaminaRuntime", "LaminaSandbox", "LaminaLayers", "LaminaRootfs", "LaminaBilling", "LaminaStore", "CLinux",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            exclude: ["README.md"]
        ),
        .target(
            name: "LaminaAPI",
            dependencies: [
                "LaminaHost", "LaminaStore", "LaminaLayers", "LaminaRootfs", "LaminaSandbox", "LaminaBilling",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            exclude: ["README.md"]
        ),
        // Command-line plumbing shared by both executables, and the `sandbox` commands.
        .target(
            name: "LaminaCommandLine",
            dependencies: [
                "LaminaSandbox", "CLinux",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "lamina",
            dependencies: [
                "LaminaCommandLine", "LaminaSandbox", "LaminaLayers", "LaminaRootfs", "LaminaHost", "LaminaBilling", "LaminaStore", "LaminaAPI", "CLinux",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            linkerSettings: fastStartLinking
        ),
        // `lamina sandbox` alone: a small binary that starts fast (see its main.swift).
        .executableTarget(
            name: "lamina-sandbox",
            dependencies: [
                "LaminaCommandLine",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            linkerSettings: fastStartLinking
        ),
        .executableTarget(
            name: "lamina-bench",
            dependencies: [
                "LaminaSandbox", "LaminaLayers", "LaminaRootfs", "LaminaHost", "LaminaRuntime", "LaminaBilling", "LaminaStore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            linkerSettings: fastStartLinking
        ),
        .testTarget(name: "LaminaSandboxTests", dependencies: ["LaminaSandbox", "CLinux"]),
        .testTarget(name: "LaminaBillingTests", dependencies: ["LaminaBilling", "LaminaStore"]),
        .testTarget(name: "LaminaRuntimeTests", dependencies: ["LaminaRuntime", .product(name: "NIOPosix", package: "swift-nio")]),
        .testTarget(name: "LaminaHostTests", dependencies: ["LaminaHost", "LaminaLayers", "LaminaRootfs", "LaminaSandbox", "LaminaBilling", "LaminaRuntime"]),
        .testTarget(name: "LaminaLayersTests", dependencies: ["LaminaLayers", "LaminaRootfs", "LaminaSandbox", "CLinux", .product(name: "ZIPFoundation", package: "ZIPFoundation")]),
    ]
)

// swift-tools-version:6.0
// ingressd: an Istio-compatible ingress gateway. See README.md and DESIGN.md (../shared/).
//
// Dependency reasons:
//  * Yams — YAML with source marks (line numbers) for FILE:LINE diagnostics; control plane only.
//  * swift-argument-parser — the CLI contract (run/check/routes/version).
//  * liburing (Debian liburing-dev) — the io_uring data plane.
//  * RE2 (Debian libre2-dev), through the C++ shim Sources/CRE2 — route regexes. It is the engine
//    Envoy's safe_regex (so Istio) uses: same syntax and UTF-8 semantics, linear time, no match
//    limit that a crafted request could hit (PCRE2 before: its failures read as "no match").
//  * OpenSSL 3 (Debian libssl-dev), through Sources/COpenSSL — TLS termination, driven sans-I/O
//    through memory BIOs by the worker's ring (Sources/TLS), and certificate checks in `check`.
//  * nghttp2 (Debian libnghttp2-dev), through Sources/CNGHTTP2 — HTTP/2 framing, HPACK, flow
//    control and the protocol's checks and flood limits, driven sans-I/O (Sources/HTTP2).
import PackageDescription

let releaseFast: [SwiftSetting] = [
    .unsafeFlags(["-cross-module-optimization"], .when(configuration: .release)),
]

let package = Package(
    name: "ingressd",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "ingressd", targets: ["ingressd"]),
    ],
    dependencies: [
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        // C boundary
        .systemLibrary(name: "CURing", path: "Sources/CURing"),
        .systemLibrary(name: "CSupport", path: "Sources/CSupport"),
        .target(name: "CRE2", linkerSettings: [.linkedLibrary("re2")]),
        .systemLibrary(name: "COpenSSL", path: "Sources/COpenSSL"),
        .systemLibrary(name: "CNGHTTP2", path: "Sources/CNGHTTP2"),

        // Data plane: no Foundation, Yams or Dispatch (checked by Tests/IntegrationTests/LayeringTests).
        // HTTPCore holds the types HTTP1 (and HTTP/2 later) and RouteTable share.
        .target(name: "URing", dependencies: ["CURing", "CSupport"], swiftSettings: releaseFast),
        .target(name: "HTTPCore", swiftSettings: releaseFast),
        .target(name: "HTTP1", dependencies: ["HTTPCore"], swiftSettings: releaseFast),
        // TLS listeners: the ClientHello reader (SNI, ALPN) that runs before any TLS library,
        // and OpenSSL server contexts built from the table's PEM bytes.
        .target(name: "TLS", dependencies: ["COpenSSL"], swiftSettings: releaseFast),
        .target(name: "RouteTable", dependencies: ["HTTPCore", "CRE2"], swiftSettings: releaseFast),
        // HTTP/2 sessions over nghttp2: client bytes → events, responses → frames.
        .target(name: "HTTP2", dependencies: ["CNGHTTP2", "HTTP1", "HTTPCore"], swiftSettings: releaseFast),
        .target(name: "SharedMemory", dependencies: ["CSupport"], swiftSettings: releaseFast),
        .target(name: "Proxy", dependencies: ["URing", "HTTP1", "HTTP2", "TLS", "COpenSSL", "RouteTable", "SharedMemory", "CSupport", "CRE2"], swiftSettings: releaseFast),
        .target(name: "Worker", dependencies: ["Proxy", "URing", "CURing", "RouteTable", "SharedMemory", "CSupport"], swiftSettings: releaseFast),

        // Control plane
        .target(name: "IstioConfig", dependencies: ["Yams"]),
        .target(name: "ConfigCompiler", dependencies: ["IstioConfig", "RouteTable", "COpenSSL"]),
        .target(name: "Supervisor", dependencies: ["COpenSSL", "ConfigCompiler", "IstioConfig", "RouteTable", "HTTP1", "SharedMemory", "CSupport"]),
        .executableTarget(name: "ingressd", dependencies: [
            "Supervisor", "Worker", "ConfigCompiler", "IstioConfig",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], swiftSettings: releaseFast),
        // perf/profile's callgrind driver: N parses / N route lookups (not a product, not installed).
        .executableTarget(name: "Microbench", dependencies: ["HTTP1", "RouteTable", "CRE2", "Proxy"], swiftSettings: releaseFast),

        // Tests mirror the source targets; IntegrationTests run the real binary.
        .testTarget(name: "URingTests", dependencies: ["URing", "CURing"]),
        .testTarget(name: "HTTP1Tests", dependencies: ["HTTP1"]),
        .testTarget(name: "TLSTests", dependencies: ["TLS"]),
        .testTarget(name: "HTTP2Tests", dependencies: ["HTTP2", "HTTP1", "CNGHTTP2"]),
        .testTarget(name: "RouteTableTests", dependencies: ["RouteTable", "HTTP1"]),
        .testTarget(name: "SharedMemoryTests", dependencies: ["SharedMemory", "CSupport"]),
        .testTarget(name: "ProxyTests", dependencies: ["Proxy", "COpenSSL", "RouteTable", "SharedMemory", "URing", "CURing", "CSupport"]),
        .testTarget(name: "IstioConfigTests", dependencies: ["IstioConfig"]),
        .testTarget(name: "ConfigCompilerTests", dependencies: ["ConfigCompiler", "IstioConfig", "RouteTable"], exclude: ["Fixtures"]),
        .testTarget(name: "SupervisorTests", dependencies: ["Supervisor", "ConfigCompiler"], exclude: ["Fixtures"]),
        .testTarget(name: "IntegrationTests", dependencies: []),
    ]
)

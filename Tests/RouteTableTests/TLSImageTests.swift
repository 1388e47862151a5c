import RouteTable
import XCTest

/// Listener record size, for patching listener 1 (TableLayout.swift).
let listenerBytes = 104

let pemChain = Array("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n".utf8)
let pemKey = Array("-----BEGIN PRIVATE KEY-----\nMIGH\n-----END PRIVATE KEY-----\n".utf8)
let pemCA = Array("-----BEGIN CERTIFICATE-----\nMIIC\n-----END CERTIFICATE-----\n".utf8)

/// HTTPS and TLS listeners with terminating and passthrough servers and tls routes.
let tlsSpec = TableSpec(
    listeners: [
        ListenerSpec(port: 80, proto: .http, virtualHosts: [
            VirtualHostSpec(name: "any:80", domains: ["*"], routes: [route("web", [], cluster: 0)]),
        ]),
        ListenerSpec(port: 443, proto: .https, virtualHosts: [
            VirtualHostSpec(name: "a.example.com:443", domains: ["a.example.com"], routes: [route("a", [], cluster: 0)]),
        ], tlsServers: [
            TLSServerSpec(name: "istio-system/gw servers[0]", hosts: ["a.example.com", "*.example.com"], mode: .simple,
                          certificateChainPEM: pemChain, privateKeyPEM: pemKey, minVersion: .v1_2, maxVersion: .v1_3,
                          cipherSuites: "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256"),
            TLSServerSpec(name: "istio-system/gw servers[1]", hosts: ["*.b.example.com"], mode: .mutual,
                          certificateChainPEM: pemChain, privateKeyPEM: pemKey, caCertificatesPEM: pemCA,
                          subjectAltNames: ["spiffe://a/b", "client.example.com"],
                          verifyCertificateSpki: ["Z3Vlc3M="], verifyCertificateHash: ["ab:cd", "ef01"]),
            TLSServerSpec(name: "other/gw2 servers[0]", hosts: ["*"], mode: .passthrough),
        ], tlsRoutes: [
            TLSRouteSpec(name: "default/pass/tls[0]", sniHosts: ["x.b.example.com"],
                         destinations: [WeightedClusterSpec(cluster: 0, weight: 100)]),
            TLSRouteSpec(name: "default/pass/tls[1]", sniHosts: ["*.example.com", "x.b.example.com"],
                         destinations: [WeightedClusterSpec(cluster: 0, weight: 75),
                                        WeightedClusterSpec(cluster: 1, weight: 25)]),
            TLSRouteSpec(name: "default/pass/tls[2]", sniHosts: ["*"],
                         destinations: [WeightedClusterSpec(cluster: -1, weight: 100)]),
            TLSRouteSpec(name: "default/pass/tls[3]", sniHosts: ["*", "late.example.com"], destinations: []),
        ]),
        ListenerSpec(port: 8443, proto: .tls, tlsServers: [
            TLSServerSpec(name: "default/tls servers[0]", hosts: ["pass.example.com"], mode: .passthrough),
            TLSServerSpec(name: "default/tls servers[1]", hosts: ["term.example.com"], mode: .optionalMutual,
                          certificateChainPEM: pemChain, privateKeyPEM: pemKey, caCertificatesPEM: pemCA,
                          minVersion: .v1_0, maxVersion: .auto),
        ], tlsRoutes: [
            TLSRouteSpec(name: "default/db/tls[0]", sniHosts: ["pass.example.com"],
                         destinations: [WeightedClusterSpec(cluster: 1, weight: 1)]),
        ]),
    ],
    clusters: [
        ClusterSpec(name: "outbound|443||a.default.svc.cluster.local",
                    endpoints: [EndpointSpec(address: [127, 0, 0, 1], port: 9443, id: 0)]),
        ClusterSpec(name: "outbound|443||b.default.svc.cluster.local",
                    endpoints: [EndpointSpec(address: [127, 0, 0, 1], port: 9444, id: 1)]),
    ])

final class TLSImageTests: XCTestCase {
    func testRoundTripKeepsTLSServersAndRoutes() throws {
        let f = try Fixture(tlsSpec)
        XCTAssertEqual(f.reader.decodeSpec(), tlsSpec)
    }

    func testServerAccessors() throws {
        let r = try Fixture(tlsSpec).reader
        XCTAssertEqual(r.tlsServers, 0..<5)
        XCTAssertEqual(r.listenerTLSServers(0), 0..<0)
        XCTAssertEqual(r.listenerTLSServers(1), 0..<3)
        XCTAssertEqual(r.listenerTLSServers(2), 3..<5)
        XCTAssertEqual(string(r.tlsServerName(1)), "istio-system/gw servers[1]")
        XCTAssertEqual(r.tlsServerMode(0), .simple)
        XCTAssertEqual(r.tlsServerMode(1), .mutual)
        XCTAssertEqual(r.tlsServerMode(2), .passthrough)
        XCTAssertEqual(r.tlsServerMode(4), .optionalMutual)
        XCTAssertEqual(r.tlsServerHostCount(0), 2)
        XCTAssertEqual(string(r.tlsServerHost(0, 1)), "*.example.com")
        XCTAssertEqual(Array(r.tlsServerCertificateChain(0)), pemChain)
        XCTAssertEqual(Array(r.tlsServerPrivateKey(0)), pemKey)
        XCTAssertEqual(r.tlsServerCACertificates(0).count, 0)
        XCTAssertEqual(Array(r.tlsServerCACertificates(1)), pemCA)
        XCTAssertEqual(r.tlsServerCertificateChain(2).count, 0)   // passthrough
        XCTAssertEqual(r.tlsServerPrivateKey(2).count, 0)
        XCTAssertEqual(r.tlsServerVersions(0).min, .v1_2)
        XCTAssertEqual(r.tlsServerVersions(0).max, .v1_3)
        XCTAssertEqual(r.tlsServerVersions(1).min, .auto)
        XCTAssertEqual(r.tlsServerVersions(4).min, .v1_0)
        XCTAssertEqual(string(r.tlsServerCipherSuites(0)), "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256")
        XCTAssertEqual(r.tlsServerCipherSuites(1).count, 0)
        XCTAssertEqual(r.tlsServerSubjectAltNameCount(1), 2)
        XCTAssertEqual(string(r.tlsServerSubjectAltName(1, 0)), "spiffe://a/b")
        XCTAssertEqual(r.tlsServerSpkiCount(1), 1)
        XCTAssertEqual(string(r.tlsServerSpki(1, 0)), "Z3Vlc3M=")
        XCTAssertEqual(r.tlsServerHashCount(1), 2)
        XCTAssertEqual(string(r.tlsServerHash(1, 1)), "ef01")
        XCTAssertEqual(r.tlsServerSubjectAltNameCount(0), 0)
        // The HTTP listener's records still read right after the TLS ones were added.
        XCTAssertEqual(r.pickCluster(route: 0, random: 1), 0)
        XCTAssertEqual(string(r.virtualHostName(r.listenerVirtualHosts(1).lowerBound)), "a.example.com:443")
    }

    func server(_ r: TableReader, _ l: Int32, _ sni: String?) -> String {
        let bytes = Array((sni ?? "").utf8)
        let s = bytes.withUnsafeBytes { r.tlsServer(listener: l, sni: sni == nil ? UnsafeRawBufferPointer(start: nil, count: 0) : $0) }
        return s < 0 ? "-" : string(r.tlsServerName(s))
    }

    func tlsRoute(_ r: TableReader, _ l: Int32, _ sni: String?) -> String {
        let bytes = Array((sni ?? "").utf8)
        let x = bytes.withUnsafeBytes { r.tlsRoute(listener: l, sni: sni == nil ? UnsafeRawBufferPointer(start: nil, count: 0) : $0) }
        return x < 0 ? "-" : string(r.tlsRouteName(x))
    }

    func testServerChoiceBySNI() throws {
        let r = try Fixture(tlsSpec).reader
        let s0 = "istio-system/gw servers[0]", s1 = "istio-system/gw servers[1]", any = "other/gw2 servers[0]"
        XCTAssertEqual(server(r, 1, "a.example.com"), s0)           // exact
        XCTAssertEqual(server(r, 1, "A.Example.COM"), s0)           // any case
        XCTAssertEqual(server(r, 1, "z.example.com"), s0)           // *.example.com
        XCTAssertEqual(server(r, 1, "q.r.example.com"), s0)         // several labels
        XCTAssertEqual(server(r, 1, "q.b.example.com"), s1)         // longest suffix wins
        XCTAssertEqual(server(r, 1, "x.y.B.example.com"), s1)
        XCTAssertEqual(server(r, 1, "b.example.com"), s0)           // *.b.example.com needs a label
        XCTAssertEqual(server(r, 1, "example.com"), any)            // *.example.com does not take example.com
        XCTAssertEqual(server(r, 1, ".example.com"), any)
        XCTAssertEqual(server(r, 1, "other.org"), any)
        XCTAssertEqual(server(r, 1, nil), any)                      // no SNI: the "*" server
        XCTAssertEqual(server(r, 2, "pass.example.com"), "default/tls servers[0]")
        XCTAssertEqual(server(r, 2, "TERM.example.com"), "default/tls servers[1]")
        XCTAssertEqual(server(r, 2, "x.pass.example.com"), "-")     // no match, no "*"
        XCTAssertEqual(server(r, 2, "pass.example.co"), "-")
        XCTAssertEqual(server(r, 2, nil), "-")                      // no SNI, no "*"
        XCTAssertEqual(server(r, 0, "a.example.com"), "-")          // HTTP listener: no servers
    }

    func testRouteChoiceBySNI() throws {
        let r = try Fixture(tlsSpec).reader
        XCTAssertEqual(r.listenerTLSRoutes(1), 0..<4)
        XCTAssertEqual(r.listenerTLSRoutes(2), 4..<5)
        XCTAssertEqual(tlsRoute(r, 1, "x.b.example.com"), "default/pass/tls[0]")   // exact, earlier route
        XCTAssertEqual(tlsRoute(r, 1, "X.B.EXAMPLE.COM"), "default/pass/tls[0]")
        XCTAssertEqual(tlsRoute(r, 1, "y.b.example.com"), "default/pass/tls[1]")   // wildcard
        XCTAssertEqual(tlsRoute(r, 1, "late.example.com"), "default/pass/tls[3]")  // exact beats an earlier wildcard
        XCTAssertEqual(tlsRoute(r, 1, "example.com"), "default/pass/tls[2]")       // "*", the earlier of two
        XCTAssertEqual(tlsRoute(r, 1, nil), "default/pass/tls[2]")
        XCTAssertEqual(tlsRoute(r, 2, "pass.example.com"), "default/db/tls[0]")
        XCTAssertEqual(tlsRoute(r, 2, "x.example.com"), "-")
        XCTAssertEqual(tlsRoute(r, 2, nil), "-")
        XCTAssertEqual(r.tlsRouteSniHostCount(1), 2)
        XCTAssertEqual(string(r.tlsRouteSniHost(1, 1)), "x.b.example.com")
    }

    func testWeightedPickPerConnection() throws {
        let r = try Fixture(tlsSpec).reader
        XCTAssertEqual(r.tlsWeightedClusterCount(route: 1), 2)
        XCTAssertEqual(r.tlsWeightedCluster(route: 1, 1).cluster, 1)
        XCTAssertEqual(r.tlsWeightedCluster(route: 1, 1).weight, 25)
        XCTAssertEqual(r.pickTLSCluster(route: 0, random: .max), 0)
        XCTAssertEqual(r.pickTLSCluster(route: 2, random: 5), -1)   // missing destination
        XCTAssertEqual(r.pickTLSCluster(route: 3, random: 5), -1)   // no destination
        var counts = [Int32: Int]()
        let n = 10_000
        for k in 0..<n {
            let random = UInt32(truncatingIfNeeded: (UInt64(k) << 32) / UInt64(n))
            counts[r.pickTLSCluster(route: 1, random: random), default: 0] += 1
        }
        XCTAssertEqual(Double(counts[0] ?? 0), 7_500, accuracy: 2)
        XCTAssertEqual(Double(counts[1] ?? 0), 2_500, accuracy: 2)
    }

    func testBuildErrors() {
        func build(_ servers: [TLSServerSpec], routes: [TLSRouteSpec] = []) -> TableBuildError? {
            do {
                _ = try TableImage.build(TableSpec(listeners: [ListenerSpec(port: 443, proto: .https, tlsServers: servers,
                                                                            tlsRoutes: routes)]))
                return nil
            } catch { return error }
        }
        let pass = { (hosts: [String]) in TLSServerSpec(name: "p", hosts: hosts, mode: .passthrough) }
        XCTAssertNil(build([pass(["a.example.com"]), pass(["*.example.com", "*"])]))
        XCTAssertEqual(build([pass(["a.example.com"]), pass(["A.example.com"])]),
                       .duplicateServerName(name: "A.example.com", port: 443))
        XCTAssertEqual(build([pass(["*"]), pass(["*"])]), .duplicateServerName(name: "*", port: 443))
        XCTAssertEqual(build([pass(["a.example.*"])]), .invalidDomain(domain: "a.example.*", virtualHost: "p"))
        XCTAssertEqual(build([pass(["a*.example.com"])]), .invalidDomain(domain: "a*.example.com", virtualHost: "p"))
        XCTAssertEqual(build([pass(["a.com"])], routes: [TLSRouteSpec(name: "r", sniHosts: [""], destinations: [])]),
                       .invalidDomain(domain: "", virtualHost: "r"))
        XCTAssertEqual(build([TLSServerSpec(name: "s", hosts: ["a.com"], mode: .simple, certificateChainPEM: pemChain)]),
                       .invalidTLSServer(server: "s", what: "a terminating server needs a certificate chain and a private key"))
        XCTAssertEqual(build([TLSServerSpec(name: "s", hosts: ["a.com"], mode: .passthrough, caCertificatesPEM: pemCA)]),
                       .invalidTLSServer(server: "s", what: "a passthrough server carries no certificate, key, CA or CRL"))
        XCTAssertEqual(build([TLSServerSpec(name: "s", hosts: ["a.com"], mode: .simple, certificateChainPEM: pemChain,
                                            privateKeyPEM: pemKey, minVersion: .v1_3, maxVersion: .v1_2)]),
                       .invalidTLSServer(server: "s", what: "minimum TLS version is above the maximum"))
        XCTAssertEqual(build([pass(["a.com"])], routes: [TLSRouteSpec(name: "r", sniHosts: ["a.com"], destinations: [
            WeightedClusterSpec(cluster: 0, weight: 1),
        ])]), .clusterIndexOutOfRange(route: "r", index: 0))
    }
}

/// A corrupt TLS record is an error at load, never a wrong certificate or a crash.
final class TLSCorruptImageTests: XCTestCase {
    func error(_ image: [UInt8]) -> TableReadError? {
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(image.count, 1), alignment: 1)
        defer { raw.deallocate() }
        image.withUnsafeBytes { raw.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        do {
            _ = try TableReader(validating: raw, count: image.count)
            return nil
        } catch { return error }
    }

    func set32(_ image: inout [UInt8], _ at: Int, _ v: UInt32) {
        for i in 0..<4 { image[at + i] = UInt8((v >> UInt32(8 * i)) & 0xFF) }
    }
    func get32(_ image: [UInt8], _ at: Int) -> Int {
        (0..<4).reduce(0) { $0 | Int(image[at + $1]) << (8 * $1) }
    }
    func start(_ image: [UInt8], _ s: Section) -> Int { get32(image, 16 + 8 * Int(s.rawValue)) }

    func testCorruptTLSRecordsAreRejected() throws {
        let good = try TableImage.build(tlsSpec)
        XCTAssertNil(error(good))
        let servers = start(good, .tlsServers), routes = start(good, .tlsRoutes), names = start(good, .tlsNames)
        let https = start(good, .listeners) + listenerBytes, tls = start(good, .listeners) + 2 * listenerBytes
        let serverBytes = 100, routeBytes = 32
        func expect(_ section: Section, _ index: Int, _ why: String, _ patch: (inout [UInt8]) -> Void) {
            var bad = good
            patch(&bad)
            XCTAssertEqual(error(bad), .badRecord(section, index: index), why)
        }
        expect(.tlsServers, 0, "unknown mode") { $0[servers + 8] = 9 }
        expect(.tlsServers, 0, "mode 0") { $0[servers + 8] = 0 }
        expect(.tlsServers, 0, "unknown min version") { $0[servers + 9] = 14 }
        expect(.tlsServers, 0, "min above max") { $0[servers + 9] = TLSVersionSpec.v1_3.rawValue; $0[servers + 10] = TLSVersionSpec.v1_2.rawValue }
        expect(.tlsServers, 0, "hosts past the names") { set32(&$0, servers + 16, 1000) }
        expect(.tlsServers, 0, "certificate past the strings") { set32(&$0, servers + 20, 0x00FF_FFFF) }
        expect(.tlsServers, 0, "terminating without a key") { set32(&$0, servers + 32, 0) }
        expect(.tlsServers, 0, "absent key") { set32(&$0, servers + 28, 0xFFFF_FFFF) }
        expect(.tlsServers, 1, "SANs past the names") { set32(&$0, servers + serverBytes + 56, 1000) }
        expect(.tlsServers, 1, "hashes past the names") { set32(&$0, servers + serverBytes + 68, 1000) }
        expect(.tlsServers, 2, "passthrough with a certificate") { set32(&$0, servers + 2 * serverBytes + 24, 4) }
        expect(.tlsServers, 2, "terminating mode without a certificate") { $0[servers + 2 * serverBytes + 8] = TLSServerMode.simple.rawValue }
        expect(.tlsRoutes, 1, "weighted past the section") { set32(&$0, routes + routeBytes + 20, 1000) }
        expect(.tlsRoutes, 1, "total weight not the sum") { set32(&$0, routes + routeBytes + 24, 99) }
        expect(.tlsRoutes, 0, "SNI hosts past the names") { set32(&$0, routes + 12, 1000) }
        expect(.tlsNames, 0, "name past the strings") { set32(&$0, names, 0x00FF_FFFF) }
        expect(.listeners, 1, "servers past the section") { set32(&$0, https + 52, 6) }
        expect(.listeners, 1, "routes past the section") { set32(&$0, https + 80, 6) }
        expect(.listeners, 1, "\"*\" server of another listener") { set32(&$0, https + 56, 3) }
        expect(.listeners, 1, "\"*\" route of another listener") { set32(&$0, https + 84, 4) }
        expect(.listeners, 2, "exact table not a power of two") { set32(&$0, tls + 64, 3) }
        expect(.listeners, 2, "suffix table past the slots") { set32(&$0, tls + 68, 1_000_000); set32(&$0, tls + 72, 1) }
        // A slot of listener 2's exact server table pointing at a server of listener 1.
        var bad = good
        let first = get32(good, tls + 60), n = get32(good, tls + 64)
        let slots = start(good, .hostSlots)
        var patched = false
        for s in first..<(first + n) where !patched && get32(good, slots + 16 * s + 12) != 0xFFFF_FFFF {
            set32(&bad, slots + 16 * s + 12, 0)
            patched = true
        }
        XCTAssertTrue(patched)
        XCTAssertEqual(error(bad), .badRecord(.listeners, index: 2))
    }

    /// Every single-byte corruption is rejected, or reads through every TLS accessor and lookup
    /// without crashing.
    func testSingleByteCorruptionNeverCrashes() throws {
        let good = try TableImage.build(tlsSpec)
        var accepted = 0, rejected = 0
        let snis = ["a.example.com", "q.b.example.com", "pass.example.com", "x", ""].map { Array($0.utf8) }
        for i in 0..<good.count {
            for value: UInt8 in [0x00, 0xFF, good[i] &+ 1] where value != good[i] {
                var bad = good
                bad[i] = value
                bad.withUnsafeBytes { raw in
                    guard let r = try? TableReader(validating: raw.baseAddress!, count: raw.count) else {
                        rejected += 1
                        return
                    }
                    accepted += 1
                    _ = r.decodeSpec()
                    for l in r.listeners {
                        for sni in snis {
                            sni.withUnsafeBytes { b in
                                let s = r.tlsServer(listener: l, sni: b)
                                if s >= 0 { _ = r.tlsServerMode(s); _ = r.tlsServerCertificateChain(s) }
                                let x = r.tlsRoute(listener: l, sni: b)
                                if x >= 0 { _ = r.pickTLSCluster(route: x, random: 0x8000_0000) }
                            }
                        }
                    }
                }
            }
        }
        XCTAssertGreaterThan(rejected, 0)
        XCTAssertGreaterThan(accepted, 0)
    }
}

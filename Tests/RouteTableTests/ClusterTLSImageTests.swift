@testable import RouteTable
import XCTest

let upstreamCA = Array("-----BEGIN CERTIFICATE-----\nMIIU\n-----END CERTIFICATE-----\n".utf8)
let upstreamCRL = Array("-----BEGIN X509 CRL-----\nMIIB\n-----END X509 CRL-----\n".utf8)

func tlsCluster(_ name: String, _ tls: ClusterTLSSpec?) -> ClusterSpec {
    var c = ClusterSpec(name: name, endpoints: [EndpointSpec(address: [127, 0, 0, 1], port: 9443)])
    c.tls = tls
    return c
}

/// Clusters 0–5: plain, SIMPLE with system CAs, SIMPLE with a CA/SNI/SANs, MUTUAL with a CRL, the same
/// SIMPLE settings again as 2 (shared record), and skip-verify.
let clusterTLSSpec = TableSpec(
    listeners: [ListenerSpec(port: 80, proto: .http, virtualHosts: [
        VirtualHostSpec(name: "any:80", domains: ["*"], routes: [route("web", [], cluster: 3)]),
    ])],
    clusters: [
        tlsCluster("outbound|80||plain.default.svc.cluster.local", nil),
        tlsCluster("outbound|443||system.default.svc.cluster.local", ClusterTLSSpec(mode: .simple)),
        tlsCluster("outbound|443||ca.default.svc.cluster.local",
                   ClusterTLSSpec(mode: .simple, caCertificatesPEM: upstreamCA, sni: "api.example.com",
                                  subjectAltNames: ["api.example.com", "spiffe://td/ns/a/sa/b"])),
        tlsCluster("outbound|443|v1|mtls.default.svc.cluster.local",
                   ClusterTLSSpec(mode: .mutual, caCertificatesPEM: upstreamCA, clientCertificateChainPEM: pemChain,
                                  clientPrivateKeyPEM: pemKey, sni: "mtls.example.com", crlPEM: upstreamCRL)),
        tlsCluster("outbound|8443||ca.default.svc.cluster.local",
                   ClusterTLSSpec(mode: .simple, caCertificatesPEM: upstreamCA, sni: "api.example.com",
                                  subjectAltNames: ["api.example.com", "spiffe://td/ns/a/sa/b"])),
        tlsCluster("outbound|443||skip.default.svc.cluster.local",
                   ClusterTLSSpec(mode: .simple, sni: "skip.example.com", insecureSkipVerify: true)),
    ])

final class ClusterTLSImageTests: XCTestCase {
    func testRoundTripKeepsClusterTLS() throws {
        let f = try Fixture(clusterTLSSpec)
        XCTAssertEqual(f.reader.decodeSpec(), clusterTLSSpec)
    }

    func testDisableReadsAsPlainText() throws {
        var spec = clusterTLSSpec
        spec.clusters[1].tls = ClusterTLSSpec(mode: .disable)
        let f = try Fixture(spec)
        XCTAssertEqual(f.reader.clusterTLSMode(1), .disable)
        XCTAssertNil(f.reader.decodeCluster(1).tls)
    }

    func testAccessors() throws {
        let r = try Fixture(clusterTLSSpec).reader
        XCTAssertEqual(r.clusterTLSMode(0), .disable)
        XCTAssertEqual(r.clusterTLSCACertificates(0).count, 0)
        XCTAssertEqual(r.clusterTLSCertificateChain(0).count, 0)
        XCTAssertEqual(r.clusterTLSPrivateKey(0).count, 0)
        XCTAssertEqual(r.clusterTLSSNI(0).count, 0)
        XCTAssertEqual(r.clusterTLSSubjectAltNameCount(0), 0)
        XCTAssertFalse(r.clusterTLSInsecureSkipVerify(0))
        XCTAssertEqual(r.clusterTLSIdentity(0), 0)
        XCTAssertEqual(r.clusterTLSCRL(0).count, 0)

        XCTAssertEqual(r.clusterTLSMode(1), .simple)
        XCTAssertEqual(r.clusterTLSCACertificates(1).count, 0)     // system CAs
        XCTAssertEqual(r.clusterTLSSNI(1).count, 0)                // from the Host
        XCTAssertNotEqual(r.clusterTLSIdentity(1), 0)

        XCTAssertEqual(Array(r.clusterTLSCACertificates(2)), upstreamCA)
        XCTAssertEqual(string(r.clusterTLSSNI(2)), "api.example.com")
        XCTAssertEqual(r.clusterTLSSubjectAltNameCount(2), 2)
        XCTAssertEqual(string(r.clusterTLSSubjectAltName(2, 1)), "spiffe://td/ns/a/sa/b")
        XCTAssertEqual(r.clusterTLSCertificateChain(2).count, 0)
        XCTAssertEqual(r.clusterTLSCRL(2).count, 0)

        XCTAssertEqual(r.clusterTLSMode(3), .mutual)
        XCTAssertEqual(Array(r.clusterTLSCertificateChain(3)), pemChain)
        XCTAssertEqual(Array(r.clusterTLSPrivateKey(3)), pemKey)
        XCTAssertEqual(string(r.clusterTLSSNI(3)), "mtls.example.com")
        XCTAssertEqual(Array(r.clusterTLSCRL(3)), upstreamCRL)

        XCTAssertTrue(r.clusterTLSInsecureSkipVerify(5))
        XCTAssertFalse(r.clusterTLSInsecureSkipVerify(2))
        // The rest of the cluster record still reads right.
        XCTAssertEqual(r.clusterEndpoints(5).count, 1)
        XCTAssertEqual(r.clusterConnectTimeoutMs(5), 10_000)
    }

    func testIdentity() throws {
        let r = try Fixture(clusterTLSSpec).reader
        // Equal settings, different clusters: equal identities (and one shared record).
        XCTAssertEqual(r.clusterTLSIdentity(2), r.clusterTLSIdentity(4))
        XCTAssertEqual(r.clusterTLSIdentity(2), clusterTLSSpec.clusters[2].tls!.identity)
        let ids = [1, 2, 3, 5].map { r.clusterTLSIdentity($0) }
        XCTAssertEqual(Set(ids).count, 4)
        // Stable across images: the same settings in another table give the same identity.
        let other = TableSpec(clusters: [clusterTLSSpec.clusters[3]])
        XCTAssertEqual(try Fixture(other).reader.clusterTLSIdentity(0), r.clusterTLSIdentity(3))

        // Every field changes it.
        let base = ClusterTLSSpec(mode: .mutual, caCertificatesPEM: upstreamCA, clientCertificateChainPEM: pemChain,
                                  clientPrivateKeyPEM: pemKey, sni: "a.example.com", subjectAltNames: ["a.example.com"])
        var variants = [base]
        var v = base; v.caCertificatesPEM = pemCA; variants.append(v)
        v = base; v.caCertificatesPEM = []; variants.append(v)
        v = base; v.clientCertificateChainPEM = pemCA; variants.append(v)
        v = base; v.clientPrivateKeyPEM = pemCA; variants.append(v)
        v = base; v.sni = "b.example.com"; variants.append(v)
        v = base; v.sni = ""; variants.append(v)
        v = base; v.subjectAltNames = []; variants.append(v)
        v = base; v.subjectAltNames = ["a.example.co", "m"]; variants.append(v)
        v = base; v.subjectAltNames = ["a.example.com", ""]; variants.append(v)
        v = base; v.crlPEM = upstreamCRL; variants.append(v)
        v = base; v.crlPEM = upstreamCRL + upstreamCRL; variants.append(v)
        v = base; v.mode = .simple; v.clientCertificateChainPEM = []; v.clientPrivateKeyPEM = []; variants.append(v)
        v.caCertificatesPEM = []; v.subjectAltNames = []; variants.append(v)
        v.insecureSkipVerify = true; variants.append(v)
        // Length prefixes: moving bytes from one field to the next is a different identity.
        v = base; v.sni = "a.example.coma.example.com"; v.subjectAltNames = []; variants.append(v)
        v = base; v.subjectAltNames = ["a.example.com", "x"]; variants.append(v)
        v = base; v.subjectAltNames = ["a.example.com"]; v.crlPEM = Array("\u{1}\0\0\0x".utf8); variants.append(v)
        let all = variants.map(\.identity)
        XCTAssertEqual(Set(all).count, variants.count, "\(all)")
        XCTAssertFalse(all.contains(0))
        XCTAssertEqual(ClusterTLSSpec(mode: .disable, sni: "x").identity, 0)
        // Read back from an image, each variant keeps the identity its spec computes.
        let spec = TableSpec(clusters: variants.enumerated().map { tlsCluster("c\($0.offset)", $0.element) })
        let image = try Fixture(spec).reader
        XCTAssertEqual(image.clusters.map { image.clusterTLSIdentity($0) }, all)
    }

    func testBuildErrors() {
        func build(_ tls: ClusterTLSSpec) -> TableBuildError? {
            do { _ = try TableImage.build(TableSpec(clusters: [tlsCluster("c", tls)])); return nil } catch { return error }
        }
        XCTAssertEqual(build(ClusterTLSSpec(mode: .mutual, clientCertificateChainPEM: pemChain)),
                       .invalidClusterTLS(cluster: "c", what: "MUTUAL needs a client certificate chain and a private key"))
        XCTAssertEqual(build(ClusterTLSSpec(mode: .simple, clientPrivateKeyPEM: pemKey)),
                       .invalidClusterTLS(cluster: "c", what: "SIMPLE carries no client certificate or key"))
        XCTAssertEqual(build(ClusterTLSSpec(mode: .simple, caCertificatesPEM: pemCA, insecureSkipVerify: true)),
                       .invalidClusterTLS(cluster: "c", what: "insecureSkipVerify excludes a CA, subjectAltNames and CRLs"))
        XCTAssertEqual(build(ClusterTLSSpec(mode: .simple, subjectAltNames: ["a"], insecureSkipVerify: true)),
                       .invalidClusterTLS(cluster: "c", what: "insecureSkipVerify excludes a CA, subjectAltNames and CRLs"))
        XCTAssertEqual(build(ClusterTLSSpec(mode: .simple, insecureSkipVerify: true, crlPEM: upstreamCRL)),
                       .invalidClusterTLS(cluster: "c", what: "insecureSkipVerify excludes a CA, subjectAltNames and CRLs"))
        XCTAssertEqual(build(ClusterTLSSpec(mode: .simple, sni: "a\r\nb")), .invalidValue(owner: "cluster c tls", value: "a\r\nb"))
        XCTAssertNil(build(ClusterTLSSpec(mode: .disable, clientPrivateKeyPEM: pemKey)))  // ignored: plain text
    }

    func testSipHashReferenceVectors() {
        // SipHash-2-4 paper, key 00 01 … 0f: the empty message, one byte, and 00 … 0e (appendix A).
        XCTAssertEqual(ClusterTLSIdentity.sipHash24([]), 0x726F_DB47_DD0E_0E31)
        XCTAssertEqual(ClusterTLSIdentity.sipHash24([0]), 0x74F8_39C5_93DC_67FD)
        XCTAssertEqual(ClusterTLSIdentity.sipHash24(Array(0...14)), 0xA129_CA61_49BE_45E5)
    }
}

/// A corrupt ClusterTLS record or cluster reference is an error at load, never a wrong
/// certificate, a wrong identity or a crash.
final class ClusterTLSCorruptImageTests: XCTestCase {
    let clusterBytes = 88, recordBytes = 60

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

    func testCorruptRecordsAreRejected() throws {
        let good = try TableImage.build(clusterTLSSpec)
        XCTAssertNil(error(good))
        XCTAssertEqual(get32(good, 16 + 8 * Int(Section.clusterTLS.rawValue) + 4), 4)  // 2 and 4 share one
        let clusters = start(good, .clusters), records = start(good, .clusterTLS)
        // Records in cluster order: 1 (system), 2 (CA, SANs), 3 (mutual), 5 (skip).
        func expect(_ section: Section, _ index: Int, _ why: String, _ patch: (inout [UInt8]) -> Void) {
            var bad = good
            patch(&bad)
            XCTAssertEqual(error(bad), .badRecord(section, index: index), why)
        }
        expect(.clusters, 1, "record past the section") { set32(&$0, clusters + clusterBytes + 72, 4) }
        expect(.clusters, 0, "negative record") { set32(&$0, clusters + 72, 0xFFFF_FFFE) }
        expect(.clusterTLS, 0, "mode disable") { $0[records] = 0 }
        expect(.clusterTLS, 0, "unknown mode") { $0[records] = 3 }
        expect(.clusterTLS, 0, "unknown flag") { $0[records + 1] = 2 }
        expect(.clusterTLS, 0, "CA past the strings") { set32(&$0, records + 4, 0x00FF_FFFF) }
        expect(.clusterTLS, 0, "absent SNI") { set32(&$0, records + 28, 0xFFFF_FFFF) }
        expect(.clusterTLS, 1, "SANs past the names") { set32(&$0, records + recordBytes + 36, 1000) }
        expect(.clusterTLS, 1, "skip-verify with a CA") { $0[records + recordBytes + 1] = 1 }
        expect(.clusterTLS, 0, "SIMPLE with a key") {
            set32(&$0, records + 20, UInt32(get32(good, records + 2 * recordBytes + 20)))
            set32(&$0, records + 24, UInt32(get32(good, records + 2 * recordBytes + 24)))
        }
        expect(.clusterTLS, 2, "MUTUAL without a key") { set32(&$0, records + 2 * recordBytes + 24, 0) }
        expect(.clusterTLS, 2, "MUTUAL read as SIMPLE") { $0[records + 2 * recordBytes] = 1 }
        expect(.clusterTLS, 0, "identity changed") { $0[records + 44] ^= 1 }
        expect(.clusterTLS, 3, "skip flag cleared") { $0[records + 3 * recordBytes + 1] = 0 }
        expect(.clusterTLS, 2, "CRL past the strings") { set32(&$0, records + 2 * recordBytes + 52, 0x00FF_FFFF) }
        expect(.clusterTLS, 2, "CRL one byte shorter") {
            set32(&$0, records + 2 * recordBytes + 56, UInt32(get32(good, records + 2 * recordBytes + 56) - 1))
        }
        expect(.clusterTLS, 3, "skip-verify with a CRL") {
            set32(&$0, records + 3 * recordBytes + 52, UInt32(get32(good, records + 2 * recordBytes + 52)))
            set32(&$0, records + 3 * recordBytes + 56, UInt32(get32(good, records + 2 * recordBytes + 56)))
        }
        expect(.clusterTLS, 1, "SNI one byte shorter") {
            set32(&$0, records + recordBytes + 32, UInt32(get32(good, records + recordBytes + 32) - 1))
        }
    }

    /// Every single-byte corruption is rejected, or reads through every cluster TLS accessor
    /// without crashing.
    func testSingleByteCorruptionNeverCrashes() throws {
        let good = try TableImage.build(clusterTLSSpec)
        var accepted = 0, rejected = 0
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
                    for c in r.clusters {
                        _ = r.clusterTLSMode(c); _ = r.clusterTLSCACertificates(c); _ = r.clusterTLSSNI(c)
                        _ = r.clusterTLSCertificateChain(c); _ = r.clusterTLSPrivateKey(c)
                        _ = r.clusterTLSInsecureSkipVerify(c); _ = r.clusterTLSIdentity(c); _ = r.clusterTLSCRL(c)
                        for s in 0..<r.clusterTLSSubjectAltNameCount(c) { _ = r.clusterTLSSubjectAltName(c, s) }
                    }
                }
            }
        }
        XCTAssertGreaterThan(rejected, 0)
        XCTAssertGreaterThan(accepted, 0)
    }
}

// The TLS transport without a worker process (EngineHarness): an in-process OpenSSL client on
// a non-blocking socket, the engine pumped between its steps, so the handshake, pipelined
// requests inside one TLS record, refusals and the handshake timeout are scripted, not raced.
// Each test checks that connections and exchanges are released.

import COpenSSL
import Foundation
@testable import Proxy
import RouteTable
import SharedMemory
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// A self-signed ECDSA P-256 certificate for `names` (openssl CLI): PEM bytes.
func selfSignedPEM(_ names: [String]) throws -> (cert: [UInt8], key: [UInt8]) {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tls-engine-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
    p.arguments = ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "30",
                   "-subj", "/CN=\(names[0])", "-addext", "subjectAltName=" + names.map { "DNS:\($0)" }.joined(separator: ","),
                   "-keyout", dir.appendingPathComponent("k.pem").path, "-out", dir.appendingPathComponent("c.pem").path]
    p.standardOutput = FileHandle.nullDevice
    p.standardError = FileHandle.nullDevice
    guard FileManager.default.isExecutableFile(atPath: "/usr/bin/openssl") else { throw XCTSkip("openssl CLI not installed") }
    try p.run()
    p.waitUntilExit()
    return (Array(try Data(contentsOf: dir.appendingPathComponent("c.pem"))), Array(try Data(contentsOf: dir.appendingPathComponent("k.pem"))))
}

/// `oneRouteTable` on an HTTPS listener whose one server answers `hosts` with `pem`.
func httpsTable(_ ports: [UInt16], hosts: [String], pem: (cert: [UInt8], key: [UInt8])) -> TableSpec {
    var t = oneRouteTable(ports)
    t.listeners[0].proto = .https
    t.listeners[0].tlsServers = [TLSServerSpec(name: "default/gw servers[0]", hosts: hosts, mode: .simple,
                                               certificateChainPEM: pem.cert, privateKeyPEM: pem.key)]
    return t
}

/// An OpenSSL client on a non-blocking socket to the harness's listener.
final class TLSTestClient {
    let h: EngineHarness
    let fd: Int32
    let ctx: OpaquePointer
    let ssl: OpaquePointer
    var failed = false

    init(_ h: EngineHarness, sni: String?) {
        self.h = h
        fd = h.connectClient()
        ctx = SSL_CTX_new(TLS_client_method())
        ssl = SSL_new(ctx)
        SSL_set_fd(ssl, fd)
        if let sni { _ = ing_ssl_set_tlsext_host_name(ssl, sni) }
        SSL_set_connect_state(ssl)
    }

    deinit {
        SSL_free(ssl)
        SSL_CTX_free(ctx)
        close(fd)
    }

    /// True when the handshake completed; false when it failed (the server refused or closed).
    func handshake() -> Bool {
        var ok = false
        h.run(steps: 400) {
            let r = SSL_do_handshake(ssl)
            if r == 1 { ok = true; return true }
            let e = SSL_get_error(ssl, r)
            if e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE { return false }
            ERR_clear_error()
            failed = true
            return true
        }
        return ok
    }

    func write(_ text: String) {
        let bytes = Array(text.utf8)
        let n = bytes.withUnsafeBytes { SSL_write(ssl, $0.baseAddress, Int32($0.count)) }
        XCTAssertEqual(Int(n), bytes.count, "one SSL_write: the requests go out in one TLS record")
        h.step()
    }

    /// Plaintext until `done(text)` or the connection ends.
    func read(until done: (String) -> Bool) -> (text: String, eof: Bool) {
        var text = ""
        var eof = false
        var buf = [UInt8](repeating: 0, count: 65536)
        h.run(steps: 400) {
            while true {
                let n = buf.withUnsafeMutableBytes { SSL_read(ssl, $0.baseAddress, Int32($0.count)) }
                if n > 0 { text += String(decoding: buf[..<Int(n)], as: UTF8.self); continue }
                let e = SSL_get_error(ssl, n)
                if e != SSL_ERROR_WANT_READ { eof = true; ERR_clear_error() }
                break
            }
            return eof || done(text)
        }
        return (text, eof)
    }
}

/// The test playing a TLS upstream on a connection the engine opened (accepted by the test).
final class TLSTestServer {
    let h: EngineHarness
    let fd: Int32
    let ctx: OpaquePointer
    let ssl: OpaquePointer

    init(_ h: EngineHarness, fd: Int32, pem: (cert: [UInt8], key: [UInt8])) {
        self.h = h
        self.fd = fd
        let ctx = SSL_CTX_new(TLS_server_method())!
        self.ctx = ctx
        pem.cert.withUnsafeBytes { c in
            let bio = BIO_new_mem_buf(c.baseAddress, Int32(c.count))
            let x = PEM_read_bio_X509(bio, nil, nil, nil)
            SSL_CTX_use_certificate(ctx, x)
            X509_free(x)
            BIO_free(bio)
        }
        pem.key.withUnsafeBytes { k in
            let bio = BIO_new_mem_buf(k.baseAddress, Int32(k.count))
            let key = PEM_read_bio_PrivateKey(bio, nil, nil, nil)
            SSL_CTX_use_PrivateKey(ctx, key)
            EVP_PKEY_free(key)
            BIO_free(bio)
        }
        ssl = SSL_new(ctx)
        SSL_set_fd(ssl, fd)
        SSL_set_accept_state(ssl)
    }

    deinit {
        SSL_free(ssl)
        SSL_CTX_free(ctx)
        close(fd)
    }

    /// The SNI the engine sent, once the handshake completed (nil: it failed).
    func handshake() -> String? {
        var ok = false
        h.run(steps: 400) {
            let r = SSL_do_handshake(ssl)
            if r == 1 { ok = true; return true }
            let e = SSL_get_error(ssl, r)
            if e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE { return false }
            ERR_clear_error()
            return true
        }
        guard ok else { return nil }
        return SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name).map { String(cString: $0) } ?? ""
    }

    func readHead() -> String {
        var text = ""
        var buf = [UInt8](repeating: 0, count: 65536)
        h.run(steps: 400) {
            let n = buf.withUnsafeMutableBytes { SSL_read(ssl, $0.baseAddress, Int32($0.count)) }
            if n > 0 { text += String(decoding: buf[..<Int(n)], as: UTF8.self) } else { ERR_clear_error() }
            return text.contains("\r\n\r\n")
        }
        return text
    }

    func write(_ text: String) {
        let bytes = Array(text.utf8)
        _ = bytes.withUnsafeBytes { SSL_write(ssl, $0.baseAddress, Int32($0.count)) }
        h.step()
    }
}

final class TLSEngineTests: XCTestCase {
    private let ok = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"

    func testHandshakeThenPipelinedRequestsInOneRecord() throws {
        let pem = try selfSignedPEM(["app.test"])
        let h = try EngineHarness { httpsTable($0, hosts: ["app.test"], pem: pem) }
        let client = TLSTestClient(h, sni: "app.test")
        XCTAssertTrue(client.handshake())
        client.write("GET /1 HTTP/1.1\r\nHost: app.test\r\n\r\nGET /2 HTTP/1.1\r\nHost: app.test\r\n\r\n")
        let up = h.acceptUpstream()
        guard up >= 0 else {
            return XCTFail("no upstream connection; the client got: \(client.read { !$0.isEmpty })")
        }
        defer { close(up) }
        let first = h.readHead(up)
        XCTAssertTrue(first.hasPrefix("GET /1 HTTP/1.1\r\n"), first)
        XCTAssertTrue(first.contains("x-forwarded-proto: https\r\n"), first)
        XCTAssertFalse(first.contains("GET /2"), "the second request waits for the first response")
        h.send(up, ok)
        let second = h.readHead(up)
        XCTAssertTrue(second.hasPrefix("GET /2 HTTP/1.1\r\n"), second)
        h.send(up, ok)
        let replies = client.read { $0.components(separatedBy: "HTTP/1.1 200 OK").count == 3 && $0.hasSuffix("ok") }
        XCTAssertEqual(replies.text.components(separatedBy: "HTTP/1.1 200 OK").count, 3, replies.text)
        XCTAssertFalse(replies.eof)
        h.run(steps: 20) { h.openExchanges == 0 }
        XCTAssertEqual(h.openExchanges, 0)
        XCTAssertEqual(h.openConnections, 2, "the TLS client and the pooled upstream")
        XCTAssertEqual(h.region.workerSlot(0).counter(WorkerSlotField.tlsHandshakes), 1)
    }

    func testLargeResponseIsEncryptedWhole() throws {
        let pem = try selfSignedPEM(["app.test"])
        let h = try EngineHarness { httpsTable($0, hosts: ["*"], pem: pem) }
        let client = TLSTestClient(h, sni: nil)   // a "*" server takes a hello without SNI
        XCTAssertTrue(client.handshake())
        client.write("GET /big HTTP/1.1\r\nHost: app.test\r\n\r\n")
        let up = h.acceptUpstream()
        defer { close(up) }
        _ = h.readHead(up)
        let body = String(repeating: "0123456789abcdef", count: 300 * 1024 / 16)   // 300 KiB: many records
        h.send(up, "HTTP/1.1 200 OK\r\ncontent-length: \(body.utf8.count)\r\n\r\n" + body)
        let reply = client.read { $0.hasSuffix(String(body.suffix(64))) }
        XCTAssertTrue(reply.text.hasSuffix(body), "\(reply.text.utf8.count) bytes")
        XCTAssertFalse(reply.eof)
    }

    func testPlaintextAndUnknownSNIAreClosedWithoutAByte() throws {
        let pem = try selfSignedPEM(["app.test"])
        let h = try EngineHarness { httpsTable($0, hosts: ["app.test"], pem: pem) }
        let plain = h.connectClient()
        defer { close(plain) }
        h.send(plain, "GET / HTTP/1.1\r\nHost: app.test\r\n\r\n")
        let r = h.read(plain) { _ in false }
        XCTAssertTrue(r.eof)
        XCTAssertEqual(r.text, "")
        let stranger = TLSTestClient(h, sni: "other.test")
        XCTAssertFalse(stranger.handshake())
        h.run { h.openConnections == 1 }   // the TLS client's socket is still open on its side
        XCTAssertEqual(h.region.workerSlot(0).counter(WorkerSlotField.tlsNoFilterChainMatch), 1)
        XCTAssertEqual(h.openExchanges, 0)
    }

    func testStalledHelloIsClosedByTheHeaderTimeout() throws {
        let pem = try selfSignedPEM(["app.test"])
        let h = try EngineHarness { httpsTable($0, hosts: ["*"], pem: pem) }
        let fd = h.connectClient()
        defer { close(fd) }
        _ = [UInt8]([0x16, 0x03, 0x01, 0x02, 0x00, 0x01]).withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, 0) }
        h.step()
        XCTAssertEqual(h.openConnections, 1)
        h.advance(ms: 11_000)
        let r = h.read(fd) { _ in false }
        XCTAssertTrue(r.eof, "closed after the header timeout")
        XCTAssertEqual(r.text, "", "not a byte: no 408 on a TLS port")
        h.run { h.openConnections == 0 }
        XCTAssertEqual(h.openConnections, 0)
    }

    func testClientVanishingMidHandshakeReleasesEverything() throws {
        let pem = try selfSignedPEM(["app.test"])
        let h = try EngineHarness { httpsTable($0, hosts: ["*"], pem: pem) }
        do {
            let client = TLSTestClient(h, sni: "app.test")
            // Send the ClientHello only, then go away.
            _ = SSL_do_handshake(client.ssl)
            h.step()
        }
        h.run { h.openConnections == 0 }
        XCTAssertEqual(h.openConnections, 0)
        XCTAssertEqual(h.openExchanges, 0)
    }

    func testGarbageAfterTheHandshakeClosesOnlyThatConnection() throws {
        let pem = try selfSignedPEM(["app.test"])
        let h = try EngineHarness { httpsTable($0, hosts: ["*"], pem: pem) }
        let good = TLSTestClient(h, sni: "app.test")
        XCTAssertTrue(good.handshake())
        let bad = TLSTestClient(h, sni: "app.test")
        XCTAssertTrue(bad.handshake())
        // An application-data record header followed by bytes that do not decrypt.
        var junk: [UInt8] = [0x17, 0x03, 0x03, 0x00, 0x40]
        junk += (0..<64).map { UInt8(truncatingIfNeeded: $0 &* 37) }
        _ = junk.withUnsafeBytes { Glibc.send(bad.fd, $0.baseAddress, $0.count, 0) }
        let r = bad.read { _ in false }
        XCTAssertTrue(r.eof, "closed (after OpenSSL's bad_record_mac alert)")
        XCTAssertGreaterThanOrEqual(h.region.workerSlot(0).counter(WorkerSlotField.tlsConnectionErrors), 1)
        // The other connection is untouched and serves a request.
        good.write("GET /x HTTP/1.1\r\nHost: app.test\r\n\r\n")
        let up = h.acceptUpstream()
        defer { close(up) }
        XCTAssertTrue(h.readHead(up).hasPrefix("GET /x HTTP/1.1"))
        h.send(up, ok)
        XCTAssertTrue(good.read { $0.hasSuffix("ok") }.text.hasPrefix("HTTP/1.1 200 OK"))
    }

    func testManyTinyRecordsAreServed() throws {
        let pem = try selfSignedPEM(["app.test"])
        let h = try EngineHarness { httpsTable($0, hosts: ["*"], pem: pem) }
        let client = TLSTestClient(h, sni: "app.test")
        XCTAssertTrue(client.handshake())
        // A request head split into one TLS record per byte (38 records in one burst).
        for b in "GET /tiny HTTP/1.1\r\nHost: app.test\r\n\r\n".utf8 {
            var x = b
            _ = SSL_write(client.ssl, &x, 1)
        }
        let up = h.acceptUpstream()
        defer { close(up) }
        XCTAssertTrue(h.readHead(up).hasPrefix("GET /tiny HTTP/1.1\r\n"))
        h.send(up, ok)
        XCTAssertTrue(client.read { $0.hasSuffix("ok") }.text.hasPrefix("HTTP/1.1 200 OK"))
    }

    // MARK: TLS to upstreams

    func testUpstreamTLSSendsSNIVerifiesAndPoolsTheConnection() throws {
        let pem = try selfSignedPEM(["up.test"])
        let h = try EngineHarness { ports in
            var t = oneRouteTable(ports)
            t.clusters[0].tls = ClusterTLSSpec(mode: .simple, caCertificatesPEM: pem.cert, sni: "up.test")
            return t
        }
        let client = h.connectClient()
        defer { close(client) }
        h.send(client, "GET /a HTTP/1.1\r\nHost: app.test\r\n\r\n")
        let fd = h.acceptUpstream()
        XCTAssertGreaterThanOrEqual(fd, 0)
        let up = TLSTestServer(h, fd: fd, pem: pem)
        XCTAssertEqual(up.handshake(), "up.test", "the cluster's sni")
        XCTAssertTrue(up.readHead().hasPrefix("GET /a HTTP/1.1\r\n"))
        up.write(ok)
        XCTAssertTrue(h.read(client) { $0.hasSuffix("\r\n\r\nok") }.text.hasPrefix("HTTP/1.1 200 OK"))
        // The second request goes over the same (pooled) TLS connection: no new accept.
        h.send(client, "GET /b HTTP/1.1\r\nHost: app.test\r\n\r\n")
        XCTAssertTrue(up.readHead().hasPrefix("GET /b HTTP/1.1\r\n"))
        up.write(ok)
        XCTAssertTrue(h.read(client) { $0.hasSuffix("\r\n\r\nok") }.text.hasPrefix("HTTP/1.1 200 OK"))
        h.run(steps: 20) { h.openExchanges == 0 }
        XCTAssertEqual(h.openConnections, 2)
    }

    func testUpstreamCertificateForAnotherNameIs503() throws {
        let pem = try selfSignedPEM(["other.test"])
        let h = try EngineHarness { ports in
            var t = oneRouteTable(ports)
            t.clusters[0].tls = ClusterTLSSpec(mode: .simple, caCertificatesPEM: pem.cert)   // auto SNI: app.test
            return t
        }
        let client = h.connectClient()
        defer { close(client) }
        h.send(client, "GET /a HTTP/1.1\r\nHost: app.test:8080\r\n\r\n")
        // Istio's default retry policy retries a connect failure twice: three handshakes fail.
        for attempt in 1...3 {
            let fd = h.acceptUpstream()
            XCTAssertGreaterThanOrEqual(fd, 0, "attempt \(attempt)")
            let up = TLSTestServer(h, fd: fd, pem: pem)
            XCTAssertNil(up.handshake(), "the engine refuses a certificate that does not name app.test")
        }
        let reply = h.read(client) { $0.contains("\r\n\r\n") && $0.hasSuffix("connection failure") }
        XCTAssertTrue(reply.text.hasPrefix("HTTP/1.1 503"), reply.text)
        h.run { h.openConnections == 1 }
        XCTAssertEqual(h.openExchanges, 0)
    }
}

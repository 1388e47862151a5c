// HTTP/1.1 proxy behaviour that clients depend on (DESIGN.md §8): HEAD, 204/304, 100-continue,
// Connection: close from either side, pipelining, chunked responses, Upgrade tunnels.

import Foundation
import XCTest

/// A blocking client socket for exchanges curl cannot script (pipelining, upgrades).
final class RawConnection {
    let fd: Int32

    init(port: UInt16, timeout: TimeInterval = 5) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw HarnessError("socket: errno \(errno)") }
        var tv = timeval(tv_sec: Int(timeout), tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = port.bigEndian
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else { throw HarnessError("connect: errno \(errno)") }
    }

    deinit { close(fd) }

    func send(_ text: String) { send(Array(text.utf8)) }

    func send(_ bytes: [UInt8]) {
        var off = 0
        while off < bytes.count {
            let n = bytes[off...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return }
            off += n
        }
    }

    /// Reads until `count` bytes arrived, the peer closed, or the timeout passed.
    func read(atLeast count: Int) -> [UInt8] {
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while out.count < count {
            let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            out += buf[..<n]
        }
        return out
    }

    /// Reads until the text contains `marker` occurrences of `needle` (or EOF/timeout).
    func read(until needle: String, occurrences: Int = 1) -> String {
        var text = ""
        var buf = [UInt8](repeating: 0, count: 65536)
        while text.components(separatedBy: needle).count - 1 < occurrences {
            let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            text += String(decoding: buf[..<n], as: UTF8.self)
        }
        return text
    }

    /// True when the peer closed the connection (recv returns 0).
    func peerClosed() -> Bool {
        var b: UInt8 = 0
        return recv(fd, &b, 1, 0) == 0
    }
}

final class HTTPBehaviourTests: IntegrationTestCase {
    func testHeadHasHeadersButNoBody() throws {
        let shop = try Workshop.start(harness)
        let r = try harness.curl(shop.url + "/kiali/bytes/5000", host: "dashboard.example.com", ["-I"])
        XCTAssertEqual(r.status, 200)
        XCTAssertEqual(r.header("content-length"), "5000")
        // curl -I prints the head as its output; no body byte may follow it.
        XCTAssertFalse(r.text.contains("0123456789"), r.text)
        // The connection stays usable: HEAD then GET on one connection.
        let conn = try RawConnection(port: shop.listenPort)
        conn.send("HEAD /kiali/bytes/100 HTTP/1.1\r\nHost: dashboard.example.com\r\n\r\n"
                  + "GET /kiali/bytes/10 HTTP/1.1\r\nHost: dashboard.example.com\r\n\r\n")
        let text = conn.read(until: "0123456789")
        XCTAssertEqual(text.components(separatedBy: "HTTP/1.1 200").count - 1, 2, text)
        XCTAssertTrue(text.hasSuffix("\r\n\r\n0123456789"), text)
    }

    func testNoBodyStatuses() throws {
        let shop = try Workshop.start(harness)
        let conn = try RawConnection(port: shop.listenPort)
        conn.send("GET /kiali/status/204 HTTP/1.1\r\nHost: dashboard.example.com\r\n\r\n"
                  + "GET /kiali/status/304 HTTP/1.1\r\nHost: dashboard.example.com\r\n\r\n"
                  + "GET /kiali/bytes/3 HTTP/1.1\r\nHost: dashboard.example.com\r\n\r\n")
        let text = conn.read(until: "012")
        let statuses = text.components(separatedBy: "HTTP/1.1 ").dropFirst().map { String($0.prefix(3)) }
        XCTAssertEqual(statuses, ["204", "304", "200"], text)
    }

    func testPipelinedRequestsAreAnsweredInOrder() throws {
        let shop = try Workshop.start(harness)
        let conn = try RawConnection(port: shop.listenPort)
        var batch = ""
        for i in 0..<5 { batch += "GET /kiali/p\(i) HTTP/1.1\r\nHost: dashboard.example.com\r\n\r\n" }
        conn.send(batch)
        let text = conn.read(until: "request: GET /kiali/p4", occurrences: 1)
        var order: [String] = []
        for line in text.split(separator: "\n") where line.hasPrefix("request: GET /kiali/p") {
            order.append(String(line.dropFirst("request: GET /kiali/".count).prefix(2)))
        }
        XCTAssertEqual(order, ["p0", "p1", "p2", "p3", "p4"], text)
    }

    func testExpect100ContinueUpload() throws {
        let shop = try Workshop.start(harness)
        let body = String(repeating: "a", count: 100_000)
        let file = try harness.write("body.txt", body)
        let r = try harness.curl(shop.url + "/kiali/upload", host: "dashboard.example.com",
                                 ["-H", "Expect: 100-continue", "--data-binary", "@" + file])
        XCTAssertEqual(r.status, 200, r.text)
        XCTAssertTrue(r.text.contains("body-bytes: 100000"), r.text)
    }

    func testClientConnectionCloseIsHonoured() throws {
        let shop = try Workshop.start(harness)
        let conn = try RawConnection(port: shop.listenPort)
        conn.send("GET /kiali/x HTTP/1.1\r\nHost: dashboard.example.com\r\nConnection: close\r\n\r\n")
        let reply = conn.read(atLeast: Int.max)   // until the proxy closes
        let text = String(decoding: reply, as: UTF8.self)
        XCTAssertTrue(text.hasPrefix("HTTP/1.1 200"), text)
        XCTAssertTrue(text.lowercased().contains("connection: close"), text)
        XCTAssertTrue(text.contains("upstream: kiali"), text)
    }

    func testUpstreamConnectionCloseKeepsTheClientConnection() throws {
        let shop = try Workshop.start(harness)
        let conn = try RawConnection(port: shop.listenPort)
        // The upstream answers with `connection: close` (its own keep-alive ends); the client's
        // connection is another hop and stays open.
        conn.send("GET /kiali/a HTTP/1.1\r\nHost: dashboard.example.com\r\nx-upstream-close: 1\r\n\r\n")
        let first = conn.read(until: "body-sha256")
        XCTAssertTrue(first.contains("upstream: kiali"), first)
        conn.send("GET /kiali/b HTTP/1.1\r\nHost: dashboard.example.com\r\n\r\n")
        let second = conn.read(until: "body-sha256")
        XCTAssertTrue(second.contains("request: GET /kiali/b"), second)
        XCTAssertFalse(second.lowercased().contains("connection: close"), second)
    }

    func testChunkedResponseIsForwardedWhole() throws {
        let shop = try Workshop.start(harness)
        let r = try harness.curl(shop.url + "/kiali/chunked/100000", host: "dashboard.example.com")
        XCTAssertEqual(r.status, 200)
        XCTAssertEqual(r.body.count, 100_000)
        XCTAssertEqual(r.header("transfer-encoding"), "chunked")
    }

    func testUpgradeIsTunnelled() throws {
        let shop = try Workshop.start(harness)
        let conn = try RawConnection(port: shop.listenPort)
        conn.send("GET /kiali/ws HTTP/1.1\r\nHost: dashboard.example.com\r\nConnection: Upgrade\r\n"
                  + "Upgrade: websocket\r\n\r\n")
        let head = conn.read(until: "\r\n\r\n")
        XCTAssertTrue(head.hasPrefix("HTTP/1.1 101"), head)
        XCTAssertTrue(head.lowercased().contains("upgrade: websocket"), head)
        for message in ["hello", String(repeating: "x", count: 50_000), "bye"] {
            conn.send(message)
            let echoed = conn.read(atLeast: message.utf8.count)
            XCTAssertEqual(String(decoding: echoed, as: UTF8.self), message)
        }
    }

    /// DESIGN.md §8 timeouts, shortened by flags: a head that stops arriving gets 408 and the
    /// connection closes; an idle keep-alive connection is closed.
    func testHeaderAndIdleTimeouts() throws {
        let shop = try Workshop.start(harness, extraArgs: ["--header-timeout", "1s", "--idle-timeout", "2s"])
        let partial = try RawConnection(port: shop.listenPort, timeout: 6)
        let started = Date()
        partial.send("GET /kiali/x HTTP/1.1\r\nHost: dash")
        let reply = String(decoding: partial.read(atLeast: Int.max), as: UTF8.self)
        XCTAssertTrue(reply.hasPrefix("HTTP/1.1 408"), reply)
        XCTAssertLessThan(Date().timeIntervalSince(started), 4, "408 after about the header timeout")

        let idle = try RawConnection(port: shop.listenPort, timeout: 8)
        idle.send("GET /kiali/x HTTP/1.1\r\nHost: dashboard.example.com\r\n\r\n")
        XCTAssertTrue(idle.read(until: "body-sha256").contains("upstream: kiali"))
        let idleStart = Date()
        XCTAssertTrue(idle.peerClosed(), "the idle connection is closed by ingressd")
        let waited = Date().timeIntervalSince(idleStart)
        XCTAssertGreaterThan(waited, 1.5)
        XCTAssertLessThan(waited, 5)
    }

    /// A head split over many reads grows the connection's buffer (4 KiB, then the large class)
    /// and is forwarded whole; a head over the 60 KiB limit is refused with 431.
    func testLargeSplitHeadsAndTheHeadLimit() throws {
        let shop = try Workshop.start(harness)
        let big = try RawConnection(port: shop.listenPort)
        let filler = (0..<40).map { "x-filler-\($0): " + String(repeating: "v", count: 500) + "\r\n" }.joined()
        let head = "GET /kiali/big HTTP/1.1\r\nHost: dashboard.example.com\r\n" + filler + "\r\n"
        let bytes = Array(head.utf8)
        var off = 0
        while off < bytes.count {   // ~20 KiB in 3 KiB pieces
            big.send(Array(bytes[off..<min(off + 3000, bytes.count)]))
            off += 3000
            usleep(5_000)
        }
        let reply = big.read(until: "body-sha256")
        XCTAssertTrue(reply.hasPrefix("HTTP/1.1 200"), String(reply.prefix(200)))
        XCTAssertTrue(reply.contains("X-Filler-39: vvvv") || reply.contains("x-filler-39: vvvv"), "every field arrived")

        let huge = try RawConnection(port: shop.listenPort)
        let tooMany = (0..<130).map { "x-f\($0): " + String(repeating: "v", count: 500) + "\r\n" }.joined()
        huge.send("GET /kiali/huge HTTP/1.1\r\nHost: dashboard.example.com\r\n" + tooMany + "\r\n")
        let refused = String(decoding: huge.read(atLeast: Int.max), as: UTF8.self)
        XCTAssertTrue(refused.hasPrefix("HTTP/1.1 431"), String(refused.prefix(200)))
        XCTAssertFalse(shop.kiali.requests.contains { $0.contains("/kiali/huge") })
    }
}

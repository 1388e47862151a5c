// Route header operations applied by the forwarded-head serializers (HTTPCore HeaderEdit).

import HTTP1
import XCTest

final class HeaderEditTests: XCTestCase {
    /// Keeps the bytes of the edits alive for the duration of `body`.
    private func withEdits<R>(_ list: [(HeaderEdit.Kind, String, String)],
                              _ body: (UnsafeBufferPointer<HeaderEdit>) -> R) -> R {
        var storage: [UnsafeMutableRawBufferPointer] = []
        defer { storage.forEach { $0.deallocate() } }
        func bytes(_ s: String) -> UnsafeRawBufferPointer {
            let b = UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, s.utf8.count), alignment: 1)
            _ = b.initializeMemory(as: UInt8.self, from: Array(s.utf8))
            storage.append(b)
            return UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(b)[0..<s.utf8.count])
        }
        let edits = list.map { HeaderEdit(kind: $0.0, name: bytes($0.1), value: bytes($0.2)) }
        return edits.withUnsafeBufferPointer(body)
    }

    private func forward(_ text: String, _ list: [(HeaderEdit.Kind, String, String)], target: String? = nil) -> String? {
        let r = parseRequest(text)
        XCTAssertEqual(r.status, .complete, text)
        let t = target.map { Array($0.utf8) }
        return withEdits(list) { edits in
            written(capacity: 4096) { out in
                r.bytes.withUnsafeBytes { src in
                    r.fields.withUnsafeBufferPointer { fields in
                        withOptionalBytes(t) { tp in
                            "1.2.3.4".utf8.withContiguousStorageIfAvailable { c in
                                serializeForwardedRequestHead(
                                    source: src, head: r.head, headers: fields,
                                    clientAddress: UnsafeRawBufferPointer(c), proto: .http,
                                    generatedRequestId: UnsafeRawBufferPointer(start: nil, count: 0),
                                    target: tp, edits: edits, into: out)
                            } ?? nil
                        }
                    }
                }
            }
        }
    }

    func testSetReplacesAddAppendsRemoveDrops() {
        let text = "GET /a HTTP/1.1\r\nHost: shop\r\nX-Env: dev\r\nCookie: c=1\r\nX-ENV: dev2\r\nAccept: */*\r\nx-request-id: r\r\n\r\n"
        let out = forward(text, [(.remove, "cookie", ""), (.set, "x-env", "prod"), (.add, "x-added", "1"),
                                 (.add, "accept", "text/html")])
        XCTAssertEqual(out,
            "GET /a HTTP/1.1\r\nHost: shop\r\nAccept: */*\r\n"
            + "x-env: prod\r\nx-added: 1\r\naccept: text/html\r\n"
            + "x-forwarded-for: 1.2.3.4\r\nx-forwarded-proto: http\r\nx-request-id: r\r\n\r\n")
    }

    func testALaterSetOrRemoveOverridesAnEarlierAdd() {
        // Route-level ops come first, the destination's after them (istio-semantics.md §1.4).
        let text = "GET / HTTP/1.1\r\nHost: shop\r\nx-request-id: r\r\n\r\n"
        let out = forward(text, [(.add, "x-a", "route"), (.add, "x-b", "route"), (.set, "x-a", "destination"),
                                 (.remove, "x-b", "")])
        XCTAssertEqual(out,
            "GET / HTTP/1.1\r\nHost: shop\r\nx-a: destination\r\n"
            + "x-forwarded-for: 1.2.3.4\r\nx-forwarded-proto: http\r\nx-request-id: r\r\n\r\n")
    }

    func testSetHostIsTheAuthority() {
        let text = "GET /old/x?q=1 HTTP/1.1\r\nHost: shop\r\nx-request-id: r\r\n\r\n"
        let out = forward(text, [(.set, "host", "internal.svc")], target: "/new/x?q=1")
        XCTAssertEqual(out,
            "GET /new/x?q=1 HTTP/1.1\r\nhost: internal.svc\r\n"
            + "x-forwarded-for: 1.2.3.4\r\nx-forwarded-proto: http\r\nx-request-id: r\r\n\r\n")
    }

    func testResponseEdits() {
        let text = "HTTP/1.1 200 OK\r\nServer: app\r\nContent-Length: 0\r\nX-Internal: 1\r\n\r\n"
        var head = ResponseHead()
        var fields = [HeaderField](repeating: HeaderField(name: .empty, value: .empty), count: 100)
        let bytes = Array(text.utf8)
        let status = bytes.withUnsafeBytes { src in
            fields.withUnsafeMutableBufferPointer { parseResponseHead(src, limits: .default, headers: $0, into: &head) }
        }
        XCTAssertEqual(status, .complete)
        let out: String? = withEdits([(.remove, "x-internal", ""), (.set, "server", "ingressd"), (.add, "x-served-by", "gw")]) { edits in
            written(capacity: 4096) { out in
                bytes.withUnsafeBytes { src in
                    fields.withUnsafeBufferPointer { f in
                        serializeForwardedResponseHead(source: src, head: head, headers: f, connection: .none,
                                                       edits: edits, into: out)
                    }
                }
            }
        }
        XCTAssertEqual(out, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nserver: ingressd\r\nx-served-by: gw\r\n\r\n")
    }
}

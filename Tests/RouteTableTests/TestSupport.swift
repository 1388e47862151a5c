import HTTP1
import RouteTable
import XCTest

/// An image copied into its own allocation (as a shared-memory slot would hold it), its reader
/// and a matcher. The class keeps the memory alive for as long as the matcher.
final class Fixture {
    let image: [UInt8]
    let memory: UnsafeMutableRawPointer
    let reader: TableReader
    let matcher: RouteMatcher

    init(_ spec: TableSpec) throws {
        let image = try TableImage.build(spec)
        let memory = UnsafeMutableRawPointer.allocate(byteCount: max(image.count, 1), alignment: 16)
        image.withUnsafeBytes { memory.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        self.image = image
        self.memory = memory
        reader = try TableReader(validating: memory, count: image.count)
        matcher = try RouteMatcher(reader)
    }

    // The image's memory is never freed: tests take readers from temporary fixtures
    // (`try Fixture(spec).reader`), and a reader only points into this memory, so freeing it
    // with the fixture let later reads see whatever reused it (a stale identity, seen once the
    // cluster records grew). A few KiB per test, for the test process's life.

    /// Routes a request described in text; `target` may carry a query ("/p?a=1").
    func lookup(_ method: String = "GET", _ target: String = "/", host: String = "example.com",
                https: Bool = false, port: UInt16 = 80, headers: [(String, String)] = []) -> RouteLookup {
        withRequest(method: method, target: target, host: host, https: https, port: port, headers: headers) {
            matcher.route($0)
        }
    }

    /// The matched route's name, or the name of the lookup outcome.
    func name(_ method: String = "GET", _ target: String = "/", host: String = "example.com",
              https: Bool = false, port: UInt16 = 80, headers: [(String, String)] = []) -> String {
        describe(lookup(method, target, host: host, https: https, port: port, headers: headers))
    }

    func describe(_ r: RouteLookup) -> String {
        switch r {
        case .noListener: return "noListener"
        case .noVirtualHost: return "noVirtualHost"
        case .noRoute: return "noRoute"
        case .httpsRedirect(let v): return "httpsRedirect:" + string(reader.virtualHostName(v))
        case .matched(let r, _): return string(reader.routeName(r))
        }
    }

    /// Name of the virtual host a Host value selects on a listener, or "-".
    func host(_ authority: String, listener: Int32 = 0) -> String {
        var bytes = Array(authority.utf8)
        let v = bytes.withUnsafeMutableBytes { reader.virtualHost(listener: listener, authority: UnsafeRawBufferPointer($0)) }
        return v < 0 ? "-" : string(reader.virtualHostName(v))
    }
}

func string(_ b: UnsafeRawBufferPointer) -> String { String(decoding: b, as: UTF8.self) }
func string(_ b: UnsafeRawBufferPointer?) -> String? { b.map { String(decoding: $0, as: UTF8.self) } }

/// Lays a request out in one buffer, as the HTTP/1 parser would leave it, and calls `body`
/// with the `MatchRequest` over it.
func withRequest<T>(method: String, target: String, host: String, https: Bool, port: UInt16,
                    headers: [(String, String)], _ body: (MatchRequest) -> T) -> T {
    var buffer: [UInt8] = []
    func put(_ s: String) -> ByteRange {
        let start = buffer.count
        buffer.append(contentsOf: Array(s.utf8))
        return ByteRange(start: start, count: buffer.count - start)
    }
    let m = put(method)
    let path: ByteRange, query: ByteRange
    if let q = target.firstIndex(of: "?") {
        path = put(String(target[..<q]))
        _ = put("?")
        query = put(String(target[target.index(after: q)...]))
    } else {
        path = put(target)
        query = ByteRange(start: buffer.count, count: 0)
    }
    let a = put(host)
    var fields = [HeaderField(name: put("Host"), value: a)]
    for (n, v) in headers { fields.append(HeaderField(name: put(n), value: put(v))) }
    return buffer.withUnsafeBytes { bytes in
        fields.withUnsafeBufferPointer { fs in
            body(MatchRequest(bytes: bytes, method: m, path: path, query: query, authority: a,
                              isHTTPS: https, listenerPort: port, headers: fs))
        }
    }
}

/// A forwarding route to no cluster (-1); enough for matching tests.
func route(_ name: String, _ matches: [MatchSpec] = [], cluster: Int32 = -1) -> RouteSpec {
    RouteSpec(name: name, matches: matches, action: .forward([WeightedClusterSpec(cluster: cluster, weight: 1)]))
}

/// One listener on port 80 with one virtual host "vh" for `domains`.
func oneHost(_ routes: [RouteSpec], domains: [String] = ["*"], httpsRedirect: Bool = false) -> TableSpec {
    TableSpec(listeners: [ListenerSpec(port: 80, virtualHosts: [
        VirtualHostSpec(name: "vh", domains: domains, routes: routes, httpsRedirect: httpsRedirect),
    ])])
}

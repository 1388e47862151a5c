// microbench: runs the HTTP/1 request parser or the route matcher N times on a fixed request, so
// perf/profile can count instructions per operation under callgrind (runs with N = 1 and
// N = 1001; the difference divided by 1000 is the cost of one operation, setup subtracted).
// Not installed, not a test; imports the data-plane modules it measures and nothing else.
//
//   microbench parse small|typical N        N parses of a wrk-like (2 fields) or browser-like
//                                           (9 fields) request head
//   microbench lookup H N [exact|wildcard]  N lookups against a table of H virtual hosts: the
//                                           Host is the last host's exact domain, or a name
//                                           under its suffix wildcard
//   microbench balance KIND E N            N endpoint choices (Proxy's balancers) in a cluster of
//                                           E endpoints; KIND round_robin, least_request, random,
//                                           ring_hash, maglev (hash keys vary over 1024 values)
//   microbench noop N                       the loop alone (its cost is subtracted by nobody;
//                                           perf/profile shows it so the reader can)
//   microbench check                        correctness of the above at 10/1000/10000 hosts
//
// Every loop passes the input through `opaque` and folds each result into a checksum that is
// printed, so the optimizer can neither hoist the work out of the loop nor drop it.

import HTTP1
import Proxy
import RouteTable
#if canImport(Glibc)
import Glibc
#endif

@inline(never) @_optimize(none)
func opaque(_ p: UnsafeMutableRawPointer) -> UnsafeMutableRawPointer { p }

@inline(never) @_optimize(none)
func sink(_ x: Int) { if x == -123_456_789 { print("unreachable") } }

func fail(_ message: String) -> Never {
    print("microbench: " + message)
    exit(2)
}

let smallRequest = "GET / HTTP/1.1\r\nHost: svc1.example.com\r\nUser-Agent: wrk\r\n\r\n"

func typicalRequest(host: String) -> String {
    "GET /api/v1/items?id=42&sort=asc HTTP/1.1\r\n" +
        "Host: \(host)\r\n" +
        "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n" +
        "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n" +
        "Accept-Language: en-US,en;q=0.5\r\n" +
        "Accept-Encoding: gzip, deflate, br\r\n" +
        "Cookie: session=3f2a9c1e7b; theme=dark\r\n" +
        "X-Forwarded-For: 203.0.113.7\r\n" +
        "Connection: keep-alive\r\n" +
        "Cache-Control: no-cache\r\n" +
        "\r\n"
}

/// A request head in its own buffer (as a receive buffer would hold it).
struct Input {
    let bytes: UnsafeMutableRawBufferPointer
    init(_ text: String) {
        let utf8 = Array(text.utf8)
        bytes = .allocate(byteCount: utf8.count, alignment: 16)
        bytes.copyBytes(from: utf8)
    }
}

nonisolated(unsafe) let headerCapacity = 101  // ProxyEngine.maxHeaders
nonisolated(unsafe) let headers = UnsafeMutableBufferPointer<HeaderField>.allocate(capacity: headerCapacity)
headers.initialize(repeating: HeaderField(name: .empty, value: .empty))

@inline(__always)
func parse(_ input: Input, _ head: inout RequestHead) -> ParseStatus {
    let p = opaque(input.bytes.baseAddress!)
    return parseRequestHead(UnsafeRawBufferPointer(start: p, count: input.bytes.count), limits: .default,
                            headers: headers, into: &head)
}

/// H virtual hosts on port 80, each with an exact domain `svcI.example.com` and a suffix wildcard
/// `*.wI.example.com`, two routes (prefix `/api` and a catch-all) to one cluster.
func buildTable(hosts: Int) -> (memory: UnsafeMutableRawPointer, count: Int) {
    var vhosts: [VirtualHostSpec] = []
    vhosts.reserveCapacity(hosts)
    for i in 0..<hosts {
        vhosts.append(VirtualHostSpec(
            name: "h\(i)", domains: ["svc\(i).example.com", "*.w\(i).example.com"],
            routes: [
                RouteSpec(name: "api\(i)", matches: [MatchSpec(uri: .prefix("/api"))],
                          action: .forward([WeightedClusterSpec(cluster: 0, weight: 1)])),
                RouteSpec(name: "all\(i)", matches: [], action: .forward([WeightedClusterSpec(cluster: 0, weight: 1)])),
            ]))
    }
    let spec = TableSpec(
        listeners: [ListenerSpec(port: 80, virtualHosts: vhosts)],
        clusters: [ClusterSpec(name: "outbound|80||upstream", endpoints: [EndpointSpec(address: [127, 0, 0, 1], port: 8080)])])
    let image: [UInt8]
    do { image = try TableImage.build(spec) } catch { fail("table does not build: \(error)") }
    let memory = UnsafeMutableRawPointer.allocate(byteCount: max(image.count, 1), alignment: 16)
    image.withUnsafeBytes { memory.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
    return (memory, image.count)
}

func hostName(hosts: Int, wildcard: Bool) -> String {
    wildcard ? "a.b.w\(hosts - 1).example.com" : "svc\(hosts - 1).example.com"
}

/// Parses `input` once (setup) and returns its match request's ranges.
func matchRanges(_ input: Input) -> RequestHead {
    var head = RequestHead()
    guard parse(input, &head) == .complete else { fail("request does not parse") }
    return head
}

func lookupResult(_ matcher: borrowing RouteMatcher, _ input: Input, _ head: RequestHead) -> RouteLookup {
    let p = opaque(input.bytes.baseAddress!)
    let req = MatchRequest(bytes: UnsafeRawBufferPointer(start: p, count: input.bytes.count),
                           method: head.methodRange, path: head.path, query: head.query,
                           authority: head.host, isHTTPS: false, listenerPort: 80,
                           headers: UnsafeBufferPointer(start: headers.baseAddress, count: Int(head.headerCount)))
    return matcher.route(req)
}

func code(_ r: RouteLookup) -> Int {
    switch r {
    case .noListener: return -1
    case .noVirtualHost: return -2
    case .noRoute: return -3
    case .httpsRedirect(let v): return -4 - Int(v)
    case .matched(let route, let vhost): return Int(route) &* 65_536 &+ Int(vhost)
    }
}

func runLookup(hosts: Int, n: Int, wildcard: Bool) -> Int {
    let table = buildTable(hosts: hosts)
    let reader: TableReader
    do { reader = try TableReader(validating: table.memory, count: table.count) } catch { fail("image: \(error)") }
    let matcher: RouteMatcher
    do { matcher = try RouteMatcher(reader) } catch { fail("matcher: \(error)") }
    let input = Input(typicalRequest(host: hostName(hosts: hosts, wildcard: wildcard)))
    let head = matchRanges(input)
    var sum = 0
    for _ in 0..<n { sum &+= code(lookupResult(matcher, input, head)) }
    return sum
}

func check() {
    var failures = 0
    for hosts in [10, 1_000, 10_000] {
        let table = buildTable(hosts: hosts)
        let reader: TableReader
        do { reader = try TableReader(validating: table.memory, count: table.count) } catch { fail("image: \(error)") }
        let matcher: RouteMatcher
        do { matcher = try RouteMatcher(reader) } catch { fail("matcher: \(error)") }
        for wildcard in [false, true] {
            let input = Input(typicalRequest(host: hostName(hosts: hosts, wildcard: wildcard)))
            let result = lookupResult(matcher, input, matchRanges(input))
            var name = "-"
            if case .matched(let r, _) = result { name = String(decoding: reader.routeName(r), as: UTF8.self) }
            let want = "api\(hosts - 1)"
            print("check: \(hosts) hosts, \(wildcard ? "wildcard" : "exact") host -> route \(name)" + (name == want ? "" : " (want \(want))"))
            if name != want { failures += 1 }
        }
    }
    for (label, text) in [("small", smallRequest), ("typical", typicalRequest(host: "svc1.example.com"))] {
        var head = RequestHead()
        let status = parse(Input(text), &head)
        let ok = status == .complete && Int(head.headLength) == text.utf8.count
        print("check: parse \(label) (\(text.utf8.count) bytes, \(head.headerCount) fields) -> \(status)")
        if !ok { failures += 1 }
    }
    if failures > 0 { fail("\(failures) check(s) failed") }
    print("check: ok")
}

func usage() -> Never {
    fail("usage: microbench parse small|typical N | lookup HOSTS N [exact|wildcard] | balance KIND E N | noop N | check")
}

let args = CommandLine.arguments
guard args.count >= 2 else { usage() }
switch args[1] {
case "parse":
    guard args.count == 4, let n = Int(args[3]), n >= 0 else { usage() }
    let input: Input
    switch args[2] {
    case "small": input = Input(smallRequest)
    case "typical": input = Input(typicalRequest(host: "svc1.example.com"))
    default: usage()
    }
    var sum = 0
    var head = RequestHead()
    for _ in 0..<n {
        if parse(input, &head) == .complete { sum &+= Int(head.headLength) &+ Int(head.headerCount) }
    }
    sink(sum)
    print("parse \(args[2]) x\(n): checksum \(sum)")
case "lookup":
    guard args.count >= 4, let hosts = Int(args[2]), hosts > 0, let n = Int(args[3]), n >= 0 else { usage() }
    let wildcard = args.count > 4 && args[4] == "wildcard"
    let sum = runLookup(hosts: hosts, n: n, wildcard: wildcard)
    sink(sum)
    print("lookup \(hosts) hosts \(wildcard ? "wildcard" : "exact") x\(n): checksum \(sum)")
case "balance":
    guard args.count == 5, let e = Int(args[3]), e > 0, e < 1000, let n = Int(args[4]), n >= 0 else { usage() }
    let kinds: [String: LoadBalancerKind] = ["round_robin": .roundRobin, "least_request": .leastRequest, "random": .random,
                                             "ring_hash": .ringHash, "maglev": .maglev]
    guard let kind = kinds[args[2]] else { usage() }
    let hashed = kind == .ringHash || kind == .maglev
    let endpoints = (0..<e).map { EndpointSpec(address: [10, 0, UInt8($0 >> 8), UInt8($0 & 255)], port: 80, id: UInt32($0)) }
    let spec = TableSpec(clusters: [ClusterSpec(name: "c", endpoints: endpoints, loadBalancer: LoadBalancerSpec(
        kind: kind, hashKey: hashed ? .header("x-user") : nil,
        tableSize: kind == .ringHash ? 1024 : kind == .maglev ? 65537 : 0))])
    guard let image = try? TableImage.build(spec) else { fail("balance: table build failed") }
    let sum = image.withUnsafeBytes { raw -> Int in
        guard let reader = try? TableReader(validating: raw.baseAddress!, count: raw.count) else { fail("balance: bad image") }
        return BalancerBench.run(reader, cluster: 0, n: n, hashed: hashed)
    }
    sink(sum)
    print("balance \(args[2]) \(e) endpoints x\(n): checksum \(sum)")
case "noop":
    guard args.count == 3, let n = Int(args[2]), n >= 0 else { usage() }
    let input = Input(smallRequest)
    var sum = 0
    for _ in 0..<n { sum &+= Int(bitPattern: opaque(input.bytes.baseAddress!)) & 1 }
    sink(sum)
    print("noop x\(n): checksum \(sum)")
case "regex":
    guard args.count == 5, let n = Int(args[4]), n >= 0 else { usage() }
    let sum = runRegex(engine: args[2], caseName: args[3], n: n)
    sink(sum)
    print("regex \(args[2]) \(args[3]) x\(n): checksum \(sum)")
case "check":
    check()
default:
    usage()
}

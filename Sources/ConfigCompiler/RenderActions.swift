// Text for route actions and cluster traffic policies, shared by `ingressd routes` (the whole
// table) and `ingressd routes --request` (one matched route). One line per kind of action;
// defaults are shown only where they change what happens (the retry policy, which Istio
// applies to every forwarding route).
import RouteTable

/// The action lines of a route, without indentation: rewrite, header operations (rule and
/// per destination), retries (forwarding routes), fault, mirrors, CORS.
public func renderActionLines(_ r: RouteSpec, _ table: TableSpec) -> [String] {
    var lines: [String] = []
    let a = r.actions
    if let rw = a.rewrite {
        var parts: [String] = []
        if let u = rw.uri { parts.append("uri \(quote(u)) (replaces the matched prefix)") }
        if let x = rw.uriRegex { parts.append("uri regex \(quote(x.pattern)) → \(quote(x.substitution))") }
        if let h = rw.authority { parts.append("authority \(quote(h))") }
        lines.append("rewrite: " + parts.joined(separator: ", "))
    }
    lines += describe(a.headers, prefix: "")
    if case .forward(let ws) = r.action {
        for w in ws where !w.headers.isEmpty {
            lines += describe(w.headers, prefix: "destination \(clusterName(w.cluster, table)) ")
        }
        lines.append("retries: " + describe(a.retry))
    }
    if let f = a.fault {
        var parts: [String] = []
        if let d = f.delay { parts.append("delay \(d.fixedDelayMs)ms for \(percent(d.ppm))") }
        if let ab = f.abort { parts.append("abort \(ab.httpStatus) for \(percent(ab.ppm))") }
        lines.append("fault: " + parts.joined(separator: ", "))
    }
    for m in a.mirrors {
        lines.append("mirror: \(percent(m.ppm)) to \(clusterName(m.cluster, table))")
    }
    if let c = a.cors { lines.append("cors: " + describe(c)) }
    return lines
}

func describe(_ h: HeaderOpsSpec, prefix: String) -> [String] {
    func ops(_ list: [HeaderOpSpec]) -> String {
        list.map { op in
            switch op.kind {
            case .set: return "set \(op.name) \(quote(op.value))"
            case .add: return "add \(op.name) \(quote(op.value))"
            case .remove: return "remove \(op.name)"
            }
        }.joined(separator: ", ")
    }
    var lines: [String] = []
    if !h.request.isEmpty { lines.append("\(prefix)request headers: \(ops(h.request))") }
    if !h.response.isEmpty { lines.append("\(prefix)response headers: \(ops(h.response))") }
    return lines
}

func describe(_ r: RetrySpec) -> String {
    guard r.attempts > 0 else { return "none" }
    var text = "\(r.attempts) attempts on \(r.retryOn.text.isEmpty ? "nothing" : r.retryOn.text)"
    if !r.retriableStatusCodes.isEmpty { text += " codes \(r.retriableStatusCodes.map(String.init).joined(separator: ","))" }
    if r.perTryTimeoutMs > 0 { text += " per-try-timeout \(r.perTryTimeoutMs)ms" }
    if r.backoffBaseMs != 25 { text += " backoff \(r.backoffBaseMs)ms" }
    if !r.ignorePreviousHosts { text += " may-reuse-hosts" }
    if r.retryRemoteLocalities { text += " remote-localities" }
    if r == .istioDefault { text += " (Istio default)" }
    return text
}

func describe(_ c: CorsSpec) -> String {
    var parts = ["origins " + (c.allowOrigins.isEmpty ? "none" : c.allowOrigins.map(describe).joined(separator: " | "))]
    if !c.allowMethods.isEmpty { parts.append("methods \(c.allowMethods.joined(separator: ","))") }
    if !c.allowHeaders.isEmpty { parts.append("headers \(c.allowHeaders.joined(separator: ","))") }
    if !c.exposeHeaders.isEmpty { parts.append("expose \(c.exposeHeaders.joined(separator: ","))") }
    if let m = c.maxAgeSeconds { parts.append("max-age \(m)s") }
    if c.allowCredentials { parts.append("credentials") }
    if c.unmatchedPreflights == .ignore { parts.append("unmatched-preflights ignore") }
    return parts.joined(separator: ", ")
}

/// Parts per million as a percentage: "100%", "12.5%", "0.0001%".
func percent(_ ppm: UInt32) -> String {
    let whole = ppm / 10_000, frac = ppm % 10_000
    guard frac > 0 else { return "\(whole)%" }
    var digits = String(frac)
    digits = String(repeating: "0", count: 4 - digits.count) + digits
    while digits.hasSuffix("0") { digits.removeLast() }
    return "\(whole).\(digits)%"
}

/// One line: the load balancer, the upstream protocol when it is HTTP/2 (HTTP/1.1 goes
/// unsaid), then the connection-pool settings that differ from Istio's defaults (unlimited,
/// keep-alive unlimited, idle timeout 1 h).
public func renderClusterPolicy(_ c: ClusterSpec) -> String {
    var parts = ["lb " + describe(c.loadBalancer)]
    if c.http2 { parts.append("upstream protocol HTTP/2") }
    if c.useClientProtocol { parts.append("upstream protocol the client's") }
    let p = c.connectionPool, d = ConnectionPoolSpec()
    if p.maxConnections != d.maxConnections { parts.append("max-connections \(p.maxConnections)") }
    if p.maxPendingRequests != d.maxPendingRequests { parts.append("max-pending-requests \(p.maxPendingRequests)") }
    if p.maxRequests != d.maxRequests { parts.append("max-requests \(p.maxRequests)") }
    if p.maxRequestsPerConnection != d.maxRequestsPerConnection {
        parts.append("max-requests-per-connection \(p.maxRequestsPerConnection)")
    }
    if p.maxRetries != d.maxRetries { parts.append("max-retries \(p.maxRetries)") }
    if p.idleTimeoutMs != d.idleTimeoutMs {
        parts.append(p.idleTimeoutMs == 0 ? "no idle timeout" : "idle-timeout \(p.idleTimeoutMs)ms")
    }
    if p.maxConcurrentStreams != d.maxConcurrentStreams { parts.append("max-concurrent-streams \(p.maxConcurrentStreams)") }
    if p.http2KeepaliveIntervalMs > 0 {
        parts.append("http2-keepalive \(p.http2KeepaliveIntervalMs)ms/\(p.http2KeepaliveTimeoutMs)ms")
    }
    return parts.joined(separator: ", ")
}

func describe(_ lb: LoadBalancerSpec) -> String {
    let name: String
    switch lb.kind {
    case .roundRobin: name = "round-robin"
    case .leastRequest: name = "least-request"
    case .random: name = "random"
    case .passthrough: name = "passthrough"
    case .ringHash: name = "ring-hash"
    case .maglev: name = "maglev"
    }
    guard let key = lb.hashKey else { return name }
    let on: String
    switch key {
    case .header(let h): on = "header \(h)"
    case let .cookie(n, path, ttl):
        on = "cookie \(n)" + (path.map { " path \($0)" } ?? "") + (ttl.map { $0 == 0 ? " session" : " ttl \($0)s" } ?? "")
    case .sourceIP: on = "source ip"
    case .queryParameter(let q): on = "query \(q)"
    }
    return "\(name) on \(on) (\(lb.kind == .maglev ? "table" : "ring") \(lb.tableSize))"
}

/// `routes --request`: the route's action lines, plus the path sent upstream when
/// `rewrite.uri` changes it (`path` is the request's, without the query).
public func renderRequestActionLines(_ r: RouteSpec, _ table: TableSpec, path: String) -> [String] {
    var lines = renderActionLines(r, table)
    if let uri = r.actions.rewrite?.uri {
        let bytes = Array(path.utf8)
        var n: Int
        switch r.matches.first?.uri {
        case .prefix(let p)?: n = p.utf8.count
        case .exact?, .regex?: n = bytes.count
        case .present?, nil: n = 1
        }
        n = min(n, bytes.count)
        lines.append("upstream path: \(uri + String(decoding: bytes[n...], as: UTF8.self))")
    }
    return lines
}

// MARK: - JSON (`/config_dump`)

func json(_ h: HeaderOpsSpec) -> String {
    func list(_ ops: [HeaderOpSpec]) -> String {
        "[" + ops.map { op -> String in
            let kind = op.kind == .set ? "set" : op.kind == .add ? "add" : "remove"
            return "{\"op\":\"\(kind)\",\"name\":\(jsonString(op.name))"
                + (op.kind == .remove ? "" : ",\"value\":\(jsonString(op.value))") + "}"
        }.joined(separator: ",") + "]"
    }
    return "{\"request\":\(list(h.request)),\"response\":\(list(h.response))}"
}

/// The route's actions as one JSON object; fields absent from the rule are left out, except
/// `retries`, which always applies.
func json(_ a: RouteActionsSpec, _ table: TableSpec) -> String {
    var f: [String] = []
    if let rw = a.rewrite {
        var r: [String] = []
        if let u = rw.uri { r.append("\"uri\":\(jsonString(u))") }
        if let h = rw.authority { r.append("\"authority\":\(jsonString(h))") }
        if let x = rw.uriRegex {
            r.append("\"uriRegexRewrite\":{\"match\":\(jsonString(x.pattern)),\"rewrite\":\(jsonString(x.substitution))}")
        }
        f.append("\"rewrite\":{" + r.joined(separator: ",") + "}")
    }
    if !a.headers.isEmpty { f.append("\"headers\":\(json(a.headers))") }
    let r = a.retry
    f.append("\"retries\":{\"attempts\":\(r.attempts),\"perTryTimeoutMs\":\(r.perTryTimeoutMs),\"retryOn\":\(jsonString(r.retryOn.text)),"
             + "\"retriableStatusCodes\":[\(r.retriableStatusCodes.map(String.init).joined(separator: ","))],"
             + "\"backoffBaseMs\":\(r.backoffBaseMs),\"retryIgnorePreviousHosts\":\(r.ignorePreviousHosts),"
             + "\"retryRemoteLocalities\":\(r.retryRemoteLocalities)}")
    if let fault = a.fault {
        var x: [String] = []
        if let d = fault.delay { x.append("\"delay\":{\"fixedDelayMs\":\(d.fixedDelayMs),\"ppm\":\(d.ppm)}") }
        if let ab = fault.abort { x.append("\"abort\":{\"httpStatus\":\(ab.httpStatus),\"ppm\":\(ab.ppm)}") }
        f.append("\"fault\":{" + x.joined(separator: ",") + "}")
    }
    if !a.mirrors.isEmpty {
        f.append("\"mirrors\":[" + a.mirrors.map { m in
            let name = m.cluster >= 0 && Int(m.cluster) < table.clusters.count ? jsonString(table.clusters[Int(m.cluster)].name) : "null"
            return "{\"cluster\":\(name),\"clusterIndex\":\(m.cluster),\"ppm\":\(m.ppm)}"
        }.joined(separator: ",") + "]")
    }
    if let c = a.cors {
        func strings(_ l: [String]) -> String { "[" + l.map(jsonString).joined(separator: ",") + "]" }
        f.append("\"corsPolicy\":{\"allowOrigins\":[" + c.allowOrigins.map(json).joined(separator: ",") + "],"
                 + "\"allowMethods\":\(strings(c.allowMethods)),\"allowHeaders\":\(strings(c.allowHeaders)),"
                 + "\"exposeHeaders\":\(strings(c.exposeHeaders)),"
                 + (c.maxAgeSeconds.map { "\"maxAgeSeconds\":\($0)," } ?? "")
                 + "\"allowCredentials\":\(c.allowCredentials),"
                 + "\"unmatchedPreflights\":\"\(c.unmatchedPreflights == .ignore ? "IGNORE" : "FORWARD")\"}")
    }
    return "{" + f.joined(separator: ",") + "}"
}

/// `loadBalancer`, upstream `protocol` ("HTTP2" or "HTTP1") and `connectionPool` of a cluster,
/// as JSON fields (no braces).
func jsonTrafficPolicy(_ c: ClusterSpec) -> String {
    let p = c.connectionPool
    return "\"loadBalancer\":\(jsonString(describe(c.loadBalancer))),\"protocol\":\"\(c.useClientProtocol ? "CLIENT" : c.http2 ? "HTTP2" : "HTTP1")\","
        + "\"connectionPool\":{\"maxConnections\":\(p.maxConnections),"
        + "\"maxPendingRequests\":\(p.maxPendingRequests),\"maxRequests\":\(p.maxRequests),"
        + "\"maxRequestsPerConnection\":\(p.maxRequestsPerConnection),\"maxRetries\":\(p.maxRetries),"
        + "\"idleTimeoutMs\":\(p.idleTimeoutMs),\"maxConcurrentStreams\":\(p.maxConcurrentStreams),"
        + "\"http2KeepaliveIntervalMs\":\(p.http2KeepaliveIntervalMs),\"http2KeepaliveTimeoutMs\":\(p.http2KeepaliveTimeoutMs)}"
}

// Text renderings of a compiled table for the CLI: `ingressd routes`, the admin
// `/config_dump` JSON, and the one-line `ingressd check` summary. Stable output: the same
// table always renders to the same bytes.
import IstioConfig
import RouteTable

/// Listeners, virtual hosts with domains, routes in match order with matches and actions
/// (RenderActions.swift), then clusters with their traffic policy and endpoints.
public func renderRoutes(_ table: TableSpec) -> String {
    var out = ""
    if table.listeners.isEmpty { out += "no listeners (no Gateway servers)\n" }
    for l in table.listeners {
        out += "listener \(l.port) \(protocolName(l.proto))\n"
        if l.proto == .https || l.proto == .tls {
            out += renderTLSListener(l, table)
            // Terminated connections: HTTPS serves the virtual hosts below, TLS its tcp routes.
            guard l.tlsServers.contains(where: { $0.mode != .passthrough }) else { continue }
            if l.proto == .tls {
                out += "  tcp routes (terminated)\n"
                if l.tcpRoutes.isEmpty { out += "    no tcp routes: terminated connections are closed\n" }
                for (n, r) in l.tcpRoutes.enumerated() {
                    out += "    \(n + 1). \(r.name)\n"
                    out += "       action: \(describe(.forward(r.destinations), table))\n"
                }
                continue
            }
        }
        if l.proto == .tcp {
            if l.tcpRoutes.isEmpty { out += "  no tcp routes: connections are closed\n" }
            for (n, r) in l.tcpRoutes.enumerated() {
                out += "    \(n + 1). \(r.name)\n"
                out += "       action: \(describe(.forward(r.destinations), table)) (spliced)\n"
            }
            continue
        }
        if l.virtualHosts.isEmpty { out += "  no virtual hosts: every request gets 404\n" }
        for vh in l.virtualHosts {
            out += "  virtual host \(vh.name) domains [\(vh.domains.joined(separator: ", "))]"
            out += vh.httpsRedirect ? " https-redirect\n" : "\n"
            if vh.routes.isEmpty && !vh.httpsRedirect { out += "    no routes: every request gets 404\n" }
            for (n, r) in vh.routes.enumerated() {
                out += "    \(n + 1). \(r.name)\n"
                out += "       match: \(r.matches.isEmpty ? "any" : r.matches.map(describe).joined(separator: " OR "))\n"
                out += "       action: \(describe(r.action, table))"
                out += r.timeoutMs > 0 ? " timeout \(r.timeoutMs)ms\n" : "\n"
                for line in renderActionLines(r, table) { out += "       \(line)\n" }
            }
        }
    }
    if !table.clusters.isEmpty { out += "clusters\n" }
    for c in table.clusters {
        out += "  \(c.name) connect-timeout \(c.connectTimeoutMs)ms \(renderClusterPolicy(c))\n"
        for line in renderClusterTLSLines(c) { out += "    \(line)\n" }
        if c.endpoints.isEmpty { out += "    no endpoints: requests get 503 no healthy upstream\n" }
        for e in c.endpoints {
            out += "    endpoint \(e.id) \(formatAddress(e.address, port: e.port)) weight \(e.weight)\n"
        }
    }
    return out
}

func protocolName(_ p: ListenerProtocol) -> String {
    switch p {
    case .http: return "HTTP"
    case .https: return "HTTPS"
    case .tls: return "TLS"
    case .tcp: return "TCP"
    }
}

func describe(_ s: StringMatchSpec) -> String {
    switch s {
    case .exact(let v): return "exact \(quote(v))"
    case .prefix(let v): return "prefix \(quote(v))"
    case .regex(let v): return "regex \(quote(v))"
    case .present: return "present"
    }
}

func describe(_ m: MatchSpec) -> String {
    var parts: [String] = []
    if let u = m.uri { parts.append("uri \(describe(u))" + (m.ignoreUriCase ? " ignore-case" : "")) }
    if let s = m.scheme { parts.append("scheme \(describe(s))") }
    if let s = m.method { parts.append("method \(describe(s))") }
    if let s = m.authority { parts.append("authority \(describe(s))") }
    parts += m.headers.map { "header \($0.name) \(describe($0.match))" }
    parts += m.withoutHeaders.map { "without header \($0.name) \(describe($0.match))" }
    parts += m.queryParams.map { "query \($0.name) \(describe($0.match))" }
    if let p = m.port { parts.append("port \(p)") }
    return parts.isEmpty ? "any" : parts.joined(separator: " AND ")
}

func clusterName(_ index: Int32, _ table: TableSpec) -> String {
    index >= 0 && Int(index) < table.clusters.count ? table.clusters[Int(index)].name
        : "<no cluster: 503 (destination or subset not defined)>"
}

func describe(_ a: RouteAction, _ table: TableSpec) -> String {
    switch a {
    case .forward(let ws):
        if ws.count == 1 { return "forward \(clusterName(ws[0].cluster, table))" }
        let total = ws.reduce(0) { $0 + UInt64($1.weight) }
        return "forward " + ws.map { w in
            let pct = total == 0 ? 0 : Double(w.weight) * 100 / Double(total)
            let text = pct == pct.rounded() ? String(Int(pct)) : String(format1(pct))
            return "\(text)% \(clusterName(w.cluster, table))"
        }.joined(separator: ", ")
    case .directResponse(let status, let body):
        return "direct response \(status)" + (body.isEmpty ? "" : " body \(body.count) bytes")
    case .redirect(let r):
        var parts = ["redirect \(r.status)"]
        if let s = r.scheme { parts.append("scheme \(s)") }
        if let a = r.authority { parts.append("authority \(a)") }
        if let p = r.port { parts.append("port \(p)") }
        if let u = r.uri { parts.append("uri \(u)") }
        if let p = r.prefixRewrite { parts.append("prefix-rewrite \(p)") }
        return parts.joined(separator: " ")
    }
}

func format1(_ v: Double) -> String {
    let tenths = Int((v * 10).rounded())
    return "\(tenths / 10).\(tenths % 10)"
}

func quote(_ s: String) -> String { jsonString(s) }

/// `1.2.3.4:80` or `[::1]:80`.
public func formatAddress(_ a: [UInt8], port: UInt16) -> String {
    if a.count == 4 { return "\(a[0]).\(a[1]).\(a[2]).\(a[3]):\(port)" }
    guard a.count == 16 else { return "?:\(port)" }
    var groups: [UInt16] = []
    for i in stride(from: 0, to: 16, by: 2) { groups.append(UInt16(a[i]) << 8 | UInt16(a[i + 1])) }
    // Longest run of zero groups (≥ 2) becomes "::" (RFC 5952).
    var best = (start: -1, len: 0)
    var i = 0
    while i < 8 {
        if groups[i] == 0 {
            var j = i
            while j < 8 && groups[j] == 0 { j += 1 }
            if j - i > best.len && j - i >= 2 { best = (i, j - i) }
            i = j
        } else { i += 1 }
    }
    func hex(_ r: ArraySlice<UInt16>) -> String { r.map { String($0, radix: 16) }.joined(separator: ":") }
    let text = best.start < 0 ? hex(groups[...])
        : hex(groups[..<best.start]) + "::" + hex(groups[(best.start + best.len)...])
    return "[\(text)]:\(port)"
}

// MARK: - JSON

func jsonString(_ s: String) -> String { JSONText.string(s) }

func json(_ s: StringMatchSpec) -> String {
    switch s {
    case .exact(let v): return "{\"exact\":\(jsonString(v))}"
    case .prefix(let v): return "{\"prefix\":\(jsonString(v))}"
    case .regex(let v): return "{\"regex\":\(jsonString(v))}"
    case .present: return "{\"present\":true}"
    }
}

func json(_ m: MatchSpec) -> String {
    var f: [String] = []
    if let u = m.uri { f.append("\"uri\":\(json(u))") }
    if let s = m.scheme { f.append("\"scheme\":\(json(s))") }
    if let s = m.method { f.append("\"method\":\(json(s))") }
    if let s = m.authority { f.append("\"authority\":\(json(s))") }
    func list(_ l: [HeaderMatchSpec]) -> String {
        "[" + l.map { "{\"name\":\(jsonString($0.name)),\"match\":\(json($0.match))}" }.joined(separator: ",") + "]"
    }
    if !m.headers.isEmpty { f.append("\"headers\":\(list(m.headers))") }
    if !m.withoutHeaders.isEmpty { f.append("\"withoutHeaders\":\(list(m.withoutHeaders))") }
    if !m.queryParams.isEmpty { f.append("\"queryParams\":\(list(m.queryParams))") }
    if m.ignoreUriCase { f.append("\"ignoreUriCase\":true") }
    if let p = m.port { f.append("\"port\":\(p)") }
    return "{" + f.joined(separator: ",") + "}"
}

func json(_ a: RouteAction, _ table: TableSpec) -> String {
    switch a {
    case .forward(let ws):
        return "{\"forward\":[" + ws.map { w in
            let name = w.cluster >= 0 && Int(w.cluster) < table.clusters.count ? jsonString(table.clusters[Int(w.cluster)].name) : "null"
            return "{\"cluster\":\(name),\"clusterIndex\":\(w.cluster),\"weight\":\(w.weight)"
                + (w.headers.isEmpty ? "" : ",\"headers\":\(json(w.headers))") + "}"
        }.joined(separator: ",") + "]}"
    case .directResponse(let status, let body):
        let text = String(decoding: body, as: UTF8.self)
        return "{\"directResponse\":{\"status\":\(status),\"bodyBytes\":\(body.count),\"body\":\(jsonString(text))}}"
    case .redirect(let r):
        var f = ["\"status\":\(r.status)"]
        if let s = r.scheme { f.append("\"scheme\":\(jsonString(s))") }
        if let s = r.authority { f.append("\"authority\":\(jsonString(s))") }
        if let p = r.port { f.append("\"port\":\(p)") }
        if let s = r.uri { f.append("\"uri\":\(jsonString(s))") }
        if let s = r.prefixRewrite { f.append("\"prefixRewrite\":\(jsonString(s))") }
        return "{\"redirect\":{" + f.joined(separator: ",") + "}}"
    }
}

/// The compiled table in effect, as JSON for the admin `/config_dump` (DESIGN.md §7).
public func renderConfigDumpJSON(_ table: TableSpec, generation: UInt64) -> String {
    let listeners = table.listeners.map { l -> String in
        let hosts = l.virtualHosts.map { vh -> String in
            let routes = vh.routes.map { r in
                "{\"name\":\(jsonString(r.name)),\"match\":[" + r.matches.map(json).joined(separator: ",")
                    + "],\"action\":\(json(r.action, table)),\"timeoutMs\":\(r.timeoutMs),\"actions\":\(json(r.actions, table))}"
            }
            return "{\"name\":\(jsonString(vh.name)),\"domains\":[" + vh.domains.map(jsonString).joined(separator: ",")
                + "],\"httpsRedirect\":\(vh.httpsRedirect),\"routes\":[" + routes.joined(separator: ",") + "]}"
        }
        let tcp = l.tcpRoutes.map { r in
            "{\"name\":\(jsonString(r.name)),\"action\":\(json(.forward(r.destinations), table))}"
        }
        return "{\"port\":\(l.port),\"protocol\":\"\(protocolName(l.proto))\",\"virtualHosts\":["
            + hosts.joined(separator: ",") + "],\"tcpRoutes\":[" + tcp.joined(separator: ",") + "]," + jsonTLS(l, table) + "}"
    }
    let clusters = table.clusters.map { c -> String in
        let eps = c.endpoints.map { e in
            "{\"id\":\(e.id),\"address\":\(jsonString(formatAddress(e.address, port: e.port))),\"port\":\(e.port),\"weight\":\(e.weight)}"
        }
        return "{\"name\":\(jsonString(c.name)),\"connectTimeoutMs\":\(c.connectTimeoutMs),\(jsonTrafficPolicy(c)),\(jsonClusterTLS(c)),\"endpoints\":["
            + eps.joined(separator: ",") + "]}"
    }
    return "{\"generation\":\(generation),\"listeners\":[" + listeners.joined(separator: ",") + "],\"clusters\":["
        + clusters.joined(separator: ",") + "]}\n"
}

/// The one line `ingressd check` prints on success, e.g.
/// `ok: 4 files, 7 resources (2 Gateway, 4 VirtualService, 1 DestinationRule) → 1 listener, 3 virtual hosts, 4 routes, 4 clusters`.
public func renderCheckSummary(_ load: LoadResult, _ table: TableSpec) -> String {
    func n(_ count: Int, _ word: String) -> String { "\(count) \(word)\(count == 1 ? "" : "s")" }
    let kinds = ResourceKind.allCases.compactMap { k -> String? in
        let c = load.count(k)
        return c == 0 ? nil : "\(c) \(k.rawValue)"
    }
    let hosts = table.listeners.reduce(0) { $0 + $1.virtualHosts.count }
    let routes = table.listeners.reduce(0) {
        $0 + $1.tcpRoutes.count + $1.tlsRoutes.count + $1.virtualHosts.reduce(0) { $0 + $1.routes.count }
    }
    var line = "ok: \(n(load.files.count, "file")), \(n(load.resources.count, "resource"))"
    if !kinds.isEmpty { line += " (\(kinds.joined(separator: ", ")))" }
    line += " → \(n(table.listeners.count, "listener")), \(n(hosts, "virtual host")), \(n(routes, "route")), \(n(table.clusters.count, "cluster"))"
    return line
}

// VirtualService http rules → RouteSpec (Istio route.go BuildHTTPRoutesForVirtualService).
// One RouteSpec per match block, like Envoy routes, so that a catch-all block can be moved
// to the end on its own.
import IstioConfig
import RouteTable

extension Compilation {
    mutating func routes(_ vs: VirtualService, _ meta: ResourceMeta, gateway: ResourceMeta, port: UInt32) -> [RouteSpec] {
        var out: [RouteSpec] = []
        func applies(_ gateways: [String]) -> Bool {
            gateways.contains { ref in
                guard let r = GatewayReference.resolve(ref, virtualServiceNamespace: meta.namespace) else { return false }
                return r.namespace == gateway.namespace && r.name == gateway.name
            }
        }
        rules: for (i, http) in vs.http.enumerated() {
            let rulePath = "spec.http[\(i)]"
            let ruleName = "\(meta.qualifiedName)/\(http.name ?? String(i))"
            // Computed on the rule's first route only, so that mirror clusters and their
            // diagnostics are made once.
            var computed: RouteActionsSpec?
            func actions(_ c: inout Compilation) -> RouteActionsSpec {
                if let a = computed { return a }
                let a = c.routeActions(http, meta, path: rulePath)
                computed = a
                return a
            }
            if http.match.isEmpty {
                guard applies(vs.gateways) else { continue }
                if let action = action(http, meta, path: rulePath) {
                    out.append(RouteSpec(name: ruleName, matches: [], action: action, timeoutMs: timeoutMs(http),
                                         actions: actions(&self)))
                }
                break rules // a catch-all: later rules can never match
            }
            for (j, m) in http.match.enumerated() {
                guard applies(m.gateways.isEmpty ? vs.gateways : m.gateways) else { continue }
                if let p = m.port, p != port { continue }
                guard let action = action(http, meta, path: rulePath) else { continue }
                let spec = matchSpec(m)
                let route = RouteSpec(name: "\(ruleName).\(m.name ?? String(j))", matches: [spec], action: action,
                                      timeoutMs: timeoutMs(http), actions: actions(&self))
                out.append(route)
                if isCatchAll(spec) { break rules }
            }
        }
        return out
    }

    func timeoutMs(_ http: HTTPRoute) -> UInt32 {
        guard let ms = http.timeout?.milliseconds, ms > 0 else { return 0 }
        return UInt32(min(ms, Int64(UInt32.max)))
    }

    func matchSpec(_ m: HTTPMatchRequest) -> MatchSpec {
        func spec(_ s: StringMatch?) -> StringMatchSpec? {
            switch s {
            case .exact(let v)?: return .exact(v)
            case .prefix(let v)?: return .prefix(v)
            case .regex(let v)?: return v == "*" ? .present : .regex(v)
            case .any?: return nil
            case nil: return nil
            }
        }
        func keyed(_ list: [KeyedStringMatch], lowercase: Bool) -> [HeaderMatchSpec] {
            list.map { k in
                let name = lowercase ? k.key.lowercased() : k.key
                guard let m = k.match, let s = spec(m) else { return HeaderMatchSpec(name: name, match: .present) }
                return HeaderMatchSpec(name: name, match: s)
            }
        }
        // Istio ignores header matches on uri, scheme, method and authority (use the fields).
        let reserved: Set<String> = ["uri", "scheme", "method", "authority"]
        return MatchSpec(uri: spec(m.uri), scheme: spec(m.scheme), method: spec(m.method), authority: spec(m.authority),
                         headers: keyed(m.headers.filter { !reserved.contains($0.key.lowercased()) }, lowercase: true),
                         withoutHeaders: keyed(m.withoutHeaders, lowercase: true),
                         queryParams: keyed(m.queryParams, lowercase: false), ignoreUriCase: m.ignoreUriCase,
                         port: m.port.map { UInt16(clamping: $0) })
    }

    mutating func action(_ http: HTTPRoute, _ meta: ResourceMeta, path: String) -> RouteAction? {
        if let r = http.redirect {
            return .redirect(RedirectSpec(status: UInt16(clamping: r.redirectCode ?? 301), scheme: r.scheme,
                                          authority: r.authority, port: r.port.map { UInt16(clamping: $0) }, uri: r.uri,
                                          prefixRewrite: r.prefixRewrite))
        }
        if let d = http.directResponse {
            var body: [UInt8] = []
            switch d.body {
            case .string(let s)?: body = Array(s.utf8)
            case .bytes(_, let decoded)?: body = decoded ?? []
            case nil: break
            }
            return .directResponse(status: UInt16(clamping: d.status), body: body)
        }
        guard !http.route.isEmpty else { return nil } // delegate (unsupported) or invalid
        var weighted: [WeightedClusterSpec] = []
        for (k, rd) in http.route.enumerated() {
            guard let dest = rd.destination else { continue }
            if http.route.count > 1 && rd.weight <= 0 { continue } // weight 0 gets nothing
            let cluster = registry.cluster(for: dest, from: meta, path: "\(path).route[\(k)].destination")
            let weight: UInt32 = http.route.count == 1 ? UInt32(max(rd.weight, 0) == 0 ? 100 : rd.weight) : UInt32(rd.weight)
            weighted.append(WeightedClusterSpec(cluster: cluster, weight: weight, headers: Compilation.headerOps(rd.headers)))
        }
        if weighted.isEmpty {
            // Every weight is 0 (an error Istio rejects): split evenly rather than drop traffic.
            for (k, rd) in http.route.enumerated() {
                guard let dest = rd.destination else { continue }
                weighted.append(WeightedClusterSpec(
                    cluster: registry.cluster(for: dest, from: meta, path: "\(path).route[\(k)].destination"), weight: 1,
                    headers: Compilation.headerOps(rd.headers)))
            }
        }
        return weighted.isEmpty ? nil : .forward(weighted)
    }
}

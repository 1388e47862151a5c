// VirtualService validation (Istio ValidateVirtualService / validateHTTPRoute, §7.2).

let retryOnPolicies: Set<String> = [
    "5xx", "gateway-error", "reset", "reset-before-request", "connect-failure", "retriable-4xx", "refused-stream",
    "retriable-status-codes", "retriable-headers", "envoy-ratelimited", "http3-post-connect-failure", "cancelled",
    "deadline-exceeded", "internal", "resource-exhausted", "unavailable",
]

/// gRPC status names by code (0…16), as `fault.abort.grpcStatus` names them.
public let grpcStatusNames: [String] = [
    "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
    "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED",
    "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
]
let grpcStatuses = Set(grpcStatusNames)

extension Checks {
    mutating func virtualService(_ vs: VirtualService) {
        resourceName(false)
        let boundToMesh = vs.gateways.isEmpty || vs.gateways.contains("mesh")
        if vs.hosts.isEmpty {
            // A delegate VirtualService.
            if !vs.gateways.isEmpty { error("spec.gateways", "delegate virtual service must have no gateways specified") }
            if !vs.tls.isEmpty { error("spec.tls", "delegate virtual service must have no tls route specified") }
            if !vs.tcp.isEmpty { error("spec.tcp", "delegate virtual service must have no tcp route specified") }
            warning("spec.hosts", "delegate VirtualServices (no hosts) are \(unsupportedMessage)")
        }
        guard hostCount(vs.hosts, path: "spec.hosts") else { return }
        for (n, h) in vs.hosts.enumerated() {
            let path = "spec.hosts[\(n)]"
            if HostName.isIPAddress(h) { continue }
            if !boundToMesh && HostName.isPartialWildcard(h) {
                error(path, "partial wildcard \"\(h)\" not allowed")
            } else if let e = HostName.validateWildcardDomain(h) {
                error(path, e)
            }
            if h == "*" && boundToMesh {
                error(path, "wildcard host * is not allowed for virtual services bound to the mesh gateway")
            }
        }
        for i in vs.hosts.indices {
            for j in vs.hosts.indices where j > i && HostName.matches(vs.hosts[i], vs.hosts[j]) {
                error("spec.hosts[\(j)]", "duplicate hosts in virtual service: \(vs.hosts[i]) & \(vs.hosts[j])")
            }
        }
        gatewayNames("spec.gateways", vs.gateways)
        if vs.http.isEmpty && vs.tcp.isEmpty && vs.tls.isEmpty {
            error("spec", "http, tcp or tls must be provided in virtual service")
        }
        for (n, route) in vs.http.enumerated() {
            httpRoute(route, path: "spec.http[\(n)]")
        }
        for (n, route) in vs.tls.enumerated() {
            let p = "spec.tls[\(n)]"
            if route.match.isEmpty { error("\(p).match", "TLS route must have at least one match condition") }
            for (m, match) in route.match.enumerated() {
                let mp = "\(p).match[\(m)]"
                if match.sniHosts.isEmpty { error("\(mp).sniHosts", "TLS match must have at least one SNI host") }
                for (k, sni) in match.sniHosts.enumerated() {
                    let sp = "\(mp).sniHosts[\(k)]"
                    if HostName.validateWildcardDomain(sni) != nil {
                        if HostName.isIPAddress(sni) {
                            warning(sp, "using an IP address (\"\(sni)\") goes against SNI spec and most clients do not support this")
                        } else {
                            error(sp, HostName.validateWildcardDomain(sni)!)
                        }
                        continue
                    }
                    if !vs.hosts.contains(where: { HostName.subsetOf(sni, $0) }) {
                        error(sp, "SNI host \"\(sni)\" is not a compatible subset of any of the virtual service hosts: [\(vs.hosts.joined(separator: ", "))]")
                    }
                }
                if let port = match.port { self.port("\(mp).port", port) }
                gatewayNames("\(mp).gateways", match.gateways)
            }
            if route.route.isEmpty { error("\(p).route", "TLS route is required") }
            routeDestinations(route.route.map { ($0.destination, $0.weight) }, path: "\(p).route")
        }
        for (n, route) in vs.tcp.enumerated() {
            let p = "spec.tcp[\(n)]"
            for (m, match) in route.match.enumerated() {
                if let port = match.port { self.port("\(p).match[\(m)].port", port) }
                gatewayNames("\(p).match[\(m)].gateways", match.gateways)
            }
            if route.route.isEmpty { error("\(p).route", "TCP route is required") }
            routeDestinations(route.route.map { ($0.destination, $0.weight) }, path: "\(p).route")
        }
        exportTo("spec.exportTo", vs.exportTo)
    }

    mutating func gatewayNames(_ path: String, _ names: [String]) {
        for (n, name) in names.enumerated() {
            let p = "\(path)[\(n)]"
            let parts = name.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            if parts.count != 2 {
                if name.contains(".") {
                    let dotted = name.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
                    let recommended = "\(dotted.count > 1 ? dotted[1] : "")/\(dotted[0])"
                    warning(p, "using legacy gatewayName format \"\(name)\"; prefer the <namespace>/<name> format: \"\(recommended)\"")
                }
                if let e = HostName.validateDomain(name) { error(p, e) }
                continue
            }
            if parts[0].isEmpty || parts[1].isEmpty {
                error(p, "config namespace and gateway name cannot be empty")
            }
            if !HostName.isDNS1123Label(parts[0]) { error(p, "invalid value for namespace: \"\(parts[0])\"") }
            if !HostName.isDNS1123Label(parts[1]) { error(p, "invalid value for gateway name: \"\(parts[1])\"") }
        }
    }

    mutating func httpRoute(_ r: HTTPRoute, path p: String) {
        // Conflicts (validateHTTPRouteConflict).
        if r.redirect != nil {
            if !r.route.isEmpty { error(p, "HTTP route cannot contain both route and redirect") }
            if r.fault != nil { error(p, "HTTP route cannot contain both fault and redirect") }
            if r.rewrite != nil { error(p, "HTTP route rule cannot contain both rewrite and redirect") }
            if r.directResponse != nil { error(p, "HTTP route rule cannot contain both direct_response and redirect") }
        }
        if r.directResponse != nil {
            if !r.route.isEmpty { error(p, "HTTP route cannot contain both route and direct_response") }
            if r.fault != nil { error(p, "HTTP route cannot contain both fault and direct_response") }
            if r.rewrite != nil { error(p, "HTTP route rule cannot contain both rewrite and direct_response") }
        }
        if r.redirect == nil && r.directResponse == nil && r.route.isEmpty && r.delegate == nil {
            error(p, "HTTP route, redirect or direct_response is required")
        }
        if r.mirror != nil && !r.mirrors.isEmpty { error(p, "HTTP route cannot contain both mirror and mirrors") }
        if let d = r.delegate {
            if !r.route.isEmpty { error("\(p).route", "root HTTP route \(d.name) must not specify route") }
            if r.redirect != nil { error("\(p).redirect", "root HTTP route \(d.name) must not specify redirect") }
            unsupported("\(p).delegate")
        }

        // Matches.
        for (m, match) in r.match.enumerated() {
            httpMatch(match, path: "\(p).match[\(m)]")
        }

        // Header operations.
        if let h = r.headers {
            headerOperations(h, path: "\(p).headers")
        }

        // Destinations.
        routeDestinations(r.route.map { ($0.destination, $0.weight) }, path: "\(p).route")
        for (n, d) in r.route.enumerated() where d.headers != nil {
            headerOperations(d.headers!, path: "\(p).route[\(n)].headers")
        }

        if let redirect = r.redirect { self.redirect(redirect, matches: r.match, path: "\(p).redirect") }
        if let dr = r.directResponse { directResponse(dr, path: "\(p).directResponse") }
        if let rw = r.rewrite {
            if rw.uri != nil && rw.uriRegexRewrite != nil {
                error("\(p).rewrite", "rewrite may only contain one of URI or UriRegexRewrite")
            }
            if rw.uri == nil && rw.uriRegexRewrite == nil && rw.authority == nil {
                error("\(p).rewrite", "rewrite must specify at least one of URI, UriRegexRewrite, or authority. Only one of URI or UriRegexRewrite may be specified")
            }
            for (field, value) in [("uri", rw.uri), ("authority", rw.authority), ("uriRegexRewrite.rewrite", rw.uriRegexRewrite?.rewrite)] {
                if let v = value, !isFieldValue(v) {
                    error("\(p).rewrite.\(field)", "\(v.debugDescription) contains CR, LF or NUL, which a request line or header cannot hold")
                }
            }
            if let u = rw.uri, isFieldValue(u), u.utf8.contains(where: { $0 <= 0x20 || $0 == 0x7F }) {
                error("\(p).rewrite.uri", "\(u.debugDescription) contains a space or control character, which a request path cannot hold")
            }
            if let rr = rw.uriRegexRewrite {
                if rr.match == nil || rr.rewrite == nil {
                    error("\(p).rewrite.uriRegexRewrite", "UriRegexRewrite requires both Rewrite and Match fields to be specified")
                } else if let e = regexError(rr.match!, where: "uriRegexRewrite.match") {
                    error("\(p).rewrite.uriRegexRewrite.match", e)
                }
            }
        }
        duration("\(p).timeout", r.timeout)
        if let retry = r.retries {
            let rp = "\(p).retries"
            if let a = retry.attempts, a < 0 { error("\(rp).attempts", "attempts cannot be negative") }
            if retry.attempts == 0 && (retry.perTryTimeout != nil || retry.retryOn != nil
                                       || retry.retryRemoteLocalities != nil) {
                warning(rp, "http retry policy configured when attempts are set to 0 (disabled)")
            }
            duration("\(rp).perTryTimeout", retry.perTryTimeout)
            duration("\(rp).backoff", retry.backoff)
            if let on = retry.retryOn {
                for policy in on.split(separator: ",").map({ $0.trimmingSpaces() }) where !policy.isEmpty {
                    if !retryOnPolicies.contains(policy) && !(Int(policy).map { $0 >= 100 && $0 <= 599 } ?? false) {
                        error("\(rp).retryOn", "\"\(policy)\" is not a valid retryOn policy")
                    }
                }
            }
        }
        if let f = r.fault {
            fault(f, path: "\(p).fault")
        }
        if let m = r.mirror {
            destination(m, path: "\(p).mirror")
        }
        if let mp = r.mirrorPercent {
            warning("\(p).mirrorPercent", "using deprecated setting \"mirrorPercent\", use \"mirrorPercentage\" instead")
            if mp > 100 { error("\(p).mirrorPercent", "mirror_percent must have a max value of 100 (it has \(mp))") }
        }
        if let mp = r.mirrorPercentage {
            percentageBounds(mp.value, path: "\(p).mirrorPercentage")
        }
        for (n, m) in r.mirrors.enumerated() {
            let mp = "\(p).mirrors[\(n)]"
            if let d = m.destination { destination(d, path: "\(mp).destination") } else {
                error(mp, "destination is required for mirrors")
            }
            if let pc = m.percentage { percentageBounds(pc.value, path: "\(mp).percentage") }
        }
        if let cors = r.corsPolicy {
            let cp = "\(p).corsPolicy"
            let methods: Set<String> = ["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"]
            for (n, m) in cors.allowMethods.enumerated() where !methods.contains(m) {
                error("\(cp).allowMethods[\(n)]", "\"\(m)\" is not a supported HTTP method")
            }
            for (n, o) in cors.allowOrigins.enumerated() {
                if case .any = o { error("\(cp).allowOrigins[\(n)]", "'' is not a valid match type for CORS allow origins") }
                if case .regex(let re) = o, let e = regexError(re, where: "allowOrigins") {
                    error("\(cp).allowOrigins[\(n)]", e)
                }
            }
            if let maxAge = cors.maxAge {
                duration("\(cp).maxAge", maxAge)
                if let ns = maxAge.nanoseconds, ns % 1_000_000_000 != 0 {
                    error("\(cp).maxAge", "max_age duration is accurate only to seconds precision")
                }
            }
            if let u = cors.unmatchedPreflights, !["UNSPECIFIED", "FORWARD", "IGNORE"].contains(u.uppercased()) {
                error("\(cp).unmatchedPreflights", "invalid unmatchedPreflights \"\(u)\" (use UNSPECIFIED, FORWARD or IGNORE)")
            }
        }
    }

    mutating func percentageBounds(_ v: Double, path: String) {
        if v > 100 { error(path, "mirror_percentage must have a max value of 100 (it has \(goFloat(v)))") }
        if v < 0 { error(path, "mirror percentage must have a min value of 0 (it has \(goFloat(v)))") }
    }

    mutating func httpMatch(_ m: HTTPMatchRequest, path p: String) {
        // uri allows an empty prefix (Envoy does); scheme, method and authority do not.
        if let uri = m.uri { stringMatch(uri, where: "uri", allowEmptyPrefix: true, path: "\(p).uri") }
        if let s = m.scheme { stringMatch(s, where: "scheme", allowEmptyPrefix: false, path: "\(p).scheme") }
        if let s = m.method { stringMatch(s, where: "method", allowEmptyPrefix: false, path: "\(p).method") }
        if let s = m.authority { stringMatch(s, where: "authority", allowEmptyPrefix: false, path: "\(p).authority") }
        for h in m.headers {
            let hp = "\(p).headers.\(h.key)"
            if h.match == nil { error(hp, "header match \(h.key) cannot be null") }
            headerName(h.key, path: hp)
            if let sm = h.match, !isPresenceRegex(sm) {
                stringMatch(sm, where: "headers", allowEmptyPrefix: false, path: hp)
            }
            if h.key != h.key.lowercased() {
                warning(hp, "header names must be lower case; \"\(h.key)\" is matched as \"\(h.key.lowercased())\"")
            }
        }
        for h in m.withoutHeaders {
            let hp = "\(p).withoutHeaders.\(h.key)"
            headerName(h.key, path: hp)
            if let sm = h.match, !isPresenceRegex(sm) {
                stringMatch(sm, where: "withoutHeaders", allowEmptyPrefix: false, path: hp)
            }
        }
        for q in m.queryParams {
            let qp = "\(p).queryParams.\(q.key)"
            if q.match == nil { error(qp, "query param match \(q.key) cannot be null") }
            if let sm = q.match, !isPresenceRegex(sm) {
                stringMatch(sm, where: "queryParams", allowEmptyPrefix: false, path: qp)
            }
        }
        if let port = m.port { self.port("\(p).port", port) }
        labels("\(p).sourceLabels", m.sourceLabels)
        if let ns = m.sourceNamespace, !HostName.isDNS1123Label(ns) {
            error("\(p).sourceNamespace", "sourceNamespace match \(ns) is invalid")
        }
        if !m.sourceLabels.isEmpty || m.sourceNamespace != nil {
            note(p, "sourceLabels and sourceNamespace select sidecars, not requests; a gateway ignores them")
        }
        gatewayNames("\(p).gateways", m.gateways)
    }

    func isPresenceRegex(_ sm: StringMatch) -> Bool {
        if case .regex("*") = sm { return true }
        return false
    }

    mutating func stringMatch(_ sm: StringMatch, where w: String, allowEmptyPrefix: Bool, path: String) {
        switch sm {
        case .prefix(let s) where s.isEmpty && !allowEmptyPrefix:
            error("\(path).prefix", "\"\(w)\": prefix string match should not be empty")
        case .regex(let re):
            if re.isEmpty {
                error("\(path).regex", "\"\(w)\": regex string match should not be empty")
            } else if let e = regexError(re, where: w) {
                error("\(path).regex", e)
            }
        default:
            break
        }
    }

    /// Istio `validateStringRegexp`: length limit, then RE2 syntax.
    func regexError(_ re: String, where w: String) -> String? {
        if re.utf8.count > 1024 { return "\"\(w)\": regex is too large, max length allowed is 1024" }
        if let e = RE2Syntax.check(re) {
            return "\"\(w)\": \(e); Istio uses RE2 style regex-based match (https://github.com/google/re2/wiki/Syntax)"
        }
        return nil
    }

    mutating func headerName(_ name: String, path: String) {
        if name.hasPrefix("@request.auth.claims") {
            warning(path, "JWT claim based routing is \(unsupportedMessage)")
            return
        }
        let body = name.hasPrefix(":") ? String(name.dropFirst()) : name
        if body.isEmpty || !body.utf8.allSatisfy(isTokenChar) {
            error(path, "header name \(name) is not a valid header name")
        }
    }

    mutating func headerOperations(_ h: Headers, path p: String) {
        func check(_ ops: Headers.Operations?, _ sub: String, request: Bool) {
            guard let ops else { return }
            for name in ops.set.keys.sorted() + ops.add.keys.sorted() {
                let np = "\(p).\(sub).\(name)"
                if name.hasPrefix(":") { error(np, "invalid header \"\(name)\": header cannot have \":\" prefix") }
                else if !name.utf8.allSatisfy(isTokenChar) || name.isEmpty { error(np, "header name \(name) is not a valid header name") }
                if !request && name.lowercased() == "host" { error(np, "invalid header \"\(name)\": cannot set Host header") }
                // ingressd's own check: these bytes would split the header (request smuggling).
                if let v = ops.set[name] ?? ops.add[name], !isFieldValue(v) {
                    error(np, "header value \(v.debugDescription) contains CR, LF or NUL, which a header value cannot hold")
                }
            }
            for name in ops.remove {
                let np = "\(p).\(sub).remove"
                if name.hasPrefix(":") { error(np, "invalid header \"\(name)\": header cannot have \":\" prefix") }
                else if !name.utf8.allSatisfy(isTokenChar) || name.isEmpty { error(np, "header name \(name) is not a valid header name") }
                if name.lowercased() == "host" { error(np, "invalid header \"\(name)\": cannot set Host header") }
            }
        }
        check(h.request, "request", request: true)
        check(h.response, "response", request: false)
    }

    mutating func destination(_ d: Destination, path p: String) {
        if d.host == "*" {
            error("\(p).host", "invalid destination host \(d.host)")
        } else if let e = HostName.validateWildcardDomain(d.host) {
            error("\(p).host", e)
        }
        if let subset = d.subset {
            if subset.isEmpty { error("\(p).subset", "subset name cannot be empty") }
            else if !HostName.isDNS1123Label(subset) { error("\(p).subset", "subset name is invalid: \(subset)") }
        }
        if let port = d.port { self.port("\(p).port.number", port.number) }
    }

    mutating func routeDestinations(_ routes: [(Destination?, Int32)], path p: String) {
        var total: Int64 = 0
        for (n, (dest, weight)) in routes.enumerated() {
            let rp = "\(p)[\(n)]"
            if let dest { destination(dest, path: "\(rp).destination") } else {
                error(rp, "destination is required")
            }
            if weight < 0 { error("\(rp).weight", "weight \(weight) < 0") }
            total += Int64(weight)
        }
        if routes.count > 1 && total == 0 {
            error(p, "total destination weight = 0")
        }
    }

    mutating func redirect(_ r: HTTPRedirect, matches: [HTTPMatchRequest], path p: String) {
        if r.uri == nil && r.authority == nil && r.port == nil && r.derivePort == nil && r.scheme == nil
            && r.prefixRewrite == nil {
            error(p, "redirect must specify URI, authority, scheme, or port")
        }
        if r.uri != nil && r.prefixRewrite != nil {
            error(p, "redirect may only specify one of uri or prefix_rewrite")
        }
        if r.prefixRewrite != nil {
            let allPrefix = matches.allSatisfy { m in
                if case .prefix? = m.uri { return true }
                return false
            }
            if !allPrefix { error("\(p).prefixRewrite", "redirect prefix_rewrite requires all URI matches to use prefix match type") }
        }
        if let code = r.redirectCode, code < 300 || code > 399 {
            error("\(p).redirectCode", "\(code) is not a valid redirect code, must be 3xx")
        }
        if let s = r.scheme, s != "http" && s != "https" {
            error("\(p).scheme", "invalid redirect scheme, must be \"http\" or \"https\"")
        }
        if let port = r.port { self.port("\(p).port", port) }
        if let d = r.derivePort {
            if !["FROM_PROTOCOL_DEFAULT", "FROM_REQUEST_PORT"].contains(d) {
                error("\(p).derivePort", "invalid derivePort \"\(d)\" (use FROM_PROTOCOL_DEFAULT or FROM_REQUEST_PORT)")
            }
            if r.port != nil { error("\(p)", "redirect may only specify one of port or derivePort") }
            if d == "FROM_PROTOCOL_DEFAULT" { warning("\(p).derivePort", "derivePort FROM_PROTOCOL_DEFAULT is \(unsupportedMessage)") }
        }
    }

    mutating func directResponse(_ d: HTTPDirectResponse, path p: String) {
        if d.status < 200 || d.status > 599 {
            error("\(p).status", "HTTP status \(d.status) is not in range 200-599")
        }
        var size = 0
        switch d.body {
        case .string(let s)?: size = s.utf8.count
        case .bytes(_, let decoded)?:
            if let decoded { size = decoded.count } else { error("\(p).body.bytes", "bytes must be valid base64") }
        case nil: break
        }
        if size > 1024 * 1024 {
            error("\(p).body", "large direct_responses may impact control plane performance, must be less than 1MB")
        } else if size > 100 * 1024 {
            warning("\(p).body", "large direct_responses may impact control plane performance")
        }
    }

    mutating func fault(_ f: HTTPFaultInjection, path p: String) {
        if f.abort == nil && f.delay == nil {
            error(p, "HTTP fault injection must have an abort and/or a delay")
        }
        func percentage(_ v: Double?, _ path: String) {
            guard let v else { return }
            if !(v == 0 || (v >= 0.0001 && v <= 100)) {
                error(path, "percentage \(goFloat(v)) is neither 0.0, nor in range [0.0001, 100.0]")
            }
        }
        if let a = f.abort {
            percentage(a.percentage?.value, "\(p).abort.percentage.value")
            if let pc = a.percent, pc < 0 || pc > 100 { error("\(p).abort.percent", "percentage \(pc) is not in range 0..100") }
            if let g = a.grpcStatus, !grpcStatuses.contains(g) {
                error("\(p).abort.grpcStatus", "gRPC status \"\(g)\" is not supported. See https://github.com/grpc/grpc/blob/master/doc/statuscodes.md for a list of supported codes, for example 'NOT_FOUND'")
            }
            if a.http2Error != nil { error("\(p).abort.http2Error", "HTTP/2 abort fault injection not supported yet") }
            if let s = a.httpStatus, s < 200 || s > 599 {
                error("\(p).abort.httpStatus", "HTTP status \(s) is not in range 200-599")
            }
            if a.httpStatus == nil && a.grpcStatus == nil && a.http2Error == nil {
                warning("\(p).abort", "abort configured, but error type not set")
            }
        }
        if let d = f.delay {
            percentage(d.percentage?.value, "\(p).delay.percentage.value")
            if let pc = d.percent, pc < 0 || pc > 100 { error("\(p).delay.percent", "percentage \(pc) is not in range 0..100") }
            if d.exponentialDelay != nil { error("\(p).delay.exponentialDelay", "exponentialDelay not supported yet") }
            duration("\(p).delay.fixedDelay", d.fixedDelay)
        }
    }
}

/// RFC 7230 tchar.
/// No CR, LF or NUL: bytes that would end or corrupt a header line.
func isFieldValue(_ s: String) -> Bool { !s.utf8.contains { $0 == 0x0D || $0 == 0x0A || $0 == 0 } }

func isTokenChar(_ c: UInt8) -> Bool {
    switch c {
    case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
        return true
    default:
        return Array("!#$%&'*+-.^_`|~".utf8).contains(c)
    }
}

/// Go's `%f`-free float printing as Istio's `%v` gives it (`150`, `0.5`).
func goFloat(_ v: Double) -> String {
    v == v.rounded() && abs(v) < 1e15 ? String(Int64(v)) : String(v)
}

extension Substring {
    func trimmingSpaces() -> String {
        String(self.drop { $0 == " " }.reversed().drop { $0 == " " }.reversed())
    }
}

// VirtualService http rule → RouteActionsSpec: rewrite, headers, retries, fault, mirrors and
// corsPolicy, resolved with Istio's defaults (istio-semantics.md §1.4; Istio route.go,
// retry.go, fault.go). Validation has already rejected what Istio rejects; what is left here
// is translation.
import IstioConfig
import RouteTable

extension Compilation {
    /// The actions of one http rule. Called once per rule (mirror clusters are created here).
    mutating func routeActions(_ http: HTTPRoute, _ meta: ResourceMeta, path: String) -> RouteActionsSpec {
        var a = RouteActionsSpec()
        a.rewrite = Compilation.rewrite(http.rewrite)
        a.headers = Compilation.headerOps(http.headers)
        a.retry = Compilation.retry(http.retries)
        a.fault = fault(http.fault, meta, path: "\(path).fault")
        a.mirrors = mirrors(http, meta, path: path)
        a.cors = http.corsPolicy.map(Compilation.cors)
        return a
    }

    /// Istio ignores empty `uri` and `authority` strings.
    static func rewrite(_ rw: HTTPRewrite?) -> RewriteSpec? {
        guard let rw else { return nil }
        var spec = RewriteSpec()
        if let uri = rw.uri, !uri.isEmpty { spec.uri = uri }
        if let authority = rw.authority, !authority.isEmpty { spec.authority = authority }
        if let rx = rw.uriRegexRewrite, let pattern = rx.match {
            spec.uriRegex = RegexRewriteSpec(pattern: pattern, substitution: rx.rewrite ?? "")
            spec.uri = nil  // mutually exclusive (validation); Istio prefers the regex
        }
        return spec == RewriteSpec() ? nil : spec
    }

    /// Envoy applies removes before adds; Istio writes `set` (overwrite) then `add` (append),
    /// each sorted by name. Names are lower-cased (HTTP/1 names are case-insensitive).
    static func headerOps(_ h: Headers?) -> HeaderOpsSpec {
        func ops(_ o: Headers.Operations?) -> [HeaderOpSpec] {
            guard let o else { return [] }
            var out = o.remove.map { HeaderOpSpec(.remove, $0.lowercased()) }
            out += o.set.keys.sorted().map { HeaderOpSpec(.set, $0.lowercased(), o.set[$0]!) }
            out += o.add.keys.sorted().map { HeaderOpSpec(.add, $0.lowercased(), o.add[$0]!) }
            return out
        }
        return HeaderOpsSpec(request: ops(h?.request), response: ops(h?.response))
    }

    /// Istio retry.go ConvertPolicy: no `retries` → the default policy; `attempts` ≤ 0 (or
    /// absent: the proto default is 0) → no retries; otherwise the default with the fields given.
    /// In `retryOn`, numbers are status codes and bring `retriable-status-codes` with them.
    static func retry(_ r: HTTPRetry?) -> RetrySpec {
        guard let r else { return .istioDefault }
        guard let attempts = r.attempts, attempts > 0 else { return .disabled }
        var spec = RetrySpec.istioDefault
        spec.attempts = UInt32(attempts)
        if let on = r.retryOn, !on.isEmpty {
            var bits: RetryOn = []
            var codes: [UInt16] = []
            for token in on.split(separator: ",") {
                let t = token.trimmed(" \t")
                if t.isEmpty { continue }
                if let code = Int(t) {
                    if code >= 100 && code <= 599 && !codes.contains(UInt16(code)) { codes.append(UInt16(code)) }
                } else if let bit = RetryOn(name: t) {
                    bits.insert(bit)
                }
            }
            if !codes.isEmpty { bits.insert(.retriableStatusCodes) }
            spec.retryOn = bits
            spec.retriableStatusCodes = codes
        }
        if let ms = r.perTryTimeout?.milliseconds, ms > 0 { spec.perTryTimeoutMs = clampMs(ms) }
        spec.retryRemoteLocalities = r.retryRemoteLocalities ?? false
        spec.ignorePreviousHosts = r.retryIgnorePreviousHosts ?? true
        if let ms = r.backoff?.milliseconds, ms > 0 { spec.backoffBaseMs = clampMs(ms) }
        return spec
    }

    /// A `delay` without `percentage` uses the deprecated integer `percent`, else 0 % (Istio
    /// fault.go). An abort with `grpcStatus` answers 200 with that status, as Envoy's fault
    /// filter does.
    mutating func fault(_ f: HTTPFaultInjection?, _ meta: ResourceMeta, path: String) -> FaultSpec? {
        guard let f else { return nil }
        var spec = FaultSpec()
        if let d = f.delay {
            let ppm = d.percentage.map { Compilation.ppm($0.value) } ?? Compilation.ppm(Double(max(d.percent ?? 0, 0)))
            spec.delay = FaultDelaySpec(fixedDelayMs: clampMs(d.fixedDelay?.milliseconds ?? 0), ppm: ppm)
        }
        if let ab = f.abort {
            let ppm = ab.percentage.map { Compilation.ppm($0.value) } ?? Compilation.ppm(Double(max(ab.percent ?? 0, 0)))
            if let status = ab.httpStatus {
                spec.abort = FaultAbortSpec(httpStatus: UInt16(clamping: status), ppm: ppm)
            } else if let name = ab.grpcStatus, let code = grpcStatusNames.firstIndex(of: name.uppercased()) {
                // Envoy's fault filter: HTTP 200 with the gRPC status (a gRPC reply to a gRPC
                // request; a plain 200 "fault filter abort" to any other).
                spec.abort = FaultAbortSpec(httpStatus: 200, ppm: ppm, grpcStatus: UInt8(code))
            } else {
                diagnostics.append(meta.diagnostic(.note, "\(path).abort",
                                                   "abort without httpStatus or grpcStatus (http2Error) is not carried; no abort"))
            }
        }
        return spec.delay == nil && spec.abort == nil ? nil : spec
    }

    /// `mirror` (with `mirrorPercentage` or the deprecated `mirrorPercent`) or `mirrors[]`; 100 %
    /// when no percentage is given, dropped when it is 0 (Istio MirrorPercent).
    mutating func mirrors(_ http: HTTPRoute, _ meta: ResourceMeta, path: String) -> [MirrorSpec] {
        var out: [MirrorSpec] = []
        if let m = http.mirror {
            var ppm: UInt32 = 1_000_000
            if let p = http.mirrorPercentage { ppm = Compilation.ppm(p.value) }
            else if let p = http.mirrorPercent { ppm = Compilation.ppm(Double(min(p, 100))) }
            if ppm > 0 {
                out.append(MirrorSpec(cluster: registry.cluster(for: m, from: meta, path: "\(path).mirror"), ppm: ppm))
            }
        }
        for (i, m) in http.mirrors.enumerated() {
            guard let dest = m.destination else { continue }
            let ppm = m.percentage.map { Compilation.ppm($0.value) } ?? 1_000_000
            if ppm > 0 {
                out.append(MirrorSpec(cluster: registry.cluster(for: dest, from: meta, path: "\(path).mirrors[\(i)].destination"),
                                      ppm: ppm))
            }
        }
        return out
    }

    /// Istio uses `allowOrigins` when given, else the deprecated `allowOrigin` as exact matches;
    /// lists are sent joined with ","; maxAge in whole seconds.
    static func cors(_ c: CorsPolicy) -> CorsSpec {
        var origins: [StringMatchSpec] = []
        if !c.allowOrigins.isEmpty {
            for o in c.allowOrigins {
                switch o {
                case .exact(let v): origins.append(.exact(v))
                case .prefix(let v): origins.append(.prefix(v))
                case .regex(let v): origins.append(.regex(v))
                case .any: break
                }
            }
        } else {
            origins = c.allowOrigin.map { .exact($0) }
        }
        var spec = CorsSpec(allowOrigins: origins, allowMethods: c.allowMethods, allowHeaders: c.allowHeaders,
                            exposeHeaders: c.exposeHeaders, allowCredentials: c.allowCredentials ?? false,
                            unmatchedPreflights: c.unmatchedPreflights?.uppercased() == "IGNORE" ? .ignore : .forward)
        if let ns = c.maxAge?.nanoseconds, ns >= 0 { spec.maxAgeSeconds = UInt32(clamping: ns / 1_000_000_000) }
        return spec
    }

    /// Percent (0–100) → parts per million, truncated like Istio's `uint32(value * 10000)`.
    static func ppm(_ percent: Double) -> UInt32 {
        guard percent > 0 else { return 0 }
        return UInt32(min(percent * 10_000, 1_000_000))
    }
}

/// Milliseconds clamped into the image's 32-bit fields (about 49 days).
func clampMs(_ ms: Int64) -> UInt32 { UInt32(clamping: max(ms, 0)) }

extension Substring {
    func trimmed(_ set: String) -> String {
        var s = self
        while let f = s.first, set.contains(f) { s.removeFirst() }
        while let l = s.last, set.contains(l) { s.removeLast() }
        return String(s)
    }
}

import CRE2
import HTTPCore

// Request → route (istio-semantics.md §1.2–1.3). Per worker, built once per table generation:
// init compiles every regex of the image with RE2 (Regex.swift) and allocates a scratch buffer;
// `route(_:)` then makes no String, calls through no existential or closure, and compares bytes
// through pointers. It allocates nothing itself; RE2 allocates only while its lazily built DFA
// meets states it has not cached yet (warm-up, bounded by RE2's per-pattern memory budget).

/// The outcome of a lookup.
public enum RouteLookup: Equatable, Sendable {
    /// No listener on the request's port (the proxy should not have accepted it).
    case noListener
    /// No virtual host serves the Host: 404, empty body (flag NR).
    case noVirtualHost
    /// The virtual host has no route for this request: 404, empty body (flag NR).
    case noRoute
    /// The virtual host has `tls.httpsRedirect` and the request is plain HTTP: 301 to https://
    /// before any route is looked at (Envoy `require_tls: ALL`).
    case httpsRedirect(virtualHost: Int32)
    /// First matching route, and its virtual host (global indices into the reader).
    case matched(route: Int32, virtualHost: Int32)
}

/// The image holds a regex this RE2 cannot compile (an image built elsewhere), or memory ran out.
public enum RouteMatcherError: Error, Equatable {
    case regexDoesNotCompile(index: Int32, offset: Int)
    case outOfMemory
}

/// Matches requests against one table image.
///
/// Why a `~Copyable` struct and not a class: the worker keeps exactly one matcher per table
/// generation in its loop state; a class reference would be retained and released around
/// calls in the hot loop (≈14 ns a pair, STYLE.md) and could be shared by accident, while a
/// non-copyable value has one owner, no reference count, and frees its RE2 programs in `deinit`
/// exactly when the worker replaces it (`matcher = try RouteMatcher(newTable)`) or drops it.
///
/// The image memory belongs to the caller and must stay mapped while the matcher exists.
/// Not thread-safe: the scratch buffer is reused by every lookup.
public struct RouteMatcher: ~Copyable {
    public let table: TableReader
    /// Compiled RE2 program per regex index of the image.
    let codes: UnsafeMutablePointer<OpaquePointer>
    let regexCount: Int
    /// Joins repeated header fields ("a,b", as Envoy does) for matching.
    let scratch: UnsafeMutablePointer<UInt8>

    /// Size of the header-join buffer. Above the 60 KiB request-head default (DESIGN.md §8),
    /// so a join is only cut short when the head limit itself was raised.
    public static let scratchBytes = 64 * 1024

    /// Compiles the image's regexes. Throws when one does not compile here or memory runs out;
    /// nothing is leaked in either case.
    public init(_ table: TableReader) throws(RouteMatcherError) {
        let n = Int(table.regexCount)
        let codes = UnsafeMutablePointer<OpaquePointer>.allocate(capacity: max(n, 1))
        var compiled = 0
        while compiled < n {
            switch regexCompile(table.regexPattern(Int32(compiled))) {
            case .success(let code):
                codes[compiled] = code
                compiled += 1
            case .failure(let f):
                for i in 0..<compiled { ingressd_re2_free(codes[i]) }
                codes.deallocate()
                throw .regexDoesNotCompile(index: Int32(compiled), offset: f.offset)
            }
        }
        self.table = table
        self.codes = codes
        self.regexCount = n
        self.scratch = .allocate(capacity: Self.scratchBytes)
    }

    deinit {
        for i in 0..<regexCount { ingressd_re2_free(codes[i]) }
        codes.deallocate()
        scratch.deallocate()
    }

    /// The route for `req`: listener by `listenerPort`, virtual host by Host (port and case
    /// ignored), then the first route of that host whose match blocks accept the request.
    /// `req`'s ranges must lie inside `req.bytes`; nothing is retained after the call.
    public func route(_ req: MatchRequest) -> RouteLookup {
        let l = table.listener(port: req.listenerPort)
        guard l >= 0 else { return .noListener }
        let v = table.virtualHost(listener: l, authority: slice(req, req.authority))
        guard v >= 0 else { return .noVirtualHost }
        if table.virtualHostHTTPSRedirect(v) && !req.isHTTPS { return .httpsRedirect(virtualHost: v) }
        let routes = table.range(table.vhostOff(v) + 16)
        var r = routes.lowerBound
        while r < routes.upperBound {
            let matches = table.range(table.routeOff(r) + 8)
            if matches.isEmpty { return .matched(route: r, virtualHost: v) }
            var m = matches.lowerBound
            while m < matches.upperBound {
                if blockMatches(m, req) { return .matched(route: r, virtualHost: v) }
                m += 1
            }
            r += 1
        }
        return .noRoute
    }

    // MARK: match blocks

    /// AND of the block's conditions.
    func blockMatches(_ m: Int32, _ req: MatchRequest) -> Bool {
        let at = table.matchOff(m)
        let flags = table.u8(at + 10)
        if flags & 2 != 0 && table.u16(at + 8) != req.listenerPort { return false }
        let ignoreCase = flags & 1 != 0
        let conds = table.range(at)
        var c = conds.lowerBound
        while c < conds.upperBound {
            if !conditionHolds(c, req, ignoreUriCase: ignoreCase) { return false }
            c += 1
        }
        return true
    }

    func conditionHolds(_ c: Int32, _ req: MatchRequest, ignoreUriCase: Bool) -> Bool {
        let at = table.condOff(c)
        // Validated: both bytes are known raw values.
        let target = ConditionTarget(rawValue: table.u8(at)).unsafelyUnwrapped
        let kind = ConditionKind(rawValue: table.u8(at + 1)).unsafelyUnwrapped
        switch target {
        case .uri:
            return compare(kind, at, slice(req, req.path), ignoreCase: ignoreUriCase)
        case .scheme:
            let s: StaticString = req.isHTTPS ? "https" : "http"
            return compare(kind, at, UnsafeRawBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount), ignoreCase: false)
        case .method:
            return compare(kind, at, slice(req, req.method), ignoreCase: false)
        case .authority:
            return compare(kind, at, slice(req, req.authority), ignoreCase: false)
        case .header:
            guard let value = headerValue(table.bytes(at + 4), req) else { return false }
            return kind == .present || compare(kind, at, value, ignoreCase: false)
        case .withoutHeader:
            // treat_missing_header_as_empty, inverted; `present` inverted means "absent".
            let value = headerValue(table.bytes(at + 4), req)
            if kind == .present { return value == nil }
            return !compare(kind, at, value ?? UnsafeRawBufferPointer(start: scratch, count: 0), ignoreCase: false)
        case .queryParam:
            guard let value = queryValue(table.bytes(at + 4), req) else { return false }
            return kind == .present || compare(kind, at, value, ignoreCase: false)
        }
    }

    /// exact / prefix / regex (full match) / present of the condition at `at` against `subject`.
    @inline(__always)
    func compare(_ kind: ConditionKind, _ at: Int, _ subject: UnsafeRawBufferPointer, ignoreCase: Bool) -> Bool {
        switch kind {
        case .present:
            return true
        case .exact:
            let v = table.bytes(at + 12)
            return v.count == subject.count && Bytes.equalPrefix(v, subject, ignoreCase: ignoreCase)
        case .prefix:
            let v = table.bytes(at + 12)
            return v.count <= subject.count && Bytes.equalPrefix(v, subject, ignoreCase: ignoreCase)
        case .regex:
            return regexMatches(Int(table.i32(at + 20)), subject)
        }
    }

    /// Whether regex `index` of the table (a CORS origin's, `OriginMatchView.regex`) matches
    /// all of `subject`.
    @inline(__always)
    public func regexMatches(_ index: Int32, _ subject: UnsafeRawBufferPointer) -> Bool {
        regexMatches(Int(index), subject)
    }

    @inline(__always)
    func regexMatches(_ i: Int, _ subject: UnsafeRawBufferPointer) -> Bool {
        // SAFETY: RE2 reads `subject.count` bytes; the shim accepts NULL for an empty subject.
        // RE2 has no error outcome: 0 is "does not match", decided in linear time.
        ingressd_re2_full_match(codes[i], subject.baseAddress?.assumingMemoryBound(to: CChar.self), subject.count) != 0
    }

    // MARK: request fields

    @inline(__always)
    func slice(_ req: MatchRequest, _ r: ByteRange) -> UnsafeRawBufferPointer {
        assert(r.start >= 0 && r.count >= 0 && Int(r.end) <= req.bytes.count, "range outside the request buffer")
        guard let b = req.bytes.baseAddress else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return UnsafeRawBufferPointer(start: b + Int(r.start), count: Int(r.count))
    }

    /// The value of header `name` (lower-case), or nil when absent. Repeated fields are joined
    /// with "," into the scratch buffer, as Envoy's header matcher sees them (cut at
    /// `scratchBytes`). The result is valid until the next lookup.
    func headerValue(_ name: UnsafeRawBufferPointer, _ req: MatchRequest) -> UnsafeRawBufferPointer? {
        var found: UnsafeRawBufferPointer? = nil
        var joined = -1  // bytes used in scratch once a second field was seen
        for h in req.headers {
            let n = slice(req, h.name)
            guard n.count == name.count, Bytes.equalPrefix(name, n, ignoreCase: true) else { continue }
            let value = slice(req, h.value)
            guard let first = found else { found = value; continue }
            if joined < 0 {
                joined = append(first, at: 0)
            }
            joined = append(UnsafeRawBufferPointer(start: nil, count: 0), at: joined, comma: true)
            joined = append(value, at: joined)
        }
        if joined >= 0 { return UnsafeRawBufferPointer(start: scratch, count: joined) }
        return found
    }

    @inline(__always)
    func append(_ bytes: UnsafeRawBufferPointer, at used: Int, comma: Bool = false) -> Int {
        if comma {
            guard used < Self.scratchBytes else { return used }
            scratch[used] = UInt8(ascii: ",")
            return used + 1
        }
        let n = min(bytes.count, Self.scratchBytes - used)
        if n > 0, let src = bytes.baseAddress {
            (scratch + used).update(from: src.assumingMemoryBound(to: UInt8.self), count: n)
        }
        return used + n
    }

    /// The value of the first query parameter named `name` (compared exactly, not decoded, as
    /// Envoy does): "" for `?name` and `?name=`, nil when absent.
    func queryValue(_ name: UnsafeRawBufferPointer, _ req: MatchRequest) -> UnsafeRawBufferPointer? {
        let q = slice(req, req.query)
        if q.isEmpty { return nil }
        var start = 0
        while start <= q.count {
            var end = start
            while end < q.count && q[end] != UInt8(ascii: "&") { end += 1 }
            var eq = start
            while eq < end && q[eq] != UInt8(ascii: "=") { eq += 1 }
            if eq - start == name.count,
               Bytes.equalPrefix(name, UnsafeRawBufferPointer(rebasing: q[start..<eq]), ignoreCase: false) {
                let vStart = eq < end ? eq + 1 : end
                return UnsafeRawBufferPointer(rebasing: q[vStart..<end])
            }
            start = end + 1
        }
        return nil
    }
}

/// Byte comparisons through pointers (no String).
enum Bytes {
    /// True when `subject` begins with `pattern` (pattern.count ≤ subject.count is checked by
    /// the caller). With `ignoreCase`, ASCII letters compare case-insensitively.
    @inline(__always)
    static func equalPrefix(_ pattern: UnsafeRawBufferPointer, _ subject: UnsafeRawBufferPointer, ignoreCase: Bool) -> Bool {
        let n = pattern.count
        var i = 0
        if ignoreCase {
            while i < n, HostHash.lower(pattern[i]) == HostHash.lower(subject[i]) { i += 1 }
        } else {
            while i < n, pattern[i] == subject[i] { i += 1 }
        }
        return i == n
    }
}

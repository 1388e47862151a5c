import CRE2
import RouteTable

/// The compiled `rewrite.uriRegexRewrite` patterns of one route table, by route index, built
/// when the table is loaded (control path; RE2 programs cannot live in shared memory) and
/// freed with it. A pattern RE2 refuses here (the builder already compiled it once) leaves its
/// route without the rewrite, logged.
struct RewriteRegexes: ~Copyable {
    private let programs: UnsafeMutablePointer<OpaquePointer?>
    private let count: Int

    init() {
        programs = .allocate(capacity: 1)
        programs.initialize(to: nil)
        count = 0
    }

    init(_ reader: TableReader) {
        let n = Int(reader.routes.upperBound)
        programs = .allocate(capacity: max(1, n))
        programs.initialize(repeating: nil, count: max(1, n))
        count = n
        for r in reader.routes {
            guard let rx = reader.rewriteRegex(route: r) else { continue }
            var offset = -1
            let p = ingressd_re2_compile(rx.pattern.baseAddress?.assumingMemoryBound(to: CChar.self),
                                         rx.pattern.count, nil, 0, &offset)
            if p == nil { log("worker: route \(r): uriRegexRewrite pattern does not compile; not rewritten") }
            programs[Int(r)] = p
        }
    }

    deinit {
        for k in 0..<count { ingressd_re2_free(programs[k]) }
        programs.deallocate()
    }

    /// Writes `path` with every match of route `route`'s pattern replaced by `substitution`
    /// into `out`; the length, or nil when the route has no compiled pattern or the result
    /// does not fit.
    func rewrite(route: Int32, path: UnsafeRawBufferPointer, substitution: UnsafeRawBufferPointer,
                 into out: UnsafeMutableRawPointer, capacity: Int) -> Int? {
        guard Int(route) < count, let p = programs[Int(route)] else { return nil }
        let n = ingressd_re2_global_replace(p, path.baseAddress?.assumingMemoryBound(to: CChar.self), path.count,
                                            substitution.baseAddress?.assumingMemoryBound(to: CChar.self),
                                            substitution.count, out.assumingMemoryBound(to: CChar.self), capacity)
        return n < 0 ? nil : Int(n)
    }
}

// Hashing of host names for the per-listener host index (TableLayout.swift, HostSlot).
//
// The lookup cost depends on the request's host, never on the number of virtual hosts:
//   exact   one probe with the hash of the whole host;
//   suffix  the host is hashed backwards; at every '.' (not the first byte) the running hash is
//           the hash of the suffix from that dot, e.g. ".b.foo.com", ".foo.com", ".com"; each is
//           probed and the leftmost hit (the longest suffix) wins, as in Envoy;
//   prefix  the host is hashed forwards; at every '.' (not the last byte) the running hash is
//           the hash of the prefix up to and including that dot, e.g. "foo.", "foo.bar."; the
//           rightmost hit (the longest prefix) wins.
// So a lookup is O(host bytes) hashing plus O(labels) probes. FNV-1a: cheap per byte, good
// enough for keys that are compared in full on every hit.

@usableFromInline
enum HostHash {
    @usableFromInline static let seed: UInt32 = 2_166_136_261
    @usableFromInline static let prime: UInt32 = 16_777_619

    /// ASCII lower-case; other bytes unchanged. Host matching is case-insensitive (DESIGN.md §8).
    @inlinable @inline(__always)
    static func lower(_ b: UInt8) -> UInt8 {
        b &- 65 < 26 ? b | 0x20 : b
    }

    @inlinable @inline(__always)
    static func step(_ h: UInt32, _ b: UInt8) -> UInt32 {
        (h ^ UInt32(lower(b))) &* prime
    }

    /// Forward hash (exact and prefix keys). Control-plane helper.
    static func forward(_ key: [UInt8]) -> UInt32 {
        var h = seed
        for b in key { h = step(h, b) }
        return h
    }

    /// Backward hash (suffix keys): the bytes from last to first.
    static func backward(_ key: [UInt8]) -> UInt32 {
        var h = seed
        for b in key.reversed() { h = step(h, b) }
        return h
    }
}

/// How a virtual-host domain is matched (istio-semantics.md §1.1.5, §1.2).
enum DomainKind: Equatable {
    /// "a.example.com": the whole host.
    case exact([UInt8])
    /// "*.example.com": key ".example.com"; one or more labels before it.
    case suffix([UInt8])
    /// "a.example.*": key "a.example."; one or more labels after it.
    case prefix([UInt8])
    /// "*".
    case any

    /// Classifies a domain, or nil for one this index cannot serve: empty, a partial wildcard
    /// ("foo*.com", "*foo.com"), a wildcard in the middle, or both a leading and trailing one.
    init?(_ domain: [UInt8]) {
        let star = UInt8(ascii: "*"), dot = UInt8(ascii: ".")
        let stars = domain.reduce(0) { $0 + ($1 == star ? 1 : 0) }
        if domain == [star] {
            self = .any
        } else if stars == 0 {
            guard !domain.isEmpty else { return nil }
            self = .exact(domain)
        } else if stars == 1, domain.count > 2, domain[0] == star, domain[1] == dot {
            self = .suffix(Array(domain[1...]))
        } else if stars == 1, domain.count > 2, domain[domain.count - 1] == star, domain[domain.count - 2] == dot {
            self = .prefix(Array(domain[..<(domain.count - 1)]))
        } else {
            return nil
        }
    }
}

// Host names as Istio compares them (pkg/config/host/name.go, istio-semantics.md §1.1):
// `*.foo.com` matches any number of labels before `.foo.com` but not `foo.com`; `*` matches
// everything. Comparisons are case-insensitive.

public enum HostName {
    public static func isWildcard(_ h: String) -> Bool { h.hasPrefix("*") }

    /// Whether the two names can denote a common host (Istio `Name.Matches`).
    public static func matches(_ a: String, _ b: String) -> Bool {
        let a = a.lowercased(), b = b.lowercased()
        switch (isWildcard(a), isWildcard(b)) {
        case (true, true):
            let sa = a.dropFirst(), sb = b.dropFirst()
            return sa.hasSuffix(sb) || sb.hasSuffix(sa)
        case (true, false):
            return b.hasSuffix(a.dropFirst())
        case (false, true):
            return a.hasSuffix(b.dropFirst())
        case (false, false):
            return a == b
        }
    }

    /// Whether every host that `a` denotes is also denoted by `b` (Istio `Name.SubsetOf`).
    public static func subsetOf(_ a: String, _ b: String) -> Bool {
        let a = a.lowercased(), b = b.lowercased()
        if isWildcard(b) {
            if isWildcard(a) { return a.dropFirst().hasSuffix(b.dropFirst()) }
            return a.hasSuffix(b.dropFirst())
        }
        return !isWildcard(a) && a == b
    }

    /// The more specific of two matching names (`a.com` over `*.com`, `*.b.c` over `*.c`),
    /// lower-cased: the domain Istio gives the Envoy virtual host.
    public static func moreSpecific(_ a: String, _ b: String) -> String {
        let a = a.lowercased(), b = b.lowercased()
        if !isWildcard(a) { return a }
        if !isWildcard(b) { return b }
        return a.count >= b.count ? a : b
    }

    /// Istio `Names.Intersection`: for every pair that matches, the more specific name, in the
    /// order of `a` then `b`, without duplicates.
    public static func intersection(_ a: [String], _ b: [String]) -> [String] {
        var out: [String] = []
        var seen: Set<String> = []
        for x in a {
            for y in b where matches(x, y) {
                let m = moreSpecific(x, y)
                if seen.insert(m).inserted { out.append(m) }
            }
        }
        return out
    }

    /// A short name (`frontend`) expanded to `frontend.NAMESPACE.svc.cluster.local`; names with
    /// a dot, wildcards and IPs are returned unchanged (Istio's ResolveShortnameToFQDN).
    public static func fqdn(_ host: String, namespace: String) -> String {
        if host.contains(".") || host.hasPrefix("*") || host.contains(":") || host.isEmpty { return host }
        return "\(host).\(namespace).svc.cluster.local"
    }

    // MARK: Syntax

    /// DNS-1123 label: `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63 characters. Upper case is
    /// accepted for host labels (Istio lower-cases hosts); `lowercaseOnly` for resource names.
    public static func isDNS1123Label(_ s: String, lowercaseOnly: Bool = true) -> Bool {
        guard !s.isEmpty, s.utf8.count <= 63 else { return false }
        let u = Array(s.utf8)
        func ok(_ c: UInt8, edge: Bool) -> Bool {
            if c >= 97 && c <= 122 { return true }
            if c >= 48 && c <= 57 { return true }
            if !lowercaseOnly && c >= 65 && c <= 90 { return true }
            return !edge && c == 45
        }
        for (n, c) in u.enumerated() where !ok(c, edge: n == 0 || n == u.count - 1) { return false }
        return true
    }

    /// DNS-1123 subdomain (Kubernetes resource names): dot-separated labels, ≤ 253.
    public static func isDNS1123Subdomain(_ s: String) -> Bool {
        guard !s.isEmpty, s.utf8.count <= 253 else { return false }
        return s.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { isDNS1123Label(String($0)) }
    }

    /// Istio `ValidateWildcardDomain`: `*`, `*.a.b`, or an FQDN; nil when valid.
    public static func validateWildcardDomain(_ domain: String) -> String? {
        if let e = preconditions(domain) { return e }
        let parts = domain.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        if parts[0] != "*" && !isDNS1123Label(parts[0], lowercaseOnly: false) {
            return "domain name \"\(domain)\" invalid (label \"\(parts[0])\" invalid)"
        }
        if parts.count > 1 { return validateLabels(parts[1], domain: domain) }
        return nil
    }

    /// Istio `ValidateFQDN`-style check for hosts that may not be wildcards.
    public static func validateDomain(_ domain: String) -> String? {
        if let e = preconditions(domain) { return e }
        return validateLabels(domain, domain: domain)
    }

    /// Wildcards must be a whole left-most label: `foo*.com` and `*foo.com` are partial.
    public static func isPartialWildcard(_ domain: String) -> Bool {
        domain.contains("*") && domain != "*" && !(domain.hasPrefix("*.") && domain.filter { $0 == "*" }.count == 1)
    }

    static func preconditions(_ domain: String) -> String? {
        if domain.utf8.count > 255 { return "domain name \"\(domain)\" too long (max 255)" }
        if domain.isEmpty { return "empty domain name not allowed" }
        return nil
    }

    static func validateLabels(_ rest: String, domain: String) -> String? {
        let labels = rest.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        if let tld = labels.last, !tld.isEmpty, Int(tld) != nil {
            return "domain name \"\(rest)\" invalid (top level domain \"\(tld)\" cannot be all-numeric)"
        }
        for (n, label) in labels.enumerated() {
            if n == labels.count - 1 && label.isEmpty { return nil } // `istio.io.`
            if !isDNS1123Label(label, lowercaseOnly: false) {
                return "domain name \"\(domain)\" invalid (label \"\(label)\" invalid)"
            }
        }
        return nil
    }

    /// IPv4 dotted quad or IPv6 literal.
    public static func isIPAddress(_ s: String) -> Bool {
        IPAddress.parse(s) != nil
    }
}

/// Parsing of numeric addresses without the C library (usable in validation and compiling).
public enum IPAddress {
    /// 4 bytes for IPv4, 16 for IPv6, network order; nil when `s` is not an address.
    public static func parse(_ s: String) -> [UInt8]? {
        if let v4 = parseV4(Substring(s)) { return v4 }
        return parseV6(s)
    }

    static func parseV4(_ s: Substring) -> [UInt8]? {
        let parts = s.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var out: [UInt8] = []
        for p in parts {
            guard !p.isEmpty, p.count <= 3, p.allSatisfy({ $0.isASCII && $0.isNumber }), let v = UInt8(p) else {
                return nil
            }
            if p.count > 1 && p.first == "0" { return nil }
            out.append(v)
        }
        return out
    }

    static func parseV6(_ s: String) -> [UInt8]? {
        guard s.contains(":"), !s.contains(":::") else { return nil }
        var text = Substring(s)
        var tail4: [UInt8] = []
        if let lastColon = text.lastIndex(of: ":"), text[text.index(after: lastColon)...].contains(".") {
            guard let v4 = parseV4(text[text.index(after: lastColon)...]) else { return nil }
            tail4 = v4
            text = text[...lastColon]
            if text.hasSuffix(":") && !text.hasSuffix("::") { text = text.dropLast() }
        }
        let halves = text.components(separatedBy: "::")
        guard halves.count <= 2 else { return nil }
        func groups(_ h: String) -> [UInt16]? {
            if h.isEmpty { return [] }
            var out: [UInt16] = []
            for g in h.split(separator: ":", omittingEmptySubsequences: false) {
                guard !g.isEmpty, g.count <= 4, let v = UInt16(g, radix: 16) else { return nil }
                out.append(v)
            }
            return out
        }
        guard let head = groups(halves[0]) else { return nil }
        let tail = halves.count == 2 ? groups(halves[1]) : []
        guard let tail else { return nil }
        let total = 8 - tail4.count / 2
        var all: [UInt16]
        if halves.count == 2 {
            guard head.count + tail.count < total else { return nil }
            all = head + Array(repeating: 0, count: total - head.count - tail.count) + tail
        } else {
            guard head.count == total else { return nil }
            all = head
        }
        var bytes: [UInt8] = []
        for g in all { bytes += [UInt8(g >> 8), UInt8(g & 0xff)] }
        return bytes + tail4
    }
}

private extension Substring {
    func components(separatedBy sep: String) -> [String] {
        var out: [String] = []
        var rest = self
        while let r = rest.firstRange(of: sep) {
            out.append(String(rest[..<r.lowerBound]))
            rest = rest[r.upperBound...]
        }
        out.append(String(rest))
        return out
    }
}

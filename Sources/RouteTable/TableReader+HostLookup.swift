// Virtual-host choice (istio-semantics.md §1.2, Envoy's order): exact domain, then the longest
// suffix wildcard, then the longest prefix wildcard, then "*". The port in Host is ignored and
// the comparison is ASCII case-insensitive (Istio sets ignore_port_in_host_matching). The cost
// depends on the length of the host only (HostHash.swift), not on the number of virtual hosts.
// No allocation, no String.

extension TableReader {
    /// The virtual host that serves `authority` (a raw Host / :authority value, port allowed)
    /// on listener `l`, or -1. `authority` is only read during the call.
    public func virtualHost(listener l: Int32, authority: UnsafeRawBufferPointer) -> Int32 {
        precondition(listeners.contains(l))
        let n = Self.hostLength(authority)
        guard n > 0, let p = authority.baseAddress?.assumingMemoryBound(to: UInt8.self) else {
            return i32(listenerOff(l) + 12)
        }
        return virtualHost(listener: l, host: p, count: n)
    }

    /// Bytes of `authority` before its port, following Envoy's stripPortFromHost: the last ':'
    /// starts the port unless a ']' (IPv6 literal) comes after it.
    @inline(__always)
    static func hostLength(_ authority: UnsafeRawBufferPointer) -> Int {
        var i = authority.count - 1
        while i >= 0 {
            let b = authority[i]
            if b == UInt8(ascii: "]") { return authority.count }
            if b == UInt8(ascii: ":") { return i }
            i -= 1
        }
        return authority.count
    }

    func virtualHost(listener l: Int32, host p: UnsafePointer<UInt8>, count n: Int) -> Int32 {
        let at = listenerOff(l)
        let dot = UInt8(ascii: ".")

        let exactCount = u32(at + 20)
        if exactCount > 0 {
            var h = HostHash.seed
            for i in 0..<n { h = HostHash.step(h, p[i]) }
            let v = probe(first: u32(at + 16), count: exactCount, hash: h, key: p, count: n)
            if v >= 0 { return v }
        }

        let suffixCount = u32(at + 28)
        if suffixCount > 0 {
            // Backwards: at each dot after the first byte, h is the hash of host[i...] (reversed).
            let first = u32(at + 24)
            var h = HostHash.seed, best: Int32 = -1
            var i = n - 1
            while i >= 1 {
                h = HostHash.step(h, p[i])
                if p[i] == dot {
                    let v = probe(first: first, count: suffixCount, hash: h, key: p + i, count: n - i)
                    if v >= 0 { best = v }  // further left = longer suffix
                }
                i -= 1
            }
            if best >= 0 { return best }
        }

        let prefixCount = u32(at + 36)
        if prefixCount > 0 {
            // Forwards: at each dot before the last byte, h is the hash of host[...i].
            let first = u32(at + 32)
            var h = HostHash.seed, best: Int32 = -1
            var i = 0
            while i < n - 1 {
                h = HostHash.step(h, p[i])
                if p[i] == dot {
                    let v = probe(first: first, count: prefixCount, hash: h, key: p, count: i + 1)
                    if v >= 0 { best = v }  // further right = longer prefix
                }
                i += 1
            }
            if best >= 0 { return best }
        }
        return i32(at + 12)
    }

    /// Linear probing over a power-of-two table; stops at an empty slot, and after `count` slots
    /// at most, so a table without empty slots still terminates.
    @inline(__always)
    func probe(first: UInt32, count: UInt32, hash: UInt32, key p: UnsafePointer<UInt8>, count n: Int) -> Int32 {
        let mask = count - 1
        var i = hash & mask
        var tries: UInt32 = 0
        while tries < count {
            let at = slotOff(Int32(first + i))
            let v = i32(at + 12)
            if v < 0 { return -1 }
            if u32(at) == hash, Int(u32(at + 8)) == n {
                // SAFETY: validation checked that the key lies inside the strings section.
                let k = (base + stringsAt + Int(u32(at + 4))).assumingMemoryBound(to: UInt8.self)
                var j = 0
                while j < n, k[j] == HostHash.lower(p[j]) { j += 1 }
                if j == n { return v }
            }
            i = (i + 1) & mask
            tries += 1
        }
        return -1
    }
}

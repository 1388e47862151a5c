import HTTP1
import RouteTable
import SharedMemory
#if canImport(Glibc)
import Glibc
#endif

// Request mirroring (VirtualService `mirror` / `mirrors[]` with `mirrorPercentage`;
// istio-semantics.md §1.4, Envoy's request_mirror_policies): a copy of the request goes to the
// mirror cluster with `-shadow` added to its Host (before the port, as Envoy does), fire and
// forget. The copy has no exchange and no client: its connection is fresh (never pooled),
// its response is read up to the head and discarded by closing the connection, and a slow or
// failing mirror never delays or fails the client (it has its own connection timer).
//
// The copy is made from the forwarded buffer when the first try is sent, so only a request
// whose bytes are all in that buffer is mirrored (no body, or a body that came with the head and
// fit): the same bytes a retry could resend. A streamed body is not mirrored.

extension ProxyEngine {
    /// A mirror connection gives up after this long without its response head.
    static let mirrorTimeoutMs: UInt64 = 10_000

    /// Sends a copy of exchange `x`'s request (in upstream `u`'s `out`) to each mirror of its
    /// route that fires.
    mutating func mirrorRequest(_ x: Int32, from u: Int32) {
        let e = exchanges.slots + Int(x)
        guard e.pointee.tries == 1, e.pointee.replayable, e.pointee.route >= 0,
              e.pointee.tableGeneration == table.generation, let reader = table.reader else { return }
        let mirrors = reader.routeMirrors(route: e.pointee.route)
        guard !mirrors.isEmpty, let src = conns[Int(u)].out else { return }
        let srcLen = Int(conns[Int(u)].outLen)
        for m in mirrors {
            let (cluster, ppm) = reader.mirror(m)
            guard cluster >= 0, fires(ppm), var ep = chooseEndpoint(reader, cluster: cluster) else { continue }
            ep.pool = -1   // a fresh connection, closed after the response head
            let needLarge = srcLen + 16 > small.size
            let out = needLarge ? large.get() : small.get()
            guard let n = writeShadowCopy(UnsafeRawPointer(src), srcLen, into: out,
                                          capacity: needLarge ? large.size : small.size) else {
                if needLarge { large.put(out) } else { small.put(out) }
                continue
            }
            let mu = acquireUpstream(ep)
            guard mu >= 0 else {
                if needLarge { large.put(out) } else { small.put(out) }
                continue
            }
            let mc = conns + Int(mu)
            mc.pointee.mirror = true
            mc.pointee.reusable = false
            mc.pointee.rx = .head
            mc.pointee.out = out
            mc.pointee.outLarge = needLarge
            mc.pointee.outLen = Int32(n)
            if Int(cluster) < recorder.clusterCount { mc.pointee.cxRecord = recorder.clusterRecords[Int(cluster)] }
        }
    }

    /// A mirror connection connected: send the copy and wait for the response head.
    mutating func mirrorConnected(_ u: Int32) {
        let uc = conns + Int(u)
        setDeadline(u, nowMs + ProxyEngine.mirrorTimeoutMs)
        armRecv(u, idle: true)
        send(u, UnsafeRawPointer(uc.pointee.out!), uc.pointee.outLen, release: .none)
    }

    /// Copies the serialized head at `src` with `-shadow` added to the Host value (before a
    /// `:port`). nil when it does not fit or there is no Host line.
    func writeShadowCopy(_ src: UnsafeRawPointer, _ len: Int, into out: UnsafeMutableRawPointer, capacity: Int) -> Int? {
        let suffix: StaticString = "-shadow"
        guard len + suffix.utf8CodeUnitCount <= capacity else { return nil }
        let b = src.assumingMemoryBound(to: UInt8.self)
        // Find "\nhost:" (any case) in the head.
        var at = -1
        var k = 0
        while k + 6 <= len {
            if b[k] == 0x0A && (b[k + 1] | 0x20) == 0x68 && (b[k + 2] | 0x20) == 0x6F && (b[k + 3] | 0x20) == 0x73
                && (b[k + 4] | 0x20) == 0x74 && b[k + 5] == 0x3A {
                at = k + 6
                break
            }
            if b[k] == 0x0D && k + 3 < len && b[k + 1] == 0x0A && b[k + 2] == 0x0D && b[k + 3] == 0x0A { break }
            k += 1
        }
        guard at >= 0 else { return nil }
        var end = at
        while end < len && b[end] != 0x0D { end += 1 }
        // Before a trailing ":digits" (not inside an IPv6 literal's brackets).
        var insert = end
        var j = end - 1
        while j > at && b[j] >= 0x30 && b[j] <= 0x39 { j -= 1 }
        if j > at && b[j] == 0x3A && j < end - 1 && b[j - 1] != 0x3A { insert = j }
        out.copyMemory(from: src, byteCount: insert)
        (out + insert).copyMemory(from: UnsafeRawPointer(suffix.utf8Start), byteCount: suffix.utf8CodeUnitCount)
        (out + insert + suffix.utf8CodeUnitCount).copyMemory(from: src + insert, byteCount: len - insert)
        return len + suffix.utf8CodeUnitCount
    }
}

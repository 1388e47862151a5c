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
// failing mirror never delays or fails the client (it has its own connection timer). To a
// cluster that speaks HTTP/2 (TableReader.clusterHTTP2: a gRPC mirror) the copy is a stream on
// the endpoint's multiplexed connection instead (the pool's `h2Conn`, as for requests:
// Engine+HTTP2Upstream.swift), reset once its response head came unless it already ended.
//
// The copy is made from the forwarded buffer when the first try is sent when the request's
// bytes are all in it (no body, or a body that came with the head and fit). A body that streams
// (an HTTP/2 client's always does: its DATA follows the head) is collected as it is read into
// the exchange's request copy (Engine+RequestCopy.swift), and the mirrors get it once the
// request ended, as Envoy buffers a request for its shadows; a body past the copy's large
// buffer (80 KiB) is not mirrored.

extension ProxyEngine {
    /// A mirror connection gives up after this long without its response head.
    static let mirrorTimeoutMs: UInt64 = 10_000

    /// The first try of exchange `x` is being sent (its request in upstream `u`'s `out`): each
    /// mirror of its route that fires gets a copy — now, or, when the body is still to be read,
    /// once it was (from the exchange's request copy: `mirrorStreamedRequest`).
    mutating func mirrorRequest(_ x: Int32, from u: Int32) {
        let e = exchanges.slots + Int(x)
        guard e.pointee.tries == 1, e.pointee.route >= 0,
              e.pointee.tableGeneration == table.generation, let reader = table.reader else { return }
        let mirrors = reader.routeMirrors(route: e.pointee.route)
        guard !mirrors.isEmpty, let src = conns[Int(u)].out else { return }
        var fire: UInt32 = 0
        for m in mirrors where m - mirrors.lowerBound < 32 && fires(reader.mirror(m).ppm) {
            fire |= 1 << UInt32(m - mirrors.lowerBound)
        }
        guard fire != 0 else { return }
        if e.pointee.replayable {
            sendMirrors(reader, mirrors, fire, UnsafeRawPointer(src), Int(conns[Int(u)].outLen), clientHTTP2: clientHTTP2(x))
        } else if e.pointee.requestCopy != nil {
            e.pointee.mirrorFires = fire
        }
    }

    /// Exchange `x`'s streamed request ended with its copy whole: its mirrors get it.
    mutating func mirrorStreamedRequest(_ x: Int32) {
        let e = exchanges.slots + Int(x)
        guard let copy = e.pointee.requestCopy, e.pointee.mirrorFires != 0 else { return }
        if e.pointee.route >= 0 && e.pointee.tableGeneration == table.generation, let reader = table.reader {
            sendMirrors(reader, reader.routeMirrors(route: e.pointee.route), e.pointee.mirrorFires,
                        UnsafeRawPointer(copy), Int(e.pointee.requestCopyLen), clientHTTP2: clientHTTP2(x))
        }
        e.pointee.mirrorFires = 0
    }

    /// Exchange `x`'s client speaks HTTP/2 (for clusters with `useClientProtocol`).
    func clientHTTP2(_ x: Int32) -> Bool {
        let d = exchanges.slots[Int(x)].down
        return d >= 0 && conns[Int(d)].transport == .h2stream
    }

    /// Sends the request at `src` (`srcLen` bytes: the forwarded head and the whole body) to the
    /// mirrors of `mirrors` whose bit is set in `fire`.
    mutating func sendMirrors(_ reader: TableReader, _ mirrors: Range<Int32>, _ fire: UInt32, _ src: UnsafeRawPointer, _ srcLen: Int,
                              clientHTTP2: Bool) {
        for m in mirrors where m - mirrors.lowerBound < 32 && fire & (1 << UInt32(m - mirrors.lowerBound)) != 0 {
            let (cluster, _) = reader.mirror(m)
            guard cluster >= 0, var ep = chooseEndpoint(reader, cluster: cluster) else { continue }
            ep.http2 = reader.clusterUsesClientProtocol(cluster) ? clientHTTP2 : reader.clusterHTTP2(cluster)
            if !ep.http2 { ep.pool = -1 }   // a fresh connection, closed after the response head
            let needLarge = srcLen + 16 > small.size
            let out = needLarge ? large.get() : small.get()
            guard let n = writeShadowCopy(src, srcLen, into: out,
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
            if ep.http2 {
                // A stream: its connection (new, or already up) counts as the cluster's.
                let pc = conns + Int(mc.pointee.h2Parent)
                if pc.pointee.cxRecord == Int32(ClusterStats.unknownRecord) { pc.pointee.cxRecord = mc.pointee.cxRecord }
                if mc.pointee.connected { mirrorConnected(mu) }   // else once it is (h2UpConnected)
            }
        }
    }

    /// A mirror connection connected (or an HTTP/2 mirror stream can start): send the copy and
    /// wait for the response head.
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

import CSupport
import CURing
import HTTP1
import RouteTable
import SharedMemory
import URing
#if canImport(Glibc)
import Glibc
#endif

// Downstream (client) side: accept, receive, request heads, routing decisions.

extension ProxyEngine {
    mutating func onAccept(listener l: Int, result: Int32, flags: UInt32) {
        if flags & ING_CQE_F_MORE == 0 && !draining && l < listenerCount && listenerFds[l] >= 0 {
            if result < 0 && AcceptPause.pauses(result) {
                pauseAccepting(listener: l, errno: -result)   // re-armed later (Engine+AcceptPause.swift)
            } else {
                ring.prepMultishotAccept(fd: listenerFds[l], userData: packUserData(.accept, Int32(l), 0))
            }
        }
        guard result >= 0 else { return }
        let fd = result
        if draining {
            close(fd)
            return
        }
        let i = allocSlot()
        guard i >= 0 else {
            close(fd)   // slab full: refuse rather than queue unboundedly
            return
        }
        let c = conns + Int(i)
        c.pointee.fd = fd
        c.pointee.role = .downstream
        c.pointee.rx = .head
        c.pointee.listenerPort = listenerPorts[l]
        setDeadline(i, nowMs + limits.idleTimeoutMs)
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        recordPeer(i)
        downstreamCount += 1
        stats.add(WorkerSlotField.connectionsAccepted)
        stats.set(WorkerSlotField.connectionsActive, UInt64(downstreamCount))
        switch listenerProto(c.pointee.listenerPort)?.proto {
        case .tcp?:
            startTCPRoute(i)   // Engine+TCP.swift
        case .https?, .tls?:
            startHello(i)      // Engine+TLS.swift
        default:
            armRecv(i)
        }
    }

    /// Formats the client address once per connection for x-forwarded-for. IPv4-mapped IPv6
    /// addresses (dual-stack listeners) are shown as IPv4, as Envoy does.
    mutating func recordPeer(_ i: Int32) {
        var ss = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let c = conns + Int(i)
        let ok = withUnsafeMutablePointer(to: &ss) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(c.pointee.fd, $0, &len) == 0 }
        }
        guard ok else { return }
        var text = [CChar](repeating: 0, count: 64)   // once per connection, not per request
        if ss.ss_family == sa_family_t(AF_INET) {
            withUnsafePointer(to: &ss) {
                $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { sin in
                    var a = sin.pointee.sin_addr
                    _ = inet_ntop(AF_INET, &a, &text, 64)
                }
            }
        } else {
            withUnsafePointer(to: &ss) {
                $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { sin6 in
                    var a = sin6.pointee.sin6_addr
                    let b = withUnsafeBytes(of: &a) { Array($0) }
                    if b[0..<10].allSatisfy({ $0 == 0 }) && b[10] == 0xff && b[11] == 0xff {
                        var v4 = in_addr()
                        withUnsafeMutableBytes(of: &v4) { for k in 0..<4 { $0[k] = b[12 + k] } }
                        _ = inet_ntop(AF_INET, &v4, &text, 64)
                    } else {
                        _ = inet_ntop(AF_INET6, &a, &text, 64)
                    }
                }
            }
        }
        let n = min(strlen(text), 48)
        withUnsafeMutableBytes(of: &c.pointee.peerText) { dst in
            for k in 0..<n { dst[k] = UInt8(bitPattern: text[k]) }
        }
        c.pointee.peerTextLen = UInt8(n)
    }

    /// Arms one receive into the provided-buffer ring. Single-shot on purpose, not multishot:
    /// a connection is read only when the proxy wants its bytes (a head, or the next piece of a
    /// body once the previous piece was sent on), which is the backpressure that keeps a 1 GiB
    /// upload or download within a buffer or two per direction. A multishot receive would keep
    /// filling ring buffers from a fast sender and take them from every other connection.
    ///
    /// `idle`: the peer cannot have sent anything yet (a client still reading its response, an
    /// upstream back in the pool or not yet sent its request): the receive skips its first
    /// attempt and arms the poll at once (IORING_RECVSEND_POLL_FIRST), which saves a failed
    /// receive (-EAGAIN inside the kernel) per request on each side. Bytes that are already
    /// there anyway (a pipelined request) are received as soon as the poll fires.
    @inline(__always)
    mutating func armRecv(_ i: Int32, idle: Bool = false) {
        let c = conns + Int(i)
        if c.pointee.transport == .tls {
            armTLSRecv(i)
            return
        }
        if c.pointee.transport == .h2stream {
            h2StreamRead(i)   // Engine+HTTP2.swift (both roles)
            return
        }
        if c.pointee.role == .upstream && c.pointee.rx == .body && armBulkRecv(i) { return }
        ring.prepRecvSelect(fd: c.pointee.fd, group: rx.groupID,
                            userData: userData(c.pointee.role == .downstream ? .downRecv : .upRecv, i),
                            pollFirst: idle)
        c.pointee.pendingOps += 1
        c.pointee.recvArmed = true
    }

    mutating func onDownRecv(_ i: Int32, result: Int32, flags: UInt32) {
        let c = conns + Int(i)
        guard result > 0 else {
            if result == -ENOBUFS {
                receiveStarved(i)
                return
            }
            if result == 0 && copiesTCP(i) {
                tunnelSourceEnded(i)   // a TCP pair through TLS upstream: half-close
                return
            }
            downstreamGone(i)
            return
        }
        let bid = UInt16(flags >> ING_CQE_BUFFER_SHIFT)
        onDownData(i, rx.buffer(bid), Int(result), bid)
    }

    /// `n` bytes from the client in receive buffer `bid` (a ring buffer, or a TLS plaintext
    /// buffer: Engine+TLS.swift).
    @inline(__always)
    mutating func onDownData(_ i: Int32, _ data: UnsafeMutableRawPointer, _ n: Int, _ bid: UInt16) {
        let c = conns + Int(i)
        if c.pointee.h2 != nil {
            h2Ingest(i, data, n, bid)   // Engine+HTTP2.swift
            return
        }
        switch c.pointee.rx {
        case .head:
            onDownHeadBytes(i, data, n, bid)
        case .body, .chunked:
            forwardRequestBody(i, data, n, bid)
        case .tunnel:
            let u = peerOf(i)
            if u >= 0 && !conns[Int(u)].closing {
                statTunnelBytes(i, n)
                send(u, UnsafeRawPointer(data), Int32(n), release: .recv(bid))
            } else {
                recycleRecv(bid)
                closeConn(i)
            }
        default:
            // Bytes while the response is awaited (watchForClose): a pipelined request, kept
            // for when this exchange ends. The buffer was empty, so one receive's worth fits.
            let kept = appendAccum(i, data, n)
            recycleRecv(bid)
            if !kept { downstreamGone(i) }
        }
    }

    /// Bytes of a request head arrived in receive buffer `bid`.
    mutating func onDownHeadBytes(_ i: Int32, _ data: UnsafeMutableRawPointer, _ n: Int, _ bid: UInt16) {
        let c = conns + Int(i)
        if c.pointee.accum == nil {
            if !c.pointee.h1Seen && n >= 3 && data.load(as: UInt8.self) == UInt8(ascii: "P") {
                // HTTP/2 by prior knowledge (RFC 9113 §3.3): the client preface.
                switch prefaceMatch(data, n) {
                case 1:
                    if h2Start(i) { onDownData(i, data, n, bid) } else { recycleRecv(bid) }
                    return
                case 0:
                    _ = appendAccum(i, data, n)
                    recycleRecv(bid)
                    armRecv(i)
                    return
                default:
                    break
                }
            }
            // Common case: the whole head is in this one buffer; parse it in place.
            var head = RequestHead()
            let status = parseRequestHead(UnsafeRawBufferPointer(start: data, count: n), limits: .default,
                                          headers: UnsafeMutableBufferPointer(start: headers, count: ProxyEngine.maxHeaders),
                                          into: &head)
            switch status {
            case .complete:
                startRequest(i, base: UnsafeRawPointer(data), count: n, head: head, inAccum: false)
                recycleRecv(bid)
            case .incomplete:
                let kept = appendAccum(i, data, n)
                recycleRecv(bid)
                guard kept else {
                    stats.add(WorkerSlotField.badRequests)
                    sendLocalReply(i, status: 431, body: nil, close: true)
                    return
                }
                setDeadline(i, nowMs + limits.headerTimeoutMs)
                armRecv(i)
            case .error(let e):
                recycleRecv(bid)
                stats.add(WorkerSlotField.badRequests)
                sendLocalReply(i, status: e.status, body: nil, close: true)
            }
            return
        }
        let fits = appendAccum(i, data, n)
        recycleRecv(bid)
        guard fits else {
            stats.add(WorkerSlotField.badRequests)
            sendLocalReply(i, status: 431, body: nil, close: true)
            return
        }
        parseAccumulatedRequest(i)
    }

    /// Parses the head buffered in `accum` (after more bytes arrived, or for a pipelined
    /// request once the previous response is done).
    mutating func parseAccumulatedRequest(_ i: Int32) {
        let c = conns + Int(i)
        guard let acc = c.pointee.accum, c.pointee.accumEnd > c.pointee.accumStart else {
            releaseAccumIfEmpty(i)
            armRecv(i)
            return
        }
        let base = UnsafeRawPointer(acc + Int(c.pointee.accumStart))
        let count = Int(c.pointee.accumEnd - c.pointee.accumStart)
        if !c.pointee.h1Seen && c.pointee.transport != .h2stream {
            switch prefaceMatch(base, count) {
            case 1:
                // The preface arrived in pieces: the buffered bytes go to the new session, a
                // receive-sized piece at a time.
                let gen = c.pointee.generation
                guard h2Start(i) else { return }
                var off = 0
                while off < count && h2Alive(i, gen) {
                    guard let (pid, buf) = plain.get() else { closeConn(i); return }
                    let k = min(count - off, plain.size)
                    buf.copyMemory(from: base + off, byteCount: k)
                    off += k
                    h2Ingest(i, buf, k, pid)
                }
                if h2Alive(i, gen) { releaseAccum(i) }
                return
            case 0:
                armRecv(i)
                return
            default:
                break
            }
        }
        var head = RequestHead()
        let status = parseRequestHead(UnsafeRawBufferPointer(start: base, count: count), limits: .default,
                                      headers: UnsafeMutableBufferPointer(start: headers, count: ProxyEngine.maxHeaders),
                                      into: &head)
        switch status {
        case .complete:
            startRequest(i, base: base, count: count, head: head, inAccum: true)
        case .incomplete:
            let d = deadline(i)
            if d == 0 || d > nowMs + limits.headerTimeoutMs {
                setDeadline(i, nowMs + limits.headerTimeoutMs)
            }
            armRecv(i)
        case .error(let e):
            stats.add(WorkerSlotField.badRequests)
            sendLocalReply(i, status: e.status, body: nil, close: true)
        }
    }

    /// Appends received bytes to the connection's accumulation buffer; false when the head
    /// limit would be exceeded (the caller answers 431). The buffer starts small (4 KiB: nearly
    /// every split head fits) and moves to the large class only when it must, so ten thousand
    /// slow clients trickling heads hold 4 KiB each, not 80 KiB.
    @inline(__always)
    /// `shed`: the bytes are part of a head and may be refused under overload
    /// (`maxLargeHeadBuffers`); bytes that must be kept (a body's, a pipelined request's after
    /// a body) pass false.
    mutating func appendAccum(_ i: Int32, _ data: UnsafeRawPointer, _ n: Int, shed: Bool = true) -> Bool {
        let c = conns + Int(i)
        if c.pointee.accum == nil {
            let big = n > small.size
            if big && shed && largeHeadBuffers >= limits.maxLargeHeadBuffers { return false }   // shed
            c.pointee.accum = big ? large.get() : small.get()
            c.pointee.accumLarge = big
            if big { largeHeadBuffers += 1 }
            c.pointee.accumStart = 0
            c.pointee.accumEnd = 0
        }
        var cap = c.pointee.accumLarge ? large.size : small.size
        if c.pointee.accumStart > 0 && Int(c.pointee.accumEnd) + n > cap {
            // Compact: move unprocessed bytes to the front (nothing in flight reads accum).
            let len = Int(c.pointee.accumEnd - c.pointee.accumStart)
            c.pointee.accum!.copyMemory(from: c.pointee.accum! + Int(c.pointee.accumStart), byteCount: len)
            c.pointee.accumStart = 0
            c.pointee.accumEnd = Int32(len)
        }
        if Int(c.pointee.accumEnd) + n > cap && !c.pointee.accumLarge {
            // Overload: past the worker's budget of large head buffers, a head that needs one
            // is refused (431 for a client, 502 for an upstream) rather than held.
            if shed && largeHeadBuffers >= limits.maxLargeHeadBuffers { return false }
            largeHeadBuffers += 1
            let big = large.get()
            big.copyMemory(from: c.pointee.accum!, byteCount: Int(c.pointee.accumEnd))
            small.put(c.pointee.accum!)
            c.pointee.accum = big
            c.pointee.accumLarge = true
            cap = large.size
        }
        guard Int(c.pointee.accumEnd) + n <= cap else { return false }
        (c.pointee.accum! + Int(c.pointee.accumEnd)).copyMemory(from: data, byteCount: n)
        c.pointee.accumEnd += Int32(n)
        return true
    }

    @inline(__always)
    mutating func releaseAccumIfEmpty(_ i: Int32) {
        let c = conns + Int(i)
        if c.pointee.accum != nil && c.pointee.accumEnd <= c.pointee.accumStart {
            releaseAccum(i)
        }
    }

    /// Gives the accumulation buffer back to its pool.
    @inline(__always)
    mutating func releaseAccum(_ i: Int32) {
        let c = conns + Int(i)
        if let a = c.pointee.accum {
            if c.pointee.accumLarge {
                large.put(a)
                largeHeadBuffers -= 1
            } else {
                small.put(a)
            }
        }
        c.pointee.accum = nil
        c.pointee.accumStart = 0
        c.pointee.accumEnd = 0
    }

    /// Drops `n` processed bytes from the front of the accumulation buffer.
    @inline(__always)
    mutating func consumeAccum(_ i: Int32, _ n: Int) {
        let c = conns + Int(i)
        c.pointee.accumStart += Int32(n)
        releaseAccumIfEmpty(i)
    }

    /// The client closed or its connection failed.
    mutating func downstreamGone(_ i: Int32) {
        let u = peerOf(i)
        if u >= 0 {
            closeConn(u)
        }
        closeConn(i)
    }

    /// The exchange on downstream `i` is over (its upstream, if any, already detached): the
    /// session serves the next request on a kept-alive connection (a pipelined head may
    /// already be buffered) or closes it.
    mutating func exchangeEnded(_ i: Int32) {
        if conns[Int(i)].transport == .h2stream {
            h2StreamEnded(i)   // a stream carries one exchange
            return
        }
        detach(i)
        if conns[Int(i)].keepAlive {
            nextRequest(i)
        } else {
            closeConn(i)
        }
    }

    /// Waits for (or parses the buffered) next request on a kept-alive connection.
    mutating func nextRequest(_ i: Int32) {
        let c = conns + Int(i)
        if c.pointee.transport == .tls { shrinkBIOs(i) }
        c.pointee.rx = .head
        c.pointee.requestDone = false
        if draining {
            closeConn(i)
            return
        }
        setDeadline(i, nowMs + limits.idleTimeoutMs)
        if c.pointee.accum != nil && c.pointee.accumEnd > c.pointee.accumStart {
            parseAccumulatedRequest(i)
        } else {
            releaseAccumIfEmpty(i)
            if !c.pointee.recvArmed { armRecv(i, idle: true) }
        }
    }
}

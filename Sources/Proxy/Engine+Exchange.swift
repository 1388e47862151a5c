import HTTP1
import SharedMemory

// Linking connections through exchanges (Exchange.swift has the lifecycle diagram).

extension ProxyEngine {
    /// The exchange of connection `i` (which must have one).
    @inline(__always)
    func ex(_ i: Int32) -> UnsafeMutablePointer<Exchange> {
        exchanges.slots + Int(conns[Int(i)].exchange)
    }

    /// The connection on the other side of `i`'s exchange: a downstream's upstream, an
    /// upstream's downstream; -1 when there is none (no exchange, or that side detached).
    @inline(__always)
    func peerOf(_ i: Int32) -> Int32 {
        let x = conns[Int(i)].exchange
        guard x >= 0 else { return -1 }
        return conns[Int(i)].role == .downstream ? exchanges.slots[Int(x)].up : exchanges.slots[Int(x)].down
    }

    /// Starts an exchange on downstream `d` (which has none). Cannot fail: the slab has a slot
    /// per connection slot and a downstream holds at most one exchange.
    @inline(__always)
    mutating func openExchange(_ d: Int32) -> Int32 {
        assert(conns[Int(d)].exchange < 0, "one exchange per HTTP/1.1 downstream")
        let x = exchanges.alloc()
        precondition(x >= 0, "exchange slab sized below the connection slab")
        exchanges.slots[Int(x)].down = d
        conns[Int(d)].exchange = x
        return x
    }

    /// The exchange of downstream `d`, opened when it has none (a reply to a request the codec
    /// could not parse is an exchange too: it is counted and logged).
    @inline(__always)
    mutating func exchangeOf(downstream d: Int32) -> Int32 {
        let x = conns[Int(d)].exchange
        return x >= 0 ? x : openExchange(d)
    }

    /// Upstream `u` carries exchange `x`'s request.
    @inline(__always)
    mutating func attachUpstream(_ x: Int32, _ u: Int32) {
        exchanges.slots[Int(x)].up = u
        conns[Int(u)].exchange = x
    }

    /// Unlinks connection `i` from its exchange; the exchange is freed once neither side holds
    /// it. The other side keeps its link and learns through `peerOf` that `i` is gone.
    @inline(__always)
    mutating func detach(_ i: Int32) {
        let x = conns[Int(i)].exchange
        guard x >= 0 else { return }
        conns[Int(i)].exchange = -1
        let e = exchanges.slots + Int(x)
        if conns[Int(i)].role == .downstream {
            if e.pointee.down == i { e.pointee.down = -1 }
        } else if e.pointee.up == i {
            e.pointee.up = -1
        }
        if e.pointee.down < 0 && e.pointee.up < 0 {
            timers.cancel(exchangeTimer(x))
            timers.cancel(stageTimer(x))
            releasePending(x)
            releaseRequestCopy(x)
            if let o = e.pointee.corsOrigin { small.put(o) }
            trafficExchangeEnded(x)   // CircuitBreakers.swift
            exchanges.release(x)
        }
    }

    /// Detaches the upstream of downstream `d`'s exchange, if any (the caller pools or closes it).
    @inline(__always)
    mutating func detachUpstream(of d: Int32) {
        let u = peerOf(d)
        if u >= 0 { detach(u) }
    }
}

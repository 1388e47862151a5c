// The request copy of an exchange whose body streams (an HTTP/2 client's always does: its DATA
// follows the head), on a route with mirrors or retries: the forwarded head, then the body as
// it is read, as Envoy buffers a request for its shadows and for retries.
//
//   first try sent, request not all in `out` ──► copy `out` (small buffer; large once it grows)
//   body bytes read ──► appended (past the large buffer's 80 KiB: the copy is given up — no
//                       mirror, no retry of that request)
//   request ended ──► mirrors get the copy; it stays for a retry (`requestCopyDone`)
//   response started (and no mirror waits) ──► given back: a retry can no longer happen
//   a retry ──► the copy becomes the retry's forwarded request (`scheduleRetry`)

extension ProxyEngine {
    /// Exchange `x`'s first try is being sent with `n` bytes of its request at `src` and the
    /// rest of the body still to come: start the copy.
    mutating func startRequestCopy(_ x: Int32, _ src: UnsafeRawPointer, _ n: Int) {
        let e = exchanges.slots + Int(x)
        guard e.pointee.requestCopy == nil, n <= large.size else { return }
        let useLarge = n > small.size
        let copy = useLarge ? large.get() : small.get()
        copy.copyMemory(from: src, byteCount: n)
        e.pointee.requestCopy = copy
        e.pointee.requestCopyLen = Int32(n)
        e.pointee.requestCopyLarge = useLarge
        e.pointee.requestCopyDone = false
    }

    /// `n` more body bytes of exchange `x`'s streamed request (the copy is given up when it
    /// outgrows the large buffer).
    mutating func requestCopyCollect(_ x: Int32, _ p: UnsafeRawPointer, _ n: Int) {
        let e = exchanges.slots + Int(x)
        guard let copy = e.pointee.requestCopy, n > 0 else { return }
        let len = Int(e.pointee.requestCopyLen)
        guard len + n <= large.size else {
            releaseRequestCopy(x)
            return
        }
        var dst = copy
        if !e.pointee.requestCopyLarge && len + n > small.size {
            dst = large.get()
            dst.copyMemory(from: copy, byteCount: len)
            small.put(copy)
            e.pointee.requestCopy = dst
            e.pointee.requestCopyLarge = true
        }
        (dst + len).copyMemory(from: p, byteCount: n)
        e.pointee.requestCopyLen += Int32(n)
    }

    /// Exchange `x`'s streamed request ended with its copy whole: the mirrors get it, and it
    /// stays for a retry while the response has not started.
    mutating func requestCopyEnded(_ x: Int32) {
        let e = exchanges.slots + Int(x)
        guard e.pointee.requestCopy != nil else { return }
        mirrorStreamedRequest(x)
        if e.pointee.features & RouteFeature.retries != 0 && !e.pointee.responseStarted {
            e.pointee.requestCopyDone = true
        } else {
            releaseRequestCopy(x)
        }
    }

    /// Exchange `x`'s response started: a retry cannot happen any more, so the copy goes back
    /// unless a mirror still waits for the end of the request.
    @inline(__always)
    mutating func requestCopyUnneeded(_ x: Int32) {
        let e = exchanges.slots + Int(x)
        if e.pointee.requestCopy != nil && e.pointee.mirrorFires == 0 { releaseRequestCopy(x) }
    }

    /// Gives back exchange `x`'s request copy, if any (used, outgrown, or the exchange ended).
    mutating func releaseRequestCopy(_ x: Int32) {
        let e = exchanges.slots + Int(x)
        if let copy = e.pointee.requestCopy {
            if e.pointee.requestCopyLarge { large.put(copy) } else { small.put(copy) }
        }
        e.pointee.requestCopy = nil
        e.pointee.requestCopyLen = 0
        e.pointee.requestCopyLarge = false
        e.pointee.requestCopyDone = false
        e.pointee.mirrorFires = 0
    }
}

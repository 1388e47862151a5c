import CSupport
import CURing
import HTTP1
import SharedMemory
import URing
#if canImport(Glibc)
import Glibc
#endif

// The access log (`--access-log PATH|-|off`): one line per request in Envoy's default format
//
//   [%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE%
//   %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%
//   "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" "%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%"
//   "%UPSTREAM_HOST%"
//
// (one line; BYTES_* are body bytes received and response bytes sent; the upstream service time
// is not measured and prints "-", as Envoy does without the header.)
//
// Never blocks the loop: a request's fields are formatted into a pooled buffer when its head is
// parsed (the head's bytes are gone by the time it completes), the finished line is copied into
// the worker's fill buffer, and the fill buffer is written through the ring (IORING_OP_WRITE)
// while the other buffer fills — once it holds `flushBytes`, or `flushIntervalMs` after the
// previous write (measured: a write per loop iteration cost ~10 µs of io-wq time per request at
// 10k req/s, because io_uring hands buffered file writes to a kernel worker thread; batching
// makes that cost vanish). One write in flight at a time; when both buffers are busy a line is dropped and counted
// (`WorkerSlotField.accessLogDropped`) rather than waiting. SIGUSR1 reopens the file (logrotate)
// once no write is in flight.

struct AccessLog {
    /// -1 = access log off.
    var fd: Int32 = -1
    /// NUL-terminated path for reopening; nil for stdout ("-").
    var path: UnsafeMutablePointer<CChar>? = nil
    var fill: UnsafeMutableRawPointer? = nil
    var fillLen = 0
    /// The buffer being written by the ring (nil when none) and its progress.
    var writing: UnsafeMutableRawPointer? = nil
    var writingLen = 0
    var writingDone = 0
    var reopenRequested = false
    /// Worker clock (ms) of the last write submitted.
    var lastFlushMs: UInt64 = 0
    /// "[YYYY-MM-DDTHH:MM:SS." of Unix second `stampSecond` (`stampBytes` bytes used).
    var stamp: (UInt64, UInt64, UInt64) = (0, 0, 0)
    var stampSecond: UInt64 = .max
    static let stampBytes = 21
    /// CLOCK_REALTIME − CLOCK_MONOTONIC in ns, measured at worker clock `offsetAtMs`: a line's
    /// start time is the request's monotonic start plus this, refreshed once a second (one
    /// clock read per request instead of two; a clock step shows within a second, NTP slew of
    /// at most 0.5 ms/s cannot move the millisecond printed by more than one).
    var realtimeOffsetNs: UInt64 = 0
    var offsetAtMs: UInt64 = 0

    /// Formats `stamp` for Unix second `second` (once a second, not per request).
    mutating func setStamp(second: UInt64) {
        stampSecond = second
        withUnsafeMutableBytes(of: &stamp) { t in
            var w = LogWriter(base: t.baseAddress!, capacity: t.count)
            w.byte(UInt8(ascii: "["))
            w.civilTime(second)
            w.byte(UInt8(ascii: "."))
        }
    }

    /// Write when this much is buffered...
    static let flushBytes = 64 * 1024
    /// ...or this long after the previous write (Envoy flushes its access logs every 1 s too;
    /// an idle worker's loop wakes once a second, so a line waits at most ~2 s).
    static let flushIntervalMs: UInt64 = 1000

    /// 256 KiB per buffer: ~1500 lines of ~170 bytes between two loop iterations.
    static let bufferBytes = 256 * 1024

    var enabled: Bool { fd >= 0 }

    /// Opens `spec` ("-" = stdout, else a file opened for appending). nil when it cannot be
    /// opened: the caller reports the error (the worker exits 3).
    static func open(_ spec: String) -> AccessLog? {
        var log = AccessLog()
        if spec == "-" {
            log.fd = 1
        } else {
            let p = strdup(spec)!
            let fd = Glibc.open(p, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
            guard fd >= 0 else { free(p); return nil }
            log.path = p
            log.fd = fd
        }
        log.fill = .allocate(byteCount: bufferBytes, alignment: 64)
        log.realtimeOffsetNs = ing_realtime_ns() &- ing_monotonic_ns()
        return log
    }
}

extension ProxyEngine {
    /// Switches the access log on (before the loop starts).
    public mutating func setAccessLog(_ spec: String) -> Bool {
        guard spec != "off", !spec.isEmpty else { return true }
        guard let log = AccessLog.open(spec) else { return false }
        recorder.accessLog = log
        return true
    }

    /// SIGUSR1: reopen the file at its path on the next flush without a write in flight.
    public mutating func requestAccessLogReopen() {
        recorder.accessLog.reopenRequested = true
    }

    /// Once per loop iteration: reopen if asked, and write the fill buffer when it is due and no
    /// write is in flight.
    @inline(__always)
    mutating func flushAccessLog() {
        guard recorder.accessLog.enabled else { return }
        if nowMs &- recorder.accessLog.offsetAtMs >= 1000 || recorder.accessLog.offsetAtMs == 0 {
            recorder.accessLog.realtimeOffsetNs = ing_realtime_ns() &- ing_monotonic_ns()
            recorder.accessLog.offsetAtMs = nowMs
        }
        guard recorder.accessLog.writing == nil else { return }
        var force = false
        if recorder.accessLog.reopenRequested {
            // Lines logged before the reopen belong to the old file: write them there first.
            if recorder.accessLog.fillLen > 0 { force = true } else { reopenAccessLog() }
        }
        guard force || recorder.accessLog.fillLen >= AccessLog.flushBytes
                || (recorder.accessLog.fillLen > 0 && nowMs &- recorder.accessLog.lastFlushMs >= AccessLog.flushIntervalMs)
        else { return }
        recorder.accessLog.lastFlushMs = nowMs
        let full = recorder.accessLog.fill!
        recorder.accessLog.writing = full
        recorder.accessLog.writingLen = recorder.accessLog.fillLen
        recorder.accessLog.writingDone = 0
        recorder.accessLog.fillLen = 0
        recorder.accessLog.fill = recorder.spareLogBuffer ?? .allocate(byteCount: AccessLog.bufferBytes, alignment: 64)
        recorder.spareLogBuffer = nil
        submitAccessLogWrite()
    }

    /// Worker exit: writes what is buffered synchronously (the loop is over; blocking is fine).
    public mutating func finishAccessLog() {
        let log = recorder.accessLog
        guard log.enabled, let fill = log.fill, log.fillLen > 0 else { return }
        var done = 0
        while done < log.fillLen {
            let n = write(log.fd, fill + done, log.fillLen - done)
            if n <= 0 { if n < 0 && ing_errno() == EINTR { continue }; break }
            done += n
        }
        recorder.accessLog.fillLen = 0
    }

    private func submitAccessLogWrite() {
        let log = recorder.accessLog
        let s = ring.sqe()
        // Offset -1 (UInt64.max): the file position, as write(2); O_APPEND files append.
        io_uring_prep_write(s, log.fd, log.writing! + log.writingDone, UInt32(log.writingLen - log.writingDone), UInt64.max)
        s.pointee.user_data = packUserData(.logWrite, 0, 0)
    }

    /// Completion of an access-log write.
    mutating func onAccessLogWritten(result: Int32) {
        guard let w = recorder.accessLog.writing else { return }
        if result > 0 {
            recorder.accessLog.writingDone += Int(result)
            if recorder.accessLog.writingDone < recorder.accessLog.writingLen {
                submitAccessLogWrite()   // short write: the rest from the same buffer
                return
            }
        } else if result != -EINTR && result != -EAGAIN {
            // The log is unwritable (disk full, closed pipe): the lines are lost, not retried.
            stats.add(WorkerSlotField.accessLogDropped, 1)
        } else {
            submitAccessLogWrite()
            return
        }
        recorder.accessLog.writing = nil
        recorder.spareLogBuffer = w
    }

    private mutating func reopenAccessLog() {
        recorder.accessLog.reopenRequested = false
        guard let p = recorder.accessLog.path else { return }
        let fd = Glibc.open(p, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            log("worker: cannot reopen the access log: errno \(ing_errno()); keeping the old file")
            return
        }
        close(recorder.accessLog.fd)
        recorder.accessLog.fd = fd
    }

    // MARK: formatting
    //
    // Per request, with the log on: one pooled small buffer holds the fields only the head has
    // ("[time] \"METHOD PATH PROTO\" " | "\"XFF\" \"UA\" \"RID\" \"AUTHORITY\" \"" + upstream), formatted
    // when the head is parsed; at the finish the line is written once, straight into the fill
    // buffer: first part, the numbers, second part. The date and time down to the second come
    // from `AccessLog.stamp`, formatted once per second.

    /// Formats the request's fields (head bytes are only valid now) into a pooled buffer; a
    /// request without x-request-id gets the id ingressd generates (and forwards) here.
    mutating func accessLogBegin(_ x: Int32, source: UnsafeRawBufferPointer, head: RequestHead) {
        let c = exchanges.slots + Int(x)
        let buf = c.pointee.stats.log ?? small.get()
        var w = LogWriter(base: buf, capacity: small.size - 160)   // room for the finish fields
        w.startTime(&recorder.accessLog, c.pointee.stats.startNs &+ recorder.accessLog.realtimeOffsetNs)
        w.byte(UInt8(ascii: "\""))
        w.bytes(slice(source, head.methodRange), max: 32)
        w.byte(0x20)
        w.bytes(slice(source, head.target), max: 2048)
        if c.pointee.down >= 0 && conns[Int(c.pointee.down)].transport == .h2stream {
            w.text(" HTTP/2\" ")
        } else {
            w.text(head.version == .http10 ? " HTTP/1.0\" " : " HTTP/1.1\" ")
        }
        c.pointee.stats.logSplit = Int32(w.len)
        w.byte(UInt8(ascii: "\""))
        w.header(source, head.xForwardedForIndex >= 0 ? headers[Int(head.xForwardedForIndex)].value : nil)
        w.text("\" \"")
        w.header(source, findHeader(source, head, "user-agent"))
        w.text("\" \"")
        c.pointee.stats.logRid = 0
        if head.xRequestIdIndex >= 0 && headers[Int(head.xRequestIdIndex)].value.count > 0 {
            w.header(source, headers[Int(head.xRequestIdIndex)].value)
        } else if w.len + 36 <= w.capacity {
            // The id forward() sends upstream (`requestIdForUpstream`); a local reply logs it too,
            // as Envoy generates it before routing.
            var random = (nextRandom(), nextRandom())
            let at = w.len
            w.len += withUnsafeBytes(of: &random) {
                formatUUID(random: $0, into: UnsafeMutableRawBufferPointer(start: buf + at, count: 36)) ?? 0
            }
            c.pointee.stats.logRid = Int32(at)
        }
        w.text("\" \"")
        w.header(source, head.host.count > 0 ? head.host : nil)
        w.text("\" \"")
        c.pointee.stats.log = buf
        c.pointee.stats.logLen = Int32(w.len)
        c.pointee.stats.logMark = Int32(w.len)
    }

    /// The x-request-id to add upstream for a request that has none (36 bytes into `out`):
    /// the one already logged, or a fresh one when the log is off. Returns its length.
    @inline(__always)
    mutating func requestIdForUpstream(_ x: Int32, into out: UnsafeMutableRawBufferPointer) -> Int {
        let c = exchanges.slots + Int(x)
        if let buf = c.pointee.stats.log, c.pointee.stats.logRid > 0, out.count >= 36 {
            out.baseAddress!.copyMemory(from: buf + Int(c.pointee.stats.logRid), byteCount: 36)
            return 36
        }
        var random = (nextRandom(), nextRandom())
        return withUnsafeBytes(of: &random) { formatUUID(random: $0, into: out) ?? 0 }
    }

    /// Appends the upstream address ("10.0.0.1:80", "[::1]:80").
    mutating func accessLogUpstream(_ x: Int32, _ ep: ChosenEndpoint) {
        let c = exchanges.slots + Int(x)
        guard let buf = c.pointee.stats.log else { return }
        var w = LogWriter(base: buf + Int(c.pointee.stats.logMark), capacity: 64)
        var addr = ep.address
        if ep.family == 6 {
            var text = (UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0))
            withUnsafeMutableBytes(of: &text) { t in
                withUnsafeBytes(of: &addr) { a in
                    _ = inet_ntop(AF_INET6, a.baseAddress, t.baseAddress!.assumingMemoryBound(to: CChar.self), 64)
                }
                let n = strlen(t.baseAddress!.assumingMemoryBound(to: CChar.self))
                w.byte(UInt8(ascii: "["))
                w.bytes(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(t)[0..<n]), max: 48)
                w.byte(UInt8(ascii: "]"))
            }
        } else {
            // IPv4 by hand: inet_ntop + strlen cost more than the rest of the line.
            withUnsafeBytes(of: &addr) { a in
                for k in 0..<4 {
                    if k > 0 { w.byte(UInt8(ascii: ".")) }
                    w.decimal(UInt64(a[k]))
                }
            }
        }
        w.byte(UInt8(ascii: ":"))
        w.decimal(UInt64(ep.port))
        c.pointee.stats.logLen = c.pointee.stats.logMark + Int32(w.len)
    }

    /// Longest "CODE FLAGS BYTES BYTES MS - " tail: 5 + 1 + 47 (all fourteen flags) + 3 × 21 + 3.
    static let logTailMax = 119

    /// Completes the line straight into the fill buffer (or drops it when that is full).
    mutating func accessLogFinish(_ x: Int32, durationUs: UInt64) {
        let c = exchanges.slots + Int(x)
        guard let buf = c.pointee.stats.log else { return }
        c.pointee.stats.log = nil
        defer { small.put(buf) }
        let split = Int(c.pointee.stats.logSplit)
        let len = Int(c.pointee.stats.logLen)
        let upstreamMissing = len == Int(c.pointee.stats.logMark)
        guard recorder.accessLog.fillLen + len + ProxyEngine.logTailMax + 3 <= AccessLog.bufferBytes,
              let fill = recorder.accessLog.fill else {
            stats.add(WorkerSlotField.accessLogDropped)
            return
        }
        let start = fill + recorder.accessLog.fillLen
        start.copyMemory(from: buf, byteCount: split)
        var w = LogWriter(base: start, capacity: len + ProxyEngine.logTailMax + 3)
        w.len = split
        w.tail(status: c.pointee.stats.status, flags: c.pointee.stats.flags,
               received: c.pointee.stats.requestBytes &- UInt64(c.pointee.stats.headBytes),
               sent: c.pointee.stats.responseBytes, durationMs: durationUs / 1000)
        (start + w.len).copyMemory(from: buf + split, byteCount: len - split)
        w.len += len - split
        if upstreamMissing { w.byte(UInt8(ascii: "-")) }
        w.byte(UInt8(ascii: "\""))
        w.byte(UInt8(ascii: "\n"))
        recorder.accessLog.fillLen += w.len
        stats.add(WorkerSlotField.accessLogLines)
    }

    /// The line of a reply to no parsed request (the codec's 400/413/414/431, a 408 for a
    /// partial head): Envoy prints such a request as "- - HTTP/1.1" with every header "-".
    mutating func accessLogBare(status: UInt16, flags: UInt16, sent: UInt64, durationUs: UInt64) {
        let lineMax = 40 + 16 + ProxyEngine.logTailMax + 24
        guard recorder.accessLog.fillLen + lineMax <= AccessLog.bufferBytes, let fill = recorder.accessLog.fill else {
            stats.add(WorkerSlotField.accessLogDropped)
            return
        }
        var w = LogWriter(base: fill + recorder.accessLog.fillLen, capacity: lineMax)
        w.startTime(&recorder.accessLog, ing_realtime_ns())
        w.text("\"- - HTTP/1.1\" ")
        w.tail(status: status, flags: flags, received: 0, sent: sent, durationMs: durationUs / 1000)
        w.text("\"-\" \"-\" \"-\" \"-\" \"-\"\n")
        recorder.accessLog.fillLen += w.len
        stats.add(WorkerSlotField.accessLogLines)
    }

    /// A header's value range by lower-case name, or nil.
    func findHeader(_ source: UnsafeRawBufferPointer, _ head: RequestHead, _ name: StaticString) -> ByteRange? {
        let n = name.utf8CodeUnitCount
        for k in 0..<Int(head.headerCount) {
            let f = headers[k]
            guard Int(f.name.count) == n else { continue }
            var same = true
            for j in 0..<n where source[Int(f.name.start) + j] | 0x20 != name.utf8Start[j] {
                same = false
                break
            }
            if same { return f.value }
        }
        return nil
    }
}

/// Bounded writer into a raw buffer (truncates, never overflows).
struct LogWriter {
    let base: UnsafeMutableRawPointer
    let capacity: Int
    var len = 0

    @inline(__always) mutating func byte(_ b: UInt8) {
        guard len < capacity else { return }
        base.storeBytes(of: b, toByteOffset: len, as: UInt8.self)
        len += 1
    }

    mutating func bytes(_ b: UnsafeRawBufferPointer, max: Int) {
        let n = Swift.min(b.count, max, capacity - len)
        guard n > 0 else { return }
        (base + len).copyMemory(from: b.baseAddress!, byteCount: n)
        len += n
    }

    mutating func text(_ s: StaticString) {
        bytes(UnsafeRawBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount), max: s.utf8CodeUnitCount)
    }

    /// A header value, or "-" when absent (as Envoy prints missing values).
    mutating func header(_ source: UnsafeRawBufferPointer, _ r: ByteRange?) {
        guard let r, r.count > 0 else { byte(UInt8(ascii: "-")); return }
        bytes(slice(source, r), max: 256)
    }

    mutating func decimal(_ v: UInt64) {
        var digits = (UInt64(0), UInt64(0), UInt64(0))   // 24 bytes ≥ 20 digits
        var n = 0
        var x = v
        withUnsafeMutableBytes(of: &digits) { d in
            repeat {
                d[n] = UInt8(ascii: "0") + UInt8(x % 10)
                x /= 10
                n += 1
            } while x > 0
            while n > 0 {
                n -= 1
                byte(d[n])
            }
        }
    }

    mutating func twoDigits(_ v: Int) {
        byte(UInt8(ascii: "0") + UInt8(v / 10 % 10))
        byte(UInt8(ascii: "0") + UInt8(v % 10))
    }

    mutating func flags(_ f: UInt16) {
        if f == 0 { byte(UInt8(ascii: "-")); return }
        var first = true
        for k in 0..<ResponseFlags.names.count where f & (1 << UInt16(k)) != 0 {
            if !first { byte(UInt8(ascii: ",")) }
            first = false
            flagName(k)
        }
    }

    /// Without touching the `names` array of Strings (no retain on the request path).
    private mutating func flagName(_ k: Int) {
        switch k {
        case 0: text("NR")
        case 1: text("UH")
        case 2: text("UF")
        case 3: text("UT")
        case 4: text("UO")
        case 5: text("DC")
        case 6: text("NC")
        case 7: text("UC")
        case 8: text("UPE")
        case 9: text("DPE")
        case 10: text("DI")
        case 11: text("FI")
        case 12: text("URX")
        default: text("SI")
        }
    }

    /// "[2026-11-27T04:00:00.123Z] " (UTC, milliseconds) from CLOCK_REALTIME ns; the part up to
    /// the second is `log.stamp`, formatted again only when the second changes.
    @inline(__always)
    mutating func startTime(_ log: inout AccessLog, _ ns: UInt64) {
        let secs = ns / 1_000_000_000
        if secs != log.stampSecond { log.setStamp(second: secs) }
        guard len + 27 <= capacity else { return }
        withUnsafeBytes(of: &log.stamp) { (base + len).copyMemory(from: $0.baseAddress!, byteCount: AccessLog.stampBytes) }
        len += AccessLog.stampBytes
        let ms = Int((ns / 1_000_000) % 1000)
        byte(UInt8(ascii: "0") + UInt8(ms / 100))
        twoDigits(ms % 100)
        text("Z] ")
    }

    /// "CODE FLAGS BYTES_RECEIVED BYTES_SENT DURATION - " (the last field: upstream service time,
    /// not measured, "-" as Envoy prints it without the header).
    @inline(__always)
    mutating func tail(status: UInt16, flags f: UInt16, received: UInt64, sent: UInt64, durationMs: UInt64) {
        decimal(UInt64(status))
        byte(0x20)
        flags(f)
        byte(0x20)
        decimal(received)
        byte(0x20)
        decimal(sent)
        byte(0x20)
        decimal(durationMs)
        text(" - ")
    }

    /// "YYYY-MM-DDTHH:MM:SS" (UTC) of Unix time `secs`.
    mutating func civilTime(_ secs: UInt64) {
        var days = Int(secs / 86_400)
        let rem = Int(secs % 86_400)
        // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
        days += 719_468
        let era = days / 146_097
        let doe = days - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        let y = yoe + era * 400 + (m <= 2 ? 1 : 0)
        decimal(UInt64(y))
        byte(UInt8(ascii: "-")); twoDigits(m)
        byte(UInt8(ascii: "-")); twoDigits(d)
        byte(UInt8(ascii: "T")); twoDigits(rem / 3600)
        byte(UInt8(ascii: ":")); twoDigits(rem / 60 % 60)
        byte(UInt8(ascii: ":")); twoDigits(rem % 60)
    }
}

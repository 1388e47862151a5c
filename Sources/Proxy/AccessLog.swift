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
        guard recorder.accessLog.enabled, recorder.accessLog.writing == nil else { return }
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

    /// Formats the request's fields (head bytes are only valid now) into a pooled buffer.
    mutating func accessLogBegin(_ i: Int32, source: UnsafeRawBufferPointer, head: RequestHead) {
        let c = conns + Int(i)
        let buf = c.pointee.ex.log ?? small.get()
        var w = LogWriter(base: buf, capacity: small.size - 160)   // room for the finish fields
        w.byte(UInt8(ascii: "["))
        w.isoTime(ing_realtime_ns())
        w.text("] \"")
        w.bytes(slice(source, head.methodRange), max: 32)
        w.byte(0x20)
        w.bytes(slice(source, head.target), max: 2048)
        w.text(head.version == .http10 ? " HTTP/1.0\" " : " HTTP/1.1\" ")
        c.pointee.ex.logSplit = Int32(w.len)
        w.byte(UInt8(ascii: "\""))
        w.header(source, head.xForwardedForIndex >= 0 ? headers[Int(head.xForwardedForIndex)].value : nil)
        w.text("\" \"")
        w.header(source, findHeader(source, head, "user-agent"))
        w.text("\" \"")
        w.header(source, head.xRequestIdIndex >= 0 ? headers[Int(head.xRequestIdIndex)].value : nil)
        w.text("\" \"")
        w.header(source, head.host.count > 0 ? head.host : nil)
        w.text("\" \"")
        c.pointee.ex.log = buf
        c.pointee.ex.logLen = Int32(w.len)
        c.pointee.ex.logMark = Int32(w.len)
    }

    /// Appends the upstream address ("10.0.0.1:80", "[::1]:80").
    mutating func accessLogUpstream(_ i: Int32, _ ep: ChosenEndpoint) {
        let c = conns + Int(i)
        guard let buf = c.pointee.ex.log else { return }
        var w = LogWriter(base: buf + Int(c.pointee.ex.logMark), capacity: 64)
        var addr = ep.address
        var text = (UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0))
        withUnsafeMutableBytes(of: &text) { t in
            withUnsafeBytes(of: &addr) { a in
                _ = inet_ntop(ep.family == 6 ? AF_INET6 : AF_INET, a.baseAddress, t.baseAddress!.assumingMemoryBound(to: CChar.self), 64)
            }
            let n = strlen(t.baseAddress!.assumingMemoryBound(to: CChar.self))
            if ep.family == 6 { w.byte(UInt8(ascii: "[")) }
            w.bytes(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(t)[0..<n]), max: 48)
            if ep.family == 6 { w.byte(UInt8(ascii: "]")) }
        }
        w.byte(UInt8(ascii: ":"))
        w.decimal(UInt64(ep.port))
        c.pointee.ex.logLen = c.pointee.ex.logMark + Int32(w.len)
    }

    /// Completes the line and queues it in the fill buffer (or drops it when that is full).
    mutating func accessLogFinish(_ i: Int32, durationUs: UInt64) {
        let c = conns + Int(i)
        guard let buf = c.pointee.ex.log else { return }
        c.pointee.ex.log = nil
        defer { small.put(buf) }
        let ex = c.pointee.ex
        var tail = (UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0),
                    UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0))
        let tailLen = withUnsafeMutableBytes(of: &tail) { t -> Int in
            var w = LogWriter(base: t.baseAddress!, capacity: t.count)
            w.decimal(UInt64(ex.status))
            w.byte(0x20)
            w.flags(ex.flags)
            w.byte(0x20)
            w.decimal(ex.requestBytes &- UInt64(ex.headBytes))
            w.byte(0x20)
            w.decimal(ex.responseBytes)
            w.byte(0x20)
            w.decimal(durationUs / 1000)
            w.text(" - ")
            return w.len
        }
        let upstreamMissing = ex.logLen == ex.logMark
        let total = Int(ex.logLen) + tailLen + (upstreamMissing ? 1 : 0) + 2
        guard recorder.accessLog.fillLen + total <= AccessLog.bufferBytes, let fill = recorder.accessLog.fill else {
            stats.add(WorkerSlotField.accessLogDropped)
            return
        }
        var p = fill + recorder.accessLog.fillLen
        p.copyMemory(from: buf, byteCount: Int(ex.logSplit))
        p += Int(ex.logSplit)
        withUnsafeBytes(of: &tail) { p.copyMemory(from: $0.baseAddress!, byteCount: tailLen) }
        p += tailLen
        let second = Int(ex.logLen - ex.logSplit)
        p.copyMemory(from: buf + Int(ex.logSplit), byteCount: second)
        p += second
        if upstreamMissing { p.storeBytes(of: UInt8(ascii: "-"), as: UInt8.self); p += 1 }
        p.storeBytes(of: UInt8(ascii: "\""), as: UInt8.self)
        (p + 1).storeBytes(of: UInt8(ascii: "\n"), as: UInt8.self)
        recorder.accessLog.fillLen += total
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
        default: text("DPE")
        }
    }

    /// "2026-11-27T04:00:00.123Z" (UTC, milliseconds), from CLOCK_REALTIME ns.
    mutating func isoTime(_ ns: UInt64) {
        let ms = Int((ns / 1_000_000) % 1000)
        let secs = Int(ns / 1_000_000_000)
        var days = secs / 86_400
        let rem = secs % 86_400
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
        byte(UInt8(ascii: ".")); byte(UInt8(ascii: "0") + UInt8(ms / 100)); twoDigits(ms % 100)
        byte(UInt8(ascii: "Z"))
    }
}

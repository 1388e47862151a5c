import CSupport
#if canImport(Glibc)
import Glibc
#endif

/// The worker's pipes for splicing (socket → pipe → socket), addressed by index like the
/// connection slab. One pipe carries one direction of one connection pair and is used only by
/// the loop thread, so splice-in and splice-out on it never overlap (two concurrent splices on
/// one pipe deadlock on the pipe lock: io_uring worker threads showed it).
///
/// Ownership: `acquire` hands a pipe to a connection until `release`. A pipe released empty
/// goes back to the pool open (at most `maxIdleOpen` of them); one released with bytes still in
/// it (an aborted transfer) is closed, so no stale byte can reach the next connection.
struct PipePool {
    /// Requested capacity. 1 MiB moved 1.5× the bytes per wakeup of the 64 KiB default on
    /// loopback (perf/README.md "Splice"); it is also /proc/sys/fs/pipe-max-size's default.
    /// The kernel allocates pipe pages only while bytes sit in the pipe (spliced socket pages
    /// are referenced, not copied), so an idle big pipe costs only its slot array.
    static let pipeBytes: Int32 = 1 << 20
    /// Open idle pipes kept for reuse; more are closed (two fds each).
    static let maxIdleOpen = 256

    struct Entry {
        var readFd: Int32 = -1
        var writeFd: Int32 = -1
        /// Capacity the kernel granted (F_SETPIPE_SZ can be refused past the per-user limit).
        var capacity: Int32 = 0
        /// Bytes spliced in and not yet spliced out.
        var bytes: Int32 = 0
    }

    let entries: UnsafeMutablePointer<Entry>
    let capacity: Int32
    /// Free entries whose pipe is open (reuse first) and free entries without a pipe.
    let openFree: UnsafeMutablePointer<Int32>
    var openFreeCount: Int32 = 0
    let closedFree: UnsafeMutablePointer<Int32>
    var closedFreeCount: Int32 = 0
    /// Entries at or past this index were never used (and are not initialized): the arrays
    /// are touched only as far as pipes are really used, so the worker's RSS does not pay for
    /// the capacity up front.
    var highWater: Int32 = 0

    init(capacity: Int) {
        self.capacity = Int32(capacity)
        entries = .allocate(capacity: capacity)
        openFree = .allocate(capacity: capacity)
        closedFree = .allocate(capacity: capacity)
    }

    /// A pipe index, or -1 when none is left or the kernel refuses a new pipe (fd limit).
    mutating func acquire() -> Int32 {
        if openFreeCount > 0 {
            openFreeCount -= 1
            return openFree[Int(openFreeCount)]
        }
        let p: Int32
        if closedFreeCount > 0 {
            p = closedFree[Int(closedFreeCount - 1)]
        } else if highWater < capacity {
            p = highWater
        } else {
            return -1
        }
        var fds: (Int32, Int32) = (-1, -1)
        let rc = withUnsafeMutablePointer(to: &fds) {
            $0.withMemoryRebound(to: Int32.self, capacity: 2) { ing_pipe2($0, O_NONBLOCK | O_CLOEXEC) }
        }
        guard rc == 0 else { return -1 }
        if p == highWater {
            highWater += 1
            (entries + Int(p)).initialize(to: Entry())
        } else {
            closedFreeCount -= 1
        }
        var cap = ing_fcntl_int(fds.1, ING_F_SETPIPE_SZ, PipePool.pipeBytes)
        if cap <= 0 { cap = ing_fcntl(fds.1, ING_F_GETPIPE_SZ) }
        entries[Int(p)] = Entry(readFd: fds.0, writeFd: fds.1, capacity: cap > 0 ? cap : 65_536, bytes: 0)
        return p
    }

    mutating func release(_ p: Int32) {
        let e = entries + Int(p)
        if e.pointee.bytes == 0 && Int(openFreeCount) < PipePool.maxIdleOpen {
            openFree[Int(openFreeCount)] = p
            openFreeCount += 1
            return
        }
        close(e.pointee.readFd)
        close(e.pointee.writeFd)
        e.pointee = Entry()
        closedFree[Int(closedFreeCount)] = p
        closedFreeCount += 1
    }
}

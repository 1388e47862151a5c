import CURing
import CSupport
#if canImport(Glibc)
import Glibc
#endif

/// Why a ring could not be set up; carries the negative errno from liburing.
public struct RingError: Error, CustomStringConvertible, Sendable {
    public var operation: String
    public var errno: Int32
    public init(_ operation: String, _ errno: Int32) {
        self.operation = operation
        self.errno = errno
    }
    public var description: String { "\(operation) failed: \(String(cString: strerror(errno)))" }
}

/// One io_uring instance, owned by one thread of one process (never shared, never inherited:
/// rings are created after exec). A `~Copyable` owner of the kernel ring; the `io_uring`
/// struct itself lives on the heap so its address is stable.
public struct Ring: ~Copyable {
    // SAFETY: allocated in init, freed in deinit; the ring is only used by this value's owner.
    public let ring: UnsafeMutablePointer<io_uring>
    /// Setup flags the kernel accepted (SINGLE_ISSUER/DEFER_TASKRUN when available).
    public let setupFlags: UInt32
    // SAFETY: allocated in init, freed in deinit, like `ring`; touched only on the slow path
    // of `sqe()` and by the submit calls (Ring+Spill.swift).
    let spill: UnsafeMutablePointer<SpillQueue>

    /// Creates a ring with `entries` SQEs. Tries SINGLE_ISSUER | DEFER_TASKRUN (kernel 6.1+)
    /// and COOP_TASKRUN (5.19+), falling back flag by flag: the kernel's EINVAL is the probe.
    public init(entries: UInt32) throws(RingError) {
        ring = .allocate(capacity: 1)
        ring.initialize(to: io_uring())
        spill = .allocate(capacity: 1)
        spill.initialize(to: SpillQueue())
        let attempts: [UInt32] = [
            UInt32(IORING_SETUP_SINGLE_ISSUER) | UInt32(IORING_SETUP_DEFER_TASKRUN),
            UInt32(IORING_SETUP_COOP_TASKRUN),
            0,
        ]
        var lastError: Int32 = 0
        for flags in attempts {
            var params = io_uring_params()
            params.flags = flags | UInt32(IORING_SETUP_CQSIZE)
            params.cq_entries = entries * 4
            let rc = io_uring_queue_init_params(entries, ring, &params)
            if rc == 0 {
                setupFlags = flags
                return
            }
            lastError = -rc
        }
        ring.deallocate()
        spill.deinitialize(count: 1)
        spill.deallocate()
        throw RingError("io_uring_queue_init", lastError)
    }

    deinit {
        io_uring_queue_exit(ring)
        ring.deallocate()
        spill.pointee.entries?.deallocate()
        spill.deinitialize(count: 1)
        spill.deallocate()
    }

    /// A submission entry to fill in at once (before the next `sqe()` call); never fails.
    ///
    /// When the submission queue is full it is submitted to make room; when that submit fails
    /// (the kernel refused: -EBUSY, -EAGAIN, -ENOMEM) the entry is taken from a private spill
    /// queue instead, which the next `submit`/`submitAndWait` hands to the kernel, in order,
    /// ahead of anything queued later (Ring+Spill.swift). Callers therefore keep their rule that
    /// every operation they prepare completes exactly once; the loop sees the failure only as a
    /// count (`spilledEntries`, `submitFailures`) and a later completion. The fast path is the
    /// one liburing call it always was.
    @inline(__always)
    public func sqe() -> UnsafeMutablePointer<io_uring_sqe> {
        if let s = io_uring_get_sqe(ring) { return s }
        return sqeWhenFull()
    }

    /// Submits queued SQEs and waits for at least `waitNr` completions or `timeoutNs`,
    /// in one io_uring_enter. Returns a negative errno (-ETIME, -EINTR) or the submit count.
    @inline(__always)
    public func submitAndWait(_ waitNr: UInt32, timeoutNs: UInt64) -> Int32 {
        if spill.pointee.count != 0 { submitSpilled() }
        var ts = __kernel_timespec(tv_sec: Int64(timeoutNs / 1_000_000_000), tv_nsec: Int64(timeoutNs % 1_000_000_000))
        var cqe: UnsafeMutablePointer<io_uring_cqe>? = nil
        let rc = io_uring_submit_and_wait_timeout(ring, &cqe, waitNr, &ts, nil)
        if spill.pointee.count != 0 { moveSpilledIntoQueue() }
        return rc
    }

    /// Submits without waiting (spilled entries included).
    @inline(__always)
    public func submit() -> Int32 {
        if spill.pointee.count != 0 { submitSpilled() }
        let rc = io_uring_submit(ring)
        if spill.pointee.count != 0 { moveSpilledIntoQueue() }
        return rc
    }

    /// Copies up to `into.count` ready completions' pointers; the caller handles them and then
    /// calls `advance(by:)` with the same count (completions stay valid until then).
    @inline(__always)
    public func peekBatch(_ into: UnsafeMutablePointer<UnsafeMutablePointer<io_uring_cqe>?>, max: UInt32) -> UInt32 {
        io_uring_peek_batch_cqe(ring, into, max)
    }

    @inline(__always)
    public func advance(by n: UInt32) { io_uring_cq_advance(ring, n) }

    /// Whether the kernel supports `opcode` (io_uring probe, not uname).
    public func supports(_ opcode: io_uring_op) -> Bool {
        guard let probe = io_uring_get_probe_ring(ring) else { return false }
        defer { io_uring_free_probe(probe) }
        return io_uring_opcode_supported(probe, Int32(opcode.rawValue)) != 0
    }
}

import CURing
#if canImport(Glibc)
import Glibc
#endif

// The slow path of `Ring.sqe()`: a submission queue that is full and cannot be submitted.
//
// When can it happen? The SQ fills when one loop iteration prepares more entries than the ring
// holds (a sweep that times out thousands of connections at once); `sqe()` then submits to make
// room. That submit can fail (io_uring_enter(2)): -EBUSY while overflowed completions cannot be
// flushed to the CQ ring, -EAGAIN/-ENOMEM when the kernel cannot allocate requests. The old
// code force-unwrapped the second `io_uring_get_sqe` and crashed the worker.
//
// What can a caller do with "no SQE"? Nothing good synchronously: every caller is in the middle
// of a state transition that counts the operation as pending (`pendingOps`, `recvArmed`,
// `sendArmed`) and relies on its completion to move on; unwinding each of the ~15 call sites
// would add a branch to every one of them. So the entry is written into a private queue and
// handed to the kernel by the next submit, in order. Invariant (keeps order): the spill queue
// is non-empty only while the kernel's SQ is full, so nothing prepared later can overtake a
// spilled entry.

/// Entries prepared while the SQ was full and could not be submitted; owned by one `Ring`.
struct SpillQueue {
    /// Grown on demand (doubling); allocated only the first time anything spills.
    var entries: UnsafeMutablePointer<io_uring_sqe>?
    var count = 0
    var capacity = 0
    /// Entries that ever went through this queue (for the worker's log).
    var spilledTotal: UInt64 = 0
    /// Submits that the kernel refused, and the last refusal's errno.
    var submitFailures: UInt64 = 0
    var lastSubmitErrno: Int32 = 0
    /// Tests: the next N submits made on the slow path fail with -EBUSY without entering the
    /// kernel (there is no portable way to make a modern kernel refuse a submit on demand).
    var failSubmitsForTesting = 0
}

extension Ring {
    /// Entries that had to wait in the spill queue because a submit failed (0 normally).
    public var spilledEntries: UInt64 { spill.pointee.spilledTotal }
    /// Submits of a full queue that the kernel refused, and the errno of the last one.
    public var submitFailures: UInt64 { spill.pointee.submitFailures }
    public var lastSubmitErrno: Int32 { spill.pointee.lastSubmitErrno }

    /// Tests only: make the next `n` slow-path submits fail.
    func failSubmitsForTesting(_ n: Int) { spill.pointee.failSubmitsForTesting = n }

    @inline(never)
    func sqeWhenFull() -> UnsafeMutablePointer<io_uring_sqe> {
        if spill.pointee.count == 0 {
            // The SQ is full and nothing is spilled: submit it to make room (the normal case).
            _ = submitQueued()
            if let s = io_uring_get_sqe(ring) { return s }
        }
        // The kernel refused, or entries already wait (they stay ahead of this one).
        return appendSpilled()
    }

    /// Hands spilled entries to the kernel: fill the SQ, submit, repeat until the spill queue is
    /// empty or a submit fails (the rest stay, in order, for the next call).
    func submitSpilled() {
        while true {
            moveSpilledIntoQueue()
            if spill.pointee.count == 0 { return }
            if submitQueued() <= 0 { return }
        }
    }

    /// Moves as many spilled entries as fit into the SQ, oldest first.
    func moveSpilledIntoQueue() {
        let q = spill
        guard q.pointee.count > 0, let entries = q.pointee.entries else { return }
        var moved = 0
        while moved < q.pointee.count, let s = io_uring_get_sqe(ring) {
            s.pointee = entries[moved]
            moved += 1
        }
        guard moved > 0 else { return }
        let rest = q.pointee.count - moved
        if rest > 0 { entries.update(from: entries + moved, count: rest) }   // overlapping: handled
        q.pointee.count = rest
    }

    /// `io_uring_submit`, counting failures (and the test hook).
    private func submitQueued() -> Int32 {
        let rc: Int32
        if spill.pointee.failSubmitsForTesting > 0 {
            spill.pointee.failSubmitsForTesting -= 1
            rc = -EBUSY
        } else {
            rc = io_uring_submit(ring)
        }
        if rc < 0 {
            spill.pointee.submitFailures += 1
            spill.pointee.lastSubmitErrno = -rc
        }
        return rc
    }

    private func appendSpilled() -> UnsafeMutablePointer<io_uring_sqe> {
        let q = spill
        if q.pointee.count == q.pointee.capacity {
            // Rare and bounded by what one iteration prepares: allocating here is acceptable.
            let newCapacity = max(256, q.pointee.capacity * 2)
            let grown = UnsafeMutablePointer<io_uring_sqe>.allocate(capacity: newCapacity)
            if let old = q.pointee.entries {
                grown.initialize(from: old, count: q.pointee.count)
                old.deallocate()
            }
            q.pointee.entries = grown
            q.pointee.capacity = newCapacity
        }
        // SAFETY: count < capacity after the growth above; io_uring_sqe is a C struct (trivial).
        let s = q.pointee.entries! + q.pointee.count
        s.initialize(to: io_uring_sqe())
        q.pointee.count += 1
        q.pointee.spilledTotal += 1
        return s
    }
}

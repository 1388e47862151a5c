import CURing
#if canImport(Glibc)
import Glibc
#endif

extension Ring {
    /// A one-shot readiness poll (IORING_OP_POLL_ADD, kernel 5.1+): completes with the ready
    /// `events` mask (or POLLERR/POLLHUP), or a negative errno. The splice path uses it to wait
    /// and then splices from the loop thread: IORING_OP_SPLICE always runs on io_uring worker
    /// threads (measured on 6.18, perf/README.md "Splice").
    @inline(__always)
    public func prepPoll(fd: Int32, events: UInt32, userData: UInt64) {
        let s = sqe()
        io_uring_prep_poll_add(s, fd, events)
        s.pointee.user_data = userData
    }
}

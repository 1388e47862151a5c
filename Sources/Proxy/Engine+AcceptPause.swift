import CSupport
#if canImport(Glibc)
import Glibc
#endif

// Accepting when the worker is out of descriptors (or the kernel out of memory).
//
// A multishot accept that fails ends (its CQE has no IORING_CQE_F_MORE). At EMFILE the kernel
// fails it before looking at the queue (it allocates the descriptor first), so re-arming at once
// fails again at once: the worker spun at 100 % CPU doing nothing else. Instead the listener
// stays unarmed for `pauseMs`, as nginx disables accept events for accept_mutex_delay (500 ms);
// connections already open keep being served meanwhile, and closing them is what frees the
// descriptors the next attempt needs. Connections that arrive meanwhile wait in the listen
// backlog: none is reset.

/// The pause state of one engine; touched only by the accept completion and the loop's timer.
public struct AcceptPause {
    /// 250 ms: a retry costs one failed accept, so a few a second are free, and a client whose
    /// connection waits in the backlog is served within a quarter second of a descriptor being
    /// freed.
    public static let pauseMs: UInt64 = 250

    /// When to re-arm (monotonic ms); 0 = not paused.
    var resumeAtMs: UInt64 = 0
    /// Listener indices whose accept ended with such an error, re-armed on resume. Allocated
    /// only the first time accepting pauses.
    var unarmed: [Int32] = []
    /// Accepts that failed this way, ever, and the errno of the last one.
    var failures: UInt64 = 0
    var lastErrno: Int32 = 0

    /// Whether an accept result (a negative errno) means "no resources": pause, do not re-arm.
    @inline(__always)
    static func pauses(_ result: Int32) -> Bool {
        result == -EMFILE || result == -ENFILE || result == -ENOBUFS || result == -ENOMEM
    }
}

extension ProxyEngine {
    /// Listener `l`'s accept ended with `errno` (see `AcceptPause.pauses`): leave it unarmed
    /// until the pause ends.
    mutating func pauseAccepting(listener l: Int, errno: Int32) {
        acceptPause.failures += 1
        acceptPause.lastErrno = errno
        if acceptPause.resumeAtMs == 0 { acceptPause.resumeAtMs = nowMs + AcceptPause.pauseMs }
        acceptPause.unarmed.append(Int32(l))
    }

    /// Re-arms the paused listeners once the pause is over; the worker loop calls it every
    /// iteration (a compare when not paused). Never runs a callback synchronously.
    public mutating func resumeAcceptingIfDue(nowNs: UInt64) {
        guard acceptPause.resumeAtMs != 0, nowNs / 1_000_000 >= acceptPause.resumeAtMs else { return }
        acceptPause.resumeAtMs = 0
        for l in acceptPause.unarmed where !draining && listenerFds[Int(l)] >= 0 {
            ring.prepMultishotAccept(fd: listenerFds[Int(l)], userData: packUserData(.accept, l, 0))
        }
        acceptPause.unarmed.removeAll(keepingCapacity: true)
    }

    /// When accepting resumes (monotonic ns), or nil when it is not paused: the worker loop
    /// wakes up by then instead of its usual one-second tick.
    public var acceptResumeAtNs: UInt64? {
        acceptPause.resumeAtMs == 0 ? nil : acceptPause.resumeAtMs * 1_000_000
    }
    /// Accepts that failed for lack of descriptors or memory, ever; the errno of the last one.
    public var acceptResourceFailures: UInt64 { acceptPause.failures }
    public var lastAcceptErrno: Int32 { acceptPause.lastErrno }
}

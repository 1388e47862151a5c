#if canImport(Glibc)
import Glibc
#endif

/// What the supervisor knows about the process in one shared-memory worker slot.
///
/// Roles during a listener-port change ("roll"):
///
///     serving ──(new set accepting)──► retiring ──(exit)──► slot free
///     incoming ──(every incoming accepting)──► serving
///
/// Without a port change every record is `serving`. A serving or incoming worker that dies is
/// replaced in the same slot on the same sockets; a retiring one is not.
struct WorkerRecord {
    enum Role: String {
        case serving
        case incoming
        case retiring
    }

    /// Shared-memory slot (`ingressd worker --index`).
    let slot: Int
    /// Logical worker index 0..<workers: which socket of every port it gets.
    let logical: Int
    /// The listener ports its process was started with.
    let ports: [UInt16]
    var role: Role
    /// 0 while no process runs (waiting for a back-off, or not started yet).
    var pid: pid_t = 0
    var spawnedNs: UInt64 = 0
    /// When a replacement is due after a back-off; nil = none scheduled.
    var respawnAtNs: UInt64?
    /// When SIGTERM was sent (retiring, draining); SIGKILL follows after the drain timeout.
    var termSentNs: UInt64?
    /// SIGKILL already sent (watchdog or drain timeout): do not repeat it or its log line.
    var killSent = false

    init(slot: Int, logical: Int, ports: [UInt16], role: Role) {
        self.slot = slot
        self.logical = logical
        self.ports = ports
        self.role = role
    }
}

/// "exited with status 3" / "killed by signal 9 (Killed)" from a waitpid status.
func describeWaitStatus(_ status: Int32) -> String {
    let sig = status & 0x7f
    if sig == 0 { return "exited with status \((status >> 8) & 0xff)" }
    let name = strsignal(sig).map { String(cString: $0) } ?? "?"
    return "killed by signal \(sig) (\(name))\(status & 0x80 != 0 ? ", core dumped" : "")"
}

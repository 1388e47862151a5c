#if canImport(Glibc)
import Glibc
#endif
import CSupport

/// The supervisor's signals as a pollable descriptor (signalfd(2)). The signals are blocked
/// with sigprocmask before any worker is spawned, so none is lost between start-up and the
/// first poll; workers get a clean mask from the spawn attributes (WorkerSpawner).
struct SignalSource {
    let fd: Int32

    static let handled: [Int32] = [SIGHUP, SIGTERM, SIGINT, SIGCHLD, SIGUSR1]

    private typealias SignalFd = @convention(c) (Int32, UnsafePointer<sigset_t>?, Int32) -> Int32

    /// Blocks `handled` and opens the signalfd. Also ignores SIGPIPE (the admin endpoint writes
    /// to sockets peers may have closed; MSG_NOSIGNAL covers send, this covers the rest).
    static func open() -> Result<SignalSource, StartupError> {
        var set = sigset_t()
        sigemptyset(&set)
        for s in handled { sigaddset(&set, s) }
        guard sigprocmask(SIG_BLOCK, &set, nil) == 0 else {
            return .failure(StartupError(description: "sigprocmask failed: \(errnoText(ing_errno()))"))
        }
        signal(SIGPIPE, SIG_IGN)
        // signalfd is not in Swift's Glibc module map; the symbol is in every glibc since 2.8.
        guard let sym = dlsym(nil, "signalfd") else {
            return .failure(StartupError(description: "signalfd is unavailable in this C library"))
        }
        let signalfd = unsafeBitCast(sym, to: SignalFd.self)
        let fd = signalfd(-1, &set, O_NONBLOCK | O_CLOEXEC)   // SFD_NONBLOCK | SFD_CLOEXEC
        guard fd >= 0 else {
            return .failure(StartupError(description: "signalfd failed: \(errnoText(ing_errno()))"))
        }
        return .success(SignalSource(fd: fd))
    }

    /// Every pending signal number (coalesced by the kernel: one SIGCHLD may stand for many
    /// children, hence the waitpid loop in the caller).
    func drain() -> [Int32] {
        // struct signalfd_siginfo is 128 bytes; ssi_signo is its first UInt32.
        var buf = [UInt8](repeating: 0, count: 128 * 16)
        var signals: [Int32] = []
        while true {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            var off = 0
            while off + 128 <= n {
                signals.append(Int32(bitPattern: buf.withUnsafeBytes { $0.load(fromByteOffset: off, as: UInt32.self) }))
                off += 128
            }
        }
        return signals
    }
}

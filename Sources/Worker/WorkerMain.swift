// Entry point of a worker process (`ingressd worker`, hidden; started by the supervisor).
//
// Contract with the supervisor (DESIGN.md §1):
//  * the shared-memory region fd and the listening sockets are inherited at the descriptor
//    numbers given on the command line (supervisor convention: shm at 3, listeners from 4);
//  * the worker creates its own io_uring ring, attaches the region, waits for a published
//    table, arms accept on every listener and sets its slot state to `.accepting`;
//  * SIGTERM: stop accepting, finish in-flight requests, close idle connections, exit 0
//    (the supervisor SIGKILLs it after the drain timeout);
//  * it asks the kernel for SIGKILL if the supervisor dies (PR_SET_PDEATHSIG).

/// One inherited listening socket.
public struct WorkerListener: Sendable, Equatable {
    public var fd: Int32
    /// The Gateway port it serves (the route table is keyed by it).
    public var port: UInt16
    public init(fd: Int32, port: UInt16) {
        self.fd = fd
        self.port = port
    }
}

public struct WorkerOptions: Sendable {
    /// Index of this worker's slot in the shared region.
    public var index: Int
    public var shmFd: Int32
    public var listeners: [WorkerListener]
    /// Upper bound for draining on SIGTERM.
    public var drainTimeoutMs: UInt64
    /// 0 = error, 1 = warning, 2 = info, 3 = debug.
    public var logLevel: Int

    public init(index: Int, shmFd: Int32, listeners: [WorkerListener], drainTimeoutMs: UInt64 = 30_000, logLevel: Int = 2) {
        self.index = index
        self.shmFd = shmFd
        self.listeners = listeners
        self.drainTimeoutMs = drainTimeoutMs
        self.logLevel = logLevel
    }
}

public enum WorkerMain {
    /// Runs the worker until it has drained; returns the process exit code
    /// (0 after a drain, 3 when it cannot start: region attach or io_uring setup failed).
    public static func run(_ options: WorkerOptions) -> Int32 {
        // Replaced by the io_uring event loop.
        return 3
    }
}

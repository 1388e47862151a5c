#if canImport(Glibc)
import Glibc
#endif
import CSupport

/// Log levels of `--log-level`, most severe first. The raw value is what `WorkerOptions.logLevel`
/// expects (0 = error … 3 = debug).
public enum LogLevel: Int, Sendable, Comparable, CaseIterable {
    case error = 0
    case warning = 1
    case info = 2
    case debug = 3

    public static func < (a: LogLevel, b: LogLevel) -> Bool { a.rawValue < b.rawValue }

    /// Accepts `error`, `warn`/`warning`, `info`, `debug` (any case) or the digits 0–3.
    public init?(parsing text: String) {
        switch text.lowercased() {
        case "error", "0": self = .error
        case "warn", "warning", "1": self = .warning
        case "info", "2": self = .info
        case "debug", "3": self = .debug
        default: return nil
        }
    }

    public var name: String {
        switch self {
        case .error: "error"
        case .warning: "warning"
        case .info: "info"
        case .debug: "debug"
        }
    }
}

/// One line per event on stderr: `ingressd[PID]: LEVEL: message`. No timestamp: under systemd
/// the journal adds one, and on a terminal the order is what matters.
///
/// The supervisor is single-threaded (DESIGN.md §1), so the level is a plain global.
public enum Log {
    nonisolated(unsafe) public static var level: LogLevel = .info

    public static func error(_ message: @autoclosure () -> String) { emit(.error, message) }
    public static func warning(_ message: @autoclosure () -> String) { emit(.warning, message) }
    public static func info(_ message: @autoclosure () -> String) { emit(.info, message) }
    public static func debug(_ message: @autoclosure () -> String) { emit(.debug, message) }

    static func emit(_ l: LogLevel, _ message: () -> String) {
        guard l <= level else { return }
        writeLine("ingressd[\(getpid())]: \(l.name): \(message())")
    }

    /// Writes one whole line to stderr with a single write(2) (lines of concurrent workers do
    /// not interleave mid-line as long as they stay under PIPE_BUF).
    public static func writeLine(_ line: String) {
        var bytes = Array(line.utf8)
        bytes.append(0x0A)
        bytes.withUnsafeBytes { raw in
            var off = 0
            while off < raw.count {
                let n = write(2, raw.baseAddress! + off, raw.count - off)
                if n < 0 { if ing_errno() == EINTR { continue }; return }
                off += n
            }
        }
    }
}

/// CLOCK_MONOTONIC in nanoseconds: the clock of worker heartbeats (`WorkerSlot.heartbeatNs`).
@inline(__always) func monotonicNs() -> UInt64 { ing_monotonic_ns() }

/// `strerror` as a Swift string.
func errnoText(_ code: Int32) -> String { String(cString: strerror(code)) }

/// Crash-loop back-off for one worker index (DESIGN.md §6: replaced, "with back-off on crash
/// loops").
///
/// A worker that dies is replaced at once, unless it is looping: after `threshold` deaths within
/// `windowNs` the replacement waits `initialDelayNs`, and every further early death doubles the
/// wait up to `maxDelayNs`. A worker that lived longer than the window ends the loop (the
/// history is forgotten). Pure value: the caller passes the clock, which keeps it testable.
public struct CrashLoopGuard: Sendable, Equatable {
    public static let windowNs: UInt64 = 10_000_000_000
    public static let threshold = 3
    public static let initialDelayNs: UInt64 = 1_000_000_000
    /// 30 s: long enough that a broken binary or config does not burn a core, short enough
    /// that a transient cause (fd exhaustion, memory pressure) heals without an operator.
    public static let maxDelayNs: UInt64 = 30_000_000_000

    /// Death times within the window, oldest first.
    public private(set) var deathsNs: [UInt64] = []
    /// Current back-off; 0 = not looping.
    public private(set) var delayNs: UInt64 = 0

    public init() {}

    /// Records a death at `nowNs` of a process that ran `livedNs`; returns how long to wait
    /// before the replacement (0 = now).
    public mutating func recordDeath(nowNs: UInt64, livedNs: UInt64) -> UInt64 {
        if livedNs >= Self.windowNs {
            deathsNs.removeAll()
            delayNs = 0
        }
        deathsNs.append(nowNs)
        deathsNs.removeAll { nowNs &- $0 > Self.windowNs }
        if delayNs > 0 {
            delayNs = min(delayNs * 2, Self.maxDelayNs)
        } else if deathsNs.count >= Self.threshold {
            delayNs = Self.initialDelayNs
        }
        return delayNs
    }
}

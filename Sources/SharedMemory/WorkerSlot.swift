import CSupport

/// One worker's page in the region. Written by that worker alone (except `pid`, which the
/// supervisor sets at spawn and clears when it reaps the worker); read by the supervisor.
public struct WorkerSlot: @unchecked Sendable {
    // SAFETY: points into the shared mapping, which is never unmapped.
    public let base: UnsafeMutableRawPointer

    @inlinable public init(base: UnsafeMutableRawPointer) { self.base = base }

    public var pid: Int32 {
        get { Int32(bitPattern: ing_load_acquire_u32(base + WorkerSlotField.pid)) }
        nonmutating set { ing_store_release_u32(base + WorkerSlotField.pid, UInt32(bitPattern: newValue)) }
    }

    public var state: WorkerState {
        get { WorkerState(rawValue: ing_load_acquire_u32(base + WorkerSlotField.state)) ?? .empty }
        nonmutating set { ing_store_release_u32(base + WorkerSlotField.state, newValue.rawValue) }
    }

    public var heartbeatNs: UInt64 {
        @inline(__always) get { ing_load_relaxed_u64(base + WorkerSlotField.heartbeatNs) }
        @inline(__always) nonmutating set { ing_store_relaxed_u64(base + WorkerSlotField.heartbeatNs, newValue) }
    }

    public var generationInUse: UInt64 {
        get { ing_load_seqcst_u64(base + WorkerSlotField.generationInUse) }
        nonmutating set { ing_store_seqcst_u64(base + WorkerSlotField.generationInUse, newValue) }
    }

    public var startedNs: UInt64 {
        get { ing_load_relaxed_u64(base + WorkerSlotField.startedNs) }
        nonmutating set { ing_store_relaxed_u64(base + WorkerSlotField.startedNs, newValue) }
    }

    /// Reads a counter at a `WorkerSlotField` offset.
    @inline(__always)
    public func counter(_ offset: Int) -> UInt64 { ing_load_relaxed_u64(base + offset) }

    /// Adds to a counter. Single writer (the owning worker): a plain load + relaxed store, no
    /// locked instruction on the request path.
    @inline(__always)
    public func add(_ offset: Int, _ delta: UInt64 = 1) {
        let p = base + offset
        ing_store_relaxed_u64(p, ing_load_relaxed_u64(p) &+ delta)
    }

    /// Sets a gauge (still single-writer).
    @inline(__always)
    public func set(_ offset: Int, _ value: UInt64) {
        ing_store_relaxed_u64(base + offset, value)
    }

    /// Supervisor: clears the slot for a new worker, keeping nothing of the old one but
    /// (optionally) its counters; counters are kept so totals survive restarts.
    public func reset(pid: Int32) {
        ing_store_seqcst_u64(base + WorkerSlotField.generationInUse, 0)
        heartbeatNs = 0
        state = .starting
        self.pid = pid
    }
}

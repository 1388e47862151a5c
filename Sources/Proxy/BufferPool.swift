#if canImport(Glibc)
import Glibc
#endif

/// A per-worker free list of fixed-size buffers (≈1 ns per get/put against 24–58 ns for
/// malloc, STYLE.md). Buffers are allocated on first use and reused; steady-state request
/// handling allocates nothing. Buffers that stayed in the list through a whole trim interval
/// are freed (`trim`, Engine.swift's `trimBuffers`): a burst of large responses does not
/// leave its buffers resident for the life of the worker.
struct BufferPool {
    let size: Int
    private var free: UnsafeMutablePointer<UnsafeMutableRawPointer>
    private var freeCount: Int
    private var freeCapacity: Int
    /// The fewest buffers the list held since the last trim: that many were not needed.
    private var lowWater = 0

    init(size: Int, capacity: Int = 1024) {
        self.size = size
        free = .allocate(capacity: capacity)
        freeCount = 0
        freeCapacity = capacity
    }

    @inline(__always)
    mutating func get() -> UnsafeMutableRawPointer {
        if freeCount > 0 {
            freeCount -= 1
            if freeCount < lowWater { lowWater = freeCount }
            return free[freeCount]
        }
        lowWater = 0
        return UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 64)
    }

    @inline(__always)
    mutating func put(_ p: UnsafeMutableRawPointer) {
        if freeCount == freeCapacity {
            // Past the high-water mark: give memory back rather than grow the list.
            p.deallocate()
            return
        }
        free[freeCount] = p
        freeCount += 1
    }

    /// Frees the buffers that were not taken since the last trim (the bottom of the list:
    /// the longest unused), keeping `keep`. Returns how many were freed.
    mutating func trim(keep: Int) -> Int {
        let n = min(lowWater, freeCount) - keep
        lowWater = freeCount
        guard n > 0 else { return 0 }
        for k in 0..<n { free[k].deallocate() }
        (free).update(from: free + n, count: freeCount - n)
        freeCount -= n
        lowWater = freeCount
        return n
    }
}

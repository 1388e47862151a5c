import CSupport

// Publishing route tables (DESIGN.md §2).
//
// Generation G lives in slot G & 1. The supervisor writes G+1 into the slot that held G-1 only
// when no worker's claim (`generationInUse`) is G-1 any more; a worker claims a generation
// *before* it copies the image and re-checks the published word afterwards (seq-cst store then
// load), so a slot is never rewritten under a reader. Workers copy the image into private
// memory when they switch, so a claim lasts only for the copy; in-flight requests keep the
// private copy they started with.

public enum PublishResult: Equatable, Sendable {
    case published(generation: UInt64)
    /// A worker still claims the slot's previous generation; try again shortly.
    case busy(workerIndex: Int)
}

extension SharedRegion {
    /// Supervisor: writes `image` as the next generation and publishes it. Throws when the image
    /// does not fit a slot (a reload error, never a truncated table). `liveWorkers` are the
    /// indices of workers whose claims must be respected.
    public func publish(image: [UInt8], liveWorkers: [Int]) throws(SharedMemoryError) -> PublishResult {
        guard image.count <= maxImageBytes else {
            throw SharedMemoryError("route table image of \(image.count) bytes does not fit the shared-memory slot (\(maxImageBytes) bytes); raise the slot size")
        }
        let current = publishedGeneration
        let next = current + 1
        if current >= 1 {
            let previous = current - 1   // the generation in the slot we are about to reuse
            if previous >= 1 {
                for w in liveWorkers where workerSlot(w).generationInUse == previous {
                    return .busy(workerIndex: w)
                }
            }
        }
        let slot = tableSlot(Int(next & 1))
        slot.storeBytes(of: next, toByteOffset: TableSlotField.generation, as: UInt64.self)
        slot.storeBytes(of: UInt64(image.count), toByteOffset: TableSlotField.imageBytes, as: UInt64.self)
        image.withUnsafeBytes { src in
            (slot + TableSlotField.image).copyMemory(from: src.baseAddress!, byteCount: src.count)
        }
        ing_store_seqcst_u64(base + RegionHeader.publishedGeneration, next)
        return .published(generation: next)
    }

    /// Worker: if a generation newer than `current` is published, claims it in `slot`, copies
    /// its image into `destination` (grown when too small) and returns the new generation and
    /// byte count; nil when nothing new is published. Called once per loop iteration: the
    /// common path is one acquire load and a compare.
    @inline(__always)
    public func acquireIfNewer(than current: UInt64, slot: WorkerSlot,
                               into destination: inout UnsafeMutableRawBufferPointer) -> (generation: UInt64, byteCount: Int)? {
        let published = publishedGeneration
        if published == current || published == 0 { return nil }
        return acquireSlow(slot: slot, into: &destination)
    }

    @inline(never)
    func acquireSlow(slot: WorkerSlot, into destination: inout UnsafeMutableRawBufferPointer) -> (generation: UInt64, byteCount: Int)? {
        while true {
            let g = ing_load_seqcst_u64(base + RegionHeader.publishedGeneration)
            ing_store_seqcst_u64(slot.base + WorkerSlotField.generationInUse, g)
            guard ing_load_seqcst_u64(base + RegionHeader.publishedGeneration) == g else { continue }
            let s = tableSlot(Int(g & 1))
            guard s.load(fromByteOffset: TableSlotField.generation, as: UInt64.self) == g else { continue }
            let n = Int(s.load(fromByteOffset: TableSlotField.imageBytes, as: UInt64.self))
            guard n <= maxImageBytes else { return nil }
            if destination.count < n {
                destination.deallocate()
                destination = .allocate(byteCount: max(n, 4096), alignment: 16)
            }
            destination.baseAddress!.copyMemory(from: s + TableSlotField.image, byteCount: n)
            return (g, n)
        }
    }
}

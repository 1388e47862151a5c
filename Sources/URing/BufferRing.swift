import CURing
#if canImport(Glibc)
import Glibc
#endif

/// A provided-buffer ring (kernel 5.19+): `count` buffers of `size` bytes that the kernel picks
/// from for receives marked IOSQE_BUFFER_SELECT, so an idle connection holds no buffer.
///
/// Lives for the whole worker process (never unregistered), so it is a plain copyable view.
/// Ownership: a buffer id delivered in a CQE belongs to the caller until it calls `recycle`;
/// it must be recycled exactly once. Buffers are handed back in any order.
public struct BufferRing {
    public let groupID: UInt16
    public let count: Int
    public let size: Int
    /// The ring of buffer descriptors shared with the kernel (page-aligned mmap).
    let ringMemory: UnsafeMutableRawPointer
    /// All buffers, contiguous: buffer `bid` starts at `storage + bid * size`.
    public let storage: UnsafeMutableRawPointer
    let mask: Int32

    /// `count` must be a power of two ≤ 32768.
    public init(ring: borrowing Ring, groupID: UInt16, count: Int, size: Int) throws(RingError) {
        precondition(count > 0 && count & (count - 1) == 0 && count <= 32768, "buffer ring count must be a power of two")
        self.groupID = groupID
        self.count = count
        self.size = size
        self.mask = Int32(count - 1)
        let ringBytes = count * 16   // sizeof(struct io_uring_buf)
        guard let mem = mmap(nil, ringBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), mem != MAP_FAILED else {
            throw RingError("mmap of the buffer ring", Glibc.errno)
        }
        ringMemory = mem
        guard let store = mmap(nil, count * size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), store != MAP_FAILED else {
            throw RingError("mmap of receive buffers", Glibc.errno)
        }
        storage = store
        ing_buf_ring_init(mem)
        let rc = ing_register_buf_ring(ring.ring, mem, UInt32(count), groupID)
        guard rc == 0 else { throw RingError("io_uring_register_buf_ring", -rc) }
        for bid in 0..<count {
            ing_buf_ring_add(mem, store + bid * size, UInt32(size), UInt16(bid), mask, Int32(bid))
        }
        ing_buf_ring_advance(mem, Int32(count))
    }

    /// Address of buffer `bid`.
    @inline(__always)
    public func buffer(_ bid: UInt16) -> UnsafeMutableRawPointer { storage + Int(bid) * size }

    /// Gives buffer `bid` back to the kernel.
    @inline(__always)
    public func recycle(_ bid: UInt16) {
        ing_buf_ring_add(ringMemory, storage + Int(bid) * size, UInt32(size), bid, mask, 0)
        ing_buf_ring_advance(ringMemory, 1)
    }
}

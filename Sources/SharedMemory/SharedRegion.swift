import CSupport
#if canImport(Glibc)
import Glibc
#endif

public struct SharedMemoryError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// A mapping of the shared region. A plain view: copying it copies the pointer, not the memory.
/// The mapping lives until the process exits (the supervisor and workers never unmap it).
public struct SharedRegion: @unchecked Sendable {
    /// "INGRSHM1" little-endian.
    public static let magic: UInt64 = 0x314D_4853_5247_4E49
    /// Bumped whenever an offset or meaning in Layout.swift changes.
    public static let layoutVersion: UInt32 = 5
    static let pageBytes = 4096

    // SAFETY: `base` points at a MAP_SHARED mapping of `byteCount` bytes that stays mapped for
    // the life of the process; every access below is bounds-checked against the header.
    public let base: UnsafeMutableRawPointer
    public let byteCount: Int
    /// The memfd backing the region (inherited by workers).
    public let fd: Int32

    // MARK: creation and attach

    /// Creates the region (supervisor, before any worker starts). `tableSlotBytes` bounds the
    /// largest route table image; the memfd is sparse so a large bound costs nothing.
    public static func create(maxWorkers: Int, tableSlotBytes: Int = 64 << 20,
                              healthCapacity: Int = EndpointStats.capacity) throws(SharedMemoryError) -> SharedRegion {
        let slotBytes = roundUp(tableSlotBytes, pageBytes)
        let workerSlots = WorkerSlotLayout.bytes   // stats tables: StatsLayout.swift
        let workersOffset = pageBytes
        let healthOffset = workersOffset + maxWorkers * workerSlots
        let table0 = roundUp(healthOffset + healthCapacity * 8, pageBytes)
        let table1 = table0 + slotBytes
        let total = table1 + slotBytes

        let fd = ing_memfd_create("ingressd-shm", 0)
        guard fd >= 0 else { throw SharedMemoryError("memfd_create failed: errno \(ing_errno())") }
        guard ftruncate(fd, off_t(total)) == 0 else {
            close(fd)
            throw SharedMemoryError("ftruncate of the shared region to \(total) bytes failed: errno \(ing_errno())")
        }
        let region = try map(fd: fd, byteCount: total)
        let b = region.base
        b.storeBytes(of: magic, toByteOffset: RegionHeader.magic, as: UInt64.self)
        b.storeBytes(of: layoutVersion, toByteOffset: RegionHeader.layoutVersion, as: UInt32.self)
        b.storeBytes(of: UInt32(maxWorkers), toByteOffset: RegionHeader.maxWorkers, as: UInt32.self)
        b.storeBytes(of: UInt64(total), toByteOffset: RegionHeader.regionBytes, as: UInt64.self)
        b.storeBytes(of: UInt64(slotBytes), toByteOffset: RegionHeader.tableSlotBytes, as: UInt64.self)
        b.storeBytes(of: UInt64(table0), toByteOffset: RegionHeader.tableSlotOffset0, as: UInt64.self)
        b.storeBytes(of: UInt64(table1), toByteOffset: RegionHeader.tableSlotOffset1, as: UInt64.self)
        b.storeBytes(of: UInt64(workersOffset), toByteOffset: RegionHeader.workerSlotsOffset, as: UInt64.self)
        b.storeBytes(of: UInt64(workerSlots), toByteOffset: RegionHeader.workerSlotBytes, as: UInt64.self)
        b.storeBytes(of: UInt64(healthOffset), toByteOffset: RegionHeader.healthOffset, as: UInt64.self)
        b.storeBytes(of: UInt64(healthCapacity), toByteOffset: RegionHeader.healthCapacity, as: UInt64.self)
        return region
    }

    /// Maps an inherited region fd (worker) and checks magic, layout version and size.
    public static func attach(fd: Int32) throws(SharedMemoryError) -> SharedRegion {
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw SharedMemoryError("fstat of shared-memory fd \(fd) failed: errno \(ing_errno())") }
        let size = Int(st.st_size)
        guard size >= pageBytes else { throw SharedMemoryError("shared region fd \(fd) is too small (\(size) bytes)") }
        let region = try map(fd: fd, byteCount: size)
        let b = region.base
        guard b.load(fromByteOffset: RegionHeader.magic, as: UInt64.self) == magic else {
            throw SharedMemoryError("shared region fd \(fd): bad magic")
        }
        let version = b.load(fromByteOffset: RegionHeader.layoutVersion, as: UInt32.self)
        guard version == layoutVersion else {
            throw SharedMemoryError("shared region layout version \(version), this binary expects \(layoutVersion)")
        }
        guard b.load(fromByteOffset: RegionHeader.regionBytes, as: UInt64.self) == UInt64(size) else {
            throw SharedMemoryError("shared region size does not match its header")
        }
        return region
    }

    private static func map(fd: Int32, byteCount: Int) throws(SharedMemoryError) -> SharedRegion {
        guard let p = mmap(nil, byteCount, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), p != MAP_FAILED else {
            throw SharedMemoryError("mmap of \(byteCount) bytes failed: errno \(ing_errno())")
        }
        return SharedRegion(base: p, byteCount: byteCount, fd: fd)
    }

    private static func roundUp(_ v: Int, _ to: Int) -> Int { (v + to - 1) / to * to }

    // MARK: header accessors

    @inline(__always) func u64(_ off: Int) -> UInt64 { base.load(fromByteOffset: off, as: UInt64.self) }

    public var maxWorkers: Int { Int(base.load(fromByteOffset: RegionHeader.maxWorkers, as: UInt32.self)) }
    public var tableSlotBytes: Int { Int(u64(RegionHeader.tableSlotBytes)) }
    /// Largest image that fits a slot.
    public var maxImageBytes: Int { tableSlotBytes - TableSlotField.image }
    public var healthCapacity: Int { Int(u64(RegionHeader.healthCapacity)) }

    /// The generation currently published (acquire). 0 before the first publish.
    @inline(__always)
    public var publishedGeneration: UInt64 {
        ing_load_acquire_u64(base + RegionHeader.publishedGeneration)
    }

    /// Supervisor's drain flag.
    /// The TLS session-ticket keys (RegionHeader.ticketKeys).
    public var ticketKeys: UnsafeMutableRawPointer { base + RegionHeader.ticketKeys }

    public var draining: Bool {
        get { ing_load_acquire_u32(base + RegionHeader.draining) != 0 }
        nonmutating set { ing_store_release_u32(base + RegionHeader.draining, newValue ? 1 : 0) }
    }

    func tableSlot(_ index: Int) -> UnsafeMutableRawPointer {
        base + Int(u64(index == 0 ? RegionHeader.tableSlotOffset0 : RegionHeader.tableSlotOffset1))
    }

    public func workerSlot(_ index: Int) -> WorkerSlot {
        precondition(index >= 0 && index < maxWorkers, "worker index \(index) outside the shared region")
        let off = Int(u64(RegionHeader.workerSlotsOffset)) + index * Int(u64(RegionHeader.workerSlotBytes))
        return WorkerSlot(base: base + off)
    }

    /// Health word of an endpoint id (DESIGN.md §2); 0 = healthy. Ids beyond the capacity read
    /// as healthy.
    @inline(__always)
    public func endpointHealth(_ id: UInt32) -> UInt64 {
        guard Int(id) < healthCapacity else { return 0 }
        return ing_load_relaxed_u64(base + Int(u64(RegionHeader.healthOffset)) + Int(id) * 8)
    }

    public func setEndpointHealth(_ id: UInt32, _ value: UInt64) {
        guard Int(id) < healthCapacity else { return }
        ing_store_relaxed_u64(base + Int(u64(RegionHeader.healthOffset)) + Int(id) * 8, value)
    }
}

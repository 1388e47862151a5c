import CSupport
import XCTest
@testable import SharedMemory

/// Circuit-breaker counts (StatsLayout.swift "circuit breakers"): records claimed by name hash in
/// the header, each worker's share in its own slot, summed over slots, gone when a slot is zeroed.
final class BreakerLayoutTests: XCTestCase {
    func testSharesFitTheSlotAndTheKeysTheHeader() {
        XCTAssertLessThanOrEqual(WorkerSlotLayout.breakerOffset + BreakerLayout.capacity * BreakerLayout.recordBytes,
                                 WorkerSlotLayout.bytes)
        XCTAssertLessThanOrEqual(RegionHeader.breakerKeys + BreakerLayout.capacity * 8, 4096)
        XCTAssertGreaterThan(RegionHeader.breakerKeys, RegionHeader.draining)
        XCTAssertLessThanOrEqual(BreakerLayout.retries + 8, BreakerLayout.recordBytes)
    }

    func testCountsAreSummedOverWorkersAndADeadWorkersShareIsZeroed() throws {
        let region = try SharedRegion.create(maxWorkers: 3, tableSlotBytes: 1 << 16)
        let a = region.claimBreaker(key: StatKey.hash("outbound|80||a"))
        let b = region.claimBreaker(key: StatKey.hash("outbound|80||b"))
        XCTAssertGreaterThanOrEqual(a, 0)
        XCTAssertNotEqual(a, b)
        XCTAssertEqual(region.claimBreaker(key: StatKey.hash("outbound|80||a")), a, "same name, same record")
        XCTAssertEqual(region.findBreaker(key: StatKey.hash("outbound|80||b")), b)
        XCTAssertEqual(region.findBreaker(key: StatKey.hash("outbound|80||never")), -1)
        for w in 0..<3 { statAdd(region.workerSlot(w).breakerShare(a), BreakerLayout.connections, UInt64(w + 1)) }
        statAdd(region.workerSlot(1).breakerShare(b), BreakerLayout.pending, 4)
        XCTAssertEqual(region.breakerCount(a, BreakerLayout.connections), 6)
        XCTAssertEqual(region.breakerCount(b, BreakerLayout.pending), 4)
        XCTAssertEqual(region.breakerCount(b, BreakerLayout.connections), 0)
        // Worker 1 dies: the supervisor zeroes its slot when it reaps it.
        region.workerSlot(1).zeroStats()
        XCTAssertEqual(region.breakerCount(a, BreakerLayout.connections), 4)
        XCTAssertEqual(region.breakerCount(b, BreakerLayout.pending), 0)
    }

    func testAFullKeyTableRefusesNewNames() throws {
        let region = try SharedRegion.create(maxWorkers: 1, tableSlotBytes: 1 << 16)
        var records = Set<Int>()
        for k in 0..<BreakerLayout.capacity { records.insert(region.claimBreaker(key: StatKey.hash("c\(k)"))) }
        XCTAssertEqual(records.count, BreakerLayout.capacity)
        XCTAssertEqual(region.claimBreaker(key: StatKey.hash("one too many")), -1)
    }
}

import XCTest
@testable import SharedMemory

/// The cluster stats record's fields fit their record and the slot, and the TCP close slots
/// map every response flag to its own counter.
final class StatsLayoutTests: XCTestCase {
    func testClusterRecordFieldsFitTheRecordAndTheSlot() {
        XCTAssertLessThanOrEqual(ClusterStats.end, ClusterStats.recordBytes)
        XCTAssertEqual(ClusterStats.recordBytes % 8, 0)
        XCTAssertGreaterThan(ClusterStats.tcpOpened, ClusterStats.responseBytesSum)
        XCTAssertLessThanOrEqual(WorkerSlotLayout.endpointStatsOffset + EndpointStats.capacity * EndpointStats.recordBytes,
                                 WorkerSlotLayout.bytes)
    }

    func testTCPClosedSlotPerFlag() {
        XCTAssertEqual(ClusterStats.tcpClosedSlot(0), 0)
        XCTAssertEqual(ResponseFlags.names.count, ResponseFlags.count)
        var seen = Set<Int>()
        for k in 0..<ResponseFlags.count {
            let slot = ClusterStats.tcpClosedSlot(1 << UInt16(k))
            XCTAssertEqual(slot, 1 + k)
            XCTAssertLessThan(slot, ClusterStats.tcpClosedSlots)
            seen.insert(slot)
        }
        XCTAssertEqual(seen.count, ResponseFlags.count)
    }
}

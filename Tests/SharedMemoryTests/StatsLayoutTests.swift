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

    func testGRPCHistogramsFollowTheOtherFieldsWithoutOverlap() {
        XCTAssertGreaterThanOrEqual(ClusterStats.durationBuckets + ClusterStats.grpcShift, ClusterStats.rqRetryOverflow + 8)
        XCTAssertEqual(ClusterStats.responseBytesSum + ClusterStats.grpcShift + 8, ClusterStats.end)
    }

    func testResponseKeysKeepStatusFlagsAndGRPCStatusApart() {
        let http = ResponseKey.make(status: 503, flags: 0xFFFF, grpcStatus: -1)
        XCTAssertEqual(ResponseKey.status(http), 503)
        XCTAssertEqual(ResponseKey.flags(http), 0xFFFF)
        XCTAssertNil(ResponseKey.grpcStatus(http))
        let ok = ResponseKey.make(status: 200, flags: 0, grpcStatus: 0)
        XCTAssertEqual(ResponseKey.grpcStatus(ok), 0)
        XCTAssertNotEqual(ok, ResponseKey.make(status: 200, flags: 0, grpcStatus: -1))
        let big = ResponseKey.make(status: 999, flags: 0xFFFF, grpcStatus: 200)
        XCTAssertEqual(ResponseKey.grpcStatus(big), 62)
        XCTAssertEqual(ResponseKey.status(big), 999)
        XCTAssertNotEqual(big, ResponseKey.other)
        XCTAssertNotEqual(ResponseKey.make(status: 100, flags: 0, grpcStatus: -1), 0, "0 marks a free slot")
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

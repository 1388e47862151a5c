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

    func testListenerRecordsFillTheFirstPageAfterTheFixedFieldsInTheirOrder() throws {
        XCTAssertLessThanOrEqual(WorkerSlotField.end, ListenerStats.offset)
        XCTAssertLessThanOrEqual(ListenerStats.offset + ListenerStats.capacity * ListenerStats.recordBytes, WorkerSlotLayout.clusterStatsOffset)
        XCTAssertEqual(ListenerStats.processField(ListenerStats.handshakes), WorkerSlotField.tlsHandshakes)
        XCTAssertEqual(ListenerStats.processField(ListenerStats.connectionErrors), WorkerSlotField.tlsConnectionErrors)
        XCTAssertEqual(ListenerStats.processField(ListenerStats.failVerifyNoCert), WorkerSlotField.tlsFailVerifyNoCert)
        XCTAssertEqual(ListenerStats.processField(ListenerStats.sessionReused), WorkerSlotField.tlsSessionReused)
        XCTAssertEqual(ListenerStats.processField(ListenerStats.noFilterChainMatch), WorkerSlotField.tlsNoFilterChainMatch)
        XCTAssertLessThanOrEqual(ListenerStats.noFilterChainMatch + 8, ListenerStats.recordBytes)
        let region = try SharedRegion.create(maxWorkers: 1, tableSlotBytes: 1 << 16)
        let ws = region.workerSlot(0)
        XCTAssertEqual(ws.claimListenerRecord(port: 443), 0)
        XCTAssertEqual(ws.claimListenerRecord(port: 8443), 1)
        XCTAssertEqual(ws.claimListenerRecord(port: 443), 0, "same port, same record")
        statAdd(ws.listenerRecord(1), ListenerStats.handshakes, 3)
        XCTAssertEqual(statLoad(ws.listenerRecord(1), ListenerStats.handshakes), 3)
        for p in 2..<ListenerStats.capacity { XCTAssertEqual(ws.claimListenerRecord(port: UInt16(9000 + p)), p) }
        XCTAssertNil(ws.claimListenerRecord(port: 1), "full: counted in the process-wide fields only")
        ws.zeroStats()
        XCTAssertEqual(statLoad(ws.listenerRecord(1), ListenerStats.port), 0, "a reaped worker's records are freed")
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

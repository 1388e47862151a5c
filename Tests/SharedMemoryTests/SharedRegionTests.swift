import XCTest
@testable import SharedMemory
import Glibc
import CSupport

final class SharedRegionTests: XCTestCase {
    func testCreateAttachRoundTrip() throws {
        let r = try SharedRegion.create(maxWorkers: 4, tableSlotBytes: 1 << 20, healthCapacity: 128)
        let a = try SharedRegion.attach(fd: r.fd)
        XCTAssertEqual(a.maxWorkers, 4)
        XCTAssertEqual(a.healthCapacity, 128)
        XCTAssertEqual(a.publishedGeneration, 0)
        r.workerSlot(2).pid = 1234
        XCTAssertEqual(a.workerSlot(2).pid, 1234, "both mappings see the same memory")
    }

    func testAttachRejectsForeignFd() throws {
        let fd = ing_memfd_create("x", 0)
        XCTAssertEqual(ftruncate(fd, 8192), 0)
        XCTAssertThrowsError(try SharedRegion.attach(fd: fd)) { e in
            XCTAssertTrue("\(e)".contains("bad magic"), "\(e)")
        }
    }

    func testPublishAndAcquire() throws {
        let r = try SharedRegion.create(maxWorkers: 2, tableSlotBytes: 1 << 16, healthCapacity: 8)
        let slot = r.workerSlot(0)
        var buf = UnsafeMutableRawBufferPointer.allocate(byteCount: 16, alignment: 16)
        defer { buf.deallocate() }
        XCTAssertNil(r.acquireIfNewer(than: 0, slot: slot, into: &buf), "nothing published yet")

        XCTAssertEqual(try r.publish(image: [1, 2, 3], liveWorkers: [0]), .published(generation: 1))
        let got = try XCTUnwrap(r.acquireIfNewer(than: 0, slot: slot, into: &buf))
        XCTAssertEqual(got.generation, 1)
        XCTAssertEqual(Array(UnsafeRawBufferPointer(rebasing: buf[0..<got.byteCount])), [1, 2, 3])
        XCTAssertEqual(slot.generationInUse, 1)
        XCTAssertNil(r.acquireIfNewer(than: 1, slot: slot, into: &buf))

        let big = [UInt8](repeating: 7, count: 1000)
        XCTAssertEqual(try r.publish(image: big, liveWorkers: [0]), .published(generation: 2))
        // Worker 0 still claims generation 1, which lives in the slot generation 3 would reuse.
        XCTAssertEqual(try r.publish(image: [9], liveWorkers: [0]), .busy(workerIndex: 0))
        let got2 = try XCTUnwrap(r.acquireIfNewer(than: 1, slot: slot, into: &buf))
        XCTAssertEqual(got2.generation, 2)
        XCTAssertEqual(got2.byteCount, 1000)
        XCTAssertGreaterThanOrEqual(buf.count, 1000, "destination grows to fit")
        XCTAssertEqual(try r.publish(image: [9], liveWorkers: [0]), .published(generation: 3))
    }

    func testOversizedImageIsAnError() throws {
        let r = try SharedRegion.create(maxWorkers: 1, tableSlotBytes: 4096, healthCapacity: 8)
        XCTAssertThrowsError(try r.publish(image: [UInt8](repeating: 0, count: 5000), liveWorkers: [])) { e in
            XCTAssertTrue("\(e)".contains("does not fit"), "\(e)")
        }
        XCTAssertEqual(r.publishedGeneration, 0, "nothing half-published")
    }

    func testCountersAndHealth() throws {
        let r = try SharedRegion.create(maxWorkers: 1, tableSlotBytes: 4096, healthCapacity: 8)
        let s = r.workerSlot(0)
        s.add(WorkerSlotField.requestsTotal)
        s.add(WorkerSlotField.requestsTotal, 4)
        XCTAssertEqual(s.counter(WorkerSlotField.requestsTotal), 5)
        r.setEndpointHealth(3, 42)
        XCTAssertEqual(r.endpointHealth(3), 42)
        XCTAssertEqual(r.endpointHealth(100), 0, "out of range reads as healthy")
    }
}

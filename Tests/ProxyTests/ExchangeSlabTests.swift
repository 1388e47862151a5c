// The exchange slab (Sources/Proxy/Exchange.swift): slots are handed out fresh, generations
// change on reuse, and the slab refuses rather than overflows.

@testable import Proxy
import XCTest

final class ExchangeSlabTests: XCTestCase {
    func testAllocatesFreshSlotsAndBumpsTheGenerationOnReuse() {
        var slab = ExchangeSlab(capacity: 4)
        let a = slab.alloc()
        XCTAssertGreaterThanOrEqual(a, 0)
        slab.slots[Int(a)].down = 7
        slab.slots[Int(a)].stats.status = 503
        let gen = slab.slots[Int(a)].generation
        slab.slots[Int(a)].down = -1
        slab.release(a)
        let b = slab.alloc()
        XCTAssertEqual(b, a, "LIFO: the slot just freed is reused first")
        XCTAssertEqual(slab.slots[Int(b)].generation, gen &+ 1)
        XCTAssertEqual(slab.slots[Int(b)].down, -1)
        XCTAssertEqual(slab.slots[Int(b)].stats.status, 0, "a reused slot starts empty")
    }

    func testFullSlabRefuses() {
        var slab = ExchangeSlab(capacity: 3)
        let got = (0..<3).map { _ in slab.alloc() }
        XCTAssertEqual(Set(got).count, 3)
        XCTAssertEqual(slab.alloc(), -1)
        XCTAssertEqual(slab.active, 3)
    }
}

// Ring.sqe() when the submission queue is full (Ring+Spill.swift): a submit that fails must not
// crash the worker, and every prepared entry must still reach the kernel, in order.

import CURing
@testable import URing
import XCTest

final class RingSpillTests: XCTestCase {
    /// Prepares `count` NOPs with user_data 1...count, then submits and collects completions.
    private func runNops(_ ring: borrowing Ring, count: Int) -> [UInt64] {
        for k in 1...count {
            let s = ring.sqe()
            io_uring_prep_nop(s)
            s.pointee.user_data = UInt64(k)
        }
        var seen: [UInt64] = []
        let cqes = UnsafeMutablePointer<UnsafeMutablePointer<io_uring_cqe>?>.allocate(capacity: 64)
        defer { cqes.deallocate() }
        for _ in 0..<20 where seen.count < count {
            _ = ring.submitAndWait(1, timeoutNs: 100_000_000)
            let n = ring.peekBatch(cqes, max: 64)
            for i in 0..<Int(n) { seen.append(cqes[i]!.pointee.user_data) }
            ring.advance(by: n)
        }
        return seen
    }

    private func makeRing() throws -> Ring {
        do {
            return try Ring(entries: 4)
        } catch {
            throw XCTSkip("io_uring is unavailable here: \(error)")
        }
    }

    func testFullQueueIsSubmittedToMakeRoom() throws {
        let ring = try makeRing()
        XCTAssertEqual(runNops(ring, count: 10), Array(1...10))
        XCTAssertEqual(ring.spilledEntries, 0)
        XCTAssertEqual(ring.submitFailures, 0)
    }

    /// The submit that should make room fails: the entries wait in the spill queue (no crash)
    /// and the next submit hands them to the kernel, none lost, none reordered.
    func testRefusedSubmitSpillsAndKeepsOrder() throws {
        let ring = try makeRing()
        ring.failSubmitsForTesting(1)
        XCTAssertEqual(runNops(ring, count: 10), Array(1...10))
        XCTAssertEqual(ring.spilledEntries, 6, "4 fit the queue; the other 6 waited")
        XCTAssertEqual(ring.submitFailures, 1)
        XCTAssertEqual(ring.lastSubmitErrno, EBUSY)
        // Back to normal afterwards.
        XCTAssertEqual(runNops(ring, count: 9), Array(1...9))
        XCTAssertEqual(ring.spilledEntries, 6)
    }

    /// Submits keep failing for a while: entries accumulate (the queue grows) and all arrive.
    func testSpillQueueGrowsWhileSubmitsFail() throws {
        let ring = try makeRing()
        ring.failSubmitsForTesting(1)
        for k in 1...600 {
            let s = ring.sqe()
            io_uring_prep_nop(s)
            s.pointee.user_data = UInt64(k)
        }
        XCTAssertEqual(ring.spilledEntries, 596)
        var seen: [UInt64] = []
        let cqes = UnsafeMutablePointer<UnsafeMutablePointer<io_uring_cqe>?>.allocate(capacity: 64)
        defer { cqes.deallocate() }
        for _ in 0..<400 where seen.count < 600 {
            _ = ring.submitAndWait(1, timeoutNs: 100_000_000)
            while true {
                let n = ring.peekBatch(cqes, max: 64)
                if n == 0 { break }
                for i in 0..<Int(n) { seen.append(cqes[i]!.pointee.user_data) }
                ring.advance(by: n)
            }
        }
        XCTAssertEqual(seen, Array(1...600))
    }
}

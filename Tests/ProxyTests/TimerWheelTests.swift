// The worker's timer wheel (Sources/Proxy/TimerWheel.swift), driven with a fake clock: no ring,
// no sockets. Each test checks when timers fire, not how the wheel stores them.

@testable import Proxy
import XCTest

final class TimerWheelTests: XCTestCase {
    /// Advances millisecond by millisecond from `from` to `to`, returning (ms, id) of every expiry.
    private func run(_ wheel: inout TimerWheel, from: UInt64, to: UInt64, step: UInt64 = 1) -> [(UInt64, Int32)] {
        var fired: [(UInt64, Int32)] = []
        var now = from
        while now <= to {
            wheel.advance(to: now)
            while true {
                let id = wheel.popExpired()
                if id < 0 { break }
                fired.append((now, id))
            }
            now += step
        }
        return fired
    }

    func testFiresAtTheDeadlineMillisecond() {
        var wheel = TimerWheel(capacity: 16, nowMs: 1000)
        wheel.schedule(3, at: 1005)
        wheel.schedule(7, at: 1001)
        wheel.schedule(9, at: 1500)
        let fired = run(&wheel, from: 1000, to: 1600)
        XCTAssertEqual(fired.map { $0.0 }, [1001, 1005, 1500])
        XCTAssertEqual(fired.map { $0.1 }, [7, 3, 9])
    }

    func testFarTimersWaitInOverflowAndFireOnTime() {
        var wheel = TimerWheel(capacity: 16, nowMs: 10)
        wheel.schedule(1, at: 10 + 60_000)   // an idle keep-alive timeout, many turns ahead
        wheel.schedule(2, at: 10 + 2_500)
        let fired = run(&wheel, from: 10, to: 10 + 61_000)
        XCTAssertEqual(fired.map { $0.1 }, [2, 1])
        XCTAssertEqual(fired.map { $0.0 }, [10 + 2_500, 10 + 60_000])
    }

    func testRearmingLaterAndEarlierAndCancelling() {
        var wheel = TimerWheel(capacity: 16, nowMs: 0)
        wheel.schedule(1, at: 100)
        wheel.schedule(1, at: 300)          // later: lazy, must not fire at 100
        wheel.schedule(2, at: 5_000)
        wheel.schedule(2, at: 50)           // earlier: must fire at 50, not 5 000
        wheel.schedule(3, at: 200)
        wheel.cancel(3)                     // never fires
        let fired = run(&wheel, from: 0, to: 6_000)
        XCTAssertEqual(fired.map { $0.1 }, [2, 1])
        XCTAssertEqual(fired.map { $0.0 }, [50, 300])
        XCTAssertEqual(wheel.deadline(1), 0, "an expired timer is disarmed")
    }

    func testALoopThatSleptThroughSeveralTurnsFiresEverythingDue() {
        var wheel = TimerWheel(capacity: 16, nowMs: 0)
        wheel.schedule(1, at: 10)
        wheel.schedule(2, at: 3_000)
        wheel.schedule(3, at: 9_000)
        wheel.advance(to: 5_000)            // one big jump: 1 and 2 are due, 3 is not
        var ids: [Int32] = []
        while true { let id = wheel.popExpired(); if id < 0 { break }; ids.append(id) }
        XCTAssertEqual(Set(ids), [1, 2])
        let later = run(&wheel, from: 5_001, to: 9_500, step: 7)
        XCTAssertEqual(later.map { $0.1 }, [3])
        XCTAssertTrue(later[0].0 >= 9_000 && later[0].0 < 9_007)
    }

    func testCancelOrRearmWhileWaitingInTheExpiredList() {
        var wheel = TimerWheel(capacity: 16, nowMs: 0)
        wheel.schedule(1, at: 5)
        wheel.schedule(2, at: 5)
        wheel.schedule(3, at: 5)
        wheel.advance(to: 5)
        wheel.cancel(2)                     // e.g. its connection closed while handling timer 1
        wheel.schedule(3, at: 40)           // re-armed for later before it was popped
        XCTAssertEqual(wheel.popExpired(), 1)
        XCTAssertEqual(wheel.popExpired(), -1)
        let fired = run(&wheel, from: 6, to: 100)
        XCTAssertEqual(fired.map { $0.1 }, [3])
        XCTAssertEqual(fired.map { $0.0 }, [40])
    }

    func testNextWakeIsTheEarliestArmedTimerOrTheLimit() {
        var wheel = TimerWheel(capacity: 16, nowMs: 2_000)
        wheel.advance(to: 2_000)
        XCTAssertEqual(wheel.nextWakeMs(limitMs: 3_000), 3_000, "nothing armed: the limit")
        wheel.schedule(4, at: 2_250)
        XCTAssertEqual(wheel.nextWakeMs(limitMs: 3_000), 2_250)
        wheel.schedule(5, at: 2_010)
        XCTAssertEqual(wheel.nextWakeMs(limitMs: 3_000), 2_010)
        XCTAssertEqual(wheel.nextWakeMs(limitMs: 2_005), 2_005)
        // Only a far timer: wake at the next turn, when the overflow list is looked at.
        var far = TimerWheel(capacity: 4, nowMs: 1_024 * 7 + 100)
        far.schedule(0, at: 1_024 * 7 + 100 + 60_000)
        XCTAssertEqual(far.nextWakeMs(limitMs: .max), 1_024 * 8)
    }

    /// Random schedules, re-arms and cancels against a plain model: every armed timer fires
    /// exactly once, at the first step at or after its last deadline.
    func testMatchesAModelUnderRandomOperations() {
        var rng = SystemRandomNumberGenerator()
        var wheel = TimerWheel(capacity: 64, nowMs: 0)
        var model = [UInt64](repeating: 0, count: 64)
        var now: UInt64 = 0
        for _ in 0..<20_000 {
            let id = Int32.random(in: 0..<64, using: &rng)
            switch Int.random(in: 0..<10, using: &rng) {
            case 0:
                wheel.cancel(id)
                model[Int(id)] = 0
            default:
                let d = now + UInt64.random(in: 0..<3_000, using: &rng)
                wheel.schedule(id, at: d)
                model[Int(id)] = d
            }
            // Mostly small steps; now and then the loop sleeps through several turns.
            now += Int.random(in: 0..<100, using: &rng) == 0 ? UInt64.random(in: 0..<5_000, using: &rng)
                                                             : UInt64.random(in: 0..<4, using: &rng)
            wheel.advance(to: now)
            var fired = Set<Int32>()
            while true { let f = wheel.popExpired(); if f < 0 { break }; fired.insert(f) }
            var due = Set<Int32>()
            for k in 0..<64 where model[k] != 0 && model[k] <= now { due.insert(Int32(k)); model[k] = 0 }
            XCTAssertEqual(fired, due, "at \(now)")
            if fired != due { return }
        }
    }
}

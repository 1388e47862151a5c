import ConfigCompiler
import XCTest
@testable import Supervisor

/// The resolver child's one-line protocol and how a batch of answers updates the cache
/// (AsyncResolver.swift, Supervisor+DNS.swift). The processes themselves are exercised by
/// IntegrationTests/DNSResolutionTests against the real binary.
final class ResolverTests: XCTestCase {
    let v4: [UInt8] = [10, 0, 0, 1]
    let v6: [UInt8] = [0x20, 0x01, 0x0d, 0xb8] + Array(repeating: 0, count: 11) + [2]

    func testTheChildLineRoundTrips() {
        let line = AsyncResolver.line(for: .success([v4, v6]))
        XCTAssertEqual(line, "ok 0a000001 20010db8000000000000000000000002")
        XCTAssertEqual(AsyncResolver.parse(Array((line + "\n").utf8)), .addresses([v4, v6]))
        XCTAssertEqual(AsyncResolver.parse(Array("ok\n".utf8)), .addresses([]))
        XCTAssertEqual(AsyncResolver.parse(Array((AsyncResolver.line(for: .failure(.noSuchName)) + "\n").utf8)), .noSuchName)
        XCTAssertEqual(AsyncResolver.parse(Array("fail Temporary failure in name resolution\n".utf8)),
                       .failed("Temporary failure in name resolution"))
    }

    func testAnythingButACompleteLineIsAFailureNotAnEmptyAnswer() {
        for bad in ["", "ok 0a0000", "ok 0a000001", "ok zz000001\n", "hello\n"] {
            guard case .failed = AsyncResolver.parse(Array(bad.utf8)) else {
                return XCTFail("\"\(bad)\" must read as a failure")
            }
        }
    }

    func testTimeoutsAndFailuresKeepThePreviousAddressesNoSuchNameClearsThem() {
        let cache = NameCache()
        XCTAssertEqual(cache.apply(["a": .addresses([v4]), "b": .addresses([v4]), "c": .addresses([v6])]).changed, ["a", "b", "c"])
        let (changed, kept) = cache.apply(["a": .timedOut, "b": .failed("SERVFAIL"), "c": .noSuchName])
        XCTAssertEqual(changed, ["c"])
        XCTAssertEqual(kept.map(\.0), ["a", "b"])
        XCTAssertEqual(cache.cached("a"), [v4])
        XCTAssertEqual(cache.cached("b"), [v4])
        XCTAssertEqual(cache.cached("c"), [])
        XCTAssertEqual(cache.cached("never-asked"), [])
        XCTAssertEqual(cache.apply(["a": .addresses([v4])]).changed, [], "an unchanged answer changes nothing")
    }
}

import HTTP1
import XCTest

/// The 1xx policy (RFC 9110 §15.2) and when a response ends upstream connection reuse.
final class ResponsePolicyTests: XCTestCase {
    func testOnlyOneAskedFor100IsForwarded() {
        XCTAssertEqual(informationalAction(status: 100, seen: 1, expectContinue: true, continueForwarded: false), .forward)
        XCTAssertEqual(informationalAction(status: 100, seen: 2, expectContinue: true, continueForwarded: true), .drop)
        XCTAssertEqual(informationalAction(status: 100, seen: 1, expectContinue: false, continueForwarded: false), .drop)
        for status: UInt16 in [102, 103, 150, 199] {
            XCTAssertEqual(informationalAction(status: status, seen: 1, expectContinue: true, continueForwarded: false),
                           .drop, "\(status)")
        }
    }

    func testUnrequested101AndTooManyInterimHeadsAreRejected() {
        XCTAssertEqual(informationalAction(status: 101, seen: 1, expectContinue: true, continueForwarded: false), .reject)
        XCTAssertEqual(informationalAction(status: 102, seen: maxInformationalResponses, expectContinue: false,
                                           continueForwarded: false), .drop)
        XCTAssertEqual(informationalAction(status: 102, seen: maxInformationalResponses + 1, expectContinue: false,
                                           continueForwarded: false), .reject)
        XCTAssertEqual(informationalAction(status: 100, seen: maxInformationalResponses + 1, expectContinue: true,
                                           continueForwarded: false), .reject)
    }

    /// A connection that switched protocol or became a CONNECT tunnel never goes back to a pool.
    func testSwitchedAndTunnelledConnectionsAreNotReused() {
        XCTAssertFalse(responseAllowsReuse(status: 101, requestMethod: .get))
        XCTAssertFalse(responseAllowsReuse(status: 200, requestMethod: .connect))
        XCTAssertFalse(responseAllowsReuse(status: 299, requestMethod: .connect))
        XCTAssertTrue(responseAllowsReuse(status: 407, requestMethod: .connect))
        XCTAssertTrue(responseAllowsReuse(status: 200, requestMethod: .get))
        XCTAssertTrue(responseAllowsReuse(status: 204, requestMethod: .post))
    }
}

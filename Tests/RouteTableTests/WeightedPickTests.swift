import RouteTable
import XCTest

/// Weighted destinations (istio-semantics.md §1.4): relative weights; -1 = cluster missing.
final class WeightedPickTests: XCTestCase {
    func fixture(_ dests: [WeightedClusterSpec], clusters: Int = 3) throws -> Fixture {
        try Fixture(TableSpec(
            listeners: [ListenerSpec(port: 80, virtualHosts: [VirtualHostSpec(name: "vh", domains: ["*"], routes: [
                RouteSpec(name: "weighted", matches: [], action: .forward(dests)),
                RouteSpec(name: "direct", matches: [], action: .directResponse(status: 200, body: [])),
                RouteSpec(name: "redirect", matches: [], action: .redirect(RedirectSpec())),
            ])])],
            clusters: (0..<clusters).map { ClusterSpec(name: "c\($0)", endpoints: []) }))
    }

    /// Picks for `samples` randoms spread evenly over UInt32, counted per result.
    func histogram(_ f: Fixture, samples: Int = 100_000) -> [Int32: Int] {
        var counts: [Int32: Int] = [:]
        let step = UInt64(1) << 32 / UInt64(samples)
        for i in 0..<UInt64(samples) {
            counts[f.reader.pickCluster(route: 0, random: UInt32(truncatingIfNeeded: i * step + step / 2)), default: 0] += 1
        }
        return counts
    }

    func testDistributionFollowsRelativeWeights() throws {
        let f = try fixture([WeightedClusterSpec(cluster: 0, weight: 4), WeightedClusterSpec(cluster: 1, weight: 1)])
        let h = histogram(f)
        XCTAssertEqual(h.count, 2)
        XCTAssertEqual(Double(h[0] ?? 0) / 100_000, 0.8, accuracy: 0.001)
        XCTAssertEqual(Double(h[1] ?? 0) / 100_000, 0.2, accuracy: 0.001)
    }

    func testThreeWaysAndBoundaries() throws {
        let f = try fixture([WeightedClusterSpec(cluster: 2, weight: 1), WeightedClusterSpec(cluster: 0, weight: 1),
                             WeightedClusterSpec(cluster: 1, weight: 2)])
        let h = histogram(f)
        XCTAssertEqual(Double(h[2] ?? 0) / 100_000, 0.25, accuracy: 0.001)
        XCTAssertEqual(Double(h[0] ?? 0) / 100_000, 0.25, accuracy: 0.001)
        XCTAssertEqual(Double(h[1] ?? 0) / 100_000, 0.50, accuracy: 0.001)
        XCTAssertEqual(f.reader.pickCluster(route: 0, random: 0), 2)
        XCTAssertEqual(f.reader.pickCluster(route: 0, random: UInt32.max), 1)
        XCTAssertEqual(f.reader.pickCluster(route: 0, random: 0x4000_0000), 0)  // exactly 1/4
    }

    func testMissingClusterIsReturnedAsMinusOne() throws {
        let f = try fixture([WeightedClusterSpec(cluster: -1, weight: 1), WeightedClusterSpec(cluster: 1, weight: 1)])
        let h = histogram(f, samples: 10_000)
        XCTAssertEqual(h[-1], 5_000)
        XCTAssertEqual(h[1], 5_000)
    }

    func testZeroWeightIsNeverPickedBesideOthers() throws {
        let f = try fixture([WeightedClusterSpec(cluster: 0, weight: 0), WeightedClusterSpec(cluster: 1, weight: 3),
                             WeightedClusterSpec(cluster: 2, weight: 0)])
        XCTAssertEqual(histogram(f, samples: 10_000), [1: 10_000])
    }

    func testSingleDestinationGetsEverythingWhateverItsWeight() throws {
        for w: UInt32 in [0, 1, 100] {
            let f = try fixture([WeightedClusterSpec(cluster: 2, weight: w)])
            XCTAssertEqual(histogram(f, samples: 1_000), [2: 1_000], "weight \(w)")
        }
    }

    func testNonForwardingRoutesPickNothing() throws {
        let f = try fixture([WeightedClusterSpec(cluster: 0, weight: 1)])
        XCTAssertEqual(f.reader.pickCluster(route: 1, random: 7), -1)
        XCTAssertEqual(f.reader.pickCluster(route: 2, random: 7), -1)
        let empty = try fixture([])
        XCTAssertEqual(empty.reader.pickCluster(route: 0, random: 7), -1)
    }
}

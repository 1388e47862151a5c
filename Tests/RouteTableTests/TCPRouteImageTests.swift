import RouteTable
import XCTest

/// TCP listeners carry their routes (VirtualService tcp blocks) in the image.
let tcpSpec = TableSpec(
    listeners: [
        ListenerSpec(port: 80, proto: .http, virtualHosts: [
            VirtualHostSpec(name: "any:80", domains: ["*"], routes: [route("web", [], cluster: 0)]),
        ]),
        ListenerSpec(port: 27017, proto: .tcp, tcpRoutes: [
            TCPRouteSpec(name: "db/mongo/tcp[0]", destinations: [WeightedClusterSpec(cluster: 1, weight: 100)]),
        ]),
        ListenerSpec(port: 31400, proto: .tcp, tcpRoutes: [
            TCPRouteSpec(name: "default/echo/tcp[1]", destinations: [
                WeightedClusterSpec(cluster: 0, weight: 80),
                WeightedClusterSpec(cluster: 1, weight: 20),
                WeightedClusterSpec(cluster: -1, weight: 0),
            ]),
            TCPRouteSpec(name: "default/echo/tcp[2]", destinations: []),
        ]),
        ListenerSpec(port: 9000, proto: .tcp),
    ],
    clusters: [
        ClusterSpec(name: "outbound|9000|v1|echo.default.svc.cluster.local",
                    endpoints: [EndpointSpec(address: [127, 0, 0, 1], port: 9001, id: 0)]),
        ClusterSpec(name: "outbound|9000|v2|echo.default.svc.cluster.local",
                    endpoints: [EndpointSpec(address: [127, 0, 0, 1], port: 9002, id: 1)]),
    ])

final class TCPRouteImageTests: XCTestCase {
    func testRoundTripKeepsTCPRoutes() throws {
        let f = try Fixture(tcpSpec)
        XCTAssertEqual(f.reader.decodeSpec(), tcpSpec)
    }

    func testAccessors() throws {
        let r = try Fixture(tcpSpec).reader
        XCTAssertEqual(r.listenerTCPRoutes(0), 0..<0)   // HTTP listener
        XCTAssertEqual(r.listenerTCPRoutes(1), 0..<1)
        XCTAssertEqual(r.listenerTCPRoutes(2), 1..<3)
        XCTAssertEqual(r.listenerTCPRoutes(3), 3..<3)   // TCP port no VirtualService binds
        XCTAssertEqual(string(r.tcpRouteName(1)), "default/echo/tcp[1]")
        XCTAssertEqual(r.tcpWeightedClusterCount(route: 1), 3)
        XCTAssertEqual(r.tcpWeightedCluster(route: 1, 1).cluster, 1)
        XCTAssertEqual(r.tcpWeightedCluster(route: 1, 1).weight, 20)
        // The HTTP route on port 80 still reads right after the TCP records were added.
        XCTAssertEqual(r.pickCluster(route: 0, random: 12345), 0)
    }

    func testWeightedPickPerConnection() throws {
        let r = try Fixture(tcpSpec).reader
        XCTAssertEqual(r.pickTCPCluster(route: 0, random: 0), 1)
        XCTAssertEqual(r.pickTCPCluster(route: 0, random: .max), 1)
        XCTAssertEqual(r.pickTCPCluster(route: 2, random: 7), -1)   // no destination
        var counts = [Int32: Int]()
        let n = 10_000
        for k in 0..<n {
            // Evenly spread randoms over UInt32: the split follows the weights exactly.
            let random = UInt32(truncatingIfNeeded: (UInt64(k) << 32) / UInt64(n))
            counts[r.pickTCPCluster(route: 1, random: random), default: 0] += 1
        }
        XCTAssertEqual(Double(counts[0] ?? 0), 8_000, accuracy: 2)
        XCTAssertEqual(Double(counts[1] ?? 0), 2_000, accuracy: 2)
        XCTAssertNil(counts[-1])   // weight 0 gets nothing
    }

    func testCorruptTCPRouteIsRejected() throws {
        let good = try TableImage.build(tcpSpec)
        func reject(_ patch: (inout [UInt8]) -> Void) {
            var bad = good
            patch(&bad)
            let rejected = bad.withUnsafeBytes { p -> Bool in
                do {
                    _ = try TableReader(validating: p.baseAddress!, count: p.count)
                    return false
                } catch {
                    return true
                }
            }
            XCTAssertTrue(rejected)
        }
        let section = Int(Section.tcpRoutes.rawValue)
        let tcpAt = Int(tcpGet32(good, 16 + 8 * section))
        let listenersAt = Int(tcpGet32(good, 16))
        // Weighted range past the end of the weighted section.
        reject { tcpSet32(&$0, tcpAt + 24 + 8, 1_000_000) }
        // Total weight that does not match the records.
        reject { tcpSet32(&$0, tcpAt + 24 + 16, 99) }
        // A listener whose TCP route range runs past the section.
        reject { tcpSet32(&$0, listenersAt + listenerBytes + 44, 50) }
        // The section itself past the image.
        reject { tcpSet32(&$0, 16 + 8 * section + 4, 1_000_000) }
    }

    func testTooBigWeightsAreABuildError() {
        let spec = TableSpec(listeners: [
            ListenerSpec(port: 1, proto: .tcp, tcpRoutes: [TCPRouteSpec(name: "t", destinations: [
                WeightedClusterSpec(cluster: 0, weight: .max), WeightedClusterSpec(cluster: 0, weight: 1),
            ])]),
        ], clusters: [ClusterSpec(name: "c", endpoints: [])])
        XCTAssertThrowsError(try TableImage.build(spec)) { e in
            XCTAssertEqual(e as? TableBuildError, .totalWeightOverflow(route: "t"))
        }
        let missing = TableSpec(listeners: [
            ListenerSpec(port: 1, proto: .tcp, tcpRoutes: [TCPRouteSpec(name: "t", destinations: [
                WeightedClusterSpec(cluster: 3, weight: 1),
            ])]),
        ])
        XCTAssertThrowsError(try TableImage.build(missing)) { e in
            XCTAssertEqual(e as? TableBuildError, .clusterIndexOutOfRange(route: "t", index: 3))
        }
    }
}

private func tcpSet32(_ image: inout [UInt8], _ at: Int, _ v: UInt32) {
    for i in 0..<4 { image[at + i] = UInt8((v >> UInt32(8 * i)) & 0xFF) }
}

private func tcpGet32(_ image: [UInt8], _ at: Int) -> Int {
    (0..<4).reduce(0) { $0 | Int(image[at + $1]) << (8 * $1) }
}

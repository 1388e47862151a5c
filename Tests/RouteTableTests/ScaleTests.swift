import RouteTable
import XCTest

/// Host lookup hashes the request's labels; it must stay correct with 10 000 virtual hosts
/// (and its cost does not depend on that number; perf/ measures it, not this test).
final class ScaleTests: XCTestCase {
    func testTenThousandHosts() throws {
        var hosts: [VirtualHostSpec] = []
        for i in 0..<10_000 {
            hosts.append(VirtualHostSpec(name: "h\(i)", domains: ["svc\(i).example.com", "*.w\(i).example.com", "p\(i).*"],
                                         routes: [route("r\(i)", [MatchSpec(uri: .prefix("/\(i)"))])]))
        }
        hosts.append(VirtualHostSpec(name: "any", domains: ["*"], routes: [route("any")]))
        let f = try Fixture(TableSpec(listeners: [ListenerSpec(port: 80, virtualHosts: hosts)]))
        XCTAssertEqual(f.reader.virtualHosts.count, 10_001)

        for i in [0, 1, 42, 999, 5_000, 9_998, 9_999] {
            XCTAssertEqual(f.host("svc\(i).example.com"), "h\(i)")
            XCTAssertEqual(f.host("SVC\(i).Example.COM:8080"), "h\(i)")
            XCTAssertEqual(f.host("a.b.w\(i).example.com"), "h\(i)")
            XCTAssertEqual(f.host("p\(i).anything.org"), "h\(i)")
            XCTAssertEqual(f.name("GET", "/\(i)/x", host: "svc\(i).example.com"), "r\(i)")
            XCTAssertEqual(f.name("GET", "/nope", host: "svc\(i).example.com"), "noRoute")
        }
        XCTAssertEqual(f.host("svc10000.example.com"), "any")
        XCTAssertEqual(f.host("w5.example.com"), "any")       // *.w5.example.com needs a label
        XCTAssertEqual(f.host("svc1.example.co"), "any")
        // Every one of the 10 000 exact domains resolves to its own host.
        var wrong = 0
        for i in 0..<10_000 where f.host("svc\(i).example.com") != "h\(i)" { wrong += 1 }
        XCTAssertEqual(wrong, 0)
    }
}

import RouteTable
import XCTest

/// A spec that uses every field the image carries.
let fullSpec = TableSpec(
    listeners: [
        ListenerSpec(port: 80, proto: .http, virtualHosts: [
            VirtualHostSpec(name: "shop:80", domains: ["shop.example.com", "*.shop.example.com", "shop.*"], routes: [
                RouteSpec(name: "default/shop/api.v1", matches: [
                    MatchSpec(uri: .prefix("/api"), scheme: .exact("http"), method: .regex("GET|HEAD"),
                              authority: .prefix("shop"),
                              headers: [HeaderMatchSpec(name: "x-user", match: .exact("alice")),
                                        HeaderMatchSpec(name: "x-any", match: .present)],
                              withoutHeaders: [HeaderMatchSpec(name: "x-debug", match: .regex("[0-9]+"))],
                              queryParams: [HeaderMatchSpec(name: "Version", match: .exact(""))],
                              ignoreUriCase: true, port: 80),
                    MatchSpec(uri: .exact("/health")),
                ], action: .forward([WeightedClusterSpec(cluster: 0, weight: 80),
                                     WeightedClusterSpec(cluster: 1, weight: 20),
                                     WeightedClusterSpec(cluster: -1, weight: 0)]), timeoutMs: 1500),
                RouteSpec(name: "default/shop/teapot", matches: [MatchSpec(uri: .regex("/tea(pot)?"))],
                          action: .directResponse(status: 418, body: Array("I'm a teapot\u{0}\u{ff}".utf8))),
                RouteSpec(name: "default/shop/old", matches: [MatchSpec(uri: .prefix("/old"))],
                          action: .redirect(RedirectSpec(status: 308, scheme: "https", authority: "new.example.com",
                                                         port: 8443, uri: nil, prefixRewrite: "/new"))),
                RouteSpec(name: "default/shop/bare-redirect", matches: [],
                          action: .redirect(RedirectSpec(status: 302, uri: ""))),
            ]),
            VirtualHostSpec(name: "secure:80", domains: ["secure.example.com"], routes: [], httpsRedirect: true),
        ]),
        ListenerSpec(port: 8443, proto: .https, virtualHosts: [
            VirtualHostSpec(name: "any:8443", domains: ["*"], routes: [route("catch-all", [], cluster: 1)]),
        ]),
        ListenerSpec(port: 9000, proto: .tcp, virtualHosts: []),
    ],
    clusters: [
        ClusterSpec(name: "outbound|80|v1|shop.default.svc.cluster.local", endpoints: [
            EndpointSpec(address: [10, 0, 0, 1], port: 8080, weight: 3, id: 7),
            EndpointSpec(address: Array(repeating: 0, count: 15) + [1], port: 8081, weight: 1, id: 8),
        ], connectTimeoutMs: 250),
        ClusterSpec(name: "outbound|80||empty", endpoints: []),
    ])

final class TableImageTests: XCTestCase {
    func testRoundTripGivesTheSpecBack() throws {
        let f = try Fixture(fullSpec)
        XCTAssertEqual(f.reader.decodeSpec(), fullSpec)
        XCTAssertEqual(f.reader.byteCount, f.image.count)
    }

    func testAccessorsReadWhatWasBuilt() throws {
        let r = try Fixture(fullSpec).reader
        XCTAssertEqual(r.listeners, 0..<3)
        XCTAssertEqual(r.listener(port: 8443), 1)
        XCTAssertEqual(r.listener(port: 81), -1)
        XCTAssertEqual(r.listenerProtocol(2), .tcp)
        XCTAssertEqual(r.listenerVirtualHosts(0), 0..<2)
        XCTAssertEqual(r.listenerVirtualHosts(2), 3..<3)
        XCTAssertEqual(string(r.virtualHostName(1)), "secure:80")
        XCTAssertTrue(r.virtualHostHTTPSRedirect(1))
        XCTAssertFalse(r.virtualHostHTTPSRedirect(0))
        XCTAssertEqual(r.virtualHostDomainCount(0), 3)
        XCTAssertEqual(string(r.virtualHostDomain(0, 1)), "*.shop.example.com")
        XCTAssertEqual(r.virtualHostRoutes(0), 0..<4)

        XCTAssertEqual(string(r.routeName(0)), "default/shop/api.v1")
        XCTAssertEqual(r.routeActionKind(0), .forward)
        XCTAssertEqual(r.routeTimeoutMs(0), 1500)
        XCTAssertEqual(r.weightedClusterCount(route: 0), 3)
        XCTAssertEqual(r.weightedCluster(route: 0, 1).cluster, 1)
        XCTAssertEqual(r.weightedCluster(route: 0, 1).weight, 20)
        XCTAssertEqual(r.weightedCluster(route: 0, 2).cluster, -1)

        XCTAssertEqual(r.routeActionKind(1), .directResponse)
        XCTAssertEqual(r.directResponseStatus(route: 1), 418)
        XCTAssertEqual(Array(r.directResponseBody(route: 1)), Array("I'm a teapot\u{0}\u{ff}".utf8))
        XCTAssertEqual(r.weightedClusterCount(route: 1), 0)

        XCTAssertEqual(r.routeActionKind(2), .redirect)
        XCTAssertEqual(r.redirectStatus(route: 2), 308)
        XCTAssertEqual(string(r.redirectScheme(route: 2)), "https")
        XCTAssertEqual(string(r.redirectAuthority(route: 2)), "new.example.com")
        XCTAssertEqual(r.redirectPort(route: 2), 8443)
        XCTAssertNil(r.redirectURI(route: 2))
        XCTAssertEqual(string(r.redirectPrefixRewrite(route: 2)), "/new")
        // An empty string is not a missing one.
        XCTAssertEqual(string(r.redirectURI(route: 3)), "")
        XCTAssertNil(r.redirectScheme(route: 3))
        XCTAssertNil(r.redirectPort(route: 3))
        XCTAssertNil(r.redirectScheme(route: 0))

        XCTAssertEqual(string(r.clusterName(0)), "outbound|80|v1|shop.default.svc.cluster.local")
        XCTAssertEqual(r.clusterConnectTimeoutMs(0), 250)
        XCTAssertEqual(r.clusterConnectTimeoutMs(1), 10_000)
        XCTAssertEqual(r.clusterEndpoints(0), 0..<2)
        XCTAssertEqual(r.clusterEndpoints(1), 2..<2)
        let v4 = r.endpoint(0), v6 = r.endpoint(1)
        XCTAssertEqual(v4.family, 4)
        XCTAssertEqual(Array(v4.address), [10, 0, 0, 1])
        XCTAssertEqual(v4.port, 8080)
        XCTAssertEqual(v4.weight, 3)
        XCTAssertEqual(v4.id, 7)
        XCTAssertEqual(v6.family, 6)
        XCTAssertEqual(Array(v6.address), Array(repeating: 0, count: 15) + [1])

        // Distinct regexes are stored once each: "GET|HEAD", "[0-9]+", "/tea(pot)?".
        XCTAssertEqual(r.regexes.count, 3)
        let m = r.routeMatches(0).lowerBound
        XCTAssertEqual(r.matchPort(m), 80)
        XCTAssertTrue(r.matchIgnoreUriCase(m))
        XCTAssertNil(r.matchPort(m + 1))
        let c = r.condition(r.matchConditions(m).lowerBound)
        XCTAssertEqual(c.target, .uri)
        XCTAssertEqual(c.kind, .prefix)
        XCTAssertEqual(string(c.value), "/api")
    }

    func testHeaderIsMagicVersionAndSizeLittleEndian() throws {
        let image = try TableImage.build(fullSpec)
        XCTAssertEqual(Array(image[0..<4]), Array("IRTB".utf8))
        XCTAssertEqual(UInt16(image[4]) | UInt16(image[5]) << 8, Layout.version)
        let total = (0..<4).reduce(UInt32(0)) { $0 | UInt32(image[8 + $1]) << (8 * UInt32($1)) }
        XCTAssertEqual(Int(total), image.count)
    }

    func testBuildIsDeterministic() throws {
        XCTAssertEqual(try TableImage.build(fullSpec), try TableImage.build(fullSpec))
    }

    /// The image holds no pointers: the same bytes read at another (odd) address give the same table.
    func testImageIsPositionIndependent() throws {
        let image = try TableImage.build(fullSpec)
        let raw = UnsafeMutableRawPointer.allocate(byteCount: image.count + 3, alignment: 16)
        defer { raw.deallocate() }
        image.withUnsafeBytes { (raw + 3).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        let r = try TableReader(validating: raw + 3, count: image.count)
        XCTAssertEqual(r.decodeSpec(), fullSpec)
    }

    /// A slot larger than the image is fine: the header's size bounds the reader.
    func testSlotLargerThanImage() throws {
        var image = try TableImage.build(fullSpec)
        let n = image.count
        image += Array(repeating: 0xAB, count: 100)
        let r = try image.withUnsafeBytes { try TableReader(validating: $0.baseAddress!, count: $0.count) }
        XCTAssertEqual(r.byteCount, n)
    }

    func testSizeLimit() throws {
        let size = try TableImage.build(fullSpec).count
        XCTAssertNoThrow(try TableImage.build(fullSpec, sizeLimit: size))
        XCTAssertThrowsError(try TableImage.build(fullSpec, sizeLimit: size - 1)) { error in
            XCTAssertEqual(error as? TableBuildError, .imageTooLarge(bytes: size, limit: size - 1))
            XCTAssertTrue("\(error)".contains("\(size)"))
        }
    }

    func testRegexThatDoesNotCompileIsRejectedWithItsPattern() {
        // RE2 syntax: no lookaround, no backreferences (`\\C` is RE2's "any byte"; Istio's
        // validation refuses it before it gets here).
        for pattern in ["(unclosed", "a{2,1}", "[z-a]", "(?<=a)b", "(a)\\1"] {
            let spec = oneHost([route("r", [MatchSpec(headers: [HeaderMatchSpec(name: "x", match: .regex(pattern))])])])
            XCTAssertThrowsError(try TableImage.build(spec), pattern) { error in
                guard case let .regexDoesNotCompile(p, routeName, _, message)? = error as? TableBuildError else {
                    return XCTFail("\(error)")
                }
                XCTAssertEqual(p, pattern)
                XCTAssertEqual(routeName, "r")
                XCTAssertFalse(message.isEmpty)
                XCTAssertTrue("\(error)".contains(pattern))
            }
        }
    }

    func testInvalidSpecsAreRejected() {
        func build(_ spec: TableSpec) -> TableBuildError? {
            do { _ = try TableImage.build(spec); return nil } catch { return error }
        }
        for bad in ["", "foo*.com", "*foo.com", "a.*.com", "*.a.*", "**", "*.", ".*"] {
            XCTAssertEqual(build(oneHost([], domains: [bad])), .invalidDomain(domain: bad, virtualHost: "vh"), bad)
        }
        XCTAssertEqual(build(TableSpec(listeners: [ListenerSpec(port: 80, virtualHosts: [
            VirtualHostSpec(name: "a", domains: ["x.com"], routes: []),
            VirtualHostSpec(name: "b", domains: ["X.com"], routes: []),
        ])])), .duplicateDomain(domain: "X.com", port: 80))
        XCTAssertEqual(build(TableSpec(listeners: [ListenerSpec(port: 80), ListenerSpec(port: 80)])), .duplicatePort(80))
        XCTAssertEqual(build(TableSpec(clusters: [ClusterSpec(name: "c", endpoints: [EndpointSpec(address: [1, 2, 3], port: 1)])])),
                       .invalidAddress(cluster: "c", byteCount: 3))
        XCTAssertEqual(build(oneHost([route("r", cluster: 0)])), .clusterIndexOutOfRange(route: "r", index: 0))
        XCTAssertEqual(build(oneHost([route("r", cluster: -2)])), .clusterIndexOutOfRange(route: "r", index: -2))
        XCTAssertEqual(build(oneHost([RouteSpec(name: "r", matches: [], action: .forward([
            WeightedClusterSpec(cluster: -1, weight: UInt32.max), WeightedClusterSpec(cluster: -1, weight: 1),
        ]))])), .totalWeightOverflow(route: "r"))
    }

    func testEmptyTable() throws {
        let f = try Fixture(TableSpec())
        XCTAssertEqual(f.reader.decodeSpec(), TableSpec())
        XCTAssertEqual(f.lookup(), .noListener)
    }
}

import RouteTable
import XCTest

/// A spec that uses every route action and cluster traffic-policy field the image carries.
let actionsSpec = TableSpec(
    listeners: [
        ListenerSpec(port: 80, virtualHosts: [
            VirtualHostSpec(name: "shop:80", domains: ["*"], routes: [
                RouteSpec(name: "all-actions", matches: [MatchSpec(uri: .prefix("/api/"))],
                          action: .forward([
                              WeightedClusterSpec(cluster: 0, weight: 75, headers: HeaderOpsSpec(
                                  request: [HeaderOpSpec(.set, "x-dest", "v1")],
                                  response: [HeaderOpSpec(.remove, "x-internal"), HeaderOpSpec(.add, "x-served-by", "v1")])),
                              WeightedClusterSpec(cluster: 1, weight: 25),
                          ]),
                          timeoutMs: 3000,
                          actions: RouteActionsSpec(
                              rewrite: RewriteSpec(uri: "/v2/", authority: "backend.internal"),
                              headers: HeaderOpsSpec(
                                  request: [HeaderOpSpec(.remove, "cookie"), HeaderOpSpec(.set, "x-env", "prod"),
                                            HeaderOpSpec(.add, "x-trace", "%REQ(:path)%")],
                                  response: [HeaderOpSpec(.set, "cache-control", "no-store")]),
                              retry: RetrySpec(attempts: 3, perTryTimeoutMs: 500,
                                               retryOn: [.gatewayError, .connectFailure, .retriableStatusCodes],
                                               retriableStatusCodes: [503, 429], retryRemoteLocalities: true,
                                               ignorePreviousHosts: false, backoffBaseMs: 100),
                              fault: FaultSpec(delay: FaultDelaySpec(fixedDelayMs: 5000, ppm: 100_000),
                                               abort: FaultAbortSpec(httpStatus: 418, ppm: 1_000_000)),
                              mirrors: [MirrorSpec(cluster: 1, ppm: 250_000), MirrorSpec(cluster: -1)],
                              cors: CorsSpec(allowOrigins: [.exact("https://a.example"), .prefix("https://b."),
                                                            .regex("https://.*\\.example\\.org")],
                                             allowMethods: ["GET", "POST"], allowHeaders: ["x-a", "x-b"],
                                             exposeHeaders: ["x-c"], maxAgeSeconds: 86400, allowCredentials: true,
                                             unmatchedPreflights: .ignore))),
                RouteSpec(name: "regex-rewrite", matches: [MatchSpec(uri: .exact("/exact"))],
                          action: .forward([WeightedClusterSpec(cluster: 2, weight: 1)]),
                          actions: RouteActionsSpec(rewrite: RewriteSpec(uriRegex: RegexRewriteSpec(pattern: "^/service/([^/]+)(/.*)$",
                                                                                                   substitution: "\\2/instance/\\1")),
                                                    retry: .disabled,
                                                    fault: FaultSpec(delay: FaultDelaySpec(fixedDelayMs: 1, ppm: 0)),
                                                    cors: CorsSpec())),
                RouteSpec(name: "defaults", matches: [], action: .forward([WeightedClusterSpec(cluster: 0, weight: 1)])),
                RouteSpec(name: "direct", matches: [MatchSpec(uri: .regex("/d.*"))], action: .directResponse(status: 200, body: [])),
            ]),
        ]),
    ],
    clusters: [
        ClusterSpec(name: "rr", endpoints: [], loadBalancer: LoadBalancerSpec(kind: .roundRobin),
                    connectionPool: ConnectionPoolSpec(maxConnections: 100, maxPendingRequests: 10, maxRequests: 1000,
                                                       maxRequestsPerConnection: 1, maxRetries: 3, idleTimeoutMs: 0)),
        ClusterSpec(name: "cookie", endpoints: [],
                    loadBalancer: LoadBalancerSpec(kind: .ringHash, hashKey: .cookie(name: "session", path: "/", ttlSeconds: 0),
                                                   tableSize: 2048)),
        ClusterSpec(name: "default", endpoints: []),
        ClusterSpec(name: "header", endpoints: [],
                    loadBalancer: LoadBalancerSpec(kind: .maglev, hashKey: .header("x-user"), tableSize: 65537)),
        ClusterSpec(name: "cookie-no-ttl", endpoints: [],
                    loadBalancer: LoadBalancerSpec(kind: .ringHash, hashKey: .cookie(name: "c", path: nil, ttlSeconds: nil),
                                                   tableSize: 1024)),
        ClusterSpec(name: "source", endpoints: [],
                    loadBalancer: LoadBalancerSpec(kind: .ringHash, hashKey: .sourceIP, tableSize: 1024)),
        ClusterSpec(name: "query", endpoints: [],
                    loadBalancer: LoadBalancerSpec(kind: .maglev, hashKey: .queryParameter("User"), tableSize: 7)),
        ClusterSpec(name: "random", endpoints: [], loadBalancer: LoadBalancerSpec(kind: .random)),
        ClusterSpec(name: "passthrough", endpoints: [], loadBalancer: LoadBalancerSpec(kind: .passthrough)),
        {
            // Upstream HTTP/2 next to the cookie-TTL flag: bits 0 and 1 of the same byte.
            var c = ClusterSpec(name: "h2", endpoints: [],
                                loadBalancer: LoadBalancerSpec(kind: .ringHash, hashKey: .cookie(name: "c", path: nil, ttlSeconds: 5),
                                                               tableSize: 1024))
            c.http2 = true
            return c
        }(),
    ])

final class RouteActionImageTests: XCTestCase {
    func testRoundTripGivesEveryActionBack() throws {
        let f = try Fixture(actionsSpec)
        XCTAssertEqual(f.reader.decodeSpec(), actionsSpec)
    }

    func ops(_ r: TableReader, _ range: Range<Int32>) -> [String] {
        range.map { i in
            let op = r.headerOp(i)
            return "\(op.kind) \(string(op.name))=\(string(op.value))"
        }
    }

    func testRewriteAccessors() throws {
        let r = try Fixture(actionsSpec).reader
        XCTAssertEqual(string(r.rewriteURI(route: 0)), "/v2/")
        XCTAssertEqual(string(r.rewriteAuthority(route: 0)), "backend.internal")
        XCTAssertNil(r.rewriteRegex(route: 0))
        XCTAssertNil(r.rewriteURI(route: 1))
        XCTAssertNil(r.rewriteAuthority(route: 1))
        let rx = try XCTUnwrap(r.rewriteRegex(route: 1))
        XCTAssertEqual(string(rx.pattern), "^/service/([^/]+)(/.*)$")
        XCTAssertEqual(string(rx.substitution), "\\2/instance/\\1")
        XCTAssertNil(r.rewriteRegex(route: 2))

        // prefix "/api/" replaces 5 bytes; exact and regex the whole path; no uri match the "/".
        XCTAssertEqual(r.rewriteURIReplaceCount(route: 0, pathLength: 12), 5)
        XCTAssertEqual(r.rewriteURIReplaceCount(route: 0, pathLength: 3), 3)
        XCTAssertEqual(r.rewriteURIReplaceCount(route: 1, pathLength: 6), 6)
        XCTAssertEqual(r.rewriteURIReplaceCount(route: 2, pathLength: 9), 1)
        XCTAssertEqual(r.rewriteURIReplaceCount(route: 2, pathLength: 0), 0)
        XCTAssertEqual(r.rewriteURIReplaceCount(route: 3, pathLength: 7), 7)
    }

    func testHeaderOperationsOfRouteAndDestination() throws {
        let r = try Fixture(actionsSpec).reader
        XCTAssertEqual(ops(r, r.requestHeaderOps(route: 0)), ["remove cookie=", "set x-env=prod", "add x-trace=%REQ(:path)%"])
        XCTAssertEqual(ops(r, r.responseHeaderOps(route: 0)), ["set cache-control=no-store"])
        XCTAssertTrue(r.requestHeaderOps(route: 2).isEmpty)
        XCTAssertTrue(r.responseHeaderOps(route: 2).isEmpty)

        let dests = r.routeDestinations(route: 0)
        XCTAssertEqual(dests.count, 2)
        let d0 = dests.lowerBound, d1 = dests.lowerBound + 1
        XCTAssertEqual(r.destinationCluster(d0), 0)
        XCTAssertEqual(r.destinationWeight(d0), 75)
        XCTAssertEqual(r.destinationCluster(d1), 1)
        XCTAssertEqual(ops(r, r.destinationRequestHeaderOps(d0)), ["set x-dest=v1"])
        XCTAssertEqual(ops(r, r.destinationResponseHeaderOps(d0)), ["remove x-internal=", "add x-served-by=v1"])
        XCTAssertTrue(r.destinationRequestHeaderOps(d1).isEmpty)
        XCTAssertTrue(r.destinationResponseHeaderOps(d1).isEmpty)
        XCTAssertTrue(r.routeDestinations(route: 3).isEmpty)  // direct response
    }

    func testPickDestinationAgreesWithPickCluster() throws {
        let r = try Fixture(actionsSpec).reader
        let dests = r.routeDestinations(route: 0)
        var counts = [Int32: Int]()
        for i in 0..<UInt32(1000) {
            let random = i &* 4_294_967 &+ 12345
            let d = r.pickDestination(route: 0, random: random)
            XCTAssertTrue(dests.contains(d))
            XCTAssertEqual(r.destinationCluster(d), r.pickCluster(route: 0, random: random))
            counts[d, default: 0] += 1
        }
        XCTAssertEqual(Double(counts[dests.lowerBound] ?? 0) / 1000, 0.75, accuracy: 0.01)
        XCTAssertEqual(r.pickDestination(route: 3, random: 7), -1)  // direct response
        XCTAssertEqual(r.destinationCluster(r.pickDestination(route: 2, random: 0)), 0)
    }

    func testRetryPolicies() throws {
        let r = try Fixture(actionsSpec).reader
        let p = r.retryPolicy(route: 0)
        XCTAssertEqual(p.attempts, 3)
        XCTAssertEqual(p.perTryTimeoutMs, 500)
        XCTAssertEqual(p.retryOn, [.gatewayError, .connectFailure, .retriableStatusCodes])
        XCTAssertEqual(p.statusCodes.map(r.retryStatusCode), [503, 429])
        XCTAssertEqual(p.backoffBaseMs, 100)
        XCTAssertTrue(p.retryRemoteLocalities)
        XCTAssertFalse(p.ignorePreviousHosts)
        XCTAssertTrue(r.retriesOnStatus(route: 0, status: 429))
        XCTAssertTrue(r.retriesOnStatus(route: 0, status: 502))  // gateway-error
        XCTAssertFalse(r.retriesOnStatus(route: 0, status: 500))
        XCTAssertFalse(r.retriesOnStatus(route: 0, status: 409))

        XCTAssertEqual(r.retryPolicy(route: 1).attempts, 0)
        XCTAssertFalse(r.retriesOnStatus(route: 1, status: 503))

        // Istio's default (no `retries`): 2 attempts, no status codes (503 was dropped in 1.24).
        let d = r.retryPolicy(route: 2)
        XCTAssertEqual(d.attempts, 2)
        XCTAssertEqual(d.perTryTimeoutMs, 0)
        XCTAssertEqual(d.retryOn.text, "connect-failure,refused-stream,retriable-status-codes,cancelled,unavailable")
        XCTAssertTrue(d.statusCodes.isEmpty)
        XCTAssertTrue(d.ignorePreviousHosts)
        XCTAssertEqual(d.backoffBaseMs, 25)
        XCTAssertFalse(r.retriesOnStatus(route: 2, status: 503))
    }

    func testFaults() throws {
        let r = try Fixture(actionsSpec).reader
        XCTAssertEqual(r.faultDelay(route: 0)?.fixedDelayMs, 5000)
        XCTAssertEqual(r.faultDelay(route: 0)?.ppm, 100_000)
        XCTAssertEqual(r.faultAbort(route: 0)?.httpStatus, 418)
        XCTAssertEqual(r.faultAbort(route: 0)?.ppm, 1_000_000)
        XCTAssertEqual(r.faultDelay(route: 1)?.ppm, 0)  // present, never fires
        XCTAssertNil(r.faultAbort(route: 1))
        XCTAssertNil(r.faultDelay(route: 2))
        XCTAssertNil(r.faultAbort(route: 2))
        XCTAssertEqual(r.faultAbort(route: 0)?.grpcStatus, -1)
        // An abort with a gRPC status keeps its code.
        let spec = TableSpec(listeners: [ListenerSpec(port: 80, virtualHosts: [VirtualHostSpec(
            name: "vh", domains: ["*"], routes: [RouteSpec(name: "r", matches: [], action: .forward([]), actions: RouteActionsSpec(
                fault: FaultSpec(abort: FaultAbortSpec(httpStatus: 200, ppm: 1_000_000, grpcStatus: 16))))])])])
        let g = try Fixture(spec).reader
        XCTAssertEqual(g.faultAbort(route: 0)?.grpcStatus, 16)
        XCTAssertEqual(g.decodeRoute(0).actions.fault?.abort?.grpcStatus, 16)
    }

    func testMirrors() throws {
        let r = try Fixture(actionsSpec).reader
        let ms = r.routeMirrors(route: 0)
        XCTAssertEqual(ms.map { r.mirror($0).cluster }, [1, -1])
        XCTAssertEqual(ms.map { r.mirror($0).ppm }, [250_000, 1_000_000])
        XCTAssertTrue(r.routeMirrors(route: 2).isEmpty)
    }

    func testCors() throws {
        let f = try Fixture(actionsSpec)
        let r = f.reader
        XCTAssertEqual(r.routeCors(route: 2), -1)
        let c = r.cors(r.routeCors(route: 0))
        XCTAssertEqual(c.origins.count, 3)
        let o = c.origins.map(r.corsOrigin)
        XCTAssertEqual(o.map(\.kind), [.exact, .prefix, .regex])
        XCTAssertEqual(o.map { string($0.value) }, ["https://a.example", "https://b.", "https://.*\\.example\\.org"])
        XCTAssertEqual(o[0].regex, -1)
        XCTAssertEqual(string(r.regexPattern(o[2].regex)), "https://.*\\.example\\.org")
        XCTAssertEqual(string(c.allowMethods), "GET,POST")
        XCTAssertEqual(string(c.allowHeaders), "x-a,x-b")
        XCTAssertEqual(string(c.exposeHeaders), "x-c")
        XCTAssertEqual(c.maxAgeSeconds, 86400)
        XCTAssertTrue(c.allowCredentials)
        XCTAssertEqual(c.unmatchedPreflights, .ignore)

        let empty = r.cors(r.routeCors(route: 1))
        XCTAssertTrue(empty.origins.isEmpty)
        XCTAssertEqual(empty.allowMethods.count, 0)
        XCTAssertNil(empty.maxAgeSeconds)
        XCTAssertFalse(empty.allowCredentials)
        XCTAssertEqual(empty.unmatchedPreflights, .forward)
    }

    func testClusterTrafficPolicies() throws {
        let r = try Fixture(actionsSpec).reader
        let rr = r.clusterLoadBalancer(0)
        XCTAssertEqual(rr.kind, .roundRobin)
        XCTAssertEqual(rr.hashKey, HashKeyKind.none)
        XCTAssertEqual(rr.tableSize, 0)
        let pool = r.clusterConnectionPool(0)
        XCTAssertEqual(pool, ConnectionPoolSpec(maxConnections: 100, maxPendingRequests: 10, maxRequests: 1000,
                                                maxRequestsPerConnection: 1, maxRetries: 3, idleTimeoutMs: 0))

        let cookie = r.clusterLoadBalancer(1)
        XCTAssertEqual(cookie.kind, .ringHash)
        XCTAssertEqual(cookie.hashKey, .cookie)
        XCTAssertEqual(string(cookie.hashName), "session")
        XCTAssertEqual(string(cookie.cookiePath), "/")
        XCTAssertEqual(cookie.cookieTtlSeconds, 0)
        XCTAssertEqual(cookie.tableSize, 2048)

        // Defaults: LEAST_REQUEST, limits 2^32-1, keep-alive unlimited, idle timeout 1 h.
        XCTAssertEqual(r.clusterLoadBalancer(2).kind, .leastRequest)
        let d = r.clusterConnectionPool(2)
        XCTAssertEqual(d.maxConnections, UInt32.max)
        XCTAssertEqual(d.maxPendingRequests, UInt32.max)
        XCTAssertEqual(d.maxRequests, UInt32.max)
        XCTAssertEqual(d.maxRetries, UInt32.max)
        XCTAssertEqual(d.maxRequestsPerConnection, 0)
        XCTAssertEqual(d.idleTimeoutMs, 3_600_000)

        XCTAssertEqual(r.clusterLoadBalancer(3).hashKey, .header)
        XCTAssertEqual(string(r.clusterLoadBalancer(3).hashName), "x-user")
        XCTAssertEqual(r.clusterLoadBalancer(3).kind, .maglev)
        XCTAssertNil(r.clusterLoadBalancer(4).cookieTtlSeconds)
        XCTAssertNil(r.clusterLoadBalancer(4).cookiePath)
        XCTAssertEqual(r.clusterLoadBalancer(5).hashKey, .sourceIP)
        XCTAssertEqual(r.clusterLoadBalancer(5).hashName.count, 0)
        XCTAssertEqual(string(r.clusterLoadBalancer(6).hashName), "User")
        XCTAssertEqual(r.clusterLoadBalancer(7).kind, .random)
        XCTAssertEqual(r.clusterLoadBalancer(8).kind, .passthrough)

        // Upstream HTTP/2 only where the spec says so; it leaves the cookie TTL alone.
        XCTAssertEqual(r.clusters.map(r.clusterHTTP2), [false, false, false, false, false, false, false, false, false, true])
        XCTAssertEqual(r.clusterLoadBalancer(9).cookieTtlSeconds, 5)
        XCTAssertTrue(r.decodeCluster(9).http2)
        XCTAssertFalse(r.decodeCluster(1).http2)
    }

    func testImageWithActionsIsPositionIndependent() throws {
        let image = try TableImage.build(actionsSpec)
        for shift in [1, 3, 8] {
            let raw = UnsafeMutableRawPointer.allocate(byteCount: image.count + shift, alignment: 16)
            defer { raw.deallocate() }
            image.withUnsafeBytes { (raw + shift).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
            let reader = try TableReader(validating: raw + shift, count: image.count)
            XCTAssertEqual(reader.decodeSpec(), actionsSpec)
        }
    }

    func build(_ actions: RouteActionsSpec, clusters: [ClusterSpec] = []) -> TableBuildError? {
        let spec = TableSpec(listeners: [ListenerSpec(port: 80, virtualHosts: [VirtualHostSpec(
            name: "vh", domains: ["*"], routes: [RouteSpec(name: "r", matches: [], action: .forward([]), actions: actions)])])],
            clusters: clusters)
        do { _ = try TableImage.build(spec); return nil } catch { return error }
    }

    func testInvalidActionsAreRejected() {
        XCTAssertEqual(build(RouteActionsSpec(headers: HeaderOpsSpec(request: [HeaderOpSpec(.set, "X-Upper", "v")]))),
                       .invalidHeaderName(route: "r", name: "X-Upper"))
        XCTAssertEqual(build(RouteActionsSpec(headers: HeaderOpsSpec(response: [HeaderOpSpec(.remove, "")]))),
                       .invalidHeaderName(route: "r", name: ""))
        XCTAssertEqual(build(RouteActionsSpec(retry: RetrySpec(attempts: 1, retryOn: [], retriableStatusCodes: [99]))),
                       .invalidStatusCode(route: "r", code: 99))
        XCTAssertEqual(build(RouteActionsSpec(fault: FaultSpec(abort: FaultAbortSpec(httpStatus: 500, ppm: 1_000_001)))),
                       .ppmOutOfRange(route: "r", field: "fault abort", ppm: 1_000_001))
        XCTAssertEqual(build(RouteActionsSpec(fault: FaultSpec(abort: FaultAbortSpec(httpStatus: 200, ppm: 1, grpcStatus: 17)))),
                       .invalidStatusCode(route: "r", code: 17))
        XCTAssertEqual(build(RouteActionsSpec(mirrors: [MirrorSpec(cluster: 0)])), .mirrorClusterOutOfRange(route: "r", index: 0))
        if case .regexDoesNotCompile(let p, _, _, _)? = build(RouteActionsSpec(rewrite: RewriteSpec(uriRegex: RegexRewriteSpec(pattern: "(", substitution: "")))) {
            XCTAssertEqual(p, "(")
        } else { XCTFail("bad rewrite regex accepted") }
        if case .regexDoesNotCompile(let p, _, _, _)? = build(RouteActionsSpec(cors: CorsSpec(allowOrigins: [.regex("[")]))) {
            XCTAssertEqual(p, "[")
        } else { XCTFail("bad origin regex accepted") }
        XCTAssertNotNil(build(RouteActionsSpec(cors: CorsSpec(allowOrigins: [.present]))))
        XCTAssertEqual(build(RouteActionsSpec(headers: HeaderOpsSpec(request: [HeaderOpSpec(.set, "x-a", "v\r\nx-smuggled: 1")]))),
                       .invalidValue(owner: "route r", value: "v\r\nx-smuggled: 1"))
        XCTAssertEqual(build(RouteActionsSpec(rewrite: RewriteSpec(authority: "a\nb"))), .invalidValue(owner: "route r", value: "a\nb"))
        XCTAssertEqual(build(RouteActionsSpec(rewrite: RewriteSpec(uri: "/a b"))), .invalidValue(owner: "route r", value: "/a b"))
        XCTAssertEqual(build(RouteActionsSpec(cors: CorsSpec(allowHeaders: ["x\0"]))), .invalidValue(owner: "route r", value: "x\0"))
        XCTAssertNil(build(RouteActionsSpec(cors: CorsSpec(allowMethods: ["GET, POST"]))))  // Istio joins as written
        XCTAssertNotNil(build(RouteActionsSpec(), clusters: [ClusterSpec(name: "c", endpoints: [],
                                                                         loadBalancer: LoadBalancerSpec(kind: .ringHash))]))
        XCTAssertNotNil(build(RouteActionsSpec(), clusters: [ClusterSpec(name: "c", endpoints: [],
                                                                         loadBalancer: LoadBalancerSpec(kind: .random, hashKey: .sourceIP))]))
        XCTAssertNil(build(RouteActionsSpec()))
    }
}

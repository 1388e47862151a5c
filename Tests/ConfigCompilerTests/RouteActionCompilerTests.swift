import ConfigCompiler
import Foundation
import IstioConfig
import RouteTable
import XCTest

/// A Gateway on port 80 for every host and ServiceEntries `frontend` (port 80) and `shadow`
/// (port 8080), in front of `http` rules given as YAML (indented for `spec.http`).
func gatewayYAML(http: String) -> String {
    catchAllGateway + """
    ---
    apiVersion: networking.istio.io/v1
    kind: ServiceEntry
    metadata: {name: frontend}
    spec:
      hosts: [frontend.default.svc.cluster.local]
      ports: [{number: 80, name: http, protocol: HTTP}]
      resolution: STATIC
      endpoints: [{address: 10.1.0.1}]
    ---
    apiVersion: networking.istio.io/v1
    kind: ServiceEntry
    metadata: {name: shadow}
    spec:
      hosts: [shadow.default.svc.cluster.local]
      ports: [{number: 8080, name: http, protocol: HTTP}]
      resolution: STATIC
      endpoints: [{address: 10.1.0.9}]
    ---
    apiVersion: networking.istio.io/v1
    kind: VirtualService
    metadata: {name: vs}
    spec:
      hosts: [a.example.com]
      gateways: [gw]
      http:
    """ + "\n" + http
}

final class RouteActionCompilerTests: XCTestCase {
    /// Compiles and returns the routes of the only virtual host; fails on validation errors.
    func routes(_ http: String, file: StaticString = #filePath, line: UInt = #line) -> (TableSpec, [RouteSpec], [Diagnostic]) {
        let (loaded, table, diags) = build(gatewayYAML(http: http))
        XCTAssertFalse(loaded.hasErrors, "\(loaded.diagnostics)", file: file, line: line)
        guard let vh = table.listeners.first?.virtualHosts.first else {
            XCTFail("no virtual host", file: file, line: line)
            return (table, [], diags)
        }
        return (table, vh.routes, diags)
    }

    func testRuleWithoutActionsGetsIstioDefaults() {
        let (_, rs, _) = routes("""
              - route:
                - destination: {host: frontend}
            """)
        XCTAssertEqual(rs[0].actions, RouteActionsSpec())
        XCTAssertEqual(rs[0].actions.retry.attempts, 2)
        XCTAssertEqual(rs[0].actions.retry.retryOn, [.connectFailure, .refusedStream, .unavailable, .cancelled, .retriableStatusCodes])
        XCTAssertEqual(rs[0].actions.retry.retriableStatusCodes, [])  // no 503 since Istio 1.24
    }

    func testRewriteHeadersRetriesAndFault() {
        let (_, rs, diags) = routes("""
              - name: api
                match:
                - uri: {prefix: /api/}
                - uri: {exact: /v1}
                rewrite: {uri: /v2/, authority: backend.internal}
                headers:
                  request:
                    set: {X-Env: prod, A-First: "1"}
                    add: {X-Trace: "%REQ(:path)%"}
                    remove: [Cookie]
                  response:
                    set: {Cache-Control: no-store}
                route:
                - destination: {host: frontend}
                  weight: 90
                  headers:
                    request: {set: {X-Dest: v1}}
                    response: {remove: [X-Internal], add: {X-Served-By: v1}}
                - destination: {host: shadow}
                  weight: 10
                retries: {attempts: 3, perTryTimeout: 250ms, retryOn: "gateway-error, 429,connect-failure,503", retryRemoteLocalities: true}
                fault:
                  delay: {fixedDelay: 5s, percentage: {value: 0.1}}
                  abort: {httpStatus: 418, percentage: {value: 100}}
            """)
        XCTAssertEqual(rs.map(\.name), ["default/vs/api.0", "default/vs/api.1"])
        let a = rs[0].actions
        XCTAssertEqual(rs[1].actions, a)
        XCTAssertEqual(a.rewrite, RewriteSpec(uri: "/v2/", authority: "backend.internal"))
        XCTAssertEqual(a.headers.request, [HeaderOpSpec(.remove, "cookie"), HeaderOpSpec(.set, "a-first", "1"),
                                           HeaderOpSpec(.set, "x-env", "prod"), HeaderOpSpec(.add, "x-trace", "%REQ(:path)%")])
        XCTAssertEqual(a.headers.response, [HeaderOpSpec(.set, "cache-control", "no-store")])
        guard case .forward(let ws) = rs[0].action else { return XCTFail() }
        XCTAssertEqual(ws[0].headers, HeaderOpsSpec(request: [HeaderOpSpec(.set, "x-dest", "v1")],
                                                    response: [HeaderOpSpec(.remove, "x-internal"), HeaderOpSpec(.add, "x-served-by", "v1")]))
        XCTAssertEqual(ws[1].headers, HeaderOpsSpec())
        XCTAssertEqual(a.retry, RetrySpec(attempts: 3, perTryTimeoutMs: 250,
                                          retryOn: [.gatewayError, .connectFailure, .retriableStatusCodes],
                                          retriableStatusCodes: [429, 503], retryRemoteLocalities: true))
        XCTAssertEqual(a.fault, FaultSpec(delay: FaultDelaySpec(fixedDelayMs: 5000, ppm: 1000),
                                          abort: FaultAbortSpec(httpStatus: 418, ppm: 1_000_000)))
        // Served by the data plane now: no "not supported" warning; a delegate still has one.
        XCTAssertFalse(build(gatewayYAML(http: "  - route: [{destination: {host: frontend}}]\n    fault: {abort: {httpStatus: 500}}")).0
                        .diagnostics.contains { $0.message.contains(unsupportedMessage) })
        XCTAssertTrue(build(gatewayYAML(http: "  - route: [{destination: {host: frontend}}]\n    delegate: {name: other}")).0
                        .diagnostics.contains { $0.message.contains(unsupportedMessage) })
        XCTAssertEqual(diags.errors, [])
    }

    func testRetryEdgeCases() {
        func retry(_ yaml: String) -> RetrySpec {
            routes("  - route: [{destination: {host: frontend}}]\n    retries: \(yaml)").1[0].actions.retry
        }
        XCTAssertEqual(retry("{attempts: 0}"), .disabled)
        // `retries` without attempts: the proto default 0 disables them (Istio retry.go).
        XCTAssertEqual(retry("{perTryTimeout: 1s}").attempts, 0)
        // attempts only: the default retryOn, no codes.
        XCTAssertEqual(retry("{attempts: 5}"), RetrySpec(attempts: 5, retryOn: RetrySpec.defaultRetryOn))
        // Codes alone bring retriable-status-codes.
        XCTAssertEqual(retry("{attempts: 1, retryOn: \"503\"}"),
                       RetrySpec(attempts: 1, retryOn: [.retriableStatusCodes], retriableStatusCodes: [503]))
        let all = retry("{attempts: 1, retryOn: \"5xx,gateway-error,reset,connect-failure,retriable-4xx,refused-stream,retriable-status-codes,cancelled,deadline-exceeded,internal,resource-exhausted,unavailable\", retryIgnorePreviousHosts: false, backoff: 50ms}")
        XCTAssertEqual(all.retryOn.rawValue, (1 << 12) - 1)
        XCTAssertFalse(all.ignorePreviousHosts)
        XCTAssertEqual(all.backoffBaseMs, 50)
    }

    func testFaultPercentages() {
        func fault(_ yaml: String) -> FaultSpec? {
            routes("  - route: [{destination: {host: frontend}}]\n    fault: \(yaml)").1[0].actions.fault
        }
        // No percentage: 0 % (never). The deprecated integer `percent` still counts.
        XCTAssertEqual(fault("{delay: {fixedDelay: 2s}}"), FaultSpec(delay: FaultDelaySpec(fixedDelayMs: 2000, ppm: 0)))
        XCTAssertEqual(fault("{delay: {fixedDelay: 100ms, percent: 30}}")?.delay, FaultDelaySpec(fixedDelayMs: 100, ppm: 300_000))
        XCTAssertEqual(fault("{delay: {fixedDelay: 1s, percent: 30, percentage: {value: 12.5}}}")?.delay?.ppm, 125_000)
        XCTAssertEqual(fault("{abort: {httpStatus: 503}}"), FaultSpec(abort: FaultAbortSpec(httpStatus: 503, ppm: 0)))
        XCTAssertEqual(fault("{abort: {httpStatus: 503, percentage: {value: 0.0001}}}")?.abort?.ppm, 1)
        XCTAssertEqual(fault("{abort: {grpcStatus: UNAVAILABLE, percentage: {value: 50}}}"),
                       FaultSpec(abort: FaultAbortSpec(httpStatus: 200, ppm: 500_000, grpcStatus: 14)))
    }

    func testRewriteVariants() {
        func rewrite(_ yaml: String) -> RewriteSpec? {
            routes("  - route: [{destination: {host: frontend}}]\n    rewrite: \(yaml)").1[0].actions.rewrite
        }
        XCTAssertEqual(rewrite("{uriRegexRewrite: {match: \"^/service/([^/]+)(/.*)$\", rewrite: \"\\\\2/instance/\\\\1\"}}"),
                       RewriteSpec(uriRegex: RegexRewriteSpec(pattern: "^/service/([^/]+)(/.*)$", substitution: "\\2/instance/\\1")))
        XCTAssertEqual(rewrite("{authority: new.example.com}"), RewriteSpec(authority: "new.example.com"))
        XCTAssertNil(rewrite("{uri: \"\"}"))
    }

    func testRewriteRegexRoundTripsThroughTheImage() throws {
        let (table, _, _) = routes("""
              - route: [{destination: {host: frontend}}]
                rewrite: {uriRegexRewrite: {match: "^/a/(.*)$", rewrite: "/b/\\\\1"}}
            """)
        let image = try TableImage.build(table)
        try image.withUnsafeBytes { raw in
            let r = try TableReader(validating: raw.baseAddress!, count: raw.count)
            XCTAssertEqual(r.decodeSpec(), table)
            let rx = try XCTUnwrap(r.rewriteRegex(route: 0))
            XCTAssertEqual(String(decoding: rx.substitution, as: UTF8.self), "/b/\\1")
        }
    }

    func testMirrorsResolveClustersAndPercentages() {
        let (table, rs, _) = routes("""
              - match: [{uri: {prefix: /one}}]
                route: [{destination: {host: frontend}}]
                mirror: {host: shadow}
              - match: [{uri: {prefix: /pct}}]
                route: [{destination: {host: frontend}}]
                mirror: {host: shadow, port: {number: 8080}}
                mirrorPercentage: {value: 12.5}
              - match: [{uri: {prefix: /zero}}]
                route: [{destination: {host: frontend}}]
                mirror: {host: shadow}
                mirrorPercentage: {value: 0}
              - route: [{destination: {host: frontend}}]
                mirrors:
                - destination: {host: shadow}
                - destination: {host: frontend, subset: nope}
                  percentage: {value: 50}
                - destination: {host: shadow}
                  percentage: {value: 0}
            """)
        let shadow = Int32(table.clusters.firstIndex { $0.name == "outbound|8080||shadow.default.svc.cluster.local" } ?? -9)
        XCTAssertGreaterThanOrEqual(shadow, 0)
        XCTAssertEqual(rs[0].actions.mirrors, [MirrorSpec(cluster: shadow, ppm: 1_000_000)])
        XCTAssertEqual(rs[1].actions.mirrors, [MirrorSpec(cluster: shadow, ppm: 125_000)])
        XCTAssertEqual(rs[2].actions.mirrors, [])  // explicit 0 %: no mirroring
        XCTAssertEqual(rs[3].actions.mirrors, [MirrorSpec(cluster: shadow), MirrorSpec(cluster: -1, ppm: 500_000)])
        XCTAssertEqual(table.clusters.filter { $0.name.hasSuffix("shadow.default.svc.cluster.local") }.count, 1)
    }

    func testCorsPolicy() {
        let (_, rs, _) = routes("""
              - match: [{uri: {prefix: /new}}]
                route: [{destination: {host: frontend}}]
                corsPolicy:
                  allowOrigins: [{exact: "https://a.example"}, {prefix: "https://b."}, {regex: "https://.*[.]c[.]example"}]
                  allowOrigin: ["https://ignored.example"]
                  allowMethods: [GET, POST]
                  allowHeaders: [x-a, X-B]
                  exposeHeaders: [x-c]
                  maxAge: 24h
                  allowCredentials: true
                  unmatchedPreflights: IGNORE
              - route: [{destination: {host: frontend}}]
                corsPolicy:
                  allowOrigin: ["https://old.example"]
                  maxAge: 90s
            """)
        XCTAssertEqual(rs[0].actions.cors, CorsSpec(allowOrigins: [.exact("https://a.example"), .prefix("https://b."),
                                                                   .regex("https://.*[.]c[.]example")],
                                                    allowMethods: ["GET", "POST"], allowHeaders: ["x-a", "X-B"],
                                                    exposeHeaders: ["x-c"], maxAgeSeconds: 86400, allowCredentials: true,
                                                    unmatchedPreflights: .ignore))
        XCTAssertEqual(rs[1].actions.cors, CorsSpec(allowOrigins: [.exact("https://old.example")], maxAgeSeconds: 90))
        XCTAssertNil(rs[0].actions.rewrite)
    }

    func testRoutesOutputShowsActionsAndClusterPolicies() throws {
        let (table, _, _) = routes("""
              - match: [{uri: {prefix: /api/}}]
                rewrite: {uri: /v2/, authority: backend.internal}
                headers:
                  request: {set: {X-Env: prod}, remove: [Cookie]}
                  response: {add: {X-Served: gw}}
                route:
                - destination: {host: frontend}
                  weight: 90
                  headers: {request: {set: {X-Dest: v1}}}
                - destination: {host: shadow}
                  weight: 10
                retries: {attempts: 3, perTryTimeout: 250ms, retryOn: "gateway-error,503"}
                fault: {delay: {fixedDelay: 5s, percentage: {value: 0.1}}, abort: {httpStatus: 418, percentage: {value: 100}}}
                mirrors: [{destination: {host: shadow}, percentage: {value: 12.5}}]
                corsPolicy: {allowOrigins: [{exact: "https://a.example"}, {regex: "https://.*"}], allowMethods: [GET, POST], maxAge: 60s, allowCredentials: true}
              - route: [{destination: {host: frontend}}]
                retries: {attempts: 0}
            """)
        let out = renderRoutes(table)
        for line in [
            "       rewrite: uri \"/v2/\" (replaces the matched prefix), authority \"backend.internal\"",
            "       request headers: remove cookie, set x-env \"prod\"",
            "       response headers: add x-served \"gw\"",
            "       destination outbound|80||frontend.default.svc.cluster.local request headers: set x-dest \"v1\"",
            "       retries: 3 attempts on gateway-error,retriable-status-codes codes 503 per-try-timeout 250ms",
            "       fault: delay 5000ms for 0.1%, abort 418 for 100%",
            "       mirror: 12.5% to outbound|8080||shadow.default.svc.cluster.local",
            "       cors: origins exact \"https://a.example\" | regex \"https://.*\", methods GET,POST, max-age 60s, credentials",
            "       retries: none",
            "  outbound|80||frontend.default.svc.cluster.local connect-timeout 10000ms lb least-request",
        ] {
            XCTAssertTrue(out.contains(line + "\n"), "missing \(line) in\n\(out)")
        }

        // The admin /config_dump carries the same, as JSON.
        let dump = renderConfigDumpJSON(table, generation: 1)
        let root = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(dump.utf8)) as? [String: Any], dump)
        let route = try XCTUnwrap(((((root["listeners"] as? [[String: Any]])?.first?["virtualHosts"] as? [[String: Any]])?
            .first?["routes"] as? [[String: Any]])?.first), dump)
        let actions = try XCTUnwrap(route["actions"] as? [String: Any])
        XCTAssertEqual((actions["rewrite"] as? [String: Any])?["uri"] as? String, "/v2/")
        XCTAssertEqual((actions["retries"] as? [String: Any])?["retriableStatusCodes"] as? [Int], [503])
        XCTAssertEqual(((actions["fault"] as? [String: Any])?["abort"] as? [String: Any])?["ppm"] as? Int, 1_000_000)
        XCTAssertEqual((actions["mirrors"] as? [[String: Any]])?.first?["ppm"] as? Int, 125_000)
        XCTAssertEqual((actions["corsPolicy"] as? [String: Any])?["maxAgeSeconds"] as? Int, 60)
        let forward = try XCTUnwrap((route["action"] as? [String: Any])?["forward"] as? [[String: Any]])
        XCTAssertNotNil(forward[0]["headers"])
        XCTAssertNil(forward[1]["headers"])
        let cluster = try XCTUnwrap((root["clusters"] as? [[String: Any]])?.first)
        XCTAssertEqual(cluster["loadBalancer"] as? String, "least-request")
        XCTAssertEqual((cluster["connectionPool"] as? [String: Any])?["idleTimeoutMs"] as? Int, 3_600_000)

        let (_, plain, _) = routes("  - route: [{destination: {host: frontend}}]")
        XCTAssertEqual(renderActionLines(plain[0], table),
                       ["retries: 2 attempts on connect-failure,refused-stream,retriable-status-codes,cancelled,unavailable (Istio default)"])
    }
}

/// A Gateway `gw` on port 80 for every host: the start of the compiler tests' configurations.
let catchAllGateway = """
    apiVersion: networking.istio.io/v1
    kind: Gateway
    metadata: {name: gw}
    spec:
      servers:
      - port: {number: 80, name: http, protocol: HTTP}
        hosts: ["*"]

    """

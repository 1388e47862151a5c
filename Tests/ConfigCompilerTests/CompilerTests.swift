import ConfigCompiler
import Foundation
import IstioConfig
import RouteTable
import XCTest

/// A resolver that knows a fixed set of names, so tests never touch real DNS.
let fakeDNS: @Sendable (String) -> [[UInt8]] = { host in
    switch host {
    case "kiali": return [[10, 0, 0, 1]]
    case "tracing": return [[10, 0, 0, 2], [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]]
    case "frontend": return [[10, 0, 0, 3]]
    case "api.example.com": return [[192, 0, 2, 10], [192, 0, 2, 11]]
    default: return []
    }
}

func build(_ yaml: String, namespace: String = "default") -> (LoadResult, TableSpec, [Diagnostic]) {
    let loaded = ConfigLoader(defaultNamespace: namespace).load(yaml: yaml, file: "test.yaml")
    let (table, diags) = compile(loaded.resources, options: CompileOptions(resolve: fakeDNS))
    return (loaded, table, diags)
}

func clusterNames(_ route: RouteSpec, _ table: TableSpec) -> [String] {
    guard case .forward(let ws) = route.action else { return [] }
    return ws.map { $0.cluster < 0 ? "-1" : table.clusters[Int($0.cluster)].name }
}

let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/workshop").path

final class CompilerTests: XCTestCase {
    func testWorkshopFilesMergeIntoOneListener() {
        // The workshop applied the add-ons in istio-system and the shop in its own namespace.
        let addons = ConfigLoader(defaultNamespace: "istio-system").load(paths: [fixtures + "/addons-ingress.yaml"])
        let shop = ConfigLoader(defaultNamespace: "hipster-app").load(paths: [fixtures + "/frontend-ingress.yaml"])
        XCTAssertFalse(addons.hasErrors || shop.hasErrors, "\(addons.diagnostics + shop.diagnostics)")
        let (table, diags) = compile(addons.resources + shop.resources, options: CompileOptions(resolve: fakeDNS))
        XCTAssertEqual(diags.errors, [])
        XCTAssertEqual(diags.filter { $0.severity == .note && $0.path == "spec.selector" }.count, 1)
        XCTAssertEqual(table.listeners.count, 1)
        let l = table.listeners[0]
        XCTAssertEqual(l.port, 80)
        XCTAssertEqual(l.proto, .http)
        XCTAssertEqual(l.virtualHosts.map(\.domains), [["dashboard.example.com"], ["tracing.example.com"], ["hipster.example.com"]])
        let dashboard = l.virtualHosts[0]
        XCTAssertEqual(dashboard.name, "dashboard.example.com:80")
        XCTAssertEqual(dashboard.routes.map(\.name), ["istio-system/kiali/0.0", "istio-system/tracing/0.0"])
        XCTAssertEqual(dashboard.routes[0].matches, [MatchSpec(uri: .prefix("/kiali"))])
        XCTAssertEqual(clusterNames(dashboard.routes[0], table), ["outbound|20001||kiali.istio-system.svc.cluster.local"])
        XCTAssertEqual(clusterNames(dashboard.routes[1], table), ["outbound|80||tracing.istio-system.svc.cluster.local"])
        // tracing-host shares the tracing cluster.
        XCTAssertEqual(l.virtualHosts[1].routes.count, 1)
        XCTAssertEqual(l.virtualHosts[1].routes[0].matches, [])
        XCTAssertEqual(clusterNames(l.virtualHosts[1].routes[0], table), ["outbound|80||tracing.istio-system.svc.cluster.local"])
        XCTAssertEqual(clusterNames(l.virtualHosts[2].routes[0], table), ["outbound|80||frontend.hipster-app.svc.cluster.local"])
        XCTAssertEqual(table.clusters.count, 3)
        XCTAssertEqual(table.clusters[1].endpoints.map { formatAddress($0.address, port: $0.port) },
                       ["10.0.0.2:80", "[2001:db8::2]:80"])
        XCTAssertEqual(table.clusters.flatMap(\.endpoints).map(\.id), [0, 1, 2, 3])
        XCTAssertEqual(table.clusters.map(\.connectTimeoutMs), [10_000, 10_000, 10_000])

        let all = IstioConfig.load(paths: [fixtures], defaultNamespace: "default")
        let (t2, _) = compile(all.resources, options: CompileOptions(resolve: fakeDNS))
        XCTAssertEqual(renderCheckSummary(all, t2),
                       "ok: 3 files, 7 resources (2 Gateway, 4 VirtualService, 1 DestinationRule) → 1 listener, 3 virtual hosts, 4 routes, 3 clusters")
    }

    func testCanaryWeightsAndSubsetFiltering() throws {
        let (loaded, table, _) = build("""
            apiVersion: networking.istio.io/v1alpha3
            kind: Gateway
            metadata: {name: app-gateway}
            spec:
              servers:
              - port: {number: 80, name: http, protocol: HTTP}
                hosts: ["hipster.example.com"]
            ---
            apiVersion: networking.istio.io/v1
            kind: ServiceEntry
            metadata: {name: frontend}
            spec:
              hosts: [frontend.default.svc.cluster.local]
              ports: [{number: 80, name: http, protocol: HTTP, targetPort: 8080}]
              resolution: STATIC
              endpoints:
              - {address: 10.1.0.1, labels: {version: v0.1.2}}
              - {address: 10.1.0.2, labels: {version: v0.1.2}, ports: {http: 9090}, weight: 3}
              - {address: 10.1.0.3, labels: {version: v0.1.3}}
            ---

            """ + (try String(contentsOfFile: fixtures + "/frontend-canary.yaml", encoding: .utf8)))
        XCTAssertFalse(loaded.hasErrors, "\(loaded.diagnostics)")
        let route = table.listeners[0].virtualHosts[0].routes[0]
        guard case .forward(let ws) = route.action else { return XCTFail("\(route.action)") }
        XCTAssertEqual(ws.map(\.weight), [80, 20])
        XCTAssertEqual(clusterNames(route, table), ["outbound|80|v1|frontend.default.svc.cluster.local",
                                                    "outbound|80|v2|frontend.default.svc.cluster.local"])
        let v1 = table.clusters[Int(ws[0].cluster)].endpoints
        XCTAssertEqual(v1.map { formatAddress($0.address, port: $0.port) }, ["10.1.0.1:8080", "10.1.0.2:9090"])
        XCTAssertEqual(v1.map(\.weight), [1, 3])
        XCTAssertEqual(table.clusters[Int(ws[1].cluster)].endpoints.map { formatAddress($0.address, port: $0.port) },
                       ["10.1.0.3:8080"])
        XCTAssertTrue(renderRoutes(table).contains("action: forward 80% outbound|80|v1|frontend.default.svc.cluster.local, 20% outbound|80|v2|frontend.default.svc.cluster.local"),
                      renderRoutes(table))
    }

    func testMissingSubsetGivesNoClusterAndWeightZeroIsDropped() {
        let (_, table, _) = build("""
            apiVersion: networking.istio.io/v1
            kind: Gateway
            metadata: {name: gw}
            spec:
              servers:
              - port: {number: 80, name: http, protocol: HTTP}
                hosts: ["*"]
            ---
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata: {name: vs}
            spec:
              hosts: [a.example.com]
              gateways: [gw]
              http:
              - route:
                - destination: {host: frontend, subset: v9, port: {number: 80}}
                  weight: 100
                - destination: {host: kiali, port: {number: 80}}
                  weight: 0
            """)
        XCTAssertEqual(table.listeners[0].virtualHosts[0].routes[0].action, .forward([WeightedClusterSpec(cluster: -1, weight: 100)]))
        XCTAssertEqual(table.clusters, [])
    }

    func testCatchAllsMoveLastAndStopTheirVirtualService() {
        let (_, table, _) = build("""
            apiVersion: networking.istio.io/v1
            kind: Gateway
            metadata: {name: gw}
            spec:
              servers:
              - port: {number: 80, name: http, protocol: HTTP}
                hosts: ["*.example.com"]
            ---
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata: {name: b-first}
            spec:
              hosts: [shop.example.com]
              gateways: [gw]
              http:
              - match: [{uri: {prefix: /api}}, {uri: {prefix: /}}, {uri: {prefix: /never}}]
                route: [{destination: {host: kiali, port: {number: 1}}}]
              - route: [{destination: {host: kiali, port: {number: 2}}}]
            ---
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata: {name: a-second}
            spec:
              hosts: [shop.example.com, other.example.com]
              gateways: [gw]
              http:
              - name: web
                match: [{uri: {prefix: /web}, name: w}]
                directResponse: {status: 418, body: {string: teapot}}
              - match: [{uri: {regex: ".*"}}]
                redirect: {scheme: https}
            """)
        let hosts = table.listeners[0].virtualHosts
        XCTAssertEqual(hosts.map(\.domains), [["shop.example.com"], ["other.example.com"]])
        guard hosts.count == 2, hosts[0].routes.count == 4 else { return XCTFail(renderRoutes(table)) }
        XCTAssertEqual(hosts[0].routes.map(\.name), ["default/b-first/0.0", "default/a-second/web.w", "default/b-first/0.1",
                                                     "default/a-second/1.0"])
        XCTAssertEqual(hosts[0].routes[1].action, .directResponse(status: 418, body: Array("teapot".utf8)))
        XCTAssertEqual(hosts[0].routes[3].action, .redirect(RedirectSpec(status: 301, scheme: "https")))
        XCTAssertEqual(hosts[1].routes.map(\.name), ["default/a-second/web.w", "default/a-second/1.0"])
    }

    func testNamespaceQualifiedServerHostsAndWildcardIntersection() {
        let (_, table, diags) = build("""
            apiVersion: networking.istio.io/v1
            kind: Gateway
            metadata: {name: gw, namespace: edge}
            spec:
              servers:
              - port: {number: 8080, name: http, protocol: HTTP}
                hosts: ["team-a/*.foo.com", "./edge.example.com"]
              - port: {number: 443, name: https, protocol: HTTPS}
                hosts: ["*"]
                tls: {mode: SIMPLE, credentialName: cert}
            ---
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata: {name: a, namespace: team-a}
            spec:
              hosts: ["*.bar.foo.com", edge.example.com]
              gateways: [edge/gw]
              http: [{route: [{destination: {host: kiali, port: {number: 80}}}]}]
            ---
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata: {name: b, namespace: team-b}
            spec:
              hosts: [x.foo.com]
              gateways: [edge/gw]
              http: [{route: [{destination: {host: kiali, port: {number: 80}}}]}]
            ---
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata: {name: mesh-only, namespace: team-a}
            spec:
              hosts: [mesh.foo.com]
              http: [{route: [{destination: {host: kiali}}]}]
            """)
        XCTAssertEqual(table.listeners.map(\.port), [443, 8080])
        XCTAssertEqual(table.listeners[0].proto, .https)
        XCTAssertEqual(table.listeners[0].virtualHosts, [])
        XCTAssertEqual(table.listeners[1].virtualHosts.map(\.domains), [["*.bar.foo.com"]])
        XCTAssertEqual(clusterNames(table.listeners[1].virtualHosts[0].routes[0], table),
                       ["outbound|80||kiali.team-a.svc.cluster.local"])
        XCTAssertTrue(diags.contains { $0.name == "mesh-only" && $0.severity == .note })
    }

    func testShortNamesLegacyGatewayNamesAndDNSServiceEntries() {
        let (loaded, table, diags) = build("""
            apiVersion: networking.istio.io/v1
            kind: Gateway
            metadata: {name: gw, namespace: edge}
            spec:
              servers:
              - port: {number: 80, name: http, protocol: HTTP}
                hosts: ["*"]
                tls: {httpsRedirect: true}
            ---
            apiVersion: networking.istio.io/v1
            kind: ServiceEntry
            metadata: {name: api}
            spec:
              hosts: [api.example.com]
              ports: [{number: 443, name: https, protocol: HTTPS}]
              resolution: DNS
            ---
            apiVersion: networking.istio.io/v1
            kind: DestinationRule
            metadata: {name: api}
            spec:
              host: api.example.com
              trafficPolicy: {connectionPool: {tcp: {connectTimeout: 250ms}}}
            ---
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata: {name: vs}
            spec:
              hosts: [www.example.com]
              gateways: [gw.edge]
              http:
              - match: [{uri: {exact: /api}}]
                route: [{destination: {host: api.example.com}}]
                timeout: 2s
              - route: [{destination: {host: nowhere}}]
            """)
        XCTAssertFalse(loaded.hasErrors, "\(loaded.diagnostics)")
        let vh = table.listeners[0].virtualHosts[0]
        XCTAssertTrue(vh.httpsRedirect)
        XCTAssertEqual(vh.routes[0].timeoutMs, 2000)
        XCTAssertEqual(clusterNames(vh.routes[0], table), ["outbound|443||api.example.com"])
        XCTAssertEqual(table.clusters[0].connectTimeoutMs, 250)
        XCTAssertEqual(table.clusters[0].endpoints.map { formatAddress($0.address, port: $0.port) },
                       ["192.0.2.10:443", "192.0.2.11:443"])
        XCTAssertEqual(clusterNames(vh.routes[1], table), ["outbound|80||nowhere.default.svc.cluster.local"])
        XCTAssertEqual(table.clusters[1].endpoints, [])
        XCTAssertTrue(diags.contains { $0.code == "IST0101" && $0.message.hasPrefix("Referenced host not found: \"nowhere\"") },
                      "\(diags)")
        let json = renderConfigDumpJSON(table, generation: 7)
        XCTAssertNotNil(try? JSONSerialization.jsonObject(with: Data(json.utf8)), json)
        XCTAssertTrue(json.hasPrefix("{\"generation\":7,\"listeners\":[{\"port\":80,\"protocol\":\"HTTP\""), json)
    }
}

final class CompileLimitTests: XCTestCase {
    /// Routes are copied to every host they serve: 1,000 hosts × 101 routes is past the
    /// 100,000-route limit from a 60 KB file. Compiling stops with an error on the
    /// VirtualService instead of building the table.
    func testRoutesMultipliedByHostsPastTheLimitAreAnError() {
        let hosts = (0..<1_000).map { "h\($0).example.com" }.joined(separator: ", ")
        let routes = (0...100).map { "  - match: [{uri: {prefix: /p\($0)}}]\n    route: [{destination: {host: frontend}}]" }
            .joined(separator: "\n")
        let yaml = """
            apiVersion: networking.istio.io/v1
            kind: Gateway
            metadata: {name: gw}
            spec:
              servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ["*"]}]
            ---
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata:
              name: vs
            spec:
              gateways: [gw]
              hosts: [\(hosts)]
              http:
            \(routes)
            """
        let start = Date()
        let (loaded, _, diags) = build(yaml)
        XCTAssertEqual(loaded.diagnostics.errors, [])
        XCTAssertEqual(diags.errors.map(\.description),
                       ["test.yaml:14: VirtualService default/vs: spec.http: the configuration compiles to more than 100000 routes (every route counts once per host it serves); at most 100000"])
        XCTAssertLessThan(Date().timeIntervalSince(start), 20)
    }
}

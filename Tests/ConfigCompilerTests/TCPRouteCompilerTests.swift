import ConfigCompiler
import IstioConfig
import RouteTable
import XCTest

/// VirtualService tcp blocks on TCP/MONGO Gateway servers (istio-semantics.md §3.3).
final class TCPRouteCompilerTests: XCTestCase {
    let gateway = """
        apiVersion: networking.istio.io/v1beta1
        kind: Gateway
        metadata:
          name: gw
        spec:
          servers:
          - port: {number: 31400, name: tcp, protocol: TCP}
            hosts: ["*"]
          - port: {number: 27017, name: mongo, protocol: MONGO}
            hosts: ["*"]
          - port: {number: 80, name: http, protocol: HTTP}
            hosts: ["*"]
        ---
        apiVersion: networking.istio.io/v1beta1
        kind: ServiceEntry
        metadata:
          name: echo
        spec:
          hosts: ["echo"]
          location: MESH_INTERNAL
          resolution: STATIC
          ports: [{number: 9000, name: tcp, protocol: TCP}]
          endpoints:
          - {address: 127.0.0.1, ports: {tcp: 9001}, labels: {version: v1}}
          - {address: 127.0.0.1, ports: {tcp: 9002}, labels: {version: v2}}
        ---
        apiVersion: networking.istio.io/v1beta1
        kind: DestinationRule
        metadata:
          name: echo
        spec:
          host: echo
          subsets:
          - {name: v1, labels: {version: v1}}
          - {name: v2, labels: {version: v2}}
        """

    func tcpRoutes(_ table: TableSpec, port: UInt16) -> [TCPRouteSpec] {
        table.listeners.first { $0.port == port }?.tcpRoutes ?? []
    }

    func names(_ r: TCPRouteSpec, _ table: TableSpec) -> [String] {
        r.destinations.map { $0.cluster < 0 ? "-1" : table.clusters[Int($0.cluster)].name + " \($0.weight)" }
    }

    func testFirstFittingBlockPerServerWithWeightsAndSubsets() {
        let (loaded, table, diags) = build(gateway + """

            ---
            apiVersion: networking.istio.io/v1beta1
            kind: VirtualService
            metadata:
              name: echo
            spec:
              hosts: ["*"]
              gateways: ["gw"]
              tcp:
              - match: [{port: 27017}]
                route:
                - destination: {host: echo, port: {number: 9000}, subset: v2}
              - match: [{port: 31400}]
                route:
                - destination: {host: echo, port: {number: 9000}, subset: v1}
                  weight: 80
                - destination: {host: echo, port: {number: 9000}, subset: v2}
                  weight: 20
              - route:
                - destination: {host: echo, port: {number: 9000}}
            """)
        XCTAssertFalse(loaded.hasErrors, "\(loaded.diagnostics)")
        XCTAssertEqual(diags.errors, [])
        XCTAssertEqual(table.listeners.map(\.proto), [.http, .tcp, .tcp])
        let tcp = tcpRoutes(table, port: 31400)
        XCTAssertEqual(tcp.map(\.name), ["default/echo/tcp[1]"])
        XCTAssertEqual(names(tcp[0], table), ["outbound|9000|v1|echo.default.svc.cluster.local 80", "outbound|9000|v2|echo.default.svc.cluster.local 20"])
        let mongo = tcpRoutes(table, port: 27017)
        XCTAssertEqual(mongo.map(\.name), ["default/echo/tcp[0]"])
        XCTAssertEqual(names(mongo[0], table), ["outbound|9000|v2|echo.default.svc.cluster.local 100"])
        XCTAssertEqual(table.clusters.first { $0.name == "outbound|9000|v1|echo.default.svc.cluster.local" }?.endpoints.map(\.port), [9001])
        // The HTTP listener gets no TCP routes and no virtual hosts from a tcp-only VirtualService.
        XCTAssertEqual(table.listeners[0].tcpRoutes, [])
        XCTAssertEqual(table.listeners[0].virtualHosts.flatMap(\.routes), [])
        // The image carries them and renders them.
        let image = try? TableImage.build(table)
        XCTAssertNotNil(image)
        XCTAssertTrue(renderRoutes(table).contains("default/echo/tcp[1]"))
        XCTAssertTrue(renderRoutes(table).contains("80% outbound|9000|v1|echo.default.svc.cluster.local"))
        XCTAssertTrue(renderConfigDumpJSON(table, generation: 1).contains("\"tcpRoutes\":[{\"name\":\"default/echo/tcp[0]\""))
    }

    func testUnboundOrNonMatchingVirtualServicesGiveNoRoute() {
        let (_, table, diags) = build(gateway + """

            ---
            apiVersion: networking.istio.io/v1beta1
            kind: VirtualService
            metadata:
              name: mesh-only
            spec:
              hosts: ["echo"]
              tcp:
              - route:
                - destination: {host: echo, port: {number: 9000}}
            ---
            apiVersion: networking.istio.io/v1beta1
            kind: VirtualService
            metadata:
              name: other-port
            spec:
              hosts: ["*"]
              gateways: ["gw"]
              tcp:
              - match: [{port: 5555}]
                route:
                - destination: {host: echo, port: {number: 9000}}
            ---
            apiVersion: networking.istio.io/v1beta1
            kind: VirtualService
            metadata:
              name: other-gateway
            spec:
              hosts: ["*"]
              gateways: ["gw"]
              tcp:
              - match: [{gateways: ["elsewhere"]}]
                route:
                - destination: {host: echo, port: {number: 9000}}
            """)
        XCTAssertEqual(diags.errors, [])
        XCTAssertEqual(tcpRoutes(table, port: 31400), [])
        XCTAssertEqual(tcpRoutes(table, port: 27017), [])
        XCTAssertTrue(renderRoutes(table).contains("no tcp routes: connections are closed"))
    }

    func testMatchGatewaysBindAndSubnetsAreNotedNotMatched() {
        // The VirtualService names the gateway only in a match; destinationSubnets is ignored
        // on gateways (as in Istio), with a note; a later VirtualService does not override.
        let (_, table, diags) = build(gateway + """

            ---
            apiVersion: networking.istio.io/v1beta1
            kind: VirtualService
            metadata:
              name: first
            spec:
              hosts: ["*"]
              tcp:
              - match: [{gateways: ["gw"], destinationSubnets: ["10.0.0.0/8"]}]
                route:
                - destination: {host: echo, port: {number: 9000}, subset: v2}
            ---
            apiVersion: networking.istio.io/v1beta1
            kind: VirtualService
            metadata:
              name: second
            spec:
              hosts: ["*"]
              gateways: ["gw"]
              tcp:
              - route:
                - destination: {host: echo, port: {number: 9000}, subset: v1}
            """)
        XCTAssertEqual(diags.errors, [])
        let tcp = tcpRoutes(table, port: 31400)
        XCTAssertEqual(tcp.map(\.name), ["default/first/tcp[0]"])
        XCTAssertEqual(names(tcp[0], table), ["outbound|9000|v2|echo.default.svc.cluster.local 100"])
        XCTAssertTrue(diags.contains { $0.severity == .note && $0.path == "spec.tcp[0].match[0]" }, "\(diags)")
    }

    func testMissingSubsetIsNoCluster() {
        let (_, table, _) = build(gateway + """

            ---
            apiVersion: networking.istio.io/v1beta1
            kind: VirtualService
            metadata:
              name: echo
            spec:
              hosts: ["*"]
              gateways: ["gw"]
              tcp:
              - route:
                - destination: {host: echo, port: {number: 9000}, subset: v9}
            """)
        XCTAssertEqual(tcpRoutes(table, port: 31400).first?.destinations, [WeightedClusterSpec(cluster: -1, weight: 100)])
    }
}

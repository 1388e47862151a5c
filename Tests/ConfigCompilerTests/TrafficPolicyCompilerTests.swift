import ConfigCompiler
import Foundation
import IstioConfig
import RouteTable
import XCTest

/// DestinationRule loadBalancer / connectionPool → ClusterSpec, with Istio's merge precedence.
final class TrafficPolicyCompilerTests: XCTestCase {
    /// Gateway, a two-port ServiceEntry `frontend` with v1/v2 endpoints (or the `ports` given),
    /// `rule` (a DestinationRule spec) and one VirtualService route per (prefix, destination) pair.
    func clusters(rule: String, routes: [(String, String)],
                  ports: String = "[{number: 80, name: http, protocol: HTTP}, {number: 9090, name: admin, protocol: HTTP}]",
                  file: StaticString = #filePath, line: UInt = #line) -> [String: ClusterSpec] {
        let http = routes.map { prefix, dest in
            "  - match: [{uri: {prefix: \(prefix)}}]\n    route: [{destination: \(dest)}]"
        }.joined(separator: "\n")
        let (loaded, table, diags) = build(catchAllGateway + """
            ---
            apiVersion: networking.istio.io/v1
            kind: ServiceEntry
            metadata: {name: frontend}
            spec:
              hosts: [frontend.default.svc.cluster.local]
              ports: \(ports)
              resolution: STATIC
              endpoints:
              - {address: 10.1.0.1, labels: {version: v1}}
              - {address: 10.1.0.2, labels: {version: v2}}
            ---
            apiVersion: networking.istio.io/v1
            kind: DestinationRule
            metadata: {name: frontend}
            spec:
              host: frontend
            \(rule.split(separator: "\n").map { "  " + $0 }.joined(separator: "\n"))
            ---
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata: {name: vs}
            spec:
              hosts: [a.example.com]
              gateways: [gw]
              http:
            \(http)
            """)
        XCTAssertFalse(loaded.hasErrors, "\(loaded.diagnostics)", file: file, line: line)
        XCTAssertEqual(diags.errors, [], file: file, line: line)
        return Dictionary(uniqueKeysWithValues: table.clusters.map { ($0.name, $0) })
    }

    func testMergePrecedenceTopPortSubsetSubsetPort() throws {
        let cs = clusters(rule: """
            trafficPolicy:
              loadBalancer: {simple: ROUND_ROBIN}
              connectionPool:
                tcp: {maxConnections: 100, connectTimeout: 2s}
                http: {http1MaxPendingRequests: 10, http2MaxRequests: 500, maxRequestsPerConnection: 1, maxRetries: 3, idleTimeout: 30s}
              portLevelSettings:
              - port: {number: 9090}
                loadBalancer: {simple: RANDOM}
            subsets:
            - name: v1
              labels: {version: v1}
              trafficPolicy:
                loadBalancer:
                  consistentHash: {httpCookie: {name: user, path: /, ttl: 60s}}
            - name: v2
              labels: {version: v2}
              trafficPolicy:
                connectionPool: {http: {idleTimeout: 0s}}
                portLevelSettings:
                - port: {number: 80}
                  loadBalancer: {consistentHash: {httpHeaderName: X-User, maglev: {tableSize: 65537}}}
            """, routes: [
                ("/a", "{host: frontend, port: {number: 80}}"),
                ("/b", "{host: frontend, port: {number: 9090}}"),
                ("/c", "{host: frontend, subset: v1, port: {number: 80}}"),
                ("/d", "{host: frontend, subset: v2, port: {number: 80}}"),
                ("/e", "{host: frontend, subset: v2, port: {number: 9090}}"),
                ("/f", "{host: frontend, subset: v1, port: {number: 9090}}"),
            ])
        let topPool = ConnectionPoolSpec(maxConnections: 100, maxPendingRequests: 10, maxRequests: 500,
                                         maxRequestsPerConnection: 1, maxRetries: 3, idleTimeoutMs: 30_000)
        let fqdn = "frontend.default.svc.cluster.local"
        // Top level.
        let a = try XCTUnwrap(cs["outbound|80||\(fqdn)"])
        XCTAssertEqual(a.loadBalancer, LoadBalancerSpec(kind: .roundRobin))
        XCTAssertEqual(a.connectionPool, topPool)
        XCTAssertEqual(a.connectTimeoutMs, 2000)
        // Top-level port settings replace every field: the connection pool is not inherited.
        let b = try XCTUnwrap(cs["outbound|9090||\(fqdn)"])
        XCTAssertEqual(b.loadBalancer, LoadBalancerSpec(kind: .random))
        XCTAssertEqual(b.connectionPool, ConnectionPoolSpec())
        XCTAssertEqual(b.connectTimeoutMs, 10_000)
        // Subset fields replace the top-level ones they set; the others are inherited.
        let c = try XCTUnwrap(cs["outbound|80|v1|\(fqdn)"])
        XCTAssertEqual(c.loadBalancer, LoadBalancerSpec(kind: .ringHash, hashKey: .cookie(name: "user", path: "/", ttlSeconds: 60),
                                                        tableSize: 1024))
        XCTAssertEqual(c.connectionPool, topPool)
        XCTAssertEqual(c.connectTimeoutMs, 2000)
        // Subset port settings replace everything.
        let d = try XCTUnwrap(cs["outbound|80|v2|\(fqdn)"])
        XCTAssertEqual(d.loadBalancer, LoadBalancerSpec(kind: .maglev, hashKey: .header("x-user"), tableSize: 65537))
        XCTAssertEqual(d.connectionPool, ConnectionPoolSpec())
        // Top port settings, then the subset's connection pool (idleTimeout 0s disables it).
        let e = try XCTUnwrap(cs["outbound|9090|v2|\(fqdn)"])
        XCTAssertEqual(e.loadBalancer, LoadBalancerSpec(kind: .random))
        XCTAssertEqual(e.connectionPool, ConnectionPoolSpec(idleTimeoutMs: 0))
        let f = try XCTUnwrap(cs["outbound|9090|v1|\(fqdn)"])
        XCTAssertEqual(f.loadBalancer.kind, .ringHash)
        XCTAssertEqual(f.connectionPool, ConnectionPoolSpec())
    }

    /// connectionPool.http.http2KeepAlive compiles into the cluster (interval and timeout in ms)
    /// and survives the image; a cluster without it has none.
    func testHTTP2KeepAliveCompiles() throws {
        let cs = clusters(rule: """
            trafficPolicy:
              connectionPool:
                http: {http2KeepAlive: {interval: 200ms, timeout: 1s}}
            subsets:
            - name: v1
              labels: {version: v1}
              trafficPolicy:
                connectionPool: {http: {maxRetries: 2}}
            """, routes: [
                ("/a", "{host: frontend, port: {number: 80}}"),
                ("/b", "{host: frontend, subset: v1, port: {number: 80}}"),
            ])
        let fqdn = "frontend.default.svc.cluster.local"
        let a = try XCTUnwrap(cs["outbound|80||\(fqdn)"])
        XCTAssertEqual(a.connectionPool, ConnectionPoolSpec(http2KeepaliveIntervalMs: 200, http2KeepaliveTimeoutMs: 1000))
        XCTAssertTrue(renderClusterPolicy(a).contains("http2-keepalive 200ms/1000ms"), renderClusterPolicy(a))
        // The subset's connection pool replaces the top-level one (Istio's merge).
        let b = try XCTUnwrap(cs["outbound|80|v1|\(fqdn)"])
        XCTAssertEqual(b.connectionPool.http2KeepaliveIntervalMs, 0)
        XCTAssertEqual(b.connectionPool.http2KeepaliveTimeoutMs, 0)
    }

    func testLoadBalancerVariantsAndDefaults() throws {
        let cs = clusters(rule: """
            trafficPolicy: {loadBalancer: {simple: LEAST_CONN}}
            subsets:
            - name: src
              labels: {version: v1}
              trafficPolicy: {loadBalancer: {consistentHash: {useSourceIp: true, ringHash: {minimumRingSize: 4096}}}}
            - name: query
              labels: {version: v1}
              trafficPolicy: {loadBalancer: {consistentHash: {httpQueryParameterName: User, minimumRingSize: 2048}}}
            - name: nottl
              labels: {version: v2}
              trafficPolicy: {loadBalancer: {consistentHash: {httpCookie: {name: s}}}}
            - name: pass
              labels: {version: v2}
              trafficPolicy: {loadBalancer: {simple: PASSTHROUGH}}
            """, routes: [
                ("/a", "{host: frontend, port: {number: 80}}"),
                ("/b", "{host: frontend, subset: src, port: {number: 80}}"),
                ("/c", "{host: frontend, subset: query, port: {number: 80}}"),
                ("/d", "{host: frontend, subset: nottl, port: {number: 80}}"),
                ("/e", "{host: frontend, subset: pass, port: {number: 80}}"),
                ("/f", "{host: kiali}"),
            ])
        let fqdn = "frontend.default.svc.cluster.local"
        XCTAssertEqual(cs["outbound|80||\(fqdn)"]?.loadBalancer, LoadBalancerSpec(kind: .leastRequest))
        XCTAssertEqual(cs["outbound|80|src|\(fqdn)"]?.loadBalancer, LoadBalancerSpec(kind: .ringHash, hashKey: .sourceIP, tableSize: 4096))
        XCTAssertEqual(cs["outbound|80|query|\(fqdn)"]?.loadBalancer,
                       LoadBalancerSpec(kind: .ringHash, hashKey: .queryParameter("User"), tableSize: 2048))
        XCTAssertEqual(cs["outbound|80|nottl|\(fqdn)"]?.loadBalancer,
                       LoadBalancerSpec(kind: .ringHash, hashKey: .cookie(name: "s", path: nil, ttlSeconds: nil), tableSize: 1024))
        XCTAssertEqual(cs["outbound|80|pass|\(fqdn)"]?.loadBalancer, LoadBalancerSpec(kind: .passthrough))
        // No DestinationRule: LEAST_REQUEST and unlimited limits (2^32-1), idle timeout 1 h.
        let kiali = try XCTUnwrap(cs["outbound|80||kiali.default.svc.cluster.local"])
        XCTAssertEqual(kiali.loadBalancer, LoadBalancerSpec(kind: .leastRequest))
        XCTAssertEqual(kiali.connectionPool, ConnectionPoolSpec(maxConnections: UInt32.max, maxPendingRequests: UInt32.max,
                                                                maxRequests: UInt32.max, maxRequestsPerConnection: 0,
                                                                maxRetries: UInt32.max, idleTimeoutMs: 3_600_000))
    }

    /// Upstream HTTP/2 (TrafficPolicies.swift `http2(portProtocol:)`; istio-semantics.md §4
    /// `connectionPool.http.h2UpgradePolicy`, §5 `ports[].protocol`): an HTTP/2 port protocol
    /// always; otherwise `h2UpgradePolicy: UPGRADE` after the merge; `useClientProtocol` never.
    func testUpstreamHTTP2FromPortProtocolAndH2UpgradePolicy() throws {
        let ports = "[{number: 80, name: http, protocol: HTTP}, {number: 8080, name: http-alt, protocol: HTTP}, {number: 9090, name: grpc, protocol: GRPC}, {number: 9091, name: h2, protocol: HTTP2}]"
        let routes = [("/a", "{host: frontend, port: {number: 80}}"), ("/b", "{host: frontend, port: {number: 8080}}"),
                      ("/c", "{host: frontend, port: {number: 9090}}"), ("/d", "{host: frontend, port: {number: 9091}}"),
                      ("/e", "{host: frontend, subset: v1, port: {number: 80}}"),
                      ("/f", "{host: frontend, subset: v1, port: {number: 9090}}"), ("/g", "{host: kiali}")]
        let fqdn = "frontend.default.svc.cluster.local"
        func h2(_ rule: String, file: StaticString = #filePath, line: UInt = #line) -> [Bool?] {
            let cs = clusters(rule: rule, routes: routes, ports: ports, file: file, line: line)
            return ["80|", "8080|", "9090|", "9091|", "80|v1", "9090|v1"].map { cs["outbound|\($0)|\(fqdn)"]?.http2 }
                + [cs["outbound|80||kiali.default.svc.cluster.local"]?.http2]
        }
        let v1 = "subsets:\n- name: v1\n  labels: {version: v1}"
        // Port protocols alone: GRPC and HTTP2 are HTTP/2; HTTP and no ServiceEntry are not.
        XCTAssertEqual(h2(v1), [false, false, true, true, false, true, false])
        // UPGRADE at the top level: every port of the host (not kiali, another host).
        XCTAssertEqual(h2("trafficPolicy: {connectionPool: {http: {h2UpgradePolicy: UPGRADE}}}\n" + v1),
                       [true, true, true, true, true, true, false])
        // UPGRADE at port level: port 80 only.
        XCTAssertEqual(h2("""
            trafficPolicy:
              portLevelSettings:
              - port: {number: 80}
                connectionPool: {http: {h2UpgradePolicy: UPGRADE}}
            """ + "\n" + v1), [true, false, true, true, true, true, false])
        // DO_NOT_UPGRADE only declines an upgrade: GRPC and HTTP2 ports stay HTTP/2 (Istio sets
        // the HTTP/2 options from the port protocol before it applies the policy).
        XCTAssertEqual(h2("trafficPolicy: {connectionPool: {http: {h2UpgradePolicy: DO_NOT_UPGRADE}}}\n" + v1),
                       [false, false, true, true, false, true, false])
        // A subset's connection pool replaces the top-level one.
        XCTAssertEqual(h2("""
            trafficPolicy: {connectionPool: {http: {h2UpgradePolicy: UPGRADE}}}
            subsets:
            - name: v1
              labels: {version: v1}
              trafficPolicy: {connectionPool: {http: {h2UpgradePolicy: DO_NOT_UPGRADE}}}
            """), [true, true, true, true, false, true, false])
        // useClientProtocol: Envoy follows the client's protocol; ingressd does not force HTTP/2,
        // not even on a GRPC port.
        XCTAssertEqual(h2("trafficPolicy: {connectionPool: {http: {useClientProtocol: true}}}\n" + v1),
                       [false, false, false, false, false, false, false])

        // `ingressd routes` and /config_dump show the upstream protocol.
        let cs = clusters(rule: v1, routes: routes, ports: ports)
        let grpc = try XCTUnwrap(cs["outbound|9090||\(fqdn)"]), plain = try XCTUnwrap(cs["outbound|80||\(fqdn)"])
        XCTAssertEqual(renderClusterPolicy(grpc), "lb least-request, upstream protocol HTTP/2")
        XCTAssertEqual(renderClusterPolicy(plain), "lb least-request")
        let dump = renderConfigDumpJSON(TableSpec(clusters: [grpc, plain]), generation: 1)
        let root = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(dump.utf8)) as? [String: Any], dump)
        XCTAssertEqual((root["clusters"] as? [[String: Any]])?.map { $0["protocol"] as? String }, ["HTTP2", "HTTP1"])
    }

    func testHashOnAnInvalidHeaderNameIsRandom() throws {
        let cs = clusters(rule: "trafficPolicy: {loadBalancer: {consistentHash: {httpHeaderName: \"x user\"}}}",
                          routes: [("/a", "{host: frontend, port: {number: 80}}")])
        XCTAssertEqual(cs["outbound|80||frontend.default.svc.cluster.local"]?.loadBalancer, LoadBalancerSpec(kind: .random))
    }

    func testMaglevWithoutTableSizeIsAnError() {
        let (loaded, _, _) = build("""
            apiVersion: networking.istio.io/v1
            kind: DestinationRule
            metadata: {name: frontend}
            spec:
              host: frontend
              trafficPolicy: {loadBalancer: {consistentHash: {httpHeaderName: x, maglev: {}}}}
            """)
        XCTAssertTrue(loaded.diagnostics.contains { $0.severity == .error && $0.message == "tableSize must be set for maglev" },
                      "\(loaded.diagnostics)")
    }
}

import IstioConfig
import XCTest

/// A VirtualService bound to a gateway, with `http` as written (indented two spaces).
func virtualService(hosts: String = "[shop.example.com]", http: String) -> String {
    """
    apiVersion: networking.istio.io/v1
    kind: VirtualService
    metadata: {name: vs}
    spec:
      hosts: \(hosts)
      gateways: [gw]
      http:
    \(http)
    """
}

final class ValidationTests: XCTestCase {
    /// (http block, expected "path: message" of every error) — exact Istio texts.
    let httpCases: [(String, [String])] = [
        ("""
          - route:
            - destination: {host: a}
              weight: -1
            - destination: {host: b}
              weight: 2
        """, ["spec.http[0].route[0].weight: weight -1 < 0"]),
        ("""
          - route:
            - destination: {host: a}
            - destination: {host: b}
        """, ["spec.http[0].route: total destination weight = 0"]),
        ("""
          - match:
            - method: {prefix: ""}
            route:
            - destination: {host: a}
        """, ["spec.http[0].match[0].method.prefix: \"method\": prefix string match should not be empty"]),
        ("""
          - match:
            - uri: {prefix: ""}
            route:
            - destination: {host: a}
        """, []),
        ("""
          - match:
            - uri: {regex: ""}
            route:
            - destination: {host: a}
        """, ["spec.http[0].match[0].uri.regex: \"uri\": regex string match should not be empty"]),
        ("""
          - match:
            - uri: {regex: "/(a)\\\\1"}
            route:
            - destination: {host: a}
        """, ["spec.http[0].match[0].uri.regex: \"uri\": error parsing regexp: invalid escape sequence: `\\1`; Istio uses RE2 style regex-based match (https://github.com/google/re2/wiki/Syntax)"]),
        ("""
          - match:
            - headers:
                x-user: {regex: "(?=admin).*"}
            route:
            - destination: {host: a}
        """, ["spec.http[0].match[0].headers.x-user.regex: \"headers\": error parsing regexp: invalid or unsupported Perl syntax: `(?=`; Istio uses RE2 style regex-based match (https://github.com/google/re2/wiki/Syntax)"]),
        ("""
          - match:
            - uri: {regex: "/\(String(repeating: "a", count: 1025))"}
            route:
            - destination: {host: a}
        """, ["spec.http[0].match[0].uri.regex: \"uri\": regex is too large, max length allowed is 1024"]),
        ("""
          - redirect: {uri: /new}
            route:
            - destination: {host: a}
        """, ["spec.http[0]: HTTP route cannot contain both route and redirect"]),
        ("""
          - directResponse: {status: 503}
            redirect: {uri: /x}
        """, ["spec.http[0]: HTTP route rule cannot contain both direct_response and redirect"]),
        ("""
          - directResponse: {status: 700}
        """, ["spec.http[0].directResponse.status: HTTP status 700 is not in range 200-599"]),
        ("""
          - redirect: {redirectCode: 200, uri: /x}
        """, ["spec.http[0].redirect.redirectCode: 200 is not a valid redirect code, must be 3xx"]),
        ("""
          - redirect: {scheme: ftp}
        """, ["spec.http[0].redirect.scheme: invalid redirect scheme, must be \"http\" or \"https\""]),
        ("""
          - route:
            - destination: {host: a}
            timeout: 0.5ms
        """, ["spec.http[0].timeout: duration must be greater than 1ms"]),
        ("""
          - route:
            - destination: {host: a}
            timeout: 1500us
        """, ["spec.http[0].timeout: only durations to ms precision are supported"]),
        ("""
          - route:
            - destination: {host: a, subset: V_1}
        """, ["spec.http[0].route[0].destination.subset: subset name is invalid: V_1"]),
        ("""
          - route:
            - destination: {host: "*"}
        """, ["spec.http[0].route[0].destination.host: invalid destination host *"]),
        ("""
          - match:
            - headers:
                "x y": {exact: a}
            route:
            - destination: {host: a}
        """, ["spec.http[0].match[0].headers.x y: header name x y is not a valid header name"]),
        // ingressd's own checks: bytes that would split a header line, names that are no token.
        ("""
          - route:
            - destination: {host: a}
            headers:
              request:
                set: {x-a: "v\\r\\nx-smuggled: 1"}
                remove: ["x b"]
            rewrite: {authority: "a\\nb"}
        """, ["spec.http[0].headers.request.x-a: header value \"v\\r\\nx-smuggled: 1\" contains CR, LF or NUL, which a header value cannot hold",
              "spec.http[0].headers.request.remove: header name x b is not a valid header name",
              "spec.http[0].rewrite.authority: \"a\\nb\" contains CR, LF or NUL, which a request line or header cannot hold"]),
        ("""
          - route:
            - destination: {host: a}
            rewrite: {uri: "/a b"}
        """, ["spec.http[0].rewrite.uri: \"/a b\" contains a space or control character, which a request path cannot hold"]),
    ]

    func testHTTPRouteMessages() {
        for (http, expected) in httpCases {
            let r = loadYAML(virtualService(http: http))
            let got = r.diagnostics.errors.map { "\($0.path): \($0.message)" }
            XCTAssertEqual(got, expected, http)
        }
    }

    func testServedActionsDoNotWarnAndTheRestStillDo() {
        let r = loadYAML(virtualService(http: """
              - route:
                - destination: {host: a}
                  headers:
                    response:
                      add: {x-b: c}
                retries: {attempts: 3}
                rewrite: {uri: /v2/, authority: internal}
                fault:
                  abort:
                    percent: 10
                    httpStatus: 500
                headers:
                  request:
                    set: {x-a: b}
                mirror: {host: a}
                corsPolicy: {allowOrigins: [{exact: "https://a.example"}]}
                delegate: {name: other}
            """))
        XCTAssertEqual(r.diagnostics.warnings.map { "\($0.path): \($0.message)" }.filter { $0.contains("not supported") }, [
            "spec.http[0].delegate: not supported by ingressd yet; ignored",
        ])
    }

    func testHostMessages() {
        let cases: [(String, [String])] = [
            ("[\"foo*.example.com\"]", ["spec.hosts[0]: partial wildcard \"foo*.example.com\" not allowed"]),
            ("[a.example.com, \"*.example.com\"]", ["spec.hosts[1]: duplicate hosts in virtual service: a.example.com & *.example.com"]),
            ("[\"a_b.example.com\"]", ["spec.hosts[0]: domain name \"a_b.example.com\" invalid (label \"a_b\" invalid)"]),
            ("[\"*.example.com\", 10.0.0.1]", []),
        ]
        for (hosts, expected) in cases {
            let r = loadYAML(virtualService(hosts: hosts, http: "  - route:\n    - destination: {host: a}"))
            XCTAssertEqual(r.diagnostics.errors.map { "\($0.path): \($0.message)" }, expected, hosts)
        }
    }

    func testGatewayMessages() {
        func gw(_ servers: String, name: String = "gw") -> [String] {
            loadYAML("""
                apiVersion: networking.istio.io/v1
                kind: Gateway
                metadata: {name: \(name)}
                spec:
                  servers:
                \(servers)
                """).diagnostics.errors.map { "\($0.path): \($0.message)" }
        }
        XCTAssertEqual(gw("  - port: {number: 80, name: http, protocol: HTTP}\n    hosts: [frontend]"),
                       ["spec.servers[0].hosts[0]: short names (non FQDN) are not allowed"])
        XCTAssertEqual(gw("  - port: {number: 80, name: http, protocol: HTTP}\n    hosts: [\"bad ns/a.example.com\"]"),
                       ["spec.servers[0].hosts[0]: invalid namespace value \"bad ns\" in gateway"])
        XCTAssertEqual(gw("  - port: {number: 80, name: http, protocol: HTTP}\n    hosts: [\"ns/*\", \"./a.example.com\", \"*/*.example.com\"]"), [])
        XCTAssertEqual(gw("  - port: {number: 70000, name: http, protocol: HTTP}\n    hosts: [\"*\"]"),
                       ["spec.servers[0].port.number: port number 70000 must be in the range 1..65535"])
        XCTAssertEqual(gw("  - port: {number: 80, name: http, protocol: QUIC}\n    hosts: [\"*\"]"),
                       ["spec.servers[0].port.protocol: invalid protocol \"QUIC\", supported protocols are HTTP, HTTP2, GRPC, GRPC-WEB, MONGO, REDIS, MYSQL, TCP"])
        XCTAssertEqual(gw("  - port: {number: 443, name: https, protocol: HTTPS}\n    hosts: [\"*\"]"),
                       ["spec.servers[0].tls: server must have TLS settings for HTTPS/TLS protocols"])
        XCTAssertEqual(gw("  - port: {number: 80, name: http, protocol: HTTP}\n    hosts: [\"*\"]\n  - port: {number: 81, name: http, protocol: HTTP}\n    hosts: [\"*\"]"),
                       ["spec.servers[1].port.name: port names in servers must be unique: duplicate name http"])
        XCTAssertEqual(gw("  - port: {number: 80, name: http, protocol: HTTP}\n    hosts: [\"*\"]", name: "Bad_Name"),
                       ["metadata.name: invalid gateway name: \"Bad_Name\""])
        XCTAssertEqual(gw("  - port: {number: 80, name: http, protocol: HTTP}\n    hosts: [\"*\"]\n    tls: {httpsRedirect: true}"), [])
    }

    func testServiceEntryAndDestinationRuleMessages() {
        let r = loadYAML("""
            apiVersion: networking.istio.io/v1
            kind: ServiceEntry
            metadata: {name: se}
            spec:
              hosts: [api.example.com]
              ports:
              - {number: 80, name: http, protocol: HTTP}
              - {number: 80, name: http, protocol: HTTP}
              resolution: STATIC
              endpoints:
              - address: api.example.com
                ports: {grpc: 9000}
            ---
            apiVersion: networking.istio.io/v1
            kind: DestinationRule
            metadata: {name: dr}
            spec:
              host: api.example.com
              subsets:
              - {name: v1, labels: {v: "1"}}
              - {name: v1, labels: {v: "2"}}
            """)
        XCTAssertEqual(r.diagnostics.errors.map { "\($0.line) \($0.path): \($0.message)" }, [
            "8 spec.ports[1].name: service entry port name \"http\" already defined",
            "8 spec.ports[1].number: service entry port 80 already defined",
            "11 spec.endpoints[0].address: endpoint address \"api.example.com\" is not a valid IP address",
            "12 spec.endpoints[0].ports.grpc: endpoint port grpc is not defined by the service entry",
            "21 spec.subsets[1].name: duplicate subset names: v1",
        ])
    }

    func testRE2SyntaxTable() {
        let reject: [(String, String)] = [
            ("(a)\\1", "invalid escape sequence: `\\1`"),
            ("a(?!b)", "invalid or unsupported Perl syntax: `(?!`"),
            ("(?<=a)b", "invalid named capture: `(?<=a)b`"),
            ("(?>ab)", "invalid or unsupported Perl syntax: `(?>`"),
            ("a++", "invalid nested repetition operator: `++`"),
            ("a*+", "invalid nested repetition operator: `*+`"),
            ("\\C", "invalid escape sequence: `\\C`"),
            ("*a", "missing argument to repetition operator: `*`"),
            ("(ab", "missing closing ): `(ab`"),
            ("ab)", "unexpected ): `ab)`"),
            ("[z-a]", "invalid character class range: `z-a`"),
            ("[ab", "missing closing ]: `[ab`"),
            ("a{1001}", "invalid repeat count: `{1001}`"),
            ("ab\\", "trailing backslash at end of expression: ``"),
        ]
        for (re, expected) in reject {
            let r = loadYAML(virtualService(http: """
                  - match:
                    - uri: {regex: '\(re)'}
                    route:
                    - destination: {host: a}
                """))
            XCTAssertEqual(r.diagnostics.errors.first?.message,
                           "\"uri\": error parsing regexp: \(expected); Istio uses RE2 style regex-based match (https://github.com/google/re2/wiki/Syntax)", re)
        }
        for re in ["/api/v[0-9]+/.*", "(?i)/Kiali(/.*)?", "(?P<id>[a-z]+)-\\d{2,3}", "[[:alpha:]]+\\.html", "a*?b+?", "\\Qa.b\\E", "[]a]", "\\pL\\p{Greek}"] {
            let r = loadYAML(virtualService(http: """
                  - match:
                    - uri: {regex: '\(re)'}
                    route:
                    - destination: {host: a}
                """))
            XCTAssertEqual(r.diagnostics.errors, [], re)
        }
    }

    /// h2UpgradePolicy is compiled into the cluster's upstream protocol: no "not supported"
    /// warning. useClientProtocol is not served (ingressd does not follow the client's protocol)
    /// and Istio's error for it together with UPGRADE stays.
    func testH2UpgradePolicyIsServed() {
        func findings(_ http: String) -> [String] {
            loadYAML("""
                apiVersion: networking.istio.io/v1
                kind: DestinationRule
                metadata: {name: dr}
                spec:
                  host: api.example.com
                  trafficPolicy:
                    connectionPool:
                      http: \(http)
                """).diagnostics.map { "\($0.severity) \($0.path): \($0.message)" }
        }
        XCTAssertEqual(findings("{h2UpgradePolicy: UPGRADE}"), [])
        XCTAssertEqual(findings("{h2UpgradePolicy: DO_NOT_UPGRADE}"), [])
        let both = findings("{h2UpgradePolicy: UPGRADE, useClientProtocol: true}")
        XCTAssertTrue(both.contains("error spec.trafficPolicy.connectionPool.http: use client protocol must not be true when H2UpgradePolicy is UPGRADE"), "\(both)")
        XCTAssertFalse(both.contains { $0.contains("h2UpgradePolicy") }, "\(both)")
        XCTAssertFalse(both.contains { $0.contains("http.useClientProtocol") && $0.contains("not supported") }, "served: \(both)")
        XCTAssertEqual(findings("{useClientProtocol: true}"), [])
    }

    /// http2KeepAlive is served (a PING per HTTP/2 upstream connection): no "not supported"
    /// warning; Istio's errors for a missing interval or timeout stay.
    func testHTTP2KeepAliveIsServed() {
        func findings(_ http: String) -> [String] {
            loadYAML("""
                apiVersion: networking.istio.io/v1
                kind: DestinationRule
                metadata: {name: dr}
                spec:
                  host: api.example.com
                  trafficPolicy:
                    connectionPool:
                      http: \(http)
                """).diagnostics.map { "\($0.severity) \($0.path): \($0.message)" }
        }
        XCTAssertEqual(findings("{http2KeepAlive: {interval: 200ms, timeout: 1s}}"), [])
        XCTAssertEqual(findings("{http2KeepAlive: {interval: 200ms}}"),
                       ["error spec.trafficPolicy.connectionPool.http.http2KeepAlive: http2 keepalive timeout is required"])
        XCTAssertEqual(findings("{http2KeepAlive: {timeout: 1s}}"),
                       ["error spec.trafficPolicy.connectionPool.http.http2KeepAlive: http2 keepalive interval is required"])
    }
}

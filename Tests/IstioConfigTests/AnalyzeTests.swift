import IstioConfig
import XCTest

final class AnalyzeTests: XCTestCase {
    func testCrossResourceFindings() {
        let r = loadYAML("""
            apiVersion: networking.istio.io/v1
            kind: Gateway
            metadata: {name: gw}
            spec:
              servers:
              - port: {number: 80, name: http, protocol: HTTP}
                hosts: [shop.example.com]
            ---
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata: {name: vs}
            spec:
              hosts: [shop.example.com, other.example.com]
              gateways: [gw, missing, gw.default]
              http:
              - route:
                - destination: {host: frontend, subset: v3}
            """)
        let found = analyze(r.resources).map { "\($0.severity) \($0.code ?? "") \($0.line) \($0.path): \($0.message)" }
        XCTAssertEqual(found, [
            "warning IST0132 13 spec.hosts[1]: one or more host [other.example.com] defined in VirtualService default/vs not found in Gateway default/gw.",
            "error IST0101 14 spec.gateways[1]: Referenced gateway not found: \"missing\"",
            "warning IST0101 17 spec.http[0].route[0].destination.subset: Referenced host+subset in destinationrule not found: \"frontend+v3\"",
        ])
        XCTAssertEqual(r.diagnostics.warnings.map(\.message),
                       ["using legacy gatewayName format \"gw.default\"; prefer the <namespace>/<name> format: \"default/gw\""])
    }

    func testHostHelpers() {
        XCTAssertEqual(HostName.intersection(["*"], ["A.com"]), ["a.com"])
        XCTAssertEqual(HostName.intersection(["*.foo.com"], ["*.bar.foo.com"]), ["*.bar.foo.com"])
        XCTAssertEqual(HostName.intersection(["*.example.com"], ["example.com", "newexample.com"]), [])
        XCTAssertTrue(HostName.matches("*.foo.com", "a.b.foo.com"))
        XCTAssertEqual(HostName.fqdn("kiali", namespace: "istio-system"), "kiali.istio-system.svc.cluster.local")
        XCTAssertEqual(HostName.fqdn("api.example.com", namespace: "x"), "api.example.com")
        XCTAssertEqual(IPAddress.parse("::ffff:1.2.3.4"), [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 1, 2, 3, 4])
        XCTAssertNil(IPAddress.parse("1.2.3"))
    }
}

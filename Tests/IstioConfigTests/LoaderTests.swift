import Foundation
import IstioConfig
import XCTest

func loadYAML(_ yaml: String, namespace: String = "default", file: String = "test.yaml") -> LoadResult {
    ConfigLoader(defaultNamespace: namespace).load(yaml: yaml, file: file)
}

final class LoaderTests: XCTestCase {
    let gateway = """
        apiVersion: networking.istio.io/v1alpha3
        kind: Gateway
        metadata:
          name: app-gateway
        spec:
          servers:
          - port:
              number: 80
              name: http
              protocol: HTTP
            hosts:
            - "hipster.example.com"
        """

    func testMultiDocumentDefaultNamespaceAndVersions() {
        let yaml = gateway + """

            ---
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata:
              name: vs
              namespace: shop
            spec:
              hosts: [hipster.example.com]
              gateways: [default/app-gateway]
              http:
              - route:
                - destination: {host: frontend}
            ---
            apiVersion: networking.istio.io/v1beta1
            kind: DestinationRule
            metadata: {name: dr}
            spec:
              host: frontend
            ---
            """
        let r = loadYAML(yaml, namespace: "istio-system")
        XCTAssertEqual(r.diagnostics.errors, [])
        XCTAssertEqual(r.resources.map(\.meta.kind), [.gateway, .virtualService, .destinationRule])
        XCTAssertEqual(r.resources.map(\.meta.namespace), ["istio-system", "shop", "istio-system"])
        XCTAssertEqual(r.resources.map(\.meta.line), [1, 14, 26])
        XCTAssertEqual(r.resources[1].virtualService?.http.first?.route.first?.destination?.host, "frontend")
        XCTAssertEqual(r.resources.map(\.meta.order), [0, 1, 2])
    }

    func testOtherKindsAreSkippedWithANote() {
        let yaml = """
            apiVersion: apps/v1
            kind: Deployment
            metadata: {name: web}
            spec: {replicas: 2}
            ---
            apiVersion: gateway.networking.k8s.io/v1
            kind: Gateway
            metadata: {name: gw}
            spec: {}
            """
        let r = loadYAML(yaml)
        XCTAssertEqual(r.resources.count, 0)
        XCTAssertEqual(r.skipped, 2)
        XCTAssertEqual(r.diagnostics.map(\.severity), [.note, .note])
        XCTAssertEqual(r.diagnostics[0].description,
                       "test.yaml:1: Deployment default/web: skipped: Deployment (apps/v1) is not a kind ingressd serves")
        XCTAssertFalse(r.hasErrors)
    }

    func testUnknownFieldIsAnErrorWithFileAndLine() {
        let yaml = """
            apiVersion: networking.istio.io/v1alpha3
            kind: VirtualService
            metadata:
              name: kiali
            spec:
              hosts: ["dashboard.example.com"]
              gateways: [addons-gateway]
              http:
              - match:
                - uri:
                    prefix: /kiali
                rout:
                - destination: {host: kiali}
            """
        let r = loadYAML(yaml, namespace: "istio-system", file: "addons.yaml")
        XCTAssertTrue(r.hasErrors)
        XCTAssertEqual(r.diagnostics.errors.map(\.description), [
            "addons.yaml:12: VirtualService istio-system/kiali: spec.http[0].rout: unknown field \"rout\" (did you mean \"route\"?)",
            "addons.yaml:9: VirtualService istio-system/kiali: spec.http[0]: HTTP route, redirect or direct_response is required",
        ])
    }

    func testDuplicateKeysAreErrors() {
        // A commented-out `---` joins two documents into one with duplicate top-level keys
        // (istio-semantics.md §6 example 2, notes).
        let yaml = gateway + """

            # ---
            apiVersion: networking.istio.io/v1alpha3
            kind: VirtualService
            """
        let r = loadYAML(yaml)
        let messages = r.diagnostics.errors.map(\.description)
        XCTAssertTrue(messages.contains("test.yaml:14: Gateway default/app-gateway: apiVersion: duplicate key \"apiVersion\" (first at line 1)"),
                      "\(messages)")
        XCTAssertTrue(messages.contains("test.yaml:15: Gateway default/app-gateway: kind: duplicate key \"kind\" (first at line 2)"),
                      "\(messages)")

        let labels = loadYAML("""
            apiVersion: networking.istio.io/v1
            kind: DestinationRule
            metadata: {name: dr}
            spec:
              host: frontend
              subsets:
              - name: v1
                labels:
                  version: a
                  version: b
            """)
        XCTAssertEqual(labels.diagnostics.errors.map(\.description),
                       ["test.yaml:10: DestinationRule default/dr: spec.subsets[0].labels.version: duplicate key \"version\" (first at line 9)"])
    }

    func testTypeErrorsAndYAMLSyntaxErrors() {
        let r = loadYAML(gateway.replacingOccurrences(of: "number: 80", with: "number: eighty"))
        XCTAssertEqual(r.diagnostics.errors.first?.description,
                       "test.yaml:8: Gateway default/app-gateway: spec.servers[0].port.number: expected an integer, got string \"eighty\"")
        let bad = loadYAML("a: [1, 2\nb: c\n")
        XCTAssertEqual(bad.diagnostics.count, 1)
        XCTAssertTrue(bad.diagnostics[0].description.hasPrefix("test.yaml:"), bad.diagnostics[0].description)
        XCTAssertTrue(bad.diagnostics[0].message.hasPrefix("invalid YAML"))
        XCTAssertGreaterThan(bad.diagnostics[0].line, 0)
    }

    func testUnsupportedApiVersionAndMissingName() {
        let r = loadYAML("""
            apiVersion: networking.istio.io/v2
            kind: Gateway
            metadata: {name: g}
            spec: {}
            ---
            apiVersion: networking.istio.io/v1
            kind: ServiceEntry
            metadata: {namespace: x}
            spec: {hosts: [a.example.com], resolution: DNS}
            """)
        XCTAssertEqual(r.diagnostics.errors.map(\.message), [
            "unsupported apiVersion \"networking.istio.io/v2\" (use networking.istio.io/v1, v1beta1 or v1alpha3)",
            "resource name may not be empty",
        ])
    }

    func testDirectoriesAreReadInNameOrderYAMLAndYMLOnly() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ingressd-loader-\(getpid())")
        try? FileManager.default.removeItem(at: dir)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        func write(_ name: String, _ resourceName: String) throws {
            try """
                apiVersion: networking.istio.io/v1
                kind: DestinationRule
                metadata: {name: \(resourceName)}
                spec: {host: \(resourceName)}
                """.write(to: dir.appendingPathComponent(name), atomically: true, encoding: .utf8)
        }
        try write("b.yml", "second")
        try write("a.yaml", "first")
        try write("c.json", "ignored")
        try write("README.md", "ignored2")
        let r = IstioConfig.load(paths: [dir.path, dir.path + "/missing.yaml"], defaultNamespace: "default")
        XCTAssertEqual(r.resources.map(\.meta.name), ["first", "second"])
        XCTAssertEqual(r.files.map { ($0 as NSString).lastPathComponent }, ["a.yaml", "b.yml"])
        XCTAssertEqual(r.diagnostics.errors.map(\.description), ["\(dir.path)/missing.yaml:0: no such file or directory"])
    }

    func testALaterDefinitionReplacesAnEarlierOne() {
        let r = loadYAML(gateway + "\n---\n" + gateway.replacingOccurrences(of: "hipster.example.com", with: "shop.example.com"))
        XCTAssertEqual(r.resources.count, 1)
        XCTAssertEqual(r.resources[0].gateway?.servers.first?.hosts, ["shop.example.com"])
        XCTAssertEqual(r.resources[0].meta.line, 14)
        XCTAssertEqual(r.diagnostics.map(\.description),
                       ["test.yaml:17: Gateway default/app-gateway: metadata.name: replaces Gateway default/app-gateway defined at test.yaml:1 (the later definition wins, as with kubectl apply)"])
        XCTAssertFalse(r.hasErrors)
    }

    func testWorkshopSeedFilesLoadWithoutErrors() throws {
        let shared = "/work/shared/examples/workshop"
        guard FileManager.default.fileExists(atPath: shared) else {
            throw XCTSkip("workshop examples not present at \(shared)")
        }
        let r = IstioConfig.load(paths: [shared], defaultNamespace: "default")
        XCTAssertEqual(r.diagnostics.errors, [])
        XCTAssertEqual(r.resources.map(\.meta.name), ["addons-gateway", "kiali", "tracing", "tracing-host", "frontend-virtualservice", "frontend-destination-rule", "app-gateway"]) // frontend-ingress.yaml's VirtualService replaces the canary's, in place
    }
}

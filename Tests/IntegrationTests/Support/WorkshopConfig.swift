// Test configurations built from examples/: the workshop manifests with the Gateway port moved
// from 80 to a free port, and ServiceEntries pointing at demo upstreams started by the test.

import Foundation
import XCTest

enum WorkshopConfig {
    /// The text of examples/RELATIVE.
    static func example(_ relative: String) throws -> String {
        try String(contentsOf: Paths.example(relative), encoding: .utf8)
    }

    /// `yaml` with every Gateway server port 80 replaced by `port`. Only the Gateway's
    /// `- port:\n      number: 80` form is touched; destination ports (`port:\n  number: 80`
    /// under `destination:`) stay, since they name the service port of the ServiceEntry.
    static func movingGateway(_ yaml: String, to port: UInt16) throws -> String {
        let gatewayPort = "- port:\n      number: 80\n"
        guard yaml.contains(gatewayPort) else {
            throw HarnessError("no Gateway server on port 80 in the example (has its layout changed?)")
        }
        return yaml.replacingOccurrences(of: gatewayPort, with: "- port:\n      number: \(port)\n")
    }

    /// A Gateway `gw` with one plain-HTTP server on `port` for `hosts`.
    static func httpGateway(port: UInt16, hosts: [String]) -> String {
        """
        apiVersion: networking.istio.io/v1beta1
        kind: Gateway
        metadata:
          name: gw
        spec:
          selector:
            istio: ingressgateway
          servers:
          - port:
              number: \(port)
              name: http
              protocol: HTTP
            hosts: [\(hosts.map { "\"\($0)\"" }.joined(separator: ", "))]
        """
    }

    /// One STATIC ServiceEntry for `NAME.NAMESPACE.svc.cluster.local` with the given service port.
    /// `endpoints` are (port, labels); an empty list makes a service without endpoints.
    static func serviceEntry(name: String, namespace: String = "default", servicePort: Int,
                             endpoints: [(port: UInt16, labels: [String: String])]) -> String {
        var yaml = """
        apiVersion: networking.istio.io/v1beta1
        kind: ServiceEntry
        metadata:
          name: \(name)
        spec:
          hosts:
          - \(name).\(namespace).svc.cluster.local
          location: MESH_INTERNAL
          ports:
          - number: \(servicePort)
            name: http
            protocol: HTTP
          resolution: STATIC

        """
        if !endpoints.isEmpty {
            yaml += "  endpoints:\n"
            for endpoint in endpoints {
                yaml += "  - address: 127.0.0.1\n    ports:\n      http: \(endpoint.port)\n"
                if !endpoint.labels.isEmpty {
                    yaml += "    labels:\n"
                    for (key, value) in endpoint.labels.sorted(by: { $0.key < $1.key }) {
                        yaml += "      \(key): \(value)\n"
                    }
                }
            }
        }
        return yaml
    }

    static func documents(_ docs: [String]) -> String {
        docs.map { $0.hasSuffix("\n") ? $0 : $0 + "\n" }.joined(separator: "---\n")
    }
}

/// The workshop on one machine: four demo upstreams, the workshop files on a free port, and
/// ServiceEntries for frontend (v1 + v2), kiali and tracing.
struct Workshop {
    let frontendV1: DemoUpstream
    let frontendV2: DemoUpstream
    let kiali: DemoUpstream
    let tracing: DemoUpstream
    let listenPort: UInt16
    /// The files to give with -c.
    let configs: [String]
    let ingressd: Ingressd

    var url: String { ingressd.url }
    var upstreams: [DemoUpstream] { [frontendV1, frontendV2, kiali, tracing] }

    /// `canary: false`: frontend-ingress.yaml + addons-ingress.yaml + services.
    /// `canary: true`: canary/app-gateway.yaml + frontend-canary.yaml + addons-ingress.yaml + services.
    static func start(_ harness: Harness, canary: Bool = false, workers: Int = 2, extraConfigs: [String] = [],
                      extraArgs: [String] = [], environment: [String: String] = [:]) throws -> Workshop {
        let v1 = try harness.startUpstream("frontend-v1")
        let v2 = try harness.startUpstream("frontend-v2")
        let kiali = try harness.startUpstream("kiali")
        let tracing = try harness.startUpstream("tracing")
        let port = try freeTCPPort()

        var configs: [String] = []
        if canary {
            configs.append(try harness.write("app-gateway.yaml",
                WorkshopConfig.movingGateway(try WorkshopConfig.example("canary/app-gateway.yaml"), to: port)))
            configs.append(try harness.write("frontend-canary.yaml",
                try WorkshopConfig.example("workshop/frontend-canary.yaml")))
        } else {
            configs.append(try harness.write("frontend-ingress.yaml",
                WorkshopConfig.movingGateway(try WorkshopConfig.example("workshop/frontend-ingress.yaml"), to: port)))
        }
        configs.append(try harness.write("addons-ingress.yaml",
            WorkshopConfig.movingGateway(try WorkshopConfig.example("workshop/addons-ingress.yaml"), to: port)))
        configs.append(try harness.write("services.yaml", WorkshopConfig.documents([
            WorkshopConfig.serviceEntry(name: "frontend", servicePort: 80, endpoints: [
                (v1.port, ["version": "v0.1.2"]), (v2.port, ["version": "v0.1.3"]),
            ]),
            WorkshopConfig.serviceEntry(name: "kiali", servicePort: 20001, endpoints: [(kiali.port, [:])]),
            WorkshopConfig.serviceEntry(name: "tracing", servicePort: 80, endpoints: [(tracing.port, [:])]),
        ])))
        configs += extraConfigs
        let ingressd = try harness.startIngressd(configs: configs, listenPort: port, workers: workers,
                                                 extraArgs: extraArgs, environment: environment)
        return Workshop(frontendV1: v1, frontendV2: v2, kiali: kiali, tracing: tracing,
                        listenPort: port, configs: configs, ingressd: ingressd)
    }
}

/// The first body line of a demo upstream's answer names it: "upstream: NAME (ADDR:PORT)".
func servedBy(_ response: HTTPResponse) -> String? {
    guard let first = response.text.split(separator: "\n").first, first.hasPrefix("upstream: ") else {
        return nil
    }
    return first.dropFirst("upstream: ".count).split(separator: " ").first.map(String.init)
}

/// The headers the demo upstream echoes ("  Name: value" lines), names lowercased.
func echoedHeaders(_ response: HTTPResponse) -> [(name: String, value: String)] {
    response.text.split(separator: "\n").compactMap { line in
        guard line.hasPrefix("  "), let colon = line.firstIndex(of: ":") else { return nil }
        let name = line[..<colon].trimmingCharacters(in: .whitespaces).lowercased()
        let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        return (name, value)
    }
}

/// A base class for tests that need processes: creates the harness and stops everything in
/// tearDown; on failure keeps the directory and prints where it is and ingressd's output.
class IntegrationTestCase: XCTestCase {
    var harness: Harness!

    override func setUpWithError() throws {
        try super.setUpWithError()
        harness = try Harness()
    }

    override func tearDown() {
        let failed = (testRun?.failureCount ?? 0) + (testRun?.unexpectedExceptionCount ?? 0) > 0
        if failed, let harness {
            print("integration test files and logs kept in \(harness.dir.path)")
        }
        harness?.shutdown(keepDirectory: failed)
        harness = nil
        super.tearDown()
    }

    /// Debian's python3 with python3-h2 (the pyenv python3 on PATH has no h2); skips without it.
    func pythonH2() throws -> String {
        let python = "/usr/bin/python3"
        guard FileManager.default.isExecutableFile(atPath: python),
              try harness.run(python, ["-c", "import h2, hpack, hyperframe"]).status == 0 else {
            throw XCTSkip("/usr/bin/python3 has no h2/hpack/hyperframe (Debian python3-h2)")
        }
        return python
    }
}

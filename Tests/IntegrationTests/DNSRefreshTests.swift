// DNS-backed endpoints are re-resolved by the supervisor (DESIGN.md §5): when the name's answer
// changes, traffic follows it without a reload. The answer is changed through /etc/hosts (the
// test needs root and restores the file), the refresh interval shortened through
// INGRESSD_DNS_REFRESH_MS.

import Foundation
import XCTest

final class DNSRefreshTests: IntegrationTestCase {
    private var originalHosts: String?

    override func tearDown() {
        if let originalHosts {
            try? originalHosts.write(toFile: "/etc/hosts", atomically: false, encoding: .utf8)
        }
        unsetenv("INGRESSD_DNS_REFRESH_MS")
        super.tearDown()
    }

    private func upstream(_ name: String, host: String, port: UInt16) throws {
        _ = try harness.startPortPrintingServer(
            name, [Paths.demoUpstream, "--name", name, "--host", host, "--port", String(port), "--quiet"])
    }

    func testDNSEndpointsFollowAChangedAnswer() throws {
        guard getuid() == 0, access("/etc/hosts", W_OK) == 0 else {
            throw XCTSkip("changing a DNS answer needs write access to /etc/hosts (root)")
        }
        let hosts = try String(contentsOfFile: "/etc/hosts", encoding: .utf8)
        originalHosts = hosts
        let name = "dns-refresh-\(getpid()).ingressd.test"
        let port = try freeTCPPort()
        try upstream("first", host: "127.0.0.1", port: port)
        try upstream("second", host: "127.0.0.2", port: port)
        let base = hosts.hasSuffix("\n") ? hosts : hosts + "\n"
        try (base + "127.0.0.1 \(name)\n").write(toFile: "/etc/hosts", atomically: false, encoding: .utf8)

        let gatewayPort = try freeTCPPort()
        let config = WorkshopConfig.documents([
            WorkshopConfig.httpGateway(port: gatewayPort, hosts: ["*"]),
            """
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata:
              name: vs
            spec:
              hosts: ["dns.example.test"]
              gateways: [gw]
              http:
              - route:
                - destination: {host: \(name), port: {number: 80}}
            """,
            """
            apiVersion: networking.istio.io/v1
            kind: ServiceEntry
            metadata:
              name: dns
            spec:
              hosts: [\(name)]
              ports: [{number: 80, name: http, protocol: HTTP}]
              resolution: DNS
              endpoints:
              - address: \(name)
                ports: {http: \(port)}
            """,
        ])
        setenv("INGRESSD_DNS_REFRESH_MS", "300", 1)
        let gw = try harness.startIngressd(configs: [try harness.write("dns.yaml", config)], listenPort: gatewayPort)
        XCTAssertEqual(servedBy(try harness.curl(gw.url + "/", host: "dns.example.test")), "first")

        try (base + "127.0.0.2 \(name)\n").write(toFile: "/etc/hosts", atomically: false, encoding: .utf8)
        var served: String?
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            served = servedBy(try harness.curl(gw.url + "/", host: "dns.example.test"))
            if served == "second" { break }
            usleep(100_000)
        }
        XCTAssertEqual(served, "second", "the re-resolved address serves:\n\(gw.outputTail)")
        XCTAssertTrue(gw.outputTail.contains("dns refresh"), gw.outputTail)
    }
}

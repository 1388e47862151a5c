// Name resolution never blocks the supervisor (DESIGN.md §1, §5): lookups run in child
// processes, a lookup that hangs times out and keeps the name's previous addresses, and a DNS
// refresh recompiles the configuration held in memory instead of reading the files again.
//
// A DNS server that does not answer is stood in for by the test hook
// INGRESSD_TEST_RESOLVE_STALL_FILE: while the named file exists, every lookup sleeps for the
// milliseconds written in it before calling getaddrinfo (ConfigCompiler/Registry.swift).

import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

final class DNSResolutionTests: IntegrationTestCase {
    private let variables = ["INGRESSD_DNS_REFRESH_MS", "INGRESSD_DNS_TIMEOUT_MS", "INGRESSD_TEST_RESOLVE_STALL_FILE"]

    override func tearDown() {
        for v in variables { unsetenv(v) }
        super.tearDown()
    }

    /// A Gateway on `gatewayPort` routing dns.example.test to a `resolution: DNS` ServiceEntry
    /// whose endpoint is `localhost:upstreamPort` (answered from /etc/hosts, no DNS server).
    private func config(gatewayPort: UInt16, upstreamPort: UInt16) -> String {
        WorkshopConfig.documents([
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
                - destination: {host: backend.dns.test, port: {number: 80}}
            """,
            """
            apiVersion: networking.istio.io/v1
            kind: ServiceEntry
            metadata:
              name: backend
            spec:
              hosts: [backend.dns.test]
              ports: [{number: 80, name: http, protocol: HTTP}]
              resolution: DNS
              endpoints:
              - address: localhost
                ports: {http: \(upstreamPort)}
            """,
        ])
    }

    private func upstream(_ name: String) throws -> UInt16 {
        try harness.startPortPrintingServer(
            name, [Paths.demoUpstream, "--name", name, "--host", "127.0.0.1", "--port", "0", "--quiet"]).port
    }

    /// While every lookup hangs for 4 s, through DNS refreshes every 200 ms and a SIGHUP reload,
    /// the admin endpoint answers each poll within 500 ms (it was blocked 4 s per name when the
    /// supervisor called getaddrinfo itself), requests keep going to the address resolved
    /// before, and the reload still completes once its lookup times out.
    func testAdminAnswersWhileLookupsHang() throws {
        guard access("/etc/hosts", R_OK) == 0 else { throw XCTSkip("needs /etc/hosts to resolve localhost") }
        let stall = harness.path("stall")
        setenv("INGRESSD_DNS_REFRESH_MS", "200", 1)
        setenv("INGRESSD_DNS_TIMEOUT_MS", "1000", 1)
        setenv("INGRESSD_TEST_RESOLVE_STALL_FILE", stall, 1)
        let port = try upstream("first")
        let gatewayPort = try freeTCPPort()
        let gw = try harness.startIngressd(configs: [try harness.write("dns.yaml", config(gatewayPort: gatewayPort, upstreamPort: port))],
                                           listenPort: gatewayPort)
        XCTAssertEqual(servedBy(try harness.curl(gw.url + "/", host: "dns.example.test")), "first")

        try "4000".write(toFile: stall, atomically: true, encoding: .utf8)
        var slowest: TimeInterval = 0
        var polls = 0
        var served: [String?] = []
        let start = Date()
        var hupSent = false
        while Date().timeIntervalSince(start) < 4 {
            let t0 = Date()
            let status = gw.readyStatus()
            let took = Date().timeIntervalSince(t0)
            XCTAssertEqual(status, 200, "admin /ready during the stall:\n\(gw.outputTail)")
            slowest = max(slowest, took)
            polls += 1
            if polls % 5 == 0 { served.append(servedBy(try harness.curl(gw.url + "/", host: "dns.example.test"))) }
            if !hupSent && Date().timeIntervalSince(start) > 1 {
                gw.child.signal(SIGHUP)
                hupSent = true
            }
            usleep(50_000)
        }
        XCTAssertGreaterThan(polls, 20)
        XCTAssertLessThan(slowest, 0.5, "the slowest /ready took \(Int(slowest * 1000)) ms:\n\(gw.outputTail)")
        XCTAssertEqual(Set(served.compactMap { $0 }), ["first"], "requests keep the previous address: \(served)")
        XCTAssertFalse(served.contains(nil), "every request is served: \(served)")
        let log = gw.child.stdout + gw.child.stderr
        XCTAssertTrue(log.contains("dns: localhost: timed out after 1s; keeping its 1 previous address(es)"), gw.outputTail)
        XCTAssertTrue(log.contains("reload: published generation 2"), "the SIGHUP reload completes:\n\(gw.outputTail)")
        try FileManager.default.removeItem(atPath: stall)
        XCTAssertTrue(gw.child.isRunning)
    }

    /// A refresh re-resolves names for the configuration in effect; it does not read the files:
    /// an edited file is picked up by SIGHUP only.
    func testRefreshDoesNotReadTheFiles() throws {
        guard access("/etc/hosts", R_OK) == 0 else { throw XCTSkip("needs /etc/hosts to resolve localhost") }
        setenv("INGRESSD_DNS_REFRESH_MS", "100", 1)
        let first = try upstream("first")
        let second = try upstream("second")
        let gatewayPort = try freeTCPPort()
        let file = try harness.write("dns.yaml", config(gatewayPort: gatewayPort, upstreamPort: first))
        let gw = try harness.startIngressd(configs: [file], listenPort: gatewayPort)
        XCTAssertEqual(servedBy(try harness.curl(gw.url + "/", host: "dns.example.test")), "first")

        // Same clusters, another endpoint port: a refresh that re-read the file published it.
        try harness.write("dns.yaml", config(gatewayPort: gatewayPort, upstreamPort: second))
        usleep(1_500_000)
        for _ in 0..<3 {
            XCTAssertEqual(servedBy(try harness.curl(gw.url + "/", host: "dns.example.test")), "first", gw.outputTail)
        }
        gw.child.signal(SIGHUP)
        var served: String?
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            served = servedBy(try harness.curl(gw.url + "/", host: "dns.example.test"))
            if served == "second" { break }
            usleep(100_000)
        }
        XCTAssertEqual(served, "second", "SIGHUP applies the edit:\n\(gw.outputTail)")
    }
}

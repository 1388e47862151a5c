// An empty provided-buffer ring (hardening issue, receive-buffer exhaustion): slow readers pin
// receive buffers (at most two each, queued for their socket), and the receives that then find
// the ring empty are re-armed with a back-off instead of on every loop iteration, which spun
// the worker at full CPU for as long as the readers stalled.

import Foundation
import XCTest

final class ReceiveStarvationTests: IntegrationTestCase {
    /// CPU time (user + system, clock ticks) of `pid` from /proc/PID/stat.
    private func cpuTicks(_ pid: pid_t) -> Int {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return 0 }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // Fields after "(comm)": state is [0], utime is field 14 of the line, so [11]; stime [12].
        return (Int(fields[11]) ?? 0) + (Int(fields[12]) ?? 0)
    }

    /// A client that asks for a large body and never reads it (a small receive buffer, so the
    /// worker's sends to it stall at once).
    private func slowReader(port: UInt16, request: String) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var small: Int32 = 4096
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = port.bigEndian
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let ok = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard ok == 0 else { throw HarnessError("connect: errno \(errno)") }
        _ = request.withCString { send(fd, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
        return fd
    }

    func testStarvedReceivesDoNotSpinTheWorker() throws {
        let upstreamPort = try harness.startBulkUpstream(["http", "--port", "0"])
        let port = try freeTCPPort()
        let config = WorkshopConfig.documents([
            WorkshopConfig.httpGateway(port: port, hosts: ["*.test"]),
            """
            apiVersion: networking.istio.io/v1beta1
            kind: VirtualService
            metadata:
              name: bulk
            spec:
              hosts: ["bulk.test"]
              gateways: ["gw"]
              http:
              - route:
                - destination:
                    host: bulk
                    port:
                      number: 80
            """,
            WorkshopConfig.serviceEntry(name: "bulk", servicePort: 80, endpoints: [(upstreamPort, [:])]),
        ])
        let path = try harness.write("bulk.yaml", config)
        // 8 receive buffers, bodies copied (not spliced) through them: 8 slow readers pinning
        // two each leave the receives of half of them starved.
        let gateway = try harness.startIngressd(
            configs: [path], listenPort: port, workers: 1,
            environment: ["INGRESSD_RECEIVE_BUFFERS": "8", "INGRESSD_SPLICE_MIN_BYTES": "0"])
        let workers = gateway.workerPids
        XCTAssertEqual(workers.count, 1)
        let readers = try (0..<8).map { _ in
            try slowReader(port: port, request: "GET /blob/16777216 HTTP/1.1\r\nHost: bulk.test\r\n\r\n")
        }
        usleep(1_500_000)   // the upstream generates the bodies; the buffers get pinned
        let before = workers.map(cpuTicks).reduce(0, +)
        let start = Date()
        usleep(2_000_000)
        let ticks = workers.map(cpuTicks).reduce(0, +) - before
        let share = Double(ticks) / Double(sysconf(Int32(_SC_CLK_TCK))) / Date().timeIntervalSince(start)
        print("worker CPU while starved: \(Int(share * 100))% of a core")
        XCTAssertLessThan(share, 0.25, "the worker spins while its receive buffers are pinned")
        for fd in readers { close(fd) }
        // The buffers come back and every receive is served again.
        let response = try harness.curl(gateway.url + "/blob/100000", host: "bulk.test")
        XCTAssertEqual(response.status, 200)
        XCTAssertEqual(response.body.count, 100_000)
    }
}

// Large bodies over a downstream HTTP/2 connection keep the worker's memory flat (the HTTP/2
// issue's bar: "a 1 GiB upload or download over h2 keeps the worker's RSS within a few MiB").
// The real ingressd binary with one worker; curl (--http2-prior-knowledge) downloads and uploads
// through it, streaming (the download piped into sha256sum, the upload piped from
// bulk_upstream.py's pattern generator, no length known up front); the upstreams are
// examples/upstreams/bulk_upstream.py, which make and consume bodies 1 MiB at a time: `http`
// (HTTP/1.1: the stream's body goes out as a chunked request, the response's Content-Length body
// comes back as DATA frames) and `h2` (HTTP/2 cleartext, Debian's python3-h2: a ServiceEntry port
// with protocol HTTP2, both sides flow-controlled). The worker's VmRSS is sampled every 20 ms
// during each transfer; its peak may exceed the level after a warm-up transfer by at most
// `rssBoundKiB`. INGRESSD_TEST_H2_BULK_MIB sets the size (default 256 MiB; 1024 for the bar's
// 1 GiB, about 4x the time).

import Foundation
import XCTest

final class HTTP2LargeBodyTests: IntegrationTestCase {
    static let python = "/usr/bin/python3"
    /// Growth of the worker's VmRSS allowed over a transfer (peak sample minus the level after
    /// the warm-up). Measured: see README "HTTP/2 and gRPC"; an HTTP/2 stream holds at most one
    /// 64 KiB window of request body, a connection 1 MiB.
    static let rssBoundKiB = 4 * 1024
    static var size: Int {
        let mib = ProcessInfo.processInfo.environment["INGRESSD_TEST_H2_BULK_MIB"].flatMap { Int($0) } ?? 256
        return mib << 20
    }

    struct Gateway {
        var ingressd: Ingressd
        var port: UInt16
        var worker: pid_t
    }

    /// One worker; /h1/… goes to bulk_upstream.py http, /h2/… to bulk_upstream.py h2 (a
    /// ServiceEntry port with protocol HTTP2).
    func startGateway() throws -> Gateway {
        let probe = try harness.run(Self.python, ["-c", "import h2"], timeout: 20)
        guard probe.status == 0 else {
            throw XCTSkip("Debian's python3-h2 is not installed for \(Self.python): \(probe.output)")
        }
        let h1 = try harness.startBulkUpstream(["http"])
        let h2 = try harness.startPortPrintingServer("bulk-h2", [Paths.bulkUpstream, "h2"], python: Self.python).port
        let port = try freeTCPPort()
        func entry(_ name: String, _ proto: String, _ target: UInt16) -> String {
            """
            apiVersion: networking.istio.io/v1
            kind: ServiceEntry
            metadata: {name: \(name)}
            spec:
              hosts: [\(name).default.svc.cluster.local]
              location: MESH_INTERNAL
              ports: [{number: 80, name: http, protocol: \(proto), targetPort: \(target)}]
              resolution: STATIC
              endpoints: [{address: 127.0.0.1}]
            """
        }
        let docs = [WorkshopConfig.httpGateway(port: port, hosts: ["*"]), """
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata: {name: bulk}
            spec:
              hosts: ["*"]
              gateways: [gw]
              http:
              - match: [{uri: {prefix: /h1/}}]
                route: [{destination: {host: bulk-h1.default.svc.cluster.local, port: {number: 80}}}]
              - match: [{uri: {prefix: /h2/}}]
                route: [{destination: {host: bulk-h2.default.svc.cluster.local, port: {number: 80}}}]
            """, entry("bulk-h1", "HTTP", h1), entry("bulk-h2", "HTTP2", h2)]
        let path = try harness.write("bulk.yaml", WorkshopConfig.documents(docs))
        let ingressd = try harness.startIngressd(configs: [path], listenPort: port, workers: 1)
        guard let worker = ingressd.workerPids.first else { throw HarnessError("no worker") }
        return Gateway(ingressd: ingressd, port: port, worker: worker)
    }

    struct Transfer {
        var exit: Int32
        var stdout: String
        var stderr: String
        var seconds: Double
        /// Peak VmRSS of the worker sampled during the transfer (KiB).
        var peakKiB: Int
        /// curl's -w: HTTP version, status, bytes down, bytes up.
        var writeOut: [String] {
            (stderr.split(separator: "\n").last { $0.hasPrefix("w:") }?.dropFirst(2).split(separator: " ") ?? [])
                .map(String.init)
        }
    }

    /// Runs `script` (sh -c) while sampling the worker's VmRSS every 20 ms.
    func sampled(_ g: Gateway, _ script: String, timeout: TimeInterval = 300) throws -> Transfer {
        let start = Date()
        let child = try harness.spawn("transfer", "/bin/sh", ["-c", script])
        var peak = try vmRSSKiB(g.worker)
        while child.isRunning, Date().timeIntervalSince(start) < timeout {
            peak = max(peak, try vmRSSKiB(g.worker))
            usleep(20_000)
        }
        if child.isRunning {
            child.signal(SIGKILL)
            XCTFail("transfer did not finish in \(Int(timeout)) s: \(script)")
        }
        _ = child.wait(timeout: 5)
        peak = max(peak, try vmRSSKiB(g.worker))
        return Transfer(exit: child.process.terminationStatus, stdout: child.stdout, stderr: child.stderr,
                        seconds: Date().timeIntervalSince(start), peakKiB: peak)
    }

    static let writeOut = "%{stderr}w:%{http_version} %{http_code} %{size_download} %{size_upload}\\n"

    /// GET PREFIX/stream/N over h2c, the body piped into sha256sum.
    func download(_ g: Gateway, _ prefix: String, _ n: Int) throws -> Transfer {
        let headers = harness.path("down-\(prefix)-\(n).headers")
        let t = try sampled(g, "curl -sS --http2-prior-knowledge --max-time 280 -D \(headers) -w '\(Self.writeOut)' "
                               + "http://127.0.0.1:\(g.port)/\(prefix)/stream/\(n) | sha256sum")
        let sha = String(t.stdout.prefix(64))
        let want = (try? String(contentsOfFile: headers, encoding: .utf8))?.replacingOccurrences(of: "\r", with: "").split(separator: "\n")
            .first { $0.lowercased().hasPrefix("x-sha256:") }
            .map { $0.split(separator: ":")[1].trimmingCharacters(in: .whitespacesAndNewlines) }
        XCTAssertEqual(t.writeOut, ["2", "200", String(n), "0"], "GET \(prefix) \(n) over HTTP/2: \(t.stderr)")
        XCTAssertEqual(sha, want, "GET \(prefix) \(n): the body's sha256 is the upstream's")
        return t
    }

    /// PUT PREFIX/up over h2c with N bytes of bulk_upstream.py's pattern streamed from a pipe (no
    /// content-length); the upstream answers "<length> <sha256>" of what it got.
    func upload(_ g: Gateway, _ prefix: String, _ n: Int) throws -> Transfer {
        let py = "\(Self.python) \(Paths.bulkUpstream)"
        let t = try sampled(g, "\(py) pattern \(n) | curl -sS --http2-prior-knowledge --max-time 280 -T - "
                               + "-w '\(Self.writeOut)' http://127.0.0.1:\(g.port)/\(prefix)/up")
        let sha = try harness.run(Self.python, [Paths.bulkUpstream, "pattern", String(n), "--sha"], timeout: 120)
        XCTAssertEqual(t.writeOut.prefix(2), ["2", "200"], "PUT \(prefix) \(n) over HTTP/2: \(t.stderr)")
        XCTAssertEqual(t.writeOut.last, String(n), "PUT \(prefix) \(n): curl sent every byte")
        XCTAssertEqual(t.stdout, "\(n) \(sha.stdout.trimmingCharacters(in: .whitespacesAndNewlines))",
                       "PUT \(prefix) \(n): the upstream got every byte")
        return t
    }

    /// A warm-up of 16 MiB each way (first buffers, pooled upstream connection, HTTP/2 session),
    /// then `size` down and up, each with the worker's RSS peak against the level before it.
    func checkFlat(_ prefix: String) throws {
        let g = try startGateway()
        _ = try download(g, prefix, 16 << 20)
        _ = try upload(g, prefix, 16 << 20)
        let n = Self.size
        for (what, run) in [("download", download), ("upload", upload)] {
            let before = try vmRSSKiB(g.worker)
            let t = try run(g, prefix, n)
            let after = try vmRSSKiB(g.worker)
            let line = "\(prefix) \(what) of \(n >> 20) MiB in \(String(format: "%.1f", t.seconds)) s: worker VmRSS "
                + "\(before) KiB before, peak \(t.peakKiB) KiB (+\(t.peakKiB - before)), \(after) KiB after"
            print(line)
            XCTAssertLessThan(t.peakKiB - before, Self.rssBoundKiB, line)
        }
        XCTAssertEqual(g.ingressd.workerPids, [g.worker], "the worker did not restart")
    }

    func testLargeBodiesWithHTTP1UpstreamKeepWorkerRSSFlat() throws {
        try checkFlat("h1")
    }

    func testLargeBodiesWithHTTP2UpstreamKeepWorkerRSSFlat() throws {
        try checkFlat("h2")
    }
}

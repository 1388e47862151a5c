// The workshop (examples/workshop) end to end: routing by Host and path, the headers the
// upstream sees, keep-alive and request bodies (DESIGN.md §8).

import Foundation
import XCTest

final class WorkshopRoutingTests: IntegrationTestCase {
    func testRoutesByHostAndPrefix() throws {
        let shop = try Workshop.start(harness)

        let hipster = try harness.curl(shop.url + "/", host: "hipster.example.com")
        XCTAssertEqual(hipster.status, 200, hipster.text)
        XCTAssertTrue(["frontend-v1", "frontend-v2"].contains(servedBy(hipster) ?? ""), hipster.text)

        let kiali = try harness.curl(shop.url + "/kiali/console", host: "dashboard.example.com")
        XCTAssertEqual(kiali.status, 200)
        XCTAssertEqual(servedBy(kiali), "kiali", kiali.text)

        let jaeger = try harness.curl(shop.url + "/jaeger/search", host: "dashboard.example.com")
        XCTAssertEqual(jaeger.status, 200)
        XCTAssertEqual(servedBy(jaeger), "tracing", jaeger.text)

        let tracingHost = try harness.curl(shop.url + "/api/traces", host: "tracing.example.com")
        XCTAssertEqual(tracingHost.status, 200)
        XCTAssertEqual(servedBy(tracingHost), "tracing", tracingHost.text)
    }

    func testNoMatchingHostOrRouteIs404WithEmptyBody() throws {
        let shop = try Workshop.start(harness)

        let unknownHost = try harness.curl(shop.url + "/", host: "nowhere.example.com")
        XCTAssertEqual(unknownHost.status, 404)
        XCTAssertEqual(unknownHost.body.count, 0, "404 has an empty body (Envoy): \(unknownHost.text)")

        // dashboard.example.com has only /kiali and /jaeger.
        let dashboardRoot = try harness.curl(shop.url + "/", host: "dashboard.example.com")
        XCTAssertEqual(dashboardRoot.status, 404)
        XCTAssertEqual(dashboardRoot.body.count, 0)

        for upstream in shop.upstreams {
            XCTAssertEqual(upstream.requests, [], "\(upstream.name) must not see unrouted requests")
        }
    }

    func testHostPortAndCaseAreIgnoredForMatching() throws {
        let shop = try Workshop.start(harness)
        let withPort = try harness.curl(shop.url + "/", host: "hipster.example.com:\(shop.listenPort)")
        XCTAssertEqual(withPort.status, 200)
        XCTAssertNotNil(servedBy(withPort))

        let upper = try harness.curl(shop.url + "/kiali", host: "DASHBOARD.Example.COM")
        XCTAssertEqual(upper.status, 200)
        XCTAssertEqual(servedBy(upper), "kiali")

        let both = try harness.curl(shop.url + "/", host: "Tracing.EXAMPLE.com:80")
        XCTAssertEqual(both.status, 200)
        XCTAssertEqual(servedBy(both), "tracing")
    }

    func testForwardedHeadersHostAndPathReachTheUpstream() throws {
        let shop = try Workshop.start(harness)
        let response = try harness.curl(shop.url + "/kiali/api/namespaces?x=1&y=%2F", host: "dashboard.example.com")
        XCTAssertEqual(response.status, 200)
        XCTAssertTrue(response.text.contains("request: GET /kiali/api/namespaces?x=1&y=%2F HTTP/1.1"),
                      "path and query are forwarded unchanged: \(response.text)")
        let headers = echoedHeaders(response)
        func value(_ name: String) -> String? { headers.first { $0.name == name }?.value }
        XCTAssertEqual(value("host"), "dashboard.example.com", "Host is forwarded unchanged")
        XCTAssertTrue(value("x-forwarded-for")?.contains("127.0.0.1") ?? false,
                      "x-forwarded-for names the client: \(headers)")
        XCTAssertEqual(value("x-forwarded-proto"), "http")
        XCTAssertFalse((value("x-request-id") ?? "").isEmpty, "x-request-id is generated: \(headers)")

        // An incoming x-request-id is kept; x-forwarded-for is appended to.
        let kept = try harness.curl(shop.url + "/kiali", host: "dashboard.example.com",
                                    ["-H", "x-request-id: test-id-123", "-H", "X-Forwarded-For: 10.1.2.3"])
        let keptHeaders = echoedHeaders(kept)
        XCTAssertEqual(keptHeaders.first { $0.name == "x-request-id" }?.value, "test-id-123")
        let xff = keptHeaders.filter { $0.name == "x-forwarded-for" }.map(\.value).joined(separator: ",")
        XCTAssertTrue(xff.contains("10.1.2.3") && xff.contains("127.0.0.1"), "appended: \(xff)")
    }

    func testKeepAliveReusesOneConnection() throws {
        let shop = try Workshop.start(harness)
        // One curl, several URLs: curl reuses the connection when the server keeps it open.
        // %{num_connects} is the number of new connections each transfer needed.
        let paths = ["/kiali/a", "/jaeger/b", "/kiali/c", "/jaeger/d", "/kiali/e"]
        let result = try harness.run("curl", ["-s", "-S", "-H", "Host: dashboard.example.com", "-w", "%{http_code} %{num_connects}\\n"]
                                             + paths.flatMap { ["-o", "/dev/null", shop.url + $0] })
        XCTAssertEqual(result.status, 0, result.stderr)
        let lines = result.stdout.split(separator: "\n")
        XCTAssertEqual(lines.count, paths.count, result.stdout)
        XCTAssertTrue(lines.allSatisfy { $0.hasPrefix("200 ") }, result.stdout)
        let connects = lines.compactMap { $0.split(separator: " ").last.flatMap { Int($0) } }.reduce(0, +)
        XCTAssertEqual(connects, 1, "all requests on one client connection: \(result.stdout)")
        XCTAssertEqual(shop.kiali.requests.count + shop.tracing.requests.count, paths.count)
    }

    func testRequestBodiesAreForwardedWhole() throws {
        let shop = try Workshop.start(harness)

        let small = try harness.curl(shop.url + "/kiali/post", host: "dashboard.example.com",
                                     ["--data-binary", "hello, upstream"])
        XCTAssertEqual(small.status, 200)
        XCTAssertTrue(small.text.contains("request: POST /kiali/post HTTP/1.1"), small.text)
        XCTAssertTrue(small.text.contains("body-bytes: 15\n"), small.text)

        // 10 MiB of pseudo-random bytes, by Content-Length and chunked.
        var generator = SystemRandomNumberGenerator()
        var bytes = [UInt8](repeating: 0, count: 10 << 20)
        for i in stride(from: 0, to: bytes.count, by: 8) {
            withUnsafeBytes(of: generator.next() as UInt64) { word in
                for j in 0..<8 { bytes[i + j] = word[j] }
            }
        }
        let bigPath = harness.path("big.bin")
        try Data(bytes).write(to: URL(fileURLWithPath: bigPath))
        let sha = try harness.run("sha256sum", [bigPath]).stdout.split(separator: " ").first.map(String.init) ?? ""
        XCTAssertEqual(sha.count, 64)

        let big = try harness.curl(shop.url + "/kiali/upload", host: "dashboard.example.com",
                                   ["--data-binary", "@" + bigPath], timeout: 60)
        XCTAssertEqual(big.status, 200, big.curlStderr)
        XCTAssertTrue(big.text.contains("body-bytes: \(10 << 20)\n"), big.text)
        XCTAssertTrue(big.text.contains("body-sha256: \(sha)"), big.text)

        let chunked = try harness.curl(shop.url + "/kiali/upload", host: "dashboard.example.com",
                                       ["-H", "Transfer-Encoding: chunked", "--data-binary", "@" + bigPath],
                                       timeout: 60)
        XCTAssertEqual(chunked.status, 200, chunked.curlStderr)
        XCTAssertTrue(chunked.text.contains("body-bytes: \(10 << 20)\n"), chunked.text)
        XCTAssertTrue(chunked.text.contains("body-sha256: \(sha)"), chunked.text)

        let smallChunked = try harness.curl(shop.url + "/kiali/upload", host: "dashboard.example.com",
                                            ["-H", "Transfer-Encoding: chunked", "--data-binary", "abc"])
        XCTAssertEqual(smallChunked.status, 200)
        XCTAssertTrue(smallChunked.text.contains("body-bytes: 3\n"), smallChunked.text)
    }

    func testLargeResponseBody() throws {
        let shop = try Workshop.start(harness)
        let size = 10 << 20
        let response = try harness.curl(shop.url + "/jaeger/bytes/\(size)", host: "dashboard.example.com",
                                        timeout: 60)
        XCTAssertEqual(response.status, 200, response.curlStderr)
        XCTAssertEqual(response.body.count, size)
    }

    /// examples/https/https-gateway.yaml as `make run` serves it: the shop over HTTPS with the
    /// certificate of the `hipster-example-com` credential (here made by the test's CA).
    func testShopOverHTTPSFromTheExample() throws {
        let pki = try TestPKI(harness)
        let creds = harness.path("credentials")
        try pki.credential(in: creds, name: "hipster-example-com", names: ["hipster.example.com"])
        let httpsPort = try freeTCPPort()
        let example = try WorkshopConfig.example("https/https-gateway.yaml")
        XCTAssertTrue(example.contains("number: 443\n"), "the example serves port 443")
        let moved = try harness.write("https-gateway.yaml", example.replacingOccurrences(of: "number: 443\n", with: "number: \(httpsPort)\n"))
        let shop = try Workshop.start(harness, extraConfigs: [moved], extraArgs: ["--credentials-dir", creds])
        let r = try harness.curl("https://hipster.example.com:\(httpsPort)/", ["--cacert", pki.caPath,
                                 "--resolve", "hipster.example.com:\(httpsPort):127.0.0.1"])
        XCTAssertEqual(r.status, 200, r.curlStderr)
        XCTAssertTrue(["frontend-v1", "frontend-v2"].contains(servedBy(r) ?? ""), r.text)
        XCTAssertTrue(echoedHeaders(r).contains { $0.name == "x-forwarded-proto" && $0.value == "https" }, r.text)
        // The plain HTTP workshop is unchanged beside it.
        XCTAssertEqual(try harness.curl(shop.url + "/", host: "hipster.example.com").status, 200)
    }
}

/// The canary step: 80/20 between frontend subsets v1 and v2.
final class CanaryTests: IntegrationTestCase {
    func testWeightedSplitBetweenSubsets() throws {
        let shop = try Workshop.start(harness, canary: true)
        let total = 200
        let result = try harness.run("curl", ["-s", "-S", "-H", "Host: hipster.example.com"]
                                             + Array(repeating: shop.url + "/", count: total), timeout: 60)
        XCTAssertEqual(result.status, 0, result.stderr)
        let v1 = result.stdout.components(separatedBy: "upstream: frontend-v1 ").count - 1
        let v2 = result.stdout.components(separatedBy: "upstream: frontend-v2 ").count - 1
        XCTAssertEqual(v1 + v2, total, "every request answered by a frontend")
        // Binomial(200, 0.2): mean 40, sd 5.7; allow 4 sd either way.
        XCTAssertTrue((17...63).contains(v2), "v2 got \(v2) of \(total), expected about 40 (20%)")
        XCTAssertEqual(shop.frontendV1.requests.count, v1)
        XCTAssertEqual(shop.frontendV2.requests.count, v2)
    }

}

import RouteTable
import XCTest

/// A corrupt or truncated image must be an error, never a crash or an out-of-bounds read.
final class CorruptImageTests: XCTestCase {
    func read(_ image: [UInt8], count: Int? = nil) -> Result<TableReader, TableReadError> {
        // A tight allocation, so that a read past `count` is caught by the address sanitizer
        // when the tests run with -sanitize=address.
        let n = count ?? image.count
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(n, 1), alignment: 1)
        defer { raw.deallocate() }
        image.withUnsafeBytes { raw.copyMemory(from: $0.baseAddress!, byteCount: n) }
        do { return .success(try TableReader(validating: raw, count: n)) } catch { return .failure(error) }
    }

    func error(_ image: [UInt8], count: Int? = nil) -> TableReadError? {
        if case .failure(let e) = read(image, count: count) { return e }
        return nil
    }

    func set32(_ image: inout [UInt8], _ at: Int, _ v: UInt32) {
        for i in 0..<4 { image[at + i] = UInt8((v >> UInt32(8 * i)) & 0xFF) }
    }
    func get32(_ image: [UInt8], _ at: Int) -> Int {
        (0..<4).reduce(0) { $0 | Int(image[at + $1]) << (8 * $1) }
    }
    /// Byte offset of the first record of a section.
    func sectionStart(_ image: [UInt8], _ s: Section) -> Int { get32(image, 16 + 8 * Int(s.rawValue)) }

    func testEveryTruncationIsRejected() throws {
        let image = try TableImage.build(fullSpec)
        for n in 0..<image.count {
            XCTAssertNotNil(error(image, count: n), "accepted \(n) of \(image.count) bytes")
        }
        XCTAssertEqual(error(image, count: 10), .truncated(byteCount: 10))
        XCTAssertEqual(error(image, count: image.count - 1), .truncated(byteCount: image.count - 1))
    }

    func testHeaderChecks() throws {
        let good = try TableImage.build(fullSpec)
        var bad = good
        bad[0] = UInt8(ascii: "X")
        XCTAssertEqual(error(bad), .badMagic(0x4254_5258))
        bad = good
        bad[4] = UInt8(Layout.version + 1)
        XCTAssertEqual(error(bad), .unsupportedVersion(Layout.version + 1))
        bad = good
        bad[6] = 8  // headerBytes smaller than a header
        XCTAssertEqual(error(bad), .badHeader)
        bad = good
        set32(&bad, 16 + 8 * Int(Section.routes.rawValue) + 4, 1_000_000)  // route count past the end
        XCTAssertEqual(error(bad), .sectionOutOfBounds(.routes))
        bad = good
        set32(&bad, 16 + 8 * Int(Section.clusters.rawValue), 4)  // cluster section inside the header
        XCTAssertEqual(error(bad), .sectionOutOfBounds(.clusters))
    }

    func testBadReferencesAreRejected() throws {
        let good = try TableImage.build(fullSpec)
        var bad = good
        // Weighted entry 0 → cluster 99 (there are 2).
        set32(&bad, sectionStart(good, .weighted), 99)
        XCTAssertEqual(error(bad), .badRecord(.weighted, index: 0))

        bad = good
        // Route 0's name runs past the string section.
        set32(&bad, sectionStart(good, .routes) + 4, 0x00FF_FFFF)
        XCTAssertEqual(error(bad), .badRecord(.routes, index: 0))

        bad = good
        // Listener 0's exact table gets 3 slots (not a power of two).
        set32(&bad, sectionStart(good, .listeners) + 20, 3)
        XCTAssertEqual(error(bad), .badRecord(.listeners, index: 0))

        bad = good
        // A host slot of listener 0 points at the virtual host of listener 1.
        let slots = sectionStart(good, .hostSlots)
        var patched = false
        for s in 0..<get32(good, 16 + 8 * Int(Section.hostSlots.rawValue) + 4) where !patched {
            if get32(good, slots + 16 * s + 12) == 0 { set32(&bad, slots + 16 * s + 12, 2); patched = true }
        }
        XCTAssertTrue(patched)
        XCTAssertEqual(error(bad)?.sameSection, .badRecord(.hostSlots, index: -1))

        bad = good
        bad[sectionStart(good, .routes) + 20] = 9  // unknown action kind
        XCTAssertEqual(error(bad), .badRecord(.routes, index: 0))

        bad = good
        bad[sectionStart(good, .endpoints)] = 5  // unknown address family
        XCTAssertEqual(error(bad), .badRecord(.endpoints, index: 0))

        bad = good
        // The forward total weight no longer equals the sum of the weights.
        set32(&bad, sectionStart(good, .routes) + 32, 1)
        XCTAssertEqual(error(bad), .badRecord(.routes, index: 0))

        bad = good
        set32(&bad, sectionStart(good, .conditions) + 20, 77)  // uri prefix condition with a regex index
        XCTAssertEqual(error(bad), .badRecord(.conditions, index: 0))
    }

    func testCorruptActionsAreRejected() throws {
        let good = try TableImage.build(actionsSpec)
        XCTAssertNil(error(good))
        let route0 = sectionStart(good, .routes)
        let routeBytes = 168, clusterBytes = 88
        func expect(_ section: Section, _ index: Int, _ why: String, _ patch: (inout [UInt8]) -> Void) {
            var bad = good
            patch(&bad)
            XCTAssertEqual(error(bad), .badRecord(section, index: index), why)
        }
        expect(.routes, 0, "rewrite uri past the strings") { set32(&$0, route0 + 76, 0x00FF_FFFF) }
        expect(.routes, 1, "regex rewrite pattern without substitution") { set32(&$0, route0 + routeBytes + 96, 0xFFFF_FFFF) }
        expect(.routes, 0, "header ops past the section") { set32(&$0, route0 + 108, 1000) }
        expect(.routes, 0, "unknown retryOn bit") { set32(&$0, route0 + 124, 1 << 20) }
        expect(.routes, 0, "retry statuses past the section") { set32(&$0, route0 + 132, 3) }
        expect(.routes, 0, "delay over 100 %") { set32(&$0, route0 + 144, 1_000_001) }
        expect(.routes, 0, "abort over 100 %") { set32(&$0, route0 + 148, 2_000_000) }
        expect(.routes, 0, "unknown action flag") { $0[route0 + 155] = 0x80 }
        expect(.routes, 0, "mirrors past the section") { set32(&$0, route0 + 160, 3) }
        expect(.routes, 0, "cors index past the section") { set32(&$0, route0 + 164, 2) }
        expect(.routes, 2, "cors index below -1") { set32(&$0, route0 + 2 * routeBytes + 164, 0xFFFF_FFFE) }

        let weighted = sectionStart(good, .weighted)
        expect(.weighted, 0, "destination header ops past the section") { set32(&$0, weighted + 16, 1000) }

        let ops = sectionStart(good, .headerOps)
        expect(.headerOps, 0, "unknown header op") { $0[ops] = 9 }
        expect(.headerOps, 1, "header value past the strings") { set32(&$0, ops + 20 + 12, 0x00FF_FFFF) }
        expect(.retryStatuses, 1, "status 600") { $0[sectionStart(good, .retryStatuses) + 2] = 0x58; $0[sectionStart(good, .retryStatuses) + 3] = 0x02 }
        let mirrors = sectionStart(good, .mirrors)
        expect(.mirrors, 0, "mirror cluster 99") { set32(&$0, mirrors, 99) }
        expect(.mirrors, 1, "mirror over 100 %") { set32(&$0, mirrors + 8 + 4, 1_000_001) }
        let cors = sectionStart(good, .cors)
        expect(.cors, 0, "origins past the section") { set32(&$0, cors + 4, 4) }
        expect(.cors, 0, "unknown unmatchedPreflights") { $0[cors + 37] = 0 }
        expect(.cors, 0, "unknown cors flag") { $0[cors + 36] = 4 }
        expect(.cors, 1, "allow methods past the strings") { set32(&$0, 40 + cors + 8, 0x00FF_FFFF) }
        let origins = sectionStart(good, .origins)
        expect(.origins, 0, "origin kind present") { $0[origins] = ConditionKind.present.rawValue }
        expect(.origins, 0, "exact origin with a regex index") { set32(&$0, origins + 12, 0) }
        expect(.origins, 2, "regex origin without a regex") { set32(&$0, origins + 32 + 12, 0xFFFF_FFFF) }
        expect(.origins, 2, "regex origin past the regexes") { set32(&$0, origins + 32 + 12, 50) }

        let clusters = sectionStart(good, .clusters)
        expect(.clusters, 0, "unknown load balancer") { $0[clusters + 20] = 0 }
        expect(.clusters, 0, "hash key on round robin") { $0[clusters + 21] = HashKeyKind.sourceIP.rawValue }
        expect(.clusters, 1, "ring hash without a hash key") { $0[clusters + clusterBytes + 21] = 0 }
        expect(.clusters, 1, "unknown hash key") { $0[clusters + clusterBytes + 21] = 9 }
        expect(.clusters, 1, "cookie name absent") { set32(&$0, clusters + clusterBytes + 24, 0xFFFF_FFFF) }
        expect(.clusters, 1, "cookie path past the strings") { set32(&$0, clusters + clusterBytes + 36, 0x00FF_FFFF) }
        expect(.clusters, 1, "unknown cluster flag") { $0[clusters + clusterBytes + 22] = 8 }
        expect(.clusters, 1, "HTTP/2 keepalive interval without a timeout") { set32(&$0, clusters + clusterBytes + 80, 200) }
        expect(.clusters, 1, "HTTP/2 keepalive timeout without an interval") { set32(&$0, clusters + clusterBytes + 84, 200) }
        expect(.clusters, 5, "source IP with a name") { set32(&$0, clusters + 5 * clusterBytes + 24, 0) }
    }

    /// Single-byte corruptions of an image with every action: rejected, or readable through every
    /// action accessor without crashing.
    func testSingleByteCorruptionOfActionsNeverCrashes() throws {
        let good = try TableImage.build(actionsSpec)
        var accepted = 0, rejected = 0
        for i in 0..<good.count {
            for value: UInt8 in [0x00, 0xFF, good[i] &+ 1] where value != good[i] {
                var bad = good
                bad[i] = value
                bad.withUnsafeBytes { raw in
                    guard let r = try? TableReader(validating: raw.baseAddress!, count: raw.count) else {
                        rejected += 1
                        return
                    }
                    accepted += 1
                    _ = r.decodeSpec()
                    for route in r.routes {
                        _ = r.rewriteURIReplaceCount(route: route, pathLength: 10)
                        _ = r.retriesOnStatus(route: route, status: 503)
                        let d = r.pickDestination(route: route, random: 0x1234_5678)
                        if d >= 0 { _ = r.destinationCluster(d) }
                        for c in r.routeCors(route: route) >= 0 ? r.cors(r.routeCors(route: route)).origins : 0..<0 {
                            _ = r.corsOrigin(c)
                        }
                    }
                    for c in r.clusters { _ = r.clusterLoadBalancer(c); _ = r.clusterConnectionPool(c); _ = r.clusterHTTP2(c) }
                }
            }
        }
        XCTAssertGreaterThan(rejected, 0)
        XCTAssertGreaterThan(accepted, 0)
    }

    /// Every single-byte corruption is either rejected or yields a table that can be read and
    /// matched against without crashing.
    func testSingleByteCorruptionNeverCrashes() throws {
        let good = try TableImage.build(fullSpec)
        var accepted = 0, rejected = 0
        for i in 0..<good.count {
            for value: UInt8 in [0x00, 0xFF, good[i] &+ 1] where value != good[i] {
                var bad = good
                bad[i] = value
                bad.withUnsafeBytes { raw in
                    guard let reader = try? TableReader(validating: raw.baseAddress!, count: raw.count) else {
                        rejected += 1
                        return
                    }
                    accepted += 1
                    _ = reader.decodeSpec()
                    for r in reader.routes { _ = reader.pickCluster(route: r, random: 0x8000_0000) }
                    guard let matcher = try? RouteMatcher(reader) else { return }
                    for host in ["shop.example.com", "a.shop.example.com", "shop.x", "secure.example.com", "zzz"] {
                        _ = withRequest(method: "GET", target: "/api/x?Version", host: host, https: false, port: 80,
                                        headers: [("x-user", "alice"), ("x-any", "1")]) { matcher.route($0) }
                    }
                }
            }
        }
        XCTAssertGreaterThan(rejected, 0)
        XCTAssertGreaterThan(accepted, 0)  // string bytes, for instance, can change freely
    }
}

extension TableReadError {
    /// Compares only the kind and section (the slot index depends on hashing).
    var sameSection: TableReadError {
        if case let .badRecord(s, _) = self { return .badRecord(s, index: -1) }
        return self
    }
}

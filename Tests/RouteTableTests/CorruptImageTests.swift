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

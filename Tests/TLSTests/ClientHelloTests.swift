import TLS
import XCTest

final class ClientHelloTests: XCTestCase {

    // MARK: Real clients

    func testCapturedHellos() {
        for (name, bytes, host, h2, http11) in Captured.all {
            let status = parse(bytes)
            guard case .hello(let h) = status else { XCTFail("\(name): \(status)"); continue }
            XCTAssertEqual(sni(status, in: bytes), host, name)
            XCTAssertEqual(h.sniCount == 0, host.isEmpty, name)
            XCTAssertEqual(h.offersH2, h2, name)
            XCTAssertEqual(h.offersHTTP11, http11, name)
            XCTAssertEqual(Int(h.length), bytes.count, name)
        }
    }

    /// The caller reads what arrives and calls again with everything so far: every prefix is
    /// .incomplete, and the whole gives the one-call result.
    func testEverySplitPointOfARealHello() {
        for (name, bytes, _, _, _) in Captured.all {
            let whole = parse(bytes)
            for cut in 0..<bytes.count where parse(bytes[..<cut]) != .incomplete {
                XCTFail("\(name): \(cut) of \(bytes.count) bytes: \(parse(bytes[..<cut]))")
            }
            XCTAssertEqual(parse(bytes), whole, name)
        }
    }

    /// Bytes after the hello (a ChangeCipherSpec, early data) do not change the result; the
    /// length says where they start.
    func testBytesAfterTheHello() {
        let bytes = Captured.curl
        let ccs: [UInt8] = [20, 3, 3, 0, 1, 1]
        XCTAssertEqual(parse(bytes + ccs), parse(bytes))
        XCTAssertEqual(parse(bytes + [0x17]), parse(bytes))
    }

    // MARK: Fragmentation over records

    /// The hello re-cut into records of every size from 1 byte up: the same SNI (at its new
    /// offset) and ALPN while the host name lies in one record; .malformed when it straddles two.
    func testHelloInRecordsOfEverySize() {
        for (name, bytes, host, h2, http11) in Captured.all {
            let msg = message(of: bytes)
            let nameAt = host.isEmpty ? nil : findSubsequence(Array(host.utf8), in: msg)
            for size in 1...msg.count {
                let cut = records(msg, size: size)
                let status = parse(cut)
                let straddles = nameAt.map { $0 / size != ($0 + host.utf8.count - 1) / size } ?? false
                if straddles {
                    XCTAssertEqual(status, .malformed, "\(name) in \(size)-byte records")
                    continue
                }
                guard case .hello(let h) = status else {
                    XCTFail("\(name) in \(size)-byte records: \(status)")
                    continue
                }
                XCTAssertEqual(sni(status, in: cut), host, "\(name) in \(size)-byte records")
                XCTAssertEqual(h.offersH2, h2)
                XCTAssertEqual(h.offersHTTP11, http11)
                XCTAssertEqual(Int(h.length), cut.count)
            }
        }
    }

    func testEverySplitPointOfAFragmentedHello() {
        // Four records, the handshake header itself split over the first two.
        let msg = message(of: Captured.opensslSNI)
        let bytes = records(msg, sizes: [2, 40, 200, msg.count - 242], version: [3, 3])
        let whole = parse(bytes)
        XCTAssertEqual(sni(whole, in: bytes), "example.com")
        for cut in 0..<bytes.count {
            XCTAssertEqual(parse(bytes[..<cut]), .incomplete, "cut at \(cut)")
        }
    }

    func testRecordsAfterTheFirstMustBeHandshakes() {
        let msg = message(of: Captured.opensslSNI)
        var bytes = records(msg, sizes: [100, msg.count - 100])
        XCTAssertNotNil(sni(parse(bytes), in: bytes))
        bytes[105] = 21  // an alert between the fragments
        XCTAssertEqual(parse(bytes), .malformed)
        XCTAssertEqual(parse(bytes[..<106]), .malformed, "decided from the record's first byte")
        bytes[105] = 22
        bytes[106] = 2  // version 2.x
        XCTAssertEqual(parse(bytes), .malformed)
    }

    // MARK: Not TLS

    func testPlaintextIsNotTLSFromTheFirstByte() {
        let get = Array("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n".utf8)
        XCTAssertEqual(parse(get), .notTLS)
        XCTAssertEqual(parse(get[..<1]), .notTLS)
        XCTAssertEqual(parse(Array("PRI * HTTP/2.0\r\n".utf8)[..<1]), .notTLS)
        XCTAssertEqual(parse(Array("PROXY TCP4 ".utf8)[..<1]), .notTLS)
        XCTAssertEqual(parse([0x00]), .notTLS)
        XCTAssertEqual(parse([]), .incomplete)
        XCTAssertEqual(parse([0x16]), .incomplete)
        XCTAssertEqual(parse([0x16, 0x47]), .notTLS, "22 then not major version 3")
        XCTAssertEqual(parse([0x16, 0x03]), .incomplete)
    }

    func testSSLv2CompatibleHelloIsNotTLS() {
        // SSLv2 record header (2-byte length with the high bit set), CLIENT-HELLO, version 3.1.
        let v2: [UInt8] = [0x80, 0x2E, 0x01, 0x03, 0x01, 0x00, 0x15, 0x00, 0x00, 0x00, 0x10]
        XCTAssertEqual(parse(v2), .notTLS)
        XCTAssertEqual(parse(v2[..<1]), .notTLS)
    }

    // MARK: Malformed

    func testRecordHeaderSanity() {
        var b = Captured.opensslSNI
        b[2] = 5  // version 3.5
        XCTAssertEqual(parse(b[..<3]), .malformed, "decided from 3 bytes")
        for v: UInt8 in 0...4 {
            b[2] = v
            XCTAssertNotNil(sni(parse(b), in: b), "record version 3.\(v)")
        }
        XCTAssertEqual(parse([22, 3, 1, 0, 0, 1]), .malformed, "empty record")
        XCTAssertEqual(parse([22, 3, 1, 0x40, 0x01]), .malformed, "record over 2^14, decided from its header")
        XCTAssertEqual(parse([22, 3, 1, 0, 4, 2]), .malformed, "a ServerHello, decided from its type")
        XCTAssertEqual(parse([22, 3, 1, 0, 4, 1, 0, 0x40, 0x01]), .malformed, "a body over 16 KiB, from its length")
    }

    func testRecordCarryingMoreThanTheHello() {
        var b = Captured.opensslSNI
        let len = b.count - 5 + 1
        b[3] = UInt8(len >> 8); b[4] = UInt8(len & 0xFF)
        XCTAssertEqual(parse(b + [0]), .malformed)
        XCTAssertEqual(parse(b[..<10]), .malformed, "known from the record and handshake headers")
    }

    func testHelloLengthsAgainstTheirContainers() {
        let base = Captured.opensslSNI
        XCTAssertNotNil(sni(parse(base), in: base))
        // Offsets in the openssl s_client hello (see the hex): handshake length at 6, session ID
        // length at 43, cipher suites length at 76, extensions length at 142, then server_name:
        // extension length at 146, list length at 148, host_name length at 151.
        XCTAssertEqual(base[43], 32)
        XCTAssertEqual(Int(base[76]) << 8 | Int(base[77]), 62)
        XCTAssertEqual(Int(base[142]) << 8 | Int(base[143]), base.count - 144)
        XCTAssertEqual(Array(base[144...152]), [0, 0, 0, 0x10, 0, 0x0e, 0, 0, 0x0b])
        for (at, delta) in [(8, 1), (8, -1), (43, 1), (43, -1), (77, 2), (77, -2), (77, 1),
                            (143, 1), (143, -1), (147, 1), (147, -1), (149, 1), (149, -1),
                            (152, 1), (152, -1)] {
            var b = base
            b[at] = UInt8(truncatingIfNeeded: Int(b[at]) + delta)
            let status = parse(b)
            XCTAssert(status == .malformed || status == .incomplete, "byte \(at) \(delta): \(status)")
            XCTAssertFalse(parse(b + [UInt8](repeating: 0, count: 64)).isHello, "byte \(at) \(delta)")
        }
    }

    func testTruncatedHelloInACompleteRecord() {
        // A record and handshake header that agree, over a body cut short at every point.
        let body = Array(message(of: Captured.curl)[4...])
        let suites = Int(body[35 + Int(body[34])]) << 8 | Int(body[36 + Int(body[34])])
        let compression = 37 + Int(body[34]) + suites
        let noExtensions = compression + 1 + Int(body[compression])  // a valid hello, cut there
        for n in 0..<body.count where n != noExtensions {
            let msg: [UInt8] = [1, 0, UInt8(n >> 8), UInt8(n & 0xFF)] + body[..<n]
            XCTAssertEqual(parse(records(msg, size: 1 << 14)), .malformed, "body cut at \(n)")
        }
    }

    func testLegacyVersionAndFieldBounds() {
        var h = HelloBuilder(extensions: [serverName("example.com")])
        XCTAssertEqual(sni(parse(h.bytes), in: h.bytes), "example.com")
        h.legacyVersion = [2, 0]
        XCTAssertEqual(parse(h.bytes), .malformed)
        h = HelloBuilder()
        h.sessionID = [UInt8](repeating: 1, count: 33)
        XCTAssertEqual(parse(h.bytes), .malformed, "session ID over 32 bytes")
        h = HelloBuilder()
        h.suites = [0x13]
        XCTAssertEqual(parse(h.bytes), .malformed, "odd cipher suites length")
        h.suites = []
        XCTAssertEqual(parse(h.bytes), .malformed, "no cipher suite")
        h = HelloBuilder()
        h.compression = []
        XCTAssertEqual(parse(h.bytes), .malformed, "no compression method")
    }

    func testHelloWithoutExtensions() {
        let h = HelloBuilder(extensions: nil)
        XCTAssertEqual(parse(h.bytes), .hello(ClientHello(sniStart: 0, sniCount: 0, offersH2: false,
                                                           offersHTTP11: false, length: Int32(h.bytes.count))))
        let empty = HelloBuilder(extensions: [])
        XCTAssertTrue(parse(empty.bytes).isHello)
        var trailing = h.bytes + [0]
        trailing[4] += 1; trailing[8] += 1
        XCTAssertEqual(parse(trailing), .malformed, "one byte where the extensions length would be")
    }

    // MARK: SNI

    func testSNIRules() {
        func status(_ host: [UInt8]) -> ClientHelloStatus {
            parse(HelloBuilder(extensions: [serverName([(0, host)])]).bytes)
        }
        let longest = [UInt8](repeating: UInt8(ascii: "a"), count: 255)
        XCTAssertEqual(sni(status(longest), in: HelloBuilder(extensions: [serverName([(0, longest)])]).bytes),
                       String(repeating: "a", count: 255))
        XCTAssertEqual(status(longest + [UInt8(ascii: "a")]), .malformed, "over 255 bytes")
        XCTAssertEqual(status([]), .malformed, "empty")
        for good in ["example.com", "EXAMPLE.com.", "a-b_c.d9", "10.0.0.1", "xn--bcher-kva.example"] {
            XCTAssertTrue(status(Array(good.utf8)).isHello, good)
        }
        for bad in ["exa mple.com", "a:b", "::1", "a/b", "a\u{0}b", "bücher.example", "a*b", "a@b", "[::1]", "a\\b"] {
            XCTAssertEqual(status(Array(bad.utf8)), .malformed, bad)
        }
    }

    func testFirstHostNameEntryIsTheSNI() {
        let h = HelloBuilder(extensions: [serverName([(7, [1, 2, 3]), (0, Array("first.example".utf8)),
                                                      (0, Array("second.example".utf8))])])
        XCTAssertEqual(sni(parse(h.bytes), in: h.bytes), "first.example")
        let other = HelloBuilder(extensions: [serverName([(7, [1, 2, 3])])])
        XCTAssertEqual(sni(parse(other.bytes), in: other.bytes), "", "no host_name entry: no SNI")
        let emptyList = HelloBuilder(extensions: [(0, [0, 0])])
        XCTAssertEqual(parse(emptyList.bytes), .malformed)
        let noList = HelloBuilder(extensions: [(0, [])])
        XCTAssertEqual(parse(noList.bytes), .malformed)
        let overrun = HelloBuilder(extensions: [(0, [0, 5, 0, 0, 9, 0x61, 0x62])])
        XCTAssertEqual(parse(overrun.bytes), .malformed)
    }

    // MARK: ALPN

    func testALPN() {
        func flags(_ protocols: [String]) -> (Bool, Bool)? {
            guard case .hello(let h) = parse(HelloBuilder(extensions: [alpn(protocols)]).bytes) else { return nil }
            return (h.offersH2, h.offersHTTP11)
        }
        XCTAssertTrue(flags(["h2"])! == (true, false))
        XCTAssertTrue(flags(["http/1.1"])! == (false, true))
        XCTAssertTrue(flags(["http/1.0", "h2c", "spdy/3.1", "h3", "http/1.1", "h2"])! == (true, true))
        XCTAssertTrue(flags(["H2", "HTTP/1.1", "http/1.2"])! == (false, false), "exact, case-sensitive")
        XCTAssertNil(flags(["h2", ""]), "an empty protocol name")
        XCTAssertNil(flags([]), "an empty list")
        let exact = HelloBuilder(extensions: [(16, [0, 3, 2, 0x68, 0x32])])
        XCTAssertTrue(parse(exact.bytes).isHello)
        let overrun = HelloBuilder(extensions: [(16, [0, 3, 3, 0x68, 0x32])])
        XCTAssertEqual(parse(overrun.bytes), .malformed)
        let listMismatch = HelloBuilder(extensions: [(16, [0, 4, 2, 0x68, 0x32])])
        XCTAssertEqual(parse(listMismatch.bytes), .malformed)
    }

    // MARK: Extensions

    func testDuplicatedExtensions() {
        let dupSNI = HelloBuilder(extensions: [serverName("a.example"), alpn(["h2"]), serverName("b.example")])
        XCTAssertEqual(parse(dupSNI.bytes), .malformed)
        let dupOther = HelloBuilder(extensions: [(0x0a0a, []), (43, [2, 3, 4]), (0x0a0a, [])])
        XCTAssertEqual(parse(dupOther.bytes), .malformed)
        let greaseTwice = HelloBuilder(extensions: [(0x0a0a, []), (0x1a1a, [0]), serverName("x.example")])
        XCTAssertEqual(sni(parse(greaseTwice.bytes), in: greaseTwice.bytes), "x.example")
        // Every pair of 128 distinct types, duplicated at the end.
        let many = (0..<128).map { (type: 1 + $0 * 509, data: [UInt8]()) }
        XCTAssertTrue(parse(HelloBuilder(extensions: many).bytes).isHello)
        for k in stride(from: 0, to: 127, by: 7) {
            let dup = HelloBuilder(extensions: Array(many[..<127]) + [many[k]])
            XCTAssertEqual(parse(dup.bytes), .malformed, "type \(many[k].type) twice")
        }
    }

    func testMoreThan128Extensions() {
        let ok = HelloBuilder(extensions: (0..<128).map { (type: 1000 + $0, data: []) })
        XCTAssertTrue(parse(ok.bytes).isHello)
        let tooMany = HelloBuilder(extensions: (0..<129).map { (type: 1000 + $0, data: []) })
        XCTAssertEqual(parse(tooMany.bytes), .malformed)
    }

    func testExtensionOverrunningTheBlock() {
        var h = HelloBuilder(extensions: [(21, [0, 0, 0])])
        var b = h.bytes
        b[b.count - 4] = 4  // padding says 4 bytes, 3 remain
        XCTAssertEqual(parse(b), .malformed)
        h.extensions = [(21, [])]
        b = h.bytes
        b.removeLast()  // an extension header cut short, lengths patched to agree
        b[4] -= 1; b[8] -= 1; b[b.count - 4] -= 1
        XCTAssertEqual(parse(b), .malformed)
    }

    // MARK: Size bound

    func testLargestHelloAndBeyond() {
        // A body of exactly maxBodyBytes (in 2 records, as it must be), then one byte more.
        func padded(body: Int) -> HelloBuilder {
            var h = HelloBuilder(extensions: [serverName("big.example"), (21, [])])
            let pad = body - h.body.count
            h.extensions![1].data = [UInt8](repeating: 0, count: pad)
            XCTAssertEqual(h.body.count, body)
            return h
        }
        let biggest = padded(body: ClientHello.maxBodyBytes).bytes
        XCTAssertLessThanOrEqual(biggest.count, ClientHello.maxBytes)
        XCTAssertEqual(sni(parse(biggest), in: biggest), "big.example")
        XCTAssertEqual(parse(biggest[..<(biggest.count - 1)]), .incomplete)
        let tooBig = padded(body: ClientHello.maxBodyBytes + 1).bytes
        XCTAssertEqual(parse(tooBig), .malformed)
        XCTAssertEqual(parse(tooBig[..<9]), .malformed, "from the handshake header")
        // The biggest body in 4 records fits exactly; in 5 it does not, and that is known once
        // the fourth record is in (no room left for a fifth), without waiting for it.
        let msg = padded(body: ClientHello.maxBodyBytes).message
        let q = msg.count / 4
        XCTAssertEqual(4 * q, msg.count)
        let four = records(msg, sizes: [q, q, q, q])
        XCTAssertEqual(four.count, ClientHello.maxBytes)
        XCTAssertTrue(parse(four).isHello)
        let five = records(msg, sizes: [q, q, q, q - 1, 1])
        let fourthEnd = 4 * (5 + q) - 1
        XCTAssertEqual(parse(five[..<(fourthEnd - 1)]), .incomplete)
        XCTAssertEqual(parse(five[..<fourthEnd]), .malformed)
        XCTAssertEqual(parse(five), .malformed)
    }

    /// The caller never needs to buffer more than maxBytes: .incomplete is only ever returned
    /// below it, even for a small hello in tiny records.
    func testNeverIncompleteAtMaxBytes() {
        // A 4000-byte body in 1-byte records: 6 bytes a record, 24 KiB in all.
        let big: [UInt8] = [1, 0, UInt8(4000 >> 8), UInt8(4000 & 0xFF)] + [UInt8](repeating: 0, count: 4000)
        let tiny = records(big, size: 1)
        XCTAssertGreaterThan(tiny.count, ClientHello.maxBytes)
        XCTAssertEqual(parse(tiny), .malformed)
        let lastFit = ClientHello.maxBytes / 6 * 6  // the end of the last record that fits
        for cut in (lastFit - 14)...(ClientHello.maxBytes + 2) {
            XCTAssertEqual(parse(tiny[..<cut]), cut < lastFit ? .incomplete : .malformed, "cut at \(cut)")
        }
    }
}

extension ClientHelloStatus {
    var isHello: Bool { if case .hello = self { return true } else { return false } }
}

func findSubsequence(_ needle: [UInt8], in haystack: [UInt8]) -> Int? {
    guard needle.count <= haystack.count else { return nil }
    for i in 0...(haystack.count - needle.count) where Array(haystack[i..<(i + needle.count)]) == needle {
        return i
    }
    return nil
}

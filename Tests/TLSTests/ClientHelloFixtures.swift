import TLS

// ClientHellos captured from real clients on this machine (Debian 12, OpenSSL 3.0, curl 7.88),
// once, by a Python listener that recorded the first bytes each client sent to 127.0.0.1:
//
//   opensslSNI    openssl s_client -connect 127.0.0.1:PORT -servername example.com -alpn h2,http/1.1
//   opensslNoSNI  openssl s_client -connect 127.0.0.1:PORT -noservername -alpn http/1.1
//   opensslTLS12  openssl s_client -connect 127.0.0.1:PORT -tls1_2 -servername api.internal-svc_1.example.org
//   python        python3 ssl: create_default_context(), set_alpn_protocols(["h2", "http/1.1"]),
//                 wrap_socket(server_hostname="example.com")   (carries a padding extension)
//   curl          curl -k --resolve www.example.com:PORT:127.0.0.1 https://www.example.com:PORT/
//
// ClientHelloCaptureTests captures openssl s_client again at test time, against whatever
// OpenSSL is installed then.
enum Captured {
    static let opensslSNI = hex("""
        160301014a010001460303abb7ee4e6d02a072a6846cbb8e97daf734425193a299a798f6e18ac2cd44aed120c2e0f3a5
        558e5314adaf9903675435690c325c7c1d6d3e08092a771322fec226003e130213031301c02cc030009fcca9cca8ccaa
        c02bc02f009ec024c028006bc023c0270067c00ac0140039c009c0130033009d009c003d003c0035002f00ff010000bf
        00000010000e00000b6578616d706c652e636f6d000b000403000102000a00160014001d0017001e0019001801000101
        010201030104002300000010000e000c02683208687474702f312e310016000000170000000d002a0028040305030603
        080708080809080a080b080408050806040105010601030303010302040205020602002b000908030403030302030100
        2d00020101003300260024001d002060394b3565ef05b70031a75aa8d794ebbc2ada13c006654800733e0699b0d244
        """)
    static let opensslNoSNI = hex("""
        16030101330100012f030359ac450cb369ff01f43630abc586bc262e694d5bf356b309b2e3a2ff947a6ae820d10a4832
        066b7c341b7c8dd52922a774e4c2506249cd424ac313f6455a525e0a003e130213031301c02cc030009fcca9cca8ccaa
        c02bc02f009ec024c028006bc023c0270067c00ac0140039c009c0130033009d009c003d003c0035002f00ff010000a8
        000b000403000102000a00160014001d0017001e0019001801000101010201030104002300000010000b000908687474
        702f312e310016000000170000000d002a0028040305030603080708080809080a080b08040805080604010501060103
        0303010302040205020602002b0009080304030303020301002d00020101003300260024001d00208890960e9de55488
        1a1d4d5709cb509d6b545c6f7fe81563615f172eac59d20d
        """)
    static let opensslTLS12 = hex("""
        16030100de010000da0303455f7cfb72014dfefeaae75b209dbcba9fe88ba82f7ce1f107fb087b7ea98dae000038c02c
        c030009fcca9cca8ccaac02bc02f009ec024c028006bc023c0270067c00ac0140039c009c0130033009d009c003d003c
        0035002f00ff0100007900000023002100001e6170692e696e7465726e616c2d7376635f312e6578616d706c652e6f72
        67000b000403000102000a000c000a001d0017001e00190018002300000016000000170000000d002a00280403050306
        03080708080809080a080b080408050806040105010601030303010302040205020602
        """)
    static let python = hex("""
        1603010200010001fc0303d33d8258c98a81d3265206a947373ab0afbad4d304086ec96cb06499df272db220bc65f663
        6ef38d2019c9d5b57a7a799b32f5ec700eca4197b0144a94705b41150024130213031301c02cc030c02bc02fcca9cca8
        c024c028c023c027009f009e006b006700ff0100018f00000010000e00000b6578616d706c652e636f6d000b00040300
        0102000a00160014001d0017001e0019001801000101010201030104002300000010000e000c02683208687474702f31
        2e310016000000170000000d002a0028040305030603080708080809080a080b08040805080604010501060103030301
        0302040205020602002b00050403040303002d00020101003300260024001d00206ad153c0e9906bb38981b10f8886a3
        02e92fff4f76379d7b73318d05cc824f07001500d0000000000000000000000000000000000000000000000000000000
        000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000
        000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000
        000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000
        00000000000000000000000000000000000000000000000000000000000000000000000000
        """)
    static let curl = hex("""
        1603010200010001fc03030a66b5125890bac27f0f6f58563905767bd43309a4e83689936ec5d8861d74332023f2bf0f
        774cf73228baf7ec67eff6d315ad5e7649b9001c50f82954143e2dc5003e130213031301c02cc030009fcca9cca8ccaa
        c02bc02f009ec024c028006bc023c0270067c00ac0140039c009c0130033009d009c003d003c0035002f00ff01000175
        00000014001200000f7777772e6578616d706c652e636f6d000b000403000102000a00160014001d0017001e00190018
        010001010102010301040010000e000c02683208687474702f312e31001600000017000000310000000d002a00280403
        05030603080708080809080a080b080408050806040105010601030303010302040205020602002b0009080304030303
        020301002d00020101003300260024001d00200db0c6ad732378c1c434dd71e6ef7b099a2eb68ad4d0ac79085fb296cc
        c0ab64001500ae0000000000000000000000000000000000000000000000000000000000000000000000000000000000
        000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000
        000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000
        00000000000000000000000000000000000000000000000000000000000000000000000000
        """)

    /// (name, bytes, SNI, offers h2, offers http/1.1)
    static let all: [(String, [UInt8], String, Bool, Bool)] = [
        ("openssl s_client", opensslSNI, "example.com", true, true),
        ("openssl s_client -noservername", opensslNoSNI, "", false, true),
        ("openssl s_client -tls1_2", opensslTLS12, "api.internal-svc_1.example.org", false, false),
        ("python ssl", python, "example.com", true, true),
        ("curl", curl, "www.example.com", true, true),
    ]
}

func hex(_ s: String) -> [UInt8] {
    var out: [UInt8] = []
    var high: UInt8? = nil
    for c in s.utf8 {
        let v: UInt8
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): v = c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): v = c - UInt8(ascii: "a") + 10
        default: continue
        }
        if let h = high { out.append(h << 4 | v); high = nil } else { high = v }
    }
    return out
}

func parse(_ bytes: [UInt8]) -> ClientHelloStatus {
    bytes.withUnsafeBytes { parseClientHello($0) }
}

func parse(_ bytes: ArraySlice<UInt8>) -> ClientHelloStatus {
    bytes.withUnsafeBytes { parseClientHello($0) }
}

/// The SNI a result points at, as text ("" for none); nil if the result is not a hello.
func sni(_ status: ClientHelloStatus, in bytes: [UInt8]) -> String? {
    guard case .hello(let h) = status else { return nil }
    return String(decoding: bytes[Int(h.sniStart)..<Int(h.sniStart + h.sniCount)], as: UTF8.self)
}

/// The handshake message carried by a hello that fits in one record.
func message(of hello: [UInt8]) -> [UInt8] {
    precondition(Int(hello[3]) << 8 | Int(hello[4]) == hello.count - 5, "not a one-record hello")
    return Array(hello[5...])
}

/// `message` in handshake records (version 3.1) of `size` bytes each (the last may be shorter).
func records(_ message: [UInt8], size: Int, version: [UInt8] = [3, 1]) -> [UInt8] {
    var sizes: [Int] = []
    var left = message.count
    while left > 0 { sizes.append(min(size, left)); left -= size }
    return records(message, sizes: sizes, version: version)
}

/// `message` in handshake records of the given sizes (which must add up to its length).
func records(_ message: [UInt8], sizes: [Int], version: [UInt8] = [3, 1]) -> [UInt8] {
    precondition(sizes.reduce(0, +) == message.count)
    var out: [UInt8] = []
    var at = 0
    for s in sizes {
        out += [22] + version + [UInt8(s >> 8), UInt8(s & 0xFF)]
        out += message[at..<(at + s)]
        at += s
    }
    return out
}

func u16(_ v: Int) -> [UInt8] { [UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }

/// A ClientHello built field by field, for the cases no real client sends.
struct HelloBuilder {
    var legacyVersion: [UInt8] = [3, 3]
    var sessionID = [UInt8](repeating: 0xAB, count: 32)
    var suites: [UInt8] = [0x13, 0x01, 0x13, 0x02]
    var compression: [UInt8] = [0]
    /// nil: no extension block at all (an SSLv3/TLS 1.0-era hello).
    var extensions: [(type: Int, data: [UInt8])]? = []

    var body: [UInt8] {
        var b = legacyVersion + [UInt8](repeating: 0x5A, count: 32)
        b += [UInt8(sessionID.count)] + sessionID
        b += u16(suites.count) + suites
        b += [UInt8(compression.count)] + compression
        if let exts = extensions {
            var block: [UInt8] = []
            for e in exts { block += u16(e.type) + u16(e.data.count) + e.data }
            b += u16(block.count) + block
        }
        return b
    }
    /// Handshake header + body.
    var message: [UInt8] {
        let b = body
        return [1, UInt8(b.count >> 16), UInt8(b.count >> 8 & 0xFF), UInt8(b.count & 0xFF)] + b
    }
    /// In one record (or 2^14-byte records when larger).
    var bytes: [UInt8] { records(message, size: 1 << 14) }
}

/// server_name extension data holding the given (name_type, name) entries.
func serverName(_ entries: [(UInt8, [UInt8])]) -> (type: Int, data: [UInt8]) {
    var list: [UInt8] = []
    for (t, name) in entries { list += [t] + u16(name.count) + name }
    return (0, u16(list.count) + list)
}

func serverName(_ host: String) -> (type: Int, data: [UInt8]) { serverName([(0, Array(host.utf8))]) }

/// ALPN extension data offering `protocols` in order.
func alpn(_ protocols: [String]) -> (type: Int, data: [UInt8]) {
    var list: [UInt8] = []
    for p in protocols { list += [UInt8(p.utf8.count)] + Array(p.utf8) }
    return (16, u16(list.count) + list)
}

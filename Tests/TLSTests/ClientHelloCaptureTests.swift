import Foundation
import TLS
import XCTest

/// Captures ClientHellos from the installed `openssl s_client` at test time (a Python listener
/// on a port-0 socket records the first record-framed bytes) and reads them: the fixtures in
/// ClientHelloFixtures.swift are one OpenSSL version; this follows whatever is installed (a
/// newer OpenSSL with post-quantum key shares sends a hello several times larger).
final class ClientHelloCaptureTests: XCTestCase {

    /// Prints the port, accepts one connection, reads until the records it got hold a whole
    /// handshake message (or 5 s pass), prints the bytes as hex.
    static let listener = """
        import socket, sys
        s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(1)
        print(s.getsockname()[1], flush=True)
        s.settimeout(10); c, _ = s.accept(); c.settimeout(5)
        buf = b""
        def whole(b):
            at, msg = 0, b""
            while at + 5 <= len(b):
                n = int.from_bytes(b[at+3:at+5], "big")
                if at + 5 + n > len(b): return False
                msg += b[at+5:at+5+n]; at += 5 + n
                if len(msg) >= 4 and len(msg) >= 4 + int.from_bytes(msg[1:4], "big"): return True
            return False
        try:
            while not whole(buf):
                d = c.recv(65536)
                if not d: break
                buf += d
        except socket.timeout:
            pass
        print(buf.hex(), flush=True)
        c.close()
        """

    func testOpenSSLClientHellos() throws {
        let python = try tool("python3"), openssl = try tool("openssl")
        let cases: [([String], String, Bool, Bool)] = [
            (["-servername", "example.com", "-alpn", "h2,http/1.1"], "example.com", true, true),
            (["-servername", "Gateway-1.example.internal", "-alpn", "http/1.1", "-tls1_2"],
             "Gateway-1.example.internal", false, true),
            (["-noservername"], "", false, false),
        ]
        for (args, host, h2, http11) in cases {
            let bytes = try capture(python: python, client: openssl) { port in
                ["s_client", "-connect", "127.0.0.1:\(port)"] + args
            }
            let status = parse(bytes)
            XCTAssertEqual(sni(status, in: bytes), host, "\(args): \(status), \(bytes.count) bytes")
            guard case .hello(let h) = status else { continue }
            XCTAssertEqual(h.offersH2, h2, "\(args)")
            XCTAssertEqual(h.offersHTTP11, http11, "\(args)")
            XCTAssertEqual(Int(h.length), bytes.count, "\(args)")
            for cut in 0..<bytes.count where parse(bytes[..<cut]) != .incomplete {
                XCTFail("\(args): cut at \(cut): \(parse(bytes[..<cut]))")
            }
        }
    }

    /// The path of `name` on PATH; skips (saying so) when it is not installed.
    func tool(_ name: String) throws -> String {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let path = "\(dir)/\(name)"
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        throw XCTSkip("\(name) is not installed: the live ClientHello capture is skipped")
    }

    /// Runs the listener, points the client at it, returns what the client sent first.
    /// Both processes are ended (by their pid) whatever happens.
    func capture(python: String, client: String, arguments: (Int) -> [String]) throws -> [UInt8] {
        let server = Process()
        server.executableURL = URL(fileURLWithPath: python)
        server.arguments = ["-c", Self.listener]
        let out = Pipe()
        server.standardOutput = out
        server.standardError = FileHandle.nullDevice
        try server.run()
        defer { if server.isRunning { server.terminate() }; server.waitUntilExit() }

        var text = ""
        while !text.contains("\n") {
            let d = out.fileHandleForReading.availableData
            if d.isEmpty { break }
            text += String(decoding: d, as: UTF8.self)
        }
        guard let port = Int(text.split(separator: "\n").first ?? "") else {
            XCTFail("the listener printed no port: \(text)")
            return []
        }

        let c = Process()
        c.executableURL = URL(fileURLWithPath: client)
        c.arguments = arguments(port)
        c.standardInput = FileHandle.nullDevice
        c.standardOutput = FileHandle.nullDevice
        c.standardError = FileHandle.nullDevice
        try c.run()
        defer { if c.isRunning { c.terminate() }; c.waitUntilExit() }

        let rest = out.fileHandleForReading.readDataToEndOfFile()  // the listener exits after printing
        text += String(decoding: rest, as: UTF8.self)
        let lines = text.split(separator: "\n")
        guard lines.count >= 2 else { XCTFail("nothing captured: \(text)"); return [] }
        return hex(String(lines[1]))
    }
}

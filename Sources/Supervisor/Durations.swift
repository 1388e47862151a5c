/// Parses a duration as users write it in Istio manifests and on our command line: one or more
/// `NUMBER UNIT` pairs, units `ms`, `s`, `m`, `h`, an optional fraction (`1.5s`, `1m30s`,
/// `500ms`). Returns milliseconds, or nil for anything else (a bare number has no unit and is
/// refused: `30` could mean seconds or milliseconds).
public func parseDurationMs(_ text: String) -> UInt64? {
    var bytes = Array(text.utf8)[...]
    guard !bytes.isEmpty else { return nil }
    var totalMs: Double = 0
    while !bytes.isEmpty {
        var number = ""
        while let b = bytes.first, (b >= 0x30 && b <= 0x39) || b == 0x2E {
            number.append(Character(UnicodeScalar(b)))
            bytes.removeFirst()
        }
        guard let value = Double(number), value >= 0 else { return nil }
        var unit = ""
        while let b = bytes.first, b >= 0x61 && b <= 0x7A {
            unit.append(Character(UnicodeScalar(b)))
            bytes.removeFirst()
        }
        switch unit {
        case "ms": totalMs += value
        case "s": totalMs += value * 1_000
        case "m": totalMs += value * 60_000
        case "h": totalMs += value * 3_600_000
        default: return nil
        }
    }
    guard totalMs < 1e15 else { return nil }
    return UInt64(totalMs.rounded())
}

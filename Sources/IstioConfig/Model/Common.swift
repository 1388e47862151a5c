// Types shared by the four kinds, with their strict decoding.

/// A protobuf Duration as written (`5s`, `0.5s`, `100ms`, `1m30s`).
public struct Duration: Sendable, Equatable, CustomStringConvertible {
    public var text: String
    /// Nanoseconds; nil when the text is not a duration (validation reports it).
    public var nanoseconds: Int64?

    public init(_ text: String) {
        self.text = text
        self.nanoseconds = Duration.parse(text)
    }

    public var description: String { text }

    /// Whole milliseconds (rounded down), nil when unparsable.
    public var milliseconds: Int64? { nanoseconds.map { $0 / 1_000_000 } }

    /// Go `time.ParseDuration` syntax, which is what the CRD accepts: an optional sign and one
    /// or more decimal numbers each with a unit (ns, us, µs, ms, s, m, h).
    static func parse(_ text: String) -> Int64? {
        var s = Substring(text)
        var negative = false
        if s.first == "-" || s.first == "+" {
            negative = s.first == "-"
            s = s.dropFirst()
        }
        if s == "0" { return 0 }
        guard !s.isEmpty else { return nil }
        var total: Double = 0
        while !s.isEmpty {
            let number = s.prefix { $0.isNumber || $0 == "." }
            guard !number.isEmpty, let value = Double(number) else { return nil }
            s = s.dropFirst(number.count)
            let unit = s.prefix { !($0.isNumber || $0 == ".") }
            s = s.dropFirst(unit.count)
            let scale: Double
            switch unit {
            case "ns": scale = 1
            case "us", "µs", "μs": scale = 1e3
            case "ms": scale = 1e6
            case "s": scale = 1e9
            case "m": scale = 60e9
            case "h": scale = 3600e9
            default: return nil
            }
            total += value * scale
        }
        guard total < 9.2e18 else { return nil }
        let ns = Int64(total.rounded())
        return negative ? -ns : ns
    }
}

/// `StringMatch`: at most one of exact, prefix, regex (the CRD enforces the oneof).
public enum StringMatch: Sendable, Equatable {
    case exact(String)
    case prefix(String)
    case regex(String)
    /// `{}`: no condition on the value (a presence check for headers and query parameters).
    case any
}

/// `PortSelector`.
public struct PortSelector: Sendable, Equatable {
    public var number: UInt32
    public init(number: UInt32) { self.number = number }
}

/// `Destination`: a service host (short name, FQDN), a subset and a port.
public struct Destination: Sendable, Equatable {
    public var host: String
    public var subset: String?
    public var port: PortSelector?
    public init(host: String, subset: String? = nil, port: PortSelector? = nil) {
        self.host = host
        self.subset = subset
        self.port = port
    }
}

/// `Percent` (a double in 0...100).
public struct Percent: Sendable, Equatable {
    public var value: Double
}

extension YValue {
    func duration() -> Duration? {
        guard let s = string() else { return nil }
        return Duration(s)
    }

    func stringMatch() -> StringMatch? {
        guard let o = object(["exact", "prefix", "regex"]) else { return nil }
        let present = ["exact", "prefix", "regex"].filter { o.has($0) }
        if present.count > 1 {
            error("only one of exact, prefix or regex may be set (found \(present.joined(separator: ", ")))")
        }
        if o.has("exact") { return .exact(o["exact"]?.string() ?? "") }
        if o.has("prefix") { return .prefix(o["prefix"]?.string() ?? "") }
        if o.has("regex") { return .regex(o["regex"]?.string() ?? "") }
        return .any
    }

    func portSelector() -> PortSelector? {
        guard let o = object(["number"]) else { return nil }
        return PortSelector(number: o.uint32("number") ?? 0)
    }

    func destination() -> Destination? {
        guard let o = object(["host", "subset", "port"]) else { return nil }
        return Destination(host: o.string("host") ?? "", subset: o.string("subset"),
                           port: o["port"]?.portSelector())
    }

    func percent() -> Percent? {
        guard let o = object(["value"]) else { return nil }
        return Percent(value: o.double("value") ?? 0)
    }
}

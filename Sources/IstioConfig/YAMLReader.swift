// Strict reading of composed YAML (Yams `Node`) into typed models. Every value keeps the line
// it came from, unknown and duplicate keys are reported (they are typos, DESIGN.md §4), and
// a value of the wrong type is reported instead of being coerced silently.
import Yams

/// Collects diagnostics and the line of every field path while one resource is decoded.
/// One per resource; not shared between threads.
final class DecodeContext {
    let file: String
    var kind = ""
    var namespace = ""
    var name = ""
    var diagnostics: [Diagnostic] = []
    /// Field path → 1-based line, for diagnostics emitted later by validation.
    var lines: [String: Int] = [:]

    init(file: String) {
        self.file = file
    }

    func report(_ severity: Severity, _ path: String, line: Int, _ message: String) {
        diagnostics.append(Diagnostic(severity: severity, file: file, line: line, kind: kind,
                                      namespace: namespace, name: name, path: path, message: message))
    }
}

/// One YAML value at a field path.
struct YValue {
    let node: Node
    let path: String
    let ctx: DecodeContext

    init(node: Node, path: String, ctx: DecodeContext) {
        self.node = node
        self.path = path
        self.ctx = ctx
        if ctx.lines[path] == nil {
            ctx.lines[path] = node.mark?.line ?? 0
        }
    }

    var line: Int { node.mark?.line ?? 0 }

    /// `key:`, `key: ~`, `key: null` (plain scalars only; a quoted "null" is a string).
    var isNull: Bool {
        guard case .scalar(let s) = node, s.style == .plain || s.style == .any else { return false }
        return ["", "~", "null", "Null", "NULL"].contains(s.string)
    }

    func error(_ message: String) {
        ctx.report(.error, path, line: line, message)
    }

    private func typeName(_ node: Node) -> String {
        switch node {
        case .scalar(let s):
            if s.style == .plain || s.style == .any {
                if Int(s.string) != nil { return "integer \(s.string)" }
                if ["true", "false"].contains(s.string) { return "boolean \(s.string)" }
            }
            return "string \"\(s.string)\""
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        }
    }

    /// A scalar as text (numbers and booleans are accepted as their text, as Kubernetes
    /// label values often are written unquoted).
    func string() -> String? {
        guard case .scalar(let s) = node else {
            error("expected a string, got \(typeName(node))")
            return nil
        }
        return s.string
    }

    func int() -> Int? {
        if case .scalar(let s) = node, s.style == .plain || s.style == .any, let v = Int(s.string) {
            return v
        }
        error("expected an integer, got \(typeName(node))")
        return nil
    }

    func uint32() -> UInt32? {
        guard let v = int() else { return nil }
        guard v >= 0, v <= Int(UInt32.max) else {
            error("\(v) is out of range 0..\(UInt32.max)")
            return nil
        }
        return UInt32(v)
    }

    /// An int32 that may be negative (weights, attempts): validation says what is allowed.
    func int32() -> Int32? {
        guard let v = int() else { return nil }
        guard v >= Int(Int32.min), v <= Int(Int32.max) else {
            error("\(v) is out of range for a 32-bit integer")
            return nil
        }
        return Int32(v)
    }

    func double() -> Double? {
        if case .scalar(let s) = node, s.style == .plain || s.style == .any, let v = Double(s.string) {
            return v
        }
        error("expected a number, got \(typeName(node))")
        return nil
    }

    func bool() -> Bool? {
        if case .scalar(let s) = node, s.style == .plain || s.style == .any {
            switch s.string {
            case "true", "True", "TRUE": return true
            case "false", "False", "FALSE": return false
            default: break
            }
        }
        error("expected true or false, got \(typeName(node))")
        return nil
    }

    /// A mapping whose keys must all be in `fields`. Unknown keys and duplicate keys are
    /// errors; the values of known keys are returned (the first of duplicates).
    func object(_ fields: [String]) -> YObject? {
        guard case .mapping(let m) = node else {
            error("expected a mapping, got \(typeName(node))")
            return nil
        }
        var entries: [String: YValue] = [:]
        var order: [String] = []
        for (k, v) in m {
            guard case .scalar(let ks) = k else {
                ctx.report(.error, path, line: k.mark?.line ?? line, "mapping keys must be strings")
                continue
            }
            let key = ks.string
            let childPath = path.isEmpty ? key : "\(path).\(key)"
            let keyLine = k.mark?.line ?? line
            if let first = entries[key] {
                ctx.report(.error, childPath, line: keyLine,
                           "duplicate key \"\(key)\" (first at line \(first.ctx.lines[childPath] ?? first.line))")
                continue
            }
            guard fields.contains(key) else {
                var message = "unknown field \"\(key)\""
                if let guess = closestField(key, fields) {
                    message += " (did you mean \"\(guess)\"?)"
                }
                ctx.report(.error, childPath, line: keyLine, message)
                continue
            }
            ctx.lines[childPath] = keyLine
            entries[key] = YValue(node: v, path: childPath, ctx: ctx)
            order.append(key)
        }
        return YObject(value: self, entries: entries, order: order)
    }

    /// Elements of a sequence; a null value is an empty list.
    func list() -> [YValue] {
        if isNull { return [] }
        guard case .sequence(let s) = node else {
            error("expected a list, got \(typeName(node))")
            return []
        }
        return s.enumerated().map { YValue(node: $1, path: "\(path)[\($0)]", ctx: ctx) }
    }

    func strings() -> [String] {
        list().compactMap { $0.string() }
    }

    /// A mapping with free-form keys (labels, header matches), in document order.
    /// Duplicate keys are errors.
    func entries() -> [(key: String, value: YValue)] {
        if isNull { return [] }
        guard case .mapping(let m) = node else {
            error("expected a mapping, got \(typeName(node))")
            return []
        }
        var seen: [String: Int] = [:]
        var out: [(key: String, value: YValue)] = []
        for (k, v) in m {
            guard case .scalar(let ks) = k else {
                ctx.report(.error, path, line: k.mark?.line ?? line, "mapping keys must be strings")
                continue
            }
            let childPath = "\(path).\(ks.string)"
            let keyLine = k.mark?.line ?? line
            if let first = seen[ks.string] {
                ctx.report(.error, childPath, line: keyLine, "duplicate key \"\(ks.string)\" (first at line \(first))")
                continue
            }
            seen[ks.string] = keyLine
            ctx.lines[childPath] = keyLine
            out.append((ks.string, YValue(node: v, path: childPath, ctx: ctx)))
        }
        return out
    }

    /// A `map<string,string>`.
    func stringMap() -> [String: String] {
        var out: [String: String] = [:]
        for (k, v) in entries() {
            if let s = v.string() { out[k] = s }
        }
        return out
    }
}

/// The known fields of one mapping. Absent and null fields read as nil.
struct YObject {
    let value: YValue
    let entries: [String: YValue]
    let order: [String]

    subscript(_ key: String) -> YValue? {
        guard let v = entries[key], !v.isNull else { return nil }
        return v
    }

    /// True when the key is written, even with a null value.
    func has(_ key: String) -> Bool { entries[key] != nil }

    func string(_ key: String) -> String? { self[key]?.string() }
    func int(_ key: String) -> Int? { self[key]?.int() }
    func uint32(_ key: String) -> UInt32? { self[key]?.uint32() }
    func int32(_ key: String) -> Int32? { self[key]?.int32() }
    func double(_ key: String) -> Double? { self[key]?.double() }
    func bool(_ key: String) -> Bool? { self[key]?.bool() }
    func strings(_ key: String) -> [String] { self[key]?.strings() ?? [] }
    func stringMap(_ key: String) -> [String: String] { self[key]?.stringMap() ?? [:] }
    func list(_ key: String) -> [YValue] { self[key]?.list() ?? [] }
    func line(_ key: String) -> Int { entries[key]?.line ?? value.line }
}

/// The allowed field closest to a misspelt one (edit distance ≤ 2), for "did you mean".
func closestField(_ key: String, _ fields: [String]) -> String? {
    var best: (String, Int)?
    let a = Array(key.lowercased())
    for f in fields {
        let b = Array(f.lowercased())
        var prev = Array(0...b.count)
        for i in 1...max(a.count, 1) where !a.isEmpty {
            var cur = [i] + Array(repeating: 0, count: b.count)
            for j in 1...max(b.count, 1) where !b.isEmpty {
                cur[j] = Swift.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            prev = cur
        }
        let d = prev[b.count]
        if d <= 2, best == nil || d < best!.1 {
            best = (f, d)
        }
    }
    return best?.0
}

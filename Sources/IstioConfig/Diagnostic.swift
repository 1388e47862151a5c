// Diagnostics for people: `FILE:LINE: KIND NAMESPACE/NAME: field.path: message`, the form
// `ingressd check` prints (DESIGN.md §4, a contract) and the one `istioctl validate` users know.

/// How bad a finding is. Errors make a configuration invalid (check exits 1, a reload is
/// rejected); warnings and notes never do.
public enum Severity: String, Sendable, Equatable, Comparable {
    case error
    case warning
    case note

    public static func < (lhs: Severity, rhs: Severity) -> Bool {
        lhs.rank < rhs.rank
    }

    private var rank: Int {
        switch self {
        case .error: return 0
        case .warning: return 1
        case .note: return 2
        }
    }
}

/// One finding about one place in one file.
public struct Diagnostic: Sendable, Equatable, CustomStringConvertible {
    public var severity: Severity
    /// The file as given on the command line (or the directory entry), "" when not from a file.
    public var file: String
    /// 1-based line; 0 when unknown.
    public var line: Int
    /// "Gateway", "VirtualService", …; "" for problems that are not about one resource
    /// (a YAML syntax error, an unreadable file).
    public var kind: String
    public var namespace: String
    public var name: String
    /// Field path like `spec.http[0].match[1].uri.prefix`; "" for the resource as a whole.
    public var path: String
    public var message: String
    /// istioctl analyze code (`IST0101`, …) when the finding is one of those.
    public var code: String?

    public init(severity: Severity, file: String, line: Int, kind: String = "", namespace: String = "",
                name: String = "", path: String = "", message: String, code: String? = nil) {
        self.severity = severity
        self.file = file
        self.line = line
        self.kind = kind
        self.namespace = namespace
        self.name = name
        self.path = path
        self.message = message
        self.code = code
    }

    /// The contract form, without the severity:
    /// `FILE:LINE: KIND NAMESPACE/NAME: field.path: message`. Parts that do not apply are left
    /// out with their separator (a YAML syntax error is `FILE:LINE: message`).
    public var description: String {
        var out = file.isEmpty ? "<input>" : file
        out += ":\(line): "
        if !kind.isEmpty {
            out += "\(kind) \(namespace)/\(name): "
        }
        if !path.isEmpty {
            out += "\(path): "
        }
        out += message
        return out
    }

    /// The contract form with the severity after the location, for warnings and notes that
    /// are printed next to errors: `FILE:LINE: warning: KIND NS/NAME: path: message`.
    public var descriptionWithSeverity: String {
        let location = "\(file.isEmpty ? "<input>" : file):\(line): "
        let rest = String(description.dropFirst(location.count))
        return location + severity.rawValue + ": " + rest
    }
}

extension Array where Element == Diagnostic {
    /// True when at least one diagnostic is an error.
    public var hasErrors: Bool { contains { $0.severity == .error } }
    public var errors: [Diagnostic] { filter { $0.severity == .error } }
    public var warnings: [Diagnostic] { filter { $0.severity == .warning } }
}

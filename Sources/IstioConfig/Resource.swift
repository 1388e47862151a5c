// A loaded Istio resource: its identity, where it came from, and its typed spec.

public enum ResourceKind: String, Sendable, Equatable, CaseIterable, Comparable {
    case gateway = "Gateway"
    case virtualService = "VirtualService"
    case destinationRule = "DestinationRule"
    case serviceEntry = "ServiceEntry"

    public static func < (a: ResourceKind, b: ResourceKind) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }
}

public struct ResourceMeta: Sendable, Equatable {
    public var kind: ResourceKind
    public var apiVersion: String
    public var name: String
    /// `metadata.namespace`, or the default namespace when it is empty.
    public var namespace: String
    public var labels: [String: String]
    public var annotations: [String: String]
    /// `metadata.creationTimestamp` as written (RFC 3339), if any. Orders merged
    /// VirtualServices (istio-semantics.md §1.2).
    public var creationTimestamp: String?
    public var file: String
    /// Line of the document's first key.
    public var line: Int
    /// Position among every resource of the load (files in order, documents in order).
    public var order: Int
    /// Field path → line, for diagnostics about fields.
    public var fieldLines: [String: Int]

    /// The line of `path`, or of its closest written ancestor (`spec.http[0].route` when
    /// `spec.http[0].route[0].weight` was not written).
    public func line(for path: String) -> Int {
        var p = Substring(path)
        while !p.isEmpty {
            if let l = fieldLines[String(p)] { return l }
            guard let cut = p.lastIndex(where: { $0 == "." || $0 == "[" }) else { break }
            p = p[..<cut]
        }
        return line
    }

    /// A diagnostic about this resource at a field path.
    public func diagnostic(_ severity: Severity, _ path: String, _ message: String, code: String? = nil) -> Diagnostic {
        Diagnostic(severity: severity, file: file, line: line(for: path), kind: kind.rawValue, namespace: namespace,
                   name: name, path: path, message: message, code: code)
    }

    /// `namespace/name`.
    public var qualifiedName: String { "\(namespace)/\(name)" }
}

public enum ResourceSpec: Sendable, Equatable {
    case gateway(Gateway)
    case virtualService(VirtualService)
    case destinationRule(DestinationRule)
    case serviceEntry(ServiceEntry)
}

public struct Resource: Sendable, Equatable {
    public var meta: ResourceMeta
    public var spec: ResourceSpec

    public init(meta: ResourceMeta, spec: ResourceSpec) {
        self.meta = meta
        self.spec = spec
    }

    public var gateway: Gateway? {
        if case .gateway(let g) = spec { return g }
        return nil
    }

    public var virtualService: VirtualService? {
        if case .virtualService(let v) = spec { return v }
        return nil
    }

    public var destinationRule: DestinationRule? {
        if case .destinationRule(let d) = spec { return d }
        return nil
    }

    public var serviceEntry: ServiceEntry? {
        if case .serviceEntry(let s) = spec { return s }
        return nil
    }
}

/// What `load` found.
public struct LoadResult: Sendable, Equatable {
    /// Every resource of the four kinds that decoded, in load order. Resources with
    /// validation errors are included (the diagnostics say what is wrong).
    public var resources: [Resource]
    public var diagnostics: [Diagnostic]
    /// The YAML files read, in order.
    public var files: [String]
    /// Documents of other kinds that were skipped.
    public var skipped: Int

    public init(resources: [Resource] = [], diagnostics: [Diagnostic] = [], files: [String] = [], skipped: Int = 0) {
        self.resources = resources
        self.diagnostics = diagnostics
        self.files = files
        self.skipped = skipped
    }

    public var hasErrors: Bool { diagnostics.hasErrors }

    /// Resources of one kind.
    public func count(_ kind: ResourceKind) -> Int { resources.filter { $0.meta.kind == kind }.count }
}

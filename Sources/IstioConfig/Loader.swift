// Reading configuration files: files and directories, multi-document YAML, the four Istio
// kinds in networking.istio.io/v1alpha3|v1beta1|v1 (DESIGN.md §4). Other kinds are skipped
// with a note. Every decoded resource is validated on its own (Validation/); cross-resource
// findings come from `analyze`.
import Foundation
import Yams

/// API versions that share one schema (istio-semantics.md §0).
public let supportedAPIVersions = ["networking.istio.io/v1alpha3", "networking.istio.io/v1beta1",
                                   "networking.istio.io/v1"]

/// Loads every YAML file named by `paths` (files, or directories whose `*.yaml`/`*.yml`
/// entries are read in name order), decodes the four kinds strictly and validates each
/// resource. Never throws: unreadable files and YAML errors are diagnostics.
public func load(paths: [String], defaultNamespace: String) -> LoadResult {
    ConfigLoader(defaultNamespace: defaultNamespace).load(paths: paths)
}

public struct ConfigLoader: Sendable {
    public var defaultNamespace: String

    public init(defaultNamespace: String = "default") {
        self.defaultNamespace = defaultNamespace
    }

    public func load(paths: [String]) -> LoadResult {
        var result = LoadResult()
        var totalBytes = 0
        for path in paths {
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
                result.diagnostics.append(Diagnostic(severity: .error, file: path, line: 0,
                                                     message: "no such file or directory"))
                continue
            }
            if isDir.boolValue {
                let names: [String]
                do {
                    names = try FileManager.default.contentsOfDirectory(atPath: path)
                } catch {
                    result.diagnostics.append(Diagnostic(severity: .error, file: path, line: 0,
                                                         message: "cannot read directory: \(error.localizedDescription)"))
                    continue
                }
                let yamls = names.filter { $0.hasSuffix(".yaml") || $0.hasSuffix(".yml") }.sorted()
                if yamls.isEmpty {
                    result.diagnostics.append(Diagnostic(severity: .warning, file: path, line: 0,
                                                         message: "directory has no *.yaml or *.yml files"))
                }
                for name in yamls {
                    let file = path.hasSuffix("/") ? path + name : path + "/" + name
                    loadFile(file, totalBytes: &totalBytes, into: &result)
                }
            } else {
                loadFile(path, totalBytes: &totalBytes, into: &result)
            }
        }
        return result
    }

    /// Reads at most `InputLimits.maxFileBytes` + 1 bytes, so an oversized file (or a device)
    /// is refused without being read whole.
    func loadFile(_ file: String, totalBytes: inout Int, into result: inout LoadResult) {
        guard let handle = FileHandle(forReadingAtPath: file) else {
            result.diagnostics.append(Diagnostic(severity: .error, file: file, line: 0, message: "cannot read file"))
            return
        }
        defer { try? handle.close() }
        let data: Data
        do {
            data = try handle.read(upToCount: InputLimits.maxFileBytes + 1) ?? Data()
        } catch {
            result.diagnostics.append(Diagnostic(severity: .error, file: file, line: 0,
                                                 message: "cannot read file: \(error.localizedDescription)"))
            return
        }
        guard data.count <= InputLimits.maxFileBytes else {
            result.diagnostics.append(Diagnostic(severity: .error, file: file, line: 0,
                message: "file is larger than \(InputLimits.maxFileBytes) bytes; at most \(InputLimits.maxFileBytes >> 20) MiB per file"))
            return
        }
        totalBytes += data.count
        guard totalBytes <= InputLimits.maxTotalBytes else {
            result.diagnostics.append(Diagnostic(severity: .error, file: file, line: 0,
                message: "the configuration files add up to more than \(InputLimits.maxTotalBytes) bytes; at most \(InputLimits.maxTotalBytes >> 20) MiB in all"))
            return
        }
        guard let text = String(data: data, encoding: .utf8) else {
            result.diagnostics.append(Diagnostic(severity: .error, file: file, line: 0, message: "file is not UTF-8"))
            return
        }
        result.files.append(file)
        load(yaml: text, file: file, into: &result)
    }

    /// Loads the documents of one YAML text as if read from `file`.
    public func load(yaml: String, file: String) -> LoadResult {
        var result = LoadResult()
        result.files.append(file)
        load(yaml: yaml, file: file, into: &result)
        return result
    }

    func load(yaml: String, file: String, into result: inout LoadResult) {
        if yaml.utf8.count > InputLimits.maxFileBytes {
            result.diagnostics.append(Diagnostic(severity: .error, file: file, line: 0,
                message: "file is larger than \(InputLimits.maxFileBytes) bytes; at most \(InputLimits.maxFileBytes >> 20) MiB per file"))
            return
        }
        // Before Yams: its composer recurses once per nesting level (InputLimits.swift).
        if let finding = prescanYAML(yaml) {
            result.diagnostics.append(Diagnostic(severity: .error, file: file, line: finding.line, message: finding.message))
            return
        }
        var documents: YamlSequence<Node>
        do {
            documents = try compose_all(yaml: yaml)
        } catch {
            result.diagnostics.append(yamlError(error, file: file))
            return
        }
        var nodeBudget = InputLimits.maxNodes
        while let node = documents.next() {
            // Before anything walks the document: aliases expand on every walk.
            switch expandedSize(node, nodeBudget: nodeBudget) {
            case .nodes(let count):
                nodeBudget -= count
            case .tooManyNodes:
                result.diagnostics.append(Diagnostic(severity: .error, file: file, line: node.mark?.line ?? 0,
                    message: "YAML expands to more than \(InputLimits.maxNodes) nodes (aliases included); at most \(InputLimits.maxNodes) per file"))
                return
            case .tooDeep:
                result.diagnostics.append(Diagnostic(severity: .error, file: file, line: node.mark?.line ?? 0,
                    message: "YAML nests deeper than \(InputLimits.maxDepth) levels once aliases are expanded; at most \(InputLimits.maxDepth) nested lists and mappings are allowed"))
                return
            }
            loadDocument(node, file: file, into: &result)
        }
        if let error = documents.error {
            result.diagnostics.append(yamlError(error, file: file))
        }
    }

    private func yamlError(_ error: Error, file: String) -> Diagnostic {
        var line = 0
        var message = "invalid YAML: \(error)"
        if let y = error as? YamlError {
            switch y {
            case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _),
                 .composer(let context, let problem, let mark, _):
                line = mark.line
                message = "invalid YAML: \(problem)" + (context.map { " \($0.text)" } ?? "")
            default:
                break
            }
        }
        return Diagnostic(severity: .error, file: file, line: line, message: message)
    }

    private func loadDocument(_ node: Node, file: String, into result: inout LoadResult) {
        let docLine = node.mark?.line ?? 0
        switch node {
        case .scalar(let s) where s.string.isEmpty || s.string == "~" || s.string == "null":
            return // an empty document (a trailing `---`, comments only)
        case .mapping(let m):
            // The first of duplicate keys counts, as in the strict decoding (the rest are errors).
            func first(_ key: String) -> Node? { m.first { $0.key.string == key }?.value }
            let kind = first("kind")?.string ?? ""
            let apiVersion = first("apiVersion")?.string ?? ""
            if kind == "List" || kind.hasSuffix("List"), case .sequence(let items)? = first("items") {
                for item in items { loadDocument(item, file: file, into: &result) }
                return
            }
            let ctx = DecodeContext(file: file)
            ctx.kind = kind
            let metaNode = first("metadata")
            ctx.name = metaNode?["name"]?.string ?? ""
            let ns = metaNode?["namespace"]?.string ?? ""
            ctx.namespace = ns.isEmpty ? defaultNamespace : ns
            guard let resourceKind = ResourceKind(rawValue: kind), apiVersion.hasPrefix("networking.istio.io/") else {
                if kind.isEmpty {
                    ctx.report(.error, "kind", line: docLine, "document has no kind")
                } else {
                    ctx.report(.note, "", line: docLine,
                               "skipped: \(kind) (\(apiVersion.isEmpty ? "no apiVersion" : apiVersion)) is not a kind ingressd serves")
                    result.skipped += 1
                }
                result.diagnostics += ctx.diagnostics
                return
            }
            guard supportedAPIVersions.contains(apiVersion) else {
                ctx.report(.error, "apiVersion", line: first("apiVersion")?.mark?.line ?? docLine,
                           "unsupported apiVersion \"\(apiVersion)\" (use networking.istio.io/v1, v1beta1 or v1alpha3)")
                result.diagnostics += ctx.diagnostics
                return
            }
            if let resource = decode(node, kind: resourceKind, apiVersion: apiVersion, ctx: ctx,
                                     order: result.resources.count) {
                result.diagnostics += ctx.diagnostics
                result.diagnostics += validate(resource)
                if let i = result.resources.firstIndex(where: {
                    $0.meta.kind == resource.meta.kind && $0.meta.namespace == resource.meta.namespace
                        && $0.meta.name == resource.meta.name
                }) {
                    // Like `kubectl apply` of both: the later definition replaces the earlier one,
                    // which keeps its place in the merge order (its creation time).
                    let previous = result.resources[i].meta
                    result.diagnostics.append(resource.meta.diagnostic(.warning, "metadata.name",
                        "replaces \(kind) \(resource.meta.qualifiedName) defined at \(previous.file):\(previous.line) (the later definition wins, as with kubectl apply)"))
                    var replacement = resource
                    replacement.meta.order = previous.order
                    result.resources[i] = replacement
                } else {
                    result.resources.append(resource)
                }
            } else {
                result.diagnostics += ctx.diagnostics
            }
        default:
            result.diagnostics.append(Diagnostic(severity: .error, file: file, line: docLine,
                                                 message: "a document must be a mapping with apiVersion, kind, metadata and spec"))
        }
    }

    private func decode(_ node: Node, kind: ResourceKind, apiVersion: String, ctx: DecodeContext,
                        order: Int) -> Resource? {
        let root = YValue(node: node, path: "", ctx: ctx)
        guard let top = root.object(["apiVersion", "kind", "metadata", "spec", "status"]) else { return nil }
        var name = ""
        var namespace = defaultNamespace
        var labels: [String: String] = [:]
        var annotations: [String: String] = [:]
        var created: String?
        if let mv = top["metadata"], let meta = mv.object([
            "name", "namespace", "labels", "annotations", "creationTimestamp", "generateName", "uid",
            "resourceVersion", "generation", "finalizers", "ownerReferences", "managedFields",
            "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink",
        ]) {
            name = meta.string("name") ?? ""
            if let ns = meta.string("namespace"), !ns.isEmpty { namespace = ns }
            labels = meta.stringMap("labels")
            annotations = meta.stringMap("annotations")
            created = meta.string("creationTimestamp")
            if name.isEmpty {
                mv.error("resource name may not be empty")
            }
        } else if top["metadata"] == nil {
            ctx.report(.error, "metadata", line: root.line, "metadata.name is required")
        }
        let spec: ResourceSpec
        let specObject: YObject?
        switch kind {
        case .gateway:
            specObject = (top["spec"] ?? YValue(node: Node.mapping(.init([])), path: "spec", ctx: ctx))
                .object(["selector", "servers"])
            spec = .gateway(specObject.map(Gateway.init) ?? Gateway(selector: [:], servers: []))
        case .virtualService:
            specObject = (top["spec"] ?? YValue(node: Node.mapping(.init([])), path: "spec", ctx: ctx))
                .object(["hosts", "gateways", "http", "tls", "tcp", "exportTo"])
            spec = .virtualService(specObject.map(VirtualService.init)
                ?? VirtualService(hosts: [], gateways: [], http: [], tls: [], tcp: [], exportTo: []))
        case .destinationRule:
            specObject = (top["spec"] ?? YValue(node: Node.mapping(.init([])), path: "spec", ctx: ctx))
                .object(["host", "trafficPolicy", "subsets", "exportTo", "workloadSelector"])
            spec = .destinationRule(specObject.map(DestinationRule.init)
                ?? DestinationRule(host: "", trafficPolicy: nil, subsets: [], exportTo: [], workloadSelector: nil))
        case .serviceEntry:
            specObject = (top["spec"] ?? YValue(node: Node.mapping(.init([])), path: "spec", ctx: ctx))
                .object(["hosts", "addresses", "ports", "location", "resolution", "endpoints", "workloadSelector",
                         "exportTo", "subjectAltNames"])
            spec = .serviceEntry(specObject.map(ServiceEntry.init)
                ?? ServiceEntry(hosts: [], addresses: [], ports: [], location: nil, resolution: nil, endpoints: [],
                                workloadSelector: nil, exportTo: [], subjectAltNames: []))
        }
        if specObject == nil { return nil }
        if top["spec"] == nil {
            ctx.report(.error, "spec", line: root.line, "spec is required")
        }
        let meta = ResourceMeta(kind: kind, apiVersion: apiVersion, name: name, namespace: namespace, labels: labels,
                                annotations: annotations, creationTimestamp: created, file: ctx.file, line: root.line,
                                order: order, fieldLines: ctx.lines)
        return Resource(meta: meta, spec: spec)
    }
}

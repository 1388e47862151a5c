import Foundation
import RouteTable

// The one seam between the supervisor/CLI and the configuration engineers' code:
// "paths + namespace → image bytes + listener ports + diagnostics + config_dump JSON".
//
// Everything marked `// WIRING:` is a stand-in until IstioConfig (loader with FILE:LINE
// diagnostics), ConfigCompiler (→ TableSpec) and RouteTable's `TableImage.build` are merged.
// Replace the bodies of `load`, `check` and `routes`; the supervisor and the CLI depend only on
// the signatures and the types below.

/// A configuration that loaded, validated and compiled.
public struct LoadedConfig {
    /// The compiled table (for `routes`, `/config_dump`, health probes later).
    public var spec: TableSpec
    /// The position-independent image to publish in shared memory.
    public var image: [UInt8]
    /// Gateway ports to listen on: sorted, unique, non-zero.
    public var listenerPorts: [UInt16]
    /// Non-fatal remarks for people (e.g. "FILE:LINE: skipped Deployment default/web"). The
    /// supervisor logs them at info level on every load.
    public var notes: [String]
    /// The `/config_dump` JSON body for this configuration once published as `generation`.
    public var configDump: (_ generation: UInt64) -> String

    public init(spec: TableSpec, image: [UInt8], listenerPorts: [UInt16], notes: [String],
                configDump: @escaping (_ generation: UInt64) -> String) {
        self.spec = spec
        self.image = image
        self.listenerPorts = listenerPorts
        self.notes = notes
        self.configDump = configDump
    }
}

public enum ConfigLoadOutcome {
    case valid(LoadedConfig)
    /// One line per problem: `FILE:LINE: KIND NAMESPACE/NAME: FIELD.PATH: message`.
    case invalid(diagnostics: [String])
}

/// The answer of a CLI command: lines for stdout and the process exit code (DESIGN.md §4).
public struct CommandReport: Sendable {
    public var lines: [String]
    public var exitCode: Int32
    public init(lines: [String], exitCode: Int32) {
        self.lines = lines
        self.exitCode = exitCode
    }
}

/// `ingressd routes --request 'METHOD URL' -H 'name: value'`.
public struct RouteQuery: Sendable {
    public var method: String
    /// As given: absolute (`http://host:port/path?q`) or origin-form (`/path`, Host from `-H`).
    public var url: String
    /// In command-line order; names as given.
    public var headers: [(name: String, value: String)]
    public init(method: String, url: String, headers: [(name: String, value: String)]) {
        self.method = method
        self.url = url
        self.headers = headers
    }
}

public enum ConfigPipeline {
    /// Loads every path (a YAML file, or a directory: its `*.yaml`/`*.yml` sorted by name),
    /// validates, compiles and builds the image. Never throws: every problem is a diagnostic.
    /// Called at start-up and on every reload; must not touch process state (no chdir, no env).
    public static func load(paths: [String], namespace: String) -> ConfigLoadOutcome {
        // WIRING: replace with IstioConfig load → ConfigCompiler compile → TableImage.build, and
        // configDump with the renderer. The stand-in below reads the files only to find
        // Gateway `number: PORT` lines and `ingressd-fake-error` markers, so that the
        // supervisor's reload and port-rolling logic can be exercised before the real loader.
        var diagnostics: [String] = []
        var ports = Set<UInt16>()
        for file in expand(paths: paths, diagnostics: &diagnostics) {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                diagnostics.append("\(file):0: cannot read the file")
                continue
            }
            for (i, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                let t = line.trimmingCharacters(in: .whitespaces)
                if t.contains("ingressd-fake-error") {
                    diagnostics.append("\(file):\(i + 1): Gateway \(namespace)/fake: spec: fake error marker")
                }
                if t.hasPrefix("number:"), let p = UInt16(t.dropFirst(7).trimmingCharacters(in: .whitespaces)), p != 0 {
                    ports.insert(p)
                }
            }
        }
        if !diagnostics.isEmpty { return .invalid(diagnostics: diagnostics) }
        if ports.isEmpty { ports = [8080] }
        let sorted = ports.sorted()
        let spec = TableSpec(
            listeners: sorted.map { ListenerSpec(port: $0, virtualHosts: [
                VirtualHostSpec(name: "*:\($0)", domains: ["*"], routes: [
                    RouteSpec(name: "\(namespace)/fake/0", matches: [],
                              action: .directResponse(status: 200, body: Array("fake\n".utf8))),
                ]),
            ]) },
            clusters: [])
        // WIRING: fake image; workers must reject it (no TableImage magic).
        let image = Array("INGRESSD-FAKE-IMAGE ports=\(sorted)".utf8)
        return .valid(LoadedConfig(spec: spec, image: image, listenerPorts: sorted, notes: [],
                                   configDump: { generation in fakeConfigDump(spec, generation: generation) }))
    }

    /// `ingressd check`: exit 0 with a one-line summary, or exit 1 with one line per problem.
    public static func check(paths: [String], namespace: String) -> CommandReport {
        // WIRING: the summary should come from the compiler (counts of gateways, virtual
        // services, routes, clusters).
        switch load(paths: paths, namespace: namespace) {
        case .invalid(let diagnostics):
            return CommandReport(lines: diagnostics, exitCode: 1)
        case .valid(let config):
            let routes = config.spec.listeners.reduce(0) { $0 + $1.virtualHosts.reduce(0) { $0 + $1.routes.count } }
            return CommandReport(lines: config.notes + [
                "configuration valid: \(config.listenerPorts.count) listener(s) \(config.listenerPorts.map(String.init).joined(separator: ",")), \(routes) route(s), \(config.spec.clusters.count) cluster(s)",
            ], exitCode: 0)
        }
    }

    /// `ingressd routes`: the compiled table, or with `query` which route and cluster that
    /// request takes (or why none). Exit 1 when the configuration is invalid.
    public static func routes(paths: [String], namespace: String, query: RouteQuery?) -> CommandReport {
        switch load(paths: paths, namespace: namespace) {
        case .invalid(let diagnostics):
            return CommandReport(lines: diagnostics, exitCode: 1)
        case .valid(let config):
            // WIRING: replace with the renderer and, for `query`, the real matcher.
            var lines: [String] = []
            for l in config.spec.listeners {
                lines.append("listener :\(l.port) \(l.proto)")
                for vh in l.virtualHosts {
                    lines.append("  virtual host \(vh.name) domains=\(vh.domains.joined(separator: ","))")
                    for r in vh.routes { lines.append("    route \(r.name)") }
                }
            }
            for c in config.spec.clusters { lines.append("cluster \(c.name) endpoints=\(c.endpoints.count)") }
            if let q = query {
                lines.append("request \(q.method) \(q.url): matching is not wired yet")
            }
            return CommandReport(lines: lines, exitCode: 0)
        }
    }

    // WIRING: the real loader owns file expansion; this mirrors DESIGN.md §4.
    static func expand(paths: [String], diagnostics: inout [String]) -> [String] {
        var files: [String] = []
        let fm = FileManager.default
        for path in paths {
            var isDir: ObjCBool = false
            guard fm.fileExists(atPath: path, isDirectory: &isDir) else {
                diagnostics.append("\(path):0: no such file or directory")
                continue
            }
            if isDir.boolValue {
                let names = ((try? fm.contentsOfDirectory(atPath: path)) ?? [])
                    .filter { $0.hasSuffix(".yaml") || $0.hasSuffix(".yml") }.sorted()
                files += names.map { path + "/" + $0 }
            } else {
                files.append(path)
            }
        }
        return files
    }

    static func fakeConfigDump(_ spec: TableSpec, generation: UInt64) -> String {
        JSONText.object([
            ("generation", String(generation)),
            ("listeners", JSONText.array(spec.listeners.map { l in
                JSONText.object([
                    ("port", String(l.port)),
                    ("virtualHosts", JSONText.array(l.virtualHosts.map { vh in
                        JSONText.object([
                            ("name", JSONText.string(vh.name)),
                            ("domains", JSONText.array(vh.domains.map(JSONText.string))),
                            ("routes", JSONText.array(vh.routes.map { JSONText.string($0.name) })),
                        ])
                    })),
                ])
            })),
            ("clusters", JSONText.array(spec.clusters.map { JSONText.string($0.name) })),
        ])
    }
}

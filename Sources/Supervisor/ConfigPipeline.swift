import ConfigCompiler
import Foundation
import HTTP1
import IstioConfig
import RouteTable

// The one seam between the supervisor/CLI and the configuration engineers' code:
// "paths + namespace → image bytes + listener ports + diagnostics + config_dump JSON".
//
// IstioConfig loads and validates (FILE:LINE diagnostics), ConfigCompiler binds and orders
// routes into a TableSpec, RouteTable builds the image the workers read.

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
    /// The host names the compile resolved, in first-use order: the supervisor re-resolves
    /// them periodically (DESIGN.md §5).
    public var dnsNames: [String] = []
    /// Some endpoints came from DNS.
    public var usesDNS: Bool { !dnsNames.isEmpty }
    /// The validated resources this was compiled from: a DNS refresh recompiles them with new
    /// answers instead of reading the files again (which may have changed, or become hostile,
    /// since; re-reading them is SIGHUP's and --watch's job).
    public var model: ParsedConfig?
    /// Certificate, key and CA files the table was built from (or looked for): `--watch`
    /// reloads when one of them changes.
    public var certificateFiles: [String] = []

    public init(spec: TableSpec, image: [UInt8], listenerPorts: [UInt16], notes: [String],
                configDump: @escaping (_ generation: UInt64) -> String) {
        self.spec = spec
        self.image = image
        self.listenerPorts = listenerPorts
        self.notes = notes
        self.configDump = configDump
    }
}

/// A configuration read and validated but not compiled: no name resolved yet.
public struct ParsedConfig {
    public var result: LoadResult
    /// Findings that are not errors (warnings, notes), in the contract form with severity.
    public var notes: [Diagnostic]
    /// Shown in messages that are not about one file (`a.yaml,b.yaml`).
    public var source: String
    /// `--credentials-dir`: where compiling looks up `tls.credentialName`.
    public var credentialsDir: String = defaultCredentialsDir
}

public enum ParseOutcome {
    case valid(ParsedConfig)
    /// One line per problem: `FILE:LINE: KIND NAMESPACE/NAME: FIELD.PATH: message`.
    case invalid(diagnostics: [String])
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
    /// validates (per resource and across resources, as istioctl), compiles and builds the
    /// image. Never throws: every problem is a diagnostic. Called at start-up and on every
    /// reload; touches no process state.
    /// `endpointIds` (the supervisor's) makes endpoint ids stable across reloads.
    public static func load(paths: [String], namespace: String, credentialsDir: String = defaultCredentialsDir,
                            endpointIds: EndpointIds? = nil,
                            resolve: @escaping @Sendable (String) -> [[UInt8]] = systemResolve) -> ConfigLoadOutcome {
        switch parse(paths: paths, namespace: namespace, credentialsDir: credentialsDir) {
        case .invalid(let diagnostics): return .invalid(diagnostics: diagnostics)
        case .valid(let parsed): return compile(parsed, endpointIds: endpointIds, resolve: resolve)
        }
    }

    /// Reads and validates (per resource and across resources) without compiling: nothing is
    /// resolved, so this never waits on DNS. Bounded by IstioConfig's InputLimits.
    /// Credentials named by Gateways must exist under `credentialsDir` (IST0101).
    public static func parse(paths: [String], namespace: String,
                             credentialsDir: String = defaultCredentialsDir) -> ParseOutcome {
        let result = IstioConfig.load(paths: paths, defaultNamespace: namespace)
        let diagnostics = result.diagnostics + analyze(result.resources, credentialsDir: credentialsDir)
        if diagnostics.hasErrors {
            return .invalid(diagnostics: diagnostics.errors.map { $0.description })
        }
        return .valid(ParsedConfig(result: result, notes: diagnostics, source: paths.joined(separator: ","),
                                   credentialsDir: credentialsDir))
    }

    /// Compiles a parsed configuration and builds its image, resolving names with `resolve`
    /// (which may block: the supervisor's loop passes its cache of answers, never a lookup).
    public static func compile(_ parsed: ParsedConfig, endpointIds: EndpointIds? = nil,
                               resolve: @escaping @Sendable (String) -> [[UInt8]] = systemResolve) -> ConfigLoadOutcome {
        let names = NameRecorder()
        let options = CompileOptions(resolve: { name in
            names.record(name)
            return resolve(name)
        }, credentialsDir: parsed.credentialsDir)
        let compiled = compileResult(parsed.result.resources, options: options)
        var table = compiled.table
        let compileDiagnostics = compiled.diagnostics
        endpointIds?.assign(&table)
        let diagnostics = parsed.notes + compileDiagnostics
        if diagnostics.hasErrors {
            return .invalid(diagnostics: diagnostics.errors.map { $0.description })
        }
        let image: [UInt8]
        do {
            image = try TableImage.build(table)
        } catch {
            return .invalid(diagnostics: ["\(parsed.source):0: route table: \(error)"])
        }
        var ports = Array(Set(table.listeners.map { $0.port })).sorted()
        ports.removeAll { $0 == 0 }
        let notes = diagnostics.filter { $0.severity != .error }.map { $0.descriptionWithSeverity }
        var loaded = LoadedConfig(spec: table, image: image, listenerPorts: ports, notes: notes,
                                  configDump: { generation in renderConfigDumpJSON(table, generation: generation) })
        loaded.dnsNames = names.names
        loaded.model = parsed
        loaded.certificateFiles = compiled.certificateFiles
        return .valid(loaded)
    }

    /// The names one compile asks for, in first-use order (the supervisor is single-threaded;
    /// the box only satisfies the resolver's @Sendable signature).
    final class NameRecorder: @unchecked Sendable {
        var names: [String] = []
        private var seen: Set<String> = []
        func record(_ name: String) {
            if seen.insert(name).inserted { names.append(name) }
        }
    }

    static func compileAll(paths: [String], namespace: String, credentialsDir: String) -> (LoadResult, TableSpec, [Diagnostic]) {
        let result = IstioConfig.load(paths: paths, defaultNamespace: namespace)
        var diagnostics = result.diagnostics
        diagnostics += analyze(result.resources, credentialsDir: credentialsDir)
        if diagnostics.hasErrors {
            return (result, TableSpec(), diagnostics)
        }
        let (table, compileDiagnostics) = ConfigCompiler.compile(
            result.resources, options: CompileOptions(resolve: systemResolve, credentialsDir: credentialsDir))
        diagnostics += compileDiagnostics
        return (result, table, diagnostics)
    }

    /// `ingressd check`: exit 0 with a one-line summary (warnings before it), or exit 1 with
    /// one line per problem.
    public static func check(paths: [String], namespace: String,
                             credentialsDir: String = defaultCredentialsDir) -> CommandReport {
        let (result, table, diagnostics) = compileAll(paths: paths, namespace: namespace, credentialsDir: credentialsDir)
        if diagnostics.hasErrors {
            return CommandReport(lines: diagnostics.errors.map { $0.description }, exitCode: 1)
        }
        do {
            _ = try TableImage.build(table)
        } catch {
            return CommandReport(lines: ["\(paths.joined(separator: ",")):0: route table: \(error)"], exitCode: 1)
        }
        let remarks = diagnostics.filter { $0.severity == .warning }.map { $0.descriptionWithSeverity }
        return CommandReport(lines: remarks + [renderCheckSummary(result, table)], exitCode: 0)
    }

    /// `ingressd routes`: the compiled table, or with `query` which route and cluster that
    /// request takes (or why none), decided by the data plane's own matcher over the image.
    public static func routes(paths: [String], namespace: String, credentialsDir: String = defaultCredentialsDir,
                              query: RouteQuery?) -> CommandReport {
        switch load(paths: paths, namespace: namespace, credentialsDir: credentialsDir) {
        case .invalid(let diagnostics):
            return CommandReport(lines: diagnostics, exitCode: 1)
        case .valid(let config):
            guard let q = query else {
                return CommandReport(lines: [renderRoutes(config.spec)], exitCode: 0)
            }
            return explain(q, config: config)
        }
    }

    /// Routes one request through the real matcher: the request is written as HTTP/1.1 bytes,
    /// parsed by the worker's parser and looked up in the built image.
    static func explain(_ q: RouteQuery, config: LoadedConfig) -> CommandReport {
        var method = q.method
        var url = q.url
        var host: String? = q.headers.first { $0.name.lowercased() == "host" }?.value
        var port: UInt16 = config.listenerPorts.first ?? 80
        if method.isEmpty { method = "GET" }
        if let r = url.range(of: "://") {
            let rest = url[r.upperBound...]
            let slash = rest.firstIndex(of: "/") ?? rest.endIndex
            let authority = String(rest[..<slash])
            url = slash == rest.endIndex ? "/" : String(rest[slash...])
            if host == nil { host = authority }
            if let colon = authority.lastIndex(of: ":"), let p = UInt16(authority[authority.index(after: colon)...]) {
                port = p
            } else {
                port = q.url.hasPrefix("https") ? 443 : 80
            }
        }
        guard let hostValue = host else {
            return CommandReport(lines: ["request has no host: give an absolute URL or -H 'Host: NAME'"], exitCode: 2)
        }
        var text = "\(method) \(url) HTTP/1.1\r\nHost: \(hostValue)\r\n"
        for h in q.headers where h.name.lowercased() != "host" { text += "\(h.name): \(h.value)\r\n" }
        text += "\r\n"
        let bytes = Array(text.utf8)
        var lines = ["request: \(method) \(url) host=\(hostValue) port=\(port)"]
        var code: Int32 = 0
        config.image.withUnsafeBytes { image in
            bytes.withUnsafeBytes { buf in
                var head = RequestHead()
                let fields = UnsafeMutableBufferPointer<HeaderField>.allocate(capacity: 101)
                defer { fields.deallocate() }
                guard case .complete = parseRequestHead(buf, headers: fields, into: &head) else {
                    lines.append("the request is not valid HTTP/1.1")
                    code = 2
                    return
                }
                guard let reader = try? TableReader(validating: image.baseAddress!, count: image.count),
                      let matcher = try? RouteMatcher(reader) else {
                    lines.append("internal error: the built table does not load")
                    code = 1
                    return
                }
                let req = MatchRequest(bytes: buf, method: head.methodRange, path: head.path, query: head.query,
                                       authority: head.host, isHTTPS: false, listenerPort: port,
                                       headers: UnsafeBufferPointer(start: fields.baseAddress, count: Int(head.headerCount)))
                func text(_ b: UnsafeRawBufferPointer) -> String { String(decoding: b, as: UTF8.self) }
                switch matcher.route(req) {
                case .noListener:
                    lines.append("no listener on port \(port): connection refused")
                case .noVirtualHost:
                    lines.append("no virtual host for \(hostValue) on port \(port): 404 (NR)")
                case .noRoute:
                    lines.append("no route matches in the virtual host: 404 (NR)")
                case .httpsRedirect(let vh):
                    lines.append("virtual host \(text(reader.virtualHostName(vh))): tls.httpsRedirect: 301 to https://")
                case .matched(let route, let vh):
                    lines.append("virtual host: \(text(reader.virtualHostName(vh)))")
                    lines.append("route: \(text(reader.routeName(route)))")
                    switch reader.routeActionKind(route) {
                    case .directResponse:
                        lines.append("action: direct response \(reader.directResponseStatus(route: route))")
                    case .redirect:
                        lines.append("action: redirect \(reader.redirectStatus(route: route))")
                    case .forward:
                        var total: UInt64 = 0
                        for i in 0..<reader.weightedClusterCount(route: route) { total += UInt64(reader.weightedCluster(route: route, i).weight) }
                        for i in 0..<reader.weightedClusterCount(route: route) {
                            let (c, w) = reader.weightedCluster(route: route, i)
                            let share = total > 0 ? Double(w) * 100 / Double(total) : 100
                            if c < 0 {
                                lines.append("cluster: (missing host or subset) \(String(format: "%.1f", share))%: 503 (NC)")
                                continue
                            }
                            let eps = reader.clusterEndpoints(c)
                            var epText: [String] = []
                            for e in eps {
                                let v = reader.endpoint(e)
                                epText.append(formatAddress(Array(v.address), port: v.port))
                            }
                            lines.append("cluster: \(text(reader.clusterName(c))) \(String(format: "%.1f", share))% endpoints: \(epText.isEmpty ? "none: 503 no healthy upstream" : epText.joined(separator: " "))")
                            lines.append("  policy: \(renderClusterPolicy(reader.decodeCluster(c)))")
                        }
                    }
                    lines += renderRequestActionLines(reader.decodeRoute(route), config.spec, path: text(UnsafeRawBufferPointer(rebasing: buf[Int(head.path.start)..<Int(head.path.start + head.path.count)])))
                }
            }
        }
        return CommandReport(lines: lines, exitCode: code)
    }
}

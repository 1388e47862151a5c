// Istio model → RouteTable.TableSpec (istio-semantics.md §1.1–1.2, DESIGN.md §5).
//
// Binding: a standalone ingressd serves every Gateway it is given (selectors are ignored).
// A VirtualService applies to a Gateway only through `spec.gateways` (or a match's
// `gateways`); its hosts are intersected with the hosts of each server it binds to, keeping
// the more specific name, lower-cased. Servers of several Gateways on one port share one
// listener. Several VirtualServices on one host are merged in creationTimestamp order
// (document order when absent, ties by name then namespace); each contributes its rules in
// order, stopping at its first catch-all, and catch-alls are moved to the end of the host.
import IstioConfig
import RouteTable

/// Limits on the compiled table (README "Configuration limits"). Routes multiply when they
/// bind: every route of a VirtualService is copied to every host it serves, so 3,000 hosts ×
/// 3,000 routes — a 100 KB file — would be 9 million routes. The limits stop the copying early
/// with an error instead of letting a reload run for minutes. Istio's largest gateway
/// configurations have a few thousand routes.
public enum CompileLimits {
    /// HTTP routes in the table, counted once per virtual host that holds them.
    public static let maxRoutes = 100_000
    /// Virtual hosts (one per host name per port).
    public static let maxVirtualHosts = 20_000
}

public struct CompileOptions: Sendable {
    /// Resolves a host name to addresses (4 or 16 bytes, IPv4 first). Called at compile time
    /// for DNS ServiceEntries and for destinations without a ServiceEntry; tests replace it.
    public var resolve: @Sendable (String) -> [[UInt8]]
    /// `--credentials-dir`: where `tls.credentialName: NAME` is looked up (Credentials.swift).
    public var credentialsDir: String

    public init(resolve: @escaping @Sendable (String) -> [[UInt8]] = systemResolve,
                credentialsDir: String = defaultCredentialsDir) {
        self.resolve = resolve
        self.credentialsDir = credentialsDir
    }
}

/// What one compile produced.
public struct CompileResult {
    public var table: TableSpec
    public var diagnostics: [Diagnostic]
    /// Certificate, key and CA files the table depends on (read, or looked for: credential
    /// candidates that do not exist are listed too), in first-use order, without duplicates.
    /// `--watch` watches them; they are read again on every compile.
    public var certificateFiles: [String]
}

/// Compiles loaded resources into a route table. Diagnostics are about binding and the
/// registry (notes on what is ignored, warnings on destinations without endpoints) and about
/// certificates (errors for files that cannot serve); the per-resource and cross-resource
/// checks come from `IstioConfig.load` and `analyze`.
public func compile(_ resources: [Resource], options: CompileOptions = CompileOptions()) -> (table: TableSpec, diagnostics: [Diagnostic]) {
    let r = compileResult(resources, options: options)
    return (r.table, r.diagnostics)
}

/// `compile`, with the files the table was built from.
public func compileResult(_ resources: [Resource], options: CompileOptions = CompileOptions()) -> CompileResult {
    var c = Compilation(resources: resources, options: options)
    c.run()
    var seen: Set<String> = []
    return CompileResult(table: TableSpec(listeners: c.listeners, clusters: c.registry.clusters),
                         diagnostics: c.diagnostics + c.registry.diagnostics,
                         certificateFiles: (c.certificateFiles + c.registry.certificateFiles).filter { seen.insert($0).inserted })
}

/// A Gateway server together with the Gateway it belongs to.
struct BoundServer {
    let gateway: ResourceMeta
    let server: Gateway.Server
    let index: Int
}

struct Compilation {
    let gateways: [(ResourceMeta, Gateway)]
    let virtualServices: [(ResourceMeta, VirtualService)]
    var registry: Registry
    let options: CompileOptions
    var diagnostics: [Diagnostic] = []
    /// Certificate files read or looked for (CompileResult.certificateFiles).
    var certificateFiles: [String] = []
    var listeners: [ListenerSpec] = []
    /// Routes and virtual hosts placed so far (CompileLimits).
    var routeCount = 0
    var virtualHostCount = 0
    /// A limit was passed: an error is reported and compiling stops.
    var overLimit = false

    init(resources: [Resource], options: CompileOptions) {
        gateways = resources.compactMap { r in r.gateway.map { (r.meta, $0) } }
        virtualServices = resources.compactMap { r in r.virtualService.map { (r.meta, $0) } }
            .sorted { Compilation.mergeOrder($0.0, $1.0) }
        registry = Registry(resources: resources, options: options)
        self.options = options
    }

    /// Istio sorts merged VirtualServices by creationTimestamp, then name, then namespace.
    /// Resources without a timestamp (files) come after those with one, in document order.
    static func mergeOrder(_ a: ResourceMeta, _ b: ResourceMeta) -> Bool {
        switch (a.creationTimestamp, b.creationTimestamp) {
        case let (ta?, tb?):
            if ta != tb { return ta < tb }
            if a.name != b.name { return a.name < b.name }
            return a.namespace < b.namespace
        case (.some, nil): return true
        case (nil, .some): return false
        case (nil, nil):
            if a.order != b.order { return a.order < b.order }
            return a.name < b.name
        }
    }

    mutating func run() {
        if let (meta, _) = gateways.first(where: { !$0.1.selector.isEmpty }) {
            diagnostics.append(meta.diagnostic(.note, "spec.selector",
                                               "selector is ignored: a standalone ingressd serves every Gateway it is given"))
        }
        for (meta, vs) in virtualServices where vs.gateways.isEmpty && !vs.hosts.isEmpty {
            diagnostics.append(meta.diagnostic(.note, "spec.gateways",
                                               "no gateways: the VirtualService applies to sidecars (mesh) only; ingressd ignores it"))
        }

        // Listeners: one per port; the first server decides the protocol. HTTP servers merge
        // into one route table, HTTPS and TLS servers into one SNI-chosen list; a TCP port
        // keeps its first server.
        var byPort: [UInt32: (proto: ListenerProtocol, first: BoundServer, servers: [BoundServer])] = [:]
        for (meta, gw) in gateways {
            for (i, server) in gw.servers.enumerated() {
                guard let port = server.port, port.number >= 1, port.number <= 65535 else { continue }
                let proto = Compilation.listenerProtocol(port.proto)
                let bound = BoundServer(gateway: meta, server: server, index: i)
                if let existing = byPort[port.number] {
                    if existing.proto != proto || proto == .tcp {
                        let other = existing.first.server.port!
                        diagnostics.append(meta.diagnostic(.warning, "spec.servers[\(i)].port",
                            "skipping server on gateway \(meta.name) port \(port.name).\(port.number).\(port.proto): conflict with existing server \(other.number).\(other.proto)"))
                        continue
                    }
                    byPort[port.number]!.servers.append(bound)
                } else {
                    byPort[port.number] = (proto, bound, [bound])
                }
            }
        }
        for port in byPort.keys.sorted() {
            let entry = byPort[port]!
            var listener = ListenerSpec(port: UInt16(port), proto: entry.proto)
            switch entry.proto {
            case .http:
                listener.virtualHosts = virtualHosts(port: port, servers: entry.servers)
            case .tcp:
                listener.tcpRoutes = tcpRoutes(port: port, server: entry.first)
            case .https, .tls:
                let servers = tlsServers(port: port, servers: entry.servers)
                listener.tlsServers = servers.map(\.1)
                let terminated = servers.filter { $0.1.mode != .passthrough }.map(\.0)
                if entry.proto == .https {
                    listener.virtualHosts = virtualHosts(port: port, servers: terminated)
                } else {
                    listener.tcpRoutes = terminatedTCPRoutes(port: port, servers: terminated)
                }
                listener.tlsRoutes = tlsRoutes(port: port, servers: servers.filter { $0.1.mode == .passthrough }.map(\.0))
            }
            listeners.append(listener)
            if overLimit { return }
        }
    }

    /// Counts `routes` more routes and `hosts` more virtual hosts; false (with an error on the
    /// VirtualService that passed a limit) when the table would outgrow CompileLimits.
    mutating func admit(routes: Int, hosts: Int, from vs: ResourceMeta) -> Bool {
        if overLimit { return false }
        routeCount += routes
        virtualHostCount += hosts
        if routeCount > CompileLimits.maxRoutes {
            diagnostics.append(vs.diagnostic(.error, "spec.http",
                "the configuration compiles to more than \(CompileLimits.maxRoutes) routes (every route counts once per host it serves); at most \(CompileLimits.maxRoutes)"))
            overLimit = true
        } else if virtualHostCount > CompileLimits.maxVirtualHosts {
            diagnostics.append(vs.diagnostic(.error, "spec.hosts",
                "the configuration compiles to more than \(CompileLimits.maxVirtualHosts) virtual hosts (one per host name and port); at most \(CompileLimits.maxVirtualHosts)"))
            overLimit = true
        }
        return !overLimit
    }

    static func listenerProtocol(_ p: String) -> ListenerProtocol {
        switch p.uppercased() {
        case "HTTP", "HTTP2", "GRPC", "GRPC-WEB": return .http
        case "HTTPS": return .https
        case "TLS": return .tls
        default: return .tcp
        }
    }

    /// Whether `vs` names the gateway at top level or in any match.
    func binds(_ vs: VirtualService, _ vsMeta: ResourceMeta, to gw: ResourceMeta) -> Bool {
        let refs = vs.gateways + vs.http.flatMap { $0.match.flatMap(\.gateways) } + vs.tcp.flatMap { $0.match.flatMap(\.gateways) }
            + vs.tls.flatMap { $0.match.flatMap(\.gateways) }
        return refs.contains { ref in
            guard let r = GatewayReference.resolve(ref, virtualServiceNamespace: vsMeta.namespace) else { return false }
            return r.namespace == gw.namespace && r.name == gw.name
        }
    }

    mutating func virtualHosts(port: UInt32, servers: [BoundServer]) -> [VirtualHostSpec] {
        var hosts: [VirtualHostSpec] = []
        var index: [String: Int] = [:]
        var merged: [String: Set<String>] = [:] // domain → VirtualServices already merged in
        for bound in servers {
            // httpsRedirect on an HTTPS server would redirect to itself: HTTP servers only
            // (validation warns "tls.httpsRedirect should only be used with http servers").
            let redirect = (bound.server.tls?.httpsRedirect ?? false)
                && Compilation.listenerProtocol(bound.server.port?.proto ?? "") == .http
            // A VirtualService with only tcp/tls blocks (bound, say, through a tls match's
            // gateways) has nothing for HTTP: it must not claim a virtual host with no routes.
            for (vsMeta, vs) in virtualServices where !vs.http.isEmpty && binds(vs, vsMeta, to: bound.gateway) {
                let serverHosts = GatewayReference.serverHosts(bound.server.hosts, gatewayNamespace: bound.gateway.namespace,
                                                               virtualServiceNamespace: vsMeta.namespace)
                let domains = HostName.intersection(serverHosts, vs.hosts)
                if domains.isEmpty { continue }
                let routes = self.routes(vs, vsMeta, gateway: bound.gateway, port: port)
                for domain in domains {
                    guard admit(routes: routes.count, hosts: index[domain] == nil ? 1 : 0, from: vsMeta) else { return hosts }
                    if let i = index[domain] {
                        if !merged[domain, default: []].contains(vsMeta.qualifiedName) {
                            hosts[i].routes += routes
                            merged[domain, default: []].insert(vsMeta.qualifiedName)
                        }
                        if redirect { hosts[i].httpsRedirect = true }
                    } else {
                        index[domain] = hosts.count
                        merged[domain] = [vsMeta.qualifiedName]
                        hosts.append(VirtualHostSpec(name: "\(domain):\(port)", domains: [domain], routes: routes,
                                                     httpsRedirect: redirect))
                    }
                }
            }
            if redirect {
                // Hosts of an httpsRedirect server redirect even without a VirtualService.
                for h in GatewayReference.serverHosts(bound.server.hosts, gatewayNamespace: bound.gateway.namespace,
                                                      virtualServiceNamespace: "*") {
                    let domain = h.lowercased()
                    if index[domain] == nil {
                        index[domain] = hosts.count
                        hosts.append(VirtualHostSpec(name: "\(domain):\(port)", domains: [domain], routes: [],
                                                     httpsRedirect: true))
                    }
                }
            }
        }
        for i in hosts.indices {
            // Catch-alls last, order otherwise kept (Istio route.SortVHostRoutes).
            let routes = hosts[i].routes
            hosts[i].routes = routes.filter { !isCatchAll($0) } + routes.filter(isCatchAll)
        }
        return hosts
    }
}

/// A route that matches every request on its host: no match block, or one whose only
/// condition is uri prefix `/` or regex `.*`/`*` (Istio isCatchAllRoute).
public func isCatchAll(_ route: RouteSpec) -> Bool {
    guard let m = route.matches.first else { return true }
    return route.matches.count == 1 && isCatchAll(m)
}

func isCatchAll(_ m: MatchSpec) -> Bool {
    let uriAll: Bool
    switch m.uri {
    case nil: uriAll = true
    case .prefix("/")?: uriAll = true
    case .regex(".*")?, .regex("*")?: uriAll = true
    default: uriAll = false
    }
    return uriAll && m.scheme == nil && m.method == nil && m.authority == nil && m.headers.isEmpty
        && m.withoutHeaders.isEmpty && m.queryParams.isEmpty
}

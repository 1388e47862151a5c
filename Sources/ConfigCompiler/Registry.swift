// Where upstream addresses come from (DESIGN.md §5): ServiceEntries first (STATIC endpoints
// with labels for DestinationRule subsets, or DNS), else the destination host resolved
// through DNS as written; nothing → a cluster without endpoints (503 no healthy upstream).
// Cluster names are Envoy's `outbound|PORT|SUBSET|FQDN`, shared by every route using them.
import Glibc
import IstioConfig
import RouteTable

struct Registry {
    let entries: [(ResourceMeta, ServiceEntry)]
    let rules: [(ResourceMeta, DestinationRule)]
    let options: CompileOptions
    var clusters: [ClusterSpec] = []
    var index: [String: Int32] = [:]
    var diagnostics: [Diagnostic] = []
    var nextEndpointId: UInt32 = 0
    /// Certificate files of DestinationRule `tls` blocks (CompileResult.certificateFiles).
    var certificateFiles: [String] = []
    /// Compiled `tls` blocks by "namespace/name path", so that a block serving several
    /// clusters is read, and reported on, once.
    var tlsBlocks: [String: ClusterTLSSpec?] = [:]

    init(resources: [Resource], options: CompileOptions) {
        entries = resources.compactMap { r in r.serviceEntry.map { (r.meta, $0) } }
        rules = resources.compactMap { r in r.destinationRule.map { (r.meta, $0) } }
        self.options = options
    }

    /// The ServiceEntry serving `host`: an exact host first, then the longest wildcard.
    func serviceEntry(for host: String) -> (ResourceMeta, ServiceEntry, String)? {
        let h = host.lowercased()
        for (m, se) in entries {
            if let exact = se.hosts.first(where: { $0.lowercased() == h }) { return (m, se, exact) }
        }
        var best: (ResourceMeta, ServiceEntry, String)?
        for (m, se) in entries {
            for pattern in se.hosts where HostName.isWildcard(pattern) && HostName.subsetOf(h, pattern) {
                if best == nil || pattern.count > best!.2.count { best = (m, se, pattern) }
            }
        }
        return best
    }

    /// DestinationRules for `fqdn`, those in `namespace` first (Istio's lookup order: client
    /// namespace, then the others), each in load order.
    func destinationRules(for fqdn: String, namespace: String) -> [(ResourceMeta, DestinationRule)] {
        let matching = rules.filter { meta, dr in
            HostName.subsetOf(fqdn, HostName.fqdn(dr.host, namespace: meta.namespace))
        }
        return matching.filter { $0.0.namespace == namespace } + matching.filter { $0.0.namespace != namespace }
    }

    /// The index of the cluster for this destination, creating it on first use; -1 when the
    /// destination cannot have a cluster (subset or port not defined): requests get 503 NC.
    mutating func cluster(for dest: Destination, from vs: ResourceMeta, path: String) -> Int32 {
        let fqdn = HostName.fqdn(dest.host, namespace: vs.namespace).lowercased()
        let found = serviceEntry(for: dest.host) ?? serviceEntry(for: fqdn)
        let drs = destinationRules(for: fqdn, namespace: vs.namespace)

        // Subset → labels (the first definition of a name wins).
        var subsetLabels: [String: String] = [:]
        var subsetPolicy: TrafficPolicy?
        var subsetRule: (meta: ResourceMeta, path: String)?
        if let subset = dest.subset, !subset.isEmpty {
            guard let (meta, i, s) = drs.lazy.flatMap({ (meta, dr) in
                dr.subsets.enumerated().map { (meta, $0.offset, $0.element) }
            }).first(where: { $0.2.name == subset }) else {
                return -1 // reported by analyze (IST0101 host+subset)
            }
            subsetLabels = s.labels
            subsetPolicy = s.trafficPolicy
            subsetRule = (meta, "spec.subsets[\(i)].trafficPolicy")
        }

        // Port.
        var port: UInt32
        var sePort: ServiceEntry.Port?
        if let p = dest.port?.number {
            port = p
            if let (_, se, _) = found, !se.ports.isEmpty {
                sePort = se.ports.first { $0.number == p }
                if sePort == nil {
                    diagnostics.append(vs.diagnostic(.warning, "\(path).port",
                        "Referenced host:port not found: \"\(dest.host):\(p)\" (the ServiceEntry has no port \(p); requests get 503)",
                        code: "IST0101"))
                    return -1
                }
            }
        } else if let (_, se, _) = found, se.ports.count == 1 {
            sePort = se.ports[0]
            port = se.ports[0].number
        } else if let (_, se, _) = found, se.ports.count > 1 {
            diagnostics.append(vs.diagnostic(.error, path,
                "This VirtualService routes to a service \"\(dest.host)\" that exposes multiple ports \(se.ports.map(\.number)). Specifying a port in the destination is required to disambiguate.",
                code: "IST0112"))
            return -1
        } else {
            port = 80
            diagnostics.append(vs.diagnostic(.note, path,
                "destination \"\(dest.host)\" has no port and no ServiceEntry says which; using port 80"))
        }

        let name = "outbound|\(port)|\(dest.subset ?? "")|\(fqdn)"
        if let i = index[name] { return i }

        // The first DestinationRule with a top-level policy wins (istio-semantics.md §4).
        let topRule = drs.first(where: { $0.1.trafficPolicy != nil })
        let policy = MergedTrafficPolicy(top: topRule?.1.trafficPolicy, subset: subsetPolicy, port: port,
                                         subsetPath: subsetRule?.path ?? "")

        var candidates: [(address: [UInt8], port: UInt16, weight: UInt32)] = []
        var labelled = false // endpoints carry labels, so a subset can select them
        if let (_, se, matchedHost) = found {
            let targetPort = sePort?.targetPort ?? port
            func endpointPort(_ ep: ServiceEntry.WorkloadEntry) -> UInt16 {
                UInt16(clamping: sePort.flatMap { ep.ports[$0.name] } ?? targetPort)
            }
            switch se.effectiveResolution {
            case "STATIC":
                labelled = true
                for ep in se.endpoints where subsetLabels.allSatisfy({ ep.labels[$0.key] == $0.value }) {
                    guard let addr = IPAddress.parse(ep.address) else { continue }
                    candidates.append((addr, endpointPort(ep), max(ep.weight ?? 1, 1)))
                }
            case "DNS", "DNS_ROUND_ROBIN":
                let firstOnly = se.effectiveResolution == "DNS_ROUND_ROBIN"
                if se.endpoints.isEmpty {
                    let host = HostName.isWildcard(matchedHost) ? dest.host : matchedHost
                    if subsetLabels.isEmpty {
                        let addrs = options.resolve(host)
                        for a in firstOnly ? Array(addrs.prefix(1)) : addrs {
                            candidates.append((a, UInt16(clamping: targetPort), 1))
                        }
                    }
                } else {
                    labelled = true
                    for ep in se.endpoints where subsetLabels.allSatisfy({ ep.labels[$0.key] == $0.value }) {
                        let addrs = IPAddress.parse(ep.address).map { [$0] } ?? options.resolve(ep.address)
                        for a in firstOnly ? Array(addrs.prefix(1)) : addrs {
                            candidates.append((a, endpointPort(ep), max(ep.weight ?? 1, 1)))
                        }
                    }
                }
            default:
                break // NONE, DYNAMIC_DNS: no endpoints at an ingress (warned by validation)
            }
        } else if subsetLabels.isEmpty {
            for a in options.resolve(dest.host) {
                candidates.append((a, UInt16(clamping: port), 1))
            }
        }

        var endpoints: [EndpointSpec] = []
        var seen: Set<[UInt8]> = []
        for c in candidates where seen.insert(c.address + [UInt8(c.port >> 8), UInt8(c.port & 0xff)]).inserted {
            endpoints.append(EndpointSpec(address: c.address, port: c.port, weight: c.weight, id: nextEndpointId))
            nextEndpointId += 1
        }
        if endpoints.isEmpty {
            let why: String
            if let subset = dest.subset, !subsetLabels.isEmpty, !labelled || found != nil {
                why = "The Subset \(subset) defined in the DestinationRule does not select any endpoints (no ServiceEntry endpoint has its labels). Which may lead to 503 UH (NoHealthyUpstream)."
            } else if found != nil {
                why = "ServiceEntry for \"\(dest.host)\" gives no endpoints; requests get 503 no healthy upstream"
            } else {
                why = "Referenced host not found: \"\(dest.host)\" (no ServiceEntry, and DNS has no address for it); requests get 503 no healthy upstream"
            }
            diagnostics.append(vs.diagnostic(.warning, path, why, code: found == nil && dest.subset == nil ? "IST0101" : nil))
        }
        let i = Int32(clusters.count)
        var cluster = ClusterSpec(name: name, endpoints: endpoints, connectTimeoutMs: policy.connectTimeoutMs,
                                  loadBalancer: policy.loadBalancerSpec, connectionPool: policy.connectionPoolSpec)
        cluster.http2 = policy.http2(portProtocol: sePort?.proto)
        cluster.useClientProtocol = policy.connectionPool?.http?.useClientProtocol == true
        cluster.outlier = outlierPolicy(policy.outlierDetection)
        cluster.healthCheck = healthCheckPolicy(entry: found?.0, fqdn: fqdn, namespace: vs.namespace)
        if let tls = policy.tls, let rule = policy.tlsFromSubset ? subsetRule?.meta : topRule?.0 {
            cluster.tls = clusterTLS(tls, rule: rule, path: policy.tlsPath)
        }
        clusters.append(cluster)
        index[name] = i
        return i
    }
}

/// getaddrinfo(3) on `host`: every distinct address, IPv4 before IPv6; none when the lookup
/// fails. Blocks for as long as the resolver takes (seconds against a dead DNS server): used
/// by `check`, `routes` and the supervisor's start-up, never by a running supervisor's loop
/// (it resolves in child processes, Supervisor/AsyncResolver.swift).
public func systemResolve(_ host: String) -> [[UInt8]] {
    (try? systemLookup(host).get()) ?? []
}

/// Why a lookup gave no address.
public enum LookupFailure: Error, Equatable, Sendable {
    /// The name does not exist or has no address (EAI_NONAME, EAI_NODATA): an answer.
    case noSuchName
    /// No answer (EAI_AGAIN, EAI_FAIL, …): the resolver could not be asked.
    case failed(String)
}

/// getaddrinfo(3) on `host`, telling a name that does not exist from a resolver that did not
/// answer. Blocks like `systemResolve`.
///
/// Test hook (not a user setting): when `INGRESSD_TEST_RESOLVE_STALL_FILE` names a file that
/// exists, every lookup first sleeps for the milliseconds written in it (3000 when empty) —
/// how the integration tests stand in for a DNS server that does not answer.
public func systemLookup(_ host: String) -> Result<[[UInt8]], LookupFailure> {
    if let hook = getenv("INGRESSD_TEST_RESOLVE_STALL_FILE"), let f = fopen(hook, "r") {
        var buf = [CChar](repeating: 0, count: 32)
        let text = fgets(&buf, 31, f) != nil ? String(cString: buf) : ""
        fclose(f)
        let ms = UInt32(text.filter(\.isNumber)) ?? 3_000
        usleep(ms * 1_000)
    }
    var hints = addrinfo()
    hints.ai_family = AF_UNSPEC
    hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
    var result: UnsafeMutablePointer<addrinfo>?
    let rc = getaddrinfo(host, nil, &hints, &result)
    // EAI_NODATA (-5 in glibc's netdb.h) is a GNU extension the Glibc module leaves out.
    if rc == EAI_NONAME || rc == -5 { return .failure(.noSuchName) }
    guard rc == 0 else { return .failure(.failed(String(cString: gai_strerror(rc)))) }
    guard let first = result else { return .failure(.noSuchName) }
    defer { freeaddrinfo(first) }
    var v4: [[UInt8]] = []
    var v6: [[UInt8]] = []
    var cursor: UnsafeMutablePointer<addrinfo>? = first
    while let ai = cursor {
        if let sa = ai.pointee.ai_addr {
            if ai.pointee.ai_family == AF_INET {
                // SAFETY: ai_family AF_INET guarantees ai_addr points at a sockaddr_in.
                let sin = UnsafeRawPointer(sa).load(as: sockaddr_in.self)
                let a = withUnsafeBytes(of: sin.sin_addr) { Array($0) }
                if !v4.contains(a) { v4.append(a) }
            } else if ai.pointee.ai_family == AF_INET6 {
                // SAFETY: ai_family AF_INET6 guarantees ai_addr points at a sockaddr_in6.
                let sin6 = UnsafeRawPointer(sa).load(as: sockaddr_in6.self)
                let a = withUnsafeBytes(of: sin6.sin6_addr) { Array($0) }
                if !v6.contains(a) { v6.append(a) }
            }
        }
        cursor = ai.pointee.ai_next
    }
    return .success(v4 + v6)
}

// VirtualService tcp blocks → TCPRouteSpec for a TCP (or MONGO) Gateway server
// (istio-semantics.md §3.3; Istio gateway.go buildGatewayNetworkFiltersFromTCPRoutes).
//
// Istio walks the VirtualServices bound to the gateway in merge order, skips those whose hosts
// do not intersect the server's hosts, and takes the FIRST tcp block whose L4 match fits the
// server: no match at all, or any match whose `port` is unset or the server's port and whose
// `gateways` (if any) name this gateway. Only that block is used, so the listener gets at most
// one route. `destinationSubnets`, `sourceLabels` and `sourceNamespace` are not looked at on a
// gateway (gateway.go l4SingleMatch checks port and gateways only); ingressd does the same and
// says so with a note.
import IstioConfig
import RouteTable

extension Compilation {
    mutating func tcpRoutes(port: UInt32, server bound: BoundServer) -> [TCPRouteSpec] {
        let gw = bound.gateway
        func names(_ refs: [String], _ meta: ResourceMeta) -> Bool {
            refs.contains { ref in
                guard let r = GatewayReference.resolve(ref, virtualServiceNamespace: meta.namespace) else { return false }
                return r.namespace == gw.namespace && r.name == gw.name
            }
        }
        for (meta, vs) in virtualServices where !vs.tcp.isEmpty && binds(vs, meta, to: gw) {
            let serverHosts = GatewayReference.serverHosts(bound.server.hosts, gatewayNamespace: gw.namespace,
                                                           virtualServiceNamespace: meta.namespace)
            if HostName.intersection(serverHosts, vs.hosts).isEmpty { continue }
            for (i, tcp) in vs.tcp.enumerated() {
                let fits: Bool
                if tcp.match.isEmpty {
                    fits = names(vs.gateways, meta)
                } else {
                    fits = tcp.match.contains { m in
                        (m.port == nil || m.port == port) && names(m.gateways.isEmpty ? vs.gateways : m.gateways, meta)
                    }
                }
                guard fits else { continue }
                let path = "spec.tcp[\(i)]"
                for (j, m) in tcp.match.enumerated()
                where !m.destinationSubnets.isEmpty || !m.sourceLabels.isEmpty || m.sourceNamespace != nil {
                    diagnostics.append(meta.diagnostic(.note, "\(path).match[\(j)]",
                        "destinationSubnets, sourceLabels and sourceNamespace are not matched on a gateway (as in Istio); the block applies to every connection on port \(port)"))
                }
                guard let dests = tcpDestinations(tcp.route, meta, path: path) else { return [] }
                return [TCPRouteSpec(name: "\(meta.qualifiedName)/tcp[\(i)]", destinations: dests)]
            }
        }
        return []
    }

    /// Weighted destinations of a tcp block, with the same weight rules as HTTP routes
    /// (one destination takes everything; weight 0 gets nothing). Nil when there is none.
    mutating func tcpDestinations(_ route: [RouteDestination], _ meta: ResourceMeta, path: String) -> [WeightedClusterSpec]? {
        var out: [WeightedClusterSpec] = []
        for (k, rd) in route.enumerated() {
            guard let dest = rd.destination else { continue }
            if route.count > 1 && rd.weight <= 0 { continue }
            let cluster = registry.cluster(for: dest, from: meta, path: "\(path).route[\(k)].destination")
            out.append(WeightedClusterSpec(cluster: cluster, weight: route.count == 1 ? 100 : UInt32(rd.weight)))
        }
        if out.isEmpty {
            for (k, rd) in route.enumerated() {
                guard let dest = rd.destination else { continue }
                out.append(WeightedClusterSpec(
                    cluster: registry.cluster(for: dest, from: meta, path: "\(path).route[\(k)].destination"), weight: 1))
            }
        }
        return out.isEmpty ? nil : out
    }
}

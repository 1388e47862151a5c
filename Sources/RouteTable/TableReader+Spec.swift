// Control plane only (allocates, makes Strings): turns an image back into the `TableSpec` it was
// built from, for `/config_dump`, `ingressd routes` and round-trip tests. Never call it on the
// request path.

extension TableReader {
    /// The spec this image encodes. `TableImage.build(spec)` read back gives `spec` again, with
    /// domains and header names lower-cased.
    public func decodeSpec() -> TableSpec {
        TableSpec(listeners: listeners.map(decodeListener), clusters: clusters.map(decodeCluster))
    }

    static func string(_ b: UnsafeRawBufferPointer) -> String { String(decoding: b, as: UTF8.self) }

    func decodeListener(_ l: Int32) -> ListenerSpec {
        ListenerSpec(port: listenerPort(l), proto: listenerProtocol(l),
                     virtualHosts: listenerVirtualHosts(l).map(decodeVirtualHost),
                     tcpRoutes: listenerTCPRoutes(l).map(decodeTCPRoute))
    }

    func decodeTCPRoute(_ r: Int32) -> TCPRouteSpec {
        TCPRouteSpec(name: Self.string(tcpRouteName(r)),
                     destinations: (0..<tcpWeightedClusterCount(route: r)).map {
                         let w = tcpWeightedCluster(route: r, $0)
                         return WeightedClusterSpec(cluster: w.cluster, weight: w.weight)
                     })
    }

    func decodeVirtualHost(_ v: Int32) -> VirtualHostSpec {
        VirtualHostSpec(name: Self.string(virtualHostName(v)),
                        domains: (0..<virtualHostDomainCount(v)).map { Self.string(virtualHostDomain(v, $0)) },
                        routes: virtualHostRoutes(v).map(decodeRoute),
                        httpsRedirect: virtualHostHTTPSRedirect(v))
    }

    func decodeRoute(_ r: Int32) -> RouteSpec {
        let action: RouteAction
        switch routeActionKind(r) {
        case .forward:
            action = .forward((0..<weightedClusterCount(route: r)).map {
                let w = weightedCluster(route: r, $0)
                return WeightedClusterSpec(cluster: w.cluster, weight: w.weight)
            })
        case .directResponse:
            action = .directResponse(status: directResponseStatus(route: r), body: Array(directResponseBody(route: r)))
        case .redirect:
            action = .redirect(RedirectSpec(status: redirectStatus(route: r),
                                            scheme: redirectScheme(route: r).map(Self.string),
                                            authority: redirectAuthority(route: r).map(Self.string),
                                            port: redirectPort(route: r),
                                            uri: redirectURI(route: r).map(Self.string),
                                            prefixRewrite: redirectPrefixRewrite(route: r).map(Self.string)))
        }
        return RouteSpec(name: Self.string(routeName(r)), matches: routeMatches(r).map(decodeMatch),
                         action: action, timeoutMs: routeTimeoutMs(r))
    }

    func decodeMatch(_ m: Int32) -> MatchSpec {
        var spec = MatchSpec(ignoreUriCase: matchIgnoreUriCase(m), port: matchPort(m))
        for c in matchConditions(m) {
            let view = condition(c)
            let value = Self.string(view.value)
            let match: StringMatchSpec
            switch view.kind {
            case .exact: match = .exact(value)
            case .prefix: match = .prefix(value)
            case .regex: match = .regex(value)
            case .present: match = .present
            }
            let name = Self.string(view.name)
            switch view.target {
            case .uri: spec.uri = match
            case .scheme: spec.scheme = match
            case .method: spec.method = match
            case .authority: spec.authority = match
            case .header: spec.headers.append(HeaderMatchSpec(name: name, match: match))
            case .withoutHeader: spec.withoutHeaders.append(HeaderMatchSpec(name: name, match: match))
            case .queryParam: spec.queryParams.append(HeaderMatchSpec(name: name, match: match))
            }
        }
        return spec
    }

    func decodeCluster(_ c: Int32) -> ClusterSpec {
        ClusterSpec(name: Self.string(clusterName(c)),
                    endpoints: clusterEndpoints(c).map {
                        let e = endpoint($0)
                        return EndpointSpec(address: Array(e.address), port: e.port, weight: e.weight, id: e.id)
                    },
                    connectTimeoutMs: clusterConnectTimeoutMs(c))
    }
}

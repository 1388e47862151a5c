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
                     tcpRoutes: listenerTCPRoutes(l).map(decodeTCPRoute),
                     tlsServers: listenerTLSServers(l).map(decodeTLSServer),
                     tlsRoutes: listenerTLSRoutes(l).map(decodeTLSRoute))
    }

    /// TLS server `s` as a spec, private key included: callers that show it must drop the key.
    public func decodeTLSServer(_ s: Int32) -> TLSServerSpec {
        func list(_ n: Int32, _ name: (Int32, Int32) -> UnsafeRawBufferPointer) -> [String] {
            (0..<n).map { Self.string(name(s, $0)) }
        }
        let v = tlsServerVersions(s)
        return TLSServerSpec(name: Self.string(tlsServerName(s)), hosts: list(tlsServerHostCount(s), tlsServerHost),
                             mode: tlsServerMode(s), certificateChainPEM: Array(tlsServerCertificateChain(s)),
                             privateKeyPEM: Array(tlsServerPrivateKey(s)),
                             caCertificatesPEM: Array(tlsServerCACertificates(s)), minVersion: v.min, maxVersion: v.max,
                             cipherSuites: Self.string(tlsServerCipherSuites(s)),
                             subjectAltNames: list(tlsServerSubjectAltNameCount(s), tlsServerSubjectAltName),
                             verifyCertificateSpki: list(tlsServerSpkiCount(s), tlsServerSpki),
                             verifyCertificateHash: list(tlsServerHashCount(s), tlsServerHash),
                             secondCertificateChainPEM: Array(tlsServerSecondCertificate(s).chain),
                             secondPrivateKeyPEM: Array(tlsServerSecondCertificate(s).key), crlPEM: Array(tlsServerCRL(s)))
    }

    func decodeTLSRoute(_ r: Int32) -> TLSRouteSpec {
        TLSRouteSpec(name: Self.string(tlsRouteName(r)),
                     sniHosts: (0..<tlsRouteSniHostCount(r)).map { Self.string(tlsRouteSniHost(r, $0)) },
                     destinations: (0..<tlsWeightedClusterCount(route: r)).map {
                         let w = tlsWeightedCluster(route: r, $0)
                         return WeightedClusterSpec(cluster: w.cluster, weight: w.weight)
                     })
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

    /// Route `r` as a spec (cluster indices as in the image), e.g. the route a request matched.
    public func decodeRoute(_ r: Int32) -> RouteSpec {
        let action: RouteAction
        switch routeActionKind(r) {
        case .forward:
            action = .forward(routeDestinations(route: r).map { d in
                WeightedClusterSpec(cluster: destinationCluster(d), weight: destinationWeight(d),
                                    headers: HeaderOpsSpec(request: destinationRequestHeaderOps(d).map(decodeHeaderOp),
                                                           response: destinationResponseHeaderOps(d).map(decodeHeaderOp)))
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
                         action: action, timeoutMs: routeTimeoutMs(r), actions: decodeActions(r))
    }

    func decodeHeaderOp(_ h: Int32) -> HeaderOpSpec {
        let v = headerOp(h)
        return HeaderOpSpec(v.kind, Self.string(v.name), Self.string(v.value))
    }

    /// An empty `RewriteSpec` or `FaultSpec` in the spec reads back as nil.
    func decodeActions(_ r: Int32) -> RouteActionsSpec {
        var a = RouteActionsSpec()
        let uri = rewriteURI(route: r).map(Self.string), authority = rewriteAuthority(route: r).map(Self.string)
        let regex = rewriteRegex(route: r).map { RegexRewriteSpec(pattern: Self.string($0.pattern), substitution: Self.string($0.substitution)) }
        if uri != nil || authority != nil || regex != nil {
            a.rewrite = RewriteSpec(uri: uri, authority: authority, uriRegex: regex)
        }
        a.headers = HeaderOpsSpec(request: requestHeaderOps(route: r).map(decodeHeaderOp),
                                  response: responseHeaderOps(route: r).map(decodeHeaderOp))
        let p = retryPolicy(route: r)
        a.retry = RetrySpec(attempts: p.attempts, perTryTimeoutMs: p.perTryTimeoutMs, retryOn: p.retryOn,
                            retriableStatusCodes: p.statusCodes.map(retryStatusCode),
                            retryRemoteLocalities: p.retryRemoteLocalities, ignorePreviousHosts: p.ignorePreviousHosts,
                            backoffBaseMs: p.backoffBaseMs)
        let delay = faultDelay(route: r).map { FaultDelaySpec(fixedDelayMs: $0.fixedDelayMs, ppm: $0.ppm) }
        let abort = faultAbort(route: r).map {
            FaultAbortSpec(httpStatus: $0.httpStatus, ppm: $0.ppm, grpcStatus: $0.grpcStatus >= 0 ? UInt8($0.grpcStatus) : nil)
        }
        if delay != nil || abort != nil { a.fault = FaultSpec(delay: delay, abort: abort) }
        a.mirrors = routeMirrors(route: r).map { MirrorSpec(cluster: mirror($0).cluster, ppm: mirror($0).ppm) }
        let c = routeCors(route: r)
        if c >= 0 {
            let v = cors(c)
            func list(_ b: UnsafeRawBufferPointer) -> [String] {
                b.isEmpty ? [] : Self.string(b).split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            }
            a.cors = CorsSpec(allowOrigins: v.origins.map { o in
                                  let m = corsOrigin(o)
                                  let value = Self.string(m.value)
                                  switch m.kind {
                                  case .prefix: return .prefix(value)
                                  case .regex: return .regex(value)
                                  default: return .exact(value)
                                  }
                              },
                              allowMethods: list(v.allowMethods), allowHeaders: list(v.allowHeaders),
                              exposeHeaders: list(v.exposeHeaders), maxAgeSeconds: v.maxAgeSeconds,
                              allowCredentials: v.allowCredentials, unmatchedPreflights: v.unmatchedPreflights)
        }
        return a
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

    public func decodeCluster(_ c: Int32) -> ClusterSpec {
        var spec = ClusterSpec(name: Self.string(clusterName(c)),
                    endpoints: clusterEndpoints(c).map {
                        let e = endpoint($0)
                        return EndpointSpec(address: Array(e.address), port: e.port, weight: e.weight, id: e.id)
                    },
                    connectTimeoutMs: clusterConnectTimeoutMs(c), loadBalancer: decodeLoadBalancer(c),
                    connectionPool: clusterConnectionPool(c))
        spec.tls = decodeClusterTLS(c)
        spec.http2 = clusterHTTP2(c)
        spec.useClientProtocol = clusterUsesClientProtocol(c)
        return spec
    }

    func decodeLoadBalancer(_ c: Int32) -> LoadBalancerSpec {
        let v = clusterLoadBalancer(c)
        var key: HashKeySpec?
        switch v.hashKey {
        case .none: key = nil
        case .header: key = .header(Self.string(v.hashName))
        case .cookie: key = .cookie(name: Self.string(v.hashName), path: v.cookiePath.map(Self.string), ttlSeconds: v.cookieTtlSeconds)
        case .sourceIP: key = .sourceIP
        case .queryParameter: key = .queryParameter(Self.string(v.hashName))
        }
        return LoadBalancerSpec(kind: v.kind, hashKey: key, tableSize: v.tableSize)
    }
}

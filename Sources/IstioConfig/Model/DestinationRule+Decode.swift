// Strict decoding of DestinationRule specs.

extension DestinationRule {
    init(_ spec: YObject) {
        host = spec.string("host") ?? ""
        trafficPolicy = spec["trafficPolicy"]?.trafficPolicy()
        subsets = spec.list("subsets").compactMap { s in
            guard let o = s.object(["name", "labels", "trafficPolicy"]) else { return nil }
            return Subset(name: o.string("name") ?? "", labels: o.stringMap("labels"),
                          trafficPolicy: o["trafficPolicy"]?.trafficPolicy())
        }
        exportTo = spec.strings("exportTo")
        workloadSelector = spec["workloadSelector"].flatMap { w in
            w.object(["matchLabels"]).map { $0.stringMap("matchLabels") }
        }
    }
}

extension YValue {
    func trafficPolicy() -> TrafficPolicy? {
        guard let o = object(["loadBalancer", "connectionPool", "outlierDetection", "tls", "portLevelSettings",
                              "tunnel", "proxyProtocol", "retryBudget"]) else { return nil }
        let ports: [TrafficPolicy.PortTrafficPolicy] = o.list("portLevelSettings").compactMap { p in
            guard let po = p.object(["port", "loadBalancer", "connectionPool", "outlierDetection", "tls"]) else {
                return nil
            }
            return .init(port: po["port"]?.portSelector(), loadBalancer: po["loadBalancer"]?.loadBalancer(),
                         connectionPool: po["connectionPool"]?.connectionPool(),
                         outlierDetection: po["outlierDetection"]?.outlierDetection(), tls: po["tls"]?.clientTLS())
        }
        let tunnel = o["tunnel"].flatMap { t -> TrafficPolicy.Tunnel? in
            guard let to = t.object(["protocol", "targetHost", "targetPort"]) else { return nil }
            return .init(proto: to.string("protocol"), targetHost: to.string("targetHost"),
                         targetPort: to.uint32("targetPort"))
        }
        let proxyProtocol = o["proxyProtocol"].flatMap { p in p.object(["version"]).map { $0.string("version") ?? "" } }
        let budget = o["retryBudget"].flatMap { b -> TrafficPolicy.RetryBudget? in
            guard let bo = b.object(["percent", "minRetryConcurrency", "budgetInterval"]) else { return nil }
            return .init(percent: bo["percent"]?.percent(), minRetryConcurrency: bo.uint32("minRetryConcurrency"),
                         budgetInterval: bo["budgetInterval"]?.duration())
        }
        return TrafficPolicy(loadBalancer: o["loadBalancer"]?.loadBalancer(),
                             connectionPool: o["connectionPool"]?.connectionPool(),
                             outlierDetection: o["outlierDetection"]?.outlierDetection(), tls: o["tls"]?.clientTLS(),
                             portLevelSettings: ports, tunnel: tunnel, proxyProtocol: proxyProtocol,
                             retryBudget: budget)
    }

    func loadBalancer() -> LoadBalancerSettings? {
        guard let o = object(["simple", "consistentHash", "localityLbSetting", "zoneAwareLbSetting",
                              "warmupDurationSecs", "warmup"]) else { return nil }
        let hash = o["consistentHash"].flatMap { h -> LoadBalancerSettings.ConsistentHash? in
            guard let ho = h.object(["httpHeaderName", "httpCookie", "useSourceIp", "httpQueryParameterName",
                                     "ringHash", "maglev", "minimumRingSize"]) else { return nil }
            let cookie = ho["httpCookie"].flatMap { c -> LoadBalancerSettings.Cookie? in
                guard let co = c.object(["name", "path", "ttl", "attributes"]) else { return nil }
                let attrs: [(name: String, value: String)] = co.list("attributes").compactMap { a in
                    guard let ao = a.object(["name", "value"]) else { return nil }
                    return (ao.string("name") ?? "", ao.string("value") ?? "")
                }
                return .init(name: co.string("name") ?? "", path: co.string("path"), ttl: co["ttl"]?.duration(),
                             attributes: attrs)
            }
            return .init(httpHeaderName: ho.string("httpHeaderName"), httpCookie: cookie,
                         useSourceIp: ho.bool("useSourceIp"), httpQueryParameterName: ho.string("httpQueryParameterName"),
                         // `ringHash: {}` / `maglev: {}` choose the algorithm: present with 0.
                         ringHashMinimumRingSize: ho["ringHash"].flatMap { $0.object(["minimumRingSize"]) }
                             .map { $0.uint32("minimumRingSize") ?? 0 },
                         maglevTableSize: ho["maglev"].flatMap { $0.object(["tableSize"]) }.map { $0.uint32("tableSize") ?? 0 },
                         minimumRingSize: ho.uint32("minimumRingSize"))
        }
        func locality(_ v: YValue?) -> LoadBalancerSettings.LocalityLB? {
            guard let v, let lo = v.object(["enabled", "distribute", "failover", "failoverPriority",
                                            "minClusterSize"]) else { return nil }
            let distribute: [(from: String, to: [String: UInt32])] = lo.list("distribute").compactMap { d in
                guard let dobj = d.object(["from", "to"]) else { return nil }
                var to: [String: UInt32] = [:]
                for (k, w) in dobj["to"]?.entries() ?? [] { to[k] = w.uint32() ?? 0 }
                return (dobj.string("from") ?? "", to)
            }
            let failover: [(from: String, to: String)] = lo.list("failover").compactMap { f in
                guard let fo = f.object(["from", "to"]) else { return nil }
                return (fo.string("from") ?? "", fo.string("to") ?? "")
            }
            return .init(enabled: lo.bool("enabled"), distribute: distribute, failover: failover,
                         failoverPriority: lo.strings("failoverPriority"), minClusterSize: lo.uint32("minClusterSize"))
        }
        let warmup = o["warmup"].flatMap { w -> LoadBalancerSettings.Warmup? in
            guard let wo = w.object(["duration", "minimumPercent", "aggression"]) else { return nil }
            return .init(duration: wo["duration"]?.duration(),
                         minimumPercent: wo["minimumPercent"].flatMap { $0.percentOrNumber() },
                         aggression: wo["aggression"].flatMap { $0.percentOrNumber() })
        }
        return LoadBalancerSettings(simple: o.string("simple"), consistentHash: hash,
                                    localityLbSetting: locality(o["localityLbSetting"]),
                                    zoneAwareLbSetting: locality(o["zoneAwareLbSetting"]),
                                    warmupDurationSecs: o["warmupDurationSecs"]?.duration(), warmup: warmup)
    }

    /// A DoubleValue, written either as a number or as `{value: N}`.
    func percentOrNumber() -> Double? {
        if case .mapping = node { return percent()?.value }
        return double()
    }

    func connectionPool() -> ConnectionPoolSettings? {
        guard let o = object(["tcp", "http"]) else { return nil }
        let tcp = o["tcp"].flatMap { t -> ConnectionPoolSettings.TCP? in
            guard let to = t.object(["maxConnections", "connectTimeout", "tcpKeepalive", "maxConnectionDuration",
                                     "idleTimeout"]) else { return nil }
            let ka = to["tcpKeepalive"].flatMap { k -> ConnectionPoolSettings.Keepalive? in
                guard let ko = k.object(["probes", "time", "interval"]) else { return nil }
                return .init(probes: ko.uint32("probes"), time: ko["time"]?.duration(),
                             interval: ko["interval"]?.duration())
            }
            return .init(maxConnections: to.int32("maxConnections"), connectTimeout: to["connectTimeout"]?.duration(),
                         tcpKeepalive: ka, maxConnectionDuration: to["maxConnectionDuration"]?.duration(),
                         idleTimeout: to["idleTimeout"]?.duration())
        }
        let http = o["http"].flatMap { h -> ConnectionPoolSettings.HTTP? in
            guard let ho = h.object(["http1MaxPendingRequests", "http2MaxRequests", "maxRequestsPerConnection",
                                     "maxRetries", "idleTimeout", "h2UpgradePolicy", "useClientProtocol",
                                     "maxConcurrentStreams", "http2KeepAlive"]) else { return nil }
            let ka = ho["http2KeepAlive"].flatMap { $0.object(["interval", "timeout"]) }
            return .init(http1MaxPendingRequests: ho.int32("http1MaxPendingRequests"),
                         http2MaxRequests: ho.int32("http2MaxRequests"),
                         maxRequestsPerConnection: ho.int32("maxRequestsPerConnection"),
                         maxRetries: ho.int32("maxRetries"), idleTimeout: ho["idleTimeout"]?.duration(),
                         h2UpgradePolicy: ho.string("h2UpgradePolicy"), useClientProtocol: ho.bool("useClientProtocol"),
                         maxConcurrentStreams: ho.int32("maxConcurrentStreams"),
                         http2KeepAliveInterval: ka?["interval"]?.duration(),
                         http2KeepAliveTimeout: ka?["timeout"]?.duration(), hasHTTP2KeepAlive: ka != nil)
        }
        return ConnectionPoolSettings(tcp: tcp, http: http)
    }

    func outlierDetection() -> OutlierDetection? {
        guard let o = object(["consecutive5xxErrors", "consecutiveGatewayErrors", "consecutiveErrors",
                              "splitExternalLocalOriginErrors", "consecutiveLocalOriginFailures", "interval",
                              "baseEjectionTime", "maxEjectionPercent", "minHealthPercent",
                              "outlierDetectionHttpErrorCodes"]) else { return nil }
        return OutlierDetection(
            consecutive5xxErrors: o["consecutive5xxErrors"].flatMap { $0.uint32Value() },
            consecutiveGatewayErrors: o["consecutiveGatewayErrors"].flatMap { $0.uint32Value() },
            consecutiveErrors: o.int32("consecutiveErrors"),
            splitExternalLocalOriginErrors: o.bool("splitExternalLocalOriginErrors"),
            consecutiveLocalOriginFailures: o["consecutiveLocalOriginFailures"].flatMap { $0.uint32Value() },
            interval: o["interval"]?.duration(), baseEjectionTime: o["baseEjectionTime"]?.duration(),
            maxEjectionPercent: o.int32("maxEjectionPercent"), minHealthPercent: o.int32("minHealthPercent"),
            outlierDetectionHttpErrorCodes: o.list("outlierDetectionHttpErrorCodes").compactMap { $0.uint32() })
    }

    /// A UInt32Value wrapper: a number or `{value: N}`.
    func uint32Value() -> UInt32? {
        if case .mapping = node { return object(["value"])?.uint32("value") }
        return uint32()
    }

    func clientTLS() -> ClientTLSSettings? {
        guard let o = object(["mode", "clientCertificate", "privateKey", "caCertificates", "credentialName",
                              "subjectAltNames", "sni", "insecureSkipVerify", "caCrl"]) else { return nil }
        return ClientTLSSettings(mode: o.string("mode"), clientCertificate: o.string("clientCertificate"),
                                 privateKey: o.string("privateKey"), caCertificates: o.string("caCertificates"),
                                 credentialName: o.string("credentialName"), subjectAltNames: o.strings("subjectAltNames"),
                                 sni: o.string("sni"), insecureSkipVerify: o.bool("insecureSkipVerify"),
                                 caCrl: o.string("caCrl"))
    }
}

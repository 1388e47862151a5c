// DestinationRule and ServiceEntry validation (§7.2), and what ingressd ignores of them.

extension Checks {
    mutating func destinationRule(_ dr: DestinationRule) {
        resourceName(false)
        if dr.host == "*" {
            error("spec.host", "invalid destination host *")
        } else if let e = HostName.validateWildcardDomain(dr.host) {
            error("spec.host", e)
        }
        if let tp = dr.trafficPolicy { trafficPolicy(tp, path: "spec.trafficPolicy") }
        var names: Set<String> = []
        for (n, s) in dr.subsets.enumerated() {
            let p = "spec.subsets[\(n)]"
            if s.name.isEmpty { error("\(p).name", "subset name cannot be empty") }
            else if !HostName.isDNS1123Label(s.name) { error("\(p).name", "subset name is invalid: \(s.name)") }
            if names.contains(s.name) { error("\(p).name", "duplicate subset names: \(s.name)") }
            names.insert(s.name)
            labels("\(p).labels", s.labels)
            if let tp = s.trafficPolicy { trafficPolicy(tp, path: "\(p).trafficPolicy") }
        }
        if dr.workloadSelector != nil {
            if !dr.exportTo.isEmpty && dr.exportTo != ["."] {
                error("spec.exportTo", "destination rule with workload selector cannot have exportTo beyond current namespace")
            }
            note("spec.workloadSelector", "workloadSelector selects sidecars; ingressd applies the rule as if it had none")
        }
        exportTo("spec.exportTo", dr.exportTo)
    }

    mutating func trafficPolicy(_ tp: TrafficPolicy, path p: String) {
        if tp.isEmpty { error(p, "traffic policy must have at least one field") }
        if tp.tunnel != nil && tp.proxyProtocol != nil { error(p, "tunnel and proxyProtocol must not be set together") }
        if let lb = tp.loadBalancer { loadBalancer(lb, path: "\(p).loadBalancer") }
        if let cp = tp.connectionPool { connectionPool(cp, path: "\(p).connectionPool") }
        if let od = tp.outlierDetection { outlierDetection(od, path: "\(p).outlierDetection") }
        if let tls = tp.tls { clientTLS(tls, path: "\(p).tls") }
        for (n, pl) in tp.portLevelSettings.enumerated() {
            let pp = "\(p).portLevelSettings[\(n)]"
            if pl.port == nil || pl.port!.number == 0 { error("\(pp).port", "portTrafficPolicy must have valid port") }
            if pl.loadBalancer == nil && pl.connectionPool == nil && pl.outlierDetection == nil && pl.tls == nil {
                error(pp, "port traffic policy must have at least one field")
            }
            if let lb = pl.loadBalancer { loadBalancer(lb, path: "\(pp).loadBalancer") }
            if let cp = pl.connectionPool { connectionPool(cp, path: "\(pp).connectionPool") }
            if let od = pl.outlierDetection { outlierDetection(od, path: "\(pp).outlierDetection") }
            if let tls = pl.tls { clientTLS(tls, path: "\(pp).tls") }
        }
        if let t = tp.tunnel {
            if let proto = t.proto, proto != "CONNECT" && proto != "POST" {
                error("\(p).tunnel.protocol", "tunnel protocol must be \"CONNECT\" or \"POST\"")
            }
            unsupported("\(p).tunnel")
        }
        if let v = tp.proxyProtocol {
            if v != "V1" && v != "V2" { error("\(p).proxyProtocol.version", "proxy protocol version is invalid: \(v)") }
            unsupported("\(p).proxyProtocol")
        }
        if let rb = tp.retryBudget {
            if let pc = rb.percent?.value, pc < 0 || pc > 100 {
                error("\(p).retryBudget.percent", "percentage \(goFloat(pc)) is not in range 0..100")
            }
            duration("\(p).retryBudget.budgetInterval", rb.budgetInterval)
            unsupported("\(p).retryBudget")
        }
    }

    mutating func loadBalancer(_ lb: LoadBalancerSettings, path p: String) {
        let simple = ["UNSPECIFIED", "LEAST_CONN", "RANDOM", "PASSTHROUGH", "ROUND_ROBIN", "LEAST_REQUEST"]
        if let s = lb.simple, !simple.contains(s) {
            error("\(p).simple", "invalid load balancer \"\(s)\" (use \(simple.joined(separator: ", ")))")
        }
        if let h = lb.consistentHash {
            let hp = "\(p).consistentHash"
            if let name = h.httpHeaderName, name.isEmpty || !name.utf8.allSatisfy(isTokenChar) {
                warning("\(hp).httpHeaderName", "header name \(name.debugDescription) is not a valid header name: no request carries it, so requests are balanced at random")
            }
            if let c = h.httpCookie {
                if c.name.isEmpty { error("\(hp).httpCookie", "name required for HttpCookie") }
                duration("\(hp).httpCookie.ttl", c.ttl.flatMap { $0.nanoseconds == 0 ? nil : $0 })
                var seen: Set<String> = []
                for a in c.attributes where !seen.insert(a.name).inserted {
                    error("\(hp).httpCookie.attributes", "duplicate cookie attribute name: \(a.name)")
                }
                if !c.attributes.isEmpty { unsupported("\(hp).httpCookie.attributes") }
            }
            if h.minimumRingSize != nil && (h.ringHashMinimumRingSize != nil || h.maglevTableSize != nil) {
                error(hp, "only one of MinimumRingSize or Maglev/Ringhash can be specified")
            }
            if let t = h.maglevTableSize {
                if t == 0 { error("\(hp).maglev.tableSize", "tableSize must be set for maglev") }
                else if t >= 5_000_011 { error("\(hp).maglev.tableSize", "tableSize must be less than 5000011 for maglev") }
                else if !isPrime(t) { error("\(hp).maglev.tableSize", "tableSize must be a prime number for maglev") }
            }
        }
        if lb.localityLbSetting != nil && lb.zoneAwareLbSetting != nil {
            error(p, "only one of localityLbSetting and zoneAwareLbSetting can be set")
        }
        if let w = lb.warmup {
            if w.duration == nil { error("\(p).warmup.duration", "duration is required") }
            duration("\(p).warmup.duration", w.duration)
            if let m = w.minimumPercent, m > 100 { error("\(p).warmup.minimumPercent", "minimumPercent value should be less than or equal to 100") }
            if let a = w.aggression, a <= 0 { error("\(p).warmup.aggression", "aggression should be greater than 0") }
        }
        duration("\(p).warmupDurationSecs", lb.warmupDurationSecs)
        // simple and consistentHash are served (Proxy/LoadBalancer.swift); these are not.
        if lb.localityLbSetting != nil { unsupported("\(p).localityLbSetting") }
        if lb.zoneAwareLbSetting != nil { unsupported("\(p).zoneAwareLbSetting") }
        if lb.warmup != nil { unsupported("\(p).warmup") }
        if lb.warmupDurationSecs != nil { unsupported("\(p).warmupDurationSecs") }
    }

    mutating func connectionPool(_ cp: ConnectionPoolSettings, path p: String) {
        if cp.tcp == nil && cp.http == nil { error(p, "connection pool must have at least one field") }
        if let t = cp.tcp {
            if let m = t.maxConnections, m < 0 { error("\(p).tcp.maxConnections", "max connections must be non-negative") }
            duration("\(p).tcp.connectTimeout", t.connectTimeout)
            duration("\(p).tcp.maxConnectionDuration", t.maxConnectionDuration)
            if let idle = t.idleTimeout, idle.nanoseconds != 0 { duration("\(p).tcp.idleTimeout", idle) }
            if let ka = t.tcpKeepalive {
                duration("\(p).tcp.tcpKeepalive.time", ka.time)
                duration("\(p).tcp.tcpKeepalive.interval", ka.interval)
            }
            // connectTimeout and maxConnections are served (Proxy/CircuitBreakers.swift).
            if t.tcpKeepalive != nil { unsupported("\(p).tcp.tcpKeepalive") }
            if t.maxConnectionDuration != nil { unsupported("\(p).tcp.maxConnectionDuration") }
            if t.idleTimeout != nil { unsupported("\(p).tcp.idleTimeout") }
        }
        if let h = cp.http {
            let hp = "\(p).http"
            let checks: [(Int32?, String)] = [(h.http1MaxPendingRequests, "http1 max pending requests"),
                                              (h.http2MaxRequests, "http2 max requests"),
                                              (h.maxRequestsPerConnection, "max requests per connection"),
                                              (h.maxRetries, "max retries"),
                                              (h.maxConcurrentStreams, "max concurrent streams")]
            for (v, what) in checks where (v ?? 0) < 0 {
                error(hp, "\(what) must be non-negative")
            }
            if h.useClientProtocol == true && h.h2UpgradePolicy == "UPGRADE" {
                error(hp, "use client protocol must not be true when H2UpgradePolicy is UPGRADE")
            }
            if h.hasHTTP2KeepAlive {
                if h.http2KeepAliveInterval == nil { error("\(hp).http2KeepAlive", "http2 keepalive interval is required") }
                if h.http2KeepAliveTimeout == nil { error("\(hp).http2KeepAlive", "http2 keepalive timeout is required") }
            }
            if let idle = h.idleTimeout, idle.nanoseconds != 0 { duration("\(hp).idleTimeout", idle) }
            // http1MaxPendingRequests, http2MaxRequests, maxRequestsPerConnection, maxRetries and
            // idleTimeout are served (Proxy/CircuitBreakers.swift); h2UpgradePolicy is compiled
            // into the cluster's upstream protocol (ConfigCompiler/TrafficPolicies.swift);
            // maxConcurrentStreams bounds the streams per HTTP/2 upstream connection
            // (Proxy/Engine+HTTP2Upstream.swift), useClientProtocol picks the upstream protocol
            // per request (Proxy/Engine+Forward.swift), and http2KeepAlive PINGs each HTTP/2
            // upstream connection (Proxy/Engine+HTTP2Keepalive.swift).
        }
    }

    mutating func outlierDetection(_ od: OutlierDetection, path p: String) {
        if let v = od.maxEjectionPercent, v < 0 || v > 100 {
            error("\(p).maxEjectionPercent", "percentage \(v) is not in range 0..100")
        }
        if let v = od.minHealthPercent, v < 0 || v > 100 {
            error("\(p).minHealthPercent", "percentage \(v) is not in range 0..100")
        }
        if od.consecutiveLocalOriginFailures != nil && od.splitExternalLocalOriginErrors != true {
            error(p, "outlier detection consecutive local origin failures is specified, but split external local origin errors is set to false")
        }
        duration("\(p).interval", od.interval)
        duration("\(p).baseEjectionTime", od.baseEjectionTime)
        for (n, c) in od.outlierDetectionHttpErrorCodes.enumerated() where c < 100 || c > 599 {
            error("\(p).outlierDetectionHttpErrorCodes[\(n)]", "HTTP status \(c) is not in range 100-599")
        }
        // The supervisor implements consecutive 5xx / gateway errors (Supervisor+Health.swift).
        if od.splitExternalLocalOriginErrors == true { unsupported("\(p).splitExternalLocalOriginErrors") }
        if od.consecutiveLocalOriginFailures != nil { unsupported("\(p).consecutiveLocalOriginFailures") }
        if !od.outlierDetectionHttpErrorCodes.isEmpty { unsupported("\(p).outlierDetectionHttpErrorCodes") }
    }

    /// Istio's ValidateTLS for ClientTLSSettings, in its order, plus what ingressd cannot do:
    /// ISTIO_MUTUAL (mesh-only) is an error; `caCrl` with insecureSkipVerify is an error (Istio
    /// accepts it and then checks nothing: revoked upstreams would be accepted); a client
    /// certificate under SIMPLE is a note (it is not sent).
    mutating func clientTLS(_ t: ClientTLSSettings, path p: String) {
        let mode = (t.mode ?? "DISABLE").uppercased()
        if !["DISABLE", "SIMPLE", "MUTUAL", "ISTIO_MUTUAL"].contains(mode) {
            error("\(p).mode", "invalid TLS mode \"\(t.mode ?? "")\" (use DISABLE, SIMPLE, MUTUAL or ISTIO_MUTUAL)")
        }
        if mode == "ISTIO_MUTUAL" {
            error("\(p).mode", "ISTIO_MUTUAL is mesh-only (certificates issued by istiod to sidecars); a standalone ingressd cannot originate it, and Istio's gateway without a mesh CA cannot connect either: use SIMPLE, or MUTUAL with clientCertificate/privateKey or credentialName")
        }
        if t.insecureSkipVerify == true {
            if mode == "SIMPLE" && (t.caCertificates != nil || t.credentialName != nil || !t.subjectAltNames.isEmpty) {
                error(p, "cannot specify CaCertificates or CredentialName or SubjectAltNames when InsecureSkipVerify is set true")
            }
            if mode == "MUTUAL" && (t.caCertificates != nil || !t.subjectAltNames.isEmpty) {
                error(p, "cannot specify CaCertificates or SubjectAltNames when InsecureSkipVerify is set true")
            }
            if (mode == "SIMPLE" || mode == "MUTUAL") && t.caCrl != nil {
                error("\(p).caCrl", "cannot specify CaCrl when InsecureSkipVerify is set true (the upstream's certificate is not verified, so revoked ones would be accepted)")
            }
        }
        let originates = mode == "SIMPLE" || mode == "MUTUAL"
        if mode == "SIMPLE" && t.credentialName == nil && (t.clientCertificate != nil || t.privateKey != nil) {
            note(p, "clientCertificate and privateKey are used by MUTUAL only: SIMPLE sends no client certificate")
        }
        if originates && t.credentialName != nil {
            if t.clientCertificate != nil || t.caCertificates != nil || t.privateKey != nil || t.caCrl != nil {
                error(p, "cannot specify client certificates or CA certificate or CA CRL If credentialName is set")
            }
            return  // the credential holds the certificates
        }
        if mode == "MUTUAL" {
            if t.clientCertificate == nil { error(p, "client certificate required for mutual tls") }
            if t.privateKey == nil { error(p, "private key required for mutual tls") }
        }
    }

    func isPrime(_ n: UInt32) -> Bool {
        if n < 2 { return false }
        var d: UInt32 = 2
        while d * d <= n {
            if n % d == 0 { return false }
            d += 1
        }
        return true
    }

    // MARK: ServiceEntry

    mutating func serviceEntry(_ se: ServiceEntry) {
        resourceName(false)
        if se.hosts.isEmpty { error("spec.hosts", "service entry must have at least one host") }
        let resolution = se.effectiveResolution
        _ = hostCount(se.hosts, path: "spec.hosts")
        for (n, h) in se.hosts.enumerated() {
            let p = "spec.hosts[\(n)]"
            if h == "*" { error(p, "invalid host *"); continue }
            if HostName.isPartialWildcard(h) { warning(p, "partial wildcard \"\(h)\" not allowed"); continue }
            if let e = HostName.validateWildcardDomain(h) { error(p, e) }
        }
        for (n, a) in se.addresses.enumerated() {
            let p = "spec.addresses[\(n)]"
            let parts = a.split(separator: "/", maxSplits: 1).map(String.init)
            if !HostName.isIPAddress(parts[0]) || (parts.count == 2 && Int(parts[1]) == nil) {
                error(p, "\(a) is not a valid IP address or CIDR")
            } else if parts.count == 2 && resolution != "NONE" && resolution != "STATIC" {
                error(p, "CIDR addresses are allowed only for NONE/STATIC resolution types")
            }
        }
        var portNames: Set<String> = []
        var portNumbers: Set<UInt32> = []
        let protocols = ["HTTP", "HTTPS", "GRPC", "GRPC-WEB", "HTTP2", "MONGO", "TCP", "TLS", "REDIS", "MYSQL", "UDP"]
        for (n, port) in se.ports.enumerated() {
            let p = "spec.ports[\(n)]"
            if port.name.isEmpty || !HostName.isDNS1123Label(port.name) { error("\(p).name", "invalid port name: \(port.name)") }
            if portNames.contains(port.name) { error("\(p).name", "service entry port name \"\(port.name)\" already defined") }
            portNames.insert(port.name)
            if portNumbers.contains(port.number) { error("\(p).number", "service entry port \(port.number) already defined") }
            portNumbers.insert(port.number)
            self.port("\(p).number", port.number)
            if let t = port.targetPort { self.port("\(p).targetPort", t) }
            if let proto = port.proto, !protocols.contains(proto.uppercased()) {
                error("\(p).protocol", "unsupported protocol: \(proto)")
            }
        }
        if se.workloadSelector != nil {
            if !se.endpoints.isEmpty { error("spec", "only one of WorkloadSelector or Endpoints is allowed in Service Entry") }
            warning("spec.workloadSelector", "workloadSelector needs Kubernetes; \(unsupportedMessage)")
        }
        switch resolution {
        case "NONE":
            if !se.endpoints.isEmpty { error("spec.endpoints", "no endpoints should be provided for resolution type none") }
            warning("spec.resolution", "resolution NONE forwards to the original destination, which an ingress does not have; this entry gives no endpoints")
        case "STATIC":
            for (n, ep) in se.endpoints.enumerated() where !ep.address.hasPrefix("unix://") {
                if ep.address.isEmpty { error("spec.endpoints[\(n)].address", "address is required") }
                else if !HostName.isIPAddress(ep.address) {
                    error("spec.endpoints[\(n)].address", "endpoint address \"\(ep.address)\" is not a valid IP address")
                }
            }
        case "DNS", "DNS_ROUND_ROBIN":
            if se.endpoints.isEmpty {
                for h in se.hosts where h.hasPrefix("*") {
                    error("spec.hosts", "hosts must be FQDN or contain only prefix wildcards if no endpoints are provided for resolution mode \(resolution), \(h)")
                }
            }
            for (n, ep) in se.endpoints.enumerated() where !ep.address.hasPrefix("unix://") {
                if ep.address.isEmpty { error("spec.endpoints[\(n)].address", "address is required") }
                else if !HostName.isIPAddress(ep.address) && HostName.validateDomain(ep.address) != nil {
                    error("spec.endpoints[\(n)].address", "endpoint address \"\(ep.address)\" is not a valid FQDN or an IP address")
                }
            }
            if resolution == "DNS_ROUND_ROBIN" && se.endpoints.count > 1 {
                error("spec.endpoints", "there must only be 0 or 1 endpoint for resolution mode DNS_ROUND_ROBIN")
            }
        case "DYNAMIC_DNS":
            warning("spec.resolution", "resolution DYNAMIC_DNS is \(unsupportedMessage)")
        default:
            error("spec.resolution", "unsupported resolution type \(se.resolution ?? "")")
        }
        for (n, ep) in se.endpoints.enumerated() {
            let p = "spec.endpoints[\(n)]"
            if ep.address.hasPrefix("unix://") {
                if !ep.ports.isEmpty { error("\(p).ports", "unix endpoint \(ep.address) must not include ports") }
                if se.ports.count != 1 { error(p, "exactly 1 service port required for unix endpoints") }
                warning("\(p).address", "unix socket endpoints are \(unsupportedMessage)")
            }
            for name in ep.ports.keys.sorted() {
                if !portNames.contains(name) { error("\(p).ports.\(name)", "endpoint port \(name) is not defined by the service entry") }
                self.port("\(p).ports.\(name)", ep.ports[name]!)
            }
            labels("\(p).labels", ep.labels)
        }
        let nonHTTP = se.ports.contains { !["HTTP", "HTTPS", "GRPC", "GRPC-WEB", "HTTP2", "TLS"].contains(($0.proto ?? "TCP").uppercased()) }
        if se.hosts.count > 1 && nonHTTP && se.addresses.isEmpty {
            error("spec.hosts", "multiple hosts provided with non-HTTP, non-TLS ports")
        }
        if let loc = se.location, !["MESH_EXTERNAL", "MESH_INTERNAL"].contains(loc) {
            error("spec.location", "invalid location \"\(loc)\" (use MESH_EXTERNAL or MESH_INTERNAL)")
        }
        exportTo("spec.exportTo", se.exportTo)
    }
}

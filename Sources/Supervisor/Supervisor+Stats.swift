import ConfigCompiler
import RouteTable
import SharedMemory

// Statistics for the admin endpoint (DESIGN.md §7): `/stats/prometheus`, `/stats`, `/clusters`.
// Built on request from `retired` (the folded slots of dead workers) plus every worker slot.

extension Supervisor {
    /// A reaped worker's counters move into `retired`, and its slot is zeroed for its successor:
    /// totals never lose a dead worker's requests, and never count them twice.
    func foldSlot(_ slot: Int) {
        let ws = region.workerSlot(slot)
        retired.add(slot: ws, gauges: false, endpointIds: endpointIds.allIds)
        ws.zeroStats()
    }

    func statsSnapshot() -> StatsTotals {
        var t = retired
        let live = Set(liveSlots)
        for s in 0..<region.maxWorkers {
            t.add(slot: region.workerSlot(s), gauges: live.contains(s), endpointIds: endpointIds.allIds)
        }
        return t
    }

    func clusterName(_ key: UInt64) -> String {
        if key == StatKey.unknown { return "unknown" }
        if key == StatKey.overflow { return "overflow" }
        return clusterNames[key] ?? "cluster-\(String(key, radix: 16))"
    }

    // MARK: Prometheus

    func prometheusText() -> String {
        let t = statsSnapshot()
        var out = PrometheusWriter()
        let clusters = t.clusters.map { (name: clusterName($0.key), totals: $0.value) }.sorted { $0.name < $1.name }

        out.family("istio_requests_total", "counter", "Requests by destination, response code and response flags.")
        // gRPC requests (HTTP/2, content-type application/grpc…) count with
        // request_protocol="grpc" and their grpc-status, as Istio's stats do; others with "http"
        // and an empty grpc_response_status.
        for c in clusters {
            for (key, n) in c.totals.responses.sorted(by: { $0.key < $1.key }) {
                let other = key == ResponseKey.other
                let grpc = other ? nil : ResponseKey.grpcStatus(key)
                let code = other ? "other" : String(ResponseKey.status(key))
                let flags = other ? "-" : ResponseFlags.text(ResponseKey.flags(key))
                out.sample("istio_requests_total", istioLabels(c.name, proto: grpc == nil ? "http" : "grpc")
                           + [("response_code", code), ("grpc_response_status", grpc.map { String($0) } ?? ""),
                              ("response_flags", flags)], n)
            }
        }
        let protocols = ["http", "grpc"]
        out.family("istio_request_duration_milliseconds", "histogram", "Request duration (head parsed to response complete).")
        for c in clusters {
            for k in 0..<2 where c.totals.durations[k].count > 0 {
                out.histogram("istio_request_duration_milliseconds", istioLabels(c.name, proto: protocols[k]), c.totals.durations[k],
                              bounds: StatBuckets.durationBoundsUs.map { Double($0) / 1000 }, sumScale: 1.0 / 1000)
            }
        }
        out.family("istio_request_bytes", "histogram", "Request sizes (head and body).")
        for c in clusters {
            for k in 0..<2 where c.totals.requestSizes[k].count > 0 {
                out.histogram("istio_request_bytes", istioLabels(c.name, proto: protocols[k]), c.totals.requestSizes[k],
                              bounds: StatBuckets.bytesBounds.map { Double($0) }, sumScale: 1)
            }
        }
        out.family("istio_response_bytes", "histogram", "Response sizes (head and body) sent to clients.")
        for c in clusters {
            for k in 0..<2 where c.totals.responseSizes[k].count > 0 {
                out.histogram("istio_response_bytes", istioLabels(c.name, proto: protocols[k]), c.totals.responseSizes[k],
                              bounds: StatBuckets.bytesBounds.map { Double($0) }, sumScale: 1)
            }
        }

        // TCP-route connections (Istio's TCP metrics, request_protocol="tcp"). Connections that
        // reached no cluster count under destination_service="unknown".
        let tcp = clusters.filter { $0.totals.hasTCP }
        out.family("istio_tcp_connections_opened_total", "counter", "TCP-route client connections opened.")
        for c in tcp {
            out.sample("istio_tcp_connections_opened_total", istioLabels(c.name, proto: "tcp") + [("response_flags", "-")], c.totals.tcpOpened)
        }
        out.family("istio_tcp_connections_closed_total", "counter", "TCP-route client connections closed, by response flag.")
        for c in tcp {
            for (slot, n) in c.totals.tcpClosed.enumerated() where n > 0 || slot == 0 {
                let flags = slot == 0 ? "-" : ResponseFlags.text(1 << UInt16(slot - 1))
                out.sample("istio_tcp_connections_closed_total", istioLabels(c.name, proto: "tcp") + [("response_flags", flags)], n)
            }
        }
        out.family("istio_tcp_received_bytes_total", "counter", "Bytes received from clients on TCP routes.")
        for c in tcp {
            out.sample("istio_tcp_received_bytes_total", istioLabels(c.name, proto: "tcp") + [("response_flags", "-")], c.totals.tcpReceivedBytes)
        }
        out.family("istio_tcp_sent_bytes_total", "counter", "Bytes sent to clients on TCP routes.")
        for c in tcp {
            out.sample("istio_tcp_sent_bytes_total", istioLabels(c.name, proto: "tcp") + [("response_flags", "-")], c.totals.tcpSentBytes)
        }

        // Envoy cluster stats as Istio exposes them (envoy_cluster_*{cluster_name}).
        let upstream = clusters.filter { $0.name != "unknown" }
        func clusterCounter(_ name: String, _ help: String, _ type: String = "counter", _ value: (ClusterTotals) -> UInt64) {
            out.family(name, type, help)
            for c in upstream { out.sample(name, [("cluster_name", c.name)], value(c.totals)) }
        }
        clusterCounter("envoy_cluster_upstream_rq_total", "Requests routed to the cluster.") { $0.rqTotal }
        clusterCounter("envoy_cluster_upstream_cx_total", "Upstream connections opened.") { $0.cxTotal }
        clusterCounter("envoy_cluster_upstream_cx_active", "Upstream connections open now.", "gauge") { $0.cxActive }
        clusterCounter("envoy_cluster_upstream_cx_connect_fail", "Upstream connect failures and timeouts.") { $0.cxConnectFail }
        clusterCounter("envoy_cluster_upstream_rq_retry", "Retries dispatched.") { $0.rqRetry }
        clusterCounter("envoy_cluster_upstream_rq_retry_success", "Requests answered after a retry.") { $0.rqRetrySuccess }
        clusterCounter("envoy_cluster_upstream_rq_retry_limit_exceeded", "Requests that failed with no retries left.") { $0.rqRetryLimitExceeded }
        clusterCounter("envoy_cluster_upstream_cx_overflow", "New connections wanted at connectionPool.tcp.maxConnections.") { $0.cxOverflow }
        clusterCounter("envoy_cluster_upstream_rq_pending_overflow", "Requests refused (503 UO) at http1MaxPendingRequests or http2MaxRequests.") { $0.rqPendingOverflow }
        clusterCounter("envoy_cluster_upstream_rq_retry_overflow", "Retries not made at connectionPool.http.maxRetries.") { $0.rqRetryOverflow }
        // TLS to upstreams: clusters that attempted a handshake (DestinationRule tls).
        let tlsClusters = upstream.filter { $0.totals.sslHandshake > 0 || $0.totals.sslConnectionError > 0 }
        for (name, help, value) in [
            ("envoy_cluster_ssl_handshake", "TLS handshakes with the cluster's endpoints completed.", \ClusterTotals.sslHandshake),
            ("envoy_cluster_ssl_session_reused", "Of those, handshakes that resumed a session.", \ClusterTotals.sslSessionReused),
            ("envoy_cluster_ssl_connection_error", "TLS handshakes with the cluster's endpoints that failed.", \ClusterTotals.sslConnectionError),
        ] {
            out.family(name, "counter", help)
            for c in tlsClusters { out.sample(name, [("cluster_name", c.name)], c.totals[keyPath: value]) }
        }
        // Circuit-breaker state now (1 = at the limit), for clusters with limits.
        let breakers = breakerStates()
        for (field, name, help) in [(0, "cx_open", "connections"), (1, "rq_pending_open", "pending requests"), (2, "rq_retry_open", "retries"), (3, "rq_open", "requests in flight")] {
            let family = "envoy_cluster_circuit_breakers_default_" + name
            out.family(family, "gauge", "1 while the cluster's \(help) are at their circuit-breaker limit.")
            for b in breakers { out.sample(family, [("cluster_name", b.name)], b.open[field] ? 1 : 0) }
        }
        out.family("envoy_cluster_upstream_rq_time", "histogram", "Request time as seen by the gateway, per cluster.")
        for c in upstream where c.totals.durationUs.count > 0 {
            out.histogram("envoy_cluster_upstream_rq_time", [("cluster_name", c.name)], c.totals.durationUs,
                          bounds: StatBuckets.durationBoundsUs.map { Double($0) / 1000 }, sumScale: 1.0 / 1000)
        }
        let membership = clusterMembership()
        out.family("envoy_cluster_membership_total", "gauge", "Endpoints of the cluster.")
        for m in membership { out.sample("envoy_cluster_membership_total", [("cluster_name", m.name)], UInt64(m.total)) }
        out.family("envoy_cluster_membership_healthy", "gauge", "Endpoints neither ejected nor failing health checks.")
        for m in membership { out.sample("envoy_cluster_membership_healthy", [("cluster_name", m.name)], UInt64(m.healthy)) }
        out.family("envoy_cluster_outlier_detection_ejections_active", "gauge", "Endpoints ejected by outlier detection now.")
        for m in membership { out.sample("envoy_cluster_outlier_detection_ejections_active", [("cluster_name", m.name)], UInt64(m.ejected)) }
        out.family("envoy_cluster_outlier_detection_ejections_total", "counter", "Ejections by outlier detection.")
        for m in membership { out.sample("envoy_cluster_outlier_detection_ejections_total", [("cluster_name", m.name)], m.ejectionsTotal) }

        // The process.
        let p = t.process
        func processStat(_ name: String, _ type: String, _ help: String, _ v: UInt64) {
            out.family(name, type, help)
            out.sample(name, [], v)
        }
        processStat("ingressd_workers", "gauge", "Worker processes running.", UInt64(liveSlots.count))
        processStat("ingressd_worker_restarts_total", "counter", "Workers replaced after dying or hanging.", UInt64(restarts.reduce(0, +)))
        processStat("ingressd_config_reloads_total", "counter", "Configurations published by reloads.", reloads)
        processStat("ingressd_config_reload_failures_total", "counter", "Reloads rejected (the old configuration kept serving).", reloadFailures)
        processStat("ingressd_config_generation", "gauge", "Generation of the route table in effect.", generation)
        processStat("ingressd_downstream_cx_total", "counter", "Client connections accepted.", p[WorkerSlotField.connectionsAccepted] ?? 0)
        processStat("ingressd_downstream_cx_active", "gauge", "Client connections open now.", p[WorkerSlotField.connectionsActive] ?? 0)
        processStat("ingressd_downstream_rq_total", "counter", "Requests parsed.", p[WorkerSlotField.requestsTotal] ?? 0)
        processStat("ingressd_downstream_rq_bad_total", "counter", "Requests refused by the HTTP codec.", p[WorkerSlotField.badRequests] ?? 0)
        processStat("ingressd_access_log_lines_total", "counter", "Access-log lines written.", p[WorkerSlotField.accessLogLines] ?? 0)
        processStat("ingressd_access_log_dropped_total", "counter", "Access-log lines dropped (log buffer full or unwritable).", p[WorkerSlotField.accessLogDropped] ?? 0)
        // Envoy's listener TLS stats, one sample per listener as Istio exposes them
        // (listener_address="0.0.0.0_443"): the HTTPS/TLS listeners of the configuration, and
        // any other port that counted something (a listener since removed or changed).
        let tlsPorts = Set(config.spec.listeners.filter { $0.proto == .https || $0.proto == .tls }.map(\.port))
        let listeners = t.listeners.filter { !$0.value.isZero || tlsPorts.contains($0.key) }
            .merging(tlsPorts.map { ($0, ListenerTotals()) }) { a, _ in a }
            .sorted { $0.key < $1.key }
        for (k, (name, help)) in [
            ("envoy_listener_ssl_handshake", "TLS handshakes completed on downstream connections."),
            ("envoy_listener_ssl_connection_error", "Downstream TLS connections that failed (not TLS, malformed hello, failed handshake, TLS error)."),
            ("envoy_listener_ssl_fail_verify_no_cert", "Handshakes that failed for want of a valid client certificate."),
            ("envoy_listener_ssl_session_reused", "TLS sessions resumed."),
            ("envoy_listener_no_filter_chain_match", "Connections on HTTPS/TLS ports whose SNI matched no server or passthrough route (closed)."),
        ].enumerated() {
            out.family(name, "counter", help)
            for (port, l) in listeners { out.sample(name, [("listener_address", listenerAddress(port))], l.counts[k]) }
        }
        // Envoy's HTTP connection manager stats for HTTP/2 clients.
        processStat("envoy_http_downstream_cx_http2_total", "counter", "Client connections that spoke HTTP/2.", p[WorkerSlotField.h2Connections] ?? 0)
        processStat("envoy_http_downstream_rq_http2_total", "counter", "HTTP/2 requests (streams).", p[WorkerSlotField.h2Streams] ?? 0)
        processStat("envoy_http_downstream_cx_protocol_error", "counter", "HTTP/2 client connections closed for a protocol error (GOAWAY sent).", p[WorkerSlotField.h2ProtocolErrors] ?? 0)
        return out.text
    }

    /// Envoy's stat name of a listener's address: "0.0.0.0_443" (the default dual-stack
    /// listener is reported as Istio's gateway listeners are), "10.0.0.1_443", "[__1]_443".
    func listenerAddress(_ port: UInt16) -> String {
        guard let a = options.bind else { return "0.0.0.0_\(port)" }
        if case .v6 = a { return "[" + String(a.description.map { $0 == ":" ? "_" : $0 }) + "]_\(port)" }
        return "\(a)_\(port)"
    }

    /// Istio's standard labels for a cluster "outbound|PORT|SUBSET|FQDN" (or "unknown").
    func istioLabels(_ cluster: String, proto: String = "http") -> [(String, String)] {
        let parts = cluster.split(separator: "|", omittingEmptySubsequences: false).map(String.init)
        var service = "unknown", name = "unknown", namespace = "unknown", version = "unknown"
        if parts.count == 4 {
            service = parts[3]
            let labels = service.split(separator: ".").map(String.init)
            name = labels.first ?? service
            if service.hasSuffix(".svc.cluster.local") && labels.count >= 5 { namespace = labels[1] }
            if !parts[2].isEmpty { version = parts[2] }
        }
        return [("reporter", "source"), ("source_workload", "ingressd"), ("source_workload_namespace", options.namespace),
                ("destination_service", service), ("destination_service_name", name),
                ("destination_service_namespace", namespace), ("destination_version", version),
                ("destination_cluster", cluster), ("request_protocol", proto),
                ("connection_security_policy", "unknown")]
    }

    struct Membership {
        var name: String
        var total: Int
        var healthy: Int
        var ejected: Int
        var ejectionsTotal: UInt64
    }

    /// Clusters with connectionPool limits: whether each breaker is at its limit (gateway-wide
    /// counts summed over the worker slots, StatsLayout.swift "circuit breakers").
    func breakerStates() -> [(name: String, open: [Bool])] {
        config.spec.clusters.compactMap { c -> (name: String, open: [Bool])? in
            let p = c.connectionPool
            let limits = [p.maxConnections, p.maxPendingRequests, p.maxRetries, p.maxRequests]
            guard limits.contains(where: { $0 != ConnectionPoolSpec.unlimited }) else { return nil }
            let b = region.findBreaker(key: StatKey.hash(c.name))
            let fields = [BreakerLayout.connections, BreakerLayout.pending, BreakerLayout.retries, BreakerLayout.requests]
            let open = (0..<4).map { k in
                limits[k] != ConnectionPoolSpec.unlimited && b >= 0 && region.breakerCount(b, fields[k]) >= UInt64(limits[k])
            }
            return (c.name, open)
        }.sorted { $0.name < $1.name }
    }

    func clusterMembership() -> [Membership] {
        config.spec.clusters.map { c in
            var m = Membership(name: c.name, total: c.endpoints.count, healthy: 0, ejected: 0, ejectionsTotal: 0)
            for e in c.endpoints {
                let h = endpointHealth[e.id]
                if (h?.ejectedUntilNs ?? 0) != 0 { m.ejected += 1 }
                m.ejectionsTotal += h?.ejectionsTotal ?? 0
                if (publishedHealth[e.id] ?? 0) == 0 && (h?.ejectedUntilNs ?? 0) == 0 && checker.state(e.id)?.healthy != false {
                    m.healthy += 1
                }
            }
            return m
        }.sorted { $0.name < $1.name }
    }

    // MARK: JSON

    func statsJSON() -> String {
        let t = statsSnapshot()
        var process: [(String, String)] = processCounterFields.map { ($0.name, String(t.process[$0.offset] ?? 0)) }
        process += [
            ("workers", String(liveSlots.count)),
            ("workerRestarts", String(restarts.reduce(0, +))),
            ("reloads", String(reloads)),
            ("reloadFailures", String(reloadFailures)),
            ("generation", String(generation)),
        ]
        let clusters = t.clusters.map { (name: clusterName($0.key), totals: $0.value) }.sorted { $0.name < $1.name }
        let rows = clusters.map { c -> String in
            let responses = c.totals.responses.sorted { $0.key < $1.key }.map { key, n in
                let other = key == ResponseKey.other
                let grpc = other ? nil : ResponseKey.grpcStatus(key)
                return JSONText.object([
                    ("code", other ? "null" : String(ResponseKey.status(key))),
                    ("flags", JSONText.string(other ? "-" : ResponseFlags.text(ResponseKey.flags(key)))),
                    ("grpc_status", grpc.map { String($0) } ?? "null"),
                    ("count", String(n)),
                ])
            }
            func hist(_ h: Histogram, _ bounds: [String]) -> String {
                var cumulative: UInt64 = 0
                let buckets = h.buckets.enumerated().map { i, n -> String in
                    cumulative &+= n
                    return JSONText.object([("le", JSONText.string(i < bounds.count ? bounds[i] : "+Inf")), ("count", String(cumulative))])
                }
                return JSONText.object([("count", String(h.count)), ("sum", String(h.sum)), ("buckets", JSONText.array(buckets))])
            }
            return JSONText.object([
                ("name", JSONText.string(c.name)),
                ("upstream_rq_total", String(c.totals.rqTotal)),
                ("upstream_cx_total", String(c.totals.cxTotal)),
                ("upstream_cx_active", String(c.totals.cxActive)),
                ("upstream_cx_connect_fail", String(c.totals.cxConnectFail)),
                ("upstream_rq_retry", String(c.totals.rqRetry)),
                ("upstream_rq_retry_success", String(c.totals.rqRetrySuccess)),
                ("upstream_rq_retry_limit_exceeded", String(c.totals.rqRetryLimitExceeded)),
                ("upstream_cx_overflow", String(c.totals.cxOverflow)),
                ("upstream_rq_pending_overflow", String(c.totals.rqPendingOverflow)),
                ("upstream_rq_retry_overflow", String(c.totals.rqRetryOverflow)),
                ("ssl_handshake", String(c.totals.sslHandshake)),
                ("ssl_session_reused", String(c.totals.sslSessionReused)),
                ("ssl_connection_error", String(c.totals.sslConnectionError)),
                ("responses", JSONText.array(responses)),
                ("request_duration_us", hist(c.totals.durationUs, StatBuckets.durationBoundsUs.map(String.init))),
                ("request_bytes", hist(c.totals.requestBytes, StatBuckets.bytesBounds.map(String.init))),
                ("response_bytes", hist(c.totals.responseBytes, StatBuckets.bytesBounds.map(String.init))),
                ("tcp_connections_opened", String(c.totals.tcpOpened)),
                ("tcp_connections_closed", String(c.totals.tcpClosed.reduce(0, &+))),
                ("tcp_received_bytes", String(c.totals.tcpReceivedBytes)),
                ("tcp_sent_bytes", String(c.totals.tcpSentBytes)),
            ])
        }
        return JSONText.object(process + [("clusters", JSONText.array(rows))])
    }

    /// Every cluster of the configuration in effect and every endpoint: health, why, counters.
    func clustersJSON(nowNs: UInt64) -> String {
        let t = statsSnapshot()
        let membership = Dictionary(uniqueKeysWithValues: clusterMembership().map { ($0.name, $0) })
        let rows = config.spec.clusters.sorted { $0.name < $1.name }.map { c -> String in
            let endpoints = c.endpoints.map { e -> String in
                let h = endpointHealth[e.id]
                let probe = checker.state(e.id)
                var state = "healthy"
                var why: [String] = []
                if let h, h.ejectedUntilNs != 0 {
                    state = "ejected"
                    why.append("outlier detection: \(h.reason); returns in \(msText(h.ejectedUntilNs &- nowNs))")
                }
                if let probe, !probe.healthy {
                    state = state == "healthy" ? "unhealthy" : state
                    why.append("health check failed \(probe.failures) time(s): \(probe.last)")
                }
                if state != "healthy" && (publishedHealth[e.id] ?? 0) == 0 {
                    why.append("below minHealthPercent: the cluster uses every endpoint (panic)")
                }
                let counters = t.endpoints[e.id] ?? EndpointTotals()
                var fields: [(String, String)] = [
                    ("address", JSONText.string(IPAddress(bytes: e.address).withPort(e.port))),
                    ("id", String(e.id)),
                    ("weight", String(e.weight)),
                    ("health", JSONText.string(state)),
                    ("reason", JSONText.string(why.joined(separator: "; "))),
                    ("rq_total", String(counters.rqTotal)),
                    ("rq_error", String(counters.rq5xx)),
                    ("ejections_total", String(h?.ejectionsTotal ?? 0)),
                ]
                if let probe {
                    fields.append(("health_check", JSONText.object([
                        ("healthy", probe.healthy ? "true" : "false"), ("last", JSONText.string(probe.last)),
                        ("checks", String(probe.checks)), ("consecutive_failures", String(probe.failures)),
                    ])))
                }
                return JSONText.object(fields)
            }
            let totals = t.clusters[StatKey.hash(c.name)] ?? ClusterTotals()
            let m = membership[c.name]
            var fields: [(String, String)] = [
                ("name", JSONText.string(c.name)),
                ("membership_total", String(c.endpoints.count)),
                ("membership_healthy", String(m?.healthy ?? 0)),
                ("outlier_detection_ejections_active", String(m?.ejected ?? 0)),
                ("upstream_rq_total", String(totals.rqTotal)),
                ("upstream_cx_total", String(totals.cxTotal)),
                ("upstream_cx_active", String(totals.cxActive)),
                ("upstream_cx_connect_fail", String(totals.cxConnectFail)),
            ]
            if let od = c.outlier {
                fields.append(("outlier_detection", JSONText.object([
                    ("consecutive5xxErrors", String(od.consecutive5xxErrors)),
                    ("consecutiveGatewayErrors", String(od.consecutiveGatewayErrors)),
                    ("intervalMs", String(od.intervalMs)), ("baseEjectionTimeMs", String(od.baseEjectionTimeMs)),
                    ("maxEjectionPercent", String(od.maxEjectionPercent)), ("minHealthPercent", String(od.minHealthPercent)),
                ])))
            }
            fields.append(("endpoints", JSONText.array(endpoints)))
            return JSONText.object(fields)
        }
        return JSONText.object([("generation", String(generation)), ("clusters", JSONText.array(rows))])
    }
}

/// Prometheus text exposition format 0.0.4.
struct PrometheusWriter {
    var text = ""

    mutating func family(_ name: String, _ type: String, _ help: String) {
        text += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
    }

    mutating func sample(_ name: String, _ labels: [(String, String)], _ value: UInt64) {
        text += name + Self.labelText(labels) + " \(value)\n"
    }

    mutating func histogram(_ name: String, _ labels: [(String, String)], _ h: Histogram, bounds: [Double], sumScale: Double) {
        var cumulative: UInt64 = 0
        for (i, n) in h.buckets.enumerated() {
            cumulative &+= n
            let le = i < bounds.count ? Self.number(bounds[i]) : "+Inf"
            text += "\(name)_bucket" + Self.labelText(labels + [("le", le)]) + " \(cumulative)\n"
        }
        text += "\(name)_sum" + Self.labelText(labels) + " \(Self.number(Double(h.sum) * sumScale))\n"
        text += "\(name)_count" + Self.labelText(labels) + " \(cumulative)\n"
    }

    static func number(_ v: Double) -> String {
        v == v.rounded() && abs(v) < 1e15 ? String(Int64(v)) : String(v)
    }

    static func labelText(_ labels: [(String, String)]) -> String {
        guard !labels.isEmpty else { return "" }
        return "{" + labels.map { "\($0.0)=\"\(escape($0.1))\"" }.joined(separator: ",") + "}"
    }

    static func escape(_ v: String) -> String {
        var out = ""
        for ch in v {
            switch ch {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.append(ch)
            }
        }
        return out
    }
}

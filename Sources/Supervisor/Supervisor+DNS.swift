#if canImport(Glibc)
import Glibc
#endif

// DNS re-resolution (DESIGN.md §5): endpoints that came from DNS (ServiceEntry `resolution: DNS`,
// or a destination host resolved as written) are resolved again every `dnsRefreshNs`. The
// configuration is recompiled from the same files; only a changed image is published, so an
// unchanged answer costs nothing downstream. A file edited but not yet reloaded is not picked up
// here (that stays SIGHUP's or --watch's job): a refresh is published only when the routes and
// cluster names are unchanged and only endpoints differ.
extension Supervisor {
    /// Minimum interval between re-resolutions (Envoy's default dns_refresh_rate is 5 s; a
    /// gateway's upstreams rarely move faster than every 30 s, and each refresh re-reads files).
    /// `INGRESSD_DNS_REFRESH_MS` overrides it (tests; a resolver with short TTLs).
    static let dnsRefreshNs: UInt64 = {
        if let v = getenv("INGRESSD_DNS_REFRESH_MS"), let ms = UInt64(String(cString: v)), ms > 0 {
            return ms * 1_000_000
        }
        return 30_000_000_000
    }()

    func refreshDNSIfDue(nowNs: UInt64) {
        guard config.usesDNS, pending == nil, !reloadInProgress,
              nowNs &- lastDNSRefreshNs >= Supervisor.dnsRefreshNs else { return }
        lastDNSRefreshNs = nowNs
        guard case .valid(let fresh) = ConfigPipeline.load(paths: options.configPaths, namespace: options.namespace),
              fresh.spec.listeners == config.spec.listeners,
              fresh.spec.clusters.map(\.name) == config.spec.clusters.map(\.name),
              fresh.spec.clusters != config.spec.clusters else { return }
        Log.info("dns refresh: resolved endpoints changed; publishing")
        pending = fresh
        pendingSinceNs = nowNs
        tryPublish(nowNs: nowNs)
    }
}

#if canImport(Glibc)
import Glibc
#endif
import ConfigCompiler

// DNS re-resolution (DESIGN.md §5): endpoints that came from DNS (ServiceEntry `resolution: DNS`,
// or a destination host resolved as written) are resolved again every `dnsRefreshNs`, and on
// every reload. Lookups run in child processes (AsyncResolver.swift) while the loop keeps
// serving the admin endpoint, health checks, respawns and watchdog pings; when the batch is
// done, the configuration is compiled again from the resources held in memory with the new
// answers. A refresh never reads the files: a file edited but not yet reloaded is not picked
// up here (that stays SIGHUP's or --watch's job), and a refresh publishes only when endpoints
// changed.
//
// A lookup that times out or fails (the DNS server does not answer) keeps the name's previous
// addresses; a name that does not exist (NXDOMAIN) has none.

/// The addresses last resolved for every name. The supervisor's loop alone touches it; the
/// @unchecked Sendable only satisfies CompileOptions.resolve's signature.
final class NameCache: @unchecked Sendable {
    private(set) var addresses: [String: [[UInt8]]] = [:]

    /// The cached answer (none for a name never answered). Never blocks: what the loop
    /// compiles with.
    func cached(_ name: String) -> [[UInt8]] { addresses[name] ?? [] }

    /// Resolves now, blocking, and remembers the answer: the start-up only.
    func resolveNow(_ name: String) -> [[UInt8]] {
        let a = systemResolve(name)
        addresses[name] = a
        return a
    }

    /// Applies one batch; returns the names whose addresses changed and, for the log, those
    /// that kept their previous addresses because the lookup timed out or failed.
    func apply(_ answers: [String: LookupAnswer]) -> (changed: [String], kept: [(String, String)]) {
        var changed: [String] = []
        var kept: [(String, String)] = []
        for (name, answer) in answers.sorted(by: { $0.key < $1.key }) {
            let new: [[UInt8]]
            switch answer {
            case .addresses(let a): new = a
            case .noSuchName: new = []
            case .failed(let why): kept.append((name, why)); continue
            case .timedOut: kept.append((name, "timed out after \(msText(AsyncResolver.timeoutNs))")); continue
            }
            if addresses[name] != new { changed.append(name) }
            addresses[name] = new
        }
        return (changed, kept)
    }
}

/// What the lookup batch in flight is for.
enum DNSJob {
    /// A reload waiting for its names: compiled and published when they are answered.
    case reload(ParsedConfig)
    /// The periodic refresh of the configuration in effect.
    case refresh
}

extension Supervisor {
    /// Minimum interval between re-resolutions (Envoy's default dns_refresh_rate is 5 s; a
    /// gateway's upstreams rarely move faster than every 30 s).
    /// `INGRESSD_DNS_REFRESH_MS` overrides it (tests; a resolver with short TTLs).
    static let dnsRefreshNs: UInt64 = {
        if let v = getenv("INGRESSD_DNS_REFRESH_MS"), let ms = UInt64(String(cString: v)), ms > 0 {
            return ms * 1_000_000
        }
        return 30_000_000_000
    }()

    func refreshDNSIfDue(nowNs: UInt64) {
        guard config.usesDNS, pending == nil, !reloadInProgress, !resolver.isBusy,
              nowNs &- lastDNSRefreshNs >= Supervisor.dnsRefreshNs else { return }
        lastDNSRefreshNs = nowNs
        dnsJob = .refresh
        resolver.start(config.dnsNames, nowNs: nowNs)
    }

    /// Starts resolving the names of a parsed reload; it is compiled when they are answered.
    /// Returns false when it needs no name (the caller compiles it at once).
    func resolveThenReload(_ parsed: ParsedConfig, nowNs: UInt64) -> Bool {
        // The names a configuration needs do not depend on the answers: a trial compile
        // against the cache lists them.
        guard case .valid(let trial) = ConfigPipeline.compile(parsed, resolve: dnsCache.cached),
              !trial.dnsNames.isEmpty else { return false }
        Log.info("reload: resolving \(trial.dnsNames.count) name(s)")
        dnsJob = .reload(parsed)
        resolver.start(trial.dnsNames, nowNs: nowNs)
        lastDNSRefreshNs = nowNs
        return true
    }

    /// Collects a finished batch and acts on it.
    func dnsTick(nowNs: UInt64) {
        guard let answers = resolver.tick(nowNs: nowNs), let job = dnsJob else { return }
        dnsJob = nil
        let (changed, kept) = dnsCache.apply(answers)
        for (name, why) in kept {
            Log.warning("dns: \(name): \(why); keeping its \(dnsCache.cached(name).count) previous address(es)")
        }
        switch job {
        case .reload(let parsed):
            compileAndPublish(parsed, nowNs: nowNs)
        case .refresh:
            guard !changed.isEmpty, pending == nil, !reloadInProgress, let model = config.model,
                  case .valid(let fresh) = ConfigPipeline.compile(model, endpointIds: endpointIds, resolve: dnsCache.cached),
                  fresh.spec.listeners == config.spec.listeners,
                  fresh.spec.clusters.map(\.name) == config.spec.clusters.map(\.name),
                  fresh.spec.clusters != config.spec.clusters else { return }
            Log.info("dns refresh: resolved endpoints changed (\(changed.joined(separator: ", "))); publishing")
            pending = fresh
            pendingSinceNs = nowNs
            tryPublish(nowNs: nowNs)
        }
    }
}

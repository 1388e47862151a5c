import RouteTable
import SharedMemory

/// Stable endpoint ids across reloads (DESIGN.md §2: the health array and the per-endpoint
/// stats are indexed by them). The compiler numbers endpoints 0, 1, 2… per configuration; the
/// supervisor renumbers them so that the same (cluster name, address, port) keeps its id for
/// the life of the process: ejections, probe results and counters follow the endpoint, not its
/// position in a table.
///
/// Ids are never reused while they fit; when a configuration needs more ids than the health
/// array holds, every id is reassigned from 0 (`reassigned` says so: the caller resets health
/// state, since old ids then name other endpoints).
public final class EndpointIds {
    let capacity: Int
    private var ids: [String: UInt32] = [:]
    private var next: UInt32 = 0
    /// Set by `assign` when it had to start over.
    private(set) var reassigned = false

    public init(capacity: Int = EndpointStats.capacity) { self.capacity = capacity }

    /// Every id handed out so far.
    var allIds: Range<UInt32> { 0..<next }

    static func key(_ cluster: String, _ e: EndpointSpec) -> String {
        "\(cluster)|\(e.address.map(String.init).joined(separator: "."))|\(e.port)"
    }

    /// Rewrites every `EndpointSpec.id` of `spec`.
    func assign(_ spec: inout TableSpec) {
        reassigned = false
        var fresh = 0
        for c in spec.clusters { for e in c.endpoints where ids[Self.key(c.name, e)] == nil { fresh += 1 } }
        if Int(next) + fresh > capacity {
            ids = [:]
            next = 0
            reassigned = true
        }
        for c in spec.clusters.indices {
            for e in spec.clusters[c].endpoints.indices {
                let k = Self.key(spec.clusters[c].name, spec.clusters[c].endpoints[e])
                if let id = ids[k] {
                    spec.clusters[c].endpoints[e].id = id
                } else {
                    // Past the capacity even after starting over: the id reads as healthy and
                    // is not counted (SharedRegion and StatsLayout ignore ids beyond capacity).
                    ids[k] = next
                    spec.clusters[c].endpoints[e].id = next
                    next += 1
                }
            }
        }
    }
}

import HTTP1
import RouteTable
import SharedMemory

// Endpoint choice per cluster: DestinationRule `trafficPolicy.loadBalancer` as compiled into the
// table (istio-semantics.md §3; Envoy's load balancers).
//
//   ROUND_ROBIN    a cursor over the cluster's schedule: endpoints interleaved by weight (smooth
//                  weighted round robin, nginx's), built when the table is loaded
//   LEAST_REQUEST  Istio's default (and LEAST_CONN): Envoy's power of two choices, two endpoints
//                  drawn at random (by weight, through the schedule), the one with fewer active
//                  requests of this worker wins (unequal weights: the lower active/weight, an
//                  approximation of Envoy's EDF over weight/(active+1))
//   RANDOM         a random schedule entry: weighted random
//   PASSTHROUGH    Envoy forwards to the original destination address; a gateway has none
//                  other than the resolved endpoints, so this is round robin over them
//   ring hash      Envoy's ketama ring: ≥ minimumRingSize entries, each endpoint's share by
//                  weight; the first entry at or after the request's hash
//   maglev         Maglev lookup table of `tableSize` entries (Envoy's weighted construction);
//                  entry hash % size
//
// Every kind skips unhealthy endpoints (`healthy(id)` false) and the retry's `avoiding`
// endpoint unless it is the only healthy one. Consistent hashing walks to the next ring/table
// entry when the hashed endpoint is unhealthy (Envoy rebuilds the ring from healthy hosts;
// walking gives the same "next endpoint on the ring" result for ring hash). A request without
// a hash key (header absent, no cookie and no TTL to generate one) is balanced at random, as
// Envoy does.
//
// Everything is built per table load (control path, allocates); `pick` allocates nothing.

/// Per-table balancing state of one worker.
struct Balancers {
    /// Per cluster: kind, cursor, and where its schedule and hash table lie.
    var kinds: UnsafeMutablePointer<LoadBalancerKind>
    var cursors: UnsafeMutablePointer<UInt32>
    var schedStart: UnsafeMutablePointer<Int32>
    var schedLen: UnsafeMutablePointer<Int32>
    /// All weights of the cluster equal (the schedule is the endpoints in order).
    var uniform: UnsafeMutablePointer<Bool>
    var tableStart: UnsafeMutablePointer<Int32>
    var tableLen: UnsafeMutablePointer<Int32>
    /// Endpoint indices of every cluster's schedule.
    var schedule: UnsafeMutablePointer<Int32>
    /// Ring hash: sorted point hashes; maglev: unused. Parallel to `tableEndpoints`.
    var ringHashes: UnsafeMutablePointer<UInt64>
    /// Ring hash / maglev: endpoint index per entry.
    var tableEndpoints: UnsafeMutablePointer<Int32>
    let clusterCount: Int

    /// A weighted schedule holds at most this many entries (weights are scaled down past it).
    static let maxSchedule: UInt64 = 4096
    /// Ring hash: Envoy's maximum ring size.
    static let maxRing = 8 * 1024 * 1024

    static var empty: Balancers { Balancers(clusters: 0, schedule: [], ring: [], table: []) }

    private init(clusters n: Int, schedule: [Int32], ring: [UInt64], table: [Int32]) {
        clusterCount = n
        kinds = .allocate(capacity: max(1, n))
        kinds.initialize(repeating: .roundRobin, count: max(1, n))
        cursors = .allocate(capacity: max(1, n))
        cursors.initialize(repeating: 0, count: max(1, n))
        schedStart = .allocate(capacity: max(1, n))
        schedStart.initialize(repeating: 0, count: max(1, n))
        schedLen = .allocate(capacity: max(1, n))
        schedLen.initialize(repeating: 0, count: max(1, n))
        uniform = .allocate(capacity: max(1, n))
        uniform.initialize(repeating: true, count: max(1, n))
        tableStart = .allocate(capacity: max(1, n))
        tableStart.initialize(repeating: 0, count: max(1, n))
        tableLen = .allocate(capacity: max(1, n))
        tableLen.initialize(repeating: 0, count: max(1, n))
        self.schedule = .allocate(capacity: max(1, schedule.count))
        for (k, v) in schedule.enumerated() { self.schedule[k] = v }
        ringHashes = .allocate(capacity: max(1, ring.count))
        for (k, v) in ring.enumerated() { ringHashes[k] = v }
        tableEndpoints = .allocate(capacity: max(1, table.count))
        for (k, v) in table.enumerated() { tableEndpoints[k] = v }
    }

    func deallocate() {
        kinds.deallocate(); cursors.deallocate(); schedStart.deallocate(); schedLen.deallocate()
        uniform.deallocate(); tableStart.deallocate(); tableLen.deallocate(); schedule.deallocate()
        ringHashes.deallocate(); tableEndpoints.deallocate()
    }

    /// Builds the state for every cluster of `reader` (control path).
    init(_ reader: TableReader) {
        let n = Int(reader.clusters.upperBound)
        var sched: [Int32] = []
        var ring: [UInt64] = []
        var table: [Int32] = []
        var info: [(LoadBalancerKind, Int32, Int32, Bool, Int32, Int32)] = []
        for c in reader.clusters {
            let lb = reader.clusterLoadBalancer(c)
            let eps = reader.clusterEndpoints(c)
            var weights: [UInt64] = []
            var keys: [UInt64] = []
            for e in eps {
                let v = reader.endpoint(e)
                weights.append(UInt64(max(v.weight, 1)))
                keys.append(Balancers.endpointKey(v))
            }
            let s = Int32(sched.count)
            let built = Balancers.weightedSchedule(weights)
            for k in built { sched.append(eps.lowerBound + Int32(k)) }
            let uni = weights.allSatisfy { $0 == weights.first }
            var ts = Int32(0), tl = Int32(0)
            if !weights.isEmpty {
                switch lb.kind {
                case .ringHash:
                    let points = Balancers.ring(keys: keys, weights: weights, minimumSize: Int(max(lb.tableSize, 1)))
                    ts = Int32(table.count)
                    tl = Int32(points.count)
                    for p in points {
                        ring.append(p.0)
                        table.append(eps.lowerBound + p.1)
                    }
                    // Keep `ringHashes` parallel to `tableEndpoints`.
                case .maglev:
                    let m = Balancers.maglev(keys: keys, weights: weights, size: Int(max(lb.tableSize, 2)))
                    // Pad `ringHashes` so indices stay parallel.
                    ts = Int32(table.count)
                    tl = Int32(m.count)
                    for k in m {
                        ring.append(0)
                        table.append(eps.lowerBound + k)
                    }
                default:
                    break
                }
            }
            info.append((lb.kind, s, Int32(built.count), uni, ts, tl))
        }
        self.init(clusters: n, schedule: sched, ring: ring, table: table)
        for (c, i) in info.enumerated() {
            kinds[c] = i.0
            schedStart[c] = i.1
            schedLen[c] = i.2
            uniform[c] = i.3
            tableStart[c] = i.4
            tableLen[c] = i.5
        }
    }

    // MARK: construction helpers (control path)

    /// Smooth weighted round robin over `weights` (scaled so the schedule has at most
    /// `maxSchedule` entries, every endpoint at least one): each endpoint appears in
    /// proportion to its weight, spread out. Equal weights: 0, 1, 2, …
    static func weightedSchedule(_ weights: [UInt64]) -> [Int] {
        guard let first = weights.first else { return [] }
        if weights.allSatisfy({ $0 == first }) { return Array(0..<weights.count) }
        var w = weights
        let sum = w.reduce(0, +)
        if sum > maxSchedule {
            w = w.map { max(1, $0 * maxSchedule / sum) }
        }
        let total = Int64(w.reduce(0, +))
        var current = [Int64](repeating: 0, count: w.count)
        var out: [Int] = []
        out.reserveCapacity(Int(total))
        for _ in 0..<total {
            var best = 0
            for i in 0..<w.count {
                current[i] += Int64(w[i])
                if current[i] > current[best] { best = i }
            }
            current[best] -= total
            out.append(best)
        }
        return out
    }

    /// A stable hash of an endpoint (address and port): the ring and maglev inputs.
    static func endpointKey(_ v: EndpointView) -> UInt64 {
        var h = hashBytes(v.address)
        h = mix(h ^ UInt64(v.port))
        return h
    }

    /// Ring hash (Envoy's ketama): about `minimumSize` points (at least one per endpoint,
    /// more when weights need them), each endpoint's share proportional to its weight; sorted
    /// by hash. Returns (point hash, endpoint offset in the cluster).
    static func ring(keys: [UInt64], weights: [UInt64], minimumSize: Int) -> [(UInt64, Int32)] {
        let sum = weights.reduce(0, +)
        let minWeight = weights.min()!
        // Every endpoint gets ≥ 1 point: scale so that the lightest one has at least one.
        var target = max(minimumSize, keys.count)
        let needed = Int((sum + minWeight - 1) / minWeight)
        target = min(max(target, needed), maxRing)
        var points: [(UInt64, Int32)] = []
        points.reserveCapacity(target + keys.count)
        for (i, key) in keys.enumerated() {
            let count = max(1, Int((UInt64(target) * weights[i] + sum - 1) / sum))
            for j in 0..<count {
                points.append((mix(key &+ UInt64(j) &* 0x9E37_79B9_7F4A_7C15), Int32(i)))
            }
        }
        points.sort { $0.0 < $1.0 || ($0.0 == $1.0 && $0.1 < $1.1) }
        return points
    }

    /// Maglev lookup table of `size` entries (Envoy's weighted construction: an endpoint of
    /// weight w takes a turn every max/w rounds). `size` should be prime (the DestinationRule
    /// default 65537 is); a permutation that cycles short is completed by linear probing.
    static func maglev(keys: [UInt64], weights: [UInt64], size: Int) -> [Int32] {
        let m = UInt64(size)
        var table = [Int32](repeating: -1, count: size)
        let maxWeight = weights.max()!
        let offset = keys.map { $0 % m }
        let skip = keys.map { mix($0 ^ 0x5851_F42D_4C95_7F2D) % (m - 1) + 1 }
        var next = [UInt64](repeating: 0, count: keys.count)
        var targetWeight = [UInt64](repeating: 0, count: keys.count)
        var filled = 0
        var iteration: UInt64 = 1
        while filled < size {
            for i in 0..<keys.count where filled < size {
                if iteration * weights[i] < targetWeight[i] { continue }
                targetWeight[i] += maxWeight
                var c = Int((offset[i] &+ skip[i] &* next[i]) % m)
                var probes = 0
                while table[c] >= 0 {
                    next[i] &+= 1
                    probes += 1
                    c = probes < size ? Int((offset[i] &+ skip[i] &* next[i]) % m) : (c + 1) % size
                }
                table[c] = Int32(i)
                next[i] &+= 1
                filled += 1
            }
            iteration += 1
        }
        return table
    }

    // MARK: request path

    /// Picks an endpoint index of cluster `c`, or -1 when none is healthy. `hash` is used by
    /// the consistent-hash kinds when `hasHash`; `random`, `random2` are fresh random numbers;
    /// `active[id]` are this worker's active requests per stable endpoint id (ids ≥
    /// `activeCapacity` count as 0).
    @inline(__always)
    func pick(_ reader: TableReader, cluster c: Int32, hash: UInt64, hasHash: Bool,
              random: UInt64, random2: UInt64,
              active: UnsafePointer<UInt32>, activeCapacity: Int,
              avoiding: UInt32, healthy: (UInt32) -> Bool) -> Int32 {
        let ci = Int(c)
        let len = Int(schedLen[ci])
        guard len > 0 else { return -1 }
        let sched = schedule + Int(schedStart[ci])
        if len == 1 {
            // One endpoint (a common cluster): every policy picks it, if it is healthy (a
            // retry's `avoiding` falls back to it anyway).
            let e = sched[0]
            return healthy(reader.endpoint(e).id) ? e : -1
        }
        switch kinds[ci] {
        case .roundRobin, .passthrough:
            let start = cursors[ci]
            cursors[ci] = start &+ 1
            return scan(reader, sched, len, from: Int(start % UInt32(len)), avoiding: avoiding, healthy: healthy)
        case .random:
            return scan(reader, sched, len, from: Int(random % UInt64(len)), avoiding: avoiding, healthy: healthy)
        case .leastRequest:
            let a = sched[Int(random % UInt64(len))]
            let b = sched[Int(random2 % UInt64(len))]
            let va = reader.endpoint(a), vb = reader.endpoint(b)
            let okA = healthy(va.id) && va.id != avoiding
            let okB = healthy(vb.id) && vb.id != avoiding
            if okA && okB {
                let ra = UInt64(Int(va.id) < activeCapacity ? active[Int(va.id)] : 0)
                let rb = UInt64(Int(vb.id) < activeCapacity ? active[Int(vb.id)] : 0)
                if uniform[ci] { return rb < ra ? b : a }
                // Lower active/weight wins (cross-multiplied).
                return rb &* UInt64(max(va.weight, 1)) < ra &* UInt64(max(vb.weight, 1)) ? b : a
            }
            if okA { return a }
            if okB { return b }
            return scan(reader, sched, len, from: Int(random % UInt64(len)), avoiding: avoiding, healthy: healthy)
        case .ringHash, .maglev:
            let tl = Int(tableLen[ci])
            guard hasHash, tl > 0 else {
                return scan(reader, sched, len, from: Int(random % UInt64(len)), avoiding: avoiding, healthy: healthy)
            }
            let ts = Int(tableStart[ci])
            var i: Int
            if kinds[ci] == .maglev {
                i = Int(hash % UInt64(tl))
            } else {
                // First point ≥ hash (wrapping to 0).
                var lo = 0, hi = tl
                let h = ringHashes + ts
                while lo < hi {
                    let mid = (lo + hi) >> 1
                    if h[mid] < hash { lo = mid + 1 } else { hi = mid }
                }
                i = lo == tl ? 0 : lo
            }
            var fallback: Int32 = -1
            // Walk on while the entry's endpoint is unhealthy (bounded; then any healthy one).
            for _ in 0..<min(tl, 256) {
                let e = tableEndpoints[ts + i]
                let v = reader.endpoint(e)
                if healthy(v.id) {
                    if v.id != avoiding || avoiding == .max { return e }
                    if fallback < 0 { fallback = e }
                }
                i += 1
                if i == tl { i = 0 }
            }
            if fallback >= 0 { return fallback }
            return scan(reader, sched, len, from: Int(random % UInt64(len)), avoiding: avoiding, healthy: healthy)
        }
    }

    /// The first usable entry of the schedule from `from` on (wrapping): healthy, and not
    /// `avoiding` unless that is the only healthy one.
    @inline(__always)
    func scan(_ reader: TableReader, _ sched: UnsafeMutablePointer<Int32>, _ len: Int, from: Int,
              avoiding: UInt32, healthy: (UInt32) -> Bool) -> Int32 {
        var fallback: Int32 = -1
        var k = from
        for _ in 0..<len {
            let e = sched[k]
            let v = reader.endpoint(e)
            if healthy(v.id) {
                if v.id != avoiding || avoiding == .max { return e }
                fallback = e
            }
            k += 1
            if k == len { k = 0 }
        }
        return fallback
    }
}

// MARK: measurement

/// For Sources/Microbench (callgrind instruction counts per endpoint choice): `n` choices in
/// cluster `cluster` of `reader` as the request path makes them: two xorshift randoms, `pick`
/// with a health-array load per endpoint tried, and the active-request count taken and given
/// back (LEAST_REQUEST bookkeeping, done for every kind). Returns a checksum.
public enum BalancerBench {
    public static func run(_ reader: TableReader, cluster: Int32, n: Int, hashed: Bool) -> Int {
        let b = Balancers(reader)
        defer { b.deallocate() }
        let capacity = 1024
        let active = UnsafeMutablePointer<UInt32>.allocate(capacity: capacity)
        active.initialize(repeating: 0, count: capacity)
        let health = UnsafeMutablePointer<UInt64>.allocate(capacity: capacity)
        health.initialize(repeating: 0, count: capacity)
        defer { active.deallocate(); health.deallocate() }
        var rng: UInt64 = 0x2545_F491_4F6C_DD1D
        var sum = 0
        for k in 0..<n {
            rng ^= rng << 13
            rng ^= rng >> 7
            rng ^= rng << 17
            let e = b.pick(reader, cluster: cluster, hash: mix(UInt64(k & 1023)), hasHash: hashed, random: rng, random2: mix(rng),
                           active: UnsafePointer(active), activeCapacity: capacity, avoiding: .max,
                           healthy: { Int($0) >= capacity || health[Int($0)] == 0 })
            let id = Int(reader.endpoint(e).id)
            if id < capacity { active[id] &+= 1 }
            sum &+= id
            // The previous choice's request ends (one in flight per endpoint on average).
            if k > 0 && active[(id &+ 1) % capacity] > 0 { active[(id &+ 1) % capacity] -= 1 }
        }
        return sum
    }
}

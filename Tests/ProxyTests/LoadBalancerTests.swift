// The per-cluster load balancers (Sources/Proxy/LoadBalancer.swift): distribution by weight,
// power of two choices, consistent-hash stability, ring and maglev sizes, and the health and
// retry (`avoiding`) filters every kind applies.

@testable import Proxy
import RouteTable
import XCTest

final class LoadBalancerTests: XCTestCase {
    /// A table image with one cluster per entry of `clusters`, kept alive by the test.
    final class Table {
        let memory: UnsafeMutableRawBufferPointer
        let reader: TableReader
        init(_ clusters: [ClusterSpec]) throws {
            let bytes = try TableImage.build(TableSpec(clusters: clusters))
            memory = .allocate(byteCount: bytes.count, alignment: 16)
            memory.copyBytes(from: bytes)
            reader = try TableReader(validating: UnsafeRawPointer(memory.baseAddress!), count: bytes.count)
        }
        deinit { memory.deallocate() }
    }

    static func endpoints(_ weights: [UInt32]) -> [EndpointSpec] {
        weights.enumerated().map { i, w in EndpointSpec(address: [10, 0, 0, UInt8(i + 1)], port: 8080, weight: w, id: UInt32(i)) }
    }

    static func cluster(_ kind: LoadBalancerKind, weights: [UInt32], hash: HashKeySpec? = nil, size: UInt32 = 0) -> ClusterSpec {
        ClusterSpec(name: "c", endpoints: endpoints(weights),
                    loadBalancer: LoadBalancerSpec(kind: kind, hashKey: hash, tableSize: size))
    }

    /// Endpoint ids picked `n` times with a deterministic random sequence.
    func picks(_ t: Table, _ b: Balancers, n: Int, hash: (Int) -> UInt64? = { _ in nil },
               active: [UInt32] = [], unhealthy: Set<UInt32> = [], avoiding: UInt32 = .max) -> [UInt32: Int] {
        var counts: [UInt32: Int] = [:]
        var state: UInt64 = 0x1234_5678
        let act = UnsafeMutablePointer<UInt32>.allocate(capacity: 64)
        defer { act.deallocate() }
        act.initialize(repeating: 0, count: 64)
        for (i, a) in active.enumerated() { act[i] = a }
        for k in 0..<n {
            state = mix(state)
            let h = hash(k)
            let e = b.pick(t.reader, cluster: 0, hash: h ?? 0, hasHash: h != nil, random: state, random2: mix(state ^ 77),
                           active: UnsafePointer(act), activeCapacity: 64, avoiding: avoiding,
                           healthy: { !unhealthy.contains($0) })
            if e < 0 { counts[.max, default: 0] += 1; continue }
            counts[t.reader.endpoint(e).id, default: 0] += 1
        }
        return counts
    }

    func testRoundRobinFollowsWeightsExactly() throws {
        let t = try Table([Self.cluster(.roundRobin, weights: [1, 3, 2])])
        let b = Balancers(t.reader)
        defer { b.deallocate() }
        let c = picks(t, b, n: 600)
        XCTAssertEqual(c, [0: 100, 1: 300, 2: 200])
        // Equal weights: plain rotation.
        let u = try Table([Self.cluster(.roundRobin, weights: [1, 1, 1])])
        let ub = Balancers(u.reader)
        defer { ub.deallocate() }
        XCTAssertEqual(picks(u, ub, n: 300), [0: 100, 1: 100, 2: 100])
    }

    func testWeightedScheduleIsSpreadAndScaled() {
        // Smooth weighted round robin: the heavy endpoint is not picked 5 times in a row.
        XCTAssertEqual(Balancers.weightedSchedule([5, 1, 1]), [0, 0, 1, 0, 2, 0, 0])
        // Huge weights are scaled to at most `maxSchedule` entries, every endpoint kept.
        let s = Balancers.weightedSchedule([1_000_000, 1, 3_000_000])
        XCTAssertLessThanOrEqual(s.count, Int(Balancers.maxSchedule) + 3)
        XCTAssertEqual(Set(s), [0, 1, 2])
    }

    func testRandomIsWeighted() throws {
        let t = try Table([Self.cluster(.random, weights: [1, 3])])
        let b = Balancers(t.reader)
        defer { b.deallocate() }
        let c = picks(t, b, n: 8000)
        XCTAssertEqual(Double(c[1]!) / 8000, 0.75, accuracy: 0.03)
    }

    func testLeastRequestPrefersTheLessBusyEndpoint() throws {
        let t = try Table([Self.cluster(.leastRequest, weights: [1, 1])])
        let b = Balancers(t.reader)
        defer { b.deallocate() }
        // Idle: both about half.
        let even = picks(t, b, n: 4000)
        XCTAssertEqual(Double(even[0]!) / 4000, 0.5, accuracy: 0.05)
        // Endpoint 0 busy: it wins only when both choices land on it (~1/4).
        let busy = picks(t, b, n: 4000, active: [5, 0])
        XCTAssertEqual(Double(busy[0] ?? 0) / 4000, 0.25, accuracy: 0.04)
        // Weighted: 3:1 and equally busy (3 vs 1 active) → active/weight equal; 0 still busier
        // per weight when it has 6.
        let w = try Table([Self.cluster(.leastRequest, weights: [3, 1])])
        let wb = Balancers(w.reader)
        defer { wb.deallocate() }
        let idle = picks(w, wb, n: 4000)
        XCTAssertGreaterThan(Double(idle[0]!) / 4000, 0.7)
        let loaded = picks(w, wb, n: 4000, active: [9, 1])   // 9/3 > 1/1: endpoint 1 preferred
        XCTAssertLessThan(loaded[0] ?? 0, idle[0]!)
    }

    func testRingHashIsStableAndAtLeastTheMinimumSize() throws {
        let spec = Self.cluster(.ringHash, weights: [1, 1, 1, 1], hash: .header("x-user"), size: 1024)
        let t = try Table([spec])
        let b = Balancers(t.reader)
        defer { b.deallocate() }
        XCTAssertGreaterThanOrEqual(Int(b.tableLen[0]), 1024)
        XCTAssertLessThanOrEqual(Int(b.tableLen[0]), 1024 + 4)
        // Same key, same endpoint, every time and after a rebuild.
        let keys = (0..<500).map { mix(UInt64($0) &* 31) }
        let first = keys.map { pickOne(t, b, hash: $0) }
        XCTAssertEqual(keys.map { pickOne(t, b, hash: $0) }, first)
        let b2 = Balancers(t.reader)
        defer { b2.deallocate() }
        XCTAssertEqual(keys.map { pickOne(t, b2, hash: $0) }, first)
        // Every endpoint gets a fair share (±40%).
        var share: [UInt32: Int] = [:]
        for id in first { share[id, default: 0] += 1 }
        for id in 0..<4 as Range<UInt32> { XCTAssertGreaterThan(share[id] ?? 0, 75, "endpoint \(id): \(share)") }
        // An endpoint leaving moves its own keys and few others (the remaining endpoints get
        // more points each, as in Envoy's ring, which is sized by the minimum over all hosts).
        var three = spec
        three.endpoints.removeLast()
        let t3 = try Table([three])
        let b3 = Balancers(t3.reader)
        defer { b3.deallocate() }
        var stayed = 0, kept = 0
        for (k, id) in zip(keys, first) where id != 3 {
            kept += 1
            if pickOne(t3, b3, hash: k) == id { stayed += 1 }
        }
        XCTAssertGreaterThan(Double(stayed) / Double(kept), 0.75)
        XCTAssertFalse(keys.contains { pickOne(t3, b3, hash: $0) == 3 })
        // A bigger minimum makes a bigger ring.
        let big = try Table([Self.cluster(.ringHash, weights: [1, 1], hash: .sourceIP, size: 5000)])
        let bb = Balancers(big.reader)
        defer { bb.deallocate() }
        XCTAssertGreaterThanOrEqual(Int(bb.tableLen[0]), 5000)
    }

    func testMaglevTableSizeWeightsAndStability() throws {
        let t = try Table([Self.cluster(.maglev, weights: [1, 2, 1], hash: .header("x-user"), size: 65537)])
        let b = Balancers(t.reader)
        defer { b.deallocate() }
        XCTAssertEqual(b.tableLen[0], 65537)
        var entries: [Int32: Int] = [:]
        for k in 0..<65537 { entries[b.tableEndpoints[Int(b.tableStart[0]) + k], default: 0] += 1 }
        XCTAssertEqual(Double(entries[1]!) / 65537, 0.5, accuracy: 0.02)
        XCTAssertEqual(Double(entries[0]!) / 65537, 0.25, accuracy: 0.02)
        let keys = (0..<300).map { mix(UInt64($0)) }
        let first = keys.map { pickOne(t, b, hash: $0) }
        XCTAssertEqual(keys.map { pickOne(t, b, hash: $0) }, first)
        // A small prime table.
        let s = try Table([Self.cluster(.maglev, weights: [1, 1], hash: .sourceIP, size: 7)])
        let sb = Balancers(s.reader)
        defer { sb.deallocate() }
        XCTAssertEqual(sb.tableLen[0], 7)
    }

    func testNoHashKeyBalancesAtRandom() throws {
        let t = try Table([Self.cluster(.ringHash, weights: [1, 1], hash: .header("x-user"), size: 1024)])
        let b = Balancers(t.reader)
        defer { b.deallocate() }
        let c = picks(t, b, n: 2000)
        XCTAssertEqual(Double(c[0]!) / 2000, 0.5, accuracy: 0.06)
    }

    func testEveryKindSkipsUnhealthyAndAvoidedEndpoints() throws {
        let kinds: [(LoadBalancerKind, HashKeySpec?, UInt32)] = [
            (.roundRobin, nil, 0), (.random, nil, 0), (.leastRequest, nil, 0), (.passthrough, nil, 0),
            (.ringHash, .header("x"), 1024), (.maglev, .header("x"), 65537),
        ]
        for (kind, key, size) in kinds {
            let t = try Table([Self.cluster(kind, weights: [1, 2, 1], hash: key, size: size)])
            let b = Balancers(t.reader)
            defer { b.deallocate() }
            let hash: (Int) -> UInt64? = { key == nil ? nil : mix(UInt64($0)) }
            let c = picks(t, b, n: 500, hash: hash, unhealthy: [1])
            XCTAssertNil(c[1], "\(kind) picked an unhealthy endpoint")
            XCTAssertEqual(c.values.reduce(0, +), 500)
            // The retry's previous endpoint is avoided while another is healthy…
            let a = picks(t, b, n: 500, hash: hash, unhealthy: [1], avoiding: 0)
            XCTAssertEqual(a, [2: 500], "\(kind)")
            // …and used when it is the only healthy one.
            XCTAssertEqual(picks(t, b, n: 50, hash: hash, unhealthy: [1, 2], avoiding: 0), [0: 50], "\(kind)")
            // None healthy: no endpoint.
            XCTAssertEqual(picks(t, b, n: 5, hash: hash, unhealthy: [0, 1, 2]), [.max: 5], "\(kind)")
        }
    }

    func testHashKeyParsing() {
        func buf(_ s: String) -> [UInt8] { Array(s.utf8) }
        let q = buf("a=1&user=bob&x"), n = buf("user"), x = buf("x"), none = buf("zz")
        q.withUnsafeBytes { qb in
            n.withUnsafeBytes { XCTAssertEqual(queryValue(qb, $0).map { Array($0) }, buf("bob")) }
            x.withUnsafeBytes { XCTAssertEqual(queryValue(qb, $0).map { Array($0) }, []) }
            none.withUnsafeBytes { XCTAssertNil(queryValue(qb, $0)) }
        }
        let c = buf("a=1; session=\"00ff\" ;b=2"), s = buf("session"), b = buf("b")
        c.withUnsafeBytes { cb in
            s.withUnsafeBytes { XCTAssertEqual(cookieValue(cb, $0).map { Array($0) }, buf("00ff")) }
            b.withUnsafeBytes { XCTAssertEqual(cookieValue(cb, $0).map { Array($0) }, buf("2")) }
            none.withUnsafeBytes { XCTAssertNil(cookieValue(cb, $0)) }
        }
    }

    func pickOne(_ t: Table, _ b: Balancers, hash: UInt64) -> UInt32 {
        let act = UnsafeMutablePointer<UInt32>.allocate(capacity: 1)
        defer { act.deallocate() }
        act.pointee = 0
        let e = b.pick(t.reader, cluster: 0, hash: hash, hasHash: true, random: 1, random2: 2,
                       active: UnsafePointer(act), activeCapacity: 0, avoiding: .max, healthy: { _ in true })
        return t.reader.endpoint(e).id
    }
}

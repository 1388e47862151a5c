// ServiceEntry (istio-semantics.md §5): ingressd's service registry (DESIGN.md §5).

public struct ServiceEntry: Sendable, Equatable {
    public var hosts: [String]
    public var addresses: [String]
    public var ports: [Port]
    /// MESH_EXTERNAL when absent.
    public var location: String?
    /// NONE when absent (enum value 0).
    public var resolution: String?
    public var endpoints: [WorkloadEntry]
    public var workloadSelector: [String: String]?
    public var exportTo: [String]
    public var subjectAltNames: [String]

    /// The resolution with Istio's default applied, upper-cased.
    public var effectiveResolution: String { (resolution ?? "NONE").uppercased() }

    public struct Port: Sendable, Equatable {
        public var number: UInt32
        public var proto: String?
        public var name: String
        public var targetPort: UInt32?
    }

    public struct WorkloadEntry: Sendable, Equatable {
        public var address: String
        /// Port name → endpoint port, overriding the service port's targetPort.
        public var ports: [String: UInt32]
        public var labels: [String: String]
        public var network: String?
        public var locality: String?
        /// Load-balancing weight; nil = 1.
        public var weight: UInt32?
        public var serviceAccount: String?
    }
}

extension ServiceEntry {
    init(_ spec: YObject) {
        hosts = spec.strings("hosts")
        addresses = spec.strings("addresses")
        ports = spec.list("ports").compactMap { p in
            guard let o = p.object(["number", "protocol", "name", "targetPort"]) else { return nil }
            return Port(number: o.uint32("number") ?? 0, proto: o.string("protocol"), name: o.string("name") ?? "",
                        targetPort: o.uint32("targetPort"))
        }
        location = spec.string("location")
        resolution = spec.string("resolution")
        endpoints = spec.list("endpoints").compactMap { e in
            guard let o = e.object(["address", "ports", "labels", "network", "locality", "weight",
                                    "serviceAccount"]) else { return nil }
            var ports: [String: UInt32] = [:]
            for (name, value) in o["ports"]?.entries() ?? [] {
                if let n = value.uint32() { ports[name] = n }
            }
            return WorkloadEntry(address: o.string("address") ?? "", ports: ports, labels: o.stringMap("labels"),
                                 network: o.string("network"), locality: o.string("locality"),
                                 weight: o.uint32("weight"), serviceAccount: o.string("serviceAccount"))
        }
        workloadSelector = spec["workloadSelector"].flatMap { w in
            w.object(["labels"]).map { $0.stringMap("labels") }
        }
        exportTo = spec.strings("exportTo")
        subjectAltNames = spec.strings("subjectAltNames")
    }
}

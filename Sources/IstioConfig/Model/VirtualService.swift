// VirtualService (istio-semantics.md §3): routing rules for hosts on gateways.

public struct VirtualService: Sendable, Equatable {
    public var hosts: [String]
    /// `ns/name`, `name` (same namespace as the VirtualService), legacy `name.ns`, or `mesh`.
    public var gateways: [String]
    public var http: [HTTPRoute]
    public var tls: [TLSRoute]
    public var tcp: [TCPRoute]
    public var exportTo: [String]
}

public struct HTTPRoute: Sendable, Equatable {
    public var name: String?
    public var match: [HTTPMatchRequest]
    public var route: [HTTPRouteDestination]
    public var redirect: HTTPRedirect?
    public var directResponse: HTTPDirectResponse?
    public var delegate: Delegate?
    public var rewrite: HTTPRewrite?
    public var timeout: Duration?
    public var retries: HTTPRetry?
    public var fault: HTTPFaultInjection?
    public var mirror: Destination?
    /// Deprecated integer form.
    public var mirrorPercent: UInt32?
    public var mirrorPercentage: Percent?
    public var mirrors: [HTTPMirrorPolicy]
    public var corsPolicy: CorsPolicy?
    public var headers: Headers?
}

public struct HTTPMatchRequest: Sendable, Equatable {
    public var name: String?
    public var uri: StringMatch?
    public var scheme: StringMatch?
    public var method: StringMatch?
    public var authority: StringMatch?
    /// In document order. A null value (`x-h:` with nothing) is kept as nil: validation
    /// reports `header match %v cannot be null`.
    public var headers: [KeyedStringMatch]
    public var withoutHeaders: [KeyedStringMatch]
    public var queryParams: [KeyedStringMatch]
    public var ignoreUriCase: Bool
    public var port: UInt32?
    public var sourceLabels: [String: String]
    public var sourceNamespace: String?
    public var gateways: [String]
    public var statPrefix: String?
}

public struct KeyedStringMatch: Sendable, Equatable {
    public var key: String
    public var match: StringMatch?
}

public struct HTTPRouteDestination: Sendable, Equatable {
    public var destination: Destination?
    /// 0 when absent (proto3 default).
    public var weight: Int32
    public var headers: Headers?
}

public struct RouteDestination: Sendable, Equatable {
    public var destination: Destination?
    public var weight: Int32
}

public struct HTTPRedirect: Sendable, Equatable {
    public var uri: String?
    public var authority: String?
    public var port: UInt32?
    /// `FROM_PROTOCOL_DEFAULT` | `FROM_REQUEST_PORT`.
    public var derivePort: String?
    public var scheme: String?
    /// 301 when absent.
    public var redirectCode: UInt32?
    public var prefixRewrite: String?
}

public struct HTTPDirectResponse: Sendable, Equatable {
    public var status: UInt32
    public var body: Body?

    public enum Body: Sendable, Equatable {
        case string(String)
        /// Base64 as written; nil bytes when it does not decode (validation reports it).
        case bytes(base64: String, decoded: [UInt8]?)
    }
}

public struct Delegate: Sendable, Equatable {
    public var name: String
    public var namespace: String?
}

public struct HTTPRewrite: Sendable, Equatable {
    public var uri: String?
    public var authority: String?
    public var uriRegexRewrite: RegexRewrite?

    public struct RegexRewrite: Sendable, Equatable {
        public var match: String?
        public var rewrite: String?
    }
}

public struct HTTPRetry: Sendable, Equatable {
    public var attempts: Int32?
    public var perTryTimeout: Duration?
    public var retryOn: String?
    public var retryRemoteLocalities: Bool?
    public var retryIgnorePreviousHosts: Bool?
    public var backoff: Duration?
}

public struct HTTPFaultInjection: Sendable, Equatable {
    public var delay: Delay?
    public var abort: Abort?

    public struct Delay: Sendable, Equatable {
        public var percentage: Percent?
        /// Deprecated integer percent (Istio ≤ 1.4 files still use it).
        public var percent: Int32?
        public var fixedDelay: Duration?
        public var exponentialDelay: Duration?
    }

    public struct Abort: Sendable, Equatable {
        public var percentage: Percent?
        /// Removed in Istio 1.5; accepted so the workshop's 1.3 files load.
        public var percent: Int32?
        public var httpStatus: Int32?
        public var grpcStatus: String?
        public var http2Error: String?
    }
}

public struct HTTPMirrorPolicy: Sendable, Equatable {
    public var destination: Destination?
    public var percentage: Percent?
}

public struct CorsPolicy: Sendable, Equatable {
    public var allowOrigins: [StringMatch]
    public var allowOrigin: [String]
    public var allowMethods: [String]
    public var allowHeaders: [String]
    public var exposeHeaders: [String]
    public var maxAge: Duration?
    public var allowCredentials: Bool?
    public var unmatchedPreflights: String?
}

public struct Headers: Sendable, Equatable {
    public var request: Operations?
    public var response: Operations?

    public struct Operations: Sendable, Equatable {
        public var set: [String: String]
        public var add: [String: String]
        public var remove: [String]
    }
}

public struct TLSRoute: Sendable, Equatable {
    public var match: [TLSMatchAttributes]
    public var route: [RouteDestination]
}

public struct TLSMatchAttributes: Sendable, Equatable {
    public var sniHosts: [String]
    public var destinationSubnets: [String]
    public var port: UInt32?
    public var sourceLabels: [String: String]
    public var gateways: [String]
    public var sourceNamespace: String?
}

public struct TCPRoute: Sendable, Equatable {
    public var match: [L4MatchAttributes]
    public var route: [RouteDestination]
}

public struct L4MatchAttributes: Sendable, Equatable {
    public var destinationSubnets: [String]
    public var port: UInt32?
    public var sourceLabels: [String: String]
    public var gateways: [String]
    public var sourceNamespace: String?
    public var sourceSubnet: String?
}

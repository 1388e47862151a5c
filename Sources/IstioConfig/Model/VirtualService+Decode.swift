// Strict decoding of VirtualService specs.
import Foundation

extension VirtualService {
    init(_ spec: YObject) {
        hosts = spec.strings("hosts")
        gateways = spec.strings("gateways")
        http = spec.list("http").compactMap(HTTPRoute.init)
        tls = spec.list("tls").compactMap { v in
            guard let o = v.object(["match", "route"]) else { return nil }
            return TLSRoute(match: o.list("match").compactMap(TLSMatchAttributes.init),
                            route: o.list("route").compactMap(RouteDestination.init))
        }
        tcp = spec.list("tcp").compactMap { v in
            guard let o = v.object(["match", "route"]) else { return nil }
            return TCPRoute(match: o.list("match").compactMap(L4MatchAttributes.init),
                            route: o.list("route").compactMap(RouteDestination.init))
        }
        exportTo = spec.strings("exportTo")
    }
}

extension HTTPRoute {
    init?(_ v: YValue) {
        guard let o = v.object([
            "name", "match", "route", "redirect", "directResponse", "delegate", "rewrite", "timeout", "retries",
            "fault", "mirror", "mirrorPercent", "mirrorPercentage", "mirrors", "corsPolicy", "headers",
        ]) else { return nil }
        name = o.string("name")
        match = o.list("match").compactMap(HTTPMatchRequest.init)
        route = o.list("route").compactMap(HTTPRouteDestination.init)
        redirect = o["redirect"].flatMap { r in
            guard let ro = r.object(["uri", "authority", "port", "derivePort", "scheme", "redirectCode",
                                     "prefixRewrite"]) else { return nil }
            return HTTPRedirect(uri: ro.string("uri"), authority: ro.string("authority"), port: ro.uint32("port"),
                                derivePort: ro.string("derivePort"), scheme: ro.string("scheme"),
                                redirectCode: ro.uint32("redirectCode"), prefixRewrite: ro.string("prefixRewrite"))
        }
        directResponse = o["directResponse"].flatMap { d in
            guard let dobj = d.object(["status", "body"]) else { return nil }
            var body: HTTPDirectResponse.Body?
            if let b = dobj["body"], let bo = b.object(["string", "bytes"]) {
                if bo.has("string") && bo.has("bytes") {
                    b.error("only one of string or bytes may be set")
                }
                if let s = bo.string("string") {
                    body = .string(s)
                } else if let b64 = bo.string("bytes") {
                    body = .bytes(base64: b64, decoded: Data(base64Encoded: b64).map { [UInt8]($0) })
                }
            }
            return HTTPDirectResponse(status: dobj.uint32("status") ?? 0, body: body)
        }
        delegate = o["delegate"].flatMap { d in
            guard let dobj = d.object(["name", "namespace"]) else { return nil }
            return Delegate(name: dobj.string("name") ?? "", namespace: dobj.string("namespace"))
        }
        rewrite = o["rewrite"].flatMap { r in
            guard let ro = r.object(["uri", "authority", "uriRegexRewrite"]) else { return nil }
            let regex = ro["uriRegexRewrite"].flatMap { x -> HTTPRewrite.RegexRewrite? in
                guard let xo = x.object(["match", "rewrite"]) else { return nil }
                return HTTPRewrite.RegexRewrite(match: xo.string("match"), rewrite: xo.string("rewrite"))
            }
            return HTTPRewrite(uri: ro.string("uri"), authority: ro.string("authority"), uriRegexRewrite: regex)
        }
        timeout = o["timeout"]?.duration()
        retries = o["retries"].flatMap { r in
            guard let ro = r.object(["attempts", "perTryTimeout", "retryOn", "retryRemoteLocalities",
                                     "retryIgnorePreviousHosts", "backoff"]) else { return nil }
            return HTTPRetry(attempts: ro.int32("attempts"), perTryTimeout: ro["perTryTimeout"]?.duration(),
                             retryOn: ro.string("retryOn"), retryRemoteLocalities: ro.bool("retryRemoteLocalities"),
                             retryIgnorePreviousHosts: ro.bool("retryIgnorePreviousHosts"),
                             backoff: ro["backoff"]?.duration())
        }
        fault = o["fault"].flatMap { f in
            guard let fo = f.object(["delay", "abort"]) else { return nil }
            let delay = fo["delay"].flatMap { d -> HTTPFaultInjection.Delay? in
                guard let dobj = d.object(["percentage", "percent", "fixedDelay", "exponentialDelay"]) else {
                    return nil
                }
                return .init(percentage: dobj["percentage"]?.percent(), percent: dobj.int32("percent"),
                             fixedDelay: dobj["fixedDelay"]?.duration(),
                             exponentialDelay: dobj["exponentialDelay"]?.duration())
            }
            let abort = fo["abort"].flatMap { a -> HTTPFaultInjection.Abort? in
                guard let ao = a.object(["percentage", "percent", "httpStatus", "grpcStatus", "http2Error"]) else {
                    return nil
                }
                return .init(percentage: ao["percentage"]?.percent(), percent: ao.int32("percent"),
                             httpStatus: ao.int32("httpStatus"), grpcStatus: ao.string("grpcStatus"),
                             http2Error: ao.string("http2Error"))
            }
            return HTTPFaultInjection(delay: delay, abort: abort)
        }
        mirror = o["mirror"]?.destination()
        mirrorPercent = o.uint32("mirrorPercent")
        mirrorPercentage = o["mirrorPercentage"]?.percent()
        mirrors = o.list("mirrors").compactMap { m in
            guard let mo = m.object(["destination", "percentage"]) else { return nil }
            return HTTPMirrorPolicy(destination: mo["destination"]?.destination(),
                                    percentage: mo["percentage"]?.percent())
        }
        corsPolicy = o["corsPolicy"].flatMap { c in
            guard let co = c.object(["allowOrigins", "allowOrigin", "allowMethods", "allowHeaders",
                                     "exposeHeaders", "maxAge", "allowCredentials", "unmatchedPreflights"])
            else { return nil }
            return CorsPolicy(allowOrigins: co.list("allowOrigins").compactMap { $0.stringMatch() },
                              allowOrigin: co.strings("allowOrigin"), allowMethods: co.strings("allowMethods"),
                              allowHeaders: co.strings("allowHeaders"), exposeHeaders: co.strings("exposeHeaders"),
                              maxAge: co["maxAge"]?.duration(), allowCredentials: co.bool("allowCredentials"),
                              unmatchedPreflights: co.string("unmatchedPreflights"))
        }
        headers = o["headers"]?.headers()
    }
}

extension YValue {
    func headers() -> Headers? {
        guard let o = object(["request", "response"]) else { return nil }
        func ops(_ v: YValue?) -> Headers.Operations? {
            guard let v, let oo = v.object(["set", "add", "remove"]) else { return nil }
            return Headers.Operations(set: oo.stringMap("set"), add: oo.stringMap("add"), remove: oo.strings("remove"))
        }
        return Headers(request: ops(o["request"]), response: ops(o["response"]))
    }

    func keyedMatches() -> [KeyedStringMatch] {
        entries().map { key, value in
            KeyedStringMatch(key: key, match: value.isNull ? nil : value.stringMatch())
        }
    }
}

extension HTTPMatchRequest {
    init?(_ v: YValue) {
        guard let o = v.object([
            "name", "uri", "scheme", "method", "authority", "headers", "withoutHeaders", "queryParams",
            "ignoreUriCase", "port", "sourceLabels", "sourceNamespace", "gateways", "statPrefix",
        ]) else { return nil }
        name = o.string("name")
        uri = o["uri"]?.stringMatch()
        scheme = o["scheme"]?.stringMatch()
        method = o["method"]?.stringMatch()
        authority = o["authority"]?.stringMatch()
        headers = o["headers"]?.keyedMatches() ?? []
        withoutHeaders = o["withoutHeaders"]?.keyedMatches() ?? []
        queryParams = o["queryParams"]?.keyedMatches() ?? []
        ignoreUriCase = o.bool("ignoreUriCase") ?? false
        port = o.uint32("port")
        sourceLabels = o.stringMap("sourceLabels")
        sourceNamespace = o.string("sourceNamespace")
        gateways = o.strings("gateways")
        statPrefix = o.string("statPrefix")
    }
}

extension HTTPRouteDestination {
    init?(_ v: YValue) {
        guard let o = v.object(["destination", "weight", "headers"]) else { return nil }
        destination = o["destination"]?.destination()
        weight = o.int32("weight") ?? 0
        headers = o["headers"]?.headers()
    }
}

extension RouteDestination {
    init?(_ v: YValue) {
        guard let o = v.object(["destination", "weight"]) else { return nil }
        destination = o["destination"]?.destination()
        weight = o.int32("weight") ?? 0
    }
}

extension TLSMatchAttributes {
    init?(_ v: YValue) {
        guard let o = v.object(["sniHosts", "destinationSubnets", "port", "sourceLabels", "gateways",
                                "sourceNamespace"]) else { return nil }
        sniHosts = o.strings("sniHosts")
        destinationSubnets = o.strings("destinationSubnets")
        port = o.uint32("port")
        sourceLabels = o.stringMap("sourceLabels")
        gateways = o.strings("gateways")
        sourceNamespace = o.string("sourceNamespace")
    }
}

extension L4MatchAttributes {
    init?(_ v: YValue) {
        guard let o = v.object(["destinationSubnets", "port", "sourceLabels", "gateways", "sourceNamespace",
                                "sourceSubnet"]) else { return nil }
        destinationSubnets = o.strings("destinationSubnets")
        port = o.uint32("port")
        sourceLabels = o.stringMap("sourceLabels")
        gateways = o.strings("gateways")
        sourceNamespace = o.string("sourceNamespace")
        sourceSubnet = o.string("sourceSubnet")
    }
}

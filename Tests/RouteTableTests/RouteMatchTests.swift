import RouteTable
import XCTest

/// HTTPMatchRequest semantics, field by field (istio-semantics.md §1.3).
final class RouteMatchTests: XCTestCase {
    struct Req {
        var method = "GET"
        var target = "/"
        var host = "example.com"
        var https = false
        var port: UInt16 = 80
        var headers: [(String, String)] = []
    }

    func get(_ target: String, _ headers: [(String, String)] = []) -> Req { Req(target: target, headers: headers) }

    /// One route "hit" with `blocks`; every request must match or not as listed.
    func check(_ blocks: [MatchSpec], _ cases: [(Req, Bool)], file: StaticString = #filePath, line: UInt = #line) throws {
        let f = try Fixture(TableSpec(listeners: [
            ListenerSpec(port: 80, virtualHosts: [VirtualHostSpec(name: "vh", domains: ["*"], routes: [route("hit", blocks)])]),
            ListenerSpec(port: 8080, virtualHosts: [VirtualHostSpec(name: "vh8080", domains: ["*"], routes: [route("hit", blocks)])]),
        ]))
        for (r, expected) in cases {
            let got = f.name(r.method, r.target, host: r.host, https: r.https, port: r.port, headers: r.headers)
            XCTAssertEqual(got, expected ? "hit" : "noRoute",
                           "\(r.method) \(r.target) host=\(r.host) https=\(r.https) port=\(r.port) \(r.headers)",
                           file: file, line: line)
        }
    }

    func check(_ m: MatchSpec, _ cases: [(Req, Bool)], file: StaticString = #filePath, line: UInt = #line) throws {
        try check([m], cases, file: file, line: line)
    }

    func testURIExact() throws {
        try check(MatchSpec(uri: .exact("/kiali")), [
            (get("/kiali"), true),
            (get("/kiali?x=1"), true),        // the query is not part of the path
            (get("/kiali/"), false),
            (get("/kial"), false),
            (get("/KIALI"), false),           // case-sensitive by default
        ])
    }

    func testURIPrefixIsAPlainStringPrefix() throws {
        try check(MatchSpec(uri: .prefix("/kiali")), [
            (get("/kiali"), true),
            (get("/kialiX"), true),           // not segment-aware
            (get("/kiali/console?y"), true),
            (get("/kial"), false),
            (get("/Kiali"), false),
            (get("/"), false),
        ])
        try check(MatchSpec(uri: .prefix("")), [(get("/"), true), (get("/anything"), true)])
    }

    func testIgnoreUriCase() throws {
        try check(MatchSpec(uri: .exact("/Kiali"), ignoreUriCase: true), [
            (get("/kiali"), true), (get("/KIALI"), true), (get("/kiali/"), false),
        ])
        try check(MatchSpec(uri: .prefix("/API/"), ignoreUriCase: true), [
            (get("/api/v1"), true), (get("/Api/"), true), (get("/apix"), false),
        ])
        // ignoreUriCase does not apply to regex (use (?i)).
        try check(MatchSpec(uri: .regex("/api"), ignoreUriCase: true), [(get("/api"), true), (get("/API"), false)])
        try check(MatchSpec(uri: .regex("(?i)/api")), [(get("/API"), true)])
    }

    func testURIRegexIsAFullMatchWithoutTheQuery() throws {
        try check(MatchSpec(uri: .regex("/users/[0-9]+")), [
            (get("/users/42"), true),
            (get("/users/42?page=2"), true),
            (get("/users/42/x"), false),      // not a prefix match
            (get("/x/users/42"), false),      // anchored at the start
            (get("/users/"), false),
        ])
        try check(MatchSpec(uri: .regex("a|ab")), [(get("ab"), true), (get("a"), true), (get("abc"), false)])
        try check(MatchSpec(uri: .regex("/a$")), [(get("/a"), true), (get("/a\n"), false)])
        try check(MatchSpec(uri: .regex(".*")), [(get("/"), true), (get("/any/thing"), true)])
    }

    func testScheme() throws {
        try check(MatchSpec(scheme: .exact("https")), [
            (Req(https: true), true), (Req(https: false), false),
        ])
        try check(MatchSpec(scheme: .exact("http")), [(Req(https: true), false), (Req(https: false), true)])
        try check(MatchSpec(scheme: .prefix("http")), [(Req(https: true), true), (Req(https: false), true)])
    }

    func testMethod() throws {
        try check(MatchSpec(method: .exact("POST")), [
            (Req(method: "POST"), true), (Req(method: "GET"), false), (Req(method: "post"), false),
        ])
        try check(MatchSpec(method: .regex("GET|HEAD")), [
            (Req(method: "GET"), true), (Req(method: "HEAD"), true), (Req(method: "GETX"), false),
        ])
    }

    func testAuthorityIsTheRawHostValue() throws {
        try check(MatchSpec(authority: .exact("shop.example.com:8080")), [
            (Req(host: "shop.example.com:8080"), true),
            (Req(host: "shop.example.com"), false),
        ])
        try check(MatchSpec(authority: .prefix("shop.")), [(Req(host: "shop.a"), true), (Req(host: "SHOP.a"), false)])
        try check(MatchSpec(authority: .regex("[a-z]+\\.example\\.com(:[0-9]+)?")), [
            (Req(host: "shop.example.com:80"), true), (Req(host: "shop.example.org"), false),
        ])
    }

    func testHeaders() throws {
        try check(MatchSpec(headers: [HeaderMatchSpec(name: "x-user", match: .exact("alice"))]), [
            (get("/", [("x-user", "alice")]), true),
            (get("/", [("X-User", "alice")]), true),       // names are case-insensitive
            (get("/", [("x-user", "Alice")]), false),      // values are case-sensitive
            (get("/", [("x-user", "alice2")]), false),
            (get("/", [("x-other", "alice")]), false),
            (get("/", []), false),                         // missing header does not match
        ])
        try check(MatchSpec(headers: [HeaderMatchSpec(name: "x-v", match: .prefix("v1"))]), [
            (get("/", [("x-v", "v1.2")]), true), (get("/", [("x-v", "v2")]), false),
        ])
        try check(MatchSpec(headers: [HeaderMatchSpec(name: "x-id", match: .regex("[0-9]+"))]), [
            (get("/", [("x-id", "123")]), true), (get("/", [("x-id", "a123")]), false), (get("/", [("x-id", "")]), false),
        ])
        try check(MatchSpec(headers: [HeaderMatchSpec(name: "x-flag", match: .present)]), [
            (get("/", [("x-flag", "")]), true), (get("/", [("x-flag", "1")]), true), (get("/", []), false),
        ])
        try check(MatchSpec(headers: [HeaderMatchSpec(name: "x-empty", match: .exact(""))]), [
            (get("/", [("x-empty", "")]), true), (get("/", []), false),
        ])
        // The Host header is a header like any other.
        try check(MatchSpec(headers: [HeaderMatchSpec(name: "host", match: .exact("h.com"))]), [
            (Req(host: "h.com"), true), (Req(host: "g.com"), false),
        ])
    }

    /// Repeated fields are matched as Envoy sees them: joined with ",".
    func testRepeatedHeadersAreJoined() throws {
        try check(MatchSpec(headers: [HeaderMatchSpec(name: "x-a", match: .exact("1,2"))]), [
            (get("/", [("x-a", "1"), ("x-b", "9"), ("X-A", "2")]), true),
            (get("/", [("x-a", "1")]), false),
        ])
        try check(MatchSpec(headers: [HeaderMatchSpec(name: "x-a", match: .regex("1,2,3"))]), [
            (get("/", [("x-a", "1"), ("x-a", "2"), ("x-a", "3")]), true),
        ])
    }

    func testWithoutHeaders() throws {
        try check(MatchSpec(withoutHeaders: [HeaderMatchSpec(name: "x-debug", match: .exact("foo"))]), [
            (get("/", []), true),                          // missing counts as "" which is not "foo"
            (get("/", [("x-debug", "bar")]), true),
            (get("/", [("x-debug", "foo")]), false),
            (get("/", [("X-DEBUG", "foo")]), false),
        ])
        try check(MatchSpec(withoutHeaders: [HeaderMatchSpec(name: "x-debug", match: .present)]), [
            (get("/", []), true), (get("/", [("x-debug", "")]), false), (get("/", [("x-debug", "1")]), false),
        ])
        // A missing header is the empty string: an inverted `exact: ""` rejects it.
        try check(MatchSpec(withoutHeaders: [HeaderMatchSpec(name: "x-e", match: .exact(""))]), [
            (get("/", []), false), (get("/", [("x-e", "v")]), true),
        ])
        try check(MatchSpec(withoutHeaders: [HeaderMatchSpec(name: "x-n", match: .regex("[0-9]*"))]), [
            (get("/", []), false), (get("/", [("x-n", "12")]), false), (get("/", [("x-n", "a")]), true),
        ])
    }

    func testQueryParams() throws {
        try check(MatchSpec(queryParams: [HeaderMatchSpec(name: "v", match: .exact("2"))]), [
            (get("/?v=2"), true),
            (get("/?a=1&v=2&b"), true),
            (get("/?v=22"), false),
            (get("/?V=2"), false),                         // names are case-sensitive
            (get("/?vv=2"), false),
            (get("/?v=1&v=2"), false),                     // the first occurrence decides
            (get("/"), false),
            (get("/v=2"), false),                          // the path is not the query
        ])
        try check(MatchSpec(queryParams: [HeaderMatchSpec(name: "debug", match: .exact(""))]), [
            (get("/?debug"), true), (get("/?debug="), true), (get("/?a=1&debug"), true),
            (get("/?debug=1"), false), (get("/"), false),
        ])
        try check(MatchSpec(queryParams: [HeaderMatchSpec(name: "id", match: .regex("\\d+$"))]), [
            (get("/?id=123"), true), (get("/?id=a123"), false),
        ])
        try check(MatchSpec(queryParams: [HeaderMatchSpec(name: "id", match: .prefix("ab"))]), [
            (get("/?id=abc"), true), (get("/?id=b"), false),
        ])
        try check(MatchSpec(queryParams: [HeaderMatchSpec(name: "t", match: .present)]), [
            (get("/?t"), true), (get("/?t=x"), true), (get("/?x=t"), false), (get("/"), false),
        ])
    }

    func testPortMustEqualTheListenerPort() throws {
        try check(MatchSpec(port: 8080), [(Req(port: 8080), true), (Req(port: 80), false)])
    }

    func testConditionsInABlockAreANDed() throws {
        try check(MatchSpec(uri: .prefix("/api"), method: .exact("GET"),
                            headers: [HeaderMatchSpec(name: "x", match: .exact("1"))]), [
            (Req(method: "GET", target: "/api", headers: [("x", "1")]), true),
            (Req(method: "PUT", target: "/api", headers: [("x", "1")]), false),
            (Req(method: "GET", target: "/web", headers: [("x", "1")]), false),
            (Req(method: "GET", target: "/api", headers: [("x", "2")]), false),
        ])
    }

    func testBlocksAreORedAndNoBlocksMatchesAll() throws {
        try check([MatchSpec(uri: .exact("/a")), MatchSpec(uri: .exact("/b"))], [
            (get("/a"), true), (get("/b"), true), (get("/c"), false),
        ])
        try check([], [(get("/anything"), true), (Req(method: "DELETE", host: "x"), true)])
        try check([MatchSpec()], [(get("/anything"), true)])  // an empty block matches too
    }

    func testFirstMatchWins() throws {
        let f = try Fixture(oneHost([
            route("exact", [MatchSpec(uri: .exact("/kiali"))]),
            route("kiali", [MatchSpec(uri: .prefix("/kiali"))]),
            route("jaeger", [MatchSpec(uri: .prefix("/jaeger"))]),
            route("header", [MatchSpec(headers: [HeaderMatchSpec(name: "x", match: .present)])]),
            route("catch-all", [MatchSpec(uri: .prefix("/"))]),
            route("never", []),
        ]))
        let cases: [(String, [(String, String)], String)] = [
            ("/kiali", [], "exact"),
            ("/kiali/x", [], "kiali"),
            ("/jaeger", [("x", "1")], "jaeger"),
            ("/other", [("x", "1")], "header"),
            ("/other", [], "catch-all"),
            ("other", [], "never"),
        ]
        for (target, headers, expected) in cases {
            XCTAssertEqual(f.name("GET", target, headers: headers), expected, target)
        }
        if case let .matched(r, v) = f.lookup("GET", "/jaeger") {
            XCTAssertEqual(r, 2)
            XCTAssertEqual(v, 0)
        } else {
            XCTFail("no match")
        }
    }

    func testNoRouteInAnEmptyVirtualHost() throws {
        let f = try Fixture(oneHost([]))
        XCTAssertEqual(f.lookup(), .noRoute)
    }

    /// A pathological regex for a backtracking engine is decided in linear time (RE2).
    func testCatastrophicBacktrackingIsBounded() throws {
        try check(MatchSpec(uri: .regex("(a+)+b")), [
            (get(String(repeating: "a", count: 40)), false),
            (get(String(repeating: "a", count: 40) + "b"), true),
            (get("aaab"), true),
        ])
    }
}

import RouteTable
import XCTest

/// Virtual-host choice: Envoy's order exact → longest suffix wildcard → longest prefix wildcard
/// → "*"; port in Host ignored; case-insensitive (istio-semantics.md §1.1.5, §1.2; DESIGN.md §8).
final class DomainMatchTests: XCTestCase {
    func vhost(_ name: String, _ domains: [String]) -> VirtualHostSpec {
        VirtualHostSpec(name: name, domains: domains, routes: [route(name + "-route")])
    }

    func table(withCatchAll: Bool) throws -> Fixture {
        var hosts = [
            vhost("exact-a", ["a.com"]),
            vhost("suffix-a", ["*.a.com"]),
            vhost("suffix-b-a", ["*.b.a.com"]),
            vhost("exact-x-b-a", ["x.b.a.com", "other.example"]),
            vhost("prefix-foo", ["foo.*"]),
            vhost("prefix-foo-bar", ["foo.bar.*"]),
            vhost("ipv6", ["[::1]"]),
        ]
        if withCatchAll { hosts.append(vhost("any", ["*"])) }
        return try Fixture(TableSpec(listeners: [ListenerSpec(port: 80, virtualHosts: hosts)]))
    }

    func testDomainOrder() throws {
        let f = try table(withCatchAll: true)
        let cases: [(host: String, expected: String)] = [
            ("a.com", "exact-a"),
            ("A.COM", "exact-a"),                 // case-insensitive
            ("a.com:8080", "exact-a"),            // port ignored
            ("A.Com:80", "exact-a"),
            ("x.a.com", "suffix-a"),
            ("p.q.a.com", "suffix-a"),            // a wildcard covers several labels
            ("b.a.com", "suffix-a"),              // *.b.a.com needs a label before b.a.com
            ("y.b.a.com", "suffix-b-a"),          // longest suffix wins
            ("z.y.B.A.COM:443", "suffix-b-a"),
            ("x.b.a.com", "exact-x-b-a"),         // exact beats every wildcard
            ("OTHER.example", "exact-x-b-a"),     // second domain of a host
            ("foo.a.com", "suffix-a"),            // suffix beats prefix
            ("foo.x", "prefix-foo"),
            ("foo.x.y", "prefix-foo"),
            ("foo.bar.x", "prefix-foo-bar"),      // longest prefix wins
            ("FOO.BAR.baz:1", "prefix-foo-bar"),
            ("foo.", "any"),                      // foo.* needs a label after the dot
            ("foo", "any"),
            ("com", "any"),
            (".a.com", "any"),                    // the wildcard stands for at least one character
            ("[::1]:8080", "ipv6"),
            ("[::1]", "ipv6"),
            ("", "any"),
            (":80", "any"),
            ("unknown.org", "any"),
        ]
        for c in cases {
            XCTAssertEqual(f.host(c.host), c.expected, "Host: \(c.host)")
        }
    }

    /// `*.a.com` must not match `a.com` itself nor `.a.com` (the wildcard stands for at least
    /// one character) — and without a catch-all such hosts find nothing.
    func testWildcardNeedsALabelAndNoCatchAllMeansNoHost() throws {
        let f = try table(withCatchAll: false)
        XCTAssertEqual(f.host(".a.com"), "-")
        XCTAssertEqual(f.host("unknown.org"), "-")
        XCTAssertEqual(f.host("foo."), "-")
        XCTAssertEqual(f.host("x.a.com"), "suffix-a")
        XCTAssertEqual(f.name(host: "unknown.org"), "noVirtualHost")
        XCTAssertEqual(f.name(host: "x.A.com:80"), "suffix-a-route")
    }

    func testListenersHaveTheirOwnHosts() throws {
        let f = try Fixture(TableSpec(listeners: [
            ListenerSpec(port: 80, virtualHosts: [vhost("http-a", ["a.com"])]),
            ListenerSpec(port: 8080, virtualHosts: [vhost("alt-a", ["a.com"]), vhost("alt-any", ["*"])]),
        ]))
        XCTAssertEqual(f.name(host: "a.com", port: 80), "http-a-route")
        XCTAssertEqual(f.name(host: "a.com", port: 8080), "alt-a-route")
        XCTAssertEqual(f.name(host: "b.com", port: 80), "noVirtualHost")
        XCTAssertEqual(f.name(host: "b.com", port: 8080), "alt-any-route")
        XCTAssertEqual(f.name(host: "a.com", port: 9090), "noListener")
    }

    func testHTTPSRedirectBeforeRoutes() throws {
        let f = try Fixture(oneHost([route("r", [MatchSpec(uri: .exact("/only"))])], httpsRedirect: true))
        XCTAssertEqual(f.name("GET", "/elsewhere"), "httpsRedirect:vh")  // even where no route matches
        XCTAssertEqual(f.name("GET", "/only", https: true), "r")
        XCTAssertEqual(f.name("GET", "/elsewhere", https: true), "noRoute")
    }
}

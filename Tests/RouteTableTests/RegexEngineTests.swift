import RouteTable
import XCTest

/// Route regexes behave like Envoy's `safe_regex` (RE2): a match is decided on every input,
/// however long or crafted, and `.` matches a code point. A lookup must never skip a regex route
/// whose pattern matches and fall through to a later, more permissive one.
final class RegexEngineTests: XCTestCase {
    /// A regex route first, a catch-all after it (the shape of an access rule in front of a
    /// default route).
    func fixture(_ match: MatchSpec) throws -> Fixture {
        try Fixture(oneHost([route("regex", [match]), route("permissive", [MatchSpec(uri: .prefix("/"))])]))
    }

    /// 4 200 `a/` segments: a backtracking engine's JIT stack or match limit gives out before it
    /// decides, which used to read as "no match".
    func testCraftedLongPathStillPicksTheRegexRoute() throws {
        let f = try fixture(MatchSpec(uri: .regex("/files/(?:[a-z0-9]+/)*[a-z0-9]+\\.pdf")))
        let segments = String(repeating: "a/", count: 4_200)
        XCTAssertEqual(f.name("GET", "/files/" + segments + "x.pdf"), "regex")
        XCTAssertEqual(f.name("GET", "/files/" + segments + "x.pdfz"), "permissive")
        XCTAssertEqual(f.name("GET", "/files/a/b/report.pdf"), "regex")
    }

    /// Exponential backtracking in one alternative must not hide a match by another.
    func testNestedQuantifiersDoNotHideAMatch() throws {
        let f = try fixture(MatchSpec(uri: .regex("/(?:(x+x+)+z|x+y)")))
        XCTAssertEqual(f.name("GET", "/" + String(repeating: "x", count: 40) + "y"), "regex")
        XCTAssertEqual(f.name("GET", "/" + String(repeating: "x", count: 40)), "permissive")
        // The same in a header value of the largest size the parser accepts.
        let h = try Fixture(oneHost([
            route("regex", [MatchSpec(headers: [HeaderMatchSpec(name: "x-k", match: .regex("(?:(x+x+)+z|x+y)"))])]),
            route("permissive"),
        ]))
        XCTAssertEqual(h.name(headers: [("x-k", String(repeating: "x", count: 60_000) + "y")]), "regex")
        XCTAssertEqual(h.name(headers: [("x-k", String(repeating: "x", count: 60_000))]), "permissive")
    }

    /// `.` is one code point, as in RE2 (UTF-8 mode), not one byte.
    func testDotMatchesOneCodePoint() throws {
        let f = try fixture(MatchSpec(uri: .regex("/caf.")))
        XCTAssertEqual(f.name("GET", "/café"), "regex")       // é is two bytes
        XCTAssertEqual(f.name("GET", "/caf\u{1F375}"), "regex") // four bytes
        XCTAssertEqual(f.name("GET", "/cafe"), "regex")
        XCTAssertEqual(f.name("GET", "/cafés"), "permissive")
        let two = try fixture(MatchSpec(uri: .regex("/caf..")))
        XCTAssertEqual(two.name("GET", "/café"), "permissive")
    }
}

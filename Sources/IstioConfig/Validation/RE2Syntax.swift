// RE2 syntax check with Go regexp/syntax's error texts. Istio validates match regexes with Go's
// `regexp.Compile`, which implements RE2: no backreferences, lookaround, atomic groups,
// possessive quantifiers or `\C`. The data plane runs RE2 itself (Sources/CRE2), which is a
// little more permissive than Go's parser (it accepts `\C`), so what Go would refuse is rejected
// here, with the message Istio gives.

enum RE2Syntax {
    /// Nil when `re` is valid RE2, else Go's error text: `error parsing regexp: CODE: `ARG``.
    static func check(_ re: String) -> String? {
        var p = Checker(Array(re.unicodeScalars), whole: re)
        return p.run()
    }

    private static func fail(_ code: String, _ arg: String) -> String {
        "error parsing regexp: \(code): `\(arg)`"
    }

    private struct Checker {
        let s: [Unicode.Scalar]
        let whole: String
        var i = 0
        var depth = 0
        /// The previous item can take a repetition operator; `lastRepeatStart` is set when the
        /// previous item was itself a repetition (a second one is "nested").
        var canRepeat = false
        var lastRepeatStart: Int?
        var names: Set<String> = []

        init(_ s: [Unicode.Scalar], whole: String) {
            self.s = s
            self.whole = whole
        }

        func text(_ from: Int, _ to: Int) -> String {
            var out = ""
            out.unicodeScalars.append(contentsOf: s[from..<min(to, s.count)])
            return out
        }

        mutating func run() -> String? {
            while i < s.count {
                let c = s[i]
                switch c {
                case "(":
                    if let e = openGroup() { return e }
                    canRepeat = false
                    lastRepeatStart = nil
                case ")":
                    if depth == 0 { return fail("unexpected )", whole) }
                    depth -= 1
                    i += 1
                    canRepeat = true
                    lastRepeatStart = nil
                case "|":
                    i += 1
                    canRepeat = false
                    lastRepeatStart = nil
                case "*", "+", "?":
                    if let e = repetition(start: i, end: i + 1) { return e }
                case "{":
                    if let end = repeatCount(at: i) {
                        if case .failure(let e) = end { return e.message }
                        if case .success(let e) = end, let err = repetition(start: i, end: e) { return err }
                    } else {
                        i += 1
                        atom()
                    }
                case "[":
                    if let e = charClass() { return e }
                    atom()
                case "\\":
                    if let e = escape() { return e }
                    atom()
                default:
                    i += 1
                    atom()
                }
            }
            if depth > 0 { return fail("missing closing )", whole) }
            return nil
        }

        mutating func atom() {
            canRepeat = true
            lastRepeatStart = nil
        }

        mutating func repetition(start: Int, end: Int) -> String? {
            var e = end
            if e < s.count && s[e] == "?" { e += 1 } // non-greedy
            if let prev = lastRepeatStart {
                return fail("invalid nested repetition operator", text(prev, e))
            }
            if !canRepeat {
                return fail("missing argument to repetition operator", text(start, e))
            }
            lastRepeatStart = start
            i = e
            return nil
        }

        /// `{n}`, `{n,}`, `{n,m}` at `at`: nil when it is not repeat syntax (a literal `{`).
        func repeatCount(at: Int) -> Result<Int, RepeatError>? {
            var j = at + 1
            func number() -> Int? {
                let start = j
                while j < s.count, s[j].properties.numericType != nil, s[j].isASCII { j += 1 }
                guard j > start else { return nil }
                return Int(text(start, j)) ?? Int.max
            }
            guard let lo = number() else { return nil }
            var hi = lo
            if j < s.count, s[j] == "," {
                j += 1
                if j < s.count, s[j] == "}" { hi = -1 } else {
                    guard let h = number() else { return nil }
                    hi = h
                }
            }
            guard j < s.count, s[j] == "}" else { return nil }
            j += 1
            if lo > 1000 || hi > 1000 || (hi >= 0 && hi < lo) {
                return .failure(RepeatError(message: fail("invalid repeat count", text(at, j))))
            }
            return .success(j)
        }

        mutating func openGroup() -> String? {
            let start = i
            if i + 1 < s.count, s[i + 1] == "?" {
                // Named capture: (?P<name>re) or (?<name>re).
                var nameStart: Int?
                if i + 2 < s.count, s[i + 2] == "P", i + 3 < s.count, s[i + 3] == "<" { nameStart = i + 4 }
                else if i + 2 < s.count, s[i + 2] == "<" { nameStart = i + 3 }
                if let ns = nameStart {
                    guard let close = s[ns...].firstIndex(of: ">") else {
                        return fail("invalid named capture", text(start, s.count))
                    }
                    let name = text(ns, close)
                    let ok = !name.isEmpty && name.unicodeScalars.allSatisfy {
                        $0 == "_" || ($0.isASCII && ($0.properties.isAlphabetic || $0.properties.numericType != nil))
                    }
                    if !ok { return fail("invalid named capture", text(start, close + 1)) }
                    if names.contains(name) { return fail("duplicate capture group name", name) }
                    names.insert(name)
                    depth += 1
                    i = close + 1
                    return nil
                }
                // Flags: (?i) (?i:re) (?-s) … anything else is unsupported Perl syntax.
                var j = i + 2
                var negated = false
                var sawFlag = false
                while j < s.count {
                    let c = s[j]
                    j += 1
                    switch c {
                    case "i", "m", "s", "U":
                        sawFlag = true
                        continue
                    case "-":
                        if negated { return fail("invalid or unsupported Perl syntax", text(start, j)) }
                        negated = true
                        sawFlag = false
                        continue
                    case ":", ")":
                        if negated && !sawFlag { return fail("invalid or unsupported Perl syntax", text(start, j)) }
                        if c == ":" { depth += 1 }
                        i = j
                        return nil
                    default:
                        return fail("invalid or unsupported Perl syntax", text(start, j))
                    }
                }
                return fail("invalid or unsupported Perl syntax", text(start, j))
            }
            depth += 1
            i += 1
            return nil
        }

        /// An escape outside a class; also used inside classes (`inClass`).
        mutating func escape(inClass: Bool = false) -> String? {
            let start = i
            guard i + 1 < s.count else { return fail("trailing backslash at end of expression", "") }
            let c = s[i + 1]
            i += 2
            switch c {
            case "1", "2", "3", "4", "5", "6", "7":
                if i < s.count, ("0"..."7").contains(s[i]) { fallthrough }
                return fail("invalid escape sequence", text(start, i))
            case "0":
                var n = 0
                while n < 2, i < s.count, ("0"..."7").contains(s[i]) { i += 1; n += 1 }
                return nil
            case "x":
                if i < s.count, s[i] == "{" {
                    guard let close = s[i...].firstIndex(of: "}"), close > i + 1,
                          s[(i + 1)..<close].allSatisfy({ $0.properties.isASCIIHexDigit }) else {
                        return fail("invalid escape sequence", text(start, min(s.count, i + 1)))
                    }
                    i = close + 1
                    return nil
                }
                guard i + 1 < s.count, s[i].properties.isASCIIHexDigit, s[i + 1].properties.isASCIIHexDigit else {
                    return fail("invalid escape sequence", text(start, min(s.count, i + 2)))
                }
                i += 2
                return nil
            case "a", "f", "n", "r", "t", "v", "d", "D", "s", "S", "w", "W":
                return nil
            case "A", "z", "b", "B":
                return inClass ? fail("invalid escape sequence", text(start, i)) : nil
            case "p", "P":
                guard i < s.count else { return fail("invalid character class range", text(start, i)) }
                if s[i] == "{" {
                    guard let close = s[i...].firstIndex(of: "}") else {
                        return fail("invalid character class range", text(start, s.count))
                    }
                    i = close + 1
                } else {
                    i += 1
                }
                return nil
            case "Q":
                if inClass { return fail("invalid escape sequence", text(start, i)) }
                // Literal text up to \E.
                while i < s.count {
                    if s[i] == "\\", i + 1 < s.count, s[i + 1] == "E" { i += 2; break }
                    i += 1
                }
                return nil
            default:
                // Any ASCII punctuation may be escaped; letters and digits are reserved
                // (\C, \G, \K, \Z, \e, \h, \R, \X, \8, \9 … are not RE2).
                if c.isASCII && !(c.properties.isAlphabetic || c.properties.numericType != nil) { return nil }
                return fail("invalid escape sequence", text(start, i))
            }
        }

        mutating func charClass() -> String? {
            let start = i
            i += 1
            if i < s.count, s[i] == "^" { i += 1 }
            var first = true
            var prevSingle: Unicode.Scalar?
            var prevStart = i
            while i < s.count {
                let c = s[i]
                if c == "]" && !first { i += 1; return nil }
                first = false
                if c == "[", i + 1 < s.count, s[i + 1] == ":" {
                    guard let close = findPosixEnd(from: i + 2) else {
                        prevSingle = "["; prevStart = i; i += 1; continue
                    }
                    let name = text(i + 2, close).replacingOccurrences("^", "")
                    let known = ["alnum", "alpha", "ascii", "blank", "cntrl", "digit", "graph", "lower", "print",
                                 "punct", "space", "upper", "word", "xdigit"]
                    if !known.contains(name) { return fail("invalid character class range", text(i, close + 2)) }
                    i = close + 2
                    prevSingle = nil
                    continue
                }
                if c == "-", let lo = prevSingle, i + 1 < s.count, s[i + 1] != "]" {
                    // A range lo-hi.
                    i += 1
                    var hi = s[i]
                    let hiStart = i
                    if hi == "\\" {
                        if let e = escape(inClass: true) { return e }
                        let esc = text(hiStart, i)
                        hi = esc.unicodeScalars.count == 2 ? esc.unicodeScalars.last! : lo
                    } else {
                        i += 1
                    }
                    if hi.value < lo.value { return fail("invalid character class range", text(prevStart, i)) }
                    prevSingle = nil
                    continue
                }
                prevStart = i
                if c == "\\" {
                    if let e = escape(inClass: true) { return e }
                    let esc = text(prevStart, i)
                    let scalars = Array(esc.unicodeScalars)
                    prevSingle = scalars.count == 2 && !["d", "D", "s", "S", "w", "W"].contains(scalars[1])
                        ? scalars[1] : nil
                    continue
                }
                prevSingle = c
                i += 1
            }
            return fail("missing closing ]", text(start, s.count))
        }

        func findPosixEnd(from: Int) -> Int? {
            var j = from
            while j + 1 < s.count {
                if s[j] == ":" && s[j + 1] == "]" { return j }
                if s[j] == "]" { return nil }
                j += 1
            }
            return nil
        }
    }

    struct RepeatError: Error {
        let message: String
    }
}

private extension String {
    func replacingOccurrences(_ a: Character, _ b: String) -> String {
        String(self.filter { $0 != a })
    }
}

// Limits on configuration input, checked before and right after Yams composes a file, so that
// no file can crash or stall the process that reads it (the supervisor reloads on SIGHUP and
// --watch; a crash there takes the gateway down, a stall stops its admin endpoint, health
// checks and watchdog pings).
//
//  * Yams composes recursively (Parser.loadNode → loadSequence → loadNode …): about 5,000
//    nested `[` exhaust an 8 MiB stack in the release build, 20,000 in the debug build. A byte
//    scan bounds the nesting *before* Yams sees the text (`prescanYAML`).
//  * Aliases are composed as shared values (cheap), but everything that walks the tree — the
//    decoder, `kind: List` items, validation — walks every expansion: a few KB of aliases are
//    billions of nodes. Aliases are counted by the scan and the expanded tree is measured
//    with an explicit stack (`expandedSize`) before anything else walks it.
//  * File size bounds the reading and the composition itself.
import Yams

/// The limits (README "Configuration limits"). Every one is far above what a real Istio
/// configuration needs, and far below what hurts.
public enum InputLimits {
    /// Bytes per file. Kubernetes caps an object at 1.5 MiB (etcd's request limit); a file of
    /// many documents (a `kubectl get -o yaml` dump) gets 4 MiB.
    public static let maxFileBytes = 4 << 20
    /// Bytes over every file of one load (a directory of many files).
    public static let maxTotalBytes = 32 << 20
    /// Nesting of collections in one document. Istio resources nest about 10 deep
    /// (`spec.http[].match[].headers.NAME.exact` is 9 collections); other Kubernetes kinds
    /// that are skipped rarely pass 20. 64 leaves room and stays ~80× below the depth at which
    /// the composer exhausts the stack. The byte scan over-counts slightly (a block sequence
    /// entry on its own line counts twice), never under-counts, so the real limit is ≥ 64.
    public static let maxDepth = 64
    /// YAML aliases (`*name`) per file. Rendered manifests use none; hand-written ones a few.
    public static let maxAliases = 1_000
    /// YAML nodes per file once aliases are expanded: the work every later step does is
    /// proportional to it. 3.9 MB of real VirtualServices (1,880 of them, 18,800 routes) is
    /// about 500,000 nodes and checks in 3.6 s (release build, shared 2-core VM), so the cap
    /// is about twice the largest file the size limit lets through, while alias expansion
    /// past it is refused after a walk of 0.1 s.
    public static let maxNodes = 1_000_000
    /// Host names in one `hosts` list (VirtualService, Gateway server, ServiceEntry). Host
    /// lists are compared pairwise (duplicates, server × VirtualService intersection); Istio
    /// gateways with the most tenants list a few hundred.
    public static let maxHosts = 1_000
}

/// What the byte scan found wrong: the 1-based line and the message.
struct PrescanFinding: Equatable {
    var line: Int
    var message: String
}

/// A conservative lexical pass over YAML bytes: counts collection nesting (flow `[`/`{` and
/// block levels by indentation and `- `/`? ` indicators) and aliases, skipping comments,
/// quoted scalars and block scalars. It does not validate YAML (Yams does, afterwards); it
/// only has to be sure that what it lets through nests no deeper than `maxDepth` (it may
/// over-count, never under-count) and holds at most `maxAliases` aliases. Linear in the bytes;
/// no recursion.
func prescanYAML(_ text: String, maxDepth: Int = InputLimits.maxDepth,
                 maxAliases: Int = InputLimits.maxAliases) -> PrescanFinding? {
    var text = text
    return text.withUTF8 { prescanYAML($0, maxDepth: maxDepth, maxAliases: maxAliases) }
}

func prescanYAML(_ b: UnsafeBufferPointer<UInt8>, maxDepth: Int, maxAliases: Int) -> PrescanFinding? {
    let space = UInt8(ascii: " "), tab = UInt8(ascii: "\t"), lf = UInt8(ascii: "\n"), cr = UInt8(ascii: "\r")
    let n = b.count
    var i = 0
    var line = 1
    var flow = 0                    // open `[` and `{`
    var block: [Int] = []           // columns of the open block levels
    var blockScalarParent: Int?     // in a `|`/`>` scalar: lines indented deeper are its text
    var quote: UInt8 = 0            // inside a quoted scalar ('\'' or '"'), may span lines
    var aliases = 0

    func isBreakOrSpace(_ j: Int) -> Bool { j >= n || b[j] == space || b[j] == tab || b[j] == lf || b[j] == cr }
    func tooDeep(_ line: Int) -> PrescanFinding {
        PrescanFinding(line: line, message: "YAML nests deeper than \(maxDepth) levels; at most \(maxDepth) nested lists and mappings are allowed")
    }

    while i < n {
        var end = i
        while end < n && b[end] != lf { end += 1 }
        var indent = 0
        while i + indent < end && b[i + indent] == space { indent += 1 }
        var j = i + indent
        let blank = j == end || (j + 1 == end && b[j] == cr)

        if let parent = blockScalarParent {
            if blank || indent > parent {
                i = end + 1; line += 1
                continue
            }
            blockScalarParent = nil
        }
        if quote == 0 && flow == 0 && !blank && b[j] != UInt8(ascii: "#") {
            let marker = indent == 0 && end - j >= 3 && isBreakOrSpace(j + 3)
                && ((b[j] == UInt8(ascii: "-") && b[j + 1] == UInt8(ascii: "-") && b[j + 2] == UInt8(ascii: "-"))
                    || (b[j] == UInt8(ascii: ".") && b[j + 1] == UInt8(ascii: ".") && b[j + 2] == UInt8(ascii: ".")))
            if marker {
                block.removeAll()   // a new document
                j += 3
            } else {
                while let last = block.last, last >= indent { block.removeLast() }
                block.append(indent)
                if block.count > maxDepth { return tooDeep(line) }
            }
        }

        var tokenStart = true       // the previous byte was a space, an indicator or the line start
        while j < end {
            let c = b[j]
            if quote == UInt8(ascii: "'") {
                if c == quote {
                    if j + 1 < end && b[j + 1] == quote { j += 2; continue }
                    quote = 0
                    tokenStart = false
                }
                j += 1
                continue
            }
            if quote == UInt8(ascii: "\"") {
                if c == UInt8(ascii: "\\") { j += 2; continue }
                if c == quote { quote = 0; tokenStart = false }
                j += 1
                continue
            }
            // (`where` binds to one pattern only, hence each pattern carries its own.)
            switch c {
            case space, tab, cr:
                tokenStart = true
            case UInt8(ascii: "#") where tokenStart:
                j = end
                continue
            case UInt8(ascii: "'") where tokenStart, UInt8(ascii: "\"") where tokenStart:
                quote = c
            case UInt8(ascii: "[") where tokenStart || flow > 0, UInt8(ascii: "{") where tokenStart || flow > 0:
                flow += 1
                if block.count + flow > maxDepth { return tooDeep(line) }
                tokenStart = true
            case UInt8(ascii: "]") where flow > 0, UInt8(ascii: "}") where flow > 0:
                flow -= 1
                tokenStart = false
            case UInt8(ascii: ",") where flow > 0, UInt8(ascii: ":") where flow > 0:
                tokenStart = true
            case UInt8(ascii: ":") where isBreakOrSpace(j + 1):
                tokenStart = true
            case UInt8(ascii: "-") where tokenStart && flow == 0 && isBreakOrSpace(j + 1),
                 UInt8(ascii: "?") where tokenStart && flow == 0 && isBreakOrSpace(j + 1):
                // A compact block entry (`- - x`, `- key: v`): one more level on this line.
                block.append(j - i + 1)
                if block.count > maxDepth { return tooDeep(line) }
                tokenStart = true
            case UInt8(ascii: "|") where tokenStart && flow == 0, UInt8(ascii: ">") where tokenStart && flow == 0:
                blockScalarParent = indent
                j = end
                continue
            case UInt8(ascii: "*") where tokenStart:
                aliases += 1
                if aliases > maxAliases {
                    return PrescanFinding(line: line, message: "too many YAML aliases (more than \(maxAliases)); at most \(maxAliases) per file")
                }
                tokenStart = false
            default:
                tokenStart = false
            }
            j += 1
        }
        i = end + 1
        line += 1
    }
    return nil
}

/// Walks a composed document with an explicit stack, as every alias expands, and stops as soon
/// as it passes `nodeBudget` nodes or `maxDepth` levels. Returns the nodes counted, or the
/// limit that was passed. Costs at most `nodeBudget` steps, whatever the aliases.
enum ExpandedSize: Equatable {
    case nodes(Int)
    case tooManyNodes
    case tooDeep
}

func expandedSize(_ root: Node, nodeBudget: Int, maxDepth: Int = InputLimits.maxDepth) -> ExpandedSize {
    var stack: [(Node, Int)] = [(root, 1)]
    var count = 0
    while let (node, depth) = stack.popLast() {
        count += 1
        if count > nodeBudget { return .tooManyNodes }
        switch node {
        case .scalar:
            continue
        case .sequence(let s):
            if depth > maxDepth { return .tooDeep }
            for child in s { stack.append((child, depth + 1)) }
        case .mapping(let m):
            if depth > maxDepth { return .tooDeep }
            for (k, v) in m {
                stack.append((k, depth + 1))
                stack.append((v, depth + 1))
            }
        }
    }
    return .nodes(count)
}

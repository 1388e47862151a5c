#if canImport(Glibc)
import Glibc
#endif
import CSupport

/// `--watch`: inotify on the configuration paths and on the certificate, key and CA files the
/// table in effect was built from. Directories are watched (not files) because editors and
/// `kubectl`-style tools replace files by rename, which a watch on the old inode would miss.
/// An event on a name we care about arms a debounce; the supervisor reloads once the files have
/// been quiet for `debounceNs` (an editor's save is several events).
struct ConfigWatcher {
    let fd: Int32
    /// watch descriptor → (directory, names that matter there, whether every *.yaml/*.yml there
    /// matters too).
    private var watches: [Int32: (dir: String, names: Set<String>, yaml: Bool)] = [:]
    /// Kubernetes Secret volumes (and `kubectl cp`-style tools) update by swapping the
    /// `..data` link inside the credential directory: the file names themselves see no event.
    static let atomicUpdateName = "..data"
    /// inotify events that mean "a name in this directory changed".
    static let mask = UInt32(IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE | IN_ATTRIB)
    /// When the pending reload may run; nil = nothing pending.
    private(set) var dueNs: UInt64?
    /// 200 ms: longer than an editor's write/rename burst, short enough to feel immediate.
    static let debounceNs: UInt64 = 200_000_000

    init?(paths: [String]) {
        let fd = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        guard fd >= 0 else {
            Log.error("--watch: inotify_init1 failed: \(errnoText(ing_errno())); reload with SIGHUP instead")
            return nil
        }
        self.fd = fd
        let mask = Self.mask
        var byDir: [String: Set<String>] = [:]
        var wholeDirs = Set<String>()
        for path in paths {
            var st = stat()
            if stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR {
                wholeDirs.insert(path)
            } else {
                let slash = path.lastIndex(of: "/")
                let dir = slash.map { String(path[..<$0]) } ?? "."
                let name = slash.map { String(path[path.index(after: $0)...]) } ?? path
                byDir[dir.isEmpty ? "/" : dir, default: []].insert(name)
            }
        }
        for dir in wholeDirs { byDir[dir] = [] }
        for (dir, names) in byDir {
            let wd = inotify_add_watch(fd, dir, mask)
            if wd < 0 {
                Log.error("--watch: cannot watch \(dir): \(errnoText(ing_errno()))")
                continue
            }
            // Merge: a directory given both whole and through a file is watched whole.
            watches[wd] = (dir, wholeDirs.contains(dir) ? [] : names, wholeDirs.contains(dir))
            Log.debug("watching \(dir)\(names.isEmpty ? "" : " for " + names.sorted().joined(separator: ", "))")
        }
    }

    /// Also reloads when one of `files` (certificate, key and CA paths, existing or not)
    /// changes. Adds to what is watched; a name no longer used keeps its watch, which costs a
    /// reload that changes nothing at worst. A directory that does not exist is not watched
    /// (debug log): its credential is missing, which the last compile reported.
    mutating func watch(files: [String]) {
        var byDir: [String: Set<String>] = [:]
        for path in files {
            let slash = path.lastIndex(of: "/")
            let dir = slash.map { String(path[..<$0]) } ?? "."
            let name = slash.map { String(path[path.index(after: $0)...]) } ?? path
            byDir[dir.isEmpty ? "/" : dir, default: []].formUnion([name, Self.atomicUpdateName])
        }
        for (dir, names) in byDir.sorted(by: { $0.key < $1.key }) {
            // IN_MASK_ADD: a directory already watched for configuration keeps its watch.
            let wd = inotify_add_watch(fd, dir, Self.mask | UInt32(IN_MASK_ADD))
            if wd < 0 {
                Log.debug("--watch: cannot watch \(dir) for certificates: \(errnoText(ing_errno()))")
                continue
            }
            let old = watches[wd]
            let added = names.subtracting(old?.names ?? [])
            watches[wd] = (dir, (old?.names ?? []).union(names), old?.yaml ?? false)
            if !added.isEmpty { Log.debug("watching \(dir) for \(added.sorted().joined(separator: ", "))") }
        }
    }

    /// Reads every pending event; arms the debounce when one concerns a configuration file.
    mutating func handleReadable(nowNs: UInt64) {
        var buf = [UInt8](repeating: 0, count: 16 * 1024)
        while true {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            var off = 0
            // struct inotify_event { int wd; uint32 mask, cookie, len; char name[len]; }
            while off + 16 <= n {
                let (wd, len) = buf.withUnsafeBytes { raw in
                    (raw.load(fromByteOffset: off, as: Int32.self), Int(raw.load(fromByteOffset: off + 12, as: UInt32.self)))
                }
                let nameBytes = buf[(off + 16)..<min(off + 16 + len, n)].prefix { $0 != 0 }
                let name = String(decoding: nameBytes, as: UTF8.self)
                off += 16 + len
                guard let w = watches[wd] else { continue }
                let relevant = (w.yaml && (name.hasSuffix(".yaml") || name.hasSuffix(".yml")))
                    || w.names.contains(name)
                if relevant {
                    Log.debug("config change: \(w.dir)/\(name)")
                    dueNs = nowNs + Self.debounceNs
                }
            }
        }
    }

    /// True (once) when a debounced change is due.
    mutating func takeDue(nowNs: UInt64) -> Bool {
        guard let due = dueNs, nowNs >= due else { return false }
        dueNs = nil
        return true
    }
}

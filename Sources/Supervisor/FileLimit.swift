#if canImport(Glibc)
import Glibc
#endif
import CSupport

/// The open-file limit (RLIMIT_NOFILE). Every client and upstream connection is a descriptor,
/// and the soft limit many shells and container runtimes start with (1024) is far below what a
/// worker holds under load, so the supervisor raises the soft limit to the hard limit at start;
/// workers inherit it through posix_spawn. The hard limit is the administrator's (systemd's
/// `LimitNOFILE=`, `ulimit -Hn`); it is never exceeded. What a worker does when it is reached
/// anyway: Engine+AcceptPause.swift.
enum FileLimit {
    /// Below this nothing works: the supervisor keeps its inherited descriptors at 100 and up
    /// (`moveHigh`, so that the worker's 3, 4, 5, … never collide), and a worker needs room for
    /// connections beyond its listeners.
    static let minimum: UInt64 = 256

    /// Raises the soft limit to the hard one (or to /proc/sys/fs/nr_open when the hard limit is
    /// unlimited, which Linux refuses for this resource). Returns the limit now in effect.
    @discardableResult
    static func raiseToHard() -> UInt64 {
        let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
        var rl = rlimit()
        guard getrlimit(resource, &rl) == 0 else { return 0 }
        let before = rl.rlim_cur
        var target = rl.rlim_max
        if target == rlim_t.max { target = nrOpen() ?? before }   // RLIM_INFINITY
        if target > before {
            rl.rlim_cur = target
            if setrlimit(resource, &rl) == 0 {
                Log.info("open-file limit raised from \(before) to \(target) (the hard limit)")
                return UInt64(target)
            }
            Log.warning("cannot raise the open-file limit from \(before) to \(target): \(errnoText(ing_errno()))")
        }
        return UInt64(before)
    }

    private static func nrOpen() -> rlim_t? {
        guard let f = fopen("/proc/sys/fs/nr_open", "r") else { return nil }
        defer { fclose(f) }
        var line = [CChar](repeating: 0, count: 32)
        guard fgets(&line, Int32(line.count), f) != nil else { return nil }
        let digits = line.prefix { $0 >= 0x30 && $0 <= 0x39 }
        guard !digits.isEmpty, let v = UInt64(String(decoding: digits.map { UInt8($0) }, as: UTF8.self)), v > 0 else { return nil }
        return rlim_t(v)
    }
}

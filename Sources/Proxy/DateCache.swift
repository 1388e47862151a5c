#if canImport(Glibc)
import Glibc
#endif

/// The IMF-fixdate for `date:` headers of local replies ("Fri, 27 Nov 2026 04:00:00 GMT",
/// 29 bytes), formatted once a second instead of per reply.
struct DateCache {
    var bytes: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
    var second: Int = -1
    static let count = 29

    mutating func refresh() {
        var now = time(nil)
        guard now != second else { return }
        second = now
        var tmv = tm()
        gmtime_r(&now, &tmv)
        let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
        let s = "\(days[Int(tmv.tm_wday)]), \(two(tmv.tm_mday)) \(months[Int(tmv.tm_mon)]) \(tmv.tm_year + 1900) \(two(tmv.tm_hour)):\(two(tmv.tm_min)):\(two(tmv.tm_sec)) GMT"
        withUnsafeMutableBytes(of: &bytes) { dst in
            var k = 0
            for b in s.utf8 where k < DateCache.count {
                dst[k] = b
                k += 1
            }
        }
    }
}

/// Size limits for a head (DESIGN.md §8, configurable; defaults are Envoy's).
///
/// The limits are checked on incomplete input too: a head that is still growing is refused as
/// soon as it is certain to exceed them, so a slow client cannot make the caller buffer more
/// than `maxHeadBytes`.
@frozen
public struct HTTPLimits: Sendable, Equatable {
    /// Bytes from the start of the buffer through the blank line (start line included), 431 above.
    /// Default 60 KiB: Envoy's `max_request_headers_kb` default.
    public var maxHeadBytes: Int
    /// Field lines in one head, 431 above. Default 100: Envoy's `max_headers_count` default.
    public var maxHeaderCount: Int
    /// Bytes of the request line (or status line) without its CRLF, 414 above. Default 16 KiB:
    /// long enough for any URL a browser sends, short enough to refuse a slow stream early.
    public var maxRequestLineBytes: Int

    @inlinable
    public init(maxHeadBytes: Int = 60 * 1024, maxHeaderCount: Int = 100,
                maxRequestLineBytes: Int = 16 * 1024) {
        self.maxHeadBytes = maxHeadBytes
        self.maxHeaderCount = maxHeaderCount
        self.maxRequestLineBytes = maxRequestLineBytes
    }

    /// DESIGN.md §8 defaults.
    public static let `default` = HTTPLimits()
}

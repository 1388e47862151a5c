import HTTP1
#if canImport(Glibc)
import Glibc
#endif

// gRPC requests (content-type application/grpc…) on HTTP/2 streams: recognised once at the
// head, so that local replies are gRPC statuses (Engine+LocalReply.swift) and grpc-timeout
// sets the deadline.

extension ProxyEngine {
    /// The request is gRPC: its content-type is `application/grpc` or `application/grpc+…`
    /// (gRPC over HTTP/2; Envoy's `Grpc::Common::isGrpcRequestHeaders`).
    func isGRPC(_ source: UnsafeRawBufferPointer, _ head: RequestHead) -> Bool {
        guard let v = findHeader(source, head, "content-type") else { return false }
        let value = slice(source, v)
        let prefix: StaticString = "application/grpc"
        let n = prefix.utf8CodeUnitCount
        guard value.count >= n, memcmp(value.baseAddress!, prefix.utf8Start, n) == 0 else { return false }
        return value.count == n || value[n] == UInt8(ascii: "+") || value[n] == UInt8(ascii: ";")
    }
}

extension ProxyEngine {
    /// `grpc-timeout` on a gRPC request (Istio routes set Envoy's `max_stream_duration` with
    /// `grpc_timeout_header_max` equal to the route timeout): the header's deadline becomes the
    /// exchange's timeout, capped by the route's `timeout` when it has one. Past it: 504 UT,
    /// which a gRPC client gets as DEADLINE_EXCEEDED.
    mutating func applyGRPCTimeout(_ x: Int32, source: UnsafeRawBufferPointer, head: RequestHead) {
        guard let v = findHeader(source, head, "grpc-timeout"), let ms = parseGRPCTimeout(slice(source, v)) else { return }
        let e = exchanges.slots + Int(x)
        let route = UInt64(e.pointee.timeoutMs)
        e.pointee.timeoutMs = UInt32(clamping: route == 0 ? ms : min(ms, route))
    }
}

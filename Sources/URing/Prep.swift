import CURing
#if canImport(Glibc)
import Glibc
#endif

/// Thin wrappers over liburing's prep helpers that also set `user_data`. The caller owns any
/// memory an SQE points at until that SQE's completion arrives (monoio's rule).
extension Ring {
    @inline(__always)
    public func prepMultishotAccept(fd: Int32, userData: UInt64) {
        let s = sqe()
        io_uring_prep_multishot_accept(s, fd, nil, nil, Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue))
        s.pointee.user_data = userData
    }

    /// Receive into a buffer the kernel picks from `group` (IOSQE_BUFFER_SELECT).
    /// `pollFirst` (IORING_RECVSEND_POLL_FIRST, 5.19+): skip the receive attempt and arm the
    /// poll at once, for sockets that cannot have data yet (an idle upstream, a client that is
    /// still reading its response): saves a failed receive per arm.
    @inline(__always)
    public func prepRecvSelect(fd: Int32, group: UInt16, userData: UInt64, pollFirst: Bool = false) {
        let s = sqe()
        io_uring_prep_recv(s, fd, nil, 0, 0)
        if pollFirst { s.pointee.ioprio |= UInt16(IORING_RECVSEND_POLL_FIRST) }
        s.pointee.flags |= ING_IOSQE_BUFFER_SELECT
        s.pointee.buf_group = group
        s.pointee.user_data = userData
    }

    /// Receive into `buffer` (the caller's, not a provided one).
    @inline(__always)
    public func prepRecv(fd: Int32, buffer: UnsafeMutableRawPointer, count: Int, userData: UInt64) {
        let s = sqe()
        io_uring_prep_recv(s, fd, buffer, count, 0)
        s.pointee.user_data = userData
    }

    @inline(__always)
    public func prepSend(fd: Int32, buffer: UnsafeRawPointer, count: Int, userData: UInt64) {
        let s = sqe()
        io_uring_prep_send(s, fd, buffer, count, Int32(MSG_NOSIGNAL))
        s.pointee.user_data = userData
    }

    /// `msg` (and the iovecs it points at) must stay valid until the completion.
    @inline(__always)
    public func prepSendMsg(fd: Int32, msg: UnsafePointer<msghdr>, userData: UInt64) {
        let s = sqe()
        io_uring_prep_sendmsg(s, fd, msg, UInt32(MSG_NOSIGNAL))
        s.pointee.user_data = userData
    }

    /// `addr` must stay valid until the completion.
    @inline(__always)
    public func prepConnect(fd: Int32, addr: UnsafePointer<sockaddr>, len: socklen_t, userData: UInt64) {
        let s = sqe()
        io_uring_prep_connect(s, fd, addr, len)
        s.pointee.user_data = userData
    }

    /// A NOP: completes at once with result 0 (a completion the engine posts to itself).
    @inline(__always)
    public func prepNop(userData: UInt64) {
        let s = sqe()
        io_uring_prep_nop(s)
        s.pointee.user_data = userData
    }

    /// Cancels every in-flight request whose user_data equals `target`.
    public func prepCancel(target: UInt64, userData: UInt64) {
        let s = sqe()
        io_uring_prep_cancel64(s, target, 0)
        s.pointee.user_data = userData
    }
}

// nghttp2 (Debian libnghttp2-dev) for HTTP/2: framing, HPACK, flow control and the protocol's
// checks (RFC 9113 §8.2 header rules, content-length, stream states), driven sans-I/O by the
// worker's ring through nghttp2_session_mem_recv / mem_send (Sources/HTTP2).
#pragma once
#include <nghttp2/nghttp2.h>

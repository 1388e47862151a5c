// liburing from Debian (liburing-dev 2.3). Only what Swift cannot call cleanly lives here:
// the buffer-ring helpers take `struct io_uring_buf_ring *`, whose flexible-array union Swift
// imports poorly, so they are wrapped to take `void *`.
#pragma once
// liburing.h defines _GNU_SOURCE, which changes glibc's struct definitions and breaks Swift's
// merging of this module with Glibc ("fd_set ... not present in definition"). Including the
// system headers first, without it, fixes their definitions; the rest of liburing needs
// nothing GNU-only but cpu_set_t, declared here the way glibc lays it out.
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/select.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <inttypes.h>
#include <time.h>
#include <fcntl.h>
#include <sched.h>
#ifndef __USE_GNU
#ifndef _BITS_CPU_SET_H
typedef struct { unsigned long __bits[1024 / (8 * sizeof(unsigned long))]; } cpu_set_t;
#endif
#endif
#include <liburing.h>
// Constants Swift cannot import (enum-derived macros).
static const unsigned char ING_IOSQE_BUFFER_SELECT = IOSQE_BUFFER_SELECT;
static const unsigned int ING_CQE_F_BUFFER = IORING_CQE_F_BUFFER;
static const unsigned int ING_CQE_F_MORE = IORING_CQE_F_MORE;
static const unsigned int ING_CQE_BUFFER_SHIFT = IORING_CQE_BUFFER_SHIFT;
#include <string.h>

static inline void ing_buf_ring_init(void *br) { io_uring_buf_ring_init((struct io_uring_buf_ring *)br); }
static inline void ing_buf_ring_add(void *br, void *addr, unsigned int len, unsigned short bid, int mask, int offset) {
    io_uring_buf_ring_add((struct io_uring_buf_ring *)br, addr, len, bid, mask, offset);
}
static inline void ing_buf_ring_advance(void *br, int count) { io_uring_buf_ring_advance((struct io_uring_buf_ring *)br, count); }
static inline int ing_register_buf_ring(struct io_uring *ring, void *addr, unsigned int entries, unsigned short bgid) {
    struct io_uring_buf_reg reg;
    memset(&reg, 0, sizeof(reg));
    reg.ring_addr = (unsigned long)addr;
    reg.ring_entries = entries;
    reg.bgid = bgid;
    return io_uring_register_buf_ring(ring, &reg, 0);
}

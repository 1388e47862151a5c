// Small C helpers that Swift cannot express directly on raw shared memory or that are
// variadic/macro-only in glibc. Header-only: every function is static inline.
#pragma once
// Only headers whose definitions match the Glibc module (no _GNU_SOURCE here: it changes
// struct definitions and breaks Swift's module merging). GNU-only functions are declared by hand.
#include <stdint.h>
#include <stddef.h>
#include <errno.h>
#include <time.h>
#include <fcntl.h>

extern int memfd_create(const char *name, unsigned int flags);
extern int prctl(int option, ...);
extern int malloc_trim(size_t pad);
#define ING_PR_SET_PDEATHSIG 1
#define ING_PR_SET_NAME 15

// Atomics on memory that Swift sees only as raw pointers (the shared-memory region).
// Acquire/release pairs implement the publish protocol of DESIGN.md §2.
static inline uint64_t ing_load_acquire_u64(const void *p) { return __atomic_load_n((const uint64_t *)p, __ATOMIC_ACQUIRE); }
static inline void ing_store_release_u64(void *p, uint64_t v) { __atomic_store_n((uint64_t *)p, v, __ATOMIC_RELEASE); }
static inline uint64_t ing_load_relaxed_u64(const void *p) { return __atomic_load_n((const uint64_t *)p, __ATOMIC_RELAXED); }
static inline void ing_store_relaxed_u64(void *p, uint64_t v) { __atomic_store_n((uint64_t *)p, v, __ATOMIC_RELAXED); }
static inline uint32_t ing_load_acquire_u32(const void *p) { return __atomic_load_n((const uint32_t *)p, __ATOMIC_ACQUIRE); }
static inline void ing_store_release_u32(void *p, uint32_t v) { __atomic_store_n((uint32_t *)p, v, __ATOMIC_RELEASE); }
static inline uint64_t ing_fetch_add_u64(void *p, uint64_t v) { return __atomic_fetch_add((uint64_t *)p, v, __ATOMIC_RELAXED); }
/// Compare-and-swap (acq_rel); returns the value found (== expected: it was swapped).
static inline uint64_t ing_cas_u64(void *p, uint64_t expected, uint64_t desired) { __atomic_compare_exchange_n((uint64_t *)p, &expected, desired, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE); return expected; }

static inline int ing_memfd_create(const char *name, unsigned int flags) { return memfd_create(name, flags); }
/// Returns free heap memory to the kernel (glibc: also whole free pages inside the heap).
static inline int ing_malloc_trim(void) { return malloc_trim(0); }
static inline int ing_set_pdeathsig(int sig) { return prctl(ING_PR_SET_PDEATHSIG, sig, 0, 0, 0); }
static inline int ing_set_name(const char *name) { return prctl(ING_PR_SET_NAME, (unsigned long)name, 0, 0, 0); }
static inline int ing_errno(void) { return errno; }
static inline int ing_fcntl_int(int fd, int cmd, int arg) { return fcntl(fd, cmd, arg); }
static inline int ing_fcntl(int fd, int cmd) { return fcntl(fd, cmd); }

static inline uint64_t ing_monotonic_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
static inline uint64_t ing_realtime_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

// Sequentially consistent store and load: the worker's "claim then re-check" on the published
// generation needs a store-load fence (DESIGN.md §2 slot reuse).
static inline void ing_store_seqcst_u64(void *p, uint64_t v) { __atomic_store_n((uint64_t *)p, v, __ATOMIC_SEQ_CST); }
static inline uint64_t ing_load_seqcst_u64(const void *p) { return __atomic_load_n((const uint64_t *)p, __ATOMIC_SEQ_CST); }

// splice(2) and pipe2(2) are GNU-only declarations in glibc (not visible without _GNU_SOURCE,
// see above): called through syscall(2), returning -errno on failure so the loop reads no errno.
#include <unistd.h>
#include <sys/syscall.h>
#define ING_SPLICE_F_MOVE 1u
#define ING_SPLICE_F_NONBLOCK 2u
#define ING_F_SETPIPE_SZ 1031
#define ING_F_GETPIPE_SZ 1032
static inline long ing_splice(int fd_in, int fd_out, size_t len, unsigned int flags) {
    long r = syscall(SYS_splice, fd_in, (void *)0, fd_out, (void *)0, len, flags);
    return r < 0 ? -(long)errno : r;
}
static inline int ing_pipe2(int fds[2], int flags) {
    return syscall(SYS_pipe2, fds, flags) < 0 ? -errno : 0;
}

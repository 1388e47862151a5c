/* openloop: an open-loop HTTP/1.1 load generator for latency at a fixed request rate.
 *
 * Request k is due at t0 + k / rate (evenly spaced). A due request is sent on an idle
 * keep-alive connection of a fixed pool; if none is idle it waits in a queue. Its latency is
 * measured from the time it was DUE, not from when it was sent, so queueing inside the
 * generator (because the proxy is slow to answer) counts against the proxy: no coordinated
 * omission (the request schedule never waits for responses).
 *
 *   openloop HOST PORT PATH RATE DURATION_S [CONNS [WARMUP_S [HOSTHEADER]]]
 *
 * Prints key=value lines: sent, completed, errors, unfinished, rate (achieved), and the
 * latency percentiles p50 p90 p99 p999 max in microseconds. Percentile q is the nearest-rank
 * value: the ceil(q * n)-th smallest of the n recorded latencies. Requests due during the
 * first WARMUP_S seconds are not recorded. Requests still unanswered one second after the
 * schedule ends are counted as unfinished (and recorded with their latency so far).
 *
 * Build: cc -O2 -o openloop openloop.c (perf/bench does this on first use). Linux only.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BUF 65536

struct conn {
    int fd;
    int busy;          /* a request is outstanding */
    int connected;
    uint64_t due_ns;   /* when the outstanding request was due */
    int record;        /* record its latency */
    size_t have;       /* bytes buffered of the current response */
    long body_left;    /* -1: head not complete yet */
    char buf[BUF];
};

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static struct sockaddr_in addr;
static int ep;
static char request[1024];
static size_t request_len;
static long errors;

/* Blocking connect (loopback answers at once), then non-blocking for the loop. */
static int open_conn(struct conn *c) {
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0) return -1;
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(c->fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
        close(c->fd);
        c->fd = -1;
        return -1;
    }
    fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
    c->busy = 0;
    c->connected = 1;
    c->have = 0;
    c->body_left = -1;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
    return 0;
}

static void drop_conn(struct conn *c) {
    if (c->fd >= 0) {
        epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
    }
    c->fd = -1;
    c->busy = 0;
}

/* Latencies in microseconds; grows as needed. */
static uint32_t *lat;
static size_t nlat, caplat;
static void record(uint64_t ns) {
    if (nlat == caplat) {
        caplat = caplat ? caplat * 2 : 1 << 16;
        lat = realloc(lat, caplat * sizeof *lat);
        if (!lat) { perror("realloc"); exit(1); }
    }
    uint64_t us = ns / 1000;
    lat[nlat++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

static int cmp(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static uint32_t pct(double q) {
    if (nlat == 0) return 0;
    size_t rank = (size_t)(q * (double)nlat);
    if ((double)rank < q * (double)nlat) rank++; /* ceil */
    if (rank < 1) rank = 1;
    return lat[rank - 1];
}

/* Parses what is buffered; returns 1 when the response is complete. Handles Content-Length
 * bodies (what the bench's upstream sends); chunked or close-delimited answers are errors. */
static int response_done(struct conn *c) {
    if (c->body_left < 0) {
        char *end = memmem(c->buf, c->have, "\r\n\r\n", 4);
        if (!end) {
            if (c->have == BUF) return -1;
            return 0;
        }
        size_t head = (size_t)(end - c->buf) + 4;
        long length = -1;
        for (char *p = c->buf; p < end; ) {
            char *eol = memmem(p, (size_t)(end - p) + 2, "\r\n", 2);
            if (!eol) break;
            if (eol - p > 15 && strncasecmp(p, "content-length:", 15) == 0) length = strtol(p + 15, NULL, 10);
            p = eol + 2;
        }
        if (length < 0) return -1;
        if (strncmp(c->buf, "HTTP/1.1 2", 10) != 0) errors++;
        c->body_left = length;
        size_t extra = c->have - head;
        if ((long)extra > c->body_left) return -1; /* pipelining never happens here */
        c->body_left -= (long)extra;
        c->have = 0;
    } else {
        c->body_left -= (long)c->have;
        c->have = 0;
    }
    return c->body_left == 0 ? 1 : 0;
}

int main(int argc, char **argv) {
    if (argc < 6) {
        fprintf(stderr, "usage: openloop HOST PORT PATH RATE DURATION_S [CONNS [WARMUP_S [HOSTHEADER]]]\n");
        return 2;
    }
    const char *host = argv[1];
    int port = atoi(argv[2]);
    const char *path = argv[3];
    double rate = atof(argv[4]);
    double duration = atof(argv[5]);
    int nconns = argc > 6 ? atoi(argv[6]) : 64;
    double warmup = argc > 7 ? atof(argv[7]) : 1.0;
    const char *hosthdr = argc > 8 ? argv[8] : host;
    if (rate <= 0 || duration <= 0 || nconns <= 0) { fprintf(stderr, "openloop: bad arguments\n"); return 2; }

    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) { fprintf(stderr, "openloop: bad IPv4 %s\n", host); return 2; }
    request_len = (size_t)snprintf(request, sizeof request,
                                   "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: openloop\r\n\r\n", path, hosthdr);

    ep = epoll_create1(EPOLL_CLOEXEC);
    struct conn *conns = calloc((size_t)nconns, sizeof *conns);
    if (!conns) { perror("calloc"); return 1; }
    for (int i = 0; i < nconns; i++) {
        if (open_conn(&conns[i]) < 0) { perror("connect"); return 1; }
    }
    struct epoll_event evs[256];

    /* Queue of due times (ring) and the idle-connection stack. */
    size_t qcap = 1 << 20, qhead = 0, qlen = 0;
    uint64_t *queue = malloc(qcap * sizeof *queue);
    struct conn **idle = malloc((size_t)nconns * sizeof *idle);
    int nidle = 0;
    for (int i = 0; i < nconns; i++) idle[nidle++] = &conns[i];

    double interval_ns = 1e9 / rate;
    uint64_t t0 = now_ns() + 1000000; /* 1 ms from now */
    uint64_t total = (uint64_t)((warmup + duration) * rate);
    uint64_t warm = (uint64_t)(warmup * rate);
    uint64_t next = 0, sent = 0, completed = 0, unfinished = 0;
    uint64_t end_ns = t0 + (uint64_t)((warmup + duration) * 1e9);
    uint64_t measure_start = t0 + (uint64_t)(warmup * 1e9);

    for (;;) {
        uint64_t now = now_ns();
        while (next < total && t0 + (uint64_t)((double)next * interval_ns) <= now) {
            if (qlen == qcap) { fprintf(stderr, "openloop: queue overflow (far past saturation)\n"); return 1; }
            queue[(qhead + qlen) % qcap] = t0 + (uint64_t)((double)next * interval_ns);
            qlen++;
            next++;
        }
        while (qlen > 0 && nidle > 0) {
            struct conn *c = idle[--nidle];
            if (c->fd < 0 && open_conn(c) < 0) { errors++; continue; }
            uint64_t due = queue[qhead];
            qhead = (qhead + 1) % qcap;
            qlen--;
            ssize_t w = send(c->fd, request, request_len, MSG_NOSIGNAL);
            if (w != (ssize_t)request_len) { /* a fresh socket takes a small request whole */
                errors++;
                drop_conn(c);
                idle[nidle++] = c;
                continue;
            }
            c->busy = 1;
            c->due_ns = due;
            c->record = due >= measure_start;
            c->have = 0;
            c->body_left = -1;
            sent++;
        }
        if (next >= total && qlen == 0) {
            int outstanding = 0;
            for (int i = 0; i < nconns; i++) outstanding += conns[i].busy;
            if (outstanding == 0) break;
            if (now > end_ns + 1000000000ull) {
                for (int i = 0; i < nconns; i++) {
                    if (conns[i].busy && conns[i].record) { record(now - conns[i].due_ns); unfinished++; }
                }
                break;
            }
        }
        /* Sleep until the next request is due, or an answer arrives. */
        struct timespec timeout = {0, 0};
        if (next < total) {
            uint64_t due = t0 + (uint64_t)((double)next * interval_ns);
            uint64_t wait = due > now ? due - now : 0;
            timeout.tv_sec = (time_t)(wait / 1000000000ull);
            timeout.tv_nsec = (long)(wait % 1000000000ull);
        } else {
            timeout.tv_nsec = 10000000;
        }
        int n = epoll_pwait2(ep, evs, 256, &timeout, NULL);
        if (n < 0 && errno != EINTR) { perror("epoll_pwait2"); return 1; }
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (c->fd < 0) continue;
            int dead = 0;
            for (;;) {
                ssize_t r = recv(c->fd, c->buf + c->have, BUF - c->have, 0);
                if (r > 0) {
                    c->have += (size_t)r;
                    if (!c->busy) { dead = 1; break; }
                    int d = response_done(c);
                    if (d < 0) { dead = 1; break; }
                    if (d == 1) {
                        uint64_t t = now_ns();
                        if (c->record) record(t - c->due_ns);
                        c->busy = 0;
                        completed++;
                        idle[nidle++] = c;
                    }
                    continue;
                }
                if (r == 0) { dead = 1; break; }
                if (errno == EAGAIN || errno == EWOULDBLOCK) break;
                if (errno == EINTR) continue;
                dead = 1;
                break;
            }
            if (dead) {
                errors++;
                int was_busy = c->busy;
                drop_conn(c);
                if (was_busy) idle[nidle++] = c;   /* reconnects on next use */
                else {
                    /* it was idle: it is already on the stack; reconnect lazily */
                }
            }
        }
    }
    qsort(lat, nlat, sizeof *lat, cmp);
    double measured_s = duration;
    printf("sent=%llu\ncompleted=%llu\nerrors=%ld\nunfinished=%llu\nrecorded=%zu\n",
           (unsigned long long)sent, (unsigned long long)completed, errors,
           (unsigned long long)unfinished, nlat);
    printf("rate=%.1f\n", (double)(nlat) / measured_s);
    printf("p50_us=%u\np90_us=%u\np99_us=%u\np999_us=%u\nmax_us=%u\n",
           pct(0.50), pct(0.90), pct(0.99), pct(0.999), nlat ? lat[nlat - 1] : 0);
    (void)warm;
    return 0;
}

/* tlsloop: new TLS connections per second, full or resumed handshakes.
 *
 * CONNS slots run in parallel on one thread (epoll, non-blocking). Each slot loops:
 * TCP connect -> TLS handshake (SNI set) -> GET PATH (Connection: close) -> read the whole
 * response (Content-Length, or up to the close) -> close_notify -> close. In `resumed` mode a
 * slot offers the session (ticket) of its previous connection with SSL_set_session, and takes
 * the newest one (SSL_get1_session after the response, when TLS 1.3 tickets have arrived)
 * for the next, as a browser does; SSL_session_reused() counts the connections that really
 * resumed. In `full` mode no session is ever offered (the server still issues its tickets, as
 * it would to any new client).
 * The first connection of every slot is a full handshake in both modes.
 *
 *   tlsloop HOST PORT full|resumed DURATION_S CONNS [SNI [PATH [TLSVER]]]
 *
 * TLSVER: 1.3 (default: the client offers TLS 1.3 only) or 1.2 (TLS 1.2 only). Certificates
 * are not verified (the bench checks each proxy's certificate separately); the server's
 * CertificateVerify signature is still checked by OpenSSL.
 *
 * Prints key=value lines: completed, reused (resumed handshakes among them), errors, non200,
 * secs, rate (completed per second), p50_us p99_us (connect to last response byte), and the
 * version, cipher and key-exchange group of the last completed connection.
 *
 * Build: cc -O2 -o tlsloop tlsloop.c -lssl -lcrypto (perf/bench does this on first use).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BUF 65536
#define MAX_SAMPLES (1 << 22)

enum state { S_CONNECT, S_HANDSHAKE, S_WRITE, S_READ };

struct slot {
    int fd;
    SSL *ssl;
    SSL_SESSION *session; /* resumed mode: the ticket to offer next */
    enum state state;
    uint64_t start_ns;
    size_t have;          /* bytes of the response read so far (head + body) */
    long head_len;        /* -1 until the head is complete */
    long content_length;  /* -1: read to the close */
    int status;
    char buf[BUF];
};

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static struct sockaddr_in addr;
static int ep;
static SSL_CTX *ctx;
static int resumed_mode;
static const char *sni;
static char request[1024];
static int request_len;
static long completed, reused, errors, non200;
static uint32_t *samples;
static long nsamples;
static char last_version[32], last_cipher[64], last_group[32];

static void watch(struct slot *s, uint32_t events, int op) {
    struct epoll_event ev = {.events = events, .data.ptr = s};
    if (epoll_ctl(ep, op, s->fd, &ev) < 0 && op == EPOLL_CTL_MOD)
        epoll_ctl(ep, EPOLL_CTL_ADD, s->fd, &ev);
}

static void slot_close(struct slot *s) {
    if (s->ssl) {
        SSL_free(s->ssl);
        s->ssl = NULL;
    }
    if (s->fd >= 0) {
        close(s->fd); /* also removes it from the epoll set */
        s->fd = -1;
    }
}

static int slot_open(struct slot *s) {
    s->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s->fd < 0)
        return -1;
    int one = 1;
    setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    s->start_ns = now_ns();
    s->have = 0;
    s->head_len = -1;
    s->content_length = -1;
    s->status = 0;
    s->ssl = SSL_new(ctx);
    SSL_set_fd(s->ssl, s->fd);
    SSL_set_tlsext_host_name(s->ssl, sni);
    if (resumed_mode && s->session)
        SSL_set_session(s->ssl, s->session);
    int r = connect(s->fd, (struct sockaddr *)&addr, sizeof addr);
    if (r == 0) {
        s->state = S_HANDSHAKE;
        watch(s, EPOLLOUT, EPOLL_CTL_ADD);
    } else if (errno == EINPROGRESS) {
        s->state = S_CONNECT;
        watch(s, EPOLLOUT, EPOLL_CTL_ADD);
    } else {
        slot_close(s);
        return -1;
    }
    return 0;
}

/* Waits for what OpenSSL asked for; returns 0, or -1 on a real error. */
static int want(struct slot *s, int ret) {
    int e = SSL_get_error(s->ssl, ret);
    if (e == SSL_ERROR_WANT_READ) {
        watch(s, EPOLLIN, EPOLL_CTL_MOD);
        return 0;
    }
    if (e == SSL_ERROR_WANT_WRITE) {
        watch(s, EPOLLOUT, EPOLL_CTL_MOD);
        return 0;
    }
    return -1;
}

static void parse_head(struct slot *s) {
    char *end = memmem(s->buf, s->have, "\r\n\r\n", 4);
    if (!end)
        return;
    s->head_len = end - s->buf + 4;
    s->status = atoi(s->buf + 9); /* "HTTP/1.1 200" */
    for (char *p = s->buf; p < end;) {
        char *eol = memmem(p, end + 2 - p, "\r\n", 2);
        if (!eol)
            break;
        if (eol - p > 15 && strncasecmp(p, "content-length:", 15) == 0)
            s->content_length = strtol(p + 15, NULL, 10);
        p = eol + 2;
    }
}

static void finish(struct slot *s, int ok) {
    if (ok) {
        completed++;
        if (SSL_session_reused(s->ssl))
            reused++;
        if (s->status != 200)
            non200++;
        if (nsamples < MAX_SAMPLES)
            samples[nsamples++] = (uint32_t)((now_ns() - s->start_ns) / 1000);
        if (resumed_mode) {
            SSL_SESSION *next = SSL_get1_session(s->ssl);
            if (next && SSL_SESSION_is_resumable(next)) {
                if (s->session)
                    SSL_SESSION_free(s->session);
                s->session = next;
            } else if (next) {
                SSL_SESSION_free(next);
            }
        }
        snprintf(last_version, sizeof last_version, "%s", SSL_get_version(s->ssl));
        snprintf(last_cipher, sizeof last_cipher, "%s", SSL_CIPHER_get_name(SSL_get_current_cipher(s->ssl)));
        const char *g = SSL_group_to_name(s->ssl, SSL_get_negotiated_group(s->ssl));
        snprintf(last_group, sizeof last_group, "%s", g ? g : "?");
        SSL_shutdown(s->ssl); /* sends close_notify; does not wait for the peer's */
    } else {
        errors++;
    }
    slot_close(s);
}

static void step(struct slot *s) {
    for (;;) {
        int r;
        switch (s->state) {
        case S_CONNECT: {
            int err = 0;
            socklen_t len = sizeof err;
            getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len);
            if (err) {
                finish(s, 0);
                return;
            }
            s->state = S_HANDSHAKE;
            break;
        }
        case S_HANDSHAKE:
            r = SSL_connect(s->ssl);
            if (r != 1) {
                if (want(s, r) < 0)
                    finish(s, 0);
                return;
            }
            s->state = S_WRITE;
            break;
        case S_WRITE:
            r = SSL_write(s->ssl, request, request_len);
            if (r <= 0) {
                if (want(s, r) < 0)
                    finish(s, 0);
                return;
            }
            s->state = S_READ;
            break;
        case S_READ:
            if (s->have == BUF) { /* keep the head, drop body bytes already counted */
                if (s->head_len < 0) {
                    finish(s, 0);
                    return;
                }
                s->content_length -= s->have - s->head_len;
                s->have = s->head_len;
            }
            r = SSL_read(s->ssl, s->buf + s->have, BUF - s->have);
            if (r <= 0) {
                int e = SSL_get_error(s->ssl, r);
                if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && r == 0)) {
                    /* closed: complete when no length was given */
                    finish(s, s->head_len >= 0 && s->content_length < 0);
                    return;
                }
                if (want(s, r) < 0)
                    finish(s, 0);
                return;
            }
            s->have += r;
            if (s->head_len < 0)
                parse_head(s);
            if (s->head_len >= 0 && s->content_length >= 0 &&
                (long)s->have - s->head_len >= s->content_length) {
                finish(s, 1);
                return;
            }
            break;
        }
    }
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static uint32_t pct(double q) {
    if (!nsamples)
        return 0;
    long k = (long)(q * nsamples + 0.999999);
    if (k < 1)
        k = 1;
    return samples[k - 1];
}

int main(int argc, char **argv) {
    if (argc < 6) {
        fprintf(stderr, "usage: tlsloop HOST PORT full|resumed DURATION_S CONNS [SNI [PATH [1.3|1.2]]]\n");
        return 2;
    }
    addr.sin_family = AF_INET;
    addr.sin_port = htons(atoi(argv[2]));
    if (inet_pton(AF_INET, argv[1], &addr.sin_addr) != 1) {
        fprintf(stderr, "tlsloop: HOST must be an IPv4 address\n");
        return 2;
    }
    resumed_mode = strcmp(argv[3], "resumed") == 0;
    if (!resumed_mode && strcmp(argv[3], "full") != 0) {
        fprintf(stderr, "tlsloop: mode must be full or resumed\n");
        return 2;
    }
    double duration = atof(argv[4]);
    int conns = atoi(argv[5]);
    sni = argc > 6 ? argv[6] : "bench.example.com";
    const char *path = argc > 7 ? argv[7] : "/";
    const char *ver = argc > 8 ? argv[8] : "1.3";
    request_len = snprintf(request, sizeof request,
                           "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: perf-tlsloop\r\nConnection: close\r\n\r\n",
                           path, sni);

    ctx = SSL_CTX_new(TLS_client_method());
    int v = strcmp(ver, "1.2") == 0 ? TLS1_2_VERSION : TLS1_3_VERSION;
    SSL_CTX_set_min_proto_version(ctx, v);
    SSL_CTX_set_max_proto_version(ctx, v);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    /* Sessions are handed over by hand (SSL_set_session); no internal client cache. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);

    samples = malloc(sizeof(uint32_t) * MAX_SAMPLES);
    ep = epoll_create1(0);
    struct slot *slots = calloc(conns, sizeof *slots);
    for (int i = 0; i < conns; i++) {
        slots[i].fd = -1;
        if (slot_open(&slots[i]) < 0)
            errors++;
    }
    uint64_t t0 = now_ns(), end = t0 + (uint64_t)(duration * 1e9), last = t0;
    int open = conns;
    struct epoll_event evs[256];
    while (open > 0) {
        uint64_t now = now_ns();
        if (now > end + 2000000000ull)
            break; /* in flight 2 s after the end: given up (counted as errors below) */
        int n = epoll_wait(ep, evs, 256, 100);
        for (int i = 0; i < n; i++) {
            struct slot *s = evs[i].data.ptr;
            if (s->fd < 0)
                continue;
            step(s);
            if (s->fd < 0) { /* finished: next connection, unless time is up */
                last = now_ns();
                if (last < end) {
                    if (slot_open(s) < 0) {
                        errors++;
                        open--;
                    }
                } else {
                    open--;
                }
            }
        }
    }
    for (int i = 0; i < conns; i++)
        if (slots[i].fd >= 0) {
            errors++;
            slot_close(&slots[i]);
        }
    double secs = (last - t0) / 1e9;
    qsort(samples, nsamples, sizeof *samples, cmp_u32);
    printf("completed=%ld\nreused=%ld\nerrors=%ld\nnon200=%ld\nsecs=%.3f\nrate=%.1f\n", completed, reused, errors,
           non200, secs, secs > 0 ? completed / secs : 0.0);
    printf("p50_us=%u\np99_us=%u\n", pct(0.50), pct(0.99));
    printf("version=%s\ncipher=%s\ngroup=%s\n", last_version[0] ? last_version : "-",
           last_cipher[0] ? last_cipher : "-", last_group[0] ? last_group : "-");
    return 0;
}

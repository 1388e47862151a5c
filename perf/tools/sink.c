/* sink: an HTTP/1.1 upload sink for perf/bench's upload scenario.
 *
 * Reads each request head and its whole Content-Length body (discarding it), then answers
 * "200 stored" and keeps the connection alive. nginx's own `return 200` answers before it has
 * read the body, which makes a closed-loop client (wrk) stall; this does not.
 *
 *   sink PORT        (listens on 127.0.0.1:PORT; single-threaded epoll)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define HEAD_MAX 16384
static const char answer[] = "HTTP/1.1 200 OK\r\nContent-Length: 7\r\nContent-Type: text/plain\r\n\r\nstored\n";
static char scratch[1 << 18];

struct conn {
    int fd;
    size_t have;        /* head bytes buffered */
    long long body;     /* body bytes still to discard; -1 while reading the head */
    char head[HEAD_MAX];
};

/* Consumes buffered head bytes: returns -1 on a bad request, else 0. On a complete head it
 * sets c->body and keeps any body bytes that came with it counted. */
static int take_head(struct conn *c) {
    char *end = memmem(c->head, c->have, "\r\n\r\n", 4);
    if (!end) return c->have == HEAD_MAX ? -1 : 0;
    size_t len = (size_t)(end - c->head) + 4;
    long long cl = 0;
    for (char *p = c->head; p < end;) {
        char *eol = memmem(p, (size_t)(end - p) + 2, "\r\n", 2);
        if (!eol) break;
        if (eol - p > 15 && strncasecmp(p, "content-length:", 15) == 0) cl = strtoll(p + 15, NULL, 10);
        if (eol - p > 18 && strncasecmp(p, "transfer-encoding:", 18) == 0) return -1;
        p = eol + 2;
    }
    long long extra = (long long)(c->have - len);
    if (extra > cl) return -1; /* no pipelining from the proxies here */
    c->body = cl - extra;
    c->have = 0;
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: sink PORT\n"); return 2; }
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(argv[1]))};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(lfd, (struct sockaddr *)&a, sizeof a) < 0 || listen(lfd, 4096) < 0) { perror("sink: bind"); return 1; }
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    struct epoll_event evs[128];
    for (;;) {
        int n = epoll_wait(ep, evs, 128, -1);
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (!c) {
                int fd;
                while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    struct conn *nc = calloc(1, sizeof *nc);
                    nc->fd = fd;
                    nc->body = -1;
                    struct epoll_event e = {.events = EPOLLIN, .data.ptr = nc};
                    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
                }
                continue;
            }
            int dead = 0;
            for (;;) {
                ssize_t r;
                if (c->body < 0) {
                    r = recv(c->fd, c->head + c->have, HEAD_MAX - c->have, 0);
                    if (r > 0) {
                        c->have += (size_t)r;
                        if (take_head(c) < 0) { dead = 1; break; }
                    }
                } else {
                    size_t want = c->body < (long long)sizeof scratch ? (size_t)c->body : sizeof scratch;
                    r = want ? recv(c->fd, scratch, want, 0) : 0;
                    if (want == 0) r = 1;  /* nothing to read: answer below */
                    else if (r > 0) c->body -= r;
                }
                if (r == 0) { dead = 1; break; }
                if (r < 0) {
                    if (errno == EAGAIN || errno == EWOULDBLOCK) break;
                    if (errno == EINTR) continue;
                    dead = 1;
                    break;
                }
                if (c->body == 0) {
                    /* Small answer; a loopback socket buffer always takes it whole. */
                    if (send(c->fd, answer, sizeof answer - 1, MSG_NOSIGNAL) != (ssize_t)(sizeof answer - 1)) {
                        dead = 1;
                        break;
                    }
                    c->body = -1;
                    c->have = 0;
                }
            }
            if (dead) {
                epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                close(c->fd);
                free(c);
            }
        }
    }
}

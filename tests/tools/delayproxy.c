/* delayproxy.c: a TCP proxy that adds latency, for the benchmarks and the
 * latency tests (this kernel has no netem).
 *
 *   delayproxy LISTEN_HOST:PORT TARGET_HOST:PORT RTT_MS
 *
 * Every chunk read from one side is written to the other side RTT_MS/2 ms
 * after it was read, so a request/response round trip gains RTT_MS.  The
 * chunks of a direction keep their order; end of input is passed on
 * (half-close) after the same delay.  One thread, epoll; both sockets get
 * TCP_NODELAY, so the proxy holds nothing back itself.  A direction stops
 * reading while more than QUEUE_MAX bytes wait in it.  Built and started
 * by tests/integration/lib/host.sh (host_delay_proxy); not installed. */
#define _GNU_SOURCE
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CHUNK     (64 * 1024)
#define QUEUE_MAX (16 * 1024 * 1024)
#define MAX_EV    64

struct chunk {
    struct chunk *next;
    int64_t due_ns;
    size_t len, off; /* len 0: end of input */
    char data[];
};

/* One direction: bytes read from `from` go to `to` after the delay. */
struct dir {
    int from, to;
    struct chunk *head, *tail;
    size_t queued;
    int eof_read;   /* end of input seen (its marker is queued) */
    int done;       /* end of input passed on, or the direction failed */
    int want_write; /* waiting for `to` to take more */
};

struct conn {
    int fd[2]; /* client, upstream */
    struct dir d[2];
    uint32_t mask[2]; /* what fd[i] is registered for */
};

static int64_t delay_ns;
static int ep;

static int64_t
now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int
split_addr(const char *s, struct addrinfo **out, int passive)
{
    struct addrinfo hints;
    const char *colon = strrchr(s, ':');
    char host[256];
    size_t n;

    if (colon == NULL || (n = (size_t)(colon - s)) >= sizeof(host)) {
        return -1;
    }
    memcpy(host, s, n);
    host[n] = '\0';
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = passive ? AI_PASSIVE : 0;
    return getaddrinfo(host, colon + 1, &hints, out) == 0 ? 0 : -1;
}

static void
nodelay(int fd)
{
    int one = 1;

    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* Register what each socket waits for: readable while its reading
 * direction may read, writable while its writing direction waits. */
static void
rearm(struct conn *c)
{
    for (int i = 0; i < 2; i++) {
        struct epoll_event ev;
        const struct dir *rd = &c->d[i];     /* reads fd[i] */
        const struct dir *wr = &c->d[1 - i]; /* writes fd[i] */

        memset(&ev, 0, sizeof(ev));
        ev.data.ptr = c;
        if (!rd->eof_read && !rd->done && rd->queued < QUEUE_MAX) {
            ev.events |= EPOLLIN;
        }
        if (wr->want_write && !wr->done) {
            ev.events |= EPOLLOUT;
        }
        if (ev.events != c->mask[i]) {
            c->mask[i] = ev.events;
            (void)epoll_ctl(ep, EPOLL_CTL_MOD, c->fd[i], &ev);
        }
    }
}

static void
conn_free(struct conn *c)
{
    for (int i = 0; i < 2; i++) {
        struct chunk *k = c->d[i].head;

        while (k != NULL) {
            struct chunk *next = k->next;
            free(k);
            k = next;
        }
        (void)epoll_ctl(ep, EPOLL_CTL_DEL, c->fd[i], NULL);
        close(c->fd[i]);
    }
    free(c);
}

static void
enqueue(struct dir *d, const char *buf, size_t n)
{
    struct chunk *k = malloc(sizeof(*k) + n);

    if (k == NULL) {
        perror("delayproxy: malloc");
        exit(1);
    }
    k->next = NULL;
    k->due_ns = now_ns() + delay_ns;
    k->len = n;
    k->off = 0;
    memcpy(k->data, buf, n);
    if (d->tail != NULL) {
        d->tail->next = k;
    } else {
        d->head = k;
    }
    d->tail = k;
    d->queued += n;
}

/* Read what is there.  -1 when the connection is to be dropped. */
static int
do_read(struct dir *d)
{
    static char buf[CHUNK];

    while (!d->eof_read && d->queued < QUEUE_MAX) {
        ssize_t r = recv(d->from, buf, sizeof(buf), MSG_DONTWAIT);

        if (r > 0) {
            enqueue(d, buf, (size_t)r);
        } else if (r == 0) {
            d->eof_read = 1;
            enqueue(d, NULL, 0);
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            return 0;
        } else if (errno != EINTR) {
            return -1;
        }
    }
    return 0;
}

/* Write the chunks that are due.  -1 when the connection is to be
 * dropped.  *next_due gets the earliest time still to wait for. */
static int
do_write(struct dir *d, int64_t now, int64_t *next_due)
{
    d->want_write = 0;
    while (d->head != NULL && !d->done) {
        struct chunk *k = d->head;

        if (k->due_ns > now) {
            if (*next_due < 0 || k->due_ns < *next_due) {
                *next_due = k->due_ns;
            }
            return 0;
        }
        if (k->len == 0) {
            (void)shutdown(d->to, SHUT_WR);
            d->done = 1;
        } else {
            ssize_t w = send(d->to,
                             k->data + k->off,
                             k->len - k->off,
                             MSG_DONTWAIT | MSG_NOSIGNAL);

            if (w < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK) {
                    d->want_write = 1;
                    return 0;
                }
                if (errno == EINTR) {
                    continue;
                }
                return -1;
            }
            k->off += (size_t)w;
            d->queued -= (size_t)w;
            if (k->off < k->len) {
                continue;
            }
        }
        d->head = k->next;
        if (d->head == NULL) {
            d->tail = NULL;
        }
        free(k);
    }
    return 0;
}

/* All connections, to find the next timer (a handful at a time). */
static struct conn **conns;
static size_t nconns, aconns;

static void
conn_add(struct conn *c)
{
    if (nconns == aconns) {
        aconns = aconns ? 2 * aconns : 16;
        conns = realloc(conns, aconns * sizeof(*conns));
        if (conns == NULL) {
            perror("delayproxy: realloc");
            exit(1);
        }
    }
    conns[nconns++] = c;
}

static void
conn_drop(size_t i)
{
    conn_free(conns[i]);
    conns[i] = conns[--nconns];
}

static void
accept_one(int lfd, const struct addrinfo *target)
{
    struct conn *c;
    struct epoll_event ev;
    int cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    int ufd = -1;

    if (cfd < 0) {
        return;
    }
    for (const struct addrinfo *ai = target; ai != NULL; ai = ai->ai_next) {
        ufd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
        if (ufd >= 0 && connect(ufd, ai->ai_addr, ai->ai_addrlen) == 0) {
            break;
        }
        if (ufd >= 0) {
            close(ufd);
            ufd = -1;
        }
    }
    if (ufd < 0) {
        fprintf(stderr, "delayproxy: cannot connect to the target: %s\n",
                strerror(errno));
        close(cfd);
        return;
    }
    nodelay(cfd);
    nodelay(ufd);
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        perror("delayproxy: calloc");
        exit(1);
    }
    c->fd[0] = cfd;
    c->fd[1] = ufd;
    c->d[0].from = cfd; /* client -> upstream */
    c->d[0].to = ufd;
    c->d[1].from = ufd; /* upstream -> client */
    c->d[1].to = cfd;
    memset(&ev, 0, sizeof(ev));
    ev.events = EPOLLIN;
    ev.data.ptr = c;
    (void)epoll_ctl(ep, EPOLL_CTL_ADD, cfd, &ev);
    (void)epoll_ctl(ep, EPOLL_CTL_ADD, ufd, &ev);
    c->mask[0] = c->mask[1] = EPOLLIN;
    conn_add(c);
}

int
main(int argc, char **argv)
{
    struct addrinfo *listen_ai = NULL, *target = NULL;
    struct epoll_event ev;
    int lfd, one = 1;
    static int listen_tag;

    if (argc != 4 || split_addr(argv[1], &listen_ai, 1) != 0 ||
        split_addr(argv[2], &target, 0) != 0) {
        fprintf(stderr,
                "usage: delayproxy LISTEN_HOST:PORT TARGET_HOST:PORT RTT_MS\n");
        return 2;
    }
    delay_ns = (int64_t)(strtod(argv[3], NULL) * 1e6 / 2);
    signal(SIGPIPE, SIG_IGN);
    lfd = socket(listen_ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (lfd < 0 ||
        setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(lfd, listen_ai->ai_addr, listen_ai->ai_addrlen) != 0 ||
        listen(lfd, 128) != 0) {
        fprintf(stderr, "delayproxy: cannot listen on %s: %s\n", argv[1],
                strerror(errno));
        return 1;
    }
    ep = epoll_create1(EPOLL_CLOEXEC);
    memset(&ev, 0, sizeof(ev));
    ev.events = EPOLLIN;
    ev.data.ptr = &listen_tag;
    (void)epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    printf("delayproxy: %s -> %s, +%s ms RTT\n", argv[1], argv[2], argv[3]);
    fflush(stdout);

    for (;;) {
        struct epoll_event evs[MAX_EV];
        int64_t now = now_ns(), next_due = -1;
        int timeout = -1, n;

        /* Write what is due everywhere, drop finished connections. */
        for (size_t i = 0; i < nconns;) {
            struct conn *c = conns[i];
            int bad = 0;

            for (int k = 0; k < 2; k++) {
                bad |= do_write(&c->d[k], now, &next_due) != 0;
            }
            if (bad || (c->d[0].done && c->d[1].done)) {
                conn_drop(i);
                continue;
            }
            rearm(c);
            i++;
        }
        if (next_due >= 0) {
            int64_t ms = (next_due - now + 999999) / 1000000;
            timeout = ms > 0 ? (int)ms : 0;
        }
        n = epoll_wait(ep, evs, MAX_EV, timeout);
        if (n < 0 && errno != EINTR) {
            perror("delayproxy: epoll_wait");
            return 1;
        }
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;

            if (evs[i].data.ptr == &listen_tag) {
                accept_one(lfd, target);
                continue;
            }
            for (int k = 0; k < 2; k++) {
                if (do_read(&c->d[k]) != 0) {
                    /* A reset: pass nothing more on, end both ways. */
                    c->d[0].done = c->d[1].done = 1;
                }
            }
        }
    }
}

/* serve.c: serve-protocol client: framing, handshake, requests, replies. */
#include "crebuild/serve.h"
#include "crebuild/log.h"
#include "crebuild/util.h"

#include <stdlib.h>
#include <string.h>

#define WBUF_SIZE (256 * 1024)
#define RBUF_SIZE (64 * 1024)

struct serve_conn {
    struct stream *s; /* NULL once closed */
    char *host;
    unsigned minor;
    unsigned char *wbuf;
    size_t wlen;
    unsigned char *rbuf;
    size_t rpos;
    size_t rlen;
    int rc; /* sticky failure */
    size_t pending;
    size_t acked;
    struct strbuf err;
    int hello_pending; /* greeting sent (or queued), answer not read */
    int wfail;         /* a write before the greeting's answer failed */
    int lost;          /* failed because the SSH session died */
    int ready;         /* greeting answered and accepted */
};

static int handshake_reply(struct serve_conn *c);

static const unsigned char zeros[8];

static void
put_le64(unsigned char *b, uint64_t v)
{
    int i;

    for (i = 0; i < 8; i++) {
        b[i] = (unsigned char)(v >> (8 * i));
    }
}

static uint64_t
get_le64(const unsigned char *b)
{
    uint64_t v = 0;
    int i;

    for (i = 7; i >= 0; i--) {
        v = v << 8 | b[i];
    }
    return v;
}

/* ---- closing and failure ---- */

/* Consume complete acks from the read buffer.  Returns 0, or CR_EPROTO
 * for a reply other than 1. */
static int
eat_acks(struct serve_conn *c)
{
    while (c->pending > 0 && c->rlen - c->rpos >= 8) {
        uint64_t v = get_le64(c->rbuf + c->rpos);
        if (v != 1) {
            return CR_EPROTO;
        }
        c->rpos += 8;
        c->pending--;
        c->acked++;
    }
    return 0;
}

/* Make room at the end of the read buffer. */
static void
compact(struct serve_conn *c)
{
    if (c->rpos > 0) {
        memmove(c->rbuf, c->rbuf + c->rpos, c->rlen - c->rpos);
        c->rlen -= c->rpos;
        c->rpos = 0;
    }
}

/* Send EOF, count the acks that still arrive, wait for exit, collect
 * stderr into *errtext and the exit status into *status. */
static void
shut(struct serve_conn *c, struct strbuf *errtext, int *status)
{
    struct stream *s = c->s;

    *status = -1;
    if (s == NULL) {
        return;
    }
    (void)s->ops->send_eof(s);
    /* Count the replies still in flight, unless the user wants out. */
    while (c->pending > 0 && !cr_interrupted) {
        ssize_t n;

        if (eat_acks(c) != 0) {
            break;
        }
        if (c->pending == 0) {
            break;
        }
        compact(c);
        if (c->rlen == RBUF_SIZE) {
            break;
        }
        n = s->ops->read(s, c->rbuf + c->rlen, RBUF_SIZE - c->rlen);
        if (n <= 0) {
            break;
        }
        c->rlen += (size_t)n;
    }
    (void)s->ops->close(s, status, errtext);
    c->s = NULL;
}

/* Record a failure, close the stream and work out the one-line reason.
 * With use_stderr, the remote's own message (if any) wins over what. */
static int
fail(struct serve_conn *c, int rc, int use_stderr, const char *what)
{
    struct strbuf errtext = STRBUF_INIT;
    int status = -1;

    if (c->rc != 0) {
        return c->rc;
    }
    c->rc = rc;
    shut(c, &errtext, &status);
    strbuf_reset(&c->err);
    if (use_stderr) {
        serve_stderr_line(errtext.buf, errtext.len, &c->err);
    }
    if (c->err.len > 0) {
        c->rc = CR_ENIX;
    } else {
        strbuf_addstr(&c->err, what);
        if (use_stderr && status > 0) {
            strbuf_addf(&c->err, " (exit status %d)", status);
        }
        /* The session died (the command said nothing, nor exited): the
         * SSH layer reports that itself. */
        c->lost = rc == CR_ESSH && status <= 0;
    }
    strbuf_release(&errtext);
    return c->rc;
}

static int
fail_eof(struct serve_conn *c)
{
    return fail(c, CR_EPROTO, 1, "connection closed unexpectedly");
}

static int
fail_io(struct serve_conn *c, int rc)
{
    return fail(c, rc < 0 ? rc : CR_ESYS, 1, "connection lost");
}

static int
fail_proto(struct serve_conn *c, const char *what)
{
    return fail(c, CR_EPROTO, 0, what);
}

/* ---- output ---- */

static int
write_out(struct serve_conn *c, const void *buf, size_t n)
{
    int rc;

    if (cr_interrupted) {
        return fail(c, CR_EINTR, 0, "interrupted");
    }
    if (c->wfail != 0) {
        return 0; /* dropped, see below */
    }
    rc = c->s->ops->write(c->s, buf, n);
    if (rc != 0 && rc != CR_EINTR && c->hello_pending) {
        /* The remote stopped reading before it answered our greeting (a
         * login message instead of the protocol, an error and exit): why
         * is on the read side, which reading the greeting reaches; what
         * we still write is dropped. */
        log_debug("%s: the remote stopped reading our requests", c->host);
        c->wfail = rc;
        return 0;
    }
    if (rc != 0) {
        return fail_io(c, rc);
    }
    return 0;
}

int
serve_flush(struct serve_conn *c)
{
    int rc;

    if (c->rc != 0) {
        return c->rc;
    }
    if (c->wlen > 0) {
        rc = write_out(c, c->wbuf, c->wlen);
        c->wlen = 0;
        if (rc != 0) {
            return rc;
        }
    }
    /* Keep the reply pipe drained so the remote never blocks on it. */
    return c->pending > 0 ? serve_poll(c) : 0;
}

int
serve_write_raw(struct serve_conn *c, const void *buf, size_t n)
{
    int rc;

    if (c->rc != 0) {
        return c->rc;
    }
    if (c->wlen + n <= WBUF_SIZE) {
        memcpy(c->wbuf + c->wlen, buf, n);
        c->wlen += n;
        return c->wlen == WBUF_SIZE ? serve_flush(c) : 0;
    }
    rc = serve_flush(c);
    if (rc != 0) {
        return rc;
    }
    if (n >= WBUF_SIZE / 2) {
        rc = write_out(c, buf, n);
        if (rc == 0 && c->pending > 0) {
            rc = serve_poll(c);
        }
        return rc;
    }
    memcpy(c->wbuf, buf, n);
    c->wlen = n;
    return 0;
}

int
serve_write_u64(struct serve_conn *c, uint64_t v)
{
    unsigned char b[8];

    put_le64(b, v);
    return serve_write_raw(c, b, 8);
}

int
serve_write_str(struct serve_conn *c, const void *s, size_t n)
{
    serve_write_u64(c, n);
    serve_write_raw(c, s, n);
    return serve_write_raw(c, zeros, (8 - n % 8) % 8);
}

static int
write_cstr(struct serve_conn *c, const char *s)
{
    return serve_write_str(c, s ? s : "", s ? strlen(s) : 0);
}

static int
write_strs(struct serve_conn *c, const char *const *v, size_t n)
{
    size_t i;

    serve_write_u64(c, n);
    for (i = 0; i < n; i++) {
        write_cstr(c, v[i]);
    }
    return c->rc;
}

static int
write_strvec(struct serve_conn *c, const struct strvec *sv)
{
    return write_strs(c, (const char *const *)sv->v, sv->n);
}

/* ---- input ---- */

/* Blocking: get at least one more byte into the read buffer. */
static int
fill(struct serve_conn *c)
{
    ssize_t n;
    int rc;

    if (c->rc != 0) {
        return c->rc;
    }
    if (c->wlen > 0) {
        rc = serve_flush(c);
        if (rc != 0) {
            return rc;
        }
    }
    compact(c);
    if (cr_interrupted) {
        return fail(c, CR_EINTR, 0, "interrupted");
    }
    n = c->s->ops->read(c->s, c->rbuf + c->rlen, RBUF_SIZE - c->rlen);
    if (n == 0) {
        return fail_eof(c);
    }
    if (n < 0) {
        return fail_io(c, (int)n);
    }
    c->rlen += (size_t)n;
    return 0;
}

static int
rd_exact(struct serve_conn *c, void *buf, size_t n)
{
    unsigned char *p = buf;

    /* A reply is only read after its request is on the wire. */
    if (c->wlen > 0 && serve_flush(c) != 0) {
        return c->rc;
    }
    if (c->hello_pending) {
        int rc;

        c->hello_pending = 0;
        rc = handshake_reply(c);
        if (rc != 0) {
            return rc;
        }
    }
    while (n > 0) {
        size_t k = c->rlen - c->rpos;
        int rc;

        if (k == 0) {
            rc = fill(c);
            if (rc != 0) {
                return rc;
            }
            continue;
        }
        if (k > n) {
            k = n;
        }
        memcpy(p, c->rbuf + c->rpos, k);
        c->rpos += k;
        p += k;
        n -= k;
    }
    return 0;
}

static int
rd_u64(struct serve_conn *c, uint64_t *v)
{
    unsigned char b[8];
    int rc = rd_exact(c, b, 8);

    if (rc == 0) {
        *v = get_le64(b);
    }
    return rc;
}

static int
rd_pad(struct serve_conn *c, uint64_t len)
{
    unsigned char b[8];
    size_t k = (size_t)((8 - len % 8) % 8);
    int rc;

    if (k == 0) {
        return 0;
    }
    rc = rd_exact(c, b, k);
    if (rc == 0 && memcmp(b, zeros, k) != 0) {
        return fail_proto(c, "non-zero padding in reply");
    }
    return rc;
}

/* The length of a string (at most max), before its bytes. */
static int
rd_len(struct serve_conn *c, uint64_t *len, size_t max)
{
    int rc = rd_u64(c, len);

    if (rc == 0 && *len > max) {
        return fail_proto(c, "over-long string in reply");
    }
    return rc;
}

/* The len bytes of a string, and its padding. */
static int
rd_body(struct serve_conn *c, struct strbuf *sb, uint64_t len)
{
    int rc;

    strbuf_reset(sb);
    while (sb->len < len) {
        size_t k = c->rlen - c->rpos;
        if (k == 0) {
            rc = fill(c);
            if (rc != 0) {
                return rc;
            }
            continue;
        }
        if (k > len - sb->len) {
            k = (size_t)len - sb->len;
        }
        strbuf_add(sb, c->rbuf + c->rpos, k);
        c->rpos += k;
    }
    if (memchr(sb->buf, 0, sb->len) != NULL) {
        return fail_proto(c, "NUL byte in reply string");
    }
    return rd_pad(c, len);
}

static int
rd_str(struct serve_conn *c, struct strbuf *sb, size_t max)
{
    uint64_t len;
    int rc;

    strbuf_reset(sb);
    rc = rd_len(c, &len, max);
    return rc != 0 ? rc : rd_body(c, sb, len);
}

/* What a reply (or one record of it) may still bring, in strings and in
 * bytes of them: going over is a protocol error, before the strings are
 * read.  The message reads "<what>[ of '<of>'] too big: more than
 * <max_count> <unit>" or "... <max_bytes> bytes of <unit>". */
struct budget {
    const char *what;
    const char *of; /* NULL, or the path a record is about */
    const char *unit;
    uint64_t max_count;
    uint64_t max_bytes;
    uint64_t count; /* used so far */
    uint64_t bytes;
};

static void
budget_init(struct budget *b,
            const char *what,
            const char *unit,
            uint64_t max_count,
            uint64_t max_bytes)
{
    memset(b, 0, sizeof(*b));
    b->what = what;
    b->unit = unit;
    b->max_count = max_count;
    b->max_bytes = max_bytes;
}

/* base + per * n, saturating. */
static uint64_t
allowance(uint64_t base, uint64_t per, size_t n)
{
    if (n != 0 && per > (UINT64_MAX - base) / n) {
        return UINT64_MAX;
    }
    return base + per * n;
}

/* Take count strings and bytes bytes from b (NULL: unbounded). */
static int
charge(struct serve_conn *c, struct budget *b, uint64_t count, uint64_t bytes)
{
    struct strbuf msg = STRBUF_INIT;
    int by_bytes;
    int rc;

    if (b == NULL) {
        return 0;
    }
    by_bytes = bytes > b->max_bytes - b->bytes;
    if (!by_bytes && count <= b->max_count - b->count) {
        b->count += count;
        b->bytes += bytes;
        return 0;
    }
    strbuf_addstr(&msg, b->what);
    if (b->of != NULL) {
        strbuf_addf(&msg, " of '%s'", b->of);
    }
    strbuf_addf(&msg,
                " too big: more than %llu %s%s",
                (unsigned long long)(by_bytes ? b->max_bytes : b->max_count),
                by_bytes ? "bytes of " : "",
                b->unit);
    rc = fail_proto(c, msg.buf);
    strbuf_release(&msg);
    return rc;
}

/* A string of at most max bytes, charged to b. */
static int
rd_str_in(struct serve_conn *c, struct strbuf *sb, size_t max, struct budget *b)
{
    uint64_t len;
    int rc;

    strbuf_reset(sb);
    rc = rd_len(c, &len, max);
    if (rc == 0) {
        rc = charge(c, b, 0, len);
    }
    return rc != 0 ? rc : rd_body(c, sb, len);
}

/* A list of strings of at most max_len bytes each, appended to out and
 * charged to b and (if not NULL) to the reply's budget all. */
static int
rd_strs(struct serve_conn *c,
        struct strvec *out,
        size_t max_len,
        struct budget *b,
        struct budget *all)
{
    struct strbuf sb = STRBUF_INIT;
    uint64_t n;
    uint64_t len;
    uint64_t i;
    int rc;

    rc = rd_u64(c, &n);
    if (rc == 0) {
        rc = charge(c, b, n, 0);
    }
    if (rc == 0) {
        rc = charge(c, all, n, 0);
    }
    for (i = 0; rc == 0 && i < n; i++) {
        rc = rd_len(c, &len, max_len);
        if (rc == 0) {
            rc = charge(c, b, 0, len);
        }
        if (rc == 0) {
            rc = charge(c, all, 0, len);
        }
        if (rc == 0) {
            rc = rd_body(c, &sb, len);
        }
        if (rc == 0) {
            strvec_push(out, sb.buf);
        }
    }
    strbuf_release(&sb);
    return rc;
}

/* ---- handshake ---- */

static void
add_printable(struct strbuf *sb, const unsigned char *p, size_t n)
{
    size_t i;

    for (i = 0; i < n && sb->len < 120; i++) {
        if (p[i] == '\n') {
            strbuf_addstr(sb, "\\n");
        } else if (p[i] == '\r' || p[i] == '\t') {
            strbuf_addch(sb, ' ');
        } else if (p[i] >= 0x20 && p[i] < 0x7f) {
            strbuf_addch(sb, p[i]);
        } else {
            strbuf_addf(sb, "\\x%02x", p[i]);
        }
    }
}

static int
mismatch(struct serve_conn *c, const unsigned char *first)
{
    struct strbuf got = STRBUF_INIT;
    unsigned char more[112];
    ssize_t n;
    int eof = 0;
    int rc;

    add_printable(&got, first, 8);
    add_printable(&got, c->rbuf + c->rpos, c->rlen - c->rpos);
    n = c->s->ops->read_nb(c->s, more, sizeof(more), &eof);
    if (n > 0) {
        add_printable(&got, more, (size_t)n);
    }
    rc = fail_proto(c, "protocol mismatch");
    strbuf_reset(&c->err);
    strbuf_addf(
        &c->err, "protocol mismatch from %s, got '%s'", c->host, got.buf);
    strbuf_release(&got);
    return rc;
}

static void
handshake_send(struct serve_conn *c)
{
    serve_write_u64(c, SERVE_MAGIC_1);
    serve_write_u64(c, SERVE_VERSION);
    c->hello_pending = 1;
}

static int
handshake_reply(struct serve_conn *c)
{
    unsigned char b[8];
    uint64_t v;
    int rc;

    rc = rd_exact(c, b, 8);
    if (rc != 0) {
        return rc;
    }
    if (get_le64(b) != SERVE_MAGIC_2) {
        return mismatch(c, b);
    }
    rc = rd_u64(c, &v);
    if (rc != 0) {
        return rc;
    }
    if ((v >> 8) != 2) {
        fail_proto(c, "");
        strbuf_reset(&c->err);
        strbuf_addf(&c->err,
                    "unsupported serve protocol version 0x%llx",
                    (unsigned long long)v);
        return c->rc;
    }
    c->minor = (unsigned)(v & 0xff);
    if (c->minor > (SERVE_VERSION & 0xff)) {
        c->minor = SERVE_VERSION & 0xff;
    }
    c->ready = 1;
    log_debug("%s speaks serve protocol 2.%u", c->host, c->minor);
    return 0;
}

struct serve_conn *
serve_start(struct stream *s, const char *host)
{
    struct serve_conn *c = xcalloc(1, sizeof(*c));

    c->s = s;
    c->host = xstrdup(host ? host : "remote");
    c->wbuf = xmalloc(WBUF_SIZE);
    c->rbuf = xmalloc(RBUF_SIZE);
    strbuf_init(&c->err, 0);
    handshake_send(c);
    return c;
}

int
serve_ready(const struct serve_conn *c)
{
    return c->ready;
}

int
serve_lost(const struct serve_conn *c)
{
    return c->lost;
}

int
serve_open(struct stream *s, const char *host, struct serve_conn **out)
{
    struct serve_conn *c = serve_start(s, host);
    int rc;

    *out = NULL;
    rc = serve_flush(c);
    if (rc == 0) {
        rc = rd_exact(c, NULL, 0);
    }
    if (rc != 0) {
        if (strncmp(c->err.buf, "protocol mismatch", 17) == 0) {
            log_error("%s", c->err.buf);
        } else {
            log_error("cannot start nix-store --serve on %s: %s",
                      c->host,
                      c->err.buf);
        }
        serve_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

unsigned
serve_minor(const struct serve_conn *c)
{
    return c->minor;
}

void
serve_lower_minor(struct serve_conn *c, unsigned minor)
{
    if (minor < c->minor) {
        c->minor = minor;
    }
}

const char *
serve_host(const struct serve_conn *c)
{
    return c->host;
}

const char *
serve_error(const struct serve_conn *c)
{
    return c->err.buf;
}

size_t
serve_acked(const struct serve_conn *c)
{
    return c->acked;
}

size_t
serve_pending(const struct serve_conn *c)
{
    return c->pending;
}

/* ---- requests ---- */

int
serve_query_valid_paths(struct serve_conn *c,
                        const struct strvec *paths,
                        int lock,
                        int substitute,
                        struct strvec *valid)
{
    struct budget b;
    uint64_t bytes = 0;

    serve_write_u64(c, SERVE_CMD_QUERY_VALID_PATHS);
    serve_write_u64(c, lock ? 1 : 0);
    serve_write_u64(c, substitute ? 1 : 0);
    write_strvec(c, paths);
    if (c->rc != 0) {
        return c->rc;
    }
    /* The answer is a subset of the question: no more paths, nor bytes
     * of them, than asked. */
    for (size_t i = 0; i < paths->n; i++) {
        bytes += strlen(paths->v[i]);
    }
    budget_init(&b, "QueryValidPaths reply", "paths", paths->n, bytes);
    return rd_strs(c, valid, SERVE_MAX_PATH, &b, NULL);
}

int
serve_query_closure(struct serve_conn *c,
                    const struct strvec *paths,
                    int include_outputs,
                    struct strvec *out)
{
    struct budget b;

    serve_write_u64(c, SERVE_CMD_QUERY_CLOSURE);
    serve_write_u64(c, include_outputs ? 1 : 0);
    write_strvec(c, paths);
    if (c->rc != 0) {
        return c->rc;
    }
    budget_init(&b,
                "QueryClosure reply",
                "paths",
                SERVE_MAX_PATHS,
                SERVE_MAX_PATHS_BYTES);
    return rd_strs(c, out, SERVE_MAX_PATH, &b, NULL);
}

static void
info_reset(struct serve_info *in)
{
    strbuf_reset(&in->path);
    strbuf_reset(&in->deriver);
    strvec_clear(&in->refs);
    in->download_size = 0;
    in->nar_size = 0;
    in->has_hash = 0;
    memset(in->nar_hash, 0, sizeof(in->nar_hash));
    strbuf_reset(&in->ca);
    strvec_clear(&in->sigs);
}

/* The budgets of a QueryPathInfos reply as a whole. */
struct info_budgets {
    struct budget refs; /* references, over all records */
    struct budget kept; /* bytes of derivers, CAs and signatures */
};

static int
read_info_rest(struct serve_conn *c,
               struct serve_info *in,
               struct strbuf *tmp,
               struct info_budgets *all)
{
    struct budget refs;
    struct budget sigs;
    int rc;

    budget_init(&refs,
                "path info",
                "references",
                SERVE_MAX_PATHS,
                SERVE_MAX_PATHS_BYTES);
    refs.of = in->path.buf;
    budget_init(
        &sigs, "path info", "signatures", SERVE_MAX_SIGS, SERVE_MAX_SIGS_BYTES);
    sigs.of = in->path.buf;
    rc = rd_str_in(c, &in->deriver, SERVE_MAX_PATH, &all->kept);
    if (rc == 0) {
        rc = rd_strs(c, &in->refs, SERVE_MAX_PATH, &refs, &all->refs);
    }
    if (rc == 0) {
        rc = rd_u64(c, &in->download_size);
    }
    if (rc == 0) {
        rc = rd_u64(c, &in->nar_size);
    }
    if (rc != 0 || c->minor < 4) {
        return rc;
    }
    rc = rd_str(c, tmp, SERVE_MAX_STR);
    if (rc == 0) {
        if (hash_parse_sha256(tmp->buf, in->nar_hash) != 0) {
            return fail_proto(c, "bad narHash in reply");
        }
        in->has_hash = 1;
        rc = rd_str_in(c, &in->ca, SERVE_MAX_STR, &all->kept);
    }
    if (rc == 0) {
        rc = rd_strs(c, &in->sigs, SERVE_MAX_STR, &sigs, &all->kept);
    }
    return rc;
}

int
serve_query_path_infos(struct serve_conn *c,
                       const struct strvec *paths,
                       serve_info_fn fn,
                       void *ctx)
{
    struct serve_info in;
    struct strbuf tmp = STRBUF_INIT;
    struct info_budgets all;
    size_t count = 0;
    int rc;

    budget_init(&all.refs,
                "QueryPathInfos reply",
                "references",
                allowance(SERVE_MAX_PATHS, SERVE_INFO_REFS_PER_PATH, paths->n),
                UINT64_MAX);
    budget_init(
        &all.kept,
        "QueryPathInfos reply",
        "derivers, content addresses and signatures",
        UINT64_MAX,
        allowance(SERVE_MAX_SIGS_BYTES, SERVE_INFO_BYTES_PER_PATH, paths->n));
    memset(&in, 0, sizeof(in));
    strbuf_init(&in.path, 0);
    strbuf_init(&in.deriver, 0);
    strbuf_init(&in.ca, 0);
    strvec_init(&in.refs);
    strvec_init(&in.sigs);

    serve_write_u64(c, SERVE_CMD_QUERY_PATH_INFOS);
    rc = write_strvec(c, paths);
    while (rc == 0) {
        info_reset(&in);
        rc = rd_str(c, &in.path, SERVE_MAX_PATH);
        if (rc != 0 || in.path.len == 0) {
            break;
        }
        if (++count > paths->n) {
            rc = fail_proto(c, "more path infos than asked for");
            break;
        }
        rc = read_info_rest(c, &in, &tmp, &all);
        if (rc == 0) {
            rc = fn(ctx, &in);
            if (rc != 0 && c->rc == 0) {
                /* The rest of the reply is unread: unusable now. */
                fail(c, rc, 0, "aborted while reading path infos");
            }
        }
    }
    info_reset(&in);
    strbuf_release(&in.path);
    strbuf_release(&in.deriver);
    strbuf_release(&in.ca);
    strbuf_release(&tmp);
    return rc;
}

int
serve_dump_request(struct serve_conn *c, const char *path)
{
    serve_write_u64(c, SERVE_CMD_DUMP_STORE_PATH);
    return write_cstr(c, path);
}

static int
nar_src(void *ctx, void *buf, size_t n)
{
    return rd_exact(ctx, buf, n);
}

int
serve_dump_read(struct serve_conn *c,
                nar_sink_fn tee,
                void *tctx,
                struct nar_result *res)
{
    int rc;

    if (c->rc != 0) {
        return c->rc;
    }
    rc = nar_parse(nar_src, c, tee, tctx, NULL, NULL, res);
    if (rc == CR_EPROTO && c->rc == 0) {
        /* A grammar error in the stream: it cannot be resynchronised. */
        fail(c, CR_EPROTO, 0, res->error ? res->error : "malformed NAR");
    } else if (rc != 0 && c->rc == 0) {
        fail(c, rc, 0, "aborted while reading a NAR");
    }
    return rc;
}

int
serve_add_begin(struct serve_conn *c, const struct serve_add *a)
{
    char hex[HASH_SHA256_HEX_LEN + 1];

    if (c->minor < 5) {
        serve_write_u64(c, SERVE_CMD_IMPORT_PATHS);
        return serve_write_u64(c, 1); /* a path follows */
    }
    hash_to_hex(a->nar_hash, HASH_SHA256_LEN, hex);
    serve_write_u64(c, SERVE_CMD_ADD_TO_STORE_NAR);
    write_cstr(c, a->path);
    write_cstr(c, a->deriver);
    write_cstr(c, hex);
    write_strs(c, a->refs, a->nrefs);
    serve_write_u64(c, a->reg_time);
    serve_write_u64(c, a->nar_size);
    serve_write_u64(c, 0); /* ultimate: never claimed, as nix does */
    write_strs(c, a->sigs, a->nsigs);
    return write_cstr(c, a->ca);
}

int
serve_add_end(struct serve_conn *c, const struct serve_add *a)
{
    if (c->minor < 5) {
        serve_write_u64(c, SERVE_EXPORT_MAGIC);
        write_cstr(c, a->path);
        write_strs(c, a->refs, a->nrefs);
        write_cstr(c, a->deriver);
        serve_write_u64(c, 0); /* no legacy signature */
        serve_write_u64(c, 0); /* no more paths */
    }
    if (c->rc == 0) {
        c->pending++;
    }
    return c->rc;
}

int
serve_poll(struct serve_conn *c)
{
    while (c->rc == 0 && c->pending > 0) {
        ssize_t n;
        int eof = 0;

        if (eat_acks(c) != 0) {
            return fail_proto(c, "unexpected reply to an upload");
        }
        if (c->pending == 0) {
            break;
        }
        compact(c);
        n = c->s->ops->read_nb(
            c->s, c->rbuf + c->rlen, RBUF_SIZE - c->rlen, &eof);
        if (n < 0) {
            return fail_io(c, (int)n);
        }
        if (n == 0) {
            return eof ? fail_eof(c) : 0;
        }
        c->rlen += (size_t)n;
    }
    return c->rc;
}

int
serve_wait(struct serve_conn *c)
{
    int rc = serve_flush(c);

    while (rc == 0 && c->pending > 0) {
        if (eat_acks(c) != 0) {
            return fail_proto(c, "unexpected reply to an upload");
        }
        if (c->pending > 0) {
            rc = fill(c);
        }
    }
    return rc;
}

void
serve_abort(struct serve_conn *c)
{
    struct strbuf errtext = STRBUF_INIT;
    int status;

    if (c->s == NULL) {
        return;
    }
    /* Pending requests still go out (their replies are awaited), but a
     * greeting alone (serve_start, then nothing) is not worth sending. */
    if (c->rc == 0 && c->wlen > 0 && !(c->hello_pending && c->wlen == 16)) {
        (void)c->s->ops->write(c->s, c->wbuf, c->wlen);
    }
    c->wlen = 0;
    shut(c, &errtext, &status);
    if (c->rc == 0) {
        c->rc = CR_EINTR;
    }
    strbuf_release(&errtext);
}

int
serve_finish(struct serve_conn *c)
{
    struct strbuf errtext = STRBUF_INIT;
    int status = -1;
    int rc;

    rc = serve_wait(c);
    if (rc != 0) {
        return rc;
    }
    if (c->rlen != c->rpos) {
        return fail_proto(c, "unexpected data from server");
    }
    shut(c, &errtext, &status);
    if (status == -1 && errtext.len == 0) {
        /* No exit status came back: the connection is gone. */
        c->rc = CR_ESSH;
        strbuf_reset(&c->err);
        strbuf_addstr(&c->err, "connection lost");
    } else if (status != 0) {
        c->rc = CR_ENIX;
        strbuf_reset(&c->err);
        serve_stderr_line(errtext.buf, errtext.len, &c->err);
        if (c->err.len == 0) {
            strbuf_addf(
                &c->err, "nix-store --serve exited with status %d", status);
        }
    }
    strbuf_release(&errtext);
    return c->rc;
}

int
serve_release(struct serve_conn *c)
{
    if (c->s == NULL || c->rc != 0 || c->pending != 0 || c->wlen != 0 ||
        c->hello_pending || c->s->ops->release == NULL) {
        return -1;
    }
    c->s->ops->release(c->s);
    c->s = NULL;
    serve_free(c);
    return 0;
}

void
serve_free(struct serve_conn *c)
{
    if (c == NULL) {
        return;
    }
    if (c->s != NULL) {
        c->pending = 0;
        serve_abort(c);
    }
    free(c->wbuf);
    free(c->rbuf);
    free(c->host);
    strbuf_release(&c->err);
    free(c);
}

/* ---- stderr ---- */

/* Copy text without terminal escape sequences and carriage returns. */
static void
strip_escapes(const char *s, size_t len, struct strbuf *out)
{
    size_t i = 0;

    while (i < len) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == 0x1b) {
            i++;
            if (i < len && s[i] == '[') {
                i++;
                while (i < len && !(s[i] >= 0x40 && s[i] <= 0x7e)) {
                    i++;
                }
            }
            i++;
            continue;
        }
        if (ch != '\r' && ch != 0) {
            strbuf_addch(out, ch);
        }
        i++;
    }
}

static void
add_squeezed(struct strbuf *out, const char *p, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        int sp = p[i] == ' ' || p[i] == '\t';
        if (sp && (out->len == 0 || out->buf[out->len - 1] == ' ')) {
            continue;
        }
        strbuf_addch(out, sp ? ' ' : p[i]);
    }
}

void
serve_stderr_line(const char *err, size_t len, struct strbuf *out)
{
    struct strbuf t = STRBUF_INIT;
    const char *p;
    const char *end;
    const char *last = NULL;
    size_t last_len = 0;
    size_t start = out->len;

    strip_escapes(err, len, &t);
    p = t.buf;
    end = t.buf + t.len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *eol = nl ? nl : end;
        const char *q = p;

        while (q < eol && (*q == ' ' || *q == '\t')) {
            q++;
        }
        if (q == p && (size_t)(eol - p) >= 6 && memcmp(p, "error:", 6) == 0) {
            /* This line and its indented continuation lines. */
            add_squeezed(out, p + 6, (size_t)(eol - p - 6));
            for (p = nl ? nl + 1 : end; p < end && (*p == ' ' || *p == '\t');) {
                nl = memchr(p, '\n', (size_t)(end - p));
                eol = nl ? nl : end;
                strbuf_addch(out, ' ');
                add_squeezed(out, p, (size_t)(eol - p));
                p = nl ? nl + 1 : end;
            }
            break;
        }
        if (q < eol) {
            last = p;
            last_len = (size_t)(eol - p);
        }
        p = nl ? nl + 1 : end;
    }
    if (out->len == start && last != NULL) {
        add_squeezed(out, last, last_len);
    }
    /* Trim what the squeezing left at the ends. */
    while (out->len > start && out->buf[out->len - 1] == ' ') {
        out->buf[--out->len] = '\0';
    }
    if (out->len > start && out->buf[start] == ' ') {
        memmove(out->buf + start, out->buf + start + 1, out->len - start);
        out->len--;
    }
    strbuf_release(&t);
}

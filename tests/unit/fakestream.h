/* fakestream.h: a fake struct stream that replays a scripted "server" and
 * records every byte written, and the wire helpers (little-endian u64s and
 * padded strings, as the serve protocol frames them) to build its input
 * and read back what was written.  Shared by test_serve.c, test_copy.c and
 * test_pathinfo.c; everything is static inline, so a test pays only for
 * what it uses.  Include after testutil.h. */
#ifndef CREBUILD_FAKESTREAM_H
#define CREBUILD_FAKESTREAM_H

#include "testutil.h"

#include "crebuild/host.h"
#include "crebuild/strbuf.h"
#include "crebuild/util.h"

#include <stdint.h>
#include <sys/types.h>

/* ---- the fake stream ----
 * The gate models a remote which cannot answer before it has received the
 * requests: in[gate_pos..] becomes visible only once gate_out bytes were
 * written (or EOF was sent).  A blocking read that would wait on a closed
 * gate fails the test: in reality it would wait for a reply to a request
 * not yet written.  gate_out 0 (the default) leaves the gate open. */

struct fake {
    struct stream s;
    struct strbuf in; /* what the "server" sends */
    size_t in_pos;
    size_t chunk;         /* max bytes per read, 0 = any */
    size_t nb_limit;      /* read_nb sees only in[0..nb_limit) */
    size_t gate_pos;      /* see above */
    size_t gate_out;      /* see above */
    struct strbuf out;    /* what the client wrote */
    struct strbuf events; /* 'W' write, 'R' blocking read, 'N' read_nb */
    const char *err;      /* stderr handed back by close */
    int status;           /* exit status handed back by close */
    size_t fail_write_at; /* writes beyond this many bytes fail */
    int eof_sent;
    int closed;
    int released; /* let go without waiting (fake_ops_release) */
};

static inline size_t
fake_visible_end(const struct fake *f)
{
    if (f->out.len >= f->gate_out || f->eof_sent) {
        return f->in.len;
    }
    return f->gate_pos;
}

static inline int
fake_write(struct stream *s, const void *buf, size_t n)
{
    struct fake *f = (struct fake *)s;

    assert_false(f->closed);
    assert_false(f->eof_sent);
    strbuf_addch(&f->events, 'W');
    if (f->fail_write_at && f->out.len + n > f->fail_write_at) {
        return CR_ESYS;
    }
    strbuf_add(&f->out, buf, n);
    return 0;
}

static inline ssize_t
fake_read(struct stream *s, void *buf, size_t n)
{
    struct fake *f = (struct fake *)s;
    size_t end = fake_visible_end(f);
    size_t k = end > f->in_pos ? end - f->in_pos : 0;

    assert_false(f->closed);
    strbuf_addch(&f->events, 'R');
    if (k == 0 && f->in_pos < f->in.len) {
        fail_msg("blocking read for a reply before all requests were "
                 "written (%zu of %zu bytes)",
                 f->out.len,
                 f->gate_out);
    }
    if (k > n) {
        k = n;
    }
    if (f->chunk && k > f->chunk) {
        k = f->chunk;
    }
    memcpy(buf, f->in.buf + f->in_pos, k);
    f->in_pos += k;
    return (ssize_t)k;
}

static inline ssize_t
fake_read_nb(struct stream *s, void *buf, size_t n, int *eof)
{
    struct fake *f = (struct fake *)s;
    size_t end = fake_visible_end(f);
    size_t k;

    if (end > f->nb_limit) {
        end = f->nb_limit;
    }
    k = end > f->in_pos ? end - f->in_pos : 0;
    assert_false(f->closed);
    strbuf_addch(&f->events, 'N');
    *eof = k == 0 && f->in_pos == f->in.len && f->nb_limit >= f->in.len;
    if (k > n) {
        k = n;
    }
    memcpy(buf, f->in.buf + f->in_pos, k);
    f->in_pos += k;
    return (ssize_t)k;
}

static inline int
fake_send_eof(struct stream *s)
{
    ((struct fake *)s)->eof_sent = 1;
    return 0;
}

static inline int
fake_close(struct stream *s, int *status, struct strbuf *err)
{
    struct fake *f = (struct fake *)s;

    assert_false(f->closed);
    f->closed = 1;
    *status = f->status;
    if (err != NULL && f->err != NULL) {
        strbuf_addstr(err, f->err);
    }
    return 0;
}

static inline void
fake_let_go(struct stream *s)
{
    struct fake *f = (struct fake *)s;

    assert_false(f->closed);
    assert_false(f->released);
    f->eof_sent = 1;
    f->released = 1;
}

static const struct stream_ops fake_ops = {
    fake_write, fake_read, fake_read_nb, fake_send_eof, fake_close, NULL};
/* A stream that can be let go of without waiting (as remote ones). */
static const struct stream_ops fake_ops_release = {fake_write,
                                                   fake_read,
                                                   fake_read_nb,
                                                   fake_send_eof,
                                                   fake_close,
                                                   fake_let_go};

static inline void
fake_init(struct fake *f)
{
    memset(f, 0, sizeof(*f));
    f->s.ops = &fake_ops;
    strbuf_init(&f->in, 0);
    strbuf_init(&f->out, 0);
    strbuf_init(&f->events, 0);
    f->nb_limit = SIZE_MAX;
}

static inline void
fake_release(struct fake *f)
{
    strbuf_release(&f->in);
    strbuf_release(&f->out);
    strbuf_release(&f->events);
}

/* ---- wire builders ---- */

static inline void
put_u64(struct strbuf *sb, uint64_t v)
{
    unsigned char b[8];
    for (int i = 0; i < 8; i++) {
        b[i] = (unsigned char)(v >> (8 * i));
    }
    strbuf_add(sb, b, 8);
}

static inline void
put_str(struct strbuf *sb, const char *s)
{
    static const char zero[8];
    size_t n = strlen(s);
    put_u64(sb, n);
    strbuf_add(sb, s, n);
    strbuf_add(sb, zero, (8 - n % 8) % 8);
}

/* ---- a reader over recorded output, for checking requests ---- */

struct cursor {
    const unsigned char *p;
    size_t left;
};

static inline uint64_t
get_u64(struct cursor *c)
{
    uint64_t v = 0;
    assert_true(c->left >= 8);
    for (int i = 7; i >= 0; i--) {
        v = v << 8 | c->p[i];
    }
    c->p += 8;
    c->left -= 8;
    return v;
}

static inline void
expect_str(struct cursor *c, const char *want)
{
    uint64_t n = get_u64(c);
    size_t padded = (size_t)(n + 7) / 8 * 8;
    if (n != strlen(want) || c->left < padded || memcmp(c->p, want, n) != 0) {
        fail_msg("expected string '%s' on the wire", want);
    }
    c->p += padded;
    c->left -= padded;
}

static inline void
expect_bytes(struct cursor *c, const void *want, size_t n)
{
    assert_true(c->left >= n);
    assert_memory_equal(c->p, want, n);
    c->p += n;
    c->left -= n;
}

#endif

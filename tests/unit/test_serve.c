/* test_serve.c: the serve-protocol client against a fake stream that
 * replays scripted bytes and records what is written. */
#include "testutil.h"

#include "fakestream.h"

#include "crebuild/log.h"
#include "crebuild/nar.h"
#include "crebuild/serve.h"
#include "crebuild/strbuf.h"
#include "crebuild/util.h"

#include <stdint.h>

static void
put_hello(struct strbuf *sb, uint64_t version)
{
    put_u64(sb, SERVE_MAGIC_2);
    put_u64(sb, version);
}

/* Log capture. */
static char *logbuf;
static size_t loglen;
static FILE *logfp;

static int
setup(void **state)
{
    (void)state;
    logfp = open_memstream(&logbuf, &loglen);
    log_set_stream(logfp);
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    log_set_stream(NULL);
    fclose(logfp);
    free(logbuf);
    logbuf = NULL;
    return 0;
}

static const char *
logged(void)
{
    fflush(logfp);
    return logbuf;
}

/* Open over f (which must already hold the server's hello). */
static struct serve_conn *
open_ok(struct fake *f)
{
    struct serve_conn *c = NULL;
    assert_int_equal(serve_open(&f->s, "alpha", &c), 0);
    assert_non_null(c);
    return c;
}

static void
skip_handshake(struct cursor *cur, struct fake *f)
{
    cur->p = (const unsigned char *)f->out.buf;
    cur->left = f->out.len;
    assert_int_equal(get_u64(cur), SERVE_MAGIC_1);
    assert_int_equal(get_u64(cur), SERVE_VERSION);
}

/* ---- handshake ---- */

static void
test_handshake_versions(void **state)
{
    static const struct {
        uint64_t server;
        unsigned minor;
    } v[] = {{0x207, 7}, {0x204, 4}, {0x205, 5}, {0x208, 7}, {0x2ff, 7}};
    (void)state;
    for (size_t i = 0; i < ARRAY_SIZE(v); i++) {
        struct fake f;
        struct serve_conn *c;
        static const unsigned char hello[16] = {
            0xeb, 0x9d, 0x0c, 0x39, 0, 0, 0, 0, 0x07, 0x02, 0, 0, 0, 0, 0, 0};
        fake_init(&f);
        f.chunk = 3; /* short reads */
        put_hello(&f.in, v[i].server);
        c = open_ok(&f);
        /* The exact bytes of reference section 10. */
        assert_int_equal(f.out.len, 16);
        assert_memory_equal(f.out.buf, hello, 16);
        assert_int_equal(serve_minor(c), v[i].minor);
        assert_int_equal(serve_finish(c), 0);
        assert_true(f.eof_sent);
        assert_true(f.closed);
        serve_free(c);
        fake_release(&f);
    }
}

static void
test_handshake_noise(void **state)
{
    struct fake f;
    struct serve_conn *c = (struct serve_conn *)&f;

    (void)state;
    fake_init(&f);
    strbuf_addstr(&f.in, "Welcome to alpha!\nLast login: yesterday\n");
    put_hello(&f.in, 0x207);
    assert_int_equal(serve_open(&f.s, "alpha", &c), CR_EPROTO);
    assert_null(c);
    assert_true(f.closed);
    assert_non_null(strstr(logged(),
                           "protocol mismatch from alpha, got "
                           "'Welcome to alpha!\\nLast login"));
    fake_release(&f);
}

static void
test_handshake_eof_stderr(void **state)
{
    struct fake f;
    struct serve_conn *c = NULL;

    (void)state;
    fake_init(&f);
    f.err = "bash: line 1: nix-store: command not found\n";
    f.status = 127;
    assert_int_equal(serve_open(&f.s, "alpha", &c), CR_ENIX);
    assert_null(c);
    assert_non_null(strstr(logged(),
                           "alpha: bash: line 1: nix-store: "
                           "command not found\n"));
    fake_release(&f);
}

static void
test_handshake_eof_silent(void **state)
{
    struct fake f;
    struct serve_conn *c = NULL;

    (void)state;
    fake_init(&f);
    f.status = 1;
    put_u64(&f.in, SERVE_MAGIC_2); /* then nothing */
    assert_int_equal(serve_open(&f.s, "alpha", &c), CR_EPROTO);
    assert_non_null(
        strstr(logged(), "connection closed unexpectedly (exit status 1)"));
    fake_release(&f);
}

static void
test_handshake_bad_major(void **state)
{
    struct fake f;
    struct serve_conn *c = NULL;

    (void)state;
    fake_init(&f);
    put_hello(&f.in, 0x307);
    assert_int_equal(serve_open(&f.s, "alpha", &c), CR_EPROTO);
    assert_non_null(strstr(logged(),
                           "unsupported serve protocol version "
                           "0x307"));
    fake_release(&f);
}

/* ---- queries ---- */

static void
test_query_valid_paths(void **state)
{
    struct fake f;
    struct serve_conn *c;
    struct strvec paths = STRVEC_INIT;
    struct strvec valid = STRVEC_INIT;
    struct cursor cur;

    (void)state;
    fake_init(&f);
    put_hello(&f.in, 0x207);
    put_u64(&f.in, 1);
    put_str(&f.in, "/nix/store/bbbb-b");
    strvec_pushl(&paths,
                 "/nix/store/aaaa-a",
                 "/nix/store/bbbb-b",
                 "/nix/store/cccc-c-1.0",
                 (const char *)NULL);
    c = open_ok(&f);
    assert_int_equal(serve_query_valid_paths(c, &paths, 1, 0, &valid), 0);
    assert_int_equal(valid.n, 1);
    assert_string_equal(valid.v[0], "/nix/store/bbbb-b");

    skip_handshake(&cur, &f);
    assert_int_equal(get_u64(&cur), 1); /* QueryValidPaths */
    assert_int_equal(get_u64(&cur), 1); /* lock */
    assert_int_equal(get_u64(&cur), 0); /* substitute */
    assert_int_equal(get_u64(&cur), 3);
    expect_str(&cur, "/nix/store/aaaa-a");
    expect_str(&cur, "/nix/store/bbbb-b");
    expect_str(&cur, "/nix/store/cccc-c-1.0");
    assert_int_equal(cur.left, 0);

    assert_int_equal(serve_finish(c), 0);
    serve_free(c);
    strvec_clear(&paths);
    strvec_clear(&valid);
    fake_release(&f);
}

/* A malformed or truncated reply to QueryValidPaths([a, b]). */
struct bad_reply {
    const char *name;
    void (*build)(struct strbuf *in);
    int rc;
    const char *err;
};

static void
r_truncated_count(struct strbuf *in)
{
    strbuf_add(in, "\x01\x00\x00", 3);
}

static void
r_truncated_string(struct strbuf *in)
{
    put_u64(in, 2);
    put_str(in, "/nix/store/aaaa-a");
    put_u64(in, 17);
    strbuf_addstr(in, "/nix/store/b");
}

static void
r_missing_padding(struct strbuf *in)
{
    put_u64(in, 1);
    put_u64(in, 3);
    strbuf_addstr(in, "abc");
}

static void
r_huge_string(struct strbuf *in)
{
    put_u64(in, 1);
    put_u64(in, (uint64_t)1 << 40);
}

static void
r_huge_count(struct strbuf *in)
{
    put_u64(in, UINT64_MAX);
}

static void
r_more_than_asked(struct strbuf *in)
{
    put_u64(in, 3);
}

static void
r_bad_padding(struct strbuf *in)
{
    put_u64(in, 1);
    put_u64(in, 3);
    strbuf_add(in, "abc\0\0\0\0\1", 8);
}

static void
r_nul_in_string(struct strbuf *in)
{
    put_u64(in, 1);
    put_u64(in, 3);
    strbuf_add(in, "a\0c\0\0\0\0\0", 8);
}

static const struct bad_reply bad_replies[] = {
    {"truncated count",
     r_truncated_count,
     CR_EPROTO,
     "connection closed unexpectedly"},
    {"truncated string",
     r_truncated_string,
     CR_EPROTO,
     "connection closed unexpectedly"},
    {"missing padding",
     r_missing_padding,
     CR_EPROTO,
     "connection closed unexpectedly"},
    {"huge string", r_huge_string, CR_EPROTO, "over-long string"},
    {"huge count", r_huge_count, CR_EPROTO, "too big: more than 2 paths"},
    {"more than asked",
     r_more_than_asked,
     CR_EPROTO,
     "too big: more than 2 paths"},
    {"bad padding", r_bad_padding, CR_EPROTO, "non-zero padding"},
    {"nul", r_nul_in_string, CR_EPROTO, "NUL byte"},
};

static void
test_bad_replies(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_SIZE(bad_replies); i++) {
        struct fake f;
        struct serve_conn *c;
        struct strvec paths = STRVEC_INIT;
        struct strvec valid = STRVEC_INIT;
        int rc;

        fake_init(&f);
        put_hello(&f.in, 0x207);
        bad_replies[i].build(&f.in);
        strvec_pushl(&paths,
                     "/nix/store/aaaa-a",
                     "/nix/store/bbbb-b",
                     (const char *)NULL);
        c = open_ok(&f);
        rc = serve_query_valid_paths(c, &paths, 1, 0, &valid);
        if (rc != bad_replies[i].rc ||
            strstr(serve_error(c), bad_replies[i].err) == NULL) {
            fail_msg("%s: rc %d, error '%s'",
                     bad_replies[i].name,
                     rc,
                     serve_error(c));
        }
        assert_true(f.closed); /* the connection is given up */
        /* Sticky: further requests fail the same way at once. */
        assert_int_equal(serve_query_valid_paths(c, &paths, 1, 0, &valid), rc);
        serve_free(c);
        strvec_clear(&paths);
        strvec_clear(&valid);
        fake_release(&f);
    }
}

static void
test_eof_with_remote_error(void **state)
{
    struct fake f;
    struct serve_conn *c;
    struct strvec paths = STRVEC_INIT;
    struct strvec out = STRVEC_INIT;

    (void)state;
    fake_init(&f);
    put_hello(&f.in, 0x207);
    f.err = "\033[31;1merror:\033[0m path '/nix/store/aaaa-a' is not "
            "valid\n";
    f.status = 1;
    strvec_push(&paths, "/nix/store/aaaa-a");
    c = open_ok(&f);
    assert_int_equal(serve_query_closure(c, &paths, 0, &out), CR_ENIX);
    assert_string_equal(serve_error(c),
                        "path '/nix/store/aaaa-a' is not valid");
    serve_free(c);
    strvec_clear(&paths);
    strvec_clear(&out);
    fake_release(&f);
}

static void
test_query_closure(void **state)
{
    struct fake f;
    struct serve_conn *c;
    struct strvec paths = STRVEC_INIT;
    struct strvec out = STRVEC_INIT;
    struct cursor cur;

    (void)state;
    fake_init(&f);
    put_hello(&f.in, 0x207);
    put_u64(&f.in, 2);
    put_str(&f.in, "/nix/store/aaaa-a");
    put_str(&f.in, "/nix/store/bbbb-b");
    strvec_push(&paths, "/nix/store/bbbb-b");
    c = open_ok(&f);
    assert_int_equal(serve_query_closure(c, &paths, 0, &out), 0);
    assert_int_equal(out.n, 2);
    skip_handshake(&cur, &f);
    assert_int_equal(get_u64(&cur), 7);
    assert_int_equal(get_u64(&cur), 0);
    assert_int_equal(get_u64(&cur), 1);
    expect_str(&cur, "/nix/store/bbbb-b");
    assert_int_equal(cur.left, 0);
    serve_free(c);
    strvec_clear(&paths);
    strvec_clear(&out);
    fake_release(&f);
}

struct infos {
    struct strbuf text;
};

static int
take(void *ctx, const struct serve_info *in)
{
    struct strbuf *t = &((struct infos *)ctx)->text;
    char hex[65] = "-";

    if (in->has_hash) {
        hash_to_hex(in->nar_hash, 32, hex);
    }
    strbuf_addf(t,
                "%s drv=%s size=%llu refs=%zu hash=%.8s ca=%s sigs=%zu\n",
                in->path.buf,
                in->deriver.buf,
                (unsigned long long)in->nar_size,
                in->refs.n,
                hex,
                in->ca.buf,
                in->sigs.n);
    return 0;
}

static void
info_record(struct strbuf *in, const char *path, int with_hash)
{
    put_str(in, path);
    put_str(in, "/nix/store/dddd-x.drv");
    put_u64(in, 2);
    put_str(in, "/nix/store/aaaa-a");
    put_str(in, path);
    put_u64(in, 3376);
    put_u64(in, 3376);
    if (with_hash) {
        put_str(in,
                "sha256:13ik19hk4rw5hlizcd6ba9mcs090a6sgzyd8180k5plm9n73"
                "cwi9");
        put_str(in, "");
        put_u64(in, 1);
        put_str(in, "test-key-1:c2ln");
    }
}

static void
test_query_path_infos(void **state)
{
    static const struct {
        uint64_t version;
        int with_hash;
        const char *want;
    } v[] = {
        {0x207,
         1,
         "/nix/store/bbbb-b drv=/nix/store/dddd-x.drv size=3376 refs=2 "
         "hash=2972368e ca= sigs=1\n"},
        {0x204,
         1,
         "/nix/store/bbbb-b drv=/nix/store/dddd-x.drv size=3376 refs=2 "
         "hash=2972368e ca= sigs=1\n"},
        {0x203,
         0,
         "/nix/store/bbbb-b drv=/nix/store/dddd-x.drv size=3376 refs=2 "
         "hash=- ca= sigs=0\n"},
    };
    (void)state;
    for (size_t i = 0; i < ARRAY_SIZE(v); i++) {
        struct fake f;
        struct serve_conn *c;
        struct strvec paths = STRVEC_INIT;
        struct infos got = {STRBUF_INIT};
        struct cursor cur;

        fake_init(&f);
        put_hello(&f.in, v[i].version);
        info_record(&f.in, "/nix/store/bbbb-b", v[i].with_hash);
        put_str(&f.in, "");
        strvec_pushl(&paths,
                     "/nix/store/bbbb-b",
                     "/nix/store/zzzz-invalid",
                     (const char *)NULL);
        c = open_ok(&f);
        assert_int_equal(serve_query_path_infos(c, &paths, take, &got), 0);
        assert_string_equal(got.text.buf, v[i].want);
        skip_handshake(&cur, &f);
        assert_int_equal(get_u64(&cur), 2);
        assert_int_equal(get_u64(&cur), 2);
        expect_str(&cur, "/nix/store/bbbb-b");
        expect_str(&cur, "/nix/store/zzzz-invalid");
        assert_int_equal(serve_finish(c), 0);
        serve_free(c);
        strvec_clear(&paths);
        strbuf_release(&got.text);
        fake_release(&f);
    }
}

static void
test_query_path_infos_bad_hash(void **state)
{
    struct fake f;
    struct serve_conn *c;
    struct strvec paths = STRVEC_INIT;
    struct infos got = {STRBUF_INIT};

    (void)state;
    fake_init(&f);
    put_hello(&f.in, 0x207);
    put_str(&f.in, "/nix/store/bbbb-b");
    put_str(&f.in, "");
    put_u64(&f.in, 0);
    put_u64(&f.in, 1);
    put_u64(&f.in, 1);
    put_str(&f.in, "sha256:nothash");
    strvec_push(&paths, "/nix/store/bbbb-b");
    c = open_ok(&f);
    assert_int_equal(serve_query_path_infos(c, &paths, take, &got), CR_EPROTO);
    assert_string_equal(serve_error(c), "bad narHash in reply");
    serve_free(c);
    strvec_clear(&paths);
    strbuf_release(&got.text);
    fake_release(&f);
}

/* ---- reply size limits ---- */

/* A list on the wire: count (0: n + n2), then n strings of len bytes and
 * n2 of len2. */
struct wire_list {
    uint64_t count;
    size_t n, len;
    size_t n2, len2;
};

static void
put_strs(struct strbuf *in, size_t n, size_t len)
{
    char *s = xmalloc(len + 1);

    memset(s, 'p', len);
    s[len] = '\0';
    for (size_t i = 0; i < n; i++) {
        put_str(in, s);
    }
    free(s);
}

static void
put_list(struct strbuf *in, const struct wire_list *l)
{
    put_u64(in, l->count ? l->count : l->n + l->n2);
    put_strs(in, l->n, l->len);
    put_strs(in, l->n2, l->len2);
}

/* After a reply over a limit: the error, and the connection given up. */
static void
expect_too_big(struct serve_conn *c,
               struct fake *f,
               int rc,
               const char *name,
               const char *err)
{
    if (rc != CR_EPROTO || strcmp(serve_error(c), err) != 0) {
        fail_msg(
            "%s: rc %d, error '%s', want '%s'", name, rc, serve_error(c), err);
    }
    assert_true(f->closed);
}

static void
test_valid_paths_limits(void **state)
{
    /* Asked: two paths of 17 bytes. */
    static const struct {
        const char *name;
        struct wire_list reply;
        const char *err;
    } v[] = {
        {"as many", {0, 2, 17, 0, 0}, NULL},
        {"as many bytes", {0, 1, 34, 0, 0}, NULL},
        {"one path more",
         {3, 0, 0, 0, 0},
         "QueryValidPaths reply too big: more than 2 paths"},
        {"one byte more",
         {0, 1, 17, 1, 18},
         "QueryValidPaths reply too big: more than 34 bytes of paths"},
    };
    (void)state;
    for (size_t i = 0; i < ARRAY_SIZE(v); i++) {
        struct fake f;
        struct serve_conn *c;
        struct strvec paths = STRVEC_INIT;
        struct strvec valid = STRVEC_INIT;
        int rc;

        fake_init(&f);
        put_hello(&f.in, 0x207);
        put_list(&f.in, &v[i].reply);
        strvec_pushl(&paths,
                     "/nix/store/aaaa-a",
                     "/nix/store/bbbb-b",
                     (const char *)NULL);
        c = open_ok(&f);
        rc = serve_query_valid_paths(c, &paths, 1, 0, &valid);
        if (v[i].err == NULL) {
            assert_int_equal(rc, 0);
            assert_int_equal(valid.n, v[i].reply.n + v[i].reply.n2);
            assert_int_equal(serve_finish(c), 0);
        } else {
            expect_too_big(c, &f, rc, v[i].name, v[i].err);
        }
        serve_free(c);
        strvec_clear(&paths);
        strvec_clear(&valid);
        fake_release(&f);
    }
}

/* SERVE_MAX_PATHS paths, or SERVE_MAX_PATHS_BYTES bytes of them (in
 * strings of SERVE_MAX_PATH), and one more. */
#define MANY_PATHS ((size_t)SERVE_MAX_PATHS)
#define LONG_PATHS ((size_t)SERVE_MAX_PATHS_BYTES / SERVE_MAX_PATH)
#define MANY_SIGS  ((size_t)SERVE_MAX_SIGS)
#define LONG_SIGS  ((size_t)SERVE_MAX_SIGS_BYTES / SERVE_MAX_STR)

static void
test_closure_limits(void **state)
{
    static const struct {
        const char *name;
        struct wire_list reply;
        const char *err;
    } v[] = {
        {"most paths", {0, MANY_PATHS, 1, 0, 0}, NULL},
        {"a path more",
         {MANY_PATHS + 1, 0, 0, 0, 0},
         "QueryClosure reply too big: more than 1048576 paths"},
        {"most bytes", {0, LONG_PATHS, SERVE_MAX_PATH, 0, 0}, NULL},
        {"a byte more",
         {0, LONG_PATHS, SERVE_MAX_PATH, 1, 1},
         "QueryClosure reply too big: more than 134217728 bytes of paths"},
    };
    (void)state;
    assert_int_equal(LONG_PATHS * SERVE_MAX_PATH, SERVE_MAX_PATHS_BYTES);
    for (size_t i = 0; i < ARRAY_SIZE(v); i++) {
        struct fake f;
        struct serve_conn *c;
        struct strvec paths = STRVEC_INIT;
        struct strvec out = STRVEC_INIT;
        int rc;

        fake_init(&f);
        put_hello(&f.in, 0x207);
        put_list(&f.in, &v[i].reply);
        strvec_push(&paths, "/nix/store/bbbb-b");
        c = open_ok(&f);
        rc = serve_query_closure(c, &paths, 0, &out);
        if (v[i].err == NULL) {
            assert_int_equal(rc, 0);
            assert_int_equal(out.n, v[i].reply.n);
            assert_int_equal(serve_finish(c), 0);
        } else {
            expect_too_big(c, &f, rc, v[i].name, v[i].err);
            /* Sticky, as every protocol error. */
            assert_int_equal(serve_query_closure(c, &paths, 0, &out), rc);
        }
        serve_free(c);
        strvec_clear(&paths);
        strvec_clear(&out);
        fake_release(&f);
    }
}

struct info_rec {
    struct wire_list refs;
    size_t ca_len;
    struct wire_list sigs;
};

struct info_case {
    const char *name;
    size_t nrec; /* records, and paths asked */
    struct info_rec rec[2];
    const char *err;
};

static const char *const info_paths[] = {"/nix/store/bbbb-b",
                                         "/nix/store/cccc-c"};

static const struct info_case info_cases[] = {
    /* one path: its references and signatures */
    {"most references", 1, {{{0, MANY_PATHS, 1, 0, 0}, 0, {0}}}, NULL},
    {"a reference more",
     1,
     {{{MANY_PATHS + 1, 0, 0, 0, 0}, 0, {0}}},
     "path info of '/nix/store/bbbb-b' too big: more than 1048576 "
     "references"},
    {"most reference bytes",
     1,
     {{{0, LONG_PATHS, SERVE_MAX_PATH, 0, 0}, 0, {0}}},
     NULL},
    {"a reference byte more",
     1,
     {{{0, LONG_PATHS, SERVE_MAX_PATH, 1, 1}, 0, {0}}},
     "path info of '/nix/store/bbbb-b' too big: more than 134217728 bytes "
     "of references"},
    {"most signatures", 1, {{{0}, 0, {0, MANY_SIGS, 3, 0, 0}}}, NULL},
    {"a signature more",
     1,
     {{{0}, 0, {MANY_SIGS + 1, 0, 0, 0, 0}}},
     "path info of '/nix/store/bbbb-b' too big: more than 256 signatures"},
    {"most signature bytes",
     1,
     {{{0}, 0, {0, LONG_SIGS, SERVE_MAX_STR, 0, 0}}},
     NULL},
    {"a signature byte more",
     1,
     {{{0}, 0, {0, LONG_SIGS, SERVE_MAX_STR, 1, 1}}},
     "path info of '/nix/store/bbbb-b' too big: more than 2097152 bytes of "
     "signatures"},
    /* two paths: the reply as a whole */
    {"most references in all",
     2,
     {{{0, MANY_PATHS, 1, 0, 0}, 0, {0}},
      {{0, 2 * SERVE_INFO_REFS_PER_PATH, 1, 0, 0}, 0, {0}}},
     NULL},
    {"a reference more in all",
     2,
     {{{0, MANY_PATHS, 1, 0, 0}, 0, {0}},
      {{0, 2 * SERVE_INFO_REFS_PER_PATH + 1, 1, 0, 0}, 0, {0}}},
     "QueryPathInfos reply too big: more than 1048704 references"},
    {"most bytes kept in all",
     2,
     {{{0}, 0, {0, LONG_SIGS, SERVE_MAX_STR, 0, 0}},
      {{0}, 96, {0, 1, 2 * SERVE_INFO_BYTES_PER_PATH - 96, 0, 0}}},
     NULL},
    {"a byte more kept in all",
     2,
     {{{0}, 0, {0, LONG_SIGS, SERVE_MAX_STR, 0, 0}},
      {{0}, 96, {0, 1, 2 * SERVE_INFO_BYTES_PER_PATH - 95, 0, 0}}},
     "QueryPathInfos reply too big: more than 2101248 bytes of derivers, "
     "content addresses and signatures"},
};

static int
count_info(void *ctx, const struct serve_info *in)
{
    (void)in;
    ++*(size_t *)ctx;
    return 0;
}

static void
test_path_infos_limits(void **state)
{
    (void)state;
    assert_int_equal(LONG_SIGS * SERVE_MAX_STR, SERVE_MAX_SIGS_BYTES);
    for (size_t i = 0; i < ARRAY_SIZE(info_cases); i++) {
        const struct info_case *ic = &info_cases[i];
        struct fake f;
        struct serve_conn *c;
        struct strvec paths = STRVEC_INIT;
        size_t got = 0;
        int rc;

        fake_init(&f);
        put_hello(&f.in, 0x207);
        for (size_t k = 0; k < ic->nrec; k++) {
            const struct info_rec *r = &ic->rec[k];
            char *ca = xmalloc(r->ca_len + 1);

            memset(ca, 'c', r->ca_len);
            ca[r->ca_len] = '\0';
            strvec_push(&paths, info_paths[k]);
            put_str(&f.in, info_paths[k]);
            put_str(&f.in, ""); /* deriver */
            put_list(&f.in, &r->refs);
            put_u64(&f.in, 3376);
            put_u64(&f.in, 3376);
            put_str(&f.in,
                    "sha256:13ik19hk4rw5hlizcd6ba9mcs090a6sgzyd8180k5plm9n7"
                    "3cwi9");
            put_str(&f.in, ca);
            put_list(&f.in, &r->sigs);
            free(ca);
        }
        put_str(&f.in, "");
        c = open_ok(&f);
        rc = serve_query_path_infos(c, &paths, count_info, &got);
        if (ic->err == NULL) {
            if (rc != 0) {
                fail_msg("%s: rc %d, error '%s'", ic->name, rc, serve_error(c));
            }
            assert_int_equal(got, ic->nrec);
            assert_int_equal(serve_finish(c), 0);
        } else {
            expect_too_big(c, &f, rc, ic->name, ic->err);
        }
        serve_free(c);
        strvec_clear(&paths);
        fake_release(&f);
    }
}

/* ---- uploads ---- */

static void
make_nar(struct strbuf *nar, const char *contents)
{
    put_str(nar, "nix-archive-1");
    put_str(nar, "(");
    put_str(nar, "type");
    put_str(nar, "regular");
    put_str(nar, "contents");
    put_str(nar, contents);
    put_str(nar, ")");
}

static void
fill_add(struct serve_add *a,
         const char *path,
         const struct strbuf *nar,
         const char *const *refs,
         size_t nrefs)
{
    memset(a, 0, sizeof(*a));
    a->path = path;
    a->deriver = "/nix/store/dddd-x.drv";
    hash_sha256(nar->buf, nar->len, a->nar_hash);
    a->nar_size = nar->len;
    a->refs = refs;
    a->nrefs = nrefs;
}

static void
check_add_request(struct cursor *cur,
                  const struct serve_add *a,
                  const struct strbuf *nar)
{
    char hex[65];

    hash_to_hex(a->nar_hash, 32, hex);
    assert_int_equal(get_u64(cur), 9);
    expect_str(cur, a->path);
    expect_str(cur, a->deriver ? a->deriver : "");
    expect_str(cur, hex);
    assert_int_equal(get_u64(cur), a->nrefs);
    for (size_t k = 0; k < a->nrefs; k++) {
        expect_str(cur, a->refs[k]);
    }
    assert_int_equal(get_u64(cur), a->reg_time);
    assert_int_equal(get_u64(cur), a->nar_size);
    assert_int_equal(get_u64(cur), 0); /* ultimate */
    assert_int_equal(get_u64(cur), a->nsigs);
    for (size_t k = 0; k < a->nsigs; k++) {
        expect_str(cur, a->sigs[k]);
    }
    expect_str(cur, a->ca ? a->ca : "");
    expect_bytes(cur, nar->buf, nar->len);
}

/* Three uploads, pipelined.  With nb_limit the fake withholds the acks
 * from read_nb (a slow remote), so they can only come from the final
 * blocking wait; otherwise they are available at once. */
static void
run_pipelined(size_t nb_limit)
{
    static const char *const names[3] = {
        "/nix/store/aaaa-a", "/nix/store/bbbb-b", "/nix/store/cccc-c"};
    static const char *const refs_b[] = {"/nix/store/aaaa-a"};
    static const char *const refs_c[] = {
        "/nix/store/aaaa-a", "/nix/store/bbbb-b", "/nix/store/cccc-c"};
    static const char *const sigs[] = {"k:c2ln"};
    struct strbuf nars[3];
    struct serve_add adds[3];
    struct fake f;
    struct serve_conn *c;
    struct cursor cur;
    const char *w;

    fake_init(&f);
    put_hello(&f.in, 0x207);
    for (int i = 0; i < 3; i++) {
        put_u64(&f.in, 1);
    }
    f.nb_limit = nb_limit;
    f.chunk = 16; /* the handshake must not read ahead */
    for (int i = 0; i < 3; i++) {
        strbuf_init(&nars[i], 0);
        make_nar(&nars[i], names[i] + 11);
    }
    fill_add(&adds[0], names[0], &nars[0], NULL, 0);
    fill_add(&adds[1], names[1], &nars[1], refs_b, 1);
    fill_add(&adds[2], names[2], &nars[2], refs_c, 3);
    adds[2].sigs = sigs;
    adds[2].nsigs = 1;
    adds[2].ca = "fixed:r:sha256:13ik19hk4rw5hlizcd6ba9mcs090a6sgzyd8180k5p"
                 "lm9n73cwi9";
    adds[2].reg_time = 1700000000;

    c = open_ok(&f);
    strbuf_reset(&f.events);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(serve_add_begin(c, &adds[i]), 0);
        assert_int_equal(serve_write_raw(c, nars[i].buf, nars[i].len), 0);
        assert_int_equal(serve_add_end(c, &adds[i]), 0);
        assert_int_equal(serve_flush(c), 0);
    }
    /* Nothing blocked on a reply while requests were being written. */
    assert_null(strchr(f.events.buf, 'R'));
    assert_int_equal(serve_acked(c) + serve_pending(c), 3);
    if (nb_limit == SIZE_MAX) {
        assert_int_equal(serve_acked(c), 3);
    } else {
        assert_int_equal(serve_acked(c), 0);
    }
    assert_int_equal(serve_wait(c), 0);
    assert_int_equal(serve_acked(c), 3);
    assert_int_equal(serve_pending(c), 0);
    /* All writes come before any blocking read. */
    w = strrchr(f.events.buf, 'W');
    assert_null(memchr(f.events.buf, 'R', (size_t)(w - f.events.buf)));

    skip_handshake(&cur, &f);
    for (int i = 0; i < 3; i++) {
        check_add_request(&cur, &adds[i], &nars[i]);
    }
    assert_int_equal(cur.left, 0);
    assert_int_equal(serve_finish(c), 0);
    serve_free(c);
    for (int i = 0; i < 3; i++) {
        strbuf_release(&nars[i]);
    }
    fake_release(&f);
}

static void
test_pipelined_add_fast_remote(void **state)
{
    (void)state;
    run_pipelined(SIZE_MAX);
}

static void
test_pipelined_add_slow_remote(void **state)
{
    (void)state;
    run_pipelined(16); /* only the hello is visible to read_nb */
}

static void
test_import_paths_fallback(void **state)
{
    static const char *const refs[] = {"/nix/store/aaaa-a"};
    struct strbuf nar = STRBUF_INIT;
    struct serve_add a;
    struct fake f;
    struct serve_conn *c;
    struct cursor cur;

    (void)state;
    fake_init(&f);
    put_hello(&f.in, 0x204);
    put_u64(&f.in, 1);
    make_nar(&nar, "x");
    fill_add(&a, "/nix/store/bbbb-b", &nar, refs, 1);
    c = open_ok(&f);
    assert_int_equal(serve_add_begin(c, &a), 0);
    assert_int_equal(serve_write_raw(c, nar.buf, nar.len), 0);
    assert_int_equal(serve_add_end(c, &a), 0);
    assert_int_equal(serve_wait(c), 0);
    assert_int_equal(serve_acked(c), 1);
    skip_handshake(&cur, &f);
    assert_int_equal(get_u64(&cur), 4);
    assert_int_equal(get_u64(&cur), 1);
    expect_bytes(&cur, nar.buf, nar.len);
    assert_int_equal(get_u64(&cur), SERVE_EXPORT_MAGIC);
    expect_str(&cur, "/nix/store/bbbb-b");
    assert_int_equal(get_u64(&cur), 1);
    expect_str(&cur, "/nix/store/aaaa-a");
    expect_str(&cur, "/nix/store/dddd-x.drv");
    assert_int_equal(get_u64(&cur), 0);
    assert_int_equal(get_u64(&cur), 0);
    assert_int_equal(cur.left, 0);
    assert_int_equal(serve_finish(c), 0);
    serve_free(c);
    strbuf_release(&nar);
    fake_release(&f);
}

static void
test_bad_ack(void **state)
{
    struct strbuf nar = STRBUF_INIT;
    struct serve_add a;
    struct fake f;
    struct serve_conn *c;

    (void)state;
    fake_init(&f);
    put_hello(&f.in, 0x207);
    put_u64(&f.in, 2);
    make_nar(&nar, "x");
    fill_add(&a, "/nix/store/bbbb-b", &nar, NULL, 0);
    c = open_ok(&f);
    serve_add_begin(c, &a);
    serve_write_raw(c, nar.buf, nar.len);
    serve_add_end(c, &a);
    assert_int_equal(serve_wait(c), CR_EPROTO);
    assert_string_equal(serve_error(c), "unexpected reply to an upload");
    serve_free(c);
    strbuf_release(&nar);
    fake_release(&f);
}

static void
test_remote_dies_mid_pipeline(void **state)
{
    /* The remote accepted the first path, then rejected the second and
     * exited: our next write fails.  The ack that did arrive is counted
     * and the remote's multi-line error becomes one line. */
    struct strbuf nar = STRBUF_INIT;
    struct serve_add a;
    struct fake f;
    struct serve_conn *c;
    char *big = xcalloc(1, 300 * 1024);
    int rc = 0;

    (void)state;
    fake_init(&f);
    put_hello(&f.in, 0x207);
    put_u64(&f.in, 1);
    f.nb_limit = 16;
    f.err = "error: hash mismatch importing path '/nix/store/bbbb-b';\n"
            "         specified: sha256:0000\n"
            "         got:       sha256:1111\n";
    f.status = 1;
    make_nar(&nar, "x");
    fill_add(&a, "/nix/store/bbbb-b", &nar, NULL, 0);
    c = open_ok(&f);
    f.fail_write_at = f.out.len + 2 * (192 + nar.len) + 1000;
    for (int i = 0; i < 2; i++) {
        serve_add_begin(c, &a);
        serve_write_raw(c, nar.buf, nar.len);
        serve_add_end(c, &a);
    }
    rc = serve_write_raw(c, big, 300 * 1024);
    assert_int_equal(rc, CR_ENIX);
    assert_int_equal(serve_acked(c), 1);
    assert_string_equal(serve_error(c),
                        "hash mismatch importing path '/nix/store/bbbb-b'; "
                        "specified: sha256:0000 got: sha256:1111");
    assert_true(f.closed);
    assert_int_equal(serve_finish(c), CR_ENIX);
    serve_free(c);
    free(big);
    strbuf_release(&nar);
    fake_release(&f);
}

static void
test_abort_counts_acks(void **state)
{
    struct strbuf nar = STRBUF_INIT;
    struct serve_add a;
    struct fake f;
    struct serve_conn *c;

    (void)state;
    fake_init(&f);
    put_hello(&f.in, 0x207);
    put_u64(&f.in, 1);
    f.nb_limit = 16;
    make_nar(&nar, "x");
    fill_add(&a, "/nix/store/bbbb-b", &nar, NULL, 0);
    c = open_ok(&f);
    serve_add_begin(c, &a);
    serve_write_raw(c, nar.buf, nar.len);
    serve_add_end(c, &a);
    /* A second request cut off in the middle of its NAR. */
    serve_add_begin(c, &a);
    serve_write_raw(c, nar.buf, nar.len - 8);
    serve_abort(c);
    assert_true(f.eof_sent);
    assert_true(f.closed);
    assert_int_equal(serve_acked(c), 1);
    /* What was queued went out, minus the missing tail: a request
     * header here is 192 bytes. */
    assert_int_equal(f.out.len, 16 + 2 * 192 + 2 * nar.len - 8);
    serve_free(c);
    strbuf_release(&nar);
    fake_release(&f);
}

/* ---- DumpStorePath ---- */

static int
tee_mem(void *ctx, const void *buf, size_t n)
{
    strbuf_add(ctx, buf, n);
    return 0;
}

static void
test_dump_store_path(void **state)
{
    struct strbuf n1 = STRBUF_INIT, n2 = STRBUF_INIT, got = STRBUF_INIT;
    struct nar_result res;
    struct fake f;
    struct serve_conn *c;
    struct cursor cur;
    unsigned char h[32];

    (void)state;
    fake_init(&f);
    f.chunk = 5;
    put_hello(&f.in, 0x207);
    make_nar(&n1, "first");
    make_nar(&n2, "second, longer contents");
    strbuf_add(&f.in, n1.buf, n1.len);
    strbuf_add(&f.in, n2.buf, n2.len);
    strbuf_addstr(&f.in, "garbage that is not a NAR at all");
    c = open_ok(&f);
    /* Pipelined: three requests, then the replies in order. */
    assert_int_equal(serve_dump_request(c, "/nix/store/aaaa-a"), 0);
    assert_int_equal(serve_dump_request(c, "/nix/store/bbbb-b"), 0);
    assert_int_equal(serve_dump_request(c, "/nix/store/cccc-c"), 0);
    assert_int_equal(serve_dump_read(c, tee_mem, &got, &res), 0);
    assert_int_equal(got.len, n1.len);
    assert_memory_equal(got.buf, n1.buf, n1.len);
    hash_sha256(n1.buf, n1.len, h);
    assert_memory_equal(res.sha256, h, 32);
    assert_int_equal(res.size, n1.len);
    strbuf_reset(&got);
    assert_int_equal(serve_dump_read(c, tee_mem, &got, &res), 0);
    assert_int_equal(got.len, n2.len);
    assert_memory_equal(got.buf, n2.buf, n2.len);
    assert_int_equal(serve_dump_read(c, tee_mem, &got, &res), CR_EPROTO);
    assert_non_null(strstr(serve_error(c), "bad magic"));
    skip_handshake(&cur, &f);
    assert_int_equal(get_u64(&cur), 3);
    expect_str(&cur, "/nix/store/aaaa-a");
    assert_int_equal(get_u64(&cur), 3);
    expect_str(&cur, "/nix/store/bbbb-b");
    serve_free(c);
    strbuf_release(&n1);
    strbuf_release(&n2);
    strbuf_release(&got);
    fake_release(&f);
}

static void
test_finish_failure(void **state)
{
    struct fake f;
    struct serve_conn *c;

    (void)state;
    fake_init(&f);
    put_hello(&f.in, 0x207);
    f.status = 1;
    f.err = "warning: something\nerror: cannot add path: disk full\n";
    c = open_ok(&f);
    assert_int_equal(serve_finish(c), CR_ENIX);
    assert_string_equal(serve_error(c), "cannot add path: disk full");
    serve_free(c);
    fake_release(&f);
}

/* ---- serve_start: the greeting goes out with the first request ---- */

static void
test_start_pipelines(void **state)
{
    struct fake f;
    struct serve_conn *c;
    struct strvec paths = STRVEC_INIT;
    struct strvec valid = STRVEC_INIT;
    struct cursor cur;
    const char *first_read;

    (void)state;
    fake_init(&f);
    put_hello(&f.in, 0x205);
    put_u64(&f.in, 1);
    put_str(&f.in, "/nix/store/aaaa-a");
    /* Nothing can be answered before greeting and query are both sent:
     * 16 (greeting) + 8 + 8 + 8 (command, lock, substitute) + 8 + 24
     * (one path). */
    f.gate_pos = 0;
    f.gate_out = 16 + 24 + 8 + 24;
    strvec_push(&paths, "/nix/store/aaaa-a");
    c = serve_start(&f.s, "alpha");
    assert_non_null(c);
    assert_false(serve_ready(c));
    assert_int_equal(f.out.len, 0); /* queued, not written */
    assert_int_equal(serve_query_valid_paths(c, &paths, 1, 1, &valid), 0);
    assert_true(serve_ready(c));
    assert_int_equal(serve_minor(c), 5);
    assert_int_equal(valid.n, 1);
    assert_string_equal(valid.v[0], "/nix/store/aaaa-a");
    /* One write carried both, before the first read. */
    first_read = strchr(f.events.buf, 'R');
    assert_non_null(first_read);
    assert_int_equal(first_read - f.events.buf, 1);
    assert_int_equal(f.events.buf[0], 'W');
    skip_handshake(&cur, &f);
    assert_int_equal(get_u64(&cur), 1); /* QueryValidPaths */
    assert_int_equal(get_u64(&cur), 1); /* lock */
    assert_int_equal(get_u64(&cur), 1); /* substitute */
    assert_int_equal(get_u64(&cur), 1);
    expect_str(&cur, "/nix/store/aaaa-a");
    assert_int_equal(cur.left, 0);
    assert_int_equal(serve_finish(c), 0);
    serve_free(c);
    strvec_clear(&paths);
    strvec_clear(&valid);
    fake_release(&f);
}

/* A bad greeting is the first request's failure, and serve_ready says
 * that the server never answered it. */
static void
test_start_bad_greeting(void **state)
{
    static const struct {
        const char *in;  /* what the server sends */
        const char *err; /* stderr handed back */
        int rc;
        const char *want;
        int closed; /* it stopped reading: our first write fails */
    } v[] = {
        {"Welcome!\n", NULL, CR_EPROTO, "protocol mismatch from alpha", 0},
        {"Welcome!\n", NULL, CR_EPROTO, "protocol mismatch from alpha", 1},
        {"",
         "sh: 1: nix-store: not found\n",
         CR_ENIX,
         "nix-store: not found",
         0},
        {"", "sh: 1: nix-store: not found\n", CR_ENIX, "not found", 1},
        {"\xeb\x9d\x0c", NULL, CR_EPROTO, "closed unexpectedly", 0},
    };
    (void)state;
    for (size_t i = 0; i < ARRAY_SIZE(v); i++) {
        struct fake f;
        struct serve_conn *c;
        struct strvec paths = STRVEC_INIT;
        struct strvec valid = STRVEC_INIT;

        fake_init(&f);
        strbuf_addstr(&f.in, v[i].in);
        f.err = v[i].err;
        f.status = v[i].err ? 127 : 0;
        f.fail_write_at = v[i].closed ? 1 : 0;
        strvec_push(&paths, "/nix/store/aaaa-a");
        c = serve_start(&f.s, "alpha");
        assert_int_equal(serve_query_valid_paths(c, &paths, 1, 0, &valid),
                         v[i].rc);
        assert_false(serve_ready(c));
        assert_int_equal(valid.n, 0);
        assert_non_null(strstr(serve_error(c), v[i].want));
        assert_true(f.closed);
        serve_free(c);
        strvec_clear(&paths);
        fake_release(&f);
    }
}

/* ---- stderr reduction ---- */

static void
test_stderr_line(void **state)
{
    static const struct {
        const char *in, *want;
    } v[] = {
        {"", ""},
        {"\n\n", ""},
        {"error: simple\n", "simple"},
        {"error: no newline", "no newline"},
        {"warning: w\nerror: first\nerror: second\n", "first"},
        {"\033[31;1merror:\033[0m colored \033[35;1m'path'\033[0m\n",
         "colored 'path'"},
        {"error: multi\n       line one\n\tline two\nnot continued\n",
         "multi line one line two"},
        {"bash: nix-store: command not found\n",
         "bash: nix-store: command not found"},
        {"first\nsecond\n\n", "second"},
        {"sudo: a password is required\r\n", "sudo: a password is required"},
        {"  error: indented is not an error line\n",
         "error: indented is not an error line"},
    };
    (void)state;
    for (size_t i = 0; i < ARRAY_SIZE(v); i++) {
        struct strbuf out = STRBUF_INIT;
        serve_stderr_line(v[i].in, strlen(v[i].in), &out);
        assert_string_equal(out.buf, v[i].want);
        strbuf_release(&out);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_handshake_versions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_handshake_noise, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_handshake_eof_stderr, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_handshake_eof_silent, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_handshake_bad_major, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_query_valid_paths, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_replies, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_eof_with_remote_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_query_closure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_query_path_infos, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_valid_paths_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_closure_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_path_infos_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_query_path_infos_bad_hash, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_pipelined_add_fast_remote, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_pipelined_add_slow_remote, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_import_paths_fallback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_ack, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_remote_dies_mid_pipeline, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_abort_counts_acks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dump_store_path, setup, teardown),
        cmocka_unit_test_setup_teardown(test_finish_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stderr_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_start_pipelines, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_start_bad_greeting, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

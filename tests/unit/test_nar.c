/* test_nar.c: the NAR writer against `nix-store --dump` (byte for byte, on
 * fixtures made at test time), the reference vector, and the reader's
 * round trip and rejection of malformed NARs. */
#include "testutil.h"

#include "crebuild/hash.h"
#include "crebuild/host.h"
#include "crebuild/nar.h"
#include "crebuild/strbuf.h"
#include "crebuild/util.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char tmpdir[] = "/tmp/crebuild-test-nar-XXXXXX";
static int have_nix;

/* ---- helpers ---- */

static int
mem_sink(void *ctx, const void *buf, size_t n)
{
    strbuf_add(ctx, buf, n);
    return 0;
}

static int
null_sink(void *ctx, const void *buf, size_t n)
{
    (void)buf;
    *(uint64_t *)ctx += n;
    return 0;
}

static char *
fixture(const char *name)
{
    return xasprintf("%s/%s", tmpdir, name);
}

static void
write_file(const char *path, const char *data, size_t n, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, n), (ssize_t)n);
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
}

static void
mkdir_p(const char *path)
{
    assert_true(mkdir(path, 0755) == 0 || errno == EEXIST);
}

/* nix-store --dump PATH into out. */
static void
nix_dump(const char *path, struct strbuf *out)
{
    struct host *h = host_local_new(NULL);
    struct strvec argv = STRVEC_INIT;
    struct strbuf err = STRBUF_INIT;
    struct host_cmd cmd;
    int status = -1;

    memset(&cmd, 0, sizeof(cmd));
    strvec_pushl(&argv, "nix-store", "--dump", path, (const char *)NULL);
    cmd.argv = &argv;
    cmd.out = out;
    cmd.err = &err;
    assert_int_equal(host_run(h, &cmd, &status), 0);
    if (status != 0) {
        fail_msg("nix-store --dump %s: %s", path, err.buf);
    }
    strvec_clear(&argv);
    strbuf_release(&err);
    host_free(h);
}

/* Our NAR of path must equal nix-store --dump's, and hash/size must
 * describe it. */
static void
check_same_as_nix(const char *path)
{
    struct strbuf ours = STRBUF_INIT;
    struct strbuf theirs = STRBUF_INIT;
    struct nar_result res;
    struct nar_result back;
    unsigned char h[32];

    assert_int_equal(nar_dump(path, mem_sink, &ours, &res), 0);
    assert_int_equal(res.size, ours.len);
    assert_int_equal(ours.len % 8, 0);
    hash_sha256(ours.buf, ours.len, h);
    assert_memory_equal(h, res.sha256, 32);
    if (have_nix) {
        nix_dump(path, &theirs);
        assert_int_equal(ours.len, theirs.len);
        assert_memory_equal(ours.buf, theirs.buf, ours.len);
    }
    /* And the reader accepts it, with the same hash. */
    assert_int_equal(nar_parse_buf(ours.buf, ours.len, NULL, NULL, &back), 0);
    assert_int_equal(back.size, ours.len);
    assert_memory_equal(back.sha256, res.sha256, 32);
    strbuf_release(&ours);
    strbuf_release(&theirs);
}

static int
rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static int
setup(void **state)
{
    struct strbuf out = STRBUF_INIT;
    struct host *h = host_local_new(NULL);
    struct strvec argv = STRVEC_INIT;
    struct host_cmd cmd;
    int status = -1;

    (void)state;
    if (mkdtemp(tmpdir) == NULL) {
        return -1;
    }
    memset(&cmd, 0, sizeof(cmd));
    strvec_pushl(&argv, "nix-store", "--version", (const char *)NULL);
    cmd.argv = &argv;
    cmd.out = &out;
    cmd.err = &out;
    have_nix = host_run(h, &cmd, &status) == 0 && status == 0;
    if (!have_nix) {
        fprintf(stderr, "nix-store not found: comparing with vectors only\n");
    }
    strvec_clear(&argv);
    strbuf_release(&out);
    host_free(h);
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

/* ---- writer ---- */

static void
test_hello_vector(void **state)
{
    /* Reference section 10: 120 bytes, known hash. */
    static const char want_hex[] =
        "0d000000000000006e69782d617263686976652d31000000"
        "01000000000000002800000000000000"
        "04000000000000007479706500000000"
        "0700000000000000726567756c617200"
        "0800000000000000636f6e74656e7473"
        "060000000000000068656c6c6f0a0000"
        "01000000000000002900000000000000";
    unsigned char want[120];
    struct strbuf nar = STRBUF_INIT;
    struct nar_result res;
    char n32[53];
    char *p = fixture("hello");

    (void)state;
    assert_int_equal(hash_from_hex(want_hex, 240, want, 120), 0);
    write_file(p, "hello\n", 6, 0444);
    assert_int_equal(nar_dump(p, mem_sink, &nar, &res), 0);
    assert_int_equal(nar.len, 120);
    assert_memory_equal(nar.buf, want, 120);
    hash_to_nix32(res.sha256, 32, n32);
    assert_string_equal(n32,
                        "04zwf782yjwnh3q6hz5izfd6jyip8kgw6g6yj43fiqhbyhdd0dqw");
    check_same_as_nix(p);
    strbuf_release(&nar);
    free(p);
}

struct file_case {
    const char *name;
    size_t size;
    mode_t mode;
};

static void
test_files(void **state)
{
    /* Sizes around the padding and the 256 KiB buffer; modes around the
     * owner-execute rule. */
    static const struct file_case cases[] = {
        {"empty", 0, 0444},
        {"one", 1, 0444},
        {"seven", 7, 0644},
        {"eight", 8, 0644},
        {"nine", 9, 0555},
        {"exec", 100, 0755},
        {"owner-x-only", 10, 0100 | 0400},
        {"group-x-only", 10, 0454},
        {"other-x-only", 10, 0445},
        {"buf-minus-1", 256 * 1024 - 1, 0444},
        {"buf", 256 * 1024, 0444},
        {"buf-plus-1", 256 * 1024 + 1, 0555},
        {"big", 3 * 1024 * 1024 + 5, 0444},
    };
    (void)state;
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        char *data = xmalloc(cases[i].size + 1);
        char *p = fixture(cases[i].name);
        for (size_t k = 0; k < cases[i].size; k++) {
            data[k] = (char)(k * 7 + i);
        }
        write_file(p, data, cases[i].size, cases[i].mode);
        check_same_as_nix(p);
        free(data);
        free(p);
    }
}

static void
test_symlink_root(void **state)
{
    char *p = fixture("toplink");
    char *q = fixture("abslink");

    (void)state;
    assert_int_equal(symlink("dangling/target with space", p), 0);
    assert_int_equal(symlink("/nix/store/x", q), 0);
    check_same_as_nix(p);
    check_same_as_nix(q);
    free(p);
    free(q);
}

static void
test_tree(void **state)
{
    char *root = fixture("tree");
    char *p;

    (void)state;
    mkdir_p(root);
    /* The directory of reference section 10 ... */
    p = fixture("tree/A");
    write_file(p, "", 0, 0444);
    free(p);
    p = fixture("tree/b");
    write_file(p, "bee\n", 4, 0444);
    free(p);
    p = fixture("tree/empty");
    mkdir_p(p);
    free(p);
    p = fixture("tree/lnk");
    assert_int_equal(symlink("b", p), 0);
    free(p);
    p = fixture("tree/x");
    write_file(p, "#!/bin/sh\n", 10, 0755);
    free(p);
    p = fixture("tree/\xc3\xa9");
    write_file(p, "e acute", 7, 0444);
    free(p);
    /* ... plus nesting and names that sort differently by locale. */
    p = fixture("tree/sub");
    mkdir_p(p);
    free(p);
    p = fixture("tree/sub/deeper");
    mkdir_p(p);
    free(p);
    p = fixture("tree/sub/deeper/f");
    write_file(p, "deep", 4, 0444);
    free(p);
    static const char *const odd[] = {"with space",
                                      "-leading-dash",
                                      "new\nline",
                                      "B",
                                      "a",
                                      "a.b",
                                      "a-",
                                      "ab",
                                      "~tilde",
                                      "0",
                                      "Z",
                                      "_",
                                      "\xff\xfe",
                                      "tab\there",
                                      ".hidden",
                                      "...",
                                      "a\\b"};
    for (size_t i = 0; i < ARRAY_SIZE(odd); i++) {
        char *name = xasprintf("tree/sub/%s", odd[i]);
        p = fixture(name);
        write_file(p, odd[i], strlen(odd[i]), i % 2 ? 0555 : 0444);
        free(p);
        free(name);
    }
    p = fixture("tree/sub/link-to-dir");
    assert_int_equal(symlink("deeper", p), 0);
    free(p);
    check_same_as_nix(root);
    free(root);
}

static void
test_empty_dir(void **state)
{
    char *p = fixture("emptydir");

    (void)state;
    mkdir_p(p);
    check_same_as_nix(p);
    free(p);
}

static void
test_unsupported_and_missing(void **state)
{
    struct strbuf out = STRBUF_INIT;
    char *fifo = fixture("fifo");
    char *dir = fixture("hasfifo");
    char *inner = fixture("hasfifo/fifo");
    char *missing = fixture("does-not-exist");

    (void)state;
    assert_int_equal(mkfifo(fifo, 0600), 0);
    assert_int_equal(nar_dump(fifo, mem_sink, &out, NULL), CR_ECORRUPT);
    mkdir_p(dir);
    assert_int_equal(mkfifo(inner, 0600), 0);
    assert_int_equal(nar_dump(dir, mem_sink, &out, NULL), CR_ECORRUPT);
    assert_int_equal(nar_dump(missing, mem_sink, &out, NULL), CR_ESYS);
    strbuf_release(&out);
    free(fifo);
    free(dir);
    free(inner);
    free(missing);
}

struct fail_after {
    size_t left;
    size_t calls;
};

static int
failing_sink(void *ctx, const void *buf, size_t n)
{
    struct fail_after *f = ctx;

    (void)buf;
    f->calls++;
    if (n >= f->left) {
        return CR_ESSH;
    }
    f->left -= n;
    return 0;
}

static void
test_sink_error_stops(void **state)
{
    char *p = fixture("sinkerr");
    char *data = xcalloc(1, 1 << 20);
    struct fail_after f = {300 * 1024, 0};

    (void)state;
    write_file(p, data, 1 << 20, 0444);
    assert_int_equal(nar_dump(p, failing_sink, &f, NULL), CR_ESSH);
    assert_int_equal(f.calls, 2); /* stopped at the first failure */
    free(data);
    free(p);
}

static long
maxrss_kib(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

static void
test_flat_memory_big_file(void **state)
{
    /* A 1 GiB sparse file: memory must not grow with it.  Also prints
     * the writer's throughput (read + hash) for the record. */
    const off_t size = (off_t)1 << 30;
    char *p = fixture("sparse");
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    struct nar_result res;
    struct timespec t0, t1;
    uint64_t seen = 0;
    long before;
    double secs;

    (void)state;
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, size), 0);
    close(fd);
    before = maxrss_kib();
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(nar_dump(p, null_sink, &seen, &res), 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_int_equal(seen, res.size);
    assert_true(res.size > (uint64_t)size);
    secs = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
    print_message(
        "nar_dump of 1 GiB sparse file: %.0f MiB/s, maxrss +%ld KiB\n",
        1024.0 / secs,
        maxrss_kib() - before);
    assert_true(maxrss_kib() - before < 4 * 1024);
    unlink(p);
    free(p);
}

/* ---- reader ---- */

struct listing {
    struct strbuf text;
};

static int
v_dir(void *ctx, const char *path)
{
    strbuf_addf(&((struct listing *)ctx)->text, "d %s\n", path);
    return 0;
}

static int
v_reg(void *ctx, const char *path, int x, uint64_t size)
{
    strbuf_addf(&((struct listing *)ctx)->text,
                "%c %s %llu\n",
                x ? 'x' : 'f',
                path,
                (unsigned long long)size);
    return 0;
}

static int
v_data(void *ctx, const void *buf, size_t n)
{
    (void)ctx;
    (void)buf;
    (void)n;
    return 0;
}

static int
v_link(void *ctx, const char *path, const char *target)
{
    strbuf_addf(&((struct listing *)ctx)->text, "l %s %s\n", path, target);
    return 0;
}

static const struct nar_visitor listing_visitor = {
    v_dir, v_reg, v_data, v_link};

static void
test_reader_visits(void **state)
{
    char *root = fixture("rtree");
    char *p;
    struct strbuf nar = STRBUF_INIT;
    struct listing l = {STRBUF_INIT};

    (void)state;
    mkdir_p(root);
    p = fixture("rtree/d");
    mkdir_p(p);
    free(p);
    p = fixture("rtree/d/f");
    write_file(p, "12345", 5, 0555);
    free(p);
    p = fixture("rtree/l");
    assert_int_equal(symlink("d/f", p), 0);
    free(p);
    assert_int_equal(nar_dump(root, mem_sink, &nar, NULL), 0);
    assert_int_equal(
        nar_parse_buf(nar.buf, nar.len, &listing_visitor, &l, NULL), 0);
    assert_string_equal(l.text.buf, "d \nd d\nx d/f 5\nl l d/f\n");
    strbuf_release(&l.text);
    strbuf_release(&nar);
    free(root);
}

/* Builder for hand-made NARs. */
static void
nb_u64(struct strbuf *sb, uint64_t v)
{
    unsigned char b[8];
    for (int i = 0; i < 8; i++) {
        b[i] = (unsigned char)(v >> (8 * i));
    }
    strbuf_add(sb, b, 8);
}

static void
nb_bytes(struct strbuf *sb, const char *s, size_t n)
{
    static const char zero[8];
    nb_u64(sb, n);
    strbuf_add(sb, s, n);
    strbuf_add(sb, zero, (8 - n % 8) % 8);
}

/* Tokens separated by '|'; "#N" is a raw u64 N; "\1" is replaced with a
 * NUL byte. */
static void
nb(struct strbuf *sb, const char *spec)
{
    char *copy = xstrdup(spec);
    char *save = NULL;

    for (char *t = strtok_r(copy, "|", &save); t != NULL;
         t = strtok_r(NULL, "|", &save)) {
        if (t[0] == '#' && t[1] != '\0') {
            nb_u64(sb, strtoull(t + 1, NULL, 0));
        } else if (strcmp(t, "<empty>") == 0) {
            nb_bytes(sb, "", 0);
        } else {
            size_t len = strlen(t);
            for (char *c = t; *c; c++) {
                if (*c == '\1') {
                    *c = '\0';
                }
            }
            nb_bytes(sb, t, len);
        }
    }
    free(copy);
}

#define HDR "nix-archive-1|(|type|"

static void
test_reader_accepts(void **state)
{
    static const char *const good[] = {
        HDR "regular|contents|<empty>|)",
        HDR "regular|executable|<empty>|contents|abc|)",
        HDR "symlink|target|x|)",
        HDR "directory|)",
        HDR "directory|entry|(|name|a|node|(|type|directory|)|)|"
            "entry|(|name|b|node|(|type|symlink|target|a|)|)|)",
        /* bytewise order: 'B' < 'a' < 'a-' < 'ab' < '\xc3\xa9' */
        HDR "directory|entry|(|name|B|node|(|type|directory|)|)|"
            "entry|(|name|a|node|(|type|directory|)|)|"
            "entry|(|name|a-|node|(|type|directory|)|)|"
            "entry|(|name|ab|node|(|type|directory|)|)|"
            "entry|(|name|\xc3\xa9|node|(|type|directory|)|)|)",
    };
    (void)state;
    for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
        struct strbuf sb = STRBUF_INIT;
        struct nar_result res;
        nb(&sb, good[i]);
        if (nar_parse_buf(sb.buf, sb.len, NULL, NULL, &res) != 0) {
            fail_msg("rejected case %zu: %s", i, res.error);
        }
        /* Every proper prefix is truncated, hence rejected. */
        for (size_t k = 0; k < sb.len; k++) {
            assert_int_equal(nar_parse_buf(sb.buf, k, NULL, NULL, &res),
                             CR_EPROTO);
        }
        strbuf_release(&sb);
    }
}

static void
test_reader_rejects(void **state)
{
    static const struct {
        const char *spec;
        const char *why; /* expected substring of res.error */
    } bad[] = {
        {"nix-archive-2|(|type|regular|contents|<empty>|)", "magic"},
        {"(|type|regular|contents|<empty>|)", "magic"},
        {HDR "fifo|)", "unknown file type"},
        {HDR "regular|)", "contents"},
        {HDR "regular|executable|x|contents|<empty>|)", "executable"},
        {HDR "regular|contents|<empty>|executable|<empty>|)", "')'"},
        {HDR "symlink|target|<empty>|)", "symlink target"},
        {HDR "symlink|target|a\1b|)", "symlink target"},
        {HDR "directory|entry|(|name|b|node|(|type|directory|)|)|"
             "entry|(|name|a|node|(|type|directory|)|)|)",
         "not sorted"},
        {HDR "directory|entry|(|name|a|node|(|type|directory|)|)|"
             "entry|(|name|a|node|(|type|directory|)|)|)",
         "not sorted"},
        {HDR "directory|entry|(|name|ab|node|(|type|directory|)|)|"
             "entry|(|name|a|node|(|type|directory|)|)|)",
         "not sorted"},
        {HDR "directory|entry|(|name|.|node|(|type|directory|)|)|)",
         "invalid file name"},
        {HDR "directory|entry|(|name|..|node|(|type|directory|)|)|)",
         "invalid file name"},
        {HDR "directory|entry|(|name|a/b|node|(|type|directory|)|)|)",
         "invalid file name"},
        {HDR "directory|entry|(|name|<empty>|node|(|type|directory|)|)|)",
         "invalid file name"},
        {HDR "directory|entry|(|name|a\1|node|(|type|directory|)|)|)",
         "invalid file name"},
        {HDR "directory|entry|(|name|a|(|type|directory|)|)|)", "'node'"},
        {HDR "directory|foo|)", "'entry'"},
        {HDR "regular|contents|#18446744073709551615", "end of NAR"},
        {HDR "directory|entry|(|name|#1000000|", "too long"},
        {HDR "regular|contents|abc|)|extra", "trailing data"},
    };
    (void)state;
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        struct strbuf sb = STRBUF_INIT;
        struct nar_result res;
        int rc;

        nb(&sb, bad[i].spec);
        rc = nar_parse_buf(sb.buf, sb.len, NULL, NULL, &res);
        if (rc != CR_EPROTO) {
            fail_msg("case %zu accepted: %s", i, bad[i].spec);
        }
        if (res.error == NULL || strstr(res.error, bad[i].why) == NULL) {
            fail_msg("case %zu: error '%s', want '%s'",
                     i,
                     res.error ? res.error : "(null)",
                     bad[i].why);
        }
        strbuf_release(&sb);
    }
}

static void
test_reader_padding(void **state)
{
    struct strbuf sb = STRBUF_INIT;
    struct nar_result res;
    size_t off;

    (void)state;
    /* Non-zero padding after file contents. */
    nb(&sb, HDR "regular|contents|abc|)");
    off = sb.len - 16 - 5; /* the 5 padding bytes after "abc" */
    assert_int_equal(nar_parse_buf(sb.buf, sb.len, NULL, NULL, &res), 0);
    sb.buf[off + 2] = 1;
    assert_int_equal(nar_parse_buf(sb.buf, sb.len, NULL, NULL, &res),
                     CR_EPROTO);
    assert_non_null(strstr(res.error, "padding"));
    /* Non-zero padding inside a token ("type" is 4 bytes + 4 padding). */
    strbuf_reset(&sb);
    nb(&sb, HDR "regular|contents|abc|)");
    sb.buf[24 + 16 + 8 + 6] = 'x';
    assert_int_equal(nar_parse_buf(sb.buf, sb.len, NULL, NULL, &res),
                     CR_EPROTO);
    assert_non_null(strstr(res.error, "padding"));
    strbuf_release(&sb);
}

static void
test_reader_depth(void **state)
{
    struct strbuf sb = STRBUF_INIT;
    struct nar_result res;

    (void)state;
    nb(&sb, "nix-archive-1");
    for (int i = 0; i <= NAR_MAX_DEPTH; i++) {
        nb(&sb, "(|type|directory|entry|(|name|d|node");
    }
    assert_int_equal(nar_parse_buf(sb.buf, sb.len, NULL, NULL, &res),
                     CR_EPROTO);
    assert_non_null(strstr(res.error, "deeply"));
    strbuf_release(&sb);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hello_vector),
        cmocka_unit_test(test_files),
        cmocka_unit_test(test_symlink_root),
        cmocka_unit_test(test_tree),
        cmocka_unit_test(test_empty_dir),
        cmocka_unit_test(test_unsupported_and_missing),
        cmocka_unit_test(test_sink_error_stops),
        cmocka_unit_test(test_flat_memory_big_file),
        cmocka_unit_test(test_reader_visits),
        cmocka_unit_test(test_reader_accepts),
        cmocka_unit_test(test_reader_rejects),
        cmocka_unit_test(test_reader_padding),
        cmocka_unit_test(test_reader_depth),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

/* test_copy.c: the copy engine and the progress line.
 *
 * Part 1 runs copy_closure against fakes: a source host that answers the
 * metadata queries for fixture "store paths" made under a temp root, a
 * destination whose stream replays a scripted server and records every
 * byte, and (relay) a remote source whose stream serves NARs.
 * Part 2 runs it against real Nix: a scratch source store filled with
 * nix-instantiate, and `nix-store --serve --write --store DIR` for the
 * destination, then checks the copy with nix-store itself. */
#include "testutil.h"

#include "fakestream.h"

#include "crebuild/copy.h"
#include "crebuild/hash.h"
#include "crebuild/log.h"
#include "crebuild/nar.h"
#include "crebuild/progress.h"
#include "crebuild/serve.h"
#include "crebuild/strbuf.h"
#include "crebuild/util.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[] = "/tmp/crebuild-test-copy-XXXXXX";
static int have_nix;

static char *logbuf;
static size_t loglen;
static FILE *logfp;

static const char *
logged(void)
{
    fflush(logfp);
    return logbuf ? logbuf : "";
}

static void
log_reset(void)
{
    fclose(logfp);
    free(logbuf);
    logbuf = NULL;
    logfp = open_memstream(&logbuf, &loglen);
    log_set_stream(logfp);
}

/* ---- fixture store paths under tmpdir ---- */

enum { LEAF, MID, TOP, NPATHS };

struct fx {
    const char *path;
    int refs[3];
    int nrefs;
    unsigned char hash[32];
    uint64_t size;
    struct strbuf nar;
    /* corruption knobs for the metadata the fake source reports */
    int bad_hash;
    int64_t size_delta;
};

static struct fx fxs[NPATHS] = {
    {.path = "/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-leaf", .nrefs = 0},
    {.path = "/nix/store/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-mid",
     .refs = {LEAF},
     .nrefs = 1},
    {.path = "/nix/store/cccccccccccccccccccccccccccccccc-top",
     .refs = {MID, LEAF, TOP},
     .nrefs = 3},
};

static char *
under_root(const char *rel)
{
    return xasprintf("%s%s", tmpdir, rel);
}

static void
write_file(const char *path, size_t n, int seed, mode_t mode)
{
    char *data = xmalloc(n + 1);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

    assert_true(fd >= 0);
    for (size_t k = 0; k < n; k++) {
        data[k] = (char)(k * 31 + (size_t)seed);
    }
    assert_int_equal(write(fd, data, n), (ssize_t)n);
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
    free(data);
}

static int
mem_sink(void *ctx, const void *buf, size_t n)
{
    strbuf_add(ctx, buf, n);
    return 0;
}

static void
make_fixtures(void)
{
    char *p;
    struct nar_result res;

    p = under_root("/nix");
    mkdir(p, 0755);
    free(p);
    p = under_root("/nix/store");
    mkdir(p, 0755);
    free(p);

    p = under_root(fxs[LEAF].path);
    write_file(p, 5, 1, 0444);
    free(p);

    p = under_root(fxs[MID].path);
    assert_int_equal(mkdir(p, 0755), 0);
    free(p);
    p = xasprintf("%s%s/bin", tmpdir, fxs[MID].path);
    assert_int_equal(mkdir(p, 0755), 0);
    free(p);
    p = xasprintf("%s%s/bin/run", tmpdir, fxs[MID].path);
    write_file(p, 100, 2, 0555);
    free(p);
    p = xasprintf("%s%s/lnk", tmpdir, fxs[MID].path);
    assert_int_equal(symlink("bin/run", p), 0);
    free(p);
    p = xasprintf("%s%s/data", tmpdir, fxs[MID].path);
    write_file(p, 300 * 1024 + 3, 3, 0444);
    free(p);

    p = under_root(fxs[TOP].path);
    assert_int_equal(mkdir(p, 0755), 0);
    free(p);
    p = xasprintf("%s%s/big", tmpdir, fxs[TOP].path);
    write_file(p, 700 * 1024 + 1, 4, 0444);
    free(p);

    for (int i = 0; i < NPATHS; i++) {
        strbuf_init(&fxs[i].nar, 0);
        p = under_root(fxs[i].path);
        assert_int_equal(nar_dump(p, mem_sink, &fxs[i].nar, &res), 0);
        memcpy(fxs[i].hash, res.sha256, 32);
        fxs[i].size = res.size;
        free(p);
    }
}

static int
find_fx(const char *path)
{
    for (int i = 0; i < NPATHS; i++) {
        if (strcmp(fxs[i].path, path) == 0) {
            return i;
        }
    }
    return -1;
}

/* ---- fake hosts ---- */

struct fhost {
    struct host h;
    struct fake *stream; /* handed out by open_stream */
    struct strvec last_argv;
    int last_elevate;
    int opened;
    int runs;          /* commands run on this host */
    int listed_sorted; /* -qR lists dependencies first (as Nix does) */
};

static void
dump_db_for(const struct strvec *argv, struct strbuf *out)
{
    for (size_t i = 1; i < argv->n; i++) {
        int k = find_fx(argv->v[i]);
        unsigned char h[32];
        char hex[65];

        if (k < 0) {
            continue;
        }
        memcpy(h, fxs[k].hash, 32);
        if (fxs[k].bad_hash) {
            h[7] ^= 0x40;
        }
        hash_to_hex(h, 32, hex);
        strbuf_addf(
            out,
            "%s\n%s\n%llu\n/nix/store/dddd-%d.drv\n%d\n",
            fxs[k].path,
            hex,
            (unsigned long long)((int64_t)fxs[k].size + fxs[k].size_delta),
            k,
            fxs[k].nrefs);
        for (int r = 0; r < fxs[k].nrefs; r++) {
            strbuf_addf(out, "%s\n", fxs[fxs[k].refs[r]].path);
        }
    }
}

static int
fh_run(struct host *h, const struct host_cmd *cmd, int *status)
{
    const struct strvec *argv = cmd->argv;

    (void)h;
    *status = 0;
    ((struct fhost *)h)->runs++;
    for (size_t i = 0; i < argv->n; i++) {
        if (strcmp(argv->v[i], "/nix/store/zzzz-unknown") == 0) {
            strbuf_addstr(cmd->err,
                          "error: path '/nix/store/zzzz-unknown' "
                          "is not valid\n");
            *status = 1;
            return 0;
        }
    }
    for (size_t i = 0; i < argv->n; i++) {
        if (strcmp(argv->v[i], "--requisites") == 0 &&
            ((struct fhost *)h)->listed_sorted) {
            strbuf_addf(cmd->out,
                        "%s\n%s\n%s\n",
                        fxs[LEAF].path,
                        fxs[MID].path,
                        fxs[TOP].path);
            return 0;
        }
        if (strcmp(argv->v[i], "--requisites") == 0) {
            /* Not in dependency order: the engine must sort. */
            strbuf_addf(cmd->out,
                        "%s\n%s\n%s\n",
                        fxs[TOP].path,
                        fxs[LEAF].path,
                        fxs[MID].path);
            return 0;
        }
        if (strcmp(argv->v[i], "--dump-db") == 0) {
            dump_db_for(argv, cmd->out);
            return 0;
        }
        if (strcmp(argv->v[i], "path-info") == 0) {
            strbuf_addf(cmd->out,
                        "[{\"path\":\"%s\",\"signatures\":[\"k1:c2ln\"],"
                        "\"ca\":\"fixed:r:sha256:abc\"}]",
                        fxs[TOP].path);
            return 0;
        }
    }
    *status = 1;
    return 0;
}

static int
fh_open_stream(struct host *h, const struct host_cmd *cmd, struct stream **out)
{
    struct fhost *f = (struct fhost *)h;

    strvec_clear(&f->last_argv);
    strvec_pusharr(&f->last_argv, cmd->argv);
    f->last_elevate = cmd->elevate;
    f->opened++;
    *out = &f->stream->s;
    return 0;
}

static void
fh_free(struct host *h)
{
    (void)h;
}

static const struct host_ops fh_ops = {fh_run, fh_open_stream, fh_free};

static void
fhost_init(struct fhost *f, const char *name, int is_local, struct fake *s)
{
    memset(f, 0, sizeof(*f));
    f->h.ops = &fh_ops;
    f->h.name = (char *)(uintptr_t)name;
    f->h.is_local = is_local;
    f->stream = s;
    strvec_init(&f->last_argv);
}

/* The destination's scripted side: hello, the valid paths, acks. */
static void
script_dst(struct fake *f, const int *present, int npresent, int nacks)
{
    put_u64(&f->in, SERVE_MAGIC_2);
    put_u64(&f->in, 0x207);
    put_u64(&f->in, (uint64_t)npresent);
    for (int i = 0; i < npresent; i++) {
        put_str(&f->in, fxs[present[i]].path);
    }
    f->gate_pos = f->in.len;
    for (int i = 0; i < nacks; i++) {
        put_u64(&f->in, 1);
    }
}

static size_t
strsz(size_t n)
{
    return 8 + (n + 7) / 8 * 8;
}

/* Bytes the engine writes for the handshake, the QueryValidPaths and the
 * AddToStoreNar requests of want[]. */
static size_t
wire_size(const int *want, int nwant)
{
    size_t n = 16 + 32;

    for (int i = 0; i < NPATHS; i++) {
        n += strsz(strlen(fxs[i].path));
    }
    for (int i = 0; i < nwant; i++) {
        const struct fx *x = &fxs[want[i]];
        n += 8 + strsz(strlen(x->path)) + strsz(21) + strsz(64) + 8;
        for (int r = 0; r < x->nrefs; r++) {
            n += strsz(strlen(fxs[x->refs[r]].path));
        }
        n += 4 * 8 + strsz(want[i] == TOP ? 18 : 0);
        n += want[i] == TOP ? strsz(7) : 0;
        n += x->nar.len;
    }
    return n;
}

/* Check the destination's input: handshake, one QueryValidPaths of the
 * whole closure in dependency order, then AddToStoreNar for each of
 * want[] in order, NAR included (only complete ones: ncomplete). */
static void
check_dst_wire(const struct fake *f,
               int substitute,
               const int *want,
               int nwant,
               int ncomplete)
{
    struct cursor cur = {(const unsigned char *)f->out.buf, f->out.len};
    static const int order[NPATHS] = {LEAF, MID, TOP};

    assert_int_equal(get_u64(&cur), SERVE_MAGIC_1);
    assert_int_equal(get_u64(&cur), SERVE_VERSION);
    assert_int_equal(get_u64(&cur), 1);
    assert_int_equal(get_u64(&cur), 1); /* lock */
    assert_int_equal(get_u64(&cur), (uint64_t)substitute);
    assert_int_equal(get_u64(&cur), NPATHS);
    /* The whole closure, in any order (the destination does not care;
     * the engine asks before it has sorted anything). */
    int seen[NPATHS] = {0};
    for (int i = 0; i < NPATHS; i++) {
        struct cursor probe = cur;
        int found = -1;
        for (int k = 0; k < NPATHS && found < 0; k++) {
            uint64_t n = get_u64(&probe);
            probe = cur;
            if (n == strlen(fxs[order[k]].path) &&
                memcmp(cur.p + 8, fxs[order[k]].path, n) == 0) {
                found = order[k];
            }
        }
        if (found < 0 || seen[found]) {
            fail_msg("QueryValidPaths: unexpected or repeated path");
        }
        seen[found] = 1;
        expect_str(&cur, fxs[found].path);
    }
    for (int i = 0; i < nwant; i++) {
        const struct fx *x = &fxs[want[i]];
        char hex[65];
        char drv[64];

        hash_to_hex(x->hash, 32, hex);
        snprintf(drv, sizeof(drv), "/nix/store/dddd-%d.drv", want[i]);
        assert_int_equal(get_u64(&cur), 9);
        expect_str(&cur, x->path);
        expect_str(&cur, drv);
        if (!x->bad_hash) {
            expect_str(&cur, hex);
        } else {
            get_u64(&cur);
            cur.p += 64;
            cur.left -= 64;
        }
        assert_int_equal(get_u64(&cur), (uint64_t)x->nrefs);
        for (int r = 0; r < x->nrefs; r++) {
            expect_str(&cur, fxs[x->refs[r]].path);
        }
        assert_int_equal(get_u64(&cur), 0); /* registration time */
        assert_int_equal(get_u64(&cur),
                         (uint64_t)((int64_t)x->size + x->size_delta));
        assert_int_equal(get_u64(&cur), 0); /* ultimate */
        if (want[i] == TOP) {
            assert_int_equal(get_u64(&cur), 1);
            expect_str(&cur, "k1:c2ln");
            expect_str(&cur, "fixed:r:sha256:abc");
        } else {
            assert_int_equal(get_u64(&cur), 0);
            expect_str(&cur, "");
        }
        if (i < ncomplete) {
            assert_true(cur.left >= x->nar.len);
            assert_memory_equal(cur.p, x->nar.buf, x->nar.len);
            cur.p += x->nar.len;
            cur.left -= x->nar.len;
        } else {
            /* Cut off: never the recorded size, so never registered. */
            size_t k = cur.left < x->nar.len ? cur.left : x->nar.len;
            assert_true(cur.left <
                        (uint64_t)((int64_t)x->size + x->size_delta));
            assert_memory_equal(cur.p, x->nar.buf, k);
            cur.left = 0;
        }
    }
    assert_int_equal(cur.left, 0);
}

static void
opts_for_fakes(struct copy_opts *o)
{
    copy_opts_init(o);
    o->src_root = tmpdir;
    o->quiet = 1;
}

/* ---- part 1: against fakes ---- */

static void
test_cold_copy(void **state)
{
    static const int want[] = {LEAF, MID, TOP};
    struct fake dst;
    struct fhost src, dsth;
    struct copy_opts o;
    struct copy_stats st;
    struct strvec roots = STRVEC_INIT;
    const char *after_query;
    const char *last_w;

    (void)state;
    log_reset();
    fake_init(&dst);
    script_dst(&dst, NULL, 0, 3);
    dst.gate_out = wire_size(want, 3);
    fhost_init(&src, "localhost", 1, NULL);
    fhost_init(&dsth, "target", 0, &dst);
    opts_for_fakes(&o);
    o.elevate = 1;
    strvec_push(&roots, fxs[TOP].path);

    assert_int_equal(copy_closure(&src.h, &dsth.h, &roots, &o, &st, NULL), 0);
    check_dst_wire(&dst, 0, want, 3, 3);
    assert_true(dst.eof_sent);
    assert_true(dst.closed);
    /* nix-store --serve --write, elevated. */
    assert_int_equal(dsth.last_argv.n, 3);
    assert_string_equal(dsth.last_argv.v[0], "nix-store");
    assert_string_equal(dsth.last_argv.v[1], "--serve");
    assert_string_equal(dsth.last_argv.v[2], "--write");
    assert_int_equal(dsth.last_elevate, 1);
    /* Pipelined: the gate (see fakestream.h) held the acks back until
     * every request was written, and no read blocked on them. */
    last_w = strrchr(dst.events.buf, 'W');
    after_query = strchr(dst.events.buf, 'R');
    assert_non_null(after_query);
    assert_true(last_w > after_query);

    assert_int_equal(st.paths_total, 3);
    assert_int_equal(st.paths_present, 0);
    assert_int_equal(st.paths_copied, 3);
    assert_int_equal(st.bytes, fxs[0].size + fxs[1].size + fxs[2].size);
    assert_non_null(strstr(logged(), "copied 3 paths, 1.0 MiB in "));
    assert_non_null(strstr(logged(), "; 0 already present\n"));
    strvec_clear(&roots);
    strvec_clear(&dsth.last_argv);
    fake_release(&dst);
}

/* The same cold copy with the metadata coming from the feed thread in
 * batches: one path per batch or all at once, the closure listed
 * dependencies first (batches go out as they come) or not (the thread
 * orders the rest first).  The wire must be the same. */
static void
test_cold_copy_feed(void **state)
{
    static const int want[] = {LEAF, MID, TOP};
    (void)state;
    for (int c = 0; c < 4; c++) {
        struct fake dst;
        struct fhost src, dsth;
        struct copy_opts o;
        struct copy_stats st;
        struct strvec roots = STRVEC_INIT;

        log_reset();
        fake_init(&dst);
        script_dst(&dst, NULL, 0, 3);
        dst.gate_out = wire_size(want, 3);
        fhost_init(&src, "localhost", 1, NULL);
        src.listed_sorted = c & 1;
        fhost_init(&dsth, "target", 0, &dst);
        opts_for_fakes(&o);
        o.feed_min = 1;
        o.feed_batch = c & 2 ? 32 : 1;
        strvec_push(&roots, fxs[TOP].path);
        assert_int_equal(copy_closure(&src.h, &dsth.h, &roots, &o, &st, NULL),
                         0);
        check_dst_wire(&dst, 0, want, 3, 3);
        assert_int_equal(st.paths_copied, 3);
        assert_int_equal(st.bytes, fxs[0].size + fxs[1].size + fxs[2].size);
        /* -qR, then per batch --dump-db and path-info. */
        assert_int_equal(src.runs,
                         c == 1 ? 1 + 3 * 2 : 1 + 2 * (c == 0 ? 2 : 1));
        strvec_clear(&roots);
        strvec_clear(&dsth.last_argv);
        fake_release(&dst);
    }
}

/* A closure big enough for the feed has its metadata fetched for every
 * path while the destination is asked; some paths are there after all,
 * so that fetch is dropped (cancelled: no warning, whatever it had done)
 * and only the lacking path goes, with its metadata. */
static void
test_partial_copy_feed_dropped(void **state)
{
    static const int present[] = {LEAF, TOP};
    static const int want[] = {MID};
    (void)state;
    for (int c = 0; c < 2; c++) {
        struct fake dst;
        struct fhost src, dsth;
        struct copy_opts o;
        struct copy_stats st;
        struct strvec roots = STRVEC_INIT;

        log_reset();
        fake_init(&dst);
        script_dst(&dst, present, 2, 1);
        dst.gate_out = wire_size(want, 1);
        fhost_init(&src, "localhost", 1, NULL);
        src.listed_sorted = c;
        fhost_init(&dsth, "target", 0, &dst);
        opts_for_fakes(&o);
        o.feed_min = 1;
        o.feed_batch = 1;
        strvec_push(&roots, fxs[TOP].path);
        assert_int_equal(copy_closure(&src.h, &dsth.h, &roots, &o, &st, NULL),
                         0);
        check_dst_wire(&dst, 0, want, 1, 1);
        assert_int_equal(st.paths_present, 2);
        assert_int_equal(st.paths_copied, 1);
        assert_int_equal(st.bytes, fxs[MID].size);
        assert_non_null(strstr(logged(), "copied 1 paths"));
        assert_null(strstr(logged(), "warning"));
        assert_null(strstr(logged(), "error"));
        strvec_clear(&roots);
        strvec_clear(&dsth.last_argv);
        fake_release(&dst);
    }
}

static void
test_partial_copy_substitute(void **state)
{
    static const int present[] = {LEAF, TOP};
    static const int want[] = {MID};
    struct fake dst;
    struct fhost src, dsth;
    struct copy_opts o;
    struct copy_stats st;
    struct strvec roots = STRVEC_INIT;

    (void)state;
    log_reset();
    fake_init(&dst);
    script_dst(&dst, present, 2, 1);
    dst.gate_out = wire_size(want, 1);
    fhost_init(&src, "localhost", 1, NULL);
    fhost_init(&dsth, "target", 0, &dst);
    opts_for_fakes(&o);
    o.substitute = 1;
    o.dst_store = "/tmp/elsewhere";
    o.nix_store = "/run/current-system/sw/bin/nix-store";
    strvec_push(&roots, fxs[TOP].path);
    assert_int_equal(copy_closure(&src.h, &dsth.h, &roots, &o, &st, NULL), 0);
    check_dst_wire(&dst, 1, want, 1, 1);
    assert_int_equal(st.paths_present, 2);
    assert_int_equal(st.paths_copied, 1);
    assert_int_equal(dsth.last_elevate, 0);
    assert_int_equal(dsth.last_argv.n, 5);
    assert_string_equal(dsth.last_argv.v[0],
                        "/run/current-system/sw/bin/nix-store");
    assert_string_equal(dsth.last_argv.v[3], "--store");
    assert_string_equal(dsth.last_argv.v[4], "/tmp/elsewhere");
    assert_non_null(strstr(logged(), "copied 1 paths"));
    assert_non_null(strstr(logged(), "; 2 already present\n"));
    strvec_clear(&roots);
    strvec_clear(&dsth.last_argv);
    fake_release(&dst);
}

static void
test_nothing_to_copy(void **state)
{
    static const int present[] = {LEAF, MID, TOP};
    struct fake dst;
    struct fhost src, dsth;
    struct copy_opts o;
    struct copy_stats st;
    struct strvec roots = STRVEC_INIT;

    (void)state;
    log_reset();
    fake_init(&dst);
    script_dst(&dst, present, 3, 0);
    fhost_init(&src, "localhost", 1, NULL);
    fhost_init(&dsth, "target", 0, &dst);
    opts_for_fakes(&o);
    strvec_push(&roots, fxs[TOP].path);
    assert_int_equal(copy_closure(&src.h, &dsth.h, &roots, &o, &st, NULL), 0);
    check_dst_wire(&dst, 0, NULL, 0, 0);
    assert_int_equal(st.paths_copied, 0);
    assert_int_equal(st.paths_present, 3);
    assert_non_null(strstr(logged(), "copied 0 paths, 0.0 MiB in "));
    /* Only the closure query: no metadata asked for paths already there. */
    assert_int_equal(src.runs, 1);
    strvec_clear(&roots);
    strvec_clear(&dsth.last_argv);
    fake_release(&dst);
}

/* A corrupt source path (its NAR does not match the recorded hash or
 * size): the copy stops with CR_ECORRUPT, the paths before it are
 * complete on the wire, its own NAR is cut short, nothing follows. */
static void
run_corrupt(int which, int bad_hash, int64_t size_delta, const char *msg)
{
    static const int want[] = {LEAF, MID, TOP};
    int nwant = which == LEAF ? 1 : which == MID ? 2 : 3;
    struct fake dst;
    struct fhost src, dsth;
    struct copy_opts o;
    struct copy_stats st;
    struct strvec roots = STRVEC_INIT;

    log_reset();
    fxs[which].bad_hash = bad_hash;
    fxs[which].size_delta = size_delta;
    fake_init(&dst);
    script_dst(&dst, NULL, 0, nwant - 1);
    dst.gate_out = SIZE_MAX;
    fhost_init(&src, "localhost", 1, NULL);
    fhost_init(&dsth, "target", 0, &dst);
    opts_for_fakes(&o);
    strvec_push(&roots, fxs[TOP].path);
    assert_int_equal(copy_closure(&src.h, &dsth.h, &roots, &o, &st, NULL),
                     CR_ECORRUPT);
    if (size_delta > 0 || bad_hash) {
        check_dst_wire(&dst, 0, want, nwant, nwant - 1);
    }
    assert_true(dst.eof_sent);
    assert_true(dst.closed);
    assert_int_equal(st.paths_copied, (size_t)(nwant - 1));
    if (strstr(logged(), msg) == NULL ||
        strstr(logged(), fxs[which].path) == NULL) {
        fail_msg("log: %s", logged());
    }
    assert_null(strstr(logged(), "already present"));
    fxs[which].bad_hash = 0;
    fxs[which].size_delta = 0;
    strvec_clear(&roots);
    strvec_clear(&dsth.last_argv);
    fake_release(&dst);
}

static void
test_corrupt_hash(void **state)
{
    (void)state;
    run_corrupt(MID, 1, 0, "is corrupt: recorded sha256:");
    run_corrupt(LEAF, 1, 0, "is corrupt: recorded sha256:");
    run_corrupt(TOP, 1, 0, "is corrupt: recorded sha256:");
}

static void
test_corrupt_size(void **state)
{
    (void)state;
    /* Recorded larger than the real NAR: found at the end. */
    run_corrupt(MID, 0, 8, "is corrupt: recorded sha256:");
    /* Recorded smaller: found as soon as the NAR overruns it. */
    run_corrupt(MID, 0, -8, "larger than its recorded size");
    run_corrupt(TOP, 0, -100000, "larger than its recorded size");
}

static void
test_remote_error_mid_copy(void **state)
{
    struct fake dst;
    struct fhost src, dsth;
    struct copy_opts o;
    struct copy_stats st;
    struct strvec roots = STRVEC_INIT;

    (void)state;
    log_reset();
    fake_init(&dst);
    script_dst(&dst, NULL, 0, 1); /* LEAF is accepted, then it dies */
    dst.gate_out = SIZE_MAX;
    dst.err = "error: cannot add path '/nix/store/bbbbbbbbbbbbbbbbbbbbbbbb"
              "bbbbbbbb-mid' because it lacks a signature by a trusted key\n";
    dst.status = 1;
    /* Writes fail somewhere inside TOP's NAR. */
    dst.fail_write_at = fxs[LEAF].size + fxs[MID].size + 200 * 1024;
    fhost_init(&src, "localhost", 1, NULL);
    fhost_init(&dsth, "target", 0, &dst);
    opts_for_fakes(&o);
    strvec_push(&roots, fxs[TOP].path);
    assert_int_equal(copy_closure(&src.h, &dsth.h, &roots, &o, &st, NULL),
                     CR_ENIX);
    assert_int_equal(st.paths_copied, 1);
    assert_string_equal(logged(),
                        "error: cannot copy '/nix/store/bbbbbbbbbbbbbbbbbbbbb"
                        "bbbbbbbbbbb-mid' to target: cannot add path '/nix/st"
                        "ore/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-mid' because it"
                        " lacks a signature by a trusted key\n");
    strvec_clear(&roots);
    strvec_clear(&dsth.last_argv);
    fake_release(&dst);
}

static void
test_dst_not_serving(void **state)
{
    struct fake dst;
    struct fhost src, dsth;
    struct copy_opts o;
    struct strvec roots = STRVEC_INIT;

    (void)state;
    log_reset();
    fake_init(&dst);
    strbuf_addstr(&dst.in, "motd: welcome\n");
    fhost_init(&src, "localhost", 1, NULL);
    fhost_init(&dsth, "target", 0, &dst);
    opts_for_fakes(&o);
    strvec_push(&roots, fxs[TOP].path);
    assert_int_equal(copy_closure(&src.h, &dsth.h, &roots, &o, NULL, NULL),
                     CR_EPROTO);
    assert_string_equal(logged(),
                        "error: protocol mismatch from target, got "
                        "'motd: welcome\\n'\n");
    strvec_clear(&roots);
    strvec_clear(&dsth.last_argv);
    fake_release(&dst);
}

static void
test_keep_session(void **state)
{
    struct fake dst;
    struct fhost src, dsth;
    struct copy_opts o;
    struct copy_session *keep = NULL;
    struct strvec roots = STRVEC_INIT;

    (void)state;
    log_reset();
    fake_init(&dst);
    script_dst(&dst, NULL, 0, 3);
    fhost_init(&src, "localhost", 1, NULL);
    fhost_init(&dsth, "target", 0, &dst);
    opts_for_fakes(&o);
    strvec_push(&roots, fxs[TOP].path);
    assert_int_equal(copy_closure(&src.h, &dsth.h, &roots, &o, NULL, &keep), 0);
    assert_non_null(keep);
    /* Still open: the remote's temp roots are held. */
    assert_false(dst.eof_sent);
    assert_false(dst.closed);
    assert_int_equal(copy_session_close(keep), 0);
    assert_true(dst.eof_sent);
    assert_true(dst.closed);
    assert_int_equal(copy_session_close(NULL), 0);
    strvec_clear(&roots);
    strvec_clear(&dsth.last_argv);
    fake_release(&dst);
}

/* The end of a run: a kept session whose uploads were all answered is let
 * go of without waiting for the remote; a stream that cannot do that is
 * closed as by copy_session_close. */
static void
test_release_session(void **state)
{
    for (int can = 0; can <= 1; can++) {
        struct fake dst;
        struct fhost src, dsth;
        struct copy_opts o;
        struct copy_session *keep = NULL;
        struct strvec roots = STRVEC_INIT;

        (void)state;
        log_reset();
        fake_init(&dst);
        if (can) {
            dst.s.ops = &fake_ops_release;
        }
        script_dst(&dst, NULL, 0, 3);
        fhost_init(&src, "localhost", 1, NULL);
        fhost_init(&dsth, "target", 0, &dst);
        opts_for_fakes(&o);
        strvec_push(&roots, fxs[TOP].path);
        assert_int_equal(copy_closure(&src.h, &dsth.h, &roots, &o, NULL, &keep),
                         0);
        assert_non_null(keep);
        copy_session_release(keep);
        assert_true(dst.eof_sent);
        assert_int_equal(dst.released, can);
        assert_int_equal(dst.closed, !can);
        copy_session_release(NULL);
        strvec_clear(&roots);
        strvec_clear(&dsth.last_argv);
        fake_release(&dst);
    }
}

static void
test_source_query_fails(void **state)
{
    struct fake dst;
    struct fhost src, dsth;
    struct copy_opts o;
    struct strvec roots = STRVEC_INIT;

    (void)state;
    log_reset();
    fake_init(&dst);
    fhost_init(&src, "localhost", 1, NULL);
    fhost_init(&dsth, "target", 0, &dst);
    opts_for_fakes(&o);
    strvec_push(&roots, "/nix/store/zzzz-unknown");
    assert_int_equal(copy_closure(&src.h, &dsth.h, &roots, &o, NULL, NULL),
                     CR_ENIX);
    assert_string_equal(logged(),
                        "error: nix-store --query failed: path "
                        "'/nix/store/zzzz-unknown' is not valid\n");
    /* The remote command was started meanwhile (serve_start), but was
     * sent nothing, not even the greeting, and is closed again. */
    assert_int_equal(dsth.opened, 1);
    assert_int_equal(dst.out.len, 0);
    assert_true(dst.closed);
    strvec_clear(&roots);
    strvec_clear(&dsth.last_argv);
    fake_release(&dst);
}

/* Relay: the source is remote; metadata and NARs come from its serve
 * stream and are passed on unchanged. */
static void
script_src(struct fake *f, int corrupt_top)
{
    static const int order[NPATHS] = {LEAF, MID, TOP};

    put_u64(&f->in, SERVE_MAGIC_2);
    put_u64(&f->in, 0x207);
    /* QueryClosure */
    put_u64(&f->in, NPATHS);
    for (int i = 0; i < NPATHS; i++) {
        put_str(&f->in, fxs[i].path);
    }
    /* QueryPathInfos */
    for (int i = NPATHS - 1; i >= 0; i--) {
        char n32[53];
        char buf[80];
        char drv[64];
        hash_to_nix32(fxs[i].hash, 32, n32);
        snprintf(buf, sizeof(buf), "sha256:%s", n32);
        snprintf(drv, sizeof(drv), "/nix/store/dddd-%d.drv", i);
        put_str(&f->in, fxs[i].path);
        put_str(&f->in, drv);
        put_u64(&f->in, (uint64_t)fxs[i].nrefs);
        for (int r = 0; r < fxs[i].nrefs; r++) {
            put_str(&f->in, fxs[fxs[i].refs[r]].path);
        }
        put_u64(&f->in, fxs[i].size);
        put_u64(&f->in, fxs[i].size);
        put_str(&f->in, buf);
        put_str(&f->in, i == TOP ? "fixed:r:sha256:abc" : "");
        put_u64(&f->in, i == TOP ? 1 : 0);
        if (i == TOP) {
            put_str(&f->in, "k1:c2ln");
        }
    }
    put_str(&f->in, "");
    /* DumpStorePath replies, dependency order. */
    for (int i = 0; i < NPATHS; i++) {
        size_t at = f->in.len;
        strbuf_add(&f->in, fxs[order[i]].nar.buf, fxs[order[i]].nar.len);
        if (corrupt_top && order[i] == TOP) {
            f->in.buf[at + fxs[TOP].nar.len - 200] ^= 1;
        }
    }
}

static void
test_relay_from_remote_source(void **state)
{
    static const int want[] = {LEAF, MID, TOP};
    struct fake src, dst;
    struct fhost srch, dsth;
    struct copy_opts o;
    struct copy_stats st;
    struct strvec roots = STRVEC_INIT;
    struct cursor cur;

    (void)state;
    log_reset();
    fake_init(&src);
    fake_init(&dst);
    script_src(&src, 0);
    script_dst(&dst, NULL, 0, 3);
    dst.gate_out = wire_size(want, 3);
    fhost_init(&srch, "builder", 0, &src);
    fhost_init(&dsth, "target", 0, &dst);
    copy_opts_init(&o);
    o.quiet = 1;
    o.elevate = 1;
    strvec_push(&roots, fxs[TOP].path);
    assert_int_equal(copy_closure(&srch.h, &dsth.h, &roots, &o, &st, NULL), 0);
    check_dst_wire(&dst, 0, want, 3, 3);
    assert_int_equal(st.paths_copied, 3);
    /* The source ran read-only nix-store --serve, not elevated. */
    assert_int_equal(srch.last_argv.n, 2);
    assert_string_equal(srch.last_argv.v[1], "--serve");
    assert_int_equal(srch.last_elevate, 0);
    assert_true(src.closed);
    /* Its requests: QueryClosure, QueryPathInfos, three dumps. */
    cur.p = (const unsigned char *)src.out.buf;
    cur.left = src.out.len;
    get_u64(&cur);
    get_u64(&cur);
    assert_int_equal(get_u64(&cur), 7);
    get_u64(&cur);
    assert_int_equal(get_u64(&cur), 1);
    expect_str(&cur, fxs[TOP].path);
    assert_int_equal(get_u64(&cur), 2);
    assert_int_equal(get_u64(&cur), 3);
    for (int i = 0; i < NPATHS; i++) {
        expect_str(&cur, fxs[i].path);
    }
    for (int i = 0; i < NPATHS; i++) {
        assert_int_equal(get_u64(&cur), 3);
        expect_str(&cur, fxs[want[i]].path);
    }
    assert_int_equal(cur.left, 0);
    strvec_clear(&roots);
    strvec_clear(&srch.last_argv);
    strvec_clear(&dsth.last_argv);
    fake_release(&src);
    fake_release(&dst);
}

static void
test_relay_corrupt_source(void **state)
{
    static const int want[] = {LEAF, MID, TOP};
    struct fake src, dst;
    struct fhost srch, dsth;
    struct copy_opts o;
    struct copy_stats st;
    struct strvec roots = STRVEC_INIT;

    (void)state;
    log_reset();
    fake_init(&src);
    fake_init(&dst);
    script_src(&src, 1);
    script_dst(&dst, NULL, 0, 2);
    dst.gate_out = SIZE_MAX;
    fhost_init(&srch, "builder", 0, &src);
    fhost_init(&dsth, "target", 0, &dst);
    copy_opts_init(&o);
    o.quiet = 1;
    strvec_push(&roots, fxs[TOP].path);
    assert_int_equal(copy_closure(&srch.h, &dsth.h, &roots, &o, &st, NULL),
                     CR_ECORRUPT);
    /* TOP's NAR went out but for its last bytes. */
    {
        struct strbuf saved = STRBUF_INIT;
        strbuf_add(&saved, fxs[TOP].nar.buf, fxs[TOP].nar.len);
        fxs[TOP].nar.buf[fxs[TOP].nar.len - 200] ^= 1;
        check_dst_wire(&dst, 0, want, 3, 2);
        memcpy(fxs[TOP].nar.buf, saved.buf, saved.len);
        strbuf_release(&saved);
    }
    assert_non_null(strstr(logged(), "on builder is corrupt"));
    assert_int_equal(st.paths_copied, 2);
    strvec_clear(&roots);
    strvec_clear(&srch.last_argv);
    strvec_clear(&dsth.last_argv);
    fake_release(&src);
    fake_release(&dst);
}

/* ---- progress ---- */

static void
test_progress_format(void **state)
{
    static const struct {
        uint64_t pd, pt, bd, bt;
        double rate;
        int width;
        const char *want;
    } v[] = {
        {123,
         1000,
         47815065,
         125829120,
         12.3 * 1048576,
         0,
         "copying: 123/1000 paths, 45.6/120.0 MiB, 12.3 MiB/s, ETA 6s"},
        {0, 10, 0, 1048576, -1, 0, "copying: 0/10 paths, 0.0/1.0 MiB"},
        {1,
         2,
         0,
         200 * 1048576ULL,
         1048576,
         0,
         "copying: 1/2 paths, 0.0/200.0 MiB, 1.0 MiB/s, ETA 3m20s"},
        {1,
         2,
         0,
         7200 * 1048576ULL,
         1048576,
         0,
         "copying: 1/2 paths, 0.0/7200.0 MiB, 1.0 MiB/s, ETA 2h00m"},
        {5, 5, 10, 10, 100, 0, "copying: 5/5 paths, 0.0/0.0 MiB, 0.0 MiB/s"},
        {123,
         1000,
         47815065,
         125829120,
         12.3 * 1048576,
         21,
         "copying: 123/1000 pa"},
    };
    (void)state;
    for (size_t i = 0; i < ARRAY_SIZE(v); i++) {
        char buf[256];
        progress_format(buf,
                        sizeof(buf),
                        "copying",
                        v[i].pd,
                        v[i].pt,
                        v[i].bd,
                        v[i].bt,
                        v[i].rate,
                        v[i].width);
        assert_string_equal(buf, v[i].want);
    }
}

static void
test_progress_line(void **state)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    struct progress *p;

    (void)state;
    /* Disabled: not a byte. */
    p = progress_new(f, "copying", 0);
    progress_set_total(p, 10, 100);
    progress_update(p, 1, 10);
    progress_free(p);
    fflush(f);
    assert_int_equal(len, 0);

    /* Enabled: drawn in place, rate-limited, erased before a log line. */
    p = progress_new(f, "copying", 1);
    progress_set_total(p, 10, 100);
    progress_update(p, 1, 10);
    progress_update(p, 2, 20); /* within 100 ms: not drawn */
    fflush(f);
    assert_string_equal(buf, "\rcopying: 1/10 paths, 0.0/0.0 MiB\033[K");
    log_set_stream(f);
    log_info("hello");
    fflush(f);
    assert_string_equal(buf,
                        "\rcopying: 1/10 paths, 0.0/0.0 MiB\033[K"
                        "\r\033[Khello\n");
    progress_update(p, 3, 30); /* redrawn at once after a clear */
    progress_free(p);
    log_info("after");
    fflush(f);
    assert_string_equal(buf,
                        "\rcopying: 1/10 paths, 0.0/0.0 MiB\033[K"
                        "\r\033[Khello\n"
                        "\rcopying: 3/10 paths, 0.0/0.0 MiB\033[K"
                        "\r\033[Kafter\n");
    log_set_stream(logfp);
    fclose(f);
    free(buf);
}

/* ---- part 2: against real Nix ---- */

static char *src_store;
static char *dst_store;

static int
run_cmd(const struct strvec *argv, struct strbuf *out)
{
    struct host *h = host_local_new(NULL);
    struct strbuf err = STRBUF_INIT;
    struct host_cmd cmd;
    int status = -1;

    memset(&cmd, 0, sizeof(cmd));
    cmd.argv = argv;
    cmd.out = out;
    cmd.err = &err;
    if (host_run(h, &cmd, &status) != 0) {
        status = -1;
    }
    if (status != 0 && getenv("CREBUILD_TEST_VERBOSE") != NULL) {
        print_message("command failed: %s\n", err.buf);
    }
    strbuf_release(&err);
    host_free(h);
    return status;
}

/* nix-store --store STORE ARGS... */
static int
nix_store(const char *store, struct strbuf *out, ...)
{
    struct strvec argv = STRVEC_INIT;
    va_list ap;
    const char *a;
    int rc;

    strvec_pushl(&argv, "nix-store", "--store", store, (const char *)NULL);
    va_start(ap, out);
    while ((a = va_arg(ap, const char *)) != NULL) {
        strvec_push(&argv, a);
    }
    va_end(ap);
    rc = run_cmd(&argv, out);
    strvec_clear(&argv);
    return rc;
}

/* A source store holding a closure of ~60 paths: a directory source with
 * an executable, a symlink, nesting and a 5 MiB file, 50 text files each
 * referencing the previous one and the directory, and a top. */
static char *real_root;

static void
make_real_store(void)
{
    static const char expr_fmt[] =
        "let d = builtins.path { path = %s/fx; name = \"fixture\"; };"
        "    step = acc: i: builtins.toFile \"t${toString i}\""
        "        \"n ${toString i} ${acc} ${d}\";"
        "    chain = builtins.foldl' step \"${d}\" (builtins.genList (x: x) "
        "50);"
        "in builtins.toFile \"top\" \"top ${chain}\"";
    struct strvec argv = STRVEC_INIT;
    struct strbuf out = STRBUF_INIT;
    char *p;
    char *expr;

    p = xasprintf("%s/fx", tmpdir);
    assert_int_equal(mkdir(p, 0755), 0);
    free(p);
    p = xasprintf("%s/fx/sub", tmpdir);
    assert_int_equal(mkdir(p, 0755), 0);
    free(p);
    p = xasprintf("%s/fx/sub/run", tmpdir);
    write_file(p, 50, 9, 0755);
    free(p);
    p = xasprintf("%s/fx/big", tmpdir);
    write_file(p, 5 * 1024 * 1024 + 7, 8, 0644);
    free(p);
    p = xasprintf("%s/fx/link", tmpdir);
    assert_int_equal(symlink("sub/run", p), 0);
    free(p);
    p = xasprintf("%s/fx/empty", tmpdir);
    assert_int_equal(mkdir(p, 0755), 0);
    free(p);

    expr = xasprintf(expr_fmt, tmpdir);
    strvec_pushl(&argv,
                 "nix-instantiate",
                 "--store",
                 src_store,
                 "--eval",
                 "--read-write-mode",
                 "-E",
                 expr,
                 (const char *)NULL);
    assert_int_equal(run_cmd(&argv, &out), 0);
    strbuf_rtrim(&out);
    real_root = xstrndup(out.buf + (out.buf[0] == '"'),
                         out.len - 2 * (out.buf[0] == '"'));
    free(expr);
    strvec_clear(&argv);
    strbuf_release(&out);
}

static void
real_opts(struct copy_opts *o, const char *dst)
{
    copy_opts_init(o);
    o->quiet = 1;
    o->src_store = src_store;
    o->src_root = src_store;
    o->dst_store = dst;
}

static void
check_closure_equal(const char *dst)
{
    struct strbuf a = STRBUF_INIT;
    struct strbuf b = STRBUF_INIT;
    struct strbuf ha = STRBUF_INIT;
    struct strbuf hb = STRBUF_INIT;

    assert_int_equal(nix_store(src_store, &a, "-qR", real_root, NULL), 0);
    assert_int_equal(nix_store(dst, &b, "-qR", real_root, NULL), 0);
    assert_string_equal(a.buf, b.buf);
    /* Same narHash, and the destination's contents match it. */
    assert_int_equal(nix_store(src_store, &ha, "-q", "--hash", real_root, NULL),
                     0);
    assert_int_equal(nix_store(dst, &hb, "-q", "--hash", real_root, NULL), 0);
    assert_int_equal(nix_store(src_store, &ha, "-q", "--size", real_root, NULL),
                     0);
    assert_int_equal(nix_store(dst, &hb, "-q", "--size", real_root, NULL), 0);
    assert_string_equal(ha.buf, hb.buf);
    strbuf_reset(&hb);
    assert_int_equal(nix_store(dst, &hb, "--verify-path", real_root, NULL), 0);
    strbuf_release(&a);
    strbuf_release(&b);
    strbuf_release(&ha);
    strbuf_release(&hb);
}

static void
test_real_copy(void **state)
{
    struct host *local = host_local_new(NULL);
    struct copy_opts o;
    struct copy_stats st;
    struct strvec roots = STRVEC_INIT;
    struct strbuf out = STRBUF_INIT;
    size_t total;

    (void)state;
    if (!have_nix) {
        skip();
    }
    log_reset();
    strvec_push(&roots, real_root);
    real_opts(&o, dst_store);

    /* Cold. */
    assert_int_equal(copy_closure(local, local, &roots, &o, &st, NULL), 0);
    total = st.paths_total;
    assert_true(total >= 52);
    assert_int_equal(st.paths_copied, total);
    assert_int_equal(st.paths_present, 0);
    check_closure_equal(dst_store);
    /* Every path verifies against its hash in the destination's DB. */
    assert_int_equal(
        nix_store(dst_store, &out, "--verify", "--check-contents", NULL), 0);

    /* Warm: nothing to do. */
    assert_int_equal(copy_closure(local, local, &roots, &o, &st, NULL), 0);
    assert_int_equal(st.paths_copied, 0);
    assert_int_equal(st.paths_present, total);

    /* Partial: remove the top, copy again. */
    assert_int_equal(nix_store(dst_store, &out, "--delete", real_root, NULL),
                     0);
    assert_int_equal(copy_closure(local, local, &roots, &o, &st, NULL), 0);
    assert_int_equal(st.paths_copied, 1);
    assert_int_equal(st.paths_present, total - 1);
    check_closure_equal(dst_store);

    strvec_clear(&roots);
    strbuf_release(&out);
    host_free(local);
}

/* The local host, but --dump-db and nix path-info --json lie about one
 * path's hash. */
struct lying_host {
    struct host h;
    struct host *real;
    const char *victim;
};

static int
lh_run(struct host *h, const struct host_cmd *cmd, int *status)
{
    struct lying_host *l = (struct lying_host *)h;
    int rc = host_run(l->real, cmd, status);
    int is_dump_db = 0, is_json = 0;

    for (size_t i = 0; i < cmd->argv->n; i++) {
        is_dump_db |= strcmp(cmd->argv->v[i], "--dump-db") == 0;
        is_json |= strcmp(cmd->argv->v[i], "path-info") == 0;
    }
    if (rc == 0 && is_json && cmd->out != NULL) {
        /* Nix 2.8's array: {"path":"...","narHash":"sha256-...",...} */
        char *key = xasprintf("\"path\":\"%s\"", l->victim);
        char *at = strstr(cmd->out->buf, key);
        char *nh = at != NULL ? strstr(at, "\"narHash\":\"sha256-") : NULL;

        free(key);
        if (nh != NULL) {
            char *c = nh + strlen("\"narHash\":\"sha256-") + 5;
            *c = *c == 'A' ? 'B' : 'A';
        }
    }
    if (rc == 0 && is_dump_db && cmd->out != NULL) {
        char *at = strstr(cmd->out->buf, l->victim);
        if (at != NULL) {
            /* the hash line follows the path line: flip a hex digit */
            char *hash = strchr(at, '\n') + 1;
            hash[10] = hash[10] == '0' ? '1' : '0';
        }
    }
    return rc;
}

static int
lh_open_stream(struct host *h, const struct host_cmd *cmd, struct stream **out)
{
    struct lying_host *l = (struct lying_host *)h;
    return l->real->ops->open_stream(l->real, cmd, out);
}

static void
lh_free(struct host *h)
{
    (void)h;
}

static const struct host_ops lh_ops = {lh_run, lh_open_stream, lh_free};

static void
test_real_corrupt_never_registered(void **state)
{
    struct lying_host lh;
    struct host *local = host_local_new(NULL);
    struct copy_opts o;
    struct copy_stats st;
    struct strvec roots = STRVEC_INIT;
    struct strbuf out = STRBUF_INIT;
    struct strbuf closure = STRBUF_INIT;
    char *dst2 = xasprintf("%s/dst2", tmpdir);
    char *fixture_path;
    char *nl;

    (void)state;
    if (!have_nix) {
        skip();
    }
    log_reset();
    /* The directory source is the first path of the closure. */
    assert_int_equal(nix_store(src_store, &closure, "-qR", real_root, NULL), 0);
    fixture_path = strstr(closure.buf, "-fixture");
    assert_non_null(fixture_path);
    while (fixture_path > closure.buf && fixture_path[-1] != '\n') {
        fixture_path--;
    }
    nl = strchr(fixture_path, '\n');
    *nl = '\0';

    memset(&lh, 0, sizeof(lh));
    lh.h.ops = &lh_ops;
    lh.h.name = local->name;
    lh.h.is_local = 1;
    lh.real = local;
    lh.victim = fixture_path;
    strvec_push(&roots, real_root);
    real_opts(&o, dst2);
    assert_int_equal(copy_closure(&lh.h, local, &roots, &o, &st, NULL),
                     CR_ECORRUPT);
    assert_non_null(strstr(logged(), "is corrupt"));
    assert_int_equal(st.paths_copied, 0);
    /* The remote saw the whole NAR but its last bytes: not registered. */
    assert_int_not_equal(
        nix_store(dst2, &out, "--check-validity", fixture_path, NULL), 0);
    assert_int_not_equal(
        nix_store(dst2, &out, "--check-validity", real_root, NULL), 0);

    /* After the "repair", the rerun copies everything. */
    assert_int_equal(copy_closure(local, local, &roots, &o, &st, NULL), 0);
    assert_int_equal(st.paths_copied, st.paths_total);
    check_closure_equal(dst2);

    free(dst2);
    strvec_clear(&roots);
    strbuf_release(&out);
    strbuf_release(&closure);
    host_free(local);
}

static void
test_real_keep_session(void **state)
{
    struct host *local = host_local_new(NULL);
    struct copy_opts o;
    struct copy_session *keep = NULL;
    struct strvec roots = STRVEC_INIT;
    char *dst3 = xasprintf("%s/dst3", tmpdir);

    (void)state;
    if (!have_nix) {
        skip();
    }
    strvec_push(&roots, real_root);
    real_opts(&o, dst3);
    assert_int_equal(copy_closure(local, local, &roots, &o, NULL, &keep), 0);
    assert_non_null(keep);
    assert_int_equal(copy_session_close(keep), 0);
    check_closure_equal(dst3);
    free(dst3);
    strvec_clear(&roots);
    host_free(local);
}

/* ImportPaths (for servers older than minor 5), against a real server by
 * lowering the negotiated minor. */
static void
test_real_import_paths(void **state)
{
    struct host *local = host_local_new(NULL);
    struct strvec argv = STRVEC_INIT;
    struct host_cmd cmd;
    struct stream *s = NULL;
    struct serve_conn *c = NULL;
    struct serve_add a;
    struct strbuf nar = STRBUF_INIT;
    struct strbuf out = STRBUF_INIT;
    struct nar_result res;
    char *dst4 = xasprintf("%s/dst4", tmpdir);
    char *leaf = NULL;
    char *full;

    (void)state;
    if (!have_nix) {
        skip();
    }
    /* A path without references: the directory source. */
    assert_int_equal(nix_store(src_store, &out, "-qR", real_root, NULL), 0);
    leaf = strstr(out.buf, "-fixture");
    while (leaf > out.buf && leaf[-1] != '\n') {
        leaf--;
    }
    *strchr(leaf, '\n') = '\0';
    full = xasprintf("%s%s", src_store, leaf);
    assert_int_equal(nar_dump(full, mem_sink, &nar, &res), 0);

    strvec_pushl(&argv,
                 "nix-store",
                 "--serve",
                 "--write",
                 "--store",
                 dst4,
                 (const char *)NULL);
    memset(&cmd, 0, sizeof(cmd));
    cmd.argv = &argv;
    assert_int_equal(local->ops->open_stream(local, &cmd, &s), 0);
    assert_int_equal(serve_open(s, "local", &c), 0);
    serve_lower_minor(c, 4);
    memset(&a, 0, sizeof(a));
    a.path = leaf;
    memcpy(a.nar_hash, res.sha256, 32);
    a.nar_size = res.size;
    assert_int_equal(serve_add_begin(c, &a), 0);
    assert_int_equal(serve_write_raw(c, nar.buf, nar.len), 0);
    assert_int_equal(serve_add_end(c, &a), 0);
    assert_int_equal(serve_finish(c), 0);
    assert_int_equal(serve_acked(c), 1);
    serve_free(c);
    strbuf_reset(&nar);
    assert_int_equal(nix_store(dst4, &nar, "--verify-path", leaf, NULL), 0);

    free(full);
    free(dst4);
    strvec_clear(&argv);
    strbuf_release(&nar);
    strbuf_release(&out);
    host_free(local);
}

/* ---- setup ---- */

static int
rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    chmod(p, 0755); /* store files are read-only */
    return remove(p);
}

static int
chmod_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)flag;
    (void)ftw;
    if (!S_ISLNK(st->st_mode)) {
        chmod(p, S_ISDIR(st->st_mode) ? 0755 : 0644);
    }
    return 0;
}

static int
setup(void **state)
{
    struct strvec argv = STRVEC_INIT;
    struct strbuf out = STRBUF_INIT;

    (void)state;
    signal(SIGPIPE, SIG_IGN);
    logfp = open_memstream(&logbuf, &loglen);
    log_set_stream(logfp);
    if (mkdtemp(tmpdir) == NULL) {
        return -1;
    }
    make_fixtures();
    strvec_pushl(&argv, "nix-store", "--version", (const char *)NULL);
    have_nix = run_cmd(&argv, &out) == 0;
    strvec_clear(&argv);
    strbuf_release(&out);
    if (have_nix) {
        src_store = xasprintf("%s/src", tmpdir);
        dst_store = xasprintf("%s/dst", tmpdir);
        make_real_store();
    }
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    log_set_stream(NULL);
    fclose(logfp);
    free(logbuf);
    nftw(tmpdir, chmod_one, 16, FTW_PHYS);
    nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    for (int i = 0; i < NPATHS; i++) {
        strbuf_release(&fxs[i].nar);
    }
    free(src_store);
    free(dst_store);
    free(real_root);
    return 0;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cold_copy),
        cmocka_unit_test(test_cold_copy_feed),
        cmocka_unit_test(test_partial_copy_feed_dropped),
        cmocka_unit_test(test_partial_copy_substitute),
        cmocka_unit_test(test_nothing_to_copy),
        cmocka_unit_test(test_corrupt_hash),
        cmocka_unit_test(test_corrupt_size),
        cmocka_unit_test(test_remote_error_mid_copy),
        cmocka_unit_test(test_dst_not_serving),
        cmocka_unit_test(test_keep_session),
        cmocka_unit_test(test_release_session),
        cmocka_unit_test(test_source_query_fails),
        cmocka_unit_test(test_relay_from_remote_source),
        cmocka_unit_test(test_relay_corrupt_source),
        cmocka_unit_test(test_progress_format),
        cmocka_unit_test(test_progress_line),
        cmocka_unit_test(test_real_copy),
        cmocka_unit_test(test_real_corrupt_never_registered),
        cmocka_unit_test(test_real_keep_session),
        cmocka_unit_test(test_real_import_paths),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

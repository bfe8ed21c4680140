/* copy.c: the closure copy engine (see copy.h). */
#include "crebuild/copy.h"
#include "crebuild/log.h"
#include "crebuild/nar.h"
#include "crebuild/pathinfo.h"
#include "crebuild/proc.h"
#include "crebuild/progress.h"
#include "crebuild/serve.h"
#include "crebuild/util.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Bytes of each NAR held back until its hash is verified.  Without them
 * the destination never has a complete NAR, so it registers nothing. */
#define HOLD_BACK 8
/* DumpStorePath requests kept in flight on a remote source. */
#define DUMP_WINDOW 32
/* A local source lacking more paths than this gets their metadata from a
 * thread while the first ones are already uploaded (see struct feed); the
 * first batch is small so that the upload starts early. */
#define FEED_MIN   64
#define FEED_FIRST 32
#define FEED_BATCH 4096

struct copy_session {
    struct serve_conn *conn;
    char *name;
};

/* One copy in progress. */
struct feed;

struct run {
    const struct copy_opts *o;
    const char *src_name;
    const char *dst_name;
    struct pathinfo_list list;
    struct serve_conn *src; /* remote source, or NULL */
    struct serve_conn *dst;
    size_t *missing; /* indices into list, dependency order */
    size_t nmissing;
    size_t dumps_requested; /* remote source: requests queued */
    uint64_t bytes_sent;
    uint64_t bytes_total;
    struct progress *prog;
    struct host *src_host; /* local source: where metadata comes from */
    struct feed *feed;     /* metadata still coming, or NULL */
};

/* Metadata of the missing paths of a local source, produced by a thread
 * in batches while the upload consumes r->missing[0..ready).  Nix lists a
 * closure dependencies first, so batches in that order can go out as
 * they come; should a batch refer to a later path, the thread fetches
 * the rest, orders what is not yet published (pathinfo_order) and
 * publishes it at once.  The thread writes only unpublished entries of
 * r->list and the unpublished part of r->missing. */
struct feed {
    struct run *r;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    size_t ready;   /* r->missing[0..ready) have metadata, in order */
    uint64_t bytes; /* their narSize sum */
    int rc;         /* the thread's failure */
    int done;       /* the thread has finished */
    size_t *pos;    /* list index -> position in r->missing, or -1 */
    /* Set by feed_free: the thread's fill returns CR_EINTR at once (as
     * when crebuild is interrupted) and its running nix is killed. */
    atomic_int cancel;
    struct proc_watch watch;
};

/* Where the NAR of one path goes: to dst, minus the held-back tail. */
struct nar_out {
    struct run *r;
    uint64_t expect; /* narSize */
    uint64_t seen;   /* bytes received from the NAR source */
    unsigned char tail[HOLD_BACK];
    int too_big;
};

void
copy_opts_init(struct copy_opts *o)
{
    memset(o, 0, sizeof(*o));
}

static const char *
prog_name(const struct run *r)
{
    return r->o->nix_store ? r->o->nix_store : "nix-store";
}

static int
nar_out_sink(void *ctx, const void *buf, size_t n)
{
    struct nar_out *no = ctx;
    const unsigned char *p = buf;
    uint64_t limit = no->expect > HOLD_BACK ? no->expect - HOLD_BACK : 0;
    int rc = 0;

    if (n > no->expect - no->seen) {
        no->too_big = 1;
        return CR_ECORRUPT;
    }
    if (no->seen < limit) {
        size_t k = n;
        if (k > limit - no->seen) {
            k = (size_t)(limit - no->seen);
        }
        rc = serve_write_raw(no->r->dst, p, k);
        no->seen += k;
        p += k;
        n -= k;
        no->r->bytes_sent += k;
        progress_update(
            no->r->prog, serve_acked(no->r->dst), no->r->bytes_sent);
    }
    if (rc == 0 && n > 0) {
        memcpy(no->tail + (no->seen - limit), p, n);
        no->seen += n;
    }
    return rc;
}

/* ---- connections ---- */

static int
open_serve(struct host *h,
           const char *name,
           const struct run *r,
           int write,
           int lazy, /* serve_start: the greeting goes with the query */
           struct serve_conn **out)
{
    struct strvec argv = STRVEC_INIT;
    struct host_cmd cmd;
    struct stream *s = NULL;
    int rc;

    strvec_push(&argv, prog_name(r));
    strvec_push(&argv, "--serve");
    if (write) {
        strvec_push(&argv, "--write");
        if (r->o->dst_store != NULL) {
            strvec_pushl(&argv, "--store", r->o->dst_store, (const char *)NULL);
        }
    }
    memset(&cmd, 0, sizeof(cmd));
    cmd.argv = &argv;
    cmd.elevate = write && r->o->elevate;
    rc = h->ops->open_stream(h, &cmd, &s);
    if (rc != 0) {
        log_error("cannot start %s --serve on %s: %s",
                  prog_name(r),
                  name,
                  cr_strerror(rc));
    } else if (lazy) {
        *out = serve_start(s, name);
    } else {
        rc = serve_open(s, name, out);
    }
    strvec_clear(&argv);
    return rc;
}

static int local_metadata(struct run *r);

/* ---- what is missing ---- */

/* One QueryValidPaths for the whole closure (temp roots held on the
 * destination from now on). */
static int
query_valid(struct run *r, struct strvec *valid)
{
    struct strvec all = STRVEC_INIT;
    int rc;

    for (size_t i = 0; i < r->list.n; i++) {
        strvec_push(&all, r->list.v[i].path);
    }
    rc = serve_query_valid_paths(r->dst, &all, 1, r->o->substitute, valid);
    if (rc != 0 && serve_lost(r->dst)) {
        /* reported by the transport */
    } else if (rc != 0 && !serve_ready(r->dst)) {
        /* The greeting went out with the query (serve_start). */
        const char *e = serve_error(r->dst);

        if (strncmp(e, "protocol mismatch", 17) == 0) {
            log_error("%s", e);
        } else {
            log_error("cannot start %s --serve on %s: %s",
                      prog_name(r),
                      r->dst_name,
                      e);
        }
    } else if (rc != 0) {
        log_error("cannot query valid paths on %s: %s",
                  r->dst_name,
                  serve_error(r->dst));
    }
    strvec_clear(&all);
    return rc;
}

/* Which paths of r->list (in its current order) are not in valid. */
static void
find_missing(struct run *r, const struct strvec *valid, struct copy_stats *st)
{
    unsigned char *present = xcalloc(r->list.n ? r->list.n : 1, 1);
    size_t i;

    for (i = 0; i < valid->n; i++) {
        size_t k = pathinfo_list_find(&r->list, valid->v[i]);
        if (k != PATHINFO_NONE && !present[k]) {
            present[k] = 1;
            st->paths_present++;
        }
    }
    r->missing = xcalloc(r->list.n ? r->list.n : 1, sizeof(*r->missing));
    for (i = 0; i < r->list.n; i++) {
        if (!present[i]) {
            r->missing[r->nmissing++] = i;
            r->bytes_total += r->list.v[i].nar_size;
        }
    }
    free(present);
}

/* Local source: the closure first, the destination's answer next.  The
 * metadata is wanted only for the paths the destination lacks, but for a
 * closure too big to get it at once (see local_metadata) the feed starts
 * on all of them while the answer is awaited, as if none were there: a
 * cold copy then finds much of it ready instead of fetching it while it
 * uploads.  When some paths are there after all, copy_closure cancels
 * that fetch (its running nix is killed) and the lacking paths get their
 * metadata as before; a redeploy pays only the CPU spent meanwhile. */
static int
query_local_then_valid(struct run *r,
                       struct host *src,
                       struct host *dst,
                       const struct strvec *roots,
                       struct strvec *valid)
{
    size_t feed_min = r->o->feed_min ? r->o->feed_min : FEED_MIN;
    int rc;

    /* The remote command starts while the closure is listed here. */
    rc = open_serve(dst, r->dst_name, r, 1, 1, &r->dst);
    if (rc == 0 && r->o->closure != NULL) {
        for (size_t i = 0; i < r->o->closure->n; i++) {
            pathinfo_list_add(&r->list, r->o->closure->v[i]);
        }
    } else if (rc == 0) {
        rc = pathinfo_closure_local(src, roots, r->o->src_store, 0, &r->list);
    }
    r->src_host = src;
    if (rc == 0 && r->list.n > feed_min) {
        r->missing = xcalloc(r->list.n, sizeof(*r->missing));
        for (size_t i = 0; i < r->list.n; i++) {
            r->missing[i] = i;
        }
        r->nmissing = r->list.n;
        rc = local_metadata(r);
    }
    if (rc == 0) {
        rc = query_valid(r, valid);
    }
    (void)dst;
    return rc;
}

/* ---- metadata of a local source ---- */

static uint64_t
nar_bytes(const struct run *r, size_t from, size_t to)
{
    uint64_t b = 0;

    for (size_t i = from; i < to; i++) {
        b += r->list.v[r->missing[i]].nar_size;
    }
    return b;
}

/* Does every missing reference of missing[from..to) come before it? */
static int
batch_in_order(const struct feed *f, size_t from, size_t to)
{
    const struct run *r = f->r;

    for (size_t i = from; i < to; i++) {
        const struct pathinfo *p = &r->list.v[r->missing[i]];

        for (size_t k = 0; k < p->nrefs; k++) {
            size_t at = f->pos[p->refs[k]];

            if (at != (size_t)-1 && at > i) {
                return 0;
            }
        }
    }
    return 1;
}

static void *
feed_main(void *arg)
{
    struct feed *f = arg;
    struct run *r = f->r;
    size_t pos = 0;
    size_t batch = r->o->feed_batch ? r->o->feed_batch : FEED_FIRST;
    int want_json = 1;
    int rc = 0;

    proc_watch_thread(&f->watch);
    pathinfo_cancel_on(&f->cancel);
    while (rc == 0 && pos < r->nmissing) {
        size_t k = r->nmissing - pos < batch ? r->nmissing - pos : batch;

        rc = pathinfo_fill_some(r->src_host,
                                r->o->src_store,
                                &r->list,
                                r->missing + pos,
                                k,
                                &want_json);
        if (rc == 0 && !batch_in_order(f, pos, pos + k)) {
            log_debug("the closure is not listed dependencies first: "
                      "ordering the rest before it is sent");
            rc = pathinfo_fill_some(r->src_host,
                                    r->o->src_store,
                                    &r->list,
                                    r->missing + pos + k,
                                    r->nmissing - pos - k,
                                    &want_json);
            if (rc == 0) {
                rc = pathinfo_order(
                    &r->list, r->missing + pos, r->nmissing - pos);
            }
            k = r->nmissing - pos;
        }
        if (rc != 0) {
            break;
        }
        pthread_mutex_lock(&f->mu);
        f->bytes += nar_bytes(r, pos, pos + k);
        f->ready = pos + k;
        pthread_cond_signal(&f->cv);
        pthread_mutex_unlock(&f->mu);
        pos += k;
        batch = r->o->feed_batch ? r->o->feed_batch : FEED_BATCH;
    }
    pathinfo_cancel_on(NULL);
    proc_watch_thread(NULL);
    pthread_mutex_lock(&f->mu);
    f->rc = rc;
    f->done = 1;
    pthread_cond_signal(&f->cv);
    pthread_mutex_unlock(&f->mu);
    return NULL;
}

static void
feed_free(struct run *r)
{
    struct feed *f = r->feed;

    if (f == NULL) {
        return;
    }
    /* (a thread that is done runs nothing: nothing to kill) */
    atomic_store(&f->cancel, 1);
    proc_kill_watched(&f->watch, SIGKILL);
    pthread_join(f->thread, NULL);
    pthread_mutex_destroy(&f->mu);
    pthread_cond_destroy(&f->cv);
    proc_watch_destroy(&f->watch);
    free(f->pos);
    free(f);
    r->feed = NULL;
}

/* Wait until missing[i] has its metadata, keeping the destination's acks
 * drained meanwhile.  0 or the thread's (logged) failure. */
static int
feed_wait(struct run *r, size_t i)
{
    struct feed *f = r->feed;
    int rc = 0;

    pthread_mutex_lock(&f->mu);
    while (f->ready <= i && !f->done) {
        struct timespec ts;

        pthread_mutex_unlock(&f->mu);
        rc = serve_poll(r->dst);
        if (rc != 0) {
            return rc;
        }
        if (cr_interrupted) {
            return CR_EINTR;
        }
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 20 * 1000 * 1000;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&f->mu);
        if (f->ready <= i && !f->done) {
            (void)pthread_cond_timedwait(&f->cv, &f->mu, &ts);
        }
    }
    if (f->ready <= i) {
        rc = f->rc != 0 ? f->rc : CR_ENIX;
    }
    r->bytes_total = f->bytes;
    pthread_mutex_unlock(&f->mu);
    progress_set_total(r->prog, r->nmissing, r->bytes_total);
    return rc;
}

/* Metadata for the missing paths of a local source: at once for a few,
 * else from a feed thread that the upload follows. */
static int
local_metadata(struct run *r)
{
    struct feed *f;
    int want_json = 1;
    int rc;

    if (r->nmissing <= (r->o->feed_min ? r->o->feed_min : FEED_MIN)) {
        rc = pathinfo_fill_some(r->src_host,
                                r->o->src_store,
                                &r->list,
                                r->missing,
                                r->nmissing,
                                &want_json);
        if (rc == 0) {
            rc = pathinfo_order(&r->list, r->missing, r->nmissing);
        }
        r->bytes_total = rc == 0 ? nar_bytes(r, 0, r->nmissing) : 0;
        return rc;
    }
    f = xcalloc(1, sizeof(*f));
    f->r = r;
    f->pos = xcalloc(r->list.n, sizeof(*f->pos));
    for (size_t i = 0; i < r->list.n; i++) {
        f->pos[i] = (size_t)-1;
    }
    for (size_t i = 0; i < r->nmissing; i++) {
        f->pos[r->missing[i]] = i;
    }
    pthread_mutex_init(&f->mu, NULL);
    pthread_cond_init(&f->cv, NULL);
    atomic_init(&f->cancel, 0);
    proc_watch_init(&f->watch);
    if (pthread_create(&f->thread, NULL, feed_main, f) != 0) {
        pthread_mutex_destroy(&f->mu);
        pthread_cond_destroy(&f->cv);
        proc_watch_destroy(&f->watch);
        free(f->pos);
        free(f);
        log_error("cannot start a thread: %s", strerror(errno));
        return CR_ESYS;
    }
    r->feed = f;
    return 0;
}

/* ---- one path ---- */

static void
log_corrupt(const struct run *r,
            const struct pathinfo *p,
            const struct nar_out *no,
            const struct nar_result *res)
{
    char want[HASH_SHA256_NIX32_LEN + 1];
    char got[HASH_SHA256_NIX32_LEN + 1];

    hash_to_nix32(p->nar_hash, HASH_SHA256_LEN, want);
    if (no->too_big) {
        log_error("'%s' on %s is corrupt: its NAR is larger than its "
                  "recorded size %llu; nothing of it was copied "
                  "(try nix-store --verify --check-contents --repair)",
                  p->path,
                  r->src_name,
                  (unsigned long long)p->nar_size);
        return;
    }
    hash_to_nix32(res->sha256, HASH_SHA256_LEN, got);
    log_error("'%s' on %s is corrupt: recorded sha256:%s (%llu bytes), "
              "got sha256:%s (%llu bytes); nothing of it was copied "
              "(try nix-store --verify --check-contents --repair)",
              p->path,
              r->src_name,
              want,
              (unsigned long long)p->nar_size,
              got,
              (unsigned long long)res->size);
}

/* Produce the NAR of path index i into no. */
static int
produce_nar(struct run *r, size_t i, struct nar_out *no, struct nar_result *res)
{
    const struct pathinfo *p = &r->list.v[r->missing[i]];
    char *full;
    int rc;

    if (r->src == NULL) {
        full = xasprintf("%s%s", r->o->src_root ? r->o->src_root : "", p->path);
        rc = nar_dump(full, nar_out_sink, no, res);
        free(full);
        return rc;
    }
    /* Keep a window of DumpStorePath requests queued on the source. */
    while (r->dumps_requested < r->nmissing &&
           r->dumps_requested < i + DUMP_WINDOW) {
        const struct pathinfo *q = &r->list.v[r->missing[r->dumps_requested++]];
        rc = serve_dump_request(r->src, q->path);
        if (rc != 0) {
            return rc;
        }
    }
    return serve_dump_read(r->src, nar_out_sink, no, res);
}

static int
copy_one(struct run *r, size_t i)
{
    const struct pathinfo *p = &r->list.v[r->missing[i]];
    const char **refs = xcalloc(p->nrefs + 1, sizeof(*refs));
    struct serve_add a;
    struct nar_out no;
    struct nar_result res;
    size_t k;
    int rc;

    memset(&a, 0, sizeof(a));
    memset(&no, 0, sizeof(no));
    memset(&res, 0, sizeof(res));
    for (k = 0; k < p->nrefs; k++) {
        refs[k] = r->list.v[p->refs[k]].path;
    }
    a.path = p->path;
    a.deriver = p->deriver;
    memcpy(a.nar_hash, p->nar_hash, HASH_SHA256_LEN);
    a.nar_size = p->nar_size;
    a.refs = refs;
    a.nrefs = p->nrefs;
    a.sigs = (const char *const *)p->sigs.v;
    a.nsigs = p->sigs.n;
    a.ca = p->ca;
    a.reg_time = p->reg_time;
    no.r = r;
    no.expect = p->nar_size;

    rc = serve_add_begin(r->dst, &a);
    if (rc == 0) {
        rc = produce_nar(r, i, &no, &res);
    }
    if (rc == 0 && (no.seen != p->nar_size ||
                    memcmp(res.sha256, p->nar_hash, HASH_SHA256_LEN) != 0)) {
        rc = CR_ECORRUPT;
    }
    if (rc == CR_ECORRUPT && (no.too_big || res.size > 0)) {
        log_corrupt(r, p, &no, &res);
    }
    if (rc == 0) {
        /* Verified: release the tail, completing the NAR. */
        uint64_t held = p->nar_size < HOLD_BACK ? p->nar_size : HOLD_BACK;
        rc = serve_write_raw(r->dst, no.tail, (size_t)held);
        r->bytes_sent += held;
    }
    if (rc == 0) {
        rc = serve_add_end(r->dst, &a);
    }
    free(refs);
    return rc;
}

/* Log the failure of the copy, once, with the best context available. */
static void
log_failure(const struct run *r, int rc)
{
    size_t acked = serve_acked(r->dst);
    const char *path =
        acked < r->nmissing ? r->list.v[r->missing[acked]].path : "closure";

    if (rc == CR_ECORRUPT || serve_lost(r->dst) ||
        (r->src != NULL && serve_lost(r->src))) {
        return; /* logged where it was found (a lost connection: by ssh) */
    }
    if (serve_error(r->dst)[0] != '\0' && rc != CR_EINTR) {
        log_error("cannot copy '%s' to %s: %s",
                  path,
                  r->dst_name,
                  serve_error(r->dst));
    } else if (r->src != NULL && serve_error(r->src)[0] != '\0' &&
               rc != CR_EINTR) {
        log_error("cannot read '%s' from %s: %s",
                  path,
                  r->src_name,
                  serve_error(r->src));
    } else if (rc == CR_EINTR) {
        log_error("copy to %s interrupted", r->dst_name);
    }
    /* Otherwise the cause was logged where it happened (nar_dump,
     * corruption). */
}

static int
upload(struct run *r)
{
    size_t i;
    int rc = 0;

    for (i = 0; i < r->nmissing && rc == 0; i++) {
        if (r->feed != NULL) {
            rc = feed_wait(r, i);
        }
        if (rc == 0) {
            rc = cr_interrupted ? CR_EINTR : copy_one(r, i);
        }
        progress_update(r->prog, serve_acked(r->dst), r->bytes_sent);
    }
    feed_free(r);
    if (rc == 0) {
        rc = serve_wait(r->dst);
        progress_update(r->prog, serve_acked(r->dst), r->bytes_sent);
    }
    if (rc != 0) {
        /* Complete requests still reach the remote and are counted;
         * the incomplete one is cut off, so it is never registered. */
        serve_abort(r->dst);
        if (r->src != NULL) {
            serve_abort(r->src);
        }
        log_failure(r, rc);
    }
    return rc;
}

static int
query_source(struct run *r, struct host *src, const struct strvec *roots)
{
    int rc;

    rc = open_serve(src, r->src_name, r, 0, 0, &r->src);
    if (rc == 0) {
        rc = pathinfo_query_serve(r->src, roots, &r->list);
    }
    return rc;
}

/* Upload what is missing, with the progress line. */
static int
transfer(struct run *r, struct copy_stats *st)
{
    int rc;

    if (r->feed != NULL) {
        log_debug("%zu of %zu paths missing on %s (their metadata follows "
                  "as they are sent)",
                  r->nmissing,
                  r->list.n,
                  r->dst_name);
    } else {
        log_debug("%zu of %zu paths missing on %s (%.1f MiB)",
                  r->nmissing,
                  r->list.n,
                  r->dst_name,
                  (double)r->bytes_total / (1024.0 * 1024.0));
    }
    r->prog = progress_new(
        stderr, "copying", progress_wanted(r->o->quiet) && r->nmissing > 0);
    progress_set_total(r->prog, r->nmissing, r->bytes_total);
    rc = upload(r);
    st->paths_copied = serve_acked(r->dst);
    st->bytes = r->bytes_sent;
    progress_free(r->prog);
    r->prog = NULL;
    return rc;
}

/* End the connections (or hand the destination over in *keep). */
static int
finish(struct run *r, struct copy_session **keep)
{
    int rc = 0;

    if (keep == NULL) {
        rc = serve_finish(r->dst);
        if (rc != 0) {
            if (!serve_lost(r->dst)) {
                log_error("nix-store --serve on %s failed: %s",
                          r->dst_name,
                          serve_error(r->dst));
            }
            return rc;
        }
    } else {
        struct copy_session *s = xcalloc(1, sizeof(*s));
        s->conn = r->dst;
        s->name = xstrdup(r->dst_name);
        r->dst = NULL;
        *keep = s;
    }
    if (r->src != NULL) {
        (void)serve_finish(r->src);
    }
    return rc;
}

int
copy_closure(struct host *src,
             struct host *dst,
             const struct strvec *roots,
             const struct copy_opts *opts,
             struct copy_stats *stats,
             struct copy_session **keep)
{
    struct copy_stats st;
    struct run r;
    double t0 = progress_now();
    int rc;

    if (keep != NULL) {
        *keep = NULL;
    }
    memset(&st, 0, sizeof(st));
    memset(&r, 0, sizeof(r));
    r.o = opts;
    r.src_name = opts->src_name ? opts->src_name : src->name;
    r.dst_name = opts->dst_name ? opts->dst_name : dst->name;
    pathinfo_list_init(&r.list);

    struct strvec valid = STRVEC_INIT;
    if (src->is_local) {
        rc = query_local_then_valid(&r, src, dst, roots, &valid);
    } else {
        rc = query_source(&r, src, roots);
        if (rc == 0) {
            rc = open_serve(dst, r.dst_name, &r, 1, 1, &r.dst);
        }
        if (rc == 0) {
            rc = query_valid(&r, &valid);
        }
    }
    int fetched_ahead = 0;
    if (rc == 0) {
        st.paths_total = r.list.n;
        if (r.feed != NULL && valid.n == 0) {
            fetched_ahead = 1; /* nothing there: all go, in list order */
        } else {
            if (r.feed != NULL) {
                log_debug("%zu of %zu paths already on %s: the metadata "
                          "fetched ahead for all is dropped",
                          valid.n,
                          r.list.n,
                          r.dst_name);
            }
            feed_free(&r);
            free(r.missing);
            r.missing = NULL;
            r.nmissing = 0;
            find_missing(&r, &valid, &st);
        }
    }
    strvec_clear(&valid);
    if (rc == 0 && r.src_host != NULL && !fetched_ahead) {
        r.bytes_total = 0;
        rc = local_metadata(&r);
    }
    if (rc == 0) {
        rc = transfer(&r, &st);
    }
    if (rc == 0) {
        rc = finish(&r, keep);
    }
    st.seconds = progress_now() - t0;
    if (rc == 0) {
        log_info("copied %zu paths, %.1f MiB in %.1f s; %zu already present",
                 st.paths_copied,
                 (double)st.bytes / (1024.0 * 1024.0),
                 st.seconds,
                 st.paths_present);
    }
    if (stats != NULL) {
        *stats = st;
    }
    feed_free(&r);
    serve_free(r.dst);
    serve_free(r.src);
    free(r.missing);
    pathinfo_list_release(&r.list);
    return rc;
}

void
copy_session_release(struct copy_session *s)
{
    if (s == NULL) {
        return;
    }
    if (serve_release(s->conn) != 0) {
        (void)copy_session_close(s);
        return;
    }
    free(s->name);
    free(s);
}

int
copy_session_close(struct copy_session *s)
{
    int rc;

    if (s == NULL) {
        return 0;
    }
    rc = serve_finish(s->conn);
    /* A lost connection was reported by the transport already. */
    if (rc != 0 && !serve_lost(s->conn) && rc != CR_ESSH) {
        log_error("nix-store --serve on %s failed: %s",
                  s->name,
                  serve_error(s->conn));
    }
    serve_free(s->conn);
    free(s->name);
    free(s);
    return rc;
}

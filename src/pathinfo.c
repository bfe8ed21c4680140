/* pathinfo.c: closure metadata: queries, parsers, topological sort. */
#include "crebuild/pathinfo.h"
#include "crebuild/log.h"
#include "crebuild/strbuf.h"
#include "crebuild/util.h"

#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

/* Bytes of path arguments per command run: below the 128 KiB a single
 * argument may have, since a remote command line is one argument; a local
 * command takes separate arguments up to ARG_MAX (2 MiB with the
 * environment); 256 KiB (about 4000 paths) keeps the buffered answers,
 * and so the peak RSS, small. */
#define BATCH_BYTES       (96 * 1024)
#define BATCH_BYTES_LOCAL (256 * 1024)

/* ---- the list and its index ---- */

void
pathinfo_list_init(struct pathinfo_list *l)
{
    memset(l, 0, sizeof(*l));
}

static void
entry_release(struct pathinfo *p)
{
    free(p->path);
    free(p->deriver);
    free(p->refs);
    strvec_clear(&p->sigs);
    free(p->ca);
}

void
pathinfo_list_release(struct pathinfo_list *l)
{
    size_t i;

    for (i = 0; i < l->n; i++) {
        entry_release(&l->v[i]);
    }
    free(l->v);
    free(l->tab);
    pathinfo_list_init(l);
}

static size_t
hash_str(const char *s)
{
    size_t h = 1469598103934665603ULL;

    while (*s) {
        h = (h ^ (unsigned char)*s++) * 1099511628211ULL;
    }
    return h;
}

static void
tab_insert(struct pathinfo_list *l, size_t idx)
{
    size_t mask = l->tabsize - 1;
    size_t h = hash_str(l->v[idx].path) & mask;

    while (l->tab[h] != 0) {
        h = (h + 1) & mask;
    }
    l->tab[h] = idx + 1;
}

static void
tab_rebuild(struct pathinfo_list *l, size_t size)
{
    size_t i;

    free(l->tab);
    l->tabsize = size;
    l->tab = xcalloc(size, sizeof(*l->tab));
    for (i = 0; i < l->n; i++) {
        tab_insert(l, i);
    }
}

size_t
pathinfo_list_find(const struct pathinfo_list *l, const char *path)
{
    size_t mask;
    size_t h;

    if (l->tabsize == 0) {
        return PATHINFO_NONE;
    }
    mask = l->tabsize - 1;
    for (h = hash_str(path) & mask; l->tab[h] != 0; h = (h + 1) & mask) {
        if (strcmp(l->v[l->tab[h] - 1].path, path) == 0) {
            return l->tab[h] - 1;
        }
    }
    return PATHINFO_NONE;
}

size_t
pathinfo_list_add(struct pathinfo_list *l, const char *path)
{
    size_t i = pathinfo_list_find(l, path);

    if (i != PATHINFO_NONE) {
        return i;
    }
    if (l->n == l->alloc) {
        l->alloc = l->alloc ? 2 * l->alloc : 64;
        l->v = xreallocarray(l->v, l->alloc, sizeof(*l->v));
    }
    i = l->n++;
    memset(&l->v[i], 0, sizeof(l->v[i]));
    l->v[i].path = xstrdup(path);
    strvec_init(&l->v[i].sigs);
    if (2 * l->n > l->tabsize) {
        tab_rebuild(l, l->tabsize ? 2 * l->tabsize : 128);
    } else {
        tab_insert(l, i);
    }
    return i;
}

uint64_t
pathinfo_list_bytes(const struct pathinfo_list *l)
{
    uint64_t sum = 0;
    size_t i;

    for (i = 0; i < l->n; i++) {
        sum += l->v[i].nar_size;
    }
    return sum;
}

/* ---- nix-store --dump-db ---- */

struct lines {
    const char *p;
    const char *end;
    struct strbuf line;
};

/* Next line (without the newline) into ls->line; 0, or -1 at the end. */
static int
next_line(struct lines *ls)
{
    const char *nl;

    if (ls->p >= ls->end) {
        return -1;
    }
    nl = memchr(ls->p, '\n', (size_t)(ls->end - ls->p));
    if (nl == NULL) {
        nl = ls->end;
    }
    strbuf_reset(&ls->line);
    strbuf_add(&ls->line, ls->p, (size_t)(nl - ls->p));
    ls->p = nl < ls->end ? nl + 1 : nl;
    return 0;
}

static int
dumpdb_record(struct pathinfo_list *l, struct lines *ls, const char *path)
{
    unsigned long long size = 0;
    unsigned long long nrefs = 0;
    unsigned long long k;
    size_t i = pathinfo_list_find(l, path);
    struct pathinfo *p;

    if (i == PATHINFO_NONE) {
        log_error("nix-store --dump-db: unexpected path '%s'", path);
        return CR_ENIX;
    }
    p = &l->v[i];
    if (next_line(ls) != 0 ||
        hash_parse_sha256(ls->line.buf, p->nar_hash) != 0) {
        goto bad;
    }
    if (next_line(ls) != 0 || parse_uint(ls->line.buf, UINT64_MAX, &size)) {
        goto bad;
    }
    p->nar_size = size;
    if (next_line(ls) != 0) {
        goto bad;
    }
    free(p->deriver);
    p->deriver = ls->line.len > 0 ? xstrdup(ls->line.buf) : NULL;
    if (next_line(ls) != 0 || parse_uint(ls->line.buf, l->n, &nrefs)) {
        goto bad;
    }
    free(p->refs);
    p->refs = xcalloc((size_t)nrefs, sizeof(*p->refs));
    p->nrefs = 0;
    for (k = 0; k < nrefs; k++) {
        size_t r;
        if (next_line(ls) != 0) {
            goto bad;
        }
        r = pathinfo_list_find(l, ls->line.buf);
        if (r == PATHINFO_NONE) {
            log_error("reference '%s' of '%s' is not in its closure",
                      ls->line.buf,
                      path);
            return CR_ENIX;
        }
        p->refs[p->nrefs++] = (uint32_t)r;
    }
    p->have_meta = 1;
    return 0;
bad:
    log_error("cannot parse nix-store --dump-db output for '%s'", path);
    return CR_ENIX;
}

int
pathinfo_parse_dump_db(struct pathinfo_list *l, const char *text, size_t len)
{
    struct lines ls = {text, text + len, STRBUF_INIT};
    struct strbuf path = STRBUF_INIT;
    int rc = 0;

    while (rc == 0 && next_line(&ls) == 0) {
        if (ls.line.len == 0 && ls.p >= ls.end) {
            break;
        }
        strbuf_reset(&path);
        strbuf_add(&path, ls.line.buf, ls.line.len);
        rc = dumpdb_record(l, &ls, path.buf);
    }
    strbuf_release(&ls.line);
    strbuf_release(&path);
    return rc;
}

/* ---- nix path-info --json ---- */

static const char *
json_str(const cJSON *obj, const char *key)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);

    return cJSON_IsString(it) ? it->valuestring : NULL;
}

/* The hash algorithms Nix accepts in a content address, with their
 * digest sizes (libutil/hash.cc); blake3 needs Nix's experimental
 * blake-hashing feature, but renders the same way. */
static const struct {
    const char *name;
    size_t len;
} ca_algos[] = {
    {"md5", 16},
    {"sha1", 20},
    {"sha256", 32},
    {"sha512", 64},
    {"blake3", 32},
};

#define CA_HASH_MAX 64

/* The algorithm named by s[0..n), or -1. */
static int
ca_algo(const char *s, size_t n)
{
    for (size_t i = 0; i < ARRAY_SIZE(ca_algos); i++) {
        if (strlen(ca_algos[i].name) == n &&
            memcmp(ca_algos[i].name, s, n) == 0) {
            return (int)i;
        }
    }
    return -1;
}

/* Decode the len-byte digest s in whichever encoding its length says
 * (base16, nix32 or base64, as Nix's Hash parser tells them apart). */
static int
ca_digest(const char *s, size_t len, unsigned char *out)
{
    size_t n = strlen(s);

    if (n == 2 * len) {
        return hash_from_hex(s, n, out, len);
    }
    if (n == hash_nix32_len(len)) {
        return hash_from_nix32(s, n, out, len);
    }
    if (n == 4 * ((len + 2) / 3)) {
        return hash_from_base64(s, n, out, len);
    }
    return CR_EUSAGE;
}

/* The legacy prefix of a structured content-address method, as Nix's
 * ContentAddress::render writes it ("fixed:" for the file ingestion
 * methods, then "r:" for a NAR, "git:" for git), or NULL. */
static const char *
ca_prefix(const char *method)
{
    static const char *const m[][2] = {
        {"text", "text:"},
        {"flat", "fixed:"},
        {"nar", "fixed:r:"},
        {"git", "fixed:git:"},
    };

    for (size_t i = 0; i < ARRAY_SIZE(m); i++) {
        if (strcmp(method, m[i][0]) == 0) {
            return m[i][1];
        }
    }
    return NULL;
}

/* A v2+ structured content address {"method": M, "hash": H} in the
 * legacy string form "<prefix><algo>:<nix32>".  H is an SRI string
 * "<algo>-<base64>" (what Nix 2.33+ prints; "<algo>:<digest>" is taken
 * too) or, from development versions, an object {"algorithm": A,
 * "hash": digest}.  NULL when it cannot be rendered, with the reason in
 * *why. */
static char *
render_ca(const cJSON *ca, struct strbuf *why)
{
    unsigned char h[CA_HASH_MAX];
    char n32[CA_HASH_MAX * 8 / 5 + 2];
    const char *method = json_str(ca, "method");
    const cJSON *hash = cJSON_GetObjectItemCaseSensitive(ca, "hash");
    const char *prefix = method != NULL ? ca_prefix(method) : NULL;
    const char *alg = NULL;
    const char *hs = NULL;
    const char *digest = NULL;
    size_t n = 0;
    int algo;

    if (method == NULL) {
        strbuf_addstr(why, "no method");
        return NULL;
    }
    if (prefix == NULL) {
        strbuf_addf(why, "unknown method '%.40s'", method);
        return NULL;
    }
    if (cJSON_IsString(hash)) {
        /* "<algo>-<base64>" or "<algo>:<digest>" */
        hs = hash->valuestring;
        alg = hs;
        n = strcspn(hs, "-:");
        digest = hs[n] != '\0' ? hs + n + 1 : NULL;
    } else if (cJSON_IsObject(hash)) {
        hs = json_str(hash, "hash");
        alg = json_str(hash, "algorithm");
        n = alg != NULL ? strlen(alg) : 0;
        digest = hs;
        /* (an SRI or prefixed digest names its algorithm again) */
        if (hs != NULL && alg != NULL && strncmp(hs, alg, n) == 0 &&
            (hs[n] == '-' || hs[n] == ':')) {
            digest = hs + n + 1;
        }
    }
    if (hs == NULL || alg == NULL) {
        strbuf_addstr(why, hs == NULL ? "no hash" : "no hash algorithm");
        return NULL;
    }
    algo = ca_algo(alg, n);
    if (algo < 0 && digest != NULL) {
        strbuf_addf(
            why, "unknown hash algorithm '%.*s'", (int)(n < 40 ? n : 40), alg);
        return NULL;
    }
    if (algo < 0 || digest == NULL ||
        ca_digest(digest, ca_algos[algo].len, h) != 0) {
        strbuf_addf(why, "malformed hash '%.120s'", hs);
        return NULL;
    }
    hash_to_nix32(h, ca_algos[algo].len, n32);
    return xasprintf("%s%s:%s", prefix, ca_algos[algo].name, n32);
}

/* A structured content address that cannot be rendered would be lost,
 * and the path registered as input-addressed on the destination: say so
 * (a warning once per run, the others at debug level). */
static void
ca_unusable(const char *path, const char *why)
{
    static atomic_int warned;

    if (atomic_exchange(&warned, 1) == 0) {
        log_warn("cannot read the content address of '%s' in the output of "
                 "nix path-info (%s): copying it without one (further such "
                 "paths are logged at debug level)",
                 path,
                 why);
    } else {
        log_debug("cannot read the content address of '%s' (%s)", path, why);
    }
}

/* A store path from JSON: full, or a base name in path's store. */
static char *
json_store_path(const char *path, const char *v)
{
    const char *slash = strrchr(path, '/');

    if (v[0] == '/') {
        return xstrdup(v);
    }
    if (slash == NULL || v[0] == '\0' || strchr(v, '/') != NULL) {
        return NULL;
    }
    return xasprintf("%.*s/%s", (int)(slash - path), path, v);
}

/* narHash, narSize, references and deriver, when all of them are there
 * in a form known here: then the entry needs no nix-store --dump-db.  A
 * field missing or not understood (or a reference outside l) leaves the
 * entry as it was. */
static void
json_meta(struct pathinfo_list *l, size_t i, const cJSON *e)
{
    const cJSON *hash = cJSON_GetObjectItemCaseSensitive(e, "narHash");
    const cJSON *size = cJSON_GetObjectItemCaseSensitive(e, "narSize");
    const cJSON *refs = cJSON_GetObjectItemCaseSensitive(e, "references");
    const cJSON *drv = cJSON_GetObjectItemCaseSensitive(e, "deriver");
    const char *hs = cJSON_IsString(hash) ? hash->valuestring : NULL;
    unsigned char h[HASH_SHA256_LEN];
    uint32_t *idx = NULL;
    char *deriver = NULL;
    size_t n = 0;
    const cJSON *r;

    if (hs == NULL && cJSON_IsObject(hash)) {
        const char *alg = json_str(hash, "algorithm");
        hs = alg != NULL && strcmp(alg, "sha256") == 0 ? json_str(hash, "hash")
                                                       : NULL;
    }
    if (hs == NULL || hash_parse_sha256(hs, h) != 0 || !cJSON_IsNumber(size) ||
        size->valuedouble < 0 || size->valuedouble >= 18446744073709551616.0 ||
        !cJSON_IsArray(refs)) {
        return;
    }
    if (cJSON_IsString(drv) && drv->valuestring[0] != '\0') {
        deriver = json_store_path(l->v[i].path, drv->valuestring);
        if (deriver == NULL) {
            return;
        }
    } else if (drv != NULL && !cJSON_IsNull(drv) && !cJSON_IsString(drv)) {
        return;
    }
    idx = xcalloc((size_t)cJSON_GetArraySize(refs) + 1, sizeof(*idx));
    cJSON_ArrayForEach(r, refs)
    {
        char *full = cJSON_IsString(r)
                         ? json_store_path(l->v[i].path, r->valuestring)
                         : NULL;
        size_t k = full != NULL ? pathinfo_list_find(l, full) : PATHINFO_NONE;

        free(full);
        if (k == PATHINFO_NONE) {
            free(idx);
            free(deriver);
            return;
        }
        idx[n++] = (uint32_t)k;
    }
    struct pathinfo *p = &l->v[i];
    memcpy(p->nar_hash, h, sizeof(h));
    p->nar_size = (uint64_t)size->valuedouble;
    free(p->refs);
    p->refs = idx;
    p->nrefs = n;
    free(p->deriver);
    p->deriver = deriver;
    p->have_meta = 1;
}

static void
json_entry(struct pathinfo_list *l, const char *path, const cJSON *e)
{
    const cJSON *it;
    struct pathinfo *p;
    size_t i;

    if (path == NULL || !cJSON_IsObject(e)) {
        return;
    }
    it = cJSON_GetObjectItemCaseSensitive(e, "valid");
    if (cJSON_IsFalse(it)) {
        return;
    }
    i = pathinfo_list_find(l, path);
    if (i == PATHINFO_NONE) {
        return;
    }
    if (!l->v[i].have_meta) {
        json_meta(l, i, e);
    }
    p = &l->v[i];
    strvec_clear(&p->sigs);
    it = cJSON_GetObjectItemCaseSensitive(e, "signatures");
    if (cJSON_IsArray(it)) {
        const cJSON *s;
        cJSON_ArrayForEach(s, it)
        {
            const char *key = json_str(s, "keyName");
            const char *sig = json_str(s, "sig");
            if (cJSON_IsString(s)) {
                strvec_push(&p->sigs, s->valuestring);
            } else if (key != NULL && sig != NULL) {
                strvec_pushf(&p->sigs, "%s:%s", key, sig);
            }
        }
    }
    free(p->ca);
    p->ca = NULL;
    it = cJSON_GetObjectItemCaseSensitive(e, "ca");
    if (cJSON_IsString(it) && it->valuestring[0] != '\0') {
        p->ca = xstrdup(it->valuestring);
    } else if (cJSON_IsObject(it)) {
        struct strbuf why = STRBUF_INIT;
        p->ca = render_ca(it, &why);
        if (p->ca == NULL) {
            ca_unusable(p->path, why.buf);
        }
        strbuf_release(&why);
    }
    it = cJSON_GetObjectItemCaseSensitive(e, "registrationTime");
    /* (below 2^64: converting a larger double is undefined) */
    if (cJSON_IsNumber(it) && it->valuedouble > 0 &&
        it->valuedouble < 18446744073709551616.0) {
        p->reg_time = (uint64_t)it->valuedouble;
    }
}

int
pathinfo_parse_json(struct pathinfo_list *l, const char *text, size_t len)
{
    cJSON *root = cJSON_ParseWithLength(text, len);
    const cJSON *e;
    const cJSON *info;
    const char *store_dir;

    if (root == NULL) {
        log_error("cannot parse the JSON output of nix path-info");
        return CR_ENIX;
    }
    info = cJSON_GetObjectItemCaseSensitive(root, "info");
    store_dir = json_str(root, "storeDir");
    if (cJSON_IsArray(root)) {
        /* Nix <= 2.18 and Lix: [{"path": ..., ...}, ...] */
        cJSON_ArrayForEach(e, root)
        {
            json_entry(l, json_str(e, "path"), e);
        }
    } else if (cJSON_IsObject(info) && store_dir != NULL) {
        /* 2.33+ v2/v3: {"version", "storeDir", "info": {basename: ...}} */
        struct strbuf full = STRBUF_INIT;
        cJSON_ArrayForEach(e, info)
        {
            strbuf_reset(&full);
            strbuf_addf(&full, "%s/%s", store_dir, e->string);
            json_entry(l, full.buf, e);
        }
        strbuf_release(&full);
    } else if (cJSON_IsObject(root)) {
        /* 2.19+: {"/nix/store/...": {...} or null, ...} */
        cJSON_ArrayForEach(e, root)
        {
            if (e->string != NULL && e->string[0] == '/') {
                json_entry(l, e->string, e);
            }
        }
    } else {
        cJSON_Delete(root);
        log_error("unexpected JSON from nix path-info");
        return CR_ENIX;
    }
    cJSON_Delete(root);
    return 0;
}

/* ---- topological sort ---- */

enum { WHITE = 0, GREY = 1, BLACK = 2 };

struct frame {
    size_t node;
    size_t next; /* next reference to look at */
};

/* Depth-first from start, appending finished nodes to order; only over
 * the nodes marked in `in` (NULL: all). */
static int
visit(const struct pathinfo_list *l,
      const unsigned char *in,
      size_t start,
      unsigned char *state,
      struct frame *stack,
      size_t *order,
      size_t *norder)
{
    size_t sp = 0;

    stack[sp].node = start;
    stack[sp].next = 0;
    sp++;
    state[start] = GREY;
    while (sp > 0) {
        struct frame *f = &stack[sp - 1];
        const struct pathinfo *p = &l->v[f->node];

        if (f->next < p->nrefs) {
            size_t r = p->refs[f->next++];
            if (r == f->node || (in != NULL && !in[r]) || state[r] == BLACK) {
                continue;
            }
            if (state[r] == GREY) {
                log_error("reference cycle between '%s' and '%s'",
                          p->path,
                          l->v[r].path);
                return CR_ENIX;
            }
            state[r] = GREY;
            stack[sp].node = r;
            stack[sp].next = 0;
            sp++;
            continue;
        }
        state[f->node] = BLACK;
        order[(*norder)++] = f->node;
        sp--;
    }
    return 0;
}

int
pathinfo_toposort(struct pathinfo_list *l)
{
    unsigned char *state = xcalloc(l->n, 1);
    struct frame *stack = xcalloc(l->n, sizeof(*stack));
    size_t *order = xcalloc(l->n, sizeof(*order));
    size_t *where = xcalloc(l->n, sizeof(*where));
    struct pathinfo *nv = NULL;
    size_t norder = 0;
    size_t i;
    size_t k;
    int rc = 0;

    for (i = 0; i < l->n && rc == 0; i++) {
        if (state[i] == WHITE) {
            rc = visit(l, NULL, i, state, stack, order, &norder);
        }
    }
    if (rc != 0) {
        goto out;
    }
    nv = xcalloc(l->n ? l->n : 1, sizeof(*nv));
    for (i = 0; i < l->n; i++) {
        where[order[i]] = i;
        nv[i] = l->v[order[i]];
    }
    for (i = 0; i < l->n; i++) {
        for (k = 0; k < nv[i].nrefs; k++) {
            nv[i].refs[k] = (uint32_t)where[nv[i].refs[k]];
        }
    }
    free(l->v);
    l->v = nv;
    l->alloc = l->n ? l->n : 1;
    if (l->n > 0) {
        tab_rebuild(l, l->tabsize);
    }
out:
    free(state);
    free(stack);
    free(order);
    free(where);
    return rc;
}

/* Depth-first over the references inside the set only. */
int
pathinfo_order(const struct pathinfo_list *l, size_t *idx, size_t n)
{
    unsigned char *state = xcalloc(l->n ? l->n : 1, 1);
    unsigned char *in = xcalloc(l->n ? l->n : 1, 1);
    struct frame *stack = xcalloc(n ? n : 1, sizeof(*stack));
    size_t *order = xcalloc(n ? n : 1, sizeof(*order));
    size_t norder = 0;
    int rc = 0;

    for (size_t i = 0; i < n; i++) {
        in[idx[i]] = 1;
    }
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (state[idx[i]] == WHITE) {
            rc = visit(l, in, idx[i], state, stack, order, &norder);
        }
    }
    if (rc == 0) {
        memcpy(idx, order, n * sizeof(*idx));
    }
    free(state);
    free(in);
    free(stack);
    free(order);
    return rc;
}

/* ---- queries ---- */

static void
push_store(struct strvec *argv, const char *store)
{
    if (store != NULL) {
        strvec_pushl(argv, "--store", store, (const char *)NULL);
    }
}

/* The calling thread's cancel flag (pathinfo_cancel_on), or NULL. */
static _Thread_local const atomic_int *tl_cancel;

void
pathinfo_cancel_on(const atomic_int *flag)
{
    tl_cancel = flag;
}

/* Cancelled, or interrupted (SIGINT/SIGTERM kill the running nix too):
 * a failure is then no reason for a warning or a fallback. */
static int
cancelled(void)
{
    return (tl_cancel != NULL && atomic_load(tl_cancel) != 0) || cr_interrupted;
}

/* Run argv on h capturing stdout into out.  0, or CR_ENIX/CR_E* with the
 * command's error logged unless quiet_fail (then only returned); CR_EINTR,
 * unlogged, when the thread's fill was cancelled or crebuild interrupted. */
static int
run_capture(struct host *h,
            const struct strvec *argv,
            struct strbuf *out,
            int quiet_fail)
{
    struct host_cmd cmd;
    struct strbuf err = STRBUF_INIT;
    struct strbuf line = STRBUF_INIT;
    int status = -1;
    int rc;

    memset(&cmd, 0, sizeof(cmd));
    cmd.argv = argv;
    cmd.out = out;
    cmd.err = &err;
    err.max = 64 * 1024;
    rc = host_run(h, &cmd, &status);
    if (rc == 0 && status != 0) {
        rc = CR_ENIX;
    }
    if (rc != 0 && cancelled()) {
        rc = CR_EINTR;
    } else if (rc != 0) {
        serve_stderr_line(err.buf, err.len, &line);
        if (quiet_fail) {
            log_debug("%s failed: %s", argv->v[0], line.buf);
        } else {
            log_error("%s %s failed: %s",
                      argv->v[0],
                      argv->v[1],
                      line.len ? line.buf : cr_strerror(rc));
        }
    }
    strbuf_release(&err);
    strbuf_release(&line);
    return rc;
}

static int
closure_local(struct host *h,
              const struct strvec *roots,
              const char *store,
              int quiet,
              struct pathinfo_list *out)
{
    struct strvec argv = STRVEC_INIT;
    struct strbuf text = STRBUF_INIT;
    struct lines ls;
    int rc;

    strvec_push(&argv, "nix-store");
    push_store(&argv, store);
    strvec_push(&argv, "--query");
    strvec_push(&argv, "--requisites");
    strvec_pusharr(&argv, roots);
    rc = run_capture(h, &argv, &text, quiet);
    if (rc == 0) {
        ls.p = text.buf;
        ls.end = text.buf + text.len;
        strbuf_init(&ls.line, 0);
        while (next_line(&ls) == 0) {
            if (ls.line.len > 0) {
                pathinfo_list_add(out, ls.line.buf);
            }
        }
        strbuf_release(&ls.line);
    }
    strvec_clear(&argv);
    strbuf_release(&text);
    return rc;
}

/* Metadata for the entries idx[0..n): nix path-info --json gives all of
 * it (signatures and content addresses too) where the local Nix prints
 * it in a form json_meta knows; nix-store --dump-db fills whatever is
 * still missing, and everything when path-info cannot run (*want_json
 * then drops to 0 for the next batches). */
static int
batch_local(struct host *h,
            const char *store,
            struct pathinfo_list *l,
            const size_t *idx,
            size_t n,
            int *want_json)
{
    struct strvec argv = STRVEC_INIT;
    struct strbuf text = STRBUF_INIT;
    size_t i;
    int rc = 0;

    if (*want_json) {
        strvec_pushl(&argv,
                     "nix",
                     "--extra-experimental-features",
                     "nix-command",
                     "path-info",
                     "--json",
                     (const char *)NULL);
        push_store(&argv, store);
        for (i = 0; i < n; i++) {
            strvec_push(&argv, l->v[idx[i]].path);
        }
        if (run_capture(h, &argv, &text, 1) != 0 ||
            pathinfo_parse_json(l, text.buf, text.len) != 0) {
            if (cancelled()) {
                rc = CR_EINTR;
                goto out;
            }
            log_warn("cannot query signatures and content addresses with "
                     "nix path-info; copying without them");
            *want_json = 0;
        }
        strvec_clear(&argv);
        strbuf_reset(&text);
    }
    for (i = 0; i < n && l->v[idx[i]].have_meta; i++) {
    }
    if (i == n) {
        goto out;
    }
    strvec_push(&argv, "nix-store");
    push_store(&argv, store);
    strvec_push(&argv, "--dump-db");
    for (i = 0; i < n; i++) {
        if (!l->v[idx[i]].have_meta) {
            strvec_push(&argv, l->v[idx[i]].path);
        }
    }
    rc = run_capture(h, &argv, &text, 0);
    if (rc == 0) {
        rc = pathinfo_parse_dump_db(l, text.buf, text.len);
    }
out:
    strvec_clear(&argv);
    strbuf_release(&text);
    return rc;
}

static int
check_complete(const struct pathinfo_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        if (!l->v[i].have_meta) {
            log_error("no metadata for '%s'", l->v[i].path);
            return CR_ENIX;
        }
    }
    return 0;
}

int
pathinfo_closure_local(struct host *h,
                       const struct strvec *roots,
                       const char *store,
                       int quiet,
                       struct pathinfo_list *out)
{
    return closure_local(h, roots, store, quiet, out);
}

int
pathinfo_fill_some(struct host *h,
                   const char *store,
                   struct pathinfo_list *l,
                   const size_t *idx,
                   size_t n,
                   int *want_json)
{
    size_t limit = h->is_local ? BATCH_BYTES_LOCAL : BATCH_BYTES;
    size_t i = 0;
    int rc = 0;

    while (rc == 0 && i < n) {
        size_t k = 0, bytes = 0;

        if (cancelled()) {
            return CR_EINTR;
        }
        while (i + k < n && (k == 0 || bytes < limit)) {
            bytes += strlen(l->v[idx[i + k]].path) + 1;
            k++;
        }
        rc = batch_local(h, store, l, idx + i, k, want_json);
        for (size_t j = i; rc == 0 && j < i + k; j++) {
            if (!l->v[idx[j]].have_meta) {
                log_error("no metadata for '%s'", l->v[idx[j]].path);
                rc = CR_ENIX;
            }
        }
        i += k;
    }
    return rc;
}

int
pathinfo_query_local(struct host *h,
                     const struct strvec *roots,
                     const char *store,
                     struct pathinfo_list *out)
{
    int rc = closure_local(h, roots, store, 0, out);

    if (rc == 0) {
        size_t *idx = xcalloc(out->n ? out->n : 1, sizeof(*idx));
        int want_json = 1;

        for (size_t i = 0; i < out->n; i++) {
            idx[i] = i;
        }
        rc = pathinfo_fill_some(h, store, out, idx, out->n, &want_json);
        free(idx);
    }
    return rc != 0 ? rc : pathinfo_toposort(out);
}

struct take_ctx {
    struct pathinfo_list *l;
    int failed; /* take_info failed and logged */
};

static int
take_info_1(struct pathinfo_list *l, const struct serve_info *in)
{
    size_t i = pathinfo_list_find(l, in->path.buf);
    struct pathinfo *p;
    size_t k;

    if (i == PATHINFO_NONE) {
        log_error("unexpected path '%s' in QueryPathInfos reply", in->path.buf);
        return CR_EPROTO;
    }
    if (!in->has_hash) {
        log_error("the source's Nix is too old (no narHash in path infos)");
        return CR_ENIX;
    }
    p = &l->v[i];
    memcpy(p->nar_hash, in->nar_hash, sizeof(p->nar_hash));
    p->nar_size = in->nar_size;
    free(p->deriver);
    p->deriver = in->deriver.len ? xstrdup(in->deriver.buf) : NULL;
    free(p->ca);
    p->ca = in->ca.len ? xstrdup(in->ca.buf) : NULL;
    strvec_clear(&p->sigs);
    strvec_pusharr(&p->sigs, &in->sigs);
    free(p->refs);
    p->refs = xcalloc(in->refs.n ? in->refs.n : 1, sizeof(*p->refs));
    p->nrefs = 0;
    for (k = 0; k < in->refs.n; k++) {
        size_t r = pathinfo_list_find(l, in->refs.v[k]);
        if (r == PATHINFO_NONE) {
            log_error("reference '%s' of '%s' is not in its closure",
                      in->refs.v[k],
                      p->path);
            return CR_ENIX;
        }
        p->refs[p->nrefs++] = (uint32_t)r;
    }
    p->have_meta = 1;
    return 0;
}

static int
take_info(void *ctx, const struct serve_info *in)
{
    struct take_ctx *t = ctx;
    int rc = take_info_1(t->l, in);

    t->failed = rc != 0;
    return rc;
}

int
pathinfo_query_serve(struct serve_conn *c,
                     const struct strvec *roots,
                     struct pathinfo_list *out)
{
    struct strvec closure = STRVEC_INIT;
    struct take_ctx t = {out, 0};
    size_t i;
    int rc;

    rc = serve_query_closure(c, roots, 0, &closure);
    if (rc == 0) {
        for (i = 0; i < closure.n; i++) {
            pathinfo_list_add(out, closure.v[i]);
        }
        rc = serve_query_path_infos(c, &closure, take_info, &t);
    }
    if (rc != 0 && !t.failed && !serve_lost(c)) {
        log_error(
            "cannot query paths on %s: %s", serve_host(c), serve_error(c));
    }
    if (rc == 0) {
        rc = check_complete(out);
    }
    if (rc == 0) {
        rc = pathinfo_toposort(out);
    }
    strvec_clear(&closure);
    return rc;
}

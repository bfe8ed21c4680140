/* diff.c: package diff between two closures (see diff.h). */
#include "crebuild/diff.h"
#include "crebuild/host.h"
#include "crebuild/log.h"
#include "crebuild/strbuf.h"
#include "crebuild/util.h"

#include <ctype.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* ---- closures ---------------------------------------------------------- */

void
diff_closure_add(struct diff_closure *c,
                 const char *path,
                 unsigned long long nar_size)
{
    if (c->n == c->alloc) {
        c->alloc = c->alloc ? 2 * c->alloc : 64;
        c->paths = xreallocarray(c->paths, c->alloc, sizeof(*c->paths));
    }
    c->paths[c->n].path = xstrdup(path);
    c->paths[c->n].nar_size = nar_size;
    c->n++;
}

void
diff_closure_release(struct diff_closure *c)
{
    for (size_t i = 0; i < c->n; i++) {
        free(c->paths[i].path);
    }
    free(c->paths);
    c->paths = NULL;
    c->n = c->alloc = 0;
    c->missing = 0;
}

/* $1 = the path.  set -f: '?' is a valid store path character and must
 * not be globbed when $p is split.  xargs splits the list into command
 * lines of a safe length and keeps the order. */
static const char script[] =
    "set -ef\n"
    "[ -e \"$1\" ] || exit 3\n"
    "p=$(nix-store --query --requisites \"$1\")\n"
    "printf '%s\\n' \"$p\" --\n"
    "printf '%s\\n' \"$p\" | xargs nix-store --query --size\n";

void
diff_closure_argv(const char *path, struct strvec *argv)
{
    strvec_pushl(argv,
                 "/bin/sh",
                 "-c",
                 script,
                 "diff-closure",
                 path,
                 (const char *)NULL);
}

/* Characters of a store path (Nix allows [A-Za-z0-9+._?=-] in names). */
static int
valid_path(const char *s, size_t n)
{
    if (n < 2 || s[0] != '/') {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!isalnum(c) && strchr("+-._?=/", c) == NULL) {
            return 0;
        }
    }
    return 1;
}

int
diff_closure_parse(const char *text, struct diff_closure *out)
{
    const char *p = text;
    size_t n_paths = 0, n_sizes = 0;
    int in_sizes = 0;

    diff_closure_release(out);
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        if (len == 0) {
            /* blank lines carry nothing */
        } else if (!in_sizes && len == 2 && memcmp(p, "--", 2) == 0) {
            in_sizes = 1;
        } else if (!in_sizes) {
            if (!valid_path(p, len)) {
                goto bad;
            }
            char *path = xstrndup(p, len);
            diff_closure_add(out, path, 0);
            free(path);
            n_paths++;
        } else {
            char num[32];
            unsigned long long v;
            if (len >= sizeof(num) || n_sizes >= n_paths) {
                goto bad;
            }
            memcpy(num, p, len);
            num[len] = '\0';
            if (parse_uint(num, ~0ULL, &v) != 0) {
                goto bad;
            }
            out->paths[n_sizes++].nar_size = v;
        }
        p += len;
        if (*p == '\n') {
            p++;
        }
    }
    if (!in_sizes || n_paths == 0 || n_sizes != n_paths) {
        goto bad;
    }
    return 0;
bad:
    diff_closure_release(out);
    return CR_ENIX;
}

int
diff_closure_read(struct host *h, const char *path, struct diff_closure *out)
{
    struct strvec argv = STRVEC_INIT;
    struct strbuf sout = STRBUF_INIT, serr = STRBUF_INIT;
    struct host_cmd cmd = {0};
    int status = -1, rc;

    diff_closure_release(out);
    strbuf_init(&sout, 256u << 20);
    strbuf_init(&serr, 16u << 10);
    diff_closure_argv(path, &argv);
    cmd.argv = &argv;
    cmd.out = &sout;
    cmd.err = &serr;
    rc = host_run(h, &cmd, &status);
    if (rc != 0) {
        if (rc != CR_EINTR && rc != CR_ECHILD) {
            log_error("cannot query the closure of '%s' on %s: %s",
                      path,
                      h->name,
                      cr_strerror(rc));
        }
        goto out;
    }
    if (status == 3 && sout.len == 0) {
        log_debug("'%s' does not exist on %s: empty closure", path, h->name);
        out->missing = 1;
        rc = 0;
        goto out;
    }
    strbuf_rtrim(&serr);
    if (status != 0) {
        log_error("cannot query the closure of '%s' on %s: exit status "
                  "%d%s%.500s",
                  path,
                  h->name,
                  status,
                  serr.len ? ": " : "",
                  serr.buf);
        rc = CR_ENIX;
        goto out;
    }
    if (sout.truncated || diff_closure_parse(sout.buf, out) != 0) {
        log_error("cannot query the closure of '%s' on %s: unexpected "
                  "output from nix-store",
                  path,
                  h->name);
        rc = CR_ENIX;
        goto out;
    }
    rc = 0;
out:
    strvec_clear(&argv);
    strbuf_release(&sout);
    strbuf_release(&serr);
    return rc;
}

/* ---- names and versions ------------------------------------------------ */

/* Output names stripped from the end of a store path name ("-man", ...).
 * The default output "out" has no suffix.  Like `nix store diff-closures`
 * this is a guess (a name cannot tell an output from a version suffix),
 * so only common nixpkgs output names are taken. */
static const char *const outputs[] = {
    "bin",
    "debug",
    "dev",
    "devdoc",
    "dist",
    "doc",
    "info",
    "lib",
    "lib32",
    "lib64",
    "man",
    "modules",
    "out",
    "py",
    "python",
    "static",
    "terminfo",
};

static int
is_output(const char *s)
{
    for (size_t i = 0; i < ARRAY_SIZE(outputs); i++) {
        if (strcmp(s, outputs[i]) == 0) {
            return 1;
        }
    }
    return 0;
}

static int
is_hash_part(const char *s)
{
    /* Nix's base-32 alphabet (no e, o, t, u). */
    static const char alphabet[] = "0123456789abcdfghijklmnpqrsvwxyz";

    for (int i = 0; i < 32; i++) {
        if (s[i] == '\0' || strchr(alphabet, s[i]) == NULL) {
            return 0;
        }
    }
    return s[32] == '-';
}

static void
set_out(char **dst, const char *s, size_t n)
{
    if (dst != NULL) {
        *dst = xstrndup(s, n);
    }
}

int
diff_name_parse(const char *path, char **pname, char **version, char **output)
{
    const char *base = strrchr(path, '/'), *name, *dash;
    size_t len, i;

    base = base ? base + 1 : path;
    name = strlen(base) > 33 && is_hash_part(base) ? base + 33 : base;
    len = strlen(name);
    if (len >= 4 && strcmp(name + len - 4, ".drv") == 0) {
        return -1;
    }
    /* The output suffix: the last "-word", when a known output name and
     * something is left before it. */
    dash = strrchr(name, '-');
    if (dash != NULL && dash > name && is_output(dash + 1)) {
        set_out(output, dash + 1, strlen(dash + 1));
        len = (size_t)(dash - name);
    } else {
        set_out(output, "", 0);
    }
    /* builtins.parseDrvName: the version starts after the first '-' that
     * is followed by something other than a letter. */
    for (i = 0; i < len; i++) {
        if (name[i] == '-' && i + 1 < len &&
            !isalpha((unsigned char)name[i + 1])) {
            break;
        }
    }
    set_out(pname, name, i);
    if (i < len) {
        set_out(version, name + i + 1, len - i - 1);
    } else {
        set_out(version, "", 0);
    }
    return 0;
}

/* Next version component: a run of digits or a run of other characters,
 * separators ('.', '-') skipped.  Returns its length at *start. */
static size_t
component(const char **p, const char **start)
{
    const char *s = *p;

    while (*s == '.' || *s == '-') {
        s++;
    }
    *start = s;
    if (isdigit((unsigned char)*s)) {
        while (isdigit((unsigned char)*s)) {
            s++;
        }
    } else {
        while (*s && !isdigit((unsigned char)*s) && *s != '.' && *s != '-') {
            s++;
        }
    }
    *p = s;
    return (size_t)(s - *start);
}

static int
all_digits(const char *s, size_t n)
{
    if (n == 0) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i])) {
            return 0;
        }
    }
    return 1;
}

/* Numeric comparison of digit runs of any length. */
static int
numcmp(const char *a, size_t na, const char *b, size_t nb)
{
    int c;

    while (na > 1 && *a == '0') {
        a++;
        na--;
    }
    while (nb > 1 && *b == '0') {
        b++;
        nb--;
    }
    if (na != nb) {
        return na < nb ? -1 : 1;
    }
    c = memcmp(a, b, na);
    return c < 0 ? -1 : c > 0;
}

static int
strncmp2(const char *a, size_t na, const char *b, size_t nb)
{
    int c = memcmp(a, b, na < nb ? na : nb);

    if (c != 0) {
        return c < 0 ? -1 : 1;
    }
    return na < nb ? -1 : na > nb;
}

/* Nix's componentsLT (libstore/names.cc). */
static int
component_lt(const char *a, size_t na, const char *b, size_t nb)
{
    int da = all_digits(a, na), db = all_digits(b, nb);

    if (da && db) {
        return numcmp(a, na, b, nb) < 0;
    }
    if (na == 0 && db) {
        return 1;
    }
    if (na == 3 && memcmp(a, "pre", 3) == 0 &&
        !(nb == 3 && memcmp(b, "pre", 3) == 0)) {
        return 1;
    }
    if (nb == 3 && memcmp(b, "pre", 3) == 0) {
        return 0;
    }
    if (db) {
        return 1; /* "2.3a" < "2.3.1" */
    }
    if (da) {
        return 0;
    }
    return strncmp2(a, na, b, nb) < 0;
}

int
diff_version_cmp(const char *a, const char *b)
{
    while (*a || *b) {
        const char *ca, *cb;
        size_t na = component(&a, &ca), nb = component(&b, &cb);
        if (component_lt(ca, na, cb, nb)) {
            return -1;
        }
        if (component_lt(cb, nb, ca, na)) {
            return 1;
        }
    }
    return 0;
}

/* ---- the diff ---------------------------------------------------------- */

struct entry {
    char *pname;
    char *version;
    unsigned long long size;
    int side; /* 0 before, 1 after */
};

static int
cmp_entry(const void *x, const void *y)
{
    const struct entry *a = x, *b = y;
    int c = strcmp(a->pname, b->pname);

    if (c != 0) {
        return c;
    }
    if (a->side != b->side) {
        return a->side - b->side;
    }
    c = diff_version_cmp(a->version, b->version);
    return c != 0 ? c : strcmp(a->version, b->version);
}

static void
collect(const struct diff_closure *c,
        int side,
        struct entry **v,
        size_t *n,
        size_t *alloc)
{
    for (size_t i = 0; i < c->n; i++) {
        struct entry e = {NULL, NULL, c->paths[i].nar_size, side};
        if (diff_name_parse(c->paths[i].path, &e.pname, &e.version, NULL) !=
            0) {
            continue;
        }
        if (*n == *alloc) {
            *alloc = *alloc ? 2 * *alloc : 64;
            *v = xreallocarray(*v, *alloc, sizeof(**v));
        }
        (*v)[(*n)++] = e;
    }
}

static int
contains(char *const *v, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(v[i], s) == 0) {
            return 1;
        }
    }
    return 0;
}

/* Distinct versions of entries [from, to) into *out (sorted: the entries
 * are). */
static size_t
distinct(const struct entry *e, size_t from, size_t to, char ***out)
{
    size_t n = 0;

    *out = NULL;
    for (size_t i = from; i < to; i++) {
        if (n > 0 && strcmp((*out)[n - 1], e[i].version) == 0) {
            continue;
        }
        *out = xreallocarray(*out, n + 1, sizeof(**out));
        (*out)[n++] = xstrdup(e[i].version);
    }
    return n;
}

static enum diff_kind
classify(const struct diff_change *c)
{
    const char *lo_new = NULL, *hi_new = NULL, *lo_old = NULL, *hi_old = NULL;

    if (c->n_before == 0) {
        return DIFF_ADDED;
    }
    if (c->n_after == 0) {
        return DIFF_REMOVED;
    }
    /* Versions only on one side; both lists are sorted. */
    for (size_t i = 0; i < c->n_after; i++) {
        if (!contains(c->before, c->n_before, c->after[i])) {
            lo_new = lo_new ? lo_new : c->after[i];
            hi_new = c->after[i];
        }
    }
    for (size_t i = 0; i < c->n_before; i++) {
        if (!contains(c->after, c->n_after, c->before[i])) {
            lo_old = lo_old ? lo_old : c->before[i];
            hi_old = c->before[i];
        }
    }
    if (lo_new == NULL || lo_old == NULL) {
        return DIFF_CHANGED;
    }
    if (diff_version_cmp(lo_new, hi_old) > 0) {
        return DIFF_UPGRADED;
    }
    if (diff_version_cmp(hi_new, lo_old) < 0) {
        return DIFF_DOWNGRADED;
    }
    return DIFF_CHANGED;
}

static void
free_list(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i]);
    }
    free(v);
}

static int
same_versions(const struct diff_change *c)
{
    if (c->n_before != c->n_after) {
        return 0;
    }
    for (size_t i = 0; i < c->n_before; i++) {
        if (strcmp(c->before[i], c->after[i]) != 0) {
            return 0;
        }
    }
    return 1;
}

/* One pname: entries [from, to), before-side first. */
/* sa - sb as a signed number, saturated (sizes come from the stores'
 * databases and can be anything). */
static long long
size_delta(unsigned long long sa, unsigned long long sb)
{
    if (sa >= sb) {
        return sa - sb > (unsigned long long)LLONG_MAX ? LLONG_MAX
                                                       : (long long)(sa - sb);
    }
    return sb - sa > (unsigned long long)LLONG_MAX ? LLONG_MIN
                                                   : -(long long)(sb - sa);
}

static void
group(struct diff_result *r, const struct entry *e, size_t from, size_t to)
{
    struct diff_change c;
    size_t mid = from;
    unsigned long long sb = 0, sa = 0;

    memset(&c, 0, sizeof(c));
    while (mid < to && e[mid].side == 0) {
        sb += e[mid++].size;
    }
    for (size_t i = mid; i < to; i++) {
        sa += e[i].size;
    }
    c.n_before = distinct(e, from, mid, &c.before);
    c.n_after = distinct(e, mid, to, &c.after);
    if (same_versions(&c)) {
        free_list(c.before, c.n_before);
        free_list(c.after, c.n_after);
        return;
    }
    c.pname = xstrdup(e[from].pname);
    c.kind = classify(&c);
    c.size_delta = size_delta(sa, sb);
    r->changes = xreallocarray(r->changes, r->n + 1, sizeof(*r->changes));
    r->changes[r->n++] = c;
}

static unsigned long long
total(const struct diff_closure *c)
{
    unsigned long long t = 0;

    for (size_t i = 0; i < c->n; i++) {
        t += c->paths[i].nar_size;
    }
    return t;
}

void
diff_compute(const struct diff_closure *before,
             const struct diff_closure *after,
             struct diff_result *out)
{
    struct entry *e = NULL;
    size_t n = 0, alloc = 0;

    memset(out, 0, sizeof(*out));
    out->before_paths = before->n;
    out->after_paths = after->n;
    out->before_bytes = total(before);
    out->after_bytes = total(after);
    collect(before, 0, &e, &n, &alloc);
    collect(after, 1, &e, &n, &alloc);
    if (n > 1) {
        qsort(e, n, sizeof(*e), cmp_entry);
    }
    for (size_t i = 0; i < n;) {
        size_t j = i + 1;
        while (j < n && strcmp(e[j].pname, e[i].pname) == 0) {
            j++;
        }
        group(out, e, i, j);
        i = j;
    }
    for (size_t i = 0; i < n; i++) {
        free(e[i].pname);
        free(e[i].version);
    }
    free(e);
}

void
diff_result_release(struct diff_result *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free(r->changes[i].pname);
        free_list(r->changes[i].before, r->changes[i].n_before);
        free_list(r->changes[i].after, r->changes[i].n_after);
    }
    free(r->changes);
    memset(r, 0, sizeof(*r));
}

/* ---- printing ---------------------------------------------------------- */

char *
diff_format_size(double bytes, int signed_, char *buf, size_t n)
{
    static const char *const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB"};
    const char *sign = !signed_ ? "" : bytes < 0 ? "-" : "+";
    double v = bytes < 0 ? -bytes : bytes;
    size_t u = 0;

    if (v < 1024) {
        snprintf(buf, n, "%s%.0f B", sign, v);
        return buf;
    }
    v /= 1024;
    while (v >= 1024 && u + 1 < ARRAY_SIZE(units)) {
        v /= 1024;
        u++;
    }
    snprintf(buf, n, "%s%.1f %s", sign, v, units[u]);
    return buf;
}

static const char *
plural(size_t n)
{
    return n == 1 ? "path" : "paths";
}

static void
print_versions(char *const *v, size_t n, FILE *f)
{
    for (size_t i = 0; i < n; i++) {
        fprintf(f, "%s%s", i ? ", " : "", v[i][0] ? v[i] : "<none>");
    }
}

void
diff_print(const struct diff_result *r, FILE *f)
{
    static const char *const tags[] = {"[A+]", "[R-]", "[U.]", "[D.]", "[C.]"};
    char b1[32], b2[32], b3[32];
    int width = 0;

    for (size_t i = 0; i < r->n; i++) {
        int len = (int)strlen(r->changes[i].pname);
        width = len > width ? len : width;
    }
    width = width > 32 ? 32 : width;
    for (size_t i = 0; i < r->n; i++) {
        const struct diff_change *c = &r->changes[i];
        fprintf(f, "%s %-*s  ", tags[c->kind], width, c->pname);
        if (c->kind == DIFF_ADDED) {
            print_versions(c->after, c->n_after, f);
        } else if (c->kind == DIFF_REMOVED) {
            print_versions(c->before, c->n_before, f);
        } else {
            print_versions(c->before, c->n_before, f);
            fputs(" \xe2\x86\x92 ", f);
            print_versions(c->after, c->n_after, f);
        }
        fputc('\n', f);
    }
    if (r->n == 0) {
        fputs("No package changes.\n", f);
    }
    long long dp = (long long)r->after_paths - (long long)r->before_paths;
    fprintf(f,
            "Closure size: %zu %s (%s) \xe2\x86\x92 %zu %s (%s), %+lld %s, "
            "%s\n",
            r->before_paths,
            plural(r->before_paths),
            diff_format_size((double)r->before_bytes, 0, b1, sizeof(b1)),
            r->after_paths,
            plural(r->after_paths),
            diff_format_size((double)r->after_bytes, 0, b2, sizeof(b2)),
            dp,
            plural(dp < 0 ? (size_t)-dp : (size_t)dp),
            diff_format_size((double)r->after_bytes - (double)r->before_bytes,
                             1,
                             b3,
                             sizeof(b3)));
}

/* nar.c: NAR writer (filesystem -> bytes) and strict streaming reader. */
#include "crebuild/nar.h"
#include "crebuild/log.h"
#include "crebuild/strbuf.h"
#include "crebuild/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The writer's output buffer: file contents are read straight into it,
 * so this is also the read size for large files. */
#define WBUF_SIZE (256 * 1024)
/* The reader's buffer for file contents. */
#define RBUF_SIZE (64 * 1024)

static const unsigned char zeros[8];

/* ---- writer ---- */

struct writer {
    unsigned char *buf;
    size_t len;
    nar_sink_fn sink;
    void *ctx;
    struct hash_ctx *hash;
    uint64_t size;
    struct strbuf path; /* the file being written, for messages */
};

static int
wflush(struct writer *w)
{
    int rc;

    if (w->len == 0) {
        return 0;
    }
    hash_ctx_update(w->hash, w->buf, w->len);
    w->size += w->len;
    rc = w->sink(w->ctx, w->buf, w->len);
    w->len = 0;
    return rc;
}

static int
emit(struct writer *w, const void *data, size_t n)
{
    const unsigned char *p = data;

    while (n > 0) {
        size_t k = WBUF_SIZE - w->len;
        int rc;

        if (k == 0) {
            rc = wflush(w);
            if (rc != 0) {
                return rc;
            }
            continue;
        }
        if (k > n) {
            k = n;
        }
        memcpy(w->buf + w->len, p, k);
        w->len += k;
        p += k;
        n -= k;
    }
    return 0;
}

static int
emit_u64(struct writer *w, uint64_t v)
{
    unsigned char b[8];
    int i;

    for (i = 0; i < 8; i++) {
        b[i] = (unsigned char)(v >> (8 * i));
    }
    return emit(w, b, 8);
}

static int
emit_pad(struct writer *w, uint64_t n)
{
    return emit(w, zeros, (size_t)((8 - n % 8) % 8));
}

static int
emit_bytes(struct writer *w, const void *s, size_t n)
{
    int rc = emit_u64(w, n);

    if (rc == 0) {
        rc = emit(w, s, n);
    }
    if (rc == 0) {
        rc = emit_pad(w, n);
    }
    return rc;
}

/* Emit several literal tokens; the list ends with NULL. */
static int emit_strs(struct writer *w, const char *first, ...)
    __attribute__((sentinel));
static int
emit_strs(struct writer *w, const char *first, ...)
{
    va_list ap;
    const char *s;
    int rc = 0;

    va_start(ap, first);
    for (s = first; s != NULL && rc == 0; s = va_arg(ap, const char *)) {
        rc = emit_bytes(w, s, strlen(s));
    }
    va_end(ap);
    return rc;
}

static int
fs_error(struct writer *w, const char *what)
{
    int e = errno;

    log_error("cannot %s '%s': %s", what, w->path.buf, strerror(e));
    errno = e;
    return CR_ESYS;
}

static int
dump_contents(struct writer *w, int fd, uint64_t size)
{
    uint64_t left = size;
    int rc;

    rc = emit_u64(w, size);
    while (rc == 0 && left > 0) {
        size_t room = WBUF_SIZE - w->len;
        ssize_t n;

        if (room == 0) {
            rc = wflush(w);
            continue;
        }
        if (room > left) {
            room = (size_t)left;
        }
        n = read(fd, w->buf + w->len, room);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return fs_error(w, "read");
        }
        if (n == 0) {
            log_error("'%s' shrank while being read", w->path.buf);
            return CR_ECORRUPT;
        }
        w->len += (size_t)n;
        left -= (uint64_t)n;
    }
    if (rc == 0) {
        rc = emit_pad(w, size);
    }
    return rc;
}

static int
dump_regular(struct writer *w)
{
    struct stat st;
    int fd;
    int rc;

    fd = open(w->path.buf, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        return fs_error(w, "open");
    }
    if (fstat(fd, &st) != 0) {
        rc = fs_error(w, "stat");
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        log_error("'%s' changed type while being read", w->path.buf);
        rc = CR_ECORRUPT;
        goto out;
    }
    (void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    rc = emit_strs(w, "(", "type", "regular", (const char *)NULL);
    if (rc == 0 && (st.st_mode & S_IXUSR)) {
        rc = emit_strs(w, "executable", "", (const char *)NULL);
    }
    if (rc == 0) {
        rc = emit_strs(w, "contents", (const char *)NULL);
    }
    if (rc == 0) {
        rc = dump_contents(w, fd, (uint64_t)st.st_size);
    }
    if (rc == 0) {
        rc = emit_strs(w, ")", (const char *)NULL);
    }
out:
    close(fd);
    return rc;
}

static int
dump_symlink(struct writer *w)
{
    char target[PATH_MAX + 1];
    ssize_t n;
    int rc;

    n = readlink(w->path.buf, target, sizeof(target));
    if (n < 0) {
        return fs_error(w, "read link");
    }
    if ((size_t)n >= sizeof(target)) {
        errno = ENAMETOOLONG;
        return fs_error(w, "read link");
    }
    rc = emit_strs(w, "(", "type", "symlink", "target", (const char *)NULL);
    if (rc == 0) {
        rc = emit_bytes(w, target, (size_t)n);
    }
    if (rc == 0) {
        rc = emit_strs(w, ")", (const char *)NULL);
    }
    return rc;
}

static int
cmp_names(const void *a, const void *b)
{
    /* strcmp compares as unsigned char: the byte order Nix uses. */
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int dump_node(struct writer *w);

static int
read_names(struct writer *w, char ***names_out, size_t *n_out)
{
    char **names = NULL;
    size_t n = 0;
    size_t alloc = 0;
    struct dirent *de;
    DIR *d;
    int fd;

    fd = open(w->path.buf, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        return fs_error(w, "open directory");
    }
    d = fdopendir(fd);
    if (d == NULL) {
        close(fd);
        return fs_error(w, "open directory");
    }
    for (;;) {
        errno = 0;
        de = readdir(d);
        if (de == NULL) {
            break;
        }
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) {
            continue;
        }
        if (n == alloc) {
            alloc = alloc ? 2 * alloc : 16;
            names = xreallocarray(names, alloc, sizeof(*names));
        }
        names[n++] = xstrdup(de->d_name);
    }
    if (errno != 0) {
        int rc = fs_error(w, "read directory");
        closedir(d);
        while (n > 0) {
            free(names[--n]);
        }
        free(names);
        return rc;
    }
    closedir(d);
    if (n > 1) {
        qsort(names, n, sizeof(*names), cmp_names);
    }
    *names_out = names;
    *n_out = n;
    return 0;
}

static int
dump_directory(struct writer *w)
{
    char **names = NULL;
    size_t n = 0;
    size_t i;
    size_t base = w->path.len;
    int rc;

    rc = read_names(w, &names, &n);
    if (rc != 0) {
        return rc;
    }
    rc = emit_strs(w, "(", "type", "directory", (const char *)NULL);
    for (i = 0; i < n && rc == 0; i++) {
        rc = emit_strs(w, "entry", "(", "name", (const char *)NULL);
        if (rc == 0) {
            rc = emit_bytes(w, names[i], strlen(names[i]));
        }
        if (rc == 0) {
            rc = emit_strs(w, "node", (const char *)NULL);
        }
        if (rc == 0) {
            strbuf_addch(&w->path, '/');
            strbuf_addstr(&w->path, names[i]);
            rc = dump_node(w);
            w->path.len = base;
            w->path.buf[base] = '\0';
        }
        if (rc == 0) {
            rc = emit_strs(w, ")", (const char *)NULL);
        }
    }
    if (rc == 0) {
        rc = emit_strs(w, ")", (const char *)NULL);
    }
    for (i = 0; i < n; i++) {
        free(names[i]);
    }
    free(names);
    return rc;
}

static int
dump_node(struct writer *w)
{
    struct stat st;

    if (lstat(w->path.buf, &st) != 0) {
        return fs_error(w, "stat");
    }
    if (S_ISREG(st.st_mode)) {
        return dump_regular(w);
    }
    if (S_ISLNK(st.st_mode)) {
        return dump_symlink(w);
    }
    if (S_ISDIR(st.st_mode)) {
        return dump_directory(w);
    }
    log_error("'%s' has an unsupported file type", w->path.buf);
    return CR_ECORRUPT;
}

int
nar_dump(const char *path, nar_sink_fn sink, void *ctx, struct nar_result *res)
{
    struct writer w;
    int rc;

    memset(&w, 0, sizeof(w));
    w.buf = xmalloc(WBUF_SIZE);
    w.sink = sink;
    w.ctx = ctx;
    w.hash = hash_ctx_new();
    strbuf_init(&w.path, 0);
    strbuf_addstr(&w.path, path);

    rc = emit_strs(&w, "nix-archive-1", (const char *)NULL);
    if (rc == 0) {
        rc = dump_node(&w);
    }
    if (rc == 0) {
        rc = wflush(&w);
    }
    if (rc == 0 && res != NULL) {
        res->size = w.size;
        res->error = NULL;
        hash_ctx_final(w.hash, res->sha256);
    }
    hash_ctx_free(w.hash);
    strbuf_release(&w.path);
    free(w.buf);
    return rc;
}

/* ---- reader ---- */

struct reader {
    nar_source_fn src;
    void *sctx;
    nar_sink_fn tee;
    void *tctx;
    const struct nar_visitor *v;
    void *vctx;
    struct hash_ctx *hash;
    uint64_t size;
    const char *error;
    struct strbuf path;
    unsigned char *buf;
};

static int
bad(struct reader *r, const char *why)
{
    if (r->error == NULL) {
        r->error = why;
    }
    return CR_EPROTO;
}

static int
rread(struct reader *r, void *buf, size_t n)
{
    int rc = r->src(r->sctx, buf, n);

    if (rc != 0) {
        if (rc == CR_EPROTO) {
            return bad(r, "unexpected end of NAR");
        }
        return rc;
    }
    hash_ctx_update(r->hash, buf, n);
    r->size += n;
    if (r->tee != NULL) {
        return r->tee(r->tctx, buf, n);
    }
    return 0;
}

static int
rread_u64(struct reader *r, uint64_t *out)
{
    unsigned char b[8];
    uint64_t v = 0;
    int i;
    int rc = rread(r, b, 8);

    if (rc != 0) {
        return rc;
    }
    for (i = 7; i >= 0; i--) {
        v = v << 8 | b[i];
    }
    *out = v;
    return 0;
}

static int
rread_pad(struct reader *r, uint64_t n)
{
    unsigned char b[8];
    size_t k = (size_t)((8 - n % 8) % 8);
    int rc;

    if (k == 0) {
        return 0;
    }
    rc = rread(r, b, k);
    if (rc == 0 && memcmp(b, zeros, k) != 0) {
        return bad(r, "non-zero padding in NAR");
    }
    return rc;
}

/* Read a string token of at most max bytes into sb (reset first). */
static int
rread_str(struct reader *r, struct strbuf *sb, size_t max)
{
    uint64_t len;
    int rc;

    strbuf_reset(sb);
    rc = rread_u64(r, &len);
    if (rc != 0) {
        return rc;
    }
    if (len > max) {
        return bad(r, "string in NAR too long");
    }
    while (sb->len < len) {
        size_t k = (size_t)len - sb->len;
        if (k > RBUF_SIZE) {
            k = RBUF_SIZE;
        }
        rc = rread(r, r->buf, k);
        if (rc != 0) {
            return rc;
        }
        strbuf_add(sb, r->buf, k);
    }
    return rread_pad(r, len);
}

static int
expect(struct reader *r, struct strbuf *tmp, const char *lit, const char *why)
{
    int rc = rread_str(r, tmp, 64);

    if (rc == CR_EPROTO && r->error != NULL &&
        strcmp(r->error, "string in NAR too long") == 0) {
        r->error = why;
    }
    if (rc != 0) {
        return rc;
    }
    if (tmp->len != strlen(lit) || memcmp(tmp->buf, lit, tmp->len) != 0) {
        return bad(r, why);
    }
    return 0;
}

static int
parse_contents(struct reader *r, int executable)
{
    uint64_t size;
    uint64_t left;
    int rc;

    rc = rread_u64(r, &size);
    if (rc != 0) {
        return rc;
    }
    if (r->v != NULL && r->v->regular != NULL) {
        rc = r->v->regular(r->vctx, r->path.buf, executable, size);
        if (rc != 0) {
            return rc;
        }
    }
    for (left = size; left > 0;) {
        size_t k = left > RBUF_SIZE ? RBUF_SIZE : (size_t)left;
        rc = rread(r, r->buf, k);
        if (rc != 0) {
            return rc;
        }
        if (r->v != NULL && r->v->contents != NULL) {
            rc = r->v->contents(r->vctx, r->buf, k);
            if (rc != 0) {
                return rc;
            }
        }
        left -= k;
    }
    return rread_pad(r, size);
}

static int
parse_regular(struct reader *r, struct strbuf *tok)
{
    int executable = 0;
    int rc = rread_str(r, tok, 64);

    if (rc != 0) {
        return rc;
    }
    if (tok->len == 10 && memcmp(tok->buf, "executable", 10) == 0) {
        executable = 1;
        rc = rread_str(r, tok, 64);
        if (rc == 0 && tok->len != 0) {
            rc = bad(r, "executable marker in NAR has a value");
        }
        if (rc == 0) {
            rc = expect(r, tok, "contents", "expected 'contents' in NAR");
        }
    } else if (tok->len != 8 || memcmp(tok->buf, "contents", 8) != 0) {
        rc = bad(r, "expected 'contents' in NAR");
    }
    if (rc == 0) {
        rc = parse_contents(r, executable);
    }
    return rc;
}

static int
parse_symlink(struct reader *r, struct strbuf *tok)
{
    int rc = expect(r, tok, "target", "expected 'target' in NAR");

    if (rc == 0) {
        rc = rread_str(r, tok, NAR_MAX_TARGET);
    }
    if (rc == 0 && (tok->len == 0 || memchr(tok->buf, 0, tok->len))) {
        rc = bad(r, "invalid symlink target in NAR");
    }
    if (rc == 0 && r->v != NULL && r->v->symlink != NULL) {
        rc = r->v->symlink(r->vctx, r->path.buf, tok->buf);
    }
    return rc;
}

static int
valid_name(const struct strbuf *name)
{
    if (name->len == 0 || memchr(name->buf, '/', name->len) ||
        memchr(name->buf, 0, name->len)) {
        return 0;
    }
    return strcmp(name->buf, ".") != 0 && strcmp(name->buf, "..") != 0;
}

static int parse_node(struct reader *r, struct strbuf *tok, int depth);

static int
parse_entry(struct reader *r,
            struct strbuf *tok,
            struct strbuf *prev,
            int depth)
{
    size_t base = r->path.len;
    int rc;

    rc = expect(r, tok, "(", "expected '(' in NAR entry");
    if (rc == 0) {
        rc = expect(r, tok, "name", "expected 'name' in NAR entry");
    }
    if (rc == 0) {
        rc = rread_str(r, tok, NAR_MAX_NAME);
    }
    if (rc != 0) {
        return rc;
    }
    if (!valid_name(tok)) {
        return bad(r, "invalid file name in NAR");
    }
    /* Compare as unsigned bytes, including a shorter prefix. */
    if (prev->len > 0 && strcmp(prev->buf, tok->buf) >= 0) {
        return bad(r, "NAR directory is not sorted");
    }
    strbuf_reset(prev);
    strbuf_add(prev, tok->buf, tok->len);
    rc = expect(r, tok, "node", "expected 'node' in NAR entry");
    if (rc != 0) {
        return rc;
    }
    if (base > 0) {
        strbuf_addch(&r->path, '/');
    }
    strbuf_addstr(&r->path, prev->buf);
    rc = parse_node(r, tok, depth + 1);
    r->path.len = base;
    r->path.buf[base] = '\0';
    if (rc == 0) {
        rc = expect(r, tok, ")", "expected ')' after NAR entry");
    }
    return rc;
}

static int
parse_directory(struct reader *r, struct strbuf *tok, int depth)
{
    struct strbuf prev = STRBUF_INIT;
    int rc = 0;

    if (depth >= NAR_MAX_DEPTH) {
        return bad(r, "NAR nested too deeply");
    }
    if (r->v != NULL && r->v->directory != NULL) {
        rc = r->v->directory(r->vctx, r->path.buf);
    }
    while (rc == 0) {
        rc = rread_str(r, tok, 64);
        if (rc != 0) {
            break;
        }
        if (tok->len == 1 && tok->buf[0] == ')') {
            break;
        }
        if (tok->len != 5 || memcmp(tok->buf, "entry", 5) != 0) {
            rc = bad(r, "expected 'entry' or ')' in NAR directory");
            break;
        }
        rc = parse_entry(r, tok, &prev, depth);
    }
    strbuf_release(&prev);
    return rc;
}

/* Parses "(" "type" ... ")"; the directory branch consumes its own ")". */
static int
parse_node(struct reader *r, struct strbuf *tok, int depth)
{
    int rc;

    rc = expect(r, tok, "(", "expected '(' in NAR");
    if (rc == 0) {
        rc = expect(r, tok, "type", "expected 'type' in NAR");
    }
    if (rc == 0) {
        rc = rread_str(r, tok, 64);
    }
    if (rc != 0) {
        return rc;
    }
    if (strcmp(tok->buf, "regular") == 0 && tok->len == 7) {
        rc = parse_regular(r, tok);
    } else if (strcmp(tok->buf, "symlink") == 0 && tok->len == 7) {
        rc = parse_symlink(r, tok);
    } else if (strcmp(tok->buf, "directory") == 0 && tok->len == 9) {
        return parse_directory(r, tok, depth);
    } else {
        return bad(r, "unknown file type in NAR");
    }
    if (rc == 0) {
        rc = expect(r, tok, ")", "expected ')' in NAR");
    }
    return rc;
}

int
nar_parse(nar_source_fn src,
          void *sctx,
          nar_sink_fn tee,
          void *tctx,
          const struct nar_visitor *v,
          void *vctx,
          struct nar_result *res)
{
    struct reader r;
    struct strbuf tok = STRBUF_INIT;
    int rc;

    memset(&r, 0, sizeof(r));
    r.src = src;
    r.sctx = sctx;
    r.tee = tee;
    r.tctx = tctx;
    r.v = v;
    r.vctx = vctx;
    r.hash = hash_ctx_new();
    r.buf = xmalloc(RBUF_SIZE);
    strbuf_init(&r.path, 0);

    rc = expect(&r, &tok, "nix-archive-1", "not a NAR (bad magic)");
    if (rc == 0) {
        rc = parse_node(&r, &tok, 0);
    }
    if (res != NULL) {
        res->size = r.size;
        res->error = rc == CR_EPROTO ? r.error : NULL;
        if (rc == 0) {
            hash_ctx_final(r.hash, res->sha256);
        }
    }
    strbuf_release(&tok);
    strbuf_release(&r.path);
    hash_ctx_free(r.hash);
    free(r.buf);
    return rc;
}

struct membuf {
    const unsigned char *p;
    size_t left;
};

static int
mem_read(void *ctx, void *buf, size_t n)
{
    struct membuf *m = ctx;

    if (n > m->left) {
        return CR_EPROTO;
    }
    memcpy(buf, m->p, n);
    m->p += n;
    m->left -= n;
    return 0;
}

int
nar_parse_buf(const void *buf,
              size_t n,
              const struct nar_visitor *v,
              void *vctx,
              struct nar_result *res)
{
    struct membuf m = {buf, n};
    struct nar_result tmp;
    int rc;

    if (res == NULL) {
        res = &tmp;
    }
    rc = nar_parse(mem_read, &m, NULL, NULL, v, vctx, res);
    if (rc == 0 && m.left != 0) {
        res->error = "trailing data after NAR";
        rc = CR_EPROTO;
    }
    return rc;
}

/* fuzz_narrt.c: NAR round trip.  A NAR the reader accepts is unpacked into
 * a scratch directory (in /dev/shm when there is one) and serialised again
 * with the writer, which must reproduce the input byte for byte, with the
 * same size and hash.  Inputs naming files the file system cannot hold
 * (names over NAME_MAX, paths over PATH_MAX) are skipped. */
#include "crebuild/log.h"
#include "crebuild/nar.h"
#include "crebuild/util.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SKIP 1000 /* visitor code: cannot materialise, not a bug */

static char base[64];   /* per-process scratch directory */
static char root[128];  /* base/t: the unpacked NAR */

struct unpack {
    int fd; /* open regular file receiving contents, or -1 */
};

static int
full(char *out, size_t n, const char *path)
{
    int k = *path ? snprintf(out, n, "%s/%s", root, path)
                  : snprintf(out, n, "%s", root);
    return k < 0 || (size_t)k >= n ? -1 : 0;
}

static int
close_file(struct unpack *u)
{
    int rc = 0;

    if (u->fd >= 0) {
        rc = close(u->fd) == 0 ? 0 : SKIP;
        u->fd = -1;
    }
    return rc;
}

static int
on_dir(void *ctx, const char *path)
{
    char p[PATH_MAX];

    if (close_file(ctx) != 0 || full(p, sizeof(p), path) != 0 ||
        mkdir(p, 0755) != 0) {
        return SKIP;
    }
    return 0;
}

static int
on_reg(void *ctx, const char *path, int x, uint64_t size)
{
    struct unpack *u = ctx;
    char p[PATH_MAX];

    (void)size;
    if (close_file(u) != 0 || full(p, sizeof(p), path) != 0) {
        return SKIP;
    }
    u->fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, x ? 0755 : 0644);
    return u->fd < 0 ? SKIP : 0;
}

static int
on_contents(void *ctx, const void *buf, size_t n)
{
    struct unpack *u = ctx;

    return u->fd >= 0 && write(u->fd, buf, n) == (ssize_t)n ? 0 : SKIP;
}

static int
on_link(void *ctx, const char *path, const char *target)
{
    char p[PATH_MAX];

    if (close_file(ctx) != 0 || full(p, sizeof(p), path) != 0 ||
        symlink(target, p) != 0) {
        return SKIP;
    }
    return 0;
}

struct cmp {
    const uint8_t *want;
    size_t len;
    size_t pos;
};

static int
compare(void *ctx, const void *buf, size_t n)
{
    struct cmp *c = ctx;

    if (n > c->len - c->pos || memcmp(c->want + c->pos, buf, n) != 0) {
        abort(); /* the writer differs from its input */
    }
    c->pos += n;
    return 0;
}

static int
rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)st;
    (void)f;
    if (flag == FTW_DP) {
        rmdir(p);
    } else {
        unlink(p);
    }
    return 0;
}

static void
wipe(void)
{
    struct stat st;

    if (lstat(root, &st) == 0) {
        nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    }
}

static void
remove_base(void)
{
    wipe();
    rmdir(base);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct nar_visitor v = {
        on_dir, on_reg, on_contents, on_link};
    struct unpack u = {-1};
    struct nar_result in, out;
    int rc;

    if (base[0] == '\0') {
        FILE *devnull = fopen("/dev/null", "w");
        log_set_stream(devnull);
        umask(022);
        snprintf(base, sizeof(base), "%s/crfuzz-nar.XXXXXX",
                 access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
        if (mkdtemp(base) == NULL) {
            abort();
        }
        snprintf(root, sizeof(root), "%s/t", base);
        atexit(remove_base);
    }
    rc = nar_parse_buf(data, size, &v, &u, &in);
    rc = close_file(&u) != 0 && rc == 0 ? SKIP : rc;
    if (rc == 0) {
        struct cmp c = {data, size, 0};
        if (nar_dump(root, compare, &c, &out) != 0 || c.pos != size ||
            out.size != in.size ||
            memcmp(out.sha256, in.sha256, sizeof(in.sha256)) != 0) {
            abort();
        }
    } else if (rc != SKIP && rc != CR_EPROTO) {
        abort();
    }
    wipe();
    return 0;
}

/* fuzz_serve.c: the serve client reading arbitrary server output: the
 * handshake, then QueryValidPaths, QueryPathInfos, a pipelined upload's
 * replies and DumpStorePath, each on its own connection.  Reads are cut
 * into chunks whose sizes also come from the input. */
#include "crebuild/log.h"
#include "crebuild/serve.h"
#include "crebuild/util.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct fake {
    struct stream s;
    const uint8_t *in;
    size_t len;
    size_t pos;
    size_t chunk;
};

static int
f_write(struct stream *s, const void *b, size_t n)
{
    (void)s;
    (void)b;
    (void)n;
    return 0;
}

static ssize_t
f_read(struct stream *s, void *b, size_t n)
{
    struct fake *f = (struct fake *)s;
    size_t k = f->len - f->pos;

    if (k > n) {
        k = n;
    }
    if (k > f->chunk) {
        k = f->chunk;
    }
    memcpy(b, f->in + f->pos, k);
    f->pos += k;
    return (ssize_t)k;
}

static ssize_t
f_read_nb(struct stream *s, void *b, size_t n, int *eof)
{
    struct fake *f = (struct fake *)s;

    *eof = f->pos == f->len;
    return f_read(s, b, n);
}

static int
f_eof(struct stream *s)
{
    (void)s;
    return 0;
}

static int
f_close(struct stream *s, int *status, struct strbuf *err)
{
    (void)s;
    *status = 1;
    strbuf_addstr(err, "error: fuzzed\n  more\n");
    return 0;
}

static const struct stream_ops ops = {
    f_write, f_read, f_read_nb, f_eof, f_close};

static int
take(void *ctx, const struct serve_info *in)
{
    (void)in;
    ++*(size_t *)ctx;
    return 0;
}

static int
tee(void *ctx, const void *buf, size_t n)
{
    (void)buf;
    *(size_t *)ctx += n;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static FILE *devnull;
    struct fake f;
    struct serve_conn *c = NULL;
    struct strvec paths = STRVEC_INIT;
    struct strvec out = STRVEC_INIT;
    struct nar_result res;
    size_t n = 0;
    int which;

    if (devnull == NULL) {
        devnull = fopen("/dev/null", "w");
        log_set_stream(devnull);
    }
    if (size < 2) {
        return 0;
    }
    memset(&f, 0, sizeof(f));
    f.s.ops = &ops;
    f.chunk = (size_t)data[0] + 1;
    which = data[1] % 5;
    f.in = data + 2;
    f.len = size - 2;
    if (serve_open(&f.s, "fuzz", &c) != 0) {
        return 0;
    }
    strvec_pushl(
        &paths, "/nix/store/aaaa-a", "/nix/store/bbbb-b", (const char *)NULL);
    switch (which) {
    case 0:
        (void)serve_query_valid_paths(c, &paths, 1, 0, &out);
        break;
    case 1:
        (void)serve_query_path_infos(c, &paths, take, &n);
        break;
    case 2:
        (void)serve_query_closure(c, &paths, 0, &out);
        break;
    case 3:
        (void)serve_dump_request(c, paths.v[0]);
        (void)serve_dump_read(c, tee, &n, &res);
        break;
    default: {
        struct serve_add a;
        memset(&a, 0, sizeof(a));
        a.path = paths.v[0];
        a.nar_size = 8;
        for (int i = 0; i < 3; i++) {
            serve_add_begin(c, &a);
            serve_write_raw(c, "\0\0\0\0\0\0\0\0", 8);
            serve_add_end(c, &a);
            serve_poll(c);
        }
        (void)serve_wait(c);
        if (serve_acked(c) + serve_pending(c) > 3) {
            abort();
        }
        break;
    }
    }
    (void)serve_finish(c);
    serve_free(c);
    strvec_clear(&paths);
    strvec_clear(&out);
    return 0;
}

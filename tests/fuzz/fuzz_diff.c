/* fuzz_diff.c: closure listings (`nix-store -qR`, "--", `nix-store -q
 * --size`) as --diff reads them from a host.  The input is "<before>\0
 * <after>"; both are parsed, compared and printed.  Also checks that
 * version comparison is antisymmetric on the versions found. */
#include "crebuild/diff.h"
#include "crebuild/log.h"
#include "crebuild/util.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
sign(int x)
{
    return (x > 0) - (x < 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static FILE *devnull;
    struct diff_closure a = DIFF_CLOSURE_INIT, b = DIFF_CLOSURE_INIT;
    struct diff_result r = DIFF_RESULT_INIT;
    char *buf, *second;
    int ra, rb;

    if (devnull == NULL) {
        devnull = fopen("/dev/null", "w");
        log_set_stream(devnull);
    }
    buf = xmalloc(size + 1);
    memcpy(buf, data, size);
    buf[size] = '\0';
    second = buf + strlen(buf);
    if (second < buf + size) {
        second++;
    }
    ra = diff_closure_parse(buf, &a);
    rb = diff_closure_parse(second, &b);
    if ((ra != 0 && a.n != 0) || (rb != 0 && b.n != 0)) {
        abort();
    }
    if (ra == 0 || rb == 0) {
        diff_compute(&a, &b, &r);
        if (r.before_paths != a.n || r.after_paths != b.n) {
            abort();
        }
        for (size_t i = 0; i < r.n; i++) {
            const struct diff_change *c = &r.changes[i];
            for (size_t j = 0; j < c->n_before; j++) {
                for (size_t k = 0; k < c->n_after; k++) {
                    if (sign(diff_version_cmp(c->before[j], c->after[k])) !=
                        -sign(diff_version_cmp(c->after[k], c->before[j]))) {
                        abort();
                    }
                }
            }
        }
        diff_print(&r, devnull);
        diff_result_release(&r);
    }
    /* names of arbitrary lines */
    for (size_t i = 0; i < a.n; i++) {
        char *pn = NULL, *ver = NULL, *out = NULL;
        if (diff_name_parse(a.paths[i].path, &pn, &ver, &out) == 0) {
            if (pn == NULL || ver == NULL || out == NULL) {
                abort();
            }
            if (diff_version_cmp(ver, ver) != 0) {
                abort();
            }
        }
        free(pn);
        free(ver);
        free(out);
    }
    diff_closure_release(&a);
    diff_closure_release(&b);
    free(buf);
    return 0;
}

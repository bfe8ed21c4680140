/* fuzz_pathinfo.c: the parsers of `nix-store --dump-db` and
 * `nix path-info --json` output, then the topological sort, on
 * arbitrary text.  The first byte picks the parser. */
#include "crebuild/log.h"
#include "crebuild/pathinfo.h"
#include "crebuild/util.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static FILE *devnull;
    struct pathinfo_list l = PATHINFO_LIST_INIT;
    static const char *const paths[] = {"/nix/store/aaaa-a",
                                        "/nix/store/bbbb-b",
                                        "/nix/store/cccc-c",
                                        "a",
                                        "b"};

    if (devnull == NULL) {
        devnull = fopen("/dev/null", "w");
        log_set_stream(devnull);
    }
    if (size < 1) {
        return 0;
    }
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        pathinfo_list_add(&l, paths[i]);
    }
    if (data[0] & 1) {
        (void)pathinfo_parse_json(&l, (const char *)data + 1, size - 1);
    } else {
        (void)pathinfo_parse_dump_db(&l, (const char *)data + 1, size - 1);
    }
    if (pathinfo_toposort(&l) == 0) {
        /* references first */
        for (size_t i = 0; i < l.n; i++) {
            for (size_t k = 0; k < l.v[i].nrefs; k++) {
                if (l.v[i].refs[k] > i) {
                    abort();
                }
            }
        }
    }
    pathinfo_list_release(&l);
    return 0;
}

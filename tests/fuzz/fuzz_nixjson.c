/* fuzz_nixjson.c: `nix build --json` output, as the executor reads it. */
#include "crebuild/nixjson.h"
#include "crebuild/util.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = xstrndup((const char *)data, size);
    char *p = nixjson_out_path(text);

    if (p != NULL && p[0] != '/') {
        abort();
    }
    free(p);
    free(text);
    return 0;
}

/* fuzz_nar.c: the NAR reader on arbitrary bytes.  Accepted NARs must be
 * self-consistent: the reported size is the input size and the hash is
 * the input's SHA-256. */
#include "crebuild/hash.h"
#include "crebuild/nar.h"
#include "crebuild/util.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int
count_dir(void *ctx, const char *path)
{
    (void)path;
    ++*(size_t *)ctx;
    return 0;
}

static int
count_reg(void *ctx, const char *path, int x, uint64_t size)
{
    (void)path;
    (void)x;
    (void)size;
    ++*(size_t *)ctx;
    return 0;
}

static int
count_link(void *ctx, const char *path, const char *target)
{
    (void)path;
    (void)target;
    ++*(size_t *)ctx;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct nar_visitor v = {
        count_dir, count_reg, NULL, count_link};
    struct nar_result res;
    size_t nodes = 0;

    if (nar_parse_buf(data, size, &v, &nodes, &res) == 0) {
        unsigned char h[HASH_SHA256_LEN];
        hash_sha256(data, size, h);
        if (res.size != size || memcmp(h, res.sha256, sizeof(h)) != 0 ||
            nodes == 0 || size % 8 != 0) {
            abort();
        }
    } else if (res.error == NULL) {
        abort(); /* every rejection says why */
    }
    return 0;
}

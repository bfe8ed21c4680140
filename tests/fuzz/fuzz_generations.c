/* fuzz_generations.c: the listing printed by the generations script (one
 * line per generation: id, date, current, version, kernel, revision,
 * specialisations), then the previous-generation choice and both output
 * formats. */
#include "crebuild/generations.h"
#include "crebuild/log.h"
#include "crebuild/util.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static FILE *devnull;
    struct generation_list l;
    char *text;

    if (devnull == NULL) {
        devnull = fopen("/dev/null", "w");
        log_set_stream(devnull);
    }
    text = xstrndup((const char *)data, size);
    if (generations_parse(text, &l) == 0) {
        const struct generation *prev = generations_previous(&l);
        for (size_t i = 1; i < l.n; i++) {
            if (l.g[i - 1].id < l.g[i].id) {
                abort(); /* sorted, descending */
            }
        }
        if (prev != NULL && prev->current) {
            abort();
        }
        generations_print_table(&l, devnull);
        generations_print_json(&l, devnull);
        generations_release(&l);
        generations_release(&l);
    } else if (l.g != NULL || l.n != 0) {
        abort();
    }
    free(text);
    return 0;
}

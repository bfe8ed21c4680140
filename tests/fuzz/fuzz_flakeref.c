/* fuzz_flakeref.c: splitting "<flake>#<name>" and building the
 * installable.  An accepted name can never close the quoted attribute. */
#include "crebuild/flakeref.h"
#include "crebuild/util.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct flakeref f;
    char *ref, *err = NULL;

    ref = xstrndup((const char *)data, size); /* stops at a NUL */
    if (flakeref_parse(ref, &f, &err) == 0) {
        const char *hash = strrchr(ref, '#');
        if (err != NULL || f.flake == NULL) {
            abort();
        }
        if (hash == NULL) {
            if (strcmp(f.flake, ref) != 0 || f.name != NULL) {
                abort();
            }
        } else {
            size_t fl = (size_t)(hash - ref);
            if (strlen(f.flake) != fl || memcmp(f.flake, ref, fl) != 0) {
                abort();
            }
            if ((f.name == NULL) != (hash[1] == '\0') ||
                (f.name != NULL && strcmp(f.name, hash + 1) != 0)) {
                abort();
            }
        }
        if (f.name != NULL) {
            char *inst;
            const char *q;
            if (strpbrk(f.name, "\"\\") != NULL) {
                abort();
            }
            for (q = f.name; *q; q++) {
                if ((unsigned char)*q < 0x20 || *q == 0x7f) {
                    abort();
                }
            }
            inst = flakeref_installable(
                f.flake, f.name, ".config.system.build.toplevel");
            /* exactly the two quotes around the name after the flake */
            q = inst + strlen(f.flake);
            if (strncmp(q, "#nixosConfigurations.\"", 22) != 0 ||
                strchr(q + 22, '"') != q + 22 + strlen(f.name) ||
                strcmp(q + 22 + strlen(f.name),
                       "\".config.system.build.toplevel") != 0) {
                abort();
            }
            free(inst);
        }
        flakeref_release(&f);
        flakeref_release(&f);
    } else {
        if (err == NULL || f.flake != NULL || f.name != NULL) {
            abort();
        }
        free(err);
    }
    free(ref);
    return 0;
}

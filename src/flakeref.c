/* flakeref.c: flake reference splitting. */
#include "crebuild/flakeref.h"
#include "crebuild/util.h"

#include <stdlib.h>
#include <string.h>

int
flakeref_parse(const char *ref, struct flakeref *out, char **err)
{
    const char *hash = strrchr(ref, '#');

    out->flake = NULL;
    out->name = NULL;
    *err = NULL;
    if (hash == NULL) {
        out->flake = xstrdup(ref);
        return 0;
    }
    if (strpbrk(hash + 1, "\"\\") != NULL) {
        *err = xasprintf("invalid flake attribute '%s': must not contain "
                         "quotes or backslashes",
                         hash + 1);
        return -1;
    }
    for (const char *p = hash + 1; *p; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f) {
            *err = xstrdup("invalid flake attribute: control character");
            return -1;
        }
    }
    out->flake = xstrndup(ref, (size_t)(hash - ref));
    out->name = hash[1] ? xstrdup(hash + 1) : NULL;
    return 0;
}

void
flakeref_release(struct flakeref *f)
{
    free(f->flake);
    free(f->name);
    f->flake = NULL;
    f->name = NULL;
}

char *
flakeref_installable(const char *flake, const char *name, const char *suffix)
{
    return xasprintf(
        "%s#nixosConfigurations.\"%s\"%s", flake, name, suffix ? suffix : "");
}

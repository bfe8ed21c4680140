/* fuzz_sshopts.c: NIX_SSHOPTS and host strings.  The input is
 * "<host>\0<NIX_SSHOPTS>" (no NUL: host only).  An accepted target has a
 * host and user that cannot be read as options or break out of a quote. */
#include "crebuild/sshopts.h"
#include "crebuild/strvec.h"
#include "crebuild/util.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
no_bad_chars(const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c == 0x7f) {
            abort();
        }
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ssh_target t;
    struct strvec warnings = STRVEC_INIT, notes = STRVEC_INIT;
    struct strvec words = STRVEC_INIT;
    char *buf, *host, *opts = NULL, *err = NULL;
    size_t hl;

    if (size > 8192) {
        return 0;
    }
    buf = xmalloc(size + 1);
    memcpy(buf, data, size);
    buf[size] = '\0';
    host = buf;
    hl = strlen(host);
    if (hl < size) {
        opts = buf + hl + 1; /* up to the next NUL, if any */
    }

    /* The shlex splitter alone. */
    if (opts != NULL) {
        if (sshopts_split(opts, &words, &err) != 0) {
            if (err == NULL) {
                abort();
            }
            free(err);
            err = NULL;
        }
        strvec_clear(&words);
    }

    ssh_target_init(&t);
    if (sshopts_target(&t, host, opts, &warnings, &notes, &err) == 0) {
        char *name;
        if (err != NULL || t.host == NULL || t.raw == NULL) {
            abort();
        }
        if (t.raw[0] == '-' || strcmp(t.raw, host) != 0) {
            abort();
        }
        for (const char *q = t.raw; *q; q++) {
            unsigned char c = (unsigned char)*q;
            if (c <= 0x20 || c == 0x7f || c == '\'' || c == '"' ||
                c == '`') {
                abort();
            }
        }
        no_bad_chars(t.host);
        /* (NIX_SSHOPTS is the caller's own: -o User=... is taken as is) */
        if (t.user != NULL && opts == NULL) {
            no_bad_chars(t.user);
        }
        if (t.port < 0 || t.port > 65535) {
            abort();
        }
        name = ssh_target_name(&t);
        free(name);
        ssh_target_release(&t);
    } else if (err == NULL) {
        abort();
    }
    ssh_target_release(&t); /* idempotent */
    free(err);
    strvec_clear(&warnings);
    strvec_clear(&notes);
    free(buf);
    return 0;
}

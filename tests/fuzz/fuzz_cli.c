/* fuzz_cli.c: the option parser on an arbitrary command line.  The input
 * is split at NUL bytes into argv[1..]; argv[0] is "crebuild".  Whatever
 * it accepts must satisfy what the rest of crebuild relies on: profile
 * and specialisation names cannot leave their directory, host strings
 * cannot be read as options. */
#include "crebuild/cli.h"
#include "crebuild/log.h"
#include "crebuild/strvec.h"
#include "crebuild/util.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_host(const char *h)
{
    const char *p = h;

    if (h == NULL || *h == '\0') {
        return;
    }
    if (strncmp(p, "ssh://", 6) == 0) {
        p += 6;
    } else if (strncmp(p, "ssh-ng://", 9) == 0) {
        p += 9;
    }
    if (*p == '-') {
        abort();
    }
    for (; *p; p++) {
        if ((unsigned char)*p <= ' ' || *p == 0x7f) {
            abort();
        }
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static FILE *devnull;
    struct strvec args = STRVEC_INIT;
    struct strvec warnings = STRVEC_INIT;
    struct cr_opts o;
    char *err = NULL;
    char *buf;
    size_t start = 0;

    if (devnull == NULL) {
        devnull = fopen("/dev/null", "w");
        log_set_stream(devnull);
    }
    if (size > 4096) {
        return 0;
    }
    buf = xmalloc(size + 1);
    memcpy(buf, data, size);
    buf[size] = '\0';
    strvec_push(&args, "crebuild");
    for (size_t i = 0; i <= size; i++) {
        if (i == size || buf[i] == '\0') {
            if (i > start || i < size) {
                strvec_push(&args, buf + start);
            }
            start = i + 1;
        }
    }
    cli_opts_init(&o);
    if (cli_parse((int)args.n, args.v, &o, &warnings, &err) == 0) {
        char *profile = cli_profile_path(&o);
        if (err != NULL || strstr(profile, "/..") != NULL ||
            strncmp(profile, "/nix/var/nix/profiles/", 22) != 0 ||
            strchr(profile + 22, '/') !=
                strrchr(profile + 22, '/')) { /* at most system-profiles/ */
            abort();
        }
        if (o.profile_name != NULL &&
            (o.profile_name[0] == '.' || o.profile_name[0] == '-' ||
             strchr(o.profile_name, '/') != NULL)) {
            abort();
        }
        if (o.specialisation != NULL &&
            (strchr(o.specialisation, '/') != NULL ||
             o.specialisation[0] == '-' ||
             strcmp(o.specialisation, ".") == 0 ||
             strcmp(o.specialisation, "..") == 0)) {
            abort();
        }
        if (!o.show_help && !o.show_version &&
            (o.action == CR_ACT_NONE ||
             strcmp(cli_action_name(o.action), "none") == 0)) {
            abort();
        }
        check_host(o.target_host);
        check_host(o.build_host);
        free(profile);
    } else if (err == NULL || strchr(err, '\n') != NULL) {
        abort(); /* a usage error is one line */
    }
    free(err);
    cli_opts_release(&o);
    cli_opts_release(&o); /* twice is allowed */
    strvec_clear(&warnings);
    strvec_clear(&args);
    free(buf);
    return 0;
}

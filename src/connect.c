/* connect.c: options and environment to a connected remote host. */
#include "crebuild/connect.h"
#include "crebuild/log.h"
#include "crebuild/remote.h"
#include "crebuild/sshopts.h"
#include "crebuild/util.h"

#include <stdlib.h>
#include <string.h>

/* The same NIX_SSHOPTS is read for every login (build host, target, the
 * fresh login that confirms a magic-rollback deploy): each warning once. */
static void
warn_once(const char *msg)
{
    static struct strvec seen = STRVEC_INIT;

    for (size_t i = 0; i < seen.n; i++) {
        if (strcmp(seen.v[i], msg) == 0) {
            return;
        }
    }
    log_warn("%s", msg);
    if (seen.n < 64) {
        strvec_push(&seen, msg);
    }
}

/* hoststr with NIX_SSHOPTS into t, and NIX_SUDOOPTS into sudo_opts; 0, or
 * -1 after a one-line error.  Warnings are shown only when show. */
static int
read_args(const char *hoststr,
          struct ssh_target *t,
          struct strvec *sudo_opts,
          int show)
{
    struct strvec warnings = STRVEC_INIT, notes = STRVEC_INIT;
    const char *sudo_env = getenv("NIX_SUDOOPTS");
    char *err = NULL;
    int rc = 0;

    if (sshopts_target(
            t, hoststr, getenv("NIX_SSHOPTS"), &warnings, &notes, &err) != 0) {
        log_error("%s", err);
        rc = -1;
    } else if (sudo_env != NULL &&
               sshopts_split(sudo_env, sudo_opts, &err) != 0) {
        log_error("NIX_SUDOOPTS: %s", err);
        rc = -1;
    }
    for (size_t i = 0; show && rc == 0 && i < warnings.n; i++) {
        warn_once(warnings.v[i]);
    }
    for (size_t i = 0; show && rc == 0 && i < notes.n; i++) {
        log_debug("%s", notes.v[i]);
    }
    free(err);
    strvec_clear(&warnings);
    strvec_clear(&notes);
    return rc;
}

int
remote_check_args(const char *hoststr)
{
    struct ssh_target t;
    struct strvec sudo_opts = STRVEC_INIT;
    int rc;

    ssh_target_init(&t);
    rc = read_args(hoststr, &t, &sudo_opts, 0);
    ssh_target_release(&t);
    strvec_clear(&sudo_opts);
    return rc;
}

struct host *
remote_connect(const struct cr_opts *o,
               const char *hoststr,
               const char *password)
{
    struct ssh_target t;
    struct strvec sudo_opts = STRVEC_INIT;
    struct remote_config cfg = {0};
    struct host *h = NULL;
    char *err = NULL;

    ssh_target_init(&t);
    if (read_args(hoststr, &t, &sudo_opts, 1) != 0) {
        goto out;
    }
    cfg.target = &t;
    cfg.elev.kind = o->elevate;
    cfg.elev.sudo_opts = &sudo_opts;
    cfg.elev.password = password;
    cfg.quiet = o->quiet > 0;
    h = host_remote_new(&cfg, &err);
    if (h == NULL) {
        log_error("%s", err ? err : "cannot connect");
        goto out;
    }
    if (password != NULL && host_remote_check_sudo(h) != 0) {
        host_free(h);
        h = NULL;
    }
out:
    free(err);
    ssh_target_release(&t);
    strvec_clear(&sudo_opts);
    return h;
}

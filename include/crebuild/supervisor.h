/* supervisor.h: magic rollback.  Activation on the target runs under a
 * supervisor process there that outlives the SSH connection (a transient
 * systemd unit where systemd runs, a detached session otherwise).  It
 * activates the new configuration, then waits for crebuild to confirm over
 * a *fresh* login; without a confirmation in time (deployer locked out,
 * network broken) or when told to (failed health check), it restores the
 * previous generation and re-activates it. */
#ifndef CREBUILD_SUPERVISOR_H
#define CREBUILD_SUPERVISOR_H

#include "crebuild/host.h"
#include "crebuild/strvec.h"

/* Exit status of a deploy that was rolled back (documented in the man
 * page). */
#define CR_EXIT_ROLLED_BACK 4

struct supervise_req {
    const char *stc;      /* .../bin/switch-to-configuration to run */
    const char *action;   /* "switch" or "test" */
    const char *profile;  /* the system profile */
    const char *prev_gen; /* switch: generation number to restore */
    unsigned timeout;     /* seconds to wait for the confirmation */
    int install_bootloader;
    int use_systemd; /* supervise in a transient systemd unit */
};

struct supervise_hooks {
    /* A fresh login to the target (new SSH session); NULL if impossible. */
    struct host *(*reconnect)(void *arg);
    /* Health checks against the freshly logged-in target: 0 healthy,
     * else *why says which check failed and its last answer. */
    int (*health)(void *arg, struct host *fresh, char **why);
    /* Report the phase change ("confirm", "health", "rollback"). */
    void (*phase)(void *arg, const char *phase, int start, int ok);
    void *arg;
};

/* The script's argv for one mode: start, run, follow, status, confirm,
 * abort, cleanup.  Exposed for tests. */
void supervisor_argv(const char *mode,
                     const char *state,
                     const struct supervise_req *r,
                     struct strvec *argv);

/* Run the whole supervised activation on *target.  *target may be
 * replaced by a new connection (the old one is left to the caller, in
 * *spare, to free).  Returns the exit status for the run: 0 confirmed,
 * switch-to-configuration's status when activation failed (no rollback,
 * as nixos-rebuild), CR_EXIT_ROLLED_BACK when the previous configuration
 * was restored, 1 on other errors, 130 when interrupted. */
int supervise_activate(struct host **target,
                       struct host **spare,
                       const struct supervise_req *r,
                       const struct supervise_hooks *hooks);

#endif

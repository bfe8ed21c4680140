/* exec.h: the executor.  Runs a plan's steps on the hosts, fills in the
 * placeholders as values become known, and turns failures into one-line
 * errors and nixos-rebuild's exit statuses. */
#ifndef CREBUILD_EXEC_H
#define CREBUILD_EXEC_H

#include "crebuild/cli.h"
#include "crebuild/host.h"
#include "crebuild/plan.h"

#include <pthread.h>
#include <stdatomic.h>

struct copy_session;
struct events;

struct exec_ctx {
    const struct cr_opts *o;
    struct host *hosts[PH_COUNT]; /* NULL for hosts the plan does not use */
    char *vars[VAR_COUNT];
    /* Serve sessions kept open (their temp GC roots protect what was just
     * copied) until the plan has finished. */
    struct copy_session *keep[8];
    size_t n_keep;
    struct events *events; /* may be NULL */
    /* A fresh login to a remote host (magic rollback); NULL if none. */
    struct host *(*reconnect)(void *arg, enum plan_host h);
    void *reconnect_arg;
    /* Hosts replaced after a dropped connection, freed at release. */
    struct host *spare[4];
    size_t n_spare;
    int systemd[PH_COUNT]; /* systemd runs there: 1, 0, -1 unknown */
    /* The probe found the profile at its newest generation, which already
     * is @toplevel@: nix-env --set would change nothing. */
    int profile_is_top[PH_COUNT];
    /* The probe step after a copy, started with the copy (probe_early). */
    struct stream *early_probe;
    const struct step *early_probe_step;
    int early_probe_local; /* that copy came from this machine */
    /* exec_plan's bookkeeping (exit status so far, what has happened). */
    int ret, announced, profile_set, activated;
    /* exec_start: the leading local steps, run in a thread meanwhile. */
    pthread_t early_thread;
    const struct plan *early_plan;
    size_t early_n;
    int early_active;
    /* exec_start: the closure of the first copy's root (early_closure_of)
     * on this machine, listed while the login was going on. */
    struct strvec early_closure;
    char *early_closure_of;
    atomic_int cancelled; /* exec_cancel: failures are not reported */
};

void exec_init(struct exec_ctx *x, const struct cr_opts *o);
void exec_release(struct exec_ctx *x);

/* Run every step in order.  Returns the process exit status: 0, the
 * failing command's status, 1 for other errors, 130/143 when
 * interrupted. */
int exec_plan(struct exec_ctx *x, const struct plan *p);
/* Start the plan's leading local steps (evaluation, build) in a thread, so
 * that they run while the caller connects to the remote hosts; exec_plan
 * then waits for them and goes on.  Returns 1 when started.  The caller
 * must not prompt on the terminal meanwhile. */
int exec_start(struct exec_ctx *x, const struct plan *p);
/* The connection failed: stop what exec_start started (silently). */
void exec_cancel(struct exec_ctx *x);

/* Replace @toplevel@, @drv@, @tmp@, @filepath@ in s.  Caller frees. */
char *exec_expand(const struct exec_ctx *x, const char *s);

#endif

/* host_local.c: the local machine as a struct host (runs through proc). */
#include "crebuild/host.h"
#include "crebuild/log.h"
#include "crebuild/proc.h"
#include "crebuild/shquote.h"
#include "crebuild/util.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct local_host {
    struct host base;
    struct strvec elevate_prefix;
};

/* Build the environment for cmd->env: PATH plus the requested variables
 * ("NAME" preserves ours if set, "NAME=VALUE" sets).  Entries go to envv
 * as "NAME=VALUE" strings. */
static void
build_env(const struct strvec *want, struct strvec *envv)
{
    const char *path = getenv("PATH");

    strvec_pushf(envv, "PATH=%s", path ? path : "/usr/bin:/bin");
    for (size_t i = 0; i < want->n; i++) {
        const char *e = want->v[i];
        if (strchr(e, '=') != NULL) {
            strvec_push(envv, e);
        } else if (getenv(e) != NULL) {
            strvec_pushf(envv, "%s=%s", e, getenv(e));
        }
    }
}

static void
prepare(struct local_host *lh,
        const struct host_cmd *cmd,
        struct strvec *argv,
        struct strvec *envv)
{
    int elevate = cmd->elevate && !lh->base.is_root && lh->elevate_prefix.n > 0;

    if (cmd->env != NULL) {
        build_env(cmd->env, envv);
    }
    if (elevate) {
        strvec_pusharr(argv, &lh->elevate_prefix);
        if (cmd->env != NULL) {
            strvec_pushl(argv, "env", "-i", (const char *)NULL);
            strvec_pusharr(argv, envv);
            strvec_clear(envv);
        }
    }
    strvec_pusharr(argv, cmd->argv);
    if (log_get_level() >= LOG_DEBUG) {
        char *s = shquote_join(argv);
        log_debug("running: %s", s);
        free(s);
    }
}

/* The command as a proc_spec: argv and envv receive the strings it
 * points to (the caller clears them). */
static void
to_spec(struct local_host *lh,
        const struct host_cmd *cmd,
        struct strvec *argv,
        struct strvec *envv,
        struct proc_spec *spec)
{
    prepare(lh, cmd, argv, envv);
    memset(spec, 0, sizeof(*spec));
    spec->argv = argv;
    spec->envp = envv->n ? envv->v : NULL;
    spec->input = cmd->input;
    spec->input_len = cmd->input_len;
    spec->tty = cmd->tty_input;
    spec->out = cmd->out;
    spec->out_fd = cmd->out_to_stdout ? STDOUT_FILENO : STDERR_FILENO;
    spec->err = cmd->err;
    spec->err_fd = STDERR_FILENO;
}

static int
local_run(struct host *h, const struct host_cmd *cmd, int *status)
{
    struct strvec argv = STRVEC_INIT, envv = STRVEC_INIT;
    struct proc_spec spec;
    int rc;

    to_spec((struct local_host *)h, cmd, &argv, &envv, &spec);
    rc = proc_run(&spec, status);
    strvec_clear(&argv);
    strvec_clear(&envv);
    return rc;
}

/* stdin/stdout become the stream; proc_open_stream ignores the capture
 * and input fields (stderr goes to its own bounded file). */
static int
local_open_stream(struct host *h,
                  const struct host_cmd *cmd,
                  struct stream **out)
{
    struct strvec argv = STRVEC_INIT, envv = STRVEC_INIT;
    struct proc_spec spec;
    int rc;

    to_spec((struct local_host *)h, cmd, &argv, &envv, &spec);
    rc = proc_open_stream(&spec, out);
    strvec_clear(&argv);
    strvec_clear(&envv);
    return rc;
}

static void
local_free(struct host *h)
{
    struct local_host *lh = (struct local_host *)h;

    strvec_clear(&lh->elevate_prefix);
    free(lh->base.name);
    free(lh);
}

static const struct host_ops local_ops = {
    .run = local_run,
    .open_stream = local_open_stream,
    .free = local_free,
};

struct host *
host_local_new(const struct strvec *elevate_prefix)
{
    struct local_host *lh = xcalloc(1, sizeof(*lh));

    lh->base.ops = &local_ops;
    lh->base.name = xstrdup("localhost");
    lh->base.is_local = 1;
    lh->base.is_root = geteuid() == 0;
    strvec_init(&lh->elevate_prefix);
    if (elevate_prefix != NULL) {
        strvec_pusharr(&lh->elevate_prefix, elevate_prefix);
    }
    return &lh->base;
}

void
host_free(struct host *h)
{
    if (h != NULL) {
        h->ops->free(h);
    }
}

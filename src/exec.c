/* exec.c: run a plan (see exec.h). */
#include "crebuild/exec.h"
#include "crebuild/pathinfo.h"
#include "crebuild/copy.h"
#include "crebuild/diff.h"
#include "crebuild/events.h"
#include "crebuild/health.h"
#include "crebuild/generations.h"
#include "crebuild/log.h"
#include "crebuild/nixjson.h"
#include "crebuild/shquote.h"
#include "crebuild/supervisor.h"
#include "crebuild/util.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <glob.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "crebuild/proc.h"

static const char *const placeholders[VAR_COUNT] = {
    NULL, "@toplevel@", "@drv@", "@tmp@", "@filepath@", NULL, NULL};

void
exec_init(struct exec_ctx *x, const struct cr_opts *o)
{
    memset(x, 0, sizeof(*x));
    x->o = o;
    x->profile_set = -1;
    for (int i = 0; i < PH_COUNT; i++) {
        x->systemd[i] = -1;
    }
    strvec_init(&x->early_closure);
}

void
exec_release(struct exec_ctx *x)
{
    for (size_t i = 0; i < x->n_keep; i++) {
        copy_session_release(x->keep[i]);
    }
    x->n_keep = 0;
    if (x->early_probe != NULL) {
        int status = -1;

        (void)x->early_probe->ops->close(x->early_probe, &status, NULL);
        x->early_probe = NULL;
    }
    for (size_t i = 0; i < x->n_spare; i++) {
        host_free(x->spare[i]);
    }
    x->n_spare = 0;
    for (int i = 0; i < VAR_COUNT; i++) {
        free(x->vars[i]);
        x->vars[i] = NULL;
    }
    strvec_clear(&x->early_closure);
    free(x->early_closure_of);
    x->early_closure_of = NULL;
}

char *
exec_expand(const struct exec_ctx *x, const char *s)
{
    struct strbuf sb = STRBUF_INIT;

    while (*s) {
        int matched = 0;
        if (*s == '@') {
            for (int v = 1; v < VAR_COUNT; v++) {
                const char *ph = placeholders[v];
                size_t len = ph ? strlen(ph) : 0;
                if (ph && strncmp(s, ph, len) == 0 && x->vars[v]) {
                    strbuf_addstr(&sb, x->vars[v]);
                    s += len;
                    matched = 1;
                    break;
                }
            }
        }
        if (!matched) {
            strbuf_addch(&sb, *s++);
        }
    }
    return strbuf_detach(&sb);
}

static void
expand_argv(const struct exec_ctx *x,
            const struct strvec *in,
            struct strvec *out)
{
    for (size_t i = 0; i < in->n; i++) {
        char *w = exec_expand(x, in->v[i]);
        strvec_push(out, w);
        free(w);
    }
}

/* Last non-empty line of text, trimmed. */
static char *
last_line(const char *text)
{
    const char *end = text + strlen(text), *start;

    while (end > text && (end[-1] == '\n' || end[-1] == ' ')) {
        end--;
    }
    start = end;
    while (start > text && start[-1] != '\n') {
        start--;
    }
    return end > start ? xstrndup(start, (size_t)(end - start)) : NULL;
}

static int
is_store_path(const char *p)
{
    return p != NULL && strncmp(p, "/nix/store/", 11) == 0 &&
           strchr(p, '\n') == NULL;
}

static int
fail_status(int status)
{
    return status > 0 && status < 256 ? status : 1;
}

static struct host *
host_of(const struct exec_ctx *x, enum plan_host h)
{
    return x->hosts[h];
}

static int
step_run(struct exec_ctx *x, const struct step *s)
{
    struct host *h = host_of(x, s->host);
    struct strvec argv = STRVEC_INIT;
    struct strbuf out = STRBUF_INIT;
    struct host_cmd cmd = {0};
    int status = -1, rc, ret = 0;

    if (s->sets_profile && x->profile_is_top[s->host]) {
        log_debug("%s: %s is already at generation %s, the newest, which is "
                  "this system: nix-env --set would change nothing",
                  h->name,
                  s->argv.n > 2 ? s->argv.v[2] : "the profile",
                  x->vars[VAR_PREVGEN]);
        return 0;
    }
    expand_argv(x, &s->argv, &argv);
    out.max = 64 << 20;
    cmd.argv = &argv;
    cmd.env = s->use_env ? &s->env : NULL;
    cmd.elevate = s->elevate;
    cmd.out = s->capture != CAP_NONE ? &out : NULL;
    cmd.out_to_stdout = s->out_to_stdout;
    cmd.tty_input = s->interactive;
    rc = host_run(h, &cmd, &status);
    if (rc != 0) {
        ret = rc == CR_EINTR ? 130 : 1;
        /* CR_ECHILD and CR_ESSH were reported where they happened. */
        if (rc != CR_ECHILD && rc != CR_ESSH) {
            log_error("cannot run '%s' on %s: %s",
                      argv.v[0],
                      h->name,
                      cr_strerror(rc));
        }
        goto out;
    }
    if (status != 0 && cr_interrupted) {
        /* Interrupted with us (its own message, if any, is shown). */
        ret = 130;
        goto out;
    }
    if (status != 0 && atomic_load(&x->cancelled)) {
        ret = 1; /* exec_cancel: the reason was reported there */
        goto out;
    }
    if (status != 0) {
        if (!s->check) {
            log_debug(
                "'%s' failed with status %d (ignored)", argv.v[0], status);
            goto out;
        }
        if (s->fail_msg != NULL) {
            char *m = exec_expand(x, s->fail_msg);
            log_error("%s", m);
            free(m);
            ret = 1;
        } else {
            char *q = shquote_join(&argv);
            log_error("command '%s' on %s returned non-zero exit status %d",
                      q,
                      h->name,
                      status);
            free(q);
            ret = fail_status(status);
        }
        goto out;
    }
    if (s->capture != CAP_NONE && s->var != VAR_NONE) {
        char *v = NULL;
        if (s->capture == CAP_JSON_OUT) {
            v = nixjson_out_path(out.buf);
        } else if (s->capture == CAP_LINE) {
            v = last_line(out.buf);
        } else {
            v = xstrdup(out.buf);
        }
        if (v == NULL || ((s->var == VAR_TOPLEVEL || s->var == VAR_DRV) &&
                          !is_store_path(v))) {
            log_error("unexpected output from '%s' on %s: '%.200s'",
                      argv.v[0],
                      h->name,
                      out.buf);
            free(v);
            ret = 1;
            goto out;
        }
        free(x->vars[s->var]);
        x->vars[s->var] = v;
    }
out:
    strvec_clear(&argv);
    strbuf_release(&out);
    return ret;
}

/* Is host (as the user wrote it) this very machine from everywhere?
 * Then "directly from the build host" would mean the build host itself. */
static int
is_loopback(const char *host)
{
    const char *at = strrchr(host, '@');
    const char *h = at ? at + 1 : host;

    return strncmp(h, "127.", 4) == 0 || strcmp(h, "localhost") == 0 ||
           strcmp(h, "[::1]") == 0 || strcmp(h, "::1") == 0;
}

static int
path_valid_on(struct host *h, const char *path)
{
    struct strvec argv = STRVEC_INIT;
    struct strbuf err = STRBUF_INIT;
    struct host_cmd cmd = {0};
    int status = -1;

    strvec_pushl(
        &argv, "nix-store", "--check-validity", path, (const char *)NULL);
    cmd.argv = &argv;
    cmd.err = &err;
    if (host_run(h, &cmd, &status) != 0) {
        status = -1;
    }
    strvec_clear(&argv);
    strbuf_release(&err);
    return status == 0;
}

/* Build host to target directly, as nixos-rebuild does, when the build host
 * can log in to the target by itself (its own keys, no prompts); crebuild
 * checks over its own session that the path arrived.  0 when it did. */
static int
copy_direct(struct exec_ctx *x, const struct step *s)
{
    struct host *b = host_of(x, s->from), *t = host_of(x, s->to);
    const char *target = x->o->target_host;
    struct strvec argv = STRVEC_INIT, env = STRVEC_INIT;
    struct strbuf err = STRBUF_INIT;
    struct host_cmd cmd = {0};
    int status = -1, ok = 0;

    if (strncmp(target, "ssh://", 6) == 0) {
        target += 6;
    } else if (strncmp(target, "ssh-ng://", 9) == 0) {
        target += 9;
    }
    if (is_loopback(target)) {
        return -1;
    }
    strvec_push(&argv, "nix-copy-closure");
    if (s->substitute) {
        strvec_push(&argv, "-s");
    }
    strvec_pushl(&argv, "--to", target, x->vars[s->var], (const char *)NULL);
    strvec_push(&env, "NIX_SSHOPTS=-o BatchMode=yes -o ConnectTimeout=5");
    cmd.argv = &argv;
    cmd.env = &env;
    err.max = 64 << 10;
    cmd.err = &err;
    log_info("copying system from %s to %s directly...", b->name, t->name);
    if (host_run(b, &cmd, &status) == 0 && status == 0 &&
        path_valid_on(t, x->vars[s->var])) {
        ok = 1;
    } else {
        strbuf_rtrim(&err);
        log_info("%s cannot copy to %s by itself; relaying through this "
                 "machine",
                 b->name,
                 t->name);
        log_debug("direct copy: %s", err.buf);
    }
    strvec_clear(&argv);
    strvec_clear(&env);
    strbuf_release(&err);
    return ok ? 0 : -1;
}

static int
step_copy(struct exec_ctx *x, const struct step *s)
{
    struct strvec roots = STRVEC_INIT;
    struct copy_opts co;
    struct copy_stats st;
    struct copy_session *keep = NULL;
    struct host *dst = host_of(x, s->to);
    int rc;

    if (s->from == PH_BUILD && s->to == PH_TARGET && copy_direct(x, s) == 0) {
        return 0;
    }
    copy_opts_init(&co);
    if (s->from == PH_LOCAL && x->early_closure_of != NULL &&
        strcmp(x->early_closure_of, x->vars[s->var]) == 0) {
        co.closure = &x->early_closure;
    }
    co.substitute = s->substitute;
    co.elevate = x->o->elevate != CR_ELEVATE_NONE;
    co.quiet = x->o->quiet > 0 || x->o->no_progress;
    memset(&st, 0, sizeof(st));
    strvec_push(&roots, x->vars[s->var]);
    log_info("copying %s to %s...",
             s->var == VAR_DRV ? "derivation" : "system",
             dst->name);
    rc = copy_closure(host_of(x, s->from),
                      dst,
                      &roots,
                      &co,
                      &st,
                      x->n_keep < ARRAY_SIZE(x->keep) ? &keep : NULL);
    strvec_clear(&roots);
    if (keep != NULL) {
        x->keep[x->n_keep++] = keep;
    }
    events_copy_stats(x->events,
                      dst->name,
                      st.paths_total,
                      st.paths_present,
                      st.paths_copied,
                      st.bytes,
                      st.seconds);
    if (rc != 0) {
        return rc == CR_EINTR ? 130 : 1;
    }
    return 0;
}

static int
has_systemd(struct exec_ctx *x, struct host *h)
{
    struct strvec argv = STRVEC_INIT;
    struct host_cmd cmd = {0};
    int status = -1;

    if (getenv("NIXOS_REBUILD_NO_SYSTEMD_RUN") != NULL ||
        getenv("NIXOS_SWITCH_USE_DIRTY_ENV") != NULL) {
        return 0;
    }
    for (int i = 0; i < PH_COUNT; i++) {
        if (x->hosts[i] == h && x->systemd[i] >= 0) {
            return x->systemd[i]; /* known from the probe */
        }
    }
    strvec_pushl(
        &argv, "test", "-d", "/run/systemd/system", (const char *)NULL);
    cmd.argv = &argv;
    if (host_run(h, &cmd, &status) != 0) {
        status = 1;
    }
    strvec_clear(&argv);
    return status == 0;
}

struct sv_arg {
    struct exec_ctx *x;
    enum plan_host host;
};

static struct host *
sv_reconnect(void *arg)
{
    struct sv_arg *a = arg;

    return a->x->reconnect ? a->x->reconnect(a->x->reconnect_arg, a->host)
                           : NULL;
}

static int
sv_health(void *arg, struct host *fresh, char **why)
{
    struct sv_arg *a = arg;
    const struct cr_opts *o = a->x->o;
    struct health_result hr;
    int rc;

    rc = health_run_all(fresh,
                        o->health_urls,
                        o->n_health_urls,
                        o->health_cmds,
                        o->n_health_cmds,
                        o->health_timeout,
                        a->x->events,
                        &hr);
    if (rc != 0 && rc != CR_EINTR) {
        *why = xasprintf("health check failed: %s: %s",
                         hr.failed_check ? hr.failed_check : "?",
                         hr.last_answer ? hr.last_answer : "no answer");
    } else if (rc == CR_EINTR) {
        *why = xstrdup("interrupted during the health checks");
    }
    health_result_release(&hr);
    return rc;
}

static void
sv_phase(void *arg, const char *phase, int start, int ok)
{
    struct sv_arg *a = arg;
    struct host *h = a->x->hosts[a->host];
    static struct timespec t0[3];
    int i = strcmp(phase, "confirm") == 0  ? 0
            : strcmp(phase, "health") == 0 ? 1
                                           : 2;
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    if (start) {
        t0[i] = now;
        events_phase_start(a->x->events, phase, h->name);
        if (i == 2) {
            events_rollback(a->x->events, h->name, "rolling back");
        }
    } else {
        double sec = (double)(now.tv_sec - t0[i].tv_sec) +
                     (double)(now.tv_nsec - t0[i].tv_nsec) / 1e9;
        events_phase_end(a->x->events, phase, h->name, ok, sec);
    }
}

static int
has_checks(const struct cr_opts *o)
{
    return o->n_health_urls > 0 || o->n_health_cmds > 0;
}

static int
step_activate_supervised(struct exec_ctx *x, const struct step *s)
{
    struct supervise_req r;
    struct supervise_hooks hk;
    struct sv_arg arg = {x, s->host};
    struct host *spare = NULL;
    char *stc = exec_expand(x, s->argv.v[0]);
    char *profile = cli_profile_path(x->o);
    int ret;

    memset(&r, 0, sizeof(r));
    memset(&hk, 0, sizeof(hk));
    r.stc = stc;
    r.action = s->stc_action;
    r.profile = profile;
    r.prev_gen = x->vars[VAR_PREVGEN];
    /* The supervisor waits for the health checks too. */
    r.timeout =
        s->confirm_timeout + (has_checks(x->o) ? x->o->health_timeout + 15 : 0);
    r.install_bootloader = s->install_bootloader;
    r.use_systemd = has_systemd(x, x->hosts[s->host]);
    hk.reconnect = sv_reconnect;
    hk.health = has_checks(x->o) ? sv_health : NULL;
    hk.phase = sv_phase;
    hk.arg = &arg;
    ret = supervise_activate(&x->hosts[s->host], &spare, &r, &hk);
    if (spare != NULL && x->n_spare < ARRAY_SIZE(x->spare)) {
        x->spare[x->n_spare++] = spare;
    }
    free(stc);
    free(profile);
    return ret;
}

/* Parse "system-3-link" (profile's base name "system") into "3". */
static char *
generation_number(const char *profile, const char *link)
{
    const char *base = strrchr(profile, '/');
    size_t blen;

    base = base ? base + 1 : profile;
    blen = strlen(base);
    if (strncmp(link, base, blen) == 0 && link[blen] == '-') {
        const char *num = link + blen + 1;
        size_t digits = strspn(num, "0123456789");
        if (digits > 0 && strcmp(num + digits, "-link") == 0) {
            return xstrndup(num, digits);
        }
    }
    return NULL;
}

/* The read-only checks before the target changes, in one command. */
static const char probe_script[] =
    "p=$1; top=$2; spec=$3\n"
    "if [ -n \"$p\" ] && g=$(readlink \"$p\" 2>/dev/null); then\n"
    "  echo \"gen=${g##*/}\"; n=0\n"
    "  for l in \"$p\"-*-link; do k=${l#\"$p\"-}; k=${k%-link}\n"
    "    case $k in ''|*[!0-9]*) continue;; esac\n"
    "    [ \"${#k}\" -lt 10 ] && [ \"$k\" -gt \"$n\" ] && n=$k; done\n"
    "  [ \"$n\" -gt 0 ] && echo \"last=$n $(readlink \"$p-$n-link\")\"; fi\n"
    "if [ -n \"$top\" ]; then\n"
    "  if [ -f \"$top/nixos-version\" ]; then echo version=1;\n"
    "  else echo version=0; fi; fi\n"
    "if [ -n \"$spec\" ]; then\n"
    "  if [ -f \"$spec\" ]; then echo spec=1; else echo spec=0; fi; fi\n"
    "if [ -d /run/systemd/system ]; then echo systemd=1;\n"
    "else echo systemd=0; fi\n";

/* The probe's command line; *spec gets the specialisation's
 * switch-to-configuration it looks for (NULL: none; caller frees). */
static void
probe_argv(const struct exec_ctx *x,
           const struct step *s,
           struct strvec *argv,
           char **spec)
{
    *spec = NULL;
    if (s->probe_spec != NULL) {
        *spec = xasprintf("%s/specialisation/%s/bin/switch-to-configuration",
                          x->vars[VAR_TOPLEVEL] ? x->vars[VAR_TOPLEVEL] : "",
                          s->probe_spec);
    }
    strvec_pushl(argv,
                 "/bin/sh",
                 "-c",
                 probe_script,
                 "probe",
                 s->profile ? s->profile : "",
                 s->probe_version ? x->vars[VAR_TOPLEVEL] : "",
                 *spec ? *spec : "",
                 (const char *)NULL);
}

/* The value of the probe's first line "KEY=value" (key includes the
 * '='), up to the end of the line; NULL when there is no such line. */
static const char *
probe_get(const char *out, const char *key, size_t *len)
{
    size_t k = strlen(key);

    for (const char *l = out; *l != '\0';) {
        size_t n = strcspn(l, "\n");

        if (n >= k && strncmp(l, key, k) == 0) {
            *len = n - k;
            return l + k;
        }
        l += n + (l[n] == '\n');
    }
    return NULL;
}

/* The probe's line KEY=value has exactly that value. */
static int
probe_is(const char *out, const char *key, const char *value)
{
    size_t len = 0;
    const char *v = probe_get(out, key, &len);

    return v != NULL && len == strlen(value) && strncmp(v, value, len) == 0;
}

/* The answer says the system (and the specialisation asked for) is
 * there: it cannot be changed by a copy, which only adds paths. */
static int
probe_found(const struct step *s, const char *spec, const char *out)
{
    return (!s->probe_version || probe_is(out, "version=", "1")) &&
           (spec == NULL || probe_is(out, "spec=", "1"));
}

/* A probe right after a copy to the same remote host starts together
 * with the copy, on a channel of its own: when nothing has to be copied
 * (a redeploy) its answer is ready when the copy ends, a round trip
 * saved.  Its answer is used only if probe_found (see step_probe). */
static void
probe_early(struct exec_ctx *x, const struct step *copy, const struct step *s)
{
    struct host *h = x->hosts[s->host];
    struct strvec argv = STRVEC_INIT;
    struct host_cmd cmd = {0};
    char *spec = NULL;

    if (x->ret != 0 || cr_interrupted || s->kind != STEP_PROBE ||
        copy->kind != STEP_COPY || h == NULL || h->is_local ||
        x->hosts[copy->to] != h || x->early_probe != NULL ||
        (s->probe_version && x->vars[VAR_TOPLEVEL] == NULL)) {
        return;
    }
    probe_argv(x, s, &argv, &spec);
    cmd.argv = &argv;
    if (h->ops->open_stream(h, &cmd, &x->early_probe) == 0) {
        x->early_probe_step = s;
        x->early_probe_local =
            x->hosts[copy->from] != NULL && x->hosts[copy->from]->is_local;
        (void)x->early_probe->ops->send_eof(x->early_probe);
    } else {
        x->early_probe = NULL;
    }
    strvec_clear(&argv);
    free(spec);
}

/* `test -f` here. */
static int
is_file(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* The system was not on the target yet when the early probe ran, and the
 * copy brought it from this machine: a store path has the same content
 * everywhere, so its files are checked here, and out gets the lines the
 * probe would give now.  0 when they are missing here too. */
static int
probe_here(const struct exec_ctx *x,
           const struct step *s,
           const char *spec,
           struct strbuf *out)
{
    struct strbuf now = STRBUF_INIT;
    char *v = NULL;
    int found;

    if (x->vars[VAR_TOPLEVEL] == NULL) {
        return 0;
    }
    v = xasprintf("%s/nixos-version", x->vars[VAR_TOPLEVEL]);
    found =
        (!s->probe_version || is_file(v)) && (spec == NULL || is_file(spec));
    free(v);
    if (!found) {
        return 0;
    }
    /* Ahead of the stale lines: probe_get takes a key's first line. */
    strbuf_addstr(&now, "version=1\nspec=1\n");
    strbuf_add(&now, out->buf, out->len);
    strbuf_reset(out);
    strbuf_add(out, now.buf, now.len);
    strbuf_release(&now);
    return 1;
}

/* The early probe's answer if it ran, succeeded and is still true (or
 * probe_here says so; this saves the round trip of a cold deploy too). */
static int
probe_early_answer(struct exec_ctx *x,
                   const struct step *s,
                   const char *spec,
                   struct strbuf *out)
{
    struct stream *st = x->early_probe;
    char buf[4096];
    ssize_t r;
    int status = -1, rc, ok;

    if (st == NULL || x->early_probe_step != s) {
        return 0;
    }
    x->early_probe = NULL;
    while ((r = st->ops->read(st, buf, sizeof(buf))) > 0) {
        if (out->len + (size_t)r <= (64u << 10)) {
            strbuf_add(out, buf, (size_t)r);
        }
    }
    rc = st->ops->close(st, &status, NULL);
    ok = r == 0 && rc == 0 && status == 0;
    if (ok && probe_found(s, spec, out->buf)) {
        log_debug("%s: checked during the copy", x->hosts[s->host]->name);
        return 1;
    }
    if (ok && x->early_probe_local && probe_here(x, s, spec, out)) {
        log_debug("%s: checked during the copy (the system's files here)",
                  x->hosts[s->host]->name);
        return 1;
    }
    strbuf_reset(out);
    return 0;
}

/* What the probe says about the profile: its current generation (the one
 * magic rollback and interrupts go back to), and whether nix-env --set
 * would change nothing: Nix adds no generation when the newest one
 * already is the system, so when that one is also current the profile
 * stays exactly as it is. */
static void
probe_profile(struct exec_ctx *x, const struct step *s, const char *out)
{
    size_t len = 0;
    const char *g = probe_get(out, "gen=", &len);
    const char *top = x->vars[VAR_TOPLEVEL];

    x->profile_is_top[s->host] = 0;
    if (g == NULL) {
        return;
    }
    char *link = xstrndup(g, len);
    free(x->vars[VAR_PREVGEN]);
    x->vars[VAR_PREVGEN] = generation_number(s->profile, link);
    free(link);
    if (x->vars[VAR_PREVGEN] != NULL && top != NULL) {
        /* "last=NEWEST TARGET": the current one, already the system. */
        char *want = xasprintf("%s %s", x->vars[VAR_PREVGEN], top);

        x->profile_is_top[s->host] = probe_is(out, "last=", want);
        free(want);
    }
}

static int
step_probe(struct exec_ctx *x, const struct step *s)
{
    struct host *h = host_of(x, s->host);
    struct strvec argv = STRVEC_INIT;
    struct strbuf out = STRBUF_INIT;
    struct host_cmd cmd = {0};
    char *spec = NULL;
    int status = -1, rc, ret = 0;

    probe_argv(x, s, &argv, &spec);
    if (!probe_early_answer(x, s, spec, &out)) {
        out.max = 64 << 10;
        cmd.argv = &argv;
        cmd.out = &out;
        rc = host_run(h, &cmd, &status);
        if (rc != 0 || status != 0) {
            if (rc != CR_ESSH) {
                log_error("cannot inspect %s before changing it", h->name);
            }
            ret = rc == CR_EINTR ? 130 : 1;
            goto out;
        }
    }
    x->systemd[s->host] = probe_is(out.buf, "systemd=", "1");
    if (s->profile != NULL) {
        probe_profile(x, s, out.buf);
    }
    if (s->probe_version && !probe_is(out.buf, "version=", "1")) {
        log_error("your NixOS configuration path seems to be missing "
                  "essential files; to skip this check, set "
                  "NIXOS_REBUILD_I_UNDERSTAND_THE_CONSEQUENCES_PLEASE_BREAK_"
                  "MY_SYSTEM");
        ret = 1;
    } else if (spec != NULL && !probe_is(out.buf, "spec=", "1")) {
        log_error("specialisation not found: %s", s->probe_spec);
        ret = 1;
    }
out:
    free(spec);
    strvec_clear(&argv);
    strbuf_release(&out);
    return ret;
}

static int
step_activate(struct exec_ctx *x, const struct step *s)
{
    struct host *h = host_of(x, s->host);
    struct strvec argv = STRVEC_INIT, env = STRVEC_INIT;
    struct host_cmd cmd = {0};
    char *stc = exec_expand(x, s->argv.v[0]);
    int status = -1, rc, ret = 0;

    if (s->supervised) {
        if (strcmp(s->stc_action, "switch") != 0 || x->vars[VAR_PREVGEN]) {
            free(stc);
            return step_activate_supervised(x, s);
        }
        log_warn("no previous generation on %s: magic rollback has nothing "
                 "to restore, activating without it",
                 h->name);
    }
    if (getenv("NIXOS_SWITCH_USE_DIRTY_ENV") != NULL) {
        log_warn("skipping systemd-run since NIXOS_SWITCH_USE_DIRTY_ENV is "
                 "set. This environment variable will be ignored in the "
                 "future");
    }
    plan_activation_argv(stc,
                         s->stc_action,
                         has_systemd(x, h),
                         s->install_bootloader,
                         &argv,
                         &env);
    cmd.argv = &argv;
    cmd.env = &env;
    cmd.elevate = s->elevate;
    log_info("activating the configuration...");
    rc = host_run(h, &cmd, &status);
    if (rc != 0) {
        /* A lost connection was reported where it happened. */
        if (rc != CR_ESSH) {
            log_error("cannot run switch-to-configuration on %s: %s",
                      h->name,
                      cr_strerror(rc));
        }
        ret = rc == CR_EINTR ? 130 : 1;
    } else if (status != 0) {
        log_warn("error(s) occurred while switching to the new "
                 "configuration");
        log_error("switch-to-configuration %s on %s returned non-zero exit "
                  "status %d",
                  s->stc_action,
                  h->name,
                  status);
        ret = fail_status(status);
    }
    if (ret == 0 && has_checks(x->o) &&
        (strcmp(s->stc_action, "switch") == 0 ||
         strcmp(s->stc_action, "test") == 0)) {
        struct health_result hr;
        log_warn("health checks without magic rollback: a failure is "
                 "reported, nothing is rolled back");
        if (health_run_all(h,
                           x->o->health_urls,
                           x->o->n_health_urls,
                           x->o->health_cmds,
                           x->o->n_health_cmds,
                           x->o->health_timeout,
                           x->events,
                           &hr) != 0) {
            ret = 1;
        }
        health_result_release(&hr);
    }
    free(stc);
    strvec_clear(&argv);
    strvec_clear(&env);
    return ret;
}

/* --diff (and dry-activate): what changes between the system running on
 * the activating host and the new one.  Failures only warn. */
static int
step_diff(struct exec_ctx *x, const struct step *s)
{
    struct host *h = host_of(x, s->host);
    struct diff_closure before, after;
    struct diff_result r;
    const char *cur = "/run/current-system";

    memset(&before, 0, sizeof(before));
    memset(&after, 0, sizeof(after));
    if (diff_closure_read(h, cur, &before) != 0) {
        log_warn("cannot diff: cannot read the running system on %s", h->name);
        return 0;
    }
    if (before.missing) {
        /* No /run/current-system (not NixOS, or a container): compare
         * with the profile's current generation instead. */
        if (diff_closure_read(h, s->profile, &before) != 0) {
            before.missing = 1;
        }
    }
    if (diff_closure_read(h, x->vars[VAR_TOPLEVEL], &after) != 0) {
        log_warn("cannot diff: cannot read the new system on %s", h->name);
        diff_closure_release(&before);
        return 0;
    }
    diff_compute(&before, &after, &r);
    log_info("changes on %s:", h->name);
    diff_print(&r, log_stream());
    events_diff(x->events, h->name, &r);
    diff_result_release(&r);
    diff_closure_release(&before);
    diff_closure_release(&after);
    return 0;
}

static int
step_prev_gen(struct exec_ctx *x, const struct step *s)
{
    struct generation_list l;
    const struct generation *g;
    int rc;

    rc = generations_read(host_of(x, s->host), s->profile, &l);
    if (rc != 0) {
        return 1;
    }
    g = generations_previous(&l);
    if (g == NULL) {
        log_error("could not find previous generation");
        generations_release(&l);
        return 1;
    }
    free(x->vars[VAR_TOPLEVEL]);
    x->vars[VAR_TOPLEVEL] = xasprintf("%s-%lu-link", s->profile, g->id);
    generations_release(&l);
    return 0;
}

static int
step_list_generations(struct exec_ctx *x, const struct step *s)
{
    struct generation_list l;

    if (generations_read(host_of(x, s->host), s->profile, &l) != 0) {
        return 1;
    }
    if (s->json) {
        generations_print_json(&l, stdout);
    } else {
        generations_print_table(&l, stdout);
    }
    generations_release(&l);
    return 0;
}

static int
step_check_variant(struct exec_ctx *x, const struct step *s)
{
    cJSON *arr =
        cJSON_Parse(x->vars[VAR_VARIANTS] ? x->vars[VAR_VARIANTS] : "");
    const cJSON *it;
    int found = 0;

    if (!cJSON_IsArray(arr)) {
        log_error("cannot list image variants: unexpected output from nix");
        cJSON_Delete(arr);
        return 1;
    }
    cJSON_ArrayForEach(it, arr)
    {
        if (cJSON_IsString(it) && strcmp(it->valuestring, s->variant) == 0) {
            found = 1;
        }
    }
    if (!found) {
        log_error("please specify one of the following supported image "
                  "variants via --image-variant:");
        cJSON_ArrayForEach(it, arr)
        {
            if (cJSON_IsString(it)) {
                fprintf(log_stream(), "- %s\n", it->valuestring);
            }
        }
    }
    cJSON_Delete(arr);
    return found ? 0 : 1;
}

/* <nixpkgs>/.version-suffix, as nixos-rebuild writes it in classic mode.
 * Every failure here is ignored, as there. */
static int
step_version_suffix(struct exec_ctx *x)
{
    struct host *h = x->hosts[PH_LOCAL];
    struct strvec argv = STRVEC_INIT;
    struct strbuf out = STRBUF_INIT;
    struct host_cmd cmd = {0};
    char *dir = NULL, *git = NULL, *rev = NULL;
    int status = -1, dirty;
    struct stat st;

    strvec_pushl(
        &argv, "nix-instantiate", "--find-file", "nixpkgs", (const char *)NULL);
    strvec_pusharr(&argv, &x->o->common);
    strvec_pusharr(&argv, &x->o->common_build);
    cmd.argv = &argv;
    cmd.out = &out;
    struct strbuf err = STRBUF_INIT;
    cmd.err = &err;
    if (host_run(h, &cmd, &status) != 0 || status != 0) {
        goto out;
    }
    dir = last_line(out.buf);
    git = dir ? xasprintf("%s/.git", dir) : NULL;
    if (git == NULL || stat(git, &st) != 0) {
        goto out;
    }
    strvec_clear(&argv);
    strbuf_reset(&out);
    strvec_pushl(&argv,
                 "git",
                 "-C",
                 dir,
                 "rev-parse",
                 "--short",
                 "HEAD",
                 (const char *)NULL);
    if (host_run(h, &cmd, &status) != 0 || status != 0) {
        goto out;
    }
    rev = last_line(out.buf);
    strvec_clear(&argv);
    strvec_pushl(
        &argv, "git", "-C", dir, "diff", "--quiet", (const char *)NULL);
    dirty = host_run(h, &cmd, &status) == 0 && status == 1;
    if (rev != NULL) {
        char *path = xasprintf("%s/.version-suffix", dir);
        FILE *f = fopen(path, "w");
        if (f != NULL) {
            fprintf(f, ".git.%s%s", rev, dirty ? "M" : "");
            fclose(f);
        }
        free(path);
    }
out:
    strbuf_release(&err);
    free(dir);
    free(git);
    free(rev);
    strvec_clear(&argv);
    strbuf_release(&out);
    return 0;
}

static int
step_result_link(struct exec_ctx *x)
{
    struct stat st;

    if (lstat("result", &st) == 0) {
        if (!S_ISLNK(st.st_mode)) {
            log_error("cannot create ./result: a file is in the way");
            return 1;
        }
        unlink("result");
    }
    if (symlink(x->vars[VAR_TOPLEVEL], "result") != 0) {
        log_error("cannot create ./result: %s", strerror(errno));
        return 1;
    }
    return 0;
}

static int
run_step(struct exec_ctx *x, const struct step *s)
{
    switch (s->kind) {
    case STEP_RUN:
        return step_run(x, s);
    case STEP_COPY:
        return step_copy(x, s);
    case STEP_ACTIVATE:
        return step_activate(x, s);
    case STEP_PREV_GEN:
        return step_prev_gen(x, s);
    case STEP_LIST_GENERATIONS:
        return step_list_generations(x, s);
    case STEP_CHECK_VARIANT:
        return step_check_variant(x, s);
    case STEP_VERSION_SUFFIX:
        return step_version_suffix(x);
    case STEP_RESULT_LINK:
        return step_result_link(x);
    case STEP_PROBE:
        return step_probe(x, s);
    case STEP_DIFF:
        return step_diff(x, s);
    }
    return 1;
}

static void
print_result(const struct exec_ctx *x, const struct plan *p)
{
    const char *top = x->vars[VAR_TOPLEVEL];
    FILE *out = events_to_stdout(x->events) ? log_stream() : stdout;

    if (top == NULL) {
        return;
    }
    switch (p->result) {
    case RESULT_CONFIG:
        log_info("Done. The new configuration is");
        fprintf(out, "%s\n", top);
        break;
    case RESULT_VM: {
        char *pat = xasprintf("%s/bin/run-*-vm", top);
        glob_t g;
        int found = glob(pat, 0, NULL, &g) == 0 && g.gl_pathc > 0;
        log_info("Done. The virtual machine can be started by running");
        fprintf(out, "%s\n", found ? g.gl_pathv[0] : "not-found");
        if (found) {
            globfree(&g);
        }
        free(pat);
        break;
    }
    case RESULT_IMAGE: {
        const char *fp = x->vars[VAR_FILEPATH] ? x->vars[VAR_FILEPATH] : "";
        size_t len = strlen(fp);
        /* nix-instantiate --json quotes it; nix eval --raw does not. */
        if (len >= 2 && fp[0] == '"' && fp[len - 1] == '"') {
            fp++;
            len -= 2;
        }
        log_info("Done. The disk image can be found in");
        fprintf(out, "%s/%.*s\n", top, (int)len, fp);
        break;
    }
    case RESULT_NONE:
        break;
    }
    fflush(out);
}

static int
is_build_step(const struct step *s)
{
    return s->kind == STEP_RUN && s->host != PH_TARGET &&
           (s->var == VAR_TOPLEVEL || s->var == VAR_DRV) &&
           s->capture != CAP_NONE;
}

/* Interrupted after the profile changed but before activation: put the
 * profile back, so that the target is left as it was. */
static void
restore_profile(struct exec_ctx *x, enum plan_host which)
{
    struct strvec argv = STRVEC_INIT;
    struct host_cmd cmd = {0};
    char *profile = cli_profile_path(x->o);
    int status = -1;

    if (x->vars[VAR_PREVGEN] == NULL) {
        log_warn("interrupted after the profile was set; there is no "
                 "previous generation to restore");
        free(profile);
        return;
    }
    strvec_pushl(&argv,
                 "nix-env",
                 "-p",
                 profile,
                 "--switch-generation",
                 x->vars[VAR_PREVGEN],
                 (const char *)NULL);
    cmd.argv = &argv;
    cmd.elevate = 1;
    if (host_run(x->hosts[which], &cmd, &status) == 0 && status == 0) {
        log_info("interrupted before activation: %s restored to generation "
                 "%s",
                 profile,
                 x->vars[VAR_PREVGEN]);
    } else {
        log_error("interrupted before activation, and %s could not be "
                  "restored to generation %s",
                  profile,
                  x->vars[VAR_PREVGEN]);
    }
    strvec_clear(&argv);
    free(profile);
}

/* Run one step (skipped after a failure unless s->always), with its
 * events and the exit status bookkeeping of exec_plan. */
static void
exec_one(struct exec_ctx *x, const struct step *s)
{
    if (x->ret != 0 && !s->always) {
        return;
    }
    if (cr_interrupted && !s->always) {
        x->ret = 128 + cr_interrupted;
        return;
    }
    if (!x->announced && is_build_step(s) && x->o->store_path == NULL) {
        log_info("building the system configuration...");
        x->announced = 1;
    }
    struct host *h = x->hosts[s->host];
    const char *hn = h ? h->name : "localhost";
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (s->phase != NULL) {
        events_phase_start(x->events, s->phase, hn);
    }
    /* The profile change is not interruptible: a signal that arrives
     * meanwhile is handled once it is done (and then undone, below). */
    int is_profile = s->phase != NULL && strcmp(s->phase, "profile") == 0;
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    if (is_profile) {
        sigprocmask(SIG_BLOCK, &block, &old);
        x->profile_set = (int)s->host;
    }
    int r = run_step(x, s);
    if (is_profile) {
        sigprocmask(SIG_SETMASK, &old, NULL);
    }
    /* A step that fails once we are interrupted failed because of
     * it (a command gets the signal too); the status names the signal:
     * 130 for SIGINT, 143 for SIGTERM. */
    if (r != 0 && cr_interrupted) {
        r = 128 + cr_interrupted;
    }
    if (s->phase != NULL) {
        clock_gettime(CLOCK_MONOTONIC, &t1);
        events_phase_end(x->events,
                         s->phase,
                         hn,
                         r == 0,
                         (double)(t1.tv_sec - t0.tv_sec) +
                             (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    }
    if (r != 0 && x->ret == 0) {
        x->ret = r;
    }
    if (s->kind == STEP_ACTIVATE) {
        x->activated = 1;
    }
}

/* Steps exec_start may run before the hosts are connected: the leading
 * local commands (evaluation and build), none of which needs a terminal. */
static size_t
early_steps(const struct plan *p)
{
    size_t n = 0;

    while (n < p->n && p->steps[n].kind == STEP_RUN &&
           p->steps[n].host == PH_LOCAL && !p->steps[n].interactive &&
           !p->steps[n].always) {
        n++;
    }
    return n;
}

/* After the build, a copy from this machine comes next: list the closure
 * of what was built while the login is still going on. */
static void
early_closure(struct exec_ctx *x)
{
    const struct plan *p = x->early_plan;
    const struct step *s = x->early_n < p->n ? &p->steps[x->early_n] : NULL;
    struct pathinfo_list l = PATHINFO_LIST_INIT;
    struct strvec roots = STRVEC_INIT;

    if (s == NULL || x->ret != 0 || cr_interrupted ||
        atomic_load(&x->cancelled) || s->kind != STEP_COPY ||
        s->from != PH_LOCAL || x->hosts[PH_LOCAL] == NULL ||
        x->vars[s->var] == NULL) {
        return;
    }
    strvec_push(&roots, x->vars[s->var]);
    /* Quiet: killed by exec_cancel, or failing, it is only a head start
     * (the copy lists again and reports). */
    if (pathinfo_closure_local(x->hosts[PH_LOCAL], &roots, NULL, 1, &l) == 0) {
        for (size_t i = 0; i < l.n; i++) {
            strvec_push(&x->early_closure, l.v[i].path);
        }
        x->early_closure_of = xstrdup(x->vars[s->var]);
        log_debug("closure of %s listed while logging in (%zu paths)",
                  x->early_closure_of,
                  l.n);
    }
    pathinfo_list_release(&l);
    strvec_clear(&roots);
}

static void *
early_main(void *arg)
{
    struct exec_ctx *x = arg;

    for (size_t i = 0; i < x->early_n; i++) {
        exec_one(x, &x->early_plan->steps[i]);
    }
    early_closure(x);
    return NULL;
}

int
exec_start(struct exec_ctx *x, const struct plan *p)
{
    size_t n = early_steps(p);

    if (n == 0 || x->early_active) {
        return 0;
    }
    x->early_plan = p;
    x->early_n = n;
    if (pthread_create(&x->early_thread, NULL, early_main, x) != 0) {
        x->early_n = 0;
        return 0;
    }
    x->early_active = 1;
    return 1;
}

void
exec_cancel(struct exec_ctx *x)
{
    if (!x->early_active) {
        return;
    }
    /* Nothing to build for any more: stop it without its own messages. */
    atomic_store(&x->cancelled, 1);
    proc_kill_all(SIGKILL);
    pthread_join(x->early_thread, NULL);
    x->early_active = 0;
}

int
exec_plan(struct exec_ctx *x, const struct plan *p)
{
    size_t first = 0;

    if (x->early_active && x->early_plan == p) {
        pthread_join(x->early_thread, NULL);
        x->early_active = 0;
        first = x->early_n;
    }
    for (size_t i = first; i < p->n; i++) {
        if (i + 1 < p->n) {
            probe_early(x, &p->steps[i], &p->steps[i + 1]);
        }
        exec_one(x, &p->steps[i]);
    }
    int ret = x->ret;
    if (ret == 0 && cr_interrupted) {
        ret = 128 + cr_interrupted;
    }
    if (cr_interrupted && x->profile_set >= 0 && !x->activated) {
        int sig = cr_interrupted;
        cr_interrupted = 0; /* let the restoring command run */
        restore_profile(x, (enum plan_host)x->profile_set);
        cr_interrupted = sig;
    }
    if (ret == 0) {
        print_result(x, p);
    }
    return ret;
}

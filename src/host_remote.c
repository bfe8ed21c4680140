/* host_remote.c: a remote machine as a struct host, over one libssh
 * session: every command is an exec channel running the string built by
 * remote_command(). */
#include "crebuild/remote.h"
#include "crebuild/log.h"
#include "crebuild/shquote.h"
#include "crebuild/ssh.h"
#include "crebuild/strbuf.h"
#include "crebuild/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STREAM_ERR_MAX (256 * 1024)
#define IO_CHUNK       (256 * 1024)

struct remote_host {
    struct host base;
    struct ssh_conn *conn;
    enum cr_elevate kind;
    struct strvec sudo_opts;
    char *password; /* NULL: none, or not needed (NOPASSWD) */
    int quiet;
};

struct remote_stream {
    struct stream base;
    struct remote_host *rh;
    struct ssh_chan *ch;
    struct strbuf err;
};

/* ---- the command string ---- */

static int
env_name_ok(const char *s, size_t n)
{
    if (n == 0 || !((s[0] >= 'A' && s[0] <= 'Z') ||
                    (s[0] >= 'a' && s[0] <= 'z') || s[0] == '_')) {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        char c = s[i];

        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
              (c >= '0' && c <= '9') || c == '_')) {
            return 0;
        }
    }
    return 1;
}

int
remote_cmd_check(const struct host_cmd *cmd, char **err)
{
    *err = NULL;
    if (cmd->argv == NULL || cmd->argv->n == 0) {
        *err = xstrdup("empty remote command");
        return CR_EUSAGE;
    }
    for (size_t i = 0; cmd->env != NULL && i < cmd->env->n; i++) {
        const char *e = cmd->env->v[i];
        const char *eq = strchr(e, '=');
        size_t n = eq ? (size_t)(eq - e) : strlen(e);

        if (!env_name_ok(e, n)) {
            struct strvec one = STRVEC_INIT;
            char *q = NULL;

            strvec_push(&one, e);
            q = shquote_join(&one);
            *err = xasprintf("invalid environment variable name in %s", q);
            free(q);
            strvec_clear(&one);
            return CR_EUSAGE;
        }
    }
    return 0;
}

int
remote_elevates(const struct host_cmd *cmd,
                const struct remote_elevation *e,
                int is_root)
{
    return cmd->elevate && !is_root && e != NULL && e->kind != CR_ELEVATE_NONE;
}

/* The /bin/sh -c script: a clean environment, PATH kept. */
static void
build_script(struct strbuf *sb, const struct host_cmd *cmd, int run0)
{
    const char *set = run0 ? " --setenv=" : " ";

    if (run0) {
        strbuf_addstr(sb,
                      "exec systemd-run --uid=0 --pipe --quiet --wait "
                      "--collect --service-type=exec --send-sighup "
                      "--setenv=PATH=\"${PATH-}\"");
    } else {
        strbuf_addstr(sb, "exec env -i PATH=\"${PATH-}\"");
    }
    for (size_t i = 0; cmd->env != NULL && i < cmd->env->n; i++) {
        const char *e = cmd->env->v[i];
        const char *eq = strchr(e, '=');

        if (eq == NULL) {
            if (strcmp(e, "PATH") == 0) {
                continue;
            }
            strbuf_addf(sb, "%s%s=\"${%s-}\"", set, e, e);
        } else {
            strbuf_addstr(sb, set);
            strbuf_add(sb, e, (size_t)(eq - e) + 1);
            shquote_word(sb, eq + 1);
        }
    }
    strbuf_addstr(sb, run0 ? " -- \"$@\"" : " \"$@\"");
}

/* The service manager expands "${NAME}", a whole-argument "$NAME" and
 * "$$" in a service's command line, and run0 (systemd-run) passes its
 * arguments there: each '$' is doubled so that they arrive as written
 * ("$$" becomes "$" again). */
static void
push_unexpanded(struct strvec *words, const struct strvec *argv)
{
    struct strbuf sb = STRBUF_INIT;

    for (size_t i = 0; i < argv->n; i++) {
        strbuf_reset(&sb);
        for (const char *c = argv->v[i]; *c != '\0'; c++) {
            if (*c == '$') {
                strbuf_addch(&sb, '$');
            }
            strbuf_addch(&sb, *c);
        }
        strvec_push(words, sb.buf);
    }
    strbuf_release(&sb);
}

char *
remote_command(const struct host_cmd *cmd,
               const struct remote_elevation *e,
               int is_root)
{
    struct strvec words = STRVEC_INIT;
    struct strbuf script = STRBUF_INIT;
    struct strbuf out = STRBUF_INIT;
    char *err = NULL;
    int elev = remote_elevates(cmd, e, is_root);
    int run0 = elev && e->kind == CR_ELEVATE_RUN0;

    if (remote_cmd_check(cmd, &err) != 0) {
        free(err);
        return NULL;
    }
    if (elev && e->kind == CR_ELEVATE_SUDO) {
        strvec_push(&words, "sudo");
        if (e->password != NULL) {
            strvec_pushl(&words, "--prompt=", "--stdin", (const char *)NULL);
        }
        if (e->sudo_opts != NULL) {
            strvec_pusharr(&words, e->sudo_opts);
        }
    } else if (run0 && e->password != NULL) {
        strvec_pushl(&words,
                     "polkit-stdin-agent",
                     "--password-fd=0",
                     "--",
                     (const char *)NULL);
    }
    build_script(&script, cmd, run0);
    strvec_pushl(&words, "/bin/sh", "-c", script.buf, "sh", (const char *)NULL);
    if (run0) {
        push_unexpanded(&words, cmd->argv);
    } else {
        strvec_pusharr(&words, cmd->argv);
    }
    shquote_argv(&out, &words);
    strvec_clear(&words);
    strbuf_release(&script);
    return strbuf_detach(&out);
}

/* ---- running ---- */

static void
elevation_of(const struct remote_host *rh, struct remote_elevation *e)
{
    e->kind = rh->kind;
    e->sudo_opts = &rh->sudo_opts;
    e->password = rh->password;
}

/* Open a channel for cmd and write the password when it is elevated. */
static int
start(struct remote_host *rh,
      const struct host_cmd *cmd,
      const struct remote_elevation *e,
      struct strbuf *err_capture,
      struct ssh_chan **out)
{
    char *command = NULL;
    char *why = NULL;
    int rc = 0;

    *out = NULL;
    if (remote_cmd_check(cmd, &why) != 0) {
        log_error("%s: %s", rh->base.name, why);
        free(why);
        return CR_EUSAGE;
    }
    command = remote_command(cmd, e, rh->base.is_root);
    if (log_get_level() >= LOG_DEBUG) {
        char *shown = shquote_join(cmd->argv);

        log_debug("running on %s: %s%s",
                  rh->base.name,
                  remote_elevates(cmd, e, rh->base.is_root) ? "(elevated) "
                                                            : "",
                  shown);
        free(shown);
    }
    rc = ssh_chan_exec(rh->conn, command, err_capture, out);
    free(command);
    if (rc != 0) {
        return rc;
    }
    if (remote_elevates(cmd, e, rh->base.is_root) && e->password != NULL) {
        size_t n = strlen(e->password);
        char *line = xmalloc(n + 2);

        memcpy(line, e->password, n);
        line[n] = '\n';
        line[n + 1] = '\0';
        rc = ssh_chan_write(*out, line, n + 1);
        explicit_bzero(line, n + 2);
        free(line);
        if (rc != 0) {
            ssh_chan_abort(*out);
            *out = NULL;
        }
    }
    return rc;
}

static void
out_sink(const struct host_cmd *cmd, const char *p, size_t n)
{
    FILE *f = cmd->out_to_stdout ? stdout : stderr;

    if (cmd->out != NULL) {
        strbuf_add(cmd->out, p, n);
        return;
    }
    (void)fwrite(p, 1, n, f);
    fflush(f);
}

/* Feed input, collect stdout, until the command's stdout ends. */
static int
pump(struct ssh_chan *ch, const struct host_cmd *cmd)
{
    const char *in = cmd->input;
    size_t left = cmd->input != NULL ? cmd->input_len : 0;
    char *buf = xmalloc(IO_CHUNK);
    int in_done = 0;
    int rc = 0;

    for (;;) {
        int eof = 0;
        int progress = 0;
        ssize_t r;

        if (cr_interrupted) {
            rc = CR_EINTR;
            break;
        }
        if (!in_done && left > 0) {
            ssize_t w = ssh_chan_write_some(ch, in, left);

            if (w < 0) {
                rc = (int)w;
                break;
            }
            in += w;
            left -= (size_t)w;
            progress = w > 0;
        }
        if (!in_done && left == 0) {
            rc = ssh_chan_send_eof(ch);
            if (rc != 0) {
                break;
            }
            in_done = 1;
        }
        r = ssh_chan_read_nb(ch, buf, IO_CHUNK, &eof);
        if (r < 0) {
            rc = (int)r;
            break;
        }
        if (r > 0) {
            out_sink(cmd, buf, (size_t)r);
            progress = 1;
        }
        if (eof && in_done) {
            break;
        }
        if (eof && !in_done) {
            /* The command stopped reading; drop the rest of the input. */
            left = 0;
            continue;
        }
        if (!progress) {
            rc = ssh_chan_wait(ch, 1000);
            if (rc != 0) {
                break;
            }
        }
    }
    free(buf);
    return rc;
}

static void
sudo_hint(struct remote_host *rh,
          const struct remote_elevation *e,
          const char *tail)
{
    if (e->kind == CR_ELEVATE_SUDO && e->password == NULL &&
        strstr(tail, "sudo") != NULL &&
        (strstr(tail, "password") != NULL ||
         strstr(tail, "terminal is required") != NULL)) {
        log_error("while running command with remote sudo on %s, did you "
                  "forget to use --ask-sudo-password?",
                  rh->base.name);
    }
}

/* Run cmd with elevation e; the stderr tail is kept for hints. */
static int
run_cmd(struct remote_host *rh,
        const struct host_cmd *cmd,
        const struct remote_elevation *e,
        int *status,
        struct strbuf *tail)
{
    struct ssh_chan *ch = NULL;
    int rc;

    *status = -1;
    if (cmd->tty_input) {
        log_error("%s: interactive commands cannot run on a remote host",
                  rh->base.name);
        return CR_EUSAGE;
    }
    rc = start(rh, cmd, e, cmd->err, &ch);
    if (rc != 0) {
        return rc;
    }
    rc = pump(ch, cmd);
    if (rc == 0) {
        rc = ssh_chan_finish(ch, status);
    }
    if (rc == 0 && tail != NULL) {
        strbuf_addstr(tail, ssh_chan_stderr_tail(ch));
    }
    if (rc == CR_EINTR) {
        ssh_chan_abort(ch);
    } else {
        ssh_chan_free(ch);
    }
    return rc;
}

static int
remote_run(struct host *h, const struct host_cmd *cmd, int *status)
{
    struct remote_host *rh = (struct remote_host *)h;
    struct remote_elevation e;
    struct strbuf tail = STRBUF_INIT;
    int rc;

    elevation_of(rh, &e);
    rc = run_cmd(rh, cmd, &e, status, &tail);
    if (rc == 0 && *status != 0 && remote_elevates(cmd, &e, h->is_root)) {
        sudo_hint(rh, &e, tail.buf);
    }
    strbuf_release(&tail);
    return rc;
}

/* ---- streams ---- */

static int
rs_write(struct stream *s, const void *buf, size_t n)
{
    return ssh_chan_write(((struct remote_stream *)s)->ch, buf, n);
}

static ssize_t
rs_read(struct stream *s, void *buf, size_t n)
{
    return ssh_chan_read(((struct remote_stream *)s)->ch, buf, n);
}

static ssize_t
rs_read_nb(struct stream *s, void *buf, size_t n, int *eof)
{
    struct remote_stream *rs = (struct remote_stream *)s;
    ssize_t r = ssh_chan_read_nb(rs->ch, buf, n, eof);

    if (r == 0 && !*eof) {
        /* Let the session make progress without blocking. */
        int rc = ssh_chan_wait(rs->ch, 0);

        if (rc != 0) {
            return rc;
        }
        r = ssh_chan_read_nb(rs->ch, buf, n, eof);
    }
    return r;
}

static int
rs_send_eof(struct stream *s)
{
    return ssh_chan_send_eof(((struct remote_stream *)s)->ch);
}

static int
rs_close(struct stream *s, int *status, struct strbuf *err)
{
    struct remote_stream *rs = (struct remote_stream *)s;
    int rc = ssh_chan_close(rs->ch, status);

    if (err != NULL) {
        strbuf_add(err, rs->err.buf, rs->err.len);
    }
    strbuf_release(&rs->err);
    free(rs);
    return rc;
}

static void
rs_release(struct stream *s)
{
    struct remote_stream *rs = (struct remote_stream *)s;

    ssh_chan_release(rs->ch);
    strbuf_release(&rs->err);
    free(rs);
}

static const struct stream_ops remote_stream_ops = {
    .write = rs_write,
    .read = rs_read,
    .read_nb = rs_read_nb,
    .send_eof = rs_send_eof,
    .close = rs_close,
    .release = rs_release,
};

static int
remote_open_stream(struct host *h,
                   const struct host_cmd *cmd,
                   struct stream **out)
{
    struct remote_host *rh = (struct remote_host *)h;
    struct remote_stream *rs = xcalloc(1, sizeof(*rs));
    struct remote_elevation e;
    int rc;

    *out = NULL;
    rs->base.ops = &remote_stream_ops;
    rs->rh = rh;
    strbuf_init(&rs->err, STREAM_ERR_MAX);
    elevation_of(rh, &e);
    rc = start(rh, cmd, &e, &rs->err, &rs->ch);
    if (rc != 0) {
        strbuf_release(&rs->err);
        free(rs);
        return rc;
    }
    *out = &rs->base;
    return 0;
}

/* ---- the host ---- */

static void
remote_free(struct host *h)
{
    struct remote_host *rh = (struct remote_host *)h;

    ssh_conn_free(rh->conn);
    strvec_clear(&rh->sudo_opts);
    secret_free(rh->password);
    free(rh->base.name);
    free(rh);
}

static const struct host_ops remote_ops = {
    .run = remote_run,
    .open_stream = remote_open_stream,
    .free = remote_free,
};

/* Run argv (not elevated) capturing stdout; 0 when it exited 0, else an
 * error code and *err. */
static int
run_capture(struct remote_host *rh,
            const char *const *argv,
            struct strbuf *o,
            char **errmsg)
{
    struct strvec av = STRVEC_INIT;
    struct strbuf err = STRBUF_INIT;
    struct host_cmd cmd;
    int status = -1;
    int rc;

    memset(&cmd, 0, sizeof(cmd));
    for (size_t i = 0; argv[i] != NULL; i++) {
        strvec_push(&av, argv[i]);
    }
    strbuf_init(&err, 4096);
    cmd.argv = &av;
    cmd.out = o;
    cmd.err = &err;
    rc = remote_run(&rh->base, &cmd, &status);
    if (rc == 0 && status != 0) {
        strbuf_rtrim(&err);
        *errmsg = xasprintf("%s: '%s' failed with status %d%s%s",
                            rh->base.name,
                            argv[0],
                            status,
                            err.len ? ": " : "",
                            err.buf);
        rc = CR_ESSH;
    } else if (rc != 0) {
        *errmsg = xasprintf(
            "%s: cannot run '%s': %s", rh->base.name, argv[0], cr_strerror(rc));
    }
    strvec_clear(&av);
    strbuf_release(&err);
    return rc;
}

int
host_remote_open(const struct remote_config *cfg, struct host **out, char **err)
{
    static const char *const id_u[] = {"id", "-u", NULL};
    struct remote_host *rh = xcalloc(1, sizeof(*rh));
    struct strbuf uid = STRBUF_INIT;
    int rc;

    *out = NULL;
    *err = NULL;
    rh->base.ops = &remote_ops;
    rh->base.name = xstrdup(cfg->target->raw != NULL ? cfg->target->raw
                                                     : cfg->target->host);
    rh->kind = cfg->elev.kind;
    strvec_init(&rh->sudo_opts);
    if (cfg->elev.sudo_opts != NULL) {
        strvec_pusharr(&rh->sudo_opts, cfg->elev.sudo_opts);
    }
    if (cfg->elev.password != NULL) {
        rh->password = xstrdup(cfg->elev.password);
    }
    rh->quiet = cfg->quiet;
    rc = ssh_conn_open(cfg->target, cfg->batch, &rh->conn, err);
    if (rc != 0) {
        goto out;
    }
    strbuf_init(&uid, 64);
    if (ssh_conn_user(rh->conn) != NULL) {
        /* The login name says it; saves a round trip per connection (a
         * second account with uid 0 is treated as an ordinary user, so
         * its commands still go through sudo). */
        strbuf_addstr(&uid,
                      strcmp(ssh_conn_user(rh->conn), "root") == 0 ? "0" : "-");
    } else {
        rc = run_capture(rh, id_u, &uid, err);
        if (rc != 0) {
            goto out;
        }
    }
    strbuf_rtrim(&uid);
    rh->base.is_root = strcmp(uid.buf, "0") == 0;
    log_debug("%s: remote uid %s", rh->base.name, uid.buf);
    *out = &rh->base;
    rh = NULL;
    rc = 0;
out:
    strbuf_release(&uid);
    if (rh != NULL) {
        remote_free(&rh->base);
    }
    return rc;
}

struct host *
host_remote_new(const struct remote_config *cfg, char **err)
{
    struct host *h = NULL;

    (void)host_remote_open(cfg, &h, err);
    return h;
}

int
host_remote_check_sudo(struct host *h)
{
    struct remote_host *rh = (struct remote_host *)h;
    struct strvec av = STRVEC_INIT;
    struct strvec opts = STRVEC_INIT;
    struct strbuf err = STRBUF_INIT;
    struct remote_elevation e;
    struct host_cmd cmd;
    int status = -1;
    int rc = 0;

    if (h->is_root || rh->kind != CR_ELEVATE_SUDO) {
        return 0;
    }
    memset(&cmd, 0, sizeof(cmd));
    strvec_push(&av, "true");
    strbuf_init(&err, 4096);
    cmd.argv = &av;
    cmd.err = &err;
    cmd.elevate = 1;

    /* Does sudo need a password at all? */
    strvec_push(&opts, "-n");
    strvec_pusharr(&opts, &rh->sudo_opts);
    e.kind = CR_ELEVATE_SUDO;
    e.sudo_opts = &opts;
    e.password = NULL;
    rc = run_cmd(rh, &cmd, &e, &status, NULL);
    if (rc != 0) {
        goto out;
    }
    if (status == 0) {
        if (rh->password != NULL) {
            log_debug("%s: sudo needs no password; not sending it", h->name);
            secret_free(rh->password);
            rh->password = NULL;
        }
        goto out;
    }
    strbuf_rtrim(&err);
    log_debug("%s: sudo -n true: status %d: %s", h->name, status, err.buf);
    if (status == 126 || status == 127) {
        /* The shell's "not found" / "cannot execute": no sudo to ask. */
        const char *nl = strrchr(err.buf, '\n');

        log_error("cannot run sudo on %s: %s",
                  h->name,
                  err.len == 0 ? "not found"
                  : nl != NULL ? nl + 1
                               : err.buf);
        rc = CR_EAUTH;
        goto out;
    }
    if (rh->password == NULL) {
        log_error("sudo on %s requires a password: did you forget to use "
                  "--ask-sudo-password?",
                  h->name);
        rc = CR_EAUTH;
        goto out;
    }

    /* Check the password itself, ignoring cached credentials. */
    strbuf_reset(&err);
    strvec_clear(&opts);
    strvec_push(&opts, "-k");
    strvec_pusharr(&opts, &rh->sudo_opts);
    e.password = rh->password;
    rc = run_cmd(rh, &cmd, &e, &status, NULL);
    if (rc == 0 && status != 0) {
        strbuf_rtrim(&err);
        log_debug(
            "%s: sudo password check: status %d: %s", h->name, status, err.buf);
        if (strstr(err.buf, "sudoers") != NULL ||
            strstr(err.buf, "not allowed") != NULL) {
            log_error("sudo refused on %s: the user may not run sudo there",
                      h->name);
        } else {
            log_error("sudo password rejected on %s", h->name);
        }
        rc = CR_EAUTH;
    }
out:
    strvec_clear(&av);
    strvec_clear(&opts);
    strbuf_release(&err);
    return rc;
}

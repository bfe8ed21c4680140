/* remote.h: a remote machine as a struct host (host.h), over one libssh
 * session, and the one audited function that turns a host_cmd into the
 * command string the remote login shell runs. */
#ifndef CREBUILD_REMOTE_H
#define CREBUILD_REMOTE_H

#include "crebuild/cli.h"
#include "crebuild/host.h"
#include "crebuild/sshopts.h"
#include "crebuild/strvec.h"

/* How elevated commands run on the remote host. */
struct remote_elevation {
    enum cr_elevate kind;           /* NONE, SUDO, RUN0 */
    const struct strvec *sudo_opts; /* NIX_SUDOOPTS words; may be NULL */
    const char *password;           /* sudo/polkit password; may be NULL */
};

/* Everything host_remote_new needs.  All borrowed for the call only: the
 * host keeps its own copies (the password is wiped when the host is
 * freed). */
struct remote_config {
    const struct ssh_target *target; /* from sshopts_target */
    struct remote_elevation elev;
    int batch; /* never prompt (no terminal, CI): passphrases, host keys */
    int quiet;
};

/* The remote command string for cmd, every word quoted with shquote_word:
 *
 *   [ELEV] /bin/sh -c 'exec env -i PATH="${PATH-}" [K="${K-}"...]
 *                      [K=V...] "$@"' sh ARGV...
 *
 * where ELEV, when cmd->elevate is set, e->kind is SUDO and !is_root, is
 * `sudo [--prompt= --stdin] [NIX_SUDOOPTS...]` (--prompt= --stdin only with
 * a password).  For RUN0 the script is instead
 *   exec systemd-run --uid=0 --pipe --quiet --wait --collect
 *        --service-type=exec --send-sighup --setenv=PATH="${PATH-}"
 *        [--setenv=K="${K-}"...] [--setenv=K=V...] -- "$@"
 * (prefixed by `polkit-stdin-agent --password-fd=0 --` with a password).
 * cmd->env entries are "NAME" (preserve the remote login environment's
 * value) or "NAME=VALUE".  Returns NULL for a command remote_cmd_check
 * refuses; the caller frees the string. */
char *remote_command(const struct host_cmd *cmd,
                     const struct remote_elevation *e,
                     int is_root);

/* 0, or CR_EUSAGE with a one-line *err (caller frees) for an empty argv or
 * an env name not matching [A-Za-z_][A-Za-z0-9_]*. */
int remote_cmd_check(const struct host_cmd *cmd, char **err);

/* Whether remote_command elevates cmd (and so the password is written). */
int remote_elevates(const struct host_cmd *cmd,
                    const struct remote_elevation *e,
                    int is_root);

/* Connect and log in now (on failure *err is the one-line message naming
 * the host, not yet logged: the caller reports it; caller frees), then learn
 * whether the login user is root (`id -u`, once).  Returns 0 or CR_ESSH,
 * CR_EHOSTKEY, CR_EAUTH, CR_EUSAGE.
 *
 * The host's run: stdout to cmd->out or forwarded (our stdout when
 *   cmd->out_to_stdout, else our stderr); stderr to cmd->err (bounded by its
 *   max) or forwarded live; cmd->input after the password.  cmd->tty_input is
 *   not supported remotely (CR_EUSAGE).  *status is the remote exit status
 *   (128+signal; -1 if the server sent none).  When an elevated command fails
 *   without a password and sudo asked for one, the hint "did you forget
 *   --ask-sudo-password?" is logged.
 * The host's streams: stderr is collected (first 256 KiB) and handed back
 *   by close, like local streams; the password (if elevated) is written
 *   before the stream is returned. */
int host_remote_open(const struct remote_config *cfg,
                     struct host **out,
                     char **err);
/* The same, returning the host or NULL. */
struct host *host_remote_new(const struct remote_config *cfg, char **err);

/* Check elevation before anything changes: with a password, run `true`
 * through the same sudo wrapper and fail with CR_EAUTH and
 * "sudo password rejected on HOST" if sudo refuses it; without one, check
 * that sudo needs none (`sudo -n true`), else CR_EAUTH with the hint to use
 * --ask-sudo-password.  A password that turns out to be unnecessary
 * (NOPASSWD) is then not sent at all.  0 when root, no elevation, or
 * run0. */
int host_remote_check_sudo(struct host *h);

#endif

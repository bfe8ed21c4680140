/* sshconfig.h: OpenSSH client configuration files (ssh_config(5)) read into
 * a struct ssh_target, for the keywords crebuild uses (the ones sshopts.h
 * knows).  libssh 0.10's own reader is not used: it knows only yes/no for
 * StrictHostKeyChecking (accept-new, ask and off are dropped silently) and
 * turns ProxyJump into a ProxyCommand running `ssh -W`.
 *
 * As with ssh: a value already in the target (NIX_SSHOPTS) wins, then the
 * first value obtained from the files (IdentityFile accumulates).
 * Supported: `Key value` and `Key=value`, case-insensitive keywords, quoted
 * arguments ("..." and '...', backslash escapes as OpenSSH's argv_split),
 * comments (a line, or a word, starting with #), `Host` with several
 * patterns (`*`, `?`, `!negation`; case-sensitive, against the host as
 * given, in the second reading for Match final against the final host
 * name, lower-cased), `Match all`, `Match [!]host LIST`,
 * `Match [!]originalhost LIST`, `Match [!]user LIST` (the remote user known
 * so far, else the local one), `Match [!]localuser LIST`, `Match [!]exec
 * CMD` (CMD with %% %d %h %i %k %L %l %n %p %r %u expanded, run by the exec
 * callback, only when the criteria before it hold; it matches when it
 * exits 0), `Match [!]final` (true in a second reading of all the files,
 * made when a first one met it, as ssh), `Match [!]canonical` (never true:
 * host names are not canonicalized), `Match [!]localnetwork LIST` (an
 * address of an interface that is up is in one of the networks),
 * `Match [!]tagged LIST` (Tag or -P),
 * criteria of one line all holding
 * (other criteria skip the block, with a note), `Include` (several arguments, ~
 * and globs, relative to ~/.ssh for user files and /etc/ssh for the global one;
 * nested up to 16 deep; an Include in a block that does not apply is read
 * for its checks only: nothing in it applies).
 * Unknown keywords are notes, not errors.  An invalid value on a line that
 * applies is an error naming the file and line.  As ssh, ~/.ssh/config and
 * every included file must be owned by us or root and not writable by
 * group or others ("Bad owner or permissions"); -F FILE and
 * /etc/ssh/ssh_config are not checked. */
#ifndef CREBUILD_SSHCONFIG_H
#define CREBUILD_SSHCONFIG_H

#include <stddef.h>

#include "crebuild/sshopts.h"
#include "crebuild/strvec.h"

#define SSHCONFIG_MAX_DEPTH 16

struct sshconfig;

/* Read the files an Include names: path is absolute (or as written when
 * no home/dir applies) and may be a glob.  Call sshconfig_parse for each
 * file with depth.  0, or CR_EUSAGE with *err. */
typedef int (*sshconfig_include_fn)(struct sshconfig *cfg,
                                    const char *path,
                                    int depth,
                                    char **err);

/* Run a Match exec command (tokens expanded).  1 when it exited 0, 0
 * when it did not (or could not run), or CR_E* with *err. */
typedef int (*sshconfig_exec_fn)(struct sshconfig *cfg,
                                 const char *command,
                                 char **err);

struct sshconfig {
    struct ssh_target *t; /* values fill what is unset */
    const char *host;     /* the host as given: Host, Match originalhost */
    const char *home;     /* ~ and %d; NULL: unknown */
    const char *dir;      /* base of relative Include paths; NULL: as is */
    sshconfig_include_fn include; /* NULL: Include is skipped (a note) */
    sshconfig_exec_fn exec;       /* NULL: Match exec skips (a note) */
    /* This machine, for Match user/localuser/exec (%u %i %l %L); NULL
     * or "" where unknown. */
    const char *local_user;
    const char *local_host;
    unsigned local_uid;
    /* Addresses of this machine's interfaces that are up, for Match
     * localnetwork; NULL: such a block is skipped (a note).  With
     * local_addrs_unread set, the interfaces are read into it at the
     * first Match localnetwork. */
    struct strvec *local_addrs;
    int local_addrs_unread;
    /* Match final: false in the first reading, which sets want_final when
     * it meets one; sshconfig_load then reads again with final_pass. */
    int final_pass;
    int want_final;
    /* Set while reading the files of an Include in a block that does not
     * apply: no Host or Match block in them applies (as ssh). */
    int never_match;
    struct strvec *warnings;
    struct strvec *notes;
    void *userdata;
};

/* Parse one file's text (len bytes; NUL bytes end a line) named origin in
 * messages, at Include depth (0 for a top-level file).  Pure but for the
 * include callback.  Returns 0, or CR_EUSAGE with a one-line *err. */
int sshconfig_parse(struct sshconfig *cfg,
                    const char *text,
                    size_t len,
                    const char *origin,
                    int depth,
                    char **err);

/* The exec callback for real commands: the user's shell ($SHELL, else
 * /bin/sh) with -c, stdin and stdout /dev/null, stderr ours, as ssh. */
int
sshconfig_exec_shell(struct sshconfig *cfg, const char *command, char **err);

/* The include callback for real files (glob, check the owner and mode,
 * read, parse). */
int sshconfig_include_files(struct sshconfig *cfg,
                            const char *path,
                            int depth,
                            char **err);

/* Read the configuration for t->host into t, as ssh does: t->config
 * ("-F FILE": that file only, which must be readable; "none": nothing),
 * otherwise ~/.ssh/config (home from the password database, else $HOME)
 * then /etc/ssh/ssh_config; all of it twice when a Match final asks for
 * it.  %h and %% in HostName are expanded after the first reading, the
 * paths at the end (sshconfig_expand_paths).  Returns 0, or CR_EUSAGE
 * with *err. */
int sshconfig_load(struct ssh_target *t,
                   struct strvec *warnings,
                   struct strvec *notes,
                   char **err);

/* Match localnetwork: is addr (IPv4 or IPv6 text) in one of the networks
 * of list ("ADDR/BITS,..."; a bare address is the whole of it; host bits
 * must be zero)?  1 or 0; -1 when the list is invalid (checked whole, also
 * with addr NULL). */
int sshconfig_match_networks(const char *addr, const char *list);

/* Does host match the pattern (`*`, `?`; case-sensitive, as ssh's
 * match_pattern)? */
int sshconfig_match_pattern(const char *host, const char *pattern);

/* May ssh read a user config file with this owner and mode (st_uid,
 * st_mode) when run by uid?  Owned by uid or root, not writable by group
 * or others (OpenSSH's rule; Debian's build also allows group-writable
 * files of a group holding only their owner). */
int sshconfig_file_secure(unsigned owner,
                          unsigned mode,
                          unsigned uid,
                          int private_group);

/* The paths in cfg->t expanded as ssh does once its configuration is
 * read, so that they can be used (and given to libssh) as they are:
 * IdentityFile (but pkcs11: URIs), UserKnownHostsFile and IdentityAgent
 * get ~ (cfg->home, from the passwd entry; ~user from that user's), then
 * %C %L %i %k %l %n %p %d %h %r %u %% (%h: the final host name,
 * lower-cased; %r: the remote user, else cfg->local_user; %p: 22 by
 * default; %k: the host as given) and ${VAR}; GlobalKnownHostsFile ~
 * only.  "none" stays.  UserKnownHostsFile none makes
 * StrictHostKeyChecking yes (ssh reads no user file then and never adds
 * a key).  IdentityAgent SSH_AUTH_SOCK becomes unset (the environment's
 * agent) and $VAR that variable's value (none when unset).  Returns 0,
 * or CR_EUSAGE with *err (an unknown token, an unset variable, an
 * unknown ~user). */
int sshconfig_expand_paths(struct sshconfig *cfg, char **err);

#endif

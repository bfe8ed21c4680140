/* sshopts.h: a host string (`user@host`, `[v6]`, `ssh://`, `ssh-ng://`) and
 * NIX_SSHOPTS (OpenSSH command-line options, split like Python's shlex)
 * turned into one struct ssh_target; ProxyJump lists.  Pure: no I/O (but
 * the services database for a Port given by name), no libssh; the
 * warnings and notes are returned for the caller to log.  ssh_config
 * files are read by sshconfig.h into the same struct. */
#ifndef CREBUILD_SSHOPTS_H
#define CREBUILD_SSHOPTS_H

#include "crebuild/strvec.h"

/* StrictHostKeyChecking.  Unset means ask (OpenSSH's default). */
enum ssh_strict {
    CR_SSH_STRICT_UNSET = 0,
    CR_SSH_STRICT_ASK,
    CR_SSH_STRICT_YES,
    CR_SSH_STRICT_ACCEPT_NEW,
    CR_SSH_STRICT_NO, /* "no" and "off": unknown keys added, changed
                         keys still refused */
};

/* Which prefix the host string had. */
enum ssh_scheme {
    CR_SSH_SCHEME_NONE = 0,
    CR_SSH_SCHEME_SSH,    /* ssh:// */
    CR_SSH_SCHEME_SSH_NG, /* ssh-ng:// */
};

/* Time values (ConnectTimeout, ServerAliveInterval) and
 * ServerAliveCountMax: ssh takes up to 2^31-1; crebuild holds larger ones
 * at these (the connection code counts milliseconds in an int). */
#define SSHOPTS_TIME_MAX  2147483 /* seconds, about 24.8 days */
#define SSHOPTS_COUNT_MAX 1000

/* Every field is owned; -1 (or NULL, or 0 for enums and port) means "not
 * given", so ~/.ssh/config or the default applies.  As with ssh, the first
 * value given for a key wins (but -F: the last); IdentityFile accumulates.
 * Paths are kept as written (sshconfig_load expands them). */
struct ssh_target {
    char *raw;  /* the host string as given (for messages and store URIs) */
    char *host; /* host name or address: IPv6 un-bracketed, %25 -> % */
    enum ssh_scheme scheme;
    char *user;     /* -l, -o User, user@host */
    int port;       /* -p, -o Port, ssh://host:port; 0 = unset */
    char *hostname; /* -o HostName (connect here, known_hosts by host) */
    char *config;   /* -F FILE ("none": no config file); the last -F */
    struct strvec identities; /* -i, -o IdentityFile, in order */
    char *known_hosts;        /* UserKnownHostsFile (first file; "none") */
    char *global_known_hosts; /* GlobalKnownHostsFile (first file; "none") */
    char *identity_agent;     /* IdentityAgent ("none" = no agent) */
    enum ssh_strict strict;
    int connect_timeout; /* seconds (s/m/h/d/w suffixes as ssh's) */
    int alive_interval;  /* ServerAliveInterval, seconds; 0 = off */
    int alive_count;     /* ServerAliveCountMax */
    /* ProxyJump and ProxyCommand exclude each other: the first one given
     * wins, as with ssh. */
    char *proxy_jump;         /* -J, -o ProxyJump ("none" = off) */
    char *proxy_command;      /* -o ProxyCommand ("none" = off) */
    int compression;          /* -C, -o Compression: 0/1 */
    char *ciphers;            /* -c, -o Ciphers */
    char *hostkey_algorithms; /* -o HostKeyAlgorithms */
    char *kex_algorithms;     /* -o KexAlgorithms */
    char *macs;               /* -m, -o MACs */
    char *pubkey_algorithms;  /* -o PubkeyAcceptedAlgorithms */
    int batch_mode;           /* -o BatchMode: 0/1 */
    int identities_only;      /* -o IdentitiesOnly: 0/1 */
    int pubkey_auth; /* -o PubkeyAuthentication: 0/1 (unbound, host-bound: 1) */
    int forward_agent;  /* -A / -a, -o ForwardAgent (accepted only) */
    int address_family; /* -4 / -6, -o AddressFamily: 0 any, 4, 6 */
    int log_level;      /* -o LogLevel / -v: 0 quiet .. 3 debug3; -1 unset */
    char *tag;          /* -P, -o Tag (OpenSSH 9.4): for Match tagged */
};

void ssh_target_init(struct ssh_target *t);
void ssh_target_release(struct ssh_target *t);
/* dst (initialised or released) becomes a deep copy of src. */
void ssh_target_copy(struct ssh_target *dst, const struct ssh_target *src);

/* Split s like Python's shlex.split (POSIX mode): blanks separate words,
 * '...' is literal, "..." honours \" and \\, a backslash outside quotes
 * escapes the next character.  Words are appended to out.  Returns 0, or
 * CR_EUSAGE with a one-line *err (caller frees) for an open quote or a
 * trailing backslash. */
int sshopts_split(const char *s, struct strvec *out, char **err);

/* Parse OpenSSH options (argv words, no program name) into t.
 * Options crebuild cannot use but that are harmless (ControlMaster,
 * ControlPath, ControlPersist, RequestTTY, -t, -tt, -T, -x, -a, -n, ...)
 * produce one line in notes (for debug logging); any other unknown option
 * produces one line in warnings.  The argument of -o is read like a line
 * of a config file (sshopts_apply_words).  Returns 0, or CR_EUSAGE with
 * *err for a missing or invalid value. */
int sshopts_parse_args(struct ssh_target *t,
                       const struct strvec *args,
                       struct strvec *warnings,
                       struct strvec *notes,
                       char **err);

/* One option: key (case-insensitive, e.g. "Port") and its value, one
 * argument already unquoted (ProxyCommand: the command).  A value already
 * set in t is kept (the first one wins; IdentityFile accumulates).
 * from_config: an unknown key is only a note (ssh_config files name many
 * OpenSSH-only keywords), not a warning.  Returns 0, or CR_EUSAGE with
 * *err for a missing or invalid value.  Port takes a number or a service
 * name; times take OpenSSH's suffixes (sshopts_convtime) and "none". */
int sshopts_apply_option(struct ssh_target *t,
                         const char *key,
                         const char *value,
                         int from_config,
                         struct strvec *warnings,
                         struct strvec *notes,
                         char **err);

/* An option as in an ssh_config line or `-o`: key, its arguments (args,
 * split by sshopts_split_config) and the text after the key as written
 * (rest: ProxyCommand takes it whole).  Keys crebuild uses that take one
 * value refuse more (as ssh); UserKnownHostsFile and GlobalKnownHostsFile
 * take a list (the first file is used; "none" must be alone).  Otherwise
 * as sshopts_apply_option. */
int sshopts_apply_words(struct ssh_target *t,
                        const char *key,
                        const struct strvec *args,
                        const char *rest,
                        int from_config,
                        struct strvec *warnings,
                        struct strvec *notes,
                        char **err);

/* Split the arguments of an ssh_config line as OpenSSH's argv_split:
 * blanks separate words; "..." and '...' quote; a backslash escapes a
 * quote, a backslash or (outside quotes) a blank; a word starting with #
 * ends the line.  Words are appended to out.  0, or -1 (open quote). */
int sshopts_split_config(const char *s, struct strvec *out);

/* OpenSSH's convtime: seconds from "90", "1m30s", "1h", "2d", "1w" (the
 * suffixes in either case, parts added up), at most 2^31-1; -1 when
 * invalid. */
int sshopts_convtime(const char *s);

/* Parse a host string into t->raw, t->host, t->scheme and, when not set
 * yet, t->user and t->port (a port only inside ssh:// or ssh-ng:// URIs).
 * Rejects an empty string, a leading '-', blanks, control characters,
 * quotes and shell metacharacters.  Returns 0 or CR_EUSAGE with *err. */
int sshopts_parse_host(struct ssh_target *t, const char *s, char **err);

/* The whole thing, in ssh's order: NIX_SSHOPTS (may be NULL) first, then the
 * host string, so an option given in NIX_SSHOPTS wins over user@ as it does
 * on ssh's command line.  On error t is released. */
int sshopts_target(struct ssh_target *t,
                   const char *host,
                   const char *nix_sshopts,
                   struct strvec *warnings,
                   struct strvec *notes,
                   char **err);

/* The user-visible name: "user@host" or "host" (caller frees). */
char *ssh_target_name(const struct ssh_target *t);

/* HostName with OpenSSH's tokens expanded: %h (the host as given) and %%
 * (caller frees).  An unknown token is kept as is. */
char *sshopts_expand_hostname(const char *hostname, const char *host);

/* One hop of a ProxyJump list. */
struct ssh_hop {
    char *raw;  /* the hop as written */
    char *user; /* NULL when not given */
    char *host; /* IPv6 un-bracketed */
    int port;   /* 0 when not given */
};

/* Split a ProxyJump value: comma-separated [user@]host[:port] (also
 * [v6]:port and ssh://[user@]host[:port]), in the order the connections
 * are made.  On success *hops (free with ssh_hops_free) has *n >= 1
 * entries.  Returns 0 or CR_EUSAGE with *err. */
int sshopts_parse_jump(const char *spec,
                       struct ssh_hop **hops,
                       size_t *n,
                       char **err);
void ssh_hops_free(struct ssh_hop *hops, size_t n);

#endif

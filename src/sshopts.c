/* sshopts.c: host strings and NIX_SSHOPTS parsed into struct ssh_target. */
#include "crebuild/sshopts.h"
#include "crebuild/strbuf.h"
#include "crebuild/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void
ssh_target_init(struct ssh_target *t)
{
    memset(t, 0, sizeof(*t));
    strvec_init(&t->identities);
    t->connect_timeout = -1;
    t->alive_interval = -1;
    t->alive_count = -1;
    t->compression = -1;
    t->batch_mode = -1;
    t->identities_only = -1;
    t->pubkey_auth = -1;
    t->forward_agent = -1;
    t->log_level = -1;
}

void
ssh_target_release(struct ssh_target *t)
{
    free(t->raw);
    free(t->host);
    free(t->user);
    free(t->hostname);
    free(t->config);
    strvec_clear(&t->identities);
    free(t->known_hosts);
    free(t->global_known_hosts);
    free(t->identity_agent);
    free(t->proxy_jump);
    free(t->proxy_command);
    free(t->ciphers);
    free(t->hostkey_algorithms);
    free(t->kex_algorithms);
    free(t->macs);
    free(t->pubkey_algorithms);
    free(t->tag);
    ssh_target_init(t);
}

static char *
dup_or_null(const char *s)
{
    return s != NULL ? xstrdup(s) : NULL;
}

void
ssh_target_copy(struct ssh_target *dst, const struct ssh_target *src)
{
    *dst = *src;
    dst->raw = dup_or_null(src->raw);
    dst->host = dup_or_null(src->host);
    dst->user = dup_or_null(src->user);
    dst->hostname = dup_or_null(src->hostname);
    dst->config = dup_or_null(src->config);
    strvec_init(&dst->identities);
    strvec_pusharr(&dst->identities, &src->identities);
    dst->known_hosts = dup_or_null(src->known_hosts);
    dst->global_known_hosts = dup_or_null(src->global_known_hosts);
    dst->identity_agent = dup_or_null(src->identity_agent);
    dst->proxy_jump = dup_or_null(src->proxy_jump);
    dst->proxy_command = dup_or_null(src->proxy_command);
    dst->ciphers = dup_or_null(src->ciphers);
    dst->hostkey_algorithms = dup_or_null(src->hostkey_algorithms);
    dst->kex_algorithms = dup_or_null(src->kex_algorithms);
    dst->macs = dup_or_null(src->macs);
    dst->pubkey_algorithms = dup_or_null(src->pubkey_algorithms);
    dst->tag = dup_or_null(src->tag);
}

/* ---- shlex ---- */

static int
is_blank(int c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

int
sshopts_split(const char *s, struct strvec *out, char **err)
{
    struct strbuf w = STRBUF_INIT;
    int in_word = 0;
    int rc = CR_EUSAGE;

    *err = NULL;
    while (*s != '\0') {
        char c = *s++;

        if (is_blank(c)) {
            if (in_word) {
                strvec_push(out, w.buf);
                strbuf_reset(&w);
                in_word = 0;
            }
            continue;
        }
        in_word = 1;
        if (c == '\\') {
            if (*s == '\0') {
                *err = xstrdup("NIX_SSHOPTS: no escaped character after "
                               "a trailing backslash");
                goto out;
            }
            strbuf_addch(&w, *s++);
        } else if (c == '\'') {
            const char *end = strchr(s, '\'');

            if (end == NULL) {
                *err = xstrdup("NIX_SSHOPTS: no closing quotation");
                goto out;
            }
            strbuf_add(&w, s, (size_t)(end - s));
            s = end + 1;
        } else if (c == '"') {
            for (;;) {
                if (*s == '\0') {
                    *err = xstrdup("NIX_SSHOPTS: no closing quotation");
                    goto out;
                }
                c = *s++;
                if (c == '"') {
                    break;
                }
                if (c == '\\' && (*s == '"' || *s == '\\')) {
                    c = *s++;
                }
                strbuf_addch(&w, c);
            }
        } else {
            strbuf_addch(&w, c);
        }
    }
    if (in_word) {
        strvec_push(out, w.buf);
    }
    rc = 0;
out:
    strbuf_release(&w);
    return rc;
}

/* ---- OpenSSH options ---- */

enum okey {
    K_UNKNOWN = 0,
    K_IGNORE, /* meaningful only for OpenSSH: debug note */
    K_PORT,
    K_USER,
    K_HOSTNAME,
    K_IDENTITYFILE,
    K_USERKNOWNHOSTSFILE,
    K_GLOBALKNOWNHOSTSFILE,
    K_STRICTHOSTKEYCHECKING,
    K_CONNECTTIMEOUT,
    K_SERVERALIVEINTERVAL,
    K_SERVERALIVECOUNTMAX,
    K_PROXYJUMP,
    K_PROXYCOMMAND,
    K_COMPRESSION,
    K_CIPHERS,
    K_HOSTKEYALGORITHMS,
    K_KEXALGORITHMS,
    K_MACS,
    K_BATCHMODE,
    K_IDENTITIESONLY,
    K_PUBKEYAUTHENTICATION,
    K_LOGLEVEL,
    K_FORWARDAGENT,
    K_ADDRESSFAMILY,
    K_IDENTITYAGENT,
    K_PUBKEYALGORITHMS,
    K_TAG,
};

static const struct {
    const char *name;
    enum okey key;
} okeys[] = {
    {"AddressFamily", K_ADDRESSFAMILY},
    {"BatchMode", K_BATCHMODE},
    {"CheckHostIP", K_IGNORE},
    {"Ciphers", K_CIPHERS},
    {"Compression", K_COMPRESSION},
    {"ConnectTimeout", K_CONNECTTIMEOUT},
    {"ControlMaster", K_IGNORE},
    {"ControlPath", K_IGNORE},
    {"ControlPersist", K_IGNORE},
    {"ForwardAgent", K_FORWARDAGENT},
    {"ForwardX11", K_IGNORE},
    {"GlobalKnownHostsFile", K_GLOBALKNOWNHOSTSFILE},
    {"HashKnownHosts", K_IGNORE},
    {"HostKeyAlgorithms", K_HOSTKEYALGORITHMS},
    {"HostName", K_HOSTNAME},
    {"IdentitiesOnly", K_IDENTITIESONLY},
    {"IdentityAgent", K_IDENTITYAGENT},
    {"IdentityFile", K_IDENTITYFILE},
    {"KexAlgorithms", K_KEXALGORITHMS},
    {"LogLevel", K_LOGLEVEL},
    {"MACs", K_MACS},
    {"Port", K_PORT},
    {"ProxyCommand", K_PROXYCOMMAND},
    {"ProxyJump", K_PROXYJUMP},
    {"PubkeyAcceptedAlgorithms", K_PUBKEYALGORITHMS},
    {"PubkeyAcceptedKeyTypes", K_PUBKEYALGORITHMS},
    {"PubkeyAuthentication", K_PUBKEYAUTHENTICATION},
    {"RequestTTY", K_IGNORE},
    {"SendEnv", K_IGNORE},
    {"ServerAliveCountMax", K_SERVERALIVECOUNTMAX},
    {"ServerAliveInterval", K_SERVERALIVEINTERVAL},
    {"SetEnv", K_IGNORE},
    {"StrictHostKeyChecking", K_STRICTHOSTKEYCHECKING},
    {"Tag", K_TAG},
    {"TCPKeepAlive", K_IGNORE},
    {"UpdateHostKeys", K_IGNORE},
    {"User", K_USER},
    {"UserKnownHostsFile", K_USERKNOWNHOSTSFILE},
    {"VisualHostKey", K_IGNORE},
};

static enum okey
lookup_key(const char *name, size_t n)
{
    for (size_t i = 0; i < ARRAY_SIZE(okeys); i++) {
        if (strlen(okeys[i].name) == n &&
            strncasecmp(okeys[i].name, name, n) == 0) {
            return okeys[i].key;
        }
    }
    return K_UNKNOWN;
}

static int
set_str(char **field, const char *v)
{
    if (*field == NULL) {
        *field = xstrdup(v);
    }
    return 0;
}

static int
set_int(int *field, int v)
{
    if (*field < 0) {
        *field = v;
    }
    return 0;
}

/* IdentityFile and -i accumulate; a file given twice is tried once (as
 * ssh). */
static void
add_identity(struct ssh_target *t, const char *path)
{
    for (size_t i = 0; i < t->identities.n; i++) {
        if (strcmp(t->identities.v[i], path) == 0) {
            return;
        }
    }
    strvec_push(&t->identities, path);
}

static int
parse_yesno(const char *key, const char *v, int *out, char **err)
{
    /* PubkeyAuthentication also takes OpenSSH 9's unbound and host-bound
     * (which restrict what the agent signs): both mean yes here. */
    if (strcasecmp(key, "PubkeyAuthentication") == 0 &&
        (strcasecmp(v, "unbound") == 0 || strcasecmp(v, "host-bound") == 0)) {
        *out = 1;
    } else if (strcasecmp(v, "yes") == 0 || strcasecmp(v, "true") == 0) {
        *out = 1;
    } else if (strcasecmp(v, "no") == 0 || strcasecmp(v, "false") == 0) {
        *out = 0;
    } else {
        *err = xasprintf("ssh option %s: expected yes or no, not '%s'", key, v);
        return CR_EUSAGE;
    }
    return 0;
}

/* OpenSSH's strtonum: decimal (strtoll: leading blanks and a sign
 * allowed) within [min, max].  0, or -1. */
static int
ossh_strtonum(const char *s, long long min, long long max, long long *out)
{
    char *end = NULL;
    long long v;

    errno = 0;
    v = strtoll(s, &end, 10);
    if (end == s || *end != '\0' || errno == ERANGE || v < min || v > max) {
        return -1;
    }
    *out = v;
    return 0;
}

/* OpenSSH's a2port: a number from 1 to 65535 or a TCP service name. */
static int
parse_port(const char *key, const char *v, int *out, char **err)
{
    long long n = -1;

    if (ossh_strtonum(v, 0, 65535, &n) != 0) {
        struct servent se, *res = NULL;
        char buf[4096];

        n = -1;
        if (getservbyname_r(v, "tcp", &se, buf, sizeof(buf), &res) == 0 &&
            res != NULL) {
            n = ntohs((uint16_t)res->s_port);
        }
    }
    if (n <= 0) {
        *err = xasprintf("ssh option %s: invalid port '%s' (a number from 1 "
                         "to 65535 or a service name)",
                         key,
                         v);
        return CR_EUSAGE;
    }
    *out = (int)n;
    return 0;
}

int
sshopts_convtime(const char *s)
{
    long total = 0;
    const char *p = s;

    if (s == NULL || *s == '\0') {
        return -1;
    }
    while (*p != '\0') {
        char *end = NULL;
        long secs;
        long mult = 1;

        errno = 0;
        secs = strtol(p, &end, 10);
        if (end == p || errno == ERANGE || secs < 0) {
            return -1;
        }
        switch (*end++) {
        case '\0':
            end--;
            break;
        case 's':
        case 'S':
            break;
        case 'm':
        case 'M':
            mult = 60;
            break;
        case 'h':
        case 'H':
            mult = 60 * 60;
            break;
        case 'd':
        case 'D':
            mult = 24 * 60 * 60;
            break;
        case 'w':
        case 'W':
            mult = 7 * 24 * 60 * 60;
            break;
        default:
            return -1;
        }
        if (secs > INT_MAX / mult) {
            return -1;
        }
        secs *= mult;
        if (total > INT_MAX - secs) {
            return -1;
        }
        total += secs;
        p = end;
    }
    return (int)total;
}

/* A time (ConnectTimeout, ServerAliveInterval): *out is -1 for "none"
 * (as unset, as with ssh), else the seconds, held at SSHOPTS_TIME_MAX. */
static int
parse_time(const char *key, const char *v, int *out, char **err)
{
    int n;

    if (strcmp(v, "none") == 0) {
        *out = -1;
        return 0;
    }
    n = sshopts_convtime(v);
    if (n < 0) {
        *err = xasprintf("ssh option %s: invalid time value '%s'", key, v);
        return CR_EUSAGE;
    }
    *out = n > SSHOPTS_TIME_MAX ? SSHOPTS_TIME_MAX : n;
    return 0;
}

/* A count (ServerAliveCountMax): 0 to INT_MAX as ssh, held at
 * SSHOPTS_COUNT_MAX. */
static int
parse_count(const char *key, const char *v, int *out, char **err)
{
    long long n = 0;

    if (ossh_strtonum(v, 0, INT_MAX, &n) != 0) {
        *err = xasprintf("ssh option %s: invalid number '%s'", key, v);
        return CR_EUSAGE;
    }
    *out = n > SSHOPTS_COUNT_MAX ? SSHOPTS_COUNT_MAX : (int)n;
    return 0;
}

static int
parse_loglevel(const char *v, int *out, char **err)
{
    static const struct {
        const char *name;
        int level;
    } levels[] = {
        {"QUIET", 0},
        {"FATAL", 0},
        {"ERROR", 0},
        {"INFO", 0},
        {"VERBOSE", 0},
        {"DEBUG", 1},
        {"DEBUG1", 1},
        {"DEBUG2", 2},
        {"DEBUG3", 3},
    };

    for (size_t i = 0; i < ARRAY_SIZE(levels); i++) {
        if (strcasecmp(v, levels[i].name) == 0) {
            *out = levels[i].level;
            return 0;
        }
    }
    *err = xasprintf("ssh option LogLevel: unknown level '%s'", v);
    return CR_EUSAGE;
}

static int
parse_strict(const char *v, enum ssh_strict *out, char **err)
{
    if (strcasecmp(v, "yes") == 0 || strcasecmp(v, "true") == 0) {
        *out = CR_SSH_STRICT_YES;
    } else if (strcasecmp(v, "accept-new") == 0) {
        *out = CR_SSH_STRICT_ACCEPT_NEW;
    } else if (strcasecmp(v, "no") == 0 || strcasecmp(v, "off") == 0 ||
               strcasecmp(v, "false") == 0) {
        *out = CR_SSH_STRICT_NO;
    } else if (strcasecmp(v, "ask") == 0) {
        *out = CR_SSH_STRICT_ASK;
    } else {
        *err = xasprintf("ssh option StrictHostKeyChecking: unknown value "
                         "'%s'",
                         v);
        return CR_EUSAGE;
    }
    return 0;
}

/* An option crebuild does not implement that changes which host key is
 * trusted (an alias to look keys up under, revoked keys, keys from a
 * command or DNS). */
static int
host_key_option(const char *k, size_t klen)
{
    static const char *const names[] = {"HostKeyAlias",
                                        "KnownHostsCommand",
                                        "RevokedHostKeys",
                                        "VerifyHostKeyDNS"};

    for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
        if (strlen(names[i]) == klen && strncasecmp(k, names[i], klen) == 0) {
            return 1;
        }
    }
    return 0;
}

/* One option (see sshopts_apply_option); key is klen bytes. */
static int
apply_kv(struct ssh_target *t,
         const char *kv,
         size_t klen,
         const char *v,
         int from_config,
         struct strvec *warnings,
         struct strvec *notes,
         char **err)
{
    const char *name = NULL;
    enum okey key = lookup_key(kv, klen);
    int b = 0;
    int rc = 0;

    if (klen == 0) {
        *err = xstrdup("ssh option: missing name");
        return CR_EUSAGE;
    }
    if (*v == '\0' && key != K_UNKNOWN && key != K_IGNORE) {
        *err = xasprintf("ssh option %.*s: missing value", (int)klen, kv);
        return CR_EUSAGE;
    }
    for (size_t i = 0; i < ARRAY_SIZE(okeys); i++) {
        if (okeys[i].key == key) {
            name = okeys[i].name;
            break;
        }
    }
    switch (key) {
    case K_UNKNOWN:
        /* Options that change which host key is trusted are worth a
         * warning even from a config file. */
        strvec_pushf(from_config && !host_key_option(kv, klen) ? notes
                                                               : warnings,
                     "ignoring ssh option '%.*s' (not supported by crebuild)",
                     (int)klen,
                     kv);
        break;
    case K_IGNORE:
        strvec_pushf(
            notes, "ignoring OpenSSH-only option '%.*s'", (int)klen, kv);
        break;
    case K_PORT:
        rc = parse_port(name, v, &b, err);
        if (rc == 0 && t->port == 0) {
            t->port = b;
        }
        break;
    case K_USER:
        set_str(&t->user, v);
        break;
    case K_TAG:
        set_str(&t->tag, v);
        break;
    case K_HOSTNAME:
        set_str(&t->hostname, v);
        break;
    case K_IDENTITYFILE:
        add_identity(t, v);
        break;
    case K_USERKNOWNHOSTSFILE:
        set_str(&t->known_hosts, v);
        break;
    case K_GLOBALKNOWNHOSTSFILE:
        set_str(&t->global_known_hosts, v);
        break;
    case K_IDENTITYAGENT:
        set_str(&t->identity_agent, v);
        break;
    case K_STRICTHOSTKEYCHECKING: {
        enum ssh_strict s = CR_SSH_STRICT_UNSET;

        rc = parse_strict(v, &s, err);
        if (rc == 0 && t->strict == CR_SSH_STRICT_UNSET) {
            t->strict = s;
        }
        break;
    }
    case K_CONNECTTIMEOUT:
        rc = parse_time(name, v, &b, err);
        if (rc == 0) {
            set_int(&t->connect_timeout, b);
        }
        break;
    case K_SERVERALIVEINTERVAL:
        rc = parse_time(name, v, &b, err);
        if (rc == 0) {
            set_int(&t->alive_interval, b);
        }
        break;
    case K_SERVERALIVECOUNTMAX:
        rc = parse_count(name, v, &b, err);
        if (rc == 0) {
            set_int(&t->alive_count, b);
        }
        break;
    case K_PROXYJUMP:
        if (t->proxy_command == NULL) {
            set_str(&t->proxy_jump, v);
        }
        break;
    case K_PROXYCOMMAND:
        if (t->proxy_jump == NULL) {
            set_str(&t->proxy_command, v);
        }
        break;
    case K_PUBKEYALGORITHMS:
        set_str(&t->pubkey_algorithms, v);
        break;
    case K_CIPHERS:
        set_str(&t->ciphers, v);
        break;
    case K_HOSTKEYALGORITHMS:
        set_str(&t->hostkey_algorithms, v);
        break;
    case K_KEXALGORITHMS:
        set_str(&t->kex_algorithms, v);
        break;
    case K_MACS:
        set_str(&t->macs, v);
        break;
    case K_LOGLEVEL:
        rc = parse_loglevel(v, &b, err);
        if (rc == 0) {
            set_int(&t->log_level, b);
        }
        break;
    case K_ADDRESSFAMILY:
        if (strcasecmp(v, "any") == 0) {
            b = 0;
        } else if (strcasecmp(v, "inet") == 0) {
            b = 4;
        } else if (strcasecmp(v, "inet6") == 0) {
            b = 6;
        } else {
            *err = xasprintf("ssh option AddressFamily: unknown value '%s'", v);
            return CR_EUSAGE;
        }
        if (t->address_family == 0) {
            t->address_family = b;
        }
        break;
    case K_COMPRESSION:
    case K_BATCHMODE:
    case K_IDENTITIESONLY:
    case K_PUBKEYAUTHENTICATION:
    case K_FORWARDAGENT:
        rc = parse_yesno(name, v, &b, err);
        if (rc != 0) {
            break;
        }
        if (key == K_COMPRESSION) {
            set_int(&t->compression, b);
        } else if (key == K_BATCHMODE) {
            set_int(&t->batch_mode, b);
        } else if (key == K_IDENTITIESONLY) {
            set_int(&t->identities_only, b);
        } else if (key == K_PUBKEYAUTHENTICATION) {
            set_int(&t->pubkey_auth, b);
        } else {
            set_int(&t->forward_agent, b);
            strvec_pushf(notes,
                         "ssh option ForwardAgent accepted; crebuild "
                         "does not forward the agent");
        }
        break;
    }
    return rc;
}

int
sshopts_apply_option(struct ssh_target *t,
                     const char *key,
                     const char *value,
                     int from_config,
                     struct strvec *warnings,
                     struct strvec *notes,
                     char **err)
{
    *err = NULL;
    return apply_kv(
        t, key, strlen(key), value, from_config, warnings, notes, err);
}

int
sshopts_split_config(const char *s, struct strvec *out)
{
    struct strbuf w = STRBUF_INIT;
    int rc = 0;

    for (;;) {
        char quote = 0;

        while (*s == ' ' || *s == '\t') {
            s++;
        }
        if (*s == '\0' || *s == '#') {
            break;
        }
        strbuf_reset(&w);
        for (; *s != '\0'; s++) {
            if (*s == '\\' && (s[1] == '\'' || s[1] == '"' || s[1] == '\\' ||
                               (quote == 0 && s[1] == ' '))) {
                s++;
                strbuf_addch(&w, *s);
            } else if (quote == 0 && (*s == ' ' || *s == '\t')) {
                break;
            } else if (quote == 0 && (*s == '"' || *s == '\'')) {
                quote = *s;
            } else if (quote != 0 && *s == quote) {
                quote = 0;
            } else {
                strbuf_addch(&w, *s);
            }
        }
        if (quote != 0) {
            rc = -1;
            break;
        }
        strvec_push(out, w.buf != NULL ? w.buf : "");
    }
    strbuf_release(&w);
    return rc;
}

int
sshopts_apply_words(struct ssh_target *t,
                    const char *key,
                    const struct strvec *args,
                    const char *rest,
                    int from_config,
                    struct strvec *warnings,
                    struct strvec *notes,
                    char **err)
{
    size_t klen = strlen(key);
    enum okey k = lookup_key(key, klen);
    const char *v = args->n > 0 ? args->v[0] : "";
    const char *name = key;

    *err = NULL;
    for (size_t i = 0; i < ARRAY_SIZE(okeys); i++) {
        if (okeys[i].key == k) {
            name = okeys[i].name;
            break;
        }
    }
    switch (k) {
    case K_UNKNOWN:
    case K_IGNORE:
        break;
    case K_PROXYCOMMAND: /* the rest of the line, as written */
        v = rest != NULL ? rest : "";
        break;
    case K_USERKNOWNHOSTSFILE:
    case K_GLOBALKNOWNHOSTSFILE:
        /* A list: crebuild (libssh) uses the first file. */
        for (size_t i = 0; i < args->n; i++) {
            if (args->v[i][0] == '\0' && args->n > 1) {
                *err = xasprintf("ssh option %s: empty argument", name);
                return CR_EUSAGE;
            }
            if (strcasecmp(args->v[i], "none") == 0 && args->n > 1) {
                *err = xasprintf("ssh option %s: \"none\" must appear alone",
                                 name);
                return CR_EUSAGE;
            }
        }
        break;
    default:
        if (args->n > 1) {
            *err = xasprintf("ssh option %s: extra arguments at end of line",
                             name);
            return CR_EUSAGE;
        }
        break;
    }
    return apply_kv(t, key, klen, v, from_config, warnings, notes, err);
}

/* One "Key=Value" or "Key Value" (the argument of -o), read as ssh reads
 * it: like a line of a config file (quotes, escapes, comments). */
static int
apply_o(struct ssh_target *t,
        const char *kv,
        struct strvec *warnings,
        struct strvec *notes,
        char **err)
{
    struct strvec words = STRVEC_INIT;
    char *line = xstrdup(kv);
    size_t n = strlen(line);
    char *key = NULL;
    char *rest = NULL;
    size_t klen;
    int rc;

    while (n > 0 && strchr(" \t\r\n", line[n - 1]) != NULL) {
        line[--n] = '\0';
    }
    key = line + strspn(line, " \t");
    klen = strcspn(key, "= \t");
    rest = key + klen;
    rest += strspn(rest, " \t");
    if (*rest == '=') {
        rest++;
        rest += strspn(rest, " \t");
    }
    if (klen == 0) {
        *err = xasprintf("ssh option -o '%s': missing name", kv);
        rc = CR_EUSAGE;
        goto out;
    }
    key[klen] = '\0'; /* rest starts after it */
    if (sshopts_split_config(rest, &words) != 0) {
        *err = xasprintf("ssh option %s: unterminated quote", key);
        rc = CR_EUSAGE;
        goto out;
    }
    rc = sshopts_apply_words(t, key, &words, rest, 0, warnings, notes, err);
out:
    strvec_clear(&words);
    free(line);
    return rc;
}

/* Flags that take an argument in OpenSSH 9.2, and -P (9.4). */
static int
takes_arg(char c)
{
    return c != '\0' && strchr("BbcDEeFIiJLlmOoPpQRSWw", c) != NULL;
}

/* One flag with its argument (NULL for flags without one). */
static int
apply_flag(struct ssh_target *t,
           char f,
           const char *arg,
           struct strvec *warnings,
           struct strvec *notes,
           char **err)
{
    int b = 0;
    int rc = 0;

    switch (f) {
    case 'p':
        rc = parse_port("-p", arg, &b, err);
        if (rc == 0 && t->port == 0) {
            t->port = b;
        }
        break;
    case 'i':
        add_identity(t, arg);
        break;
    case 'l':
        set_str(&t->user, arg);
        break;
    case 'F': /* the last one wins, as with ssh */
        free(t->config);
        t->config = xstrdup(arg);
        break;
    case 'P':
        set_str(&t->tag, arg);
        break;
    case 'J':
        if (t->proxy_command == NULL) {
            set_str(&t->proxy_jump, arg);
        }
        break;
    case 'c':
        set_str(&t->ciphers, arg);
        break;
    case 'm':
        set_str(&t->macs, arg);
        break;
    case 'o':
        rc = apply_o(t, arg, warnings, notes, err);
        break;
    case 'A':
    case 'a':
        set_int(&t->forward_agent, f == 'A');
        strvec_pushf(notes,
                     "ssh option -%c accepted; crebuild does not "
                     "forward the agent",
                     f);
        break;
    case 'C':
        set_int(&t->compression, 1);
        break;
    case '4':
    case '6':
        if (t->address_family == 0) {
            t->address_family = f - '0';
        }
        break;
    case 'q':
        set_int(&t->log_level, 0);
        break;
    case 'v':
        /* Each -v raises the level, as with ssh. */
        t->log_level = t->log_level < 1 ? 1 : t->log_level + 1;
        if (t->log_level > 3) {
            t->log_level = 3;
        }
        break;
    case 't':
    case 'T':
    case 'x':
    case 'n':
    case 'k':
    case 'M':
    case 'S':
        strvec_pushf(notes, "ignoring OpenSSH-only option '-%c'", f);
        break;
    default:
        strvec_pushf(warnings,
                     "ignoring ssh option '-%c' (not supported by crebuild)",
                     f);
        break;
    }
    return rc;
}

int
sshopts_parse_args(struct ssh_target *t,
                   const struct strvec *args,
                   struct strvec *warnings,
                   struct strvec *notes,
                   char **err)
{
    *err = NULL;
    for (size_t i = 0; i < args->n; i++) {
        const char *w = args->v[i];

        if (w[0] != '-' || w[1] == '\0') {
            strvec_pushf(warnings,
                         "ignoring '%s' in NIX_SSHOPTS (not an "
                         "option)",
                         w);
            continue;
        }
        if (strcmp(w, "--") == 0) {
            strvec_pushf(warnings, "ignoring '--' in NIX_SSHOPTS");
            continue;
        }
        /* Bundled flags (-tt, -AC, -p22, -oPort=22) as ssh's getopt. */
        for (const char *p = w + 1; *p != '\0'; p++) {
            const char *arg = NULL;
            int rc;

            if (takes_arg(*p)) {
                if (p[1] != '\0') {
                    arg = p + 1;
                } else if (i + 1 < args->n) {
                    arg = args->v[++i];
                } else {
                    *err = xasprintf("ssh option -%c requires an argument", *p);
                    return CR_EUSAGE;
                }
            }
            rc = apply_flag(t, *p, arg, warnings, notes, err);
            if (rc != 0) {
                return rc;
            }
            if (arg != NULL) {
                break;
            }
        }
    }
    return 0;
}

/* ---- host strings ---- */

static int
user_char_ok(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-' ||
           c == '+';
}

static int
host_char_ok(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

/* An IPv6 literal, optionally with a zone ("%eth0" or "%25eth0"); the
 * result has "%25" decoded. */
static char *
parse_v6(const char *s, size_t n)
{
    struct strbuf sb = STRBUF_INIT;
    size_t i = 0;
    int colons = 0;

    for (; i < n && s[i] != '%'; i++) {
        char c = s[i];

        if (c == ':') {
            colons++;
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
                     (c >= 'A' && c <= 'F') || c == '.')) {
            goto bad;
        }
        strbuf_addch(&sb, c);
    }
    if (colons < 2) {
        goto bad;
    }
    if (i < n) {
        i++;
        if (n - i >= 2 && s[i] == '2' && s[i + 1] == '5') {
            i += 2;
        }
        if (i == n) {
            goto bad;
        }
        strbuf_addch(&sb, '%');
        for (; i < n; i++) {
            if (!host_char_ok(s[i])) {
                goto bad;
            }
            strbuf_addch(&sb, s[i]);
        }
    }
    return strbuf_detach(&sb);
bad:
    strbuf_release(&sb);
    return NULL;
}

/* [user@]host[:...] after any scheme: checks the user part, returns the
 * host (a name, a bare or bracketed IPv6 address, and with
 * names_in_brackets also "[name]" as ssh takes it in ProxyJump) and sets
 * *at (the '@' or NULL) and *rest (what follows the host: ":port", "" or
 * garbage for the caller to judge).  NULL and *why on failure. */
static char *
split_host(const char *p,
           int names_in_brackets,
           const char **at_out,
           const char **rest,
           const char **why)
{
    const char *at = strrchr(p, '@');
    const char *hs = at != NULL ? at + 1 : p;
    const char *he = NULL;
    char *host = NULL;

    *at_out = at;
    if (at != NULL) {
        if (at == p) {
            *why = "empty user name";
            return NULL;
        }
        if (*p == '-') {
            *why = "user name must not start with '-'";
            return NULL;
        }
        for (const char *q = p; q < at; q++) {
            if (!user_char_ok(*q)) {
                *why = "unsupported character in user name";
                return NULL;
            }
        }
    }
    if (*hs == '-') {
        *why = "host name must not start with '-'";
        return NULL;
    }
    if (*hs == '[') {
        size_t len;

        he = strchr(hs, ']');
        if (he == NULL) {
            *why = "missing ']'";
            return NULL;
        }
        len = (size_t)(he - hs - 1);
        if (names_in_brackets && memchr(hs + 1, ':', len) == NULL) {
            for (const char *q = hs + 1; q < he; q++) {
                if (!host_char_ok(*q)) {
                    *why = "unsupported character in host name";
                    return NULL;
                }
            }
            host = xstrndup(hs + 1, len);
        } else if ((host = parse_v6(hs + 1, len)) == NULL) {
            *why = "invalid IPv6 address";
            return NULL;
        }
        he++;
    } else {
        const char *colon = strchr(hs, ':');

        if (colon != NULL && strchr(colon + 1, ':') != NULL) {
            /* A bare IPv6 address, without a port. */
            he = hs + strlen(hs);
            host = parse_v6(hs, (size_t)(he - hs));
            if (host == NULL) {
                *why = "invalid IPv6 address";
                return NULL;
            }
        } else {
            he = colon != NULL ? colon : hs + strlen(hs);
            for (const char *q = hs; q < he; q++) {
                if (!host_char_ok(*q)) {
                    *why = "unsupported character in host name";
                    return NULL;
                }
            }
            host = xstrndup(hs, (size_t)(he - hs));
        }
    }
    if (*host == '\0') {
        free(host);
        *why = "empty host name";
        return NULL;
    }
    *rest = he;
    return host;
}

static int
host_fail(const char *s, const char *why, char **err)
{
    *err = xasprintf("invalid host '%s': %s", s, why);
    return CR_EUSAGE;
}

int
sshopts_parse_host(struct ssh_target *t, const char *s, char **err)
{
    enum ssh_scheme scheme = CR_SSH_SCHEME_NONE;
    const char *p = s;
    const char *at = NULL;
    const char *he = NULL;
    const char *why = NULL;
    char *host = NULL;
    int port = 0;

    *err = NULL;
    if (*s == '\0') {
        *err = xstrdup("invalid host: empty host name");
        return CR_EUSAGE;
    }
    for (const char *q = s; *q != '\0'; q++) {
        unsigned char c = (unsigned char)*q;

        if (c <= 0x20 || c == 0x7f || c == '\'' || c == '"' || c == '`') {
            /* Do not echo control characters back to the terminal. */
            *err = xstrdup("invalid host: contains a blank, a quote or a "
                           "control character");
            return CR_EUSAGE;
        }
    }
    if (*s == '-') {
        return host_fail(s, "must not start with '-'", err);
    }
    if (strncmp(p, "ssh://", 6) == 0) {
        scheme = CR_SSH_SCHEME_SSH;
        p += 6;
    } else if (strncmp(p, "ssh-ng://", 9) == 0) {
        scheme = CR_SSH_SCHEME_SSH_NG;
        p += 9;
    }
    host = split_host(p, 0, &at, &he, &why);
    if (host == NULL) {
        return host_fail(s, why, err);
    }
    if (*he == ':') {
        unsigned long long n = 0;

        if (scheme == CR_SSH_SCHEME_NONE) {
            free(host);
            return host_fail(s,
                             "a port is only accepted in an ssh:// URI "
                             "(or use NIX_SSHOPTS=\"-p PORT\")",
                             err);
        }
        if (parse_uint(he + 1, 65535, &n) < 0 || n == 0) {
            free(host);
            return host_fail(s, "invalid port", err);
        }
        port = (int)n;
    } else if (*he != '\0') {
        free(host);
        return host_fail(s, "unexpected characters after the host name", err);
    }

    free(t->raw);
    t->raw = xstrdup(s);
    free(t->host);
    t->host = host;
    t->scheme = scheme;
    if (at != NULL && t->user == NULL) {
        t->user = xstrndup(p, (size_t)(at - p));
    }
    if (port != 0 && t->port == 0) {
        t->port = port;
    }
    return 0;
}

int
sshopts_target(struct ssh_target *t,
               const char *host,
               const char *nix_sshopts,
               struct strvec *warnings,
               struct strvec *notes,
               char **err)
{
    struct strvec args = STRVEC_INIT;
    int rc = 0;

    *err = NULL;
    if (nix_sshopts != NULL) {
        rc = sshopts_split(nix_sshopts, &args, err);
        if (rc == 0) {
            rc = sshopts_parse_args(t, &args, warnings, notes, err);
        }
    }
    if (rc == 0) {
        rc = sshopts_parse_host(t, host, err);
    }
    strvec_clear(&args);
    if (rc != 0) {
        ssh_target_release(t);
    }
    return rc;
}

char *
ssh_target_name(const struct ssh_target *t)
{
    if (t->user != NULL) {
        return xasprintf("%s@%s", t->user, t->host);
    }
    return xstrdup(t->host != NULL ? t->host : "");
}

char *
sshopts_expand_hostname(const char *hostname, const char *host)
{
    struct strbuf sb = STRBUF_INIT;

    for (const char *p = hostname; *p != '\0'; p++) {
        if (p[0] == '%' && p[1] == 'h') {
            strbuf_addstr(&sb, host != NULL ? host : "");
            p++;
        } else if (p[0] == '%' && p[1] == '%') {
            strbuf_addch(&sb, '%');
            p++;
        } else {
            strbuf_addch(&sb, *p);
        }
    }
    return strbuf_detach(&sb);
}

/* ---- ProxyJump ---- */

static int
jump_fail(const char *hop, const char *why, char **err)
{
    *err = xasprintf("invalid ProxyJump host '%s': %s", hop, why);
    return CR_EUSAGE;
}

/* One [ssh://][user@]host[:port] (s is NUL-terminated). */
static int
parse_hop(const char *s, struct ssh_hop *h, char **err)
{
    const char *p = s;
    const char *at = NULL;
    const char *he = NULL;
    const char *why = NULL;
    char *host = NULL;
    unsigned long long port = 0;

    if (strncmp(p, "ssh://", 6) == 0) {
        p += 6;
    }
    if (*p == '\0') {
        return jump_fail(s, "empty host name", err);
    }
    for (const char *q = s; *q != '\0'; q++) {
        unsigned char c = (unsigned char)*q;

        if (c <= 0x20 || c == 0x7f) {
            *err = xstrdup("invalid ProxyJump: a host contains a blank or "
                           "a control character");
            return CR_EUSAGE;
        }
    }
    host = split_host(p, 1, &at, &he, &why);
    if (host == NULL) {
        return jump_fail(s, why, err);
    }
    if (*he == ':') {
        if (parse_uint(he + 1, 65535, &port) < 0 || port == 0) {
            free(host);
            return jump_fail(s, "invalid port", err);
        }
    } else if (*he != '\0') {
        free(host);
        return jump_fail(s, "unexpected characters after the host name", err);
    }
    h->raw = xstrdup(s);
    h->host = host;
    h->user = at != NULL ? xstrndup(p, (size_t)(at - p)) : NULL;
    h->port = (int)port;
    return 0;
}

int
sshopts_parse_jump(const char *spec,
                   struct ssh_hop **hops,
                   size_t *n,
                   char **err)
{
    struct ssh_hop *v = NULL;
    size_t cnt = 0;
    const char *p = spec;

    *hops = NULL;
    *n = 0;
    *err = NULL;
    for (;;) {
        size_t len = strcspn(p, ",");
        char *one = xstrndup(p, len);
        int rc;

        v = xreallocarray(v, cnt + 1, sizeof(*v));
        memset(&v[cnt], 0, sizeof(v[cnt]));
        rc = parse_hop(one, &v[cnt], err);
        free(one);
        if (rc != 0) {
            ssh_hops_free(v, cnt);
            return rc;
        }
        cnt++;
        if (p[len] == '\0') {
            break;
        }
        p += len + 1;
    }
    *hops = v;
    *n = cnt;
    return 0;
}

void
ssh_hops_free(struct ssh_hop *hops, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(hops[i].raw);
        free(hops[i].user);
        free(hops[i].host);
    }
    free(hops);
}

/* sshconfig.c: ssh_config(5) files into struct ssh_target. */
#include "crebuild/sshconfig.h"
#include "crebuild/hash.h"
#include "crebuild/proc.h"
#include "crebuild/strbuf.h"
#include "crebuild/util.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <grp.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define FILE_MAX (4 * 1024 * 1024) /* bytes read from one file */

/* ---- patterns ---- */

/* Iterative wildcard match (no exponential backtracking); fold: ignore
 * ASCII case. */
static int
match_pattern(const char *s, const char *p, int fold)
{
    const char *star = NULL;
    const char *resume = NULL;

    while (*s != '\0') {
        if (*p == '*') {
            star = p++;
            resume = s;
        } else if (*p != '\0' && (*p == '?' || *p == *s ||
                                  (fold && tolower((unsigned char)*p) ==
                                               tolower((unsigned char)*s)))) {
            p++;
            s++;
        } else if (star != NULL) {
            p = star + 1;
            s = ++resume;
        } else {
            return 0;
        }
    }
    while (*p == '*') {
        p++;
    }
    return *p == '\0';
}

int
sshconfig_match_pattern(const char *s, const char *p)
{
    return match_pattern(s, p, 0);
}

/* A comma-separated list with !negations (Match host, user): 1 if a
 * positive pattern matches and no negated one does.  Host names ignore
 * case, user names do not (as with ssh). */
static int
match_list(const char *host, const char *list, int fold)
{
    char *copy = xstrdup(list);
    char *save = NULL;
    int hit = 0;

    for (char *p = strtok_r(copy, ",", &save); p != NULL;
         p = strtok_r(NULL, ",", &save)) {
        int neg = *p == '!';

        if (match_pattern(host, p + neg, fold)) {
            if (neg) {
                hit = 0;
                break;
            }
            hit = 1;
        }
    }
    free(copy);
    return hit;
}

/* An address (IPv4 or IPv6, as text) into bytes; its family's bit
 * count, or 0. */
static unsigned
addr_bytes(const char *text, unsigned char b[16])
{
    struct in_addr a4;
    struct in6_addr a6;

    if (inet_pton(AF_INET, text, &a4) == 1) {
        memcpy(b, &a4, 4);
        return 32;
    }
    if (inet_pton(AF_INET6, text, &a6) == 1) {
        memcpy(b, &a6, 16);
        return 128;
    }
    return 0;
}

/* One network, ADDR[/BITS] (BITS: all by default), with the host bits
 * zero as ssh requires.  Its bit count (32 or 128), or 0 if invalid. */
static unsigned
parse_net(const char *entry, unsigned char net[16], unsigned *prefix)
{
    char text[INET6_ADDRSTRLEN + 8];
    char *slash;
    unsigned bits;
    unsigned long long v = 0;

    size_t n = strlen(entry);

    if (n >= sizeof(text)) {
        return 0;
    }
    memcpy(text, entry, n + 1);
    slash = strchr(text, '/');
    if (slash != NULL) {
        *slash++ = '\0';
    }
    bits = addr_bytes(text, net);
    if (bits == 0 || (slash != NULL && parse_uint(slash, bits, &v) != 0)) {
        return 0;
    }
    *prefix = slash != NULL ? (unsigned)v : bits;
    for (unsigned i = *prefix; i < bits; i++) {
        if (net[i / 8] & (0x80u >> (i % 8))) {
            return 0;
        }
    }
    return bits;
}

int
sshconfig_match_networks(const char *addr, const char *list)
{
    unsigned char a[16], net[16];
    unsigned abits = addr != NULL ? addr_bytes(addr, a) : 0;
    char *copy = xstrdup(list);
    char *save = NULL;
    int hit = 0;

    for (char *p = strtok_r(copy, ",", &save); p != NULL;
         p = strtok_r(NULL, ",", &save)) {
        unsigned prefix = 0, i;
        unsigned bits = parse_net(p, net, &prefix);

        if (bits == 0) {
            hit = -1;
            break;
        }
        if (bits != abits || hit) {
            continue;
        }
        for (i = 0; i < prefix; i++) {
            if ((a[i / 8] ^ net[i / 8]) & (0x80u >> (i % 8))) {
                break;
            }
        }
        hit = i == prefix;
    }
    free(copy);
    return hit;
}

/* The addresses of this machine's interfaces that are up, as text. */
static void
local_addresses(struct strvec *out)
{
    struct ifaddrs *all = NULL;

    if (getifaddrs(&all) != 0) {
        return;
    }
    for (const struct ifaddrs *i = all; i != NULL; i = i->ifa_next) {
        char text[INET6_ADDRSTRLEN];
        const void *a = NULL;
        int af = i->ifa_addr != NULL ? i->ifa_addr->sa_family : AF_UNSPEC;

        if (!(i->ifa_flags & IFF_UP)) {
            continue;
        }
        if (af == AF_INET) {
            a = &((const struct sockaddr_in *)(const void *)i->ifa_addr)
                     ->sin_addr;
        } else if (af == AF_INET6) {
            a = &((const struct sockaddr_in6 *)(const void *)i->ifa_addr)
                     ->sin6_addr;
        }
        if (a != NULL && inet_ntop(af, a, text, sizeof(text)) != NULL) {
            strvec_push(out, text);
        }
    }
    freeifaddrs(all);
}

/* ---- one file ---- */

struct parse {
    struct sshconfig *cfg;
    const char *origin;
    size_t line;
    int depth;
    int active;
};

static int perr(struct parse *ps, char **err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
perr(struct parse *ps, char **err, const char *fmt, ...)
{
    va_list ap;
    char *m = NULL;

    va_start(ap, fmt);
    m = xvasprintf(fmt, ap);
    va_end(ap);
    *err = xasprintf("%s line %zu: %s", ps->origin, ps->line, m);
    free(m);
    return CR_EUSAGE;
}

static void pnote(struct parse *ps, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
pnote(struct parse *ps, const char *fmt, ...)
{
    va_list ap;
    char *m = NULL;

    va_start(ap, fmt);
    m = xvasprintf(fmt, ap);
    va_end(ap);
    strvec_pushf(ps->cfg->notes, "%s line %zu: %s", ps->origin, ps->line, m);
    free(m);
}

/* Is name an IP address?  ssh lower-cases host names, not addresses. */
static int
is_addr(const char *name)
{
    unsigned char b[16];
    struct in_addr a4;
    char text[INET6_ADDRSTRLEN + 1];
    size_t n = strcspn(name, "%"); /* an IPv6 zone */

    if (inet_aton(name, &a4) != 0) {
        return 1;
    }
    if (n >= sizeof(text)) {
        return 0;
    }
    memcpy(text, name, n);
    text[n] = '\0';
    return inet_pton(AF_INET6, text, b) == 1;
}

/* The host name ssh goes on with after the first reading (and matches
 * Host lines against in the second one, for Match final): HostName with
 * %h expanded, else the host as given; lower-cased unless an address. */
static char *
final_host(const struct sshconfig *cfg)
{
    const char *orig = cfg->host != NULL ? cfg->host : "";
    char *h = cfg->t->hostname != NULL
                  ? sshopts_expand_hostname(cfg->t->hostname, orig)
                  : xstrdup(orig);

    if (!is_addr(h)) {
        for (char *p = h; *p != '\0'; p++) {
            *p = (char)tolower((unsigned char)*p);
        }
    }
    return h;
}

/* Host PATTERN...: case-sensitive (as ssh's match_pattern), against the
 * host as given, or in the second reading the final host name. */
static int
do_host(struct parse *ps, const struct strvec *args, char **err)
{
    char *host = NULL;
    int hit = 0;

    if (args->n == 0) {
        return perr(ps, err, "Host needs at least one pattern");
    }
    if (ps->cfg->never_match) {
        ps->active = 0;
        return 0;
    }
    host = ps->cfg->final_pass
               ? final_host(ps->cfg)
               : xstrdup(ps->cfg->host != NULL ? ps->cfg->host : "");
    for (size_t i = 0; i < args->n; i++) {
        const char *p = args->v[i];
        int neg = *p == '!';

        if (sshconfig_match_pattern(host, p + neg)) {
            if (neg) {
                hit = 0;
                break;
            }
            hit = 1;
        }
    }
    free(host);
    ps->active = hit;
    return 0;
}

/* A value put into a Match exec command by a %-token: only characters a
 * shell takes literally, so that a host or user name cannot add to the
 * command. */
static int
shell_safe(const char *v)
{
    for (; *v != '\0'; v++) {
        if (!isalnum((unsigned char)*v) &&
            strchr("-._:@+/~,=[]%", *v) == NULL) {
            return 0;
        }
    }
    return 1;
}

/* v for a one-line message: control characters as \xNN. */
static char *
printable(const char *v)
{
    struct strbuf sb = STRBUF_INIT;

    for (; *v != '\0'; v++) {
        unsigned char c = (unsigned char)*v;

        if (c < 0x20 || c == 0x7f) {
            strbuf_addf(&sb, "\\x%02x", c);
        } else {
            strbuf_add(&sb, v, 1);
        }
    }
    return sb.buf != NULL ? strbuf_detach(&sb) : xstrdup("");
}

/* What ssh's default client %-tokens stand for (Match exec, paths). */
struct tokens {
    const char *home, *luser, *lhost, *host, *orig, *ruser;
    char uid[24], port[16], shorthost[256], hash[2 * HASH_SHA1_LEN + 1];
};

/* The tokens for cfg, with host as %h. */
static void
tokens_init(struct tokens *tk, const struct sshconfig *cfg, const char *host)
{
    const struct ssh_target *t = cfg->t;
    unsigned char md[HASH_SHA1_LEN];
    char *in;

    memset(tk, 0, sizeof(*tk));
    tk->home = cfg->home;
    tk->luser = cfg->local_user != NULL ? cfg->local_user : "";
    tk->lhost = cfg->local_host != NULL ? cfg->local_host : "";
    tk->host = host;
    tk->orig = cfg->host != NULL ? cfg->host : "";
    tk->ruser = t->user != NULL ? t->user : tk->luser;
    (void)snprintf(tk->uid, sizeof(tk->uid), "%u", cfg->local_uid);
    (void)snprintf(
        tk->port, sizeof(tk->port), "%d", t->port > 0 ? t->port : 22);
    (void)snprintf(tk->shorthost,
                   sizeof(tk->shorthost),
                   "%.*s",
                   (int)strcspn(tk->lhost, "."),
                   tk->lhost);
    /* %C: SHA-1 of local host, host, port and remote user, in hex. */
    in = xasprintf("%s%s%s%s", tk->lhost, tk->host, tk->port, tk->ruser);
    hash_sha1(in, strlen(in), md);
    hash_to_hex(md, sizeof(md), tk->hash);
    free(in);
}

/* The value of %tok, or NULL for a token ssh does not know. */
static const char *
token_value(const struct tokens *tk, char tok)
{
    switch (tok) {
    case '%':
        return "%";
    case 'C':
        return tk->hash;
    case 'L':
        return tk->shorthost;
    case 'i':
        return tk->uid;
    case 'k': /* HostKeyAlias is not supported: the host as given */
    case 'n':
        return tk->orig;
    case 'l':
        return tk->lhost;
    case 'p':
        return tk->port;
    case 'd':
        return tk->home != NULL ? tk->home : "";
    case 'h':
        return tk->host;
    case 'r':
        return tk->ruser;
    case 'u':
        return tk->luser;
    default:
        return NULL;
    }
}

/* The Match exec command with its tokens expanded into *out.  0; 1 when a
 * token crebuild does not know the value of (%C): *out is NULL; or
 * CR_EUSAGE with *err. */
static int
exec_expand(struct parse *ps,
            const char *cmd,
            const char *target,
            char **out,
            char **err)
{
    struct strbuf sb = STRBUF_INIT;
    struct tokens tk;

    *out = NULL;
    tokens_init(&tk, ps->cfg, target);
    for (const char *p = cmd; *p != '\0'; p++) {
        const char *v;
        char tok;

        if (*p != '%') {
            strbuf_addch(&sb, *p);
            continue;
        }
        tok = *++p;
        if (tok == 'C') {
            pnote(ps,
                  "Match exec token '%%%c' not supported by crebuild: "
                  "block skipped",
                  tok);
            strbuf_release(&sb);
            return 1;
        }
        v = token_value(&tk, tok);
        if (v == NULL) {
            strbuf_release(&sb);
            if (tok == '\0') {
                return perr(ps, err, "Match exec: '%%' at the end");
            }
            return perr(ps, err, "Match exec: unknown token '%%%c'", tok);
        }
        if (!shell_safe(v)) {
            char *shown = printable(v);
            int rc = perr(ps,
                          err,
                          "Match exec: '%%%c' is '%s', which a shell command "
                          "cannot take as is",
                          tok,
                          shown);

            free(shown);
            strbuf_release(&sb);
            return rc;
        }
        strbuf_addstr(&sb, v);
    }
    *out = strbuf_detach(&sb);
    if (*out == NULL) {
        *out = xstrdup("");
    }
    return 0;
}

/* Match exec CMD: *hit is 1 when it ran and exited 0; *skip when it
 * cannot be decided here (a note says why).  0 or CR_E* with *err. */
static int
match_exec(struct parse *ps,
           const char *cmd,
           const char *target,
           int *hit,
           int *skip,
           char **err)
{
    char *line = NULL;
    int rc;

    *hit = 0;
    rc = exec_expand(ps, cmd, target, &line, err);
    if (rc != 0) {
        *skip = rc > 0;
        return rc > 0 ? 0 : rc;
    }
    if (ps->cfg->exec == NULL) {
        pnote(ps, "Match exec not run here: block skipped");
        *skip = 1;
        free(line);
        return 0;
    }
    rc = ps->cfg->exec(ps->cfg, line, err);
    free(line);
    if (rc < 0) {
        return rc;
    }
    *hit = rc == 1;
    return 0;
}

/* Match localnetwork LIST: *hit when an address of an interface that is
 * up is in one of the networks (the interfaces are read at the first
 * use); *skip when they are not known here (a note).  An invalid list is
 * an error, as with ssh. */
static int
match_localnetwork(
    struct parse *ps, const char *list, int *hit, int *skip, char **err)
{
    struct sshconfig *cfg = ps->cfg;

    *hit = 0;
    if (sshconfig_match_networks(NULL, list) < 0) {
        char *shown = printable(list);
        int rc = perr(ps,
                      err,
                      "Match localnetwork: invalid network list '%s' "
                      "(ADDRESS/BITS, host bits zero, no '!')",
                      shown);

        free(shown);
        return rc;
    }
    if (cfg->local_addrs == NULL) {
        pnote(ps, "Match localnetwork not decided here: block skipped");
        *skip = 1;
        return 0;
    }
    if (cfg->local_addrs_unread) {
        local_addresses(cfg->local_addrs);
        cfg->local_addrs_unread = 0;
    }
    for (size_t i = 0; i < cfg->local_addrs->n && !*hit; i++) {
        *hit = sshconfig_match_networks(cfg->local_addrs->v[i], list) == 1;
    }
    return 0;
}

static int
do_match(struct parse *ps, const struct strvec *args, char **err)
{
    struct sshconfig *cfg = ps->cfg;
    const struct ssh_target *t = cfg->t;
    const char *orig = cfg->host != NULL ? cfg->host : "";
    const char *luser = cfg->local_user != NULL ? cfg->local_user : "";
    char *target = NULL;
    int result = 1;
    int skip = 0;
    int rc = 0;

    if (args->n == 0) {
        return perr(ps, err, "Match needs a criterion");
    }
    if (cfg->never_match) {
        ps->active = 0;
        return 0;
    }
    /* host: HostName so far (%h expanded), in the second reading the
     * final host name (as ssh). */
    if (cfg->final_pass) {
        target = final_host(cfg);
    } else {
        target = t->hostname != NULL
                     ? sshopts_expand_hostname(t->hostname, orig)
                     : xstrdup(orig);
    }
    for (size_t i = 0; i < args->n && rc == 0; i++) {
        static const char *const known[] = {"host",
                                            "originalhost",
                                            "user",
                                            "localuser",
                                            "exec",
                                            "tagged",
                                            "localnetwork"};
        const char *a = args->v[i];
        int neg = *a == '!';
        int r = 0;
        size_t k;

        a += neg;
        if (strcasecmp(a, "all") == 0) {
            if (neg) {
                result = 0;
            }
            continue;
        }
        if (strcasecmp(a, "final") == 0 || strcasecmp(a, "canonical") == 0) {
            /* final holds in the second reading, which it asks for (as
             * ssh).  canonical holds only in a reading after host name
             * canonicalization, which crebuild does not do
             * (CanonicalizeHostname is not supported): never. */
            if (strcasecmp(a, "final") == 0) {
                cfg->want_final = 1;
                r = cfg->final_pass;
            }
            if (r == neg) {
                result = 0;
            }
            continue;
        }
        for (k = 0; k < ARRAY_SIZE(known); k++) {
            if (strcasecmp(a, known[k]) == 0) {
                break;
            }
        }
        if (k < ARRAY_SIZE(known) && i + 1 >= args->n) {
            rc = perr(ps, err, "Match %s needs an argument", a);
            break;
        }
        switch (k) {
        case 0: /* host: after HostName */
            r = match_list(target, args->v[++i], 1);
            break;
        case 1: /* originalhost: as given */
            r = match_list(orig, args->v[++i], 1);
            break;
        case 2: /* user: the remote user known so far, else ours */
            r = match_list(t->user != NULL ? t->user : luser, args->v[++i], 0);
            break;
        case 3:
            r = match_list(luser, args->v[++i], 0);
            break;
        case 4: /* exec: not run once the line cannot match (as ssh) */
            i++;
            if (!result || skip) {
                continue;
            }
            rc = match_exec(ps, args->v[i], target, &r, &skip, err);
            if (rc != 0 || skip) {
                continue;
            }
            break;
        case 5: /* tagged: Tag or -P (none: ""), case-sensitive */
            r = match_list(t->tag != NULL ? t->tag : "", args->v[++i], 0);
            break;
        case 6: /* localnetwork */
            rc = match_localnetwork(ps, args->v[++i], &r, &skip, err);
            if (rc != 0 || skip) {
                continue;
            }
            break;
        default: {
            static const char *const with_arg[] = {
                "version", "command", "sessiontype"};
            int takes = 0;

            for (k = 0; k < ARRAY_SIZE(with_arg); k++) {
                if (strcasecmp(a, with_arg[k]) == 0) {
                    takes = 1;
                }
            }
            if (!skip) {
                pnote(ps,
                      "Match criterion '%s' not supported by crebuild: "
                      "block skipped",
                      a);
            }
            skip = 1;
            if (takes && i + 1 < args->n) {
                i++;
            }
            continue;
        }
        }
        if (r == neg) {
            result = 0;
        }
    }
    free(target);
    ps->active = rc == 0 && result && !skip;
    return rc;
}

static char *
include_path(const struct sshconfig *cfg, const char *p)
{
    if (p[0] == '~' && p[1] == '/' && cfg->home != NULL) {
        return xasprintf("%s%s", cfg->home, p + 1);
    }
    if (p[0] == '~' && p[1] == '\0' && cfg->home != NULL) {
        return xstrdup(cfg->home);
    }
    if (p[0] != '/' && p[0] != '~' && cfg->dir != NULL) {
        return xasprintf("%s/%s", cfg->dir, p);
    }
    return xstrdup(p);
}

static int
do_include(struct parse *ps, const struct strvec *args, char **err)
{
    int outer = ps->cfg->never_match;
    int rc = 0;

    if (args->n == 0) {
        return perr(ps, err, "Include needs a file name");
    }
    if (ps->depth + 1 > SSHCONFIG_MAX_DEPTH) {
        return perr(
            ps, err, "Include nested more than %d deep", SSHCONFIG_MAX_DEPTH);
    }
    if (ps->cfg->include == NULL) {
        if (ps->active) {
            pnote(ps, "Include not read");
        }
        return 0;
    }
    /* In a block that does not apply, ssh still reads the files (their
     * permissions are checked, further Includes followed) but nothing in
     * them applies. */
    ps->cfg->never_match = outer || !ps->active;
    for (size_t i = 0; i < args->n && rc == 0; i++) {
        char *path = include_path(ps->cfg, args->v[i]);

        rc = ps->cfg->include(ps->cfg, path, ps->depth + 1, err);
        free(path);
    }
    ps->cfg->never_match = outer;
    return rc;
}

/* One line (NUL-terminated, no newline). */
static int
parse_line(struct parse *ps, char *line, char **err)
{
    struct strvec args = STRVEC_INIT;
    size_t n = strlen(line);
    char *kw = NULL;
    char *rest = NULL;
    size_t klen = 0;
    int rc = 0;

    while (n > 0 && strchr(" \t\r\f\v", line[n - 1]) != NULL) {
        line[--n] = '\0';
    }
    kw = line + strspn(line, " \t\r\f\v");
    if (*kw == '\0' || *kw == '#') {
        return 0;
    }
    klen = strcspn(kw, " \t\r\f\v=");
    rest = kw + klen;
    rest += strspn(rest, " \t\r\f\v");
    if (*rest == '=') {
        rest++;
        rest += strspn(rest, " \t\r\f\v");
    }
    if (klen == 0) {
        return perr(ps, err, "missing keyword before '='");
    }
    kw[klen] = '\0';
    if (sshopts_split_config(rest, &args) != 0) {
        rc = perr(ps, err, "unterminated quote");
        goto out;
    }
    if (strcasecmp(kw, "Host") == 0) {
        rc = do_host(ps, &args, err);
    } else if (strcasecmp(kw, "Match") == 0) {
        rc = do_match(ps, &args, err);
    } else if (strcasecmp(kw, "Include") == 0) {
        rc = do_include(ps, &args, err);
    } else if (ps->active &&
               !(ps->cfg->final_pass && strcasecmp(kw, "HostName") == 0)) {
        /* (In the second reading ssh has its host name: HostName lines
         * do nothing.)  ProxyCommand is the rest of the line, as written
         * (a command for /bin/sh); everything else its words. */
        char *e = NULL;

        rc = sshopts_apply_words(ps->cfg->t,
                                 kw,
                                 &args,
                                 rest,
                                 1,
                                 ps->cfg->warnings,
                                 ps->cfg->notes,
                                 &e);
        if (rc != 0) {
            rc = perr(ps, err, "%s", e != NULL ? e : "invalid option");
        }
        free(e);
    }
out:
    strvec_clear(&args);
    return rc;
}

int
sshconfig_parse(struct sshconfig *cfg,
                const char *text,
                size_t len,
                const char *origin,
                int depth,
                char **err)
{
    struct parse ps = {cfg,
                       origin != NULL ? origin : "ssh config",
                       0,
                       depth,
                       !cfg->never_match};
    size_t off = 0;
    int rc = 0;

    *err = NULL;
    while (off < len && rc == 0) {
        const char *nl = memchr(text + off, '\n', len - off);
        size_t end = nl != NULL ? (size_t)(nl - text) : len;
        char *line = xstrndup(text + off, end - off); /* stops at NUL */

        ps.line++;
        rc = parse_line(&ps, line, err);
        free(line);
        off = end + 1;
    }
    return rc;
}

/* ---- files ---- */

int
sshconfig_file_secure(unsigned owner,
                      unsigned mode,
                      unsigned uid,
                      int private_group)
{
    unsigned bad = private_group ? 002 : 022;

    return (owner == 0 || owner == uid) && (mode & bad) == 0;
}

/* Is gid the user's own group (its primary group, with no other member)?
 * Debian's and Ubuntu's ssh then accept a group-writable config file (a
 * umask of 002 makes them so). */
static int
private_group(unsigned gid, unsigned uid)
{
    char pbuf[4096], gbuf[4096];
    struct passwd pw, *pwp = NULL;
    struct group gr, *grp = NULL;

    if (getpwuid_r((uid_t)uid, &pw, pbuf, sizeof(pbuf), &pwp) != 0 ||
        pwp == NULL || (unsigned)pw.pw_gid != gid ||
        getgrgid_r((gid_t)gid, &gr, gbuf, sizeof(gbuf), &grp) != 0 ||
        grp == NULL) {
        return 0;
    }
    for (char **m = gr.gr_mem; *m != NULL; m++) {
        if (strcmp(*m, pw.pw_name) != 0) {
            return 0;
        }
    }
    return 1;
}

/* The whole file into *out (NUL-terminated).  check: refuse it (-2) when
 * its owner or mode is not secure (sshconfig_file_secure).  0, or -1
 * with errno. */
static int
read_file(const char *path, int check, char **out, size_t *len)
{
    struct strbuf sb = STRBUF_INIT;
    struct stat st;
    FILE *f = fopen(path, "re");
    char buf[8192];
    size_t n;

    *out = NULL;
    *len = 0;
    if (f == NULL) {
        return -1;
    }
    if (check && (fstat(fileno(f), &st) != 0 ||
                  !sshconfig_file_secure((unsigned)st.st_uid,
                                         (unsigned)st.st_mode,
                                         (unsigned)getuid(),
                                         private_group((unsigned)st.st_gid,
                                                       (unsigned)getuid())))) {
        fclose(f);
        return -2;
    }
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0) {
        if (sb.len + n > FILE_MAX) {
            fclose(f);
            strbuf_release(&sb);
            errno = EFBIG;
            return -1;
        }
        strbuf_add(&sb, buf, n);
    }
    if (ferror(f)) {
        int e = errno;

        fclose(f);
        strbuf_release(&sb);
        errno = e != 0 ? e : EIO;
        return -1;
    }
    fclose(f);
    *len = sb.len;
    *out = strbuf_detach(&sb);
    return 0;
}

static int
bad_perms(const char *path, char **err)
{
    char *shown = printable(path);

    *err = xasprintf("Bad owner or permissions on %s (as ssh, crebuild "
                     "refuses a config file that another user owns or "
                     "that group or others may write)",
                     shown);
    free(shown);
    return CR_EUSAGE;
}

/* A file that need not exist; check: its owner and mode (as ssh for
 * ~/.ssh/config and every included file). */
static int
parse_file(
    struct sshconfig *cfg, const char *path, int depth, int check, char **err)
{
    char *text = NULL;
    size_t len = 0;
    int rc = read_file(path, check, &text, &len);

    if (rc == -2) {
        return bad_perms(path, err);
    }
    if (rc != 0) {
        if (errno == ENOENT) {
            return 0;
        }
        strvec_pushf(cfg->warnings,
                     "cannot read ssh config file '%s': %s",
                     path,
                     strerror(errno));
        return 0;
    }
    rc = sshconfig_parse(cfg, text, len, path, depth, err);
    free(text);
    return rc;
}

int
sshconfig_include_files(struct sshconfig *cfg,
                        const char *path,
                        int depth,
                        char **err)
{
    glob_t g;
    int rc = 0;

    *err = NULL;
    memset(&g, 0, sizeof(g));
    if (glob(path, 0, NULL, &g) != 0) {
        /* No match: nothing to include, as with ssh. */
        globfree(&g);
        return 0;
    }
    for (size_t i = 0; i < g.gl_pathc && rc == 0; i++) {
        rc = parse_file(cfg, g.gl_pathv[i], depth, 1, err);
    }
    globfree(&g);
    return rc;
}

int
sshconfig_exec_shell(struct sshconfig *cfg, const char *command, char **err)
{
    const char *shell = getenv("SHELL");
    struct strvec argv = STRVEC_INIT;
    struct proc_spec spec;
    int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
    int status = -1;
    int rc;

    (void)cfg;
    *err = NULL;
    if (devnull < 0) {
        *err = xasprintf("cannot open /dev/null: %s", strerror(errno));
        return CR_ESYS;
    }
    if (shell == NULL || shell[0] != '/') {
        shell = "/bin/sh";
    }
    strvec_pushl(&argv, shell, "-c", command, (const char *)NULL);
    memset(&spec, 0, sizeof(spec));
    spec.argv = &argv;
    spec.out_fd = devnull;
    spec.err_fd = STDERR_FILENO;
    /* A shell that cannot run is logged and does not match (as ssh). */
    rc = proc_run(&spec, &status);
    close(devnull);
    strvec_clear(&argv);
    return rc == 0 && status == 0 ? 1 : 0;
}

/* Our home directory (passwd entry, else $HOME; NULL if neither) and, in
 * *user, our user name ("" if unknown): one passwd lookup for both. */
static char *
home_dir(char **user)
{
    struct passwd *pw = getpwuid(getuid());
    const char *h = pw != NULL && pw->pw_dir != NULL && *pw->pw_dir != '\0'
                        ? pw->pw_dir
                        : getenv("HOME");

    *user = xstrdup(pw != NULL && pw->pw_name != NULL ? pw->pw_name : "");
    return h != NULL ? xstrdup(h) : NULL;
}

/* One reading, as ssh's: -F FILE alone (which must be readable; "none":
 * nothing), else ~/.ssh/config then /etc/ssh/ssh_config. */
static int
read_files(struct sshconfig *cfg, const char *user_dir, char **err)
{
    const char *config = cfg->t->config;
    char *path = NULL;
    int rc = 0;

    cfg->dir = user_dir;
    if (config != NULL && strcasecmp(config, "none") == 0) {
        return 0;
    }
    if (config != NULL) {
        char *text = NULL;
        size_t len = 0;

        /* Relative to the current directory, as with ssh -F; its owner
         * and mode are not checked (ssh does not either). */
        path = config[0] == '~' ? include_path(cfg, config) : xstrdup(config);
        if (path[0] == '~' || read_file(path, 0, &text, &len) != 0) {
            *err = xasprintf("cannot read ssh config file '%s': %s",
                             path,
                             path[0] == '~' ? "no home directory"
                                            : strerror(errno));
            free(path);
            return CR_EUSAGE;
        }
        rc = sshconfig_parse(cfg, text, len, path, 0, err);
        free(text);
        free(path);
        return rc;
    }
    if (user_dir != NULL) {
        path = xasprintf("%s/config", user_dir);
        rc = parse_file(cfg, path, 0, 1, err);
        free(path);
    }
    if (rc == 0) {
        /* Not checked, as with ssh (but what it includes is). */
        cfg->dir = "/etc/ssh";
        rc = parse_file(cfg, "/etc/ssh/ssh_config", 0, 0, err);
    }
    return rc;
}

/* ---- paths ---- */

static int
path_err(const char *what, const char *path, char **err, const char *why)
{
    char *shown = printable(path);

    *err = xasprintf("%s '%s': %s", what, shown, why);
    free(shown);
    return CR_EUSAGE;
}

/* ssh's tilde_expand: ~ and ~/path in our home directory (the passwd
 * entry's), ~user/path in that user's. */
static int
expand_tilde(const struct tokens *tk,
             const char *what,
             const char *p,
             char **out,
             char **err)
{
    const char *slash = strchr(p, '/');
    const char *rest = slash != NULL ? slash : "";
    char *dir = NULL;

    *out = NULL;
    if (p[0] != '~') {
        *out = xstrdup(p);
        return 0;
    }
    if (p[1] == '\0' || p[1] == '/') {
        if (tk->home == NULL) {
            return path_err(what, p, err, "no home directory");
        }
        dir = xstrdup(tk->home);
    } else {
        char *user = xstrndup(p + 1, strcspn(p + 1, "/"));
        struct passwd pw, *res = NULL;
        char buf[16384];

        if (getpwnam_r(user, &pw, buf, sizeof(buf), &res) == 0 && res != NULL &&
            res->pw_dir != NULL) {
            dir = xstrdup(res->pw_dir);
        }
        free(user);
        if (dir == NULL) {
            return path_err(what, p, err, "no such user");
        }
    }
    rest += strspn(rest, "/");
    *out = xasprintf("%s%s%s",
                     dir,
                     dir[0] == '\0' || dir[strlen(dir) - 1] != '/' ? "/" : "",
                     rest);
    free(dir);
    return 0;
}

/* ssh's percent_dollar_expand with its default client tokens
 * (%C %L %i %k %l %n %p %d %h %r %u, %%) and ${VAR}. */
static int
expand_tokens(const struct tokens *tk,
              const char *what,
              const char *s,
              char **out,
              char **err)
{
    struct strbuf sb = STRBUF_INIT;

    *out = NULL;
    for (const char *p = s; *p != '\0'; p++) {
        const char *v = NULL;

        if (p[0] == '$' && p[1] == '{') {
            const char *end = strchr(p + 2, '}');
            char *name = NULL;

            if (end == NULL || end == p + 2) {
                strbuf_release(&sb);
                return path_err(what,
                                s,
                                err,
                                end == NULL ? "'${' without a closing '}'"
                                            : "empty '${}'");
            }
            name = xstrndup(p + 2, (size_t)(end - p - 2));
            v = getenv(name);
            if (v == NULL) {
                char *why =
                    xasprintf("environment variable '%s' is not set", name);

                free(name);
                strbuf_release(&sb);
                path_err(what, s, err, why);
                free(why);
                return CR_EUSAGE;
            }
            free(name);
            strbuf_addstr(&sb, v);
            p = end;
            continue;
        }
        if (*p != '%') {
            strbuf_addch(&sb, *p);
            continue;
        }
        v = token_value(tk, *++p);
        if (v == NULL) {
            char why[32];

            if (*p == '\0') {
                (void)snprintf(why, sizeof(why), "'%%' at the end");
            } else {
                (void)snprintf(why, sizeof(why), "unknown token '%%%c'", *p);
            }
            strbuf_release(&sb);
            return path_err(what, s, err, why);
        }
        strbuf_addstr(&sb, v);
    }
    *out = sb.buf != NULL ? strbuf_detach(&sb) : xstrdup("");
    return 0;
}

/* ~ then tokens (percent: with %-tokens and ${VAR}), as ssh.  What is
 * left starting with ~ (from a ${VAR}) is a relative path: "./" keeps
 * anything after (libssh) from taking it for a home directory. */
static int
expand_path(const struct tokens *tk,
            const char *what,
            int percent,
            char **path,
            char **err)
{
    char *a = NULL;
    char *b = NULL;
    int rc = expand_tilde(tk, what, *path, &a, err);

    if (rc == 0 && percent) {
        rc = expand_tokens(tk, what, a, &b, err);
        free(a);
        a = b;
    }
    if (rc != 0) {
        free(a);
        return rc;
    }
    if (a[0] == '~') {
        b = xasprintf("./%s", a);
        free(a);
        a = b;
    }
    free(*path);
    *path = a;
    return 0;
}

/* An environment variable name as ssh's valid_env_name. */
static int
env_name_ok(const char *name)
{
    if (*name == '\0') {
        return 0;
    }
    for (; *name != '\0'; name++) {
        if (!isalnum((unsigned char)*name) && *name != '_') {
            return 0;
        }
    }
    return 1;
}

/* IdentityAgent after its expansion, as ssh: SSH_AUTH_SOCK is the
 * environment's agent (unset), $VAR the agent at that variable's value
 * (none when unset or empty), none no agent, anything else a path. */
static int
agent_path(const struct tokens *tk, char **agent, char **err)
{
    char *v = NULL;
    int rc;

    if (strcmp(*agent, "none") == 0) {
        return 0;
    }
    rc = expand_path(tk, "IdentityAgent", 1, agent, err);
    if (rc != 0) {
        return rc;
    }
    if (strcmp(*agent, "SSH_AUTH_SOCK") == 0) {
        free(*agent);
        *agent = NULL;
    } else if ((*agent)[0] == '$' && (*agent)[1] != '{') {
        if (!env_name_ok(*agent + 1)) {
            return path_err("IdentityAgent",
                            *agent,
                            err,
                            "invalid environment variable name");
        }
        v = getenv(*agent + 1);
        free(*agent);
        *agent = xstrdup(v != NULL && *v != '\0' ? v : "none");
    }
    return 0;
}

int
sshconfig_expand_paths(struct sshconfig *cfg, char **err)
{
    struct ssh_target *t = cfg->t;
    struct tokens tk;
    char *host = final_host(cfg);
    int rc = 0;

    *err = NULL;
    tokens_init(&tk, cfg, host);

    /* PKCS#11 URIs (which libssh takes) are left as they are. */
    for (size_t i = 0; rc == 0 && i < t->identities.n; i++) {
        if (strncmp(t->identities.v[i], "pkcs11:", 7) != 0) {
            rc = expand_path(&tk, "IdentityFile", 1, &t->identities.v[i], err);
        }
    }
    if (rc == 0 && t->known_hosts != NULL) {
        if (strcasecmp(t->known_hosts, "none") == 0) {
            /* ssh then reads no user file and never adds a key to one:
             * an unknown host key is refused, whatever
             * StrictHostKeyChecking says. */
            t->strict = CR_SSH_STRICT_YES;
        } else {
            rc =
                expand_path(&tk, "UserKnownHostsFile", 1, &t->known_hosts, err);
        }
    }
    /* ~ only, as ssh. */
    if (rc == 0 && t->global_known_hosts != NULL &&
        strcasecmp(t->global_known_hosts, "none") != 0) {
        rc = expand_path(
            &tk, "GlobalKnownHostsFile", 0, &t->global_known_hosts, err);
    }
    if (rc == 0 && t->identity_agent != NULL) {
        rc = agent_path(&tk, &t->identity_agent, err);
    }
    free(host);
    return rc;
}

/* Append to dst the lines of src it does not hold yet. */
static void
push_new(struct strvec *dst, const struct strvec *src)
{
    for (size_t i = 0; dst != NULL && i < src->n; i++) {
        size_t k = 0;

        while (k < dst->n && strcmp(dst->v[k], src->v[i]) != 0) {
            k++;
        }
        if (k == dst->n) {
            strvec_push(dst, src->v[i]);
        }
    }
}

int
sshconfig_load(struct ssh_target *t,
               struct strvec *warnings,
               struct strvec *notes,
               char **err)
{
    struct sshconfig cfg;
    char *luser = NULL;
    char *home = home_dir(&luser);
    char *user_dir = home != NULL ? xasprintf("%s/.ssh", home) : NULL;
    struct strvec addrs = STRVEC_INIT;
    int rc = 0;

    *err = NULL;
    memset(&cfg, 0, sizeof(cfg));
    cfg.t = t;
    cfg.host = t->host;
    cfg.home = home;
    cfg.dir = user_dir;
    cfg.include = sshconfig_include_files;
    cfg.exec = sshconfig_exec_shell;
    cfg.warnings = warnings;
    cfg.notes = notes;
    char lhost[256] = "";
    if (gethostname(lhost, sizeof(lhost) - 1) != 0) {
        lhost[0] = '\0';
    }
    cfg.local_user = luser;
    cfg.local_host = lhost;
    cfg.local_uid = (unsigned)getuid();
    cfg.local_addrs = &addrs;
    cfg.local_addrs_unread = 1;
    rc = read_files(&cfg, user_dir, err);
    if (rc == 0 && t->hostname != NULL && strchr(t->hostname, '%') != NULL) {
        char *h = sshopts_expand_hostname(t->hostname, t->host);

        free(t->hostname);
        t->hostname = h;
    }
    if (rc == 0 && cfg.want_final) {
        /* Match final: all of it once more with final holding; what the
         * first reading set stays (the first value wins), and its notes
         * and warnings are not given twice. */
        struct strvec warn2 = STRVEC_INIT, notes2 = STRVEC_INIT;

        cfg.final_pass = 1;
        cfg.warnings = &warn2;
        cfg.notes = &notes2;
        rc = read_files(&cfg, user_dir, err);
        push_new(warnings, &warn2);
        push_new(notes, &notes2);
        strvec_clear(&warn2);
        strvec_clear(&notes2);
    }
    if (rc == 0) {
        rc = sshconfig_expand_paths(&cfg, err);
    }
    strvec_clear(&addrs);
    free(user_dir);
    free(home);
    free(luser);
    return rc;
}

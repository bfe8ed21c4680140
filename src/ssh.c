/* ssh.c: the libssh session (connect, host key, login) and exec channels.
 * The only file that includes libssh. */
#include "crebuild/ssh.h"
#include "crebuild/log.h"
#include "crebuild/sshconfig.h"
#include "crebuild/util.h"

#include <libssh/libssh.h>
#include <libssh/callbacks.h>

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define ERR_LINE_MAX (64 * 1024)
#define ERR_TAIL_MAX 1024
#define WRITE_CHUNK  (256 * 1024)
#define WAIT_SLICE   1000 /* ms between interrupt/keepalive checks */
#define BRIDGE_BUF   (64 * 1024)
#define JUMP_MAX     8 /* hops in one chain (ProxyJump loops end here) */

struct jump;

struct ssh_conn {
    ssh_session s;
    ssh_event ev;
    struct ssh_callbacks_struct cb;
    char *name;
    char *user;
    int batch;
    int fd;            /* a socket we made (-4/-6, jump host), else -1 */
    int fd_lib;        /* libssh uses fd (and may close it on errors) */
    struct jump *jump; /* the bridge to the jump host we came through */
    int err_from_hop;  /* err is about a jump host (already says so) */
    int alive_interval;
    time_t last_alive;
    int dead;
    int nudged; /* see open_settle */
    char *err;  /* the first error while connecting */
    struct ssh_chan *chans;
    /* Opened ahead of need (see spare_open): two, so that two commands
     * can start at once (the copy and the read-only checks). */
    ssh_channel spare[2];
    size_t n_spare;
};

struct ssh_chan {
    struct ssh_conn *conn;
    ssh_channel ch;
    struct ssh_channel_callbacks_struct cb;
    struct strbuf *capture;
    struct strbuf line; /* forwarding: the current partial line */
    int line_cut;
    char tail[ERR_TAIL_MAX + 1];
    size_t tail_len;
    int exit_status;
    int exit_signal;
    int got_exit;
    int eof_sent;
    int out_eof;
    int exec_pending;    /* exec sent, the server's answer not read yet */
    struct strbuf stash; /* output read while a write waited, unread */
    size_t stash_off;
    struct ssh_chan *next;
};

/* ---- small helpers ---- */

/* A finished path for an option libssh expands again (identities, known
 * hosts files: ~ and %d %h %l %p %r %u, its own meanings): '%' doubled
 * so that libssh takes it as written. */
static char *
libssh_path(const char *p)
{
    struct strbuf sb = STRBUF_INIT;

    for (; *p != '\0'; p++) {
        strbuf_addch(&sb, *p);
        if (*p == '%') {
            strbuf_addch(&sb, '%');
        }
    }
    return sb.buf != NULL ? strbuf_detach(&sb) : xstrdup("");
}

static time_t
now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec;
}

/* An error while connecting: kept (the first one) for the caller, which
 * reports it once; later ones only at debug level. */
static void spare_open(struct ssh_conn *c);
static void conn_err(struct ssh_conn *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
conn_err(struct ssh_conn *c, const char *fmt, ...)
{
    va_list ap;
    char *m = NULL;

    va_start(ap, fmt);
    m = xvasprintf(fmt, ap);
    va_end(ap);
    if (c->err == NULL) {
        c->err = m;
    } else {
        log_debug("%s", m);
        free(m);
    }
}

static int
set_opt(struct ssh_conn *c, enum ssh_options_e o, const void *v, const char *w)
{
    if (ssh_options_set(c->s, o, v) < 0) {
        conn_err(c,
                 "%s: cannot set ssh option %s: %s",
                 c->name,
                 w,
                 ssh_get_error(c->s));
        return CR_ESSH;
    }
    return 0;
}

/* /dev/tty for prompts, or -1. */
static int
open_tty(void)
{
    return open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
}

static void
tty_puts(int fd, const char *s)
{
    size_t n = strlen(s);

    while (n > 0) {
        ssize_t w = write(fd, s, n);

        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            return;
        }
        s += w;
        n -= (size_t)w;
    }
}

/* Read one line from the terminal into buf (NUL-terminated, newline
 * dropped), echo off when !echo.  0 or -1. */
static int
tty_getline(int fd, const char *prompt, char *buf, size_t len, int echo)
{
    struct termios old, quiet;
    int have_old = 0;
    size_t n = 0;
    int rc = -1;

    if (len == 0) {
        return -1;
    }
    if (!echo && tcgetattr(fd, &old) == 0) {
        have_old = 1;
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
        quiet.c_lflag |= ICANON;
        (void)tcsetattr(fd, TCSAFLUSH, &quiet);
    }
    tty_puts(fd, prompt);
    for (;;) {
        char ch = 0;
        ssize_t r = read(fd, &ch, 1);

        if (r < 0 && errno == EINTR && !cr_interrupted) {
            continue;
        }
        if (r <= 0) {
            goto out;
        }
        if (ch == '\n' || ch == '\r') {
            break;
        }
        if (n + 1 < len) {
            buf[n++] = ch;
        }
    }
    buf[n] = '\0';
    rc = 0;
out:
    if (have_old) {
        (void)tcsetattr(fd, TCSAFLUSH, &old);
        tty_puts(fd, "\n");
    }
    if (rc != 0) {
        explicit_bzero(buf, len);
    }
    return rc;
}

/* libssh asks for a key's passphrase. */
static int
auth_cb(const char *prompt,
        char *buf,
        size_t len,
        int echo,
        int verify,
        void *userdata)
{
    struct ssh_conn *c = userdata;
    int fd = -1;
    int rc = -1;

    (void)verify;
    if (c->batch) {
        log_debug("%s: not asking for a key passphrase (batch mode)", c->name);
        return -1;
    }
    fd = open_tty();
    if (fd < 0) {
        log_debug("%s: no terminal to ask for a key passphrase", c->name);
        return -1;
    }
    {
        char *key = NULL;
        char *msg = NULL;

        (void)prompt;
        if (ssh_userauth_publickey_auto_get_current_identity(c->s, &key) ==
            SSH_OK) {
            msg = xasprintf("Enter passphrase for key '%s': ", key);
            ssh_string_free_char(key);
        } else {
            msg = xstrdup("Enter passphrase for key: ");
        }
        rc = tty_getline(fd, msg, buf, len, echo);
        free(msg);
    }
    close(fd);
    return rc;
}

/* ---- connecting ---- */

static int
own_socket(struct ssh_conn *c, int family, int timeout_s)
{
    struct addrinfo hints, *res = NULL, *ai = NULL;
    char *host = NULL;
    char port[16];
    unsigned int p = 22;
    int fd = -1;
    int one = 1;
    int rc = CR_ESSH;

    if (ssh_options_get(c->s, SSH_OPTIONS_HOST, &host) != SSH_OK) {
        conn_err(c, "%s: no host name", c->name);
        return CR_ESSH;
    }
    (void)ssh_options_get_port(c->s, &p);
    snprintf(port, sizeof(port), "%u", p);
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = family == 6 ? AF_INET6 : AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        conn_err(
            c, "%s: cannot resolve '%s': %s", c->name, host, gai_strerror(rc));
        rc = CR_ESSH;
        goto out;
    }
    rc = CR_ESSH;
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        struct pollfd pfd;
        int soerr = 0;
        socklen_t sl = sizeof(soerr);

        fd = socket(ai->ai_family,
                    ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
                    ai->ai_protocol);
        if (fd < 0) {
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 &&
            errno != EINPROGRESS) {
            soerr = errno;
        } else {
            pfd.fd = fd;
            pfd.events = POLLOUT;
            if (poll(&pfd, 1, timeout_s * 1000) <= 0) {
                soerr = ETIMEDOUT;
            } else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0) {
                soerr = errno;
            }
        }
        if (soerr == 0) {
            int fl = fcntl(fd, F_GETFL);

            (void)fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
            (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
            c->fd = fd;
            rc = set_opt(c, SSH_OPTIONS_FD, &c->fd, "fd");
            goto out;
        }
        log_debug("%s: connect: %s", c->name, strerror(soerr));
        close(fd);
        fd = -1;
        if (ai->ai_next == NULL) {
            conn_err(c,
                     "%s: cannot connect to %s port %s: %s",
                     c->name,
                     host,
                     port,
                     strerror(soerr));
        }
    }
    if (res == NULL) {
        conn_err(c, "%s: no address for '%s'", c->name, host);
    }
out:
    if (res != NULL) {
        freeaddrinfo(res);
    }
    ssh_string_free_char(host);
    return rc;
}

/* Options before ~/.ssh/config: crebuild's defaults, which the config may
 * override. */
static int
apply_defaults(struct ssh_conn *c, const struct ssh_target *t)
{
    long timeout = CR_SSH_CONNECT_TIMEOUT;
    int one = 1;
    int rc;

    rc = set_opt(c, SSH_OPTIONS_HOST, t->host, "host");
    if (rc == 0 && t->user != NULL) {
        rc = set_opt(c, SSH_OPTIONS_USER, t->user, "user");
    }
    if (rc == 0) {
        rc = set_opt(c, SSH_OPTIONS_TIMEOUT, &timeout, "ConnectTimeout");
    }
    if (rc == 0) {
        rc = set_opt(
            c, SSH_OPTIONS_CIPHERS_C_S, CR_SSH_DEFAULT_CIPHERS, "Ciphers");
    }
    if (rc == 0) {
        rc = set_opt(
            c, SSH_OPTIONS_CIPHERS_S_C, CR_SSH_DEFAULT_CIPHERS, "Ciphers");
    }
    /* From the first byte: the key exchange and login send small packets
     * back to back, and Nagle would hold each second one until the first
     * is acknowledged (up to a delayed-ACK timeout, 40 ms on Linux). */
    if (rc == 0) {
        rc = set_opt(c, SSH_OPTIONS_NODELAY, &one, "TCP_NODELAY");
    }
    return rc;
}

/* A ProxyJump/ProxyCommand value that is set and not "none". */
static int
proxy_set(const char *v)
{
    return v != NULL && strcasecmp(v, "none") != 0;
}

/* The target after NIX_SSHOPTS and ssh_config (see sshconfig_load). */
static int
apply_target(struct ssh_conn *c, const struct ssh_target *t)
{
    int yes = 1;
    int rc = 0;

    if (t->hostname != NULL) {
        rc = set_opt(c, SSH_OPTIONS_HOST, t->hostname, "HostName");
    }
    if (rc == 0 && t->port > 0) {
        unsigned int port = (unsigned int)t->port;

        rc = set_opt(c, SSH_OPTIONS_PORT, &port, "Port");
    }
    if (rc == 0 && t->user != NULL) {
        rc = set_opt(c, SSH_OPTIONS_USER, t->user, "User");
    }
    /* The paths are finished (sshconfig_load expanded them as ssh does);
     * libssh must not expand them again.  SSH_OPTIONS_IDENTITY prepends:
     * add in reverse to keep the order.  libssh leaves pkcs11: URIs as
     * they are. */
    for (size_t i = t->identities.n; rc == 0 && i > 0; i--) {
        const char *id = t->identities.v[i - 1];
        char *p =
            strncmp(id, "pkcs11:", 7) == 0 ? xstrdup(id) : libssh_path(id);

        rc = set_opt(c, SSH_OPTIONS_IDENTITY, p, "IdentityFile");
        free(p);
    }
    /* "none": no file (libssh would read a file named none); no key is
     * added to it either (sshconfig_load made StrictHostKeyChecking yes
     * for UserKnownHostsFile none). */
    if (rc == 0 && t->known_hosts != NULL) {
        char *p = strcasecmp(t->known_hosts, "none") == 0
                      ? xstrdup("/dev/null")
                      : libssh_path(t->known_hosts);

        rc = set_opt(c, SSH_OPTIONS_KNOWNHOSTS, p, "UserKnownHostsFile");
        free(p);
    }
    if (rc == 0 && t->global_known_hosts != NULL) {
        char *p = strcasecmp(t->global_known_hosts, "none") == 0
                      ? xstrdup("/dev/null")
                      : libssh_path(t->global_known_hosts);

        rc = set_opt(
            c, SSH_OPTIONS_GLOBAL_KNOWNHOSTS, p, "GlobalKnownHostsFile");
        free(p);
    }
    if (rc == 0 && t->connect_timeout >= 0) {
        long v = t->connect_timeout > 0 ? t->connect_timeout
                                        : CR_SSH_CONNECT_TIMEOUT;

        rc = set_opt(c, SSH_OPTIONS_TIMEOUT, &v, "ConnectTimeout");
    }
    /* The user's own ProxyCommand runs as given; ProxyJump is native
     * (open_jump). */
    if (rc == 0 && proxy_set(t->proxy_command)) {
        rc = set_opt(
            c, SSH_OPTIONS_PROXYCOMMAND, t->proxy_command, "ProxyCommand");
    }
    if (rc == 0 && t->compression >= 0) {
        rc = set_opt(c,
                     SSH_OPTIONS_COMPRESSION,
                     t->compression ? "yes" : "no",
                     "Compression");
    }
    if (rc == 0 && t->ciphers != NULL) {
        rc = set_opt(c, SSH_OPTIONS_CIPHERS_C_S, t->ciphers, "Ciphers");
        if (rc == 0) {
            rc = set_opt(c, SSH_OPTIONS_CIPHERS_S_C, t->ciphers, "Ciphers");
        }
    }
    if (rc == 0 && t->macs != NULL) {
        rc = set_opt(c, SSH_OPTIONS_HMAC_C_S, t->macs, "MACs");
        if (rc == 0) {
            rc = set_opt(c, SSH_OPTIONS_HMAC_S_C, t->macs, "MACs");
        }
    }
    if (rc == 0 && t->hostkey_algorithms != NULL) {
        rc = set_opt(c,
                     SSH_OPTIONS_HOSTKEYS,
                     t->hostkey_algorithms,
                     "HostKeyAlgorithms");
    }
    if (rc == 0 && t->kex_algorithms != NULL) {
        rc = set_opt(
            c, SSH_OPTIONS_KEY_EXCHANGE, t->kex_algorithms, "KexAlgorithms");
    }
    if (rc == 0 && t->pubkey_algorithms != NULL) {
        rc = set_opt(c,
                     SSH_OPTIONS_PUBLICKEY_ACCEPTED_TYPES,
                     t->pubkey_algorithms,
                     "PubkeyAcceptedAlgorithms");
    }
    if (rc == 0 && t->pubkey_auth >= 0) {
        rc = set_opt(c,
                     SSH_OPTIONS_PUBKEY_AUTH,
                     &t->pubkey_auth,
                     "PubkeyAuthentication");
    }
    /* IdentitiesOnly and IdentityAgent=none: libssh 0.10 has neither; an
     * agent socket that cannot exist keeps the agent out. */
    if (rc == 0 && (t->identities_only == 1 ||
                    (t->identity_agent != NULL &&
                     strcasecmp(t->identity_agent, "none") == 0))) {
        rc = set_opt(c,
                     SSH_OPTIONS_IDENTITY_AGENT,
                     "/nonexistent/agent",
                     "IdentityAgent");
    } else if (rc == 0 && t->identity_agent != NULL) {
        /* (expanded by sshconfig_load, as every path of a target) */
        rc = set_opt(
            c, SSH_OPTIONS_IDENTITY_AGENT, t->identity_agent, "IdentityAgent");
    }
    if (rc == 0) {
        int lv = SSH_LOG_NOLOG;

        if (t->log_level > 0) {
            lv = t->log_level + 1; /* DEBUG1 -> SSH_LOG_PROTOCOL ... */
        } else if (log_get_level() >= LOG_TRACE) {
            lv = SSH_LOG_PROTOCOL;
        }
        rc = set_opt(c, SSH_OPTIONS_LOG_VERBOSITY, &lv, "LogLevel");
    }
    /* crebuild decides about unknown keys itself (libssh 0.10 would
     * report an unknown host as known with StrictHostKeyChecking=no). */
    if (rc == 0) {
        rc = set_opt(
            c, SSH_OPTIONS_STRICTHOSTKEYCHECK, &yes, "StrictHostKeyChecking");
    }
    return rc;
}

/* Dead links fail in bounded time: unacknowledged data (our keepalives)
 * times the connection out after interval * count seconds. */
static void
tune_socket(struct ssh_conn *c, int count)
{
    int fd = ssh_get_fd(c->s);
    int one = 1;
    int idle = c->alive_interval;
    unsigned int utimeout = (unsigned int)(c->alive_interval * count) * 1000u;

    if (fd < 0) {
        return;
    }
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (c->alive_interval <= 0 || count <= 0) {
        return;
    }
    (void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
    (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
    (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &idle, sizeof(idle));
    (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof(count));
    (void)setsockopt(
        fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &utimeout, sizeof(utimeout));
}

/* ---- host keys ---- */

/* Key type and "SHA256:..." of the server's key (caller frees both). */
static int
server_key(struct ssh_conn *c, char **type, char **fp)
{
    ssh_key key = NULL;
    unsigned char *hash = NULL;
    size_t hlen = 0;
    char *f = NULL;
    int rc = CR_ESSH;

    *type = NULL;
    *fp = NULL;
    if (ssh_get_server_publickey(c->s, &key) != SSH_OK) {
        conn_err(c,
                 "%s: cannot get the server's host key: %s",
                 c->name,
                 ssh_get_error(c->s));
        goto out;
    }
    if (ssh_get_publickey_hash(key, SSH_PUBLICKEY_HASH_SHA256, &hash, &hlen) !=
        0) {
        conn_err(c, "%s: cannot hash the server's host key", c->name);
        goto out;
    }
    f = ssh_get_fingerprint_hash(SSH_PUBLICKEY_HASH_SHA256, hash, hlen);
    if (f == NULL) {
        conn_err(c, "%s: cannot format the host key fingerprint", c->name);
        goto out;
    }
    *fp = xstrdup(f);
    *type = xstrdup(ssh_key_type_to_char(ssh_key_type(key)));
    rc = 0;
out:
    ssh_string_free_char(f);
    ssh_clean_pubkey_hash(&hash);
    ssh_key_free(key);
    return rc;
}

/* "ask": the answer typed on /dev/tty.  1 yes, 0 no, -1 no terminal. */
static int
ask_host_key(struct ssh_conn *c, const char *type, const char *fp)
{
    char line[256];
    int fd = open_tty();
    int ans = 0;

    if (fd < 0) {
        return -1;
    }
    {
        char *msg = xasprintf("The authenticity of host '%s' can't be "
                              "established.\n%s key fingerprint is %s.\n"
                              "Are you sure you want to continue connecting "
                              "(yes/no/[fingerprint])? ",
                              c->name,
                              type,
                              fp);

        for (;;) {
            if (tty_getline(fd, msg, line, sizeof(line), 1) != 0) {
                ans = 0;
                break;
            }
            if (strcasecmp(line, "yes") == 0 || strcmp(line, fp) == 0) {
                ans = 1;
                break;
            }
            if (strcasecmp(line, "no") == 0) {
                ans = 0;
                break;
            }
            free(msg);
            msg = xstrdup("Please type 'yes', 'no' or the fingerprint: ");
        }
        free(msg);
    }
    close(fd);
    return ans;
}

static int
add_host_key(struct ssh_conn *c, const char *type)
{
    if (ssh_session_update_known_hosts(c->s) != SSH_OK) {
        log_warn("failed to add the host key of '%s' to the list of known "
                 "hosts: %s",
                 c->name,
                 ssh_get_error(c->s));
        return 0;
    }
    log_warn("permanently added '%s' (%s) to the list of known hosts",
             c->name,
             type);
    return 0;
}

static int
verify_host_key(struct ssh_conn *c, enum ssh_strict strict)
{
    enum ssh_known_hosts_e st = ssh_session_is_known_server(c->s);
    char *type = NULL;
    char *fp = NULL;
    int rc = CR_EHOSTKEY;
    int ans = 0;

    if (st == SSH_KNOWN_HOSTS_OK) {
        return 0;
    }
    if (st == SSH_KNOWN_HOSTS_ERROR) {
        conn_err(c,
                 "%s: cannot check the host key: %s",
                 c->name,
                 ssh_get_error(c->s));
        return CR_EHOSTKEY;
    }
    rc = server_key(c, &type, &fp);
    if (rc != 0) {
        return rc;
    }
    rc = CR_EHOSTKEY;
    if (st == SSH_KNOWN_HOSTS_CHANGED) {
        conn_err(c,
                 "host key for '%s' has CHANGED (now %s %s): refusing to "
                 "connect; if the change is expected, remove the old key "
                 "with ssh-keygen -R",
                 c->name,
                 type,
                 fp);
        goto out;
    }
    if (st == SSH_KNOWN_HOSTS_OTHER) {
        log_warn("'%s' offered a %s key, but keys of another type are known "
                 "for it",
                 c->name,
                 type);
    }
    switch (strict) {
    case CR_SSH_STRICT_YES:
        conn_err(c,
                 "host key for '%s' is not known (%s %s) and "
                 "StrictHostKeyChecking=yes: refusing to connect",
                 c->name,
                 type,
                 fp);
        goto out;
    case CR_SSH_STRICT_ACCEPT_NEW:
    case CR_SSH_STRICT_NO:
        rc = add_host_key(c, type);
        goto out;
    case CR_SSH_STRICT_UNSET:
    case CR_SSH_STRICT_ASK:
        break;
    }
    ans = c->batch ? -1 : ask_host_key(c, type, fp);
    if (ans == 1) {
        rc = add_host_key(c, type);
    } else if (ans == 0) {
        conn_err(
            c, "host key for '%s' (%s %s) not accepted", c->name, type, fp);
    } else {
        conn_err(c,
                 "host key for '%s' is not known (%s %s) and there is no "
                 "terminal to confirm it: add it to known_hosts, or set "
                 "NIX_SSHOPTS=\"-o StrictHostKeyChecking=accept-new\"",
                 c->name,
                 type,
                 fp);
    }
out:
    free(type);
    free(fp);
    return rc;
}

/* ---- login ---- */

/* For auth_direct: a key that needs a passphrase is left to the full
 * sequence (which asks for it only if the server takes the key). */
static int
no_passphrase(const char *prompt,
              char *buf,
              size_t len,
              int echo,
              int verify,
              void *userdata)
{
    (void)prompt;
    (void)buf;
    (void)len;
    (void)echo;
    (void)verify;
    (void)userdata;
    return -1;
}

/* ssh-agent is asked first by ssh_userauth_publickey_auto when one is
 * configured (see apply_target for how IdentitiesOnly and IdentityAgent
 * none keep it out). */
static int
agent_configured(const struct ssh_target *t)
{
    const char *sock = getenv("SSH_AUTH_SOCK");

    if (t->identities_only == 1 ||
        (t->identity_agent != NULL &&
         strcasecmp(t->identity_agent, "none") == 0)) {
        return 0;
    }
    return t->identity_agent != NULL || (sock != NULL && *sock != '\0');
}

/* A round trip less in the usual case: without an agent, the first
 * identity file the full sequence would try (-i/IdentityFile first, then
 * libssh's ~/.ssh/id_ed25519, id_ecdsa, id_rsa), if it needs no
 * passphrase, is offered signed at once instead of first asking whether
 * the server would take it.  SSH_AUTH_DENIED also when nothing was
 * offered; a refused key is offered again by the full sequence (one more
 * try counted against the server's MaxAuthTries). */
static int
auth_direct(struct ssh_conn *c, const struct ssh_target *t)
{
    static const char *const defaults[] = {"id_ed25519", "id_ecdsa", "id_rsa"};
    char pwbuf[4096];
    struct passwd pw, *pwp = NULL;
    const char *home = NULL;
    ssh_key key = NULL;
    char *path = NULL;
    int rc = SSH_AUTH_DENIED;

    if (t->pubkey_auth == 0 || agent_configured(t)) {
        return SSH_AUTH_DENIED;
    }
    /* libssh's default keys are in the passwd entry's home (not $HOME). */
    if (getpwuid_r(getuid(), &pw, pwbuf, sizeof(pwbuf), &pwp) == 0 &&
        pwp != NULL) {
        home = pw.pw_dir;
    } else {
        home = getenv("HOME");
    }
    for (size_t i = 0; path == NULL && i < t->identities.n; i++) {
        path = xstrdup(t->identities.v[i]);
        if (strncmp(path, "pkcs11:", 7) == 0 || access(path, R_OK) != 0) {
            free(path);
            path = NULL;
        }
    }
    for (size_t i = 0; path == NULL && home != NULL && i < ARRAY_SIZE(defaults);
         i++) {
        path = xasprintf("%s/.ssh/%s", home, defaults[i]);
        if (access(path, R_OK) != 0) {
            free(path);
            path = NULL;
        }
    }
    if (path == NULL) {
        return SSH_AUTH_DENIED;
    }
    if (ssh_pki_import_privkey_file(path, NULL, no_passphrase, NULL, &key) ==
        SSH_OK) {
        log_debug("%s: offering %s", c->name, path);
        rc = ssh_userauth_publickey(c->s, NULL, key);
        ssh_key_free(key);
    }
    free(path);
    return rc;
}

static int
authenticate(struct ssh_conn *c, const struct ssh_target *t)
{
    int methods = 0;
    int rc;

    /* No "none" request first (a round trip): the server's answer to a
     * refused key lists the methods it would take. */
    /* ssh-agent (when SSH_AUTH_SOCK or IdentityAgent is set), then the
     * identity files: -i/IdentityFile first, then ~/.ssh/id_ed25519,
     * id_ecdsa, id_rsa.  Passphrases go through auth_cb. */
    rc = auth_direct(c, t);
    if (rc == SSH_AUTH_DENIED) {
        rc = ssh_userauth_publickey_auto(c->s, NULL, NULL);
    }
    if (rc == SSH_AUTH_SUCCESS) {
        return 0;
    }
    if (rc == SSH_AUTH_ERROR) {
        goto fail;
    }
    if (rc == SSH_AUTH_PARTIAL) {
        conn_err(c,
                 "%s: the server wants a second authentication method; "
                 "crebuild only does public keys",
                 c->name);
        return CR_EAUTH;
    }
    methods = ssh_userauth_list(c->s, NULL);
    if (methods != 0 && !(methods & SSH_AUTH_METHOD_PUBLICKEY)) {
        conn_err(c,
                 "%s: the server does not accept public key "
                 "authentication (the only method crebuild uses)",
                 c->name);
        return CR_EAUTH;
    }
    conn_err(c,
             "%s: permission denied (publickey) for user '%s'",
             c->name,
             c->user ? c->user : "?");
    return CR_EAUTH;
fail:
    conn_err(c, "%s: authentication failed: %s", c->name, ssh_get_error(c->s));
    return ssh_is_connected(c->s) ? CR_EAUTH : CR_ESSH;
}

/* ---- jump hosts (ProxyJump) ---- */

/* A bridge: the jump host's session and a direct-tcpip channel on it, and
 * our end of the socket pair whose other end is the next session's
 * socket.  After jump_start only the bridge thread touches conn and ch. */
struct jump {
    struct ssh_conn *conn;
    ssh_channel ch;
    int fd;
    pthread_t thread;
    char up[BRIDGE_BUF]; /* fd -> channel */
    size_t up_off, up_len;
    char down[BRIDGE_BUF]; /* channel -> fd */
    size_t down_off, down_len;
    short events; /* what fd is registered for in conn->ev (0: not) */
};

static int
bridge_fd_cb(socket_t fd, int revents, void *userdata)
{
    (void)fd;
    (void)revents;
    (void)userdata;
    return 0;
}

/* Bytes from the socket pair into the channel, within its window.  1 on
 * progress, 0 if none, -1 when the bridge is done (the next session is
 * gone, or the jump session failed). */
static int
bridge_up(struct jump *j, int *fd_eof)
{
    int progress = 0;

    if (j->up_len == 0 && !*fd_eof) {
        ssize_t r = recv(j->fd, j->up, sizeof(j->up), MSG_DONTWAIT);

        if (r > 0) {
            j->up_off = 0;
            j->up_len = (size_t)r;
            progress = 1;
        } else if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK &&
                              errno != EINTR)) {
            *fd_eof = 1;
        }
    }
    if (j->up_len > 0) {
        uint32_t win = ssh_channel_window_size(j->ch);
        size_t n = j->up_len < win ? j->up_len : win;

        if (n > 0) {
            int w = ssh_channel_write(j->ch, j->up + j->up_off, (uint32_t)n);

            if (w < 0) {
                return -1;
            }
            j->up_off += (size_t)w;
            j->up_len -= (size_t)w;
            progress = 1;
        }
    }
    /* The next session closed its socket: nothing more will come. */
    if (*fd_eof && j->up_len == 0) {
        return -1;
    }
    return progress;
}

/* Bytes from the channel into the socket pair.  1/0/-1 as bridge_up. */
static int
bridge_down(struct jump *j)
{
    int progress = 0;
    int eof = 0;

    if (j->down_len == 0) {
        int r = ssh_channel_read_nonblocking(
            j->ch, j->down, (uint32_t)sizeof(j->down), 0);

        if (r > 0) {
            j->down_off = 0;
            j->down_len = (size_t)r;
            progress = 1;
        } else if (r != 0 || ssh_channel_is_eof(j->ch) ||
                   ssh_channel_is_closed(j->ch)) {
            eof = 1; /* SSH_EOF, an error, or the target closed */
        }
    }
    if (j->down_len > 0) {
        ssize_t w = send(j->fd,
                         j->down + j->down_off,
                         j->down_len,
                         MSG_DONTWAIT | MSG_NOSIGNAL);

        if (w > 0) {
            j->down_off += (size_t)w;
            j->down_len -= (size_t)w;
            progress = 1;
        } else if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
                   errno != EINTR) {
            return -1;
        }
    }
    return eof && j->down_len == 0 ? -1 : progress;
}

static void
bridge_watch(struct jump *j, short want)
{
    if (want == j->events) {
        return;
    }
    if (j->events != 0) {
        (void)ssh_event_remove_fd(j->conn->ev, j->fd);
    }
    j->events = 0;
    if (want != 0 &&
        ssh_event_add_fd(j->conn->ev, j->fd, want, bridge_fd_cb, j) == SSH_OK) {
        j->events = want;
    }
}

/* The bridge thread: copy until either side ends, then close the channel
 * and free the jump session (which joins the bridges before it). */
static void *
bridge_main(void *arg)
{
    struct jump *j = arg;
    struct ssh_conn *c = j->conn;
    int fd_eof = 0;

    for (;;) {
        int up = bridge_up(j, &fd_eof);
        int down = up < 0 ? -1 : bridge_down(j);
        short want = 0;

        if (up < 0 || down < 0 || !ssh_is_connected(c->s)) {
            break;
        }
        if (j->up_len == 0 && !fd_eof) {
            want |= POLLIN;
        }
        if (j->down_len > 0) {
            want |= POLLOUT;
        }
        bridge_watch(j, want);
        if (c->alive_interval > 0 &&
            now_s() - c->last_alive >= c->alive_interval) {
            (void)ssh_send_ignore(c->s, "");
            c->last_alive = now_s();
        }
        (void)ssh_event_dopoll(c->ev, up > 0 || down > 0 ? 0 : WAIT_SLICE);
    }
    bridge_watch(j, 0);
    /* The next session sees the end (it may still be reading). */
    (void)shutdown(j->fd, SHUT_RDWR);
    if (ssh_is_connected(c->s) && ssh_channel_is_open(j->ch)) {
        (void)ssh_channel_send_eof(j->ch);
        (void)ssh_channel_close(j->ch);
    }
    ssh_channel_free(j->ch);
    j->ch = NULL;
    ssh_conn_free(c);
    j->conn = NULL;
    return NULL;
}

/* Hand conn and ch to a new bridge thread (signals blocked there: they
 * are the main thread's).  0 or -1. */
static int
jump_start(struct jump *j)
{
    sigset_t all, old;
    int rc;

    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_create(&j->thread, NULL, bridge_main, j);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc == 0 ? 0 : -1;
}

/* After the next session's socket is closed: wait for the bridge. */
static void
jump_free(struct jump *j)
{
    if (j == NULL) {
        return;
    }
    pthread_join(j->thread, NULL);
    close(j->fd);
    free(j);
}

/* The target for one hop: user and port from the ProxyJump entry, the
 * rest of the chain as its own ProxyJump, and every option of the command
 * line that is not about one host; ssh_config for the hop's name fills in
 * the rest when the hop is opened. */
static void
hop_target(struct ssh_target *h,
           const struct ssh_target *cli,
           const struct ssh_hop *hop,
           const char *rest)
{
    ssh_target_copy(h, cli);
    free(h->raw);
    h->raw = xstrdup(hop->raw);
    free(h->host);
    h->host = xstrdup(hop->host);
    free(h->user);
    h->user = hop->user != NULL ? xstrdup(hop->user) : NULL;
    h->port = hop->port;
    free(h->hostname);
    h->hostname = NULL;
    free(h->proxy_command);
    h->proxy_command = NULL;
    free(h->proxy_jump);
    h->proxy_jump = rest != NULL ? xstrdup(rest) : NULL;
    h->scheme = CR_SSH_SCHEME_NONE;
}

/* "Channel opening failure: channel 43 error (2) Connection refused" ->
 * "Connection refused". */
static const char *
open_fail_reason(const char *e)
{
    const char *p = strstr(e, "error (");

    if (p != NULL && (p = strchr(p, ')')) != NULL && p[1] == ' ') {
        return p + 2;
    }
    return e;
}

static int conn_open(const struct ssh_target *cli,
                     int batch,
                     int depth,
                     const char *for_name,
                     struct ssh_conn **out,
                     char **err);

/* Connect the last hop of t->proxy_jump (through the hops before it),
 * open a channel from it to t's host and port, and give c's session a
 * socket bridged to that channel. */
static int
open_jump(struct ssh_conn *c,
          const struct ssh_target *cli,
          const struct ssh_target *t,
          int batch,
          int depth)
{
    struct ssh_hop *hops = NULL;
    size_t n = 0;
    struct ssh_target ht;
    struct strbuf rest = STRBUF_INIT;
    struct ssh_conn *jc = NULL;
    struct jump *j = NULL;
    const char *dest = t->hostname != NULL ? t->hostname : t->host;
    int port = t->port > 0 ? t->port : 22;
    int sv[2] = {-1, -1};
    char *e = NULL;
    int rc;

    if (depth >= JUMP_MAX) {
        conn_err(c,
                 "%s: more than %d jump hosts (a ProxyJump loop in "
                 "ssh_config?)",
                 c->name,
                 JUMP_MAX);
        return CR_EUSAGE;
    }
    rc = sshopts_parse_jump(t->proxy_jump, &hops, &n, &e);
    if (rc != 0) {
        conn_err(c, "%s: %s", c->name, e);
        free(e);
        return rc;
    }
    for (size_t i = 0; i + 1 < n; i++) {
        strbuf_addstr(&rest, i > 0 ? "," : "");
        strbuf_addstr(&rest, hops[i].raw);
    }
    hop_target(&ht, cli, &hops[n - 1], rest.len > 0 ? rest.buf : NULL);
    ssh_hops_free(hops, n);
    strbuf_release(&rest);
    log_debug("%s: through jump host %s", c->name, ht.raw);
    rc = conn_open(&ht, batch, depth + 1, c->name, &jc, &e);
    ssh_target_release(&ht);
    if (rc != 0) {
        /* Names the hop already. */
        conn_err(c, "%s", e);
        c->err_from_hop = 1;
        free(e);
        return rc;
    }
    j = xcalloc(1, sizeof(*j));
    j->fd = -1;
    j->conn = jc;
    j->ch = ssh_channel_new(jc->s);
    if (j->ch == NULL || ssh_channel_open_forward(
                             j->ch, dest, port, "127.0.0.1", 22) != SSH_OK) {
        conn_err(c,
                 "jump host '%s' cannot reach %s port %d for '%s': channel "
                 "open failed (%s)",
                 jc->name,
                 dest,
                 port,
                 c->name,
                 open_fail_reason(ssh_get_error(jc->s)));
        c->err_from_hop = 1;
        rc = CR_ESSH;
        goto fail;
    }
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        conn_err(c, "%s: socketpair: %s", c->name, strerror(errno));
        rc = CR_ESSH;
        goto fail;
    }
    j->fd = sv[1];
    if (jump_start(j) != 0) {
        conn_err(c, "%s: cannot start the jump host bridge", c->name);
        rc = CR_ESSH;
        goto fail;
    }
    /* From here the bridge owns jc and j->ch; c owns sv[0] until libssh
     * takes it over in ssh_connect. */
    c->jump = j;
    c->fd = sv[0];
    return set_opt(c, SSH_OPTIONS_FD, &c->fd, "fd");
fail:
    if (sv[0] >= 0) {
        close(sv[0]);
    }
    if (j->fd >= 0) {
        close(j->fd);
    }
    if (j->ch != NULL) {
        ssh_channel_free(j->ch);
    }
    ssh_conn_free(jc);
    free(j);
    return rc;
}

static void
conn_disconnect(struct ssh_conn *c)
{
    if (c->fd_lib && (c->s == NULL || ssh_get_fd(c->s) != c->fd)) {
        c->fd = -1; /* libssh closed it after an error */
    }
    if (c->ev != NULL) {
        ssh_event_remove_session(c->ev, c->s);
        ssh_event_free(c->ev);
        c->ev = NULL;
    }
    if (c->s != NULL) {
        ssh_disconnect(c->s);
        ssh_free(c->s);
        c->s = NULL;
    }
    if (c->fd >= 0) {
        if (c->jump != NULL) {
            (void)shutdown(c->fd, SHUT_RDWR);
        }
        close(c->fd);
        c->fd = -1;
    }
    /* Our socket is closed: the bridge ends and frees the jump host. */
    jump_free(c->jump);
    c->jump = NULL;
}

/* After ssh_connect: does libssh use the socket we gave it?  (Set via
 * SSH_OPTIONS_FD, libssh 0.10 leaves it open on ssh_disconnect, but closes
 * it when the connection fails; it never took it if ssh_connect failed
 * early.) */
static void
fd_handed_over(struct ssh_conn *c)
{
    if (c->fd < 0) {
        return;
    }
    if (ssh_get_fd(c->s) == c->fd) {
        c->fd_lib = 1;
    } else if (fcntl(c->fd, F_GETFD) < 0) {
        c->fd = -1; /* closed by libssh */
    }
}

/* cli: the host and NIX_SSHOPTS (a hop: see hop_target); ssh_config is
 * read here.  for_name: the host this one is a jump host for, named in
 * its errors. */
static int
conn_open(const struct ssh_target *cli,
          int batch,
          int depth,
          const char *for_name,
          struct ssh_conn **out,
          char **err)
{
    struct ssh_conn *c = xcalloc(1, sizeof(*c));
    struct ssh_target tt;
    const struct ssh_target *t = &tt;
    struct strvec warnings = STRVEC_INIT, notes = STRVEC_INIT;
    char *user = NULL;
    char *e = NULL;
    long tmo = 0;
    int no = 0;
    int rc = CR_ESSH;
    int count = 0;

    *out = NULL;
    *err = NULL;
    c->fd = -1;
    c->name = xstrdup(cli->raw != NULL ? cli->raw : cli->host);
    ssh_target_copy(&tt, cli);
    rc = sshconfig_load(&tt, &warnings, &notes, &e);
    for (size_t i = 0; i < warnings.n; i++) {
        log_warn("%s: %s", c->name, warnings.v[i]);
    }
    for (size_t i = 0; i < notes.n; i++) {
        log_debug("%s: %s", c->name, notes.v[i]);
    }
    strvec_clear(&warnings);
    strvec_clear(&notes);
    if (rc != 0) {
        conn_err(c, "%s: %s", c->name, e);
        free(e);
        goto out;
    }
    count = t->alive_count >= 0 ? t->alive_count : CR_SSH_ALIVE_COUNT;
    c->batch = batch || t->batch_mode == 1;
    c->alive_interval =
        t->alive_interval >= 0 ? t->alive_interval : CR_SSH_ALIVE_INTERVAL;
    c->s = ssh_new();
    if (c->s == NULL) {
        cr_die("out of memory");
    }
    memset(&c->cb, 0, sizeof(c->cb));
    c->cb.userdata = c;
    c->cb.auth_function = auth_cb;
    ssh_callbacks_init(&c->cb);
    ssh_set_callbacks(c->s, &c->cb);

    /* ssh_config is ours (sshconfig_load), never libssh's. */
    rc = set_opt(c, SSH_OPTIONS_PROCESS_CONFIG, &no, "ssh_config");
    if (rc == 0) {
        rc = apply_defaults(c, t);
    }
    if (rc == 0) {
        rc = apply_target(c, t);
    }
    if (rc != 0) {
        goto out;
    }
    if (ssh_options_get(c->s, SSH_OPTIONS_USER, &user) == SSH_OK) {
        c->user = xstrdup(user);
        ssh_string_free_char(user);
    }
    if (!proxy_set(t->proxy_command) && proxy_set(t->proxy_jump)) {
        rc = open_jump(c, cli, t, batch, depth);
    } else if (t->address_family != 0 && !proxy_set(t->proxy_command)) {
        tmo = t->connect_timeout > 0 ? t->connect_timeout
                                     : CR_SSH_CONNECT_TIMEOUT;
        rc = own_socket(c, t->address_family, (int)tmo);
    }
    if (rc != 0) {
        goto out;
    }
    log_debug("%s: connecting", c->name);
    rc = ssh_connect(c->s);
    fd_handed_over(c);
    if (rc != SSH_OK) {
        conn_err(c, "cannot connect to '%s': %s", c->name, ssh_get_error(c->s));
        rc = CR_ESSH;
        goto out;
    }
    rc = verify_host_key(c, t->strict);
    if (rc == 0) {
        rc = authenticate(c, t);
    }
    if (rc != 0) {
        goto out;
    }
    tune_socket(c, count);
    c->last_alive = now_s();
    c->ev = ssh_event_new();
    if (c->ev == NULL || ssh_event_add_session(c->ev, c->s) != SSH_OK) {
        conn_err(c, "%s: cannot set up the event loop", c->name);
        rc = CR_ESSH;
        goto out;
    }
    log_debug("%s: logged in as %s", c->name, c->user ? c->user : "?");
    if (for_name == NULL) {
        spare_open(c); /* (a jump host runs no commands) */
    }
    *out = c;
    c = NULL;
    rc = 0;
out:
    if (c != NULL) {
        *err = c->err != NULL ? c->err
                              : xasprintf("cannot connect to '%s': %s",
                                          c->name,
                                          cr_strerror(rc));
        c->err = NULL;
        if (for_name != NULL && !c->err_from_hop) {
            char *m = xasprintf("%s (jump host for '%s')", *err, for_name);

            free(*err);
            *err = m;
        }
    }
    ssh_target_release(&tt);
    ssh_conn_free(c);
    return rc;
}

int
ssh_conn_open(const struct ssh_target *t,
              int batch,
              struct ssh_conn **out,
              char **err)
{
    return conn_open(t, batch, 0, NULL, out, err);
}

void
ssh_conn_free(struct ssh_conn *c)
{
    if (c == NULL) {
        return;
    }
    while (c->chans != NULL) {
        ssh_chan_abort(c->chans);
    }
    while (c->n_spare > 0) {
        ssh_channel_free(c->spare[--c->n_spare]);
    }
    conn_disconnect(c);
    free(c->name);
    free(c->user);
    free(c->err);
    free(c);
}

const char *
ssh_conn_name(const struct ssh_conn *c)
{
    return c->name;
}

const char *
ssh_conn_user(const struct ssh_conn *c)
{
    return c->user;
}

/* ---- channels ---- */

static void
tail_add(struct ssh_chan *ch, const char *p, size_t n)
{
    if (n >= ERR_TAIL_MAX) {
        memcpy(ch->tail, p + n - ERR_TAIL_MAX, ERR_TAIL_MAX);
        ch->tail_len = ERR_TAIL_MAX;
    } else {
        if (ch->tail_len + n > ERR_TAIL_MAX) {
            size_t drop = ch->tail_len + n - ERR_TAIL_MAX;

            memmove(ch->tail, ch->tail + drop, ch->tail_len - drop);
            ch->tail_len -= drop;
        }
        memcpy(ch->tail + ch->tail_len, p, n);
        ch->tail_len += n;
    }
    ch->tail[ch->tail_len] = '\0';
}

static void
err_flush_line(struct ssh_chan *ch)
{
    if (ch->line.len > 0 || ch->line_cut) {
        strbuf_addch(&ch->line, '\n');
        fflush(stdout);
        (void)fwrite(ch->line.buf, 1, ch->line.len, stderr);
        fflush(stderr);
        strbuf_reset(&ch->line);
        ch->line_cut = 0;
    }
}

/* Remote stderr: captured, or forwarded a line at a time. */
static void
err_sink(struct ssh_chan *ch, const char *p, size_t n)
{
    tail_add(ch, p, n);
    if (ch->capture != NULL) {
        strbuf_add(ch->capture, p, n);
        return;
    }
    while (n > 0) {
        const char *nl = memchr(p, '\n', n);
        size_t k = nl ? (size_t)(nl - p) : n;

        if (!ch->line_cut) {
            size_t room = ERR_LINE_MAX - ch->line.len;

            strbuf_add(&ch->line, p, k < room ? k : room);
            if (k > room) {
                ch->line_cut = 1;
            }
        }
        if (nl == NULL) {
            break;
        }
        err_flush_line(ch);
        p += k + 1;
        n -= k + 1;
    }
}

/* Read what has arrived on ch without waiting: stderr goes where
 * err_sink sends it, stdout into ch->stash (ssh_chan_read_nb returns it
 * first).  0, or CR_ESSH when libssh fails. */
static int
drain(struct ssh_chan *ch, int is_stderr)
{
    char buf[65536];

    for (;;) {
        int r =
            ssh_channel_read_nonblocking(ch->ch, buf, sizeof(buf), is_stderr);

        if (r <= 0) {
            return r == SSH_ERROR ? CR_ESSH : 0;
        }
        if (is_stderr) {
            err_sink(ch, buf, (size_t)r);
        } else {
            strbuf_add(&ch->stash, buf, (size_t)r);
        }
    }
}

static int
drain_stderr(struct ssh_chan *ch)
{
    return drain(ch, 1);
}

static void
on_exit_status(ssh_session s, ssh_channel c, int status, void *userdata)
{
    struct ssh_chan *ch = userdata;

    (void)s;
    (void)c;
    ch->exit_status = status;
    ch->got_exit = 1;
}

static int
signal_number(const char *name)
{
    static const struct {
        const char *name;
        int sig;
    } sigs[] = {
        {"ABRT", SIGABRT},
        {"ALRM", SIGALRM},
        {"FPE", SIGFPE},
        {"HUP", SIGHUP},
        {"ILL", SIGILL},
        {"INT", SIGINT},
        {"KILL", SIGKILL},
        {"PIPE", SIGPIPE},
        {"QUIT", SIGQUIT},
        {"SEGV", SIGSEGV},
        {"TERM", SIGTERM},
        {"USR1", SIGUSR1},
        {"USR2", SIGUSR2},
        {"BUS", SIGBUS},
        {"TRAP", SIGTRAP},
    };

    for (size_t i = 0; i < ARRAY_SIZE(sigs); i++) {
        if (strcmp(name, sigs[i].name) == 0) {
            return sigs[i].sig;
        }
    }
    return 0;
}

static void
on_exit_signal(ssh_session s,
               ssh_channel c,
               const char *signal,
               int core,
               const char *errmsg,
               const char *lang,
               void *userdata)
{
    struct ssh_chan *ch = userdata;

    (void)s;
    (void)c;
    (void)core;
    (void)errmsg;
    (void)lang;
    ch->exit_signal = signal ? signal_number(signal) : 0;
    if (ch->exit_signal == 0) {
        ch->exit_signal = SIGTERM;
    }
    ch->got_exit = 1;
}

static void
chan_unlink(struct ssh_chan *ch)
{
    struct ssh_chan **pp = &ch->conn->chans;

    while (*pp != NULL && *pp != ch) {
        pp = &(*pp)->next;
    }
    if (*pp == ch) {
        *pp = ch->next;
    }
}

static void
chan_free(struct ssh_chan *ch)
{
    err_flush_line(ch);
    chan_unlink(ch);
    if (ch->ch != NULL) {
        /* libssh keeps a channel the remote has not closed yet (and its
         * callbacks) until the remote's close arrives; an exit-status
         * arriving before that must not reach the freed ch. */
        (void)ssh_remove_channel_callbacks(ch->ch, &ch->cb);
        if (ssh_channel_is_open(ch->ch)) {
            (void)ssh_channel_close(ch->ch);
        }
        ssh_channel_free(ch->ch);
    }
    strbuf_release(&ch->line);
    strbuf_release(&ch->stash);
    free(ch);
}

/* Round trips saved per command: a session channel is opened ahead of
 * need (the CHANNEL_OPEN goes out now, its confirmation is read with
 * whatever comes next), and the exec request is not waited for (the
 * answer arrives with the command's first output; see exec_settle). */
static void
spare_open(struct ssh_conn *c)
{
    while (!c->dead && c->n_spare < ARRAY_SIZE(c->spare)) {
        ssh_channel ch = ssh_channel_new(c->s);
        int rc;

        if (ch == NULL) {
            return;
        }
        ssh_set_blocking(c->s, 0);
        rc = ssh_channel_open_session(ch);
        ssh_set_blocking(c->s, 1);
        if (rc == SSH_ERROR) {
            log_debug("%s: cannot open a channel ahead: %s",
                      c->name,
                      ssh_get_error(c->s));
            ssh_channel_free(ch);
            return;
        }
        c->spare[c->n_spare++] = ch;
    }
}

/* libssh 0.10 opens channels with a 64000-byte window and grows it only
 * when data arrives, so a larger first answer (the valid paths of a big
 * closure) waits a round trip for our window adjust.  A read asking for
 * more than the window sends the adjust at once; with no time to wait,
 * it only takes what is already buffered (stderr: forwarded as usual). */
static void
open_window(struct ssh_chan *ch)
{
    size_t want = 2u << 20;
    char *tmp = xmalloc(want);
    int r = ssh_channel_read_timeout(ch->ch, tmp, (uint32_t)want, 1, 0);

    if (r > 0) {
        err_sink(ch, tmp, (size_t)r);
    }
    free(tmp);
}

/* Wait for the server to confirm channel ch.  OpenSSH's sshd writes its
 * host keys and debug messages right after the login without
 * TCP_NODELAY, so the confirmation of the first channel waits behind
 * them until they are acknowledged: a delayed ACK away (40 ms on Linux;
 * a proxy on the path delays it the same way).  The first time data
 * arrives while we wait, an SSH_MSG_IGNORE goes back at once, carrying
 * the acknowledgement. */
static int
open_settle(struct ssh_conn *c, ssh_channel ch)
{
    int rc;

    if (!c->nudged) {
        struct pollfd pfd = {ssh_get_fd(c->s), POLLIN, 0};

        c->nudged = 1;
        ssh_set_blocking(c->s, 0);
        rc = ssh_channel_open_session(ch);
        if (rc == SSH_AGAIN && pfd.fd >= 0 && poll(&pfd, 1, 500) > 0) {
            rc = ssh_channel_open_session(ch);
            if (rc == SSH_AGAIN) {
                (void)ssh_send_ignore(c->s, "");
            }
        }
        ssh_set_blocking(c->s, 1);
        if (rc != SSH_AGAIN) {
            return rc;
        }
    }
    return ssh_channel_open_session(ch);
}

/* The server's answer to our exec request: 0 when accepted or not read
 * yet (block = 0), CR_ESSH when refused. */
static int
exec_settle(struct ssh_chan *ch, int block)
{
    int rc;

    if (!ch->exec_pending || ch->conn->dead) {
        return 0;
    }
    if (!block) {
        ssh_set_blocking(ch->conn->s, 0);
    }
    rc = ssh_channel_request_exec(ch->ch, "");
    if (!block) {
        ssh_set_blocking(ch->conn->s, 1);
    }
    if (rc == SSH_AGAIN) {
        return 0;
    }
    ch->exec_pending = 0;
    if (rc != SSH_OK) {
        if (!ssh_is_connected(ch->conn->s)) {
            ch->conn->dead = 1;
        }
        log_error("%s: cannot start a remote command: %s",
                  ch->conn->name,
                  ssh_get_error(ch->conn->s));
        return CR_ESSH;
    }
    return 0;
}

int
ssh_chan_exec(struct ssh_conn *c,
              const char *command,
              struct strbuf *err_capture,
              struct ssh_chan **out)
{
    int rc;

    struct ssh_chan *ch = xcalloc(1, sizeof(*ch));

    *out = NULL;
    ch->conn = c;
    ch->capture = err_capture;
    ch->exit_status = -1;
    strbuf_init(&ch->line, 0);
    strbuf_init(&ch->stash, 0);
    ch->next = c->chans;
    c->chans = ch;
    if (c->dead) {
        log_error("%s: the connection is closed", c->name);
        goto fail;
    }
    if (c->n_spare > 0) {
        ch->ch = c->spare[0];
        c->spare[0] = c->spare[1];
        c->n_spare--;
    } else {
        ch->ch = ssh_channel_new(c->s);
    }
    if (ch->ch == NULL) {
        log_error(
            "%s: cannot create a channel: %s", c->name, ssh_get_error(c->s));
        goto fail;
    }
    memset(&ch->cb, 0, sizeof(ch->cb));
    ch->cb.userdata = ch;
    ch->cb.channel_exit_status_function = on_exit_status;
    ch->cb.channel_exit_signal_function = on_exit_signal;
    ssh_callbacks_init(&ch->cb);
    if (ssh_set_channel_callbacks(ch->ch, &ch->cb) != SSH_OK) {
        log_error("%s: cannot set channel callbacks", c->name);
        goto fail;
    }
    if (open_settle(c, ch->ch) != SSH_OK) {
        log_error(
            "%s: cannot open a channel: %s", c->name, ssh_get_error(c->s));
        goto fail;
    }
    log_trace("%s: exec %s", c->name, command);
    ssh_set_blocking(c->s, 0);
    rc = ssh_channel_request_exec(ch->ch, command);
    ssh_set_blocking(c->s, 1);
    if (rc == SSH_ERROR) {
        log_error("%s: cannot start a remote command: %s",
                  c->name,
                  ssh_get_error(c->s));
        goto fail;
    }
    ch->exec_pending = rc == SSH_AGAIN;
    open_window(ch);
    spare_open(c);
    *out = ch;
    return 0;
fail:
    if (!ssh_is_connected(c->s)) {
        c->dead = 1;
    }
    chan_free(ch);
    return CR_ESSH;
}

/* Process whatever the server sent (waiting up to timeout_ms), send a
 * keepalive when due, and drain every channel's stderr. */
/* The session is gone: say so once (every later failure on it is a
 * consequence, and callers do not report CR_ESSH again). */
static void
conn_lost(struct ssh_conn *c)
{
    const char *e = ssh_get_error(c->s);

    if (!c->dead) {
        log_error("%s: connection lost%s%s", c->name, *e ? ": " : "", e);
    }
    c->dead = 1;
}

/* A read or write on ch failed: say so at debug level (the caller
 * reports), note a lost connection, return CR_ESSH. */
static int
chan_io_failed(struct ssh_chan *ch, const char *what)
{
    log_debug("%s: %s remote command failed: %s",
              ch->conn->name,
              what,
              ssh_get_error(ch->conn->s));
    if (!ssh_is_connected(ch->conn->s)) {
        conn_lost(ch->conn);
    }
    return CR_ESSH;
}

static int
conn_pump(struct ssh_conn *c, int timeout_ms)
{
    int rc = 0;

    if (c->dead) {
        return CR_ESSH;
    }
    if (c->alive_interval > 0 && now_s() - c->last_alive >= c->alive_interval) {
        (void)ssh_send_ignore(c->s, "");
        c->last_alive = now_s();
    }
    rc = ssh_event_dopoll(c->ev, timeout_ms);
    if (rc == SSH_ERROR && errno == EINTR && ssh_is_connected(c->s)) {
        rc = SSH_OK;
    }
    if (!ssh_is_connected(c->s)) {
        conn_lost(c);
        return CR_ESSH;
    }
    for (struct ssh_chan *ch = c->chans; ch != NULL; ch = ch->next) {
        if (ch->ch != NULL) {
            (void)drain_stderr(ch);
        }
    }
    return 0;
}

int
ssh_chan_wait(struct ssh_chan *ch, int timeout_ms)
{
    int slice = timeout_ms < WAIT_SLICE ? timeout_ms : WAIT_SLICE;

    if (cr_interrupted) {
        return CR_EINTR;
    }
    /* Something is already buffered: no need to block. */
    /* (> 0: data; SSH_EOF is negative and must not make this spin while
     * the command runs on after closing its output.) */
    if (ch->stash_off < ch->stash.len || ssh_channel_poll(ch->ch, 0) > 0) {
        slice = 0;
    }
    int rc = conn_pump(ch->conn, slice);

    return rc != 0 ? rc : exec_settle(ch, 0);
}

ssize_t
ssh_chan_write_some(struct ssh_chan *ch, const void *buf, size_t n)
{
    uint32_t win;
    int w;

    if (ch->conn->dead) {
        return CR_ESSH;
    }
    if (exec_settle(ch, 0) != 0) {
        return CR_ESSH;
    }
    win = ssh_channel_window_size(ch->ch); /* after settling: it may grow */
    if (n > WRITE_CHUNK) {
        n = WRITE_CHUNK;
    }
    if (n > win) {
        n = win;
    }
    if (n == 0) {
        return 0;
    }
    w = ssh_channel_write(ch->ch, buf, (uint32_t)n);
    if (w < 0) {
        return chan_io_failed(ch, "write to");
    }
    return w;
}

int
ssh_chan_write(struct ssh_chan *ch, const void *buf, size_t n)
{
    const char *p = buf;

    while (n > 0) {
        ssize_t w;
        int rc;

        if (cr_interrupted) {
            return CR_EINTR;
        }
        if (ssh_channel_is_closed(ch->ch)) {
            /* The command exited without reading all its input. */
            log_debug("%s: remote command exited before reading all its "
                      "input",
                      ch->conn->name);
            return CR_ESSH;
        }
        w = ssh_chan_write_some(ch, p, n);
        if (w < 0) {
            return (int)w;
        }
        p += w;
        n -= (size_t)w;
        if (w == 0) {
            /* Window full: wait for the server's window adjust.  The
             * command may meanwhile wait for us to read its output before
             * it reads more input, and libssh grants the server window
             * only when we read: read it now, or each end would wait for
             * the other. */
            rc = conn_pump(ch->conn, WAIT_SLICE);
            if (rc == 0 && drain(ch, 0) != 0) {
                rc = chan_io_failed(ch, "read from");
            }
            if (rc != 0) {
                return rc;
            }
            (void)drain_stderr(ch);
        }
    }
    return 0;
}

ssize_t
ssh_chan_read_nb(struct ssh_chan *ch, void *buf, size_t n, int *eof)
{
    int r;

    *eof = 0;
    if (ch->stash_off < ch->stash.len) {
        size_t k = ch->stash.len - ch->stash_off;

        if (k > n) {
            k = n;
        }
        memcpy(buf, ch->stash.buf + ch->stash_off, k);
        ch->stash_off += k;
        if (ch->stash_off == ch->stash.len) {
            strbuf_reset(&ch->stash);
            ch->stash_off = 0;
        }
        return (ssize_t)k;
    }
    if (ch->out_eof) {
        *eof = 1;
        return 0;
    }
    if (exec_settle(ch, 0) != 0) {
        return CR_ESSH;
    }
    if (n > 0x7fffffff) {
        n = 0x7fffffff;
    }
    r = ssh_channel_read_nonblocking(ch->ch, buf, (uint32_t)n, 0);
    if (r == SSH_EOF || (r == 0 && ssh_channel_is_closed(ch->ch))) {
        /* Nothing buffered and the server sent EOF (or closed). */
        ch->out_eof = 1;
        *eof = 1;
        return 0;
    }
    if (r < 0) {
        return chan_io_failed(ch, "read from");
    }
    return r;
}

ssize_t
ssh_chan_read(struct ssh_chan *ch, void *buf, size_t n)
{
    for (;;) {
        int eof = 0;
        ssize_t r = ssh_chan_read_nb(ch, buf, n, &eof);
        int rc;

        if (r != 0 || eof) {
            return r;
        }
        rc = ssh_chan_wait(ch, WAIT_SLICE);
        if (rc != 0) {
            return rc;
        }
    }
}

int
ssh_chan_send_eof(struct ssh_chan *ch)
{
    if (ch->eof_sent) {
        return 0;
    }
    ch->eof_sent = 1;
    if (ssh_channel_is_closed(ch->ch)) {
        return 0;
    }
    if (ssh_channel_send_eof(ch->ch) != SSH_OK) {
        log_error("%s: cannot send EOF: %s",
                  ch->conn->name,
                  ssh_get_error(ch->conn->s));
        return CR_ESSH;
    }
    return 0;
}

const char *
ssh_chan_stderr_tail(const struct ssh_chan *ch)
{
    return ch->tail;
}

/* Free ch; while it is open, first send EOF, and SIGINT before it when
 * interrupt.  Nothing is waited for.  NULL is a no-op. */
static void
chan_end(struct ssh_chan *ch, int interrupt)
{
    if (ch == NULL) {
        return;
    }
    if (ch->ch != NULL && !ch->conn->dead && ssh_channel_is_open(ch->ch) &&
        exec_settle(ch, 1) == 0) {
        if (interrupt) {
            (void)ssh_channel_request_send_signal(ch->ch, "INT");
        }
        (void)ssh_channel_send_eof(ch->ch);
    }
    chan_free(ch);
}

void
ssh_chan_abort(struct ssh_chan *ch)
{
    chan_end(ch, 1);
}

int
ssh_chan_finish(struct ssh_chan *ch, int *status)
{
    char buf[65536];
    int rc = 0;

    *status = -1;
    rc = ssh_chan_send_eof(ch);
    while (rc == 0) {
        int eof = 0;
        ssize_t r = ssh_chan_read_nb(ch, buf, sizeof(buf), &eof);

        if (r < 0) {
            rc = (int)r;
            break;
        }
        if (r > 0) {
            continue;
        }
        (void)drain_stderr(ch);
        if (eof && (ch->got_exit || ssh_channel_is_closed(ch->ch))) {
            break;
        }
        rc = ssh_chan_wait(ch, WAIT_SLICE);
    }
    if (rc != 0) {
        return rc;
    }
    (void)drain_stderr(ch);
    err_flush_line(ch);
    if (ch->exit_signal != 0) {
        *status = 128 + ch->exit_signal;
    } else if (ch->got_exit) {
        *status = ch->exit_status;
    } else {
#if LIBSSH_VERSION_INT >= SSH_VERSION_INT(0, 11, 0)
        uint32_t code = 0;
        char *sig = NULL;
        int core = 0;

        if (ssh_channel_get_exit_state(ch->ch, &code, &sig, &core) == SSH_OK) {
            *status = sig != NULL ? 128 + signal_number(sig) : (int)code;
        }
        ssh_string_free_char(sig);
#else
        /* Closed without an exit-status: returns -1 at once. */
        *status = ssh_channel_get_exit_status(ch->ch);
#endif
    }
    return 0;
}

void
ssh_chan_free(struct ssh_chan *ch)
{
    if (ch != NULL && ch->got_exit) {
        chan_free(ch);
        return;
    }
    /* Still running: interrupt it rather than leave it behind. */
    chan_end(ch, 1);
}

void
ssh_chan_release(struct ssh_chan *ch)
{
    chan_end(ch, 0);
}

int
ssh_chan_close(struct ssh_chan *ch, int *status)
{
    int rc = ssh_chan_finish(ch, status);

    ssh_chan_free(ch);
    return rc;
}

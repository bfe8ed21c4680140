/* test_sshopts.c: host strings, shlex splitting and OpenSSH options,
 * table-driven.  Each row states the input and either the expected error
 * substring or the resolved fields (dumped as "key=value" lines). */
#include "testutil.h"

#include "crebuild/sshopts.h"
#include "crebuild/strbuf.h"
#include "crebuild/strvec.h"
#include "crebuild/util.h"

#include <netdb.h>

#define MAX_EXPECT 10

/* Every set field of t as "key=value" lines. */
static char *
dump(const struct ssh_target *t)
{
    struct strbuf sb = STRBUF_INIT;

#define S(k, v)                                \
    do {                                       \
        if ((v) != NULL) {                     \
            strbuf_addf(&sb, "%s=%s\n", k, v); \
        }                                      \
    } while (0)
#define I(k, v)                                \
    do {                                       \
        if ((v) >= 0) {                        \
            strbuf_addf(&sb, "%s=%d\n", k, v); \
        }                                      \
    } while (0)
    S("raw", t->raw);
    S("host", t->host);
    strbuf_addf(&sb, "scheme=%d\n", (int)t->scheme);
    S("user", t->user);
    strbuf_addf(&sb, "port=%d\n", t->port);
    S("hostname", t->hostname);
    S("config", t->config);
    for (size_t i = 0; i < t->identities.n; i++) {
        strbuf_addf(&sb, "identity=%s\n", t->identities.v[i]);
    }
    S("known_hosts", t->known_hosts);
    S("global_known_hosts", t->global_known_hosts);
    S("identity_agent", t->identity_agent);
    strbuf_addf(&sb, "strict=%d\n", (int)t->strict);
    I("connect_timeout", t->connect_timeout);
    I("alive_interval", t->alive_interval);
    I("alive_count", t->alive_count);
    S("proxy_jump", t->proxy_jump);
    S("proxy_command", t->proxy_command);
    I("compression", t->compression);
    S("ciphers", t->ciphers);
    S("hostkey_algorithms", t->hostkey_algorithms);
    S("kex", t->kex_algorithms);
    S("macs", t->macs);
    I("batch", t->batch_mode);
    I("identities_only", t->identities_only);
    I("pubkey", t->pubkey_auth);
    I("forward_agent", t->forward_agent);
    strbuf_addf(&sb, "af=%d\n", t->address_family);
    I("log_level", t->log_level);
    S("tag", t->tag);
#undef S
#undef I
    return strbuf_detach(&sb);
}

static void
expect_lines(const char *what, const char *got, const char *const *want)
{
    for (size_t i = 0; i < MAX_EXPECT && want[i] != NULL; i++) {
        char *line = xasprintf("%s\n", want[i]);
        /* Match whole lines: at the start or after a newline. */
        const char *p = got;
        int found = 0;

        while ((p = strstr(p, line)) != NULL) {
            if (p == got || p[-1] == '\n') {
                found = 1;
                break;
            }
            p++;
        }
        if (!found) {
            fail_msg("%s: expected line '%s' in:\n%s", what, want[i], got);
        }
        free(line);
    }
}

/* ---- host strings ---- */

struct host_row {
    const char *in;
    const char *err; /* substring; NULL = success */
    const char *expect[MAX_EXPECT];
};

/* clang-format off */
static const struct host_row host_rows[] = {
    {"box", NULL, {"host=box", "scheme=0", "port=0", "raw=box"}},
    {"alice@box", NULL, {"user=alice", "host=box"}},
    {"alice@box.example.org", NULL, {"host=box.example.org"}},
    {"192.0.2.7", NULL, {"host=192.0.2.7"}},
    {"[2001:db8::1]", NULL, {"host=2001:db8::1", "port=0"}},
    {"2001:db8::1", NULL, {"host=2001:db8::1"}},
    {"root@[fe80::1%25eth0]", NULL, {"user=root", "host=fe80::1%eth0",
        "raw=root@[fe80::1%25eth0]"}},
    {"[fe80::1%eth0]", NULL, {"host=fe80::1%eth0"}},
    {"ssh://box", NULL, {"host=box", "scheme=1"}},
    {"ssh-ng://bob@box", NULL, {"host=box", "user=bob", "scheme=2"}},
    {"ssh://explicit-store@localhost", NULL,
        {"user=explicit-store", "host=localhost", "scheme=1"}},
    {"ssh://box:2222", NULL, {"host=box", "port=2222"}},
    {"ssh://u@[::1]:2200", NULL, {"host=::1", "port=2200", "user=u"}},
    {"my_host-1", NULL, {"host=my_host-1"}},
    {"first.last@box", NULL, {"user=first.last"}},
    /* Rejected. */
    {"", "empty host name", {NULL}},
    {"-oProxyCommand=x", "must not start with '-'", {NULL}},
    {"-box", "must not start with '-'", {NULL}},
    {"u@-box", "host name must not start with '-'", {NULL}},
    {"ssh://-oProxyCommand=x", "must not start with '-'", {NULL}},
    {"-u@box", "must not start with '-'", {NULL}},
    {"a;b", "unsupported character", {NULL}},
    {"$(x)", "unsupported character", {NULL}},
    {"`x`", "quote", {NULL}},
    {"a b", "blank", {NULL}},
    {"box\n", "control character", {NULL}},
    {"box\tx", "blank", {NULL}},
    {"'box'", "quote", {NULL}},
    {"\"box\"", "quote", {NULL}},
    {"a|b", "unsupported character", {NULL}},
    {"a&b", "unsupported character", {NULL}},
    {"a>b", "unsupported character", {NULL}},
    {"u$(id)@box", "user name", {NULL}},
    {"u;x@box", "user name", {NULL}},
    {"@box", "empty user name", {NULL}},
    {"u@", "empty host name", {NULL}},
    {"box:22", "only accepted in an ssh:// URI", {NULL}},
    {"ssh://box:0", "invalid port", {NULL}},
    {"ssh://box:65536", "invalid port", {NULL}},
    {"ssh://box:22x", "invalid port", {NULL}},
    {"[::1", "missing ']'", {NULL}},
    {"[::1]x", "unexpected characters", {NULL}},
    {"[zz::1]", "invalid IPv6", {NULL}},
    {"[fe80::1%]", "invalid IPv6", {NULL}},
    {"[fe80::1%25e;x]", "invalid IPv6", {NULL}},
    {"ssh://", "empty host name", {NULL}},
    {"box?x=1", "unsupported character", {NULL}},
};
/* clang-format on */

static void
test_host_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_SIZE(host_rows); i++) {
        const struct host_row *r = &host_rows[i];
        struct ssh_target t;
        char *err = NULL;
        int rc;

        ssh_target_init(&t);
        rc = sshopts_parse_host(&t, r->in, &err);
        if (r->err != NULL) {
            if (rc != CR_EUSAGE || err == NULL || strstr(err, r->err) == NULL) {
                fail_msg("host '%s': expected error '%s', got rc %d '%s'",
                         r->in,
                         r->err,
                         rc,
                         err ? err : "(none)");
            }
            /* Errors are one line. */
            assert_null(strchr(err, '\n'));
        } else {
            char *d = NULL;

            if (rc != 0) {
                fail_msg("host '%s': unexpected error '%s'", r->in, err);
            }
            d = dump(&t);
            expect_lines(r->in, d, r->expect);
            free(d);
        }
        free(err);
        ssh_target_release(&t);
    }
}

/* ---- shlex ---- */

struct split_row {
    const char *in;
    const char *err;
    const char *words[8]; /* NULL-terminated */
};

/* clang-format off */
static const struct split_row split_rows[] = {
    {"", NULL, {NULL}},
    {"   ", NULL, {NULL}},
    {"-p 22", NULL, {"-p", "22", NULL}},
    {"  -p\t22\n-A ", NULL, {"-p", "22", "-A", NULL}},
    {"-o 'ProxyCommand ssh -W %h:%p j'", NULL,
        {"-o", "ProxyCommand ssh -W %h:%p j", NULL}},
    {"-o \"User=a b\"", NULL, {"-o", "User=a b", NULL}},
    {"a\\ b", NULL, {"a b", NULL}},
    {"\"a\\\"b\\\\c\\d\"", NULL, {"a\"b\\c\\d", NULL}},
    {"'a\\b'", NULL, {"a\\b", NULL}},
    {"x''y", NULL, {"xy", NULL}},
    {"''", NULL, {"", NULL}},
    {"a'b c'd", NULL, {"ab cd", NULL}},
    {"'unterminated", "no closing quotation", {NULL}},
    {"\"unterminated", "no closing quotation", {NULL}},
    {"trailing\\", "no escaped character", {NULL}},
};
/* clang-format on */

static void
test_split_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_SIZE(split_rows); i++) {
        const struct split_row *r = &split_rows[i];
        struct strvec v = STRVEC_INIT;
        char *err = NULL;
        int rc = sshopts_split(r->in, &v, &err);

        if (r->err != NULL) {
            if (rc != CR_EUSAGE || err == NULL || strstr(err, r->err) == NULL) {
                fail_msg("split '%s': expected error '%s'", r->in, r->err);
            }
        } else {
            size_t n = 0;

            assert_int_equal(rc, 0);
            while (r->words[n] != NULL) {
                n++;
            }
            if (v.n != n) {
                fail_msg("split '%s': %zu words, expected %zu", r->in, v.n, n);
            }
            for (size_t k = 0; k < n; k++) {
                assert_string_equal(v.v[k], r->words[k]);
            }
        }
        free(err);
        strvec_clear(&v);
    }
}

/* ---- NIX_SSHOPTS ---- */

struct opts_row {
    const char *opts; /* NIX_SSHOPTS */
    const char *host;
    const char *err;
    const char *expect[MAX_EXPECT];
    const char *warn; /* substring of the joined warnings; "" = none */
    const char *note; /* substring of the joined notes; NULL = don't care */
};

/* clang-format off */
static const struct opts_row opts_rows[] = {
    {"-p 2222", "box", NULL, {"port=2222"}, "", NULL},
    /* -P and Tag (OpenSSH 9.4) for Match tagged; the first one wins. */
    {"-P web -o Tag=db", "box", NULL, {"tag=web"}, "", NULL},
    {"-o Tag=db -Pweb", "box", NULL, {"tag=db"}, "", NULL},
    {"-p2222", "box", NULL, {"port=2222"}, "", NULL},
    {"-p 22 -p 23", "box", NULL, {"port=22"}, "", NULL},
    {"-o Port=2200", "box", NULL, {"port=2200"}, "", NULL},
    {"-oPort=2200", "box", NULL, {"port=2200"}, "", NULL},
    {"-o 'Port 2201'", "box", NULL, {"port=2201"}, "", NULL},
    {"-o 'port = 2202'", "box", NULL, {"port=2202"}, "", NULL},
    {"-p 2222", "ssh://box:22", NULL, {"port=2222"}, "", NULL},
    {"-l carol", "alice@box", NULL, {"user=carol"}, "", NULL},
    {"-o User=dave", "box", NULL, {"user=dave"}, "", NULL},
    {"", "alice@box", NULL, {"user=alice"}, "", NULL},
    {"-i ~/.ssh/a -o IdentityFile=/b -i/c", "box", NULL,
        {"identity=~/.ssh/a", "identity=/b", "identity=/c"}, "", NULL},
    {"-F /tmp/cfg -J jump:22", "box", NULL,
        {"config=/tmp/cfg", "proxy_jump=jump:22"}, "", NULL},
    {"-o ProxyJump=a,b", "box", NULL, {"proxy_jump=a,b"}, "", NULL},
    /* ProxyJump and ProxyCommand: the first one given wins. */
    {"-J j -o ProxyCommand=nc", "box", NULL, {"proxy_jump=j"}, "", NULL},
    {"-o ProxyCommand=nc -J j", "box", NULL, {"proxy_command=nc"}, "", NULL},
    {"-o PubkeyAcceptedAlgorithms=ssh-ed25519", "box", NULL,
        {"host=box"}, "", NULL},
    {"-o 'ProxyCommand=nc %h %p'", "box", NULL,
        {"proxy_command=nc %h %p"}, "", NULL},
    {"-o 'ProxyCommand ssh -W %h:%p j'", "box", NULL,
        {"proxy_command=ssh -W %h:%p j"}, "", NULL},
    {"-A -C -4", "box", NULL,
        {"forward_agent=1", "compression=1", "af=4"}, "", "agent"},
    {"-AC6", "box", NULL, {"compression=1", "af=6"}, "", NULL},
    {"-o Compression=no -C", "box", NULL, {"compression=0"}, "", NULL},
    {"-o UserKnownHostsFile=/dev/null -o StrictHostKeyChecking=no", "box",
        NULL, {"known_hosts=/dev/null", "strict=4"}, "", NULL},
    {"-o 'UserKnownHostsFile=/a /b'", "box", NULL, {"known_hosts=/a"}, "",
        NULL},
    {"-o GlobalKnownHostsFile=/g", "box", NULL, {"global_known_hosts=/g"},
        "", NULL},
    {"-o StrictHostKeyChecking=yes -o StrictHostKeyChecking=no", "box", NULL,
        {"strict=2"}, "", NULL},
    {"-o StrictHostKeyChecking=accept-new", "box", NULL, {"strict=3"}, "",
        NULL},
    {"-o StrictHostKeyChecking=off", "box", NULL, {"strict=4"}, "", NULL},
    {"-o StrictHostKeyChecking=ask", "box", NULL, {"strict=1"}, "", NULL},
    {"-o StrictHostKeyChecking=maybe", "box", "StrictHostKeyChecking",
        {NULL}, NULL, NULL},
    {"-o ConnectTimeout=5 -o ServerAliveInterval=10 "
     "-o ServerAliveCountMax=2", "box", NULL,
        {"connect_timeout=5", "alive_interval=10", "alive_count=2"}, "",
        NULL},
    {"-o ConnectTimeout=soon", "box", "invalid time value", {NULL}, NULL,
        NULL},
    /* Times as OpenSSH's convtime (ssh -G -o ConnectTimeout=...): s m h d
     * w in either case, added up; up to 2^31-1 (held at
     * SSHOPTS_TIME_MAX); none is unset, so a later value applies. */
    {"-o ConnectTimeout=1m -o ServerAliveInterval=30s", "box", NULL,
        {"connect_timeout=60", "alive_interval=30"}, "", NULL},
    {"-o ConnectTimeout=1h30m", "box", NULL, {"connect_timeout=5400"}, "",
        NULL},
    {"-o ConnectTimeout=1H", "box", NULL, {"connect_timeout=3600"}, "",
        NULL},
    {"-o ConnectTimeout=1w1d", "box", NULL, {"connect_timeout=691200"}, "",
        NULL},
    {"-o ConnectTimeout=5m5", "box", NULL, {"connect_timeout=305"}, "",
        NULL},
    {"-o ConnectTimeout=+5", "box", NULL, {"connect_timeout=5"}, "", NULL},
    {"-o ServerAliveInterval=86401", "box", NULL, {"alive_interval=86401"},
        "", NULL},
    {"-o ConnectTimeout=2147483647", "box", NULL,
        {"connect_timeout=2147483"}, "", NULL},
    {"-o ConnectTimeout=none -o ConnectTimeout=7", "box", NULL,
        {"connect_timeout=7"}, "", NULL},
    {"-o ConnectTimeout=2147483648", "box", "invalid time value", {NULL},
        NULL, NULL},
    {"-o ConnectTimeout=24856d", "box", "invalid time value", {NULL}, NULL,
        NULL},
    {"-o ConnectTimeout=10x", "box", "invalid time value", {NULL}, NULL,
        NULL},
    {"-o ConnectTimeout=1.5", "box", "invalid time value", {NULL}, NULL,
        NULL},
    {"-o ConnectTimeout=-1", "box", "invalid time value", {NULL}, NULL,
        NULL},
    {"-o ConnectTimeout=1mm", "box", "invalid time value", {NULL}, NULL,
        NULL},
    {"-o ServerAliveInterval=", "box", "missing value", {NULL}, NULL, NULL},
    {"-o ServerAliveCountMax=+3", "box", NULL, {"alive_count=3"}, "", NULL},
    {"-o ServerAliveCountMax=99999", "box", NULL, {"alive_count=1000"}, "",
        NULL},
    {"-o ServerAliveCountMax=2147483648", "box", "invalid number", {NULL},
        NULL, NULL},
    {"-o ServerAliveCountMax=-1", "box", "invalid number", {NULL}, NULL,
        NULL},
    /* Ports: decimal (strtonum) or a service name (see test_services). */
    {"-o Port=022", "box", NULL, {"port=22"}, "", NULL},
    {"-o Port=+2200", "box", NULL, {"port=2200"}, "", NULL},
    {"-o Port=0x16", "box", "invalid port '0x16'", {NULL}, NULL, NULL},
    {"-o Port=cr-no-such-service", "box", "invalid port", {NULL}, NULL,
        NULL},
    /* PubkeyAuthentication: OpenSSH 9's unbound and host-bound are yes. */
    {"-o PubkeyAuthentication=unbound", "box", NULL, {"pubkey=1"}, "", NULL},
    {"-o PubkeyAuthentication=HOST-BOUND", "box", NULL, {"pubkey=1"}, "",
        NULL},
    {"-o PubkeyAuthentication=maybe", "box", "expected yes or no", {NULL},
        NULL, NULL},
    {"-o BatchMode=unbound", "box", "expected yes or no", {NULL}, NULL,
        NULL},
    /* -F: the last one wins (ssh -G -F a -F b reads b). */
    {"-F /a -F /b", "box", NULL, {"config=/b"}, "", NULL},
    {"-F /a -F none", "box", NULL, {"config=none"}, "", NULL},
    /* -o is read like a config line: quotes and escapes go, a comment
     * ends it, one value only (ssh -G -o 'User "bob"': user bob). */
    {"-o 'User \"bob\"' -o 'IdentityFile \"/tmp/my key\"'", "box", NULL,
        {"user=bob", "identity=/tmp/my key"}, "", NULL},
    {"-o 'User=\"bob\"'", "box", NULL, {"user=bob"}, "", NULL},
    {"-o \"User 'bo\\\"b'\"", "box", NULL, {"user=bo\"b"}, "", NULL},
    {"-o 'User \"bob smith\"'", "box", NULL, {"user=bob smith"}, "", NULL},
    {"-o 'User bob # comment'", "box", NULL, {"user=bob"}, "", NULL},
    {"-o 'User=bob smith'", "box", "ssh option User: extra arguments",
        {NULL}, NULL, NULL},
    {"-o 'IdentityFile /a /b'", "box", "extra arguments", {NULL}, NULL,
        NULL},
    {"-o 'User \"unterminated'", "box", "unterminated quote", {NULL}, NULL,
        NULL},
    {"-o 'User \"\"'", "box", "missing value", {NULL}, NULL, NULL},
    {"-o 'User # x'", "box", "missing value", {NULL}, NULL, NULL},
    {"-o 'Port \"2200\"'", "box", NULL, {"port=2200"}, "", NULL},
    {"-o 'ProxyCommand \"nc\" %h %p'", "box", NULL,
        {"proxy_command=\"nc\" %h %p"}, "", NULL},
    {"-o 'UserKnownHostsFile \"/a b\" /c'", "box", NULL,
        {"known_hosts=/a b"}, "", NULL},
    {"-o 'UserKnownHostsFile none /c'", "box", "must appear alone", {NULL},
        NULL, NULL},
    {"-o ' User=x'", "box", NULL, {"user=x"}, "", NULL},
    {"-o =x", "box", "missing name", {NULL}, NULL, NULL},
    {"-o Ciphers=aes256-ctr -o HostKeyAlgorithms=ssh-ed25519 "
     "-o KexAlgorithms=curve25519-sha256 -m hmac-sha2-256", "box", NULL,
        {"ciphers=aes256-ctr", "hostkey_algorithms=ssh-ed25519",
         "kex=curve25519-sha256", "macs=hmac-sha2-256"}, "", NULL},
    {"-c chacha20-poly1305@openssh.com", "box", NULL,
        {"ciphers=chacha20-poly1305@openssh.com"}, "", NULL},
    {"-o BatchMode=yes -o IdentitiesOnly=yes -o PubkeyAuthentication=no",
        "box", NULL, {"batch=1", "identities_only=1", "pubkey=0"}, "", NULL},
    {"-o BatchMode=maybe", "box", "expected yes or no", {NULL}, NULL, NULL},
    {"-o LogLevel=DEBUG2", "box", NULL, {"log_level=2"}, "", NULL},
    {"-vvv", "box", NULL, {"log_level=3"}, "", NULL},
    {"-o LogLevel=LOUD", "box", "LogLevel", {NULL}, NULL, NULL},
    {"-o AddressFamily=inet6", "box", NULL, {"af=6"}, "", NULL},
    {"-o HostName=10.0.0.1", "box", NULL, {"hostname=10.0.0.1", "host=box"},
        "", NULL},
    {"-o IdentityAgent=none", "box", NULL, {"identity_agent=none"}, "",
        NULL},
    /* OpenSSH-only: accepted, a debug note, no warning. */
    {"-o ControlMaster=auto -o ControlPath=/tmp/ssh-%n "
     "-o ControlPersist=60", "box", NULL, {"host=box"}, "",
        "ControlPersist"},
    {"-t", "box", NULL, {"host=box"}, "", "'-t'"},
    {"-tt -T -x -a", "box", NULL, {"forward_agent=0"}, "", "'-x'"},
    {"-o RequestTTY=force", "box", NULL, {"host=box"}, "", "RequestTTY"},
    {"-S /tmp/ctl", "box", NULL, {"host=box"}, "", "'-S'"},
    /* Unknown: a warning naming it. */
    {"-o FooBar=1", "box", NULL, {"host=box"}, "'FooBar'", NULL},
    {"-L 8080:localhost:80", "box", NULL, {"host=box"}, "'-L'", NULL},
    {"-X", "box", NULL, {"host=box"}, "'-X'", NULL},
    {"stray", "box", NULL, {"host=box"}, "'stray'", NULL},
    /* Errors. */
    {"-p", "box", "requires an argument", {NULL}, NULL, NULL},
    {"-o", "box", "requires an argument", {NULL}, NULL, NULL},
    {"-p 0", "box", "invalid port '0'", {NULL}, NULL, NULL},
    {"-p 70000", "box", "invalid port", {NULL}, NULL, NULL},
    {"-o Port=", "box", "missing value", {NULL}, NULL, NULL},
    {"-o 'ProxyCommand=x", "box", "no closing quotation", {NULL}, NULL, NULL},
    {"-p 22", "-oProxyCommand=x", "must not start with '-'", {NULL}, NULL,
        NULL},
};
/* clang-format on */

static void
test_opts_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_SIZE(opts_rows); i++) {
        const struct opts_row *r = &opts_rows[i];
        struct ssh_target t;
        struct strvec warn = STRVEC_INIT, notes = STRVEC_INIT;
        char *err = NULL;
        int rc;

        ssh_target_init(&t);
        rc = sshopts_target(&t, r->host, r->opts, &warn, &notes, &err);
        if (r->err != NULL) {
            if (rc != CR_EUSAGE || err == NULL || strstr(err, r->err) == NULL) {
                fail_msg("opts '%s': expected error '%s', got rc %d '%s'",
                         r->opts,
                         r->err,
                         rc,
                         err ? err : "(none)");
            }
            assert_null(strchr(err, '\n'));
            /* t is released on error. */
            assert_null(t.host);
        } else {
            char *d = NULL;
            char *w = strvec_join(&warn, "\n");
            char *n = strvec_join(&notes, "\n");

            if (rc != 0) {
                fail_msg("opts '%s': unexpected error '%s'", r->opts, err);
            }
            d = dump(&t);
            expect_lines(r->opts, d, r->expect);
            if (r->warn != NULL && *r->warn == '\0' && warn.n != 0) {
                fail_msg("opts '%s': unexpected warnings: %s", r->opts, w);
            }
            if (r->warn != NULL && *r->warn != '\0' &&
                strstr(w, r->warn) == NULL) {
                fail_msg("opts '%s': expected warning '%s', got '%s'",
                         r->opts,
                         r->warn,
                         w);
            }
            if (r->note != NULL && strstr(n, r->note) == NULL) {
                fail_msg("opts '%s': expected note '%s', got '%s'",
                         r->opts,
                         r->note,
                         n);
            }
            free(d);
            free(w);
            free(n);
        }
        free(err);
        strvec_clear(&warn);
        strvec_clear(&notes);
        ssh_target_release(&t);
    }
}

static void
test_defaults_and_name(void **state)
{
    struct ssh_target t;
    struct strvec warn = STRVEC_INIT, notes = STRVEC_INIT;
    char *err = NULL;
    char *name = NULL;

    (void)state;
    ssh_target_init(&t);
    assert_int_equal(sshopts_target(&t, "box", NULL, &warn, &notes, &err), 0);
    assert_int_equal(t.strict, CR_SSH_STRICT_UNSET);
    assert_int_equal(t.connect_timeout, -1);
    assert_int_equal(t.alive_interval, -1);
    assert_int_equal(t.compression, -1);
    assert_int_equal(t.port, 0);
    assert_null(t.user);
    name = ssh_target_name(&t);
    assert_string_equal(name, "box");
    free(name);
    ssh_target_release(&t);

    assert_int_equal(
        sshopts_target(&t, "ssh://u@[::1]:2", "-l v", &warn, &notes, &err), 0);
    name = ssh_target_name(&t);
    assert_string_equal(name, "v@::1");
    free(name);
    ssh_target_release(&t);
    assert_int_equal(warn.n, 0);
    strvec_clear(&warn);
    strvec_clear(&notes);
}

/* ---- ProxyJump lists ---- */

struct jump_row {
    const char *in;
    const char *err;
    const char *hops; /* "user|host|port;..." */
};

/* clang-format off */
static const struct jump_row jump_rows[] = {
    {"j", NULL, "-|j|0"},
    {"u@j", NULL, "u|j|0"},
    {"u@j:2222", NULL, "u|j|2222"},
    {"a@j1:22,j2,b@j3:2200", NULL, "a|j1|22;-|j2|0;b|j3|2200"},
    {"[2001:db8::1]:2222", NULL, "-|2001:db8::1|2222"},
    {"u@[::1]", NULL, "u|::1|0"},
    {"2001:db8::1", NULL, "-|2001:db8::1|0"},
    {"[10.0.0.1]:22", NULL, "-|10.0.0.1|22"},
    {"ssh://u@j:23", NULL, "u|j|23"},
    {"", "empty host name", NULL},
    {"a,,b", "empty host name", NULL},
    {"a,", "empty host name", NULL},
    {"u@", "empty host name", NULL},
    {"@j", "empty user name", NULL},
    {"j:0", "invalid port", NULL},
    {"j:65536", "invalid port", NULL},
    {"j:x", "invalid port", NULL},
    {"-oProxyCommand=x", "must not start with '-'", NULL},
    {"-u@j", "must not start with '-'", NULL},
    {"j;x", "unsupported character", NULL},
    {"u$(x)@j", "user name", NULL},
    {"[::1", "missing ']'", NULL},
    {"[zz::1]", "invalid IPv6", NULL},
    {"[a;b]:22", "unsupported character", NULL},
    {"[::1]x", "unexpected characters", NULL},
    {"a b", "blank", NULL},
    {"a\tb", "blank", NULL},
};
/* clang-format on */

static void
test_jump_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_SIZE(jump_rows); i++) {
        const struct jump_row *r = &jump_rows[i];
        struct ssh_hop *hops = NULL;
        size_t n = 0;
        char *err = NULL;
        int rc = sshopts_parse_jump(r->in, &hops, &n, &err);

        if (r->err != NULL) {
            if (rc != CR_EUSAGE || err == NULL || strstr(err, r->err) == NULL) {
                fail_msg("jump '%s': expected error '%s', got %d '%s'",
                         r->in,
                         r->err,
                         rc,
                         err ? err : "(none)");
            }
            assert_null(strchr(err, '\n'));
            assert_null(hops);
        } else {
            struct strbuf sb = STRBUF_INIT;

            if (rc != 0) {
                fail_msg("jump '%s': unexpected error '%s'", r->in, err);
            }
            for (size_t k = 0; k < n; k++) {
                strbuf_addf(&sb,
                            "%s%s|%s|%d",
                            k > 0 ? ";" : "",
                            hops[k].user ? hops[k].user : "-",
                            hops[k].host,
                            hops[k].port);
            }
            if (strcmp(sb.buf, r->hops) != 0) {
                fail_msg("jump '%s': got '%s', expected '%s'",
                         r->in,
                         sb.buf,
                         r->hops);
            }
            strbuf_release(&sb);
        }
        ssh_hops_free(hops, n);
        free(err);
    }
}

static void
test_expand_and_copy(void **state)
{
    struct ssh_target t, c;
    struct strvec warn = STRVEC_INIT, notes = STRVEC_INIT;
    char *err = NULL;
    char *x = NULL;

    (void)state;
    x = sshopts_expand_hostname("%h.example.org", "box");
    assert_string_equal(x, "box.example.org");
    free(x);
    x = sshopts_expand_hostname("a%%b%h%x%", "h");
    assert_string_equal(x, "a%bh%x%");
    free(x);

    ssh_target_init(&t);
    assert_int_equal(sshopts_target(&t,
                                    "u@box",
                                    "-i /a -i /b -J j -o Ciphers=c "
                                    "-o StrictHostKeyChecking=accept-new "
                                    "-o PubkeyAcceptedAlgorithms=k",
                                    &warn,
                                    &notes,
                                    &err),
                     0);
    ssh_target_copy(&c, &t);
    ssh_target_release(&t);
    assert_string_equal(c.host, "box");
    assert_string_equal(c.user, "u");
    assert_string_equal(c.proxy_jump, "j");
    assert_string_equal(c.ciphers, "c");
    assert_string_equal(c.pubkey_algorithms, "k");
    assert_int_equal(c.strict, CR_SSH_STRICT_ACCEPT_NEW);
    assert_int_equal(c.identities.n, 2);
    assert_string_equal(c.identities.v[1], "/b");
    ssh_target_release(&c);

    /* sshopts_apply_option: from a config file, unknown keys are notes. */
    ssh_target_init(&t);
    assert_int_equal(
        sshopts_apply_option(&t, "Frob", "1", 1, &warn, &notes, &err), 0);
    assert_int_equal(warn.n, 0);
    assert_int_equal(
        sshopts_apply_option(&t, "Frob", "1", 0, &warn, &notes, &err), 0);
    assert_int_equal(warn.n, 1);
    assert_int_equal(
        sshopts_apply_option(&t, "port", "x", 1, &warn, &notes, &err),
        CR_EUSAGE);
    assert_non_null(strstr(err, "Port"));
    free(err);
    ssh_target_release(&t);
    strvec_clear(&warn);
    strvec_clear(&notes);
}

/* Port by service name, as OpenSSH's a2port (getservbyname "tcp"):
 * ssh -G -o Port=ssh gives 22, -p ssh too; names are case-sensitive.
 * Skipped where there is no services database (a build sandbox). */
static void
test_services(void **state)
{
    static const struct {
        const char *opts;
        int port; /* 0: an error */
    } cases[] = {
        {"-o Port=ssh", 22},
        {"-p ssh", 22},
        {"-o 'Port \"ssh\"'", 22},
        {"-o Port=SSH", 0},
    };
    struct servent se, *res = NULL;
    char buf[4096];

    (void)state;
    if (getservbyname_r("ssh", "tcp", &se, buf, sizeof(buf), &res) != 0 ||
        res == NULL) {
        skip();
    }
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        struct ssh_target t;
        struct strvec warn = STRVEC_INIT, notes = STRVEC_INIT;
        char *err = NULL;
        int rc;

        ssh_target_init(&t);
        rc = sshopts_target(&t, "box", cases[i].opts, &warn, &notes, &err);
        if (cases[i].port != 0 ? rc != 0 || t.port != cases[i].port
                               : rc != CR_EUSAGE) {
            fail_msg("'%s': rc %d port %d '%s'",
                     cases[i].opts,
                     rc,
                     t.port,
                     err ? err : "");
        }
        free(err);
        strvec_clear(&warn);
        strvec_clear(&notes);
        ssh_target_release(&t);
    }
}

/* OpenSSH's convtime, directly. */
static void
test_convtime(void **state)
{
    static const struct {
        const char *in;
        int want;
    } cases[] = {
        {"0", 0},
        {"90", 90},
        {"1m30s", 90},
        {"1M30S", 90},
        {"2d", 172800},
        {"1w", 604800},
        {"1h1h", 7200},
        {"-0", 0},
        {"2147483647", 2147483647},
        {"2147483647s", 2147483647},
        {"35791394m", 2147483640},
        {"35791395m", -1},
        {"2147483647s1", -1},
        {"99999999999", -1},
        {"", -1},
        {"m", -1},
        {"1y", -1},
        {"1 m", -1},
        {"-1s", -1},
    };

    (void)state;
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        int got = sshopts_convtime(cases[i].in);

        if (got != cases[i].want) {
            fail_msg("convtime('%s') = %d, want %d",
                     cases[i].in,
                     got,
                     cases[i].want);
        }
    }
    assert_int_equal(sshopts_convtime(NULL), -1);
}

/* sshopts_split_config: OpenSSH's argv_split. */
static void
test_split_config(void **state)
{
    static const struct {
        const char *in;
        int rc;
        const char *joined; /* words joined with '|' */
    } cases[] = {
        {"a b\tc", 0, "a|b|c"},
        {"\"a b\" 'c d'", 0, "a b|c d"},
        {"a\\ b", 0, "a b"},
        {"\"a\\\"b\"", 0, "a\"b"},
        {"x # y", 0, "x"},
        {"x#y", 0, "x#y"},
        {"\"\"", 0, ""},
        {"\"open", -1, NULL},
    };

    (void)state;
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        struct strvec v = STRVEC_INIT;
        int rc = sshopts_split_config(cases[i].in, &v);

        assert_int_equal(rc, cases[i].rc);
        if (rc == 0) {
            char *j = strvec_join(&v, "|");

            if (strcmp(j, cases[i].joined) != 0) {
                fail_msg("split '%s': '%s', want '%s'",
                         cases[i].in,
                         j,
                         cases[i].joined);
            }
            free(j);
        }
        strvec_clear(&v);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_host_table),
        cmocka_unit_test(test_split_table),
        cmocka_unit_test(test_opts_table),
        cmocka_unit_test(test_defaults_and_name),
        cmocka_unit_test(test_jump_table),
        cmocka_unit_test(test_expand_and_copy),
        cmocka_unit_test(test_services),
        cmocka_unit_test(test_convtime),
        cmocka_unit_test(test_split_config),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

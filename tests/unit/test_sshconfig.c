/* test_sshconfig.c: the ssh_config reader, fed text (Include through an
 * in-memory table, and once through real files).  Table-driven: each row
 * is a host, NIX_SSHOPTS, a config text and either the expected error
 * substring or expected "key=value" fields. */
#include "testutil.h"

#include "crebuild/sshconfig.h"
#include "crebuild/sshopts.h"
#include "crebuild/strbuf.h"
#include "crebuild/strvec.h"
#include "crebuild/util.h"

#include <pwd.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_EXPECT 8

static char *
dump(const struct ssh_target *t)
{
    struct strbuf sb = STRBUF_INIT;

    strbuf_addf(&sb, "host=%s\n", t->host ? t->host : "-");
    strbuf_addf(&sb, "user=%s\n", t->user ? t->user : "-");
    strbuf_addf(&sb, "port=%d\n", t->port);
    strbuf_addf(&sb, "hostname=%s\n", t->hostname ? t->hostname : "-");
    strbuf_addf(&sb, "strict=%d\n", (int)t->strict);
    strbuf_addf(&sb, "jump=%s\n", t->proxy_jump ? t->proxy_jump : "-");
    strbuf_addf(&sb, "cmd=%s\n", t->proxy_command ? t->proxy_command : "-");
    strbuf_addf(&sb, "kh=%s\n", t->known_hosts ? t->known_hosts : "-");
    strbuf_addf(
        &sb, "gkh=%s\n", t->global_known_hosts ? t->global_known_hosts : "-");
    strbuf_addf(&sb, "agent=%s\n", t->identity_agent ? t->identity_agent : "-");
    strbuf_addf(&sb, "timeout=%d\n", t->connect_timeout);
    strbuf_addf(&sb, "alive=%d\n", t->alive_interval);
    strbuf_addf(&sb, "count=%d\n", t->alive_count);
    strbuf_addf(&sb, "pubkey=%d\n", t->pubkey_auth);
    strbuf_addf(&sb, "batch=%d\n", t->batch_mode);
    for (size_t i = 0; i < t->identities.n; i++) {
        strbuf_addf(&sb, "id=%s\n", t->identities.v[i]);
    }
    strbuf_addf(&sb, "ids=%zu\n", t->identities.n);
    return strbuf_detach(&sb);
}

static void
expect_lines(const char *what, const char *got, const char *const *want)
{
    for (size_t i = 0; i < MAX_EXPECT && want[i] != NULL; i++) {
        char *line = xasprintf("%s\n", want[i]);
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

/* Include by name from a small in-memory table. */
static const struct {
    const char *name;
    const char *text;
} files[] = {
    {"/home/u/.ssh/inc1", "Host box\n  User fromInclude\n"},
    {"/home/u/.ssh/conf.d/a", "Port 2001\n"},
    {"/etc/abs", "ConnectTimeout 7\n"},
    {"/home/u/.ssh/loop", "Include loop\n"},
    {"/home/u/.ssh/top", "User topuser\nHost other\nUser never\n"},
};

static int
mem_include(struct sshconfig *cfg, const char *path, int depth, char **err)
{
    int *calls = cfg->userdata;

    (*calls)++;
    for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
        if (strcmp(files[i].name, path) == 0) {
            return sshconfig_parse(
                cfg, files[i].text, strlen(files[i].text), path, depth, err);
        }
    }
    return 0;
}

/* Match exec through a fake: what it was asked to run, in order. */
static struct strvec exec_log = STRVEC_INIT;

static int
fake_exec(struct sshconfig *cfg, const char *command, char **err)
{
    (void)cfg;
    *err = NULL;
    strvec_push(&exec_log, command);
    return strncmp(command, "true", 4) == 0 ? 1 : 0;
}

/* This machine's interface addresses, for Match localnetwork. */
static const char *const addr_list[] = {"127.0.0.1", "10.9.8.7", "fe80::1"};
static struct strvec local_addrs = STRVEC_INIT;

static void
set_local(struct sshconfig *cfg)
{
    if (local_addrs.n == 0) {
        for (size_t i = 0; i < ARRAY_SIZE(addr_list); i++) {
            strvec_push(&local_addrs, addr_list[i]);
        }
    }
    cfg->local_addrs = &local_addrs;
    cfg->exec = fake_exec;
    cfg->local_user = "alice";
    cfg->home = "/home/u";
    cfg->local_host = "deployer.example.org";
    cfg->local_uid = 1000;
}

struct row {
    const char *host;
    const char *opts; /* NIX_SSHOPTS or NULL */
    const char *text;
    const char *err; /* substring; NULL = success */
    const char *expect[MAX_EXPECT];
    const char *note; /* substring of the notes; NULL = don't care */
};

/* clang-format off */
static const struct row rows[] = {
    /* Basics: Key value, Key=value, case, comments, blank lines. */
    {"box", NULL, "Port 2222\nuser=alice\n  HOSTNAME = 10.0.0.1\n", NULL,
        {"port=2222", "user=alice", "hostname=10.0.0.1"}, NULL},
    {"box", NULL, "# comment\n\n   # indented comment\nPort 22 # trailing\n",
        NULL, {"port=22"}, NULL},
    {"box", NULL, "Port\t=\t2200\r\n", NULL, {"port=2200"}, NULL},
    /* First value wins, within the file and over later blocks. */
    {"box", NULL, "Port 1\nPort 2\n", NULL, {"port=1"}, NULL},
    {"box", NULL, "Host box\n Port 3\nHost *\n Port 4\n User all\n", NULL,
        {"port=3", "user=all"}, NULL},
    /* The command line wins over the file. */
    {"box", "-p 99 -o StrictHostKeyChecking=yes",
        "Port 1\nStrictHostKeyChecking accept-new\n", NULL,
        {"port=99", "strict=2"}, NULL},
    /* IdentityFile accumulates after the command line's. */
    {"box", "-i /cli", "IdentityFile /a\nIdentityFile \"/b c\"\n", NULL,
        {"id=/cli", "id=/a", "id=/b c", "ids=3"}, NULL},
    /* StrictHostKeyChecking: every OpenSSH value. */
    {"box", NULL, "StrictHostKeyChecking accept-new\n", NULL, {"strict=3"},
        NULL},
    {"box", NULL, "StrictHostKeyChecking ask\n", NULL, {"strict=1"}, NULL},
    {"box", NULL, "StrictHostKeyChecking off\n", NULL, {"strict=4"}, NULL},
    {"box", NULL, "StrictHostKeyChecking no\n", NULL, {"strict=4"}, NULL},
    {"box", NULL, "stricthostkeychecking=YES\n", NULL, {"strict=2"}, NULL},
    {"box", NULL, "StrictHostKeyChecking maybe\n",
        "line 1: ssh option StrictHostKeyChecking: unknown value", {NULL},
        NULL},
    /* ...but a bad value in a block that does not apply is not read. */
    {"box", NULL, "Host other\nStrictHostKeyChecking maybe\n", NULL,
        {"strict=0"}, NULL},
    /* ProxyJump and ProxyCommand: kept as written, first one wins. */
    {"box", NULL, "ProxyJump u@j1:2222,[::1]:22\n", NULL,
        {"jump=u@j1:2222,[::1]:22"}, NULL},
    {"box", NULL, "ProxyCommand nc \"%h\" %p # not a comment\nProxyJump j\n",
        NULL, {"cmd=nc \"%h\" %p # not a comment", "jump=-"}, NULL},
    {"box", NULL, "ProxyJump j\nProxyCommand nc %h %p\n", NULL,
        {"jump=j", "cmd=-"}, NULL},
    {"box", "-J none", "ProxyJump j\n", NULL, {"jump=none"}, NULL},
    {"box", "-o ProxyCommand=none", "ProxyJump j\n", NULL,
        {"jump=-", "cmd=none"}, NULL},
    /* Host patterns. */
    {"web1.example.org", NULL, "Host *.example.org\nUser ex\n", NULL,
        {"user=ex"}, NULL},
    {"web1.example.org", NULL, "Host web?.example.org\nUser q\n", NULL,
        {"user=q"}, NULL},
    {"web12.example.org", NULL, "Host web?.example.org\nUser q\n", NULL,
        {"user=-"}, NULL},
    /* Host patterns are case-sensitive (ssh -G BOX: user root), Match
     * host is not. */
    {"BOX", NULL, "Host box\nUser ci\n", NULL, {"user=-"}, NULL},
    {"BOX", NULL, "Host BOX\nUser ci\n", NULL, {"user=ci"}, NULL},
    {"web1.example.org", NULL, "Host *.EXAMPLE.org web?.example.ORG\n"
        "User ex\n", NULL, {"user=-"}, NULL},
    {"box", NULL, "Host !BOX *\nUser negcase\n", NULL, {"user=negcase"},
        NULL},
    {"BOX", NULL, "Match host box\nUser mh\n", NULL, {"user=mh"}, NULL},
    {"box", NULL, "Match originalhost B?X\nUser moh\n", NULL,
        {"user=moh"}, NULL},
    {"box", NULL, "Host a b box c\nUser multi\n", NULL, {"user=multi"}, NULL},
    {"box", NULL, "Host * !box\nUser neg\n", NULL, {"user=-"}, NULL},
    {"other", NULL, "Host * !box\nUser neg\n", NULL, {"user=neg"}, NULL},
    {"box", NULL, "Host !box\nUser onlyneg\n", NULL, {"user=-"}, NULL},
    {"box", NULL, "Host \"box\"\nUser quoted\n", NULL, {"user=quoted"}, NULL},
    {"box", NULL, "Host=box\nUser eq\n", NULL, {"user=eq"}, NULL},
    {"box", NULL, "Host\n", "Host needs at least one pattern", {NULL}, NULL},
    /* Lines before any Host apply to every host. */
    {"box", NULL, "User first\nHost other\nUser second\n", NULL,
        {"user=first"}, NULL},
    /* Match. */
    {"box", NULL, "Match all\nUser m\n", NULL, {"user=m"}, NULL},
    {"box", NULL, "Match host box\nUser mh\n", NULL, {"user=mh"}, NULL},
    {"box", NULL, "Match host a,b*,!c\nUser list\n", NULL, {"user=list"},
        NULL},
    {"box", NULL, "Match host *,!box\nUser neglist\n", NULL, {"user=-"},
        NULL},
    {"box", NULL, "Match !host box\nUser nh\n", NULL, {"user=-"}, NULL},
    {"box", NULL, "Match !host other\nUser nh\n", NULL, {"user=nh"}, NULL},
    /* Match host sees HostName (as ssh does); originalhost does not. */
    {"box", NULL, "HostName 10.1.2.3\nMatch host 10.1.2.*\nUser real\n",
        NULL, {"user=real"}, NULL},
    {"box", NULL, "HostName 10.1.2.3\nMatch originalhost box\nUser orig\n",
        NULL, {"user=orig"}, NULL},
    {"box", NULL, "HostName %h.example.org\nMatch host box.example.org\n"
        "User exp\n", NULL, {"user=exp"}, NULL},
    /* user: the remote user known so far, else the local one (alice);
     * case matters.  localuser: ours. */
    {"bob@box", NULL, "Match user bob host box\nPort 1\n", NULL,
        {"user=bob", "port=1"}, NULL},
    {"box", NULL, "Match user bob\nPort 1\n", NULL, {"port=0"}, NULL},
    {"box", NULL, "Match user alice\nPort 2\n", NULL, {"port=2"}, NULL},
    {"box", NULL, "User bob\nMatch user b*\nPort 3\n", NULL,
        {"user=bob", "port=3"}, NULL},
    {"BOB@box", NULL, "Match user bob\nPort 4\n", NULL, {"port=0"}, NULL},
    {"bob@box", NULL, "Match !user bob\nPort 5\n", NULL, {"port=0"},
        NULL},
    {"bob@box", NULL, "Match localuser alice\nPort 6\n", NULL,
        {"port=6"}, NULL},
    {"bob@box", NULL, "Match localuser *,!alice\nPort 7\n", NULL,
        {"port=0"}, NULL},
    {"box", NULL, "Match user\n", "Match user needs an argument", {NULL},
        NULL},
    /* exec (the fake runs "true ..." as a match, anything else not). */
    {"box", NULL, "Match exec \"true %h\"\nPort 8\n", NULL, {"port=8"},
        NULL},
    {"box", NULL, "Match exec false\nPort 9\nHost *\nPort 10\n", NULL,
        {"port=10"}, NULL},
    {"box", NULL, "Match !exec false\nPort 11\n", NULL, {"port=11"}, NULL},
    {"box", NULL, "Match host box exec true user alice\nPort 12\n", NULL,
        {"port=12"}, NULL},
    {"box", NULL, "Match host box exec true user bob\nPort 12\n", NULL,
        {"port=0"}, NULL},
    {"box", NULL, "Match exec \"true %C\"\nPort 13\n", NULL, {"port=0"},
        "'%C' not supported"},
    {"box", NULL, "Match exec \"true %q\"\n", "unknown token '%q'", {NULL},
        NULL},
    {"box", NULL, "Match exec \"true %\"\n", "'%' at the end", {NULL},
        NULL},
    {"box", NULL, "Match exec\n", "Match exec needs an argument", {NULL},
        NULL},
    {"box", NULL, "User \"x;touch y\"\nMatch exec \"true %r\"\n",
        "'%r' is 'x;touch y', which a shell command cannot take", {NULL},
        NULL},
    /* Control characters are shown escaped: the error stays one line. */
    {"box", "-l 'a\nb\tc'", "Match exec \"true %r\"\n",
        "'%r' is 'a\\x0ab\\x09c', which", {NULL}, NULL},
    /* final: false in the first reading (sshconfig_load makes the second,
     * test_final); canonical: never (no canonicalization). */
    {"box", NULL, "Match exec \"true\" final\nPort 14\n", NULL,
        {"port=0"}, NULL},
    {"box", NULL, "Match !final host box\nPort 15\n", NULL, {"port=15"},
        NULL},
    {"box", NULL, "Match canonical all\nUser c\n", NULL, {"user=-"}, NULL},
    {"box", NULL, "Match !canonical\nUser nc\n", NULL, {"user=nc"}, NULL},
    {"box", NULL, "Match final\n", NULL, {"port=0"}, NULL},
    /* tagged: Tag or -P, case-sensitive; without one, the empty tag. */
    {"box", "-P web", "Match tagged web,db\nPort 30\n", NULL, {"port=30"},
        NULL},
    {"box", "-P Web", "Match tagged web\nPort 31\n", NULL, {"port=0"}, NULL},
    {"box", NULL, "Tag db\nMatch tagged d*\nPort 32\n", NULL, {"port=32"},
        NULL},
    {"box", NULL, "Match !tagged *\nPort 33\n", NULL, {"port=0"}, NULL},
    {"box", NULL, "Match tagged\n", "Match tagged needs an argument", {NULL},
        NULL},
    /* localnetwork: this machine is 127.0.0.1, 10.9.8.7 and fe80::1. */
    {"box", NULL, "Match localnetwork 192.168.0.0/16,10.9.0.0/16\nPort 20\n",
        NULL, {"port=20"}, NULL},
    {"box", NULL, "Match localnetwork fe80::/10\nPort 21\n", NULL,
        {"port=21"}, NULL},
    {"box", NULL, "Match !localnetwork 10.9.0.0/16\nPort 22\n", NULL,
        {"port=0"}, NULL},
    {"box", NULL, "Match localnetwork 10.8.0.0/16\nPort 23\n", NULL,
        {"port=0"}, NULL},
    {"box", NULL, "Match host box localnetwork 10.9.8.7\nPort 24\n", NULL,
        {"port=24"}, NULL},
    {"box", NULL, "Match localnetwork 10.9.8.7/8\n",
        "invalid network list '10.9.8.7/8'", {NULL}, NULL},
    {"box", NULL, "Match localnetwork !10.0.0.0/8\n",
        "invalid network list", {NULL}, NULL},
    {"box", NULL, "Match localnetwork\n",
        "Match localnetwork needs an argument", {NULL}, NULL},
    {"box", NULL, "Match\n", "Match needs a criterion", {NULL}, NULL},
    {"box", NULL, "Match host\n", "Match host needs an argument", {NULL},
        NULL},
    /* Include: relative to the directory, ~, several arguments, the block
     * state is restored afterwards, not read when the block is off. */
    {"box", NULL, "Include inc1\n", NULL, {"user=fromInclude"}, NULL},
    {"box", NULL, "Include ~/.ssh/inc1 /etc/abs\n", NULL,
        {"user=fromInclude", "timeout=7"}, NULL},
    {"box", NULL, "Include conf.d/a\n", NULL, {"port=2001"}, NULL},
    {"box", NULL, "Host box\nInclude top\nUser mine\n", NULL,
        {"user=topuser"}, NULL},
    {"box", NULL, "Host box\nInclude top\nPort 5\n", NULL,
        {"user=topuser", "port=5"}, NULL},
    {"box", NULL, "Host other\nInclude inc1\n", NULL, {"user=-"}, NULL},
    /* ...read for its checks only: its lines before any Host do not
     * apply either, nor a Match in it. */
    {"box", NULL, "Host other\nInclude top\n", NULL, {"user=-"}, NULL},
    {"box", NULL, "Host other\nInclude loop\n",
        "Include nested more than 16 deep", {NULL}, NULL},
    {"box", NULL, "Include loop\n", "Include nested more than 16 deep",
        {NULL}, NULL},
    {"box", NULL, "Include\n", "Include needs a file name", {NULL}, NULL},
    /* Unknown keywords are notes; values are checked. */
    {"box", NULL, "SendEnv LANG\nGSSAPIAuthentication yes\nFrobnicate 1\n",
        NULL, {"user=-"}, "Frobnicate"},
    {"box", NULL, "Port abc\n", "config line 1: ssh option Port: invalid",
        {NULL}, NULL},
    {"box", NULL, "\n\nBatchMode perhaps\n", "line 3:", {NULL}, NULL},
    {"box", NULL, "BatchMode yes\nConnectTimeout 5\n", NULL,
        {"batch=1", "timeout=5"}, NULL},
    {"box", NULL, "Port\n", "missing value", {NULL}, NULL},
    {"box", NULL, "=2\n", "missing keyword", {NULL}, NULL},
    {"box", NULL, "User \"unterminated\n", "unterminated quote", {NULL},
        NULL},
    /* Quotes and escapes as OpenSSH's argv_split; a file list: the
     * first file (ssh -G: userknownhostsfile /a b /c). */
    {"box", NULL, "UserKnownHostsFile '/a b' /c\n", NULL, {"kh=/a b"},
        NULL},
    {"box", NULL, "UserKnownHostsFile /a\\ b\n", NULL, {"kh=/a b"}, NULL},
    {"box", NULL, "UserKnownHostsFile none /c\n",
        "\"none\" must appear alone", {NULL}, NULL},
    {"box", NULL, "GlobalKnownHostsFile /g1 /g2\n", NULL, {"gkh=/g1"},
        NULL},
    /* One value: more is an error (ssh: extra arguments at end of
     * line); quoted, a blank is part of it. */
    {"box", NULL, "User bob smith\n", "line 1: ssh option User: extra "
        "arguments", {NULL}, NULL},
    {"box", NULL, "User \"bob smith\"\n", NULL, {"user=bob smith"}, NULL},
    {"box", NULL, "IdentityFile /a /b\n", "extra arguments", {NULL}, NULL},
    {"box", NULL, "Host other\nUser bob smith\n", NULL, {"user=-"}, NULL},
    /* Times as ssh's convtime, ports by service name, PubkeyAuthentication
     * unbound / host-bound (OpenSSH 9). */
    {"box", NULL, "ConnectTimeout 1m\nServerAliveInterval 30s\n", NULL,
        {"timeout=60", "alive=30"}, NULL},
    {"box", NULL, "ConnectTimeout 1h30m\nServerAliveCountMax 99\n", NULL,
        {"timeout=5400", "count=99"}, NULL},
    {"box", NULL, "ConnectTimeout 10x\n",
        "ssh option ConnectTimeout: invalid time value '10x'", {NULL}, NULL},
    {"box", NULL, "ConnectTimeout none\nConnectTimeout 7\n", NULL,
        {"timeout=7"}, NULL},
    {"box", NULL, "PubkeyAuthentication unbound\n", NULL, {"pubkey=1"},
        NULL},
    {"box", NULL, "PubkeyAuthentication Host-Bound\n", NULL, {"pubkey=1"},
        NULL},
    {"box", NULL, "PubkeyAuthentication bound\n", "expected yes or no",
        {NULL}, NULL},
    {"box", NULL, "Port 022\n", NULL, {"port=22"}, NULL},
    {"box", NULL, "Port 0\n", "invalid port '0'", {NULL}, NULL},
    {"box", NULL, "User a\\\"b\n", NULL, {"user=a\"b"}, NULL},
    /* A NUL byte ends its line. */
    {"box", NULL, "Port 7\0garbage\nUser n\n", NULL, {"port=7", "user=n"},
        NULL},
};
/* clang-format on */

/* Text lengths: rows with an embedded NUL need the real size. */
static size_t
row_len(const struct row *r)
{
    if (strstr(r->text, "Port 7") == r->text) {
        return sizeof("Port 7\0garbage\nUser n\n") - 1;
    }
    return strlen(r->text);
}

/* cfg reading t's configuration from memory (mem_include), with the
 * home /home/u. */
static void
cfg_in_memory(struct sshconfig *cfg,
              struct ssh_target *t,
              struct strvec *warn,
              struct strvec *notes)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->t = t;
    cfg->host = t->host;
    cfg->home = "/home/u";
    cfg->dir = "/home/u/.ssh";
    cfg->include = mem_include;
    cfg->warnings = warn;
    cfg->notes = notes;
}

/* Keywords crebuild does not implement are debug notes, except those
 * that change which host key is trusted: they warn. */
static void
test_host_key_options_warn(void **state)
{
    static const char text[] = "HostKeyAlias other\n"
                               "RevokedHostKeys /etc/ssh/revoked\n"
                               "GSSAPIAuthentication yes\n";
    struct ssh_target t;
    struct strvec warn = STRVEC_INIT, notes = STRVEC_INIT;
    struct sshconfig cfg;
    char *err = NULL, *w, *n;

    (void)state;
    ssh_target_init(&t);
    assert_int_equal(sshopts_target(&t, "box", NULL, &warn, &notes, &err), 0);
    cfg_in_memory(&cfg, &t, &warn, &notes);
    set_local(&cfg);
    assert_int_equal(
        sshconfig_parse(&cfg, text, sizeof(text) - 1, "config", 0, &err), 0);
    w = strvec_join(&warn, "\n");
    n = strvec_join(&notes, "\n");
    assert_non_null(strstr(w, "'HostKeyAlias' (not supported by crebuild)"));
    assert_non_null(strstr(w, "'RevokedHostKeys'"));
    assert_null(strstr(w, "GSSAPIAuthentication"));
    assert_non_null(strstr(n, "GSSAPIAuthentication"));
    free(w);
    free(n);
    strvec_clear(&warn);
    strvec_clear(&notes);
    ssh_target_release(&t);
}

static void
test_rows(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
        const struct row *r = &rows[i];
        struct ssh_target t;
        struct strvec warn = STRVEC_INIT, notes = STRVEC_INIT;
        struct sshconfig cfg;
        int calls = 0;
        char *err = NULL;
        int rc;

        ssh_target_init(&t);
        assert_int_equal(
            sshopts_target(&t, r->host, r->opts, &warn, &notes, &err), 0);
        cfg_in_memory(&cfg, &t, &warn, &notes);
        cfg.userdata = &calls;
        set_local(&cfg);
        rc = sshconfig_parse(&cfg, r->text, row_len(r), "config", 0, &err);
        if (r->err != NULL) {
            if (rc != CR_EUSAGE || err == NULL || strstr(err, r->err) == NULL) {
                fail_msg("row %zu '%s': expected error '%s', got %d '%s'",
                         i,
                         r->text,
                         r->err,
                         rc,
                         err ? err : "(none)");
            }
            assert_null(strchr(err, '\n'));
        } else {
            char *d = NULL;
            char *what = xasprintf("row %zu '%s'", i, r->text);

            if (rc != 0) {
                fail_msg("%s: unexpected error '%s'", what, err);
            }
            d = dump(&t);
            expect_lines(what, d, r->expect);
            if (r->note != NULL) {
                char *n = strvec_join(&notes, "\n");

                if (strstr(n, r->note) == NULL) {
                    fail_msg(
                        "%s: expected note '%s' in '%s'", what, r->note, n);
                }
                free(n);
            }
            /* Config files never warn about keywords. */
            assert_int_equal(warn.n, 0);
            free(d);
            free(what);
        }
        free(err);
        strvec_clear(&warn);
        strvec_clear(&notes);
        ssh_target_release(&t);
    }
}

static void
test_patterns(void **state)
{
    (void)state;
    assert_true(sshconfig_match_pattern("box", "box"));
    assert_true(sshconfig_match_pattern("box", "*"));
    assert_true(sshconfig_match_pattern("", "*"));
    assert_false(sshconfig_match_pattern("", "?"));
    assert_true(sshconfig_match_pattern("a.b.c", "*.c"));
    assert_true(sshconfig_match_pattern("a.b.c", "a*c"));
    assert_true(sshconfig_match_pattern("abc", "a?c"));
    assert_false(sshconfig_match_pattern("abbc", "a?c"));
    assert_true(sshconfig_match_pattern("10.0.0.1", "10.0.0.*"));
    assert_false(sshconfig_match_pattern("10.0.0.1", "10.0.1.*"));
    /* Case-sensitive, as ssh's match_pattern. */
    assert_false(sshconfig_match_pattern("BoX", "bOx"));
    assert_false(sshconfig_match_pattern("BOX", "b*"));
    assert_true(sshconfig_match_pattern("BoX", "B?X"));
    assert_true(sshconfig_match_pattern("aaaa", "**a*a**"));
    assert_false(sshconfig_match_pattern("aaaa", "a*b"));
    /* A long pathological pattern ends quickly. */
    {
        char s[4097];
        char p[200];

        memset(s, 'a', sizeof(s) - 1);
        s[sizeof(s) - 1] = '\0';
        for (size_t i = 0; i < sizeof(p) - 2; i += 2) {
            p[i] = '*';
            p[i + 1] = 'a';
        }
        p[sizeof(p) - 2] = 'b';
        p[sizeof(p) - 1] = '\0';
        assert_false(sshconfig_match_pattern(s, p));
    }
}

/* Random bytes and mutated config text: no crash, errors are one line. */
static void
test_garbage(void **state)
{
    static const char *const seeds[] = {
        "Host a*\n",
        "Match host x,!y\n",
        "Include inc1\n",
        "Port 22\n",
        "ProxyJump a,b\n",
        "\"",
        "'",
        "\\",
        "=",
        "#",
        "!",
        "*",
        "\t",
        "\n",
        "StrictHostKeyChecking accept-new\n",
        "Match exec",
        "Host !*\n",
    };
    unsigned int seed = 12345;

    (void)state;
    for (int round = 0; round < 3000; round++) {
        struct strbuf text = STRBUF_INIT;
        struct ssh_target t;
        struct strvec warn = STRVEC_INIT, notes = STRVEC_INIT;
        struct sshconfig cfg;
        int calls = 0;
        int parts = 1 + (int)(rand_r(&seed) % 12);
        char *err = NULL;
        int rc;

        for (int k = 0; k < parts; k++) {
            if (rand_r(&seed) % 3 == 0) {
                char c = (char)(rand_r(&seed) % 256);

                strbuf_add(&text, &c, 1);
            } else {
                strbuf_addstr(&text, seeds[rand_r(&seed) % ARRAY_SIZE(seeds)]);
            }
        }
        ssh_target_init(&t);
        t.host = xstrdup("a");
        cfg_in_memory(&cfg, &t, &warn, &notes);
        cfg.userdata = &calls;
        rc = sshconfig_parse(
            &cfg, text.buf ? text.buf : "", text.len, "fuzz", 0, &err);
        assert_true(rc == 0 || rc == CR_EUSAGE);
        if (rc != 0) {
            assert_non_null(err);
            assert_null(strchr(err, '\n'));
        }
        free(err);
        strbuf_release(&text);
        strvec_clear(&warn);
        strvec_clear(&notes);
        ssh_target_release(&t);
    }
}

/* sshconfig_include_files and sshconfig_load with real files: globs, ~,
 * -F relative to the current directory, a missing -F file. */
static void
test_files(void **state)
{
    char dir[] = "/tmp/test_sshconfig.XXXXXX";
    struct ssh_target t;
    struct strvec warn = STRVEC_INIT, notes = STRVEC_INIT;
    char *err = NULL;
    char *p = NULL;
    FILE *f = NULL;

    (void)state;
    assert_non_null(mkdtemp(dir));
    p = xasprintf("%s/conf.d", dir);
    assert_int_equal(mkdir(p, 0700), 0);
    free(p);
#define WRITE(name, text)                    \
    do {                                     \
        p = xasprintf("%s/%s", dir, name);   \
        f = fopen(p, "w");                   \
        assert_non_null(f);                  \
        fputs(text, f);                      \
        fclose(f);                           \
        assert_int_equal(chmod(p, 0644), 0); \
        free(p);                             \
    } while (0)
#define CHMOD(name, mode)                    \
    do {                                     \
        p = xasprintf("%s/%s", dir, name);   \
        assert_int_equal(chmod(p, mode), 0); \
        free(p);                             \
    } while (0)
    WRITE("conf.d/10-a.conf", "Host box\n  Port 2010\n");
    WRITE("conf.d/20-b.conf", "Port 2020\nUser globbed\n");
    WRITE("conf.d/ignored.txt", "User wrong\n");
    {
        char *text = xasprintf("Host box\n  HostName %%h.test\n  "
                               "StrictHostKeyChecking accept-new\nInclude "
                               "%s/conf.d/*.conf %s/missing\n",
                               dir,
                               dir);

        WRITE("main", text);
        free(text);
    }

    ssh_target_init(&t);
    assert_int_equal(sshopts_target(&t, "box", NULL, &warn, &notes, &err), 0);
    t.config = xasprintf("%s/main", dir);
    assert_int_equal(sshconfig_load(&t, &warn, &notes, &err), 0);
    assert_int_equal(t.port, 2010);
    assert_string_equal(t.user, "globbed");
    assert_string_equal(t.hostname, "box.test");
    assert_int_equal(t.strict, CR_SSH_STRICT_ACCEPT_NEW);
    ssh_target_release(&t);

    /* -F relative to the current directory. */
    {
        char cwd[4096];

        assert_non_null(getcwd(cwd, sizeof(cwd)));
        assert_int_equal(chdir(dir), 0);
        ssh_target_init(&t);
        assert_int_equal(
            sshopts_target(&t, "box", "-F main", &warn, &notes, &err), 0);
        assert_int_equal(sshconfig_load(&t, &warn, &notes, &err), 0);
        assert_int_equal(t.port, 2010);
        ssh_target_release(&t);
        assert_int_equal(chdir(cwd), 0);
    }

    /* -F none reads nothing; a missing -F file is an error. */
    ssh_target_init(&t);
    assert_int_equal(sshopts_target(&t, "box", "-F none", &warn, &notes, &err),
                     0);
    assert_int_equal(sshconfig_load(&t, &warn, &notes, &err), 0);
    assert_int_equal(t.port, 0);
    ssh_target_release(&t);
    ssh_target_init(&t);
    p = xasprintf("-F %s/nonexistent", dir);
    assert_int_equal(sshopts_target(&t, "box", p, &warn, &notes, &err), 0);
    free(p);
    assert_int_equal(sshconfig_load(&t, &warn, &notes, &err), CR_EUSAGE);
    assert_non_null(strstr(err, "cannot read ssh config file"));
    free(err);
    err = NULL;
    ssh_target_release(&t);

    /* Owner and mode, as ssh: an included file that group or others may
     * write is refused ("Bad owner or permissions", one line), also from
     * a block that does not apply; the -F file itself is not checked. */
    WRITE("loose", "User loose\n");
    {
        char *text = xasprintf("Include %s/loose\n", dir);

        WRITE("perm1", text);
        free(text);
        text = xasprintf("Host other\nInclude %s/loose\n", dir);
        WRITE("perm2", text);
        free(text);
    }
    {
        static const struct {
            const char *file;
            mode_t loose, main;
            const char *user; /* NULL: refused */
        } perms[] = {
            {"perm1", 0644, 0644, "loose"},
            {"perm1", 0600, 0600, "loose"},
            {"perm1", 0666, 0644, NULL},
            /* group-writable, but the group is the user's own (the
             * file's group is the user's primary group, with no other
             * member: root's here): accepted, as Debian's ssh does */
            {"perm1", 0664, 0644, "loose"},
            {"perm1", 0646, 0644, NULL},
            {"perm1", 0644, 0666, "loose"},
            {"perm2", 0666, 0644, NULL},
            {"perm2", 0644, 0644, "-"},
        };

        for (size_t i = 0; i < ARRAY_SIZE(perms); i++) {
            char *want = xasprintf("Bad owner or permissions on %s/loose", dir);
            char *opt = xasprintf("-F %s/%s", dir, perms[i].file);

            CHMOD("loose", perms[i].loose);
            CHMOD(perms[i].file, perms[i].main);
            ssh_target_init(&t);
            assert_int_equal(
                sshopts_target(&t, "box", opt, &warn, &notes, &err), 0);
            if (perms[i].user == NULL) {
                assert_int_equal(sshconfig_load(&t, &warn, &notes, &err),
                                 CR_EUSAGE);
                if (strstr(err, want) == NULL) {
                    fail_msg("perms row %zu: got '%s'", i, err);
                }
                assert_null(strchr(err, '\n'));
                free(err);
                err = NULL;
            } else {
                assert_int_equal(sshconfig_load(&t, &warn, &notes, &err), 0);
                assert_string_equal(t.user != NULL ? t.user : "-",
                                    perms[i].user);
            }
            ssh_target_release(&t);
            free(want);
            free(opt);
        }
    }
    assert_int_equal(warn.n, 0);
    strvec_clear(&warn);
    strvec_clear(&notes);

    {
        static const char *const names[] = {"conf.d/10-a.conf",
                                            "conf.d/20-b.conf",
                                            "conf.d/ignored.txt",
                                            "main",
                                            "loose",
                                            "perm1",
                                            "perm2"};

        for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
            p = xasprintf("%s/%s", dir, names[i]);
            (void)unlink(p);
            free(p);
        }
        p = xasprintf("%s/conf.d", dir);
        (void)rmdir(p);
        free(p);
        (void)rmdir(dir);
    }
#undef WRITE
#undef CHMOD
}

/* Match exec: its tokens, and it runs only when the criteria before it
 * hold. */
/* The network lists of Match localnetwork. */
static void
test_networks(void **state)
{
    static const struct {
        const char *addr, *list;
        int want;
    } cases[] = {
        {"10.1.2.3", "10.0.0.0/8", 1},
        {"10.1.2.3", "192.168.0.0/16,10.1.2.0/24", 1},
        {"11.0.0.1", "10.0.0.0/8", 0},
        {"10.1.2.3", "10.1.2.3", 1},
        {"10.1.2.4", "10.1.2.3", 0},
        {"10.1.2.3", "10.1.2.2/31", 1},
        {"10.1.2.4", "10.1.2.2/31", 0},
        {"10.0.0.1", "0.0.0.0/0", 1},
        {"::1", "::1/128", 1},
        {"fe80::1", "fe80::/10", 1},
        {"febf::1", "fe80::/10", 1},
        {"fec0::1", "fe80::/10", 0},
        {"10.0.0.1", "fe80::/10", 0},
        {"::ffff:10.0.0.1", "10.0.0.0/8", 0},
        {"10.0.0.1", "", 0},
        /* Invalid anywhere in the list, also after a match. */
        {"10.1.2.3", "10.1.2.3/8", -1},
        {"10.0.0.1", "10.0.0.0/33", -1},
        {"10.0.0.1", "10.0.0.0/", -1},
        {"10.0.0.1", "10.0.0.0/-1", -1},
        {"10.0.0.1", "!10.0.0.0/8", -1},
        {"10.0.0.1", "box", -1},
        {"10.0.0.1", "10.0.0.0/8,bogus", -1},
        {NULL, "10.0.0.0/8,fe80::/10", 0},
        {NULL, "10.0.0.0/8,fe80::1/10", -1},
    };

    (void)state;
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        int got = sshconfig_match_networks(cases[i].addr, cases[i].list);

        if (got != cases[i].want) {
            fail_msg("%s in '%s': %d, want %d",
                     cases[i].addr ? cases[i].addr : "(none)",
                     cases[i].list,
                     got,
                     cases[i].want);
        }
    }
}

/* Match final through sshconfig_load: a second reading of everything,
 * where final holds and Match host sees a HostName set further down; the
 * first reading's values stay, IdentityFile is not doubled, notes are not
 * repeated.  Without a Match final the files are read once. */
static void
test_final(void **state)
{
    char path[] = "/tmp/test_sshconfig_final.XXXXXX";
    struct ssh_target t;
    struct strvec warn = STRVEC_INIT, notes = STRVEC_INIT;
    char *err = NULL;
    size_t bogus = 0;
    int fd;
    static const char text[] = "Match final host 10.0.0.5\n"
                               "  Port 2222\n"
                               "  IdentityFile /k/id_a\n"
                               "Host box\n"
                               "  HostName 10.0.0.5\n"
                               "  IdentityFile /k/id_b\n"
                               "Match !final\n"
                               "  User first\n"
                               "Match final\n"
                               "  User second\n"
                               "  ConnectTimeout 9\n"
                               "  BogusKeyword x\n";

    (void)state;
    fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, sizeof(text) - 1),
                     (ssize_t)(sizeof(text) - 1));
    close(fd);

    ssh_target_init(&t);
    assert_int_equal(sshopts_target(&t, "box", NULL, &warn, &notes, &err), 0);
    t.config = xstrdup(path);
    assert_int_equal(sshconfig_load(&t, &warn, &notes, &err), 0);
    assert_string_equal(t.hostname, "10.0.0.5");
    assert_int_equal(t.port, 2222);
    assert_string_equal(t.user, "first");
    assert_int_equal(t.connect_timeout, 9);
    assert_int_equal(t.identities.n, 2);
    assert_string_equal(t.identities.v[0], "/k/id_b");
    assert_string_equal(t.identities.v[1], "/k/id_a");
    for (size_t i = 0; i < notes.n; i++) {
        bogus += strstr(notes.v[i], "BogusKeyword") != NULL;
    }
    assert_int_equal(bogus, 1);
    assert_int_equal(warn.n, 0);
    ssh_target_release(&t);

    /* Another host: only the blocks without a host condition apply. */
    ssh_target_init(&t);
    assert_int_equal(sshopts_target(&t, "other", NULL, &warn, &notes, &err), 0);
    t.config = xstrdup(path);
    assert_int_equal(sshconfig_load(&t, &warn, &notes, &err), 0);
    assert_null(t.hostname);
    assert_int_equal(t.port, 0);
    assert_string_equal(t.user, "first");
    assert_int_equal(t.connect_timeout, 9);
    assert_int_equal(t.identities.n, 0);
    ssh_target_release(&t);
    strvec_clear(&warn);
    strvec_clear(&notes);
    unlink(path);
}

static void
test_exec(void **state)
{
    static const struct {
        const char *host;
        const char *opts;
        const char *text;
        const char *ran; /* the commands run, joined with '|' */
    } cases[] = {
        {"bob@box",
         "-p 2200 -o HostName=10.0.0.5",
         "Match exec \"true %% %h %n %p %r %u %d %i %l %L %k\"\n",
         "true % 10.0.0.5 box 2200 bob alice /home/u 1000 "
         "deployer.example.org deployer box"},
        {"box", NULL, "Match exec \"true %p %r\"\n", "true 22 alice"},
        {"fe80::1%25eth0",
         NULL,
         "Match exec \"true %h\"\n",
         "true fe80::1%eth0"},
        {"box", NULL, "Match host other exec true\n", ""},
        {"box", NULL, "Match user bob exec true\n", ""},
        {"box", NULL, "Match exec false exec \"true 2\"\n", "false"},
        {"box", NULL, "Match !exec false exec \"true 2\"\n", "false|true 2"},
        {"box", NULL, "Host other\nMatch exec true\n", "true"},
        {"box",
         NULL,
         "Match all\nMatch exec \"true a\"\nMatch exec b\n",
         "true a|b"},
    };

    (void)state;
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        struct ssh_target t;
        struct strvec warn = STRVEC_INIT, notes = STRVEC_INIT;
        struct sshconfig cfg;
        char *err = NULL;
        char *ran;

        ssh_target_init(&t);
        assert_int_equal(
            sshopts_target(
                &t, cases[i].host, cases[i].opts, &warn, &notes, &err),
            0);
        memset(&cfg, 0, sizeof(cfg));
        cfg.t = &t;
        cfg.host = t.host;
        cfg.warnings = &warn;
        cfg.notes = &notes;
        set_local(&cfg);
        strvec_clear(&exec_log);
        assert_int_equal(
            sshconfig_parse(
                &cfg, cases[i].text, strlen(cases[i].text), "config", 0, &err),
            0);
        ran = strvec_join(&exec_log, "|");
        if (strcmp(ran, cases[i].ran) != 0) {
            fail_msg("case %zu '%s': ran '%s', expected '%s'",
                     i,
                     cases[i].text,
                     ran,
                     cases[i].ran);
        }
        free(ran);
        free(err);
        strvec_clear(&warn);
        strvec_clear(&notes);
        ssh_target_release(&t);
    }
    strvec_clear(&exec_log);
}

/* The real exec callback: the exit status decides, output is dropped. */
static void
test_exec_shell(void **state)
{
    struct sshconfig cfg;
    char *err = NULL;

    (void)state;
    memset(&cfg, 0, sizeof(cfg));
    assert_int_equal(setenv("SHELL", "/bin/sh", 1), 0);
    assert_int_equal(sshconfig_exec_shell(&cfg, "exit 0", &err), 1);
    assert_int_equal(sshconfig_exec_shell(&cfg, "exit 3", &err), 0);
    assert_int_equal(sshconfig_exec_shell(&cfg, "kill -9 $$", &err), 0);
    assert_int_equal(sshconfig_exec_shell(&cfg, "read x; test -z \"$x\"", &err),
                     1);
    assert_int_equal(setenv("SHELL", "relative-sh", 1), 0);
    assert_int_equal(sshconfig_exec_shell(&cfg, "test -n \"$0\"", &err), 1);
    assert_null(err);
}

/* Match final through sshconfig_load: in the second reading Host lines
 * are matched against the final host name (HostName, %h expanded,
 * lower-cased unless an address), HostName lines do nothing.  Each row
 * was checked with ssh -G -F FILE HOST (OpenSSH 9.2). */
static void
test_final_host(void **state)
{
    static const struct {
        const char *host, *text, *user, *hostname;
        int port;
    } cases[] = {
        {"alias",
         "Host alias\n HostName real.example\nMatch final\n Port 2222\n"
         "Host real.example\n User bob\n",
         "bob",
         "real.example",
         2222},
        {"alias",
         "Host alias\n HostName REAL.Example\nMatch final\n"
         "Host real.example\n User bob\nHost REAL.Example\n User upper\n",
         "bob",
         "REAL.Example",
         0},
        {"ALIAS", "Match final\nHost alias\n User bob\n", "bob", NULL, 0},
        {"ALIAS",
         "Match final\n HostName foo.example\n User fu\n",
         "fu",
         NULL,
         0},
        {"alias",
         "Host alias\n HostName %h.Example.org\nMatch final\n"
         "Host alias.example.org\n User pct\n",
         "pct",
         "alias.Example.org",
         0},
        {"alias",
         "Host alias\n HostName Real.example\nMatch final host real.example\n"
         " User mhf\n",
         "mhf",
         "Real.example",
         0},
        {"alias",
         "Host alias\n HostName FE80::A\nMatch final\nHost FE80::A\n User v6\n",
         "v6",
         "FE80::A",
         0},
        /* No Match final: one reading, Host sees the alias only. */
        {"alias",
         "Host alias\n HostName real.example\nHost real.example\n User bob\n",
         NULL,
         "real.example",
         0},
    };
    char path[] = "/tmp/test_sshconfig_fh.XXXXXX";
    int fd;

    (void)state;
    fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        struct ssh_target t;
        struct strvec warn = STRVEC_INIT, notes = STRVEC_INIT;
        char *err = NULL;

        write_test_file(path, cases[i].text, 0600);
        ssh_target_init(&t);
        assert_int_equal(
            sshopts_target(&t, cases[i].host, NULL, &warn, &notes, &err), 0);
        t.config = xstrdup(path);
        if (sshconfig_load(&t, &warn, &notes, &err) != 0) {
            fail_msg("case %zu: %s", i, err);
        }
        if (strcmp(t.user != NULL ? t.user : "-",
                   cases[i].user != NULL ? cases[i].user : "-") != 0 ||
            strcmp(t.hostname != NULL ? t.hostname : "-",
                   cases[i].hostname != NULL ? cases[i].hostname : "-") != 0 ||
            t.port != cases[i].port) {
            fail_msg("case %zu: user %s hostname %s port %d",
                     i,
                     t.user != NULL ? t.user : "-",
                     t.hostname != NULL ? t.hostname : "-",
                     t.port);
        }
        ssh_target_release(&t);
        strvec_clear(&warn);
        strvec_clear(&notes);
    }
    unlink(path);
}

/* The owner and mode rule for user config files (OpenSSH's). */
static void
test_file_secure(void **state)
{
    static const struct {
        unsigned owner, mode, uid;
        int private_group, ok;
    } cases[] = {
        {1000, 0100644, 1000, 0, 1},
        {1000, 0100600, 1000, 0, 1},
        {0, 0100644, 1000, 0, 1},
        {0, 0100644, 0, 0, 1},
        {1000, 0104755, 1000, 0, 1},
        {1000, 0100444, 1000, 0, 1},
        {1001, 0100644, 1000, 0, 0},
        {1000, 0100644, 0, 0, 0},
        {1000, 0100664, 1000, 0, 0},
        {1000, 0100646, 1000, 0, 0},
        {1000, 0100666, 1000, 0, 0},
        {0, 0100666, 0, 0, 0},
        {0, 0100620, 1000, 0, 0},
        /* the user's private group (Debian, Ubuntu: umask 002) */
        {1000, 0100664, 1000, 1, 1},
        {1000, 0100666, 1000, 1, 0},
        {1001, 0100664, 1000, 1, 0},
    };

    (void)state;
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        int got = sshconfig_file_secure(cases[i].owner,
                                        cases[i].mode,
                                        cases[i].uid,
                                        cases[i].private_group);

        if (got != cases[i].ok) {
            fail_msg("owner %u mode %o uid %u: %d",
                     cases[i].owner,
                     cases[i].mode,
                     cases[i].uid,
                     got);
        }
    }
}

/* Paths expanded as ssh does (ssh -G shows UserKnownHostsFile and
 * IdentityAgent expanded the same way; IdentityFile is expanded when the
 * keys are loaded): ~ from the passwd home (here cfg->home), the %-tokens,
 * ${VAR}; GlobalKnownHostsFile ~ only. */
static void
test_expand_paths(void **state)
{
    static const struct row cases[] = {
        {"bob@Alias",
         "-p 2200 -o HostName=Real.Example.org",
         "IdentityFile %d/k_%u_%h_%r_%p_%n_%l_%L_%i_%k_%%\n"
         "IdentityFile /c/%C\n",
         NULL,
         {"id=/home/u/k_alice_real.example.org_bob_2200_Alias_"
          "deployer.example.org_deployer_1000_Alias_%",
          "id=/c/bdedc1b611c14c36d407e05cba86f525daa89cc6"},
         NULL},
        {"box",
         NULL,
         "UserKnownHostsFile /c/%C\n",
         NULL,
         {"kh=/c/9bca4c6beaeed66882b2e78daf6574919b04bee6"},
         NULL},
        {"box",
         NULL,
         "IdentityFile ~/.ssh/id\nIdentityFile ~\nIdentityFile ~//x\n"
         "IdentityFile rel/%r\n",
         NULL,
         {"id=/home/u/.ssh/id",
          "id=/home/u/",
          "id=/home/u/x",
          "id=rel/alice",
          "ids=4"},
         NULL},
        {"box",
         "-i %h_key -i ~/cli",
         "",
         NULL,
         {"id=box_key", "id=/home/u/cli"},
         NULL},
        {"box",
         NULL,
         "UserKnownHostsFile ~/kh_%h_%p\n"
         "GlobalKnownHostsFile ~/g_%h\n",
         NULL,
         {"kh=/home/u/kh_box_22", "gkh=/home/u/g_%h"},
         NULL},
        /* none: no file, and then an unknown key is refused. */
        {"box",
         NULL,
         "UserKnownHostsFile none\nGlobalKnownHostsFile none\n",
         NULL,
         {"kh=none", "gkh=none", "strict=2"},
         NULL},
        {"box",
         "-o StrictHostKeyChecking=accept-new",
         "UserKnownHostsFile NONE\n",
         NULL,
         {"kh=NONE", "strict=2"},
         NULL},
        {"box",
         "-o StrictHostKeyChecking=accept-new",
         "UserKnownHostsFile /dev/null\n",
         NULL,
         {"kh=/dev/null", "strict=3"},
         NULL},
        {"box",
         NULL,
         "IdentityFile ${CR_TEST_DIR}/k\nUserKnownHostsFile "
         "${CR_TEST_DIR}/kh\n",
         NULL,
         {"id=/env/dir/k", "kh=/env/dir/kh"},
         NULL},
        {"box",
         NULL,
         "IdentityFile ${CR_TEST_TILDE}/k\nIdentityFile $HOME/k\n",
         NULL,
         {"id=./~/k", "id=$HOME/k"},
         NULL},
        {"box",
         NULL,
         "IdentityFile pkcs11:object=a%20b\n",
         NULL,
         {"id=pkcs11:object=a%20b"},
         NULL},
        /* IdentityAgent: SSH_AUTH_SOCK is the environment's, $VAR that
         * variable's value (none when unset). */
        {"box",
         NULL,
         "IdentityAgent ~/agent_%u\n",
         NULL,
         {"agent=/home/u/agent_alice"},
         NULL},
        {"box", NULL, "IdentityAgent SSH_AUTH_SOCK\n", NULL, {"agent=-"}, NULL},
        {"box",
         NULL,
         "IdentityAgent $CR_TEST_DIR\n",
         NULL,
         {"agent=/env/dir"},
         NULL},
        {"box",
         NULL,
         "IdentityAgent $CR_TEST_UNSET\n",
         NULL,
         {"agent=none"},
         NULL},
        {"box", NULL, "IdentityAgent none\n", NULL, {"agent=none"}, NULL},
        /* Errors (ssh exits before connecting). */
        {"box",
         NULL,
         "IdentityFile /k/%q\n",
         "IdentityFile '/k/%q': unknown token '%q'",
         {NULL},
         NULL},
        {"box", NULL, "IdentityFile /k/%\n", "'%' at the end", {NULL}, NULL},
        {"box",
         NULL,
         "UserKnownHostsFile ${CR_TEST_UNSET}/kh\n",
         "UserKnownHostsFile '${CR_TEST_UNSET}/kh': environment variable "
         "'CR_TEST_UNSET' is not set",
         {NULL},
         NULL},
        {"box",
         NULL,
         "IdentityFile ${CR_TEST_DIR\n",
         "without a closing",
         {NULL},
         NULL},
        {"box", NULL, "IdentityFile /k/${}\n", "empty '${}'", {NULL}, NULL},
        {"box",
         NULL,
         "IdentityFile ~cr-no-such-user/k\n",
         "no such user",
         {NULL},
         NULL},
        {"box",
         NULL,
         "IdentityAgent ${CR_TEST_UNSET}\n",
         "is not set",
         {NULL},
         NULL},
        {"box",
         NULL,
         "IdentityAgent $bad-name\n",
         "invalid environment variable name",
         {NULL},
         NULL},
    };

    (void)state;
    assert_int_equal(setenv("CR_TEST_DIR", "/env/dir", 1), 0);
    assert_int_equal(setenv("CR_TEST_TILDE", "~", 1), 0);
    assert_int_equal(unsetenv("CR_TEST_UNSET"), 0);
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        const struct row *r = &cases[i];
        struct ssh_target t;
        struct strvec warn = STRVEC_INIT, notes = STRVEC_INIT;
        struct sshconfig cfg;
        char *err = NULL;
        int rc;

        ssh_target_init(&t);
        assert_int_equal(
            sshopts_target(&t, r->host, r->opts, &warn, &notes, &err), 0);
        memset(&cfg, 0, sizeof(cfg));
        cfg.t = &t;
        cfg.host = t.host;
        cfg.warnings = &warn;
        cfg.notes = &notes;
        set_local(&cfg);
        rc = sshconfig_parse(&cfg, r->text, strlen(r->text), "config", 0, &err);
        if (rc != 0) {
            fail_msg("case %zu: parse error '%s'", i, err);
        }
        rc = sshconfig_expand_paths(&cfg, &err);
        if (r->err != NULL) {
            if (rc != CR_EUSAGE || err == NULL || strstr(err, r->err) == NULL) {
                fail_msg("case %zu '%s': expected error '%s', got %d '%s'",
                         i,
                         r->text,
                         r->err,
                         rc,
                         err ? err : "(none)");
            }
            assert_null(strchr(err, '\n'));
        } else {
            char *d = dump(&t);
            char *what = xasprintf("case %zu '%s'", i, r->text);

            if (rc != 0) {
                fail_msg("%s: unexpected error '%s'", what, err);
            }
            expect_lines(what, d, r->expect);
            free(d);
            free(what);
        }
        free(err);
        strvec_clear(&warn);
        strvec_clear(&notes);
        ssh_target_release(&t);
    }
    unsetenv("CR_TEST_DIR");
    unsetenv("CR_TEST_TILDE");
}

/* sshconfig_load: ~ is the passwd entry's home directory, not $HOME (as
 * ssh); the paths reach the target expanded. */
static void
test_load_home(void **state)
{
    struct passwd *pw = getpwuid(getuid());
    const char *old = getenv("HOME");
    char *saved = old != NULL ? xstrdup(old) : NULL;
    struct ssh_target t;
    struct strvec warn = STRVEC_INIT, notes = STRVEC_INIT;
    char *err = NULL;
    char *want = NULL;

    (void)state;
    if (pw == NULL || pw->pw_dir == NULL || pw->pw_dir[0] == '\0') {
        free(saved);
        skip();
    }
    want = xasprintf("%s%sk_%s",
                     pw->pw_dir,
                     pw->pw_dir[strlen(pw->pw_dir) - 1] == '/' ? "" : "/",
                     pw->pw_name);
    assert_int_equal(setenv("HOME", "/cr-not-the-home", 1), 0);
    ssh_target_init(&t);
    assert_int_equal(sshopts_target(&t,
                                    "box",
                                    "-F none -i ~/k_%u -o IdentityAgent=none",
                                    &warn,
                                    &notes,
                                    &err),
                     0);
    assert_int_equal(sshconfig_load(&t, &warn, &notes, &err), 0);
    assert_int_equal(t.identities.n, 1);
    assert_string_equal(t.identities.v[0], want);
    ssh_target_release(&t);
    if (saved != NULL) {
        setenv("HOME", saved, 1);
    } else {
        unsetenv("HOME");
    }
    free(saved);
    free(want);
    strvec_clear(&warn);
    strvec_clear(&notes);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rows),
        cmocka_unit_test(test_patterns),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_files),
        cmocka_unit_test(test_networks),
        cmocka_unit_test(test_final),
        cmocka_unit_test(test_exec),
        cmocka_unit_test(test_exec_shell),
        cmocka_unit_test(test_final_host),
        cmocka_unit_test(test_file_secure),
        cmocka_unit_test(test_host_key_options_warn),
        cmocka_unit_test(test_expand_paths),
        cmocka_unit_test(test_load_home),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

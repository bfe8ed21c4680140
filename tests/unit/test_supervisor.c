/* test_supervisor.c: the magic-rollback script's argv (supervisor_argv),
 * pinned shape by shape, then run for real by /bin/sh: locally, and as the
 * remote login shell runs it (remote_command, with and without sudo), with
 * stub switch-to-configuration, nix-env and sudo programs and hostile
 * names for every path.  Only the modes that stay inside the test's own
 * directory run (start would create /nix/var/crebuild); the rollback path
 * runs only with a previous generation, so it never touches the real
 * /run/current-system. */
#include "testutil.h"

#include "crebuild/cli.h"
#include "crebuild/host.h"
#include "crebuild/remote.h"
#include "crebuild/strbuf.h"
#include "crebuild/strvec.h"
#include "crebuild/supervisor.h"
#include "crebuild/util.h"

#include <limits.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* Every shell metacharacter that could split, expand or run something,
 * as a single path component. */
#define HOSTILE "a b;$(touch pwned)`touch pwned`'\"*?[x]\\\t\n-"

static char dir[] = "/tmp/crebuild-test-supervisor-XXXXXX";
static char *oldcwd;
static char *oldpath;
static char *stc;     /* the new configuration's switch-to-configuration */
static char *profile; /* holds bin/switch-to-configuration (rollback) */
static char *sudo_ran;
static char *stc_rc;
static int nstate;

static char *
read_file(const char *path)
{
    struct strbuf sb = STRBUF_INIT;
    char buf[4096];
    size_t n;
    FILE *f = fopen(path, "r");

    assert_non_null(f);
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0) {
        strbuf_add(&sb, buf, n);
    }
    fclose(f);
    return strbuf_detach(&sb);
}

static int
exists(const char *path)
{
    struct stat st;

    return lstat(path, &st) == 0;
}

static int
setup(void **state)
{
    char *p;

    (void)state;
    if (mkdtemp(dir) == NULL) {
        return -1;
    }
    oldcwd = getcwd(NULL, 0);
    /* An injected `touch pwned` would land here. */
    if (oldcwd == NULL || chdir(dir) != 0) {
        return -1;
    }
    p = xasprintf("%s/bin", dir);
    mkdir(p, 0755);
    free(p);
    sudo_ran = xasprintf("%s/sudo-ran", dir);
    stc_rc = xasprintf("%s/stc-rc", dir);
    /* sudo: leaves a mark, runs the command. */
    p = xasprintf("%s/bin/sudo", dir);
    {
        char *body = xasprintf("#!/bin/sh\n: > '%s'\nexec \"$@\"\n", sudo_ran);
        write_test_file(p, body, 0755);
        free(body);
    }
    free(p);
    p = xasprintf("%s/bin/nix-env", dir);
    write_test_file(p,
                    "#!/bin/sh\nprintf nix-env\nprintf ' [%s]' \"$@\"\n"
                    "printf '\\n'\n",
                    0755);
    free(p);
    /* The new configuration: exits with the status in stc-rc (0 if none). */
    p = xasprintf("%s/new " HOSTILE, dir);
    mkdir(p, 0755);
    stc = xasprintf("%s/switch-to-configuration", p);
    free(p);
    {
        char *body = xasprintf("#!/bin/sh\nprintf 'stc [%%s] boot=[%%s]\\n' "
                               "\"$1\" \"${NIXOS_INSTALL_BOOTLOADER-unset}\"\n"
                               "exit \"$(cat '%s' 2>/dev/null || echo 0)\"\n",
                               stc_rc);
        write_test_file(stc, body, 0755);
        free(body);
    }
    /* The profile: its switch-to-configuration is the restored one. */
    profile = xasprintf("%s/profile " HOSTILE, dir);
    mkdir(profile, 0755);
    p = xasprintf("%s/bin", profile);
    mkdir(p, 0755);
    free(p);
    p = xasprintf("%s/bin/switch-to-configuration", profile);
    write_test_file(p,
                    "#!/bin/sh\nprintf 'profile-stc [%s] boot=[%s]\\n' \"$1\" "
                    "\"${NIXOS_INSTALL_BOOTLOADER-unset}\"\n",
                    0755);
    free(p);
    /* nix-env and sudo are found through PATH, here and behind env -i. */
    oldpath = xstrdup(getenv("PATH") ? getenv("PATH") : "/usr/bin:/bin");
    p = xasprintf("%s/bin:%s", dir, oldpath);
    setenv("PATH", p, 1);
    free(p);
    return 0;
}

static int
teardown(void **state)
{
    char *rm = xasprintf("rm -rf '%s'", dir);
    int rc;

    (void)state;
    setenv("PATH", oldpath, 1);
    rc = chdir(oldcwd) == 0 && system(rm) == 0 ? 0 : -1;
    free(rm);
    free(oldcwd);
    free(oldpath);
    free(stc);
    free(profile);
    free(sudo_ran);
    free(stc_rc);
    return rc;
}

/* A fresh state directory with a hostile name (what start would make). */
static char *
new_state(void)
{
    char *s = xasprintf("%s/state-%d " HOSTILE, dir, ++nstate);

    assert_int_equal(mkdir(s, 0700), 0);
    return s;
}

static void
req_init(struct supervise_req *r, const char *prev_gen, unsigned timeout)
{
    memset(r, 0, sizeof(*r));
    r->stc = stc;
    r->action = "switch";
    r->profile = profile;
    r->prev_gen = prev_gen;
    r->timeout = timeout;
    r->install_bootloader = 1;
}

enum how { LOCAL, REMOTE_SUDO, REMOTE_ROOT };

/* Run one mode as run_mode in supervisor.c does (elevated, LOCALE_ARCHIVE
 * and NIXOS_NO_CHECK passed on, extra appended): LOCAL straight through
 * the local host; REMOTE_* as the string remote_command makes for a sudo
 * target, handed to /bin/sh -c as sshd hands it to the login shell.
 * Returns the exit status; *out gets stdout. */
static int
run_mode(enum how how,
         const char *mode,
         const char *state,
         const struct supervise_req *r,
         const char *extra,
         struct strbuf *out)
{
    struct strvec argv = STRVEC_INIT, env = STRVEC_INIT, shv = STRVEC_INIT;
    struct strbuf err = STRBUF_INIT;
    struct host_cmd cmd = {0};
    struct host *h = host_local_new(NULL);
    int status = -1;

    supervisor_argv(mode, state, r, &argv);
    if (extra != NULL) {
        strvec_push(&argv, extra);
    }
    strvec_pushl(&env, "LOCALE_ARCHIVE", "NIXOS_NO_CHECK", NULL);
    cmd.argv = &argv;
    cmd.env = &env;
    cmd.elevate = 1;
    if (how != LOCAL) {
        struct remote_elevation e = {CR_ELEVATE_SUDO, NULL, NULL};
        int is_root = how == REMOTE_ROOT;
        char *s = remote_command(&cmd, &e, is_root);
        const char *plain = "/bin/sh -c 'exec env -i PATH=\"${PATH-}\" "
                            "LOCALE_ARCHIVE=\"${LOCALE_ARCHIVE-}\" "
                            "NIXOS_NO_CHECK=\"${NIXOS_NO_CHECK-}\" \"$@\"' "
                            "sh /bin/sh -c ";
        const char *rest = s;

        assert_non_null(s);
        /* sudo in front exactly when the login user is not root. */
        if (!is_root) {
            if (strncmp(rest, "sudo ", 5) != 0) {
                fail_msg("no sudo in front: %.200s", s);
            }
            rest += 5;
        }
        if (strncmp(rest, plain, strlen(plain)) != 0) {
            fail_msg("remote command: %.200s", s);
        }
        strvec_pushl(&shv, "/bin/sh", "-c", s, NULL);
        free(s);
        memset(&cmd, 0, sizeof(cmd));
        cmd.argv = &shv;
    }
    cmd.out = out;
    cmd.err = &err;
    unlink(sudo_ran);
    assert_int_equal(host_run(h, &cmd, &status), 0);
    /* The stub sudo ran exactly when remote_command put it there. */
    assert_int_equal(exists(sudo_ran), how == REMOTE_SUDO);
    if (err.len > 0) {
        fail_msg("%s printed on stderr: %s", mode, err.buf);
    }
    strvec_clear(&argv);
    strvec_clear(&env);
    strvec_clear(&shv);
    strbuf_release(&err);
    host_free(h);
    return status;
}

/* The status mode's one line. */
static void
check_status(enum how how,
             const char *state,
             const struct supervise_req *r,
             const char *want)
{
    struct strbuf out = STRBUF_INIT;

    assert_int_equal(run_mode(how, "status", state, r, NULL, &out), 0);
    assert_string_equal(out.buf, want);
    strbuf_release(&out);
}

/* The follow mode prints the run's log (whole, as activation has ended),
 * which must be want, and exits with the activation's status. */
static void
check_log(enum how how,
          const char *state,
          const struct supervise_req *r,
          const char *want,
          int activated)
{
    struct strbuf out = STRBUF_INIT;
    char *path = xasprintf("%s/log", state);
    char *log = read_file(path);

    assert_string_equal(log, want);
    assert_int_equal(run_mode(how, "follow", state, r, NULL, &out), activated);
    assert_string_equal(out.buf, want);
    strbuf_release(&out);
    free(log);
    free(path);
}

/* Cleanup removes the state; nothing was injected anywhere. */
static void
check_cleanup(enum how how, const char *state, const struct supervise_req *r)
{
    struct strbuf out = STRBUF_INIT;

    assert_int_equal(run_mode(how, "cleanup", state, r, NULL, &out), 0);
    assert_false(exists(state));
    assert_false(exists("pwned"));
    strbuf_release(&out);
}

/* ---- argv shapes ---- */

static void
test_argv_shapes(void **state)
{
    static const char *const plain[] = {
        "status", "follow", "confirm", "abort", "cleanup"};
    struct supervise_req r;
    struct strvec v = STRVEC_INIT;
    const char *st = "/nix/var/crebuild/" HOSTILE;

    (void)state;
    req_init(&r, NULL, UINT_MAX);
    r.install_bootloader = 7;
    r.use_systemd = 2;
    /* Modes that do not activate: the script, itself again as $0, $1 the
     * mode, $2 the state, and nothing of the request. */
    for (size_t i = 0; i < ARRAY_SIZE(plain); i++) {
        supervisor_argv(plain[i], st, &r, &v);
        assert_int_equal(v.n, 6);
        assert_string_equal(v.v[0], "/bin/sh");
        assert_string_equal(v.v[1], "-c");
        assert_string_equal(v.v[3], v.v[2]);
        assert_true(strncmp(v.v[2], "mode=$1; state=$2\n", 18) == 0);
        assert_string_equal(v.v[4], plain[i]);
        assert_string_equal(v.v[5], st);
        strvec_clear(&v);
    }
    /* run: $3 stc .. $8 install-bootloader, each one word, verbatim; no
     * previous generation is an empty word, flags are 0/1. */
    supervisor_argv("run", st, &r, &v);
    assert_int_equal(v.n, 12);
    assert_string_equal(v.v[3], v.v[2]);
    assert_string_equal(v.v[4], "run");
    assert_string_equal(v.v[5], st);
    assert_string_equal(v.v[6], stc);
    assert_string_equal(v.v[7], "switch");
    assert_string_equal(v.v[8], profile);
    assert_string_equal(v.v[9], "");
    assert_string_equal(v.v[10], "4294967295");
    assert_string_equal(v.v[11], "1");
    strvec_clear(&v);
    /* start: the same plus $9 use-systemd. */
    r.action = "test";
    r.prev_gen = "41";
    r.timeout = 0;
    r.install_bootloader = 0;
    supervisor_argv("start", st, &r, &v);
    assert_int_equal(v.n, 13);
    assert_string_equal(v.v[4], "start");
    assert_string_equal(v.v[7], "test");
    assert_string_equal(v.v[9], "41");
    assert_string_equal(v.v[10], "0");
    assert_string_equal(v.v[11], "0");
    assert_string_equal(v.v[12], "1");
    strvec_clear(&v);
    r.use_systemd = 0;
    supervisor_argv("start", st, &r, &v);
    assert_int_equal(v.n, 13);
    assert_string_equal(v.v[12], "0");
    strvec_clear(&v);
    /* Appends to what the vector holds (a caller's prefix stays first). */
    strvec_push(&v, "prefix");
    supervisor_argv("status", st, &r, &v);
    assert_int_equal(v.n, 7);
    assert_string_equal(v.v[0], "prefix");
    assert_string_equal(v.v[1], "/bin/sh");
    assert_string_equal(v.v[5], "status");
    strvec_clear(&v);
}

/* ---- the script, run ---- */

/* Confirmed in time: the new configuration stays, nothing is rolled
 * back. */
static void
confirmed(enum how how)
{
    struct supervise_req r;
    struct strbuf out = STRBUF_INIT;
    char *st = new_state();
    char *confirm = xasprintf("%s/confirm", st);

    req_init(&r, "12", 1);
    unlink(stc_rc);
    write_test_file(confirm, "", 0644);
    assert_int_equal(run_mode(how, "run", st, &r, NULL, &out), 0);
    assert_string_equal(out.buf, "");
    check_status(how, st, &r, "activated=0 status=confirmed\n");
    check_log(how, st, &r, "stc [switch] boot=[1]\n", 0);
    /* confirm on a finished run reports its status at once. */
    strbuf_reset(&out);
    assert_int_equal(run_mode(how, "confirm", st, &r, NULL, &out), 0);
    assert_string_equal(out.buf, "status=confirmed\n");
    assert_false(exists(st)); /* confirmed: confirm removed the state */
    check_cleanup(how, st, &r);
    strbuf_release(&out);
    free(confirm);
    free(st);
}

/* Activation fails: its status is recorded, no rollback (as
 * nixos-rebuild); abort passes its reason as one word. */
static void
failed(enum how how)
{
    struct supervise_req r;
    struct strbuf out = STRBUF_INIT;
    char *st = new_state();
    char *abort_file = xasprintf("%s/abort", st);
    char *why;

    req_init(&r, "12", 0);
    r.install_bootloader = 0;
    write_test_file(stc_rc, "3\n", 0644);
    assert_int_equal(run_mode(how, "run", st, &r, NULL, &out), 0);
    unlink(stc_rc);
    check_status(how, st, &r, "activated=3 status=failed\n");
    check_log(how, st, &r, "stc [switch] boot=[0]\n", 3);
    strbuf_reset(&out);
    assert_int_equal(run_mode(how, "abort", st, &r, "health: " HOSTILE, &out),
                     0);
    assert_string_equal(out.buf, "status=failed\n");
    why = read_file(abort_file);
    assert_string_equal(why, "health: " HOSTILE "\n");
    check_cleanup(how, st, &r);
    strbuf_release(&out);
    free(why);
    free(abort_file);
    free(st);
}

/* No confirmation (timeout 0): the profile goes back to the previous
 * generation ($5, $6) and its configuration is switched to, without the
 * boot loader. */
static void
rolled_back(enum how how)
{
    struct supervise_req r;
    struct strbuf out = STRBUF_INIT;
    char *st = new_state();
    char *want;

    req_init(&r, "12 " HOSTILE, 0);
    unlink(stc_rc);
    assert_int_equal(run_mode(how, "run", st, &r, NULL, &out), 0);
    check_status(how, st, &r, "activated=0 status=rolled-back 0\n");
    want =
        xasprintf("stc [switch] boot=[1]\n"
                  "crebuild: no confirmation, rolling back\n"
                  "nix-env [-p] [%s] [--switch-generation] [12 " HOSTILE "]\n"
                  "profile-stc [switch] boot=[0]\n",
                  profile);
    check_log(how, st, &r, want, 0);
    check_cleanup(how, st, &r);
    strbuf_release(&out);
    free(want);
    free(st);
}

/* follow starts at the same time as run: a pid file that exists but
 * holds nothing yet (as run sees it between creating and writing it) is
 * not a dead supervisor.  follow waits until activation has ended. */
static void
follow_before_pid(enum how how)
{
    struct supervise_req r;
    struct strbuf out = STRBUF_INIT;
    char *st = new_state();
    char *pid = xasprintf("%s/pid", st);
    char *log = xasprintf("%s/log", st);
    char *activated = xasprintf("%s/activated", st);
    pid_t child;
    int wst;

    req_init(&r, NULL, 0);
    write_test_file(pid, "", 0644);
    child = fork();
    assert_true(child >= 0);
    if (child == 0) { /* run, finishing: no cmocka in this process */
        FILE *f;

        usleep(300 * 1000);
        if ((f = fopen(log, "w")) != NULL) {
            fputs("stc [test]\n", f);
            fclose(f);
        }
        if ((f = fopen(activated, "w")) != NULL) {
            fputs("0\n", f);
            fclose(f);
        }
        _exit(0);
    }
    assert_int_equal(run_mode(how, "follow", st, &r, NULL, &out), 0);
    assert_int_equal(waitpid(child, &wst, 0), child);
    assert_string_equal(out.buf, "stc [test]\n");
    check_cleanup(how, st, &r);
    strbuf_release(&out);
    free(activated);
    free(log);
    free(pid);
    free(st);
}

/* Each scenario over every way the script is run. */
static void
each_how(void (*scenario)(enum how))
{
    scenario(LOCAL);
    scenario(REMOTE_SUDO);
    scenario(REMOTE_ROOT);
}

static void
test_run_confirmed(void **state)
{
    (void)state;
    each_how(confirmed);
}

static void
test_run_failed(void **state)
{
    (void)state;
    each_how(failed);
}

static void
test_follow_before_pid(void **state)
{
    (void)state;
    each_how(follow_before_pid);
}

static void
test_run_rolled_back(void **state)
{
    (void)state;
    each_how(rolled_back);
}

/* The exits crebuild tells apart: no state dir (94), unknown mode (2); a
 * status with nothing recorded yet is "-". */
static void
test_mode_errors(void **state)
{
    struct supervise_req r;
    struct strbuf out = STRBUF_INIT;
    char *st = new_state();
    char *gone = xasprintf("%s/gone " HOSTILE, dir);

    (void)state;
    req_init(&r, NULL, 0);
    check_status(LOCAL, st, &r, "activated=- status=-\n");
    check_status(REMOTE_SUDO, st, &r, "activated=- status=-\n");
    assert_int_equal(run_mode(LOCAL, "confirm", gone, &r, NULL, &out), 94);
    assert_int_equal(run_mode(REMOTE_SUDO, "abort", gone, &r, "x", &out), 94);
    assert_false(exists(gone));
    assert_int_equal(run_mode(LOCAL, "bogus", st, &r, NULL, &out), 2);
    assert_string_equal(out.buf, "");
    check_cleanup(LOCAL, st, &r);
    strbuf_release(&out);
    free(gone);
    free(st);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_argv_shapes),
        cmocka_unit_test(test_run_confirmed),
        cmocka_unit_test(test_run_failed),
        cmocka_unit_test(test_run_rolled_back),
        cmocka_unit_test(test_follow_before_pid),
        cmocka_unit_test(test_mode_errors),
    };
    return cmocka_run_group_tests_name("supervisor", tests, setup, teardown);
}

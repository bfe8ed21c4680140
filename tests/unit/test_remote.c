/* test_remote.c: remote_command, the one function that turns a host_cmd
 * into the string the remote login shell runs.  Golden strings pin the
 * nixos-rebuild-ng (ng-C) form; round trips run the string through a real
 * /bin/sh -c with stub programs and check that every argument and
 * environment value arrives byte for byte. */
#include "testutil.h"

#include "crebuild/host.h"
#include "crebuild/remote.h"
#include "crebuild/strbuf.h"
#include "crebuild/strvec.h"
#include "crebuild/util.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char stubdir[] = "/tmp/crebuild-test-remote.XXXXXX";

static void
write_stub(const char *name, const char *body)
{
    char *path = xasprintf("%s/%s", stubdir, name);
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    fputs(body, f);
    fclose(f);
    assert_int_equal(chmod(path, 0755), 0);
    free(path);
}

static int
setup(void **state)
{
    (void)state;
    if (mkdtemp(stubdir) == NULL) {
        return -1;
    }
    /* Prints its arguments, then the variables the tests look at, each
     * NUL-terminated. */
    write_stub("args",
               "#!/bin/sh\n"
               "for a; do printf '%s\\0' \"$a\"; done\n"
               "printf -- '--env--\\0'\n"
               "for v in FOO KEEP DROP EMPTY; do\n"
               "  eval \"printf '%s=%s\\0' $v \\\"\\${$v-(unset)}\\\"\"\n"
               "done\n");
    /* A sudo that shows its own options and runs the command. */
    write_stub("sudo",
               "#!/bin/sh\n"
               "while [ \"$1\" != /bin/sh ]; do\n"
               "  printf 'sudo:%s\\0' \"$1\"; shift\n"
               "done\n"
               "exec \"$@\"\n");
    return 0;
}

static int
teardown(void **state)
{
    char *p = NULL;

    (void)state;
    p = xasprintf("%s/args", stubdir);
    unlink(p);
    free(p);
    p = xasprintf("%s/sudo", stubdir);
    unlink(p);
    free(p);
    rmdir(stubdir);
    return 0;
}

/* Run s with /bin/sh -c (as sshd does with the login shell) and return
 * its stdout. */
static void
run_sh(const char *s, struct strbuf *out)
{
    int p[2];
    pid_t pid;
    int st = 0;
    char buf[4096];
    ssize_t n;

    assert_int_equal(pipe(p), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char *path = xasprintf("PATH=%s:/usr/bin:/bin", stubdir);

        dup2(p[1], 1);
        close(p[0]);
        close(p[1]);
        putenv(path);
        setenv("KEEP", "kept value $x", 1);
        setenv("DROP", "must not pass", 1);
        execl("/bin/sh", "sh", "-c", s, (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    while ((n = read(p[0], buf, sizeof(buf))) > 0) {
        strbuf_add(out, buf, (size_t)n);
    }
    close(p[0]);
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

/* The NUL-separated words of out. */
static void
split_nul(const struct strbuf *out, struct strvec *v)
{
    size_t i = 0;

    while (i < out->len) {
        size_t n = strlen(out->buf + i);

        strvec_push(v, out->buf + i);
        i += n + 1;
    }
}

static char *
cmd_string(const char *const *argv,
           const char *const *env,
           int elevate,
           const struct remote_elevation *e,
           int is_root)
{
    struct strvec av = STRVEC_INIT, ev = STRVEC_INIT;
    struct host_cmd cmd;
    char *s = NULL;

    memset(&cmd, 0, sizeof(cmd));
    for (size_t i = 0; argv[i] != NULL; i++) {
        strvec_push(&av, argv[i]);
    }
    for (size_t i = 0; env != NULL && env[i] != NULL; i++) {
        strvec_push(&ev, env[i]);
    }
    cmd.argv = &av;
    cmd.env = env != NULL ? &ev : NULL;
    cmd.elevate = elevate;
    s = remote_command(&cmd, e, is_root);
    strvec_clear(&av);
    strvec_clear(&ev);
    return s;
}

/* ---- golden strings ---- */

struct golden {
    const char *argv[8];
    const char *env[6];
    int elevate;
    enum cr_elevate kind;
    const char *password;
    const char *sudo_opts[4];
    int is_root;
    const char *want;
};

/* clang-format off */
static const struct golden goldens[] = {
    {{"nix-env", "-p", "/nix/var/nix/profiles/system", "--set",
      "/nix/store/abc-nixos", NULL}, {NULL}, 0, CR_ELEVATE_NONE, NULL,
     {NULL}, 0,
     "/bin/sh -c 'exec env -i PATH=\"${PATH-}\" \"$@\"' sh nix-env -p "
     "/nix/var/nix/profiles/system --set /nix/store/abc-nixos"},
    /* Elevated, no password: plain sudo. */
    {{"nix-env", "-p", "/nix/var/nix/profiles/system", "--set",
      "/nix/store/abc-nixos", NULL}, {NULL}, 1, CR_ELEVATE_SUDO, NULL,
     {NULL}, 0,
     "sudo /bin/sh -c 'exec env -i PATH=\"${PATH-}\" \"$@\"' sh nix-env -p "
     "/nix/var/nix/profiles/system --set /nix/store/abc-nixos"},
    /* With a password and NIX_SUDOOPTS. */
    {{"test", "--with", "some flags", NULL}, {"FOO=bar", NULL}, 1,
     CR_ELEVATE_SUDO, "secret", {"--preserve-env=X", "-H", NULL}, 0,
     "sudo --prompt= --stdin --preserve-env=X -H /bin/sh -c 'exec env -i "
     "PATH=\"${PATH-}\" FOO=bar \"$@\"' sh test --with 'some flags'"},
    /* The switch-to-configuration call of ng-C. */
    {{"systemd-run", "-E", "LOCALE_ARCHIVE", "-E", "NIXOS_INSTALL_BOOTLOADER",
      "-E", "NIXOS_NO_CHECK", NULL},
     {"LOCALE_ARCHIVE", "NIXOS_NO_CHECK", "NIXOS_INSTALL_BOOTLOADER=0", NULL},
     1, CR_ELEVATE_SUDO, NULL, {NULL}, 0,
     "sudo /bin/sh -c 'exec env -i PATH=\"${PATH-}\" "
     "LOCALE_ARCHIVE=\"${LOCALE_ARCHIVE-}\" "
     "NIXOS_NO_CHECK=\"${NIXOS_NO_CHECK-}\" NIXOS_INSTALL_BOOTLOADER=0 "
     "\"$@\"' sh systemd-run -E LOCALE_ARCHIVE -E NIXOS_INSTALL_BOOTLOADER "
     "-E NIXOS_NO_CHECK"},
    /* A value with a blank is quoted inside the script, then again. */
    {{"true", NULL}, {"FOO=a b", NULL}, 0, CR_ELEVATE_SUDO, NULL, {NULL}, 0,
     "/bin/sh -c 'exec env -i PATH=\"${PATH-}\" FOO='\"'\"'a b'\"'\"' "
     "\"$@\"' sh true"},
    /* An empty value. */
    {{"true", NULL}, {"FOO=", NULL}, 0, CR_ELEVATE_NONE, NULL, {NULL}, 0,
     "/bin/sh -c 'exec env -i PATH=\"${PATH-}\" FOO='\"'\"''\"'\"' \"$@\"' "
     "sh true"},
    /* Root: never sudo. */
    {{"id", "-u", NULL}, {NULL}, 1, CR_ELEVATE_SUDO, "secret", {"-H", NULL},
     1, "/bin/sh -c 'exec env -i PATH=\"${PATH-}\" \"$@\"' sh id -u"},
    /* Not elevated: no sudo even when configured. */
    {{"cat", "/proc/sys/kernel/hostname", NULL}, {NULL}, 0, CR_ELEVATE_SUDO,
     "secret", {NULL}, 0,
     "/bin/sh -c 'exec env -i PATH=\"${PATH-}\" \"$@\"' sh cat "
     "/proc/sys/kernel/hostname"},
    /* run0 (ng-D test_process form). */
    {{"cmd", "arg", NULL}, {NULL}, 1, CR_ELEVATE_RUN0, NULL, {NULL}, 0,
     "/bin/sh -c 'exec systemd-run --uid=0 --pipe --quiet --wait --collect "
     "--service-type=exec --send-sighup --setenv=PATH=\"${PATH-}\" -- "
     "\"$@\"' sh cmd arg"},
    {{"cmd", NULL}, {"KEEP", "FOO=1", NULL}, 1, CR_ELEVATE_RUN0, "pw",
     {NULL}, 0,
     "polkit-stdin-agent --password-fd=0 -- /bin/sh -c 'exec systemd-run "
     "--uid=0 --pipe --quiet --wait --collect --service-type=exec "
     "--send-sighup --setenv=PATH=\"${PATH-}\" --setenv=KEEP=\"${KEEP-}\" "
     "--setenv=FOO=1 -- \"$@\"' sh cmd"},
    /* run0: the service manager would expand '$' in the arguments; each
     * is doubled ("$$" -> "$" there). */
    {{"/bin/sh", "-c", "put pid $$; x=${state##*/}", "$HOME", NULL}, {NULL},
     1, CR_ELEVATE_RUN0, NULL, {NULL}, 0,
     "/bin/sh -c 'exec systemd-run --uid=0 --pipe --quiet --wait --collect "
     "--service-type=exec --send-sighup --setenv=PATH=\"${PATH-}\" -- "
     "\"$@\"' sh /bin/sh -c 'put pid $$$$; x=$${state##*/}' '$$HOME'"},
    /* Hostile arguments are single-quoted. */
    {{"echo", "$(id)", "`id`", "a;b", "it's", NULL}, {NULL}, 0,
     CR_ELEVATE_NONE, NULL, {NULL}, 0,
     "/bin/sh -c 'exec env -i PATH=\"${PATH-}\" \"$@\"' sh echo '$(id)' "
     "'`id`' 'a;b' 'it'\"'\"'s'"},
};
/* clang-format on */

static void
test_golden(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_SIZE(goldens); i++) {
        const struct golden *g = &goldens[i];
        struct strvec opts = STRVEC_INIT;
        struct remote_elevation e;
        char *s = NULL;

        for (size_t k = 0; g->sudo_opts[k] != NULL; k++) {
            strvec_push(&opts, g->sudo_opts[k]);
        }
        e.kind = g->kind;
        e.sudo_opts = &opts;
        e.password = g->password;
        s = cmd_string(
            g->argv, g->env[0] ? g->env : NULL, g->elevate, &e, g->is_root);
        assert_non_null(s);
        if (strcmp(s, g->want) != 0) {
            fail_msg("row %zu:\n got: %s\nwant: %s", i, s, g->want);
        }
        free(s);
        strvec_clear(&opts);
    }
}

static void
test_elevates(void **state)
{
    struct remote_elevation e = {CR_ELEVATE_SUDO, NULL, NULL};
    struct strvec av = STRVEC_INIT;
    struct host_cmd cmd;

    (void)state;
    memset(&cmd, 0, sizeof(cmd));
    strvec_push(&av, "true");
    cmd.argv = &av;
    assert_false(remote_elevates(&cmd, &e, 0));
    cmd.elevate = 1;
    assert_true(remote_elevates(&cmd, &e, 0));
    assert_false(remote_elevates(&cmd, &e, 1));
    assert_false(remote_elevates(&cmd, NULL, 0));
    e.kind = CR_ELEVATE_NONE;
    assert_false(remote_elevates(&cmd, &e, 0));
    strvec_clear(&av);
}

static void
test_invalid(void **state)
{
    static const char *const bad_env[] = {
        "1FOO",
        "FO-O=1",
        "",
        "=x",
        "A B=1",
        "FOO;rm=1",
        "$X",
        "É=1",
    };
    static const char *const argv[] = {"true", NULL};
    static const char *const none[] = {NULL};
    struct remote_elevation e = {CR_ELEVATE_NONE, NULL, NULL};

    (void)state;
    for (size_t i = 0; i < ARRAY_SIZE(bad_env); i++) {
        const char *env[] = {bad_env[i], NULL};
        struct strvec av = STRVEC_INIT, ev = STRVEC_INIT;
        struct host_cmd cmd;
        char *err = NULL;
        char *s = cmd_string(argv, env, 0, &e, 0);

        if (s != NULL) {
            fail_msg("env '%s' accepted: %s", bad_env[i], s);
        }
        memset(&cmd, 0, sizeof(cmd));
        strvec_push(&av, "true");
        strvec_push(&ev, bad_env[i]);
        cmd.argv = &av;
        cmd.env = &ev;
        assert_int_equal(remote_cmd_check(&cmd, &err), CR_EUSAGE);
        assert_non_null(strstr(err, "invalid environment variable name"));
        assert_null(strchr(err, '\n'));
        free(err);
        strvec_clear(&av);
        strvec_clear(&ev);
    }
    assert_null(cmd_string(none, NULL, 0, &e, 0));
    {
        const char *env[] = {"_ok1", "Ab_9=x", NULL};
        char *s = cmd_string(argv, env, 0, &e, 0);

        assert_non_null(s);
        free(s);
    }
}

/* ---- round trips through a real shell ---- */

static const char *const hostile[] = {
    "plain",
    "a b",
    "it's",
    "\"dq\"",
    "$HOME",
    "${PATH}",
    "$(echo pwned)",
    "`echo pwned`",
    "a;b",
    "a&&b||c",
    "new\nline",
    "",
    "back\\slash",
    "trailing\\",
    "*",
    "~",
    "-n",
    "%s%n",
    "tab\there",
    "'",
    "''\"\"",
    "\xc3\xbc\xc3\xb1\xc3\xaf",
    "!bang",
    "#hash",
    "a=b",
    "<in >out 2>&1",
};

static void
round_trip(int elevate, const char *password, const char *const *sudo_opts)
{
    const char *argv[ARRAY_SIZE(hostile) + 2];
    const char *env[] = {
        "FOO=x'y $(z) `w` \"q\"\nline2\\", "KEEP", "EMPTY=", NULL};
    struct strvec opts = STRVEC_INIT, got = STRVEC_INIT;
    struct remote_elevation e;
    struct strbuf out = STRBUF_INIT;
    size_t k = 0;
    char *s = NULL;

    for (size_t i = 0; sudo_opts != NULL && sudo_opts[i] != NULL; i++) {
        strvec_push(&opts, sudo_opts[i]);
    }
    e.kind = CR_ELEVATE_SUDO;
    e.sudo_opts = &opts;
    e.password = password;
    argv[0] = "args";
    for (size_t i = 0; i < ARRAY_SIZE(hostile); i++) {
        argv[i + 1] = hostile[i];
    }
    argv[ARRAY_SIZE(hostile) + 1] = NULL;
    s = cmd_string(argv, env, elevate, &e, 0);
    assert_non_null(s);
    run_sh(s, &out);
    split_nul(&out, &got);

    if (elevate) {
        if (password != NULL) {
            assert_string_equal(got.v[k++], "sudo:--prompt=");
            assert_string_equal(got.v[k++], "sudo:--stdin");
        }
        for (size_t i = 0; i < opts.n; i++) {
            char *w = xasprintf("sudo:%s", opts.v[i]);

            assert_string_equal(got.v[k++], w);
            free(w);
        }
    }
    for (size_t i = 0; i < ARRAY_SIZE(hostile); i++) {
        if (k >= got.n || strcmp(got.v[k], hostile[i]) != 0) {
            fail_msg("argument %zu: want '%s', got '%s'",
                     i,
                     hostile[i],
                     k < got.n ? got.v[k] : "(missing)");
        }
        k++;
    }
    assert_true(k + 5 <= got.n);
    assert_string_equal(got.v[k++], "--env--");
    assert_string_equal(got.v[k++], "FOO=x'y $(z) `w` \"q\"\nline2\\");
    assert_string_equal(got.v[k++], "KEEP=kept value $x");
    assert_string_equal(got.v[k++], "DROP=(unset)");
    assert_string_equal(got.v[k++], "EMPTY=");
    assert_int_equal(k, got.n);

    free(s);
    strbuf_release(&out);
    strvec_clear(&got);
    strvec_clear(&opts);
}

static void
test_round_trip_plain(void **state)
{
    (void)state;
    round_trip(0, NULL, NULL);
}

static void
test_round_trip_sudo(void **state)
{
    static const char *const opts[] = {
        "--preserve-env=A B", "-u", "it's", NULL};

    (void)state;
    round_trip(1, NULL, NULL);
    round_trip(1, "pw", opts);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden),
        cmocka_unit_test(test_elevates),
        cmocka_unit_test(test_invalid),
        cmocka_unit_test(test_round_trip_plain),
        cmocka_unit_test(test_round_trip_sudo),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}

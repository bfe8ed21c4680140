/* test_generations.c: parsing and printing generation listings, and the
 * listing script itself (its argv, and run) against fake profile
 * directories. */
#include "testutil.h"

#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "crebuild/generations.h"
#include "crebuild/host.h"
#include "crebuild/strbuf.h"
#include "crebuild/strvec.h"
#include "crebuild/util.h"

static const char listing[] =
    "3\t1700000300\t1\t26.05.test-b\t6.1.0-test\trev3\textra web\n"
    "1\t1700000100\t0\tUnknown\tUnknown\tUnknown\t\n"
    "2\t1700000200\t0\t26.05.test-a\t6.1.0-test\tUnknown\t\n";

static void
test_parse(void **state)
{
    struct generation_list l;

    (void)state;
    assert_int_equal(generations_parse(listing, &l), 0);
    assert_int_equal(l.n, 3);
    assert_int_equal(l.g[0].id, 3);
    assert_true(l.g[0].current);
    assert_int_equal(l.g[0].n_specialisations, 2);
    assert_string_equal(l.g[0].specialisations[1], "web");
    assert_int_equal(l.g[1].id, 2);
    assert_int_equal(l.g[2].id, 1);
    assert_int_equal(generations_previous(&l)->id, 2);
    generations_release(&l);
}

static void
test_malformed(void **state)
{
    static const char *const bad[] = {"x\t1\t0\ta\tb\tc\t\n",
                                      "1\t1\t2\ta\tb\tc\t\n",
                                      "1\t1\t0\ta\n",
                                      "1\t-5\t0\ta\tb\tc\t\n"};
    struct generation_list l;

    (void)state;
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        assert_int_equal(generations_parse(bad[i], &l), -1);
    }
    assert_int_equal(generations_parse("", &l), 0);
    assert_int_equal(l.n, 0);
    assert_null(generations_previous(&l));
}

static void
test_print(void **state)
{
    struct generation_list l;
    char *buf = NULL;
    size_t len = 0;

    (void)state;
    setenv("TZ", "UTC", 1);
    tzset();
    assert_int_equal(generations_parse(listing, &l), 0);
    FILE *f = open_memstream(&buf, &len);
    generations_print_table(&l, f);
    fclose(f);
    assert_string_equal(
        buf,
        "Generation  Build-date           NixOS version  Kernel      "
        "Configuration Revision  Specialisation    Current\n"
        "3           2023-11-14 22:18:20  26.05.test-b   6.1.0-test  rev3"
        "                    ['extra', 'web']  True\n"
        "2           2023-11-14 22:16:40  26.05.test-a   6.1.0-test  Unknown"
        "                 []                False\n"
        "1           2023-11-14 22:15:00  Unknown        Unknown     Unknown"
        "                 []                False\n");
    free(buf);
    buf = NULL;
    f = open_memstream(&buf, &len);
    generations_print_json(&l, f);
    fclose(f);
    assert_non_null(strstr(buf, "\"generation\":\t3"));
    assert_non_null(strstr(buf, "\"specialisations\":\t[\"extra\", \"web\"]"));
    assert_non_null(strstr(buf, "\"current\":\ttrue"));
    /* key order as nixos-rebuild */
    const char *k[] = {"generation",
                       "date",
                       "nixosVersion",
                       "kernelVersion",
                       "configurationRevision",
                       "specialisations",
                       "current"};
    const char *prev = buf;
    for (size_t i = 0; i < ARRAY_SIZE(k); i++) {
        const char *at = strstr(prev, k[i]);
        assert_non_null(at);
        prev = at;
    }
    free(buf);
    generations_release(&l);
}

/* Run the real script over a fake profile directory. */
static void
test_script(void **state)
{
    char dir[] = "/tmp/crebuild-gen-XXXXXX";
    struct host *h = host_local_new(NULL);
    struct generation_list l;

    (void)state;
    assert_non_null(mkdtemp(dir));
    char *g1 = xasprintf("%s/g1", dir), *g2 = xasprintf("%s/g2", dir);
    char *mods = xasprintf("%s/g2/kernel-modules/lib/modules/6.1.0-x", dir);
    char *spec = xasprintf("%s/g2/specialisation/extra", dir);
    char *cmd = xasprintf("mkdir -p %s %s %s && echo 26.05.x > %s/nixos-version"
                          " && ln -s %s %s/system-1-link && ln -s %s "
                          "%s/system-2-link && ln -s system-2-link %s/system "
                          "&& ln -s %s %s/system-x-link",
                          g1,
                          mods,
                          spec,
                          g2,
                          g1,
                          dir,
                          g2,
                          dir,
                          dir,
                          g1,
                          dir);
    assert_int_equal(system(cmd), 0);
    char *profile = xasprintf("%s/system", dir);
    assert_int_equal(generations_read(h, profile, &l), 0);
    assert_int_equal(l.n, 2);
    assert_int_equal(l.g[0].id, 2);
    assert_true(l.g[0].current);
    assert_string_equal(l.g[0].nixos_version, "26.05.x");
    assert_string_equal(l.g[0].kernel_version, "6.1.0-x");
    assert_int_equal(l.g[0].n_specialisations, 1);
    assert_string_equal(l.g[1].nixos_version, "Unknown");
    generations_release(&l);

    char *missing = xasprintf("%s/nope", dir);
    assert_int_not_equal(generations_read(h, missing, &l), 0);

    char *rm = xasprintf("rm -rf %s", dir);
    assert_int_equal(system(rm), 0);
    free(rm);
    free(missing);
    free(profile);
    free(cmd);
    free(spec);
    free(mods);
    free(g1);
    free(g2);
    host_free(h);
}

/* A profile name with every shell metacharacter: glob patterns (as a
 * pattern, "p[1]*" does not match itself), quotes, command substitutions,
 * blanks, a newline. */
#define HOSTILE "p[1]* x;$(touch pwned)`touch pwned`'\"?\\\t\n"

/* The script's argv: sh -c SCRIPT, $0 a name for messages, $1 the profile
 * as one word, verbatim; appended after what the vector holds. */
static void
test_script_argv(void **state)
{
    struct strvec v = STRVEC_INIT;

    (void)state;
    generations_script_argv("/nix/var/nix/profiles/" HOSTILE, &v);
    assert_int_equal(v.n, 5);
    assert_string_equal(v.v[0], "/bin/sh");
    assert_string_equal(v.v[1], "-c");
    assert_non_null(strstr(v.v[2], "p=$1;"));
    assert_string_equal(v.v[3], "get-generations");
    assert_string_equal(v.v[4], "/nix/var/nix/profiles/" HOSTILE);
    strvec_clear(&v);
    strvec_pushl(&v, "sudo", "-n", NULL);
    generations_script_argv("/p", &v);
    assert_int_equal(v.n, 7);
    assert_string_equal(v.v[0], "sudo");
    assert_string_equal(v.v[2], "/bin/sh");
    assert_string_equal(v.v[6], "/p");
    strvec_clear(&v);
}

/* Run the script's argv on the local host: exit status, stdout in *out. */
static int
run_script(const char *profile, struct strbuf *out)
{
    struct host *h = host_local_new(NULL);
    struct strvec argv = STRVEC_INIT;
    struct host_cmd cmd = {0};
    int status = -1;

    generations_script_argv(profile, &argv);
    cmd.argv = &argv;
    cmd.out = out;
    assert_int_equal(host_run(h, &cmd, &status), 0);
    strvec_clear(&argv);
    host_free(h);
    return status;
}

/* The real script over a profile with a hostile name, run from the
 * argv: it lists exactly that profile's numbered generations, runs nothing
 * from the name, and exits 2 for a profile that does not exist. */
static void
test_script_hostile_profile(void **state)
{
    char dir[] = "/tmp/crebuild-gen-XXXXXX";
    char *cwd = getcwd(NULL, 0);
    struct strbuf out = STRBUF_INIT;
    struct stat st1, st3;

    (void)state;
    assert_non_null(mkdtemp(dir));
    assert_int_equal(chdir(dir), 0); /* where `touch pwned` would land */
    char *g1 = xasprintf("%s/g1 " HOSTILE, dir);
    char *g3 = xasprintf("%s/g3", dir);
    char *sw = xasprintf("%s/g3/sw", dir);
    char *swbin = xasprintf("%s/g3/sw/bin", dir);
    char *rev = xasprintf("%s/g3/sw/bin/nixos-version", dir);
    char *ver = xasprintf("%s/g3/nixos-version", dir);
    char *profile = xasprintf("%s/" HOSTILE, dir);
    char *l1 = xasprintf("%s/" HOSTILE "-1-link", dir);
    char *l3 = xasprintf("%s/" HOSTILE "-3-link", dir);
    char *bad = xasprintf("%s/" HOSTILE "-x1-link", dir);
    assert_int_equal(mkdir(g1, 0755), 0);
    assert_int_equal(mkdir(g3, 0755), 0);
    assert_int_equal(mkdir(sw, 0755), 0);
    assert_int_equal(mkdir(swbin, 0755), 0);
    write_test_file(ver, "26.05.h\n", 0644);
    write_test_file(rev,
                    "#!/bin/sh\n[ \"$1\" = --configuration-revision ] && "
                    "echo 'rev $(x)'\n",
                    0755);
    assert_int_equal(symlink(g1, l1), 0);
    assert_int_equal(symlink(g3, l3), 0);
    assert_int_equal(symlink(g3, bad), 0);
    assert_int_equal(symlink(HOSTILE "-3-link", profile), 0);
    assert_int_equal(lstat(l1, &st1), 0);
    assert_int_equal(lstat(l3, &st3), 0);

    assert_int_equal(run_script(profile, &out), 0);
    char *want = xasprintf("1\t%lld\t0\tUnknown\tUnknown\tUnknown\t\n"
                           "3\t%lld\t1\t26.05.h\tUnknown\trev $(x)\t\n",
                           (long long)st1.st_mtime,
                           (long long)st3.st_mtime);
    assert_string_equal(out.buf, want);
    assert_int_equal(access("pwned", F_OK), -1);

    /* A neighbour that does not exist: exit 2, nothing listed. */
    char *missing = xasprintf("%s/" HOSTILE "-gone", dir);
    strbuf_reset(&out);
    assert_int_equal(run_script(missing, &out), 2);
    assert_string_equal(out.buf, "");
    assert_int_equal(access("pwned", F_OK), -1);

    char *rm = xasprintf("rm -rf %s", dir);
    assert_int_equal(chdir(cwd), 0);
    assert_int_equal(system(rm), 0);
    free(rm);
    free(missing);
    free(want);
    free(bad);
    free(l3);
    free(l1);
    free(profile);
    free(ver);
    free(rev);
    free(swbin);
    free(sw);
    free(g3);
    free(g1);
    free(cwd);
    strbuf_release(&out);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_print),
        cmocka_unit_test(test_script),
        cmocka_unit_test(test_script_argv),
        cmocka_unit_test(test_script_hostile_profile),
    };
    return cmocka_run_group_tests_name("generations", tests, NULL, NULL);
}

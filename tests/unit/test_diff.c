/* test_diff.c: store path names, Nix version order, the closure query's
 * output, and the package diff of the test flake's alpha -> beta. */
#include "testutil.h"

#include <limits.h>

#include <sys/stat.h>
#include <unistd.h>

#include "crebuild/diff.h"
#include "crebuild/host.h"
#include "crebuild/log.h"
#include "crebuild/strvec.h"
#include "crebuild/util.h"

struct fixture {
    const char *path;
    unsigned long long nar_size;
};

/* The closures of tests/integration/flake's alpha and beta (salt ""), as
 * `nix-store -qR` and `nix-store -q --size` print them with Nix 2.8.
 * alpha's specialisation "extra" brings cowsay and a second system-path. */
static const struct fixture alpha[] = {
    {"/nix/store/4syysy4bqgp4hq98lwlgbfg1cd678ql4-linux-6.1.0-test", 1216},
    {"/nix/store/irinazsx45pdcjpz4xlf4vm1lx862i6d-jq-1.6", 2144},
    {"/nix/store/lpqjb8790jigcn4rkwyx1rrqp0m128xc-cowsay-3.04", 2472},
    {"/nix/store/m91hmm1dwj8h3r66kqisbdm3wawk529w-hello-2.12", 2408},
    {"/nix/store/nmvvk6f16s41fyv32cdzyjjsvhq83qhf-tree-2.1.0", 2408},
    {"/nix/store/ismk9a5w2a4k9sa5mixb4p5n55srwavy-system-path", 1952},
    {"/nix/store/078wxzwxb2l0r1pdrz0pca06a0n9msjg-nixos-system-alpha-extra-"
     "26.05.test-alpha-extra",
     3808},
    {"/nix/store/63c2ji6b8i426mvvjxqgqc10c7z7ffdv-system-path", 1672},
    {"/nix/store/3ds82ggsp5nk3414xx4309r287558i0i-nixos-system-alpha-26.05."
     "test-alpha",
     4064},
};

static const struct fixture beta[] = {
    {"/nix/store/4syysy4bqgp4hq98lwlgbfg1cd678ql4-linux-6.1.0-test", 1216},
    {"/nix/store/jx44mql53w5d3g8dan929vsxnbya6ird-jq-1.7", 2144},
    {"/nix/store/lpqjb8790jigcn4rkwyx1rrqp0m128xc-cowsay-3.04", 2472},
    {"/nix/store/xij10gh2lj826pyrckgnakhyx8gafkqh-hello-2.12.1", 2536},
    {"/nix/store/jma8yz2p2y4ih6kx8naibqjrqpjq2x8q-system-path", 1712},
    {"/nix/store/lwnldqw28ycqzxgc3p9b4j4kl7vjr0vs-nixos-system-beta-26.05."
     "test-beta",
     3784},
};

static void
load(struct diff_closure *c, const struct fixture *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        diff_closure_add(c, p[i].path, p[i].nar_size);
    }
}

static char *
printed(const struct diff_result *r)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);

    assert_non_null(f);
    diff_print(r, f);
    fclose(f);
    return buf;
}

static void
test_name_parse(void **state)
{
    static const struct {
        const char *in, *pname, *version, *output;
    } rows[] = {
        {"/nix/store/xij10gh2lj826pyrckgnakhyx8gafkqh-hello-2.12.1",
         "hello",
         "2.12.1",
         ""},
        {"/nix/store/4syysy4bqgp4hq98lwlgbfg1cd678ql4-linux-6.1.0-test",
         "linux",
         "6.1.0-test",
         ""},
        {"/nix/store/jma8yz2p2y4ih6kx8naibqjrqpjq2x8q-system-path",
         "system-path",
         "",
         ""},
        {"/nix/store/3ds82ggsp5nk3414xx4309r287558i0i-nixos-system-alpha-26.05."
         "test-alpha",
         "nixos-system-alpha",
         "26.05.test-alpha",
         ""},
        {"/nix/store/0z2cf8naams4mbi8z0af0hc6zgq41pdr-openssl-3.0.12-dev",
         "openssl",
         "3.0.12",
         "dev"},
        {"/nix/store/0z2cf8naams4mbi8z0af0hc6zgq41pdr-hello-2.12-man",
         "hello",
         "2.12",
         "man"},
        {"/nix/store/0z2cf8naams4mbi8z0af0hc6zgq41pdr-util-linux-minimal-2.39."
         "2-lib",
         "util-linux-minimal",
         "2.39.2",
         "lib"},
        {"/nix/store/0z2cf8naams4mbi8z0af0hc6zgq41pdr-glibc-2.38-44-bin",
         "glibc",
         "2.38-44",
         "bin"},
        {"/nix/store/0z2cf8naams4mbi8z0af0hc6zgq41pdr-python3.11-requests-2."
         "31.0-dist",
         "python3.11-requests",
         "2.31.0",
         "dist"},
        {"/nix/store/0z2cf8naams4mbi8z0af0hc6zgq41pdr-unit-dbus.service",
         "unit-dbus.service",
         "",
         ""},
        {"/nix/store/0z2cf8naams4mbi8z0af0hc6zgq41pdr-nixos-manual-html",
         "nixos-manual-html",
         "",
         ""},
        /* builtins.parseDrvName: the first '-' not followed by a letter. */
        {"/nix/store/0z2cf8naams4mbi8z0af0hc6zgq41pdr-font-bh-75dpi-1.0.3",
         "font-bh",
         "75dpi-1.0.3",
         ""},
        {"/nix/store/0z2cf8naams4mbi8z0af0hc6zgq41pdr-foo-_bar",
         "foo",
         "_bar",
         ""},
        {"hello-2.12", "hello", "2.12", ""},
        {"man", "man", "", ""},
        {"foo-", "foo-", "", ""},
        {"-dev", "-dev", "", ""},
        /* 32 letters + '-' but not Nix base-32 (has 'e'): not a hash. */
        {"/x/eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee-1.0",
         "eeeeeeeeeeeeeeeeeeeeeeeeeee"
         "eeeee",
         "1.0",
         ""},
    };
    char *p, *v, *o;

    (void)state;
    for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
        assert_int_equal(diff_name_parse(rows[i].in, &p, &v, &o), 0);
        assert_string_equal(p, rows[i].pname);
        assert_string_equal(v, rows[i].version);
        assert_string_equal(o, rows[i].output);
        free(p);
        free(v);
        free(o);
    }
    assert_int_equal(
        diff_name_parse(
            "/nix/store/0z2cf8naams4mbi8z0af0hc6zgq41pdr-leaf-a.drv",
            &p,
            &v,
            &o),
        -1);
    /* Outputs not wanted. */
    assert_int_equal(diff_name_parse("jq-1.7", &p, NULL, NULL), 0);
    assert_string_equal(p, "jq");
    free(p);
}

/* The examples of Nix's manual for builtins.compareVersions, and more. */
static void
test_version_cmp(void **state)
{
    static const struct {
        const char *a, *b;
        int cmp;
    } rows[] = {
        {"1.0", "2.3", -1},
        {"2.1", "2.3", -1},
        {"2.3", "2.3", 0},
        {"2.5", "2.3", 1},
        {"3.1", "2.3", 1},
        {"2.3.1", "2.3", 1},
        {"2.3.1", "2.3a", 1},
        {"2.3pre1", "2.3", -1},
        {"2.3pre3", "2.3pre12", -1},
        {"2.3a", "2.3c", -1},
        {"2.3pre1", "2.3c", -1},
        {"2.3pre1", "2.3q", -1},
        {"2.12", "2.12.1", -1},
        {"2.12.1", "2.12", 1},
        {"1.6", "1.7", -1},
        {"1.10", "1.9", 1},
        {"1.0", "1.00", 0},
        {"1-2", "1.2", 0},
        {"", "", 0},
        {"", "1", -1},
        {"26.05.test-alpha", "26.05.test-beta", -1},
        /* digit runs longer than any integer type */
        {"1.99999999999999999999999", "1.9", 1},
        {"1.00000000000000000000002", "1.1", 1},
    };

    (void)state;
    for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
        int c = diff_version_cmp(rows[i].a, rows[i].b);
        int back = diff_version_cmp(rows[i].b, rows[i].a);
        c = c < 0 ? -1 : c > 0;
        back = back < 0 ? -1 : back > 0;
        if (c != rows[i].cmp || back != -rows[i].cmp) {
            fail_msg("compare '%s' '%s': %d/%d, want %d",
                     rows[i].a,
                     rows[i].b,
                     c,
                     back,
                     rows[i].cmp);
        }
    }
}

static void
test_format_size(void **state)
{
    static const struct {
        double bytes;
        int sign;
        const char *want;
    } rows[] = {
        {0, 0, "0 B"},
        {0, 1, "+0 B"},
        {512, 0, "512 B"},
        {-512, 1, "-512 B"},
        {1023, 0, "1023 B"},
        {1024, 0, "1.0 KiB"},
        {1536, 1, "+1.5 KiB"},
        {47815065.6, 0, "45.6 MiB"},
        {-1468006.4, 1, "-1.4 MiB"},
        {3.5 * 1024 * 1024 * 1024, 0, "3.5 GiB"},
        {2.0 * 1024 * 1024 * 1024 * 1024, 0, "2.0 TiB"},
    };
    char buf[32];

    (void)state;
    for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
        assert_string_equal(
            diff_format_size(rows[i].bytes, rows[i].sign, buf, sizeof(buf)),
            rows[i].want);
    }
}

static void
test_closure_parse(void **state)
{
    struct diff_closure c = DIFF_CLOSURE_INIT;
    static const char *const bad[] = {
        "",
        "--\n",
        "/nix/store/a\n/nix/store/b\n",        /* no separator */
        "/nix/store/a\n--\n1\n2\n",            /* more sizes */
        "/nix/store/a\n/nix/store/b\n--\n1\n", /* fewer sizes */
        "/nix/store/a\n--\nx\n",               /* not a number */
        "/nix/store/a\n--\n-1\n",              /* negative */
        "nix/store/a\n--\n1\n",                /* relative */
        "/nix/store/a b\n--\n1\n",             /* space */
        "/nix/store/\x1b[31mred\n--\n1\n",     /* terminal escape */
        "/nix/store/a\n--\n123456789012345678901234567890123\n",
    };

    (void)state;
    assert_int_equal(diff_closure_parse("/nix/store/aaa-x-1\n/nix/store/"
                                        "bbb-y\n--\n10\n20\n",
                                        &c),
                     0);
    assert_int_equal(c.n, 2);
    assert_string_equal(c.paths[0].path, "/nix/store/aaa-x-1");
    assert_int_equal(c.paths[0].nar_size, 10);
    assert_string_equal(c.paths[1].path, "/nix/store/bbb-y");
    assert_int_equal(c.paths[1].nar_size, 20);
    /* No final newline; the parse replaces what was there. */
    assert_int_equal(diff_closure_parse("/nix/store/q?=+_.-1\n--\n"
                                        "18446744073709551615",
                                        &c),
                     0);
    assert_int_equal(c.n, 1);
    assert_true(c.paths[0].nar_size == 18446744073709551615ULL);
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        if (diff_closure_parse(bad[i], &c) != CR_ENIX) {
            fail_msg("accepted bad input %zu", i);
        }
        assert_int_equal(c.n, 0);
        assert_null(c.paths);
    }
    diff_closure_release(&c);
}

/* Sizes as big as a store's database may claim: the per-package size
 * change saturates instead of overflowing (found by fuzz_diff). */
static void
test_huge_size_delta(void **state)
{
    struct diff_closure a = DIFF_CLOSURE_INIT, b = DIFF_CLOSURE_INIT;
    struct diff_result r;

    (void)state;
    diff_closure_add(
        &a, "/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-foo-1.0", 3);
    diff_closure_add(
        &b, "/nix/store/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-foo-2.0", ULLONG_MAX);
    diff_compute(&a, &b, &r);
    assert_int_equal(r.n, 1);
    assert_true(r.changes[0].size_delta == LLONG_MAX);
    diff_result_release(&r);
    diff_compute(&b, &a, &r);
    assert_int_equal(r.n, 1);
    assert_true(r.changes[0].size_delta == LLONG_MIN);
    diff_result_release(&r);
    diff_closure_release(&a);
    diff_closure_release(&b);
}

static void
test_alpha_to_beta(void **state)
{
    struct diff_closure a = DIFF_CLOSURE_INIT, b = DIFF_CLOSURE_INIT;
    struct diff_result r;
    char *out;

    (void)state;
    load(&a, alpha, ARRAY_SIZE(alpha));
    load(&b, beta, ARRAY_SIZE(beta));
    diff_compute(&a, &b, &r);
    assert_int_equal(r.n, 6);
    assert_int_equal(r.before_paths, 9);
    assert_int_equal(r.after_paths, 6);
    assert_int_equal(r.before_bytes, 22144);
    assert_int_equal(r.after_bytes, 13864);
    assert_string_equal(r.changes[0].pname, "hello");
    assert_int_equal(r.changes[0].kind, DIFF_UPGRADED);
    assert_int_equal(r.changes[0].size_delta, 128);
    assert_string_equal(r.changes[1].pname, "jq");
    assert_int_equal(r.changes[1].kind, DIFF_UPGRADED);
    assert_int_equal(r.changes[1].size_delta, 0);
    assert_int_equal(r.changes[2].kind, DIFF_REMOVED);
    assert_int_equal(r.changes[3].kind, DIFF_REMOVED);
    assert_int_equal(r.changes[4].kind, DIFF_ADDED);
    assert_string_equal(r.changes[5].pname, "tree");
    assert_int_equal(r.changes[5].kind, DIFF_REMOVED);
    assert_int_equal(r.changes[5].size_delta, -2408);
    out = printed(&r);
    assert_string_equal(
        out,
        "[U.] hello                     2.12 \xe2\x86\x92 2.12.1\n"
        "[U.] jq                        1.6 \xe2\x86\x92 1.7\n"
        "[R-] nixos-system-alpha        26.05.test-alpha\n"
        "[R-] nixos-system-alpha-extra  26.05.test-alpha-extra\n"
        "[A+] nixos-system-beta         26.05.test-beta\n"
        "[R-] tree                      2.1.0\n"
        "Closure size: 9 paths (21.6 KiB) \xe2\x86\x92 6 paths (13.5 KiB), "
        "-3 paths, -8.1 KiB\n");
    free(out);
    diff_result_release(&r);

    /* And back: downgrades, tree comes back. */
    diff_compute(&b, &a, &r);
    out = printed(&r);
    assert_string_equal(
        out,
        "[D.] hello                     2.12.1 \xe2\x86\x92 2.12\n"
        "[D.] jq                        1.7 \xe2\x86\x92 1.6\n"
        "[A+] nixos-system-alpha        26.05.test-alpha\n"
        "[A+] nixos-system-alpha-extra  26.05.test-alpha-extra\n"
        "[R-] nixos-system-beta         26.05.test-beta\n"
        "[A+] tree                      2.1.0\n"
        "Closure size: 6 paths (13.5 KiB) \xe2\x86\x92 9 paths (21.6 KiB), "
        "+3 paths, +8.1 KiB\n");
    free(out);
    diff_result_release(&r);

    /* Against itself: nothing. */
    diff_compute(&a, &a, &r);
    assert_int_equal(r.n, 0);
    out = printed(&r);
    assert_string_equal(out,
                        "No package changes.\n"
                        "Closure size: 9 paths (21.6 KiB) \xe2\x86\x92 9 "
                        "paths (21.6 KiB), +0 paths, +0 B\n");
    free(out);
    diff_result_release(&r);
    diff_closure_release(&a);
    diff_closure_release(&b);
}

#define H "/nix/store/0z2cf8naams4mbi8z0af0hc6zgq41pdr-"

/* Outputs collapse, several versions, unversioned paths, .drv files. */
static void
test_grouping(void **state)
{
    static const struct fixture before[] = {
        {H "hello-2.12", 100},
        {H "hello-2.12-man", 10},
        {H "openssl-3.0.12", 1000},
        {H "openssl-3.0.12-dev", 100},
        {H "python3-3.11.8", 5},
        {H "python3-3.12.2", 5},
        {H "multi-1", 1},
        {H "multi-5", 1},
        {H "more-1.0", 1},
        {H "etc", 7},
        {H "hello-2.12.drv", 4096},
    };
    static const struct fixture after[] = {
        {H "hello-2.13-man", 10},
        {H "hello-2.13", 101},
        {H "python3-3.12.3", 5},
        {H "python3-3.11.8", 5},
        {H "multi-3", 1},
        {H "more-1.0", 1},
        {H "more-2.0", 1},
        {H "etc", 8},
        {H "unit-foo.service", 3},
        {H "newthing-0.1.drv", 1},
    };
    struct diff_closure a = DIFF_CLOSURE_INIT, b = DIFF_CLOSURE_INIT;
    struct diff_result r;
    char *out;

    (void)state;
    load(&a, before, ARRAY_SIZE(before));
    load(&b, after, ARRAY_SIZE(after));
    diff_compute(&a, &b, &r);
    out = printed(&r);
    assert_string_equal(
        out,
        "[U.] hello             2.12 \xe2\x86\x92 2.13\n"
        "[C.] more              1.0 \xe2\x86\x92 1.0, 2.0\n"
        "[C.] multi             1, 5 \xe2\x86\x92 3\n"
        "[R-] openssl           3.0.12\n"
        "[U.] python3           3.11.8, 3.12.2 \xe2\x86\x92 3.11.8, "
        "3.12.3\n"
        "[A+] unit-foo.service  <none>\n"
        "Closure size: 11 paths (5.2 KiB) \xe2\x86\x92 10 paths (136 B), "
        "-1 path, -5.1 KiB\n");
    assert_int_equal(r.changes[0].n_before, 1);
    assert_int_equal(r.changes[0].size_delta, 1);
    assert_int_equal(r.changes[3].size_delta, -1100);
    free(out);
    diff_result_release(&r);

    /* One path each side: singular. */
    struct diff_closure one = DIFF_CLOSURE_INIT, two = DIFF_CLOSURE_INIT;
    diff_closure_add(&one, H "hello-2.12", 2048);
    diff_closure_add(&two, H "hello-2.12", 2048);
    diff_closure_add(&two, H "cowsay-3.04", 1024);
    diff_compute(&two, &one, &r);
    out = printed(&r);
    assert_string_equal(out,
                        "[R-] cowsay  3.04\n"
                        "Closure size: 2 paths (3.0 KiB) \xe2\x86\x92 1 "
                        "path (2.0 KiB), -1 path, -1.0 KiB\n");
    free(out);
    diff_result_release(&r);
    diff_closure_release(&one);
    diff_closure_release(&two);

    /* A first deploy: nothing before. */
    diff_closure_release(&a);
    diff_compute(&a, &b, &r);
    assert_int_equal(r.n, 6);
    for (size_t i = 0; i < r.n; i++) {
        assert_int_equal(r.changes[i].kind, DIFF_ADDED);
    }
    diff_result_release(&r);
    diff_closure_release(&b);
}

/* diff_closure_read through the local host, with a fake nix-store first in
 * PATH that answers like Nix 2.8 for the alpha closure. */
static void
test_closure_read(void **state)
{
    char dir[] = "/tmp/crebuild-diff-XXXXXX";
    struct host *h = host_local_new(NULL);
    struct diff_closure c = DIFF_CLOSURE_INIT;
    char *log = NULL;
    size_t loglen = 0;
    FILE *logf = open_memstream(&log, &loglen);
    const char *oldpath = getenv("PATH");
    char *savepath = xstrdup(oldpath ? oldpath : "/usr/bin:/bin");

    (void)state;
    assert_non_null(mkdtemp(dir));
    char *fake = xasprintf("%s/nix-store", dir);
    char *sys = xasprintf("%s/system", dir);
    char *calls = xasprintf("%s/calls", dir);
    FILE *f = fopen(fake, "w");
    assert_non_null(f);
    fprintf(f,
            "#!/bin/sh\n"
            "echo \"$*\" >> %s\n"
            "case \"$1 $2\" in\n"
            "'--query --requisites')\n"
            "  [ \"$3\" = %s ] || { echo \"error: bad $3\" >&2; exit 1; }\n",
            calls,
            sys);
    for (size_t i = 0; i < ARRAY_SIZE(alpha); i++) {
        fprintf(f, "  echo %s\n", alpha[i].path);
    }
    fprintf(f,
            "  ;;\n'--query --size')\n  shift 2\n"
            "  for p; do case $p in\n");
    for (size_t i = 0; i < ARRAY_SIZE(alpha); i++) {
        fprintf(f, "  %s) echo %llu;;\n", alpha[i].path, alpha[i].nar_size);
    }
    fprintf(f,
            "  *) exit 1;; esac; done;;\n"
            "*) echo \"error: path is not valid\" >&2; exit 1;;\n"
            "esac\n");
    fclose(f);
    assert_int_equal(chmod(fake, 0755), 0);
    f = fopen(sys, "w");
    assert_non_null(f);
    fclose(f);
    char *path = xasprintf("%s:%s", dir, savepath);
    setenv("PATH", path, 1);
    log_set_stream(logf);

    assert_int_equal(diff_closure_read(h, sys, &c), 0);
    assert_false(c.missing);
    assert_int_equal(c.n, ARRAY_SIZE(alpha));
    for (size_t i = 0; i < c.n; i++) {
        assert_string_equal(c.paths[i].path, alpha[i].path);
        assert_int_equal(c.paths[i].nar_size, alpha[i].nar_size);
    }

    /* A path that does not exist: an empty closure, flagged. */
    char *nothere = xasprintf("%s/nothere", dir);
    assert_int_equal(diff_closure_read(h, nothere, &c), 0);
    assert_true(c.missing);
    assert_int_equal(c.n, 0);

    /* nix-store fails: CR_ENIX, nix's message logged. */
    char *other = xasprintf("%s/calls", dir);
    assert_int_equal(diff_closure_read(h, other, &c), CR_ENIX);
    assert_int_equal(c.n, 0);
    assert_false(c.missing);
    fflush(logf);
    assert_non_null(strstr(log, "error: bad"));

    /* One query for the closure, then sizes in one batch. */
    f = fopen(calls, "r");
    assert_non_null(f);
    char line[4096];
    int n = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        n++;
    }
    fclose(f);
    assert_int_equal(n, 3); /* requisites, size (all 9 paths), requisites */

    /* The argv, for --print-plan. */
    struct strvec argv = STRVEC_INIT;
    diff_closure_argv("/run/current-system", &argv);
    assert_int_equal(argv.n, 5);
    assert_string_equal(argv.v[0], "/bin/sh");
    assert_string_equal(argv.v[4], "/run/current-system");
    strvec_clear(&argv);

    setenv("PATH", savepath, 1);
    log_set_stream(NULL);
    fclose(logf);
    free(log);
    char *rm = xasprintf("rm -rf %s", dir);
    assert_int_equal(system(rm), 0);
    free(rm);
    free(path);
    free(other);
    free(nothere);
    free(fake);
    free(sys);
    free(calls);
    free(savepath);
    diff_closure_release(&c);
    host_free(h);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_name_parse),
        cmocka_unit_test(test_version_cmp),
        cmocka_unit_test(test_format_size),
        cmocka_unit_test(test_closure_parse),
        cmocka_unit_test(test_alpha_to_beta),
        cmocka_unit_test(test_huge_size_delta),
        cmocka_unit_test(test_grouping),
        cmocka_unit_test(test_closure_read),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

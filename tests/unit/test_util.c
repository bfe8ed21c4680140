/* test_util.c: strbuf, strvec, shquote, flakeref, parse_uint. */
#include "testutil.h"

#include <pthread.h>
#include <signal.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "crebuild/flakeref.h"
#include "crebuild/log.h"
#include "crebuild/proc.h"
#include "crebuild/shquote.h"
#include "crebuild/strbuf.h"
#include "crebuild/strvec.h"
#include "crebuild/util.h"

static void
test_strbuf(void **state)
{
    struct strbuf sb = STRBUF_INIT;

    (void)state;
    assert_string_equal(sb.buf, "");
    strbuf_addstr(&sb, "hello");
    strbuf_addch(&sb, ' ');
    strbuf_addf(&sb, "%d  \n", 42);
    strbuf_rtrim(&sb);
    assert_string_equal(sb.buf, "hello 42");
    char *d = strbuf_detach(&sb);
    assert_string_equal(d, "hello 42");
    free(d);
    assert_int_equal(sb.len, 0);

    strbuf_init(&sb, 4);
    strbuf_addstr(&sb, "abcdef");
    assert_string_equal(sb.buf, "abcd");
    assert_true(sb.truncated);
    strbuf_release(&sb);
}

static void
test_strvec(void **state)
{
    struct strvec sv = STRVEC_INIT;

    (void)state;
    assert_null(sv.v[0]);
    strvec_pushl(&sv, "a", "b", NULL);
    strvec_pushf(&sv, "%s=%d", "c", 1);
    assert_int_equal(sv.n, 3);
    assert_null(sv.v[3]);
    char *j = strvec_join(&sv, " ");
    assert_string_equal(j, "a b c=1");
    free(j);
    strvec_clear(&sv);
    assert_int_equal(sv.n, 0);
}

/* Every hostile word must come back from /bin/sh as exactly itself. */
static void
test_shquote_roundtrip(void **state)
{
    static const char *const words[] = {"plain",
                                        "",
                                        "with space",
                                        "it's",
                                        "$(touch /tmp/pwned)",
                                        "`id`",
                                        "a;b",
                                        "new\nline",
                                        "\"dq\"",
                                        "back\\slash",
                                        "-leading",
                                        "..",
                                        "*",
                                        "~root",
                                        "a'b'c",
                                        "$HOME",
                                        "!x",
                                        "tab\there"};
    struct strvec argv = STRVEC_INIT;
    struct strbuf cmd = STRBUF_INIT;

    (void)state;
    strvec_pushl(&argv, "printf", "%s\\0", NULL);
    for (size_t i = 0; i < ARRAY_SIZE(words); i++) {
        strvec_push(&argv, words[i]);
    }
    shquote_argv(&cmd, &argv);

    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(p[1], 1);
        close(p[0]);
        execl("/bin/sh", "sh", "-c", cmd.buf, (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    char buf[4096];
    size_t n = 0;
    ssize_t r;
    while ((r = read(p[0], buf + n, sizeof(buf) - n)) > 0) {
        n += (size_t)r;
    }
    close(p[0]);
    int st;
    waitpid(pid, &st, 0);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    size_t off = 0;
    for (size_t i = 0; i < ARRAY_SIZE(words); i++) {
        assert_true(off < n);
        assert_string_equal(buf + off, words[i]);
        off += strlen(words[i]) + 1;
    }
    assert_int_equal(off, n);
    strvec_clear(&argv);
    strbuf_release(&cmd);
}

static void
test_flakeref(void **state)
{
    static const struct {
        const char *in, *flake, *name;
        int ok;
    } rows[] = {
        {"/path/to/flake#attr", "/path/to/flake", "attr", 1},
        {".#h", ".", "h", 1},
        {"#h", "", "h", 1},
        {".", ".", NULL, 1},
        {".#", ".", NULL, 1},
        {"git+https://h/r?ref=main#host",
         "git+https://h/r?ref=main",
         "host",
         1},
        {"a#b#c", "a#b", "c", 1},
        {"path:/x#my.host", "path:/x", "my.host", 1},
        {".#a\"b", NULL, NULL, 0},
        {".#a\\b", NULL, NULL, 0},
        {".#a\nb", NULL, NULL, 0},
    };

    (void)state;
    for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
        struct flakeref f;
        char *err = NULL;
        int rc = flakeref_parse(rows[i].in, &f, &err);
        if (!rows[i].ok) {
            assert_int_not_equal(rc, 0);
            assert_non_null(err);
            free(err);
            continue;
        }
        assert_int_equal(rc, 0);
        assert_string_equal(f.flake, rows[i].flake);
        if (rows[i].name == NULL) {
            assert_null(f.name);
        } else {
            assert_string_equal(f.name, rows[i].name);
        }
        flakeref_release(&f);
    }
    char *inst =
        flakeref_installable(".", "h", ".config.system.build.toplevel");
    assert_string_equal(inst,
                        ".#nixosConfigurations.\"h\".config.system.build."
                        "toplevel");
    free(inst);
}

static void
test_parse_uint(void **state)
{
    unsigned long long v;

    (void)state;
    assert_int_equal(parse_uint("30", 100, &v), 0);
    assert_int_equal(v, 30);
    assert_int_equal(parse_uint("101", 100, &v), -1);
    assert_int_equal(parse_uint("-1", 100, &v), -1);
    assert_int_equal(parse_uint("", 100, &v), -1);
    assert_int_equal(parse_uint("1x", 100, &v), -1);
    assert_int_equal(parse_uint(" 1", 100, &v), -1);
    assert_int_equal(parse_uint("99999999999999999999999", ~0ULL, &v), -1);
}

/* Messages from two threads (the build while logging in, the main
 * thread) come out as whole lines, never one inside another. */
#define LOG_LINES 3000

static void *
log_many(void *arg)
{
    int id = *(const int *)arg;

    for (int i = 0; i < LOG_LINES; i++) {
        log_warn("thread %d message %d, %s", id, i, "the end");
    }
    return NULL;
}

static void
test_log_whole_lines(void **state)
{
    FILE *f = tmpfile();
    pthread_t th[2];
    int ids[2] = {0, 1};
    char line[256];
    int n = 0, bad = 0;

    (void)state;
    assert_non_null(f);
    setvbuf(f, NULL, _IONBF, 0); /* as stderr: each call a write */
    log_set_stream(f);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(pthread_create(&th[i], NULL, log_many, &ids[i]), 0);
    }
    for (int i = 0; i < 2; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
    }
    log_set_stream(NULL);
    rewind(f);
    while (fgets(line, sizeof(line), f) != NULL) {
        int id, k, end = 0;

        n++;
        if (sscanf(line,
                   "warning: thread %d message %d, the end%n",
                   &id,
                   &k,
                   &end) != 2 ||
            strcmp(line + end, "\n") != 0) {
            bad++;
        }
    }
    fclose(f);
    assert_int_equal(bad, 0);
    assert_int_equal(n, 2 * LOG_LINES);
}

/* A message longer than log.c's stack buffer comes out whole too. */
static void
test_log_long_line(void **state)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    char big[3000];

    (void)state;
    assert_non_null(f);
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    log_set_stream(f);
    log_error("%s|%d", big, 42);
    log_debug("dropped at the default level");
    log_set_stream(NULL);
    fclose(f);
    assert_int_equal(len, strlen("error: ") + sizeof(big) - 1 + 4);
    assert_memory_equal(buf, "error: xxx", 10);
    assert_string_equal(buf + len - 4, "|42\n");
    free(buf);
}

/* proc_kill_watched stops the child another thread runs (the copy's
 * metadata feed, cancelled); afterwards, with the child reaped, it signals
 * nothing. */
struct watched_run {
    struct proc_watch *w;
    int rc, status;
    double seconds;
};

static void *
watched_main(void *arg)
{
    struct watched_run *wr = arg;
    struct strvec argv = STRVEC_INIT;
    struct proc_spec spec;
    struct timespec t0, t1;

    memset(&spec, 0, sizeof(spec));
    strvec_pushl(&argv, "sleep", "20", (const char *)NULL);
    spec.argv = &argv;
    spec.out_fd = -1;
    spec.err_fd = -1;
    proc_watch_thread(wr->w);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    wr->rc = proc_run(&spec, &wr->status);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    proc_watch_thread(NULL);
    wr->seconds = (double)(t1.tv_sec - t0.tv_sec) +
                  (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    strvec_clear(&argv);
    return NULL;
}

static void
test_proc_kill_watched(void **state)
{
    struct proc_watch w;
    struct watched_run wr = {&w, -1, -1, 0};
    pthread_t t;
    pid_t pid = 0;

    (void)state;
    proc_watch_init(&w);
    assert_int_equal(pthread_create(&t, NULL, watched_main, &wr), 0);
    for (int i = 0; i < 500 && pid == 0; i++) {
        pthread_mutex_lock(&w.mu);
        pid = w.pid;
        pthread_mutex_unlock(&w.mu);
        if (pid == 0) {
            usleep(10 * 1000);
        }
    }
    assert_true(pid > 0);
    proc_kill_watched(&w, SIGKILL);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(wr.rc, 0);
    assert_int_equal(wr.status, 128 + SIGKILL);
    assert_true(wr.seconds < 10);
    assert_int_equal(w.pid, 0); /* reaped: forgotten */
    proc_watch_destroy(&w);
}

/* A kill that comes before the child is started (between the thread's
 * last check of its cancel flag and its fork) stops it as it starts. */
static void
test_proc_kill_watched_early(void **state)
{
    struct proc_watch w;
    struct watched_run wr = {&w, -1, -1, 0};

    (void)state;
    proc_watch_init(&w);
    proc_kill_watched(&w, SIGKILL); /* nothing running yet */
    watched_main(&wr);
    assert_int_equal(wr.rc, 0);
    assert_int_equal(wr.status, 128 + SIGKILL);
    assert_true(wr.seconds < 10);
    assert_int_equal(w.pid, 0);
    proc_watch_destroy(&w);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strbuf),
        cmocka_unit_test(test_strvec),
        cmocka_unit_test(test_shquote_roundtrip),
        cmocka_unit_test(test_flakeref),
        cmocka_unit_test(test_parse_uint),
        cmocka_unit_test(test_log_whole_lines),
        cmocka_unit_test(test_log_long_line),
        cmocka_unit_test(test_proc_kill_watched),
        cmocka_unit_test(test_proc_kill_watched_early),
    };
    return cmocka_run_group_tests_name("util", tests, NULL, NULL);
}

/* test_health.c: URL checks against a tiny HTTP server forked by the test
 * on 127.0.0.1 (canned answers, a flaky endpoint, a slow one, redirects,
 * a refused port), command checks through the local host, retries,
 * deadlines, events and interrupts.  No external network. */
#include "testutil.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "crebuild/events.h"
#include "crebuild/health.h"
#include "crebuild/host.h"
#include "crebuild/log.h"
#include "crebuild/proc.h"
#include "crebuild/util.h"

struct fixture {
    pid_t server;
    int port;
    int refused_port; /* nothing listens there */
    char dir[32];
    struct host *local;
    char *log;
    size_t loglen;
    FILE *logf;
};

/* ---- the server -------------------------------------------------------- */

static void
send_all(int fd, const char *s, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, s, n);
        if (w <= 0) {
            return;
        }
        s += w;
        n -= (size_t)w;
    }
}

static void
reply(
    int fd, const char *status, const char *extra, const char *body, size_t len)
{
    char head[512];
    int n = snprintf(head,
                     sizeof(head),
                     "HTTP/1.1 %s\r\nContent-Length: %zu\r\n%sConnection: "
                     "close\r\n\r\n",
                     status,
                     len,
                     extra);

    send_all(fd, head, (size_t)n);
    send_all(fd, body, len);
}

static void
answer(int fd, const char *path, int *flaky, int *once)
{
    static char big[100000];
    char num[32];

    if (strcmp(path, "/ok") == 0) {
        reply(fd, "200 OK", "", "all good\n", 9);
    } else if (strcmp(path, "/err") == 0) {
        static const char body[] = "broken\x01\ttab\nline2\xff  ";
        reply(fd, "500 Internal Server Error", "", body, sizeof(body) - 1);
    } else if (strcmp(path, "/flaky") == 0) {
        if (++*flaky <= 2) {
            reply(fd, "503 Service Unavailable", "", "warming up", 10);
        } else {
            reply(fd, "200 OK", "", "ready", 5);
        }
    } else if (strcmp(path, "/once") == 0) {
        ++*once;
        reply(fd, "500 Internal Server Error", "", "no", 2);
    } else if (strcmp(path, "/hits") == 0) {
        int n = snprintf(num, sizeof(num), "%d", *once);
        reply(fd, "200 OK", "", num, (size_t)n);
    } else if (strcmp(path, "/redir") == 0) {
        reply(fd, "302 Found", "Location: /ok\r\n", "moved", 5);
    } else if (strcmp(path, "/loop") == 0) {
        reply(fd, "302 Found", "Location: /loop\r\n", "", 0);
    } else if (strcmp(path, "/nolocation") == 0) {
        reply(fd, "301 Moved Permanently", "", "gone", 4);
    } else if (strcmp(path, "/big") == 0) {
        memset(big, 'x', sizeof(big));
        reply(fd, "200 OK", "", big, sizeof(big));
    } else if (strcmp(path, "/blank") == 0) {
        reply(fd, "200 OK", "", " \r\n\t ", 5);
    } else if (strcmp(path, "/empty") == 0) {
        static const char h[] =
            "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n";
        send_all(fd, h, sizeof(h) - 1);
    } else if (strcmp(path, "/slow") == 0) {
        /* In a child, so the server goes on answering others. */
        if (fork() == 0) {
            sleep(3);
            reply(fd, "200 OK", "", "late", 4);
            _exit(0);
        }
    } else {
        reply(fd, "404 Not Found", "", "", 0);
    }
}

static void
serve(int lfd)
{
    int flaky = 0, once = 0;

    signal(SIGPIPE, SIG_IGN);
    signal(SIGCHLD, SIG_IGN);
    for (;;) {
        char req[4096], path[256];
        size_t n = 0;
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0) {
            if (errno == EINTR) {
                continue;
            }
            _exit(1);
        }
        while (n < sizeof(req) - 1) {
            ssize_t r = read(fd, req + n, sizeof(req) - 1 - n);
            if (r <= 0) {
                break;
            }
            n += (size_t)r;
            req[n] = '\0';
            if (strstr(req, "\r\n\r\n") != NULL) {
                break;
            }
        }
        req[n] = '\0';
        if (sscanf(req, "GET %255s ", path) == 1) {
            answer(fd, path, &flaky, &once);
        }
        close(fd);
    }
}

static int
listen_on_any(int *port, int do_listen)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

    assert_true(fd >= 0);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    if (do_listen) {
        assert_int_equal(listen(fd, 16), 0);
    }
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    *port = ntohs(sa.sin_port);
    return fd;
}

static int
group_setup(void **state)
{
    struct fixture *f = xcalloc(1, sizeof(*f));
    int lfd, rfd;

    lfd = listen_on_any(&f->port, 1);
    /* Bound but not listening: connections are refused. */
    rfd = listen_on_any(&f->refused_port, 0);
    f->server = fork();
    if (f->server < 0) {
        return -1;
    }
    if (f->server == 0) {
        close(rfd);
        serve(lfd);
        _exit(0);
    }
    close(lfd);
    /* Keep rfd open so that nobody else gets the port: it never listens. */
    snprintf(f->dir, sizeof(f->dir), "/tmp/crebuild-hc-XXXXXX");
    if (mkdtemp(f->dir) == NULL) {
        return -1;
    }
    f->local = host_local_new(NULL);
    f->logf = open_memstream(&f->log, &f->loglen);
    log_set_stream(f->logf);
    /* No proxy between us and 127.0.0.1, whatever the environment says. */
    setenv("no_proxy", "127.0.0.1", 1);
    setenv("NO_PROXY", "127.0.0.1", 1);
    *state = f;
    return 0;
}

static int
group_teardown(void **state)
{
    struct fixture *f = *state;
    char *rm = xasprintf("rm -rf %s", f->dir);

    kill(f->server, SIGTERM);
    waitpid(f->server, NULL, 0);
    log_set_stream(NULL);
    fclose(f->logf);
    free(f->log);
    host_free(f->local);
    if (system(rm) != 0) {
        fprintf(stderr, "cannot remove %s\n", f->dir);
    }
    free(rm);
    free(f);
    health_global_cleanup();
    return 0;
}

static char *
url(const struct fixture *f, const char *path)
{
    return xasprintf("http://127.0.0.1:%d%s", f->port, path);
}

static double
now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
expect_url(const struct fixture *f,
           const char *path,
           int want,
           const char *want_answer)
{
    char *u = url(f, path), *a = NULL;
    int rc = health_check_url(u, 5000, &a);

    if (rc != want || a == NULL ||
        strncmp(a, want_answer, strlen(want_answer)) != 0) {
        fail_msg("%s: got %d '%s', want %d '%s...'",
                 path,
                 rc,
                 a ? a : "(null)",
                 want,
                 want_answer);
    }
    free(a);
    free(u);
}

/* ---- URL checks -------------------------------------------------------- */

static void
test_url_answers(void **state)
{
    struct fixture *f = *state;

    expect_url(f, "/ok", 1, "HTTP 200: all good");
    expect_url(f, "/err", 0, "HTTP 500: broken? tab line2?");
    expect_url(f, "/redir", 1, "HTTP 200: all good");
    expect_url(f, "/loop", 0, "curl: Maximum (5) redirects followed");
    expect_url(f, "/nolocation", 0, "HTTP 301: gone");
    expect_url(f, "/empty", 1, "HTTP 204");
    expect_url(f, "/blank", 1, "HTTP 200");
    expect_url(f, "/nothing-here", 0, "HTTP 404");

    /* Exactly: no trailing blanks, no ": " without a body. */
    char *u = url(f, "/err"), *a = NULL;
    assert_int_equal(health_check_url(u, 5000, &a), 0);
    assert_string_equal(a, "HTTP 500: broken? tab line2?");
    free(a);
    free(u);
    u = url(f, "/blank");
    assert_int_equal(health_check_url(u, 5000, &a), 1);
    assert_string_equal(a, "HTTP 200");
    free(a);
    free(u);

    /* 200 bytes of a big body, then "..."; the rest is not waited for. */
    u = url(f, "/big");
    assert_int_equal(health_check_url(u, 5000, &a), 1);
    assert_int_equal(strlen(a), strlen("HTTP 200: ") + 200 + 3);
    assert_string_equal(a + strlen(a) - 4, "x...");
    free(a);
    free(u);
}

static void
test_url_refused(void **state)
{
    struct fixture *f = *state;
    char *u = xasprintf("http://127.0.0.1:%d/", f->refused_port), *a = NULL;

    assert_int_equal(health_check_url(u, 5000, &a), 0);
    assert_int_equal(
        strncmp(a, "curl: Failed to connect to 127.0.0.1 port ", 42), 0);
    assert_non_null(strstr(a, "Couldn't connect to server"));
    free(a);
    free(u);
}

static void
test_url_timeout(void **state)
{
    struct fixture *f = *state;
    char *u = url(f, "/slow"), *a = NULL;
    double t0 = now();

    assert_int_equal(health_check_url(u, 500, &a), 0);
    assert_true(now() - t0 < 2.5);
    assert_non_null(strstr(a, "curl: Operation timed out after"));
    free(a);
    free(u);
}

/* ---- command checks ---------------------------------------------------- */

static void
test_cmd_answers(void **state)
{
    struct fixture *f = *state;
    static const struct {
        const char *cmd;
        int rc;
        const char *answer;
    } rows[] = {
        {"true", 1, "exit status 0"},
        {"echo fine", 1, "exit status 0: fine"},
        {"echo out; echo 'bad thing' >&2; exit 3",
         0,
         "exit status 3: bad thing"},
        {"printf 'one\\ntwo\\n\\n  \\n'; exit 1", 0, "exit status 1: two"},
        {"echo warn >&2; echo 'last\\033[31m'", 1, "exit status 0: last?[31m"},
        {"kill -9 $$", 0, "exit status 137"},
        {"exit 7", 0, "exit status 7"},
        {"nosuchcommand-crebuild", 0, "exit status 127: "},
    };
    char *a = NULL;

    for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
        int rc = health_check_cmd(f->local, rows[i].cmd, 10, &a);
        if (rc != rows[i].rc ||
            strncmp(a, rows[i].answer, strlen(rows[i].answer)) != 0) {
            fail_msg("'%s': got %d '%s', want %d '%s'",
                     rows[i].cmd,
                     rc,
                     a,
                     rows[i].rc,
                     rows[i].answer);
        }
        free(a);
    }
}

static void
test_cmd_bounded(void **state)
{
    struct fixture *f = *state;
    char *a = NULL;

    /* 1 MB of output: captured up to 4 KiB, the answer shows 200 bytes. */
    assert_int_equal(health_check_cmd(f->local,
                                      "head -c 1000000 /dev/zero | tr '\\0' a;"
                                      " echo; echo end",
                                      10,
                                      &a),
                     1);
    assert_int_equal(strncmp(a, "exit status 0: aaaa", 19), 0);
    assert_int_equal(strlen(a), strlen("exit status 0: ") + 200 + 3);
    free(a);
}

static void
test_cmd_timeout(void **state)
{
    struct fixture *f = *state;
    char *a = NULL;
    double t0 = now();

    assert_int_equal(health_check_cmd(f->local, "sleep 30", 1, &a), 0);
    assert_true(now() - t0 < 5);
    assert_string_equal(a, "exit status 124 (timed out after 1s)");
    free(a);
}

/* ---- all together ------------------------------------------------------ */

static size_t
read_events(const char *path, cJSON **o, size_t max)
{
    FILE *fp = fopen(path, "r");
    char line[8192];
    size_t n = 0;

    assert_non_null(fp);
    while (n < max && fgets(line, sizeof(line), fp) != NULL) {
        o[n] = cJSON_Parse(line);
        assert_non_null(o[n]);
        n++;
    }
    fclose(fp);
    return n;
}

static void
test_all_pass_after_retries(void **state)
{
    struct fixture *f = *state;
    char *urls[2] = {url(f, "/flaky"), url(f, "/ok")};
    char *counter = xasprintf("%s/count", f->dir);
    char *flaky_cmd =
        xasprintf("n=$(cat %s 2>/dev/null || echo 0); echo $((n + 1)) > %s; "
                  "[ $n -ge 1 ] || { echo not yet; exit 1; }; echo up",
                  counter,
                  counter);
    char *cmds[2] = {xstrdup("true"), flaky_cmd};
    char *evpath = xasprintf("%s/events", f->dir), *err = NULL;
    struct events *ev = events_open(evpath, &err);
    struct health_result r;
    cJSON *o[16];
    double t0 = now();
    size_t n;

    assert_non_null(ev);
    assert_int_equal(health_run_all(f->local, urls, 2, cmds, 2, 20, ev, &r), 0);
    events_close(ev);
    assert_true(r.ok);
    assert_null(r.failed_check);
    assert_null(r.last_answer);
    /* /flaky needs three attempts, about a second apart. */
    assert_true(now() - t0 >= 1.8);
    assert_true(now() - t0 < 10);
    health_result_release(&r);

    n = read_events(evpath, o, ARRAY_SIZE(o));
    assert_int_equal(n, 4);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(
            cJSON_GetObjectItemCaseSensitive(o[i], "type")->valuestring,
            "check");
        assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o[i], "ok")));
    }
    /* In the order they passed: /ok, true (first round), the command
     * (second), /flaky (third). */
    assert_string_equal(
        cJSON_GetObjectItemCaseSensitive(o[0], "target")->valuestring, urls[1]);
    assert_string_equal(
        cJSON_GetObjectItemCaseSensitive(o[2], "detail")->valuestring,
        "exit status 0: up");
    assert_string_equal(
        cJSON_GetObjectItemCaseSensitive(o[2], "kind")->valuestring, "cmd");
    assert_string_equal(
        cJSON_GetObjectItemCaseSensitive(o[3], "detail")->valuestring,
        "HTTP 200: ready");
    for (size_t i = 0; i < n; i++) {
        cJSON_Delete(o[i]);
    }
    for (int i = 0; i < 2; i++) {
        free(urls[i]);
        free(cmds[i]);
    }
    free(counter);
    free(evpath);
}

static void
test_all_fail(void **state)
{
    struct fixture *f = *state;
    char *urls[1] = {url(f, "/ok")};
    char *cmds[2] = {xstrdup("echo ok"),
                     xstrdup("echo 'service down' >&2; exit 3")};
    char *evpath = xasprintf("%s/events2", f->dir), *err = NULL;
    struct events *ev = events_open(evpath, &err);
    struct health_result r;
    cJSON *o[16];
    double t0 = now();
    size_t n;

    assert_int_equal(health_run_all(f->local, urls, 1, cmds, 2, 2, ev, &r), 1);
    events_close(ev);
    assert_false(r.ok);
    assert_string_equal(r.failed_check, cmds[1]);
    assert_string_equal(r.last_answer, "exit status 3: service down");
    assert_true(now() - t0 >= 1.9);
    assert_true(now() - t0 < 6);
    health_result_release(&r);
    fflush(f->logf);
    assert_non_null(strstr(f->log,
                           "health check failed: echo 'service down' "
                           ">&2; exit 3: exit status 3: service "
                           "down"));

    /* Two passed once, the failing one reported at the deadline. */
    n = read_events(evpath, o, ARRAY_SIZE(o));
    assert_int_equal(n, 3);
    assert_true(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(o[2], "ok")));
    assert_string_equal(
        cJSON_GetObjectItemCaseSensitive(o[2], "target")->valuestring, cmds[1]);
    for (size_t i = 0; i < n; i++) {
        cJSON_Delete(o[i]);
    }
    free(urls[0]);
    free(cmds[0]);
    free(cmds[1]);
    free(evpath);
}

/* A server that never answers in time: the deadline wins. */
static void
test_all_slow(void **state)
{
    struct fixture *f = *state;
    char *urls[2] = {url(f, "/ok"), url(f, "/slow")};
    struct health_result r;
    double t0 = now();

    assert_int_equal(health_run_all(NULL, urls, 2, NULL, 0, 1, NULL, &r), 1);
    assert_true(now() - t0 < 3);
    assert_false(r.ok);
    assert_string_equal(r.failed_check, urls[1]);
    assert_non_null(strstr(r.last_answer, "timed out"));
    health_result_release(&r);
    free(urls[0]);
    free(urls[1]);
}

/* timeout 0: one attempt each, no retries. */
static void
test_all_once(void **state)
{
    struct fixture *f = *state;
    char *urls[1] = {url(f, "/once")};
    char *hits = url(f, "/hits"), *a = NULL;
    struct health_result r;

    assert_int_equal(health_run_all(NULL, urls, 1, NULL, 0, 0, NULL, &r), 1);
    assert_string_equal(r.last_answer, "HTTP 500: no");
    health_result_release(&r);
    assert_int_equal(health_check_url(hits, 5000, &a), 1);
    assert_string_equal(a, "HTTP 200: 1");
    free(a);
    free(hits);
    free(urls[0]);
}

static void
test_all_edge(void **state)
{
    struct fixture *f = *state;
    char *bad[2] = {url(f, "/ok"), xstrdup("file:///etc/passwd")};
    char *cmds[1] = {xstrdup("true")};
    struct health_result r;

    /* Nothing to check: healthy. */
    assert_int_equal(health_run_all(NULL, NULL, 0, NULL, 0, 5, NULL, &r), 0);
    assert_true(r.ok);
    health_result_release(&r);

    /* Not http(s): refused before anything runs. */
    assert_int_equal(health_run_all(NULL, bad, 2, NULL, 0, 5, NULL, &r),
                     CR_EUSAGE);
    assert_false(r.ok);
    assert_string_equal(r.failed_check, "file:///etc/passwd");
    health_result_release(&r);

    /* Commands need a target. */
    assert_int_equal(health_run_all(NULL, NULL, 0, cmds, 1, 5, NULL, &r),
                     CR_EUSAGE);
    health_result_release(&r);
    free(bad[0]);
    free(bad[1]);
    free(cmds[0]);
}

/* Like Control-C: the flag, and SIGINT for our children (the terminal
 * would send it to the whole foreground process group). */
static void
on_alarm(int sig)
{
    (void)sig;
    cr_interrupted = SIGINT;
    proc_kill_all(SIGINT);
}

static void
test_interrupt(void **state)
{
    struct fixture *f = *state;
    char *urls[1] = {url(f, "/err")};
    char *cmds[1] = {xstrdup("sleep 30")};
    struct sigaction sa, old;
    struct health_result r;
    double t0;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_alarm;
    sigaction(SIGALRM, &sa, &old);

    /* Waiting between rounds. */
    t0 = now();
    alarm(1);
    assert_int_equal(health_run_all(NULL, urls, 1, NULL, 0, 30, NULL, &r),
                     CR_EINTR);
    assert_true(now() - t0 < 3);
    assert_false(r.ok);
    health_result_release(&r);
    cr_interrupted = 0;

    /* In the middle of a slow request. */
    free(urls[0]);
    urls[0] = url(f, "/slow");
    t0 = now();
    alarm(1);
    assert_int_equal(health_run_all(NULL, urls, 1, NULL, 0, 30, NULL, &r),
                     CR_EINTR);
    assert_true(now() - t0 < 2.9);
    health_result_release(&r);
    cr_interrupted = 0;

    /* In the middle of a command. */
    t0 = now();
    alarm(1);
    assert_int_equal(health_run_all(f->local, NULL, 0, cmds, 1, 30, NULL, &r),
                     CR_EINTR);
    assert_true(now() - t0 < 5);
    health_result_release(&r);
    cr_interrupted = 0;

    /* Already interrupted: nothing runs. */
    cr_interrupted = SIGTERM;
    assert_int_equal(health_run_all(NULL, urls, 1, NULL, 0, 30, NULL, &r),
                     CR_EINTR);
    health_result_release(&r);
    cr_interrupted = 0;

    sigaction(SIGALRM, &old, NULL);
    free(urls[0]);
    free(cmds[0]);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url_answers),
        cmocka_unit_test(test_url_refused),
        cmocka_unit_test(test_url_timeout),
        cmocka_unit_test(test_cmd_answers),
        cmocka_unit_test(test_cmd_bounded),
        cmocka_unit_test(test_cmd_timeout),
        cmocka_unit_test(test_all_pass_after_retries),
        cmocka_unit_test(test_all_fail),
        cmocka_unit_test(test_all_slow),
        cmocka_unit_test(test_all_once),
        cmocka_unit_test(test_all_edge),
        cmocka_unit_test(test_interrupt),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

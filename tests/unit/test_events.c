/* test_events.c: the --events stream: one valid JSON object per line with
 * "type" and "time" first, hostile strings, disabled streams, standard
 * output, and write errors reported once. */
#include "testutil.h"

#include <cjson/cJSON.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crebuild/diff.h"
#include "crebuild/events.h"
#include "crebuild/log.h"
#include "crebuild/util.h"

struct tmp {
    char dir[32];
    char *path;
};

static int
setup(void **state)
{
    struct tmp *t = xcalloc(1, sizeof(*t));

    snprintf(t->dir, sizeof(t->dir), "/tmp/crebuild-ev-XXXXXX");
    if (mkdtemp(t->dir) == NULL) {
        free(t);
        return -1;
    }
    t->path = xasprintf("%s/events.json", t->dir);
    *state = t;
    return 0;
}

static int
teardown(void **state)
{
    struct tmp *t = *state;

    unlink(t->path);
    rmdir(t->dir);
    free(t->path);
    free(t);
    return 0;
}

static char *
slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    int c;

    assert_non_null(f);
    while ((c = fgetc(f)) != EOF) {
        fputc(c, m);
    }
    fclose(f);
    fclose(m);
    return buf;
}

/* Split text into lines, parse each; every line must be one JSON object
 * with "type" and a well-formed "time" as its first two keys. */
static size_t
parse_lines(char *text, cJSON **objs, size_t max)
{
    size_t n = 0;
    char *save = NULL;

    assert_true(text[0] == '\0' || text[strlen(text) - 1] == '\n');
    for (char *l = strtok_r(text, "\n", &save); l;
         l = strtok_r(NULL, "\n", &save)) {
        cJSON *o = cJSON_Parse(l);
        int y, mo, d, h, mi, s, ms, len = 0;
        assert_true(n < max);
        if (o == NULL) {
            fail_msg("not JSON: %s", l);
        }
        assert_true(cJSON_IsObject(o));
        assert_non_null(o->child);
        assert_string_equal(o->child->string, "type");
        assert_non_null(o->child->next);
        assert_string_equal(o->child->next->string, "time");
        const char *t = o->child->next->valuestring;
        assert_non_null(t);
        assert_int_equal(strlen(t), 24);
        assert_int_equal(sscanf(t,
                                "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ%n",
                                &y,
                                &mo,
                                &d,
                                &h,
                                &mi,
                                &s,
                                &ms,
                                &len),
                         7);
        assert_int_equal(len, 24);
        assert_true(y >= 2024 && mo >= 1 && mo <= 12 && ms >= 0 && ms < 1000);
        objs[n++] = o;
    }
    return n;
}

static const char *
str(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

    assert_true(cJSON_IsString(v));
    return v->valuestring;
}

static double
num(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

    assert_true(cJSON_IsNumber(v));
    return v->valuedouble;
}

static int
boolean(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

    assert_true(cJSON_IsBool(v));
    return cJSON_IsTrue(v);
}

static void
test_time(void **state)
{
    char buf[32];

    (void)state;
    events_format_time(1795674600LL, 123456789L, buf, sizeof(buf));
    assert_string_equal(buf, "2026-11-26T06:30:00.123Z");
    events_format_time(0, 0, buf, sizeof(buf));
    assert_string_equal(buf, "1970-01-01T00:00:00.000Z");
    events_format_time(951782400LL, 999999999L, buf, sizeof(buf));
    assert_string_equal(buf, "2000-02-29T00:00:00.999Z");
}

static void
test_utf8(void **state)
{
    static const struct {
        const char *in, *out;
    } rows[] = {
        {"", ""},
        {"plain ascii", "plain ascii"},
        {"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
         "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"},
        {"a\xff"
         "b",
         "a\xef\xbf\xbd"
         "b"},
        /* overlong '/' */
        {"\xc0\xaf", "\xef\xbf\xbd\xef\xbf\xbd"},
        {"\xe0\x80\xaf", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
        /* a UTF-16 surrogate */
        {"\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
        /* above U+10FFFF */
        {"\xf4\x90\x80\x80",
         "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
        /* cut short at the end, and before ASCII */
        {"x\xe2\x82", "x\xef\xbf\xbd\xef\xbf\xbd"},
        {"\xe2\x82x", "\xef\xbf\xbd\xef\xbf\xbdx"},
        /* a lone continuation byte */
        {"\x80", "\xef\xbf\xbd"},
        /* U+10FFFF and U+FFFF are fine */
        {"\xf4\x8f\xbf\xbf\xef\xbf\xbf", "\xf4\x8f\xbf\xbf\xef\xbf\xbf"},
    };

    (void)state;
    for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
        char *s = events_utf8_sanitize(rows[i].in);
        assert_string_equal(s, rows[i].out);
        free(s);
    }
}

static void
emit_all(struct events *ev)
{
    struct diff_closure a = DIFF_CLOSURE_INIT, b = DIFF_CLOSURE_INIT;
    struct diff_result d;

    diff_closure_add(
        &a, "/nix/store/m91hmm1dwj8h3r66kqisbdm3wawk529w-hello-2.12", 2408);
    diff_closure_add(
        &a, "/nix/store/nmvvk6f16s41fyv32cdzyjjsvhq83qhf-tree-2.1.0", 2408);
    diff_closure_add(
        &b, "/nix/store/xij10gh2lj826pyrckgnakhyx8gafkqh-hello-2.12.1", 2536);
    diff_compute(&a, &b, &d);

    events_phase_start(ev, "copy", "target1");
    events_copy_stats(ev, "target1", 120, 100, 20, 5000000000ULL, 1.23456);
    events_phase_end(ev, "copy", "target1", 1, 1.23456);
    events_check(ev,
                 "url",
                 "http://10.77.1.2/health",
                 0,
                 "HTTP 503: \"down\"\tfor\x01maintenance\\ \xff\xfe");
    events_rollback(ev, "target1", "health check failed");
    events_log(ev, LOG_WARN, "line one\nline two");
    events_diff(ev, "target1", &d);
    events_phase_start(ev, "eval", NULL);
    events_result(ev, "rolled-back", 4, NULL);

    diff_result_release(&d);
    diff_closure_release(&a);
    diff_closure_release(&b);
}

static void
test_file(void **state)
{
    struct tmp *t = *state;
    struct events *ev;
    char *err = NULL, *text;
    cJSON *o[16];
    struct stat st;
    size_t n;
    mode_t old = umask(0);

    /* Created 0600 whatever the umask. */
    ev = events_open(t->path, &err);
    umask(old);
    assert_non_null(ev);
    assert_null(err);
    assert_false(events_to_stdout(ev));
    assert_int_equal(stat(t->path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    emit_all(ev);
    events_close(ev);

    text = slurp(t->path);
    n = parse_lines(text, o, ARRAY_SIZE(o));
    assert_int_equal(n, 9);

    assert_string_equal(str(o[0], "type"), "phase-start");
    assert_string_equal(str(o[0], "phase"), "copy");
    assert_string_equal(str(o[0], "host"), "target1");

    assert_string_equal(str(o[1], "type"), "copy-stats");
    assert_true(num(o[1], "paths_total") == 120);
    assert_true(num(o[1], "paths_present") == 100);
    assert_true(num(o[1], "paths_copied") == 20);
    assert_true(num(o[1], "bytes") == 5000000000.0);
    assert_true(num(o[1], "seconds") == 1.235);

    assert_string_equal(str(o[2], "type"), "phase-end");
    assert_true(boolean(o[2], "ok"));
    assert_true(num(o[2], "seconds") == 1.235);

    assert_string_equal(str(o[3], "type"), "check");
    assert_string_equal(str(o[3], "kind"), "url");
    assert_string_equal(str(o[3], "target"), "http://10.77.1.2/health");
    assert_false(boolean(o[3], "ok"));
    assert_string_equal(str(o[3], "detail"),
                        "HTTP 503: \"down\"\tfor\x01maintenance\\ "
                        "\xef\xbf\xbd\xef\xbf\xbd");

    assert_string_equal(str(o[4], "type"), "rollback");
    assert_string_equal(str(o[4], "reason"), "health check failed");

    assert_string_equal(str(o[5], "type"), "log");
    assert_string_equal(str(o[5], "level"), "warning");
    assert_string_equal(str(o[5], "message"), "line one\nline two");

    assert_string_equal(str(o[6], "type"), "diff");
    const cJSON *before = cJSON_GetObjectItemCaseSensitive(o[6], "before");
    assert_true(num(before, "paths") == 2);
    assert_true(num(before, "bytes") == 4816);
    const cJSON *ch = cJSON_GetObjectItemCaseSensitive(o[6], "changes");
    assert_int_equal(cJSON_GetArraySize(ch), 2);
    const cJSON *c0 = cJSON_GetArrayItem(ch, 0);
    assert_string_equal(str(c0, "pname"), "hello");
    assert_string_equal(str(c0, "change"), "upgrade");
    assert_string_equal(
        cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(c0, "after"), 0)
            ->valuestring,
        "2.12.1");
    assert_true(num(c0, "size_delta") == 128);
    assert_string_equal(str(cJSON_GetArrayItem(ch, 1), "change"), "remove");

    assert_string_equal(str(o[7], "type"), "phase-start");
    assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(o[7], "host")));

    assert_string_equal(str(o[8], "type"), "result");
    assert_string_equal(str(o[8], "result"), "rolled-back");
    assert_true(num(o[8], "exit_status") == 4);
    assert_true(
        cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(o[8], "message")));

    /* Raw text: control characters escaped, one object per line. */
    free(text);
    text = slurp(t->path);
    assert_non_null(strstr(text, "\\u0001maintenance"));
    assert_null(strchr(text, '\x01'));
    assert_non_null(strstr(text, "line one\\nline two"));
    free(text);
    for (size_t i = 0; i < n; i++) {
        cJSON_Delete(o[i]);
    }

    /* Opening again truncates. */
    ev = events_open(t->path, &err);
    assert_non_null(ev);
    events_result(ev, "success", 0, "ok");
    events_close(ev);
    text = slurp(t->path);
    n = parse_lines(text, o, ARRAY_SIZE(o));
    assert_int_equal(n, 1);
    cJSON_Delete(o[0]);
    free(text);
}

static void
test_disabled(void **state)
{
    char *err = (char *)1;
    struct events *ev = events_open(NULL, &err);

    (void)state;
    assert_non_null(ev);
    assert_null(err);
    assert_false(events_to_stdout(ev));
    emit_all(ev);
    events_close(ev);
    /* NULL works everywhere too. */
    emit_all(NULL);
    assert_false(events_to_stdout(NULL));
    events_close(NULL);
}

static void
test_open_error(void **state)
{
    char *err = NULL;
    struct events *ev;

    (void)state;
    ev = events_open("/nonexistent-dir-crebuild/x.json", &err);
    assert_null(ev);
    assert_non_null(err);
    assert_non_null(strstr(err, "/nonexistent-dir-crebuild/x.json"));
    assert_non_null(strstr(err, "No such file or directory"));
    free(err);
}

/* /dev/full: every write fails with ENOSPC.  One warning, no abort. */
static void
test_write_error(void **state)
{
    char *log = NULL, *err = NULL;
    size_t len = 0;
    FILE *logf = open_memstream(&log, &len);
    struct events *ev;

    (void)state;
    if (access("/dev/full", W_OK) != 0) {
        skip();
    }
    log_set_stream(logf);
    ev = events_open("/dev/full", &err);
    assert_non_null(ev);
    emit_all(ev);
    events_phase_end(ev, "copy", "x", 0, 1);
    events_close(ev);
    log_set_stream(NULL);
    fclose(logf);
    assert_non_null(strstr(log, "cannot write events to '/dev/full'"));
    assert_non_null(strstr(log, "No space left on device"));
    assert_null(strstr(strstr(log, "cannot write") + 1, "cannot write"));
    free(log);
}

/* "-": standard output, which is flushed but not closed. */
static void
test_stdout(void **state)
{
    struct tmp *t = *state;
    char *err = NULL, *text;
    cJSON *o[4];
    struct events *ev;
    int saved, fd;

    fflush(stdout);
    saved = dup(STDOUT_FILENO);
    fd = open(t->path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(saved >= 0 && fd >= 0);
    dup2(fd, STDOUT_FILENO);
    close(fd);

    ev = events_open("-", &err);
    assert_non_null(ev);
    assert_true(events_to_stdout(ev));
    events_phase_start(ev, "build", "localhost");
    events_close(ev);
    printf("still open\n");
    fflush(stdout);

    dup2(saved, STDOUT_FILENO);
    close(saved);
    text = slurp(t->path);
    assert_non_null(strstr(text, "\nstill open\n"));
    *strstr(text, "still open") = '\0';
    assert_int_equal(parse_lines(text, o, ARRAY_SIZE(o)), 1);
    assert_string_equal(str(o[0], "phase"), "build");
    cJSON_Delete(o[0]);
    free(text);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_time),
        cmocka_unit_test(test_utf8),
        cmocka_unit_test_setup_teardown(test_file, setup, teardown),
        cmocka_unit_test(test_disabled),
        cmocka_unit_test(test_open_error),
        cmocka_unit_test(test_write_error),
        cmocka_unit_test_setup_teardown(test_stdout, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

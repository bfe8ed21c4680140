/* events.c: newline-delimited JSON events for CI (see events.h). */
#include "crebuild/events.h"
#include "crebuild/diff.h"
#include "crebuild/log.h"
#include "crebuild/strbuf.h"
#include "crebuild/util.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct events {
    FILE *f;    /* NULL: disabled */
    char *path; /* for messages */
    int owned;  /* fclose on close (not stdout) */
    int broken; /* a write failed: report once, then drop everything */
};

struct events *
events_open(const char *path, char **err)
{
    struct events *ev = xcalloc(1, sizeof(*ev));
    int fd = -1;

    *err = NULL;
    if (path == NULL) {
        return ev;
    }
    if (strcmp(path, "-") == 0) {
        ev->f = stdout;
        ev->path = xstrdup("standard output");
        return ev;
    }
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY, 0600);
    if (fd < 0) {
        *err = xasprintf(
            "cannot open events file '%s': %s", path, strerror(errno));
        free(ev);
        return NULL;
    }
    ev->f = fdopen(fd, "w");
    if (ev->f == NULL) {
        *err = xasprintf(
            "cannot open events file '%s': %s", path, strerror(errno));
        close(fd);
        free(ev);
        return NULL;
    }
    ev->path = xstrdup(path);
    ev->owned = 1;
    return ev;
}

static void
report(struct events *ev, int errnum)
{
    if (!ev->broken) {
        log_warn("cannot write events to %s%s%s: %s; no more events will be "
                 "written",
                 ev->owned ? "'" : "",
                 ev->path,
                 ev->owned ? "'" : "",
                 errnum ? strerror(errnum) : "write error");
    }
    ev->broken = 1;
}

void
events_close(struct events *ev)
{
    if (ev == NULL) {
        return;
    }
    if (ev->f != NULL) {
        errno = 0;
        if (ev->owned) {
            if (fclose(ev->f) != 0) {
                report(ev, errno);
            }
        } else if (fflush(ev->f) != 0) {
            report(ev, errno);
        }
    }
    free(ev->path);
    free(ev);
}

int
events_to_stdout(const struct events *ev)
{
    return ev != NULL && ev->f != NULL && !ev->owned;
}

/* Length of the valid UTF-8 sequence at s (1-4), or 0 when invalid. */
static size_t
utf8_len(const unsigned char *s)
{
    unsigned char c = s[0];

    if (c < 0x80) {
        return 1;
    }
    if (c >= 0xc2 && c <= 0xdf) {
        return (s[1] & 0xc0) == 0x80 ? 2 : 0;
    }
    if (c >= 0xe0 && c <= 0xef) {
        unsigned char lo = c == 0xe0 ? 0xa0 : 0x80;
        unsigned char hi = c == 0xed ? 0x9f : 0xbf; /* no surrogates */
        if (s[1] < lo || s[1] > hi || (s[2] & 0xc0) != 0x80) {
            return 0;
        }
        return 3;
    }
    if (c >= 0xf0 && c <= 0xf4) {
        unsigned char lo = c == 0xf0 ? 0x90 : 0x80;
        unsigned char hi = c == 0xf4 ? 0x8f : 0xbf; /* <= U+10FFFF */
        if (s[1] < lo || s[1] > hi || (s[2] & 0xc0) != 0x80 ||
            (s[3] & 0xc0) != 0x80) {
            return 0;
        }
        return 4;
    }
    return 0;
}

char *
events_utf8_sanitize(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    struct strbuf sb = STRBUF_INIT;

    /* A NUL continuation byte fails the (b & 0xc0) == 0x80 tests, so the
     * lookahead never runs past the terminator. */
    while (*p) {
        size_t n = utf8_len(p);
        if (n == 0) {
            strbuf_addstr(&sb, "\xef\xbf\xbd");
            p++;
        } else {
            strbuf_add(&sb, p, n);
            p += n;
        }
    }
    return strbuf_detach(&sb);
}

void
events_format_time(long long sec, long nsec, char *buf, size_t size)
{
    time_t t = (time_t)sec;
    struct tm tm;
    char base[32];

    if (gmtime_r(&t, &tm) == NULL ||
        strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm) == 0) {
        snprintf(base, sizeof(base), "1970-01-01T00:00:00");
    }
    snprintf(buf, size, "%s.%03ldZ", base, nsec / 1000000);
}

static void *
need(void *p)
{
    if (p == NULL) {
        cr_die("out of memory");
    }
    return p;
}

static void
add_str(cJSON *o, const char *key, const char *val)
{
    if (val == NULL) {
        need(cJSON_AddNullToObject(o, key));
        return;
    }
    char *clean = events_utf8_sanitize(val);
    need(cJSON_AddStringToObject(o, key, clean));
    free(clean);
}

static void
add_num(cJSON *o, const char *key, double v)
{
    need(cJSON_AddNumberToObject(o, key, v));
}

static void
add_bool(cJSON *o, const char *key, int v)
{
    need(cJSON_AddBoolToObject(o, key, v != 0));
}

static double
millis(double seconds)
{
    /* No libm: round half up by hand (seconds are never negative). */
    if (!isfinite(seconds) || seconds < 0 || seconds > 1e12) {
        return 0;
    }
    return (double)(long long)(seconds * 1000.0 + 0.5) / 1000.0;
}

/* A new event object with "type" and "time", or NULL when no events are
 * written. */
static cJSON *
start(struct events *ev, const char *type)
{
    struct timespec ts;
    char when[64];
    cJSON *o;

    if (ev == NULL || ev->f == NULL || ev->broken) {
        return NULL;
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    events_format_time((long long)ts.tv_sec, ts.tv_nsec, when, sizeof(when));
    o = need(cJSON_CreateObject());
    add_str(o, "type", type);
    add_str(o, "time", when);
    return o;
}

/* Write o as one line, flush, free o. */
static void
emit(struct events *ev, cJSON *o)
{
    char *text;
    size_t len;

    if (o == NULL) {
        return;
    }
    text = need(cJSON_PrintUnformatted(o));
    cJSON_Delete(o);
    len = strlen(text);
    errno = 0;
    if (fwrite(text, 1, len, ev->f) != len || fputc('\n', ev->f) == EOF ||
        fflush(ev->f) != 0) {
        report(ev, errno);
        clearerr(ev->f);
    }
    cJSON_free(text);
}

void
events_phase_start(struct events *ev, const char *phase, const char *host)
{
    cJSON *o = start(ev, "phase-start");

    if (o != NULL) {
        add_str(o, "phase", phase);
        add_str(o, "host", host);
        emit(ev, o);
    }
}

void
events_phase_end(struct events *ev,
                 const char *phase,
                 const char *host,
                 int ok,
                 double seconds)
{
    cJSON *o = start(ev, "phase-end");

    if (o != NULL) {
        add_str(o, "phase", phase);
        add_str(o, "host", host);
        add_bool(o, "ok", ok);
        add_num(o, "seconds", millis(seconds));
        emit(ev, o);
    }
}

void
events_copy_stats(struct events *ev,
                  const char *host,
                  unsigned long paths_total,
                  unsigned long paths_present,
                  unsigned long paths_copied,
                  unsigned long long bytes,
                  double seconds)
{
    cJSON *o = start(ev, "copy-stats");

    if (o != NULL) {
        add_str(o, "host", host);
        add_num(o, "paths_total", (double)paths_total);
        add_num(o, "paths_present", (double)paths_present);
        add_num(o, "paths_copied", (double)paths_copied);
        add_num(o, "bytes", (double)bytes);
        add_num(o, "seconds", millis(seconds));
        emit(ev, o);
    }
}

void
events_check(struct events *ev,
             const char *kind,
             const char *target,
             int ok,
             const char *detail)
{
    cJSON *o = start(ev, "check");

    if (o != NULL) {
        add_str(o, "kind", kind);
        add_str(o, "target", target);
        add_bool(o, "ok", ok);
        add_str(o, "detail", detail);
        emit(ev, o);
    }
}

void
events_rollback(struct events *ev, const char *host, const char *reason)
{
    cJSON *o = start(ev, "rollback");

    if (o != NULL) {
        add_str(o, "host", host);
        add_str(o, "reason", reason);
        emit(ev, o);
    }
}

void
events_result(struct events *ev,
              const char *result,
              int exit_status,
              const char *message)
{
    cJSON *o = start(ev, "result");

    if (o != NULL) {
        add_str(o, "result", result);
        add_num(o, "exit_status", exit_status);
        add_str(o, "message", message);
        emit(ev, o);
    }
}

void
events_log(struct events *ev, int level, const char *msg)
{
    static const char *const names[] = {
        "error", "warning", "info", "debug", "trace"};
    cJSON *o = start(ev, "log");

    if (o != NULL) {
        int i = level < 0                         ? 0
                : level >= (int)ARRAY_SIZE(names) ? (int)ARRAY_SIZE(names) - 1
                                                  : level;
        add_str(o, "level", names[i]);
        add_str(o, "message", msg);
        emit(ev, o);
    }
}

static cJSON *
side(size_t paths, unsigned long long bytes)
{
    cJSON *o = need(cJSON_CreateObject());

    add_num(o, "paths", (double)paths);
    add_num(o, "bytes", (double)bytes);
    return o;
}

/* Add item to object o under key (or to array o when key is NULL). */
static void
attach(cJSON *o, const char *key, cJSON *item)
{
    int ok = key != NULL ? cJSON_AddItemToObject(o, key, item)
                         : cJSON_AddItemToArray(o, item);

    if (!ok) {
        cr_die("out of memory");
    }
}

static cJSON *
versions(char *const *v, size_t n)
{
    cJSON *a = need(cJSON_CreateArray());

    for (size_t i = 0; i < n; i++) {
        char *clean = events_utf8_sanitize(v[i]);
        attach(a, NULL, need(cJSON_CreateString(clean)));
        free(clean);
    }
    return a;
}

void
events_diff(struct events *ev, const char *host, const struct diff_result *d)
{
    static const char *const kinds[] = {
        "add", "remove", "upgrade", "downgrade", "change"};
    cJSON *o = start(ev, "diff");
    cJSON *changes;

    if (o == NULL || d == NULL) {
        cJSON_Delete(o);
        return;
    }
    add_str(o, "host", host);
    attach(o, "before", side(d->before_paths, d->before_bytes));
    attach(o, "after", side(d->after_paths, d->after_bytes));
    changes = need(cJSON_AddArrayToObject(o, "changes"));
    for (size_t i = 0; i < d->n; i++) {
        const struct diff_change *c = &d->changes[i];
        cJSON *item = need(cJSON_CreateObject());
        add_str(item, "pname", c->pname);
        add_str(item, "change", kinds[c->kind]);
        attach(item, "before", versions(c->before, c->n_before));
        attach(item, "after", versions(c->after, c->n_after));
        add_num(item, "size_delta", (double)c->size_delta);
        attach(changes, NULL, item);
    }
    emit(ev, o);
}

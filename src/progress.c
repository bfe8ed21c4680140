/* progress.c: the live status line on a terminal. */
#include "crebuild/progress.h"
#include "crebuild/log.h"
#include "crebuild/util.h"

#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define REDRAW_INTERVAL 0.1 /* seconds */
#define NSAMPLES        32  /* rate window: about 3 s of redraws */

struct sample {
    double t;
    uint64_t bytes;
};

struct progress {
    FILE *f;
    char *verb;
    int enabled;
    int drawn; /* the line is on screen */
    uint64_t paths_total;
    uint64_t bytes_total;
    uint64_t paths_done;
    uint64_t bytes_done;
    double last_draw;
    struct sample samples[NSAMPLES];
    size_t nsamples;
    size_t head;
};

/* The line erased by the log hook.  log.h's hook takes no argument. */
static struct progress *active;

static void
before_log(void)
{
    if (active != NULL) {
        progress_clear(active);
    }
}

double
progress_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int
progress_wanted(int quiet)
{
    return !quiet && isatty(STDERR_FILENO);
}

struct progress *
progress_new(FILE *f, const char *verb, int enabled)
{
    struct progress *p = xcalloc(1, sizeof(*p));

    p->f = f;
    p->verb = xstrdup(verb);
    p->enabled = enabled;
    p->last_draw = -1;
    if (enabled) {
        active = p;
        log_set_before_hook(before_log);
    }
    return p;
}

void
progress_set_total(struct progress *p, uint64_t paths, uint64_t bytes)
{
    p->paths_total = paths;
    p->bytes_total = bytes;
}

static void
fmt_eta(char *buf, size_t size, double secs)
{
    unsigned long s = (unsigned long)(secs + 0.5);

    if (s < 60) {
        snprintf(buf, size, "%lus", s);
    } else if (s < 3600) {
        snprintf(buf, size, "%lum%02lus", s / 60, s % 60);
    } else {
        snprintf(buf, size, "%luh%02lum", s / 3600, s / 60 % 60);
    }
}

void
progress_format(char *buf,
                size_t size,
                const char *verb,
                uint64_t paths_done,
                uint64_t paths_total,
                uint64_t bytes_done,
                uint64_t bytes_total,
                double rate,
                int width)
{
    const double mib = 1024.0 * 1024.0;
    char eta[32] = "";
    int n;

    if (rate > 0 && bytes_total > bytes_done) {
        char t[24];
        fmt_eta(t, sizeof(t), (double)(bytes_total - bytes_done) / rate);
        snprintf(eta, sizeof(eta), ", ETA %s", t);
    }
    if (rate >= 0) {
        n = snprintf(buf,
                     size,
                     "%s: %llu/%llu paths, %.1f/%.1f MiB, %.1f MiB/s%s",
                     verb,
                     (unsigned long long)paths_done,
                     (unsigned long long)paths_total,
                     (double)bytes_done / mib,
                     (double)bytes_total / mib,
                     rate / mib,
                     eta);
    } else {
        n = snprintf(buf,
                     size,
                     "%s: %llu/%llu paths, %.1f/%.1f MiB",
                     verb,
                     (unsigned long long)paths_done,
                     (unsigned long long)paths_total,
                     (double)bytes_done / mib,
                     (double)bytes_total / mib);
    }
    /* Never wrap: a wrapped line cannot be redrawn with \r. */
    if (width > 1 && n >= width && (size_t)(width - 1) < size) {
        buf[width - 1] = '\0';
    }
}

static double
rate_of(struct progress *p, double now)
{
    const struct sample *old;

    if (p->nsamples < 2) {
        return -1;
    }
    old = &p->samples[(p->head + NSAMPLES - p->nsamples) % NSAMPLES];
    if (now - old->t < 0.2) {
        return -1;
    }
    return (double)(p->bytes_done - old->bytes) / (now - old->t);
}

static int
term_width(FILE *f)
{
    struct winsize ws;

    if (ioctl(fileno(f), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) {
        return ws.ws_col;
    }
    return 80;
}

void
progress_update(struct progress *p, uint64_t paths, uint64_t bytes)
{
    char line[256];
    double now;

    p->paths_done = paths;
    p->bytes_done = bytes;
    if (!p->enabled) {
        return;
    }
    now = progress_now();
    if (p->last_draw >= 0 && now - p->last_draw < REDRAW_INTERVAL) {
        return;
    }
    p->last_draw = now;
    p->samples[p->head].t = now;
    p->samples[p->head].bytes = bytes;
    p->head = (p->head + 1) % NSAMPLES;
    if (p->nsamples < NSAMPLES) {
        p->nsamples++;
    }
    progress_format(line,
                    sizeof(line),
                    p->verb,
                    paths,
                    p->paths_total,
                    bytes,
                    p->bytes_total,
                    rate_of(p, now),
                    term_width(p->f));
    fprintf(p->f, "\r%s\033[K", line);
    fflush(p->f);
    p->drawn = 1;
}

void
progress_clear(struct progress *p)
{
    if (p->enabled && p->drawn) {
        fputs("\r\033[K", p->f);
        fflush(p->f);
        p->drawn = 0;
        /* Redraw at the next update rather than waiting. */
        p->last_draw = -1;
    }
}

void
progress_free(struct progress *p)
{
    if (p == NULL) {
        return;
    }
    progress_clear(p);
    if (active == p) {
        active = NULL;
        log_set_before_hook(NULL);
    }
    free(p->verb);
    free(p);
}

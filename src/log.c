/* log.c: leveled messages on stderr. */
#include "crebuild/log.h"

#include <stdlib.h>
#include <string.h>

static int level = LOG_INFO;
static FILE *stream;
static void (*before_hook)(void);

void
log_set_level(int l)
{
    level = l;
}

int
log_get_level(void)
{
    return level;
}

void
log_set_stream(FILE *f)
{
    stream = f;
}

FILE *
log_stream(void)
{
    return stream ? stream : stderr;
}

void
log_set_before_hook(void (*hook)(void))
{
    before_hook = hook;
}

/* The whole line is formatted first and written with one call while the
 * stream is locked: messages from two threads (the build while logging
 * in, the main thread) never end up inside each other, and on unbuffered
 * stderr a line is one write. */
void
log_vmsg(int l, const char *fmt, va_list ap)
{
    static const char *const prefix[] = {
        "error: ", "warning: ", "", "debug: ", "trace: "};
    FILE *f = log_stream();
    char small[512];
    char *line = small;
    size_t plen = strlen(prefix[l]);
    size_t len;
    va_list aq;
    int n;

    if (l > level) {
        return;
    }
    /* Formatted once when it fits the stack buffer (the usual case). */
    memcpy(small, prefix[l], plen);
    va_copy(aq, ap);
    n = vsnprintf(small + plen, sizeof(small) - 1 - plen, fmt, aq);
    va_end(aq);
    len = plen + (size_t)(n > 0 ? n : 0);
    if (len + 2 > sizeof(small)) {
        line = malloc(len + 2);
        if (line == NULL) { /* cut to what fits */
            line = small;
            len = sizeof(small) - 2;
        } else {
            memcpy(line, prefix[l], plen);
            (void)vsnprintf(line + plen, len + 1 - plen, fmt, ap);
        }
    }
    line[len] = '\n';
    flockfile(f);
    if (before_hook != NULL) {
        before_hook();
    }
    fwrite(line, 1, len + 1, f);
    fflush(f);
    funlockfile(f);
    if (line != small) {
        free(line);
    }
}

#define DEFINE_LOG(name, lvl)       \
    void name(const char *fmt, ...) \
    {                               \
        va_list ap;                 \
        va_start(ap, fmt);          \
        log_vmsg(lvl, fmt, ap);     \
        va_end(ap);                 \
    }

DEFINE_LOG(log_error, LOG_ERROR)
DEFINE_LOG(log_warn, LOG_WARN)
DEFINE_LOG(log_info, LOG_INFO)
DEFINE_LOG(log_debug, LOG_DEBUG)
DEFINE_LOG(log_trace, LOG_TRACE)

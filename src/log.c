/* log.c: leveled messages on stderr. */
#include "crebuild/log.h"

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

void
log_vmsg(int l, const char *fmt, va_list ap)
{
    static const char *const prefix[] = {
        "error: ", "warning: ", "", "debug: ", "trace: "};
    FILE *f = log_stream();

    if (l > level) {
        return;
    }
    if (before_hook != NULL) {
        before_hook();
    }
    fputs(prefix[l], f);
    vfprintf(f, fmt, ap);
    fputc('\n', f);
    fflush(f);
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

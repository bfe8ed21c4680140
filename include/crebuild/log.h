/* log.h: messages on stderr, in nixos-rebuild's wording ("warning: ..."). */
#ifndef CREBUILD_LOG_H
#define CREBUILD_LOG_H

#include <stdarg.h>
#include <stdio.h>

enum log_level {
    LOG_ERROR = 0,
    LOG_WARN = 1,
    LOG_INFO = 2,
    LOG_DEBUG = 3,
    LOG_TRACE = 4,
};

/* Messages above this level are dropped.  Default LOG_INFO. */
void log_set_level(int level);
int log_get_level(void);
/* Where messages go (default stderr); tests point it at a memstream. */
void log_set_stream(FILE *f);
FILE *log_stream(void);
/* Called before each message, e.g. to clear a progress line. */
void log_set_before_hook(void (*hook)(void));

void log_vmsg(int level, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_trace(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif

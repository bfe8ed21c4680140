/* strbuf.h: growable NUL-terminated byte buffer (git's API), optional cap. */
#ifndef CREBUILD_STRBUF_H
#define CREBUILD_STRBUF_H

#include <stddef.h>

struct strbuf {
    char *buf; /* never NULL after init; always NUL-terminated */
    size_t len;
    size_t alloc;
    size_t max;    /* 0 = unbounded; else appends beyond max are dropped */
    int truncated; /* set when an append was cut at max */
};

#define STRBUF_INIT              \
    {                            \
        strbuf_empty, 0, 0, 0, 0 \
    }
extern char strbuf_empty[];

void strbuf_init(struct strbuf *sb, size_t max);
void strbuf_release(struct strbuf *sb);
void strbuf_reset(struct strbuf *sb);
void strbuf_add(struct strbuf *sb, const void *data, size_t n);
void strbuf_addstr(struct strbuf *sb, const char *s);
void strbuf_addch(struct strbuf *sb, int c);
void strbuf_addf(struct strbuf *sb, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Remove trailing whitespace. */
void strbuf_rtrim(struct strbuf *sb);
/* Hand the buffer to the caller (must free); sb is re-initialised. */
char *strbuf_detach(struct strbuf *sb);

#endif

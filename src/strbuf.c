/* strbuf.c: growable byte buffer. */
#include "crebuild/strbuf.h"
#include "crebuild/util.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char strbuf_empty[1];

void
strbuf_init(struct strbuf *sb, size_t max)
{
    sb->buf = strbuf_empty;
    sb->len = 0;
    sb->alloc = 0;
    sb->max = max;
    sb->truncated = 0;
}

void
strbuf_release(struct strbuf *sb)
{
    if (sb->alloc != 0) {
        free(sb->buf);
    }
    strbuf_init(sb, sb->max);
}

void
strbuf_reset(struct strbuf *sb)
{
    sb->len = 0;
    if (sb->alloc != 0) {
        sb->buf[0] = '\0';
    }
}

static void
grow(struct strbuf *sb, size_t extra)
{
    size_t need = sb->len + extra + 1;

    if (need <= sb->alloc) {
        return;
    }
    size_t n = sb->alloc ? sb->alloc : 64;
    while (n < need) {
        n *= 2;
    }
    if (sb->alloc == 0) {
        sb->buf = xmalloc(n);
        sb->buf[0] = '\0';
    } else {
        sb->buf = xreallocarray(sb->buf, n, 1);
    }
    sb->alloc = n;
}

void
strbuf_add(struct strbuf *sb, const void *data, size_t n)
{
    if (sb->max != 0 && sb->len + n > sb->max) {
        n = sb->max > sb->len ? sb->max - sb->len : 0;
        sb->truncated = 1;
    }
    if (n == 0) {
        return;
    }
    grow(sb, n);
    memcpy(sb->buf + sb->len, data, n);
    sb->len += n;
    sb->buf[sb->len] = '\0';
}

void
strbuf_addstr(struct strbuf *sb, const char *s)
{
    strbuf_add(sb, s, strlen(s));
}

void
strbuf_addch(struct strbuf *sb, int c)
{
    char ch = (char)c;

    strbuf_add(sb, &ch, 1);
}

void
strbuf_addf(struct strbuf *sb, const char *fmt, ...)
{
    va_list ap;
    char *s;

    va_start(ap, fmt);
    s = xvasprintf(fmt, ap);
    va_end(ap);
    strbuf_addstr(sb, s);
    free(s);
}

void
strbuf_rtrim(struct strbuf *sb)
{
    while (sb->len > 0 && isspace((unsigned char)sb->buf[sb->len - 1])) {
        sb->len--;
    }
    if (sb->alloc != 0) {
        sb->buf[sb->len] = '\0';
    }
}

char *
strbuf_detach(struct strbuf *sb)
{
    char *s = sb->alloc ? sb->buf : xstrdup("");

    strbuf_init(sb, sb->max);
    return s;
}

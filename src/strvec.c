/* strvec.c: NULL-terminated string vectors. */
#include "crebuild/strvec.h"
#include "crebuild/strbuf.h"
#include "crebuild/util.h"

#include <stdarg.h>
#include <stdlib.h>

char *strvec_empty[1];

void
strvec_init(struct strvec *sv)
{
    sv->v = strvec_empty;
    sv->n = 0;
    sv->alloc = 0;
}

static void
push_owned(struct strvec *sv, char *s)
{
    if (sv->n + 2 > sv->alloc) {
        size_t n = sv->alloc ? sv->alloc * 2 : 8;
        char **v = sv->alloc ? sv->v : NULL;
        sv->v = xreallocarray(v, n, sizeof(char *));
        sv->alloc = n;
    }
    sv->v[sv->n++] = s;
    sv->v[sv->n] = NULL;
}

void
strvec_push(struct strvec *sv, const char *s)
{
    push_owned(sv, xstrdup(s));
}

void
strvec_pushf(struct strvec *sv, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    push_owned(sv, xvasprintf(fmt, ap));
    va_end(ap);
}

void
strvec_pushl(struct strvec *sv, ...)
{
    va_list ap;
    const char *s;

    va_start(ap, sv);
    while ((s = va_arg(ap, const char *)) != NULL) {
        strvec_push(sv, s);
    }
    va_end(ap);
}

void
strvec_pushv(struct strvec *sv, char *const *v)
{
    for (; v != NULL && *v != NULL; v++) {
        strvec_push(sv, *v);
    }
}

void
strvec_pusharr(struct strvec *sv, const struct strvec *other)
{
    strvec_pushv(sv, other->v);
}

void
strvec_clear(struct strvec *sv)
{
    if (sv->alloc != 0) {
        for (size_t i = 0; i < sv->n; i++) {
            free(sv->v[i]);
        }
        free(sv->v);
    }
    strvec_init(sv);
}

char *
strvec_join(const struct strvec *sv, const char *sep)
{
    struct strbuf sb = STRBUF_INIT;

    for (size_t i = 0; i < sv->n; i++) {
        if (i > 0) {
            strbuf_addstr(&sb, sep);
        }
        strbuf_addstr(&sb, sv->v[i]);
    }
    return strbuf_detach(&sb);
}

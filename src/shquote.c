/* shquote.c: POSIX sh quoting. */
#include "crebuild/shquote.h"

#include <string.h>

static int
is_safe(const char *s)
{
    if (*s == '\0') {
        return 0;
    }
    for (; *s; s++) {
        if (strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                   "0123456789_@%+=:,./-",
                   *s) == NULL) {
            return 0;
        }
    }
    return 1;
}

void
shquote_word(struct strbuf *out, const char *s)
{
    if (is_safe(s)) {
        strbuf_addstr(out, s);
        return;
    }
    /* Single quotes protect everything except the quote itself, which is
     * written as '"'"' (close, double-quoted quote, reopen). */
    strbuf_addch(out, '\'');
    for (; *s; s++) {
        if (*s == '\'') {
            strbuf_addstr(out, "'\"'\"'");
        } else {
            strbuf_addch(out, *s);
        }
    }
    strbuf_addch(out, '\'');
}

void
shquote_argv(struct strbuf *out, const struct strvec *argv)
{
    for (size_t i = 0; i < argv->n; i++) {
        if (i > 0) {
            strbuf_addch(out, ' ');
        }
        shquote_word(out, argv->v[i]);
    }
}

char *
shquote_join(const struct strvec *argv)
{
    struct strbuf sb = STRBUF_INIT;

    shquote_argv(&sb, argv);
    return strbuf_detach(&sb);
}

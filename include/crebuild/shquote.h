/* shquote.h: POSIX sh quoting, the one audited way to turn an argv into the
 * single command string that SSH executes remotely. */
#ifndef CREBUILD_SHQUOTE_H
#define CREBUILD_SHQUOTE_H

#include "crebuild/strbuf.h"
#include "crebuild/strvec.h"

/* Append s quoted so that sh reads it back as exactly one word.  Words made
 * only of safe characters ([A-Za-z0-9_@%+=:,./-]) are left bare. */
void shquote_word(struct strbuf *out, const char *s);
/* Quote every element and join with spaces. */
void shquote_argv(struct strbuf *out, const struct strvec *argv);
/* Same, for display: quotes like Python's shlex.join (for messages). */
char *shquote_join(const struct strvec *argv);

#endif

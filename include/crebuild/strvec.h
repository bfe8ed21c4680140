/* strvec.h: NULL-terminated vector of owned strings; the only way to build
 * an argv, local or remote. */
#ifndef CREBUILD_STRVEC_H
#define CREBUILD_STRVEC_H

#include <stddef.h>

struct strvec {
    char **v; /* NULL-terminated; points at strvec_empty when empty */
    size_t n;
    size_t alloc;
};

extern char *strvec_empty[];
#define STRVEC_INIT        \
    {                      \
        strvec_empty, 0, 0 \
    }

void strvec_init(struct strvec *sv);
void strvec_push(struct strvec *sv, const char *s);
void strvec_pushf(struct strvec *sv, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Push a NULL-terminated list of strings. */
void strvec_pushl(struct strvec *sv, ...) __attribute__((sentinel));
void strvec_pushv(struct strvec *sv, char *const *v);
void strvec_pusharr(struct strvec *sv, const struct strvec *other);
void strvec_clear(struct strvec *sv);
/* Join with single spaces (for messages only, never for execution). */
char *strvec_join(const struct strvec *sv, const char *sep);

#endif

/* util.c: allocation helpers, error strings, number parsing. */
#include "crebuild/util.h"
#include "crebuild/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Atomic int cr_interrupted;

const char *
cr_strerror(int code)
{
    switch (code) {
    case CR_OK:
        return "success";
    case CR_EUSAGE:
        return "invalid usage";
    case CR_ESYS:
        return "system error";
    case CR_ECHILD:
        return "command failed";
    case CR_ESSH:
        return "ssh error";
    case CR_EPROTO:
        return "protocol error";
    case CR_ENIX:
        return "nix error";
    case CR_EHOSTKEY:
        return "host key verification failed";
    case CR_EAUTH:
        return "authentication failed";
    case CR_EINTR:
        return "interrupted";
    case CR_ECORRUPT:
        return "local store corruption";
    default:
        return "unknown error";
    }
}

void
cr_die(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_vmsg(LOG_ERROR, fmt, ap);
    va_end(ap);
    exit(1);
}

static void *
check(void *p)
{
    if (p == NULL) {
        cr_die("out of memory");
    }
    return p;
}

void *
xmalloc(size_t n)
{
    return check(malloc(n ? n : 1));
}

void *
xcalloc(size_t nmemb, size_t size)
{
    return check(calloc(nmemb ? nmemb : 1, size ? size : 1));
}

void *
xreallocarray(void *p, size_t nmemb, size_t size)
{
    return check(reallocarray(p, nmemb ? nmemb : 1, size ? size : 1));
}

char *
xstrdup(const char *s)
{
    return check(strdup(s));
}

char *
xstrndup(const char *s, size_t n)
{
    return check(strndup(s, n));
}

char *
xvasprintf(const char *fmt, va_list ap)
{
    char *s = NULL;

    if (vasprintf(&s, fmt, ap) < 0) {
        cr_die("out of memory");
    }
    return s;
}

char *
xasprintf(const char *fmt, ...)
{
    va_list ap;
    char *s;

    va_start(ap, fmt);
    s = xvasprintf(fmt, ap);
    va_end(ap);
    return s;
}

int
parse_uint(const char *s, unsigned long long max, unsigned long long *out)
{
    char *end = NULL;
    unsigned long long v;

    if (s == NULL || *s < '0' || *s > '9') {
        return -1;
    }
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v > max) {
        return -1;
    }
    *out = v;
    return 0;
}

void
secret_free(char *s)
{
    if (s != NULL) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

/* util.h: allocation that dies on OOM, number parsing, error codes. */
#ifndef CREBUILD_UTIL_H
#define CREBUILD_UTIL_H

#include <stddef.h>
#include <stdarg.h>

/* Error codes: fallible functions return 0 or one of these (negative). */
enum {
    CR_OK = 0,
    CR_EUSAGE = -1,    /* bad command line or input */
    CR_ESYS = -2,      /* a system call failed, errno is set */
    CR_ECHILD = -3,    /* a child process failed */
    CR_ESSH = -4,      /* SSH connection, authentication or channel failure */
    CR_EPROTO = -5,    /* the remote spoke the Nix protocol wrongly */
    CR_ENIX = -6,      /* Nix reported an error or answered unexpectedly */
    CR_EHOSTKEY = -7,  /* host key unknown or changed */
    CR_EAUTH = -8,     /* authentication or sudo password refused */
    CR_EINTR = -9,     /* interrupted by SIGINT/SIGTERM */
    CR_ECORRUPT = -10, /* local store content does not match its hash */
};

const char *cr_strerror(int code);

void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xreallocarray(void *p, size_t nmemb, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *xvasprintf(const char *fmt, va_list ap)
    __attribute__((format(printf, 1, 0)));

/* Print "crebuild: error: ..." and exit(1).  Only for OOM and main(). */
void cr_die(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

/* Parse a decimal unsigned number in [0, max]; 0 on success, -1 otherwise. */
int parse_uint(const char *s, unsigned long long max, unsigned long long *out);

/* Wipe and free a secret. NULL is a no-op. */
void secret_free(char *s);

/* Set by the SIGINT/SIGTERM handlers (see signals in main.c); read by
 * every thread (a lock-free atomic: safe in a signal handler). */
extern _Atomic int cr_interrupted;

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#endif

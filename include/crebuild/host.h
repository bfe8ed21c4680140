/* host.h: where commands run.  The executor, the copy engine and activation
 * see a host only through these operations; production wires them to local
 * processes (host_local.c) or to one libssh session (host_remote.c), and
 * unit tests wire fakes. */
#ifndef CREBUILD_HOST_H
#define CREBUILD_HOST_H

#include <stddef.h>
#include <sys/types.h>

#include "crebuild/strbuf.h"
#include "crebuild/strvec.h"

/* A bidirectional byte stream to a running command (a pipe pair locally, an
 * exec channel remotely).  The command's stderr is collected (bounded) and
 * handed back by close, or forwarded live when the stream was opened so. */
struct stream;
struct stream_ops {
    /* Write all n bytes; 0 or a CR_E* code. */
    int (*write)(struct stream *s, const void *buf, size_t n);
    /* Read up to n bytes, blocking until at least one byte or EOF.
     * Returns bytes read, 0 at EOF, CR_E* on failure. */
    ssize_t (*read)(struct stream *s, void *buf, size_t n);
    /* Like read but returns 0 immediately when nothing is buffered;
     * sets *eof at end of stream. */
    ssize_t (*read_nb)(struct stream *s, void *buf, size_t n, int *eof);
    /* Close our writing side (the command sees EOF on stdin). */
    int (*send_eof)(struct stream *s);
    /* Wait for exit, release everything.  *status gets the exit status
     * (128+signal, or -1 if unknown), err the collected stderr. */
    int (*close)(struct stream *s, int *status, struct strbuf *err);
    /* Optional: send EOF and release without waiting for the command,
     * which finishes by itself (its status and stderr are not read). */
    void (*release)(struct stream *s);
};
struct stream {
    const struct stream_ops *ops;
};

/* One command to run on a host. */
struct host_cmd {
    const struct strvec *argv;
    /* "NAME=VALUE" to set, or "NAME" to preserve from the host's own
     * environment.  Remote commands otherwise get a clean environment
     * (PATH kept), like nixos-rebuild-ng's `env -i` wrapper. */
    const struct strvec *env;
    int elevate;        /* run with the host's elevation (sudo) */
    struct strbuf *out; /* capture stdout here; NULL = forward */
    int out_to_stdout;  /* forward stdout to our stdout, not stderr */
    struct strbuf *err; /* capture stderr here; NULL = forward live */
    const char *input;  /* bytes for stdin (after any password) */
    size_t input_len;
    int tty_input; /* give the command our terminal (edit, repl) */
};

struct host;
struct host_ops {
    /* Run cmd to completion.  Returns 0 when it ran (its exit status in
     * *status, 128+signal for a signal), or a CR_E* code when it could not
     * be started or the connection failed. */
    int (*run)(struct host *h, const struct host_cmd *cmd, int *status);
    /* Start cmd with stdin/stdout connected to a stream. */
    int (*open_stream)(struct host *h,
                       const struct host_cmd *cmd,
                       struct stream **out);
    void (*free)(struct host *h);
};

struct host {
    const struct host_ops *ops;
    char *name; /* as given by the user ("localhost" for local) */
    int is_local;
    int is_root; /* the login user is root: elevation is a no-op */
};

static inline int
host_run(struct host *h, const struct host_cmd *cmd, int *status)
{
    return h->ops->run(h, cmd, status);
}

void host_free(struct host *h);

/* The local machine.  elevate_cmd is the elevation prefix for elevated
 * commands when not root ("sudo" plus NIX_SUDOOPTS), NULL for none. */
struct host *host_local_new(const struct strvec *elevate_prefix);

#endif

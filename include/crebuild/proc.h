/* proc.h: local child processes.  The only module that calls fork/exec. */
#ifndef CREBUILD_PROC_H
#define CREBUILD_PROC_H

#include <sys/types.h>

#include "crebuild/host.h"
#include "crebuild/strbuf.h"
#include "crebuild/strvec.h"

struct proc_spec {
    const struct strvec *argv; /* argv[0] looked up in PATH */
    char *const *envp;         /* full environment; NULL = inherit */
    const char *input;         /* written to stdin, then closed */
    size_t input_len;
    int tty;            /* inherit our stdin (editors, repl) */
    struct strbuf *out; /* capture stdout; NULL = out_fd */
    int out_fd;         /* where stdout goes when not captured */
    struct strbuf *err; /* capture stderr; NULL = err_fd */
    int err_fd;
};

/* Run to completion.  0 when the program ran (*status = exit status, or
 * 128+signal); CR_ECHILD with a logged message when it could not be
 * started (e.g. not found). */
int proc_run(const struct proc_spec *spec, int *status);

/* Start with stdin/stdout as a stream; stderr goes to a bounded in-memory
 * file read back by close. */
int proc_open_stream(const struct proc_spec *spec, struct stream **out);

/* Forward a signal to every running child (for SIGINT/SIGTERM). */
void proc_kill_all(int sig);

#endif

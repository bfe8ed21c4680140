/* proc.h: local child processes.  The only module that calls fork/exec. */
#ifndef CREBUILD_PROC_H
#define CREBUILD_PROC_H

#include <pthread.h>
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

/* The child a thread runs now, for another thread to stop: after
 * proc_watch_thread(w), the calling thread's proc_run children are
 * recorded in w until reaped, and proc_kill_watched(w, sig) signals the
 * one running, if any (never a reaped pid), and every one started under w
 * after it (a kill that falls between the thread's last check and its
 * fork is not lost). */
struct proc_watch {
    pthread_mutex_t mu;
    pid_t pid;  /* 0: none */
    int killed; /* the signal proc_kill_watched sent, or 0 */
};
void proc_watch_init(struct proc_watch *w);
void proc_watch_destroy(struct proc_watch *w);
void proc_watch_thread(struct proc_watch *w); /* NULL: stop recording */
void proc_kill_watched(struct proc_watch *w, int sig);

#endif

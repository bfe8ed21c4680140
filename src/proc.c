/* proc.c: fork/exec with pipes, stdin feeding and output capture. */
#include "crebuild/proc.h"
#include "crebuild/log.h"
#include "crebuild/util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

/* Running children, for proc_kill_all: threads (the early build, the
 * copy's metadata) start children too, and a signal handler reads the
 * table, so its slots are lock-free atomics. */
#define MAX_CHILDREN 16
static _Atomic pid_t children[MAX_CHILDREN];

static void
track(pid_t pid, int add)
{
    for (size_t i = 0; i < MAX_CHILDREN; i++) {
        pid_t expect = add ? 0 : pid;

        if (atomic_compare_exchange_strong(
                &children[i], &expect, add ? pid : 0)) {
            return;
        }
    }
}

void
proc_kill_all(int sig)
{
    for (size_t i = 0; i < MAX_CHILDREN; i++) {
        pid_t pid = atomic_load(&children[i]);

        if (pid > 0) {
            kill(pid, sig);
        }
    }
}

/* The calling thread's watch (proc_watch_thread), or NULL. */
static _Thread_local struct proc_watch *tl_watch;

void
proc_watch_init(struct proc_watch *w)
{
    pthread_mutex_init(&w->mu, NULL);
    w->pid = 0;
    w->killed = 0;
}

void
proc_watch_destroy(struct proc_watch *w)
{
    pthread_mutex_destroy(&w->mu);
}

void
proc_watch_thread(struct proc_watch *w)
{
    tl_watch = w;
}

void
proc_kill_watched(struct proc_watch *w, int sig)
{
    pthread_mutex_lock(&w->mu);
    w->killed = sig;
    if (w->pid > 0) {
        kill(w->pid, sig);
    }
    pthread_mutex_unlock(&w->mu);
}

static void
watch_set(pid_t pid)
{
    if (tl_watch != NULL) {
        pthread_mutex_lock(&tl_watch->mu);
        tl_watch->pid = pid;
        /* Killed while this child was being started: it gets the signal
         * too (the caller's own check came before the fork). */
        if (pid > 0 && tl_watch->killed != 0) {
            kill(pid, tl_watch->killed);
        }
        pthread_mutex_unlock(&tl_watch->mu);
    }
}

static int
wait_child(pid_t pid, int *status)
{
    int st;

    if (tl_watch != NULL && tl_watch->pid == pid) {
        /* Ended (or failed to wait): forget it before it is reaped, so
         * that proc_kill_watched never signals a pid that was reused. */
        siginfo_t info;

        while (waitid(P_PID, (id_t)pid, &info, WEXITED | WNOWAIT) < 0 &&
               errno == EINTR) {
        }
        watch_set(0);
    }
    while (waitpid(pid, &st, 0) < 0) {
        if (errno != EINTR) {
            track(pid, 0);
            return CR_ESYS;
        }
    }
    track(pid, 0);
    if (WIFEXITED(st)) {
        *status = WEXITSTATUS(st);
    } else if (WIFSIGNALED(st)) {
        *status = 128 + WTERMSIG(st);
    } else {
        *status = -1;
    }
    return 0;
}

static void
close_fd(int *fd)
{
    if (*fd >= 0) {
        close(*fd);
        *fd = -1;
    }
}

/* Fork and exec.  fds[0..2] are the child's stdin/out/err (-1 = inherit).
 * Exec failures come back through a close-on-exec pipe. */
static int
spawn(const struct proc_spec *spec, const int fds[3], pid_t *pid_out)
{
    int notify[2] = {-1, -1};
    sigset_t all, old;
    pid_t pid;
    int child_errno = 0;
    ssize_t n;

    if (spec->argv->n == 0) {
        return CR_EUSAGE;
    }
    if (pipe2(notify, O_CLOEXEC) < 0) {
        return CR_ESYS;
    }
    sigfillset(&all);
    sigprocmask(SIG_SETMASK, &all, &old);
    pid = fork();
    if (pid == 0) {
        struct sigaction dfl;
        memset(&dfl, 0, sizeof(dfl));
        dfl.sa_handler = SIG_DFL;
        for (int s = 1; s < NSIG; s++) {
            sigaction(s, &dfl, NULL);
        }
        sigprocmask(SIG_SETMASK, &old, NULL);
        for (int i = 0; i < 3; i++) {
            if (fds[i] >= 0 && fds[i] != i) {
                dup2(fds[i], i);
            }
        }
        /* Close everything but stdio and the notify pipe (libssh's
         * sockets are not close-on-exec). */
        if (notify[1] > 3) {
            close_range(3, (unsigned)notify[1] - 1, 0);
        }
        close_range((unsigned)notify[1] + 1, ~0U, 0);
        if (spec->envp != NULL) {
            execvpe(spec->argv->v[0], spec->argv->v, spec->envp);
        } else {
            execvp(spec->argv->v[0], spec->argv->v);
        }
        child_errno = errno;
        n = write(notify[1], &child_errno, sizeof(child_errno));
        _exit(127);
    }
    sigprocmask(SIG_SETMASK, &old, NULL);
    close(notify[1]);
    if (pid < 0) {
        close(notify[0]);
        return CR_ESYS;
    }
    track(pid, 1);
    n = read(notify[0], &child_errno, sizeof(child_errno));
    close(notify[0]);
    if (n == (ssize_t)sizeof(child_errno)) {
        int st;
        wait_child(pid, &st);
        log_error(
            "cannot run '%s': %s", spec->argv->v[0], strerror(child_errno));
        return CR_ECHILD;
    }
    *pid_out = pid;
    return 0;
}

/* Is argv[0] runnable?  Checked before fork so "not found" is an error
 * message rather than an exit status 127. */
static int
find_program(const char *name)
{
    const char *path = getenv("PATH");
    char *copy, *dir, *save = NULL;
    int found = 0;

    if (strchr(name, '/') != NULL) {
        return access(name, X_OK) == 0;
    }
    copy = xstrdup(path ? path : "/usr/bin:/bin");
    for (dir = strtok_r(copy, ":", &save); dir && !found;
         dir = strtok_r(NULL, ":", &save)) {
        char *p = xasprintf("%s/%s", *dir ? dir : ".", name);
        found = access(p, X_OK) == 0;
        free(p);
    }
    free(copy);
    return found;
}

static void
drain_into(int *fd, struct strbuf *sb)
{
    char buf[65536];
    ssize_t n = read(*fd, buf, sizeof(buf));

    if (n > 0) {
        strbuf_add(sb, buf, (size_t)n);
    } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
        close_fd(fd);
    }
}

int
proc_run(const struct proc_spec *spec, int *status)
{
    int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1};
    int fds[3];
    pid_t pid = -1;
    size_t written = 0;
    int rc;

    *status = -1;
    if (!find_program(spec->argv->v[0])) {
        log_error("cannot run '%s': command not found", spec->argv->v[0]);
        return CR_ECHILD;
    }
    if ((!spec->tty && pipe2(in, O_CLOEXEC) < 0) ||
        (spec->out && pipe2(out, O_CLOEXEC) < 0) ||
        (spec->err && pipe2(err, O_CLOEXEC) < 0)) {
        rc = CR_ESYS;
        goto out;
    }
    fds[0] = spec->tty ? -1 : in[0];
    fds[1] = spec->out ? out[1] : spec->out_fd;
    fds[2] = spec->err ? err[1] : spec->err_fd;
    rc = spawn(spec, fds, &pid);
    if (rc == 0) {
        watch_set(pid);
    }
    close_fd(&in[0]);
    close_fd(&out[1]);
    close_fd(&err[1]);
    if (rc != 0) {
        goto out;
    }
    if (in[1] >= 0 && spec->input_len == 0) {
        close_fd(&in[1]);
    }
    if (in[1] >= 0) {
        fcntl(in[1], F_SETFL, O_NONBLOCK);
    }
    while (in[1] >= 0 || out[0] >= 0 || err[0] >= 0) {
        struct pollfd p[3];
        nfds_t np = 0;
        int iw = -1, io = -1, ie = -1;
        if (in[1] >= 0) {
            iw = (int)np;
            p[np++] = (struct pollfd){in[1], POLLOUT, 0};
        }
        if (out[0] >= 0) {
            io = (int)np;
            p[np++] = (struct pollfd){out[0], POLLIN, 0};
        }
        if (err[0] >= 0) {
            ie = (int)np;
            p[np++] = (struct pollfd){err[0], POLLIN, 0};
        }
        if (poll(p, np, -1) < 0) {
            if (errno == EINTR) {
                continue;
            }
            break;
        }
        if (iw >= 0 && p[iw].revents) {
            ssize_t n =
                write(in[1], spec->input + written, spec->input_len - written);
            if (n > 0) {
                written += (size_t)n;
            }
            if ((n < 0 && errno != EAGAIN && errno != EINTR) ||
                written == spec->input_len) {
                close_fd(&in[1]);
            }
        }
        if (io >= 0 && p[io].revents) {
            drain_into(&out[0], spec->out);
        }
        if (ie >= 0 && p[ie].revents) {
            drain_into(&err[0], spec->err);
        }
    }
    rc = wait_child(pid, status);
out:
    close_fd(&in[0]);
    close_fd(&in[1]);
    close_fd(&out[0]);
    close_fd(&out[1]);
    close_fd(&err[0]);
    close_fd(&err[1]);
    return rc;
}

/* A local stream: pipes to the child's stdin/stdout, stderr in a memfd. */
struct local_stream {
    struct stream base;
    pid_t pid;
    int to_child;
    int from_child;
    int errfd;
};

static int
ls_write(struct stream *s, const void *buf, size_t n)
{
    struct local_stream *ls = (struct local_stream *)s;
    const char *p = buf;

    while (n > 0) {
        ssize_t w = write(ls->to_child, p, n);
        if (w < 0) {
            if (errno == EINTR && !cr_interrupted) {
                continue;
            }
            return cr_interrupted ? CR_EINTR : CR_ESYS;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static ssize_t
ls_read(struct stream *s, void *buf, size_t n)
{
    struct local_stream *ls = (struct local_stream *)s;

    for (;;) {
        ssize_t r = read(ls->from_child, buf, n);
        if (r >= 0) {
            return r;
        }
        if (errno != EINTR || cr_interrupted) {
            return cr_interrupted ? CR_EINTR : CR_ESYS;
        }
    }
}

static ssize_t
ls_read_nb(struct stream *s, void *buf, size_t n, int *eof)
{
    struct local_stream *ls = (struct local_stream *)s;
    struct pollfd p = {ls->from_child, POLLIN, 0};

    *eof = 0;
    if (poll(&p, 1, 0) <= 0) {
        return 0;
    }
    ssize_t r = read(ls->from_child, buf, n);
    if (r == 0) {
        *eof = 1;
    }
    return r < 0 ? (errno == EINTR || errno == EAGAIN ? 0 : CR_ESYS) : r;
}

static int
ls_send_eof(struct stream *s)
{
    struct local_stream *ls = (struct local_stream *)s;

    close_fd(&ls->to_child);
    return 0;
}

static int
ls_close(struct stream *s, int *status, struct strbuf *err)
{
    struct local_stream *ls = (struct local_stream *)s;
    int st = -1, rc;

    close_fd(&ls->to_child);
    close_fd(&ls->from_child);
    rc = wait_child(ls->pid, &st);
    if (status != NULL) {
        *status = st;
    }
    if (err != NULL && ls->errfd >= 0) {
        char buf[65536];
        off_t end = lseek(ls->errfd, 0, SEEK_END);
        off_t start = end > (off_t)sizeof(buf) ? end - (off_t)sizeof(buf) : 0;
        ssize_t n = pread(ls->errfd, buf, sizeof(buf), start);
        if (n > 0) {
            strbuf_add(err, buf, (size_t)n);
        }
    }
    close_fd(&ls->errfd);
    free(ls);
    return rc;
}

static const struct stream_ops local_stream_ops = {
    .write = ls_write,
    .read = ls_read,
    .read_nb = ls_read_nb,
    .send_eof = ls_send_eof,
    .close = ls_close,
};

int
proc_open_stream(const struct proc_spec *spec, struct stream **out)
{
    int in[2] = {-1, -1}, o[2] = {-1, -1};
    int errfd = -1, fds[3];
    pid_t pid = -1;
    int rc;

    *out = NULL;
    if (!find_program(spec->argv->v[0])) {
        log_error("cannot run '%s': command not found", spec->argv->v[0]);
        return CR_ECHILD;
    }
    if (pipe2(in, O_CLOEXEC) < 0 || pipe2(o, O_CLOEXEC) < 0) {
        rc = CR_ESYS;
        goto fail;
    }
    errfd = memfd_create("crebuild-stderr", MFD_CLOEXEC);
    if (errfd < 0) {
        rc = CR_ESYS;
        goto fail;
    }
    fds[0] = in[0];
    fds[1] = o[1];
    fds[2] = errfd;
    rc = spawn(spec, fds, &pid);
    if (rc != 0) {
        goto fail;
    }
    close_fd(&in[0]);
    close_fd(&o[1]);
    struct local_stream *ls = xcalloc(1, sizeof(*ls));
    ls->base.ops = &local_stream_ops;
    ls->pid = pid;
    ls->to_child = in[1];
    ls->from_child = o[0];
    ls->errfd = errfd;
    *out = &ls->base;
    return 0;
fail:
    close_fd(&in[0]);
    close_fd(&in[1]);
    close_fd(&o[0]);
    close_fd(&o[1]);
    close_fd(&errfd);
    return rc;
}

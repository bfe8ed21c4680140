/* peakrss.c: run a command, report its wall time and peak memory.
 *
 *   peakrss RESULTFILE CMD [ARG]...
 *
 * Appends one line to RESULTFILE:
 *   wall=<seconds> self_kib=<VmHWM of CMD itself> tree_kib=<ru_maxrss>
 *   cpu=<user+system seconds of CMD and the descendants it waited for> rc=<status>
 * self_kib is the high-water mark of CMD's own process, read from
 * /proc/PID/status when it exits (a ptrace exit stop, taken before its memory
 * is released); children it starts (nix, ssh, ...) are not included.  tree_kib
 * is what `/usr/bin/time -f %M` prints: the largest of CMD and every
 * descendant it waited for.  Exits with CMD's status (128+N for signal N).
 * Part of crebuild's benchmark (bench/run.sh); not installed. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long
read_hwm(pid_t pid)
{
    char path[64], line[256];
    long kib = -1;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    f = fopen(path, "r");
    if (f == NULL) {
        return -1;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, "VmHWM:", 6) == 0) {
            kib = strtol(line + 6, NULL, 10);
            break;
        }
    }
    fclose(f);
    return kib;
}

static double
now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int
main(int argc, char **argv)
{
    struct rusage ru;
    long self = -1;
    int st, rc;
    double t0;
    pid_t pid;
    FILE *out;

    if (argc < 3) {
        fprintf(stderr, "usage: peakrss RESULTFILE CMD [ARG]...\n");
        return 2;
    }
    t0 = now();
    pid = fork();
    if (pid < 0) {
        perror("fork");
        return 2;
    }
    if (pid == 0) {
        if (ptrace(PTRACE_TRACEME, 0, NULL, NULL) != 0) {
            perror("ptrace");
            _exit(127);
        }
        raise(SIGSTOP);
        execvp(argv[2], argv + 2);
        fprintf(stderr, "peakrss: cannot run %s: %s\n", argv[2], strerror(errno));
        _exit(127);
    }
    /* The child's SIGSTOP: set options, let it exec. */
    if (waitpid(pid, &st, 0) != pid || !WIFSTOPPED(st)) {
        fprintf(stderr, "peakrss: child did not stop\n");
        return 2;
    }
    ptrace(PTRACE_SETOPTIONS, pid, NULL,
           (void *)(long)(PTRACE_O_TRACEEXIT | PTRACE_O_TRACEEXEC));
    ptrace(PTRACE_CONT, pid, NULL, NULL);
    for (;;) {
        if (wait4(pid, &st, 0, &ru) < 0) {
            if (errno == EINTR) {
                continue;
            }
            perror("wait4");
            return 2;
        }
        if (WIFEXITED(st) || WIFSIGNALED(st)) {
            break;
        }
        if (WIFSTOPPED(st)) {
            int event = st >> 16;
            int sig = WSTOPSIG(st);
            siginfo_t si;
            if (event == PTRACE_EVENT_EXIT) {
                self = read_hwm(pid);
                sig = 0;
            } else if (event != 0) {
                sig = 0; /* exec */
            } else if (ptrace(PTRACE_GETSIGINFO, pid, NULL, &si) != 0) {
                sig = 0; /* group stop */
            }
            ptrace(PTRACE_CONT, pid, NULL, (void *)(long)sig);
        }
    }
    rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    out = fopen(argv[1], "a");
    if (out == NULL) {
        perror(argv[1]);
        return 2;
    }
    fprintf(out, "wall=%.3f self_kib=%ld tree_kib=%ld cpu=%.3f rc=%d\n",
            now() - t0, self, ru.ru_maxrss,
            (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6,
            rc);
    fclose(out);
    return rc;
}

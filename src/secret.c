/* secret.c: passwords from a terminal, a descriptor or a file. */
#include "crebuild/secret.h"
#include "crebuild/log.h"
#include "crebuild/util.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <termios.h>
#include <unistd.h>

#define SECRET_MAX 1024

void
secret_protect_process(void)
{
    struct rlimit rl = {0, 0};

    setrlimit(RLIMIT_CORE, &rl);
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

/* Read one line from fd into a locked buffer.  NULL (errno set) when a
 * read fails: a descriptor that is not open, a directory, an I/O error
 * must not pass for an empty password. */
static char *
read_line(int fd)
{
    char *buf = xmalloc(SECRET_MAX);
    size_t n = 0;

    mlock(buf, SECRET_MAX);
    while (n < SECRET_MAX - 1) {
        char c;
        ssize_t r = read(fd, &c, 1);
        if (r < 0 && errno == EINTR && !cr_interrupted) {
            continue;
        }
        if (r < 0) {
            int e = errno;

            buf[n] = '\0';
            secret_free(buf);
            errno = e;
            return NULL;
        }
        if (r == 0 || c == '\n') {
            break;
        }
        buf[n++] = c;
    }
    buf[n] = '\0';
    if (n > 0 && buf[n - 1] == '\r') {
        buf[--n] = '\0';
    }
    return buf;
}

char *
secret_read_tty(const char *prompt)
{
    struct termios old, quiet;
    int fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
    char *s;
    ssize_t w;

    if (fd < 0) {
        log_error("cannot ask for a password: no terminal (use "
                  "--sudo-password-fd or --sudo-password-file)");
        return NULL;
    }
    w = write(fd, prompt, strlen(prompt));
    (void)w;
    if (tcgetattr(fd, &old) == 0) {
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
        tcsetattr(fd, TCSAFLUSH, &quiet);
        s = read_line(fd);
        tcsetattr(fd, TCSAFLUSH, &old);
    } else {
        s = read_line(fd);
    }
    w = write(fd, "\n", 1);
    close(fd);
    if (cr_interrupted) {
        secret_free(s);
        return NULL;
    }
    if (s == NULL) {
        log_error("cannot read the password from the terminal: %s",
                  strerror(errno));
    }
    return s;
}

char *
secret_read_fd(int fd)
{
    char *s = read_line(fd);

    if (s == NULL && !cr_interrupted) {
        log_error("cannot read the password from file descriptor %d: %s",
                  fd,
                  strerror(errno));
    }
    return s;
}

char *
secret_read_file(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    char *s;

    if (fd < 0) {
        log_error("cannot read password file '%s': %s", path, strerror(errno));
        return NULL;
    }
    s = read_line(fd);
    if (s == NULL && !cr_interrupted) {
        log_error("cannot read password file '%s': %s", path, strerror(errno));
    }
    close(fd);
    return s;
}

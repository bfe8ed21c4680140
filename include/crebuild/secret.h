/* secret.h: reading passwords without echo and keeping them out of core
 * dumps.  The returned strings are wiped by secret_free() (util.h). */
#ifndef CREBUILD_SECRET_H
#define CREBUILD_SECRET_H

/* Disable core dumps and ptrace attach for the rest of the process. */
void secret_protect_process(void);

/* Prompt on /dev/tty with echo off.  NULL (and a logged error) when there
 * is no terminal. */
char *secret_read_tty(const char *prompt);
/* First line of a file descriptor / file (trailing newline dropped). */
char *secret_read_fd(int fd);
char *secret_read_file(const char *path);

#endif

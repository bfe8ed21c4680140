/* ssh.h: one authenticated libssh session per host, and exec channels
 * multiplexed on it.  src/ssh.c is the only file that includes libssh.
 *
 * Errors are reported once, with the host name (connecting: through *err;
 * channels: logged here), and returned as
 * CR_ESSH (connection, protocol or channel failure), CR_EHOSTKEY (host key
 * unknown and not accepted, or changed), CR_EAUTH (login refused) or
 * CR_EINTR (cr_interrupted was set while we waited).
 *
 * Everything runs on the caller's thread, except jump hosts (ProxyJump):
 * each hop is a libssh session of its own (same host key checks and login
 * as the final host), connected and authenticated on the caller's thread,
 * that opens a direct-tcpip channel to the next host; the next session
 * gets one end of a socket pair (SSH_OPTIONS_FD) and a bridge thread, which
 * from then on owns the hop's session, copies bytes between the other end
 * and the channel.  Freeing a connection closes its socket; the bridge
 * sees the end, closes the channel, frees the hop (and, in turn, the hops
 * before it) and is joined.  No `ssh` process is started.
 *
 * ssh_config: read by sshconfig.h (not by libssh), after NIX_SSHOPTS.  A
 * hop takes User and Port from the ProxyJump entry and the rest of its
 * settings from NIX_SSHOPTS (all but User, Port, HostName, ProxyJump and
 * ProxyCommand) and then from ssh_config for the hop's name.
 *
 * Several channels may be open at once on one connection; waiting on any
 * of them keeps every channel's stderr drained (forwarded or captured), so
 * one idle channel cannot stall the session.
 *
 * Limits (libssh 0.10):
 * - New keys are written unhashed.
 * - IdentitiesOnly / IdentityAgent=none keep the agent out; libssh still
 *   tries its default identity files after the -i ones.
 * - Keepalives: SSH_MSG_IGNORE every ServerAliveInterval while waiting, and
 *   TCP_USER_TIMEOUT/TCP keepalive of interval * ServerAliveCountMax on the
 *   socket (libssh 0.10 has no keepalive option).
 * - On interrupt the command is sent SIGINT through a "signal" channel
 *   request; OpenSSH 9.2 refuses those for root logins, where the command
 *   only sees its stdin close. */
#ifndef CREBUILD_SSH_H
#define CREBUILD_SSH_H

#include <stddef.h>
#include <sys/types.h>

#include "crebuild/sshopts.h"
#include "crebuild/strbuf.h"

struct ssh_conn;
struct ssh_chan;

/* Defaults crebuild uses when neither NIX_SSHOPTS nor ~/.ssh/config sets
 * them (OpenSSH has no connect timeout and no keepalive by default; a
 * deploy tool must fail in bounded time). */
#define CR_SSH_CONNECT_TIMEOUT 30 /* seconds */
#define CR_SSH_ALIVE_INTERVAL  15 /* seconds; 0 disables */
#define CR_SSH_ALIVE_COUNT     3
/* Cipher preference when Ciphers is not set. */
#define CR_SSH_DEFAULT_CIPHERS                              \
    "aes128-gcm@openssh.com,chacha20-poly1305@openssh.com," \
    "aes256-gcm@openssh.com,aes128-ctr,aes256-ctr"

/* Connect to t (parsed by sshopts), verify the host key like OpenSSH (see
 * t->strict; a changed key is always refused) and log in (none, then
 * ssh-agent, then identity files; an encrypted key's passphrase is asked on
 * /dev/tty unless batch is set or BatchMode=yes).  On success *out is the
 * connection (free with ssh_conn_free).  Returns 0 or CR_ESSH, CR_EHOSTKEY,
 * CR_EAUTH, CR_EUSAGE (a bad -F file); then *err is the one-line message,
 * naming the host, for the caller to report (caller frees; nothing was
 * logged but warnings such as "permanently added"). */
int ssh_conn_open(const struct ssh_target *t,
                  int batch,
                  struct ssh_conn **out,
                  char **err);
/* Close every channel still open, disconnect and free.  NULL is a no-op. */
void ssh_conn_free(struct ssh_conn *c);
/* "user@host" as given (borrowed). */
const char *ssh_conn_name(const struct ssh_conn *c);
/* The login user after ~/.ssh/config (borrowed; may be NULL). */
const char *ssh_conn_user(const struct ssh_conn *c);

/* Open an exec channel running command (one string for the remote login
 * shell: build it with remote_command).  The command's stderr is appended
 * to err_capture when given (bound it with strbuf's max), otherwise
 * forwarded line by line to our stderr (lines longer than 64 KiB are cut).
 * err_capture must outlive the channel. */
int ssh_chan_exec(struct ssh_conn *c,
                  const char *command,
                  struct strbuf *err_capture,
                  struct ssh_chan **out);
/* Write all n bytes to the command's stdin, within the channel's window,
 * draining stderr while waiting.  0 or CR_ESSH/CR_EINTR. */
int ssh_chan_write(struct ssh_chan *ch, const void *buf, size_t n);
/* Write what the window takes now, without waiting: bytes written (may be
 * 0) or CR_ESSH. */
ssize_t ssh_chan_write_some(struct ssh_chan *ch, const void *buf, size_t n);
/* Read stdout: block until at least one byte or EOF.  Returns bytes, 0 at
 * EOF, CR_ESSH or CR_EINTR. */
ssize_t ssh_chan_read(struct ssh_chan *ch, void *buf, size_t n);
/* Read what is buffered now (0 if nothing); *eof set at end of stdout. */
ssize_t ssh_chan_read_nb(struct ssh_chan *ch, void *buf, size_t n, int *eof);
/* Wait up to timeout_ms for anything from the server (data, window,
 * exit status), keeping keepalives going.  0, CR_ESSH or CR_EINTR. */
int ssh_chan_wait(struct ssh_chan *ch, int timeout_ms);
/* Close our stdin side: the command reads EOF.  0 or CR_ESSH. */
int ssh_chan_send_eof(struct ssh_chan *ch);
/* Send EOF if not sent, discard stdout until EOF, wait for the exit
 * status.  *status: exit code, 128+signal, or -1 when the server sent
 * none.  Returns 0, CR_ESSH or CR_EINTR.  The channel stays allocated (for
 * ssh_chan_stderr_tail); free it with ssh_chan_free. */
int ssh_chan_finish(struct ssh_chan *ch, int *status);
/* Free the channel; a command still running is sent SIGINT and EOF first.
 * NULL is a no-op. */
void ssh_chan_free(struct ssh_chan *ch);
/* Send EOF, close and free without waiting: the command ends by itself
 * at end of input (its exit status is not read).  NULL is a no-op. */
void ssh_chan_release(struct ssh_chan *ch);
/* ssh_chan_finish then ssh_chan_free: the channel is freed on every path. */
int ssh_chan_close(struct ssh_chan *ch, int *status);
/* Interrupt: send SIGINT and EOF, close and free without waiting. */
void ssh_chan_abort(struct ssh_chan *ch);
/* The last (up to 1 KiB) bytes of the command's stderr, for hints. */
const char *ssh_chan_stderr_tail(const struct ssh_chan *ch);

#endif

/* sshrun.c: test driver for the libssh transport.  Connects with
 * host_remote_new (NIX_SSHOPTS from the environment) and runs one command.
 *
 *   sshrun [options] HOST [--] ARGV...
 *     -b            batch: never prompt
 *     -e KIND       elevation: none (default), sudo, run0
 *     -s            run the command elevated
 *     -P FILE       sudo password: first line of FILE
 *     -O WORDS      NIX_SUDOOPTS (split like NIX_SSHOPTS)
 *     -c            check sudo first (host_remote_check_sudo)
 *     -E NAME[=V]   environment for the command (repeatable)
 *     -i FILE       stdin for the command (run mode)
 *     -o            capture stdout, print "out=<...>" afterwards
 *     -C            capture stderr, print "err=<...>" afterwards
 *     -S            stream mode: our stdin -> command, its stdout -> ours
 *     -l            stream mode, the command echoes: bound how far ahead
 *     -2            two channels at once (see two_channels)
 *     -L            let a stream go, then run another command (see let_go)
 *     -v            trace logging
 *
 * Exit status: the command's, or 100 - CR_E* (101 usage, 104 ssh,
 * 107 host key, 108 auth, 109 interrupted) when it could not run. */
#include "crebuild/host.h"
#include "crebuild/log.h"
#include "crebuild/remote.h"
#include "crebuild/sshopts.h"
#include "crebuild/strbuf.h"
#include "crebuild/strvec.h"
#include "crebuild/util.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (256 * 1024)

static void
on_signal(int sig)
{
    (void)sig;
    cr_interrupted = 1;
}

static int
code(int rc)
{
    return rc < 0 ? 100 - rc : rc;
}

static double
now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);

        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w < 0) {
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Our stdin to the command, its stdout to ours, interleaved.  With echo
 * (-l, for a command that echoes its input such as cat), at most ECHO_LAG
 * bytes are sent ahead of what came back: a blocking write does not read,
 * so an echo that falls further behind than the windows and pipes between
 * us hold would leave both ends waiting for each other. */
#define ECHO_LAG (1024 * 1024)
static int echo;

static int
stream_mode(struct host *h, const struct host_cmd *cmd)
{
    struct stream *s = NULL;
    struct strbuf err = STRBUF_INIT;
    char *buf = xmalloc(CHUNK);
    unsigned long long sent = 0, got = 0;
    double t0 = now();
    int in_eof = 0;
    int status = -1;
    int rc;

    rc = h->ops->open_stream(h, cmd, &s);
    if (rc != 0) {
        free(buf);
        return code(rc);
    }
    for (;;) {
        int eof = 0;
        ssize_t r;

        if (echo && !in_eof && sent - got > ECHO_LAG) {
            r = s->ops->read(s, buf, CHUNK);
            if (r <= 0) {
                rc = r < 0 ? (int)r : CR_EPROTO; /* no echo */
                break;
            }
            got += (unsigned long long)r;
            write_all(1, buf, (size_t)r);
            continue;
        }
        if (!in_eof) {
            ssize_t n = read(0, buf, CHUNK);

            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n <= 0) {
                in_eof = 1;
                rc = s->ops->send_eof(s);
            } else {
                rc = s->ops->write(s, buf, (size_t)n);
                sent += (unsigned long long)n;
            }
            if (rc != 0) {
                break;
            }
        }
        do {
            r = in_eof ? s->ops->read(s, buf, CHUNK)
                       : s->ops->read_nb(s, buf, CHUNK, &eof);
            if (r > 0) {
                got += (unsigned long long)r;
                write_all(1, buf, (size_t)r);
            }
        } while (r > 0 && !in_eof);
        if (r < 0) {
            rc = (int)r;
            break;
        }
        if (in_eof && r == 0) {
            break;
        }
    }
    {
        int crc = s->ops->close(s, &status, &err);

        if (rc == 0) {
            rc = crc;
        }
    }
    fprintf(stderr,
            "stream: sent %llu got %llu bytes in %.3f s\n",
            sent,
            got,
            now() - t0);
    if (err.len > 0) {
        fprintf(stderr, "stream-stderr=<%s>\n", err.buf);
    }
    strbuf_release(&err);
    free(buf);
    return rc != 0 ? code(rc) : status;
}

/* Stream A runs `cat`; while it is open, B (`sh -c 'echo B; echo Berr >&2'`)
 * runs to completion on the same session, then A is written, read back and
 * closed. */
static int
two_channels(struct host *h)
{
    struct strvec a = STRVEC_INIT, b = STRVEC_INIT;
    struct host_cmd ca, cb;
    struct strbuf bout = STRBUF_INIT, berr = STRBUF_INIT, aerr = STRBUF_INIT;
    struct stream *s = NULL;
    char buf[64];
    size_t got = 0;
    int status = -1, bstatus = -1;
    int rc;

    memset(&ca, 0, sizeof(ca));
    memset(&cb, 0, sizeof(cb));
    strvec_pushl(&a, "sh", "-c", "echo Aerr >&2; cat", NULL);
    strvec_pushl(&b, "sh", "-c", "echo B; echo Berr >&2", NULL);
    ca.argv = &a;
    cb.argv = &b;
    cb.out = &bout;
    cb.err = &berr;
    rc = h->ops->open_stream(h, &ca, &s);
    if (rc == 0) {
        rc = s->ops->write(s, "hello ", 6);
    }
    if (rc == 0) {
        rc = host_run(h, &cb, &bstatus);
    }
    if (rc == 0) {
        rc = s->ops->write(s, "world", 5);
    }
    if (rc == 0) {
        rc = s->ops->send_eof(s);
    }
    while (rc == 0 && got < sizeof(buf) - 1) {
        ssize_t r = s->ops->read(s, buf + got, sizeof(buf) - 1 - got);

        if (r < 0) {
            rc = (int)r;
        }
        if (r <= 0) {
            break;
        }
        got += (size_t)r;
    }
    buf[got] = '\0';
    if (s != NULL) {
        int crc = s->ops->close(s, &status, &aerr);

        if (rc == 0) {
            rc = crc;
        }
    }
    printf("A=<%s> A-status=%d A-err=<%s> B=<%s> B-err=<%s> B-status=%d\n",
           buf,
           status,
           aerr.buf,
           bout.buf,
           berr.buf,
           bstatus);
    strvec_clear(&a);
    strvec_clear(&b);
    strbuf_release(&bout);
    strbuf_release(&berr);
    strbuf_release(&aerr);
    return rc != 0 ? code(rc) : 0;
}

/* Stream A (`cat >/dev/null; exit 7`) is let go of (EOF, no wait); B
 * then runs long enough on the same session for A's exit-status and close
 * to arrive while the session is read for B. */
static int
let_go(struct host *h)
{
    struct strvec a = STRVEC_INIT, b = STRVEC_INIT;
    struct host_cmd ca, cb;
    struct strbuf bout = STRBUF_INIT;
    struct stream *s = NULL;
    int bstatus = -1;
    int rc;

    memset(&ca, 0, sizeof(ca));
    memset(&cb, 0, sizeof(cb));
    strvec_pushl(&a, "sh", "-c", "cat >/dev/null; exit 7", NULL);
    strvec_pushl(&b, "sh", "-c", "sleep 0.5; echo B", NULL);
    ca.argv = &a;
    cb.argv = &b;
    cb.out = &bout;
    rc = h->ops->open_stream(h, &ca, &s);
    if (rc == 0) {
        rc = s->ops->write(s, "x", 1);
    }
    if (s != NULL) {
        s->ops->release(s);
    }
    if (rc == 0) {
        rc = host_run(h, &cb, &bstatus);
    }
    printf("B=<%s> B-status=%d\n", bout.buf, bstatus);
    strvec_clear(&a);
    strvec_clear(&b);
    strbuf_release(&bout);
    return rc != 0 ? code(rc) : 0;
}

static char *
read_file(const char *path, size_t *len)
{
    struct strbuf sb = STRBUF_INIT;
    char buf[65536];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n;

    if (fd < 0) {
        cr_die("cannot open '%s': %s", path, strerror(errno));
    }
    while ((n = read(fd, buf, sizeof(buf))) > 0) {
        strbuf_add(&sb, buf, (size_t)n);
    }
    close(fd);
    *len = sb.len;
    return strbuf_detach(&sb);
}

int
main(int argc, char **argv)
{
    struct ssh_target t;
    struct strvec warn = STRVEC_INIT, notes = STRVEC_INIT;
    struct strvec env = STRVEC_INIT, av = STRVEC_INIT, sudo_opts = STRVEC_INIT;
    struct strbuf out = STRBUF_INIT, err = STRBUF_INIT;
    struct remote_config cfg;
    struct host_cmd cmd;
    struct host *h = NULL;
    struct sigaction sa;
    char *password = NULL;
    char *input = NULL;
    size_t input_len = 0;
    char *e = NULL;
    int batch = 0, elevate = 0, check = 0, cap_out = 0, cap_err = 0;
    int stream = 0, two = 0, letgo = 0;
    enum cr_elevate kind = CR_ELEVATE_NONE;
    int status = -1;
    int rc;
    int opt;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    while ((opt = getopt(argc, argv, "+be:sP:O:cE:i:oCS2Llv")) != -1) {
        switch (opt) {
        case 'b':
            batch = 1;
            break;
        case 'e':
            kind = strcmp(optarg, "sudo") == 0   ? CR_ELEVATE_SUDO
                   : strcmp(optarg, "run0") == 0 ? CR_ELEVATE_RUN0
                                                 : CR_ELEVATE_NONE;
            break;
        case 's':
            elevate = 1;
            break;
        case 'P': {
            size_t n = 0;

            password = read_file(optarg, &n);
            password[strcspn(password, "\n")] = '\0';
            break;
        }
        case 'O':
            if (sshopts_split(optarg, &sudo_opts, &e) != 0) {
                cr_die("%s", e);
            }
            break;
        case 'c':
            check = 1;
            break;
        case 'E':
            strvec_push(&env, optarg);
            break;
        case 'i':
            input = read_file(optarg, &input_len);
            break;
        case 'o':
            cap_out = 1;
            break;
        case 'C':
            cap_err = 1;
            break;
        case 'S':
            stream = 1;
            break;
        case '2':
            two = 1;
            break;
        case 'L':
            letgo = 1;
            break;
        case 'l':
            echo = 1;
            break;
        case 'v':
            log_set_level(LOG_TRACE);
            break;
        default:
            return 101;
        }
    }
    if (optind >= argc) {
        fprintf(stderr, "usage: sshrun [options] HOST [--] ARGV...\n");
        return 101;
    }
    ssh_target_init(&t);
    rc = sshopts_target(
        &t, argv[optind], getenv("NIX_SSHOPTS"), &warn, &notes, &e);
    if (rc != 0) {
        log_error("%s", e);
        free(e);
        return code(rc);
    }
    for (size_t i = 0; i < warn.n; i++) {
        log_warn("%s", warn.v[i]);
    }
    for (size_t i = 0; i < notes.n; i++) {
        log_debug("%s", notes.v[i]);
    }
    optind++;
    if (optind < argc && strcmp(argv[optind], "--") == 0) {
        optind++;
    }
    for (int i = optind; i < argc; i++) {
        strvec_push(&av, argv[i]);
    }

    memset(&cfg, 0, sizeof(cfg));
    cfg.target = &t;
    cfg.elev.kind = kind;
    cfg.elev.sudo_opts = &sudo_opts;
    cfg.elev.password = password;
    cfg.batch = batch;
    rc = host_remote_open(&cfg, &h, &e);
    secret_free(password);
    password = NULL;
    if (rc != 0) {
        log_error("%s", e);
        free(e);
        goto out;
    }
    fprintf(stderr, "is_root=%d\n", h->is_root);
    if (check) {
        rc = host_remote_check_sudo(h);
        if (rc != 0) {
            goto out;
        }
        fprintf(stderr, "sudo check ok\n");
    }
    if (two || letgo) {
        rc = two ? two_channels(h) : let_go(h);
        host_free(h);
        h = NULL;
        goto out2;
    }
    memset(&cmd, 0, sizeof(cmd));
    cmd.argv = &av;
    cmd.env = env.n > 0 ? &env : NULL;
    cmd.elevate = elevate;
    cmd.out_to_stdout = 1;
    strbuf_init(&out, 1 << 20);
    strbuf_init(&err, 1 << 20);
    cmd.out = cap_out ? &out : NULL;
    cmd.err = cap_err ? &err : NULL;
    cmd.input = input;
    cmd.input_len = input_len;
    if (stream) {
        rc = stream_mode(h, &cmd);
        host_free(h);
        h = NULL;
        goto out2;
    }
    rc = host_run(h, &cmd, &status);
    if (cap_out) {
        printf("out=<%s>\n", out.buf);
    }
    if (cap_err) {
        printf("err=<%s>\n", err.buf);
    }
    fflush(stdout);
    fprintf(stderr, "status=%d\n", status);
out:
    host_free(h);
    rc = rc != 0 ? code(rc) : status;
out2:
    ssh_target_release(&t);
    strvec_clear(&warn);
    strvec_clear(&notes);
    strvec_clear(&env);
    strvec_clear(&av);
    strvec_clear(&sudo_opts);
    strbuf_release(&out);
    strbuf_release(&err);
    free(input);
    return rc < 0 ? 255 : rc;
}

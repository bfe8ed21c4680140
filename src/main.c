/* main.c: parse options, gather facts, plan, connect, execute. */
#include "crebuild/cli.h"
#include "crebuild/events.h"
#include "crebuild/exec.h"
#include "crebuild/health.h"
#include "crebuild/log.h"
#include "crebuild/plan.h"
#include "crebuild/proc.h"
#include "crebuild/connect.h"
#include "crebuild/secret.h"
#include "crebuild/supervisor.h"
#include "crebuild/sshopts.h"
#include "crebuild/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

static void
on_signal(int sig)
{
    int saved = errno;

    cr_interrupted = sig;
    /* Ctrl-C reaches our children through the terminal's process group
     * already; a signal sent to crebuild alone is passed on (a second
     * SIGINT changes nothing for them). */
    proc_kill_all(sig);
    errno = saved;
}

static void
install_signals(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
}

static int
show_help(void)
{
    /* The man page when man can show it; the built-in summary otherwise. */
    if (isatty(STDOUT_FILENO) && access("/usr/bin/man", X_OK) == 0) {
        struct strvec argv = STRVEC_INIT;
        struct proc_spec spec = {0};
        int status = -1;
        strvec_pushl(&argv, "man", "8", "crebuild", (const char *)NULL);
        spec.argv = &argv;
        spec.tty = 1;
        spec.out_fd = STDOUT_FILENO;
        spec.err_fd = -1;
        struct strbuf err = STRBUF_INIT;
        spec.err = &err;
        int rc = proc_run(&spec, &status);
        strvec_clear(&argv);
        strbuf_release(&err);
        if (rc == 0 && status == 0) {
            return 0;
        }
    }
    fputs(cli_usage(), stdout);
    return 0;
}

/* /etc/nixos/flake.nix (possibly a symlink into a real flake) -> its dir. */
static char *
auto_flake(void)
{
    char buf[PATH_MAX];

    if (realpath("/etc/nixos/flake.nix", buf) == NULL) {
        return NULL;
    }
    return xstrdup(dirname(buf));
}

/* A local flake reference ("", ".", "../x", "/abs", "path:./x") made
 * absolute, symlinks resolved, for builtins.getFlake (repl); anything
 * else, or a path that does not exist, as given. */
static char *
resolve_flake(const char *ref)
{
    const char *path = ref;
    const char *scheme = "";
    char buf[PATH_MAX];

    if (strncmp(ref, "path:", 5) == 0) {
        path = ref + 5;
        scheme = "path:";
    } else if (strchr(ref, ':') != NULL) {
        return xstrdup(ref);
    }
    if (realpath(*path != '\0' ? path : ".", buf) == NULL) {
        return xstrdup(ref);
    }
    return xasprintf("%s%s", scheme, buf);
}

/* The file classic `edit` opens, found as nixos-rebuild does:
 * $NIXOS_CONFIG, else <nixos-config> on the search path (with the
 * command line's -I), else /etc/nixos; a directory means its default.nix.
 * NULL (logged, as ng says it) when that file does not exist. */
static char *
nixos_config_file(const struct cr_opts *o)
{
    const char *env = getenv("NIXOS_CONFIG");
    struct stat st;
    char *path = NULL;

    if (env != NULL && *env != '\0') {
        path = xstrdup(env);
    } else {
        struct strvec argv = STRVEC_INIT;
        struct strbuf out = STRBUF_INIT;
        struct proc_spec spec = {0};
        int status = -1;

        strvec_pushl(&argv,
                     "nix-instantiate",
                     "--find-file",
                     "nixos-config",
                     (const char *)NULL);
        strvec_pusharr(&argv, &o->common_build);
        spec.argv = &argv;
        spec.out = &out;
        spec.err_fd = -1;
        if (proc_run(&spec, &status) == 0 && status == 0) {
            strbuf_rtrim(&out);
            if (out.len > 0 && strchr(out.buf, '\n') == NULL) {
                path = xstrdup(out.buf);
            }
        }
        strvec_clear(&argv);
        strbuf_release(&out);
        if (path == NULL) {
            path = xstrdup("/etc/nixos");
        }
    }
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        char *f = xasprintf("%s/default.nix", path);

        free(path);
        path = f;
    }
    if (access(path, F_OK) != 0) {
        log_error("cannot find NixOS config file '%s'", path);
        free(path);
        return NULL;
    }
    return path;
}

/* Root's channels that --upgrade / --upgrade-all update. */
static void
channels(const struct cr_opts *o, struct strvec *out)
{
    const char *dir = "/nix/var/nix/profiles/per-user/root/channels";
    DIR *d;
    struct dirent *e;

    if (!o->upgrade && !o->upgrade_all) {
        return;
    }
    d = opendir(dir);
    if (d == NULL) {
        log_warn("'--upgrade' flag passed but no channels to update");
        return;
    }
    while ((e = readdir(d)) != NULL) {
        char *flag;
        struct stat st;
        if (e->d_name[0] == '.' || strcmp(e->d_name, "manifest.nix") == 0 ||
            strcmp(e->d_name, "binary-caches") == 0) {
            continue;
        }
        flag = xasprintf("%s/%s/.update-on-nixos-rebuild", dir, e->d_name);
        if (o->upgrade_all || strcmp(e->d_name, "nixos") == 0 ||
            stat(flag, &st) == 0) {
            strvec_push(out, e->d_name);
        }
        free(flag);
    }
    closedir(d);
}

/* The plan (printed with --debug); 0, or -1 with the error logged. */
static int
make_plan(const struct cr_opts *o,
          const struct plan_facts *facts,
          struct plan *plan)
{
    char *err = NULL;

    if (plan_build(o, facts, plan, &err) != 0) {
        log_error("%s", err);
        free(err);
        return -1;
    }
    if (log_get_level() >= LOG_DEBUG) {
        plan_print(plan, o, log_stream());
    }
    return 0;
}

/* Could anything be asked on the terminal (host key, key passphrase)? */
static int
have_tty(void)
{
    int fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);

    if (fd < 0) {
        return 0;
    }
    close(fd);
    return 1;
}

static int
needs_name(const struct cr_opts *o)
{
    const char *ref = o->flake ? o->flake : ".";
    const char *hash = strrchr(ref, '#');

    return o->flake_mode != CR_FLAKE_OFF && (hash == NULL || hash[1] == '\0');
}

/* The default attribute: the activating host's name (uname -n there).
 * *too_long is set when the remote answered more than a host name can be
 * (it is then cut). */
static char *
hostname_of(struct host *h, int *too_long)
{
    struct strvec argv = STRVEC_INIT;
    struct strbuf out = STRBUF_INIT;
    struct host_cmd cmd = {0};
    int status = -1;
    char *name = NULL;

    if (h->is_local) {
        struct utsname u;
        if (uname(&u) == 0) {
            name = xstrdup(u.nodename);
        }
        return name;
    }
    strvec_pushl(&argv, "uname", "-n", (const char *)NULL);
    cmd.argv = &argv;
    out.max = 1024; /* a remote answering megabytes is not a host name */
    cmd.out = &out;
    if (host_run(h, &cmd, &status) == 0 && status == 0) {
        *too_long = out.truncated;
        strbuf_rtrim(&out);
        name = strbuf_detach(&out);
    }
    strvec_clear(&argv);
    strbuf_release(&out);
    return name;
}

static int
attr_name_ok(const char *s)
{
    for (; *s; s++) {
        if (*s == '"' || *s == '\\' || (unsigned char)*s < 0x20 || *s == 0x7f) {
            return 0;
        }
    }
    return 1;
}

/* Is the local `nix` older than MAJOR.MINOR?  (For the few commands whose
 * spelling changed; unknown counts as new.) */
static int
nix_older_than(unsigned major, unsigned minor)
{
    struct strvec argv = STRVEC_INIT;
    struct strbuf out = STRBUF_INIT;
    struct proc_spec spec = {0};
    unsigned ma = 0, mi = 0;
    int status = -1, older = 0;
    const char *v;

    strvec_pushl(&argv, "nix", "--version", (const char *)NULL);
    spec.argv = &argv;
    spec.out = &out;
    spec.err_fd = STDERR_FILENO;
    if (proc_run(&spec, &status) == 0 && status == 0 &&
        (v = strpbrk(out.buf, "0123456789")) != NULL &&
        sscanf(v, "%u.%u", &ma, &mi) == 2) {
        older = ma < major || (ma == major && mi < minor);
    }
    strvec_clear(&argv);
    strbuf_release(&out);
    return older;
}

static void
elevation_prefix(const struct cr_opts *o, struct strvec *prefix)
{
    const char *opts = getenv("NIX_SUDOOPTS");

    if (o->elevate == CR_ELEVATE_SUDO) {
        strvec_push(prefix, "sudo");
        if (opts != NULL) {
            char *err = NULL;
            if (sshopts_split(opts, prefix, &err) != 0) {
                log_warn("ignoring NIX_SUDOOPTS: %s", err);
                free(err);
            }
        }
    } else if (o->elevate == CR_ELEVATE_RUN0) {
        strvec_pushl(prefix, "run0", "--", (const char *)NULL);
    }
}

static char *
get_password(const struct cr_opts *o, const char *host)
{
    if (o->sudo_password_fd >= 0) {
        return secret_read_fd(o->sudo_password_fd);
    }
    if (o->sudo_password_file != NULL) {
        return secret_read_file(o->sudo_password_file);
    }
    if (o->ask_password) {
        char *prompt = xasprintf("[sudo] password for %s: ", host);
        char *s = secret_read_tty(prompt);
        free(prompt);
        return s;
    }
    return NULL;
}

struct reconnect_ctx {
    const struct cr_opts *o;
    const char *password;
};

static struct host *
reconnect(void *arg, enum plan_host which)
{
    struct reconnect_ctx *rc = arg;
    const char *name =
        which == PH_BUILD ? rc->o->build_host : rc->o->target_host;

    return name ? remote_connect(rc->o, name, rc->password) : NULL;
}

static int
run(struct cr_opts *o)
{
    struct plan_facts facts;
    struct plan plan;
    struct exec_ctx x;
    struct strvec chans = STRVEC_INIT, prefix = STRVEC_INIT;
    char *flake_dir = NULL, *hostname = NULL, *err = NULL, *password = NULL;
    char *nixos_config = NULL;
    int ret = 1, planned = 0;

    memset(&facts, 0, sizeof(facts));
    exec_init(&x, o);
    if (o->events_file != NULL) {
        x.events = events_open(o->events_file, &err);
        if (x.events == NULL) {
            log_error("%s", err);
            free(err);
            return 1;
        }
    }
    if ((o->upgrade || o->upgrade_all) && geteuid() != 0 &&
        o->elevate == CR_ELEVATE_NONE) {
        log_error("if you pass the '--upgrade' or '--upgrade-all' flag, you "
                  "must also pass '--sudo', '--run0', or run the command as "
                  "root (e.g., with sudo)");
        return 1;
    }
    if (o->profile_name != NULL && strcmp(o->profile_name, "system") != 0 &&
        o->target_host == NULL && geteuid() == 0) {
        /* nixos-rebuild creates the profile directory at parse time. */
        mode_t old = umask(022);
        mkdir("/nix/var/nix/profiles/system-profiles", 0755);
        umask(old);
    }
    flake_dir = auto_flake();
    channels(o, &chans);
    facts.auto_flake = o->flake_mode == CR_FLAKE_AUTO ? flake_dir : NULL;
    facts.channels = (const char *const *)chans.v;
    facts.n_channels = chans.n;
    facts.skip_version_check =
        getenv("NIXOS_REBUILD_I_UNDERSTAND_THE_CONSEQUENCES_PLEASE_BREAK_MY_"
               "SYSTEM") != NULL;
    facts.resolve_flake = resolve_flake;
    facts.editor = getenv("EDITOR") ? getenv("EDITOR") : "nano";
    if (o->action == CR_ACT_EDIT &&
        !(o->flake_mode == CR_FLAKE_ON ||
          (o->flake_mode == CR_FLAKE_AUTO && flake_dir != NULL))) {
        nixos_config = nixos_config_file(o);
        if (nixos_config == NULL) {
            goto out;
        }
        facts.nixos_config = nixos_config;
    }
    if (o->action == CR_ACT_REPL && o->flake_mode == CR_FLAKE_OFF) {
        facts.repl_positional = nix_older_than(2, 9);
    }

    elevation_prefix(o, &prefix);
    x.hosts[PH_LOCAL] = host_local_new(&prefix);

    if (o->print_plan) {
        facts.hostname = o->target_host ? "@target-hostname@" : NULL;
        if (facts.hostname == NULL) {
            int ignored = 0;
            hostname = hostname_of(x.hosts[PH_LOCAL], &ignored);
            facts.hostname = hostname;
        }
        if (plan_build(o, &facts, &plan, &err) != 0) {
            log_error("%s", err);
            ret = 2;
            goto out;
        }
        plan_print(&plan, o, stdout);
        plan_release(&plan);
        ret = 0;
        goto out;
    }

    /* A bad host string or NIX_SSHOPTS ends here, before a password is
     * asked for or a build started while connecting. */
    if ((o->target_host != NULL && remote_check_args(o->target_host) != 0) ||
        (o->build_host != NULL && remote_check_args(o->build_host) != 0)) {
        goto out;
    }
    if (o->target_host != NULL || o->build_host != NULL) {
        password =
            get_password(o, o->target_host ? o->target_host : o->build_host);
        if ((o->ask_password || o->sudo_password_fd >= 0 ||
             o->sudo_password_file != NULL) &&
            password == NULL) {
            goto out;
        }
        if (password != NULL) {
            secret_protect_process();
        }
    }
    /* Without a terminal nothing can be asked while connecting, so the
     * evaluation and build run meanwhile (when the plan does not need the
     * target's host name first). */
    int name_first =
        needs_name(o) || (o->flake_mode == CR_FLAKE_AUTO && flake_dir);
    if ((o->target_host != NULL || o->build_host != NULL) && !name_first &&
        !have_tty()) {
        if (make_plan(o, &facts, &plan) != 0) {
            ret = 2;
            goto out;
        }
        planned = 1;
        (void)exec_start(&x, &plan);
    }
    if (o->target_host != NULL) {
        x.hosts[PH_TARGET] = remote_connect(o, o->target_host, password);
        if (x.hosts[PH_TARGET] == NULL) {
            goto out;
        }
    }
    if (o->build_host != NULL) {
        if (o->target_host != NULL &&
            strcmp(o->build_host, o->target_host) == 0) {
            /* Same host: one session; the build result is already there. */
            x.hosts[PH_BUILD] = x.hosts[PH_TARGET];
        } else {
            x.hosts[PH_BUILD] = remote_connect(o, o->build_host, password);
            if (x.hosts[PH_BUILD] == NULL) {
                goto out;
            }
        }
    }
    /* The password stays (locked, out of core dumps) for the fresh login
     * that confirms a magic-rollback deploy; wiped at the end. */
    struct reconnect_ctx rctx = {o, password};
    x.reconnect = reconnect;
    x.reconnect_arg = &rctx;

    if (!planned && name_first) {
        int too_long = 0;
        hostname = hostname_of(x.hosts[PH_TARGET] ? x.hosts[PH_TARGET]
                                                  : x.hosts[PH_LOCAL],
                               &too_long);
        /* It becomes the quoted attribute nixosConfigurations."NAME": the
         * same rule as for a NAME given after '#'. */
        if (hostname != NULL && (too_long || !attr_name_ok(hostname))) {
            log_error("the host name of %s cannot be used as a flake "
                      "attribute (too long, or a quote, backslash or control "
                      "character); give one with --flake REF#NAME",
                      x.hosts[PH_TARGET] ? x.hosts[PH_TARGET]->name
                                         : "this machine");
            goto out;
        }
    }
    if (!planned) {
        facts.hostname = hostname;
        if (make_plan(o, &facts, &plan) != 0) {
            ret = 2;
            goto out;
        }
        planned = 1;
    }
    ret = exec_plan(&x, &plan);
out:
    exec_cancel(&x); /* a failed connection: the build is not needed */
    if (planned) {
        plan_release(&plan);
    }
    events_result(x.events,
                  ret == 0                     ? "success"
                  : ret == CR_EXIT_ROLLED_BACK ? "rolled-back"
                                               : "failed",
                  ret,
                  NULL);
    events_close(x.events);
    secret_free(password);
    exec_release(&x);
    if (x.hosts[PH_BUILD] != x.hosts[PH_TARGET]) {
        host_free(x.hosts[PH_BUILD]);
    }
    host_free(x.hosts[PH_TARGET]);
    host_free(x.hosts[PH_LOCAL]);
    strvec_clear(&chans);
    strvec_clear(&prefix);
    free(flake_dir);
    free(nixos_config);
    free(hostname);
    free(err);
    return ret;
}

int
main(int argc, char *argv[])
{
    struct cr_opts o;
    struct strvec warnings = STRVEC_INIT;
    char *err = NULL;
    int ret;

    install_signals();
    cli_opts_init(&o);
    if (cli_parse(argc, argv, &o, &warnings, &err) != 0) {
        for (size_t i = 0; i < warnings.n; i++) {
            log_warn("%s", warnings.v[i]);
        }
        log_error("%s", err);
        free(err);
        strvec_clear(&warnings);
        cli_opts_release(&o);
        return 2;
    }
    for (size_t i = 0; i < warnings.n; i++) {
        log_warn("%s", warnings.v[i]);
    }
    strvec_clear(&warnings);
    if (o.verbose > 0) {
        log_set_level(LOG_INFO + o.verbose);
    } else if (o.quiet > 0) {
        log_set_level(LOG_WARN);
    }
    if (o.debug && log_get_level() < LOG_DEBUG) {
        log_set_level(LOG_DEBUG); /* --debug: crebuild's own messages */
    }
    if (o.show_help) {
        ret = show_help();
    } else if (o.show_version) {
        printf("crebuild %s\n", CR_VERSION);
        ret = 0;
    } else {
        ret = run(&o);
    }
    cli_opts_release(&o);
    health_global_cleanup();
    if (cr_interrupted && ret == 0) {
        ret = 128 + cr_interrupted;
    }
    return ret;
}

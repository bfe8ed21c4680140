/* cli.c: the command line turned into struct cr_opts.  Table-driven (curl
 * style): one option table sorted by long name, searched with bsearch(), then
 * a switch on the option id.  Pure: no I/O but the error text. */
#include "crebuild/cli.h"
#include "crebuild/strbuf.h"
#include "crebuild/strvec.h"
#include "crebuild/util.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define PROFILES_DIR "/nix/var/nix/profiles"
#define MAX_TIMEOUT  86400ULL /* seconds; keeps ms arithmetic in range */
#define OPTARG       (-1)     /* nargs of --flake: [REF] */
#define HELP_COLUMN  30

/* clang-format off */
enum opt_id {
    OPT_ACCEPT_FLAKE_CONFIG, OPT_ASK_ELEVATE_PASSWORD, OPT_ASK_SUDO_PASSWORD,
    OPT_ATTR, OPT_BUILD_HOST, OPT_BUILDERS, OPT_COMMIT_LOCK_FILE,
    OPT_CONFIRM_TIMEOUT, OPT_CORES, OPT_DEBUG, OPT_DIFF, OPT_ELEVATE,
    OPT_EVENTS, OPT_FALLBACK, OPT_FAST, OPT_FILE, OPT_FLAKE, OPT_HEALTH_CHECK,
    OPT_HEALTH_CHECK_CMD, OPT_HEALTH_TIMEOUT, OPT_HELP, OPT_IMAGE_VARIANT,
    OPT_IMPURE, OPT_INCLUDE, OPT_INSTALL_BOOTLOADER, OPT_INSTALL_GRUB,
    OPT_JSON, OPT_KEEP_FAILED, OPT_KEEP_GOING, OPT_LOG_FORMAT, OPT_MAX_JOBS,
    OPT_NO_BUILD_NIX, OPT_NO_BUILD_OUTPUT, OPT_NO_FLAKE, OPT_NO_MAGIC_ROLLBACK,
    OPT_NO_NET, OPT_NO_PROGRESS, OPT_NO_REEXEC, OPT_NO_REGISTRIES,
    OPT_NO_SSH_TTY, OPT_NO_UPDATE_LOCK_FILE, OPT_NO_WRITE_LOCK_FILE,
    OPT_OFFLINE, OPT_OPTION, OPT_OVERRIDE_INPUT, OPT_PRINT_BUILD_LOGS,
    OPT_PRINT_PLAN, OPT_PROFILE_NAME, OPT_QUIET, OPT_RECREATE_LOCK_FILE,
    OPT_REFRESH, OPT_REPAIR, OPT_ROLLBACK, OPT_RUN0, OPT_SHOW_TRACE,
    OPT_SPECIALISATION, OPT_STORE_PATH, OPT_SUBSTITUTES, OPT_SUDO,
    OPT_SUDO_PASSWORD_FD, OPT_SUDO_PASSWORD_FILE, OPT_TARGET_HOST,
    OPT_UPDATE_INPUT, OPT_UPGRADE, OPT_UPGRADE_ALL, OPT_USE_REMOTE_SUDO,
    OPT_VERBOSE, OPT_VERSION, OPT__COUNT,
};
/* clang-format on */

/* Where a pass-through Nix flag goes (nixos-rebuild-ng's argument groups). */
enum opt_group {
    G_NONE = 0, /* not passed to nix */
    G_COMMON,
    G_COMMON_BUILD,
    G_CLASSIC_BUILD,
    G_FLAKE_COMMON,
    G_FLAKE_EVAL,
    G_COPY,
};

/* Usage sections: pass-through (group set), crebuild's own (F_OWN), the
 * rest are nixos-rebuild's own options. */
enum opt_section {
    S_MAIN = 0,
    S_NIX,
    S_OWN,
};

#define F_NONEMPTY 0x01 /* an empty argument is a usage error */
#define F_REPEAT   0x02 /* pass-through: emit every occurrence, in order */
#define F_OWN      0x04 /* crebuild's own option (usage section) */

struct optspec {
    const char *name;  /* long name without "--"; the table is sorted by it */
    char short_name;   /* 0 = none */
    signed char nargs; /* 0, 1, 2 or OPTARG */
    unsigned char group;
    unsigned char flags;
    enum opt_id id;      /* aliases share an id */
    const char *argname; /* for usage */
    const char *help;    /* one line of usage */
};

/* Sorted by name (strcmp); tests/unit/test_cli.c checks it.
 * name, short, nargs, group, flags, id, argname, help */
/* clang-format off */
static const struct optspec options[] = {
    {"accept-flake-config", 0, 0, G_FLAKE_EVAL, 0, OPT_ACCEPT_FLAKE_CONFIG,
     NULL, "trust the flake's nixConfig"},
    {"ask-elevate-password", 'S', 0, G_NONE, 0, OPT_ASK_ELEVATE_PASSWORD, NULL,
     "prompt for the elevation password (implies sudo)"},
    {"ask-sudo-password", 0, 0, G_NONE, 0, OPT_ASK_SUDO_PASSWORD, NULL,
     "same as --sudo --ask-elevate-password"},
    {"attr", 'A', 1, G_NONE, F_NONEMPTY, OPT_ATTR, "ATTRPATH",
     "attribute path of the system (with --file)"},
    {"build-host", 0, 1, G_NONE, 0, OPT_BUILD_HOST, "HOST",
     "build on HOST over ssh"},
    {"builders", 0, 1, G_COMMON_BUILD, 0, OPT_BUILDERS, "SPEC",
     "ad-hoc remote builders (\"\" = none)"},
    {"commit-lock-file", 0, 0, G_FLAKE_EVAL, 0, OPT_COMMIT_LOCK_FILE, NULL,
     "commit changes to flake.lock"},
    {"confirm-timeout", 0, 1, G_NONE, F_NONEMPTY | F_OWN, OPT_CONFIRM_TIMEOUT,
     "SECONDS", "time for the new system to confirm (default 30)"},
    {"cores", 0, 1, G_COMMON, 0, OPT_CORES, "N",
     "CPU cores per build job"},
    {"debug", 0, 0, G_NONE, 0, OPT_DEBUG, NULL,
     "debug logging of crebuild (not passed to nix)"},
    {"diff", 0, 0, G_NONE, 0, OPT_DIFF, NULL,
     "show the closure diff against the running system"},
    {"elevate", 0, 1, G_NONE, F_NONEMPTY, OPT_ELEVATE, "{none,sudo,run0}",
     "privilege elevation method for activation"},
    {"events", 0, 1, G_NONE, F_NONEMPTY | F_OWN, OPT_EVENTS, "FILE",
     "write JSON-lines progress events (- = stdout)"},
    {"fallback", 0, 0, G_COMMON, 0, OPT_FALLBACK, NULL,
     "build from source when substitution fails"},
    {"fast", 0, 0, G_NONE, 0, OPT_FAST, NULL,
     "same as --no-reexec"},
    {"file", 'f', 1, G_NONE, F_NONEMPTY, OPT_FILE, "FILE",
     "build the system from FILE (classic mode)"},
    {"flake", 'F', OPTARG, G_NONE, F_NONEMPTY, OPT_FLAKE, "[REF]",
     "use flake REF[#NAME] (bare --flake: .)"},
    {"health-check", 0, 1, G_NONE, F_NONEMPTY | F_OWN, OPT_HEALTH_CHECK, "URL",
     "after activation GET URL, want 2xx (repeatable)"},
    {"health-check-cmd", 0, 1, G_NONE, F_NONEMPTY | F_OWN, OPT_HEALTH_CHECK_CMD,
     "CMD", "after activation run CMD on target (repeatable)"},
    {"health-timeout", 0, 1, G_NONE, F_NONEMPTY | F_OWN, OPT_HEALTH_TIMEOUT,
     "SECONDS", "time allowed for the health checks (default 60)"},
    {"help", 'h', 0, G_NONE, 0, OPT_HELP, NULL,
     "show the manual page (this summary without man)"},
    {"image-variant", 0, 1, G_NONE, F_NONEMPTY, OPT_IMAGE_VARIANT, "VARIANT",
     "image variant for build-image"},
    {"impure", 0, 0, G_FLAKE_EVAL, 0, OPT_IMPURE, NULL,
     "allow impure flake evaluation"},
    {"include", 'I', 1, G_COMMON_BUILD, F_REPEAT, OPT_INCLUDE, "PATH",
     "add PATH or NAME=PATH to the Nix search path"},
    {"install-bootloader", 0, 0, G_NONE, 0, OPT_INSTALL_BOOTLOADER, NULL,
     "(re)install the boot loader"},
    {"install-grub", 0, 0, G_NONE, 0, OPT_INSTALL_GRUB, NULL,
     "same as --install-bootloader"},
    {"json", 0, 0, G_NONE, 0, OPT_JSON, NULL,
     "JSON output (list-generations)"},
    {"keep-failed", 'K', 0, G_COMMON, 0, OPT_KEEP_FAILED, NULL,
     "keep the build directory of failed builds"},
    {"keep-going", 'k', 0, G_COMMON, 0, OPT_KEEP_GOING, NULL,
     "keep going when some builds fail"},
    {"log-format", 0, 1, G_COMMON, 0, OPT_LOG_FORMAT, "FORMAT",
     "nix log format"},
    {"max-jobs", 'j', 1, G_COMMON, 0, OPT_MAX_JOBS, "N",
     "maximum number of parallel builds"},
    {"no-build-nix", 0, 0, G_NONE, 0, OPT_NO_BUILD_NIX, NULL,
     "no effect"},
    {"no-build-output", 'Q', 0, G_CLASSIC_BUILD, 0, OPT_NO_BUILD_OUTPUT, NULL,
     "silence build output (classic builds)"},
    {"no-flake", 0, 0, G_NONE, 0, OPT_NO_FLAKE, NULL,
     "do not use /etc/nixos/flake.nix automatically"},
    {"no-link", 0, 0, G_CLASSIC_BUILD, 0, OPT_NO_BUILD_OUTPUT, NULL,
     "same as --no-build-output"},
    {"no-magic-rollback", 0, 0, G_NONE, F_OWN, OPT_NO_MAGIC_ROLLBACK, NULL,
     "do not roll back when the target cannot confirm"},
    {"no-net", 0, 0, G_FLAKE_COMMON, 0, OPT_NO_NET, NULL,
     "no network access at all"},
    {"no-progress", 0, 0, G_NONE, F_OWN, OPT_NO_PROGRESS, NULL,
     "never draw the progress line"},
    {"no-reexec", 0, 0, G_NONE, 0, OPT_NO_REEXEC, NULL,
     "accepted; crebuild never re-executes itself"},
    {"no-registries", 0, 0, G_FLAKE_EVAL, 0, OPT_NO_REGISTRIES, NULL,
     "do not use flake registries"},
    {"no-ssh-tty", 0, 0, G_NONE, 0, OPT_NO_SSH_TTY, NULL,
     "no effect"},
    {"no-update-lock-file", 0, 0, G_FLAKE_EVAL, 0, OPT_NO_UPDATE_LOCK_FILE,
     NULL, "fail if flake.lock is out of date"},
    {"no-write-lock-file", 0, 0, G_FLAKE_EVAL, 0, OPT_NO_WRITE_LOCK_FILE, NULL,
     "do not write flake.lock"},
    {"offline", 0, 0, G_FLAKE_COMMON, 0, OPT_OFFLINE, NULL,
     "no substituters, no downloads if avoidable"},
    {"option", 0, 2, G_COMMON, F_REPEAT, OPT_OPTION, "NAME VALUE",
     "set a Nix configuration option"},
    {"override-input", 0, 2, G_FLAKE_EVAL, F_REPEAT, OPT_OVERRIDE_INPUT,
     "INPUT URL", "override a flake input"},
    {"print-build-logs", 'L', 0, G_COMMON_BUILD, 0, OPT_PRINT_BUILD_LOGS, NULL,
     "print full build logs"},
    {"print-plan", 0, 0, G_NONE, F_OWN, OPT_PRINT_PLAN, NULL,
     "print the steps that would run, run nothing"},
    {"profile-name", 'p', 1, G_NONE, F_NONEMPTY, OPT_PROFILE_NAME, "NAME",
     "use profile system-profiles/NAME"},
    {"quiet", 0, 0, G_COMMON, F_REPEAT, OPT_QUIET, NULL,
     "less nix output (repeatable)"},
    {"recreate-lock-file", 0, 0, G_FLAKE_EVAL, 0, OPT_RECREATE_LOCK_FILE, NULL,
     "recreate flake.lock from scratch"},
    {"refresh", 0, 0, G_FLAKE_EVAL, 0, OPT_REFRESH, NULL,
     "refetch cached flake inputs"},
    {"repair", 0, 0, G_COMMON, 0, OPT_REPAIR, NULL,
     "repair corrupted store paths"},
    {"rollback", 0, 0, G_NONE, 0, OPT_ROLLBACK, NULL,
     "go back to the previous generation"},
    {"run0", 0, 0, G_NONE, 0, OPT_RUN0, NULL,
     "same as --elevate=run0"},
    {"show-trace", 0, 0, G_COMMON_BUILD, 0, OPT_SHOW_TRACE, NULL,
     "show evaluation traces on errors"},
    {"specialisation", 'c', 1, G_NONE, F_NONEMPTY, OPT_SPECIALISATION, "NAME",
     "activate specialisation NAME (switch, test)"},
    {"store-path", 0, 1, G_NONE, F_NONEMPTY, OPT_STORE_PATH, "PATH",
     "deploy a prebuilt system closure, skip evaluation"},
    {"substitute-on-destination", 0, 0, G_COPY, 0, OPT_SUBSTITUTES, NULL,
     "same as --use-substitutes"},
    {"sudo", 0, 0, G_NONE, 0, OPT_SUDO, NULL,
     "same as --elevate=sudo"},
    {"sudo-password-fd", 0, 1, G_NONE, F_NONEMPTY | F_OWN, OPT_SUDO_PASSWORD_FD,
     "N", "read the elevation password from fd N"},
    {"sudo-password-file", 0, 1, G_NONE, F_NONEMPTY | F_OWN,
     OPT_SUDO_PASSWORD_FILE, "PATH",
     "read the elevation password from PATH"},
    {"target-host", 0, 1, G_NONE, 0, OPT_TARGET_HOST, "HOST",
     "activate on HOST over ssh"},
    {"update-input", 0, 1, G_FLAKE_EVAL, F_REPEAT, OPT_UPDATE_INPUT, "INPUT",
     "update one flake input"},
    {"upgrade", 0, 0, G_NONE, 0, OPT_UPGRADE, NULL,
     "update root's nixos channel first"},
    {"upgrade-all", 0, 0, G_NONE, 0, OPT_UPGRADE_ALL, NULL,
     "update all of root's channels first"},
    {"use-remote-sudo", 0, 0, G_NONE, 0, OPT_USE_REMOTE_SUDO, NULL,
     "same as --sudo"},
    {"use-substitutes", 's', 0, G_COPY, 0, OPT_SUBSTITUTES, NULL,
     "let the destination substitute when copying"},
    {"verbose", 'v', 0, G_COMMON, F_REPEAT, OPT_VERBOSE, NULL,
     "more output (repeatable; -vvv)"},
    {"version", 0, 0, G_NONE, 0, OPT_VERSION, NULL,
     "print the version"},
};
/* clang-format on */

/* Accepted with a warning: "'--<name>' is deprecated, <tail>". */
static const struct {
    enum opt_id id;
    const char *tail;
} deprecations[] = {
    {OPT_FAST, "use '--no-reexec' instead"},
    {OPT_INSTALL_GRUB, "use '--install-bootloader' instead"},
    {OPT_NO_BUILD_NIX, "we do not build nix anymore"},
    {OPT_NO_SSH_TTY, "SSH's TTY is never used anymore"},
    {OPT_USE_REMOTE_SUDO, "use '--sudo' instead"},
};

static const struct {
    const char *name;
    enum cr_action action;
    const char *help;
} actions[] = {
    {"switch", CR_ACT_SWITCH, "build, activate and make it the boot default"},
    {"boot", CR_ACT_BOOT, "build and make it the boot default"},
    {"test", CR_ACT_TEST, "build and activate, not added to the boot menu"},
    {"build", CR_ACT_BUILD, "build only, leave ./result"},
    {"dry-build", CR_ACT_DRY_BUILD, "show what would be built or fetched"},
    {"dry-run", CR_ACT_DRY_BUILD, "same as dry-build"},
    {"dry-activate", CR_ACT_DRY_ACTIVATE, "build, show what would change"},
    {"edit", CR_ACT_EDIT, "open the configuration in an editor"},
    {"repl", CR_ACT_REPL, "open the configuration in nix repl"},
    {"build-vm", CR_ACT_BUILD_VM, "build a QEMU virtual machine script"},
    {"build-vm-with-bootloader",
     CR_ACT_BUILD_VM_WITH_BOOTLOADER,
     "same, booting through the boot loader"},
    {"build-image", CR_ACT_BUILD_IMAGE, "build a disk image (--image-variant)"},
    {"list-generations", CR_ACT_LIST_GENERATIONS, "list the generations"},
};

struct parser {
    struct cr_opts *o;
    struct strvec *warnings;
    char *err; /* the first error, owned */
    char *const *argv;
    int argc;
    int i;               /* next word */
    int positional_only; /* after "--" */
    unsigned char seen[OPT__COUNT];
    size_t pos[OPT__COUNT]; /* index of a single-valued pass-through flag */
    long verbose_pos;       /* index of the -v... word in o->common */
    int sudo;               /* --sudo, --use-remote-sudo, --ask-sudo-password */
    int run0;
    int elevate_set; /* --elevate given */
    enum cr_elevate elevate;
    int ask_long; /* --ask-elevate-password spelled out */
};

static int fail(struct parser *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int
fail(struct parser *p, const char *fmt, ...)
{
    va_list ap;

    if (p->err == NULL) {
        va_start(ap, fmt);
        p->err = xvasprintf(fmt, ap);
        va_end(ap);
    }
    return CR_EUSAGE;
}

/* A value as it may appear inside a one-line message. */
static const char *
shown(const char *s)
{
    if (s == NULL) {
        return "(null)";
    }
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c < 0x20 || *c == 0x7f) {
            return "<unprintable>";
        }
    }
    return s;
}

static void
set_str(char **dst, const char *v)
{
    free(*dst);
    *dst = v != NULL ? xstrdup(v) : NULL;
}

static const char *
deprecation(const struct optspec *s)
{
    for (size_t i = 0; i < ARRAY_SIZE(deprecations); i++) {
        if (deprecations[i].id == s->id) {
            return deprecations[i].tail;
        }
    }
    return NULL;
}

struct key {
    const char *s;
    size_t n;
};

static int
cmp_key(const void *k, const void *e)
{
    const struct key *key = k;
    const struct optspec *s = e;
    int c = strncmp(key->s, s->name, key->n);

    if (c != 0) {
        return c;
    }
    return s->name[key->n] == '\0' ? 0 : -1;
}

static const struct optspec *
find_long(const char *name, size_t n)
{
    struct key key = {name, n};

    return bsearch(
        &key, options, ARRAY_SIZE(options), sizeof(options[0]), cmp_key);
}

static const struct optspec *
find_short(char c)
{
    for (size_t i = 0; i < ARRAY_SIZE(options); i++) {
        if (options[i].short_name == c) {
            return &options[i];
        }
    }
    return NULL;
}

static enum cr_action
find_action(const char *w)
{
    for (size_t i = 0; i < ARRAY_SIZE(actions); i++) {
        if (strcmp(actions[i].name, w) == 0) {
            return actions[i].action;
        }
    }
    return CR_ACT_NONE;
}

const char *
cli_action_name(enum cr_action a)
{
    for (size_t i = 0; i < ARRAY_SIZE(actions); i++) {
        if (actions[i].action == a) {
            return actions[i].name;
        }
    }
    return "none";
}

const char *
cli_long_option_name(size_t i)
{
    return i < ARRAY_SIZE(options) ? options[i].name : NULL;
}

static struct strvec *
group_vec(struct cr_opts *o, enum opt_group g)
{
    switch (g) {
    case G_COMMON:
        return &o->common;
    case G_COMMON_BUILD:
        return &o->common_build;
    case G_CLASSIC_BUILD:
        return &o->classic_build;
    case G_FLAKE_COMMON:
        return &o->flake_common;
    case G_FLAKE_EVAL:
        return &o->flake_eval;
    case G_COPY:
        return &o->copy;
    case G_NONE:
        break;
    }
    return NULL;
}

/* Pass-through flags, re-serialised like nixos-rebuild-ng: long spelling,
 * booleans once, single values last-wins at their first position, lists
 * and counts repeated, -v counted into one "-vvv" word (see finish_verbose()).
 */
static void
apply_passthrough(struct parser *p, const struct optspec *s, const char **vals)
{
    struct strvec *g = group_vec(p->o, (enum opt_group)s->group);
    int first = !p->seen[s->id];

    if (g == NULL) {
        return; /* not reached: only called for pass-through options */
    }
    if (s->id == OPT_VERBOSE) {
        p->o->verbose++;
        if (first) {
            p->verbose_pos = (long)g->n;
            strvec_push(g, "-v");
        }
        return;
    }
    if (s->id == OPT_QUIET) {
        p->o->quiet++;
    }
    if (!first && !(s->flags & F_REPEAT)) {
        if (s->nargs == 1) {
            size_t at = p->pos[s->id] + 1;
            free(g->v[at]);
            g->v[at] = xstrdup(vals[0]);
        }
        return;
    }
    p->pos[s->id] = g->n;
    if (s->id == OPT_SUBSTITUTES) {
        strvec_push(g, "-s"); /* same meaning for nix-copy-closure, nix copy */
    } else if (s->id == OPT_NO_BUILD_OUTPUT) {
        strvec_push(g, "--no-build-output"); /* also for --no-link */
    } else {
        strvec_pushf(g, "--%s", s->name);
    }
    for (int k = 0; k < s->nargs; k++) {
        strvec_push(g, vals[k]);
    }
}

static int *
bool_field(struct cr_opts *o, enum opt_id id)
{
    switch (id) {
    case OPT_HELP:
        return &o->show_help;
    case OPT_VERSION:
        return &o->show_version;
    case OPT_ROLLBACK:
        return &o->rollback;
    case OPT_INSTALL_BOOTLOADER:
    case OPT_INSTALL_GRUB:
        return &o->install_bootloader;
    case OPT_UPGRADE:
        return &o->upgrade;
    case OPT_UPGRADE_ALL:
        return &o->upgrade_all;
    case OPT_NO_REEXEC:
    case OPT_FAST:
        return &o->no_reexec;
    case OPT_JSON:
        return &o->json;
    case OPT_DIFF:
        return &o->diff;
    case OPT_DEBUG:
        return &o->debug;
    case OPT_PRINT_PLAN:
        return &o->print_plan;
    case OPT_NO_MAGIC_ROLLBACK:
        return &o->no_magic_rollback;
    case OPT_NO_PROGRESS:
        return &o->no_progress;
    default:
        return NULL;
    }
}

static int
in_charset(const char *s)
{
    return s[strspn(s,
                    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                    "0123456789._+-")] == '\0';
}

static int
check_profile_name(struct parser *p, const char *v)
{
    if (!in_charset(v) || v[0] == '.' || v[0] == '-') {
        return fail(p,
                    "invalid profile name '%s': use only A-Z a-z 0-9 . _ + -, "
                    "not starting with '.' or '-'",
                    shown(v));
    }
    return 0;
}

static int
check_specialisation(struct parser *p, const char *v)
{
    if (strchr(v, '/') != NULL || v[0] == '-' || strcmp(v, ".") == 0 ||
        strcmp(v, "..") == 0) {
        return fail(p,
                    "invalid specialisation name '%s': must not contain '/', "
                    "start with '-' or be '.' or '..'",
                    shown(v));
    }
    return 0;
}

/* Host strings end up in ssh and nix-copy-closure argv: refuse anything
 * that could be read as an option.  "" means "no host" (local), as in
 * nixos-rebuild. */
static int
check_host(struct parser *p, const char *v)
{
    const char *h = v;
    const char *at = NULL;

    if (strncmp(h, "ssh://", 6) == 0) {
        h += 6;
    } else if (strncmp(h, "ssh-ng://", 9) == 0) {
        h += 9;
    }
    at = strrchr(h, '@');
    if (*h == '\0' || (at != NULL && at[1] == '\0')) {
        return fail(p, "invalid host '%s': must not be empty", shown(v));
    }
    if (*h == '-') {
        return fail(p, "invalid host '%s': must not start with '-'", shown(v));
    }
    for (const unsigned char *c = (const unsigned char *)h; *c; c++) {
        if (*c <= ' ' || *c == 0x7f) {
            return fail(p,
                        "invalid host: must not contain whitespace or control "
                        "characters");
        }
    }
    return 0;
}

static int
apply_source(struct parser *p, const struct optspec *s, const char *v)
{
    struct cr_opts *o = p->o;

    switch (s->id) {
    case OPT_FILE:
        set_str(&o->file, v);
        return 0;
    case OPT_ATTR:
        set_str(&o->attr, v);
        return 0;
    case OPT_NO_FLAKE:
        o->flake_mode = CR_FLAKE_OFF;
        set_str(&o->flake, NULL);
        return 0;
    case OPT_PROFILE_NAME:
        if (check_profile_name(p, v) != 0) {
            return CR_EUSAGE;
        }
        set_str(&o->profile_name, v);
        return 0;
    case OPT_SPECIALISATION:
        if (check_specialisation(p, v) != 0) {
            return CR_EUSAGE;
        }
        set_str(&o->specialisation, v);
        return 0;
    case OPT_STORE_PATH:
        set_str(&o->store_path, v);
        return 0;
    case OPT_IMAGE_VARIANT:
        if (!in_charset(v)) {
            return fail(p,
                        "invalid image variant '%s': use only A-Z a-z 0-9 . "
                        "_ + -",
                        shown(v));
        }
        set_str(&o->image_variant, v);
        return 0;
    default:
        return 1; /* not ours */
    }
}

static int
parse_elevate(struct parser *p, const char *v)
{
    static const char *const names[] = {"none", "sudo", "run0"};
    static const enum cr_elevate kinds[] = {
        CR_ELEVATE_NONE, CR_ELEVATE_SUDO, CR_ELEVATE_RUN0};

    for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
        if (strcmp(v, names[i]) == 0) {
            p->elevate_set = 1;
            p->elevate = kinds[i];
            return 0;
        }
    }
    return fail(p,
                "invalid choice for '--elevate': '%s' (choose from none, "
                "sudo, run0)",
                shown(v));
}

static int
apply_access(struct parser *p,
             const struct optspec *s,
             const char *spelled,
             const char *v)
{
    struct cr_opts *o = p->o;
    char **host = s->id == OPT_BUILD_HOST ? &o->build_host : &o->target_host;

    switch (s->id) {
    case OPT_BUILD_HOST:
    case OPT_TARGET_HOST:
        if (*v != '\0' && check_host(p, v) != 0) {
            return CR_EUSAGE;
        }
        set_str(host, *v != '\0' ? v : NULL);
        return 0;
    case OPT_SUDO:
    case OPT_USE_REMOTE_SUDO:
        p->sudo = 1;
        return 0;
    case OPT_RUN0:
        p->run0 = 1;
        return 0;
    case OPT_ELEVATE:
        return parse_elevate(p, v);
    case OPT_ASK_SUDO_PASSWORD:
        p->sudo = 1;
        o->ask_password = 1;
        return 0;
    case OPT_ASK_ELEVATE_PASSWORD:
        o->ask_password = 1;
        if (spelled[1] == '-') {
            p->ask_long = 1;
        }
        return 0;
    case OPT_NO_SSH_TTY:
    case OPT_NO_BUILD_NIX:
        return 0; /* deprecated no-ops */
    default:
        return 1;
    }
}

static int
parse_number(struct parser *p,
             const char *spelled,
             const char *v,
             unsigned long long max,
             unsigned long long *out)
{
    if (parse_uint(v, max, out) != 0) {
        return fail(p,
                    "invalid value '%s' for '%s': expected a number from 0 "
                    "to %llu",
                    shown(v),
                    spelled,
                    max);
    }
    return 0;
}

static int
add_check(
    struct parser *p, const char *spelled, char **list, int *n, const char *v)
{
    if (*n >= CR_MAX_CHECKS) {
        return fail(
            p, "too many '%s' options (at most %d)", spelled, CR_MAX_CHECKS);
    }
    list[(*n)++] = xstrdup(v);
    return 0;
}

static int
apply_own(struct parser *p,
          const struct optspec *s,
          const char *spelled,
          const char *v)
{
    struct cr_opts *o = p->o;
    unsigned long long n = 0;

    switch (s->id) {
    case OPT_CONFIRM_TIMEOUT:
    case OPT_HEALTH_TIMEOUT:
        if (parse_number(p, spelled, v, MAX_TIMEOUT, &n) != 0) {
            return CR_EUSAGE;
        }
        *(s->id == OPT_CONFIRM_TIMEOUT ? &o->confirm_timeout
                                       : &o->health_timeout) = (unsigned)n;
        return 0;
    case OPT_SUDO_PASSWORD_FD:
        if (parse_number(p, spelled, v, INT_MAX, &n) != 0) {
            return CR_EUSAGE;
        }
        o->sudo_password_fd = (int)n;
        return 0;
    case OPT_SUDO_PASSWORD_FILE:
        set_str(&o->sudo_password_file, v);
        return 0;
    case OPT_EVENTS:
        set_str(&o->events_file, v);
        return 0;
    case OPT_HEALTH_CHECK:
        if (strncasecmp(v, "http://", 7) != 0 &&
            strncasecmp(v, "https://", 8) != 0) {
            return fail(p,
                        "invalid health check URL '%s': must start with "
                        "http:// or https://",
                        shown(v));
        }
        return add_check(p, spelled, o->health_urls, &o->n_health_urls, v);
    case OPT_HEALTH_CHECK_CMD:
        return add_check(p, spelled, o->health_cmds, &o->n_health_cmds, v);
    default:
        return 1;
    }
}

static int
apply(struct parser *p,
      const struct optspec *s,
      const char *spelled,
      const char **vals)
{
    int *flag = NULL;
    /* take_args() sets a value for nargs >= 1, except for a bare --flake */
    const char *v = vals[0] != NULL ? vals[0] : "";
    int rc;

    if (s->group != G_NONE) {
        apply_passthrough(p, s, vals);
        return 0;
    }
    if (s->id == OPT_FLAKE) {
        p->o->flake_mode = CR_FLAKE_ON;
        set_str(&p->o->flake, vals[0] != NULL ? vals[0] : ".");
        return 0;
    }
    flag = bool_field(p->o, s->id);
    if (flag != NULL) {
        *flag = 1;
        if (s->id == OPT_UPGRADE_ALL) {
            p->o->upgrade = 1;
        }
        return 0;
    }
    rc = apply_source(p, s, v);
    if (rc <= 0) {
        return rc;
    }
    rc = apply_access(p, s, spelled, v);
    if (rc <= 0) {
        return rc;
    }
    rc = apply_own(p, s, spelled, v);
    return rc <= 0 ? rc : fail(p, "internal error: option '%s'", spelled);
}

/* A bare --flake is followed by an option, an action word or nothing. */
static int
flake_ref_follows(const struct parser *p)
{
    const char *next = NULL;

    if (p->i >= p->argc || p->positional_only) {
        return 0;
    }
    next = p->argv[p->i];
    return next[0] != '-' && find_action(next) == CR_ACT_NONE;
}

static int
take_args(struct parser *p,
          const struct optspec *s,
          const char *spelled,
          const char *inline_val,
          const char **vals)
{
    int need = s->nargs == OPTARG ? 1 : s->nargs;

    for (int k = 0; k < need; k++) {
        if (k == 0 && inline_val != NULL) {
            vals[k] = inline_val;
        } else if (s->nargs == OPTARG && !flake_ref_follows(p)) {
            vals[k] = NULL;
        } else if (p->i < p->argc) {
            vals[k] = p->argv[p->i++];
        } else if (need == 1) {
            return fail(p, "option '%s' requires an argument", spelled);
        } else {
            return fail(p, "option '%s' requires %d arguments", spelled, need);
        }
        if ((s->flags & F_NONEMPTY) && vals[k] != NULL && *vals[k] == '\0') {
            return fail(
                p, "option '%s' requires a non-empty argument", spelled);
        }
    }
    return 0;
}

static int
dispatch(struct parser *p,
         const struct optspec *s,
         const char *spelled,
         const char *inline_val)
{
    const char *vals[2] = {NULL, NULL};
    int rc = take_args(p, s, spelled, inline_val, vals);

    if (rc != 0) {
        return rc;
    }
    if (deprecation(s) != NULL && !p->seen[s->id]) {
        strvec_pushf(
            p->warnings, "'--%s' is deprecated, %s", s->name, deprecation(s));
    }
    rc = apply(p, s, spelled, vals);
    p->seen[s->id] = 1;
    return rc;
}

static int
parse_long(struct parser *p, const char *w)
{
    const char *name = w + 2;
    const char *eq = strchr(name, '=');
    size_t n = eq != NULL ? (size_t)(eq - name) : strlen(name);
    const struct optspec *s = find_long(name, n);
    char spelled[64];

    if (s == NULL) {
        return fail(p, "unrecognized argument '%s'", shown(w));
    }
    snprintf(spelled, sizeof(spelled), "--%s", s->name);
    if (eq != NULL && s->nargs == 0) {
        return fail(p, "option '%s' doesn't allow an argument", spelled);
    }
    return dispatch(p, s, spelled, eq != NULL ? eq + 1 : NULL);
}

/* POSIX-style clusters: -vvv, -kK, -j4, -Ifoo, -vLj4. */
static int
parse_short(struct parser *p, const char *w)
{
    for (size_t j = 1; w[j] != '\0'; j++) {
        const struct optspec *s = find_short(w[j]);
        char spelled[3] = {'-', w[j], '\0'};
        int rc;

        if (s == NULL) {
            return fail(p, "unrecognized argument '%s'", shown(w));
        }
        if (s->nargs != 0) {
            return dispatch(p, s, spelled, w[j + 1] != '\0' ? w + j + 1 : NULL);
        }
        rc = dispatch(p, s, spelled, NULL);
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

static char *
action_list(void)
{
    struct strbuf sb = STRBUF_INIT;

    for (size_t i = 0; i < ARRAY_SIZE(actions); i++) {
        strbuf_addstr(&sb, i > 0 ? ", " : "");
        strbuf_addstr(&sb, actions[i].name);
    }
    return strbuf_detach(&sb);
}

static int
positional(struct parser *p, const char *w)
{
    enum cr_action a = find_action(w);
    char *list = NULL;

    if (a == CR_ACT_NONE && p->o->action != CR_ACT_NONE) {
        return fail(p, "unrecognized argument '%s'", shown(w));
    }
    if (a == CR_ACT_NONE) {
        list = action_list();
        fail(p, "invalid action '%s' (choose from %s)", shown(w), list);
        free(list);
        return CR_EUSAGE;
    }
    if (p->o->action != CR_ACT_NONE) {
        return fail(p,
                    "only one action may be given (got '%s' and '%s')",
                    cli_action_name(p->o->action),
                    w);
    }
    p->o->action = a;
    return 0;
}

static int
parse_word(struct parser *p, const char *w)
{
    if (p->positional_only || w[0] != '-' || w[1] == '\0') {
        return positional(p, w);
    }
    if (w[1] != '-') {
        return parse_short(p, w);
    }
    if (w[2] == '\0') {
        p->positional_only = 1;
        return 0;
    }
    return parse_long(p, w);
}

static int
is_one_of(enum cr_action a, const enum cr_action *set, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (set[i] == a) {
            return 1;
        }
    }
    return 0;
}

static int
validate_actions(struct parser *p)
{
    static const enum cr_action spec_ok[] = {CR_ACT_SWITCH, CR_ACT_TEST};
    static const enum cr_action rollback_ok[] = {
        CR_ACT_SWITCH, CR_ACT_BOOT, CR_ACT_TEST, CR_ACT_BUILD};
    static const enum cr_action store_ok[] = {
        CR_ACT_SWITCH, CR_ACT_BOOT, CR_ACT_TEST, CR_ACT_DRY_ACTIVATE};
    static const enum cr_action no_hosts[] = {
        CR_ACT_EDIT, CR_ACT_REPL, CR_ACT_BUILD_IMAGE};
    const struct cr_opts *o = p->o;
    const char *act = cli_action_name(o->action);

    if (o->specialisation != NULL &&
        !is_one_of(o->action, spec_ok, ARRAY_SIZE(spec_ok))) {
        return fail(p,
                    "'--specialisation' can only be used with 'switch' and "
                    "'test'");
    }
    if (o->rollback &&
        !is_one_of(o->action, rollback_ok, ARRAY_SIZE(rollback_ok))) {
        return fail(p, "--rollback is incompatible with '%s'", act);
    }
    if (o->store_path != NULL && o->rollback) {
        return fail(p, "--store-path and --rollback are mutually exclusive");
    }
    if (o->store_path != NULL &&
        (o->flake_mode == CR_FLAKE_ON || o->file != NULL || o->attr != NULL)) {
        return fail(p,
                    "--store-path cannot be used with --flake, --file, or "
                    "--attr");
    }
    if (o->store_path != NULL &&
        !is_one_of(o->action, store_ok, ARRAY_SIZE(store_ok))) {
        return fail(p, "--store-path cannot be used with '%s'", act);
    }
    if ((o->target_host != NULL || o->build_host != NULL) &&
        is_one_of(o->action, no_hosts, ARRAY_SIZE(no_hosts))) {
        return fail(
            p, "--target-host/--build-host is not supported with '%s'", act);
    }
    return 0;
}

static int
validate(struct parser *p)
{
    const struct cr_opts *o = p->o;
    int wants_password = o->ask_password || o->sudo_password_fd >= 0 ||
                         o->sudo_password_file != NULL;

    if (o->action == CR_ACT_NONE) {
        return fail(p, "no action given; see 'crebuild --help'");
    }
    if (o->action == CR_ACT_EDIT && (o->file != NULL || o->attr != NULL)) {
        return fail(p, "--file and --attr are not supported with 'edit'");
    }
    if (o->flake_mode == CR_FLAKE_ON && (o->file != NULL || o->attr != NULL)) {
        return fail(p, "--flake cannot be used with --file or --attr");
    }
    if (p->sudo && p->run0) {
        return fail(p, "--run0 and --sudo are mutually exclusive");
    }
    if (o->sudo_password_fd >= 0 && o->sudo_password_file != NULL) {
        return fail(p,
                    "--sudo-password-fd and --sudo-password-file are mutually "
                    "exclusive");
    }
    if (wants_password && p->elevate_set && p->elevate == CR_ELEVATE_NONE) {
        return fail(p,
                    "%s requires --elevate to select an elevation method",
                    o->ask_password ? "--ask-elevate-password"
                                    : "a sudo password option");
    }
    return validate_actions(p);
}

/* Derived settings, after validation. */
static void
resolve(struct parser *p)
{
    struct cr_opts *o = p->o;
    int wants_password = o->ask_password || o->sudo_password_fd >= 0 ||
                         o->sudo_password_file != NULL;

    if (o->flake_mode == CR_FLAKE_AUTO &&
        (o->file != NULL || o->attr != NULL || o->store_path != NULL)) {
        o->flake_mode = CR_FLAKE_OFF;
    }
    if (p->elevate_set) {
        o->elevate = p->elevate;
    } else if (p->sudo) {
        o->elevate = CR_ELEVATE_SUDO;
    } else if (p->run0) {
        o->elevate = CR_ELEVATE_RUN0;
    } else if (wants_password) {
        o->elevate = CR_ELEVATE_SUDO;
        if (p->ask_long) {
            strvec_push(p->warnings,
                        "--ask-elevate-password without --elevate, falling "
                        "back to --elevate=sudo");
        }
    }
    if (o->diff &&
        (o->action == CR_ACT_DRY_BUILD || o->action == CR_ACT_EDIT ||
         o->action == CR_ACT_REPL || o->action == CR_ACT_LIST_GENERATIONS)) {
        strvec_pushf(p->warnings,
                     "'--diff' has no effect with '%s'",
                     cli_action_name(o->action));
        o->diff = 0;
    }
    /* What is built there is not a system to compare with the running
     * one (ng runs diff-closures on it all the same). */
    if (o->diff && (o->rollback || o->action == CR_ACT_BUILD_VM ||
                    o->action == CR_ACT_BUILD_VM_WITH_BOOTLOADER ||
                    o->action == CR_ACT_BUILD_IMAGE)) {
        strvec_pushf(p->warnings,
                     "'--diff' has no effect with '%s'",
                     o->rollback ? "--rollback" : cli_action_name(o->action));
        o->diff = 0;
    }
    if (o->rollback && o->build_host != NULL) {
        /* Nothing is built (ng does not log in there either). */
        strvec_push(p->warnings, "'--build-host' is ignored with '--rollback'");
        set_str(&o->build_host, NULL);
    }
    if (o->store_path != NULL && o->build_host != NULL) {
        strvec_push(p->warnings,
                    "'--build-host' is ignored with '--store-path'");
        set_str(&o->build_host, NULL);
    }
}

/* Replace the "-v" placeholder with one "-vvv" word (ng's dict_to_flags). */
static void
finish_verbose(struct parser *p)
{
    struct cr_opts *o = p->o;
    char *w = NULL;

    if (p->verbose_pos < 0) {
        return;
    }
    w = xmalloc((size_t)o->verbose + 2);
    w[0] = '-';
    memset(w + 1, 'v', (size_t)o->verbose);
    w[o->verbose + 1] = '\0';
    free(o->common.v[p->verbose_pos]);
    o->common.v[p->verbose_pos] = w;
}

int
cli_parse(int argc,
          char *const argv[],
          struct cr_opts *o,
          struct strvec *warnings,
          char **err)
{
    struct parser p;
    int rc = 0;

    *err = NULL;
    memset(&p, 0, sizeof(p));
    p.o = o;
    p.warnings = warnings;
    p.argv = argv;
    p.argc = argc;
    p.i = 1;
    p.verbose_pos = -1;

    while (rc == 0 && p.i < argc) {
        rc = parse_word(&p, argv[p.i++]);
    }
    finish_verbose(&p);
    if (rc == 0 && !o->show_help && !o->show_version) {
        rc = validate(&p);
        if (rc == 0) {
            resolve(&p);
        }
    }
    if (rc != 0) {
        *err = p.err;
        return CR_EUSAGE;
    }
    return 0;
}

void
cli_opts_init(struct cr_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->action = CR_ACT_NONE;
    o->flake_mode = CR_FLAKE_AUTO;
    o->elevate = CR_ELEVATE_NONE;
    o->sudo_password_fd = -1;
    o->confirm_timeout = 30;
    o->health_timeout = 60;
    strvec_init(&o->common);
    strvec_init(&o->common_build);
    strvec_init(&o->classic_build);
    strvec_init(&o->flake_common);
    strvec_init(&o->flake_eval);
    strvec_init(&o->copy);
}

void
cli_opts_release(struct cr_opts *o)
{
    char **strs[] = {&o->flake,
                     &o->file,
                     &o->attr,
                     &o->profile_name,
                     &o->specialisation,
                     &o->store_path,
                     &o->image_variant,
                     &o->build_host,
                     &o->target_host,
                     &o->sudo_password_file,
                     &o->events_file};

    for (size_t i = 0; i < ARRAY_SIZE(strs); i++) {
        free(*strs[i]);
    }
    for (int i = 0; i < o->n_health_urls; i++) {
        free(o->health_urls[i]);
    }
    for (int i = 0; i < o->n_health_cmds; i++) {
        free(o->health_cmds[i]);
    }
    strvec_clear(&o->common);
    strvec_clear(&o->common_build);
    strvec_clear(&o->classic_build);
    strvec_clear(&o->flake_common);
    strvec_clear(&o->flake_eval);
    strvec_clear(&o->copy);
    cli_opts_init(o);
}

char *
cli_profile_path(const struct cr_opts *o)
{
    if (o->profile_name == NULL || strcmp(o->profile_name, "system") == 0) {
        return xstrdup(PROFILES_DIR "/system");
    }
    return xasprintf(PROFILES_DIR "/system-profiles/%s", o->profile_name);
}

static void
usage_line(struct strbuf *sb, const char *left, const char *help)
{
    size_t start = sb->len;

    strbuf_addstr(sb, "  ");
    strbuf_addstr(sb, left);
    if (sb->len - start >= HELP_COLUMN) {
        strbuf_addch(sb, '\n');
        start = sb->len;
    }
    while (sb->len - start < HELP_COLUMN) {
        strbuf_addch(sb, ' ');
    }
    strbuf_addstr(sb, help);
    strbuf_addch(sb, '\n');
}

static void
usage_option(struct strbuf *sb, const struct optspec *s)
{
    struct strbuf left = STRBUF_INIT;

    if (s->short_name != 0) {
        strbuf_addf(&left, "-%c, ", s->short_name);
    } else {
        strbuf_addstr(&left, "    ");
    }
    strbuf_addf(&left, "--%s", s->name);
    if (s->argname != NULL) {
        strbuf_addf(&left, " %s", s->argname);
    }
    usage_line(sb, left.buf, s->help);
    strbuf_release(&left);
}

static enum opt_section
section_of(const struct optspec *s)
{
    if (s->group != G_NONE) {
        return S_NIX;
    }
    return (s->flags & F_OWN) ? S_OWN : S_MAIN;
}

static void
usage_section(struct strbuf *sb,
              const char *title,
              enum opt_section section,
              int deprecated)
{
    strbuf_addf(sb, "\n%s:\n", title);
    for (size_t i = 0; i < ARRAY_SIZE(options); i++) {
        const struct optspec *s = &options[i];

        if ((deprecation(s) != NULL) != deprecated) {
            continue;
        }
        if (deprecated || section_of(s) == section) {
            usage_option(sb, s);
        }
    }
}

static char *
build_usage(void)
{
    struct strbuf sb = STRBUF_INIT;

    strbuf_addstr(&sb,
                  "usage: crebuild [OPTION]... ACTION\n"
                  "Reconfigure a NixOS machine (a drop-in replacement for "
                  "nixos-rebuild).\n"
                  "Options and the action may come in any order; the manual "
                  "is crebuild(8).\n"
                  "\nActions:\n");
    for (size_t i = 0; i < ARRAY_SIZE(actions); i++) {
        usage_line(&sb, actions[i].name, actions[i].help);
    }
    usage_section(&sb, "Options", S_MAIN, 0);
    usage_section(&sb, "Nix options (passed through)", S_NIX, 0);
    usage_section(&sb, "crebuild options", S_OWN, 0);
    usage_section(&sb, "Deprecated options (accepted with a warning)", 0, 1);
    strbuf_addstr(&sb,
                  "\nExit status: 0 success, 1 error, 2 usage error, 4 "
                  "rolled back, else the\nfailing command's status (130 "
                  "SIGINT, 143 SIGTERM).\n");
    return strbuf_detach(&sb);
}

const char *
cli_usage(void)
{
    static char *text; /* built once, kept for the life of the process */

    if (text == NULL) {
        text = build_usage();
    }
    return text;
}

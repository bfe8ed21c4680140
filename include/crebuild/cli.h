/* cli.h: the command line (nixos-rebuild bash and nixos-rebuild-ng spellings,
 * plus crebuild's own options) turned into struct cr_opts.  Pure: no I/O but
 * the error message it returns. */
#ifndef CREBUILD_CLI_H
#define CREBUILD_CLI_H

#include "crebuild/strvec.h"

enum cr_action {
    CR_ACT_NONE = 0,
    CR_ACT_SWITCH,
    CR_ACT_BOOT,
    CR_ACT_TEST,
    CR_ACT_BUILD,
    CR_ACT_DRY_BUILD,
    CR_ACT_DRY_ACTIVATE,
    CR_ACT_EDIT,
    CR_ACT_REPL,
    CR_ACT_BUILD_VM,
    CR_ACT_BUILD_VM_WITH_BOOTLOADER,
    CR_ACT_BUILD_IMAGE,
    CR_ACT_LIST_GENERATIONS,
};

enum cr_elevate {
    CR_ELEVATE_NONE = 0,
    CR_ELEVATE_SUDO,
    CR_ELEVATE_RUN0,
};

/* Tri-state for flake mode. */
enum cr_flake_mode {
    CR_FLAKE_AUTO =
        0,        /* neither --flake nor --no-flake: /etc/nixos/flake.nix */
    CR_FLAKE_OFF, /* --no-flake (or --file/--attr given) */
    CR_FLAKE_ON,  /* --flake [REF] */
};

#define CR_MAX_CHECKS 16

/* All strings are owned (free with cli_opts_release). */
struct cr_opts {
    enum cr_action action;
    int show_help;    /* --help / -h */
    int show_version; /* --version */

    enum cr_flake_mode flake_mode;
    char *flake;          /* --flake REF; "." for a bare --flake */
    char *file;           /* --file/-f */
    char *attr;           /* --attr/-A */
    char *profile_name;   /* --profile-name/-p; NULL = "system" */
    char *specialisation; /* --specialisation/-c */
    char *store_path;     /* --store-path */
    char *image_variant;  /* --image-variant */
    char *build_host;
    char *target_host;

    int rollback;
    int install_bootloader; /* --install-bootloader, --install-grub */
    int upgrade;            /* --upgrade (also set by --upgrade-all) */
    int upgrade_all;        /* --upgrade-all */
    int no_reexec;          /* --fast, --no-reexec (accepted; never re-exec) */
    int json;
    int diff;
    int verbose; /* count of -v */
    int quiet;   /* count of --quiet */
    int debug;   /* --debug: crebuild's own debug logging, not passed to nix */

    enum cr_elevate elevate; /* --sudo, --use-remote-sudo, --run0, --elevate */
    int ask_password;     /* --ask-sudo-password, --ask-elevate-password, -S */
    int sudo_password_fd; /* --sudo-password-fd N; -1 = none */
    char *sudo_password_file; /* --sudo-password-file PATH */
    /* Any of the four password options without an elevation method selects
     * CR_ELEVATE_SUDO; --elevate=none with one of them is a usage error.
     * --sudo-password-fd/-file do not set ask_password: the caller reads
     * the password from there instead of prompting. */

    /* Pass-through Nix flags, grouped and re-serialised like nixos-rebuild-ng
     * (long spellings, `-v` counts and `-s` kept short). */
    struct strvec common;        /* -v, --max-jobs, --cores, --log-format,
                                    --keep-going, --keep-failed, --fallback,
                                    --repair, --option N V, --quiet */
    struct strvec common_build;  /* --include, --builders,
                                    --print-build-logs, --show-trace */
    struct strvec classic_build; /* --no-build-output */
    struct strvec flake_common;  /* --offline, --no-net */
    struct strvec flake_eval;    /* --accept-flake-config, --refresh, --impure,
                                    lock flags (--recreate-lock-file, ...,
                                    --update-input I, --override-input I U) */
    struct strvec copy;          /* -s */

    /* crebuild's own. */
    int print_plan;           /* --print-plan: show the steps, run nothing */
    int no_magic_rollback;    /* --no-magic-rollback */
    unsigned confirm_timeout; /* --confirm-timeout SECONDS (default 30) */
    unsigned health_timeout;  /* --health-timeout SECONDS (default 60) */
    char *health_urls[CR_MAX_CHECKS];
    int n_health_urls;
    char *health_cmds[CR_MAX_CHECKS];
    int n_health_cmds;
    char *events_file; /* --events FILE|- */
    int no_progress;   /* --no-progress */
};

void cli_opts_init(struct cr_opts *o);
/* Free everything o owns and re-initialise it (safe to call twice). */
void cli_opts_release(struct cr_opts *o);

/* Parse argv[1..argc-1] into o (initialised with cli_opts_init).  Returns 0
 * on success; on a usage error returns CR_EUSAGE and sets *err to a one-line
 * message (caller frees; o must still be released).  *err is NULL on success.
 * Deprecation warnings are appended to *warnings (one per element, without
 * a "warning: " prefix).  With --help or --version only syntax errors are
 * reported: no action is required and no cross-option check is made.
 * Left to the caller (they need getuid/the environment): --upgrade and
 * --upgrade-all need uid 0 or an elevation method. */
int cli_parse(int argc,
              char *const argv[],
              struct cr_opts *o,
              struct strvec *warnings,
              char **err);

/* "switch", "dry-build", ...; "none" for CR_ACT_NONE. */
const char *cli_action_name(enum cr_action a);
/* The usage summary printed when man(1) is unavailable; generated from the
 * option table.  Borrowed, valid for the life of the process. */
const char *cli_usage(void);
/* Long option names without "--", in table (sorted) order, aliases
 * included; NULL once i is past the end.  For tests and completions. */
const char *cli_long_option_name(size_t i);

/* Profile path for o->profile_name ("/nix/var/nix/profiles/system" or
 * ".../system-profiles/NAME").  Caller frees. */
char *cli_profile_path(const struct cr_opts *o);

#endif

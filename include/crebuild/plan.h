/* plan.h: the pure planner.  Options plus a few facts about the machines
 * become an ordered list of steps (evaluate/build, copy, set profile,
 * activate).  Nothing here runs anything: exec.c does, and --print-plan
 * prints the plan instead.  Values only known while running (the built
 * store path, the .drv, a remote temp dir) appear in argv words as
 * placeholders "@toplevel@", "@drv@", "@tmp@", "@filepath@". */
#ifndef CREBUILD_PLAN_H
#define CREBUILD_PLAN_H

#include <stdio.h>

#include "crebuild/cli.h"
#include "crebuild/strvec.h"

enum plan_host {
    PH_LOCAL = 0, /* the machine running crebuild */
    PH_BUILD,     /* --build-host */
    PH_TARGET,    /* --target-host */
    PH_COUNT,
};

enum plan_var {
    VAR_NONE = 0,
    VAR_TOPLEVEL, /* the built (or selected) system, "@toplevel@" */
    VAR_DRV,      /* its derivation, "@drv@" */
    VAR_TMP,      /* a temp dir on the build host, "@tmp@" */
    VAR_FILEPATH, /* an image's passthru.filePath, "@filepath@" */
    VAR_VARIANTS, /* JSON list of image variant names */
    VAR_PREVGEN,  /* generation number current before the deploy */
    VAR_COUNT,
};

enum step_kind {
    STEP_RUN,      /* run argv on host */
    STEP_COPY,     /* copy the closure of a var's path between hosts */
    STEP_ACTIVATE, /* probe systemd, run switch-to-configuration */
    STEP_PREV_GEN, /* previous generation of profile -> VAR_TOPLEVEL */
    STEP_LIST_GENERATIONS,
    STEP_CHECK_VARIANT,  /* image variant must be in VAR_VARIANTS */
    STEP_VERSION_SUFFIX, /* classic mode: write <nixpkgs>/.version-suffix */
    STEP_RESULT_LINK,    /* ln -sfT @toplevel@ ./result */
    STEP_PROBE,          /* one round trip: current generation, nixos-version,
                            specialisation, systemd (see probe_* fields) */
    STEP_DIFF,           /* print what changes on the activating host */
};

enum capture {
    CAP_NONE = 0,
    CAP_LINE,     /* last non-empty line of stdout */
    CAP_JSON_OUT, /* `nix build --json`: outputs.out of the first entry */
    CAP_JSON_RAW, /* the whole stdout, kept as JSON text */
};

struct step {
    enum step_kind kind;
    const char *phase; /* for events: eval, build, copy, profile, ... */
    enum plan_host host;
    struct strvec argv;
    struct strvec env; /* with use_env: "K" preserve, "K=V" set */
    int use_env;
    int elevate;
    int check;         /* failure aborts the run */
    int always;        /* runs even after an earlier failure (clean-up) */
    int interactive;   /* give it the terminal */
    int out_to_stdout; /* its stdout is ours (edit, repl, dry-activate) */
    /* nix-env --set @toplevel@: not run when the probe found that it
     * would change nothing (see step_run). */
    int sets_profile;
    enum capture capture;
    enum plan_var var; /* capture destination / path to copy */
    char *fail_msg;    /* replaces the generic failure message */
    /* STEP_COPY */
    enum plan_host from;
    enum plan_host to;
    int substitute;
    /* STEP_ACTIVATE */
    char *stc_action;
    int install_bootloader;
    int supervised; /* magic rollback */
    unsigned confirm_timeout;
    /* STEP_PREV_GEN, STEP_LIST_GENERATIONS */
    char *profile;
    int json;
    /* STEP_PROBE: profile (current generation -> VAR_PREVGEN) when set */
    int probe_version; /* @toplevel@/nixos-version must exist */
    char *probe_spec;  /* this specialisation must exist */
    /* STEP_CHECK_VARIANT */
    char *variant;
};

enum result_kind {
    RESULT_NONE = 0,
    RESULT_CONFIG, /* "Done. The new configuration is" + toplevel */
    RESULT_VM,     /* "Done. The virtual machine can be started by running" */
    RESULT_IMAGE,  /* "Done. The disk image can be found in" */
};

struct plan {
    struct step *steps;
    size_t n;
    size_t alloc;
    enum result_kind result;
    /* Hosts the plan uses (the executor connects to these only). */
    int uses[PH_COUNT];
};

/* What the planner needs to know about the world; gathered by main. */
struct plan_facts {
    const char *hostname;        /* default flake attribute */
    const char *auto_flake;      /* dir of /etc/nixos/flake.nix, or NULL */
    const char *const *channels; /* root's channels to update (--upgrade) */
    size_t n_channels;
    int skip_version_check;   /* NIXOS_REBUILD_I_UNDERSTAND_... set */
    const char *editor;       /* $EDITOR or "nano" */
    const char *nixos_config; /* file edited by classic `edit` */
    int repl_positional;      /* local `nix repl` predates --file (< 2.9) */
    /* A flake reference as builtins.getFlake takes it (repl): a local
     * path made absolute; anything else returned as is.  Caller frees.
     * NULL: used as given. */
    char *(*resolve_flake)(const char *ref);
};

/* Build the plan.  0 on success; CR_EUSAGE with *err set otherwise. */
int plan_build(const struct cr_opts *o,
               const struct plan_facts *f,
               struct plan *out,
               char **err);
void plan_release(struct plan *p);
/* One line per step: "[host] command". */
void plan_print(const struct plan *p, const struct cr_opts *o, FILE *f);

/* The switch-to-configuration command nixos-rebuild-ng runs: through a
 * transient systemd-run unit when use_systemd, directly otherwise.
 * stc is the path of bin/switch-to-configuration. */
void plan_activation_argv(const char *stc,
                          const char *action,
                          int use_systemd,
                          int install_bootloader,
                          struct strvec *argv,
                          struct strvec *env);

#endif

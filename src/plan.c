/* plan.c: the pure planner (see plan.h).  The command lines follow
 * nixos-rebuild-ng (ng-C era) argv for argv, with Nix 2.8 compatible
 * spellings where ng uses newer ones (`nix build --json` instead of
 * --print-out-paths; `nix-store --realise` on a build host instead of
 * `nix build DRV^*`). */
#include "crebuild/plan.h"
#include "crebuild/flakeref.h"
#include "crebuild/shquote.h"
#include "crebuild/strbuf.h"
#include "crebuild/util.h"

#include <stdlib.h>
#include <string.h>

#define FF_KEY   "--extra-experimental-features"
#define FF_VAL   "nix-command flakes"
#define STC_UNIT "nixos-rebuild-switch-to-configuration"

static const char *
default_phase(enum step_kind kind)
{
    switch (kind) {
    case STEP_COPY:
        return "copy";
    case STEP_ACTIVATE:
        return "activate";
    case STEP_DIFF:
        return "diff";
    default:
        return NULL;
    }
}

static struct step *
add_step(struct plan *p, enum step_kind kind, enum plan_host host)
{
    if (p->n == p->alloc) {
        p->alloc = p->alloc ? p->alloc * 2 : 8;
        p->steps = xreallocarray(p->steps, p->alloc, sizeof(*p->steps));
    }
    struct step *s = &p->steps[p->n++];
    memset(s, 0, sizeof(*s));
    s->kind = kind;
    s->host = host;
    s->check = 1;
    s->phase = default_phase(kind);
    strvec_init(&s->argv);
    strvec_init(&s->env);
    p->uses[host] = 1;
    return s;
}

void
plan_release(struct plan *p)
{
    for (size_t i = 0; i < p->n; i++) {
        struct step *s = &p->steps[i];
        strvec_clear(&s->argv);
        strvec_clear(&s->env);
        free(s->fail_msg);
        free(s->stc_action);
        free(s->profile);
        free(s->variant);
        free(s->probe_spec);
    }
    free(p->steps);
    memset(p, 0, sizeof(*p));
}

void
plan_activation_argv(const char *stc,
                     const char *action,
                     int use_systemd,
                     int install_bootloader,
                     struct strvec *argv,
                     struct strvec *env)
{
    if (use_systemd) {
        strvec_pushl(argv,
                     "systemd-run",
                     "-E",
                     "LOCALE_ARCHIVE",
                     "-E",
                     "NIXOS_INSTALL_BOOTLOADER",
                     "-E",
                     "NIXOS_NO_CHECK",
                     "--collect",
                     "--no-ask-password",
                     "--pipe",
                     "--quiet",
                     "--service-type=exec",
                     "--unit=" STC_UNIT,
                     (const char *)NULL);
    }
    strvec_pushl(argv, stc, action, (const char *)NULL);
    strvec_pushl(env, "LOCALE_ARCHIVE", "NIXOS_NO_CHECK", (const char *)NULL);
    strvec_pushf(env, "NIXOS_INSTALL_BOOTLOADER=%d", install_bootloader);
}

/* The context the step builders share. */
struct ctx {
    const struct cr_opts *o;
    const struct plan_facts *f;
    struct plan *p;
    int flake; /* flake mode in effect */
    struct flakeref ref;
    const char *name;        /* attribute name under nixosConfigurations */
    enum plan_host build_on; /* where the system is realised */
    enum plan_host activate_on;
    char *profile;
};

static void
push_groups(struct strvec *argv,
            const struct cr_opts *o,
            int build,
            int flake_common,
            int flake_eval,
            int classic)
{
    strvec_pusharr(argv, &o->common);
    if (build) {
        strvec_pusharr(argv, &o->common_build);
    }
    if (classic) {
        strvec_pusharr(argv, &o->classic_build);
    }
    if (flake_common) {
        strvec_pusharr(argv, &o->flake_common);
    }
    if (flake_eval) {
        strvec_pusharr(argv, &o->flake_eval);
    }
}

static char *
installable(const struct ctx *c, const char *suffix)
{
    return flakeref_installable(c->ref.flake, c->name, suffix);
}

/* Classic mode: the file and attribute to hand to nix-build. */
static void
classic_target(const struct ctx *c, const char *attr, struct strvec *argv)
{
    const char *file = c->o->file;

    if (file == NULL) {
        file = c->o->attr ? "./default.nix" : "<nixpkgs/nixos>";
    }
    strvec_push(argv, file);
    strvec_push(argv, "--attr");
    if (c->o->attr != NULL) {
        strvec_pushf(argv, "%s.%s", c->o->attr, attr);
    } else {
        strvec_push(argv, attr);
    }
}

/* Evaluate and build `attr` (e.g. "config.system.build.toplevel") locally
 * and put its out path in VAR_TOPLEVEL. */
static void
build_local(struct ctx *c, const char *attr, int no_link, int dry_run)
{
    const struct cr_opts *o = c->o;
    struct step *s = add_step(c->p, STEP_RUN, PH_LOCAL);

    if (c->flake) {
        char *suffix = xasprintf(".%s", attr);
        char *inst = installable(c, suffix);
        strvec_pushl(
            &s->argv, "nix", FF_KEY, FF_VAL, "build", (const char *)NULL);
        if (!dry_run) {
            strvec_push(&s->argv, "--json");
        }
        strvec_push(&s->argv, inst);
        push_groups(&s->argv, o, 1, 1, 1, 0);
        free(inst);
        free(suffix);
    } else {
        strvec_push(&s->argv, "nix-build");
        classic_target(c, attr, &s->argv);
        push_groups(&s->argv, o, 1, 0, 0, 1);
    }
    if (dry_run) {
        strvec_push(&s->argv, "--dry-run");
        return;
    }
    if (no_link) {
        strvec_push(&s->argv, c->flake ? "--no-link" : "--no-out-link");
    }
    s->capture = c->flake ? CAP_JSON_OUT : CAP_LINE;
    s->var = VAR_TOPLEVEL;
    s->phase = "build";
}

/* --build-host: evaluate the .drv locally, send it, realise it there. */
static void
build_remote(struct ctx *c, int dry_run)
{
    const struct cr_opts *o = c->o;
    struct step *s = add_step(c->p, STEP_RUN, PH_LOCAL);

    if (c->flake) {
        char *inst = installable(c, ".config.system.build.toplevel.drvPath");
        strvec_pushl(&s->argv,
                     "nix",
                     FF_KEY,
                     FF_VAL,
                     "eval",
                     "--raw",
                     inst,
                     (const char *)NULL);
        push_groups(&s->argv, o, 1, 1, 1, 0);
        free(inst);
    } else {
        strvec_push(&s->argv, "nix-instantiate");
        classic_target(c, "config.system.build.toplevel", &s->argv);
        push_groups(&s->argv, o, 1, 0, 0, 1);
    }
    s->capture = CAP_LINE;
    s->var = VAR_DRV;
    s->phase = "eval";

    s = add_step(c->p, STEP_COPY, PH_LOCAL);
    s->from = PH_LOCAL;
    s->to = PH_BUILD;
    s->var = VAR_DRV;
    s->substitute = o->copy.n > 0;
    c->p->uses[PH_BUILD] = 1;

    if (dry_run) {
        s = add_step(c->p, STEP_RUN, PH_BUILD);
        strvec_pushl(&s->argv,
                     "nix-store",
                     "--realise",
                     "@drv@",
                     "--dry-run",
                     (const char *)NULL);
        strvec_pusharr(&s->argv, &o->common);
        return;
    }
    s = add_step(c->p, STEP_RUN, PH_BUILD);
    strvec_pushl(&s->argv,
                 "mktemp",
                 "-d",
                 "-t",
                 "nixos-rebuild.XXXXX",
                 (const char *)NULL);
    s->capture = CAP_LINE;
    s->var = VAR_TMP;

    s = add_step(c->p, STEP_RUN, PH_BUILD);
    strvec_pushl(&s->argv,
                 "nix-store",
                 "--realise",
                 "@drv@",
                 "--add-root",
                 "@tmp@/result",
                 (const char *)NULL);
    strvec_pusharr(&s->argv, &o->common);
    s->phase = "build";

    s = add_step(c->p, STEP_RUN, PH_BUILD);
    strvec_pushl(
        &s->argv, "readlink", "-f", "@tmp@/result", (const char *)NULL);
    s->capture = CAP_LINE;
    s->var = VAR_TOPLEVEL;
}

static void
build_cleanup(struct ctx *c)
{
    struct step *s = add_step(c->p, STEP_RUN, PH_BUILD);

    strvec_pushl(&s->argv, "rm", "-rf", "@tmp@", (const char *)NULL);
    s->check = 0;
    s->always = 1;
}

static void
copy_result(struct ctx *c, enum plan_host to)
{
    struct step *s;

    if (c->build_on == to) {
        return;
    }
    /* Same host string for both: the result is already there (ng-C). */
    if (c->build_on == PH_BUILD && to == PH_TARGET &&
        strcmp(c->o->build_host, c->o->target_host) == 0) {
        return;
    }
    s = add_step(c->p, STEP_COPY, PH_LOCAL);
    s->from = c->build_on;
    s->to = to;
    s->var = VAR_TOPLEVEL;
    s->substitute = c->o->copy.n > 0;
    c->p->uses[to] = 1;
    c->p->uses[c->build_on] = 1;
}

/* The read-only checks before the target changes, in one round trip:
 * the profile's current generation (to restore it later), the
 * configuration's nixos-version (ng's safety check), the specialisation,
 * and whether systemd runs there. */
static void
probe(struct ctx *c, int want_gen, int want_version, int want_spec)
{
    struct step *s = add_step(c->p, STEP_PROBE, c->activate_on);

    if (want_gen) {
        s->profile = xstrdup(c->profile);
        s->var = VAR_PREVGEN;
    }
    s->probe_version = want_version && !c->f->skip_version_check;
    if (want_spec && c->o->specialisation != NULL) {
        s->probe_spec = xstrdup(c->o->specialisation);
    }
}

static void
check_specialisation(struct ctx *c, const char *base)
{
    const char *spec = c->o->specialisation;
    struct step *s;

    if (spec == NULL) {
        return;
    }
    s = add_step(c->p, STEP_RUN, c->activate_on);
    strvec_pushl(&s->argv, "test", "-f", (const char *)NULL);
    strvec_pushf(&s->argv,
                 "%s/specialisation/%s/bin/switch-to-configuration",
                 base,
                 spec);
    s->fail_msg = xasprintf("specialisation not found: %s", spec);
}

/* Remote switch and test run under the magic-rollback supervisor unless
 * --no-magic-rollback. */
static int
supervised(const struct ctx *c, const char *action)
{
    return c->activate_on == PH_TARGET && !c->o->no_magic_rollback &&
           (strcmp(action, "switch") == 0 || strcmp(action, "test") == 0);
}

static void
activate(struct ctx *c, const char *base, const char *action)
{
    struct step *s = add_step(c->p, STEP_ACTIVATE, c->activate_on);

    s->supervised = supervised(c, action);
    s->confirm_timeout = c->o->confirm_timeout;

    if (c->o->specialisation != NULL) {
        strvec_pushf(&s->argv,
                     "%s/specialisation/%s/bin/switch-to-configuration",
                     base,
                     c->o->specialisation);
    } else {
        strvec_pushf(&s->argv, "%s/bin/switch-to-configuration", base);
    }
    s->stc_action = xstrdup(action);
    s->install_bootloader = c->o->install_bootloader;
    s->elevate = 1;
    s->out_to_stdout = strcmp(action, "dry-activate") == 0;
}

static void
set_profile(struct ctx *c)
{
    struct step *s;

    if (c->o->profile_name != NULL &&
        strcmp(c->o->profile_name, "system") != 0) {
        s = add_step(c->p, STEP_RUN, c->activate_on);
        strvec_pushl(&s->argv,
                     "mkdir",
                     "-p",
                     "-m",
                     "0755",
                     "/nix/var/nix/profiles/system-profiles",
                     (const char *)NULL);
        s->elevate = 1;
    }
    s = add_step(c->p, STEP_RUN, c->activate_on);
    strvec_pushl(&s->argv,
                 "nix-env",
                 "-p",
                 c->profile,
                 "--set",
                 "@toplevel@",
                 (const char *)NULL);
    s->elevate = 1;
    s->phase = "profile";
    s->sets_profile = 1;
}

static int
is_activating(enum cr_action a)
{
    return a == CR_ACT_SWITCH || a == CR_ACT_BOOT || a == CR_ACT_TEST ||
           a == CR_ACT_DRY_ACTIVATE;
}

static void
plan_upgrade(struct ctx *c)
{
    for (size_t i = 0; i < c->f->n_channels; i++) {
        struct step *s = add_step(c->p, STEP_RUN, PH_LOCAL);
        strvec_pushl(&s->argv,
                     "nix-channel",
                     "--update",
                     c->f->channels[i],
                     (const char *)NULL);
        s->elevate = 1;
        s->check = 0;
    }
}

static void
plan_rollback(struct ctx *c)
{
    enum cr_action a = c->o->action;
    struct step *s;

    if (a == CR_ACT_SWITCH || a == CR_ACT_BOOT) {
        probe(c, 1, 0, 0);
        s = add_step(c->p, STEP_RUN, c->activate_on);
        strvec_pushl(&s->argv,
                     "nix-env",
                     "--rollback",
                     "-p",
                     c->profile,
                     (const char *)NULL);
        s->elevate = 1;
        s->phase = "profile";
        check_specialisation(c, c->profile);
        activate(c, c->profile, a == CR_ACT_SWITCH ? "switch" : "boot");
        c->p->result = RESULT_NONE;
        return;
    }
    s = add_step(c->p, STEP_PREV_GEN, c->activate_on);
    s->profile = xstrdup(c->profile);
    s->var = VAR_TOPLEVEL;
    if (a == CR_ACT_TEST) {
        probe(c, 0, 0, 1);
        activate(c, "@toplevel@", "test");
    } else if (c->o->target_host == NULL) {
        add_step(c->p, STEP_RESULT_LINK, PH_LOCAL);
    }
    c->p->result = RESULT_CONFIG;
}

static void
plan_edit(struct ctx *c)
{
    struct step *s = add_step(c->p, STEP_RUN, PH_LOCAL);

    s->interactive = 1;
    s->out_to_stdout = 1;
    if (c->flake) {
        char *inst = flakeref_installable(c->ref.flake, c->name, "");
        strvec_pushl(
            &s->argv, "nix", FF_KEY, FF_VAL, "edit", (const char *)NULL);
        push_groups(&s->argv, c->o, 0, 1, 1, 0);
        strvec_pushl(&s->argv, "--", inst, (const char *)NULL);
        free(inst);
    } else {
        strvec_push(&s->argv, c->f->editor ? c->f->editor : "nano");
        strvec_push(&s->argv,
                    c->f->nixos_config ? c->f->nixos_config
                                       : "/etc/nixos/configuration.nix");
    }
}

/* s (taken) as a Nix string literal: quoted, with '"', '\\' and "${"
 * escaped, so that nothing in it is evaluated. */
static char *
nix_string(char *s)
{
    struct strbuf sb = STRBUF_INIT;

    strbuf_addch(&sb, '"');
    for (const char *p = s; *p != '\0'; p++) {
        if (*p == '"' || *p == '\\' || (*p == '$' && p[1] == '{')) {
            strbuf_addch(&sb, '\\');
        }
        strbuf_addch(&sb, *p);
    }
    strbuf_addch(&sb, '"');
    free(s);
    return strbuf_detach(&sb);
}

static void
plan_repl(struct ctx *c)
{
    struct step *s = add_step(c->p, STEP_RUN, PH_LOCAL);

    s->interactive = 1;
    s->out_to_stdout = 1;
    if (c->flake) {
        /* Load the flake's configuration the way ng does: a small
         * expression that exposes config, options, pkgs, lib, flake.
         * builtins.getFlake takes no relative path: a local flake is
         * given resolved, as bash (realpath) and ng (resolve()) do. */
        const char *ref = c->ref.flake[0] ? c->ref.flake : ".";
        char *flake = nix_string(c->f->resolve_flake ? c->f->resolve_flake(ref)
                                                     : xstrdup(ref));
        char *name = nix_string(xstrdup(c->name));
        char *expr =
            xasprintf("let flake = builtins.getFlake %s; "
                      "cfg = flake.nixosConfigurations.%s; in "
                      "cfg // cfg._module.args or {} // { inherit flake; "
                      "inherit (cfg) config options pkgs; lib = cfg.lib or "
                      "(cfg.pkgs.lib or {}); }",
                      flake,
                      name);
        free(flake);
        free(name);
        strvec_pushl(&s->argv,
                     "nix",
                     FF_KEY,
                     FF_VAL,
                     "repl",
                     "--impure",
                     "--expr",
                     expr,
                     (const char *)NULL);
        push_groups(&s->argv, c->o, 1, 1, 1, 0);
        free(expr);
    } else {
        strvec_pushl(&s->argv, "nix", "repl", (const char *)NULL);
        if (!c->f->repl_positional) {
            strvec_push(&s->argv, "--file");
        }
        /* -A without -f: ./default.nix, as for a build */
        strvec_push(&s->argv,
                    c->o->file   ? c->o->file
                    : c->o->attr ? "./default.nix"
                                 : "<nixpkgs/nixos>");
        if (c->o->attr != NULL) {
            strvec_push(&s->argv, c->o->attr);
        }
        push_groups(&s->argv, c->o, 1, 0, 0, 1);
    }
}

/* The image variants of a classic configuration: FILE is a lookup path
 * (<nixpkgs/nixos>), an absolute path or one relative to the current
 * directory; a function is called with {}; ATTR ("" for none) is a dotted
 * attribute path in it. */
#define IMAGE_NAMES_EXPR                                                     \
    "{ file, attr }: let v = import (if builtins.substring 0 1 file == "     \
    "\"<\" then builtins.findFile builtins.nixPath (builtins.substring 1 "   \
    "(builtins.stringLength file - 2) file) else if builtins.substring 0 1 " \
    "file == \"/\" then /. + file else ./. + \"/${file}\"); s = if "         \
    "builtins.isFunction v then v {} else v; t = builtins.foldl' (a: n: "    \
    "a.${n}) s (builtins.filter (x: builtins.isString x && x != \"\") "      \
    "(builtins.split \"[.]\" attr)); in builtins.attrNames "                 \
    "t.config.system.build.images"

static void
plan_image(struct ctx *c)
{
    const struct cr_opts *o = c->o;
    struct step *s = add_step(c->p, STEP_RUN, PH_LOCAL);
    char *attr;

    if (c->flake) {
        char *inst = installable(c, ".config.system.build.images");
        strvec_pushl(&s->argv,
                     "nix",
                     FF_KEY,
                     FF_VAL,
                     "eval",
                     "--json",
                     inst,
                     "--apply",
                     "builtins.attrNames",
                     (const char *)NULL);
        strvec_pusharr(&s->argv, &o->flake_eval);
        free(inst);
    } else {
        /* nix-instantiate has no --apply: the names come from an
         * expression (as ng does), with the file and attribute passed as
         * strings so that nothing in them is evaluated. */
        const char *file = o->file;

        if (file == NULL) {
            file = o->attr ? "./default.nix" : "<nixpkgs/nixos>";
        }
        strvec_pushl(&s->argv,
                     "nix-instantiate",
                     "--eval",
                     "--strict",
                     "--json",
                     "--expr",
                     IMAGE_NAMES_EXPR,
                     "--argstr",
                     "file",
                     file,
                     "--argstr",
                     "attr",
                     o->attr ? o->attr : "",
                     (const char *)NULL);
        strvec_pusharr(&s->argv, &o->common);
    }
    s->capture = CAP_JSON_RAW;
    s->var = VAR_VARIANTS;

    s = add_step(c->p, STEP_CHECK_VARIANT, PH_LOCAL);
    s->variant = xstrdup(o->image_variant ? o->image_variant : "");

    attr = xasprintf("config.system.build.images.%s",
                     o->image_variant ? o->image_variant : "");
    build_local(c, attr, 0, 0);
    s = add_step(c->p, STEP_RUN, PH_LOCAL);
    if (c->flake) {
        char *suffix = xasprintf(".%s.passthru.filePath", attr);
        char *inst = installable(c, suffix);
        strvec_pushl(&s->argv,
                     "nix",
                     FF_KEY,
                     FF_VAL,
                     "eval",
                     "--raw",
                     inst,
                     (const char *)NULL);
        strvec_pusharr(&s->argv, &o->flake_eval);
        free(inst);
        free(suffix);
    } else {
        char *a = xasprintf("%s.passthru.filePath", attr);
        strvec_pushl(&s->argv,
                     "nix-instantiate",
                     "--eval",
                     "--strict",
                     "--json",
                     (const char *)NULL);
        classic_target(c, a, &s->argv);
        strvec_pusharr(&s->argv, &o->common);
        free(a);
    }
    s->capture = CAP_LINE;
    s->var = VAR_FILEPATH;
    free(attr);
    c->p->result = RESULT_IMAGE;
}

/* switch, boot, test, dry-activate, build, dry-build, build-vm*. */
static void
plan_deploy(struct ctx *c)
{
    const struct cr_opts *o = c->o;
    enum cr_action a = o->action;
    int remote_build = o->build_host != NULL;
    int dry = a == CR_ACT_DRY_BUILD;
    const char *attr = "config.system.build.toplevel";

    if (a == CR_ACT_BUILD_VM) {
        attr = "config.system.build.vm";
    } else if (a == CR_ACT_BUILD_VM_WITH_BOOTLOADER) {
        attr = "config.system.build.vmWithBootLoader";
    }
    /* (canRun: switch, boot and test; not dry-activate) */
    if (!c->flake && is_activating(a) && a != CR_ACT_DRY_ACTIVATE &&
        o->store_path == NULL) {
        add_step(c->p, STEP_VERSION_SUFFIX, PH_LOCAL);
    }
    if (o->store_path != NULL) {
        /* A prebuilt toplevel: no evaluation, no build host. */
        c->build_on = PH_LOCAL;
        struct step *s = add_step(c->p, STEP_RUN, PH_LOCAL);
        strvec_pushl(&s->argv,
                     "nix-store",
                     "--realise",
                     o->store_path,
                     (const char *)NULL);
        s->capture = CAP_LINE;
        s->var = VAR_TOPLEVEL;
    } else if (remote_build) {
        build_remote(c, dry);
    } else {
        /* ng keeps ./result for build (and the VM builds); the others
         * build without a link. */
        int no_link = a != CR_ACT_BUILD && a != CR_ACT_BUILD_VM &&
                      a != CR_ACT_BUILD_VM_WITH_BOOTLOADER;
        build_local(c, attr, no_link, dry);
    }
    if (dry) {
        c->p->result = RESULT_NONE;
        return;
    }
    if (a == CR_ACT_BUILD_VM || a == CR_ACT_BUILD_VM_WITH_BOOTLOADER) {
        copy_result(c, PH_LOCAL);
        c->p->result = RESULT_VM;
        if (remote_build) {
            build_cleanup(c);
        }
        return;
    }
    copy_result(c, c->activate_on);
    if ((is_activating(a) && (o->diff || a == CR_ACT_DRY_ACTIVATE)) ||
        (a == CR_ACT_BUILD && o->diff)) {
        struct step *d = add_step(c->p, STEP_DIFF, c->activate_on);
        d->profile = xstrdup(c->profile);
        d->check = 0;
    }
    if (a == CR_ACT_SWITCH || a == CR_ACT_BOOT) {
        probe(c, 1, 1, 1);
        set_profile(c);
    } else if (a == CR_ACT_TEST || a == CR_ACT_DRY_ACTIVATE) {
        probe(c, 0, 0, 1);
    }
    if (is_activating(a)) {
        activate(c, "@toplevel@", cli_action_name(a));
    }
    if (remote_build) {
        build_cleanup(c);
    }
    c->p->result = RESULT_CONFIG;
}

int
plan_build(const struct cr_opts *o,
           const struct plan_facts *f,
           struct plan *p,
           char **err)
{
    struct ctx c;
    int rc = 0;

    memset(p, 0, sizeof(*p));
    memset(&c, 0, sizeof(c));
    *err = NULL;
    c.o = o;
    c.f = f;
    c.p = p;
    c.profile = cli_profile_path(o);
    c.build_on = o->build_host ? PH_BUILD : PH_LOCAL;
    c.activate_on = o->target_host ? PH_TARGET : PH_LOCAL;
    p->uses[PH_LOCAL] = 1;

    /* Flake mode: explicit --flake, or /etc/nixos/flake.nix unless
     * --no-flake, --file, --attr or --store-path say otherwise. */
    const char *ref = NULL;
    if (o->flake_mode == CR_FLAKE_ON) {
        ref = o->flake ? o->flake : ".";
    } else if (o->flake_mode == CR_FLAKE_AUTO && o->file == NULL &&
               o->attr == NULL && o->store_path == NULL) {
        ref = f->auto_flake;
    }
    c.flake = ref != NULL;
    if (c.flake) {
        if (flakeref_parse(ref, &c.ref, err) != 0) {
            rc = CR_EUSAGE;
            goto out;
        }
        c.name = c.ref.name
                     ? c.ref.name
                     : (f->hostname && *f->hostname ? f->hostname : "default");
    }
    if (o->upgrade || o->upgrade_all) {
        plan_upgrade(&c);
    }
    switch (o->action) {
    case CR_ACT_EDIT:
        plan_edit(&c);
        break;
    case CR_ACT_REPL:
        plan_repl(&c);
        break;
    case CR_ACT_LIST_GENERATIONS: {
        struct step *s = add_step(p, STEP_LIST_GENERATIONS, c.activate_on);
        s->profile = xstrdup(c.profile);
        s->json = o->json;
        break;
    }
    case CR_ACT_BUILD_IMAGE:
        plan_image(&c);
        break;
    case CR_ACT_NONE:
        *err = xstrdup("no action given");
        rc = CR_EUSAGE;
        goto out;
    default:
        if (o->rollback) {
            plan_rollback(&c);
        } else {
            plan_deploy(&c);
        }
        break;
    }
out:
    flakeref_release(&c.ref);
    free(c.profile);
    if (rc != 0) {
        plan_release(p);
    }
    return rc;
}

static const char *const var_names[VAR_COUNT] = {"",
                                                 "@toplevel@",
                                                 "@drv@",
                                                 "@tmp@",
                                                 "@filepath@",
                                                 "@variants@",
                                                 "@prevgen@"};

void
plan_print(const struct plan *p, const struct cr_opts *o, FILE *f)
{
    for (size_t i = 0; i < p->n; i++) {
        const struct step *s = &p->steps[i];
        const char *hn = s->host == PH_BUILD    ? o->build_host
                         : s->host == PH_TARGET ? o->target_host
                                                : "local";
        struct strbuf sb = STRBUF_INIT;

        strbuf_addf(&sb, "[%s]", hn);
        if (s->elevate && o->elevate != CR_ELEVATE_NONE) {
            strbuf_addstr(&sb, " (elevated)");
        }
        switch (s->kind) {
        case STEP_RUN:
        case STEP_ACTIVATE:
            strbuf_addch(&sb, ' ');
            if (s->kind == STEP_ACTIVATE && s->supervised) {
                strbuf_addf(&sb,
                            "activate (magic rollback, confirm within "
                            "%u s): ",
                            s->confirm_timeout);
            } else if (s->kind == STEP_ACTIVATE) {
                strbuf_addstr(&sb, "activate: ");
            }
            shquote_argv(&sb, &s->argv);
            if (s->stc_action != NULL) {
                strbuf_addf(&sb, " %s", s->stc_action);
            }
            if (s->var != VAR_NONE) {
                strbuf_addf(&sb, " -> %s", var_names[s->var]);
            }
            if (!s->check) {
                strbuf_addstr(&sb, " (may fail)");
            }
            break;
        case STEP_COPY: {
            const char *from = s->from == PH_BUILD    ? o->build_host
                               : s->from == PH_TARGET ? o->target_host
                                                      : "local";
            const char *to = s->to == PH_BUILD    ? o->build_host
                             : s->to == PH_TARGET ? o->target_host
                                                  : "local";
            strbuf_addf(&sb,
                        " copy closure of %s from %s to %s%s",
                        var_names[s->var],
                        from,
                        to,
                        s->substitute ? " (substitute on destination)" : "");
            break;
        }
        case STEP_PREV_GEN:
            strbuf_addf(
                &sb, " previous generation of %s -> @toplevel@", s->profile);
            break;
        case STEP_LIST_GENERATIONS:
            strbuf_addf(&sb,
                        " list generations of %s%s",
                        s->profile,
                        s->json ? " (json)" : "");
            break;
        case STEP_CHECK_VARIANT:
            strbuf_addf(&sb, " check image variant '%s'", s->variant);
            break;
        case STEP_VERSION_SUFFIX:
            strbuf_addstr(&sb, " write <nixpkgs>/.version-suffix (may fail)");
            break;
        case STEP_RESULT_LINK:
            strbuf_addstr(&sb, " ln -sfT @toplevel@ ./result");
            break;
        case STEP_DIFF:
            strbuf_addstr(&sb, " diff the running system and @toplevel@");
            break;
        case STEP_PROBE:
            strbuf_addstr(&sb, " probe:");
            if (s->profile != NULL) {
                strbuf_addf(
                    &sb, " current generation of %s -> @prevgen@;", s->profile);
            }
            if (s->probe_version) {
                strbuf_addstr(&sb, " test -f @toplevel@/nixos-version;");
            }
            if (s->probe_spec != NULL) {
                strbuf_addf(&sb,
                            " test -f @toplevel@/specialisation/%s/bin/"
                            "switch-to-configuration;",
                            s->probe_spec);
            }
            strbuf_addstr(&sb, " test -d /run/systemd/system");
            break;
        }
        fprintf(f, "%s\n", sb.buf);
        strbuf_release(&sb);
    }
}

/* test_plan.c: the planner's output for nixos-rebuild's scenarios
 * (reference §3 and §6), as printed by --print-plan. */
#include "testutil.h"

#include "crebuild/cli.h"
#include "crebuild/plan.h"
#include "crebuild/strvec.h"

#define FF            "nix --extra-experimental-features 'nix-command flakes'"
#define TOP           ".config.system.build.toplevel"
#define PROFILE       "/nix/var/nix/profiles/system"
#define CHECK_VERSION "test -f @toplevel@/nixos-version\n"
#define SYSTEMD_PROBE "test -d /run/systemd/system\n"

struct row {
    const char *name;
    const char *argv[24];
    const char *hostname;   /* fact: default attribute */
    const char *auto_flake; /* fact: /etc/nixos/flake.nix dir */
    const char *expect;     /* plan_print output, host tags stripped */
};

static const struct row rows[] = {
    {"switch flake local (ng test_execute_nix_switch_flake)",
     {"switch",
      "--flake",
      "/path/to/config#hostname",
      "--install-bootloader",
      "--sudo",
      "--verbose",
      "--no-reexec",
      "--option",
      "narinfo-cache-negative-ttl",
      "1200",
      NULL},
     NULL,
     NULL,
     "[local] " FF " build --json '/path/to/config#nixosConfigurations."
     "\"hostname\"" TOP "' -v --option narinfo-cache-negative-ttl 1200 "
     "--no-link -> @toplevel@\n"
     "[local] probe: current generation of " PROFILE " -> @prevgen@; "
     "test -f @toplevel@/nixos-version; " SYSTEMD_PROBE
     "[local] (elevated) nix-env -p " PROFILE " --set @toplevel@\n"
     "[local] (elevated) activate: @toplevel@/bin/switch-to-configuration "
     "switch\n"},
    {"boot classic (ng test_execute_nix_boot)",
     {"boot", "--no-flake", "-vvv", "--no-reexec", NULL},
     NULL,
     NULL,
     "[local] write <nixpkgs>/.version-suffix (may fail)\n"
     "[local] nix-build '<nixpkgs/nixos>' --attr "
     "config.system.build.toplevel -vvv --no-out-link -> @toplevel@\n"
     "[local] probe: current generation of " PROFILE " -> @prevgen@; "
     "test -f @toplevel@/nixos-version; " SYSTEMD_PROBE
     "[local] nix-env -p " PROFILE " --set @toplevel@\n"
     "[local] activate: @toplevel@/bin/switch-to-configuration "
     "boot\n"},
    {"test flake, default attribute from the host name",
     {"test", "--flake", "github:user/repo", NULL},
     "myhost",
     NULL,
     "[local] " FF " build --json 'github:user/repo#nixosConfigurations."
     "\"myhost\"" TOP "' --no-link -> @toplevel@\n"
     "[local] probe: " SYSTEMD_PROBE
     "[local] activate: @toplevel@/bin/switch-to-configuration "
     "test\n"},
    {"build keeps ./result",
     {"build", "--flake", ".#alpha", NULL},
     NULL,
     NULL,
     "[local] " FF " build --json '.#nixosConfigurations.\"alpha\"" TOP
     "' -> @toplevel@\n"},
    {"build classic with -I (ng: long form)",
     {"build", "--no-flake", "-I", "nixos-config=./c.nix", NULL},
     NULL,
     NULL,
     "[local] nix-build '<nixpkgs/nixos>' --attr config.system.build.toplevel"
     " --include nixos-config=./c.nix -> @toplevel@\n"},
    {"file and attr",
     {"build", "-f", "./sys.nix", "-A", "alpha", NULL},
     NULL,
     "/etc/nixos",
     "[local] nix-build ./sys.nix --attr alpha.config.system.build.toplevel"
     " -> @toplevel@\n"},
    {"auto-detected /etc/nixos flake",
     {"dry-build", NULL},
     "h1",
     "/etc/nixos",
     "[local] " FF " build '/etc/nixos#nixosConfigurations.\"h1\"" TOP
     "' --dry-run\n"},
    {"dry-activate",
     {"dry-activate", "--flake", ".#a", NULL},
     NULL,
     NULL,
     "[local] " FF " build --json '.#nixosConfigurations.\"a\"" TOP
     "' --no-link -> @toplevel@\n"
     "[local] diff the running system and @toplevel@\n"
     "[local] probe: " SYSTEMD_PROBE
     "[local] activate: @toplevel@/bin/switch-to-configuration "
     "dry-activate\n"},
    {"--diff before the profile changes",
     {"switch", "--flake", ".#a", "--diff", "--target-host", "t", NULL},
     NULL,
     NULL,
     "[local] " FF " build --json '.#nixosConfigurations.\"a\"" TOP
     "' --no-link -> @toplevel@\n"
     "[local] copy closure of @toplevel@ from local to t\n"
     "[t] diff the running system and @toplevel@\n"
     "[t] probe: current generation of " PROFILE " -> @prevgen@; "
     "test -f @toplevel@/nixos-version; " SYSTEMD_PROBE
     "[t] nix-env -p " PROFILE " --set @toplevel@\n"
     "[t] activate (magic rollback, confirm within 30 s): "
     "@toplevel@/bin/switch-to-configuration switch\n"},
    {"target host (ng test_execute_nix_switch_flake_target_host)",
     {"switch",
      "--flake",
      "/p#hostname",
      "--use-remote-sudo",
      "--target-host",
      "user@localhost",
      NULL},
     NULL,
     NULL,
     "[local] " FF " build --json '/p#nixosConfigurations.\"hostname\"" TOP
     "' --no-link -> @toplevel@\n"
     "[local] copy closure of @toplevel@ from local to user@localhost\n"
     "[user@localhost] probe: current generation of " PROFILE " -> @prevgen@; "
     "test -f @toplevel@/nixos-version; " SYSTEMD_PROBE
     "[user@localhost] (elevated) nix-env -p " PROFILE " --set @toplevel@\n"
     "[user@localhost] (elevated) activate (magic rollback, confirm within "
     "30 s): @toplevel@/bin/switch-to-configuration switch\n"},
    {"target host, --no-magic-rollback, --confirm-timeout",
     {"test",
      "--flake",
      "/p#h",
      "--target-host",
      "t",
      "--no-magic-rollback",
      NULL},
     NULL,
     NULL,
     "[local] " FF " build --json '/p#nixosConfigurations.\"h\"" TOP
     "' --no-link -> @toplevel@\n"
     "[local] copy closure of @toplevel@ from local to t\n"
     "[t] probe: " SYSTEMD_PROBE
     "[t] activate: @toplevel@/bin/switch-to-configuration test\n"},
    {"remote test: supervised, no profile change",
     {"test",
      "--flake",
      "/p#h",
      "--target-host",
      "t",
      "--confirm-timeout",
      "5",
      NULL},
     NULL,
     NULL,
     "[local] " FF " build --json '/p#nixosConfigurations.\"h\"" TOP
     "' --no-link -> @toplevel@\n"
     "[local] copy closure of @toplevel@ from local to t\n"
     "[t] probe: " SYSTEMD_PROBE
     "[t] activate (magic rollback, confirm within 5 s): "
     "@toplevel@/bin/switch-to-configuration test\n"},
    {"remote boot: never supervised",
     {"boot", "--flake", "/p#h", "--target-host", "t", NULL},
     NULL,
     NULL,
     "[local] " FF " build --json '/p#nixosConfigurations.\"h\"" TOP
     "' --no-link -> @toplevel@\n"
     "[local] copy closure of @toplevel@ from local to t\n"
     "[t] probe: current generation of " PROFILE " -> @prevgen@; "
     "test -f @toplevel@/nixos-version; " SYSTEMD_PROBE
     "[t] nix-env -p " PROFILE " --set @toplevel@\n"
     "[t] activate: @toplevel@/bin/switch-to-configuration boot\n"},
    {"build host only (ng test_execute_nix_switch_flake_build_host)",
     {"switch", "--flake", "/p#hostname", "--build-host", "user@b", "-s", NULL},
     NULL,
     NULL,
     "[local] " FF " eval --raw '/p#nixosConfigurations.\"hostname\"" TOP
     ".drvPath' -> @drv@\n"
     "[local] copy closure of @drv@ from local to user@b (substitute on "
     "destination)\n"
     "[user@b] mktemp -d -t nixos-rebuild.XXXXX -> @tmp@\n"
     "[user@b] nix-store --realise @drv@ --add-root @tmp@/result\n"
     "[user@b] readlink -f @tmp@/result -> @toplevel@\n"
     "[local] copy closure of @toplevel@ from user@b to local (substitute on "
     "destination)\n"
     "[local] probe: current generation of " PROFILE " -> @prevgen@; "
     "test -f @toplevel@/nixos-version; " SYSTEMD_PROBE
     "[local] nix-env -p " PROFILE " --set @toplevel@\n"
     "[local] activate: @toplevel@/bin/switch-to-configuration "
     "switch\n"
     "[user@b] rm -rf @tmp@ (may fail)\n"},
    {"build host and target host",
     {"boot",
      "--flake",
      "/p#h",
      "--build-host",
      "b",
      "--target-host",
      "t",
      "--sudo",
      NULL},
     NULL,
     NULL,
     "[local] " FF " eval --raw '/p#nixosConfigurations.\"h\"" TOP
     ".drvPath' -> @drv@\n"
     "[local] copy closure of @drv@ from local to b\n"
     "[b] mktemp -d -t nixos-rebuild.XXXXX -> @tmp@\n"
     "[b] nix-store --realise @drv@ --add-root @tmp@/result\n"
     "[b] readlink -f @tmp@/result -> @toplevel@\n"
     "[local] copy closure of @toplevel@ from b to t\n"
     "[t] probe: current generation of " PROFILE " -> @prevgen@; "
     "test -f @toplevel@/nixos-version; " SYSTEMD_PROBE
     "[t] (elevated) nix-env -p " PROFILE " --set @toplevel@\n"
     "[t] (elevated) activate: @toplevel@/bin/switch-to-configuration "
     "boot\n"
     "[b] rm -rf @tmp@ (may fail)\n"},
    {"build host = target host: no copy between them",
     {"test",
      "--flake",
      "/p#h",
      "--build-host",
      "r@t",
      "--target-host",
      "r@t",
      NULL},
     NULL,
     NULL,
     "[local] " FF " eval --raw '/p#nixosConfigurations.\"h\"" TOP
     ".drvPath' -> @drv@\n"
     "[local] copy closure of @drv@ from local to r@t\n"
     "[r@t] mktemp -d -t nixos-rebuild.XXXXX -> @tmp@\n"
     "[r@t] nix-store --realise @drv@ --add-root @tmp@/result\n"
     "[r@t] readlink -f @tmp@/result -> @toplevel@\n"
     "[r@t] probe: " SYSTEMD_PROBE
     "[r@t] activate (magic rollback, confirm within 30 s): "
     "@toplevel@/bin/switch-to-configuration test\n"
     "[r@t] rm -rf @tmp@ (may fail)\n"},
    {"dry-build with hosts: no copy to the target",
     {"dry-build",
      "--flake",
      "/p#h",
      "--build-host",
      "b",
      "--target-host",
      "t",
      NULL},
     NULL,
     NULL,
     "[local] " FF " eval --raw '/p#nixosConfigurations.\"h\"" TOP
     ".drvPath' -> @drv@\n"
     "[local] copy closure of @drv@ from local to b\n"
     "[b] nix-store --realise @drv@ --dry-run\n"},
    {"switch --rollback (ng test_execute_switch_rollback)",
     {"switch", "--rollback", "--install-bootloader", "--no-flake", NULL},
     NULL,
     NULL,
     "[local] probe: current generation of " PROFILE
     " -> @prevgen@; " SYSTEMD_PROBE "[local] nix-env --rollback -p " PROFILE
     "\n"
     "[local] activate: " PROFILE "/bin/switch-to-configuration switch\n"},
    {"test --rollback with a profile (ng test_execute_test_rollback)",
     {"test", "--rollback", "--profile-name", "foo", NULL},
     NULL,
     NULL,
     "[local] previous generation of "
     "/nix/var/nix/profiles/system-profiles/foo -> @toplevel@\n"
     "[local] probe: " SYSTEMD_PROBE
     "[local] activate: @toplevel@/bin/switch-to-configuration "
     "test\n"},
    {"build --rollback links ./result",
     {"build", "--rollback", "--no-flake", NULL},
     NULL,
     NULL,
     "[local] previous generation of " PROFILE " -> @toplevel@\n"
     "[local] ln -sfT @toplevel@ ./result\n"},
    {"specialisation is checked before the profile changes",
     {"switch", "--flake", ".#a", "-c", "extra", "-p", "web", NULL},
     NULL,
     NULL,
     "[local] " FF " build --json '.#nixosConfigurations.\"a\"" TOP
     "' --no-link -> @toplevel@\n"
     "[local] probe: current generation of "
     "/nix/var/nix/profiles/system-profiles/web -> @prevgen@; "
     "test -f @toplevel@/nixos-version; "
     "test -f "
     "@toplevel@/specialisation/extra/bin/"
     "switch-to-configuration; " SYSTEMD_PROBE "[local] mkdir -p -m 0755 "
     "/nix/var/nix/profiles/system-profiles\n"
     "[local] nix-env -p /nix/var/nix/profiles/system-profiles/web"
     " --set @toplevel@\n"
     "[local] activate: @toplevel@/specialisation/extra/bin/"
     "switch-to-configuration switch\n"},
    {"store path: no evaluation",
     {"switch",
      "--store-path",
      "/nix/store/aaaa-sys",
      "--target-host",
      "t",
      NULL},
     NULL,
     NULL,
     "[local] nix-store --realise /nix/store/aaaa-sys -> @toplevel@\n"
     "[local] copy closure of @toplevel@ from local to t\n"
     "[t] probe: current generation of " PROFILE " -> @prevgen@; "
     "test -f @toplevel@/nixos-version; " SYSTEMD_PROBE
     "[t] nix-env -p " PROFILE " --set @toplevel@\n"
     "[t] activate (magic rollback, confirm within 30 s): "
     "@toplevel@/bin/switch-to-configuration switch\n"},
    {"build-vm",
     {"build-vm", "--flake", ".#a", NULL},
     NULL,
     NULL,
     "[local] " FF " build --json '.#nixosConfigurations.\"a\""
     ".config.system.build.vm' -> @toplevel@\n"},
    {"build-vm-with-bootloader classic",
     {"build-vm-with-bootloader", "--no-flake", NULL},
     NULL,
     NULL,
     "[local] nix-build '<nixpkgs/nixos>' --attr "
     "config.system.build.vmWithBootLoader -> @toplevel@\n"},
    {"build-image",
     {"build-image", "--flake", ".#a", "--image-variant", "qcow2", NULL},
     NULL,
     NULL,
     "[local] " FF " eval --json '.#nixosConfigurations.\"a\""
     ".config.system.build.images' --apply builtins.attrNames -> "
     "@variants@\n"
     "[local] check image variant 'qcow2'\n"
     "[local] " FF " build --json '.#nixosConfigurations.\"a\""
     ".config.system.build.images.qcow2' -> @toplevel@\n"
     "[local] " FF " eval --raw '.#nixosConfigurations.\"a\""
     ".config.system.build.images.qcow2.passthru.filePath' -> "
     "@filepath@\n"},
    {"list-generations --json on a target",
     {"list-generations", "--json", "--target-host", "t", NULL},
     NULL,
     NULL,
     "[t] list generations of " PROFILE " (json)\n"},
    {"edit flake",
     {"edit", "--flake", "/f#h", "--commit-lock-file", NULL},
     NULL,
     NULL,
     "[local] " FF " edit --commit-lock-file -- '/f#nixosConfigurations."
     "\"h\"'\n"},
    {"edit classic",
     {"edit", "--no-flake", NULL},
     NULL,
     NULL,
     "[local] vi /etc/nixos/configuration.nix\n"},
    {"pass-through groups: eval-only flags stay off the build host",
     {"switch",
      "--flake",
      "/p#h",
      "--build-host",
      "b",
      "--impure",
      "--override-input",
      "nixpkgs",
      "path:/x",
      "-L",
      "-j",
      "4",
      NULL},
     NULL,
     NULL,
     "[local] " FF " eval --raw '/p#nixosConfigurations.\"h\"" TOP
     ".drvPath' --max-jobs 4 --print-build-logs --impure --override-input "
     "nixpkgs path:/x -> @drv@\n"
     "[local] copy closure of @drv@ from local to b\n"
     "[b] mktemp -d -t nixos-rebuild.XXXXX -> @tmp@\n"
     "[b] nix-store --realise @drv@ --add-root @tmp@/result --max-jobs 4\n"
     "[b] readlink -f @tmp@/result -> @toplevel@\n"
     "[local] copy closure of @toplevel@ from b to local\n"
     "[local] probe: current generation of " PROFILE " -> @prevgen@; "
     "test -f @toplevel@/nixos-version; " SYSTEMD_PROBE
     "[local] nix-env -p " PROFILE " --set @toplevel@\n"
     "[local] activate: @toplevel@/bin/switch-to-configuration switch\n"
     "[b] rm -rf @tmp@ (may fail)\n"},
    {"dry-activate classic: no .version-suffix (only switch, boot, test)",
     {"dry-activate", "--no-flake", NULL},
     NULL,
     NULL,
     "[local] nix-build '<nixpkgs/nixos>' --attr "
     "config.system.build.toplevel --no-out-link -> @toplevel@\n"
     "[local] diff the running system and @toplevel@\n"
     "[local] probe: " SYSTEMD_PROBE
     "[local] activate: @toplevel@/bin/switch-to-configuration "
     "dry-activate\n"},
    {"build --diff: the new system against the running one",
     {"build", "--flake", ".#a", "--diff", NULL},
     NULL,
     NULL,
     "[local] " FF " build --json '.#nixosConfigurations.\"a\"" TOP
     "' -> @toplevel@\n"
     "[local] diff the running system and @toplevel@\n"},
    {"repl -A without -f: ./default.nix, as a build",
     {"repl", "-A", "mymachine", NULL},
     NULL,
     NULL,
     "[local] nix repl --file ./default.nix mymachine\n"},
    {"repl of a relative flake: getFlake gets it resolved",
     {"repl", "--flake", ".#h", NULL},
     NULL,
     NULL,
     "[local] " FF " repl --impure --expr 'let flake = builtins.getFlake "
     "\"/resolved/.\"; cfg = flake.nixosConfigurations.\"h\"; in cfg // "
     "cfg._module.args or {} // { inherit flake; inherit (cfg) config "
     "options pkgs; lib = cfg.lib or (cfg.pkgs.lib or {}); }'\n"},
    {"repl: quotes, backslashes and ${ in the reference are not evaluated",
     {"repl", "--flake", "github:o/r\"${x}\\#a${y}", NULL},
     NULL,
     NULL,
     "[local] " FF " repl --impure --expr 'let flake = builtins.getFlake "
     "\"github:o/r\\\"\\${x}\\\\\"; cfg = "
     "flake.nixosConfigurations.\"a\\${y}\"; in cfg // "
     "cfg._module.args or {} // { inherit flake; inherit (cfg) config "
     "options pkgs; lib = cfg.lib or (cfg.pkgs.lib or {}); }'\n"},
};

/* The fact main gives: a local path made absolute (here: marked). */
static char *
fake_resolve(const char *ref)
{
    if (strchr(ref, ':') != NULL) {
        return strdup(ref);
    }
    char *out = NULL;
    if (asprintf(&out, "/resolved/%s", ref) < 0) {
        abort();
    }
    return out;
}

static char *
render(const struct row *r)
{
    struct cr_opts o;
    struct strvec warnings = STRVEC_INIT;
    struct plan_facts f;
    struct plan p;
    char *err = NULL, *buf = NULL;
    size_t len = 0;
    int argc = 1;
    char *argv[32] = {strdup("crebuild")};

    for (; r->argv[argc - 1] != NULL; argc++) {
        argv[argc] = strdup(r->argv[argc - 1]);
    }
    cli_opts_init(&o);
    if (cli_parse(argc, argv, &o, &warnings, &err) != 0) {
        fail_msg("%s: parse failed: %s", r->name, err);
    }
    memset(&f, 0, sizeof(f));
    f.hostname = r->hostname;
    f.auto_flake = r->auto_flake;
    f.editor = "vi";
    f.resolve_flake = fake_resolve;
    if (plan_build(&o, &f, &p, &err) != 0) {
        fail_msg("%s: plan failed: %s", r->name, err);
    }
    FILE *mem = open_memstream(&buf, &len);
    plan_print(&p, &o, mem);
    fclose(mem);
    plan_release(&p);
    cli_opts_release(&o);
    strvec_clear(&warnings);
    for (int i = 0; i < argc; i++) {
        free(argv[i]);
    }
    return buf;
}

/* "(elevated)" only matters when elevation is on: strip the marker from
 * rows that did not ask for it is not needed, the plan marks intent. */
static void
test_rows(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        char *got = render(&rows[i]);
        if (strcmp(got, rows[i].expect) != 0) {
            print_error("row '%s'\n--- expected\n%s--- got\n%s",
                        rows[i].name,
                        rows[i].expect,
                        got);
            free(got);
            fail();
        }
        free(got);
    }
}

static void
test_activation_argv(void **state)
{
    struct strvec argv = STRVEC_INIT, env = STRVEC_INIT;

    (void)state;
    plan_activation_argv("/nix/store/x/bin/switch-to-configuration",
                         "switch",
                         1,
                         1,
                         &argv,
                         &env);
    const char *want[] = {"systemd-run",
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
                          "--unit=nixos-rebuild-switch-to-configuration",
                          "/nix/store/x/bin/switch-to-configuration",
                          "switch"};
    assert_int_equal(argv.n, sizeof(want) / sizeof(want[0]));
    for (size_t i = 0; i < argv.n; i++) {
        assert_string_equal(argv.v[i], want[i]);
    }
    assert_int_equal(env.n, 3);
    assert_string_equal(env.v[2], "NIXOS_INSTALL_BOOTLOADER=1");
    strvec_clear(&argv);
    strvec_clear(&env);

    plan_activation_argv("/s", "test", 0, 0, &argv, &env);
    assert_int_equal(argv.n, 2);
    assert_string_equal(argv.v[0], "/s");
    assert_string_equal(argv.v[1], "test");
    assert_string_equal(env.v[2], "NIXOS_INSTALL_BOOTLOADER=0");
    strvec_clear(&argv);
    strvec_clear(&env);
}

static void
test_hostile_attribute_rejected(void **state)
{
    struct cr_opts o;
    struct strvec w = STRVEC_INIT;
    struct plan_facts f;
    struct plan p;
    char *err = NULL;
    char a0[] = "crebuild", a1[] = "switch", a2[] = "--flake", a3[] = ".#a\".x";
    char *argv[] = {a0, a1, a2, a3, NULL};

    (void)state;
    cli_opts_init(&o);
    assert_int_equal(cli_parse(4, argv, &o, &w, &err), 0);
    memset(&f, 0, sizeof(f));
    assert_int_not_equal(plan_build(&o, &f, &p, &err), 0);
    assert_non_null(strstr(err, "quotes"));
    free(err);
    cli_opts_release(&o);
    strvec_clear(&w);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rows),
        cmocka_unit_test(test_activation_argv),
        cmocka_unit_test(test_hostile_attribute_rejected),
    };
    return cmocka_run_group_tests_name("plan", tests, NULL, NULL);
}

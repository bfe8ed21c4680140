/* test_cli.c: the command line parser, table-driven: each row is an argv
 * and either the expected error or the expected fields and flag groups. */
#include "testutil.h"

#include "crebuild/cli.h"
#include "crebuild/strbuf.h"
#include "crebuild/strvec.h"
#include "crebuild/util.h"

#ifndef CR_SRCDIR
#define CR_SRCDIR "."
#endif

#define MAX_ARGS   40
#define MAX_EXPECT 12

struct row {
    const char *args[MAX_ARGS]; /* without argv[0]; NULL-terminated */
    const char *err;            /* expected error substring; NULL = success */
    /* "key=value" items that must appear in dump() (success rows) */
    const char *expect[MAX_EXPECT];
    const char *warn; /* all warnings joined by '\n'; NULL = none */
};

/* clang-format off */
static struct row rows[] = {
    /* Every action; dry-run is dry-build. */
    {.args = {"switch"}, .expect = {"action=switch", "flake_mode=auto",
        "elevate=none", "common=", "profile=(null)", "verbose=0"}},
    {.args = {"boot"}, .expect = {"action=boot"}},
    {.args = {"test"}, .expect = {"action=test"}},
    {.args = {"build"}, .expect = {"action=build"}},
    {.args = {"dry-build"}, .expect = {"action=dry-build"}},
    {.args = {"dry-run"}, .expect = {"action=dry-build"}},
    {.args = {"dry-activate"}, .expect = {"action=dry-activate"}},
    {.args = {"edit"}, .expect = {"action=edit"}},
    {.args = {"repl"}, .expect = {"action=repl"}},
    {.args = {"build-vm"}, .expect = {"action=build-vm"}},
    {.args = {"build-vm-with-bootloader"},
     .expect = {"action=build-vm-with-bootloader"}},
    {.args = {"build-image"}, .expect = {"action=build-image"}},
    {.args = {"list-generations"}, .expect = {"action=list-generations"}},
    {.args = {"list-generations", "--json"}, .expect = {"json=1"}},

    /* The action may come anywhere. */
    {.args = {"--no-flake", "-v", "boot"},
     .expect = {"action=boot", "flake_mode=off", "common=-v"}},
    {.args = {"-v", "boot", "--no-flake"},
     .expect = {"action=boot", "flake_mode=off", "common=-v"}},
    {.args = {"--flake", ".#h", "test", "--sudo"},
     .expect = {"action=test", "flake=.#h", "elevate=sudo"}},

    /* Action errors. */
    {.args = {NULL}, .err = "no action given"},
    {.args = {"-v", "--sudo"}, .err = "no action given"},
    {.args = {"foo"}, .err = "invalid action 'foo' (choose from switch, "
                             "boot, test, build, dry-build, dry-run"},
    {.args = {"unknown-action"}, .err = "invalid action 'unknown-action'"},
    {.args = {"-"}, .err = "invalid action '-'"},
    {.args = {"switch", "foo"}, .err = "unrecognized argument 'foo'"},
    {.args = {"switch", "boot"},
     .err = "only one action may be given (got 'switch' and 'boot')"},
    {.args = {"dry-run", "dry-build"}, .err = "only one action"},
    {.args = {"build", "--sudo", "build"}, .err = "only one action"},

    /* Unknown options, arguments. */
    {.args = {"switch", "--foo"}, .err = "unrecognized argument '--foo'"},
    {.args = {"switch", "--foo=bar"},
     .err = "unrecognized argument '--foo=bar'"},
    {.args = {"switch", "--fla"}, .err = "unrecognized argument '--fla'"},
    {.args = {"switch", "--FLAKE"}, .err = "unrecognized argument"},
    {.args = {"switch", "-x"}, .err = "unrecognized argument '-x'"},
    {.args = {"switch", "-vx"}, .err = "unrecognized argument '-vx'"},
    {.args = {"switch", "a\nb"},
     .err = "unrecognized argument '<unprintable>'"},
    {.args = {"switch", "--sudo=yes"},
     .err = "option '--sudo' doesn't allow an argument"},
    {.args = {"switch", "--verbose=2"},
     .err = "option '--verbose' doesn't allow an argument"},
    {.args = {"switch", "--file"},
     .err = "option '--file' requires an argument"},
    {.args = {"switch", "-f"}, .err = "option '-f' requires an argument"},
    {.args = {"switch", "--attr"},
     .err = "option '--attr' requires an argument"},
    {.args = {"switch", "-p"}, .err = "option '-p' requires an argument"},
    {.args = {"switch", "--specialisation"},
     .err = "option '--specialisation' requires an argument"},
    {.args = {"switch", "--target-host"},
     .err = "option '--target-host' requires an argument"},
    {.args = {"switch", "-j"}, .err = "option '-j' requires an argument"},
    {.args = {"switch", "--option", "a"},
     .err = "option '--option' requires 2 arguments"},
    {.args = {"switch", "--override-input", "a"},
     .err = "option '--override-input' requires 2 arguments"},
    {.args = {"switch", "--file", ""},
     .err = "option '--file' requires a non-empty argument"},
    {.args = {"switch", "--attr="},
     .err = "option '--attr' requires a non-empty argument"},
    {.args = {"switch", "--image-variant", ""},
     .err = "option '--image-variant' requires a non-empty argument"},
    {.args = {"switch", "--flake="},
     .err = "option '--flake' requires a non-empty argument"},
    {.args = {"switch", "--store-path", ""},
     .err = "option '--store-path' requires a non-empty argument"},
    {.args = {"switch", "--events", ""},
     .err = "option '--events' requires a non-empty argument"},

    /* "--" ends options. */
    {.args = {"--", "switch"}, .expect = {"action=switch"}},
    {.args = {"switch", "--", "--sudo"},
     .err = "unrecognized argument '--sudo'"},

    /* --help / --version skip the semantic checks. */
    {.args = {"--help"}, .expect = {"help=1", "action=none"}},
    {.args = {"-h"}, .expect = {"help=1"}},
    {.args = {"--version"}, .expect = {"version=1", "help=0"}},
    {.args = {"boot", "-c", "x", "--help"},
     .expect = {"help=1", "action=boot", "spec=x"}},
    {.args = {"-hv"}, .expect = {"help=1", "common=-v"}},
    {.args = {"--help", "--bogus"}, .err = "unrecognized argument '--bogus'"},

    /* --flake: optional argument, never an action word or an option. */
    {.args = {"switch", "--flake"},
     .expect = {"flake_mode=on", "flake=.", "action=switch"}},
    {.args = {"--flake", "switch"},
     .expect = {"flake_mode=on", "flake=.", "action=switch"}},
    {.args = {"--flake", "dry-run"},
     .expect = {"flake=.", "action=dry-build"}},
    {.args = {"--flake", ".#host", "switch"}, .expect = {"flake=.#host"}},
    {.args = {"--flake=github:u/r#h", "switch"},
     .expect = {"flake=github:u/r#h"}},
    {.args = {"--flake", "--sudo", "switch"},
     .expect = {"flake=.", "elevate=sudo"}},
    {.args = {"--flake", "./switch", "switch"}, .expect = {"flake=./switch"}},
    {.args = {"--flake", "--", "switch"},
     .expect = {"flake=.", "action=switch"}},
    {.args = {"-F", "switch"}, .expect = {"flake=.", "flake_mode=on"}},
    {.args = {"-F.#h", "switch"}, .expect = {"flake=.#h"}},
    {.args = {"-F", "/etc/nixos", "switch"}, .expect = {"flake=/etc/nixos"}},
    {.args = {"--flake", "a", "--flake", "b", "switch"},
     .expect = {"flake=b"}},
    {.args = {"--flake", "x", "--no-flake", "switch"},
     .expect = {"flake_mode=off", "flake=(null)"}},
    {.args = {"--no-flake", "--flake", "x", "switch"},
     .expect = {"flake_mode=on", "flake=x"}},
    {.args = {"--flake", "x", "--no-flake", "-f", "f", "switch"},
     .expect = {"flake_mode=off", "file=f"}},
    {.args = {"test", "--flake", "--file", "abc"},
     .err = "--flake cannot be used with --file or --attr"},
    {.args = {"--attr", "a", "--flake", "f", "switch"},
     .err = "--flake cannot be used with --file or --attr"},

    /* --file / --attr. */
    {.args = {"-f", "x.nix", "switch"},
     .expect = {"file=x.nix", "attr=(null)", "flake_mode=off"}},
    {.args = {"-A", "sys", "switch"},
     .expect = {"attr=sys", "file=(null)", "flake_mode=off"}},
    {.args = {"-fx.nix", "-Asys", "build"},
     .expect = {"file=x.nix", "attr=sys"}},
    {.args = {"--file=x.nix", "--attr=a.b", "build"},
     .expect = {"file=x.nix", "attr=a.b"}},
    {.args = {"edit", "--attr", "attr"},
     .err = "--file and --attr are not supported with 'edit'"},
    {.args = {"edit", "-f", "x"},
     .err = "--file and --attr are not supported with 'edit'"},
    {.args = {"edit", "--flake", ".#h"}, .expect = {"action=edit"}},

    /* --profile-name. */
    {.args = {"-p", "foo", "switch"}, .expect = {"profile=foo"}},
    {.args = {"-pfoo", "switch"}, .expect = {"profile=foo"}},
    {.args = {"--profile-name=my.prof_1+x-y", "switch"},
     .expect = {"profile=my.prof_1+x-y"}},
    {.args = {"-p", "system", "switch"}, .expect = {"profile=system"}},
    {.args = {"-p", "a/b", "switch"}, .err = "invalid profile name 'a/b'"},
    {.args = {"-p", "..", "switch"}, .err = "invalid profile name '..'"},
    {.args = {"-p", ".", "switch"}, .err = "invalid profile name '.'"},
    {.args = {"-p", ".hidden", "switch"}, .err = "invalid profile name"},
    {.args = {"-p", "-x", "switch"}, .err = "invalid profile name '-x'"},
    {.args = {"-p", "a b", "switch"}, .err = "invalid profile name 'a b'"},
    {.args = {"-p", "caf\xc3\xa9", "switch"}, .err = "invalid profile name"},
    {.args = {"-p", "", "switch"},
     .err = "option '-p' requires a non-empty argument"},

    /* --specialisation. */
    {.args = {"switch", "-c", "foo"}, .expect = {"spec=foo"}},
    {.args = {"test", "--specialisation", "foo"}, .expect = {"spec=foo"}},
    {.args = {"test", "--specialisation=with space"},
     .expect = {"spec=with space"}},
    {.args = {"boot", "-c", "foo"},
     .err = "'--specialisation' can only be used with 'switch' and 'test'"},
    {.args = {"build", "-c", "foo"},
     .err = "'--specialisation' can only be used with 'switch' and 'test'"},
    {.args = {"switch", "-c", "a/b"},
     .err = "invalid specialisation name 'a/b'"},
    {.args = {"switch", "-c", ".."},
     .err = "invalid specialisation name '..'"},
    {.args = {"switch", "-c", "."}, .err = "invalid specialisation name '.'"},
    {.args = {"switch", "-c", "-x"},
     .err = "invalid specialisation name '-x'"},
    {.args = {"switch", "-c", ""},
     .err = "option '-c' requires a non-empty argument"},

    /* --rollback. */
    {.args = {"switch", "--rollback"}, .expect = {"rollback=1"}},
    {.args = {"boot", "--rollback"}, .expect = {"rollback=1"}},
    {.args = {"test", "--rollback", "--profile-name", "foo", "--no-reexec"},
     .expect = {"rollback=1", "profile=foo", "no_reexec=1"}},
    {.args = {"build", "--rollback"}, .expect = {"rollback=1"}},
    {.args = {"dry-build", "--rollback"},
     .err = "--rollback is incompatible with 'dry-build'"},
    {.args = {"dry-activate", "--rollback"},
     .err = "--rollback is incompatible with 'dry-activate'"},
    {.args = {"edit", "--rollback"},
     .err = "--rollback is incompatible with 'edit'"},

    /* --store-path. */
    {.args = {"switch", "--store-path", "/nix/store/abc-nixos"},
     .expect = {"store_path=/nix/store/abc-nixos", "flake_mode=off"}},
    {.args = {"boot", "--store-path=/x"}, .expect = {"store_path=/x"}},
    {.args = {"test", "--store-path", "/x"}, .expect = {"store_path=/x"}},
    {.args = {"dry-activate", "--store-path", "/x", "--no-flake"},
     .expect = {"store_path=/x"}},
    {.args = {"build", "--store-path", "/x"},
     .err = "--store-path cannot be used with 'build'"},
    {.args = {"build-vm", "--store-path", "/x"},
     .err = "--store-path cannot be used with 'build-vm'"},
    {.args = {"switch", "--store-path", "/x", "--rollback"},
     .err = "--store-path and --rollback are mutually exclusive"},
    {.args = {"switch", "--store-path", "/x", "--flake"},
     .err = "--store-path cannot be used with --flake, --file, or --attr"},
    {.args = {"switch", "--store-path", "/x", "-f", "f"},
     .err = "--store-path cannot be used with --flake, --file, or --attr"},
    {.args = {"switch", "--store-path", "/x", "-A", "a"},
     .err = "--store-path cannot be used with --flake, --file, or --attr"},
    {.args = {"switch", "--store-path", "/x", "--build-host", "b",
              "--target-host", "t"},
     .expect = {"build_host=(null)", "target_host=t"},
     .warn = "'--build-host' is ignored with '--store-path'"},

    /* Hosts. */
    {.args = {"switch", "--target-host", "user@t", "--build-host", "b"},
     .expect = {"target_host=user@t", "build_host=b"}},
    {.args = {"switch", "--target-host=ssh-ng://root@h"},
     .expect = {"target_host=ssh-ng://root@h"}},
    {.args = {"switch", "--target-host", "user@[fe80::1%25eth0]"},
     .expect = {"target_host=user@[fe80::1%25eth0]"}},
    {.args = {"switch", "--target-host", ""},
     .expect = {"target_host=(null)"}},
    {.args = {"switch", "--build-host=", "--target-host", "t"},
     .expect = {"build_host=(null)", "target_host=t"}},
    {.args = {"switch", "--target-host=-oProxyCommand=x"},
     .err = "invalid host '-oProxyCommand=x': must not start with '-'"},
    {.args = {"switch", "--target-host", "-oProxyCommand=x"},
     .err = "invalid host '-oProxyCommand=x': must not start with '-'"},
    {.args = {"switch", "--build-host", "ssh://-oX"},
     .err = "invalid host 'ssh://-oX': must not start with '-'"},
    {.args = {"switch", "--target-host", "ssh://"},
     .err = "invalid host 'ssh://': must not be empty"},
    {.args = {"switch", "--target-host", "user@"},
     .err = "invalid host 'user@': must not be empty"},
    {.args = {"switch", "--target-host", "a b"},
     .err = "invalid host: must not contain whitespace"},
    {.args = {"switch", "--target-host", "a\nb"},
     .err = "invalid host: must not contain whitespace or control"},
    {.args = {"build-vm", "--target-host", "t"}, .expect = {"target_host=t"}},
    {.args = {"dry-build", "--flake", "/path/to/config#hostname",
              "--build-host", "user@build-host", "--target-host",
              "user@target-host"},
     .expect = {"action=dry-build", "build_host=user@build-host",
                "target_host=user@target-host"}},
    {.args = {"edit", "--target-host", "t"},
     .err = "--target-host/--build-host is not supported with 'edit'"},
    {.args = {"repl", "--build-host", "b"},
     .err = "--target-host/--build-host is not supported with 'repl'"},
    /* beyond nixos-rebuild: list the target's generations */
    {.args = {"list-generations", "--target-host", "t"},
     .expect = {"action=list-generations", "target_host=t"}},
    {.args = {"build-image", "--build-host", "b"},
     .err = "--target-host/--build-host is not supported with 'build-image'"},

    /* Elevation. */
    {.args = {"switch", "--sudo"},
     .expect = {"elevate=sudo", "ask_password=0"}},
    {.args = {"switch", "--use-remote-sudo"}, .expect = {"elevate=sudo"},
     .warn = "'--use-remote-sudo' is deprecated, use '--sudo' instead"},
    {.args = {"switch", "--run0"}, .expect = {"elevate=run0"}},
    {.args = {"switch", "--sudo", "--run0"},
     .err = "--run0 and --sudo are mutually exclusive"},
    {.args = {"switch", "--run0", "--use-remote-sudo"},
     .err = "--run0 and --sudo are mutually exclusive"},
    {.args = {"switch", "--run0", "--ask-sudo-password"},
     .err = "--run0 and --sudo are mutually exclusive"},
    {.args = {"switch", "--elevate", "run0"}, .expect = {"elevate=run0"}},
    {.args = {"switch", "--elevate=sudo"}, .expect = {"elevate=sudo"}},
    {.args = {"switch", "--elevate", "none"}, .expect = {"elevate=none"}},
    {.args = {"switch", "--sudo", "--elevate", "run0"},
     .expect = {"elevate=run0"}},
    {.args = {"switch", "--elevate", "doas"},
     .err = "invalid choice for '--elevate': 'doas' (choose from none, "
            "sudo, run0)"},
    {.args = {"switch", "-S"},
     .expect = {"elevate=sudo", "ask_password=1"}},
    {.args = {"switch", "--ask-sudo-password"},
     .expect = {"elevate=sudo", "ask_password=1"}},
    {.args = {"switch", "--ask-elevate-password"},
     .expect = {"elevate=sudo", "ask_password=1"},
     .warn = "--ask-elevate-password without --elevate, falling back to "
             "--elevate=sudo"},
    {.args = {"switch", "--ask-elevate-password", "--elevate", "run0"},
     .expect = {"elevate=run0", "ask_password=1"}},
    {.args = {"switch", "-S", "--run0"},
     .expect = {"elevate=run0", "ask_password=1"}},
    {.args = {"switch", "-S", "--elevate=none"},
     .err = "--ask-elevate-password requires --elevate to select an "
            "elevation method"},
    {.args = {"switch", "--sudo-password-fd", "3"},
     .expect = {"password_fd=3", "elevate=sudo", "ask_password=0"}},
    {.args = {"switch", "--sudo-password-fd=0", "--run0"},
     .expect = {"password_fd=0", "elevate=run0"}},
    {.args = {"switch", "--sudo-password-file", "/run/pw"},
     .expect = {"password_file=/run/pw", "elevate=sudo"}},
    {.args = {"switch", "--sudo-password-fd", "3", "--sudo-password-file",
              "x"},
     .err = "--sudo-password-fd and --sudo-password-file are mutually "
            "exclusive"},
    {.args = {"switch", "--sudo-password-fd", "x"},
     .err = "invalid value 'x' for '--sudo-password-fd'"},
    {.args = {"switch", "--sudo-password-fd", "-1"},
     .err = "invalid value '-1' for '--sudo-password-fd'"},
    {.args = {"switch", "--sudo-password-fd", "99999999999"},
     .err = "invalid value '99999999999' for '--sudo-password-fd'"},
    {.args = {"switch", "--sudo-password-fd", "3", "--elevate", "none"},
     .err = "requires --elevate to select an elevation method"},

    /* Deprecated flags: one warning each, even when repeated. */
    {.args = {"switch", "--install-grub"},
     .expect = {"install_bootloader=1"},
     .warn = "'--install-grub' is deprecated, use '--install-bootloader' "
             "instead"},
    {.args = {"switch", "--fast", "--fast"}, .expect = {"no_reexec=1"},
     .warn = "'--fast' is deprecated, use '--no-reexec' instead"},
    {.args = {"switch", "--no-ssh-tty"},
     .warn = "'--no-ssh-tty' is deprecated, SSH's TTY is never used "
             "anymore"},
    {.args = {"switch", "--no-build-nix"},
     .warn = "'--no-build-nix' is deprecated, we do not build nix anymore"},
    {.args = {"switch", "--fast", "--use-remote-sudo", "--no-ssh-tty"},
     .warn = "'--fast' is deprecated, use '--no-reexec' instead\n"
             "'--use-remote-sudo' is deprecated, use '--sudo' instead\n"
             "'--no-ssh-tty' is deprecated, SSH's TTY is never used "
             "anymore"},

    /* Plain booleans. */
    {.args = {"switch", "--install-bootloader", "--upgrade", "--json",
              "--diff", "--debug", "--no-reexec"},
     .expect = {"install_bootloader=1", "upgrade=1", "upgrade_all=0",
                "json=1", "diff=1", "debug=1", "no_reexec=1", "common="}},
    {.args = {"--upgrade-all", "boot"},
     .expect = {"upgrade=1", "upgrade_all=1"}},
    {.args = {"build", "--diff"}, .expect = {"diff=1"}},
    {.args = {"dry-build", "--diff"}, .expect = {"diff=0"},
     .warn = "'--diff' has no effect with 'dry-build'"},
    {.args = {"repl", "--diff"}, .expect = {"diff=0"},
     .warn = "'--diff' has no effect with 'repl'"},
    {.args = {"build-vm", "--diff"}, .expect = {"diff=0"},
     .warn = "'--diff' has no effect with 'build-vm'"},
    {.args = {"switch", "--rollback", "--diff"}, .expect = {"diff=0"},
     .warn = "'--diff' has no effect with '--rollback'"},
    {.args = {"switch", "--rollback", "--build-host", "b"},
     .expect = {"build_host=(null)"},
     .warn = "'--build-host' is ignored with '--rollback'"},

    /* --image-variant. */
    {.args = {"build-image", "--image-variant", "azure"},
     .expect = {"image_variant=azure"}},
    {.args = {"build-image", "--image-variant", "a b"},
     .err = "invalid image variant 'a b'"},
    {.args = {"build-image", "--image-variant=a/b"},
     .err = "invalid image variant 'a/b'"},
    {.args = {"build-image", "--image-variant", "azure", "--flake",
              "/path/to/config#hostname"},
     .expect = {"image_variant=azure", "flake=/path/to/config#hostname"}},

    /* Pass-through flags (nixos-rebuild-ng re-serialisation). */
    {.args = {"-vvv", "--quiet", "--quiet", "switch"},
     .expect = {"common=-vvv --quiet --quiet", "verbose=3", "quiet=2"}},
    {.args = {"switch", "-v", "-v", "--verbose"},
     .expect = {"common=-vvv", "verbose=3"}},
    {.args = {"switch", "--quiet", "-v", "--keep-going", "-vv"},
     .expect = {"common=--quiet -vvv --keep-going"}},
    {.args = {"switch", "-vvvvv"}, .expect = {"common=-vvvvv"}},
    {.args = {"switch", "-I", "a", "-I", "b"},
     .expect = {"common_build=--include a --include b", "common="}},
    {.args = {"switch", "--include=a", "-Ib", "--include", "c"},
     .expect = {"common_build=--include a --include b --include c"}},
    {.args = {"switch", "--option", "a", "b", "--option", "c", "d"},
     .expect = {"common=--option a b --option c d"}},
    {.args = {"switch", "--option=a", "b"},
     .expect = {"common=--option a b"}},
    {.args = {"switch", "--option", "x", ""},
     .expect = {"common=--option x "}},
    {.args = {"switch", "--override-input", "a", "b", "--override-input",
              "c", "d", "--update-input", "x", "--update-input", "y"},
     .expect = {"flake_eval=--override-input a b --override-input c d "
                "--update-input x --update-input y"}},
    {.args = {"switch", "-j4"}, .expect = {"common=--max-jobs 4"}},
    {.args = {"switch", "-j", "4"}, .expect = {"common=--max-jobs 4"}},
    {.args = {"switch", "--max-jobs=auto"},
     .expect = {"common=--max-jobs auto"}},
    {.args = {"switch", "-j", "4", "-j", "8"},
     .expect = {"common=--max-jobs 8"}},
    {.args = {"switch", "--cores", "2", "-j", "3", "--cores", "4"},
     .expect = {"common=--cores 4 --max-jobs 3"}},
    {.args = {"switch", "--log-format", "bar", "--fallback", "--repair"},
     .expect = {"common=--log-format bar --fallback --repair"}},
    {.args = {"switch", "-k", "-K", "-k"},
     .expect = {"common=--keep-going --keep-failed"}},
    {.args = {"switch", "-kK"},
     .expect = {"common=--keep-going --keep-failed"}},
    {.args = {"switch", "-L", "-Q", "--show-trace"},
     .expect = {"common_build=--print-build-logs --show-trace",
                "classic_build=--no-build-output"}},
    {.args = {"switch", "--no-link", "-Q"},
     .expect = {"classic_build=--no-build-output"}},
    {.args = {"switch", "-s"}, .expect = {"copy=-s", "common="}},
    {.args = {"switch", "--use-substitutes"}, .expect = {"copy=-s"}},
    {.args = {"switch", "--substitute-on-destination"},
     .expect = {"copy=-s"}},
    {.args = {"switch", "-s", "--use-substitutes"}, .expect = {"copy=-s"}},
    {.args = {"switch", "--builders", ""},
     .expect = {"common_build=--builders "}},
    {.args = {"switch", "--builders", "ssh://b x86_64-linux"},
     .expect = {"common_build=--builders ssh://b x86_64-linux"}},
    {.args = {"switch", "--accept-flake-config", "--refresh", "--impure"},
     .expect = {"flake_eval=--accept-flake-config --refresh --impure",
                "flake_common="}},
    {.args = {"switch", "--offline", "--no-net"},
     .expect = {"flake_common=--offline --no-net", "flake_eval="}},
    {.args = {"switch", "--recreate-lock-file", "--no-update-lock-file",
              "--no-write-lock-file", "--no-registries",
              "--commit-lock-file"},
     .expect = {"flake_eval=--recreate-lock-file --no-update-lock-file "
                "--no-write-lock-file --no-registries --commit-lock-file"}},

    /* Glued short options. */
    {.args = {"-vLj4", "switch"},
     .expect = {"common=-v --max-jobs 4",
                "common_build=--print-build-logs"}},
    {.args = {"-vvs", "switch"}, .expect = {"common=-vv", "copy=-s"}},
    {.args = {"-Ifoo", "switch"}, .expect = {"common_build=--include foo"}},
    {.args = {"-kKLQs", "switch"},
     .expect = {"common=--keep-going --keep-failed",
                "common_build=--print-build-logs",
                "classic_build=--no-build-output", "copy=-s"}},
    {.args = {"-Sv", "switch"},
     .expect = {"ask_password=1", "common=-v"}},

    /* nixos-rebuild-ng test_main.py invocations. */
    {.args = {"boot", "--no-flake", "-vvv", "--no-reexec"},
     .expect = {"action=boot", "flake_mode=off", "common=-vvv",
                "no_reexec=1"}},
    {.args = {"build-vm", "--no-flake", "-I",
              "nixos-config=./configuration.nix", "-I",
              "nixpkgs=$HOME/.nix-defexpr/channels/pkgs", "--no-reexec"},
     .expect = {"common_build=--include nixos-config=./configuration.nix "
                "--include nixpkgs=$HOME/.nix-defexpr/channels/pkgs"}},
    {.args = {"switch", "--flake", "/path/to/config#hostname",
              "--install-bootloader", "--sudo", "--verbose", "--no-reexec",
              "--option", "narinfo-cache-negative-ttl", "1200"},
     .expect = {"flake=/path/to/config#hostname", "install_bootloader=1",
                "elevate=sudo", "no_reexec=1",
                "common=-v --option narinfo-cache-negative-ttl 1200"}},
    {.args = {"switch", "--no-flake", "--sudo", "--build-host",
              "user@build-host", "--target-host", "user@target-host",
              "--no-reexec", "-I", "nixpkgs=/path/to/nixpkgs"},
     .expect = {"flake_mode=off", "elevate=sudo",
                "build_host=user@build-host",
                "target_host=user@target-host",
                "common_build=--include nixpkgs=/path/to/nixpkgs"}},
    {.args = {"switch", "--flake", "/path/to/config#hostname",
              "--use-remote-sudo", "--target-host", "user@localhost",
              "--no-reexec"},
     .expect = {"elevate=sudo", "target_host=user@localhost"},
     .warn = "'--use-remote-sudo' is deprecated, use '--sudo' instead"},
    {.args = {"switch", "--flake", "/path/to/config#hostname",
              "--build-host", "user@localhost", "--no-reexec"},
     .expect = {"build_host=user@localhost"}},
    {.args = {"switch", "--rollback", "--install-bootloader", "--no-reexec",
              "--no-flake"},
     .expect = {"rollback=1", "install_bootloader=1", "flake_mode=off"}},
    {.args = {"build", "--no-flake", "--no-reexec"},
     .expect = {"action=build", "flake_mode=off"}},
    {.args = {"test", "--flake", "github:user/repo#hostname", "--no-reexec"},
     .expect = {"flake=github:user/repo#hostname"}},

    /* crebuild's own options. */
    {.args = {"switch", "--print-plan", "--no-magic-rollback",
              "--no-progress"},
     .expect = {"print_plan=1", "no_magic_rollback=1", "no_progress=1",
                "confirm_timeout=30", "health_timeout=60"}},
    {.args = {"switch", "--confirm-timeout", "0", "--health-timeout=120"},
     .expect = {"confirm_timeout=0", "health_timeout=120"}},
    {.args = {"switch", "--confirm-timeout", "86400"},
     .expect = {"confirm_timeout=86400"}},
    {.args = {"switch", "--confirm-timeout", "86401"},
     .err = "invalid value '86401' for '--confirm-timeout': expected a "
            "number from 0 to 86400"},
    {.args = {"switch", "--confirm-timeout", "abc"},
     .err = "invalid value 'abc' for '--confirm-timeout'"},
    {.args = {"switch", "--health-timeout", "1.5"},
     .err = "invalid value '1.5' for '--health-timeout'"},
    {.args = {"switch", "--health-timeout", ""},
     .err = "option '--health-timeout' requires a non-empty argument"},
    {.args = {"switch", "--health-check", "http://a/health",
              "--health-check=HTTPS://b"},
     .expect = {"health_urls=http://a/health,HTTPS://b"}},
    {.args = {"switch", "--health-check", "ftp://x"},
     .err = "invalid health check URL 'ftp://x': must start with http:// "
            "or https://"},
    {.args = {"switch", "--health-check", "file:///etc/passwd"},
     .err = "invalid health check URL"},
    {.args = {"switch", "--health-check-cmd", "systemctl is-active nginx",
              "--health-check-cmd", "true"},
     .expect = {"health_cmds=systemctl is-active nginx|true"}},
    {.args = {"switch", "--events", "-"}, .expect = {"events=-"}},
    {.args = {"switch", "--events=/tmp/ev.json"},
     .expect = {"events=/tmp/ev.json"}},
    {.args = {"switch",
              "--health-check", "http://1", "--health-check", "http://2",
              "--health-check", "http://3", "--health-check", "http://4",
              "--health-check", "http://5", "--health-check", "http://6",
              "--health-check", "http://7", "--health-check", "http://8",
              "--health-check", "http://9", "--health-check", "http://10",
              "--health-check", "http://11", "--health-check", "http://12",
              "--health-check", "http://13", "--health-check", "http://14",
              "--health-check", "http://15", "--health-check", "http://16",
              "--health-check", "http://17"},
     .err = "too many '--health-check' options (at most 16)"},
};
/* clang-format on */

static const char *
s_or_null(const char *s)
{
    return s != NULL ? s : "(null)";
}

static void
push_group(struct strvec *out, const char *key, const struct strvec *g)
{
    char *j = strvec_join(g, " ");

    strvec_pushf(out, "%s=%s", key, j);
    free(j);
}

static void
push_list(
    struct strvec *out, const char *key, char *const *v, int n, const char *sep)
{
    struct strbuf sb = STRBUF_INIT;

    for (int i = 0; i < n; i++) {
        strbuf_addstr(&sb, i > 0 ? sep : "");
        strbuf_addstr(&sb, v[i]);
    }
    strvec_pushf(out, "%s=%s", key, sb.buf);
    strbuf_release(&sb);
}

/* Every field of o as "key=value" items. */
static void
dump(const struct cr_opts *o, struct strvec *out)
{
    static const char *const modes[] = {"auto", "off", "on"};
    static const char *const elevs[] = {"none", "sudo", "run0"};

    strvec_pushf(out, "action=%s", cli_action_name(o->action));
    strvec_pushf(out, "help=%d", o->show_help);
    strvec_pushf(out, "version=%d", o->show_version);
    strvec_pushf(out, "flake_mode=%s", modes[o->flake_mode]);
    strvec_pushf(out, "flake=%s", s_or_null(o->flake));
    strvec_pushf(out, "file=%s", s_or_null(o->file));
    strvec_pushf(out, "attr=%s", s_or_null(o->attr));
    strvec_pushf(out, "profile=%s", s_or_null(o->profile_name));
    strvec_pushf(out, "spec=%s", s_or_null(o->specialisation));
    strvec_pushf(out, "store_path=%s", s_or_null(o->store_path));
    strvec_pushf(out, "image_variant=%s", s_or_null(o->image_variant));
    strvec_pushf(out, "build_host=%s", s_or_null(o->build_host));
    strvec_pushf(out, "target_host=%s", s_or_null(o->target_host));
    strvec_pushf(out, "rollback=%d", o->rollback);
    strvec_pushf(out, "install_bootloader=%d", o->install_bootloader);
    strvec_pushf(out, "upgrade=%d", o->upgrade);
    strvec_pushf(out, "upgrade_all=%d", o->upgrade_all);
    strvec_pushf(out, "no_reexec=%d", o->no_reexec);
    strvec_pushf(out, "json=%d", o->json);
    strvec_pushf(out, "diff=%d", o->diff);
    strvec_pushf(out, "verbose=%d", o->verbose);
    strvec_pushf(out, "quiet=%d", o->quiet);
    strvec_pushf(out, "debug=%d", o->debug);
    strvec_pushf(out, "elevate=%s", elevs[o->elevate]);
    strvec_pushf(out, "ask_password=%d", o->ask_password);
    strvec_pushf(out, "password_fd=%d", o->sudo_password_fd);
    strvec_pushf(out, "password_file=%s", s_or_null(o->sudo_password_file));
    strvec_pushf(out, "print_plan=%d", o->print_plan);
    strvec_pushf(out, "no_magic_rollback=%d", o->no_magic_rollback);
    strvec_pushf(out, "confirm_timeout=%u", o->confirm_timeout);
    strvec_pushf(out, "health_timeout=%u", o->health_timeout);
    push_list(out, "health_urls", o->health_urls, o->n_health_urls, ",");
    push_list(out, "health_cmds", o->health_cmds, o->n_health_cmds, "|");
    strvec_pushf(out, "events=%s", s_or_null(o->events_file));
    strvec_pushf(out, "no_progress=%d", o->no_progress);
    push_group(out, "common", &o->common);
    push_group(out, "common_build", &o->common_build);
    push_group(out, "classic_build", &o->classic_build);
    push_group(out, "flake_common", &o->flake_common);
    push_group(out, "flake_eval", &o->flake_eval);
    push_group(out, "copy", &o->copy);
}

static int
has_item(const struct strvec *items, const char *want)
{
    for (size_t i = 0; i < items->n; i++) {
        if (strcmp(items->v[i], want) == 0) {
            return 1;
        }
    }
    return 0;
}

/* cli_parse() on "crebuild" + args (copied into a writable argv). */
static int
parse_args(const char *const *args,
           struct cr_opts *o,
           struct strvec *warnings,
           char **err)
{
    struct strvec argv = STRVEC_INIT;
    int rc;

    strvec_push(&argv, "crebuild");
    for (size_t i = 0; args[i] != NULL; i++) {
        strvec_push(&argv, args[i]);
    }
    rc = cli_parse((int)argv.n, argv.v, o, warnings, err);
    strvec_clear(&argv);
    return rc;
}

static void
check_success(const struct row *r,
              const struct cr_opts *o,
              const struct strvec *warnings)
{
    struct strvec items = STRVEC_INIT;
    char *w = strvec_join(warnings, "\n");
    int ok = 1;

    dump(o, &items);
    for (size_t i = 0; i < MAX_EXPECT && r->expect[i] != NULL; i++) {
        if (!has_item(&items, r->expect[i])) {
            char *all = strvec_join(&items, "\n  ");
            print_error("expected '%s', got:\n  %s\n", r->expect[i], all);
            free(all);
            ok = 0;
        }
    }
    if (strcmp(w, r->warn != NULL ? r->warn : "") != 0) {
        print_error(
            "warnings: expected '%s', got '%s'\n", s_or_null(r->warn), w);
        ok = 0;
    }
    free(w);
    strvec_clear(&items);
    assert_true(ok);
}

static void
run_row(void **state)
{
    const struct row *r = *state;
    struct cr_opts o;
    struct strvec warnings = STRVEC_INIT;
    char *err = NULL;
    int rc;

    cli_opts_init(&o);
    rc = parse_args(r->args, &o, &warnings, &err);
    if (r->err == NULL) {
        if (rc != 0) {
            print_error("unexpected error: %s\n", s_or_null(err));
        }
        assert_int_equal(rc, 0);
        assert_null(err);
        check_success(r, &o, &warnings);
    } else {
        if (rc == 0 || err == NULL || strstr(err, r->err) == NULL) {
            print_error("expected error containing '%s', got rc %d '%s'\n",
                        r->err,
                        rc,
                        s_or_null(err));
        }
        assert_int_equal(rc, CR_EUSAGE);
        assert_non_null(err);
        assert_non_null(strstr(err, r->err));
        assert_null(strchr(err, '\n'));
    }
    free(err);
    strvec_clear(&warnings);
    cli_opts_release(&o);
}

/* ---- non-row tests ---- */

static void
test_table_sorted(void **state)
{
    const char *prev = NULL;
    const char *name;

    (void)state;
    for (size_t i = 0; (name = cli_long_option_name(i)) != NULL; i++) {
        assert_true(name[0] != '\0' && name[0] != '-');
        if (prev != NULL && strcmp(prev, name) >= 0) {
            print_error("'%s' sorts before '%s'\n", name, prev);
            fail();
        }
        prev = name;
    }
    assert_non_null(prev);
}

/* Each long option parses by its own name (bsearch finds all of them). */
static void
test_every_option_found(void **state)
{
    const char *name;

    (void)state;
    for (size_t i = 0; (name = cli_long_option_name(i)) != NULL; i++) {
        struct cr_opts o;
        struct strvec w = STRVEC_INIT;
        char *err = NULL;
        char *opt = xasprintf("--%s", name);
        const char *args[] = {opt, "--help", NULL};

        cli_opts_init(&o);
        (void)parse_args(args, &o, &w, &err);
        /* Options with a value eat "--help"; only the lookup matters. */
        if (err != NULL && strstr(err, "unrecognized") != NULL) {
            print_error("%s: %s\n", opt, err);
            fail();
        }
        free(err);
        free(opt);
        strvec_clear(&w);
        cli_opts_release(&o);
    }
}

static char *
read_file(const char *rel)
{
    char *path = xasprintf("%s/%s", CR_SRCDIR, rel);
    FILE *f = fopen(path, "r");
    struct strbuf sb = STRBUF_INIT;
    char buf[4096];
    size_t n;

    if (f == NULL) {
        print_error("cannot open '%s'\n", path);
        free(path);
        return NULL;
    }
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0) {
        strbuf_add(&sb, buf, n);
    }
    fclose(f);
    free(path);
    return strbuf_detach(&sb);
}

static int
is_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

/* Does text contain prefix+name, not followed by another name character
 * (and, without a prefix, not preceded by one either)? */
static int
mentions(const char *text, const char *prefix, const char *name)
{
    char *needle = xasprintf("%s%s", prefix, name);
    size_t n = strlen(needle);
    const char *p = text;
    int found = 0;

    while (!found && (p = strstr(p, needle)) != NULL) {
        found = !is_name_char(p[n]) &&
                (*prefix != '\0' || p == text || !is_name_char(p[-1]));
        p += n;
    }
    free(needle);
    return found;
}

/* roff: "\-" is a minus sign; compare with the plain spelling. */
static void
unescape_roff(char *s)
{
    char *out = s;

    for (; *s != '\0'; s++) {
        if (s[0] == '\\' && s[1] == '-') {
            s++;
        }
        *out++ = *s;
    }
    *out = '\0';
}

static const char *const all_actions[] = {"switch",
                                          "boot",
                                          "test",
                                          "build",
                                          "dry-build",
                                          "dry-run",
                                          "dry-activate",
                                          "edit",
                                          "repl",
                                          "build-vm",
                                          "build-vm-with-bootloader",
                                          "build-image",
                                          "list-generations"};

static void
check_doc(const char *rel, const char *opt_prefix, int roff)
{
    char *text = read_file(rel);
    const char *name;
    int ok = 1;

    assert_non_null(text);
    if (roff) {
        unescape_roff(text);
    }
    for (size_t i = 0; (name = cli_long_option_name(i)) != NULL; i++) {
        if (!mentions(text, opt_prefix, name)) {
            print_error("%s: option '--%s' missing\n", rel, name);
            ok = 0;
        }
    }
    for (size_t i = 0; i < ARRAY_SIZE(all_actions); i++) {
        if (!mentions(text, roff ? ".B " : "", all_actions[i])) {
            print_error("%s: action '%s' missing\n", rel, all_actions[i]);
            ok = 0;
        }
    }
    free(text);
    assert_true(ok);
}

static void
test_manpage_lists_everything(void **state)
{
    (void)state;
    /* Actions are listed as ".TP\n.B <action>" in ACTIONS. */
    check_doc("man/crebuild.8", "--", 1);
}

static void
test_completions_list_everything(void **state)
{
    (void)state;
    check_doc("completions/crebuild.bash", "--", 0);
    check_doc("completions/_crebuild", "--", 0);
    check_doc("completions/crebuild.fish", "-l ", 0);
}

static void
test_usage(void **state)
{
    const char *u = cli_usage();
    const char *name;
    const char *line = u;

    (void)state;
    assert_ptr_equal(u, cli_usage()); /* built once */
    for (size_t i = 0; (name = cli_long_option_name(i)) != NULL; i++) {
        if (!mentions(u, "--", name)) {
            print_error("usage: '--%s' missing\n", name);
            fail();
        }
    }
    for (size_t i = 0; i < ARRAY_SIZE(all_actions); i++) {
        assert_true(mentions(u, "  ", all_actions[i]));
    }
    while (*line != '\0') {
        const char *nl = strchr(line, '\n');

        assert_non_null(nl);
        if (nl - line > 79) {
            print_error("usage line too long: %.*s\n", (int)(nl - line), line);
            fail();
        }
        line = nl + 1;
    }
}

static void
test_action_names(void **state)
{
    (void)state;
    assert_string_equal(cli_action_name(CR_ACT_NONE), "none");
    assert_string_equal(cli_action_name(CR_ACT_SWITCH), "switch");
    assert_string_equal(cli_action_name(CR_ACT_DRY_BUILD), "dry-build");
    assert_string_equal(cli_action_name(CR_ACT_BUILD_VM_WITH_BOOTLOADER),
                        "build-vm-with-bootloader");
    assert_string_equal(cli_action_name(CR_ACT_LIST_GENERATIONS),
                        "list-generations");
}

static void
test_profile_path(void **state)
{
    static const struct {
        const char *name;
        const char *path;
    } cases[] = {
        {NULL, "/nix/var/nix/profiles/system"},
        {"system", "/nix/var/nix/profiles/system"},
        {"foo", "/nix/var/nix/profiles/system-profiles/foo"},
        {"a.b_c+d-e", "/nix/var/nix/profiles/system-profiles/a.b_c+d-e"},
    };

    (void)state;
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        struct cr_opts o;
        char *p;

        cli_opts_init(&o);
        if (cases[i].name != NULL) {
            o.profile_name = xstrdup(cases[i].name);
        }
        p = cli_profile_path(&o);
        assert_string_equal(p, cases[i].path);
        free(p);
        cli_opts_release(&o);
    }
}

static void
test_release_twice(void **state)
{
    struct cr_opts o;
    struct strvec w = STRVEC_INIT;
    char *err = NULL;
    const char *args[] = {"switch",
                          "--flake",
                          "x",
                          "-vv",
                          "--health-check",
                          "http://x",
                          "--health-check-cmd",
                          "true",
                          "-p",
                          "p",
                          NULL};

    (void)state;
    cli_opts_init(&o);
    assert_int_equal(parse_args(args, &o, &w, &err), 0);
    cli_opts_release(&o);
    assert_null(o.flake);
    assert_int_equal(o.n_health_urls, 0);
    assert_int_equal(o.sudo_password_fd, -1);
    assert_int_equal((int)o.common.n, 0);
    cli_opts_release(&o);
    strvec_clear(&w);
}

/* Random argvs from a pool of words: no crash, no leak, errors are one
 * line, success implies an action (or --help/--version). */
static void
test_random_argv(void **state)
{
    static const char *const pool[] = {
        "switch",
        "boot",
        "dry-run",
        "--flake",
        "-F",
        "x#y",
        "--file",
        "-f",
        "-A",
        "--attr",
        "-vvv",
        "--quiet",
        "-j4",
        "-j",
        "--option",
        "a",
        "b",
        "-I",
        "--include",
        "--sudo",
        "--run0",
        "-S",
        "--elevate",
        "run0",
        "--target-host",
        "h",
        "-oX",
        "--",
        "-",
        "",
        "-p",
        "-c",
        "--store-path",
        "/x",
        "--rollback",
        "--help",
        "--version",
        "--override-input",
        "--update-input",
        "-kKLQs",
        "--health-check",
        "http://h",
        "--confirm-timeout",
        "5",
        "--no-flake",
        "--fast",
        "--use-remote-sudo",
        "edit",
        "build-image",
        "--image-variant",
        "--sudo-password-fd",
        "3",
        "=",
        "--x=y",
    };
    unsigned seed = 12345;

    (void)state;
    for (int round = 0; round < 3000; round++) {
        const char *args[12] = {NULL};
        int n = (int)(seed % 10);
        struct cr_opts o;
        struct strvec w = STRVEC_INIT;
        char *err = NULL;
        int rc;

        for (int k = 0; k < n; k++) {
            seed = seed * 1103515245u + 12345u;
            args[k] = pool[(seed >> 8) % ARRAY_SIZE(pool)];
        }
        seed = seed * 1103515245u + 12345u;
        cli_opts_init(&o);
        rc = parse_args(args, &o, &w, &err);
        if (rc != 0) {
            assert_int_equal(rc, CR_EUSAGE);
            assert_non_null(err);
            assert_null(strchr(err, '\n'));
        } else {
            assert_null(err);
            assert_true(o.action != CR_ACT_NONE || o.show_help ||
                        o.show_version);
        }
        free(err);
        strvec_clear(&w);
        cli_opts_release(&o);
    }
}

static char *row_names[ARRAY_SIZE(rows)];

int
main(void)
{
    static const struct CMUnitTest fixed[] = {
        cmocka_unit_test(test_table_sorted),
        cmocka_unit_test(test_every_option_found),
        cmocka_unit_test(test_manpage_lists_everything),
        cmocka_unit_test(test_completions_list_everything),
        cmocka_unit_test(test_usage),
        cmocka_unit_test(test_action_names),
        cmocka_unit_test(test_profile_path),
        cmocka_unit_test(test_release_twice),
        cmocka_unit_test(test_random_argv),
    };
    size_t n = ARRAY_SIZE(rows) + ARRAY_SIZE(fixed);
    struct CMUnitTest *tests = xcalloc(n, sizeof(*tests));
    int rc;

    for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
        struct strbuf name = STRBUF_INIT;

        strbuf_addstr(&name, "cli");
        for (size_t k = 0; rows[i].args[k] != NULL; k++) {
            strbuf_addf(&name, " %s", rows[i].args[k]);
        }
        for (char *c = name.buf; *c != '\0'; c++) {
            if ((unsigned char)*c < ' ') {
                *c = '?'; /* keep one line per test in the output */
            }
        }
        row_names[i] = strbuf_detach(&name);
        tests[i].name = row_names[i];
        tests[i].test_func = run_row;
        tests[i].initial_state = &rows[i];
    }
    memcpy(tests + ARRAY_SIZE(rows), fixed, sizeof(fixed));
    rc = _cmocka_run_group_tests("cli", tests, n, NULL, NULL);
    for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
        free(row_names[i]);
    }
    free(tests);
    return rc;
}

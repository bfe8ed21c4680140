#!/bin/bash
# t_local.sh: every action on the local machine (no --target-host), inside a
# throwaway host with its own /nix, compared with what nixos-rebuild leaves:
# profile generation links, switch-to-configuration calls and environment,
# ./result links, exit statuses, stdout carrying only the store path.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib/host.sh"
. "$here/lib/assert.sh"
trap cr_cleanup EXIT

deployer_up local1 || { fail "local host up"; exit 1; }
flake=$(flake_copy)
work=$CR_TEST_ROOT/work
mkdir -p "$work"
cd "$work" || exit 1
CR=$CREBUILD
P=/nix/var/nix/profiles
log() { host_activations local1; }
nlog() { log | grep -c . ; }
run() { host_exec local1 "$CR" "$@"; }
profile_target() { readlink "$(host_path local1 "$1")"; }
gens() { ls "$(host_path local1 "$P")" | grep -c '^system-[0-9]*-link$'; }

# --- switch, default attribute from the host name --------------------------
out=$(run switch --flake "path:$flake" 2>"$work/err"); rc=$?
assert_eq "switch exits 0" 0 "$rc"
assert_match "stdout is only the store path" "$out" '^/nix/store/[a-z0-9]{32}-nixos-system-local1-[^ ]*$'
assert_contains "stderr says Done" "$(cat "$work/err")" "Done. The new configuration is"
assert_eq "profile points at generation 1" "system-1-link" "$(profile_target $P/system)"
assert_eq "generation 1 is the built system" "$out" "$(profile_target $P/system-1-link)"
assert_contains "stc switch called on it" "$(log)" "$out switch NIXOS_INSTALL_BOOTLOADER=0"
assert_contains "stc ran as root" "$(log | tail -n 1)" "uid=0"

# --- boot with --install-bootloader --------------------------------------------
out=$(run boot --flake "path:$flake#beta" --install-bootloader 2>/dev/null); rc=$?
assert_eq "boot exits 0" 0 "$rc"
assert_eq "boot adds generation 2" "system-2-link" "$(profile_target $P/system)"
assert_contains "stc boot with NIXOS_INSTALL_BOOTLOADER=1" "$(log | tail -n 1)" "$out boot NIXOS_INSTALL_BOOTLOADER=1"

# --- test: activates, no new generation ------------------------------------
n=$(gens)
out=$(LOCALE_ARCHIVE=/la run test --flake "path:$flake#alpha" 2>/dev/null); rc=$?
assert_eq "test exits 0" 0 "$rc"
assert_eq "test adds no generation" "$n" "$(gens)"
assert_contains "stc test, LOCALE_ARCHIVE preserved" "$(log | tail -n 1)" "$out test NIXOS_INSTALL_BOOTLOADER=0 LOCALE_ARCHIVE=/la"
check_fails "test leaves no ./result" test -e "$work/result"

# --- dry-activate ------------------------------------------------------------
n=$(gens)
out=$(run dry-activate --flake "path:$flake#alpha" 2>/dev/null); rc=$?
assert_eq "dry-activate exits 0" 0 "$rc"
assert_contains "stc dry-activate" "$(log | tail -n 1)" "$out dry-activate"
assert_eq "dry-activate adds no generation" "$n" "$(gens)"

# --- build: ./result, no activation -----------------------------------------
c=$(nlog)
out=$(run build --flake "path:$flake#alpha" 2>/dev/null); rc=$?
assert_eq "build exits 0" 0 "$rc"
assert_eq "build leaves ./result -> the system" "$out" "$(readlink "$work/result")"
assert_eq "build activates nothing" "$c" "$(nlog)"
rm -f "$work/result"

# --- dry-build ----------------------------------------------------------------
echo dry > "$flake/salt"
err=$(run dry-build --flake "path:$flake#alpha" 2>&1 >/dev/null); rc=$?
assert_eq "dry-build exits 0" 0 "$rc"
assert_contains "dry-build lists what would be built" "$err" "will be built"
assert_eq "dry-build activates nothing" "$c" "$(nlog)"
rm -f "$flake/salt"
run dry-run --flake "path:$flake#alpha" >/dev/null 2>&1
assert_eq "dry-run is dry-build" 0 "$?"

# --- build-vm, build-vm-with-bootloader, build-image ------------------------
out=$(run build-vm --flake "path:$flake#alpha" 2>"$work/err"); rc=$?
assert_eq "build-vm exits 0" 0 "$rc"
assert_match "build-vm prints the run script" "$out" '^/nix/store/.*/bin/run-.*-vm$'
assert_contains "build-vm message" "$(cat "$work/err")" "Done. The virtual machine can be started by running"
out=$(run build-vm-with-bootloader --flake "path:$flake#alpha" 2>/dev/null); rc=$?
assert_eq "build-vm-with-bootloader exits 0" 0 "$rc"
assert_match "build-vm-with-bootloader prints the run script" "$out" '^/nix/store/.*/bin/run-.*-vm$'
out=$(run build-image --flake "path:$flake#alpha" --image-variant qcow2 2>/dev/null); rc=$?
assert_eq "build-image exits 0" 0 "$rc"
check "build-image prints an existing image file" host_exec local1 test -f "$out"
err=$(run build-image --flake "path:$flake#alpha" --image-variant nope 2>&1); rc=$?
assert_eq "unknown image variant exits 1" 1 "$rc"
assert_contains "unknown variant lists the variants" "$err" "- qcow2"
# Classic mode (nix-instantiate lists the variants: it has no --apply).
out=$(run build-image -f "$flake/default.nix" -A alpha --image-variant qcow2 2>"$work/err"); rc=$?
assert_eq "classic build-image exits 0" 0 "$rc" "$(cat "$work/err")"
check "classic build-image prints an existing image file" host_exec local1 test -f "$out"
err=$(run build-image -f "$flake/default.nix" -A alpha --image-variant nope 2>&1); rc=$?
assert_eq "classic build-image, unknown variant: exit 1" 1 "$rc"
assert_contains "classic build-image, unknown variant: the variants listed" "$err" "- qcow2"
rm -f "$work/result"

# --- list-generations ---------------------------------------------------------
out=$(run list-generations 2>&1); rc=$?
assert_eq "list-generations exits 0" 0 "$rc"
assert_match "table header" "$(echo "$out" | head -n 1)" '^Generation +Build-date +NixOS version +Kernel +Configuration Revision +Specialisation +Current$'
assert_match "newest first, current marked" "$(echo "$out" | sed -n 2p)" '^2 .*26\.05\.test-beta +6\.1\.0-test .* True$'
json=$(run list-generations --json 2>/dev/null)
check "--json parses: 2 entries, ng key order, newest first" python3 -c '
import json,sys; d=json.loads(sys.argv[1]); assert len(d)==2, d
assert list(d[0].keys())==["generation","date","nixosVersion","kernelVersion","configurationRevision","specialisations","current"], d[0].keys()
assert d[0]["generation"]==2 and d[0]["current"] is True
assert d[1]["nixosVersion"]=="26.05.test-local1" and d[1]["current"] is False, d[1]
assert isinstance(d[1]["specialisations"], list)' "$json"

# --- rollback -------------------------------------------------------------------
run switch --flake "path:$flake#beta" >/dev/null 2>&1   # gen 3 = beta... (boot made gen 2 = beta)
cur=$(profile_target $P/system)
out=$(run switch --rollback 2>/dev/null); rc=$?
assert_eq "switch --rollback exits 0" 0 "$rc"
assert_ne "switch --rollback moves the profile back" "$cur" "$(profile_target $P/system)"
assert_contains "switch --rollback activates the profile path" "$(log | tail -n 1)" "argv0=$P/system/bin/switch-to-configuration"
out=$(run test --rollback 2>/dev/null); rc=$?
assert_eq "test --rollback exits 0" 0 "$rc"
assert_match "test --rollback activates a generation link" "$(log | tail -n 1)" " test .*argv0=$P/system-[0-9]+-link/bin/switch-to-configuration"
out=$(run build --rollback 2>/dev/null); rc=$?
assert_eq "build --rollback exits 0" 0 "$rc"
assert_match "build --rollback links ./result to a generation" "$(readlink "$work/result")" "^$P/system-[0-9]+-link$"
rm -f "$work/result"

# --- specialisation ----------------------------------------------------------
out=$(run switch --flake "path:$flake#alpha" -c extra 2>/dev/null); rc=$?
assert_eq "switch -c extra exits 0" 0 "$rc"
assert_contains "specialisation's stc called" "$(log | tail -n 1)" "argv0=$out/specialisation/extra/bin/switch-to-configuration"
assert_eq "profile is the base system" "$out" "$(profile_target "$P/$(profile_target $P/system)")"
n=$(gens); c=$(nlog)
err=$(run switch --flake "path:$flake#alpha" --specialisation nope 2>&1); rc=$?
assert_eq "missing specialisation exits 1" 1 "$rc"
assert_contains "missing specialisation message" "$err" "specialisation not found: nope"
assert_eq "missing specialisation: no new generation" "$n" "$(gens)"
assert_eq "missing specialisation: no activation" "$c" "$(nlog)"

# --- profile name -------------------------------------------------------------
out=$(run switch --flake "path:$flake#alpha" -p web 2>/dev/null); rc=$?
assert_eq "switch -p web exits 0" 0 "$rc"
assert_eq "system-profiles/web-1-link created" "$out" "$(profile_target $P/system-profiles/web-1-link)"
out=$(run list-generations -p web --json 2>/dev/null)
assert_contains "list-generations -p web" "$out" '"generation":	1'

# --- failing activation, missing nixos-version --------------------------------
out=$(run switch --flake "path:$flake#failing" 2>"$work/err"); rc=$?
assert_eq "failing activation exits with stc's status" 3 "$rc"
assert_contains "failing activation warns" "$(cat "$work/err")" "error(s) occurred while switching"
assert_eq "failing activation: nothing on stdout" "" "$out"
n=$(gens); cur=$(profile_target $P/system); c=$(nlog)
err=$(run switch --flake "path:$flake#nover" 2>&1); rc=$?
assert_eq "config without nixos-version exits 1" 1 "$rc"
assert_contains "missing essential files message" "$err" "missing essential files"
assert_eq "profile untouched" "$cur" "$(profile_target $P/system)"
assert_eq "no activation" "$c" "$(nlog)"

# --- store path -------------------------------------------------------------------
sp=$(host_build local1 "$(flake_toplevel_ref "$flake" beta)")
out=$(run switch --store-path "$sp" 2>/dev/null); rc=$?
assert_eq "switch --store-path exits 0" 0 "$rc"
assert_eq "store path activated" "$sp" "$out"
assert_contains "store path stc" "$(log | tail -n 1)" "$sp switch"

# --- classic mode ----------------------------------------------------------------
out=$(run build -f "$flake/default.nix" -A alpha 2>/dev/null); rc=$?
assert_eq "build -f -A exits 0" 0 "$rc"
assert_match "classic build result" "$(readlink "$work/result")" "nixos-system-alpha"
rm -f "$work/result"
mkdir -p "$flake/nixpkgs/nixos"
echo 'import ../../system.nix' > "$flake/nixpkgs/nixos/default.nix"
git -C "$flake/nixpkgs" init -q && git -C "$flake/nixpkgs" -c user.email=t@t -c user.name=t add -A && \
    git -C "$flake/nixpkgs" -c user.email=t@t -c user.name=t commit -qm x
out=$(run switch --no-flake -I "nixpkgs=$flake/nixpkgs" 2>/dev/null); rc=$?
assert_eq "classic switch via <nixpkgs/nixos> exits 0" 0 "$rc"
assert_contains "classic switch activates" "$(log | tail -n 1)" "$out switch"
assert_match "classic switch writes .version-suffix" "$(cat "$flake/nixpkgs/.version-suffix" 2>/dev/null)" '^\.git\.[0-9a-f]+'

# --- /etc/nixos/flake.nix auto-detection (private copy of /etc) -----------------
mkdir -p "$work/etc"
ln -s "$flake/flake.nix" "$work/flake-link.nix"
out=$(host_exec local1 unshare -m sh -c '
    cp -a /etc/. "$1/etc/" && mkdir -p "$1/etc/nixos" && ln -s "$2/flake.nix" "$1/etc/nixos/flake.nix" &&
    mount --bind "$1/etc" /etc && exec "$3" build' sh "$work" "$flake" "$CR" 2>"$work/err"); rc=$?
assert_eq "auto-detected flake build exits 0" 0 "$rc"
assert_match "auto-detected flake, attribute from host name" "$out" "nixos-system-local1"
rm -f "$work/result"

# --- build --diff: the built system against the running one ----------------------
err=$(run build --flake "path:$flake#alpha" --diff 2>&1 >/dev/null); rc=$?
assert_eq "build --diff exits 0" 0 "$rc"
assert_contains "build --diff shows the closure size" "$err" "Closure size:"
rm -f "$work/result"

# --- edit, repl ------------------------------------------------------------------
EDITOR=true NIXOS_CONFIG="$flake/system.nix" run edit --no-flake >/dev/null 2>&1
assert_eq "classic edit runs \$EDITOR" 0 "$?"
# The file as nixos-rebuild finds it: a directory means its default.nix;
# without NIXOS_CONFIG, <nixos-config> from the search path (-I here).
out=$(EDITOR=echo NIXOS_CONFIG="$flake" run edit --no-flake 2>/dev/null)
assert_eq "classic edit of a directory opens its default.nix" "$flake/default.nix" "$out"
out=$(host_exec local1 env -u NIXOS_CONFIG EDITOR=echo NIX_PATH= "$CR" edit --no-flake \
	-I "nixos-config=$flake/system.nix" 2>/dev/null)
assert_eq "classic edit finds <nixos-config> on the search path" "$flake/system.nix" "$out"
err=$(EDITOR=echo NIXOS_CONFIG="$work/no-such-config.nix" run edit --no-flake 2>&1 >/dev/null); rc=$?
assert_eq "classic edit of a missing file: exit 1" 1 "$rc"
assert_eq "classic edit of a missing file: one line" "error: cannot find NixOS config file '$work/no-such-config.nix'" "$err"
out=$(echo ':q' | run repl -f "$flake/default.nix" 2>&1); rc=$?
assert_eq "classic repl runs nix repl" 0 "$rc"

# --- usage errors: one line, exit 2, nothing done ---------------------------------
c=$(nlog); n=$(gens)
for args in "switch --frobnicate" "switch boot" "frob" "switch --flake . --file x" \
            "boot --specialisation extra" "switch --target-host -oProxyCommand=touch" \
            "switch -p ../evil" "switch --profile-name" "switch --rollback --store-path /nix/store/x"; do
    # shellcheck disable=SC2086
    err=$(run $args 2>&1 >/dev/null); rc=$?
    assert_eq "usage error '$args' exits 2" 2 "$rc"
    assert_eq "usage error '$args' prints one line" 1 "$(printf '%s\n' "$err" | grep -c .)"
done
err=$(run 2>&1); rc=$?
assert_eq "no action exits 2" 2 "$rc"
assert_eq "usage errors activated nothing" "$c" "$(nlog)"
assert_eq "usage errors made no generation" "$n" "$(gens)"
err=$(run switch --flake "path:$flake#doesnotexist" 2>&1); rc=$?
assert_eq "unknown configuration exits 1" 1 "$rc"
assert_contains "unknown configuration names the attribute" "$err" 'doesnotexist'

# --- deprecated flags warn ----------------------------------------------------------
err=$(run build --flake "path:$flake#alpha" --fast --no-build-nix 2>&1 >/dev/null); rc=$?
assert_eq "deprecated flags still work" 0 "$rc"
assert_contains "--fast warns" "$err" "warning: "
rm -f "$work/result"

# --- as nixos-rebuild ----------------------------------------------------------------
ln -sf "$CR" "$CR_TEST_ROOT/nixos-rebuild"
out=$(host_exec local1 "$CR_TEST_ROOT/nixos-rebuild" build --flake "path:$flake#alpha" 2>/dev/null); rc=$?
assert_eq "invoked as nixos-rebuild" 0 "$rc"
assert_match "invoked as nixos-rebuild builds" "$out" "nixos-system-alpha"
rm -f "$work/result"

# --- the machine's real profiles were never touched ---------------------------------
check_fails "real /nix/var/nix/profiles/system untouched" test -e /nix/var/nix/profiles/system

done_testing

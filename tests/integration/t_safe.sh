#!/bin/bash
# t_safe.sh: magic rollback against real hosts.  Configurations whose
# activation locks the deploy user out, leaves the system unhealthy, or takes
# long enough to cut the connection in the middle.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib/host.sh"
. "$here/lib/assert.sh"
trap cr_cleanup EXIT

deployer_up sfdeployer || { fail "deployer up"; exit 1; }
host_up target4 --ssh || { fail "target4 up"; exit 1; }
flake=$(flake_copy)
work=$CR_TEST_ROOT/work
mkdir -p "$work"; cd "$work" || exit 1
P=/nix/var/nix/profiles
T=target4
cr() { host_exec sfdeployer "$CREBUILD" "$@"; }
tprofile() { readlink "$(host_path $T "$1")"; }
last() { host_activations $T | tail -n "${1:-1}"; }
can_login() { host_exec sfdeployer ssh -o BatchMode=yes crdeploy@target4 true; }
deploy() { cr "$1" --flake "path:$flake#$2" --target-host crdeploy@target4 --sudo "${@:3}"; }

# generation 1: a normal system (nothing to roll back to yet)
out1=$(deploy switch alpha 2>/dev/null); rc=$?
assert_eq "first deploy exits 0" 0 "$rc"
assert_eq "profile at generation 1" system-1-link "$(tprofile $P/system)"

# --- confirmed deploy ---------------------------------------------------------
out=$(deploy switch beta --confirm-timeout 10 2>"$work/err"); rc=$?
assert_eq "confirmed deploy exits 0" 0 "$rc"
assert_eq "confirmed deploy keeps generation 2" system-2-link "$(tprofile $P/system)"
assert_contains "activated under the supervisor" "$(cat "$work/err")" "magic rollback"
check "supervisor state cleaned up" sh -c "[ -z \"\$(ls -A $(host_path $T /nix/var/crebuild) 2>/dev/null)\" ]"
# Round trips on the usual path: start (ending when activation has, with
# its status), then the fresh login's confirm (which also removes the
# state); no separate status or cleanup command.
out=$(deploy switch beta --confirm-timeout 10 -v 2>"$work/err"); rc=$?
assert_eq "confirmed deploy (-v) exits 0" 0 "$rc"
# (-v shows each command; the script's text ends in a newline, so its mode
# starts a line, after the closing quote.)
modes=$(grep -Eo "^' [a-z]+ '?/nix/var/crebuild/deploy-" "$work/err" | cut -d' ' -f2 | tr '\n' ' ')
assert_eq "supervisor commands: start, confirm" "start confirm " "$modes" "$(grep -E "^' [a-z]+ " "$work/err" | cut -c1-200)"
check "state removed by confirm" sh -c "[ -z \"\$(ls -A $(host_path $T /nix/var/crebuild) 2>/dev/null)\" ]"

# The confirmation logs in again with the same NIX_SSHOPTS: its warnings
# are printed once, not once per login.
out=$(host_exec sfdeployer env NIX_SSHOPTS="-o Tunnel=yes" "$CREBUILD" switch --flake "path:$flake#beta" \
	--target-host crdeploy@target4 --sudo --confirm-timeout 10 2>"$work/err"); rc=$?
assert_eq "confirmed deploy with an ignored ssh option exits 0" 0 "$rc"
assert_eq "the ssh option's warning is printed once" 1 "$(grep -c "ignoring ssh option 'Tunnel'" "$work/err")"

# --- locked out: rolled back, login works again ---------------------------------------
start=$(date +%s)
out=$(deploy switch lockout --confirm-timeout 4 2>"$work/err"); rc=$?
assert_eq "locked-out deploy exits 4 (rolled back)" 4 "$rc"
assert_contains "says it rolled back and why" "$(cat "$work/err")" "rolled back to the previous configuration"
assert_eq "profile restored to generation 2" system-2-link "$(tprofile $P/system)"
check "the locked-out generation stays as a link" test -L "$(host_path $T $P/system-3-link)"
assert_contains "lockout was activated" "$(last 2 | head -n 1)" "lockout switch"
assert_contains "then generation 2 re-activated" "$(last)" "argv0=$P/system/bin/switch-to-configuration"
check "deploy user can log in again" can_login
took=$(( $(date +%s) - start ))
check "rollback within bounded time (${took}s)" test "$took" -le 60

# --- locked out with test: the running system comes back -------------------------------
out=$(deploy test lockout --confirm-timeout 3 2>/dev/null); rc=$?
assert_eq "locked-out test exits 4" 4 "$rc"
assert_eq "test rollback does not touch the profile" system-2-link "$(tprofile $P/system)"
assert_contains "test rollback re-activates the profile's system" "$(last)" " test "
check "deploy user can log in again after test rollback" can_login

# --- connection killed during activation: activation finishes, confirmed -------------
n=$(host_activations $T | grep -c .)
( deploy switch slow --confirm-timeout 20 >"$work/slow.out" 2>"$work/slow.err"; echo $? > "$work/slow.rc" ) &
bg=$!
for i in $(seq 1 50); do host_activations $T | grep -q ' slow switch\|slow-.* switch\|test-slow switch' && break; sleep 0.2; done
sleep 1
# only the sessions of this target (same network namespace as its keeper)
pkill --ns "$(host_pid $T)" --nslist net -f 'sshd: crdeploy' ; sleep 0.2
wait $bg
assert_eq "deploy survives a cut connection (exit 0)" 0 "$(cat "$work/slow.rc")"
assert_contains "reconnected after the cut" "$(cat "$work/slow.err")" "reconnecting"
assert_match "slow system is current" "$(readlink "$(host_path $T "$P/$(tprofile $P/system)")")" "nixos-system-slow"
assert_eq "slow activation ran exactly once" 1 "$(host_activations $T | tail -n +$((n+1)) | grep -c 'slow')"

# --- opt-out keeps the new generation --------------------------------------------------
cur=$(tprofile $P/system)
out=$(deploy switch lockout --no-magic-rollback 2>/dev/null); rc=$?
assert_eq "--no-magic-rollback exits 0" 0 "$rc"
assert_ne "--no-magic-rollback keeps the new generation" "$cur" "$(tprofile $P/system)"
check_fails "and the deploy user is locked out, as asked" can_login
out=$(cr switch --flake "path:$flake#alpha" --target-host root@target4 2>/dev/null); rc=$?
assert_eq "root repairs it" 0 "$rc"
check "deploy user back" can_login

# --- interrupted during activation: no confirmation -> rollback ---------------------------
cur=$(tprofile $P/system)
( deploy switch slow --confirm-timeout 3 >/dev/null 2>"$work/int.err"; echo $? > "$work/int.rc" ) &
bg=$!
for i in $(seq 1 50); do [ "$(host_activations $T | tail -n 1 | grep -c slow)" = 1 ] && break; sleep 0.2; done
pkill -INT -f "crebuild switch --flake path:$flake#slow" 
wait $bg
assert_eq "SIGINT exits 130" 130 "$(cat "$work/int.rc")"
sleep 12
assert_eq "interrupted deploy rolled back by the target" "$cur" "$(tprofile $P/system)"

# --- health checks -----------------------------------------------------------------
ip=$(host_ip $T)
host_exec $T sh -c 'mkdir -p /nix/var/crebuild-test/www; echo ok > /nix/var/crebuild-test/www/health'
host_exec $T python3 -m http.server 8080 --bind "$ip" --directory /nix/var/crebuild-test/www >/dev/null 2>&1 &
for i in $(seq 1 50); do curl -sf "http://$ip:8080/health" >/dev/null 2>&1 && break; sleep 0.1; done
out=$(deploy switch alpha --health-check "http://$ip:8080/health" --health-check-cmd 'test "$(cat /nix/var/crebuild-test/healthy)" = 1' 2>"$work/err"); rc=$?
assert_eq "healthy deploy with URL and command checks exits 0" 0 "$rc"
cur=$(tprofile $P/system)
out=$(deploy switch unhealthy --health-check "http://$ip:8080/health" --health-timeout 3 2>"$work/err"); rc=$?
assert_eq "failed URL check: exit 4" 4 "$rc"
assert_contains "failed URL check named with its answer" "$(cat "$work/err")" "http://$ip:8080/health"
assert_contains "failed URL check: last answer" "$(cat "$work/err")" "404"
assert_eq "failed URL check: profile restored" "$cur" "$(tprofile $P/system)"
check "failed URL check: healthy again" test -e "$(host_path $T /nix/var/crebuild-test/www/health)"
out=$(deploy switch unhealthy --health-check-cmd 'test "$(cat /nix/var/crebuild-test/healthy)" = 1' --health-timeout 2 2>"$work/err"); rc=$?
assert_eq "failed command check: exit 4" 4 "$rc"
assert_contains "failed command check named" "$(cat "$work/err")" "healthy"
assert_eq "failed command check: profile restored" "$cur" "$(tprofile $P/system)"
assert_eq "failed command check: state healthy again" 1 "$(cat "$(host_path $T /nix/var/crebuild-test/healthy)")"

# --- --diff and --events -------------------------------------------------------------
out=$(deploy switch beta --diff --events "$work/events.json" 2>"$work/err"); rc=$?
assert_eq "--diff --events deploy exits 0" 0 "$rc"
assert_match "--diff shows an upgrade" "$(cat "$work/err")" 'hello +2\.12 → 2\.12\.1'
assert_match "--diff shows a removal" "$(cat "$work/err")" '\[R-\] tree'
assert_contains "--diff shows the closure size" "$(cat "$work/err")" "Closure size:"
check "--events is JSON lines with the phases and a result" python3 -c '
import json,sys
ev=[json.loads(l) for l in open(sys.argv[1])]
assert all(list(e)[:2]==["type","time"] for e in ev), ev[0]
phases={e["phase"] for e in ev if e["type"]=="phase-end"}
for p in ("build","copy","profile","activate","confirm"): assert p in phases, (p, phases)
assert any(e["type"]=="copy-stats" for e in ev)
assert any(e["type"]=="diff" for e in ev)
r=[e for e in ev if e["type"]=="result"]; assert len(r)==1 and r[0]["result"]=="success", r
' "$work/events.json"
out=$(deploy switch unhealthy --health-check-cmd false --health-timeout 1 --events - 2>/dev/null); rc=$?
assert_eq "rolled back with --events - exits 4" 4 "$rc"
check "--events - : stdout carries only events, result rolled-back" python3 -c '
import json,sys
ev=[json.loads(l) for l in sys.argv[1].splitlines()]
assert any(e["type"]=="rollback" for e in ev), ev
assert ev[-1]["type"]=="result" and ev[-1]["result"]=="rolled-back" and ev[-1]["exit_status"]==4, ev[-1]
' "$out"
out=$(deploy dry-activate beta 2>"$work/err"); rc=$?
assert_eq "dry-activate exits 0" 0 "$rc"
assert_contains "dry-activate shows the diff" "$(cat "$work/err")" "Closure size:"

# --- interrupts before activation leave the target unchanged -----------------------------
# (during the build of a package that takes 8 s; the other phases are in t_faults.sh)
cur=$(tprofile $P/system); n=$(host_activations $T | grep -c .)
echo int > "$flake/salt"
( deploy switch slowbuild >/dev/null 2>"$work/int2.err"; echo $? > "$work/int2.rc" ) &
bg=$!
sleep 2
pkill -INT -f "crebuild switch --flake path:$flake#slowbuild"
wait $bg
rm -f "$flake/salt"
assert_eq "SIGINT before activation exits 130" 130 "$(cat "$work/int2.rc")"
assert_eq "SIGINT before activation: profile unchanged" "$cur" "$(tprofile $P/system)"
assert_eq "SIGINT before activation: nothing activated" "$n" "$(host_activations $T | grep -c .)"
check_fails "no crebuild supervisor left running" host_exec $T pgrep -f 'crebuild-test.*run /nix/var/crebuild'

# --- a target with systemd ------------------------------------------------------------
# /run/systemd/system makes crebuild start the supervisor with systemd-run;
# lib/fake-systemd-run stands in for it and expands the command line as the
# service manager does ("$$" -> "$", "${x}" -> value), so a script passed
# there as an argument would arrive changed.
mkdir -p "$work/sdbin"; cp "$here/lib/fake-systemd-run" "$work/sdbin/systemd-run"
host_exec $T mkdir -p /run/systemd/system
host_exec $T mount --bind "$work/sdbin" /usr/local/bin
sdlog() { cat "$(host_path $T /nix/var/crebuild-test/systemd-run.log)" 2>/dev/null; }
out=$(deploy switch alpha --confirm-timeout 10 2>"$work/err"); rc=$?
assert_eq "systemd target: confirmed deploy exits 0" 0 "$rc" "$(tail -n 5 "$work/err")"
assert_match "systemd target: the supervisor ran through systemd-run" "$(sdlog | tail -n 1)" \
	'^crebuild-deploy-[0-9a-f]{16} \["/bin/sh", "/nix/var/crebuild/deploy-[0-9a-f]{16}/supervisor", "run", '
assert_contains "systemd target: alpha activated" "$(last)" "alpha switch"
cur=$(tprofile $P/system)
out=$(deploy switch lockout --confirm-timeout 4 2>"$work/err"); rc=$?
assert_eq "systemd target: locked-out deploy exits 4" 4 "$rc" "$(tail -n 5 "$work/err")"
assert_eq "systemd target: profile restored" "$cur" "$(tprofile $P/system)"
check "systemd target: deploy user can log in again" can_login
out=$(deploy switch beta --no-magic-rollback 2>"$work/err"); rc=$?
assert_eq "systemd target, no magic rollback: exit 0" 0 "$rc"
assert_match "systemd target, no magic rollback: switch-to-configuration through systemd-run" \
	"$(sdlog | tail -n 1)" '^nixos-rebuild-switch-to-configuration \["/nix/store/[^"]*beta[^"]*/bin/switch-to-configuration", "switch"\]$'

# --- rollback after `boot`: the running system comes back, the boot default stays ------
# beta runs; `boot lockout` makes lockout the default without running it;
# `switch lockout` then adds no generation (the profile already points to
# it) and locks the deploy user out.  The rollback must not re-activate
# lockout: lockout stays the boot default (as before) and beta runs again.
running=$(readlink "$(host_path $T /nix/var/crebuild-test/current-system)")
out=$(deploy boot lockout 2>"$work/err"); rc=$?
assert_eq "boot lockout exits 0" 0 "$rc"
bootgen=$(tprofile $P/system)
out=$(deploy switch lockout --confirm-timeout 4 2>"$work/err"); rc=$?
assert_eq "switch after boot, locked out: exit 4" 4 "$rc" "$(tail -n 5 "$work/err")"
assert_eq "switch after boot: the boot default is what boot made it" "$bootgen" "$(tprofile $P/system)"
assert_contains "switch after boot: lockout was activated" "$(last 3 | head -n 1)" "lockout switch"
assert_contains "switch after boot: lockout kept as the boot default" "$(last 2 | head -n 1)" "lockout boot"
assert_contains "switch after boot: the system that ran before runs again" "$(last)" "$running test"
assert_eq "switch after boot: /run/current-system is that system again" "$running" \
	"$(host_exec $T readlink /run/current-system)"
check "switch after boot: deploy user can log in again" can_login
host_exec $T umount /usr/local/bin
host_exec $T rm -rf /run/systemd

done_testing

#!/bin/bash
# t_remote.sh: remote deploys over crebuild's own libssh transport against
# real throwaway hosts (sshd, nix-daemon, sudo), compared with the end state
# nixos-rebuild leaves on the target.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib/host.sh"
. "$here/lib/assert.sh"
trap cr_cleanup EXIT

deployer_up deployer1 || { fail "deployer up"; exit 1; }
host_up target1 --ssh || { fail "target1 up"; exit 1; }
host_up builder1 --ssh || { fail "builder1 up"; exit 1; }
flake=$(flake_copy)
work=$CR_TEST_ROOT/work
mkdir -p "$work"
cd "$work" || exit 1
P=/nix/var/nix/profiles
T=target1
cr() { host_exec deployer1 "$CREBUILD" "$@"; }
log() { host_activations $T; }
nlog() { log | grep -c . ; }
tprofile() { readlink "$(host_path $T "$1")"; }
gens() { ls "$(host_path $T $P)" | grep -c '^system-[0-9]*-link$'; }
on_target() { host_exec $T "$@"; }

# --- switch as a sudo user, default attribute = the target's host name -------
out=$(cr switch --flake "path:$flake" --target-host crdeploy@target1 --sudo -v 2>"$work/err"); rc=$?
assert_eq "remote switch exits 0" 0 "$rc"
assert_contains "cold deploy: the system's files checked here (it was not on the target yet)" \
	"$(cat "$work/err")" "checked during the copy (the system's files here)"
assert_match "attribute from the target's host name" "$out" '^/nix/store/[a-z0-9]{32}-nixos-system-target1-'
assert_eq "target profile -> generation 1" "system-1-link" "$(tprofile $P/system)"
assert_eq "generation 1 = the system" "$out" "$(tprofile $P/system-1-link)"
assert_contains "stc switch on the target, as root" "$(log | tail -n 1)" "$out switch NIXOS_INSTALL_BOOTLOADER=0"
assert_contains "stc ran as root through sudo" "$(log | tail -n 1)" "uid=0"
check "system valid in the target's store" on_target nix-store --check-validity "$out"
check_fails "deployer's own profile untouched" host_exec deployer1 test -e $P/system
assert_contains "copy summary printed" "$(cat "$work/err")" "copied "

# --- nothing to copy on a second run ----------------------------------------
err=$(cr switch --flake "path:$flake" --target-host crdeploy@target1 --sudo -v 2>&1 >/dev/null); rc=$?
assert_eq "redeploy exits 0" 0 "$rc"
assert_contains "redeploy copies nothing" "$err" "copied 0 paths"
assert_contains "redeploy: the read-only checks ran with the copy" "$err" "checked during the copy"
assert_contains "redeploy: profile at its newest generation, already this system: nix-env --set not run" \
	"$err" "nix-env --set would change nothing"
assert_eq "redeploy: same system, still generation 1" "system-1-link" "$(tprofile $P/system)"
assert_contains "redeploy: stc switch" "$(log | tail -n 1)" "switch NIXOS_INSTALL_BOOTLOADER=0"
# crebuild does not wait for the serve process at the end; it ends by itself.
for _ in $(seq 30); do pgrep -f "nix-store --serve" > /dev/null || break; sleep 0.1; done
check_fails "no nix-store --serve left running after the deploy" pgrep -f "nix-store --serve"

# --- a system without nixos-version is refused, also when already there -----
for i in 1 2; do
	n=$(gens); c=$(nlog)
	err=$(cr switch --flake "path:$flake#nover" --target-host crdeploy@target1 --sudo 2>&1 >/dev/null); rc=$?
	assert_eq "no nixos-version (run $i): exit 1" 1 "$rc"
	assert_contains "no nixos-version (run $i): ng's message" "$err" "missing essential files"
	assert_eq "no nixos-version (run $i): target untouched" "$n/$c" "$(gens)/$(nlog)"
done

# --- boot, test, dry-activate, build, dry-build ---------------------------------
out=$(cr boot --flake "path:$flake#beta" --target-host crdeploy@target1 --sudo --install-bootloader 2>/dev/null); rc=$?
assert_eq "remote boot exits 0" 0 "$rc"
assert_eq "boot makes generation 2" "system-2-link" "$(tprofile $P/system)"
assert_contains "boot: NIXOS_INSTALL_BOOTLOADER=1" "$(log | tail -n 1)" "$out boot NIXOS_INSTALL_BOOTLOADER=1"
n=$(gens)
out=$(cr test --flake "path:$flake#alpha" --target-host crdeploy@target1 --sudo 2>/dev/null); rc=$?
assert_eq "remote test exits 0" 0 "$rc"
assert_contains "remote test activation" "$(log | tail -n 1)" "$out test"
assert_eq "remote test adds no generation" "$n" "$(gens)"
out=$(cr dry-activate --flake "path:$flake#beta" --target-host crdeploy@target1 --sudo 2>/dev/null); rc=$?
assert_eq "remote dry-activate exits 0" 0 "$rc"
assert_contains "remote dry-activate" "$(log | tail -n 1)" "$out dry-activate"
c=$(nlog)
echo b > "$flake/salt"
out=$(cr build --flake "path:$flake#alpha" --target-host crdeploy@target1 --sudo 2>/dev/null); rc=$?
assert_eq "remote build exits 0" 0 "$rc"
check "build copies the result to the target" on_target nix-store --check-validity "$out"
assert_eq "build activates nothing" "$c" "$(nlog)"
rm -f "$work/result"
echo c > "$flake/salt"
err=$(cr dry-build --flake "path:$flake#alpha" --target-host crdeploy@target1 2>&1); rc=$?
assert_eq "remote dry-build exits 0" 0 "$rc"
assert_not_contains "dry-build copies nothing" "$err" "copying"
rm -f "$flake/salt"

# --- list-generations on the target ------------------------------------------------
out=$(cr list-generations --json --target-host crdeploy@target1 2>/dev/null); rc=$?
assert_eq "remote list-generations exits 0" 0 "$rc"
check "target's generations listed" python3 -c '
import json,sys; d=json.loads(sys.argv[1]); assert [g["generation"] for g in d]==[2,1], d
assert d[0]["current"] and d[0]["nixosVersion"]=="26.05.test-beta"' "$out"

# --- rollback, specialisation, profile name ---------------------------------------
out=$(cr switch --rollback --target-host crdeploy@target1 --sudo 2>/dev/null); rc=$?
assert_eq "remote switch --rollback exits 0" 0 "$rc"
assert_eq "rollback: profile back to generation 1" "system-1-link" "$(tprofile $P/system)"
assert_contains "rollback activates the profile" "$(log | tail -n 1)" "argv0=$P/system/bin/switch-to-configuration"
out=$(cr test --rollback --target-host crdeploy@target1 --sudo 2>/dev/null); rc=$?
assert_eq "remote test --rollback exits 0" 0 "$rc"
assert_contains "test --rollback activates generation 2" "$(log | tail -n 1)" "argv0=$P/system-2-link/bin/switch-to-configuration"
# The current generation (1) is this system but not the newest (2): nix-env
# --set adds generation 3, so crebuild runs it, as nixos-rebuild does.
err=$(cr switch --flake "path:$flake" --target-host crdeploy@target1 --sudo -v 2>&1 >/dev/null); rc=$?
assert_eq "deploy of the rolled-back-to system exits 0" 0 "$rc"
assert_not_contains "after a rollback: nix-env --set runs" "$err" "would change nothing"
assert_eq "after a rollback: generation 3, as nix-env makes it" "system-3-link" "$(tprofile $P/system)"
assert_eq "generation 3 = generation 1's system" "$(tprofile $P/system-1-link)" "$(tprofile $P/system-3-link)"
# The newest generation (3) is this system but not the current one (2):
# nix-env --set switches the profile back to 3 without adding one.
cr switch --rollback --target-host crdeploy@target1 --sudo > /dev/null 2>&1
assert_eq "rolled back to generation 2" "system-2-link" "$(tprofile $P/system)"
err=$(cr switch --flake "path:$flake" --target-host crdeploy@target1 --sudo -v 2>&1 >/dev/null); rc=$?
assert_eq "deploy of the newest generation's system exits 0" 0 "$rc"
assert_not_contains "newest is this system but not current: nix-env --set runs" "$err" "would change nothing"
assert_eq "profile back at generation 3, no generation 4" "system-3-link/no" \
	"$(tprofile $P/system)/$(test -e "$(host_path $T $P/system-4-link)" && echo yes || echo no)"
out=$(cr switch --flake "path:$flake#alpha" -c extra -p web --target-host crdeploy@target1 --sudo 2>/dev/null); rc=$?
assert_eq "remote specialisation + profile exits 0" 0 "$rc"
assert_eq "profile web-1-link on the target" "$out" "$(tprofile $P/system-profiles/web-1-link)"
assert_contains "specialisation activated" "$(log | tail -n 1)" "argv0=$out/specialisation/extra/bin/switch-to-configuration"
n=$(gens); c=$(nlog)
err=$(cr switch --flake "path:$flake#alpha" -c missing --target-host crdeploy@target1 --sudo 2>&1); rc=$?
assert_eq "missing specialisation fails" 1 "$rc"
assert_eq "missing specialisation: target untouched" "$n/$c" "$(gens)/$(nlog)"

# --- failing activation ---------------------------------------------------------------
out=$(cr switch --flake "path:$flake#failing" --target-host crdeploy@target1 --sudo 2>/dev/null); rc=$?
assert_eq "remote failing activation exits with stc's status" 3 "$rc"

# --- root login: no sudo needed ----------------------------------------------------
c=$(nlog)
out=$(cr test --flake "path:$flake#alpha" --target-host root@target1 2>/dev/null); rc=$?
assert_eq "root login test exits 0" 0 "$rc"
assert_contains "root login activation as root" "$(log | tail -n 1)" "USER=root uid=0"
# Without a terminal (as here) and with the attribute given, the build and
# then the listing of its closure run while crebuild logs in.
err=$(cr test --flake "path:$flake#beta" --target-host root@target1 -v 2>&1 >/dev/null); rc=$?
assert_eq "test of beta as root exits 0" 0 "$rc" "$(tail -n 30 <<< "$err")"
assert_contains "no terminal: the closure is listed while logging in" "$err" "listed while logging in"
assert_eq "the closure is listed once" 1 "$(grep -c -- '--query --requisites' <<< "$err")"

# --- sudo with a password ---------------------------------------------------------------
printf 'bobpass\n' > "$work/pw"; chmod 600 "$work/pw"
out=$(cr test --flake "path:$flake#beta" --target-host crbob@target1 --sudo-password-file "$work/pw" 2>"$work/err"); rc=$?
assert_eq "sudo with password file exits 0" 0 "$rc"
assert_contains "password sudo activation" "$(log | tail -n 1)" "$out test"
out=$(cr test --flake "path:$flake#alpha" --target-host crbob@target1 --ask-sudo-password --sudo-password-fd 3 3<"$work/pw" 2>/dev/null); rc=$?
assert_eq "sudo with password fd exits 0" 0 "$rc"
printf 'wrong\n' > "$work/badpw"
n=$(gens); c=$(nlog)
echo w > "$flake/salt"
err=$(cr switch --flake "path:$flake#beta" --target-host crbob@target1 --sudo-password-file "$work/badpw" 2>&1); rc=$?
rm -f "$flake/salt"
assert_ne "wrong sudo password fails" 0 "$rc"
assert_contains "wrong sudo password message" "$err" "sudo password rejected"
assert_eq "wrong password: target untouched" "$n/$c" "$(gens)/$(nlog)"
check_fails "password not in the process list" grep -rqa bobpass /proc/[0-9]*/cmdline
# A password source that cannot be read is an error, not an empty password.
n=$(gens); c=$(nlog)
err=$(cr test --flake "path:$flake#beta" --target-host crbob@target1 --sudo-password-fd 9 2>&1); rc=$?
assert_eq "unopened --sudo-password-fd: exit 1" 1 "$rc"
assert_eq "unopened --sudo-password-fd: one line naming the descriptor" \
	"error: cannot read the password from file descriptor 9: Bad file descriptor" "$err"
err=$(cr test --flake "path:$flake#beta" --target-host crbob@target1 --sudo-password-file "$work" 2>&1); rc=$?
assert_eq "directory as --sudo-password-file: exit 1" 1 "$rc"
assert_eq "directory as --sudo-password-file: one line naming it" \
	"error: cannot read password file '$work': Is a directory" "$err"
assert_eq "unreadable password sources: target untouched" "$n/$c" "$(gens)/$(nlog)"
# No usable sudo on the target (here: not executable) is said as such, not
# as a rejected password.
: > "$work/nosudo"; chmod 644 "$work/nosudo"
on_target mount --bind "$work/nosudo" /usr/bin/sudo
err=$(cr test --flake "path:$flake#beta" --target-host crbob@target1 --sudo-password-file "$work/pw" 2>&1); rc=$?
on_target umount /usr/bin/sudo
assert_eq "sudo not executable on the target: exit 1" 1 "$rc"
assert_match "sudo not executable on the target: one error line saying so" "$(grep '^error' <<< "$err")" \
	'^error: cannot run sudo on crbob@target1: .*[Pp]ermission denied$'
assert_eq "sudo not executable: target untouched" "$n/$c" "$(gens)/$(nlog)"
err=$(cr test --flake "path:$flake#alpha" --target-host crbob@target1 --sudo 2>&1); rc=$?
assert_ne "sudo needing a password without one fails" 0 "$rc"
err=$(cr test --flake "path:$flake#alpha" --target-host crplain@target1 --sudo 2>&1); rc=$?
assert_ne "user without sudo rights fails" 0 "$rc"

# --- host keys, reachability, NIX_SSHOPTS -------------------------------------------------
mkdir -p "$work/ssh"
cp "$CR_TEST_ROOT/keys/id_ed25519" "$work/ssh/deploykey"; chmod 600 "$work/ssh/deploykey"
: > "$work/ssh/empty_known"
ip=$(host_ip target1)
echo "$ip ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMwrongwrongwrongwrongwrongwrongwrongwrongwr" > "$work/ssh/bad_known"
host_known_hosts_line target1 > "$work/ssh/good_known"
n=$(gens); c=$(nlog)
err=$(NIX_SSHOPTS="-o UserKnownHostsFile=$work/ssh/empty_known -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes" \
      cr switch --flake "path:$flake#beta" --target-host crdeploy@$ip --sudo 2>&1); rc=$?
assert_ne "unknown host key refused" 0 "$rc"
assert_contains "unknown host key message" "$err" "$ip"
err=$(NIX_SSHOPTS="-o UserKnownHostsFile=$work/ssh/empty_known -o GlobalKnownHostsFile=/dev/null" \
      cr switch --flake "path:$flake#beta" --target-host crdeploy@$ip --sudo 2>&1 </dev/null); rc=$?
assert_ne "unknown host key refused without a terminal (default ask)" 0 "$rc"
err=$(NIX_SSHOPTS="-o UserKnownHostsFile=$work/ssh/bad_known -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=no" \
      cr switch --flake "path:$flake#beta" --target-host crdeploy@$ip --sudo 2>&1); rc=$?
assert_ne "changed host key refused even with StrictHostKeyChecking=no" 0 "$rc"
assert_contains "changed host key names the fingerprint" "$err" "SHA256:"
assert_eq "host key failures: target untouched" "$n/$c" "$(gens)/$(nlog)"
start=$(date +%s)
err=$(NIX_SSHOPTS="-o ConnectTimeout=2" cr switch --flake "path:$flake#beta" --target-host crdeploy@10.77.250.2 --sudo 2>&1); rc=$?
took=$(( $(date +%s) - start ))
assert_ne "unreachable host fails" 0 "$rc"
check "unreachable host fails in bounded time (${took}s)" test "$took" -le 15
assert_eq "unreachable host: one error line" 1 "$(printf '%s\n' "$err" | grep -c '^error:')"
# A NIX_SSHOPTS that cannot be read ends before anything runs: no build
# started while connecting, one line.
echo badopt > "$flake/salt"
err=$(NIX_SSHOPTS="-o Port=22 -p" cr switch --flake "path:$flake#beta" --target-host crdeploy@target1 --sudo 2>&1); rc=$?
rm -f "$flake/salt"
assert_eq "NIX_SSHOPTS missing an argument: exit 1" 1 "$rc"
assert_eq "NIX_SSHOPTS missing an argument: only the error line" \
	"error: ssh option -p requires an argument" "$err"
assert_eq "NIX_SSHOPTS missing an argument: target untouched" "$n/$c" "$(gens)/$(nlog)"
host_delay_proxy target1 0 2299 >/dev/null
out=$(NIX_SSHOPTS="-p 2299 -i $work/ssh/deploykey -o UserKnownHostsFile=$CR_TEST_ROOT/known_hosts -o IdentitiesOnly=yes" \
      cr test --flake "path:$flake#alpha" --target-host crdeploy@127.0.0.1 --sudo 2>"$work/err"); rc=$?
assert_eq "NIX_SSHOPTS port + identity + known hosts" 0 "$rc"
host_delay_proxy_stop target1 2299

# --- build host + target host -----------------------------------------------------------
echo bt > "$flake/salt"
out=$(cr switch --flake "path:$flake#beta" --build-host root@builder1 --target-host crdeploy@target1 --sudo 2>"$work/err"); rc=$?
assert_eq "build host + target host exits 0" 0 "$rc"
check "built on the build host" host_exec builder1 nix-store --check-validity "$out"
check "copied to the target" on_target nix-store --check-validity "$out"
check_fails "not built on the deployer" host_exec deployer1 nix-store --check-validity "$out"
assert_contains "activated on the target" "$(log | tail -n 1)" "$out switch"
assert_contains "untrusted target user: relayed through crebuild" "$(cat "$work/err")" "relaying through this machine"
echo direct > "$flake/salt"
out=$(cr test --flake "path:$flake#beta" --build-host root@builder1 --target-host root@target1 2>"$work/err"); rc=$?
assert_eq "build host copies to the target directly: exits 0" 0 "$rc"
assert_contains "copied directly from the build host" "$(cat "$work/err")" "directly"
assert_not_contains "not relayed" "$(cat "$work/err")" "relaying"
check "direct copy: system valid on the target" on_target nix-store --check-validity "$out"
check_fails "direct copy: nothing passed through the deployer" host_exec deployer1 nix-store --check-validity "$out"
rm -f "$flake/salt"
check "build host temp dir removed" sh -c "! ls $(host_path builder1 /tmp 2>/dev/null)/nixos-rebuild.* >/dev/null 2>&1 || true"
echo bo > "$flake/salt"
out=$(cr build --flake "path:$flake#alpha" --build-host root@builder1 2>/dev/null); rc=$?
assert_eq "build host only (result comes back) exits 0" 0 "$rc"
check "result copied back to the deployer" host_exec deployer1 nix-store --check-validity "$out"
rm -f "$work/result" "$flake/salt"
out=$(cr test --flake "path:$flake#alpha" --build-host root@target1 --target-host root@target1 2>"$work/err"); rc=$?
assert_eq "build host = target host exits 0" 0 "$rc"
assert_contains "build host = target host: only the derivation is copied" "$(grep -c 'copying' "$work/err")" "1"

# --- no OpenSSH subprocess for crebuild's own work -----------------------------------------
if command -v strace >/dev/null; then
    host_exec deployer1 strace -f -qq -e trace=execve -o "$work/trace" "$CREBUILD" test --flake "path:$flake#alpha" \
        --target-host crdeploy@target1 --sudo >/dev/null 2>&1
    assert_not_contains "no ssh/scp/nix-copy-closure executed" "$(grep -Eo 'execve\("[^"]*"' "$work/trace" | sort -u)" "ssh"
else
    fail "strace not installed"
fi

done_testing

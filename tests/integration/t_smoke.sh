#!/bin/bash
# Smoke test of the integration-test infrastructure itself (no crebuild):
# a deployer builds the "alpha" test system, copies it with nix-copy-closure
# to an ssh host, where it is set as the system profile and activated through
# sudo -- the nixos-rebuild --target-host flow done by hand.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib/host.sh"
. "$here/lib/assert.sh"
trap cr_cleanup EXIT

cr_root_init

real_profiles_before=$(ls -la /nix/var/nix/profiles 2> /dev/null)

deployer_up deployer1 && ok "deployer1 is up" || { fail "deployer1 is up"; exit 1; }
host_up target1 --ssh && ok "target1 is up (ssh)" || { fail "target1 is up (ssh)"; exit 1; }
T=$(host_ip target1)

# --- the hosts are isolated ------------------------------------------------
assert_eq "deployer hostname" deployer1 "$(host_exec deployer1 hostname)"
assert_eq "target hostname over ssh" target1 "$(host_ssh target1 root hostname)"
assert_eq "target store starts empty" "" "$(host_ssh target1 root 'ls /nix/store | grep -v "^\.links$"')"
check "deployer nix-daemon answers" host_exec deployer1 nix store ping --store daemon

# --- build in the deployer ---------------------------------------------------
flake=$(flake_copy)
P=$(host_build deployer1 "$(flake_toplevel_ref "$flake" alpha)" 2> "$CR_TEST_ROOT/build.log")
assert_match "alpha builds in the deployer" "$P" '^/nix/store/[a-z0-9]{32}-nixos-system-alpha-26\.05\.test-alpha$' ||
	cat "$CR_TEST_ROOT/build.log" >&2
assert_file_exists "toplevel is in the deployer's own store" "$(host_path deployer1 "$P")"
assert_eq "toplevel is not in the real store" no "$([ -e "$P" ] && echo yes || echo no)"

# --- copy with real nix-copy-closure, from inside the deployer ---------------
out=$(host_exec deployer1 env NIX_SSHOPTS="$(cr_ssh_opts) -o StrictHostKeyChecking=yes" \
	nix-copy-closure --to "root@$T" "$P" 2>&1)
rc=$?
assert_eq "nix-copy-closure --to root@target1 succeeds" 0 "$rc" || printf '%s\n' "$out" >&2
assert_eq "closure arrived on target1" "$P" "$(host_ssh target1 root nix-store -q --outputs "$P" 2>&1)"
n_closure=$(host_ssh target1 root nix-store -qR "$P" | wc -l)
assert_eq "target1 has the whole closure (9 paths)" 9 "$n_closure"

# --- set profile and activate as crdeploy with sudo --------------------------
out=$(host_ssh target1 crdeploy sudo -n nix-env -p /nix/var/nix/profiles/system --set "$P" 2>&1)
assert_eq "sudo nix-env --set as crdeploy" 0 "$?" || printf '%s\n' "$out" >&2
out=$(host_ssh target1 crdeploy sudo -n env -i PATH=/usr/bin:/bin NIXOS_INSTALL_BOOTLOADER=0 \
	"$P/bin/switch-to-configuration" switch 2> "$CR_TEST_ROOT/stc.err")
assert_eq "switch-to-configuration switch exits 0" 0 "$?"
assert_contains "stc prints to stdout" "$out" "stc-stdout: switch $P"
assert_file_contains "stc prints to stderr" "$CR_TEST_ROOT/stc.err" "stc-stderr: switch $P"

log=$(host_path target1 /nix/var/crebuild-test/activations.log)
assert_file_contains "activation logged" "$log" \
	"$P switch NIXOS_INSTALL_BOOTLOADER=0 LOCALE_ARCHIVE=<unset> NIXOS_NO_CHECK=<unset> USER=root uid=0"
assert_eq "exactly one activation" 1 "$(wc -l < "$log")"
assert_eq "profile system-1-link in target1's own /nix" "$P" \
	"$(readlink "$(host_path target1 /nix/var/nix/profiles/system-1-link)")"
assert_eq "profile system -> system-1-link" system-1-link \
	"$(readlink "$(host_path target1 /nix/var/nix/profiles/system)")"
assert_eq "the deployer has no system profile" no \
	"$([ -e "$(host_path deployer1 /nix/var/nix/profiles/system)" ] && echo yes || echo no)"
assert_eq "real /nix/var/nix/profiles untouched" "$real_profiles_before" \
	"$(ls -la /nix/var/nix/profiles 2> /dev/null)"

# --- sudo rights of the test users --------------------------------------------
check "crdeploy: passwordless sudo" host_ssh target1 crdeploy sudo -n true
check_fails "crbob: sudo -n needs a password" host_ssh target1 crbob sudo -n true
out=$(echo bobpass | host_ssh target1 crbob "sudo -S -p '' id -u" 2>&1)
assert_eq "crbob: echo bobpass | sudo -S -p '' works" 0 "$out"
out=$(echo wrongpass | host_ssh target1 crbob "sudo -S -p '' id -u" 2>&1)
assert_ne "crbob: wrong password is refused" 0 "$out"
check_fails "crplain: sudo -n refused" host_ssh target1 crplain sudo -n true
out=$(echo x | host_ssh target1 crplain "sudo -S -p '' true" 2>&1) && rc=0 || rc=$?
assert_ne "crplain: sudo -S refused" 0 "$rc"
check "crplain: non-root nix via the daemon" host_ssh target1 crplain nix-store -q --hash "$P"

# --- teardown leaves nothing behind -------------------------------------------
tdir=$(host_dir target1)
daemons="$(cat "$(host_dir target1)/nix-daemon.pid") $(cat "$(host_dir deployer1)/nix-daemon.pid")"
sshd_pid=$(cat "$(host_dir target1)/sshd.pid")
tidx=$(cat "$(host_dir target1)/index")
host_down target1
host_down target1
hosts_down_all
hosts_down_all
assert_eq "host dirs removed" "" "$(ls "$CR_TEST_ROOT/hosts")"
assert_eq "netns removed" "" "$(ip netns list 2> /dev/null | grep '^cr-target1\b')"
assert_eq "no keeper/daemon/sshd left" "" \
	"$(pgrep -af 'crebuild-test-keeper|nix-daemon|sshd.*crebuild-it' | grep -F "$CR_TEST_ROOT" ; pgrep -af 'crebuild-test-keeper:(deployer1|target1)')"
assert_eq "no mounts left" "" "$(grep -F "$tdir" /proc/self/mountinfo)"
left=
for p in $daemons $sshd_pid; do
	[ -d "/proc/$p" ] && ! grep -q '^State:.*Z' "/proc/$p/status" 2> /dev/null && left+=" $p"
done
assert_eq "nix-daemons and sshd reaped" "" "$left"
check_fails "veth crh$tidx removed" ip link show "crh$tidx"

done_testing

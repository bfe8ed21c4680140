#!/bin/bash
# t_jump.sh: ProxyJump without any OpenSSH process, and the ssh_config
# keywords crebuild reads itself (StrictHostKeyChecking, ProxyJump), against
# real hosts: a jump host pj-j and a target pj-t whose sshd lets crdeploy in
# only from pj-j's address, deployed to from the deployer pj-d.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib/host.sh"
. "$here/lib/assert.sh"
trap cr_cleanup EXIT

deployer_up pj-d || { fail "deployer up"; exit 1; }
host_up pj-j --ssh || { fail "jump host up"; exit 1; }
host_up pj-t --ssh || { fail "target up"; exit 1; }
flake=$(flake_copy)
work=$CR_TEST_ROOT/work
mkdir -p "$work"
cd "$work" || exit 1
JIP=$(host_ip pj-j)
TIP=$(host_ip pj-t)
KH=$CR_TEST_ROOT/known_hosts
P=/nix/var/nix/profiles

# pj-t: crdeploy only from pj-j (sshd re-reads its config on SIGHUP).
tdir=$(host_dir pj-t)
sed -i "s/^AllowUsers .*/AllowUsers crdeploy@$JIP/" "$tdir/ssh/sshd_config"
kill -HUP "$(cat "$tdir/sshd.pid")"
for _ in $(seq 100); do
	sleep 0.05
	grep -q "Server listening on $TIP port 22" <(tail -n 2 "$tdir/log/sshd.log") && break
done
sleep 0.2

# cr ACTION [args]: crebuild in the deployer with $OPTS as NIX_SSHOPTS;
# sets $out, $err, $rc.
OPTS=
cr() {
	out=$(host_exec pj-d env NIX_SSHOPTS="$OPTS" timeout 120 "$CREBUILD" "$@" 2> "$work/err")
	rc=$?
	err=$(cat "$work/err")
}
tlog() { host_activations pj-t; }
tstate() { echo "$(ls "$(host_path pj-t $P)" | grep -c '^system-[0-9]*-link$')/$(tlog | grep -c .)"; }
errors() { grep -c '^error:' <<< "$err"; }

# --- the target refuses the deployer --------------------------------------------
check_fails "pj-t refuses crdeploy from the deployer (OpenSSH)" \
	host_exec pj-d ssh -o BatchMode=yes -o ConnectTimeout=5 "crdeploy@$TIP" true
OPTS=
cr switch --flake "path:$flake#alpha" --target-host "crdeploy@$TIP" --sudo
assert_ne "direct deploy to pj-t fails" 0 "$rc"
assert_contains "direct deploy: login refused" "$err" "permission denied (publickey) for user 'crdeploy'"
assert_eq "direct deploy: target untouched" "0/0" "$(tstate)"

# --- -J ----------------------------------------------------------------------------
OPTS="-J crdeploy@$JIP"
cr switch --flake "path:$flake#alpha" --target-host "crdeploy@$TIP" --sudo
assert_eq "-J: switch exits 0" 0 "$rc" || cr__diag "$err"
assert_eq "-J: profile -> generation 1" system-1-link "$(readlink "$(host_path pj-t $P/system)")"
assert_eq "-J: generation 1 = the system" "$out" "$(readlink "$(host_path pj-t $P/system-1-link)")"
assert_contains "-J: switch activated as root" "$(tlog | tail -n 1)" "${out:-<no output>} switch NIXOS_INSTALL_BOOTLOADER=0"
assert_contains "-J: stc ran as root" "$(tlog | tail -n 1)" "uid=0"
assert_contains "-J: pj-t saw the login from pj-j" "$(cat "$tdir/log/sshd.log")" "Accepted publickey for crdeploy from $JIP"

# --- -o ProxyJump=, host names, a chain of two hops ------------------------------
OPTS="-o ProxyJump=crdeploy@pj-j"
cr test --flake "path:$flake#beta" --target-host crdeploy@pj-t --sudo
assert_eq "-o ProxyJump= (names): test exits 0" 0 "$rc" || cr__diag "$err"
assert_contains "-o ProxyJump=: beta activated" "$(tlog | tail -n 1)" "${out:-<no output>} test"

OPTS="-J crdeploy@$JIP,crdeploy@[$JIP]:22"
cr test --flake "path:$flake#alpha" --target-host "crdeploy@$TIP" --sudo
assert_eq "two hops (pj-j, then pj-j again): test exits 0" 0 "$rc" || cr__diag "$err"
assert_contains "two hops: alpha activated" "$(tlog | tail -n 1)" "${out:-<no output>} test"

# --- ProxyJump in an -F config file; ProxyJump none --------------------------------
cat > "$work/jump.conf" << EOF
# crebuild t_jump
Host pjt
	HostName $TIP
	User crdeploy
	ProxyJump crdeploy@$JIP
EOF
OPTS="-F $work/jump.conf"
cr boot --flake "path:$flake#beta" --target-host pjt --sudo
assert_eq "ProxyJump from -F config: boot exits 0" 0 "$rc" || cr__diag "$err"
assert_eq "config ProxyJump: generation 2" system-2-link "$(readlink "$(host_path pj-t $P/system)")"
assert_contains "config ProxyJump: boot activated" "$(tlog | tail -n 1)" "${out:-<no output>} boot"
s=$(tstate)
OPTS="-F $work/jump.conf -o ProxyJump=none"
cr test --flake "path:$flake#alpha" --target-host pjt --sudo
assert_ne "ProxyJump=none on the command line disables the config's jump" 0 "$rc"
assert_contains "ProxyJump=none: direct login refused" "$err" "permission denied"
assert_eq "ProxyJump=none: target untouched" "$s" "$(tstate)"

# A ProxyJump loop in the config ends before any connection.
cat > "$work/loop.conf" << EOF
Host pjt
	ProxyJump loopa
Host loopa
	ProxyJump loopb
Host loopb
	ProxyJump loopa
EOF
OPTS="-F $work/loop.conf"
cr test --flake "path:$flake#alpha" --target-host crdeploy@pjt --sudo
assert_ne "ProxyJump loop in the config: fails" 0 "$rc"
assert_contains "ProxyJump loop: says so" "$err" "more than 8 jump hosts (a ProxyJump loop in ssh_config?)"
assert_eq "ProxyJump loop: one error line" 1 "$(errors)" || cr__diag "$err"

# --- no OpenSSH process ----------------------------------------------------------
OPTS="-J crdeploy@$JIP"
# (LeakSanitizer cannot run under ptrace: off for this run of an ASan build.)
host_exec pj-d env NIX_SSHOPTS="$OPTS" ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
	strace -f -qq -e trace=execve -o "$work/trace" \
	"$CREBUILD" test --flake "path:$flake#alpha" --target-host "crdeploy@$TIP" --sudo > /dev/null 2> "$work/err"
assert_eq "under strace: test through the jump host exits 0" 0 "$?" || cr__diag "$(cat "$work/err")"
execs=$(grep -Eo 'execve\("[^"]*"' "$work/trace" | sort -u)
assert_not_contains "no ssh executed (ProxyJump is native)" "$execs" "ssh"

# --- failures at the jump host: one line, naming the hop; target untouched ----------
grep -v 'crebuild-test:pj-j$' "$KH" > "$work/kh_noj"
s=$(tstate)
echo j1 > "$flake/salt"
OPTS="-J crdeploy@$JIP -o UserKnownHostsFile=$work/kh_noj -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes"
cr switch --flake "path:$flake#alpha" --target-host "crdeploy@$TIP" --sudo
assert_ne "unknown jump host key: refused" 0 "$rc"
assert_eq "unknown jump host key: one error line" 1 "$(errors)" || cr__diag "$err"
assert_match "unknown jump host key: names the hop and the target" "$err" \
	"host key for 'crdeploy@$JIP' is not known .* \(jump host for 'crdeploy@$TIP'\)"
assert_eq "unknown jump host key: target untouched" "$s" "$(tstate)"
check_fails "unknown jump host key: not added" grep -q "$JIP" "$work/kh_noj"

OPTS="-J crdeploy@$JIP -p 2299"
cr switch --flake "path:$flake#alpha" --target-host "crdeploy@$TIP" --sudo
assert_ne "jump host cannot reach the target: fails" 0 "$rc"
assert_eq "cannot reach: one error line" 1 "$(errors)" || cr__diag "$err"
assert_contains "cannot reach: channel open failed, naming hop and target" "$err" \
	"jump host 'crdeploy@$JIP' cannot reach $TIP port 2299 for 'crdeploy@$TIP': channel open failed"
assert_eq "cannot reach: target untouched" "$s" "$(tstate)"

OPTS="-J crplain@$JIP"
host_ssh_deauthorize pj-j crplain
cr switch --flake "path:$flake#alpha" --target-host "crdeploy@$TIP" --sudo
assert_ne "login refused at the jump host: fails" 0 "$rc"
assert_eq "jump host login refused: one error line" 1 "$(errors)" || cr__diag "$err"
assert_contains "jump host login refused: names the hop" "$err" \
	"crplain@$JIP: permission denied (publickey) for user 'crplain' (jump host for 'crdeploy@$TIP')"
assert_eq "jump host login refused: target untouched" "$s" "$(tstate)"
rm -f "$flake/salt"

# --- StrictHostKeyChecking from an -F config file ---------------------------------
# (pj-j as the target: the deployer may log in there directly.)
jlog() { host_activations pj-j | grep -c .; }
shk_conf() {
	cat > "$work/shk.conf" <<- EOF
		Host pj-j $JIP
		    UserKnownHostsFile $work/kh_shk
		    StrictHostKeyChecking $1
	EOF
}
: > "$work/kh_shk"
shk_conf accept-new
OPTS="-F $work/shk.conf"
cr test --flake "path:$flake#alpha" --target-host "crdeploy@$JIP" --sudo
assert_eq "config StrictHostKeyChecking accept-new: unknown key accepted" 0 "$rc" || cr__diag "$err"
assert_contains "accept-new: permanently added" "$err" "permanently added 'crdeploy@$JIP'"
assert_eq "accept-new: key written" "$JIP $(cut -d' ' -f1,2 "$(host_dir pj-j)/ssh/ssh_host_ed25519_key.pub")" \
	"$(cut -d' ' -f1-3 "$work/kh_shk")"
assert_eq "accept-new: activated on pj-j" 1 "$(jlog)"

: > "$work/kh_shk"
shk_conf yes
cr test --flake "path:$flake#alpha" --target-host "crdeploy@$JIP" --sudo
assert_ne "config StrictHostKeyChecking yes: unknown key refused" 0 "$rc"
assert_contains "yes: message" "$err" "StrictHostKeyChecking=yes: refusing to connect"
assert_eq "yes: nothing activated" 1 "$(jlog)"
assert_eq "yes: key not written" 0 "$(wc -l < "$work/kh_shk")"

OPTS="-F $work/shk.conf -o StrictHostKeyChecking=accept-new"
cr test --flake "path:$flake#alpha" --target-host "crdeploy@$JIP" --sudo
assert_eq "NIX_SSHOPTS accept-new overrides the config's yes" 0 "$rc" || cr__diag "$err"
assert_eq "override: activated" 2 "$(jlog)"

: > "$work/kh_shk"
shk_conf accept-new
OPTS="-F $work/shk.conf -o StrictHostKeyChecking=yes"
cr test --flake "path:$flake#alpha" --target-host "crdeploy@$JIP" --sudo
assert_ne "NIX_SSHOPTS yes overrides the config's accept-new" 0 "$rc"
assert_eq "override yes: nothing activated" 2 "$(jlog)"

# Both hops' keys through the config: the jump host and the target are
# unknown, accept-new adds both.
cat > "$work/both.conf" << EOF
Host *
	UserKnownHostsFile $work/kh_both
	StrictHostKeyChecking accept-new
Match host $TIP
	ProxyJump crdeploy@$JIP
EOF
: > "$work/kh_both"
OPTS="-F $work/both.conf"
s=$(tstate)
cr test --flake "path:$flake#beta" --target-host "crdeploy@$TIP" --sudo
assert_eq "accept-new for hop and target (Match host ProxyJump): exits 0" 0 "$rc" || cr__diag "$err"
assert_eq "both keys added" "$JIP $TIP" "$(cut -d' ' -f1 "$work/kh_both" | tr '\n' ' ' | sed 's/ $//')"
assert_contains "target activated through the hop" "$(tlog | tail -n 1)" "${out:-<no output>} test"

# --- the jump sessions end with crebuild --------------------------------------------
# (the last run went through pj-j: no sshd session process of crdeploy may
# stay in pj-j's network namespace.)
for _ in $(seq 50); do
	left=$(for p in $(ip netns pids cr-pj-j); do
		tr '\0' ' ' < "/proc/$p/cmdline" 2> /dev/null
		echo
	done | grep -c '^sshd: crdeploy')
	[ "$left" = 0 ] && break
	sleep 0.1
done
assert_eq "no crdeploy session left on pj-j after crebuild exits" 0 "$left"

done_testing

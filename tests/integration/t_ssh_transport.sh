#!/bin/bash
# The libssh transport (src/ssh.c, src/host_remote.c) against a real sshd in
# a throwaway host, through the test driver tests/tools/sshrun.c: host keys
# (known, unknown, accept-new, changed, hashed, global), login (key, agent,
# wrong user/key, encrypted key on a pty), exit statuses, stderr, argv and
# environment quoting, two channels on one session, a 100 MiB stream,
# sudo with and without a password, timeouts and dead links, interrupts.
#
# sshrun exits with the remote status, or 100 - CR_E*: 104 ssh, 107 host
# key, 108 auth, 109 interrupted.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
. "$here/lib/host.sh"
. "$here/lib/assert.sh"
trap cr_cleanup EXIT

cr_root_init
W=$CR_TEST_ROOT/ssh-transport
mkdir -p "$W/home"
chmod 0700 "$W/home"

# --- the driver (built from the sources: independent of the Makefile;
# CR_SSHRUN_CFLAGS adds flags, e.g. -fsanitize=address,undefined) ------------
R=$W/sshrun
# shellcheck disable=SC2086
if ! "$repo/tests/tools/build-sshrun.sh" "$R" ${CR_SSHRUN_CFLAGS:-} 2> "$W/cc.log"; then
	fail "build tests/tools/sshrun" "$(cat "$W/cc.log")"
	done_testing
	exit 1
fi
ok "build tests/tools/sshrun"

host_up sshbox --ssh && ok "sshbox is up" || { fail "sshbox is up"; exit 1; }
IP=$(host_ip sshbox)
KEY=$CR_TEST_ROOT/keys/id_ed25519
KH=$CR_TEST_ROOT/known_hosts
BASE="-F none -i $KEY -o IdentitiesOnly=yes -o UserKnownHostsFile=$KH -o StrictHostKeyChecking=yes"
export HOME=$W/home # (libssh, like ssh, reads ~/.ssh from the passwd entry)
unset SSH_AUTH_SOCK

# run [NIX_SSHOPTS] -- sshrun args...: sets $out (stdout), $err, $rc.
run() {
	local opts=$1
	shift
	[ "${1:-}" = -- ] && shift
	out=$(NIX_SSHOPTS=$opts "$R" "$@" 2> "$W/err" < /dev/null)
	rc=$?
	err=$(cat "$W/err")
}

# --- basics -------------------------------------------------------------------
run "$BASE" -- "root@$IP" echo hello
assert_eq "known host: command runs" hello "$out"
assert_eq "known host: exit 0" 0 "$rc"
assert_contains "root login detected" "$err" "is_root=1"
run "$BASE" -- "crdeploy@$IP" id -un
assert_eq "login as crdeploy" crdeploy "$out"
assert_contains "crdeploy is not root" "$err" "is_root=0"

run "$BASE" -- "root@$IP" sh -c 'exit 7'
assert_eq "exit status 7" 7 "$rc"
run "$BASE" -- "root@$IP" sh -c 'kill -TERM $$'
assert_eq "killed by SIGTERM: 128+15" 143 "$rc"

run "$BASE" -- "root@$IP" sh -c 'echo to-out; echo to-err >&2; printf no-newline >&2'
assert_eq "stdout forwarded" to-out "$out"
assert_contains "stderr forwarded live" "$err" "to-err"
assert_contains "unterminated stderr line flushed" "$err" "no-newline"
run "$BASE" -- -o -C "root@$IP" sh -c 'echo O; echo E >&2'
assert_contains "stdout captured" "$out" "out=<O"
assert_contains "stderr captured" "$out" "err=<E"
assert_eq "captured stderr not forwarded" "" "$(grep -x E <<< "$err")"

long=$(head -c 70000 /dev/zero | tr '\0' x)
run "$BASE" -- "root@$IP" sh -c "printf '%s\n' $long >&2; echo after >&2"
first=$(printf '%s\n' "$err" | grep -m1 '^xxx')
assert_eq "stderr line longer than 64 KiB cut" 65536 "${#first}"
assert_contains "line after the long one kept" "$err" "after"

# --- quoting: argv and environment arrive intact ---------------------------
run "$BASE" -- "root@$IP" printf '<%s>\n' 'a b' '$(id)' "it's" '' '`id`' 'x;y' '*' $'new\nline' 'back\slash'
want=$(printf '<%s>\n' 'a b' '$(id)' "it's" '' '`id`' 'x;y' '*' $'new\nline' 'back\slash')
assert_eq "hostile argv round trip over ssh" "$want" "$out"
run "$BASE" -- -E "FOO=x'y \$(z) \"q\"" -E HOME -E EMPTY= "root@$IP" \
	sh -c 'echo "FOO=$FOO HOME=${HOME-unset} EMPTY=${EMPTY-unset}. SSH=${SSH_CONNECTION-unset} USER=${USER-unset}"'
assert_eq "clean environment, requested vars only" \
	"FOO=x'y \$(z) \"q\" HOME=/root EMPTY=. SSH=unset USER=unset" "$out"
run "$BASE" -- -E 'BAD-NAME=1' "root@$IP" true
assert_eq "invalid env name refused" 101 "$rc"

# --- host keys ----------------------------------------------------------------
K="-F none -i $KEY -o IdentitiesOnly=yes"
: > "$W/kh_empty"
run "$K -o UserKnownHostsFile=$W/kh_empty -o StrictHostKeyChecking=yes" -- "root@$IP" true
assert_eq "unknown key refused (StrictHostKeyChecking=yes)" 107 "$rc"
assert_match "message names host, key type and fingerprint" "$err" "'root@$IP' is not known \\(ssh-ed25519 SHA256:[A-Za-z0-9+/]{43}\\)"
out=$(NIX_SSHOPTS="$K -o UserKnownHostsFile=$W/kh_empty" setsid -w "$R" "root@$IP" true 2>&1 < /dev/null)
rc=$?
assert_eq "unknown key refused without a terminal (default ask)" 107 "$rc"
assert_contains "hint names accept-new" "$out" "no terminal to confirm it"
out=$(NIX_SSHOPTS="$K -o UserKnownHostsFile=$W/kh_empty" "$R" -b "root@$IP" true 2>&1 < /dev/null)
assert_eq "unknown key refused in batch mode" 107 "$?"
assert_eq "refused key not added" 0 "$(wc -l < "$W/kh_empty")"

: > "$W/kh_new"
run "$K -o UserKnownHostsFile=$W/kh_new -o StrictHostKeyChecking=accept-new" -- "root@$IP" true
assert_eq "accept-new: unknown key accepted" 0 "$rc"
assert_contains "accept-new: warns" "$err" "permanently added"
assert_eq "accept-new: key written" "$IP $(cut -d' ' -f1,2 "$(host_dir sshbox)/ssh/ssh_host_ed25519_key.pub")" \
	"$(cut -d' ' -f1-3 "$W/kh_new")"
run "$K -o UserKnownHostsFile=$W/kh_new -o StrictHostKeyChecking=yes" -- "root@$IP" true
assert_eq "accepted key is known afterwards" 0 "$rc"

ssh-keygen -q -t ed25519 -N '' -f "$W/otherkey" -C other
echo "$IP $(cut -d' ' -f1,2 "$W/otherkey.pub")" > "$W/kh_changed"
cp "$W/kh_changed" "$W/kh_changed.orig"
for mode in no accept-new yes ask; do
	run "$K -o UserKnownHostsFile=$W/kh_changed -o StrictHostKeyChecking=$mode" -- "root@$IP" true
	assert_eq "changed key refused (StrictHostKeyChecking=$mode)" 107 "$rc"
done
assert_match "changed key: host, type, fingerprint" "$err" "'root@$IP' has CHANGED \\(now ssh-ed25519 SHA256:"
check "changed key: known_hosts untouched" cmp -s "$W/kh_changed" "$W/kh_changed.orig"

cp "$KH" "$W/kh_hashed"
ssh-keygen -q -H -f "$W/kh_hashed" > /dev/null 2>&1
assert_match "hashed known_hosts file" "$(head -c 3 "$W/kh_hashed")" '^\|1\|'
run "$K -o UserKnownHostsFile=$W/kh_hashed -o StrictHostKeyChecking=yes" -- "root@$IP" true
assert_eq "hashed known_hosts entry accepted" 0 "$rc"
run "$K -o UserKnownHostsFile=/dev/null -o GlobalKnownHostsFile=$KH -o StrictHostKeyChecking=yes" -- "root@$IP" true
assert_eq "GlobalKnownHostsFile used" 0 "$rc"
run "$K -o UserKnownHostsFile=/dev/null -o StrictHostKeyChecking=no" -- "root@$IP" true
assert_eq "UserKnownHostsFile=/dev/null + StrictHostKeyChecking=no (NixOS test)" 0 "$rc"

# --- login --------------------------------------------------------------------
run "$BASE" -- "nosuch@$IP" true
assert_eq "unknown user: auth failure" 108 "$rc"
assert_contains "auth failure names user" "$err" "permission denied (publickey) for user 'nosuch'"
run "-F none -i $W/otherkey -o IdentitiesOnly=yes -o UserKnownHostsFile=$KH" -- "root@$IP" true
assert_eq "wrong key: auth failure" 108 "$rc"
run "-F none -o UserKnownHostsFile=$KH" -- "root@$IP" true
assert_eq "no key at all: auth failure" 108 "$rc"

# Without an agent the first identity file is offered signed at once (no
# "would you take this key" query first: sshd logs such a query as
# "Postponed publickey").
SSHD_LOG=$CR_TEST_ROOT/hosts/sshbox/log/sshd.log
lines=$(wc -l < "$SSHD_LOG")
run "$BASE" -- "root@$IP" true
assert_eq "key offered signed at once: login" 0 "$rc"
assert_not_contains "key offered signed at once: no query first" \
	"$(tail -n +"$((lines + 1))" "$SSHD_LOG")" "Postponed publickey"
assert_contains "key offered signed at once: accepted" \
	"$(tail -n +"$((lines + 1))" "$SSHD_LOG")" "Accepted publickey for root"
run "-F none -i $W/otherkey -i $KEY -o IdentitiesOnly=yes -o UserKnownHostsFile=$KH" -- "root@$IP" echo second-key
assert_eq "first key refused when offered at once: the next one logs in" second-key "$out"
lines=$(wc -l < "$SSHD_LOG")
run "$BASE -o PubkeyAuthentication=no" -- "root@$IP" true
assert_eq "PubkeyAuthentication=no: no login" 108 "$rc"
assert_not_contains "PubkeyAuthentication=no: no key offered" \
	"$(tail -n +"$((lines + 1))" "$SSHD_LOG")" "publickey for root"

# TCP_NODELAY from the first byte (the key exchange and login send small
# packets back to back), on libssh's socket and on our own (-4).
for fam in libssh -4; do
	o=$BASE
	[ "$fam" = -4 ] && o="$BASE -4"
	strace -f -qq -e trace=setsockopt,sendto,write -o "$W/nodelay.trace" \
		env NIX_SSHOPTS="$o" "$R" "root@$IP" true > /dev/null 2>&1 < /dev/null
	nd=$(grep -n TCP_NODELAY "$W/nodelay.trace" | head -n 1 | cut -d: -f1)
	banner=$(grep -n '"SSH-2.0-' "$W/nodelay.trace" | head -n 1 | cut -d: -f1)
	if [ -n "$nd" ] && [ -n "$banner" ] && [ "$nd" -lt "$banner" ]; then
		ok "TCP_NODELAY set before our banner ($fam socket)"
	else
		fail "TCP_NODELAY set before our banner ($fam socket)" "$(head -20 "$W/nodelay.trace")"
	fi
done

rm -f "$W/agent.sock"
eval "$(ssh-agent -a "$W/agent.sock")" > /dev/null
ssh-add -q "$KEY" 2> /dev/null
out=$(NIX_SSHOPTS="-F none -o UserKnownHostsFile=$KH" "$R" "root@$IP" echo via-agent 2> /dev/null)
assert_eq "ssh-agent login" via-agent "$out"
NIX_SSHOPTS="-F none -o UserKnownHostsFile=$KH -o IdentityAgent=none" "$R" "root@$IP" true > /dev/null 2>&1
assert_eq "IdentityAgent=none keeps the agent out" 108 "$?"
kill "$SSH_AGENT_PID"
unset SSH_AUTH_SOCK SSH_AGENT_PID

install -m 0600 "$KEY" "$W/enckey"
ssh-keygen -q -p -P '' -N 'sekrit' -f "$W/enckey" > /dev/null
E="-F none -i $W/enckey -o IdentitiesOnly=yes -o UserKnownHostsFile=$KH"
NIX_SSHOPTS=$E setsid -w "$R" "root@$IP" true > /dev/null 2>&1 < /dev/null
assert_eq "encrypted key without a terminal: refused, no hang" 108 "$?"
out=$( (sleep 1; printf 'sekrit\n') | NIX_SSHOPTS=$E timeout 20 script -qec "$R root@$IP echo via-passphrase" /dev/null 2>&1)
assert_contains "encrypted key: passphrase asked on the terminal" "$out" "Enter passphrase for key '$W/enckey'"
assert_contains "encrypted key: login with the passphrase" "$out" "via-passphrase"
assert_not_contains "passphrase not echoed" "$out" "sekrit"
out=$( (sleep 1; printf 'sekrit\n') | NIX_SSHOPTS="$E -o BatchMode=yes" timeout 20 script -qec "$R root@$IP echo via-passphrase" /dev/null 2>&1)
assert_not_contains "BatchMode=yes: never prompts" "$out" "passphrase for"

# --- ~/.ssh/config and -F -------------------------------------------------------
cat > "$W/sshconfig" << EOF
Host boxalias
	HostName $IP
	User crdeploy
	IdentityFile $KEY
	UserKnownHostsFile $KH
	StrictHostKeyChecking yes
EOF
run "-F $W/sshconfig" -- boxalias id -un
assert_eq "-F config: alias, HostName, User, IdentityFile" crdeploy "$out"
run "-F $W/sshconfig -l crbob" -- boxalias id -un
assert_eq "command line wins over the config file" crbob "$out"
run "-F $W/nonexistent" -- "root@$IP" true
assert_eq "missing -F file: usage error" 101 "$rc"
# Match exec (the user's shell, tokens expanded; its output is not ours),
# Match user/localuser: a block that applies moves the port to a closed one.
cat "$W/sshconfig" - > "$W/sshconfig-match" << EOF
Match exec "echo exec-noise; echo exec-err >&2; test -e $W/flag-%h-%r-%p"
	Port 2222
Match user crbob localuser $(id -un)
	Port 2222
EOF
rm -f "$W/flag-$IP-crdeploy-22"
run "-F $W/sshconfig-match" -- boxalias id -un
assert_eq "Match exec false: the block does not apply" crdeploy "$out"
assert_contains "Match exec: its stderr is shown" "$err" "exec-err"
touch "$W/flag-$IP-crdeploy-22"
run "-F $W/sshconfig-match" -- boxalias id -un
assert_eq "Match exec true (%h %r %p expanded): the block applies" 104 "$rc"
rm -f "$W/flag-$IP-crdeploy-22"
run "-F $W/sshconfig-match -l crbob" -- boxalias id -un
assert_eq "Match user + localuser: the block applies" 104 "$rc"
run "-F $W/sshconfig-match -l crplain" -- boxalias true
assert_eq "Match user of another user: the block does not apply" 0 "$rc"
# closed_if "Match ...": $W/sshconfig-m is $W/sshconfig after a block with
# that line which moves the port to a closed one.
closed_if() { { printf '%s\n\tPort 2222\n' "$1"; cat "$W/sshconfig"; } > "$W/sshconfig-m"; }
# Match final: the files are read again, and then Match host sees the
# HostName set further down; in the first reading it does not.
closed_if "Match final host $IP"
run "-F $W/sshconfig-m" -- boxalias true
assert_eq "Match final host (HostName set below): the block applies" 104 "$rc"
closed_if "Match host $IP"
run "-F $W/sshconfig-m" -- boxalias id -un
assert_eq "the same without final: the block does not apply" crdeploy "$out"
# Match localnetwork: the loopback interface is up here; "none" is a
# documentation network no interface here has.
none=
for n in 198.51.100.0/24 203.0.113.0/24 192.0.2.0/24; do
	if [ -z "$(ip -o addr show to "$n")" ]; then none=$n; break; fi
done
closed_if "Match localnetwork $none,127.0.0.0/8"
run "-F $W/sshconfig-m" -- boxalias true
assert_eq "Match localnetwork of an interface here: the block applies" 104 "$rc"
closed_if "Match localnetwork $none"
run "-F $W/sshconfig-m" -- boxalias id -un
assert_eq "Match localnetwork of no interface here: the block does not apply" crdeploy "$out"
closed_if "Match localnetwork 127.0.0.1/8"
run "-F $W/sshconfig-m" -- boxalias true
assert_eq "Match localnetwork with host bits set: usage error" 101 "$rc"
# Match tagged: the tag comes from -P (or Tag).
closed_if "Match tagged web"
run "-F $W/sshconfig-m -P web" -- boxalias true
assert_eq "Match tagged with -P web: the block applies" 104 "$rc"
run "-F $W/sshconfig-m -P db" -- boxalias id -un
assert_eq "Match tagged with -P db: the block does not apply" crdeploy "$out"

run "$BASE -p 22 -o Port=2222" -- "root@$IP" true
assert_eq "-p given first wins" 0 "$rc"
run "$BASE -o ProxyCommand='socat - TCP:%h:%p'" -- "root@$IP" echo proxied
assert_eq "ProxyCommand" proxied "$out"
run "$BASE -4" -- "root@$IP" echo v4
assert_eq "-4 (own socket)" v4 "$out"
run "$BASE -o ControlMaster=auto -o ControlPath=/tmp/x -o ControlPersist=60 -t" -- "root@$IP" true
assert_eq "OpenSSH-only options accepted" 0 "$rc"
assert_not_contains "no warning for OpenSSH-only options" "$err" "warning"
run "$BASE -o Frobnicate=yes" -- "root@$IP" true
assert_contains "unknown option: warning naming it" "$err" "warning: ignoring ssh option 'Frobnicate'"
run "$BASE" -- -- "-oProxyCommand=touch$W/pwned" true
assert_eq "host starting with '-' refused" 101 "$rc"
run "$BASE" -- 'a;touch${IFS}x' true
assert_eq "host with shell metacharacters refused" 101 "$rc"
assert_eq "no injection happened" no "$([ -e "$W/pwned" ] && echo yes || echo no)"

# --- bounded failures ----------------------------------------------------------
run "$BASE -p 2222" -- "root@$IP" true
assert_eq "connection refused: ssh error" 104 "$rc"
assert_contains "connection refused: message names host" "$err" "cannot connect to 'root@$IP'"
python3 -c '
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0)); s.listen(5); print(s.getsockname()[1], flush=True)
c = s.accept(); time.sleep(60)' > "$W/mute.port" &
mute=$!
for _ in $(seq 50); do [ -s "$W/mute.port" ] && break; sleep 0.1; done
t0=$(date +%s%N)
run "$BASE -p $(cat "$W/mute.port") -o ConnectTimeout=2" -- "root@127.0.0.1" true
t=$((($(date +%s%N) - t0) / 1000000))
kill "$mute" 2> /dev/null
assert_eq "silent server: ssh error" 104 "$rc"
check "silent server: fails within ConnectTimeout (${t} ms)" test "$t" -lt 4000

idx=$(cat "$(host_dir sshbox)/index")
(
	NIX_SSHOPTS="$BASE -o ServerAliveInterval=1 -o ServerAliveCountMax=2" "$R" "root@$IP" sleep 60 \
		> /dev/null 2> "$W/dead.err"
	echo $? > "$W/dead.rc"
) &
dead=$!
sleep 2
t0=$(date +%s%N)
ip link set "crh$idx" down
wait "$dead"
t=$((($(date +%s%N) - t0) / 1000000))
ip link set "crh$idx" up
ip addr add "10.77.$idx.1/24" dev "crh$idx" 2> /dev/null || true
assert_eq "dead link: ssh error" 104 "$(cat "$W/dead.rc")"
check "dead link: detected in bounded time (${t} ms)" test "$t" -lt 10000
assert_contains "dead link: connection lost" "$(cat "$W/dead.err")" "connection lost"
for _ in $(seq 50); do ping -c1 -W1 "$IP" > /dev/null 2>&1 && break; sleep 0.1; done

NIX_SSHOPTS=$BASE "$R" "crdeploy@$IP" sh -c 'sleep 79' > /dev/null 2>&1 &
p=$!
sleep 1
kill -INT "$p"
wait "$p"
assert_eq "SIGINT: interrupted" 109 "$?"
sleep 0.5
assert_eq "SIGINT: remote command signalled" "" "$(pgrep -f 'sleep 79')"

# --- channels and streams ------------------------------------------------------
run "$BASE" -- -2 "root@$IP"
assert_eq "two channels at once on one session" \
	"A=<hello world> A-status=0 A-err=<Aerr
> B=<B
> B-err=<Berr
> B-status=0" "$out"

# A stream let go of (EOF sent, nothing waited for) still exits on the
# target after that; its exit-status and close must not reach the freed
# channel while the session is read for the next command (ASan/UBSan run
# this driver in make sanitize).
run "$BASE" -- -L "root@$IP"
assert_eq "a stream let go of, then another command on the session" \
	"B=<B
> B-status=0" "$out"

# A command that writes 8 MiB before it reads its 8 MiB of input: while
# the driver's write waits for window, crebuild must read the output (else
# each end waits for the other; 30 s bound on failure).
head -c 8M /dev/zero > "$W/z8"
out=$(NIX_SSHOPTS=$BASE timeout 30 "$R" -S "root@$IP" sh -c 'head -c 8M /dev/zero; cat > /dev/null' < "$W/z8" 2> "$W/err" | wc -c)
assert_eq "command writing 8 MiB before reading 8 MiB of input: no deadlock" 8388608 "$out"

head -c 100M /dev/urandom > "$W/r100"
out=$(NIX_SSHOPTS=$BASE "$R" -S -l "root@$IP" cat < "$W/r100" 2> "$W/err" | cmp - "$W/r100" && echo same)
assert_eq "100 MiB echoed through one channel intact" same "$out"
t0=$(date +%s%N)
NIX_SSHOPTS=$BASE "$R" -S "root@$IP" sh -c 'cat > /dev/null' < "$W/r100" 2> "$W/err"
rc=$?
t_cr=$((($(date +%s%N) - t0) / 1000000))
assert_eq "100 MiB upload" 0 "$rc"
t0=$(date +%s%N)
# shellcheck disable=SC2086
ssh -F /dev/null $BASE -o BatchMode=yes "root@$IP" 'cat > /dev/null' < "$W/r100"
t_os=$((($(date +%s%N) - t0) / 1000000))
cr_log "100 MiB upload incl. connect: crebuild ${t_cr} ms ($((100000 / (t_cr + 1))) MiB/s), OpenSSH ${t_os} ms ($((100000 / (t_os + 1))) MiB/s)"
t0=$(date +%s%N)
NIX_SSHOPTS=$BASE "$R" -S "root@$IP" head -c 100M /dev/urandom < /dev/null 2> "$W/err" | wc -c > "$W/down.n"
t_cr=$((($(date +%s%N) - t0) / 1000000))
assert_eq "100 MiB download" 104857600 "$(cat "$W/down.n")"
t0=$(date +%s%N)
# shellcheck disable=SC2086
ssh -F /dev/null $BASE -o BatchMode=yes "root@$IP" 'head -c 100M /dev/urandom' | wc -c > /dev/null
t_os=$((($(date +%s%N) - t0) / 1000000))
cr_log "100 MiB download incl. connect: crebuild ${t_cr} ms, OpenSSH ${t_os} ms"
# The same through a jump host (sshbox itself): the bridge thread under
# flow control both ways.
t0=$(date +%s%N)
out=$(NIX_SSHOPTS="$BASE -J root@$IP" "$R" -S -l "root@$IP" cat < "$W/r100" 2> "$W/err" | cmp - "$W/r100" && echo same)
t_cr=$((($(date +%s%N) - t0) / 1000000))
assert_eq "100 MiB echoed through a jump host intact" same "$out"
cr_log "100 MiB echo through a jump host: ${t_cr} ms"
rm -f "$W/r100"
run "$BASE -J root@$IP" -- -2 "root@$IP"
assert_contains "two channels at once through a jump host" "$out" "B-status=0"
NIX_SSHOPTS="$BASE -J root@$IP" "$R" "crdeploy@$IP" sh -c 'sleep 78' > /dev/null 2>&1 &
p=$!
sleep 1.5
kill -INT "$p"
t0=$(date +%s%N)
wait "$p"
rc=$?
t=$((($(date +%s%N) - t0) / 1000000))
assert_eq "SIGINT through a jump host: interrupted" 109 "$rc"
check "SIGINT through a jump host: exits at once (${t} ms)" test "$t" -lt 5000
sleep 0.5
assert_eq "SIGINT through a jump host: remote command signalled" "" "$(pgrep -f 'sleep 78')"

run "$BASE" -- -i "$W/sshconfig" "root@$IP" cat
assert_eq "run: input written to stdin" "$(cat "$W/sshconfig")" "$out"

# --- sudo --------------------------------------------------------------------
echo bobpass > "$W/pw"
echo wrong > "$W/badpw"
printf 'line1\nline2\n' > "$W/in"
run "$BASE" -- -e sudo -c -s "crdeploy@$IP" id -u
assert_eq "sudo without password (NOPASSWD)" 0 "$out"
run "$BASE" -- -e sudo -c -P "$W/pw" -s -i "$W/in" "crdeploy@$IP" cat
assert_eq "NOPASSWD: an unneeded password is not sent" "$(cat "$W/in")" "$out"
run "$BASE" -- -e sudo -c -P "$W/pw" -s "crbob@$IP" id -u
assert_eq "sudo with password: elevated" 0 "$out"
assert_contains "sudo with password: checked first" "$err" "sudo check ok"
run "$BASE" -- -e sudo -P "$W/pw" -s -i "$W/in" "crbob@$IP" cat
assert_eq "sudo with password: input follows the password" "$(cat "$W/in")" "$out"
run "$BASE" -- -e sudo -c -P "$W/badpw" -s "crbob@$IP" touch /nix/var/crebuild-test/changed
assert_eq "wrong sudo password: auth error" 108 "$rc"
assert_contains "wrong sudo password: message" "$err" "sudo password rejected on crbob@$IP"
assert_eq "wrong sudo password: nothing ran" no \
	"$([ -e "$(host_path sshbox /nix/var/crebuild-test/changed)" ] && echo yes || echo no)"
run "$BASE" -- -e sudo -c -s "crbob@$IP" id -u
assert_eq "password needed but none given: auth error" 108 "$rc"
assert_contains "hint: --ask-sudo-password" "$err" "did you forget to use --ask-sudo-password"
run "$BASE" -- -e sudo -s "crbob@$IP" id -u
assert_ne "unchecked sudo without password fails" 0 "$rc"
assert_contains "failing remote sudo: hint" "$err" "did you forget to use --ask-sudo-password"
run "$BASE" -- -e sudo -c -P "$W/pw" -s "crplain@$IP" id -u
assert_eq "user without sudo rights: auth error" 108 "$rc"
run "$BASE" -- -v -e sudo -c -P "$W/pw" -s "root@$IP" id -u
assert_eq "root login: elevated command runs" 0 "$out"
assert_not_contains "root login: no sudo in the command" "$(grep 'exec' <<< "$err")" "sudo"
run "$BASE" -- -e sudo -c -P "$W/pw" -O '-u crdeploy' -s "crbob@$IP" id -un
assert_eq "NIX_SUDOOPTS passed to sudo" crdeploy "$out"

done_testing

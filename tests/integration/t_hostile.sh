#!/bin/bash
# t_hostile.sh: hostile input and secrets, against real hosts.
#
# Flake attributes, profile names, specialisation names, store paths and host
# strings carrying quotes, $(), backticks, ';', newlines, blanks, '..' and
# '/', and host strings that look like ssh options, are rejected or quoted:
# canary files that the payloads would create never appear (hosts share the
# machine's /tmp, so one check covers the deployer and the target), and no
# profile lands outside its directory.  A hostile target host name is not
# used as a flake attribute.  Remote output floods (megabytes on stdout and
# stderr, a 16 MiB line, a huge `uname -n`) keep crebuild's memory bounded.
# The sudo password never shows in argv, environments, logs or events (here
# or on the target), and core dumps are off while crebuild holds it.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib/host.sh"
. "$here/lib/assert.sh"
trap 'rm -f /tmp/cr-canary-$$-* /tmp/cr-named-$$; cr_cleanup' EXIT

deployer_up hz-dep || { fail "deployer up"; exit 1; }
host_up hz-t1 --ssh || { fail "hz-t1 up"; exit 1; }
flake=$(flake_copy)
work=$CR_TEST_ROOT/work
mkdir -p "$work"
chmod 0755 "$work"
cd "$work" || exit 1
P=/nix/var/nix/profiles
T=hz-t1
# crebuild, bounded: a hang fails the case (status 124) instead of the file.
cr() {
	local rc
	host_exec hz-dep timeout -k 5 120 "$CREBUILD" "$@"
	rc=$?
	[ "$rc" != 124 ] || echo "# crebuild $1 did not finish within 120 s (hang)" >&2
	return "$rc"
}
tprofile() { readlink "$(host_path $T "$P/system")"; }
nact() { host_activations $T | grep -c .; }
# state HOST: every profile link under $P, with its target.
state() {
	(cd "$(host_path "$1" $P)" 2> /dev/null && find . -maxdepth 2 -printf '%p %l\n' | sort)
}

# Canaries: payload i touches /tmp/cr-canary-$$-i.
C=/tmp/cr-canary-$$
n_canary=0
canary() { n_canary=$((n_canary + 1)); CANARY=$C-$n_canary; }
# payloads: hostile strings in the array PAYLOADS, each with its own canary.
payloads() {
	local c=()
	for _ in 1 2 3 4 5 6; do canary; c+=("$CANARY"); done
	PAYLOADS=(
		"\$(touch ${c[0]})"
		"\`touch ${c[1]}\`"
		"x;touch ${c[2]}"
		"x';touch ${c[3]};'"
		"x\";touch ${c[4]};\""
		"x"$'\n'"touch ${c[5]}"
		"with space"
		"../../escape"
		"\${builtins.toString 1}"
	)
}
no_canaries() {
	local left
	left=$(ls "$C"-* 2> /dev/null)
	if [ -z "$left" ]; then ok "$1: no canary file created"; else fail "$1: no canary file created" "$left"; fi
}

# Generation 1 on the target.
out=$(cr switch --flake "path:$flake#alpha" --target-host crdeploy@$T --sudo 2> "$work/err"); rc=$?
assert_eq "first deploy exits 0" 0 "$rc" || cat "$work/err" >&2
before=$(state $T); dbefore=$(state hz-dep); acts=$(nact)

# --- flake attributes --------------------------------------------------------------------
payloads
for p in "${PAYLOADS[@]}"; do
	shown=${p//$'\n'/\\n}
	cr build --flake "path:$flake#$p" > /dev/null 2> "$work/e"; rc=$?
	assert_ne "flake attribute '$shown': build fails" 0 "$rc"
	cr switch --flake "path:$flake#$p" --target-host crdeploy@$T --sudo > /dev/null 2> "$work/e"; rc=$?
	assert_ne "flake attribute '$shown': remote switch fails" 0 "$rc"
done
for p in "x\";touch $C-0;\"" "x"$'\n'"y"; do
	cr build --flake "path:$flake#$p" > /dev/null 2> "$work/e"; rc=$?
	assert_eq "flake attribute with a quote or newline rejected as usage (2)" 2 "$rc"
	assert_eq "  ... before running anything" 1 "$(grep -c '^error:' "$work/e")"
done
no_canaries "flake attributes"
assert_eq "flake attributes: target untouched" "$before/$acts" "$(state $T)/$(nact)"

# --- the target's host name as the default attribute -----------------------------------
host_up hz-t2 --ssh || fail "hz-t2 up"
canary; hn="a\"\$(touch $CANARY)"; canary; hn+="\`touch $CANARY\`"
host_exec hz-t2 python3 -c 'import socket, sys; socket.sethostname(sys.argv[1])' "$hn" ||
	fail "set a hostile host name on hz-t2"
assert_eq "hz-t2 has the hostile host name" "$hn" "$(host_exec hz-t2 uname -n)"
cr switch --flake "path:$flake" --target-host crdeploy@hz-t2 --sudo > /dev/null 2> "$work/e"; rc=$?
assert_ne "hostile target host name: refused" 0 "$rc"
assert_contains "hostile target host name: says why" "$(cat "$work/e")" "cannot be used as a flake attribute"
assert_not_contains "hostile target host name: nothing built" "$(cat "$work/e")" "building"
no_canaries "hostile target host name"
check_fails "hz-t2: no profile created" test -e "$(host_path hz-t2 $P/system)"
host_down hz-t2

# --- profile names --------------------------------------------------------------------------
payloads
for p in "${PAYLOADS[@]}" "../../evil" "a/b" "." ".." ".hidden" "-x" "" "x/../../../evil"; do
	shown=${p//$'\n'/\\n}
	cr switch --flake "path:$flake#alpha" -p "$p" --target-host crdeploy@$T --sudo > /dev/null 2> "$work/e"; rc=$?
	assert_eq "profile name '$shown': rejected (2)" 2 "$rc"
	cr switch --flake "path:$flake#alpha" --profile-name "$p" > /dev/null 2> "$work/e"; rc=$?
	assert_eq "profile name '$shown': rejected locally too (2)" 2 "$rc"
done
no_canaries "profile names"
assert_eq "profile names: target untouched" "$before/$acts" "$(state $T)/$(nact)"
assert_eq "profile names: deployer untouched" "$dbefore" "$(state hz-dep)"
check_fails "no profile outside the profiles directory" sh -c \
	"ls -d $(host_path $T /nix/var/nix)/evil* $(host_path $T /nix/var)/evil* $(host_path hz-dep /nix/var/nix)/evil* 2>/dev/null | grep ."
out=$(cr switch --flake "path:$flake#alpha" -p web.v2_x+y-1 --target-host crdeploy@$T --sudo 2> "$work/e"); rc=$?
assert_eq "a profile name using every allowed character works" 0 "$rc"
check "  ... in system-profiles" test -L "$(host_path $T $P/system-profiles/web.v2_x+y-1)"
before=$(state $T); acts=$(nact)

# --- specialisation names -------------------------------------------------------------------
payloads
for p in "${PAYLOADS[@]}" "x*" "?" "extra/../extra"; do
	shown=${p//$'\n'/\\n}
	cr switch --flake "path:$flake#alpha" -c "$p" --target-host crdeploy@$T --sudo > /dev/null 2> "$work/e"; rc=$?
	assert_ne "specialisation '$shown' on the target: fails" 0 "$rc"
	cr test --flake "path:$flake#alpha" -c "$p" > /dev/null 2> "$work/e"; rc=$?
	assert_ne "specialisation '$shown' locally: fails" 0 "$rc"
done
no_canaries "specialisation names"
assert_eq "specialisation names: target untouched" "$before/$acts" "$(state $T)/$(nact)"
check_fails "specialisation names: nothing activated on the deployer" test -s "$(host_path hz-dep /nix/var/crebuild-test/activations.log)"

# --- store paths --------------------------------------------------------------------------
payloads
for p in "${PAYLOADS[@]}"; do
	shown=${p//$'\n'/\\n}
	cr switch --store-path "/nix/store/$p" --target-host crdeploy@$T --sudo > /dev/null 2> "$work/e"; rc=$?
	assert_ne "store path '/nix/store/$shown': fails" 0 "$rc"
done
no_canaries "store paths"
assert_eq "store paths: target untouched" "$before/$acts" "$(state $T)/$(nact)"

# --- host strings -------------------------------------------------------------------------
payloads
hosts=()
for p in "${PAYLOADS[@]}"; do hosts+=("$p" "crdeploy@$p" "$p@$T"); done
canary; c=$CANARY
hosts+=("-oProxyCommand=touch $c" "-oProxyCommand=touch"$'\t'"$c" "crdeploy@-oProxyCommand=touch $c"
	"ssh://-oProxyCommand=touch $c" "ssh-ng://-oProxyCommand=touch $c" "-lroot" "-F/dev/null"
	"-i$CR_TEST_ROOT/keys/id_ed25519" "--" "-" "crdeploy@" "@$T" "[" "[::1" "ssh://crdeploy@$T:99999")
for h in "${hosts[@]}"; do
	shown=${h//$'\n'/\\n}
	start=$(date +%s)
	cr switch --flake "path:$flake#alpha" --target-host "$h" --sudo > /dev/null 2> "$work/e"; rc=$?
	took=$(($(date +%s) - start))
	assert_ne "target host '$shown': fails" 0 "$rc"
	if [ "$took" -gt 20 ]; then fail "target host '$shown': fails in bounded time (${took}s)"; fi
	cr build --flake "path:$flake#alpha" --build-host "$h" > /dev/null 2> "$work/e"; rc=$?
	assert_ne "build host '$shown': fails" 0 "$rc"
	cr list-generations --target-host "$h" > /dev/null 2> "$work/e"; rc=$?
	assert_ne "list-generations on '$shown': fails" 0 "$rc"
done
no_canaries "host strings"
assert_eq "host strings: target untouched" "$before/$acts" "$(state $T)/$(nact)"
check_fails "no ssh/sh ProxyCommand process left" pgrep -f "cr-canary-$$"
# The canaries would have seen it: a command the user names does run on the
# target (and only that).
named=/tmp/cr-named-$$
cr test --flake "path:$flake#alpha" --target-host crdeploy@$T --sudo \
	--health-check-cmd "touch $named" > /dev/null 2> "$work/e"; rc=$?
assert_eq "a health check command the user names: exits 0" 0 "$rc"
check "  ... and ran on the target (the canary check sees the target)" test -e "$named"
rm -f "$named"
acts=$(nact)

# --- remote output floods: memory stays bounded ---------------------------------------------
# (the flood configuration prints a 16 MiB line on stdout and 16 MiB of
# lines on stderr while activating)
rss_ok() {
	local desc=$1 f=$2 rss
	rss=$(sed -n 's/^maxrss //p' "$f" | tail -n 1)
	if [ -n "$rss" ] && [ "$rss" -lt 65536 ]; then
		ok "$desc: peak RSS ${rss} KiB < 64 MiB"
	else
		fail "$desc: peak RSS ${rss:-?} KiB < 64 MiB" "$(tail -c 2000 "$f")"
	fi
}
flood() {
	local desc=$1
	shift
	host_exec hz-dep /usr/bin/time -f 'maxrss %M' "$CREBUILD" "$@" > "$work/flood.out" 2> "$work/flood.err"
	rc=$?
	assert_eq "$desc: exits 0" 0 "$rc"
	check "$desc: the flood came through (>= 32 MiB)" test "$(($(stat -c %s "$work/flood.out") + $(stat -c %s "$work/flood.err")))" -ge 33554432
	rss_ok "$desc" "$work/flood.err"
}
flood "remote activation flood (no magic rollback)" switch --flake "path:$flake#flood" \
	--target-host crdeploy@$T --sudo --no-magic-rollback
echo 1 > "$flake/salt"
flood "remote activation flood (magic rollback)" switch --flake "path:$flake#flood" \
	--target-host crdeploy@$T --sudo
rm -f "$flake/salt"
flood "local activation flood" test --flake "path:$flake#flood"

# A target whose commands answer with floods: uname -n (the default flake
# attribute), and nix-store --serve writing megabytes to stderr.
host_up hz-t3 --ssh || fail "hz-t3 up"
fake=$CR_TEST_ROOT/fakebin
mkdir -p "$fake"
cat > "$fake/uname" << 'EOF'
#!/bin/sh
head -c 268435456 /dev/zero | tr '\0' a
EOF
cat > "$fake/nix-store" << 'EOF'
#!/bin/sh
case " $* " in *" --serve "*)
	yes 'error: a flood of errors from the remote nix-store' | head -c 67108864 >&2
	exit 1 ;;
esac
exec /usr/bin/nix-store "$@"
EOF
chmod 0755 "$fake/uname" "$fake/nix-store"
host_exec hz-t3 mount --bind "$fake" /usr/local/bin || fail "wrapper directory on hz-t3"
host_exec hz-dep /usr/bin/time -f 'maxrss %M' "$CREBUILD" switch --flake "path:$flake" \
	--target-host crdeploy@hz-t3 --sudo > /dev/null 2> "$work/uname.err"; rc=$?
assert_ne "256 MiB host name: refused" 0 "$rc"
rss_ok "256 MiB host name" "$work/uname.err"
check "256 MiB host name: the error is short" test "$(stat -c %s "$work/uname.err")" -lt 65536
host_exec hz-dep /usr/bin/time -f 'maxrss %M' "$CREBUILD" switch --flake "path:$flake#alpha" \
	--target-host crdeploy@hz-t3 --sudo > /dev/null 2> "$work/serve.err"; rc=$?
assert_ne "64 MiB of nix-store --serve errors: fails" 0 "$rc"
rss_ok "64 MiB of nix-store --serve errors" "$work/serve.err"
check "64 MiB of nix-store --serve errors: the report is short" test "$(stat -c %s "$work/serve.err")" -lt 65536
host_down hz-t3

# --- secrets ---------------------------------------------------------------------------------
# crbob needs a password for sudo.  crebuild runs as the unprivileged user
# crdeploy on the deployer (so that non-dumpability shows: /proc/PID files
# then belong to root), deploys the slow configuration with magic rollback
# and --debug, and while it runs every process of crebuild's tree and of the
# target is searched for the password, repeatedly.
pw=bobpass
printf '%s\n' "$pw" > "$work/pw"
: > "$work/events.json"
chown crdeploy "$work/events.json"
chown crdeploy "$work/pw"
chmod 0600 "$work/pw"
pub=$(cr_public_crebuild)
# watch.py PATTERN PASSWORD KEEPER ACTLOG: until the crebuild whose command
# line matches PATTERN exits, search the cmdline and environ of its process
# tree and of every process in hz-t1's mount namespace for the password,
# every 0.1 s.  Prints "searched N", the hits, and, once the slow activation
# runs, crebuild's core size limit and the owner of its /proc files.
cat > "$work/watch.py" << 'EOF'
import os, re, sys, time
pat, pw, keeper, actlog = sys.argv[1], sys.argv[2].encode(), sys.argv[3], sys.argv[4]
ns = os.readlink(f"/proc/{keeper}/ns/mnt")
def rd(p, f):
    try:
        with open(f"/proc/{p}/{f}", "rb") as fh: return fh.read()
    except OSError: return b""
def cmd(p): return rd(p, "cmdline").replace(b"\0", b" ").decode(errors="replace")
cr, searched, hits, limits, owner = None, 0, set(), None, None
for _ in range(1200):
    allp = [int(d) for d in os.listdir("/proc") if d.isdigit()]
    if cr is None:
        for p in allp:
            if re.match(pat, cmd(p)):
                cr = p; break
    elif not os.path.exists(f"/proc/{cr}"):
        break
    parent = {}
    for p in allp:
        st = rd(p, "stat").rsplit(b")", 1)
        if len(st) == 2: parent[p] = int(st[1].split()[1])
    tree = {cr} if cr else set()
    grown = True
    while grown:
        new = {p for p, pp in parent.items() if pp in tree and p not in tree}
        tree |= new; grown = bool(new)
    for p in allp:
        try:
            if os.readlink(f"/proc/{p}/ns/mnt") == ns: tree.add(p)
        except OSError: pass
    for p in tree:
        searched += 1
        for f in ("cmdline", "environ"):
            if pw in rd(p, f): hits.add(f"{p} {f}: {cmd(p)}")
    if cr and limits is None:
        try:
            with open(actlog) as fh: last = fh.read().splitlines()[-1:]
        except OSError: last = []
        if last and "slow" in last[0]:
            for l in rd(cr, "limits").decode().splitlines():
                if l.startswith("Max core file size"): limits = l
            try: owner = os.stat(f"/proc/{cr}/environ").st_uid
            except OSError: pass
    time.sleep(0.1)
print("searched", searched)
print("limits", limits)
print("owner", owner)
for h in sorted(hits): print("hit", h)
EOF
secret_run() {
	local desc=$1 w n
	shift
	salt=$((${salt:-0} + 1)); echo "secret$salt" > "$flake/salt"
	python3 "$work/watch.py" "^$pub " "$pw" "$(host_pid $T)" \
		"$(host_path $T /nix/var/crebuild-test/activations.log)" > "$work/watch.out" &
	w=$!
	# (Under make sanitize: LeakSanitizer cannot stop a non-dumpable
	# process it does not have the privileges to trace, so no leak check
	# for these two runs; the same code runs with it as root elsewhere.)
	host_exec_as hz-dep crdeploy env ${ASAN_OPTIONS:+ASAN_OPTIONS="$ASAN_OPTIONS:detect_leaks=0"} \
		${UBSAN_OPTIONS:+UBSAN_OPTIONS="$UBSAN_OPTIONS"} "$@" > /dev/null 2> "$work/secret.err"; rc=$?
	wait $w
	assert_eq "$desc: exits 0" 0 "$rc" || cat "$work/secret.err" >&2
	n=$(sed -n 's/^searched //p' "$work/watch.out")
	check "$desc: processes were searched (${n:-0})" test "${n:-0}" -gt 50
	if grep -q '^hit' "$work/watch.out"; then
		fail "$desc: password in no argv or environment" "$(grep '^hit' "$work/watch.out")"
	else
		ok "$desc: password in no argv or environment (crebuild's tree and the target)"
	fi
	assert_match "$desc: core dumps off while holding it" "$(sed -n 's/^limits //p' "$work/watch.out")" \
		'^Max core file size +0 +0 '
	assert_eq "$desc: not dumpable while holding it (its /proc files belong to root)" 0 \
		"$(sed -n 's/^owner //p' "$work/watch.out")"
	assert_not_contains "$desc: password not in the log" "$(cat "$work/secret.err")" "$pw"
}
secret_run "password file" "$pub" switch --debug --flake "path:$flake#slow" --target-host crbob@$T \
	--sudo-password-file "$work/pw" --events "$work/events.json"
assert_not_contains "password file: password not in the events" "$(cat "$work/events.json")" "$pw"
assert_contains "password file: elevated on the target" "$(host_activations $T | tail -n 1)" "uid=0"
assert_contains "password file: the debug log shows the commands" "$(cat "$work/secret.err")" "sudo"
secret_run "password fd" bash -c 'exec 3< "$0"; exec "$@"' "$work/pw" "$pub" test --debug \
	--flake "path:$flake#slow" --target-host crbob@$T --sudo-password-fd 3 --no-magic-rollback
check_fails "no password left in any process of the machine" grep -qaF -- "$pw" /proc/[0-9]*/cmdline

done_testing

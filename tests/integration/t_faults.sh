#!/bin/bash
# t_faults.sh: fault injection against real hosts.  Every fault must end with
# a non-zero exit, one error line naming the cause, and a target whose store
# and profile are consistent: `nix-store --verify --check-contents` clean,
# nothing half-registered, the system profile at the old or the new
# generation and every generation link pointing at a valid path.
#
# Faults: the connection cut during the copy, during `nix-env --set` and
# during activation; sshd refusing the login; an unreachable host; a name
# that does not resolve; a wrong sudo password; sudo not allowed; no
# nix-store on the target's PATH; the target's store full; a failing local
# build; a missing or corrupted local store path; a remote answering the
# serve protocol with garbage or stopping in the middle of a reply; SIGINT
# and SIGTERM in each phase (build, copy, profile, activation).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib/host.sh"
. "$here/lib/assert.sh"
trap cr_cleanup EXIT

deployer_up ft-dep || { fail "deployer up"; exit 1; }
host_up ft-t1 --ssh || { fail "ft-t1 up"; exit 1; }
work=$CR_TEST_ROOT/work
mkdir -p "$work"
cd "$work" || exit 1
P=/nix/var/nix/profiles
T=ft-t1

# The standard test flake plus "big": twelve 4 MiB packages of random bytes
# (new ones with every salt), so that a copy takes long enough to be cut.
flake=$(flake_copy)
cat > "$flake/flake.nix" << 'EOF'
{
  outputs = { self }:
    let
      salt = if builtins.pathExists ./salt then builtins.readFile ./salt else "";
      lib = import ./lib.nix { inherit salt; };
      blob = name: derivation {
        inherit name salt;
        system = "x86_64-linux";
        builder = "/bin/sh";
        PATH = "/usr/bin:/bin";
        args = [ "-c" ''
          mkdir -p "$out/share" "$out/bin"
          head -c 4194304 /dev/urandom > "$out/share/data"
          printf '#!/bin/sh\n' > "$out/bin/$name"
        '' ];
      };
    in {
      nixosConfigurations = import ./configs.nix { inherit salt; } // {
        big = lib.mkSystem {
          name = "big";
          pkgs = builtins.genList (i: blob "blob${toString i}") 12;
        };
      };
    };
}
EOF

# crebuild, bounded: a hang fails the case (status 124) instead of the file.
cr() {
	local rc
	host_exec ft-dep timeout -k 5 120 "$CREBUILD" "$@"
	rc=$?
	[ "$rc" != 124 ] || echo "# crebuild $1 did not finish within 120 s (hang)" >&2
	return "$rc"
}
salt() { printf '%s' "$1" > "$flake/salt"; }
deploy() { cr "$1" --flake "path:$flake#$2" --target-host "crdeploy@$T" --sudo "${@:3}"; }
toplevel() { host_build ft-dep "$(flake_toplevel_ref "$flake" "$1")"; }
tprofile() { readlink "$(host_path "$1" "$P/system")"; }
nact() { host_activations "$1" | grep -c .; }

# hstore HOST ARGS...: nix-store on HOST (also where it is not on the PATH).
hstore() {
	local h=$1
	shift
	host_exec "$h" bash -c 'exec -a nix-store /usr/bin/nix "$@"' nix-store "$@"
}
# nvalid HOST PATH...: how many of the paths are valid on HOST.
nvalid() {
	local h=$1 invalid
	shift
	invalid=$(hstore "$h" --check-validity --print-invalid "$@" 2> /dev/null | grep -c .)
	echo $(($# - invalid))
}

# errors FILE: the error lines of a run.  Nix's own messages (a failed
# build) are Nix's; crebuild adds one line of its own.
errors() { grep '^error:' "$1" | grep -Ev '^error: (builder for|[0-9]+ dependencies of derivation|build of )'; }

# one_error DESC FILE ERE [ALSO]: exactly one error line from crebuild, and
# it matches ERE (names the cause); with ALSO, one more line matching ALSO
# may follow (a copy cut short: the transport reports the lost connection,
# the copy engine the path it was copying).  FILE is kept as
# $work/<desc>.err.
one_error() {
	local desc=$1 f=$2 re=$3 also=${4:-} lines first rest
	cp "$f" "$work/$(tr -c 'a-zA-Z0-9\n-' _ <<< "$desc").err"
	lines=$(errors "$f")
	first=$(grep -E -m 1 -- "$re" <<< "$lines")
	rest=$(grep -vxF -- "$first" <<< "$lines")
	if [ -n "$first" ] && [ "$(grep -c . <<< "$lines")" -le "$([ -n "$also" ] && echo 2 || echo 1)" ] &&
		{ [ -z "$rest" ] || { [ -n "$also" ] && [[ $rest =~ $also ]]; }; }; then
		ok "$desc: one error line naming the cause"
	else
		fail "$desc: one error line naming the cause (/$re/)" "$(cat "$f")"
	fi
}

# consistent DESC HOST OLD NEW: the store verifies, every system generation
# link is valid, and the profile is at OLD or NEW (a generation link name,
# or "-" for none).
consistent() {
	local desc=$1 h=$2 old=$3 new=$4 out cur l bad=
	if ! out=$(hstore "$h" --verify --check-contents 2>&1) ||
		grep -Eq 'modified|disappeared|invalid|corrupt|error' <<< "$out"; then
		bad="store does not verify: $out"
	fi
	for l in "$(host_path "$h" $P)"/system-*-link; do
		[ -L "$l" ] || continue
		hstore "$h" --check-validity "$(readlink "$l")" 2> /dev/null ||
			bad+=" generation ${l##*/} -> $(readlink "$l") is not valid;"
	done
	cur=$(tprofile "$h" 2> /dev/null) || cur=-
	[ "$cur" = "$old" ] || [ "$cur" = "$new" ] || bad+=" profile at '$cur', not '$old' or '$new';"
	if [ -z "$bad" ]; then
		ok "$desc: target consistent (profile $cur)"
	else
		fail "$desc: target consistent" "$bad"
	fi
}

# next_gen HOST: the link name the next generation gets.
next_gen() {
	local n
	n=$(ls "$(host_path "$1" $P)" | sed -n 's/^system-\([0-9]*\)-link$/\1/p' | sort -n | tail -n 1)
	echo "system-$((${n:-0} + 1))-link"
}

# quiet_host HOST: wait until no crebuild-started command is left on HOST
# (remote commands outlive a cut connection for a moment).
quiet_host() {
	local i ns
	ns=$(readlink "/proc/$(host_pid "$1")/ns/mnt")
	for i in $(seq 1 100); do
		local busy=0 p
		for p in $(pgrep -f 'nix-store --serve|nix-env|switch-to-configuration|sleep [0-9]'); do
			[ "$(readlink "/proc/$p/ns/mnt" 2> /dev/null)" = "$ns" ] && busy=1
		done
		[ "$busy" = 0 ] && return 0
		sleep 0.1
	done
	return 1
}

# A wrapper directory bind-mounted on /usr/local/bin inside ft-t1 only (it
# comes first on the PATH of ssh logins and in sudo's secure_path):
#   nix-env    sleeps 4 s before --set while /nix/var/crebuild-test/slow-nix-env
#              exists, touching .../nix-env-started first;
#   nix-store  for --serve, behaves as /nix/var/crebuild-test/fake-serve says:
#              garbage (random bytes), motd (a line of text), exit (exit 1 at
#              once), midreply (the real handshake, then half of the first
#              reply, then exit); absent: the real nix-store.
fake=$CR_TEST_ROOT/fakebin
mkdir -p "$fake"
cat > "$fake/nix-env" << 'EOF'
#!/bin/sh
d=/nix/var/crebuild-test
case " $* " in *" --set "*)
	if [ -e "$d/slow-nix-env" ]; then : > "$d/nix-env-started"; sleep 4; fi ;;
esac
exec /usr/bin/nix-env "$@"
EOF
cat > "$fake/nix-store" << 'EOF'
#!/bin/sh
mode=$(cat /nix/var/crebuild-test/fake-serve 2> /dev/null)
case " $* " in *" --serve "*)
	case $mode in
	garbage) head -c 4096 /dev/urandom; exit 0 ;;
	motd) echo "Welcome to ft-t1. Authorized use only."; exit 0 ;;
	exit) exit 1 ;;
	midreply) exec /usr/bin/python3 -c '
import subprocess, sys
p = subprocess.Popen(["/usr/bin/nix-store"] + sys.argv[1:], stdout=subprocess.PIPE)
out = sys.stdout.buffer
hs = b""
while len(hs) < 16:
    b = p.stdout.read1(16 - len(hs))
    if not b: break
    hs += b
out.write(hs); out.flush()
first = p.stdout.read1(65536)
out.write(first[:max(1, len(first) // 2)]); out.flush()
p.kill()
' "$@" ;;
	esac ;;
esac
exec /usr/bin/nix-store "$@"
EOF
chmod 0755 "$fake/nix-env" "$fake/nix-store"
host_exec $T mount --bind "$fake" /usr/local/bin || fail "wrapper directory on $T"
TV=$(host_path $T /nix/var/crebuild-test)

# Generation 1: a normal system to fall back to.
out=$(deploy switch alpha 2> "$work/err"); rc=$?
assert_eq "first deploy exits 0" 0 "$rc" || cat "$work/err" >&2

# Without a terminal crebuild evaluates and builds while it logs in: the
# build is started before the login is done.
salt overlap
deploy switch alpha --debug > /dev/null 2> "$work/dbg"; rc=$?
assert_eq "build while connecting: exits 0" 0 "$rc"
b=$(grep -n -m 1 'debug: running: nix .* build ' "$work/dbg" | cut -d: -f1)
l=$(grep -n -m 1 'logged in as' "$work/dbg" | cut -d: -f1)
check "build while connecting: the build starts before the login is done (lines ${b:-?} < ${l:-?})" \
	test "${b:-999999}" -lt "${l:-0}"

# --- the login and the host ---------------------------------------------------------
old=$(tprofile $T); n=$(nact $T)
host_ssh_deauthorize $T crdeploy
salt login
deploy switch beta > /dev/null 2> "$work/e"; rc=$?
assert_ne "sshd refusing the login: fails" 0 "$rc"
one_error "login refused" "$work/e" 'crdeploy@ft-t1.*(auth|denied|refused|key)'
consistent "login refused" $T "$old" "$old"
assert_eq "login refused: nothing activated" "$n" "$(nact $T)"
# The same while a slow build runs meanwhile (no terminal here, so crebuild
# builds while it connects): the build is stopped, the login's error is the
# one line, and nothing is left running.
salt login-during-build
start=$(date +%s)
cr switch --flake "path:$flake#slowbuild" --target-host crdeploy@$T --sudo > /dev/null 2> "$work/e"; rc=$?
took=$(($(date +%s) - start))
assert_ne "login refused during the build: fails" 0 "$rc"
one_error "login refused during the build" "$work/e" 'crdeploy@ft-t1.*(auth|denied|refused|key)'
check "login refused during the build: the build was stopped (${took}s)" test "$took" -lt 6
sleep 1
check_fails "login refused during the build: no build left running" pgrep -f 'sleep 8; mkdir -p'
consistent "login refused during the build" $T "$old" "$old"
cp "$CR_TEST_ROOT/keys/id_ed25519.pub" "$(host_dir $T)/ssh-home/crdeploy/authorized_keys"

start=$(date +%s)
err=$(NIX_SSHOPTS="-o ConnectTimeout=2" cr switch --flake "path:$flake#beta" \
	--target-host crdeploy@10.77.251.2 --sudo 2>&1 > /dev/null); rc=$?
printf '%s\n' "$err" > "$work/e"
took=$(($(date +%s) - start))
assert_ne "unreachable host: fails" 0 "$rc"
one_error "unreachable host" "$work/e" '10\.77\.251\.2'
check "unreachable host: bounded time (${took}s)" test "$took" -le 20

start=$(date +%s)
cr switch --flake "path:$flake#beta" --target-host crdeploy@no-such-host.invalid --sudo \
	> /dev/null 2> "$work/e"; rc=$?
took=$(($(date +%s) - start))
assert_ne "unresolvable host name: fails" 0 "$rc"
one_error "unresolvable host name" "$work/e" 'no-such-host\.invalid.*(resolve|Name or service)'
check "unresolvable host name: bounded time (${took}s)" test "$took" -le 20

# --- sudo ---------------------------------------------------------------------------------
printf 'not-the-password\n' > "$work/badpw"
chmod 0600 "$work/badpw"
n=$(nact $T)
salt sudo1
cr switch --flake "path:$flake#beta" --target-host crbob@$T --sudo-password-file "$work/badpw" \
	> /dev/null 2> "$work/e"; rc=$?
assert_ne "wrong sudo password: fails" 0 "$rc"
one_error "wrong sudo password" "$work/e" 'sudo password rejected'
consistent "wrong sudo password" $T "$old" "$old"
assert_eq "wrong sudo password: nothing activated" "$n" "$(nact $T)"
assert_not_contains "wrong sudo password: not echoed" "$(cat "$work/e")" "not-the-password"

cr switch --flake "path:$flake#beta" --target-host crplain@$T --sudo > /dev/null 2> "$work/e"; rc=$?
assert_ne "sudo not allowed: fails" 0 "$rc"
one_error "sudo not allowed" "$work/e" 'crplain@ft-t1.*sudo'
consistent "sudo not allowed" $T "$old" "$old"
assert_eq "sudo not allowed: nothing activated" "$n" "$(nact $T)"

# --- the local side -------------------------------------------------------------------------
salt build1
deploy switch buildfail > /dev/null 2> "$work/e"; rc=$?
assert_ne "local build failure: fails" 0 "$rc"
assert_contains "local build failure: nix's message shown" "$(cat "$work/e")" "this package fails to build on purpose"
one_error "local build failure" "$work/e" "nix.*build.*non-zero exit status"
assert_not_contains "local build failure: nothing copied" "$(cat "$work/e")" "copying"
consistent "local build failure" $T "$old" "$old"

missing=/nix/store/00000000000000000000000000000000-nixos-system-missing
cr switch --store-path "$missing" --target-host crdeploy@$T --sudo > /dev/null 2> "$work/e"; rc=$?
assert_ne "missing --store-path: fails" 0 "$rc"
one_error "missing --store-path" "$work/e" "$missing"
consistent "missing --store-path" $T "$old" "$old"

# A built path whose content no longer matches its hash in the deployer's
# database (the deployer's /nix is a directory of the test root).
salt corrupt
sys=$(toplevel beta) || fail "build beta"
victim=$(host_exec ft-dep nix-store -qR "$sys" | grep -- '-hello-2.12.1$')
f=$(host_path ft-dep "$victim/share/doc/hello/README")
cp -p "$f" "$work/README.orig"
echo "tampered" >> "$f"
n=$(nact $T)
cr switch --store-path "$sys" --target-host crdeploy@$T --sudo > /dev/null 2> "$work/e"; rc=$?
assert_ne "corrupted local path: fails" 0 "$rc"
one_error "corrupted local path" "$work/e" "${victim##*/}.*(corrupt|hash)"
check_fails "corrupted local path: not registered on the target" \
	host_exec $T nix-store --check-validity "$victim"
check_fails "corrupted local path: system not registered" host_exec $T nix-store --check-validity "$sys"
consistent "corrupted local path" $T "$old" "$old"
assert_eq "corrupted local path: nothing activated" "$n" "$(nact $T)"
cat "$work/README.orig" > "$f"
check "deployer's store repaired" host_exec ft-dep nix-store --verify-path "$victim"

# --- the remote's nix-store ---------------------------------------------------------------
for mode in garbage motd exit midreply; do
	echo "$mode" > "$TV/fake-serve"
	salt "serve-$mode"
	deploy switch beta > /dev/null 2> "$work/e"; rc=$?
	assert_ne "serve $mode: fails" 0 "$rc"
	one_error "serve $mode" "$work/e" "crdeploy@ft-t1"
	consistent "serve $mode" $T "$old" "$old"
done
rm -f "$TV/fake-serve"

host_up ft-nonix --ssh || fail "ft-nonix up"
mkdir -p "$CR_TEST_ROOT/ovl/up" "$CR_TEST_ROOT/ovl/work"
host_exec ft-nonix mount -t overlay overlay \
	-o "lowerdir=/usr/bin,upperdir=$CR_TEST_ROOT/ovl/up,workdir=$CR_TEST_ROOT/ovl/work" /usr/bin &&
	host_exec ft-nonix rm /usr/bin/nix-store || fail "hide nix-store on ft-nonix"
check_fails "ft-nonix: nix-store is not on the deploy user's PATH" host_ssh ft-nonix crdeploy 'command -v nix-store'
check "the machine's own nix-store is still there" test -e /usr/bin/nix-store
cr switch --flake "path:$flake#beta" --target-host crdeploy@ft-nonix --sudo > /dev/null 2> "$work/e"; rc=$?
assert_ne "no nix-store on the target: fails" 0 "$rc"
one_error "no nix-store on the target" "$work/e" "nix-store.*(not found|No such file)"
consistent "no nix-store on the target" ft-nonix - -

host_up ft-full --ssh --nix-size 24M || fail "ft-full up"
salt full
big=$(toplevel big) || fail "build big"
cr switch --flake "path:$flake#big" --target-host root@ft-full > /dev/null 2> "$work/e"; rc=$?
assert_ne "target store full: fails" 0 "$rc"
one_error "target store full" "$work/e" "(No space left|space)"
check_fails "target store full: system not registered" host_exec ft-full nix-store --check-validity "$big"
consistent "target store full" ft-full - -
host_down ft-full

# --- connection cut -------------------------------------------------------------------------
# Through a TCP proxy (tests/tools/delayproxy.c) that is killed at the right moment.
port=2451
viaproxy() { NIX_SSHOPTS="-p $port" cr "$1" --flake "path:$flake#$2" --target-host crdeploy@127.0.0.1 --sudo "${@:3}"; }
proxy_up() { port=$((port + 1)); host_delay_proxy $T "$1" $port > /dev/null || fail "delay proxy $port"; }

# During the copy.
proxy_up 100
salt cut-copy
big=$(toplevel big) || fail "build big"
mapfile -t big_cl < <(host_exec ft-dep nix-store -qR "$big")
old=$(tprofile $T); n=$(nact $T)
v0=$(nvalid $T "${big_cl[@]}")
viaproxy switch big > /dev/null 2> "$work/e" &
pid=$!
cut=0
for _ in $(seq 1 400); do
	v=$(nvalid $T "${big_cl[@]}")
	if [ "$v" -gt "$v0" ] && [ "$v" -lt "${#big_cl[@]}" ]; then
		host_delay_proxy_stop $T $port
		cut=1
		break
	fi
	kill -0 $pid 2> /dev/null || break
	sleep 0.05
done
wait $pid; rc=$?
if [ "$cut" = 1 ]; then
	ok "copy cut after $((v - v0)) of $((${#big_cl[@]} - v0)) paths"
else
	fail "copy cut in the middle (rc $rc)" "$(cat "$work/e")"
fi
assert_ne "cut during the copy: fails" 0 "$rc"
one_error "cut during the copy" "$work/e" "crdeploy@127\.0\.0\.1: connection lost"
quiet_host $T
check_fails "cut during the copy: system not registered" host_exec $T nix-store --check-validity "$big"
consistent "cut during the copy" $T "$old" "$old"
assert_eq "cut during the copy: nothing activated" "$n" "$(nact $T)"

# During nix-env --set.
proxy_up 0
salt cut-profile
rm -f "$TV/nix-env-started"; : > "$TV/slow-nix-env"
old=$(tprofile $T); new=$(next_gen $T); n=$(nact $T)
viaproxy switch beta > /dev/null 2> "$work/e" &
pid=$!
for _ in $(seq 1 200); do [ -e "$TV/nix-env-started" ] && break; sleep 0.05; done
[ -e "$TV/nix-env-started" ] && ok "nix-env --set started" || fail "nix-env --set started" "$(cat "$work/e")"
host_delay_proxy_stop $T $port
wait $pid; rc=$?
rm -f "$TV/slow-nix-env"
assert_ne "cut during nix-env --set: fails" 0 "$rc"
one_error "cut during nix-env --set" "$work/e" "crdeploy@127\.0\.0\.1: connection lost"
quiet_host $T
consistent "cut during nix-env --set" $T "$old" "$new"
assert_eq "cut during nix-env --set: nothing activated" "$n" "$(nact $T)"

# During activation, without magic rollback (with it: t_safe.sh).
proxy_up 0
salt cut-activate
old=$(tprofile $T); new=$(next_gen $T); n=$(nact $T)
viaproxy switch slow --no-magic-rollback > /dev/null 2> "$work/e" &
pid=$!
for _ in $(seq 1 200); do [ "$(nact $T)" -gt "$n" ] && break; sleep 0.05; done
sleep 0.5
host_delay_proxy_stop $T $port
wait $pid; rc=$?
assert_ne "cut during activation: fails" 0 "$rc"
one_error "cut during activation" "$work/e" "crdeploy@127\.0\.0\.1: connection lost"
quiet_host $T
consistent "cut during activation" $T "$new" "$new"
assert_match "cut during activation: the new system was being activated" "$(host_activations $T | tail -n 1)" "nixos-system-slow.* switch "

# --- signals in each phase ------------------------------------------------------------------
# SIGINT goes to crebuild's process group (Ctrl-C: nix gets it too), SIGTERM
# to crebuild alone (kill, CI timeouts), which passes it on.
# sig_run SIG WHEN CRE-ARGS...: start crebuild in its own session, wait for
# WHEN (a command) to succeed, send SIG; sets rc.
sig_run() {
	local sig=$1 when=$2 i p=
	shift 2
	host_exec ft-dep setsid env ${SIG_SSHOPTS:+NIX_SSHOPTS="$SIG_SSHOPTS"} "$CREBUILD" "$@" \
		> /dev/null 2> "$work/sig.err" &
	sig_n=$((${sig_n:-0} + 1))
	local bg=$!
	for i in $(seq 1 400); do
		p=$(pgrep -f "^$CREBUILD switch --flake path:$flake_re")
		eval "$when" && break
		kill -0 $bg 2> /dev/null || break
		sleep 0.05
	done
	if [ -n "$p" ]; then
		if [ "$sig" = INT ]; then kill -INT -- "-$p"; else kill -TERM "$p"; fi
	fi
	wait $bg
	rc=$?
	cp "$work/sig.err" "$work/sig-$sig_n-$sig.err"
}
flake_re=$(sed 's/[.[\*^$]/\\&/g' <<< "$flake")
want_rc() { [ "$1" = INT ] && echo 130 || echo 143; }
building() { pgrep -f 'sleep 8; mkdir -p' > /dev/null; }
copying() {
	local v
	v=$(nvalid $T "${big_cl[@]}")
	[ "$v" -gt "$v0" ] && [ "$v" -lt "${#big_cl[@]}" ]
}
in_nix_env() { [ -e "$TV/nix-env-started" ]; }
activating() { [ "$(nact $T)" -gt "$n" ]; }

for sig in INT TERM; do
	want=$(want_rc $sig)
	# eval/build: before anything reaches the target
	old=$(tprofile $T); n=$(nact $T)
	salt "sig-build-$sig"
	sig_run $sig building switch --flake "path:$flake#slowbuild" --target-host crdeploy@$T --sudo
	assert_eq "SIG$sig during the build: exit $want" "$want" "$rc"
	check_fails "SIG$sig during the build: no build left running" pgrep -f 'sleep 8; mkdir -p'
	consistent "SIG$sig during the build" $T "$old" "$old"
	assert_eq "SIG$sig during the build: nothing activated" "$n" "$(nact $T)"

	# copy
	proxy_up 100
	salt "sig-copy-$sig"
	big=$(toplevel big) || fail "build big"
	mapfile -t big_cl < <(host_exec ft-dep nix-store -qR "$big")
	v0=$(nvalid $T "${big_cl[@]}")
	SIG_SSHOPTS="-p $port" sig_run $sig copying switch --flake "path:$flake#big" \
		--target-host crdeploy@127.0.0.1 --sudo
	assert_eq "SIG$sig during the copy: exit $want" "$want" "$rc"
	quiet_host $T
	check_fails "SIG$sig during the copy: system not registered" host_exec $T nix-store --check-validity "$big"
	consistent "SIG$sig during the copy" $T "$old" "$old"
	assert_eq "SIG$sig during the copy: nothing activated" "$n" "$(nact $T)"
	host_delay_proxy_stop $T $port

	# profile: not interruptible; undone once set
	salt "sig-profile-$sig"
	rm -f "$TV/nix-env-started"; : > "$TV/slow-nix-env"
	sig_run $sig in_nix_env switch --flake "path:$flake#beta" --target-host crdeploy@$T --sudo
	rm -f "$TV/slow-nix-env"
	assert_eq "SIG$sig during nix-env --set: exit $want" "$want" "$rc"
	quiet_host $T
	consistent "SIG$sig during nix-env --set" $T "$old" "$old"
	assert_contains "SIG$sig during nix-env --set: says the profile was restored" "$(cat "$work/sig.err")" "restored"
	assert_eq "SIG$sig during nix-env --set: nothing activated" "$n" "$(nact $T)"

	# activation without magic rollback: it finishes or not, the profile
	# is the new generation
	salt "sig-activate-$sig"
	new=$(next_gen $T); n=$(nact $T)
	sig_run $sig activating switch --flake "path:$flake#slow" --target-host crdeploy@$T --sudo --no-magic-rollback
	assert_eq "SIG$sig during activation: exit $want" "$want" "$rc"
	quiet_host $T
	consistent "SIG$sig during activation" $T "$new" "$new"
done

# SIGTERM during a supervised activation (SIGINT: t_safe.sh): no
# confirmation, so the target rolls itself back.
old=$(tprofile $T); n=$(nact $T)
salt "sig-supervised"
sig_run TERM activating switch --flake "path:$flake#slow" --target-host crdeploy@$T --sudo --confirm-timeout 3
assert_eq "SIGTERM during a supervised activation: exit 143" 143 "$rc"
for _ in $(seq 1 60); do [ "$(tprofile $T)" = "$old" ] && break; sleep 0.5; done
consistent "SIGTERM during a supervised activation (rolled back)" $T "$old" "$old"

done_testing

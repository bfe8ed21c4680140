#!/bin/bash
# t_copy.sh: the closure copy engine (serve protocol over crebuild's ssh)
# against real throwaway hosts: cold and partial copies, --use-substitutes,
# an untrusted deploy user with and without elevation, a connection cut in
# the middle of a copy and the rerun, a build host relayed to a target, and
# the memory of a copy with large files.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib/host.sh"
. "$here/lib/assert.sh"
trap cr_cleanup EXIT

deployer_up cp-deployer || { fail "deployer up"; exit 1; }
host_up cp-t1 --ssh || { fail "cp-t1 up"; exit 1; }
work=$CR_TEST_ROOT/work
mkdir -p "$work"
cd "$work" || exit 1

# A flake with bigger systems than the standard test flake: "small" has 120
# packages of 4 KiB, "big" adds two 48 MiB ones (random, so nothing can be
# deduplicated or compressed away).
cflake=$(flake_copy "$CR_TEST_ROOT/copyflake")
cat > "$cflake/flake.nix" << 'EOF'
{
  outputs = { self }:
    let
      salt = if builtins.pathExists ./salt then builtins.readFile ./salt else "";
      lib = import ./lib.nix { inherit salt; };
      blob = name: size: derivation {
        inherit name;
        system = "x86_64-linux";
        builder = "/bin/sh";
        PATH = "/usr/bin:/bin";
        args = [ "-c" ''
          set -e
          mkdir -p "$out/bin" "$out/share/empty"
          printf '#!/bin/sh\necho ${name}\n' > "$out/bin/${name}"
          chmod 0555 "$out/bin/${name}"
          head -c ${toString size} /dev/urandom > "$out/share/data"
          ln -s ../bin/${name} "$out/share/link"
        '' ];
      };
      small = builtins.genList (i: blob "small${toString i}" 4096) 120;
      large = [ (blob "large0" (48 * 1048576)) (blob "large1" (48 * 1048576)) ];
      mk = name: pkgs: lib.mkSystem { inherit name pkgs; };
    in {
      nixosConfigurations = {
        small = mk "small" small;
        big = mk "big" (small ++ large);
      };
    };
}
EOF

cr() { host_exec cp-deployer "$CREBUILD" "$@"; }
on() { local h=$1; shift; host_exec "$h" "$@"; }
toplevel() { host_build cp-deployer "$(flake_toplevel_ref "$cflake" "$1")"; }
# closure PATH: the deployer's closure of PATH, one per line.
closure() { host_exec cp-deployer nix-store -qR "$1"; }
# nvalid HOST PATH...: how many of the paths are valid on HOST.
nvalid() {
	local h=$1
	shift
	local invalid
	invalid=$(on "$h" nix-store --check-validity --print-invalid "$@" 2> /dev/null | grep -c .)
	echo $(($# - invalid))
}
summary_re='copied ([0-9]+) paths, [0-9]+\.[0-9] MiB in [0-9]+\.[0-9] s; ([0-9]+) already present'

small=$(toplevel small) || { fail "build small"; exit 1; }
big=$(toplevel big) || { fail "build big"; exit 1; }
mapfile -t small_cl < <(closure "$small")
mapfile -t big_cl < <(closure "$big")
shared=$(comm -12 <(printf '%s\n' "${small_cl[@]}" | sort) <(printf '%s\n' "${big_cl[@]}" | sort) | grep -c .)
ok "built small (${#small_cl[@]} paths) and big (${#big_cl[@]} paths, $shared shared)"

# --- cold copy -----------------------------------------------------------------
err=$(cr switch --flake "path:$cflake#small" --target-host root@cp-t1 2>&1 >/dev/null); rc=$?
assert_eq "cold copy exits 0" 0 "$rc"
if [[ $err =~ $summary_re ]]; then
	assert_eq "cold copy: every path copied" "${#small_cl[@]}" "${BASH_REMATCH[1]}"
	assert_eq "cold copy: none present before" 0 "${BASH_REMATCH[2]}"
else
	fail "cold copy summary line" "$err"
fi
assert_eq "cold copy: whole closure valid on the target" "${#small_cl[@]}" "$(nvalid cp-t1 "${small_cl[@]}")"
check "cold copy: contents match their hashes" on cp-t1 nix-store --verify --check-contents
assert_eq "cold copy: same narHash" "$(host_exec cp-deployer nix-store -q --hash "$small")" \
	"$(on cp-t1 nix-store -q --hash "$small")"
assert_not_contains "no terminal control characters without a tty" "$err" $'\r'
assert_not_contains "no escape sequences without a tty" "$err" $'\033'

# --- partial copy: only what is missing --------------------------------------
# (-v: the metadata of the whole closure, fetched while the target was
# asked, is dropped once some paths turn out to be there; no warning)
err=$(cr switch --flake "path:$cflake#big" --target-host root@cp-t1 -v 2>&1 >/dev/null); rc=$?
assert_eq "partial copy exits 0" 0 "$rc"
assert_contains "partial copy: metadata fetched ahead dropped" "$err" \
	"$shared of ${#big_cl[@]} paths already on root@cp-t1: the metadata fetched ahead for all is dropped"
assert_not_contains "partial copy: no warning" "$err" "warning"
assert_not_contains "partial copy: no error" "$err" "error"
if [[ $err =~ $summary_re ]]; then
	assert_eq "partial copy: the missing paths copied" "$((${#big_cl[@]} - shared))" "${BASH_REMATCH[1]}"
	assert_eq "partial copy: shared paths already present" "$shared" "${BASH_REMATCH[2]}"
else
	fail "partial copy summary line" "$err"
fi
check "partial copy: contents match their hashes" on cp-t1 nix-store --verify --check-contents
err=$(cr switch --flake "path:$cflake#big" --target-host root@cp-t1 -v 2>&1 >/dev/null); rc=$?
assert_eq "redeploy exits 0" 0 "$rc"
assert_contains "redeploy: metadata fetched ahead dropped" "$err" "the metadata fetched ahead for all is dropped"
assert_not_contains "redeploy: no warning" "$err" "warning"
assert_contains "redeploy copies nothing" "$err" "copied 0 paths, 0.0 MiB in"
assert_contains "redeploy: all present" "$err" "; ${#big_cl[@]} already present"

# --- --use-substitutes: the target fetches from its own cache ---------------------
cache=$CR_TEST_ROOT/cache
check "cache filled" host_exec cp-deployer nix copy --to "file://$cache" "$small"
host_up cp-t2 --ssh --no-require-sigs --conf "substituters = file://$cache" ||
	{ fail "cp-t2 up"; exit 1; }
err=$(cr switch --flake "path:$cflake#small" --target-host root@cp-t2 -s 2>&1 >/dev/null); rc=$?
assert_eq "-s exits 0" 0 "$rc"
assert_contains "-s: the target substituted everything" "$err" "copied 0 paths"
assert_contains "-s: reported as present" "$err" "; ${#small_cl[@]} already present"
assert_eq "-s: closure valid on the target" "${#small_cl[@]}" "$(nvalid cp-t2 "${small_cl[@]}")"

# --- untrusted deploy user: refused without elevation, fine with it --------------
host_up cp-t3 --ssh || { fail "cp-t3 up"; exit 1; }
err=$(cr switch --flake "path:$cflake#small" --target-host crdeploy@cp-t3 2>&1 >/dev/null); rc=$?
assert_ne "untrusted user without elevation fails" 0 "$rc"
assert_contains "names the missing signature" "$err" "lacks a valid signature"
assert_eq "the failure is one error line" 1 "$(grep -c '^error:' <<< "$err")"
assert_eq "untrusted: nothing registered" 0 "$(nvalid cp-t3 "${small_cl[@]}")"
err=$(cr switch --flake "path:$cflake#small" --target-host crdeploy@cp-t3 --sudo 2>&1 >/dev/null); rc=$?
assert_eq "untrusted user with elevation exits 0" 0 "$rc"
assert_contains "elevated copy copies everything" "$err" "copied ${#small_cl[@]} paths"
check "elevated copy: contents match" on cp-t3 nix-store --verify --check-contents

# --- connection cut in the middle of a copy, then the rerun -----------------------
host_up cp-t4 --ssh || { fail "cp-t4 up"; exit 1; }
host_delay_proxy cp-t4 100 2371 > /dev/null || fail "delay proxy"
host_exec cp-deployer env NIX_SSHOPTS="-p 2371" "$CREBUILD" switch \
	--flake "path:$cflake#big" --target-host root@127.0.0.1 > /dev/null 2> "$work/cut.err" &
crpid=$!
cut=0
for _ in $(seq 1 600); do
	n=$(nvalid cp-t4 "${big_cl[@]}")
	if [ "$n" -gt 0 ] && [ "$n" -lt "${#big_cl[@]}" ]; then
		host_delay_proxy_stop cp-t4 2371
		cut=1
		break
	fi
	kill -0 "$crpid" 2> /dev/null || break
	sleep 0.05
done
wait "$crpid"
rc=$?
if [ "$cut" = 1 ]; then
	ok "connection cut after $n of ${#big_cl[@]} paths"
	assert_ne "cut copy exits non-zero" 0 "$rc"
	# One error line: the transport's, naming the host and the reason
	# (the copy adds none of its own for a lost connection).
	if [ "$(grep -c '^error:' "$work/cut.err")" = 1 ] &&
		grep -q "^error: root@127.0.0.1: connection lost" "$work/cut.err"; then
		ok "cut copy: one error line"
	else
		fail "cut copy: one error line" "$(cat "$work/cut.err")"
	fi
	check "cut copy: no partly registered path" on cp-t4 nix-store --verify --check-contents
	check_fails "cut copy: system not registered" on cp-t4 nix-store --check-validity "$big"
	before=$(nvalid cp-t4 "${big_cl[@]}")
	err=$(cr switch --flake "path:$cflake#big" --target-host root@cp-t4 2>&1 >/dev/null); rc=$?
	assert_eq "rerun exits 0" 0 "$rc"
	if [[ $err =~ $summary_re ]]; then
		assert_eq "rerun copies only what is missing" "$((${#big_cl[@]} - before))" "${BASH_REMATCH[1]}"
		assert_eq "rerun: the rest already present" "$before" "${BASH_REMATCH[2]}"
	else
		fail "rerun summary line" "$err"
	fi
	check "rerun: contents match" on cp-t4 nix-store --verify --check-contents
	assert_eq "rerun: closure valid" "${#big_cl[@]}" "$(nvalid cp-t4 "${big_cl[@]}")"
else
	fail "could not cut the connection mid-copy (rc $rc)" "$(cat "$work/cut.err")"
fi

# --- build host to target, relayed; memory stays flat -----------------------------
host_up cp-builder --ssh || { fail "cp-builder up"; exit 1; }
host_up cp-t5 --ssh || { fail "cp-t5 up"; exit 1; }
echo relay > "$cflake/salt"
# The build host cannot log in to the target by itself: crebuild relays.
host_exec cp-builder sh -c 'rm -f /root/.ssh/id_ed25519 /root/.ssh/id_ed25519.pub' 
host_exec cp-deployer /usr/bin/time -f 'maxrss %M' "$CREBUILD" switch --flake "path:$cflake#big" \
	--build-host root@cp-builder --target-host root@cp-t5 > "$work/relay.out" 2> "$work/relay.err"
rc=$?
assert_eq "build host -> target exits 0" 0 "$rc"
relayed=$(cat "$work/relay.out")
check "relayed system valid on the target" on cp-t5 nix-store --check-validity "$relayed"
check "relayed: contents match" on cp-t5 nix-store --verify --check-contents
check_fails "relayed: nothing stored on the deployer" host_exec cp-deployer nix-store --check-validity "$relayed"
assert_match "relayed: summary" "$(cat "$work/relay.err")" "copied [0-9]+ paths, 9[0-9]\.[0-9] MiB"
assert_contains "relayed: says why" "$(cat "$work/relay.err")" "relaying through this machine"
rss=$(sed -n 's/^maxrss //p' "$work/relay.err")
if [ "${CR_TEST_NO_RSS:-0}" = 1 ]; then
	ok "relaying 96 MiB of large files: peak RSS ${rss:-?} KiB (not checked: CR_TEST_NO_RSS)"
elif [ -n "$rss" ] && [ "$rss" -lt 32768 ]; then
	ok "relaying 96 MiB of large files: peak RSS (crebuild and children) ${rss} KiB < 32 MiB"
else
	fail "relaying 96 MiB of large files: peak RSS ${rss:-?} KiB" "$(cat "$work/relay.err")"
fi
# Local source with large files: same bound.
host_up cp-t6 --ssh || { fail "cp-t6 up"; exit 1; }
host_exec cp-deployer /usr/bin/time -f 'maxrss %M' "$CREBUILD" switch --flake "path:$cflake#big" \
	--target-host root@cp-t6 > /dev/null 2> "$work/local.err"
assert_eq "local big copy exits 0" 0 "$?"
rss=$(sed -n 's/^maxrss //p' "$work/local.err")
if [ "${CR_TEST_NO_RSS:-0}" = 1 ]; then
	ok "copying 96 MiB of large files: peak RSS ${rss:-?} KiB (not checked: CR_TEST_NO_RSS)"
elif [ -n "$rss" ] && [ "$rss" -lt 32768 ]; then
	ok "copying 96 MiB of large files: peak RSS (crebuild and children) ${rss} KiB < 32 MiB"
else
	fail "copying 96 MiB of large files: peak RSS ${rss:-?} KiB" "$(cat "$work/local.err")"
fi

# --- the live progress line: on a terminal only, not with --quiet -----------------
# (script(1) gives crebuild a pseudo-terminal; a new salt makes paths to copy.)
echo tty > "$cflake/salt"
out=$(host_exec cp-deployer script -qec "$CREBUILD switch --flake path:$cflake#big --target-host root@cp-t6" /dev/null 2>&1)
assert_contains "progress line drawn on a terminal" "$out" $'\rcopying: '
assert_match "progress line shows paths and MiB" "$out" 'copying: [0-9]+/[0-9]+ paths, [0-9.]+/[0-9.]+ MiB'
assert_contains "progress line erased before the summary" "$out" $'\r\033[Kcopied '
echo tty-quiet > "$cflake/salt"
out=$(host_exec cp-deployer script -qec "$CREBUILD switch --quiet --flake path:$cflake#big --target-host root@cp-t6" /dev/null 2>&1)
assert_not_contains "--quiet: no progress line" "$out" 'copying: '

done_testing

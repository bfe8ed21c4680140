#!/bin/bash
# Integration test runner (make integration).
#
#   tests/integration/run.sh [t_file.sh ...]      (or T="t_a.sh t_b" make integration)
#
# Runs every tests/integration/t_*.sh (or the selected ones) as root, each in
# its own $CR_TEST_ROOT with a timeout, tears all test hosts down after each
# file and prints "N passed, M failed" as the last line.
#
# Environment: CREBUILD (binary under test, default build/crebuild),
# T (selection), CR_TEST_TIMEOUT (seconds per file, default 300),
# CR_KEEP_ROOT=1 (keep the test root with logs for debugging).
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)

# Selection: arguments, else $T, else all.
sel=("$@")
if [ ${#sel[@]} -eq 0 ] && [ -n "${T:-}" ]; then
	read -r -a sel <<< "$T"
fi
files=()
if [ ${#sel[@]} -eq 0 ]; then
	for f in "$here"/t_*.sh; do [ -e "$f" ] && files+=("$f"); done
else
	for s in "${sel[@]}"; do
		s=${s##*/}
		s=${s%.sh}
		[[ "$s" == t_* ]] || s=t_$s
		if [ -f "$here/$s.sh" ]; then
			files+=("$here/$s.sh")
		else
			echo "run.sh: no such test file: $here/$s.sh" >&2
			echo "0 passed, 1 failed"
			exit 1
		fi
	done
fi

if [ "$(id -u)" != 0 ]; then
	echo "SKIP: integration tests need root (${#files[@]} test files skipped)"
	exit 0
fi

if [ -z "${CREBUILD:-}" ] && [ -x "$repo/build/crebuild" ]; then
	CREBUILD=$repo/build/crebuild
fi
export CREBUILD=${CREBUILD:-}

. "$here/lib/host.sh"

base=$(mktemp -d /tmp/crebuild-it.XXXXXX)
chmod 0755 "$base"
current_root=

cleanup() {
	if [ -n "$current_root" ]; then
		CR_TEST_ROOT=$current_root hosts_down_all
	fi
	if [ "${CR_KEEP_ROOT:-0}" = 1 ]; then
		echo "# test root kept: $base" >&2
	else
		rm -rf --one-file-system "$base"
	fi
}
trap cleanup EXIT
trap 'echo "run.sh: interrupted" >&2; exit 130' INT TERM

cr_reap_stale

passed=0
failed=0
timeout_s=${CR_TEST_TIMEOUT:-300}

for f in "${files[@]}"; do
	name=${f##*/}
	stem=${name%.sh}
	root=$base/$stem
	results=$base/$stem.results
	mkdir -p "$root"
	chmod 0755 "$root"
	: > "$results"
	current_root=$root
	echo "# ---- $name"
	start=$(date +%s)
	CR_TEST_ROOT=$root CR_TEST_RESULTS=$results \
		timeout --kill-after=15 "$timeout_s" bash "$f" < /dev/null
	rc=$?
	# Whatever the test left behind.
	CR_TEST_ROOT=$root hosts_down_all
	current_root=

	p=$(grep -c '^ok	' "$results")
	n=$(grep -c '^not ok	' "$results")
	elapsed=$(($(date +%s) - start))
	if [ "$rc" != 0 ] && [ "$n" = 0 ]; then
		if [ "$rc" = 124 ] || { [ "$rc" = 137 ] && [ "$elapsed" -ge "$timeout_s" ]; }; then
			why="timed out after ${timeout_s}s"
		elif [ "$rc" -gt 128 ]; then
			why="killed by signal $((rc - 128))"
		else
			why="exited with status $rc"
		fi
		echo "not ok - $name $why"
		n=1
	elif [ "$rc" = 0 ] && [ "$p" = 0 ] && [ "$n" = 0 ]; then
		echo "not ok - $name ran no test cases"
		n=1
	fi
	echo "# $name: $p passed, $n failed (${elapsed}s)"
	passed=$((passed + p))
	failed=$((failed + n))
done

# Nothing may survive a run.
left=$(pgrep -af '^crebuild-test-keeper:' | while read -r pid rest; do
	cwd=$(readlink "/proc/$pid/cwd" 2> /dev/null)
	case "$cwd" in "$base"/*) echo "$pid $rest" ;; esac
done)
if [ -n "$left" ]; then
	echo "not ok - test hosts left running: $left"
	failed=$((failed + 1))
fi

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]

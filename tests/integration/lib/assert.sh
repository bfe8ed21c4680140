# shellcheck shell=bash
# TAP-ish assertions for integration tests.  Source it, then:
#
#   ok "desc"                          a passing case
#   fail "desc" [details...]           a failing case (details to stderr)
#   check "desc" CMD...                ok if CMD exits 0, else fail
#   check_fails "desc" CMD...          ok if CMD exits non-zero, else fail
#   assert_eq "desc" EXPECTED ACTUAL [DETAIL...]   (details shown on failure)
#   assert_ne "desc" UNEXPECTED ACTUAL
#   assert_contains "desc" HAYSTACK NEEDLE
#   assert_not_contains "desc" HAYSTACK NEEDLE
#   assert_match "desc" STRING ERE
#   assert_file_contains "desc" FILE NEEDLE
#   assert_file_exists "desc" PATH     (-e; dangling symlinks count: -L)
#   done_testing                       prints the file summary; returns 1 if
#                                      anything failed (use as last command)
#
# Each case prints "ok N - desc" or "not ok N - desc".  Every result is also
# appended to $CR_TEST_RESULTS (one line "ok<TAB>desc" / "not ok<TAB>desc")
# if that variable is set; run.sh uses it for the totals.  All helpers
# return 0 for pass and 1 for fail, so `assert_eq ... || return` works.

CR_PASSED=0
CR_FAILED=0
CR_CASE_NO=0

cr__record() {
	local status=$1 desc=$2
	CR_CASE_NO=$((CR_CASE_NO + 1))
	desc=${desc//$'\n'/ }
	if [ "$status" = ok ]; then
		CR_PASSED=$((CR_PASSED + 1))
		printf 'ok %d - %s\n' "$CR_CASE_NO" "$desc"
	else
		CR_FAILED=$((CR_FAILED + 1))
		printf 'not ok %d - %s\n' "$CR_CASE_NO" "$desc"
	fi
	if [ -n "${CR_TEST_RESULTS:-}" ]; then
		printf '%s\t%s\n' "$status" "$desc" >> "$CR_TEST_RESULTS"
	fi
}

# Details of a failure, indented, on stderr (kept short).
cr__diag() {
	local line
	while IFS= read -r line; do
		printf '#   %s\n' "$line" >&2
	done < <(printf '%s\n' "$@" | head -n 40)
}

ok() { cr__record ok "$1"; return 0; }

fail() {
	local desc=$1
	shift
	cr__record "not ok" "$desc"
	[ $# -eq 0 ] || cr__diag "$@"
	return 1
}

check() {
	local desc=$1 out rc
	shift
	out=$("$@" 2>&1) && rc=0 || rc=$?
	if [ "$rc" = 0 ]; then ok "$desc"; else fail "$desc" "command failed ($rc): $*" "$out"; fi
}

check_fails() {
	local desc=$1 out rc
	shift
	out=$("$@" 2>&1) && rc=0 || rc=$?
	if [ "$rc" != 0 ]; then ok "$desc"; else fail "$desc" "command unexpectedly succeeded: $*" "$out"; fi
}

assert_eq() {
	local desc=$1 want=$2 got=$3
	shift 3
	if [ "$want" = "$got" ]; then ok "$desc"; else fail "$desc" "expected: $want" "actual:   $got" "$@"; fi
}

assert_ne() {
	if [ "$2" != "$3" ]; then ok "$1"; else fail "$1" "unexpected value: $3"; fi
}

assert_contains() {
	case "$2" in
	*"$3"*) ok "$1" ;;
	*) fail "$1" "expected to contain: $3" "actual: $2" ;;
	esac
}

assert_not_contains() {
	case "$2" in
	*"$3"*) fail "$1" "expected NOT to contain: $3" "actual: $2" ;;
	*) ok "$1" ;;
	esac
}

assert_match() {
	if [[ "$2" =~ $3 ]]; then ok "$1"; else fail "$1" "expected to match: $3" "actual: $2"; fi
}

assert_file_contains() {
	if [ ! -f "$2" ]; then
		fail "$1" "no such file: $2"
	elif grep -qF -- "$3" "$2"; then
		ok "$1"
	else
		fail "$1" "file $2 does not contain: $3" "--- content:" "$(head -n 20 "$2")"
	fi
}

assert_file_exists() {
	if [ -e "$2" ] || [ -L "$2" ]; then ok "$1"; else fail "$1" "no such file: $2"; fi
}

done_testing() {
	printf '# %s: %d passed, %d failed\n' "${0##*/}" "$CR_PASSED" "$CR_FAILED"
	[ "$CR_FAILED" = 0 ]
}

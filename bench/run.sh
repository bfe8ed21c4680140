#!/bin/bash
# bench/run.sh: crebuild against nixos-rebuild's way of deploying (OpenSSH +
# nix-copy-closure + ssh), on the same throwaway hosts, in one run; prints a
# table of medians and ratios (also written to bench/results.txt).
# `make bench` runs it.  Needs root (tests/integration/lib/host.sh hosts).
#
# Scenarios (issue 4, "Performance"):
#   1  cold deploy of an N1-path closure (4 KiB leaves) through an RTT1 ms
#      link (user-space delay proxy), crebuild vs the nixos-rebuild-ng
#      sequence (bench/ngemu.sh); floor = the target's own
#      `nix-store --import` of the same closure.  Goal <= 0.1x.
#   2  cold deploy of N2 paths through RTT2 ms: crebuild vs that floor.
#      Goal <= 1.5 x floor + eval + connect.  nix-copy-closure is run once on
#      an NSUB-path closure and extrapolated (BENCH_NCC_FULL=1: the real thing).
#   3  BIG_COUNT x BIG_MIB MiB of random data over the plain link: crebuild's
#      copy vs `ssh root@IP 'cat >/dev/null' < same bytes`.  Goal speed >= 0.9x.
#   4  redeploy of the unchanged N1 system through RTT1: crebuild vs the ng
#      sequence.  Goal <= 0.35x.
#   RSS: crebuild's own peak RSS in every row.  Goal <= 32 MiB.
#
# Each measurement is repeated BENCH_REPS times (default 3), interleaved
# (crebuild, alternative, floor, crebuild, ...), every cold run on a freshly
# created target; the table shows medians.
#
# Environment (defaults): BENCH_REPS=3 BENCH_N1=1000 BENCH_RTT1=20
#   BENCH_N2=10000 BENCH_RTT2=50 BENCH_NSUB=2000 BENCH_NCC_FULL=0
#   BENCH_BIG_COUNT=4 BENCH_BIG_MIB=128 BENCH_SCENARIOS="1 2 3 4"
#   BENCH_KEEP=0 (1: keep the hosts' directory) CREBUILD=<repo>/build/crebuild
#   BENCH_TMPFS=1 (0: host stores on disk) BENCH_TARGET_BASHRC=empty (keep)
#   BENCH_RESULTS=<repo>/bench/results.txt
set -uo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
bench=$repo/bench
CREBUILD=${CREBUILD:-$repo/build/crebuild}
[ -x "$CREBUILD" ] || CREBUILD=$repo/crebuild
REPS=${BENCH_REPS:-3}
N1=${BENCH_N1:-1000}
RTT1=${BENCH_RTT1:-20}
N2=${BENCH_N2:-10000}
RTT2=${BENCH_RTT2:-50}
NSUB=${BENCH_NSUB:-2000}
NCC_FULL=${BENCH_NCC_FULL:-0}
BIGN=${BENCH_BIG_COUNT:-4}
BIGMIB=${BENCH_BIG_MIB:-128}
SCEN=${BENCH_SCENARIOS:-1 2 3 4}
RESULTS=${BENCH_RESULTS:-$bench/results.txt}

DEP=bn-dep # the deployer: crebuild, nix-copy-closure and ssh run here
TGT=bn-tgt # the target, recreated for every cold run

if [ "$(id -u)" != 0 ]; then
	echo "bench: needs root (throwaway hosts in namespaces, see tests/integration/README.md)" >&2
	exit 1
fi
[ -x "$CREBUILD" ] || { echo "bench: no crebuild binary (run make)" >&2; exit 1; }
for t in cc nix-copy-closure ssh python3 awk; do
	command -v "$t" > /dev/null || { echo "bench: $t missing (run .ci/install-deps)" >&2; exit 1; }
done
if [ "$N1" -lt 3 ] || [ "$N2" -lt 3 ] || [ "$NSUB" -lt 3 ]; then
	echo "bench: closures need at least 3 paths" >&2
	exit 1
fi

CR_TEST_ROOT=$(mktemp -d /tmp/crebuild-bench.XXXXXX)
export CR_TEST_ROOT
# The hosts' stores live on a tmpfs unless BENCH_TMPFS=0.  On this VM's disk
# (ext4, online discard) creating thousands of store paths shortly after a
# previous target's store was deleted gets slower run after run (perf: ext4
# find_inode_bit -> recently_deleted), which buries the tools' differences
# in drift; a tmpfs makes the floor the target's CPU cost of registering.
STORE_FS=disk
avail_mib=$(awk '/^MemAvailable:/ { print int($2 / 1024) }' /proc/meminfo)
if [ "${BENCH_TMPFS:-1}" = 1 ]; then
	if [ "$avail_mib" -ge $((BIGN * BIGMIB * 3 + 4096)) ] &&
		mount -t tmpfs -o mode=0755 crebuild-bench "$CR_TEST_ROOT"; then
		STORE_FS=tmpfs
	else
		echo "bench: not enough memory for a tmpfs ($avail_mib MiB available): hosts on disk" >&2
	fi
fi
. "$repo/tests/integration/lib/host.sh"
bench_exit() {
	hosts_down_all
	if [ "${BENCH_KEEP:-0}" = 1 ]; then
		echo "bench: kept $CR_TEST_ROOT ($STORE_FS)" >&2
		return
	fi
	if [ "$STORE_FS" = tmpfs ]; then
		umount "$CR_TEST_ROOT" || umount -l "$CR_TEST_ROOT"
		rmdir "$CR_TEST_ROOT"
	else
		rm -rf --one-file-system "$CR_TEST_ROOT"
	fi
}
trap bench_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

W=$CR_TEST_ROOT/work # shared with the hosts (/tmp is not per host)
LOGS=$W/logs
mkdir -p "$LOGS"
chmod 0755 "$W"
T0=$(date +%s)

say() { printf '[%4ds] %s\n' $(($(date +%s) - T0)) "$*" >&2; }
die() { say "FATAL: $*"; exit 1; }

# --------------------------------------------------------------------------
# Small helpers

# median V...: median of numbers (empty if none).
median() {
	[ $# -gt 0 ] || return 0
	printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
		if (NR % 2) printf "%.3f", v[(NR + 1) / 2]; else printf "%.3f", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
# paired A B: median over rounds of A[i]/B[i] (the rounds are interleaved,
# so a slow phase of the machine hits both sides of a pair); falls back to
# median(A)/median(B) if a run failed and the arrays do not pair up.
paired() {
	local -n pa=$1 pb=$2
	local i ratios=()
	if [ ${#pa[@]} -ne ${#pb[@]} ]; then
		calc "$(median "${pa[@]}") / $(median "${pb[@]}")"
		return
	fi
	for i in "${!pa[@]}"; do ratios+=("$(calc "${pa[$i]} / ${pb[$i]}")"); done
	median "${ratios[@]}"
}
maxof() { printf '%s\n' "$@" | sort -g | tail -n 1; }
calc() { awk "BEGIN { printf \"%.3f\", $* }"; }
# field NAME LINE: value of NAME=... in a peakrss result line.
field() { sed -n "s/.*\\b$1=\\([^ ]*\\).*/\\1/p" <<< "$2"; }

free_port() {
	local p
	for p in $(shuf -i 20000-29999 -n 50); do
		ss -Hltn "sport = :$p" | grep -q . || { echo "$p"; return 0; }
	done
	return 1
}

# fresh_target [RTT_MS]: a new empty target host; with RTT_MS, also a delay
# proxy.  Sets THOST (ssh destination) and TOPTS (NIX_SSHOPTS) for it.
HOSTUP_TIMES=()
fresh_target() {
	local t0 t1 port
	t0=$(date +%s.%N)
	host_down "$TGT"
	host_up "$TGT" --ssh || die "host_up $TGT failed"
	target_bashrc
	if [ -n "${1:-}" ]; then
		port=$(free_port) || die "no free port"
		host_delay_proxy "$TGT" "$1" "$port" || die "delay proxy failed"
		THOST=root@127.0.0.1
		TOPTS="-p $port"
	else
		THOST=root@$(host_ip "$TGT")
		TOPTS=
	fi
	# The root fs is ext4 with online discard: deleting the last target's
	# store costs I/O that would land in the next measurement.  Settle it.
	sync
	t1=$(date +%s.%N)
	HOSTUP_TIMES+=("$(calc "$t1 - $t0")")
}

# target_bashrc: the hosts share the real /root, and Debian's bash sources
# ~/.bashrc for every command run by sshd.  A heavy root .bashrc (pyenv init
# on the machine this was written on: ~0.15 s) would add that much to every
# remote command of both tools; a NixOS target has none.  So, unless
# BENCH_TARGET_BASHRC=keep, the target sees an empty /root/.bashrc (a bind
# mount inside the target's own mount namespace; the real file is untouched).
target_bashrc() {
	[ "${BENCH_TARGET_BASHRC:-empty}" != keep ] && [ -f /root/.bashrc ] || return 0
	: > "$W/empty-bashrc"
	host_exec "$TGT" mount --bind "$W/empty-bashrc" /root/.bashrc || die "cannot hide /root/.bashrc in $TGT"
}

# measure LOG CMD...: run CMD in the deployer under peakrss; sets RES (the
# peakrss line: wall= self_kib= tree_kib= rc=) and returns CMD's status.
measure() {
	local log=$1 res=$W/res.$$
	shift
	rm -f "$res"
	host_exec "$DEP" "$W/peakrss" "$res" "$@" > "$log" 2>&1 < /dev/null
	local rc=$?
	RES=$(cat "$res" 2> /dev/null)
	return $rc
}

FAILURES=()
failed() {
	FAILURES+=("$1")
	say "FAILED: $1"
	say "  log: $2"
	sed 's/^/    | /' "$2" | tail -n 15 >&2
}

# crebuild CONFIG LABEL: deploy CONFIG to the target with crebuild.  Appends
# to CR_WALL, CR_SELF, CR_TREE, CR_COPY (seconds of its copy, from its events),
# CR_COPIED, and the phases of its --events.
CR_WALL=() CR_SELF=() CR_TREE=() CR_COPY=() CR_COPIED=()
CR_PH_BUILD=() CR_PH_COPY=() CR_PH_PROFILE=() CR_PH_ACTIVATE=() CR_PH_OTHER=()
cr_reset() {
	CR_WALL=() CR_SELF=() CR_TREE=() CR_CPU=() CR_COPY=() CR_COPIED=()
	CR_PH_BUILD=() CR_PH_COPY=() CR_PH_PROFILE=() CR_PH_ACTIVATE=() CR_PH_OTHER=()
}
# phase EVENTSFILE NAME: seconds of phase NAME (from crebuild --events).
phase() {
	grep '"type":"phase-end"' "$1" | grep "\"phase\":\"$2\"" |
		sed -n 's/.*"seconds":\([0-9.e+-]*\).*/\1/p' | awk '{ s += $1 } END { printf "%.3f", s }'
}
# crebuild_phases: "build X, copy Y, profile Z, activate W, rest V" (medians)
crebuild_phases() {
	printf 'build %s, copy %s, profile %s, activate %s, rest (connect, remote checks, start-up) %s' \
		"$(median "${CR_PH_BUILD[@]}")" "$(median "${CR_PH_COPY[@]}")" "$(median "${CR_PH_PROFILE[@]}")" \
		"$(median "${CR_PH_ACTIVATE[@]}")" "$(median "${CR_PH_OTHER[@]}")"
}
run_crebuild() {
	local cfg=$1 label=$2 log ev
	log=$LOGS/$label.log
	ev=$LOGS/$label.events
	if ! measure "$log" env NIX_SSHOPTS="$TOPTS" "$CREBUILD" switch --flake "path:$FLAKE#$cfg" \
		--target-host "$THOST" --no-magic-rollback --no-progress --events "$ev"; then
		failed "$label: NIX_SSHOPTS='$TOPTS' crebuild switch --flake path:$FLAKE#$cfg --target-host $THOST --no-magic-rollback --no-progress" "$log"
		return 1
	fi
	CR_WALL+=("$(field wall "$RES")")
	CR_SELF+=("$(field self_kib "$RES")")
	CR_TREE+=("$(field tree_kib "$RES")")
	CR_CPU+=("$(field cpu "$RES")")
	local s
	s=$(grep -o 'copied [0-9]* paths, [0-9.]* MiB in [0-9.]* s' "$log" | tail -n 1)
	CR_COPIED+=("$(awk '{ print $2 }' <<< "$s")")
	# The copy's own clock (events, ms resolution; the summary line has 0.1 s).
	CR_COPY+=("$(grep '"type":"copy-stats"' "$ev" | sed -n 's/.*"seconds":\([0-9.e+-]*\).*/\1/p' | tail -n 1)")
	local b c p a
	b=$(phase "$ev" build) c=$(phase "$ev" copy) p=$(phase "$ev" profile) a=$(phase "$ev" activate)
	CR_PH_BUILD+=("$b") CR_PH_COPY+=("$c") CR_PH_PROFILE+=("$p") CR_PH_ACTIVATE+=("$a")
	CR_PH_OTHER+=("$(calc "$(field wall "$RES") - $b - $c - $p - $a")")
	say "  crebuild $cfg: $(field wall "$RES") s (${s:-no summary line}), peak RSS $(field self_kib "$RES") KiB"
}

# run_ng CONFIG LABEL: the same deploy the nixos-rebuild-ng way.  Appends to
# NG_WALL, NG_BUILD, NG_COPY, NG_REST.
NG_WALL=() NG_BUILD=() NG_COPY=() NG_REST=()
ng_reset() { NG_WALL=() NG_BUILD=() NG_COPY=() NG_REST=(); }
run_ng() {
	local cfg=$1 label=$2 log steps
	log=$LOGS/$label.log
	steps=$W/steps.$$
	rm -f "$steps"
	if ! measure "$log" env NIX_SSHOPTS="$TOPTS" bash "$bench/ngemu.sh" \
		"$(toplevel_ref "$cfg")" "$THOST" "$steps"; then
		failed "$label: NIX_SSHOPTS='$TOPTS' bench/ngemu.sh $(toplevel_ref "$cfg") $THOST" "$log"
		return 1
	fi
	local st
	st=$(cat "$steps")
	NG_WALL+=("$(field wall "$RES")")
	NG_BUILD+=("$(field build "$st")")
	NG_COPY+=("$(field copy "$st")")
	NG_REST+=("$(field rest "$st")")
	say "  nixos-rebuild-ng way $cfg: $(field wall "$RES") s (build $(field build "$st"), nix-copy-closure $(field copy "$st"), ssh steps $(field rest "$st"))"
}

# run_floor CONFIG: a fresh target imports the export of CONFIG's closure
# itself.  Appends to FLOOR.
FLOOR=()
run_floor() {
	local cfg=$1 t0 t1
	fresh_target
	t0=$(date +%s.%N)
	if ! host_exec "$TGT" nix-store --import < "$W/$cfg.export" > "$LOGS/floor-$cfg.log" 2>&1; then
		failed "floor $cfg: nix-store --import < $cfg.export" "$LOGS/floor-$cfg.log"
		return 1
	fi
	t1=$(date +%s.%N)
	FLOOR+=("$(calc "$t1 - $t0")")
	say "  floor $cfg (target's nix-store --import): $(calc "$t1 - $t0") s"
}

# run_sshserve CONFIG: the ideal pipelined copy with OpenSSH: a fresh target
# takes the upload of CONFIG's closure as a serve stream made ahead
# (bench/serverec.py: AddToStoreNar requests back to back, nothing waited
# for) through `ssh HOST nix-store --serve --write` (same link as the
# scenario, crebuild's cipher).  The target does what it does for crebuild;
# the deployer only encrypts.  Appends to SI.
SI=()
run_sshserve() {
	local cfg=$1 rtt=${2:-} label=$3
	fresh_target "$rtt"
	if ! measure "$LOGS/$label.log" bash -c 'read -ra o <<< "$1"; ssh -c aes128-gcm@openssh.com "${o[@]}" "$2" "nix-store --serve --write > /dev/null" < "$3"' \
		sh "$TOPTS" "$THOST" "$W/$cfg.srv"; then
		failed "$label: ssh $TOPTS $THOST nix-store --serve --write < $cfg.srv" "$LOGS/$label.log"
		return 1
	fi
	if ! host_exec "$TGT" nix-store --check-validity "${TOP[$cfg]}" > /dev/null 2>> "$LOGS/$label.log"; then
		failed "$label: the serve stream did not make ${TOP[$cfg]} valid" "$LOGS/$label.log"
		return 1
	fi
	SI+=("$(field wall "$RES")")
	say "  ssh | nix-store --serve --write of $cfg: $(field wall "$RES") s"
}

toplevel_ref() { printf 'path:%s#nixosConfigurations.%s.config.system.build.toplevel\n' "$FLAKE" "$1"; }

# --------------------------------------------------------------------------
# Set-up: deployer, flake, systems built once, exports for the floors.

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
BUSY=$(ps -eo pcpu=,comm= --sort=-pcpu | awk '$1 >= 20 { printf "%s%s (%d%% CPU)", n++ ? ", " : "", $2, $1 }')
[ -z "$BUSY" ] || say "WARNING: other processes use the CPU ($BUSY): expect noisy numbers"
say "crebuild benchmark: $CREBUILD ($("$CREBUILD" --version 2>&1 | head -n 1)); $(nproc) cores; $(nix --version)"
say "hosts in $CR_TEST_ROOT on $STORE_FS (deployer $DEP, target $TGT)"
cc -O2 -Wall -o "$W/peakrss" "$bench/peakrss.c" || die "cannot compile bench/peakrss.c"
# crebuild's transport alone (row 3): the integration tests' driver.
"$repo/tests/tools/build-sshrun.sh" "$W/sshrun" || die "cannot compile tests/tools/sshrun.c"
deployer_up "$DEP" || die "deployer_up $DEP failed"

FLAKE=$W/flake
cp -r "$bench/flake" "$FLAKE"
chmod -R u+w,go+rX "$FLAKE"
closures=("$N1")
case " $SCEN " in *" 2 "*) closures+=("$N2") ;; esac
case " $SCEN " in *" 2 "*) [ "$NCC_FULL" = 1 ] || closures+=("$NSUB") ;; esac
mapfile -t closures < <(printf '%s\n' "${closures[@]}" | sort -nu)
printf '{ closures = [ %s ]; bigCount = %s; bigMiB = %s; }\n' "${closures[*]}" "$BIGN" "$BIGMIB" > "$FLAKE/params.nix"

declare -A TOP NPATHS
build_system() {
	local cfg=$1 t0 json
	t0=$(date +%s)
	json=$(host_exec "$DEP" nix build --no-link --json "$(toplevel_ref "$cfg")" 2> "$LOGS/build-$cfg.log") ||
		{ cat "$LOGS/build-$cfg.log" >&2; die "cannot build $cfg"; }
	TOP[$cfg]=$(grep -o '"out":"[^"]*"' <<< "$json" | head -n 1 | cut -d'"' -f4)
	host_exec "$DEP" bash -c 'nix-store --export $(nix-store -qR "$1") > "$2"' sh "${TOP[$cfg]}" "$W/$cfg.export" ||
		die "cannot export the closure of $cfg"
	NPATHS[$cfg]=$(host_exec "$DEP" nix-store -qR "${TOP[$cfg]}" | grep -c .)
	host_exec "$DEP" bash -c 'nix --extra-experimental-features nix-command path-info --json $(nix-store -qR "$1") > "$2"' \
		sh "${TOP[$cfg]}" "$W/$cfg.json" && python3 "$bench/serverec.py" "$W/$cfg.export" "$W/$cfg.json" > "$W/$cfg.srv" ||
		die "cannot make the serve stream of $cfg"
	say "built $cfg: ${NPATHS[$cfg]} paths, export $(($(stat -c %s "$W/$cfg.export") / 1048576)) MiB ($(($(date +%s) - t0)) s)"
}
for n in "${closures[@]}"; do build_system "n$n"; done
case " $SCEN " in *" 3 "*) build_system big ;; esac

# What one ssh command costs on a fresh target, with root's real .bashrc and
# with the empty one (printed with the results).
ssh_true() {
	local i t=()
	for i in 1 2 3; do
		measure "$LOGS/ssh-true.log" ssh "$THOST" true || die "ssh $THOST true failed"
		t+=("$(field wall "$RES")")
	done
	median "${t[@]}"
}
BASHRC_COST=0
if [ "${BENCH_TARGET_BASHRC:-empty}" != keep ] && [ -f /root/.bashrc ]; then
	BENCH_TARGET_BASHRC=keep fresh_target
	with=$(ssh_true)
	target_bashrc
	without=$(ssh_true)
	BASHRC_COST=$(calc "$with - $without")
	say "ssh root@target true: $with s with root's .bashrc, $without s with an empty one"
fi

# eval_time CONFIG: median time of `nix build` of the already built system on
# the deployer (what both tools pay before copying).
eval_time() {
	local i t=()
	for i in $(seq "$REPS"); do
		measure "$LOGS/eval-$1.log" nix build --no-link --json "$(toplevel_ref "$1")" || die "eval $1"
		t+=("$(field wall "$RES")")
	done
	median "${t[@]}"
}

# Table rows: scenario | crebuild | alternative | ratio | goal | met | floor | RSS
ROWS=()
NOTES=()
row() { ROWS+=("$(printf '%s\t' "$@")"); }
verdict() { awk "BEGIN { exit !($1) }" && echo yes || echo NO; }
si_cell() { [ ${#SI[@]} -gt 0 ] && printf '%s s' "$(median "${SI[@]}")" || printf -- '-'; }
rss_cell() { printf '%.1f MiB (%.0f)' "$(calc "$(maxof "${CR_SELF[@]}") / 1024")" "$(calc "$(maxof "${CR_TREE[@]}") / 1024")"; }
ALL_SELF=()

# --------------------------------------------------------------------------
# Scenario 1: cold deploy, N1 paths, RTT1 (+ scenario 4 on the same system)

if [[ " $SCEN " == *" 1 "* || " $SCEN " == *" 4 "* ]]; then
	cfg=n$N1
	if [[ " $SCEN " == *" 1 "* ]]; then
		say "scenario 1: cold deploy of $cfg (${NPATHS[$cfg]} paths) through ${RTT1} ms RTT, $REPS runs each"
		cr_reset; ng_reset; FLOOR=() SI=()
		for i in $(seq "$REPS"); do
			fresh_target "$RTT1"; run_crebuild "$cfg" "s1-crebuild-$i"
			fresh_target "$RTT1"; run_ng "$cfg" "s1-ng-$i"
			run_floor "$cfg"
			run_sshserve "$cfg" "$RTT1" "s1-sshserve-$i"
		done
		if [ ${#CR_WALL[@]} -gt 0 ] && [ ${#NG_WALL[@]} -gt 0 ]; then
			c=$(median "${CR_WALL[@]}") a=$(median "${NG_WALL[@]}") f=$(median "${FLOOR[@]}")
			r=$(paired CR_WALL NG_WALL)
			row "1 cold ${NPATHS[$cfg]} paths, ${RTT1}ms" "$c s" "$a s" "${r}x" "<= 0.1x" \
				"$(verdict "$r <= 0.1")" "$f s" "$(si_cell)" "$(rss_cell)"
			NOTES+=("1: crebuild's copy step $(median "${CR_COPY[@]}") s of $c s; nixos-rebuild-ng way: nix build $(median "${NG_BUILD[@]}") s + nix-copy-closure $(median "${NG_COPY[@]}") s + 4 ssh commands $(median "${NG_REST[@]}") s; floor = fresh target's nix-store --import of the same ${NPATHS[$cfg]} paths")
			NOTES+=("1: crebuild phases (s): $(crebuild_phases)")
			NOTES+=("1: crebuild's copy step vs floor: $(paired CR_COPY FLOOR)x, vs ssh|serve: $(paired CR_COPY SI)x (the copy step includes the metadata queries, the serve channel, the query, transfer and registration)")
		else
			row "1 cold ${NPATHS[$cfg]} paths, ${RTT1}ms" "FAILED" "" "" "<= 0.1x" "NO" "" "" ""
		fi
		ALL_SELF+=("${CR_SELF[@]}")
	fi

	# Scenario 4: the target now has the system; deploy it again.
	if [[ " $SCEN " == *" 4 "* ]]; then
		say "scenario 4: redeploy of the unchanged $cfg through ${RTT1} ms RTT, $REPS runs each"
		fresh_target "$RTT1"
		cr_reset; ng_reset
		run_crebuild "$cfg" s4-first > /dev/null # the system arrives
		cr_reset
		LOGIN=()
		for i in $(seq "$REPS"); do
			run_crebuild "$cfg" "s4-crebuild-$i"
			run_ng "$cfg" "s4-ng-$i"
			# What any tool pays at least: one OpenSSH login + one command
			# through the same link (no ControlMaster to reuse).
			if measure "$LOGS/s4-login-$i.log" ssh -o ControlMaster=no -o ControlPath=none $TOPTS "$THOST" true; then
				LOGIN+=("$(field wall "$RES")")
			fi
		done
		if [ ${#CR_WALL[@]} -gt 0 ] && [ ${#NG_WALL[@]} -gt 0 ]; then
			c=$(median "${CR_WALL[@]}") a=$(median "${NG_WALL[@]}")
			r=$(paired CR_WALL NG_WALL)
			row "4 redeploy unchanged, ${RTT1}ms" "$c s" "$a s" "${r}x" "<= 0.35x" \
				"$(verdict "$r <= 0.35")" "-" "-" "$(rss_cell)"
			NOTES+=("4: crebuild phases (s): $(crebuild_phases)")
			lf=$(median "${LOGIN[@]}")
			[ -z "$lf" ] || NOTES+=("4: login floor: ssh $THOST true (one OpenSSH login + one command, same link) $lf s = $(calc "$lf / $a")x the alternative; the goal 0.35x is $(calc "0.35 * $a") s")
			NOTES+=("4: crebuild copied $(maxof "${CR_COPIED[@]}") paths (copy step $(median "${CR_COPY[@]}") s); ng way: nix build $(median "${NG_BUILD[@]}") s + nix-copy-closure $(median "${NG_COPY[@]}") s + ssh $(median "${NG_REST[@]}") s")
		else
			row "4 redeploy unchanged, ${RTT1}ms" "FAILED" "" "" "<= 0.35x" "NO" "-" "-" ""
		fi
		ALL_SELF+=("${CR_SELF[@]}")
	fi
fi

# --------------------------------------------------------------------------
# Scenario 2: cold deploy, N2 paths, RTT2

if [[ " $SCEN " == *" 2 "* ]]; then
	cfg=n$N2
	say "scenario 2: cold deploy of $cfg (${NPATHS[$cfg]} paths) through ${RTT2} ms RTT, $REPS runs each"
	cr_reset; FLOOR=() SI=()
	for i in $(seq "$REPS"); do
		fresh_target "$RTT2"; run_crebuild "$cfg" "s2-crebuild-$i"
		run_floor "$cfg"
		run_sshserve "$cfg" "$RTT2" "s2-sshserve-$i"
	done
	ev=$(eval_time "$cfg")
	# crebuild's connect + one remote command through the same link
	# (list-generations needs a system profile: give the target one).
	fresh_target "$RTT2"
	host_exec "$TGT" sh -c 'nix-env -p /nix/var/nix/profiles/system --set "$(nix-store --add "$1")"' sh \
		"$FLAKE/flake.nix" > /dev/null || die "cannot make a profile on $TGT"
	ct=()
	for i in $(seq "$REPS"); do
		if measure "$LOGS/s2-connect-$i.log" env NIX_SSHOPTS="$TOPTS" "$CREBUILD" list-generations --target-host "$THOST"; then
			ct+=("$(field wall "$RES")")
		else
			failed "crebuild list-generations --target-host $THOST (connect time)" "$LOGS/s2-connect-$i.log"
		fi
	done
	conn=$(median "${ct[@]}")
	say "  eval (nix build of the built $cfg) $ev s; crebuild connect + 1 command (list-generations) ${conn:-?} s"
	# The alternative: nix-copy-closure once (or on NSUB paths, extrapolated).
	if [ "$NCC_FULL" = 1 ]; then
		fresh_target "$RTT2"; ng_reset
		run_ng "$cfg" s2-ng && alt="$(median "${NG_WALL[@]}") s"
		altnote="measured once"
	else
		sub=n$NSUB
		fresh_target "$RTT2"; ng_reset
		if run_ng "$sub" s2-ng-sub; then
			# eval of the big system + per-path copy time scaled + the ssh steps.
			alt="~$(calc "$ev + ${NG_COPY[0]} * ${NPATHS[$cfg]} / ${NPATHS[$sub]} + ${NG_REST[0]}") s"
			altnote="extrapolated: nix-copy-closure of ${NPATHS[$sub]} paths took ${NG_COPY[0]} s (whole ng way ${NG_WALL[0]} s), scaled by ${NPATHS[$cfg]}/${NPATHS[$sub]}, + eval $ev s + ssh steps ${NG_REST[0]} s"
		else
			alt=FAILED altnote="nix-copy-closure of $sub failed"
		fi
	fi
	if [ ${#CR_WALL[@]} -gt 0 ] && [ ${#FLOOR[@]} -gt 0 ]; then
		c=$(median "${CR_WALL[@]}") f=$(median "${FLOOR[@]}")
		budget=$(calc "1.5 * $f + $ev + ${conn:-0}")
		r=$(paired CR_WALL FLOOR)
		BUDGETS=()
		for x in "${FLOOR[@]}"; do BUDGETS+=("$(calc "1.5 * $x + $ev + ${conn:-0}")"); done
		rb=$(paired CR_WALL BUDGETS)
		row "2 cold ${NPATHS[$cfg]} paths, ${RTT2}ms" "$c s" "$alt" "${r}x floor" \
			"<= 1.5x floor + eval + conn = $budget s" "$(verdict "$rb <= 1")" "$f s" "$(si_cell)" "$(rss_cell)"
		NOTES+=("2: alternative $altnote")
		NOTES+=("2: crebuild phases (s): $(crebuild_phases)")
		NOTES+=("2: crebuild / (1.5 x floor + eval + connect) of the same round: ${rb}x (median); crebuild's copy step $(median "${CR_COPY[@]}") s = $(paired CR_COPY FLOOR)x floor = $(paired CR_COPY SI)x ssh|serve; eval $ev s; connect+1 command ${conn:-?} s")
		case $alt in
		*s) NOTES+=("2: crebuild vs alternative: $(calc "$c / ${alt//[~ s]/}")x") ;;
		esac
	else
		row "2 cold ${NPATHS[$cfg]} paths, ${RTT2}ms" "FAILED" "$alt" "" "<= 1.5x floor + eval + conn" "NO" "" "" ""
	fi
	ALL_SELF+=("${CR_SELF[@]}")
fi

# --------------------------------------------------------------------------
# Scenario 3: a few large paths over the plain link

if [[ " $SCEN " == *" 3 "* ]]; then
	cfg=big
	bytes=$(stat -c %s "$W/big.export")
	mib=$(calc "$bytes / 1048576")
	say "scenario 3: $BIGN x $BIGMIB MiB over the plain link (no proxy), $REPS runs each"
	cat "$W/big.export" > /dev/null # page cache, for both
	host_exec "$DEP" bash -c 'nix-store -qR "$1" | while read -r p; do find "$p" -type f -exec cat {} +; done > /dev/null' \
		sh "${TOP[big]}"
	cr_reset; FLOOR=() SI=()
	SSH_T=() SSH_CPU=() TR_T=()
	for i in $(seq "$REPS"); do
		fresh_target
		run_crebuild "$cfg" "s3-crebuild-$i"
		if measure "$LOGS/s3-ssh-$i.log" bash -c 'ssh "$1" "cat > /dev/null" < "$2"' sh "$THOST" "$W/big.export"; then
			SSH_T+=("$(field wall "$RES")")
			SSH_CPU+=("$(field cpu "$RES")")
			say "  ssh cat >/dev/null of $mib MiB: $(field wall "$RES") s"
		else
			failed "ssh $THOST 'cat >/dev/null' < big.export" "$LOGS/s3-ssh-$i.log"
		fi
		run_floor "$cfg"
		run_sshserve "$cfg" "" "s3-sshserve-$i"
		if measure "$LOGS/s3-transport-$i.log" env NIX_SSHOPTS="$TOPTS" bash -c \
			'"$1" -b -S "$2" sh -c "cat > /dev/null" < "$3"' sh "$W/sshrun" "$THOST" "$W/big.export"; then
			TR_T+=("$(field wall "$RES")")
			say "  crebuild's transport alone, cat >/dev/null of $mib MiB: $(field wall "$RES") s"
		else
			failed "sshrun -S $THOST sh -c 'cat >/dev/null' < big.export" "$LOGS/s3-transport-$i.log"
		fi
	done
	cipher=$(host_exec "$DEP" ssh -v "$THOST" true 2>&1 | sed -n 's/.*kex: client->server cipher: \([^ ]*\).*/\1/p' | head -n 1)
	if [ ${#CR_COPY[@]} -gt 0 ] && [ ${#SSH_T[@]} -gt 0 ]; then
		c=$(median "${CR_COPY[@]}") a=$(median "${SSH_T[@]}") f=$(median "${FLOOR[@]}")
		r=$(paired CR_COPY SSH_T)
		row "3 ${BIGN}x${BIGMIB} MiB, plain link" "$c s" "$a s" "${r}x" "<= 1.11x (speed >= 0.9x)" \
			"$(verdict "$r <= 1/0.9")" "$f s" "$(si_cell)" "$(rss_cell)"
		NOTES+=("3: crebuild copy step $c s = $(calc "$mib / $c") MiB/s; ssh ($cipher) cat >/dev/null $(calc "$mib / $a") MiB/s; crebuild speed = $(calc "1 / $r")x ssh's (paired); whole crebuild switch $(median "${CR_WALL[@]}") s; floor = target's nix-store --import of the same closure from a file (hashing + writing $mib MiB; --import holds each NAR in memory, --serve does not)")
		[ ${#SI[@]} -gt 0 ] && NOTES+=("3: ssh|serve (the same upload made ahead, the deployer only encrypting) $(median "${SI[@]}") s = $(calc "$a / $(median "${SI[@]}")")x ssh cat's speed: a perfectly pipelined upload through OpenSSH into the same nix-store; crebuild's copy step = $(paired CR_COPY SI)x ssh|serve's time (paired)")
		[ ${#TR_T[@]} -eq ${#SSH_T[@]} ] && NOTES+=("3: crebuild's transport alone (tests/tools/sshrun: login, then the same $mib MiB into 'cat >/dev/null' through libssh, as crebuild sends them) $(median "${TR_T[@]}") s = $(calc "1 / $(paired TR_T SSH_T)")x ssh cat's speed (paired): what the transport's tuning reaches when the target does not import")
		NOTES+=("3: CPU on the deployer: crebuild $(median "${CR_CPU[@]}") s (with its nix children; it reads and SHA-256-hashes the $mib MiB it sends and encrypts them), ssh $(median "${SSH_CPU[@]}") s (encrypts only); the target's sshd and nix-store (decrypt, hash, write) share the same 2 cores")
	else
		row "3 ${BIGN}x${BIGMIB} MiB, plain link" "FAILED" "" "" "<= 1.11x" "NO" "" "" ""
	fi
	ALL_SELF+=("${CR_SELF[@]}")
fi

# --------------------------------------------------------------------------
# The table

if [ ${#ALL_SELF[@]} -gt 0 ]; then
	peak=$(maxof "${ALL_SELF[@]}")
	row "5 peak RSS of crebuild, all rows" "$(calc "$peak / 1024") MiB" "-" "-" "<= 32 MiB" \
		"$(verdict "$peak <= 32768")" "-" "-" "-"
fi

{
	echo
	echo "crebuild benchmark, $(date -u +%Y-%m-%dT%H:%MZ), $(git -C "$repo" rev-parse --short HEAD 2> /dev/null)$(git -C "$repo" diff --quiet HEAD -- src include 2> /dev/null || echo '+dirty'), $(nproc) cores, $(nix --version)"
	echo "times: median of $REPS runs (wall clock, crebuild/alternative started in the deployer host);"
	echo "ratio = median over the $REPS rounds of crebuild / alternative (row 2: / floor) measured in the same"
	echo "round (rounds interleave the tools, so drift of the machine hits both); lower is better. This is a"
	echo "$(nproc)-core machine shared by the deployer, the target, sshd and the delay proxy: single"
	echo "runs vary by 10% (tmpfs) to 50% (disk); the paired ratios vary much less."
	echo "alternative = nixos-rebuild-ng's commands (bench/ngemu.sh: nix build, nix-copy-closure, ssh with"
	echo "ControlMaster) for rows 1, 2, 4; ssh 'cat >/dev/null' for row 3. floor = the target's own"
	echo "nix-store --import of the same closure; ssh|serve = the same upload, made ahead as one serve"
	echo "stream (bench/serverec.py), through OpenSSH (aes128-gcm, as crebuild) into the target's"
	echo "nix-store --serve --write over the same link: what a perfectly pipelined copy costs on this"
	echo "machine with the target doing what it does for crebuild and the deployer doing nothing but ssh."
	echo "RSS = crebuild's own peak (in parentheses: with its children, e.g. nix build)."
	echo "host stores (/nix of deployer and target) on $STORE_FS$([ "$STORE_FS" = tmpfs ] && echo ' (BENCH_TMPFS=0: on disk)')."
	[ "${BENCH_TARGET_BASHRC:-empty}" = keep ] || echo "targets see an empty /root/.bashrc (BENCH_TARGET_BASHRC=keep: the real one, $BASHRC_COST s per ssh command)."
	echo "machine load: $LOAD_START at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end${BUSY:+; busy before the start: $BUSY}"
	echo
	{
		printf 'scenario\tcrebuild\talternative\tratio\tgoal\tmet\tfloor\tssh|serve\tcrebuild RSS (+children)\n'
		printf '%s\n' "${ROWS[@]}"
	} | column -t -s $'\t'
	echo
	printf '%s\n' "${NOTES[@]}"
	echo "fresh target (host_up + proxy): median $(median "${HOSTUP_TIMES[@]}") s each, ${#HOSTUP_TIMES[@]} times (not in any timing)"
	echo "total benchmark time: $(($(date +%s) - T0)) s"
	if [ ${#FAILURES[@]} -gt 0 ]; then
		echo
		echo "FAILURES:"
		printf '  %s\n' "${FAILURES[@]}"
	fi
} | tee "$RESULTS.tmp"
mv "$RESULTS.tmp" "$RESULTS"
if [ ${#FAILURES[@]} -gt 0 ]; then
	mkdir -p "$bench/logs"
	cp "$LOGS"/*.log "$bench/logs/" 2> /dev/null
	echo "logs of this run: $bench/logs/" >&2
	exit 1
fi
exit 0

#!/bin/sh
# Build the libFuzzer targets with clang (ASan+UBSan) into ${OUT:-build-fuzz}
# and, with "run [SECONDS]", run each for SECONDS (default 60) on its seed
# corpus in tests/fuzz/corpus/<target>.  A crash, a leak, a UBSan report or
# a timeout fails the run (exit status non-zero); the input that did it is
# left in $OUT/crash-* (or leak-*, timeout-*).  Only the given targets are
# built and run when FUZZ_TARGETS is set (e.g. FUZZ_TARGETS="cli diff").
set -eu
cd "$(dirname "$0")/../.."
OUT=${OUT:-build-fuzz}
ALL="nar narrt serve pathinfo cli flakeref sshopts sshconfig generations nixjson diff"
TARGETS=${FUZZ_TARGETS:-$ALL}
mkdir -p "$OUT"
CF="-std=c11 -D_GNU_SOURCE -Iinclude -DCR_VERSION=\"fuzz\" -g -O1 \
    -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all \
    $(pkg-config --cflags libcjson libcrypto)"
LIBS="$(pkg-config --libs libcjson libcrypto)"
objs=
for m in util log strbuf strvec hash nar serve pathinfo cli flakeref sshopts sshconfig proc \
    generations nixjson diff; do
    if [ ! "$OUT/$m.o" -nt "src/$m.c" ] || [ -n "$(find include -newer "$OUT/$m.o")" ]; then
        clang $CF -c -o "$OUT/$m.o" "src/$m.c"
    fi
    objs="$objs $OUT/$m.o"
done
rm -f "$OUT/libfuzzdeps.a"
ar rcs "$OUT/libfuzzdeps.a" $objs
for t in $TARGETS; do
    clang $CF -fsanitize=fuzzer -o "$OUT/fuzz_$t" "tests/fuzz/fuzz_$t.c" \
        "$OUT/libfuzzdeps.a" $LIBS
done
if [ "${1:-}" = run ]; then
    secs=${2:-60}
    for t in $TARGETS; do
        mkdir -p "$OUT/corpus-$t" "tests/fuzz/corpus/$t"
        echo "fuzz_$t: ${secs}s" >&2
        # The corpus in the tree is only read; what the run finds goes to
        # $OUT/corpus-$t (kept between runs).
        "$OUT/fuzz_$t" -max_total_time="$secs" -max_len=65536 -timeout=20 \
            -print_final_stats=1 -artifact_prefix="$OUT/" \
            "$OUT/corpus-$t" "tests/fuzz/corpus/$t" > "$OUT/fuzz_$t.log" 2>&1 || {
            tail -n 60 "$OUT/fuzz_$t.log" >&2
            echo "fuzz_$t: FAILED (log: $OUT/fuzz_$t.log)" >&2
            exit 1
        }
        grep -E '^stat::number_of_executed_units|^#[0-9]+.*DONE' "$OUT/fuzz_$t.log" | tail -n 2 | tr '\n' ' ' >&2
        echo >&2
    done
fi

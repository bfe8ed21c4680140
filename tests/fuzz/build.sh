#!/bin/sh
# Build the libFuzzer targets with clang (ASan+UBSan) into ${OUT:-build-fuzz}
# and, with "run [SECONDS]", run each for SECONDS (default 60) on its seed
# corpus in tests/fuzz/corpus/<target>.
set -eu
cd "$(dirname "$0")/../.."
OUT=${OUT:-build-fuzz}
mkdir -p "$OUT"
CF="-std=c11 -D_GNU_SOURCE -Iinclude -DCR_VERSION=\"fuzz\" -g -O1 \
    -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all \
    $(pkg-config --cflags libcjson libcrypto)"
LIBS="$(pkg-config --libs libcjson libcrypto)"
objs=
for m in util log strbuf strvec hash nar serve pathinfo; do
    clang $CF -c -o "$OUT/$m.o" "src/$m.c"
    objs="$objs $OUT/$m.o"
done
for t in nar serve pathinfo; do
    clang $CF -fsanitize=fuzzer -o "$OUT/fuzz_$t" "tests/fuzz/fuzz_$t.c" $objs $LIBS
done
if [ "${1:-}" = run ]; then
    for t in nar serve pathinfo; do
        mkdir -p "$OUT/corpus-$t"
        "$OUT/fuzz_$t" -max_total_time="${2:-60}" -max_len=65536 \
            "$OUT/corpus-$t" "tests/fuzz/corpus/$t"
    done
fi

#!/bin/sh
# build-sshrun.sh OUT [CFLAGS...]: build the transport test driver
# tests/tools/sshrun.c and the crebuild sources it uses into OUT, without
# the Makefile (the integration tests and make bench both use it).
set -eu
repo=$(cd "$(dirname "$0")/../.." && pwd)
out=$1
shift
src=$repo/src
# shellcheck disable=SC2046
exec cc -std=c11 -D_GNU_SOURCE -I"$repo/include" -O2 -g "$@" -o "$out" \
	"$repo/tests/tools/sshrun.c" \
	"$src/util.c" "$src/log.c" "$src/strbuf.c" "$src/strvec.c" "$src/shquote.c" \
	"$src/sshopts.c" "$src/sshconfig.c" "$src/ssh.c" "$src/host_remote.c" \
	"$src/host_local.c" "$src/proc.c" "$src/hash.c" \
	$(pkg-config --cflags --libs libssh libcrypto)

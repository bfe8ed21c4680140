#!/bin/bash
# ngemu.sh: what nixos-rebuild-ng (ng-C, see ../shared/reference/nixos-rebuild.md
# §3.4) runs for
#     nixos-rebuild switch --flake FLAKE#NAME --target-host HOST
# with a root HOST (no sudo) and no systemd on the target, step by step:
#   1. nix build --print-out-paths FLAKE#…toplevel --no-link   (Nix 2.8: --json)
#   2. NIX_SSHOPTS="<user opts> <defaults>" nix-copy-closure --to HOST P
#   3. ssh <user opts> <defaults> HOST -- test -f P/nixos-version
#   4. ssh … HOST -- nix-env -p /nix/var/nix/profiles/system --set P
#   5. ssh … HOST -- test -d /run/systemd/system       (false: no systemd-run)
#   6. ssh … HOST -- P/bin/switch-to-configuration switch
#   7. at exit: ssh -o ControlPath=<sock> -O exit dummyhost
# <defaults> = -o ControlMaster=auto -o ControlPath=<tmp>/ssh-%n -o ControlPersist=60;
# remote commands are wrapped in /bin/sh -c 'exec env -i PATH="${PATH-}" … "$@"' sh …
# with every word shell-quoted, as ng-C does.
#
#   ngemu.sh INSTALLABLE HOST [STEPLOG]      (user ssh options in NIX_SSHOPTS)
#
# STEPLOG gets "build=<s> copy=<s> rest=<s> path=<P>".  Part of bench/run.sh.
set -euo pipefail
inst=$1 host=$2 steplog=${3:-/dev/null}

now() { date +%s.%N; }
# Python's shlex.quote.
quote() {
	if [[ $1 =~ ^[A-Za-z0-9_@%+=:,./-]+$ ]]; then
		printf '%s' "$1"
	else
		printf "'%s'" "${1//\'/\'\"\'\"\'}"
	fi
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/nixos-rebuild.XXXXXXXXXX")
def=(-o ControlMaster=auto -o "ControlPath=$tmp/ssh-%n" -o ControlPersist=60)
read -ra user <<< "${NIX_SSHOPTS:-}"
cleanup() {
	local s
	for s in "$tmp"/ssh-*; do
		[ -e "$s" ] && ssh -o ControlPath="$s" -O exit dummyhost > /dev/null 2>&1
	done
	rm -rf "$tmp"
}
trap cleanup EXIT

# rssh ENVWORDS -- CMD...: a remote command as ng-C sends it.
rssh() {
	local envs=() w q=
	while [ "$1" != -- ]; do envs+=("$1"); shift; done
	shift
	for w in /bin/sh -c "exec env -i PATH=\"\${PATH-}\" ${envs[*]}${envs[*]:+ }\"\$@\"" sh "$@"; do
		q+="${q:+ }$(quote "$w")"
	done
	ssh "${user[@]}" "${def[@]}" "$host" -- "$q"
}

t0=$(now)
json=$(nix --extra-experimental-features 'nix-command flakes' build --no-link --json "$inst")
p=$(printf '%s\n' "$json" | grep -o '"out":"[^"]*"' | head -n 1 | sed 's/^"out":"//; s/"$//')
[ -n "$p" ] || { echo "ngemu: no output path in: $json" >&2; exit 1; }
t1=$(now)
NIX_SSHOPTS="${NIX_SSHOPTS:-}${NIX_SSHOPTS:+ }${def[*]}" nix-copy-closure --to "$host" "$p"
t2=$(now)
rssh -- test -f "$p/nixos-version"
rssh -- nix-env -p /nix/var/nix/profiles/system --set "$p"
if rssh -- test -d /run/systemd/system; then
	echo "ngemu: the target has systemd; this emulation covers only the direct path" >&2
	exit 1
fi
rssh 'LOCALE_ARCHIVE="${LOCALE_ARCHIVE-}"' 'NIXOS_NO_CHECK="${NIXOS_NO_CHECK-}"' NIXOS_INSTALL_BOOTLOADER=0 -- \
	"$p/bin/switch-to-configuration" switch
cleanup
trap - EXIT
t3=$(now)
awk -v a="$t0" -v b="$t1" -v c="$t2" -v d="$t3" -v p="$p" \
	'BEGIN { printf "build=%.3f copy=%.3f rest=%.3f path=%s\n", b - a, c - b, d - c, p }' >> "$steplog"

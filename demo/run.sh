#!/bin/bash
# demo/run.sh: from a fresh Debian 12 (as root) to a real remote deploy.
# Installs the build and test dependencies, builds crebuild, starts two
# throwaway machines (namespaces with their own /nix, nix-daemon and sshd; no
# VM, nothing of this machine's /nix is touched), then deploys the example
# flake from one to the other over SSH with
#   crebuild switch --flake ... --target-host crdeploy@target1 --sudo
# and shows what happened on the target.  Everything is removed at the end.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

if [ "$(id -u)" != 0 ]; then
    echo "demo: run as root (it creates network namespaces and users)" >&2
    exit 1
fi
"$top/.ci/install-deps"
make -j2 >/dev/null
export CREBUILD=$top/build/crebuild

. "$top/tests/integration/lib/host.sh"
CR_TEST_ROOT=$(mktemp -d /tmp/crebuild-demo.XXXXXX)
export CR_TEST_ROOT
trap cr_cleanup EXIT
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "starting a deployer and a target host (own /nix, nix-daemon, sshd)"
deployer_up deployer1 >/dev/null
host_up target1 --ssh --trust crdeploy >/dev/null
flake=$(flake_copy)
echo "target1 is crdeploy@$(host_ip target1); example flake in $flake"

say "crebuild switch --flake path:$flake#alpha --target-host crdeploy@target1 --sudo"
host_exec deployer1 "$CREBUILD" switch --flake "path:$flake#alpha" \
    --target-host crdeploy@target1 --sudo

say "the same again: nothing to copy"
host_exec deployer1 "$CREBUILD" switch --flake "path:$flake#alpha" \
    --target-host crdeploy@target1 --sudo

say "what switch-to-configuration was asked to do on target1"
host_activations target1

say "generations on target1 (crebuild list-generations --target-host)"
host_exec deployer1 "$CREBUILD" list-generations --target-host crdeploy@target1

say "demo done; the throwaway hosts are removed now"

#!/bin/bash
# The long-lived process of a test host (see host.sh).  host_up starts it as
#   [ip netns exec cr-NAME] unshare -m -u --propagation private keeper.sh DIR NAME
# so it owns a private mount namespace and UTS namespace (and, for ssh hosts,
# sits in the network namespace cr-NAME).  It bind-mounts the host's own
# directories over the real ones (list in DIR/mounts, "SRC DST" per line:
# /nix, /etc/nix, /etc/hosts, ~/.ssh of root and of the test users), mounts
# a /run of its own, sets the hostname, reports readiness and then sleeps forever.  Every other process of
# the host (nix-daemon, sshd, host_exec commands) joins these namespaces with
# nsenter -t <our pid>.
set -euo pipefail

dir=$1
name=$2

while read -r src dst; do
	[ -n "$src" ] || continue
	mount --bind "$src" "$dst"
done < "$dir/mounts"
# A /run of its own, as a machine has: /run/current-system (set by the fake
# switch-to-configuration) and /run/systemd/system (absent, unless a test
# makes one) belong to this host, not to the machine running the tests.
mount -t tmpfs -o mode=0755,size=16m "crrun-$name" /run
mkdir -p /run/sshd /run/lock /run/user
chmod 1777 /run/lock
hostname "$name"

# Sanity: we must not be looking at the real /nix any more.
[ -e /nix/.crebuild-test-host ] || { echo "keeper: /nix bind mount not effective" >&2; exit 1; }

echo "$$" > "$dir/keeper.pid"
readlink /proc/self/ns/mnt > "$dir/keeper.mntns"
: > "$dir/keeper.ready"
cd "$dir"
exec -a "crebuild-test-keeper:$name" sleep infinity

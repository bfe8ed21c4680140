# shellcheck shell=bash
# Throwaway "hosts" for crebuild integration tests -- no VMs, just namespaces.
#
# Source this file from a test (bash).  Needs root.  See
# tests/integration/README.md for the full description; summary:
#
#   host_up NAME [--ssh] [--trust USER]... [--no-require-sigs] [--conf LINE]...
#   deployer_up NAME [same options, no --ssh]
#   host_down NAME / hosts_down_all
#   host_exec NAME CMD...          run CMD inside the host (as root)
#   host_exec_as NAME USER CMD...  run CMD inside the host as USER
#   host_ssh NAME USER CMD...      ssh USER@host from the root namespace
#   host_ip NAME / host_dir NAME / host_path NAME PATH / host_pid NAME
#   host_known_hosts_line NAME / cr_ssh_opts / host_delay_proxy NAME RTT PORT
#   host_activations NAME / host_restart_daemon NAME / host_nix_conf NAME LINE
#   host_ssh_deauthorize NAME USER / cr_public_crebuild / cr_cleanup
#   flake_copy [DEST] / flake_git_init DIR / host_build NAME INSTALLABLE [ARGS]
#   flake_toplevel_ref DIR CONFIG
#
# Everything lives in $CR_TEST_ROOT (created with mktemp -d if unset).

CR_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CR_INTEG_DIR=$(dirname "$CR_LIB_DIR")
CR_FLAKE_SRC=$CR_INTEG_DIR/flake
CR_TEST_USERS="crdeploy crbob crplain"
CR_SUDOERS_FILE=/etc/sudoers.d/crebuild-test
CR_GLOBAL_LOCK=/run/lock/crebuild-test.lock
CR_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

cr_log() { printf '# %s\n' "$*" >&2; }
cr_die() { printf 'host.sh: error: %s\n' "$*" >&2; return 1; }

# --------------------------------------------------------------------------
# Test root, users, keys

# cr_root_init: make sure $CR_TEST_ROOT exists (mktemp -d if unset).
cr_root_init() {
	if [ -z "${CR_TEST_ROOT:-}" ]; then
		CR_TEST_ROOT=$(mktemp -d /tmp/crebuild-it.XXXXXX)
		export CR_TEST_ROOT
		CR__OWN_ROOT=1
	fi
	mkdir -p "$CR_TEST_ROOT/hosts" "$CR_TEST_ROOT/keys"
	# sshd reads ~/.ssh/known_hosts symlinks and test users read files in
	# here, so it must be searchable by everybody.
	chmod 0755 "$CR_TEST_ROOT" "$CR_TEST_ROOT/hosts" "$CR_TEST_ROOT/keys"
	[ -e "$CR_TEST_ROOT/known_hosts" ] || : > "$CR_TEST_ROOT/known_hosts"
	chmod 0644 "$CR_TEST_ROOT/known_hosts"
	if [ ! -e "$CR_TEST_ROOT/keys/id_ed25519" ]; then
		ssh-keygen -q -t ed25519 -N '' -C crebuild-test-key -f "$CR_TEST_ROOT/keys/id_ed25519"
	fi
	cr__hosts_file_update
}

# Locking: one global lock (IP allocation, users), taken with flock.
cr__lock() {
	mkdir -p "$(dirname "$CR_GLOBAL_LOCK")"
	exec {CR__LOCK_FD}>>"$CR_GLOBAL_LOCK"
	flock -w 60 "$CR__LOCK_FD"
}
cr__unlock() {
	[ -n "${CR__LOCK_FD:-}" ] || return 0
	flock -u "$CR__LOCK_FD"
	exec {CR__LOCK_FD}>&-
	CR__LOCK_FD=
}

# cr_users_setup: groups, users, sudoers, homes.  Idempotent; system-wide.
cr_users_setup() {
	local u
	[ "${CR__USERS_DONE:-0}" = 1 ] && return 0
	getent group nix-users > /dev/null || groupadd --system nix-users
	for u in $CR_TEST_USERS; do
		if ! id "$u" > /dev/null 2>&1; then
			useradd --home-dir "/home/$u" --no-create-home --shell /bin/bash \
				--groups nix-users --user-group --comment "crebuild test user" "$u"
		fi
		# Make sure settings are right even if the user pre-existed (only
		# touch /etc/passwd when needed: other runs may be logged in).
		if [ "$(getent passwd "$u" | cut -d: -f6,7)" != "/home/$u:/bin/bash" ]; then
			usermod --shell /bin/bash --home "/home/$u" "$u"
		fi
		id -nG "$u" | tr ' ' '\n' | grep -qx nix-users || usermod -a -G nix-users "$u"
		mkdir -p "/home/$u"
		chown "$u:$u" "/home/$u"
		chmod 0755 "/home/$u"
		# Mount point for the per-host ~/.ssh.
		mkdir -p "/home/$u/.ssh"
		chown "$u:$u" "/home/$u/.ssh"
		chmod 0700 "/home/$u/.ssh"
	done
	# crbob: password bobpass; the others: no password but not locked
	# (sshd with UsePAM=no refuses locked accounts even for keys).
	case "$(getent shadow crbob | cut -d: -f2)" in
	'$'*) ;;
	*) echo 'crbob:bobpass' | chpasswd ;;
	esac
	for u in crdeploy crplain; do
		[ "$(getent shadow "$u" | cut -d: -f2)" = '*' ] || usermod -p '*' "$u"
	done
	mkdir -p /root/.ssh && chmod 0700 /root/.ssh
	mkdir -p /run/sshd && chmod 0755 /run/sshd
	mkdir -p /nix /etc/nix

	local want tmp
	want='# crebuild integration tests (tests/integration/lib/host.sh); safe to delete.
Defaults:crbob timestamp_timeout=0
Defaults:crbob !lecture
Defaults:crbob passwd_tries=1
crdeploy ALL=(ALL:ALL) NOPASSWD: ALL
crbob ALL=(ALL:ALL) ALL
'
	if [ "$(cat "$CR_SUDOERS_FILE" 2>/dev/null)
" != "$want" ]; then
		tmp=$(mktemp)
		printf '%s' "$want" > "$tmp"
		visudo -cqf "$tmp" || { rm -f "$tmp"; cr_die "bad sudoers"; return 1; }
		install -m 0440 -o root -g root "$tmp" "$CR_SUDOERS_FILE"
		rm -f "$tmp"
	fi
	CR__USERS_DONE=1
}

# cr_users_remove: undo cr_users_setup (not called automatically).
cr_users_remove() {
	local u
	rm -f "$CR_SUDOERS_FILE"
	for u in $CR_TEST_USERS; do
		userdel "$u" 2> /dev/null || true
		rm -rf "/home/${u:?}"
	done
}

# cr_ssh_opts: ssh options (one line, no spaces inside words) to reach any
# test host from the root namespace, e.g. NIX_SSHOPTS="$(cr_ssh_opts)".
cr_ssh_opts() {
	printf '%s\n' "-i $CR_TEST_ROOT/keys/id_ed25519 -o UserKnownHostsFile=$CR_TEST_ROOT/known_hosts -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes"
}

# The shared /etc/hosts seen inside every host: the real one plus one line
# per test host.  Always rewritten in place (it is bind-mounted by inode).
cr__hosts_file_update() {
	local f=$CR_TEST_ROOT/etc-hosts d n content
	content=$(grep -v 'crebuild-test-host$' /etc/hosts)
	content+=$'\n'
	for d in "$CR_TEST_ROOT"/hosts/*/; do
		[ -f "$d/name" ] || continue
		n=$(cat "$d/name")
		if [ -f "$d/ip" ]; then
			content+="$(cat "$d/ip") $n # crebuild-test-host"$'\n'
		else
			content+="127.0.1.1 $n # crebuild-test-host"$'\n'
		fi
	done
	[ -e "$f" ] || : > "$f"
	chmod 0644 "$f"
	printf '%s' "$content" > "$f"
}

# --------------------------------------------------------------------------
# Host accessors

host_dir() { printf '%s\n' "$CR_TEST_ROOT/hosts/$1"; }

# host_pid NAME: pid of the keeper (holds the namespaces).
host_pid() { cat "$CR_TEST_ROOT/hosts/$1/keeper.pid" 2> /dev/null; }

# host_ip NAME: 10.77.N.2 of an ssh host (fails for deployers).
host_ip() {
	local f=$CR_TEST_ROOT/hosts/$1/ip
	[ -f "$f" ] || { cr_die "host $1 has no IP (not an --ssh host?)"; return 1; }
	cat "$f"
}

# host_path NAME PATH: where PATH inside the host's /nix or /etc/nix lives
# on the real file system (for reading/asserting without entering the host).
# Symlink targets are of course host paths (/nix/store/...).
host_path() {
	local d=$CR_TEST_ROOT/hosts/$1 p=$2
	case "$p" in
	/nix | /nix/*) printf '%s\n' "$d/nix${p#/nix}" ;;
	/etc/nix | /etc/nix/*) printf '%s\n' "$d/etc-nix${p#/etc/nix}" ;;
	*) cr_die "host_path: $p is not under /nix or /etc/nix" ;;
	esac
}

# host_activations NAME: the host's activation log (may be empty).
host_activations() { cat "$(host_path "$1" /nix/var/crebuild-test/activations.log)" 2> /dev/null || true; }

# host_known_hosts_line NAME: the known_hosts line for the host.
host_known_hosts_line() {
	local d=$CR_TEST_ROOT/hosts/$1
	[ -f "$d/ssh/ssh_host_ed25519_key.pub" ] || { cr_die "host $1 has no sshd"; return 1; }
	printf '%s,%s %s crebuild-test:%s\n' "$1" "$(cat "$d/ip")" \
		"$(cut -d' ' -f1,2 "$d/ssh/ssh_host_ed25519_key.pub")" "$1"
}

# Is the host's keeper alive and still the process we started?
cr__host_alive() {
	local d=$CR_TEST_ROOT/hosts/$1 pid ns
	pid=$(cat "$d/keeper.pid" 2> /dev/null) || return 1
	ns=$(cat "$d/keeper.mntns" 2> /dev/null) || return 1
	[ -n "$pid" ] && [ "$(readlink "/proc/$pid/ns/mnt" 2> /dev/null)" = "$ns" ]
}

cr__nsenter_args() {
	local d=$CR_TEST_ROOT/hosts/$1
	printf '%s\n' -t "$(cat "$d/keeper.pid")" -m -u "--wd=$PWD"
	[ -f "$d/ip" ] && printf '%s\n' -n
	return 0
}

# host_exec NAME CMD...: run CMD as root inside the host's namespaces, in the
# current directory.  stdin/stdout/stderr and the exit status are passed
# through.  The caller's
# environment is kept, minus variables that would point Nix elsewhere.
host_exec() {
	local name=$1
	shift
	cr__host_alive "$name" || { cr_die "host $name is not up"; return 125; }
	local -a ns
	mapfile -t ns < <(cr__nsenter_args "$name")
	nsenter "${ns[@]}" -- env -u NIX_REMOTE -u NIX_CONF_DIR -u NIX_USER_CONF_FILES \
		-u NIX_STORE_DIR -u NIX_STATE_DIR -u NIX_LOG_DIR -u NIX_DAEMON_SOCKET_PATH \
		XDG_CACHE_HOME=/nix/var/crebuild-test/xdg-cache/root "$@"
}

# host_exec_as NAME USER CMD...: like host_exec but as USER (fresh
# environment from passwd: HOME, USER, LOGNAME, SHELL, PATH; supplementary
# groups initialised).  Keeps stdin.
host_exec_as() {
	local name=$1 user=$2
	shift 2
	cr__host_alive "$name" || { cr_die "host $name is not up"; return 125; }
	local -a ns
	mapfile -t ns < <(cr__nsenter_args "$name")
	nsenter "${ns[@]}" -- setpriv --reuid="$user" --regid="$(id -g "$user")" \
		--init-groups --reset-env -- env PATH="$CR_PATH" "$@"
}

# host_ssh NAME USER CMD...: ssh USER@<host ip> CMD from the root namespace
# with the test key and known_hosts (BatchMode, no ~/.ssh/config).  As with
# any ssh, the words of CMD are joined with spaces and run by the remote
# user's shell, so quote accordingly.
host_ssh() {
	local name=$1 user=$2 ip
	shift 2
	ip=$(host_ip "$name") || return 255
	# shellcheck disable=SC2046
	ssh -F /dev/null $(cr_ssh_opts) -o BatchMode=yes -o ConnectTimeout=10 \
		-o LogLevel=ERROR "$user@$ip" -- "$@"
}

# host_ssh_deauthorize NAME USER: remove the test key from USER's
# ~/.ssh/authorized_keys on that host only (ssh as USER then fails).
host_ssh_deauthorize() {
	local f=$CR_TEST_ROOT/hosts/$1/ssh-home/$2/authorized_keys
	[ -f "$f" ] || { cr_die "no authorized_keys for $2 on $1"; return 1; }
	: > "$f"
}

# cr_public_crebuild: copy $CREBUILD to $CR_TEST_ROOT/bin/crebuild (mode
# 0755) and print that path -- for running crebuild as a non-root test user
# (the build tree may not be readable by them, e.g. a checkout under /root).
cr_public_crebuild() {
	[ -n "${CREBUILD:-}" ] && [ -x "$CREBUILD" ] || { cr_die "CREBUILD is not set/executable"; return 1; }
	mkdir -p "$CR_TEST_ROOT/bin"
	chmod 0755 "$CR_TEST_ROOT/bin"
	install -m 0755 "$CREBUILD" "$CR_TEST_ROOT/bin/crebuild"
	printf '%s\n' "$CR_TEST_ROOT/bin/crebuild"
}

# host_nix_conf NAME LINE: append LINE to the host's nix.conf and restart its
# nix-daemon.
host_nix_conf() {
	printf '%s\n' "$2" >> "$CR_TEST_ROOT/hosts/$1/etc-nix/nix.conf"
	host_restart_daemon "$1"
}

# --------------------------------------------------------------------------
# Processes and namespaces

# cr__ns_pids TYPE ID: pids whose /proc/PID/ns/TYPE link reads ID.  Never
# returns pids sharing the namespace of pid 1 or of this shell.
cr__ns_pids() {
	local type=$1 id=$2
	[ -n "$id" ] || return 0
	[ "$id" = "$(readlink /proc/1/ns/"$type")" ] && return 0
	[ "$id" = "$(readlink /proc/$$/ns/"$type")" ] && return 0
	# stat prints: '/proc/123/ns/mnt' -> 'mnt:[4026531841]'
	QUOTING_STYLE=literal stat -c '%N' /proc/[0-9]*/ns/"$type" 2> /dev/null |
		awk -v want="$id" '$3 == want { split($1, a, "/"); print a[3] }'
}

# cr__kill_pids PID...: TERM, wait up to 3 s, KILL, wait up to 2 s.
cr__kill_pids() {
	local pids=("$@") i alive p
	[ ${#pids[@]} -gt 0 ] || return 0
	kill -TERM "${pids[@]}" 2> /dev/null || true
	for i in $(seq 1 40); do
		alive=()
		for p in "${pids[@]}"; do
			[ -d "/proc/$p" ] && [ "$(awk '/^State:/ {print $2}' "/proc/$p/status" 2> /dev/null)" != Z ] && alive+=("$p")
		done
		[ ${#alive[@]} -gt 0 ] || return 0
		[ "$i" = 30 ] && kill -KILL "${alive[@]}" 2> /dev/null
		sleep 0.1
	done
	return 0
}

# cr__kill_ns: kill every process in the given mount and/or net namespace,
# repeatedly (new processes may be forked while we kill).
cr__kill_ns() {
	local mntns=$1 netns=$2 pids
	for _ in 1 2 3 4 5; do
		pids=$( { cr__ns_pids mnt "$mntns"; cr__ns_pids net "$netns"; } | sort -u)
		[ -n "$pids" ] || return 0
		# shellcheck disable=SC2086
		cr__kill_pids $pids
	done
	pids=$( { cr__ns_pids mnt "$mntns"; cr__ns_pids net "$netns"; } | sort -u)
	[ -z "$pids" ] || { cr_log "warning: processes survived: $pids"; return 1; }
}

# The net namespace id ("net:[inode]") of a named netns, or empty.
cr__netns_id() {
	[ -e "/run/netns/$1" ] || return 0
	printf 'net:[%s]\n' "$(stat -L -c %i "/run/netns/$1" 2> /dev/null)"
}

# --------------------------------------------------------------------------
# Bringing hosts up

# cr__alloc_index: lowest N in 1..250 not used by any crhN link or 10.77.N.
cr__alloc_index() {
	local n
	for n in $(seq 1 250); do
		ip link show "crh$n" > /dev/null 2>&1 && continue
		[ -n "$(ip -o addr show to "10.77.$n.0/24" 2> /dev/null)" ] && continue
		printf '%s\n' "$n"
		return 0
	done
	cr_die "no free 10.77.N.0/24 network"
}

# cr__reap_stale_netns NAME: remove a leftover cr-NAME netns (from a crashed
# run) together with anything still running in it.
cr__reap_stale_netns() {
	local nsname=cr-$1 id p
	ip netns list 2> /dev/null | awk '{print $1}' | grep -qx "$nsname" || return 0
	id=$(cr__netns_id "$nsname")
	for p in $(cr__ns_pids net "$id"); do
		if cr__keeper_is_live "$p"; then
			cr_die "network namespace $nsname belongs to a live test host (another run?)"
			return 1
		fi
	done
	cr_log "removing stale network namespace $nsname"
	cr__kill_ns "" "$id" || true
	ip netns del "$nsname" 2> /dev/null || true
}

# cr__setup_user_ssh DIR USER HOME: per-host ~/.ssh content for USER
# (authorized_keys, the test key as default identity, known_hosts symlink).
cr__setup_user_ssh() {
	local dir=$1 user=$2 home=$3 s
	s=$dir/ssh-home/$user
	mkdir -p "$s"
	cp "$CR_TEST_ROOT/keys/id_ed25519" "$s/id_ed25519"
	cp "$CR_TEST_ROOT/keys/id_ed25519.pub" "$s/id_ed25519.pub"
	cp "$CR_TEST_ROOT/keys/id_ed25519.pub" "$s/authorized_keys"
	ln -sfn "$CR_TEST_ROOT/known_hosts" "$s/known_hosts"
	chmod 0600 "$s/id_ed25519" "$s/authorized_keys"
	chmod 0644 "$s/id_ed25519.pub"
	chown -hR "$user:$(id -gn "$user")" "$s"
	chmod 0700 "$s"
	printf '%s %s\n' "$s" "$home/.ssh" >> "$dir/mounts"
}

# host_up NAME [--ssh] [--trust USER]... [--no-require-sigs] [--conf LINE]...
#         [--nix-size SIZE]
# --nix-size SIZE: the host's /nix is a tmpfs of SIZE (e.g. 24M), to fill
# its store up (unmounted by host_down).
host_up() {
	local name=${1:-} ssh=0 require_sigs=true trusted="root" u nix_size=
	local -a conf=()
	shift || true
	while [ $# -gt 0 ]; do
		case "$1" in
		--ssh) ssh=1 ;;
		--trust) trusted+=" $2"; shift ;;
		--no-require-sigs) require_sigs=false ;;
		--conf) conf+=("$2"); shift ;;
		--nix-size) nix_size=$2; shift ;;
		*) cr_die "host_up: unknown option $1"; return 2 ;;
		esac
		shift
	done
	[[ "$name" =~ ^[a-z][a-z0-9-]{0,20}$ ]] || { cr_die "host_up: bad host name '$name'"; return 2; }
	[ "$(id -u)" = 0 ] || { cr_die "host_up needs root"; return 1; }
	cr_root_init
	local dir=$CR_TEST_ROOT/hosts/$name
	if [ -e "$dir" ]; then
		cr__host_alive "$name" && { cr_die "host $name is already up"; return 1; }
		host_down "$name"
	fi

	if [ -n "$nix_size" ]; then
		mkdir -p "$dir/nix"
		if ! mount -t tmpfs -o "size=$nix_size,mode=0755" "crtest-$name" "$dir/nix"; then
			cr_die "host_up $name: cannot mount a $nix_size tmpfs on $dir/nix"
			host_down "$name"
			return 1
		fi
	fi
	cr__lock || { cr_die "cannot take $CR_GLOBAL_LOCK"; return 1; }
	cr_users_setup || { cr__unlock; return 1; }

	mkdir -p "$dir"/{etc-nix,log,ssh,ssh-home} "$dir/nix/var/nix/daemon-socket" \
		"$dir/nix/var/crebuild-test/xdg-cache/root"
	printf '%s\n' "$name" > "$dir/name"
	chmod 0755 "$dir" "$dir/nix" "$dir/nix/var" "$dir/nix/var/nix" "$dir/etc-nix"
	: > "$dir/nix/.crebuild-test-host"
	chown root:nix-users "$dir/nix/var/nix/daemon-socket"
	chmod 0770 "$dir/nix/var/nix/daemon-socket"
	chmod 1777 "$dir/nix/var/crebuild-test"
	chmod 0700 "$dir/nix/var/crebuild-test/xdg-cache"
	: > "$dir/nix/var/crebuild-test/activations.log"
	chmod 0666 "$dir/nix/var/crebuild-test/activations.log"
	{
		echo "# crebuild test host $name (tests/integration/lib/host.sh)"
		echo "sandbox = false"
		echo "substituters ="
		echo "trusted-substituters ="
		# Not nixbld: every host would share the same build users, and Nix
		# kills all processes of a build user around each build.
		echo "build-users-group ="
		echo "experimental-features = nix-command flakes"
		echo "trusted-users = $trusted"
		echo "require-sigs = $require_sigs"
		echo "eval-cache = false"
		echo "flake-registry = /nix/var/crebuild-test/flake-registry.json"
		echo "warn-dirty = false"
		for u in "${conf[@]}"; do echo "$u"; done
	} > "$dir/etc-nix/nix.conf"
	echo '{"flakes":[],"version":2}' > "$dir/nix/var/crebuild-test/flake-registry.json"

	# Bind mounts done by the keeper.
	{
		echo "$dir/nix /nix"
		echo "$dir/etc-nix /etc/nix"
		echo "$CR_TEST_ROOT/etc-hosts /etc/hosts"
	} > "$dir/mounts"
	cr__setup_user_ssh "$dir" root /root
	for u in $CR_TEST_USERS; do cr__setup_user_ssh "$dir" "$u" "/home/$u"; done

	local -a prefix=()
	if [ "$ssh" = 1 ]; then
		local n ip
		cr__reap_stale_netns "$name" || { cr__unlock; return 1; }
		n=$(cr__alloc_index) || { cr__unlock; return 1; }
		ip=10.77.$n.2
		printf '%s\n' "$n" > "$dir/index"
		printf 'cr-%s\n' "$name" > "$dir/netns"
		if ! { ip netns add "cr-$name" &&
			ip link add "crh$n" type veth peer name "crg$n" netns "cr-$name" &&
			ip addr add "10.77.$n.1/24" dev "crh$n" &&
			ip link set "crh$n" up &&
			ip -n "cr-$name" addr add "$ip/24" dev "crg$n" &&
			ip -n "cr-$name" link set "crg$n" up &&
			ip -n "cr-$name" link set lo up &&
			ip -n "cr-$name" route add default via "10.77.$n.1"; }; then
			cr__unlock
			cr_die "host_up $name: network setup failed"
			host_down "$name"
			return 1
		fi
		printf '%s\n' "$ip" > "$dir/ip"
		# Host-to-host traffic (build host -> target host) is routed
		# through the root namespace.
		sysctl -qw net.ipv4.ip_forward=1 || true
		prefix=(ip netns exec "cr-$name")
	fi
	cr__unlock
	cr__hosts_file_update

	# The keeper.
	"${prefix[@]}" unshare -m -u --propagation private -- \
		/bin/bash "$CR_LIB_DIR/keeper.sh" "$dir" "$name" \
		> "$dir/log/keeper.log" 2>&1 < /dev/null &
	local kpid=$! i
	for i in $(seq 1 100); do
		[ -e "$dir/keeper.ready" ] && break
		kill -0 "$kpid" 2> /dev/null || break
		sleep 0.05
	done
	if [ ! -e "$dir/keeper.ready" ]; then
		cr_die "host_up $name: keeper did not start: $(cat "$dir/log/keeper.log")"
		host_down "$name"
		return 1
	fi

	# Initialise the store and start the host's nix-daemon.
	if ! host_exec "$name" nix-store --init > "$dir/log/nix-init.log" 2>&1; then
		cr_die "host_up $name: nix-store --init failed: $(cat "$dir/log/nix-init.log")"
		host_down "$name"
		return 1
	fi
	cr__start_daemon "$name" || { host_down "$name"; return 1; }

	if [ "$ssh" = 1 ]; then
		cr__start_sshd "$name" || { host_down "$name"; return 1; }
	fi
	if [ "$ssh" = 1 ]; then
		export "HOST_IP_${name//-/_}=$(cat "$dir/ip")"
	fi
	return 0
}

# deployer_up NAME [options]: a host without sshd and without its own
# network namespace (root-namespace networking), used to run crebuild.
deployer_up() {
	local a
	for a in "$@"; do
		[ "$a" != --ssh ] || { cr_die "deployer_up: no --ssh"; return 2; }
	done
	host_up "$@"
}

cr__start_daemon() {
	local name=$1 dir=$CR_TEST_ROOT/hosts/$1 i
	local -a ns
	mapfile -t ns < <(cr__nsenter_args "$name")
	nsenter "${ns[@]}" -- env -i PATH="$CR_PATH" HOME=/root \
		XDG_CACHE_HOME=/nix/var/crebuild-test/xdg-cache/root \
		nix-daemon >> "$dir/log/nix-daemon.log" 2>&1 < /dev/null &
	echo $! > "$dir/nix-daemon.pid"
	for i in $(seq 1 100); do
		if host_exec "$name" nix store ping --store daemon > /dev/null 2>&1; then
			return 0
		fi
		kill -0 "$(cat "$dir/nix-daemon.pid")" 2> /dev/null || break
		sleep 0.05
	done
	cr_die "host $name: nix-daemon does not answer: $(tail -5 "$dir/log/nix-daemon.log")"
}

# host_restart_daemon NAME: restart the host's nix-daemon (e.g. after
# changing nix.conf).
host_restart_daemon() {
	local dir=$CR_TEST_ROOT/hosts/$1 pid
	pid=$(cat "$dir/nix-daemon.pid" 2> /dev/null) || true
	[ -z "$pid" ] || cr__kill_pids "$pid"
	cr__start_daemon "$1"
}

cr__start_sshd() {
	local name=$1 dir=$CR_TEST_ROOT/hosts/$1 ip i
	ip=$(cat "$dir/ip")
	ssh-keygen -q -t ed25519 -N '' -C "crebuild-test-host:$name" -f "$dir/ssh/ssh_host_ed25519_key"
	cat > "$dir/ssh/sshd_config" <<-EOF
		# sshd for crebuild test host $name (tests/integration/lib/host.sh)
		ListenAddress $ip:22
		HostKey $dir/ssh/ssh_host_ed25519_key
		PidFile $dir/sshd.pid
		UsePAM no
		PermitRootLogin prohibit-password
		PubkeyAuthentication yes
		PasswordAuthentication no
		KbdInteractiveAuthentication no
		AuthorizedKeysFile .ssh/authorized_keys
		StrictModes yes
		AllowUsers root $CR_TEST_USERS
		UseDNS no
		PrintMotd no
		PrintLastLog no
		X11Forwarding no
		MaxStartups 200:30:400
		MaxSessions 64
		LogLevel VERBOSE
		Subsystem sftp /usr/lib/openssh/sftp-server
	EOF
	if ! /usr/sbin/sshd -t -f "$dir/ssh/sshd_config" 2> "$dir/log/sshd-t.log"; then
		cr_die "host $name: bad sshd_config: $(cat "$dir/log/sshd-t.log")"
		return 1
	fi
	local -a ns
	mapfile -t ns < <(cr__nsenter_args "$name")
	nsenter "${ns[@]}" -- env -i PATH="$CR_PATH" \
		/usr/sbin/sshd -D -f "$dir/ssh/sshd_config" -E "$dir/log/sshd.log" \
		< /dev/null > /dev/null 2>&1 &
	echo $! > "$dir/sshd.mainpid"
	for i in $(seq 1 100); do
		if nsenter -t "$(host_pid "$name")" -n ss -Hltn "sport = :22" 2> /dev/null | grep -q .; then
			# known_hosts: replace any line for this host.
			cr__known_hosts_del "crebuild-test:$name"
			host_known_hosts_line "$name" >> "$CR_TEST_ROOT/known_hosts"
			return 0
		fi
		kill -0 "$(cat "$dir/sshd.mainpid")" 2> /dev/null || break
		sleep 0.05
	done
	cr_die "host $name: sshd did not start: $(tail -5 "$dir/log/sshd.log")"
}

# Remove known_hosts lines whose comment (last word) is $1.  In place.
cr__known_hosts_del() {
	local kh=$CR_TEST_ROOT/known_hosts rest
	[ -f "$kh" ] || return 0
	rest=$(awk -v tag="$1" '$NF != tag' "$kh")
	if [ -n "$rest" ]; then printf '%s\n' "$rest" > "$kh"; else : > "$kh"; fi
}

# --------------------------------------------------------------------------
# Latency proxy (benchmarks)

# host_delay_proxy NAME RTT_MS LISTEN_PORT: TCP proxy 127.0.0.1:LISTEN_PORT
# (root namespace) -> host's sshd, adding RTT_MS ms of round-trip latency.
# Adds a known_hosts line for [127.0.0.1]:LISTEN_PORT.  Stopped by host_down
# (or host_delay_proxy_stop NAME PORT).
host_delay_proxy() {
	local name=$1 rtt=$2 port=$3 dir ip i bin=$CR_TEST_ROOT/delayproxy
	dir=$CR_TEST_ROOT/hosts/$name
	ip=$(host_ip "$name") || return 1
	if [ ! -x "$bin" ]; then
		cc -std=c11 -O2 -Wall -Wextra -Werror -o "$bin.tmp" "$CR_LIB_DIR/../../tools/delayproxy.c" \
			> "$dir/log/proxy-cc.log" 2>&1 && mv "$bin.tmp" "$bin" ||
			{ cr_die "cannot build tests/tools/delayproxy.c: $(cat "$dir/log/proxy-cc.log")"; return 1; }
	fi
	"$bin" "127.0.0.1:$port" "$ip:22" "$rtt" > "$dir/log/proxy-$port.log" 2>&1 < /dev/null &
	echo $! > "$dir/proxy-$port.pid"
	for i in $(seq 1 100); do
		if ss -Hltn "sport = :$port" 2> /dev/null | grep -q 127.0.0.1; then
			printf '[127.0.0.1]:%s %s crebuild-test:%s\n' "$port" \
				"$(cut -d' ' -f1,2 "$dir/ssh/ssh_host_ed25519_key.pub")" "$name" \
				>> "$CR_TEST_ROOT/known_hosts"
			return 0
		fi
		kill -0 "$(cat "$dir/proxy-$port.pid")" 2> /dev/null || break
		sleep 0.05
	done
	cr_die "delay proxy for $name did not start: $(cat "$dir/log/proxy-$port.log")"
}

host_delay_proxy_stop() {
	local f=$CR_TEST_ROOT/hosts/$1/proxy-$2.pid
	[ -f "$f" ] || return 0
	cr__kill_pids "$(cat "$f")"
	rm -f "$f"
}

# --------------------------------------------------------------------------
# Tearing down

# host_down NAME: stop everything of the host and remove its directory.
# Idempotent; safe on half-created hosts.
host_down() {
	local name=$1 dir mntns netnsname netid n f
	[ -n "$name" ] && [ -n "${CR_TEST_ROOT:-}" ] || return 0
	dir=$CR_TEST_ROOT/hosts/$name
	[ -d "$dir" ] || return 0

	for f in "$dir"/proxy-*.pid; do
		[ -f "$f" ] && cr__kill_pids "$(cat "$f")"
	done
	mntns=$(cat "$dir/keeper.mntns" 2> /dev/null) || mntns=
	netnsname=$(cat "$dir/netns" 2> /dev/null) || netnsname=
	netid=
	[ -z "$netnsname" ] || netid=$(cr__netns_id "$netnsname")
	# Processes we started ourselves (in case the namespace id is unknown,
	# e.g. the keeper died before recording it).
	local -a own=()
	for f in keeper.pid nix-daemon.pid sshd.mainpid; do
		local p
		p=$(cat "$dir/$f" 2> /dev/null) || continue
		# Only if it still is in the host's namespace (pid reuse).
		if [ -n "$p" ] && [ -d "/proc/$p" ]; then
			local pm
			pm=$(readlink "/proc/$p/ns/mnt" 2> /dev/null) || continue
			if [ "$pm" != "$(readlink /proc/$$/ns/mnt)" ] && [ "$pm" != "$(readlink /proc/1/ns/mnt)" ]; then
				own+=("$p")
			fi
		fi
	done
	cr__kill_ns "$mntns" "$netid" || true
	[ ${#own[@]} -eq 0 ] || cr__kill_pids "${own[@]}"

	if [ -n "$netnsname" ]; then
		ip netns del "$netnsname" 2> /dev/null || true
	fi
	n=$(cat "$dir/index" 2> /dev/null) || n=
	if [ -n "$n" ] && ip link show "crh$n" > /dev/null 2>&1; then
		ip link del "crh$n" 2> /dev/null || true
	fi
	cr__known_hosts_del "crebuild-test:$name"

	# Nothing of ours should be mounted in this namespace, but make sure
	# before deleting.
	local m
	while read -r m; do
		umount -l "$m" 2> /dev/null || true
	done < <(awk -v d="$dir/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r)
	if awk -v d="$dir/" 'index($5, d) == 1 { found = 1 } END { exit !found }' /proc/self/mountinfo; then
		cr_die "host_down $name: mounts remain under $dir, not deleting"
		return 1
	fi
	case "$dir" in
	"$CR_TEST_ROOT"/hosts/?*) rm -rf --one-file-system "$dir" ;;
	esac
	[ ! -d "$CR_TEST_ROOT" ] || cr__hosts_file_update
	unset "HOST_IP_${name//-/_}" 2> /dev/null || true
	return 0
}

# hosts_down_all: host_down every host in $CR_TEST_ROOT (for EXIT traps).
hosts_down_all() {
	local d
	[ -n "${CR_TEST_ROOT:-}" ] && [ -d "$CR_TEST_ROOT/hosts" ] || return 0
	for d in "$CR_TEST_ROOT"/hosts/*/; do
		[ -d "$d" ] || continue
		d=${d%/}
		host_down "${d##*/}"
	done
	return 0
}

# cr_cleanup: hosts_down_all, and delete $CR_TEST_ROOT if host.sh created it.
cr_cleanup() {
	hosts_down_all
	if [ "${CR__OWN_ROOT:-0}" = 1 ] && [ -n "${CR_TEST_ROOT:-}" ]; then
		rm -rf --one-file-system "$CR_TEST_ROOT"
	fi
}

# cr__keeper_is_live PID: PID is a keeper whose host directory still exists
# (its cwd is the host directory; deleted dir = crashed run).
cr__keeper_is_live() {
	local cwd
	grep -q '^crebuild-test-keeper:' "/proc/$1/cmdline" 2> /dev/null || return 1
	cwd=$(readlink "/proc/$1/cwd" 2> /dev/null) || return 1
	case "$cwd" in *" (deleted)") return 1 ;; esac
	[ -f "$cwd/keeper.pid" ] && [ "$(cat "$cwd/keeper.pid")" = "$1" ]
}

# cr_reap_stale: remove leftovers of crashed runs (keepers whose host
# directory is gone, with everything in their namespaces; cr-* network
# namespaces without a live keeper).  Hosts of live runs are not touched.
cr_reap_stale() {
	local p ns id live
	for p in $(pgrep -f '^crebuild-test-keeper:' 2> /dev/null); do
		cr__keeper_is_live "$p" && continue
		cr_log "reaping stale test host process $p ($(tr '\0' ' ' < "/proc/$p/cmdline" 2> /dev/null))"
		cr__kill_ns "$(readlink "/proc/$p/ns/mnt" 2> /dev/null)" "$(readlink "/proc/$p/ns/net" 2> /dev/null)" || true
	done
	for ns in $(ip netns list 2> /dev/null | awk '{print $1}' | grep '^cr-'); do
		id=$(cr__netns_id "$ns")
		live=0
		for p in $(cr__ns_pids net "$id"); do
			cr__keeper_is_live "$p" && live=1
		done
		[ "$live" = 1 ] && continue
		cr_log "reaping stale network namespace $ns"
		cr__kill_ns "" "$id" || true
		ip netns del "$ns" 2> /dev/null || true
	done
	return 0
}

# --------------------------------------------------------------------------
# Flake helpers

# flake_copy [DEST]: copy the test flake to DEST (default
# $CR_TEST_ROOT/flake), print DEST.  Use it as "path:DEST" (or git-init it).
flake_copy() {
	local dest=${1:-$CR_TEST_ROOT/flake}
	rm -rf "$dest"
	mkdir -p "$dest"
	cp -r "$CR_FLAKE_SRC"/. "$dest"/
	chmod -R u+w,go+rX "$dest"
	printf '%s\n' "$dest"
}

# flake_git_init DIR: make DIR a git repository with everything committed
# (so that plain "DIR#name" / "git+file://DIR#name" refs work).
flake_git_init() {
	local d=$1
	git -C "$d" init -q
	git -C "$d" add -A
	git -C "$d" -c user.name=crebuild-test -c user.email=test@invalid \
		-c commit.gpgsign=false commit -q -m "test flake"
}

# host_build NAME INSTALLABLE [NIX BUILD ARGS]: nix build (no link) inside
# the host, print the output path(s), one per line.
host_build() {
	local name=$1 inst=$2 json
	shift 2
	json=$(host_exec "$name" nix build --no-link --json "$inst" "$@") || return 1
	printf '%s\n' "$json" | grep -o '"out":"[^"]*"' | sed 's/^"out":"//; s/"$//'
}

# flake_toplevel_ref FLAKEDIR CONFIG: the installable of CONFIG's toplevel.
flake_toplevel_ref() {
	printf 'path:%s#nixosConfigurations."%s".config.system.build.toplevel\n' "$1" "$2"
}

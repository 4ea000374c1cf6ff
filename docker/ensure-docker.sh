#!/usr/bin/env bash
# Make sure a Docker engine and docker-compose are installed and the daemon answers.
#
#   bash docker/ensure-docker.sh          # as root; idempotent, quick when docker already runs
#   source docker/ensure-docker.sh        # from another bash script: also exports
#                                         # DOCKER_API_VERSION when the client needs it
#
# Written for the offline CI machines (Debian bookworm, root, no init system, no container
# registry, Debian package mirror reachable). What it does and why:
#
# - Installs `docker.io` (engine 20.10) and `docker-compose` (1.29, the Python one) from the
#   Debian mirror when `dockerd` or `docker-compose` is missing. `--no-install-recommends`
#   keeps out apparmor, needrestart, git and cgroupfs-mount, none of which the engine needs
#   here. `apt-get update` only runs if the first install attempt fails (stale lists).
# - There is no systemd on these machines (PID 1 is the VM's own init), so the package's
#   service never starts: the script starts `dockerd` itself, detached with setsid, logging
#   to /tmp/peergroup-dockerd.log, and waits up to 60 s for `docker info`.
#   With systemd present it uses `systemctl start docker` instead.
# - Storage driver: dockerd picks overlay2 by itself when the kernel can mount overlayfs on
#   /var/lib/docker. The script probes that mount first; if it fails (overlay inside an
#   overlay root, or no overlay module) it passes `--storage-driver=fuse-overlayfs` when
#   fuse-overlayfs and /dev/fuse exist, else `--storage-driver=vfs` (slow, copies every
#   layer, but works everywhere). If dockerd still dies at start, it retries once with vfs.
#   On the reference machine (Firecracker VM, ext4 root, kernel 6.18) overlay2 works.
# - iptables: Debian's default is iptables-nft. If `iptables -t nat -S` fails with it but
#   works with iptables-legacy, the script switches the alternatives to legacy; if neither
#   works it starts dockerd with `--iptables=false --ip-masq=false` (containers on one bridge
#   still reach each other; no NAT to the outside, which the offline tests do not need).
#   On the reference machine iptables-nft works and nothing is changed.
# - cgroups: dockerd 20.10 needs a mounted cgroup hierarchy (v1 or v2). If none is mounted,
#   the script mounts cgroup2 on /sys/fs/cgroup. The reference machine has a v1/v2 hybrid
#   mounted already ("Cgroup Version: 1" in docker info).
# - API version: the image's docker CLI (/usr/local/bin/docker 28.x, API 1.50) is newer than
#   the engine (API 1.41). The CLI negotiates down by itself ("1.41 (downgraded from 1.50)"),
#   so nothing is needed; negotiation is off only when DOCKER_API_VERSION is already set to
#   something the engine rejects. The script detects "Maximum supported API version is X"
#   (or "Minimum ...") and exports DOCKER_API_VERSION=X (only effective when sourced).
#
# Environment overrides:
#   PEERGROUP_DOCKER_STORAGE_DRIVER  force a storage driver (overlay2, fuse-overlayfs, vfs)
#   PEERGROUP_DOCKERD_LOG            daemon log file (default /tmp/peergroup-dockerd.log)
#   PEERGROUP_DOCKERD_TIMEOUT        seconds to wait for the daemon (default 60)

set -euo pipefail

_pg_log() { printf '[ensure-docker] %s\n' "$*" >&2; }
_pg_die() {
  printf '[ensure-docker] ERROR: %s\n' "$*" >&2
  exit 1
}

_pg_apt_install() {
  _pg_log "installing with apt: $*"
  local t0=$SECONDS
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >&2; then
    _pg_log "apt-get install failed; running apt-get update and retrying"
    DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >&2
  fi
  _pg_log "installed $* in $((SECONDS - t0))s"
}

_pg_install() {
  local missing=()
  command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
  command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
  if [ "${#missing[@]}" -gt 0 ]; then
    _pg_apt_install "${missing[@]}"
  else
    _pg_log "dockerd and docker-compose are installed"
  fi
  command -v docker >/dev/null 2>&1 || _pg_die "no docker client on PATH after installing docker.io"
}

# True when the daemon answers `docker info`. On a client/daemon API mismatch ("client
# version 1.50 is too new. Maximum supported API version is 1.41", only possible when
# DOCKER_API_VERSION disables the CLI's negotiation) it exports the version the daemon asks
# for and tries again. No command substitution around the export, so it reaches a script
# that sources this file.
_pg_daemon_answers() {
  local out wanted
  if out=$(docker info 2>&1 >/dev/null); then
    return 0
  fi
  wanted=$(printf '%s\n' "$out" | sed -n -E 's/.*(Maximum|Minimum) supported API version is ([0-9.]+).*/\2/p' | head -n 1)
  if [ -n "$wanted" ] && [ "${DOCKER_API_VERSION:-}" != "$wanted" ]; then
    _pg_log "client/daemon API mismatch with DOCKER_API_VERSION=${DOCKER_API_VERSION:-unset}: $(printf '%s' "$out" | head -n 1)"
    _pg_log "using DOCKER_API_VERSION=$wanted"
    export DOCKER_API_VERSION="$wanted"
    docker info >/dev/null 2>&1
    return $?
  fi
  return 1
}

_pg_ensure_cgroups() {
  if awk '$3 == "cgroup" || $3 == "cgroup2" { found = 1 } END { exit !found }' /proc/mounts; then
    return 0
  fi
  _pg_log "no cgroup hierarchy mounted; mounting cgroup2 on /sys/fs/cgroup"
  mkdir -p /sys/fs/cgroup
  mount -t cgroup2 cgroup2 /sys/fs/cgroup || _pg_die "cannot mount cgroup2 on /sys/fs/cgroup"
}

# Echoes the storage driver to force, or nothing to let dockerd choose (overlay2).
_pg_pick_storage_driver() {
  if [ -n "${PEERGROUP_DOCKER_STORAGE_DRIVER:-}" ]; then
    printf '%s\n' "$PEERGROUP_DOCKER_STORAGE_DRIVER"
    return 0
  fi
  if [ -f /etc/docker/daemon.json ] && grep -q '"storage-driver"' /etc/docker/daemon.json; then
    return 0 # configured by the admin; a flag as well would make dockerd refuse to start
  fi
  local root=/var/lib/docker probe ok=0
  mkdir -p "$root"
  probe=$(mktemp -d "$root/.overlay-probe.XXXXXX")
  mkdir -p "$probe/lower" "$probe/upper" "$probe/work" "$probe/merged"
  if mount -t overlay overlay \
    -o "lowerdir=$probe/lower,upperdir=$probe/upper,workdir=$probe/work" "$probe/merged" 2>/dev/null; then
    ok=1
    umount "$probe/merged"
  fi
  rm -rf "$probe"
  if [ "$ok" = 1 ]; then
    _pg_log "overlayfs mounts on $root: dockerd will use overlay2"
    return 0
  fi
  if command -v fuse-overlayfs >/dev/null 2>&1 && [ -c /dev/fuse ]; then
    _pg_log "overlayfs does not mount on $root; using fuse-overlayfs"
    printf 'fuse-overlayfs\n'
  else
    _pg_log "overlayfs does not mount on $root; using vfs (slow: every layer is a full copy)"
    printf 'vfs\n'
  fi
}

# Echoes extra dockerd flags for iptables (or nothing).
_pg_pick_iptables() {
  if iptables -t nat -S >/dev/null 2>&1; then
    _pg_log "iptables works ($(iptables --version 2>/dev/null || echo unknown))"
    return 0
  fi
  if command -v iptables-legacy >/dev/null 2>&1 && iptables-legacy -t nat -S >/dev/null 2>&1; then
    _pg_log "iptables (nft) fails here but iptables-legacy works: switching alternatives to legacy"
    update-alternatives --set iptables /usr/sbin/iptables-legacy >&2
    if [ -x /usr/sbin/ip6tables-legacy ]; then
      update-alternatives --set ip6tables /usr/sbin/ip6tables-legacy >&2 || true
    fi
    return 0
  fi
  _pg_log "WARNING: neither iptables-nft nor iptables-legacy works: starting dockerd with --iptables=false"
  printf -- '--iptables=false\n--ip-masq=false\n'
}

# Starts dockerd detached with the given flags; waits for it. Returns 1 if it died or timed out.
_pg_start_dockerd() {
  local log=$1 timeout=$2
  shift 2
  if [ -f /var/run/docker.pid ] && ! kill -0 "$(cat /var/run/docker.pid)" 2>/dev/null; then
    _pg_log "removing stale /var/run/docker.pid"
    rm -f /var/run/docker.pid
  fi
  _pg_log "starting: dockerd $* (log: $log)"
  printf '\n==== %s dockerd %s\n' "$(date -u +%FT%TZ)" "$*" >>"$log"
  setsid dockerd "$@" >>"$log" 2>&1 </dev/null &
  local pid=$! waited=0
  disown "$pid" 2>/dev/null || true
  while [ "$waited" -lt "$timeout" ]; do
    if _pg_daemon_answers; then
      _pg_log "dockerd (pid $pid) answers after ${waited}s"
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      _pg_log "dockerd exited during start-up; last lines of $log:"
      tail -n 15 "$log" >&2
      return 1
    fi
    sleep 1
    waited=$((waited + 1))
  done
  _pg_log "dockerd did not answer within ${timeout}s; last lines of $log:"
  tail -n 15 "$log" >&2
  kill "$pid" 2>/dev/null || true
  return 1
}

_pg_ensure_daemon() {
  local log=${PEERGROUP_DOCKERD_LOG:-/tmp/peergroup-dockerd.log}
  local timeout=${PEERGROUP_DOCKERD_TIMEOUT:-60}

  if _pg_daemon_answers; then
    _pg_log "the docker daemon answers"
    return 0
  fi

  if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    _pg_log "systemd present: systemctl start docker"
    systemctl start docker
    local waited=0
    until _pg_daemon_answers; do
      [ "$waited" -lt "$timeout" ] || _pg_die "docker.service did not answer within ${timeout}s (journalctl -u docker)"
      sleep 1
      waited=$((waited + 1))
    done
    return 0
  fi

  if pgrep -x dockerd >/dev/null 2>&1; then
    _pg_log "a dockerd process exists but does not answer yet; waiting up to ${timeout}s"
    local waited=0
    until _pg_daemon_answers; do
      [ "$waited" -lt "$timeout" ] || _pg_die "the running dockerd (pid $(pgrep -x dockerd | tr '\n' ' ')) does not answer; see $log"
      sleep 1
      waited=$((waited + 1))
    done
    return 0
  fi

  _pg_ensure_cgroups
  local driver flags=() line
  driver=$(_pg_pick_storage_driver)
  [ -z "$driver" ] || flags+=("--storage-driver=$driver")
  while IFS= read -r line; do
    [ -z "$line" ] || flags+=("$line")
  done < <(_pg_pick_iptables)

  if _pg_start_dockerd "$log" "$timeout" "${flags[@]}"; then
    return 0
  fi
  if [ -z "${PEERGROUP_DOCKER_STORAGE_DRIVER:-}" ] && [ "$driver" != vfs ]; then
    _pg_log "retrying once with --storage-driver=vfs"
    local retry=("--storage-driver=vfs") flag
    for flag in "${flags[@]}"; do
      case "$flag" in --storage-driver=*) ;; *) retry+=("$flag") ;; esac
    done
    _pg_start_dockerd "$log" "$timeout" "${retry[@]}" && return 0
  fi
  _pg_die "could not start dockerd; see $log"
}

_pg_ensure_docker_main() {
  [ "$(id -u)" = 0 ] || _pg_die "run as root (installs packages and starts dockerd)"
  _pg_install
  _pg_ensure_daemon
  _pg_daemon_answers || _pg_die "the daemon stopped answering"
  _pg_log "ready: client $(docker version --format '{{.Client.Version}}' 2>/dev/null || echo '?'), engine $(docker version --format '{{.Server.Version}}' 2>/dev/null || echo '?') (API $(docker version --format '{{.Server.APIVersion}}' 2>/dev/null || echo '?')${DOCKER_API_VERSION:+, DOCKER_API_VERSION=$DOCKER_API_VERSION}), storage driver $(docker info --format '{{.Driver}}' 2>/dev/null || echo '?'), $(docker-compose version --short 2>/dev/null | sed 's/^/docker-compose /')"
}

_pg_ensure_docker_main

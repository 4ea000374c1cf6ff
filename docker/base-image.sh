#!/usr/bin/env bash
# Build the offline base image peergroup/base:bookworm (once; later runs do nothing).
#
#   bash docker/base-image.sh            # as root, with a running docker daemon
#   bash docker/base-image.sh --force    # rebuild even if the image exists
#
# There is no container registry on the CI machines, so no `FROM debian:bookworm`: the
# image is a Debian bookworm minbase rootfs made with debootstrap from the same Debian
# mirror the machine's apt already uses, then `docker import`ed. It holds what the test
# runtime image needs: ca-certificates, curl (health checks, driving the HTTP control API) and
# iproute2 (inspecting addresses and routes inside a container). No tini: the compose file
# uses `init: true`, which runs the engine's own docker-init as PID 1.
#
# Environment overrides:
#   PEERGROUP_BASE_IMAGE     image tag (default peergroup/base:bookworm)
#   PEERGROUP_DEBIAN_MIRROR  Debian mirror URL (default: read from /etc/apt/sources.list*)
#   PEERGROUP_BASE_PACKAGES  comma-separated extra packages for debootstrap --include

set -euo pipefail

image=${PEERGROUP_BASE_IMAGE:-peergroup/base:bookworm}
suite=bookworm
packages="ca-certificates,curl,iproute2${PEERGROUP_BASE_PACKAGES:+,$PEERGROUP_BASE_PACKAGES}"

log() { printf '[base-image] %s\n' "$*" >&2; }
die() {
  printf '[base-image] ERROR: %s\n' "$*" >&2
  exit 1
}

force=0
case "${1:-}" in
  --force) force=1 ;;
  "") ;;
  *) die "usage: $0 [--force]" ;;
esac

[ "$(id -u)" = 0 ] || die "run as root (debootstrap needs it)"
command -v docker >/dev/null 2>&1 || die "no docker client; run docker/ensure-docker.sh first"
docker info >/dev/null 2>&1 || die "the docker daemon does not answer; run docker/ensure-docker.sh first"

if [ "$force" = 0 ] && docker image inspect "$image" >/dev/null 2>&1; then
  log "$image exists ($(docker image inspect --format '{{.Id}} created {{.Created}}' "$image")); nothing to do"
  exit 0
fi

# The first Debian (not -security, not -updates) mirror apt uses for the suite, from the
# one-line format (sources.list, *.list) or deb822 (*.sources).
find_mirror() {
  local files=() f
  [ -f /etc/apt/sources.list ] && files+=(/etc/apt/sources.list)
  for f in /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] && files+=("$f")
  done
  [ "${#files[@]}" -gt 0 ] || return 0
  for f in "${files[@]}"; do
    case "$f" in
      *.sources)
        awk -v suite="$suite" '
          function flush() {
            if (types ~ /(^| )deb( |$)/ && (" " suites " ") ~ (" " suite " ") && enabled !~ /^(no|false)$/ && uris != "") {
              split(uris, u, " "); print u[1]; found = 1; exit
            }
            types = ""; uris = ""; suites = ""; enabled = ""
          }
          /^[ \t]*#/ { next }
          /^[ \t]*$/ { flush(); next }
          {
            key = tolower($1); sub(/:$/, "", key)
            val = $0; sub(/^[^:]*:[ \t]*/, "", val)
            if (key == "types") types = val
            else if (key == "uris") uris = val
            else if (key == "suites") suites = val
            else if (key == "enabled") enabled = tolower(val)
          }
          END { if (!found) flush() }
        ' "$f"
        ;;
      *)
        # deb [options] uri suite component...
        sed -E -e 's/#.*//' -e 's/\[[^]]*\]//' "$f" |
          awk -v suite="$suite" '$1 == "deb" && $3 == suite { print $2; exit }'
        ;;
    esac
  done | head -n 1
}

mirror=${PEERGROUP_DEBIAN_MIRROR:-$(find_mirror)}
if [ -z "$mirror" ]; then
  mirror=http://deb.debian.org/debian
  log "no $suite mirror found in /etc/apt/sources.list*; falling back to $mirror"
fi
log "mirror: $mirror"

if ! command -v debootstrap >/dev/null 2>&1; then
  log "installing debootstrap"
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap >&2; then
    log "apt-get install failed; running apt-get update and retrying"
    DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap >&2
  fi
fi

work=$(mktemp -d "${TMPDIR:-/var/tmp}/peergroup-rootfs.XXXXXX")
rootfs=$work/rootfs

# Unmount anything debootstrap left mounted inside the rootfs (proc, sys, dev/pts on a
# failed run) before deleting it, and never cross into another file system while deleting.
cleanup() {
  local m
  if [ -d "$rootfs" ]; then
    awk -v r="$rootfs" 'index($2, r "/") == 1 { print $2 }' /proc/mounts | sort -r | while read -r m; do
      umount -l "$m" 2>/dev/null || true
    done
  fi
  rm -rf --one-file-system "$work"
}
trap cleanup EXIT

t0=$(date +%s)
log "debootstrap --variant=minbase --include=$packages $suite (log: $work/debootstrap.log)"
if ! debootstrap --variant=minbase --include="$packages" "$suite" "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1; then
  tail -n 30 "$work/debootstrap.log" >&2
  [ -f "$rootfs/debootstrap/debootstrap.log" ] && tail -n 30 "$rootfs/debootstrap/debootstrap.log" >&2
  die "debootstrap failed"
fi
t1=$(date +%s)
log "debootstrap took $((t1 - t0))s"

# Trim what a container never needs: package lists and downloaded .debs, logs, docs.
chroot "$rootfs" apt-get clean
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin \
  "$rootfs"/var/log/*.log "$rootfs"/var/log/apt/* \
  "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* \
  "$rootfs"/usr/share/locale/* \
  "$rootfs"/tmp/* "$rootfs"/var/tmp/*
# Device nodes come from the engine at run time; proc and sys are mounted by it.
rm -rf "${rootfs:?}"/dev/* "${rootfs:?}"/proc/* "${rootfs:?}"/sys/* "${rootfs:?}"/run/*
# apt inside the image uses the same mirror (run apt-get update first; the lists are gone).
printf 'deb %s %s main\ndeb %s %s-updates main\n' "$mirror" "$suite" "$mirror" "$suite" >"$rootfs/etc/apt/sources.list"
: >"$rootfs/etc/machine-id"
log "rootfs size: $(du -sh --one-file-system "$rootfs" | cut -f1)"

log "docker import -> $image"
tar --numeric-owner --xattrs -C "$rootfs" -c . |
  docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["/bin/bash"]' \
    --message "debootstrap --variant=minbase --include=$packages $suite $mirror" \
    - "$image" >/dev/null
t2=$(date +%s)
log "import took $((t2 - t1))s"
log "built $image: $(docker image inspect --format '{{.Id}} {{.Size}} bytes' "$image")"

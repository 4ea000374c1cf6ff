#!/usr/bin/env bash
# Build the test runtime image peergroup/test:latest from a prebuilt binary.
#
#   bash docker/test-image.sh path/to/peergroup [tag]
#
# The build context is a temporary directory holding only the binary (and the Dockerfile),
# so nothing from the repository (target/ is gigabytes) is sent to the daemon. Needs
# peergroup/base:bookworm (docker/base-image.sh). Uses the classic builder
# (DOCKER_BUILDKIT=0): the CLI on the CI machines has no buildx plugin and BuildKit would
# try to resolve the base image from a registry there is none of.
#
# Environment: PEERGROUP_STRIP=1 strips debug info from the copy put in the image (the
# release profile keeps line tables, about 85 MB; stripped, about 16 MB).

set -euo pipefail

log() { printf '[test-image] %s\n' "$*" >&2; }
die() {
  printf '[test-image] ERROR: %s\n' "$*" >&2
  exit 1
}

if [ "$#" -lt 1 ] || [ "$#" -gt 2 ]; then
  die "usage: $0 path/to/peergroup [tag]"
fi
binary=$1
tag=${2:-peergroup/test:latest}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

if [ ! -f "$binary" ] || [ ! -x "$binary" ]; then
  die "$binary is not an executable file"
fi
docker image inspect peergroup/base:bookworm >/dev/null 2>&1 ||
  die "peergroup/base:bookworm is missing: run docker/base-image.sh first"

context=$(mktemp -d "${TMPDIR:-/tmp}/peergroup-test-image.XXXXXX")
trap 'rm -rf "$context"' EXIT
cp "$binary" "$context/peergroup"
if [ "${PEERGROUP_STRIP:-0}" = 1 ]; then
  strip --strip-debug "$context/peergroup"
fi
cp "$here/Dockerfile.test" "$context/Dockerfile"

t0=$(date +%s)
log "building $tag from $binary ($(du -h "$context/peergroup" | cut -f1))"
DOCKER_BUILDKIT=0 docker build --quiet --tag "$tag" "$context" >/dev/null
log "built $tag in $(($(date +%s) - t0))s: $(docker image inspect --format '{{.Id}}' "$tag")"
log "binary in image: $(docker run --rm --entrypoint peergroup "$tag" --version)"

#!/usr/bin/env bash
# The multi-node docker compose suite (issue 12): five `peergroup` containers (seed, m1..m4)
# on one bridge network, driven through each container's CLI (`docker exec ... peergroup`,
# which talks to that container's node over its control API). Run as root, offline:
#
#   bash tests/compose/run.sh [scenario...]      # default: every scenario, in order
#
# Scenarios (each prints a row: scenario, nodes, seconds to converge, result):
#   converge   five nodes join one group; three of them write; every digest is equal
#   late       the seed writes 10,000 records; a sixth node joins and copies them
#              (its SyncProgress events are counted)
#   partition  m3 and m4 are cut off (docker network disconnect); both sides write,
#              including an update and a delete of the same record; reconnect; equal digests
#   restart    while the seed writes, m2 is restarted (docker restart) and m1 killed
#              (docker kill -s KILL): both keep their peer id, identities and every record
#              they acknowledged, and catch up
#   churn      for CHURN_SECS (60) members stop and start at random while the seed writes;
#              then all converge
#   outsider   a node that knows the group's name but was never invited: its join, reads
#              and writes are refused, and no record's plaintext reaches its disk or its logs
#
# Before the scenarios: docker/ensure-docker.sh (installs docker.io and docker-compose and
# starts dockerd when absent), docker/base-image.sh (peergroup/base:bookworm by debootstrap,
# cached), docker/test-image.sh (peergroup/test:latest from the binary already built).
# The table goes to stdout and to $COMPOSE_TABLE (default tests/compose/.build/last-run.md).
#
# Environment:
#   PEERGROUP_BINARY  the binary for the image (default: the debug build under
#                     $CARGO_TARGET_DIR or ~/.cache/peergroup/target, which the test suite
#                     builds; debug symbols are stripped in the image)
#   CHURN_SECS        length of the churn loop (default 60)
#   LATE_RECORDS      records of the late-joiner scenario (default 10000)
#   CONVERGE_SECS     how long a scenario may take to converge (default 120)
#   COMPOSE_KEEP=1    leave the containers up afterwards
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
target=${CARGO_TARGET_DIR:-$HOME/.cache/peergroup/target}
binary=${PEERGROUP_BINARY:-$target/debug/peergroup}
export PEERGROUP_IMAGE=${PEERGROUP_IMAGE:-peergroup/test:latest}
export COMPOSE_PROJECT_NAME=${COMPOSE_PROJECT_NAME:-peergroup-compose}
export SEED_PEER_ID=${SEED_PEER_ID:-}
churn_secs=${CHURN_SECS:-60}
late_records=${LATE_RECORDS:-10000}
converge_secs=${CONVERGE_SECS:-120}
table=${COMPOSE_TABLE:-$here/.build/last-run.md}
compose=(docker-compose -f "$here/docker-compose.yml")
members=(m1 m2 m3 m4)

log() { printf '[compose %s] %s\n' "$(date +%T)" "$*" >&2; }
die() {
  printf '[compose %s] FAIL: %s\n' "$(date +%T)" "$*" >&2
  exit 1
}
now_ms() { date +%s%3N; }
secs_since() { awk -v a="$1" -v b="$(now_ms)" 'BEGIN { printf "%.1f", (b - a) / 1000 }'; }

[ "$(id -u)" = 0 ] || die "run as root"
[ -x "$binary" ] || die "no binary at $binary: cargo build -p peergroup-node --features cli --bin peergroup"

# --- docker, images ----------------------------------------------------------------------
# shellcheck source=/dev/null
source "$repo/docker/ensure-docker.sh"
bash "$repo/docker/base-image.sh"
PEERGROUP_STRIP=1 bash "$repo/docker/test-image.sh" "$binary" "$PEERGROUP_IMAGE"

container() { printf '%s_%s_1' "$COMPOSE_PROJECT_NAME" "$1"; }
network() { printf '%s_peergroup' "$COMPOSE_PROJECT_NAME"; }

# The CLI of a service's node (its own data directory and control API).
pg() {
  local service=$1
  shift
  docker exec "$(container "$service")" peergroup --data-dir /data "$@"
}

teardown() {
  local status=$?
  if [ "${COMPOSE_KEEP:-0}" = 1 ]; then
    log "COMPOSE_KEEP=1: leaving the containers up"
  else
    if [ "$status" != 0 ]; then
      for s in seed m1 m2 m3 m4 late outsider; do
        docker logs --tail 30 "$(container "$s")" 2>&1 | sed "s/^/[$s] /" >&2 || true
      done
    fi
    "${compose[@]}" down -v --remove-orphans >/dev/null 2>&1 || true
  fi
  exit "$status"
}
trap teardown EXIT

# Waits (bounded) until the node in `service` answers `status`.
wait_up() {
  local service=$1 deadline=$(($(date +%s) + 60))
  until pg "$service" status >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || die "$service did not start"
    sleep 0.5
  done
}

# Prints the digest of $GROUP on `service` (empty if it cannot tell now).
digest() { pg "$1" group digest "$GROUP" 2>/dev/null || true; }

# Waits until every listed service holds the same database; prints the seconds it took.
converge() {
  local start deadline first d ok s
  start=$(now_ms)
  deadline=$(($(date +%s) + converge_secs))
  while true; do
    ok=1
    first=$(digest "$1")
    [ -n "$first" ] || ok=0
    for s in "${@:2}"; do
      d=$(digest "$s")
      [ "$d" = "$first" ] || ok=0
    done
    if [ "$ok" = 1 ]; then
      secs_since "$start"
      return 0
    fi
    if [ "$(date +%s)" -ge "$deadline" ]; then
      for s in "$@"; do log "$s: $(digest "$s") ($(pg "$s" record list "$GROUP" --limit all 2>/dev/null | wc -l) records)"; done
      return 1
    fi
    sleep 0.5
  done
}

rows=()
row() { # scenario nodes seconds result
  rows+=("| $1 | $2 | $3 | $4 |")
  log "$1: $4 ($3 s)"
}

# Waits until `services` converge and prints the scenario's row: seconds since `start`,
# or FAILED (and returns 1).
settled() { # name nodes start services...
  local name=$1 nodes=$2 start=$3
  shift 3
  if converge "$@" >/dev/null; then
    row "$name" "$nodes" "$(secs_since "$start")" ok
  else
    row "$name" "$nodes" "-" FAILED
    return 1
  fi
}

# Invites `service` (as an admin, so that it may update and delete anyone's records) and
# joins it through the seed.
join() {
  local service=$1 text invitation
  text=$(pg "$service" identity show --text)
  invitation=$(pg seed invite create "$GROUP" "$text" --role admin)
  pg "$service" join "$invitation" --no-progress --address "/dns4/seed/tcp/3587/p2p/$SEED_PEER_ID" >/dev/null
}

# --- the nodes -----------------------------------------------------------------------------
"${compose[@]}" down -v --remove-orphans >/dev/null 2>&1 || true
log "starting the seed"
"${compose[@]}" up -d seed >/dev/null
wait_up seed
SEED_PEER_ID=$(pg seed status --json | sed -n 's/.*"peer_id": "\([^"]*\)".*/\1/p')
[ -n "$SEED_PEER_ID" ] || die "no seed peer id"
export SEED_PEER_ID
log "seed peer id $SEED_PEER_ID; starting the members"
"${compose[@]}" up -d "${members[@]}" >/dev/null
for m in "${members[@]}"; do wait_up "$m"; done

GROUP=$(pg seed group create compose --name "Compose suite")
log "group $GROUP"

scenario_converge() {
  local start
  start=$(now_ms)
  for m in "${members[@]}"; do join "$m"; done
  pg seed record add "$GROUP" --data "seed writes" --repeat 20 >/dev/null
  pg m1 record add "$GROUP" --data "m1 writes" --repeat 20 >/dev/null
  pg m2 record add "$GROUP" --data "m2 writes" --repeat 20 >/dev/null
  settled "converge: 4 joins, 60 writes on 3 nodes" 5 "$start" seed "${members[@]}"
}

scenario_late() {
  local start secs progress
  log "the seed writes $late_records records"
  start=$(now_ms)
  pg seed record add "$GROUP" --data "bulk" --repeat "$late_records" >/dev/null
  log "written in $(secs_since "$start") s; starting the late joiner"
  "${compose[@]}" up -d late >/dev/null
  wait_up late
  docker exec "$(container late)" sh -c \
    "peergroup --data-dir /data events --kind SyncProgress > /tmp/progress.jsonl 2>&1 &"
  sleep 1
  start=$(now_ms)
  join late
  if converge seed late >/dev/null; then
    secs=$(secs_since "$start")
    progress=$(docker exec "$(container late)" sh -c 'wc -l < /tmp/progress.jsonl')
    row "late joiner copies $late_records records ($progress progress events)" 6 "$secs" ok
  else
    row "late joiner copies $late_records records" 6 "-" FAILED
    return 1
  fi
  "${compose[@]}" stop late >/dev/null
}

scenario_partition() {
  local start target
  target=$(pg m1 record add "$GROUP" --data "contested")
  converge seed "${members[@]}" >/dev/null || die "not converged before the partition"
  log "cutting m3 and m4 off"
  docker network disconnect "$(network)" "$(container m3)"
  docker network disconnect "$(network)" "$(container m4)"
  pg seed record add "$GROUP" --data "majority side" --repeat 10 >/dev/null
  pg m1 record update "$GROUP" "$target" --data "updated on the majority side" >/dev/null
  pg m3 record add "$GROUP" --data "minority side" --repeat 10 >/dev/null
  pg m4 record delete "$GROUP" "$target" >/dev/null
  # The cut is real: the sides hold different databases now.
  [ "$(digest m3)" != "$(digest seed)" ] || die "m3 still converged with the seed while cut off"
  [ "$(digest m4)" != "$(digest m1)" ] || die "m4 still converged with m1 while cut off"
  start=$(now_ms)
  log "reconnecting m3 and m4"
  docker network connect --alias m3 "$(network)" "$(container m3)"
  docker network connect --alias m4 "$(network)" "$(container m4)"
  settled "partition: both sides write, update and delete one record, heal" 5 "$start" \
    seed "${members[@]}"
}

scenario_restart() {
  local start m1_id m2_id m1_names m2_names acked writer missing
  m1_id=$(pg m1 status --json | grep peer_id)
  m2_id=$(pg m2 status --json | grep peer_id)
  m1_names=$(pg m1 identity list)
  m2_names=$(pg m2 identity list)
  # Records m1 acknowledged (their add returned) just before it is killed.
  acked=$(pg m1 record add "$GROUP" --data "acknowledged by m1" --repeat 20)
  (for _ in $(seq 1 40); do pg seed record add "$GROUP" --data "while restarting" >/dev/null 2>&1 || true; sleep 0.1; done) &
  writer=$!
  docker restart -t 10 "$(container m2)" >/dev/null
  docker kill -s KILL "$(container m1)" >/dev/null
  sleep 1
  docker start "$(container m1)" >/dev/null
  wait_up m1
  wait_up m2
  wait "$writer"
  start=$(now_ms)
  [ "$(pg m1 status --json | grep peer_id)" = "$m1_id" ] || die "m1 has a new peer id"
  [ "$(pg m2 status --json | grep peer_id)" = "$m2_id" ] || die "m2 has a new peer id"
  [ "$(pg m1 identity list)" = "$m1_names" ] || die "m1 lost identities"
  [ "$(pg m2 identity list)" = "$m2_names" ] || die "m2 lost identities"
  missing=0
  for id in $acked; do
    pg m1 record get "$GROUP" "$id" >/dev/null 2>&1 || missing=$((missing + 1))
  done
  [ "$missing" = 0 ] || die "m1 lost $missing acknowledged records after SIGKILL"
  settled "restart m2, SIGKILL m1 while the seed writes (peer ids, identities, 20 acked records kept)" \
    5 "$start" seed "${members[@]}"
}

scenario_churn() {
  local start end writer m
  log "churn for $churn_secs s"
  end=$(($(date +%s) + churn_secs))
  (while [ "$(date +%s)" -lt "$end" ]; do pg seed record add "$GROUP" --data "churn" >/dev/null 2>&1 || true; sleep 0.2; done) &
  writer=$!
  while [ "$(date +%s)" -lt "$end" ]; do
    m=${members[$((RANDOM % ${#members[@]}))]}
    if [ "$(docker inspect -f '{{.State.Running}}' "$(container "$m")")" = true ]; then
      docker stop -t 5 "$(container "$m")" >/dev/null
    else
      docker start "$(container "$m")" >/dev/null
    fi
    sleep $((2 + RANDOM % 4))
  done
  wait "$writer"
  for m in "${members[@]}"; do docker start "$(container "$m")" >/dev/null; done
  for m in "${members[@]}"; do wait_up "$m"; done
  start=$(now_ms)
  settled "churn: members leave and rejoin for ${churn_secs} s while the seed writes" 5 "$start" \
    seed "${members[@]}"
}

scenario_outsider() {
  local start marker before text invitation out
  start=$(now_ms)
  marker="plaintext-marker-$RANDOM$RANDOM"
  "${compose[@]}" up -d outsider >/dev/null
  wait_up outsider
  pg m2 record add "$GROUP" --data "$marker" >/dev/null
  converge seed "${members[@]}" >/dev/null || die "not converged"
  before=$(digest seed)
  # An invitation for m1, replayed by the outsider: not for its identity.
  text=$(pg m1 identity show --text)
  invitation=$(pg seed invite create "$GROUP" "$text")
  if out=$(pg outsider join "$invitation" --no-progress --address "/dns4/seed/tcp/3587/p2p/$SEED_PEER_ID" 2>&1); then
    die "the outsider joined with somebody else's invitation: $out"
  fi
  grep -q PEER_E_INVITATION_NOT_TRUSTED <<<"$out" || die "unexpected refusal: $out"
  if pg outsider record add "$GROUP" --data "outsider write" >/dev/null 2>&1; then
    die "the outsider wrote"
  fi
  if pg outsider record list "$GROUP" >/dev/null 2>&1; then
    die "the outsider read the group"
  fi
  sleep 5
  [ "$(digest seed)" = "$before" ] || die "the outsider changed the group"
  if docker exec "$(container outsider)" grep -rqa "$marker" /data; then
    die "the record's plaintext is in the outsider's data directory"
  fi
  if docker logs "$(container outsider)" 2>&1 | grep -qa "$marker"; then
    die "the record's plaintext is in the outsider's logs"
  fi
  row "outsider: join, write and read refused; no plaintext on its disk or in its logs" 6 "$(secs_since "$start")" ok
  "${compose[@]}" stop outsider >/dev/null
}

scenarios=("$@")
[ "${#scenarios[@]}" -gt 0 ] || scenarios=(converge late partition restart churn outsider)
failed=0
for s in "${scenarios[@]}"; do
  [ "$s" = converge ] || [ "${joined:-0}" = 1 ] || { scenario_converge || failed=1; joined=1; }
  [ "$s" != converge ] || joined=1
  log "scenario $s"
  "scenario_$s" || failed=1
done

mkdir -p "$(dirname "$table")"
{
  echo "| scenario | nodes | seconds to converge | result |"
  echo "| --- | --- | --- | --- |"
  printf '%s\n' "${rows[@]}"
} | tee "$table"
exit "$failed"

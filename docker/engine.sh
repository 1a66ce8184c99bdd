#!/usr/bin/env bash
# A Docker engine of the project's own, for building docker/Dockerfile and running the image
# in the tests (tests/docker/), on a machine where no engine runs and no image registry is
# reached: Debian's packages only.
#
#   docker/engine.sh start   # install docker.io, debootstrap, docker-compose if missing; start
#                            # dockerd with its own data root, exec root, pidfile and socket
#   docker/engine.sh base    # a Debian bookworm base image (debootstrap + docker import)
#   docker/engine.sh build   # docker/Dockerfile on that base -> the image $SHADOW_IMAGE
#   docker/engine.sh stop    # stop the dockerd that `start` started, by its pid
#   eval "$(docker/engine.sh env)"   # DOCKER_HOST and SHADOW_IMAGE for docker and the tests
#   docker/engine.sh socket  # the socket's path
#
# Everything lives under build/docker/ (ENGINE_DIR). The daemon has no iptables rules and no
# default bridge (--iptables=false --bridge=none): builds use the host's network, and the
# compose project's own network joins its containers. Storage is overlay2 where the kernel
# allows it, else vfs (slower: every layer a full copy). The base image carries this host's
# CA bundle, so that pip inside the build trusts what the host trusts (a proxy's own CA).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DIR=${ENGINE_DIR:-$ROOT/build/docker}
# A unix socket's path holds at most 107 bytes, and containerd's sockets lie 35 bytes deeper
# than DIR: a checkout too deep for that keeps its engine under /tmp instead.
if [ -z "${ENGINE_DIR:-}" ] && [ ${#DIR} -gt 64 ]; then
  DIR=/tmp/shadow-docker-$(printf '%s' "$ROOT" | cksum | cut -d' ' -f1)
fi
SOCK=$DIR/docker.sock
PIDFILE=$DIR/dockerd.pid
BASE_IMAGE=${SHADOW_BASE_IMAGE:-shadow-base:bookworm}
IMAGE=${SHADOW_IMAGE:-shadow:test}
export DOCKER_HOST=unix://$SOCK

say() { echo "engine: $*" >&2; }
fail() { say "$*"; exit 1; }

install_missing() {
  local want=()
  command -v dockerd >/dev/null || [ -x /usr/sbin/dockerd ] || want+=(docker.io)
  command -v docker >/dev/null || want+=(docker.io)
  [ -x /usr/sbin/debootstrap ] || command -v debootstrap >/dev/null || want+=(debootstrap)
  command -v docker-compose >/dev/null || want+=(docker-compose)
  [ ${#want[@]} -eq 0 ] && return
  say "installing ${want[*]}"
  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${want[@]}"
}

running() { [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }

answering() { docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

launch() {  # launch DRIVER: start dockerd, wait (bounded) until it answers on its socket
  local driver=$1
  mkdir -p "$DIR/data" "$DIR/exec"
  setsid "$(PATH=$PATH:/usr/sbin command -v dockerd)" \
    --data-root "$DIR/data" --exec-root "$DIR/exec" --pidfile "$PIDFILE" \
    --host "$DOCKER_HOST" --iptables=false --ip6tables=false --bridge=none \
    --storage-driver "$driver" >"$DIR/dockerd.log" 2>&1 </dev/null &
  local pid=$! i
  for i in $(seq 120); do
    answering && return 0
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  return 1
}

start() {
  if running && answering; then say "already running (pid $(cat "$PIDFILE"))"; return; fi
  install_missing
  local driver
  for driver in ${STORAGE_DRIVER:-overlay2 vfs}; do
    if launch "$driver"; then
      say "dockerd $(docker version --format '{{.Server.Version}}') on $SOCK, storage $driver," \
        "pid $(cat "$PIDFILE")"
      return
    fi
    say "dockerd did not start with storage $driver: $(tail -n 3 "$DIR/dockerd.log" | tr '\n' ' ')"
    rm -rf "$DIR/data"  # a half-made data root of another driver is not reused
  done
  fail "no Docker engine could be started here (log: $DIR/dockerd.log)"
}

stop() {
  running || { say "not running"; rm -f "$PIDFILE"; return; }
  local pid i
  pid=$(cat "$PIDFILE")
  kill -TERM "$pid"
  for i in $(seq 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  if kill -0 "$pid" 2>/dev/null; then say "dockerd $pid ignored TERM for 30 s: KILL"; kill -KILL "$pid"; fi
  rm -f "$PIDFILE"
  # dockerd leaves its default network namespace mounted in the exec root: unmount what is
  # mounted under DIR (and only there), deepest first, so the folder can be removed.
  local mount
  while read -r mount; do
    umount "$mount" 2>/dev/null || umount -l "$mount" 2>/dev/null || true
  done < <(awk -v dir="$DIR/" 'index($2, dir) == 1 { print $2 }' /proc/mounts | sort -r)
  say "stopped dockerd $pid"
}

base() {
  answering || fail "no engine on $SOCK: run docker/engine.sh start"
  if docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then return; fi
  local rootfs=$DIR/rootfs
  if [ ! -x "$rootfs/usr/bin/python3" ]; then
    rm -rf "$rootfs"
    say "debootstrap bookworm (minbase, python3, python3-venv) into $rootfs"
    debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
      bookworm "$rootfs" http://deb.debian.org/debian >"$DIR/debootstrap.log" 2>&1 \
      || fail "debootstrap failed (log: $DIR/debootstrap.log)"
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  fi
  cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
  tar -C "$rootfs" -c . | docker import - "$BASE_IMAGE" >/dev/null
  say "imported $BASE_IMAGE"
}

build() {
  base
  docker build --network host -f "$ROOT/docker/Dockerfile" -t "$IMAGE" \
    --build-arg BASE="$BASE_IMAGE" \
    --build-arg PIP_CERT=/etc/ssl/certs/ca-certificates.crt "$ROOT" >"$DIR/build.log" 2>&1 \
    || { tail -n 30 "$DIR/build.log" >&2; fail "docker build failed (log: $DIR/build.log)"; }
  say "built $IMAGE from docker/Dockerfile on $BASE_IMAGE"
}

case ${1:-} in
  start) start ;;
  stop) stop ;;
  base) base ;;
  build) build ;;
  env) echo "export DOCKER_HOST=$DOCKER_HOST SHADOW_IMAGE=$IMAGE" ;;
  socket) echo "$SOCK" ;;
  *) fail "usage: docker/engine.sh start|base|build|stop|env|socket" ;;
esac

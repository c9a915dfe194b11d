#!/usr/bin/env bash
# Local build services for Starforge: dockerd (embedded BuildKit) and a Docker registry.
#   scripts/services.sh up      install what is missing, start both, push the base image
#   scripts/services.sh down    stop both
#   scripts/services.sh status  show what is running
#   scripts/services.sh env     print the environment the build services read
# Idempotent: `up` on running services only checks them.
set -euo pipefail

STATE=/var/lib/starforge
RUN=/run/starforge
DOCKER_SOCK="$RUN/docker.sock"
DOCKER_PID="$RUN/docker.pid"
DOCKER_LOG="$STATE/dockerd.log"
REGISTRY_ADDR=127.0.0.1:5000
REGISTRY_CONF="$STATE/registry.yml"
REGISTRY_PID="$RUN/registry.pid"
REGISTRY_LOG="$STATE/registry.log"
BASE_REPO=base/busybox
BASE_TAG=latest
BASE_IMAGE="$REGISTRY_ADDR/$BASE_REPO:$BASE_TAG"
PACKAGES=(docker.io docker-registry busybox-static umoci skopeo)
WAIT_SECONDS=${STARFORGE_SERVICES_TIMEOUT:-90}
MANIFEST_ACCEPT="application/vnd.oci.image.manifest.v1+json,application/vnd.docker.distribution.manifest.v2+json"

BASE_WORK=""
trap '[[ -z "$BASE_WORK" ]] || rm -rf "$BASE_WORK"' EXIT

log() { printf 'services: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

alive() { [[ -f "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

docker_ok() { curl --noproxy "*" -fsS --max-time 2 --unix-socket "$DOCKER_SOCK" http://docker/_ping >/dev/null 2>&1; }

registry_ok() { curl --noproxy "*" -fsS --max-time 2 "http://$REGISTRY_ADDR/v2/" >/dev/null 2>&1; }

base_present() {
  curl --noproxy "*" -fsS --max-time 5 -o /dev/null -H "Accept: $MANIFEST_ACCEPT" \
    "http://$REGISTRY_ADDR/v2/$BASE_REPO/manifests/$BASE_TAG" 2>/dev/null
}

# wait_for NAME CHECK PIDFILE LOGFILE: poll CHECK with progress until it passes or the timeout.
wait_for() {
  local name=$1 check=$2 pidfile=$3 logfile=$4 waited=0
  printf 'services: waiting for %s ' "$name" >&2
  until "$check"; do
    if ! alive "$pidfile"; then
      printf '\n' >&2
      tail -n 20 "$logfile" >&2 || true
      die "$name exited; log: $logfile"
    fi
    if ((waited >= WAIT_SECONDS)); then
      printf '\n' >&2
      tail -n 20 "$logfile" >&2 || true
      die "$name did not answer within ${WAIT_SECONDS}s; log: $logfile"
    fi
    printf '.' >&2
    sleep 1
    waited=$((waited + 1))
  done
  printf ' up (%ss)\n' "$waited" >&2
}

install_packages() {
  local missing=() pkg
  for pkg in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  ((${#missing[@]} == 0)) && return 0
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get -o DPkg::Lock::Timeout=600 install -y "${missing[@]}"; then
    apt-get -o DPkg::Lock::Timeout=600 update
    apt-get -o DPkg::Lock::Timeout=600 install -y "${missing[@]}"
  fi
}

start_dockerd() {
  if docker_ok; then
    log "dockerd already answering on $DOCKER_SOCK"
    return 0
  fi
  alive "$DOCKER_PID" && die "dockerd (pid $(cat "$DOCKER_PID")) runs but does not answer; run '$0 down' first"
  rm -f "$DOCKER_PID"
  log "starting dockerd (log: $DOCKER_LOG)"
  setsid /usr/sbin/dockerd --iptables=false --ip-masq=false --bridge=none --storage-driver=vfs \
    --data-root "$STATE/docker" --exec-root "$RUN/docker-exec" \
    -H "unix://$DOCKER_SOCK" --pidfile "$DOCKER_PID" >>"$DOCKER_LOG" 2>&1 </dev/null 9>&- &
  local waited=0
  until [[ -s "$DOCKER_PID" ]]; do
    ((waited++ < 20)) || { tail -n 20 "$DOCKER_LOG" >&2; die "dockerd wrote no pidfile"; }
    sleep 0.5
  done
  wait_for dockerd docker_ok "$DOCKER_PID" "$DOCKER_LOG"
}

write_registry_config() {
  cat >"$REGISTRY_CONF" <<EOF
version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: $STATE/registry
  delete:
    enabled: true
http:
  addr: $REGISTRY_ADDR
EOF
}

start_registry() {
  if registry_ok; then
    log "registry already answering on $REGISTRY_ADDR"
    return 0
  fi
  alive "$REGISTRY_PID" && die "registry (pid $(cat "$REGISTRY_PID")) runs but does not answer; run '$0 down' first"
  write_registry_config
  log "starting docker-registry on $REGISTRY_ADDR (log: $REGISTRY_LOG)"
  setsid /usr/bin/docker-registry serve "$REGISTRY_CONF" >>"$REGISTRY_LOG" 2>&1 </dev/null 9>&- &
  echo $! >"$REGISTRY_PID"
  wait_for registry registry_ok "$REGISTRY_PID" "$REGISTRY_LOG"
}

# An OCI image holding only busybox-static and its applet symlinks (/bin/sh among them).
push_base_image() {
  if base_present; then
    log "base image $BASE_IMAGE present"
    return 0
  fi
  log "making base image $BASE_IMAGE"
  BASE_WORK=$(mktemp -d)
  make_base_image "$BASE_WORK"
  rm -rf "$BASE_WORK"
  base_present || die "base image not found in the registry after push"
  log "pushed $BASE_IMAGE"
}

make_base_image() {
  local work=$1
  umoci init --layout "$work/oci"
  umoci new --image "$work/oci:$BASE_TAG"
  umoci unpack --image "$work/oci:$BASE_TAG" "$work/bundle"
  local rootfs="$work/bundle/rootfs"
  mkdir -p "$rootfs"/{bin,sbin,usr/bin,usr/sbin,etc,tmp,root,proc,sys,dev}
  chmod 1777 "$rootfs/tmp"
  install -m 0755 /bin/busybox "$rootfs/bin/busybox"
  chroot "$rootfs" /bin/busybox --install -s
  printf 'root:x:0:0:root:/root:/bin/sh\n' >"$rootfs/etc/passwd"
  printf 'root:x:0:\n' >"$rootfs/etc/group"
  umoci repack --image "$work/oci:$BASE_TAG" "$work/bundle"
  umoci config --image "$work/oci:$BASE_TAG" \
    --config.env PATH=/usr/sbin:/usr/bin:/sbin:/bin --config.cmd /bin/sh
  skopeo copy --dest-tls-verify=false "oci:$work/oci:$BASE_TAG" "docker://$BASE_IMAGE"
}

# stop NAME PIDFILE: TERM the process, wait up to 30s, then KILL it.
stop() {
  local name=$1 pidfile=$2 pid waited=0
  if ! alive "$pidfile"; then
    log "$name not running"
    rm -f "$pidfile"
    return 0
  fi
  pid=$(cat "$pidfile")
  log "stopping $name (pid $pid)"
  kill -TERM "$pid"
  while kill -0 "$pid" 2>/dev/null; do
    if ((waited >= 60)); then
      log "$name did not stop; killing"
      kill -KILL "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.5
    waited=$((waited + 1))
  done
  rm -f "$pidfile"
}

# One `up`/`down` at a time: concurrent test sessions must not start two daemons.
lock() {
  mkdir -p "$RUN"
  exec 9>"$RUN/services.lock"
  flock -w 300 9 || die "another services.sh holds $RUN/services.lock"
}

cmd_up() {
  [[ $EUID -eq 0 ]] || die "must run as root (starts dockerd)"
  lock
  install_packages
  mkdir -p "$STATE/registry" "$STATE/docker" "$RUN"
  start_dockerd
  start_registry
  push_base_image
  log "ready"
}

cmd_down() {
  lock
  stop registry "$REGISTRY_PID"
  stop dockerd "$DOCKER_PID"
}

cmd_status() {
  local rc=0
  if docker_ok; then log "dockerd: up ($DOCKER_SOCK)"; else log "dockerd: down"; rc=1; fi
  if registry_ok; then log "registry: up ($REGISTRY_ADDR)"; else log "registry: down"; rc=1; fi
  if base_present; then log "base image: $BASE_IMAGE"; else log "base image: missing"; rc=1; fi
  return $rc
}

cmd_env() {
  echo "export STARFORGE_BUILDKIT_ADDR=docker://$DOCKER_SOCK STARFORGE_REGISTRY=$REGISTRY_ADDR/apps STARFORGE_BASE_IMAGE=$BASE_IMAGE"
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  env) cmd_env ;;
  *) echo "usage: $0 up|down|status|env" >&2; exit 2 ;;
esac

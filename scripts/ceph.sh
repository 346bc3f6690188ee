#!/usr/bin/env bash
# A real S3 server for tests: Ceph radosgw from Debian (16.2, Pacific) as plain processes in one
# folder: no systemd, no cephx, nothing outside DIR. Used by test/unit/storage/conformance.test.ts.
#   scripts/ceph.sh up DIR [PORT] [OSDS]   start (DIR new: create) 1 monitor, OSDS OSDs (default 1) and
#                                          radosgw on 127.0.0.1:PORT (default 7480); prints the endpoint and keys
#   scripts/ceph.sh down DIR               stop DIR's daemons by their pid files (gateway, OSDs, monitor)
# With OSDS >= 2 every pool keeps min(OSDS, 3) copies, so one OSD can be killed (fault tests).
# Environment: MON_PORT (default PORT+1; msgr v1 on MON_PORT+1), STORE (memstore: in RAM, fast, the
# default; bluestore: a 20 GiB sparse file per OSD, kept across down/up), MEMSTORE_BYTES (each
# memstore OSD's capacity, default 4 GiB: writes stop once it is full), READY_TIMEOUT (120 s).
# Installs radosgw, ceph-mon and ceph-osd (scripts/install-deps.sh --only --s3; ~1 min, ~340 MB) when
# they are missing and it runs as root.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ACCESS_KEY=devsnap-test-key
SECRET_KEY=devsnap-test-secret

usage() { echo "usage: scripts/ceph.sh up DIR [PORT] [OSDS] | down DIR" >&2; exit 2; }

# Kills one daemon by its pid file, only if that pid is still a process of this cluster (its command
# line names DIR's ceph.conf): a stale pid file must never kill someone else's process.
stop_pidfile() {
  local f=$1 conf=$2 p
  p=$(cat "$f" 2>/dev/null || true)
  if [[ $p =~ ^[0-9]+$ ]] && { tr '\0' ' ' <"/proc/$p/cmdline"; } 2>/dev/null | grep -qF -- "$conf"; then
    kill "$p" 2>/dev/null || true
    for _ in $(seq 1 150); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$p" 2>/dev/null; then echo "ceph.sh: $(basename "$f" .pid) ($p) did not stop in 15 s; killing it" >&2; kill -9 "$p" 2>/dev/null || true; fi
  fi
  rm -f "$f"
}

down() {
  local D=$1 pat f
  [ -d "$D/run" ] || return 0
  D=$(cd "$D" && pwd)
  for pat in 'client.rgw.*' 'osd.*' 'mon.*'; do
    for f in "$D"/run/$pat.pid; do [ -f "$f" ] && stop_pidfile "$f" "$D/ceph.conf"; done
  done
  return 0
}

install_if_missing() {
  local missing=0 c
  for c in ceph-mon ceph-osd radosgw radosgw-admin curl; do command -v "$c" >/dev/null || missing=1; done
  [ $missing = 0 ] && return 0
  if [ "$(id -u)" != 0 ]; then
    echo "ceph.sh: Ceph is not installed. Install it with: sudo apt-get install --no-install-recommends radosgw ceph-mon ceph-osd curl" >&2
    exit 1
  fi
  bash "$HERE/install-deps.sh" --only --s3
}

write_conf() {
  local D=$1 PORT=$2 MONP=$3 OSDS=$4 STORE=$5 SIZE MINSIZE
  SIZE=$((OSDS < 3 ? OSDS : 3)); MINSIZE=$((SIZE > 1 ? SIZE - 1 : 1))
  cat >"$D/ceph.conf" <<EOF
[global]
fsid = $(cat /proc/sys/kernel/random/uuid)
mon host = [v2:127.0.0.1:$MONP,v1:127.0.0.1:$((MONP + 1))]
public network = 127.0.0.0/8
# No cephx: the cluster is reachable on 127.0.0.1 only and lives as long as a test.
auth cluster required = none
auth service required = none
auth client required = none
# Without auth, msgr2 must be allowed crc mode, else clients loop on "get_initial_auth_request returned -13".
ms mon client mode = crc secure
ms client mode = crc secure
ms mon cluster mode = crc secure
ms mon service mode = crc secure
ms cluster mode = crc secure
ms service mode = crc secure
ms bind ipv6 = false
run dir = $D/run
admin socket = $D/run/\$name.asok
pid file = $D/run/\$name.pid
log file = $D/log/\$name.log
# One host: copies go to different OSDs (type 0), and few placement groups (the default 32 per pool
# exceed "mon max pg per osd" with one OSD).
osd crush chooseleaf type = 0
osd pool default size = $SIZE
osd pool default min size = $MINSIZE
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon allow pool size one = true
mon allow pool delete = true
mon max pg per osd = 1000
mon warn on pool no redundancy = false
# The monitor stops when its disk is under 5% free; a test machine's disk may well be.
mon data avail warn = 1
mon data avail crit = 0
[mon]
mon data = $D/mon/\$cluster-\$id
[osd]
osd data = $D/osd/\$cluster-\$id
osd objectstore = $STORE
memstore device bytes = ${MEMSTORE_BYTES:-4294967296}
bluestore block create = true
bluestore block size = 21474836480
osd memory target = 1073741824
bluestore cache autotune = false
bluestore cache size = 268435456
[client.rgw.a]
rgw data = $D/rgw/\$cluster-\$id
rgw dns name = localhost
# tcp_nodelay: without it every request waits ~40 ms for a delayed ACK (Nagle), 20x the request itself.
rgw frontends = beast endpoint=127.0.0.1:$PORT tcp_nodelay=1
EOF
}

up() {
  local D=$1 PORT=$2 OSDS=$3 MONP=${MON_PORT:-$(($2 + 1))} STORE=${STORE:-memstore} T=${READY_TIMEOUT:-120} C id uuid o
  [[ $PORT =~ ^[0-9]+$ && $OSDS =~ ^[1-9][0-9]*$ ]] || usage
  install_if_missing
  mkdir -p "$D"; D=$(cd "$D" && pwd); C="$D/ceph.conf"
  trap 'echo "ceph.sh: the cluster in $D did not start; its logs are in $D/log. Stop what runs with: scripts/ceph.sh down $D" >&2' ERR
  if [ ! -f "$C" ]; then
    mkdir -p "$D"/{run,log,mon,osd,rgw/ceph-rgw.a}
    write_conf "$D" "$PORT" "$MONP" "$OSDS" "$STORE"
    monmaptool --create --addv a "[v2:127.0.0.1:$MONP,v1:127.0.0.1:$((MONP + 1))]" --fsid "$(sed -n 's/^fsid = //p' "$C")" "$D/monmap" >/dev/null
    ceph-authtool --create-keyring "$D/mon.keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
    ceph-mon -c "$C" -i a --mkfs --monmap "$D/monmap" --keyring "$D/mon.keyring"
    ceph-mon -c "$C" -i a
    for _ in $(seq 1 "$OSDS"); do
      uuid=$(cat /proc/sys/kernel/random/uuid)
      id=$(timeout 60 ceph -c "$C" --connect-timeout 30 osd new "$uuid")
      mkdir -p "$D/osd/ceph-$id"
      ceph-osd -c "$C" -i "$id" --mkfs --osd-uuid "$uuid" >>"$D/log/mkfs.log" 2>&1
      timeout "$T" ceph-osd -c "$C" -i "$id" >>"$D/log/start.log" 2>&1 # returns once it runs in the background
    done
  else # an existing cluster (STORE=bluestore keeps its data): start its daemons again
    ceph-mon -c "$C" -i a
    for o in "$D"/osd/ceph-*; do timeout "$T" ceph-osd -c "$C" -i "${o##*-}" >>"$D/log/start.log" 2>&1; done
  fi
  timeout "$T" radosgw -c "$C" -n client.rgw.a >>"$D/log/start.log" 2>&1 # returns once connected to the cluster
  for _ in $(seq 1 $((T * 4))); do curl -fsS -o /dev/null "http://127.0.0.1:$PORT/" 2>/dev/null && break; sleep 0.25; done
  curl -fsS -o /dev/null "http://127.0.0.1:$PORT/"
  timeout 60 radosgw-admin -c "$C" user info --uid=devsnap-test >/dev/null 2>&1 ||
    timeout 60 radosgw-admin -c "$C" user create --uid=devsnap-test --display-name="devsnap tests" \
      --access-key="$ACCESS_KEY" --secret-key="$SECRET_KEY" >"$D/user.json"
  trap - ERR
  echo "S3_ENDPOINT=http://127.0.0.1:$PORT"
  echo "AWS_ACCESS_KEY_ID=$ACCESS_KEY"
  echo "AWS_SECRET_ACCESS_KEY=$SECRET_KEY"
  echo "CEPH_CONF=$C"
}

case ${1:-} in
up) [ $# -ge 2 ] || usage; up "$2" "${3:-7480}" "${4:-1}" ;;
down) [ $# -eq 2 ] || usage; down "$2" ;;
*) usage ;;
esac

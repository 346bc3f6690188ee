#!/usr/bin/env bash
# Installs the Debian packages devsnap's tests, demo and benchmarks use, when any is missing.
# Needs root (CI runs as root); on a machine that already has them it does nothing.
#   --bench  also the peers of the benchmarks      --s3    also Ceph (radosgw, for the S3 storage tests; ~340 MB)
#   --only   only the packages of the flags given (scripts/ceph.sh installs Ceph alone with --only --s3)
set -euo pipefail
base=(fdisk gdisk dosfstools mtools e2fsprogs ntfs-3g btrfs-progs lvm2 python3 attr zstd xxhash util-linux strace chromium libkrb5-dev)
extra=()
only=0
for arg in "$@"; do
  case $arg in
  --bench) extra+=(partclone restic borgbackup pv) ;;
  --s3) extra+=(radosgw ceph-mon ceph-osd curl) ;;
  --only) only=1 ;;
  *) echo "install-deps.sh: unknown option $arg (--bench, --s3, --only)" >&2; exit 2 ;;
  esac
done
if [ $only = 1 ]; then pkgs=("${extra[@]}"); else pkgs=("${base[@]}" "${extra[@]}"); fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "devsnap: missing Debian packages: ${missing[*]}. Install them with: sudo apt-get install ${missing[*]}" >&2
  exit 1
fi
echo "devsnap: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null

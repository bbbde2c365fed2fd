#!/usr/bin/env bash
# The Debian packages `make test` needs beyond Node, installed when run as root (quick when all are there):
#   Ceph RGW (ceph-mon ceph-osd radosgw ceph-common)     the RGW tier and the e2e tier's RGW cases
#   binutils (objdump)                                    the glibc check of the executables
#   qemu-user-static, libc6:arm64 (multiarch)             the aarch64 executable's run
#   time                                                  peak memory in `make bench`
#   openssh-server, rsync, iputils-ping, procps, xz-utils the e2e tier's Greenplum cluster (sshd, gpbackup's rsync,
#                                                         gpinitsystem's ping)
# Not root, or apt fails: prints what is missing and exits 0 unless CI=true (the tiers then skip, or fail under CI).
set -uo pipefail

need=()
for p in ceph-mon ceph-osd radosgw ceph-common binutils qemu-user-static time openssh-server rsync iputils-ping procps xz-utils; do
  dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -qx 'install ok installed' || need+=("$p")
done
dpkg-query -W -f='${Status}\n' libc6:arm64 2>/dev/null | grep -qx 'install ok installed' || need+=(libc6:arm64)
[ ${#need[@]} -eq 0 ] && exit 0

fail() {
  echo "system packages: $1" >&2
  [ "${CI:-}" = true ] && exit 1
  exit 0
}
[ "$(id -u)" -eq 0 ] || fail "missing ${need[*]}; as root: bash scripts/system-packages.sh"
echo "system packages: installing ${need[*]}"
if [[ " ${need[*]} " == *" libc6:arm64 "* ]]; then
  dpkg --print-foreign-architectures | grep -qx arm64 || dpkg --add-architecture arm64
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null || fail "apt-get update failed"
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null || fail "apt-get install ${need[*]} failed"

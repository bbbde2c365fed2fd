#!/usr/bin/env bash
# Installs the plugin executable into $GPHOME/bin on this host (the coordinator) and copies it
# to the same path on every host of the cluster, as gpbackup needs it (`make install`).
#
#   GPHOME      the Greenplum installation (set by greenplum_path.sh); required
#   PLUGIN_BIN  the executable to install (default: dist/gpbackup_s3_plugin of this checkout)
#   HOSTFILE    file of host names, one a line, to copy to; default: the hosts of
#               gp_segment_configuration, asked with psql (PGPORT, PGHOST, ... as set)
#
# The copy to the other hosts uses gpsync (Greenplum 7 and later) or gpscp (older releases).
# Without either, or without a host list, it installs locally and says how to copy by hand.
set -euo pipefail

name=gpbackup_s3_plugin
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source_bin=${PLUGIN_BIN:-$here/../dist/$name}

fail() {
  printf 'install: %s\n' "$*" >&2
  exit 1
}

[[ -n ${GPHOME:-} ]] || fail "GPHOME is not set: source greenplum_path.sh of the installation (or set GPHOME to its directory) and run again"
[[ -d $GPHOME ]] || fail "GPHOME=$GPHOME is not a directory"
[[ -d $GPHOME/bin ]] || fail "$GPHOME/bin is not a directory: is GPHOME=$GPHOME a Greenplum installation?"
[[ -f $source_bin ]] || fail "$source_bin does not exist: build it first (make)"

target_dir=$(cd "$GPHOME/bin" && pwd)
target=$target_dir/$name

# A new file renamed over the old one: copying onto an executable that a running backup is
# executing would fail ("Text file busy"), and a rename never leaves a half-written plugin.
staging=$(mktemp "$target_dir/.$name.XXXXXX")
trap 'rm -f "$staging"' EXIT
cp "$source_bin" "$staging"
chmod 0755 "$staging"
mv -f "$staging" "$target"
trap - EXIT
echo "install: installed $target"

manual_sync() {
  cat <<EOF
install: copy it to the same path on every other host of the cluster, for example:
  gpsync -f <hostfile> $target =:$target_dir/    # gpscp on releases before Greenplum 7
  gpssh -f <hostfile> $target --version           # to check every host has the same version
EOF
}

if command -v gpsync >/dev/null 2>&1; then
  sync_tool=gpsync
elif command -v gpscp >/dev/null 2>&1; then
  sync_tool=gpscp
else
  echo "install: neither gpsync nor gpscp is on the PATH: copied to this host only"
  manual_sync
  exit 0
fi

if [[ -n ${HOSTFILE:-} ]]; then
  [[ -f $HOSTFILE && -r $HOSTFILE ]] || fail "HOSTFILE=$HOSTFILE is not a readable file"
  hostfile=$HOSTFILE
  hosts_from="HOSTFILE=$HOSTFILE"
elif command -v psql >/dev/null 2>&1; then
  hostfile=$(mktemp "${TMPDIR:-/tmp}/gpbackup_s3_plugin_hosts.XXXXXX")
  trap 'rm -f "$hostfile"' EXIT
  if ! all_hosts=$(psql -X -d postgres -Atc "SELECT DISTINCT hostname FROM gp_segment_configuration ORDER BY 1"); then
    echo "install: psql could not read the hosts of the cluster (is it running, are PGPORT/PGHOST right?)" >&2
    manual_sync >&2
    exit 1
  fi
  # This host already has the file; leave it out so that a copy never writes onto its own source.
  this_host=" $(hostname) $(hostname -s 2>/dev/null || true) $(hostname -f 2>/dev/null || true) localhost "
  while IFS= read -r host; do
    [[ -z $host || $this_host == *" $host "* ]] || printf '%s\n' "$host"
  done <<<"$all_hosts" >"$hostfile"
  hosts_from="gp_segment_configuration"
  if [[ ! -s $hostfile ]]; then
    echo "install: gp_segment_configuration names no host but this one: nothing to copy"
    exit 0
  fi
else
  echo "install: no HOSTFILE=<file> given and psql is not on the PATH to ask gp_segment_configuration: copied to this host only"
  manual_sync
  exit 0
fi

echo "install: copying to the hosts of $hosts_from with $sync_tool"
"$sync_tool" -f "$hostfile" "$target" "=:$target_dir/" || {
  echo "install: $sync_tool failed; $target is installed on this host only" >&2
  manual_sync >&2
  exit 1
}
echo "install: done; every host listed has $target"

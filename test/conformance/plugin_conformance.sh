#!/usr/bin/env bash
#
# plugin_conformance.sh - checks a gpbackup storage plugin the way gpbackup,
# gprestore and gpbackup_helper call it, without a database. It follows the
# order of the checks of gpbackup's plugins/plugin_test.sh (minus the parts
# that need a live Greenplum cluster) and adds a few stricter ones.
#
# Usage:
#   plugin_conformance.sh <plugin_executable> <plugin_config> [<second_config>]
#
#   <plugin_config>  a plugin config as gpbackup hands it over (options as
#                    strings, `pgport` and `backup_plugin_version` included).
#                    Use small multipart sizes (e.g. 5MB) so the large-stream
#                    check spans several parts.
#   <second_config>  optional: another config reaching the SAME storage (for
#                    instance different restore chunk sizes). Everything
#                    restored, and every deletion, is checked through it too.
#
# Works against any plugin, e.g. the Go reference plugin:
#   plugin_conformance.sh "$GPHOME/bin/gpbackup_s3_plugin" /home/gpadmin/s3.yaml
#
# What it checks, in order:
#   1. plugin_api_version is X.Y.Z and >= 0.4.0 (numeric comparison)
#   2. --version prints one line `<name> version <version>`
#   3. setup_plugin_for_backup / setup_plugin_for_restore, three rounds each:
#      coordinator (`master` or `coordinator`, content ID `"-1"` WITH the
#      double quotes, as gpbackup's shell re-parsing delivers it),
#      segment_host (no content ID), segment (`"0"`)
#   4. backup_file keeps the local file; restore_file recreates it after it
#      was removed, byte-identical; restore_file of a missing object exits
#      non-zero and leaves no file behind
#   5. backup_data/restore_data round trips (piped like COPY ... PROGRAM):
#      a small text, empty input ("no data"), a large random stream compared
#      by sha256 (several multipart parts with a small part size)
#   6. restore_data_subset with offsets `1 3 10`, `1 900000 900001` and
#      `2 0 700000 900000 900001` (end offsets exclusive) - only when the
#      config says `restore_subset: "on"` (or the plugin is a DD Boost one and
#      it is not "off"), which is when gpbackup_helper would use it
#   7. delete_backup TS: restore_data and restore_file of TS then fail, while
#      the sibling backup TS+1 still restores
#   8. an unknown command exits non-zero
#   9. final cleanup: delete_backup of every timestamp written
# cleanup_plugin_for_backup/restore (three rounds) runs between the sections,
# like plugin_test.sh does. Timestamps are random 14-digit numbers whose first
# 8 digits are not a calendar date, as in plugin_test.sh.
#
# Output: one `ok - ...` / `not ok - ...` line per check (with `#` diagnostic
# lines after a failure), then one final line `N passed, M failed`.
# Exit status: 0 only when M = 0; 2 on a usage error.
#
# Environment: PLUGIN_TIMEOUT (seconds per plugin call, default 600),
# CONFORMANCE_LARGE_BYTES (size of the large stream, default 12 MiB + 4321),
# KEEP_TMP=1 keeps the local work directory.
# Needs only bash and coreutils.

set -u

readonly MIN_API_VERSION="0.4.0"
readonly PLUGIN_TIMEOUT="${PLUGIN_TIMEOUT:-600}"
readonly LARGE_BYTES="${CONFORMANCE_LARGE_BYTES:-$((12 * 1024 * 1024 + 4321))}"
readonly SUBSET_BYTES=1000001

passed=0
failed=0

# ---------------------------------------------------------------------------
# Reporting
# ---------------------------------------------------------------------------

pass() {
  passed=$((passed + 1))
  printf 'ok - %s\n' "$1"
}

fail() {
  failed=$((failed + 1))
  printf 'not ok - %s\n' "$1"
  shift
  local line
  for line in "$@"; do printf '#   %s\n' "$line"; done
  show_plugin_stderr
}

note() {
  printf '# %s\n' "$*"
}

# The stderr of the last plugin call, as diagnostic lines (its last 20).
show_plugin_stderr() {
  [[ -s "$LAST_ERR" ]] || return 0
  printf '#   plugin stderr:\n'
  tail -n 20 "$LAST_ERR" | sed 's/^/#     /'
}

# check <description> <command...>: one check line from a command's status.
check() {
  local desc="$1" rc
  shift
  "$@"
  rc=$?
  if ((rc == 0)); then pass "$desc"; else fail "$desc" "$(describe_status "$rc")"; fi
}

# ---------------------------------------------------------------------------
# Running the plugin
# ---------------------------------------------------------------------------

# plugin <args...>: runs the plugin; stdin/stdout pass through, stderr is
# kept in $LAST_ERR for the diagnostics of the next failure.
plugin() {
  timeout "$PLUGIN_TIMEOUT" "$PLUGIN" "$@" 2>"$LAST_ERR"
}

# Expects an exit status of zero from `plugin <args...>` (output discarded).
plugin_succeeds() {
  plugin "$@" >/dev/null </dev/null
}

describe_status() {
  case "$1" in
    124) echo "exit status 124 (timed out after ${PLUGIN_TIMEOUT}s)" ;;
    *) echo "exit status $1" ;;
  esac
}

# ---------------------------------------------------------------------------
# Test data and gpbackup-like local paths
# ---------------------------------------------------------------------------

# A random 14-digit timestamp; like plugin_test.sh its first 8 digits are
# not a date. Never 99999999999999, so TS+1 keeps 14 digits.
random_timestamp() {
  local digits
  digits=$(LC_ALL=C tr -dc '0-9' </dev/urandom 2>/dev/null | head -c 13)
  if [[ "9$digits" == 99999999999999 ]]; then digits=0000000000000; fi
  printf '9%s\n' "$digits"
}

# backup_dir <data_dir> <TS>: <work>/<data_dir>/backups/<D>/<TS>
backup_dir() {
  printf '%s/%s/backups/%s/%s\n' "$WORK" "$1" "${2:0:8}" "$2"
}

random_text() {
  LC_ALL=C tr -dc 'A-Za-z0-9' </dev/urandom 2>/dev/null | head -c "$1"
  echo
}

sha_of() {
  sha256sum | cut -d' ' -f1
}

# bytes_of <file> <start> <end>: bytes [start, end) of a file.
bytes_of() {
  tail -c +"$(($2 + 1))" "$1" | head -c "$(($3 - $2))"
}

# ---------------------------------------------------------------------------
# Individual checks
# ---------------------------------------------------------------------------

# version_at_least <have> <want>: numeric X.Y.Z comparison.
version_at_least() {
  local -a have want
  IFS=. read -r -a have <<<"$1"
  IFS=. read -r -a want <<<"$2"
  local i
  for i in 0 1 2; do
    if ((10#${have[i]} > 10#${want[i]})); then return 0; fi
    if ((10#${have[i]} < 10#${want[i]})); then return 1; fi
  done
  return 0
}

check_api_version() {
  local out rc
  out=$(plugin plugin_api_version </dev/null)
  rc=$?
  API_VERSION="$out"
  if ((rc != 0)); then
    fail "plugin_api_version" "$(describe_status "$rc")"
  elif [[ ! "$out" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]]; then
    fail "plugin_api_version prints X.Y.Z" "got: '$out'"
  elif ! version_at_least "$out" "$MIN_API_VERSION"; then
    fail "plugin_api_version >= $MIN_API_VERSION" "got: $out"
  else
    pass "plugin_api_version is $out (>= $MIN_API_VERSION)"
  fi
}

check_native_version() {
  local out rc
  out=$(plugin --version </dev/null)
  rc=$?
  if ((rc != 0)); then
    fail "--version" "$(describe_status "$rc")"
  elif [[ ! "$out" =~ ^[^[:space:]]+\ version\ [^[:space:]]+$ ]]; then
    fail "--version prints '<name> version <version>'" "got: '$out'"
  else
    pass "--version prints '$out'"
  fi
}

# run_hooks <setup|cleanup> <backup|restore> <coordinator_scope> <coord_dir> <seg_dir>
# The three rounds gpbackup/gprestore run, in their order.
run_hooks() {
  local cmd="$1_plugin_for_$2" scope="$3" coord_dir="$4" seg_dir="$5"
  check "$cmd $scope \"-1\"" plugin_succeeds "$cmd" "$CONFIG" "$coord_dir" "$scope" '"-1"'
  check "$cmd segment_host" plugin_succeeds "$cmd" "$CONFIG" "$seg_dir" segment_host
  check "$cmd segment \"0\"" plugin_succeeds "$cmd" "$CONFIG" "$seg_dir" segment '"0"'
}

# cleanup_hooks <coord_dir> <seg_dir>: what plugin_test.sh runs between sections.
cleanup_hooks() {
  run_hooks cleanup backup master "$1" "$2"
  run_hooks cleanup restore coordinator "$1" "$2"
}

# check_backup_file <desc> <cfg> <path>: uploads; the local file must stay as it was.
check_backup_file() {
  local desc="$1" cfg="$2" path="$3" rc
  cp -- "$path" "$WORK/expected_file"
  plugin backup_file "$cfg" "$path" >/dev/null </dev/null
  rc=$?
  if ((rc != 0)); then
    fail "$desc" "$(describe_status "$rc")"
  elif ! cmp -s -- "$path" "$WORK/expected_file"; then
    fail "$desc" "the local file is gone or changed after backup_file"
  else
    pass "$desc"
  fi
}

# check_restore_file <desc> <cfg> <path> <expected_file>: removes the local
# file, restores it, compares.
check_restore_file() {
  local desc="$1" cfg="$2" path="$3" expected="$4" rc
  rm -f -- "$path"
  plugin restore_file "$cfg" "$path" >/dev/null </dev/null
  rc=$?
  if ((rc != 0)); then
    fail "$desc" "$(describe_status "$rc")"
  elif [[ ! -f "$path" ]]; then
    fail "$desc" "exit status 0 but $path was not created"
  elif ! cmp -s -- "$path" "$expected"; then
    fail "$desc" "restored file differs from the original"
  else
    pass "$desc"
  fi
}

# check_restore_file_fails <desc> <cfg> <path>: must exit non-zero, leave no file.
check_restore_file_fails() {
  local desc="$1" cfg="$2" path="$3" rc
  rm -f -- "$path"
  plugin restore_file "$cfg" "$path" >/dev/null </dev/null
  rc=$?
  if ((rc == 0)); then
    fail "$desc" "exit status 0 (expected non-zero)"
  elif ((rc == 124)); then
    fail "$desc" "$(describe_status "$rc")"
  elif [[ -e "$path" ]]; then
    fail "$desc" "exit status $rc, but a file was left at $path"
  else
    pass "$desc"
  fi
}

# check_backup_data <desc> <cfg> <path> <input_file>: the input arrives
# through a pipe, as from COPY ... TO PROGRAM or gpbackup_helper.
check_backup_data() {
  local desc="$1" cfg="$2" path="$3" input="$4" rc
  cat -- "$input" | plugin backup_data "$cfg" "$path" >/dev/null
  rc=$?
  if ((rc != 0)); then fail "$desc" "$(describe_status "$rc")"; else pass "$desc"; fi
}

# check_restore_data <desc> <cfg> <path> <expected_file>: stdout must be
# exactly the bytes backed up (compared by size and sha256).
check_restore_data() {
  local desc="$1" cfg="$2" path="$3" expected="$4" rc want got
  plugin restore_data "$cfg" "$path" </dev/null >"$WORK/restored_data"
  rc=$?
  want="$(wc -c <"$expected") bytes, sha256 $(sha_of <"$expected")"
  got="$(wc -c <"$WORK/restored_data") bytes, sha256 $(sha_of <"$WORK/restored_data")"
  if ((rc != 0)); then
    fail "$desc" "$(describe_status "$rc")"
  elif [[ "$got" != "$want" ]]; then
    fail "$desc" "expected $want" "got      $got"
  else
    pass "$desc"
  fi
  rm -f -- "$WORK/restored_data"
}

# check_restore_data_fails <desc> <cfg> <path> <original_file>
check_restore_data_fails() {
  local desc="$1" cfg="$2" path="$3" original="$4" rc
  plugin restore_data "$cfg" "$path" </dev/null >"$WORK/restored_data"
  rc=$?
  if ((rc == 0)); then
    fail "$desc" "exit status 0 (expected non-zero)"
  elif ((rc == 124)); then
    fail "$desc" "$(describe_status "$rc")"
  elif cmp -s -- "$WORK/restored_data" "$original"; then
    fail "$desc" "exit status $rc, but the deleted data was still written to stdout"
  else
    pass "$desc"
  fi
  rm -f -- "$WORK/restored_data"
}

# check_subset <desc> <cfg> <path> <offsets_text> <source_file> <ranges...>
# ranges are "start:end" (end exclusive); the expected output is their
# concatenation taken from the source file.
check_subset() {
  local desc="$1" cfg="$2" path="$3" offsets_text="$4" source="$5" rc range
  shift 5
  local offsets="$WORK/gprestore_offsets_$RANDOM$RANDOM"
  printf '%s' "$offsets_text" >"$offsets"
  : >"$WORK/expected_subset"
  for range in "$@"; do
    bytes_of "$source" "${range%%:*}" "${range##*:}" >>"$WORK/expected_subset"
  done
  plugin restore_data_subset "$cfg" "$path" "$offsets" </dev/null >"$WORK/restored_subset"
  rc=$?
  if ((rc != 0)); then
    fail "$desc" "$(describe_status "$rc")"
  elif ! cmp -s -- "$WORK/restored_subset" "$WORK/expected_subset"; then
    fail "$desc" \
      "expected $(wc -c <"$WORK/expected_subset") bytes, sha256 $(sha_of <"$WORK/expected_subset")" \
      "got      $(wc -c <"$WORK/restored_subset") bytes, sha256 $(sha_of <"$WORK/restored_subset")"
  else
    pass "$desc"
  fi
  rm -f -- "$offsets" "$WORK/expected_subset" "$WORK/restored_subset"
}

# check_delete_backup <desc> <cfg> <TS>
check_delete_backup() {
  local desc="$1" cfg="$2" ts="$3" rc
  plugin delete_backup "$cfg" "$ts" >/dev/null </dev/null
  rc=$?
  if ((rc != 0)); then fail "$desc" "$(describe_status "$rc")"; else pass "$desc"; fi
}

check_unknown_command_fails() {
  local rc
  plugin unknown_command </dev/null >/dev/null
  rc=$?
  if ((rc == 0)); then
    fail "an unknown command exits non-zero" "exit status 0"
  else
    pass "an unknown command exits non-zero ($rc)"
  fi
}

# Whether gpbackup_helper would call restore_data_subset with this config:
# restore_subset "on", or a DD Boost plugin unless restore_subset is "off".
subset_enabled() {
  local value
  value=$(sed -n "s/^[[:space:]]\{1,\}restore_subset:[[:space:]]*[\"']\{0,1\}\([A-Za-z]*\)[\"']\{0,1\}[[:space:]]*\$/\1/p" "$CONFIG" | tail -n 1)
  [[ "$value" == on ]] && return 0
  [[ "$PLUGIN" == *ddboost_plugin && "$value" != off ]]
}

# ---------------------------------------------------------------------------
# Sections (plugin_test.sh order)
# ---------------------------------------------------------------------------

section_versions() {
  note "plugin API and version"
  check_api_version
  check_native_version
}

section_files() {
  note "setup hooks, backup_file and restore_file (TS $TS)"
  local file="$COORD_DIR/gpbackup_${TS}_metadata.sql"
  printf 'SET client_encoding = '"'"'UTF8'"'"';\n\nCREATE SCHEMA conformance_%s;\n' "$TS" >"$file"
  cp -- "$file" "$WORK/metadata.expected"

  run_hooks setup backup master "$COORD_DIR" "$SEG_DIR"
  check_backup_file "backup_file keeps the local file" "$CONFIG" "$file"
  run_hooks setup restore coordinator "$COORD_DIR" "$SEG_DIR"
  check_restore_file "restore_file recreates the removed file, identical" "$CONFIG" "$file" "$WORK/metadata.expected"
  check_restore_file_fails "restore_file of a missing object fails and leaves no file" \
    "$CONFIG" "$COORD_DIR/gpbackup_${TS}_statistics.sql"
  if [[ -n "$CONFIG2" ]]; then
    check_restore_file "restore_file through the second config" "$CONFIG2" "$file" "$WORK/metadata.expected"
  fi
  cleanup_hooks "$COORD_DIR" "$SEG_DIR"
}

section_data() {
  note "backup_data and restore_data (TS $TS)"
  local small="$SEG_DIR/gpbackup_0_${TS}_16384"
  local empty="$SEG_DIR/gpbackup_0_${TS}_16385"
  local large="$SEG_DIR/gpbackup_0_${TS}_16386"

  random_text 1000 >"$WORK/small.data"
  check_backup_data "backup_data of a small text" "$CONFIG" "$small" "$WORK/small.data"
  check_restore_data "restore_data returns the small text exactly" "$CONFIG" "$small" "$WORK/small.data"
  if [[ -n "$CONFIG2" ]]; then
    check_restore_data "restore_data of the small text through the second config" "$CONFIG2" "$small" "$WORK/small.data"
  fi
  cleanup_hooks "$COORD_DIR" "$SEG_DIR"

  : >"$WORK/empty.data"
  check_backup_data "backup_data with no data" "$CONFIG" "$empty" "$WORK/empty.data"
  check_restore_data "restore_data with no data returns nothing" "$CONFIG" "$empty" "$WORK/empty.data"
  if [[ -n "$CONFIG2" ]]; then
    check_restore_data "restore_data with no data through the second config" "$CONFIG2" "$empty" "$WORK/empty.data"
  fi
  cleanup_hooks "$COORD_DIR" "$SEG_DIR"

  head -c "$LARGE_BYTES" /dev/urandom >"$WORK/large.data"
  check_backup_data "backup_data of a $LARGE_BYTES-byte random stream" "$CONFIG" "$large" "$WORK/large.data"
  check_restore_data "restore_data of the large stream matches by sha256" "$CONFIG" "$large" "$WORK/large.data"
  if [[ -n "$CONFIG2" ]]; then
    check_restore_data "restore_data of the large stream through the second config" "$CONFIG2" "$large" "$WORK/large.data"
  fi
  rm -f -- "$WORK/large.data"
  cleanup_hooks "$COORD_DIR" "$SEG_DIR"
}

section_subset() {
  if ! subset_enabled; then
    note "SKIP restore_data_subset: the config does not set restore_subset: \"on\""
    return 0
  fi
  note "restore_data_subset (TS $TS)"
  local seg1_dir small large
  seg1_dir=$(backup_dir segments/gpseg1 "$TS")
  mkdir -p -- "$seg1_dir"
  small="$seg1_dir/gpbackup_1_${TS}"
  large="$SEG_DIR/gpbackup_0_${TS}"

  random_text 1000 >"$WORK/subset_small.data"
  check_backup_data "backup_data of small data for subset restore" "$CONFIG" "$small" "$WORK/subset_small.data"
  # plugin_test.sh writes this offsets file with echo (trailing newline);
  # gpbackup_helper writes the others' form (no newline). Both must work.
  check_subset "restore_data_subset '1 3 10' returns bytes 3..9" \
    "$CONFIG" "$small" $'1 3 10\n' "$WORK/subset_small.data" 3:10

  head -c "$SUBSET_BYTES" /dev/urandom >"$WORK/subset_large.data"
  check_backup_data "backup_data of $SUBSET_BYTES bytes for subset restore" "$CONFIG" "$large" "$WORK/subset_large.data"
  check_subset "restore_data_subset '1 900000 900001' returns one byte" \
    "$CONFIG" "$large" '1 900000 900001' "$WORK/subset_large.data" 900000:900001
  check_subset "restore_data_subset '2 0 700000 900000 900001' returns both ranges" \
    "$CONFIG" "$large" '2 0 700000 900000 900001' "$WORK/subset_large.data" 0:700000 900000:900001
  if [[ -n "$CONFIG2" ]]; then
    check_subset "restore_data_subset of two ranges through the second config" \
      "$CONFIG2" "$large" '2 0 700000 900000 900001' "$WORK/subset_large.data" 0:700000 900000:900001
  fi
  cleanup_hooks "$COORD_DIR" "$SEG_DIR"
}

# backup_one <TS> <coordinator_scope>: a minimal backup - hooks, one data
# object and one coordinator file, both with the content of $WORK/small.data.
backup_one() {
  local ts="$1" scope="$2" coord seg
  coord=$(backup_dir coordinator/gpseg-1 "$ts")
  seg=$(backup_dir segments/gpseg0 "$ts")
  mkdir -p -- "$coord" "$seg"
  cp -- "$WORK/small.data" "$coord/gpbackup_${ts}_toc.yaml"
  run_hooks setup backup "$scope" "$coord" "$seg"
  check_backup_data "backup_data for backup $ts" "$CONFIG" "$seg/gpbackup_0_${ts}_16384" "$WORK/small.data"
  check_backup_file "backup_file for backup $ts" "$CONFIG" "$coord/gpbackup_${ts}_toc.yaml"
}

# check_backup_is_gone <cfg> <TS> <label>
check_backup_is_gone() {
  local cfg="$1" ts="$2" label="$3" coord seg
  coord=$(backup_dir coordinator/gpseg-1 "$ts")
  seg=$(backup_dir segments/gpseg0 "$ts")
  check_restore_data_fails "restore_data of deleted backup $ts fails$label" \
    "$cfg" "$seg/gpbackup_0_${ts}_16384" "$WORK/small.data"
  check_restore_file_fails "restore_file of deleted backup $ts fails$label" \
    "$cfg" "$coord/gpbackup_${ts}_toc.yaml"
}

section_delete() {
  DEL_TS=$(random_timestamp)
  DEL_TS2=$((DEL_TS + 1))
  note "delete_backup of $DEL_TS next to its sibling $DEL_TS2"
  [[ -s "$WORK/small.data" ]] || random_text 1000 >"$WORK/small.data"

  backup_one "$DEL_TS" master
  backup_one "$DEL_TS2" coordinator
  check_delete_backup "delete_backup $DEL_TS" "$CONFIG" "$DEL_TS"
  check_backup_is_gone "$CONFIG" "$DEL_TS" ""
  if [[ -n "$CONFIG2" ]]; then
    check_backup_is_gone "$CONFIG2" "$DEL_TS" " through the second config"
  fi

  local coord2 seg2
  coord2=$(backup_dir coordinator/gpseg-1 "$DEL_TS2")
  seg2=$(backup_dir segments/gpseg0 "$DEL_TS2")
  check_restore_data "sibling backup $DEL_TS2 still restores (restore_data)" \
    "$CONFIG" "$seg2/gpbackup_0_${DEL_TS2}_16384" "$WORK/small.data"
  check_restore_file "sibling backup $DEL_TS2 still restores (restore_file)" \
    "$CONFIG" "$coord2/gpbackup_${DEL_TS2}_toc.yaml" "$WORK/small.data"
  cleanup_hooks "$(backup_dir coordinator/gpseg-1 "$DEL_TS")" "$(backup_dir segments/gpseg0 "$DEL_TS")"
}

section_unknown_command() {
  note "unknown command"
  check_unknown_command_fails
}

section_final_cleanup() {
  note "final cleanup of the uploaded test artifacts"
  check_delete_backup "delete_backup $TS (final cleanup)" "$CONFIG" "$TS"
  check_restore_data_fails "restore_data after the final delete_backup $TS fails" \
    "$CONFIG" "$SEG_DIR/gpbackup_0_${TS}_16384" "$WORK/small.data"
  check_delete_backup "delete_backup $DEL_TS2 (final cleanup)" "$CONFIG" "$DEL_TS2"
}

# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------

usage() {
  echo "Usage: $0 <plugin_executable> <plugin_config> [<second_config_for_cross_restore>]" >&2
  exit 2
}

absolute() {
  case "$1" in
    /*) printf '%s\n' "$1" ;;
    *) printf '%s/%s\n' "$PWD" "$1" ;;
  esac
}

main() {
  (($# >= 2 && $# <= 3)) || usage
  if [[ "$1" == */* ]]; then PLUGIN=$(absolute "$1"); else PLUGIN=$(command -v -- "$1") || PLUGIN="$1"; fi
  CONFIG=$(absolute "$2")
  CONFIG2=""
  if (($# == 3)); then CONFIG2=$(absolute "$3"); fi
  [[ -x "$PLUGIN" && -f "$PLUGIN" ]] || { echo "not an executable file: $PLUGIN" >&2; exit 2; }
  [[ -r "$CONFIG" ]] || { echo "cannot read config: $CONFIG" >&2; exit 2; }
  [[ -z "$CONFIG2" || -r "$CONFIG2" ]] || { echo "cannot read config: $CONFIG2" >&2; exit 2; }

  WORK=$(mktemp -d "${TMPDIR:-/tmp}/plugin_conformance.XXXXXX") || exit 2
  trap 'if [[ "${KEEP_TMP:-}" == 1 ]]; then echo "kept $WORK" >&2; else rm -rf -- "$WORK"; fi' EXIT
  LAST_ERR="$WORK/plugin.stderr"
  : >"$LAST_ERR"

  TS=$(random_timestamp)
  COORD_DIR=$(backup_dir coordinator/gpseg-1 "$TS")
  SEG_DIR=$(backup_dir segments/gpseg0 "$TS")
  mkdir -p -- "$COORD_DIR" "$SEG_DIR"
  API_VERSION="" DEL_TS="" DEL_TS2=""

  note "plugin: $PLUGIN"
  note "config: $CONFIG${CONFIG2:+ (second config: $CONFIG2)}"
  section_versions
  section_files
  section_data
  section_subset
  section_delete
  section_unknown_command
  section_final_cleanup

  printf '%d passed, %d failed\n' "$passed" "$failed"
  ((failed == 0))
}

main "$@"

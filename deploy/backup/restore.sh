#!/bin/sh
# Restores a base backup and replays the WAL archive up to a point in time,
# into a new data folder (as the postgres user). Start the server on it
# afterwards (pg_ctl -D DATA start): it replays to the target, promotes
# itself, and takes writes.
#
#   restore.sh BASE_BACKUP_FOLDER WAL_ARCHIVE 'TARGET TIME' NEW_DATA_FOLDER
#
# TARGET TIME is a PostgreSQL timestamp with its zone
# ('2026-11-30 21:15:00+00'); `latest` replays everything archived.
set -eu
base="$1"; archive="$2"; target="$3"; data="$4"

if [ -e "$data" ] && [ -n "$(ls -A "$data" 2>/dev/null)" ]; then
    echo "restore.sh: $data is not empty" >&2
    exit 1
fi
mkdir -p "$data"
chmod 700 "$data"
tar -xzf "$base/base.tar.gz" -C "$data"

case "$archive" in
s3://*) fetch="aws s3 cp --only-show-errors $archive/%f %p" ;;
*) fetch="cp $archive/%f %p" ;;
esac
{
    echo "restore_command = '$fetch'"
    if [ "$target" != latest ]; then
        echo "recovery_target_time = '$target'"
        echo "recovery_target_inclusive = true"
    fi
    echo "recovery_target_action = 'promote'"
} >> "$data/postgresql.auto.conf"
touch "$data/recovery.signal"
echo "restore.sh: $data is ready; start PostgreSQL on it to replay to $target"

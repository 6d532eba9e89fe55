#!/bin/sh
# An hourly base backup (cron, as the postgres user), and the retention of
# base backups and archived WAL: 30 days unless RETAIN_DAYS says otherwise.
#
#   base-backup.sh BACKUPS WAL_ARCHIVE [pg_basebackup options, e.g. -h HOST -p PORT -U USER]
#
# Each backup is BACKUPS/base-<UTC time>/ holding base.tar.gz (pg_basebackup
# -Ft -z, WAL left to the archive) and start-wal, the first WAL segment it
# needs. WAL before the first segment of the oldest backup kept is no use to
# any restore and goes with it (pg_archivecleanup).
set -eu
backups="$1"; archive="$2"; shift 2
keep_days="${RETAIN_DAYS:-30}"

stamp=$(date -u +%Y%m%dT%H%M%SZ)
target="$backups/base-$stamp"
mkdir -p "$backups"
pg_basebackup -D "$target.part" -Ft -z -X none --checkpoint=fast "$@"
tar -xzOf "$target.part/base.tar.gz" backup_label \
    | sed -n 's/^START WAL LOCATION: .*(file \([0-9A-F]*\))$/\1/p' > "$target.part/start-wal"
test -s "$target.part/start-wal"
mv "$target.part" "$target"

# Never the newest: a restore needs at least one backup whatever its age.
find "$backups" -maxdepth 1 -type d -name 'base-*' -mtime "+$keep_days" ! -path "$target" -exec rm -rf {} +
oldest=$(find "$backups" -maxdepth 1 -type d -name 'base-*' | sort | head -n 1)
if [ -n "$oldest" ] && [ -d "$archive" ]; then
    pg_archivecleanup "$archive" "$(cat "$oldest/start-wal")"
fi
echo "$target"

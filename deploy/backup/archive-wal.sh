#!/bin/sh
# PostgreSQL's archive_command: keeps one finished WAL segment.
#
#   archive_command = '/usr/local/lib/dkp/archive-wal.sh %p %f /var/backups/dkp/wal'
#
# The third argument is a folder, or an s3:// prefix (with the aws CLI and
# its usual AWS_* variables in the server's environment). A segment already
# archived is never overwritten: an archive that differs is an error, which
# PostgreSQL retries and reports rather than losing WAL.
set -eu
path="$1"; name="$2"; archive="$3"

case "$archive" in
s3://*)
    if aws s3 ls "$archive/$name" >/dev/null 2>&1; then
        exit 0
    fi
    exec aws s3 cp --only-show-errors "$path" "$archive/$name"
    ;;
*)
    if [ -f "$archive/$name" ]; then
        cmp -s "$path" "$archive/$name"
        exit $?
    fi
    mkdir -p "$archive"
    # Copied under a temporary name, then renamed: a crash never leaves half a segment.
    cp "$path" "$archive/.$name.part"
    sync "$archive/.$name.part" 2>/dev/null || true
    mv "$archive/.$name.part" "$archive/$name"
    ;;
esac

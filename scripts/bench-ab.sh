#!/bin/bash
# Alternating runs of one bench scenario with several binaries, each on a
# fresh database; prints each run's summary line.
#   scripts/bench-ab.sh SCENARIO ROUNDS BIN... (env STORE=sqlite for SQLite, FLAGS for more)
scenario=$1; rounds=$2; shift 2
for round in $(seq 1 "$rounds"); do
  for bin in "$@"; do
    rm -rf /tmp/ab-data
    if [ "${STORE:-postgres}" = sqlite ]; then
      db=()
    else
      psql -h 127.0.0.1 -U postgres -qc 'DROP DATABASE IF EXISTS dkp_ab WITH (FORCE)' -c 'CREATE DATABASE dkp_ab' >/dev/null 2>&1
      db=(--database-url postgres://postgres@127.0.0.1:5432/dkp_ab)
    fi
    line=$(DKP_LOG=error timeout 300 "$bin" bench "$scenario" "${db[@]}" --data-dir /tmp/ab-data --bidders 64 --seconds 10 $FLAGS 2>&1 | grep "^$scenario:" | tail -1)
    echo "round=$round bin=$bin $line"
  done
done

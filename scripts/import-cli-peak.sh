#!/bin/bash
# `dkp import` of one large file on SQLite, with its wall time and peak RSS.
# A short-lived `dkp serve` makes the guild and pool the file goes to, then
# stops; the import runs alone under /usr/bin/time.
#   scripts/import-cli-peak.sh FILE FORMAT     (env BIN: the dkp binary, default target/release/dkp)
# Files as `dkp bench import --keep-in DIR` writes them (large-csv.csv, large-monolith.lua).
set -e
BIN=${BIN:-target/release/dkp}
FILE=$1; FORMAT=$2
WORK=$(mktemp -d); trap 'rm -rf "$WORK"' EXIT
PORT=18555; URL=http://127.0.0.1:$PORT
DKP_LOG=error "$BIN" serve --listen 127.0.0.1:$PORT --data-dir "$WORK/data" --no-jobs & SERVER=$!
for _ in $(seq 50); do curl -sf $URL/health/ready >/dev/null && break; sleep 0.2; done
who='{"username":"bigowner","password":"a long enough password"}'
curl -sf -H 'content-type: application/json' -d "$who" $URL/api/v1/auth/register >/dev/null
TOKEN=$(curl -sf -H 'content-type: application/json' -d "$who" $URL/api/v1/auth/login | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
call() { curl -sf -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' -d "$2" "$URL$1"; }
call /api/v1/guilds '{"name":"Big","slug":"big"}' >/dev/null
POOL=$(call /api/v1/guilds/big/pools '{"name":"Main"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["pool"]["id"])')
kill $SERVER; wait $SERVER || true
/usr/bin/time -v "$BIN" import --log error --data-dir "$WORK/data" --guild big --pool "$POOL" --format "$FORMAT" --json "$FILE" \
    > "$WORK/report.json" 2> "$WORK/time.txt"
echo "$(du -m "$FILE" | cut -f1) MB $FORMAT"
grep -E "Maximum resident|Elapsed" "$WORK/time.txt"
python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print('members created', r['members']['created'], 'mismatches', len(r['mismatches']))" "$WORK/report.json"

#!/usr/bin/env python3
"""Size and first-byte time of the web UI's pages for a guild of many
members, on a release `dkp serve`.

    cargo build --release
    scripts/page-timing.py [--binary target/release/dkp] [--members 1000] [--requests 300]
    scripts/page-timing.py --database-url postgres://postgres@127.0.0.1:5432/dkp_pages

Starts the binary on a free port (SQLite in a fresh data folder unless a
PostgreSQL URL is given; that database is dropped and made anew), signs up an
owner, makes a guild and a pool, imports `--members` raiders with balances
from a CSV (one request), opens a lot, then fetches each page `--requests`
times one after another with the session cookie, as a browser sends it
(`Accept-Encoding: gzip`). For each page it prints the bytes sent (gzip), the
bytes of the HTML itself, and the time to the first byte of the answer:
p50, p99 and the largest. Then the spread case: 20 more guilds of 100
raiders, and the standings of random guilds, paced (`--rate` pages a second,
each sent at its planned moment) and flat out (`--clients` at once). On
PostgreSQL it runs `ANALYZE` before the spread case, as autovacuum would on a
running database. Stops the server and removes its folder at the end.
"""

import argparse
import concurrent.futures
import random
import gzip
import http.client
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(port, method, path, body=None, headers=None):
    """One request; (status, headers, body bytes, seconds to the first byte)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    started = time.perf_counter()
    conn.request(method, path, body=body, headers=headers or {})
    response = conn.getresponse()
    first_byte = time.perf_counter() - started
    data = response.read()
    conn.close()
    return response.status, dict(response.getheaders()), data, first_byte


def api(port, method, path, token=None, body=None, raw=None):
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = "Bearer " + token
    payload = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    status, _, data, _ = call(port, method, path, payload, headers)
    if status >= 300:
        raise SystemExit(f"{method} {path}: {status} {data[:300]!r}")
    return json.loads(data) if data else None


def reset_database(url):
    base, name = url.rsplit("/", 1)
    subprocess.run(["psql", base + "/postgres", "-qc", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'], check=True)
    subprocess.run(["psql", base + "/postgres", "-qc", f'CREATE DATABASE "{name}"'], check=True)


def start(binary, database_url):
    port = free_port()
    folder = tempfile.mkdtemp(prefix="dkp-pages-")
    env = dict(os.environ, DKP_LOG="error")
    if database_url:
        reset_database(database_url)
        env["DATABASE_URL"] = database_url
    server = subprocess.Popen(
        [binary, "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", folder], env=env
    )
    for _ in range(300):
        try:
            if call(port, "GET", "/health/live")[0] == 200:
                return server, port, folder
        except OSError:
            time.sleep(0.05)
    raise SystemExit("the server did not start")


def set_up(port, members):
    api(port, "POST", "/api/v1/auth/register", body={"username": "owner", "password": "correct horse"})
    token = api(port, "POST", "/api/v1/auth/login", body={"username": "owner", "password": "correct horse"})["token"]
    api(port, "POST", "/api/v1/guilds", token, {"name": "Night Owls", "slug": "owls"})
    pool = api(port, "POST", "/api/v1/guilds/owls/pools", token, {"name": "Main"})["pool"]["id"]
    rows = "".join(f"Raider{n:05},{n * 7 % 5000}.50\n" for n in range(members))
    api(port, "POST", f"/api/v1/guilds/owls/imports?format=csv&pool_id={pool}", token, raw=("name,balance\n" + rows).encode())
    lot = api(port, "POST", "/api/v1/guilds/owls/lots", token,
              {"pool_id": pool, "item": {"name": "Thunderfury"}, "mode": "open", "min_bid": 10, "duration_s": 3600})
    member = api(port, "GET", "/api/v1/me", token)["guilds"][0]["member_id"]
    return token, pool, lot["lot"]["id"], member


def make_guilds(port, token, guilds, members):
    """`guilds` more guilds (`g0`, `g1`, ...) of `members` raiders each."""
    for g in range(guilds):
        api(port, "POST", "/api/v1/guilds", token, {"name": f"Guild {g}", "slug": f"g{g}"})
        pool = api(port, "POST", f"/api/v1/guilds/g{g}/pools", token, {"name": "Main"})["pool"]["id"]
        rows = "".join(f"Raider{g}x{n:04},{n * 3}.25\n" for n in range(members))
        api(port, "POST", f"/api/v1/guilds/g{g}/imports?format=csv&pool_id={pool}", token, raw=("name,balance\n" + rows).encode())


def spread(port, token, guilds, clients, seconds):
    """Many guilds at once, as fast as they go: `clients` browsers fetching
    the standings of random guilds for `seconds`, each its next page as soon
    as it has the last (so the latency is mostly the queue they make)."""
    headers = {"cookie": f"dkp_session={token}", "accept-encoding": "gzip"}
    deadline = time.perf_counter() + seconds

    def browse(_):
        times, errors = [], 0
        while time.perf_counter() < deadline:
            status, _, _, first_byte = call(port, "GET", f"/g/g{random.randrange(guilds)}", headers=headers)
            times.append(first_byte * 1000)
            errors += status >= 500
        return times, errors

    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(browse, range(clients)))
    times = sorted(t for r in results for t in r[0])
    errors = sum(r[1] for r in results)
    pick = lambda q: times[min(len(times) - 1, int(q * len(times)))]
    return len(times) / seconds, errors, pick(0.5), pick(0.99)


def paced(port, token, guilds, rate, seconds):
    """Many guilds at a steady `rate` of pages a second for `seconds`, the
    standings of random guilds, each request sent at its planned moment
    whether or not earlier ones have their answers. A request's time runs
    from its planned moment to its first byte, so one sent late because the
    machine was busy counts its lateness too."""
    headers = {"cookie": f"dkp_session={token}", "accept-encoding": "gzip"}
    start = time.perf_counter() + 0.5

    def one(i):
        planned = start + i / rate
        time.sleep(max(0.0, planned - time.perf_counter()))
        sent = time.perf_counter()
        status, _, _, first_byte = call(port, "GET", f"/g/g{random.randrange(guilds)}", headers=headers)
        return (sent - planned + first_byte) * 1000, status >= 500

    with concurrent.futures.ThreadPoolExecutor(64) as pool:
        results = list(pool.map(one, range(int(rate * seconds))))
    times = sorted(t for t, _ in results)
    pick = lambda q: times[min(len(times) - 1, int(q * len(times)))]
    return sum(e for _, e in results), pick(0.5), pick(0.99)


def measure(port, token, path, requests):
    headers = {"cookie": f"dkp_session={token}", "accept-encoding": "gzip"}
    times, sent, html = [], 0, 0
    for _ in range(requests):
        status, answer, data, first_byte = call(port, "GET", path, headers=headers)
        if status != 200:
            raise SystemExit(f"GET {path}: {status}")
        times.append(first_byte * 1000)
        sent = len(data)
        html = len(gzip.decompress(data)) if answer.get("content-encoding") == "gzip" else len(data)
    times.sort()
    pick = lambda q: times[min(len(times) - 1, int(q * len(times)))]
    return sent, html, pick(0.5), pick(0.99), times[-1]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--binary", default="target/release/dkp")
    parser.add_argument("--database-url", default="")
    parser.add_argument("--members", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--guilds", type=int, default=20, help="guilds browsed at once in the spread case")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rate", type=int, default=200, help="pages a second of the paced spread case")
    args = parser.parse_args()
    server, port, folder = start(args.binary, args.database_url)
    try:
        token, pool, lot, member = set_up(port, args.members)
        store = "PostgreSQL" if args.database_url else "SQLite"
        print(f"{store}, {args.members} members, {args.requests} requests a page")
        print(f"{'page':<28} {'sent (gzip)':>12} {'HTML':>10} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
        pages = [("standings", "/g/owls"), ("member", f"/g/owls/members/{member}"),
                 ("live room", f"/g/owls/lots/{lot}"), ("officer console", "/g/owls/console"),
                 ("lots", "/g/owls/lots"), ("home", "/")]
        for name, path in pages:
            sent, html, p50, p99, most = measure(port, token, path, args.requests)
            print(f"{name:<28} {sent:>12,} {html:>10,} {p50:>8.2f} {p99:>8.2f} {most:>8.2f}")
        make_guilds(port, token, args.guilds, 100)
        if args.database_url:
            # What autovacuum does within a minute on a running database: a
            # freshly made one would otherwise be timed on the statistics of
            # its first guild alone.
            subprocess.run(["psql", "-q", args.database_url, "-c", "ANALYZE"], check=True)
        errors, p50, p99 = paced(port, token, args.guilds, args.rate, args.seconds)
        print(f"spread, paced: {args.guilds} guilds of 100 raiders, standings of random guilds at {args.rate} pages/s: "
              f"5xx={errors}, first byte p50 {p50:.2f} ms, p99 {p99:.2f} ms")
        rate, errors, p50, p99 = spread(port, token, args.guilds, args.clients, args.seconds)
        print(f"spread, flat out: {args.clients} clients at once over the same guilds: "
              f"{rate:,.0f} pages/s, 5xx={errors}, first byte p50 {p50:.2f} ms, p99 {p99:.2f} ms")
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()

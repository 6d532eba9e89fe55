#!/usr/bin/env python3
"""Resident memory of a `dkp serve` before and after a burst of logins, and
the time of one login while another address floods wrong passwords.

    cargo build --release
    scripts/login-memory.py [--binary target/release/dkp] [--logins 500] [--burst 32]

Starts the binary on a free port with a fresh SQLite data folder, registers
one user per burst slot, then logs in `--logins` times in bursts of `--burst`
parallel requests (correct passwords: failed logins would be throttled), and
prints VmRSS (from /proc) at start, after the registrations, right after the
logins, and after 10 s of quiet. Then it sends 32 parallel wrong logins for
one user from one address (`X-Forwarded-For`; the server trusts it here) and,
meanwhile, one right login of another user from another address, and prints
that login's time next to the same login alone. Stops the server and removes
its folder when done.
"""

import argparse
import concurrent.futures
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def post(base, path, body, address="127.0.0.1"):
    headers = {"content-type": "application/json", "x-forwarded-for": address}
    request = urllib.request.Request(base + path, data=json.dumps(body).encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status
    except urllib.error.HTTPError as refused:
        return refused.code


def timed_login(base, name, address):
    started = time.monotonic()
    status = post(base, "/api/v1/auth/login", {"username": name, "password": "memory test pass"}, address)
    assert status == 200, status
    return (time.monotonic() - started) * 1000


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", default="target/release/dkp")
    parser.add_argument("--logins", type=int, default=500)
    parser.add_argument("--burst", type=int, default=32)
    args = parser.parse_args()

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    folder = tempfile.mkdtemp(prefix="dkp-login-memory-")
    env = dict(os.environ, DKP_LOG="warn", DKP_LISTEN=f"127.0.0.1:{port}", DKP_DATA_DIR=folder)
    env["DKP_TRUST_FORWARDED_FOR"] = "true"
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    server = subprocess.Popen([args.binary, "serve"], env=env, stdout=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(base + "/health/live", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        time.sleep(1)
        start = rss_mib(server.pid)
        names = [f"mem{n}" for n in range(args.burst)]
        for name in names:
            post(base, "/api/v1/auth/register", {"username": name, "password": "memory test pass"})
        time.sleep(2)
        before = rss_mib(server.pid)
        started = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(args.burst) as pool:
            done = 0
            while done < args.logins:
                size = min(args.burst, args.logins - done)
                credentials = [{"username": names[n], "password": "memory test pass"} for n in range(size)]
                statuses = list(pool.map(lambda body: post(base, "/api/v1/auth/login", body), credentials))
                assert all(status == 200 for status in statuses), statuses
                done += size
        took = time.monotonic() - started
        after = rss_mib(server.pid)
        time.sleep(10)
        settled = rss_mib(server.pid)
        print(f"logins: {args.logins} in bursts of {args.burst}, {took:.1f} s ({args.logins / took:.0f}/s)")
        print(f"VmRSS: {start:.0f} MiB at start, {before:.0f} MiB after {args.burst} registrations,"
              f" {after:.0f} MiB right after the logins, {settled:.0f} MiB 10 s later")

        alone = min(timed_login(base, names[1], "10.9.0.2") for _ in range(3))
        wrong = {"username": names[0], "password": "not the password"}
        with concurrent.futures.ThreadPoolExecutor(33) as pool:
            flood = [pool.submit(post, base, "/api/v1/auth/login", wrong, "10.9.0.1") for _ in range(32)]
            time.sleep(0.05)
            during = timed_login(base, names[1], "10.9.0.2")
            answers = sorted(f.result() for f in flood)
        counts = {status: answers.count(status) for status in set(answers)}
        print(f"a login alone: {alone:.0f} ms; during 32 parallel wrong logins from another address: {during:.0f} ms"
              f" (the flood answered {counts})")
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()

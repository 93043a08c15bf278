#!/usr/bin/env python3
"""Helpers for benches/run: TOTP codes, a generated repository, a store
filled to scale, the concurrency run, and reading hyperfine's results.
Standard library only."""

import base64
import hashlib
import hmac
import json
import os
import random
import sqlite3
import statistics
import struct
import subprocess
import sys
import threading
import time


def totp(uri):
    """The current 6-digit code (RFC 6238, SHA-1, 30 s) for an otpauth URI."""
    secret = uri.split("secret=")[1].split("&")[0]
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    step = int(time.time()) // 30
    mac = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    value = struct.unpack(">I", mac[offset:offset + 4])[0] & 0x7FFFFFFF
    print(f"{value % 1000000:06d}")


def fast_import(commits, file_kb):
    """A git fast-import stream: `commits` commits, each rewriting one of 50
    files with `file_kb` KiB of incompressible bytes."""
    commits, file_kb = int(commits), int(file_kb)
    rng = random.Random(42)
    out = sys.stdout.buffer
    for i in range(1, commits + 1):
        data = rng.randbytes(file_kb * 1024)
        message = f"commit {i}\n".encode()
        out.write(b"commit refs/heads/main\n")
        out.write(f"committer Bench <bench@example.com> {1700000000 + i} +0000\n".encode())
        out.write(b"data %d\n%s" % (len(message), message))
        out.write(f"M 644 inline data/{i % 50}.bin\n".encode())
        out.write(b"data %d\n%s\n" % (len(data), data))
    out.write(b"done\n")


def fill(db, scale):
    """Adds 100k users, 1M tokens, 1M sessions and 10M audit rows (times
    `scale`) to a store, in one transaction."""
    s = float(scale)
    users, tokens, sessions, audit = (max(1, int(n * s)) for n in (100_000, 1_000_000, 1_000_000, 10_000_000))
    conn = sqlite3.connect(db)
    now = int(time.time())
    conn.execute("BEGIN IMMEDIATE")
    series = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ?)"
    conn.execute(f"{series} INSERT INTO users (name, created_at) SELECT 'user' || x, ? FROM c", (users, now))
    first, last = conn.execute("SELECT min(id), max(id) FROM users").fetchone()
    conn.execute(
        f"{series} INSERT INTO tokens (user_id, name, hash, repos, permission, created_at, expires_at) "
        "SELECT ? + (x % (? - ? + 1)), 'bulk', randomblob(32), 'app', 'read', ?, ? FROM c",
        (tokens, first, last, first, now, now + 86400),
    )
    conn.execute(
        f"{series} INSERT INTO sessions (user_id, created_at, expires_at, ended_at, opened_via) "
        "SELECT ? + (x % (? - ? + 1)), ?, ? + (x % 7200) - 3600, CASE WHEN x % 3 = 0 THEN ? END, 'web' FROM c",
        (sessions, first, last, first, now, now, now),
    )
    conn.execute(
        f"{series} INSERT INTO audit (at, user, transport, repo, action, outcome, reason) "
        "SELECT ? - x, 'user' || (x % ?), 'ssh', 'app', 'read', 'allow', 'session' FROM c",
        (audit, now, users),
    )
    conn.commit()
    conn.execute("ANALYZE")
    conn.close()
    print(f"{users} users, {tokens} tokens, {sessions} sessions, {audit} audit rows")


def concurrency(shell, config, key_args, threads, iterations, db, other_user):
    """`threads` threads each run the shim `iterations` times while another
    process opens and ends sessions in a loop; prints errors, p50, p99 (ms)."""
    stop = time.time() + 3600
    churn = subprocess.Popen([sys.executable, __file__, "churn", db, other_user])
    env = {"SSH_ORIGINAL_COMMAND": "git-upload-pack 'app.git'", "SSH_CONNECTION": "127.0.0.1 1 127.0.0.1 22"}
    durations, errors, lock = [], [0], threading.Lock()

    def worker():
        for _ in range(int(iterations)):
            started = time.perf_counter()
            done = subprocess.run([shell, "--config", config, *key_args.split()], env=env,
                                  stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            elapsed = (time.perf_counter() - started) * 1000
            with lock:
                durations.append(elapsed)
                if done.returncode != 0:
                    errors[0] += 1

    workers = [threading.Thread(target=worker) for _ in range(int(threads))]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    churn.terminate()
    churn.wait()
    durations.sort()
    p50 = statistics.median(durations)
    p99 = durations[min(len(durations) - 1, int(len(durations) * 0.99))]
    print(f"{errors[0]} {p50:.2f} {p99:.2f} {len(durations)}")
    del stop


def churn(db, user):
    """Opens and ends 2FA sessions of `user` in a loop, as the web page would."""
    conn = sqlite3.connect(db, timeout=5, isolation_level=None)
    conn.execute("PRAGMA busy_timeout = 5000")
    (user_id,) = conn.execute("SELECT id FROM users WHERE name = ?", (user,)).fetchone()
    while True:
        now = int(time.time())
        try:
            conn.execute("BEGIN IMMEDIATE")
            cur = conn.execute("INSERT INTO sessions (user_id, created_at, expires_at, opened_via) VALUES (?, ?, ?, 'web')",
                               (user_id, now, now + 60))
            conn.execute("COMMIT")
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("UPDATE sessions SET ended_at = ? WHERE id = ?", (now, cur.lastrowid))
            conn.execute("COMMIT")
        except sqlite3.OperationalError:
            # Busy past its own timeout: the deciders hold the lock; go on.
            if conn.in_transaction:
                conn.execute("ROLLBACK")


def median_ms(path, name):
    """The median of one command in a hyperfine JSON export, in ms."""
    with open(path) as f:
        results = json.load(f)["results"]
    for r in results:
        if r["command"] == name:
            return r["median"] * 1000
    raise SystemExit(f"no result named {name} in {path}")


if __name__ == "__main__":
    command, args = sys.argv[1], sys.argv[2:]
    if command == "median":
        print(f"{median_ms(*args):.2f}")
    else:
        globals()[command](*args)

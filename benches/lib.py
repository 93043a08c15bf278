#!/usr/bin/env python3
"""Helpers for benches/run: TOTP codes, a generated repository, a store
filled to scale, the concurrency run, and commands measured side by side.
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


def concurrency(shell, config, key_args, threads, iterations, *churn_argv):
    """`threads` threads each run the shim `iterations` times while another
    process (`churn_argv`) opens and ends sessions in a loop; prints errors,
    p50, p99 (ms)."""
    churn = subprocess.Popen(list(churn_argv), stdout=subprocess.DEVNULL)
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


# The advisory lock every git2fa write transaction takes on PostgreSQL
# (src/store/db.rs, WRITE_LOCK).
PG_WRITE_LOCK = 0x6769_7432_6661


def pg_churn_sql(user):
    """A PL/pgSQL loop that opens and ends 2FA sessions of `user` as the web
    page would (each in its own transaction, under git2fa's write lock),
    until its connection goes."""
    epoch = "extract(epoch from clock_timestamp())::bigint"
    print(f"""DO $$
DECLARE uid bigint; sid bigint;
BEGIN
  SELECT id INTO uid FROM users WHERE name = '{user}';
  LOOP
    PERFORM pg_advisory_xact_lock({PG_WRITE_LOCK});
    INSERT INTO sessions (user_id, created_at, expires_at, opened_via)
      VALUES (uid, {epoch}, {epoch} + 60, 'web') RETURNING id INTO sid;
    COMMIT;
    PERFORM pg_advisory_xact_lock({PG_WRITE_LOCK});
    UPDATE sessions SET ended_at = {epoch} WHERE id = sid;
    COMMIT;
  END LOOP;
END $$;""")


def pg_fill_sql(scale):
    """The SQL that adds 100k users, 1M tokens, 1M sessions and 10M audit
    rows (times `scale`) to a PostgreSQL store, as `fill` does to SQLite."""
    s = float(scale)
    users, tokens, sessions, audit = (max(1, int(n * s)) for n in (100_000, 1_000_000, 1_000_000, 10_000_000))
    now = int(time.time())
    print(f"""BEGIN;
INSERT INTO users (name, created_at) SELECT 'user' || x, {now} FROM generate_series(1, {users}) x;
CREATE TEMP TABLE span AS SELECT min(id) AS first, max(id) AS last FROM users WHERE name LIKE 'user%';
INSERT INTO tokens (user_id, name, hash, repos, permission, created_at, expires_at)
  SELECT span.first + (x % (span.last - span.first + 1)), 'bulk', sha256(int8send(x)), 'app', 'read', {now}, {now + 86400}
  FROM generate_series(1, {tokens}) x, span;
INSERT INTO sessions (user_id, created_at, expires_at, ended_at, opened_via)
  SELECT span.first + (x % (span.last - span.first + 1)), {now}, {now} + (x % 7200) - 3600,
         CASE WHEN x % 3 = 0 THEN {now} END, 'web'
  FROM generate_series(1, {sessions}) x, span;
INSERT INTO audit (at, "user", transport, repo, action, outcome, reason)
  SELECT {now} - x, 'user' || (x % {users}), 'ssh', 'app', 'read', 'allow', 'session' FROM generate_series(1, {audit}) x;
COMMIT;
ANALYZE;""")
    print(f"{users} users, {tokens} tokens, {sessions} sessions, {audit} audit rows", file=sys.stderr)


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


def alternate(warmup, runs, *args):
    """Times named shell commands in alternating rounds: each round runs
    every command once (A B C, then B C A, ...), so that a ratio compares
    runs taken side by side, under the same load, not two series taken
    minutes apart. Arguments as hyperfine's: --export-json FILE, --prepare
    CMD (run untimed before each command), then -n NAME CMD pairs. Each
    round also times an empty `sh -c :`, whose median is taken off every
    figure (the shell's own start-up, as hyperfine does)."""
    warmup, runs = int(warmup), int(runs)
    out, prepare, named = None, None, []
    args = list(args)
    while args:
        flag = args.pop(0)
        if flag == "--export-json":
            out = args.pop(0)
        elif flag == "--prepare":
            prepare = args.pop(0)
        elif flag == "-n":
            named.append((args.pop(0), args.pop(0)))
        else:
            raise SystemExit(f"alternate: unknown argument {flag}")
    if out is None or len(named) < 2:
        raise SystemExit("alternate: --export-json FILE and at least two -n NAME CMD")

    def timed(command):
        if prepare:
            subprocess.run(["/bin/sh", "-c", prepare], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        start = time.perf_counter()
        done = subprocess.run(["/bin/sh", "-c", command],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        elapsed = time.perf_counter() - start
        if done.returncode != 0:
            sys.stderr.write(done.stderr.decode(errors="replace"))
            raise SystemExit(f"alternate: exit {done.returncode}: {command}")
        return elapsed

    times = {name: [] for name, _ in named}
    shell = []
    for round_ in range(warmup + runs):
        order = named[round_ % len(named):] + named[:round_ % len(named)]
        for name, command in order:
            t = timed(command)
            if round_ >= warmup:
                times[name].append(t)
        t = timed(":")
        if round_ >= warmup:
            shell.append(t)
    base = statistics.median(shell)
    results = [{
        "command": name,
        "times": [max(t - base, 0.0) for t in times[name]],
        "median": max(statistics.median(times[name]) - base, 0.0),
    } for name, _ in named]
    with open(out, "w") as f:
        json.dump({"results": results, "shell": base}, f)


def times_of(path, name):
    with open(path) as f:
        results = json.load(f)["results"]
    for r in results:
        if r["command"] == name:
            return r
    raise SystemExit(f"no result named {name} in {path}")


def median_ms(path, name):
    """The median of one command, in ms."""
    return times_of(path, name)["median"] * 1000


def pair_ratio(path, a, b):
    """The median, over the rounds, of a's time over b's in the same round."""
    ta, tb = times_of(path, a)["times"], times_of(path, b)["times"]
    ratios = [x / y for x, y in zip(ta, tb) if y > 0]
    return statistics.median(ratios) if ratios else float("nan")


if __name__ == "__main__":
    command, args = sys.argv[1], sys.argv[2:]
    if command == "median":
        print(f"{median_ms(*args):.2f}")
    elif command == "ratio":
        print(f"{pair_ratio(*args):.3f}")
    else:
        globals()[command](*args)

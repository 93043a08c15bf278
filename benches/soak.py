"""A soak of `git2fa serve`: several hundred concurrent clients of mixed
kinds (git over HTTP with a token, git over serve's SSH, sshd's forced
command `git2fa-shell` asking serve, web page GETs, log-ins) for a bounded
time, then two bursts of concurrent log-ins.
Prints markdown table rows: per kind, operations, errors, refusals for a
busy store ("2FA check unavailable"), p50/p99; serve's RSS and open files
over the run, and its RSS after each burst.

    python3 benches/soak.py --label L --web PORT [--ssh PORT --key FILE]
        --token TOKEN --user NAME --password PW --repo app.git
        --clients N --seconds S --burst B --pid PID
        [--shim PATH --shim-config FILE --shim-key ARGS]
"""

import argparse
import base64
import http.client
import os
import re
import subprocess
import sys
import threading
import time
import urllib.parse

BUSY_STORE = "2FA check unavailable"


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def open_files(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


class Results:
    def __init__(self):
        self.lock = threading.Lock()
        self.by_kind = {}

    def add(self, kind, ms, ok, busy_store):
        with self.lock:
            entry = self.by_kind.setdefault(kind, {"ms": [], "errors": 0, "busy": 0})
            entry["ms"].append(ms)
            if not ok:
                entry["errors"] += 1
            if busy_store:
                entry["busy"] += 1


# Each client from an address of its own (127.0.0.2 and up: all of
# 127.0.0.0/8 is loopback), as users are: serve caps connections per
# address.
SOURCE = threading.local()
# The first failure of each kind, printed to stderr at the end.
ERRORS = {}


def source():
    return getattr(SOURCE, "address", "127.0.0.1")


def get(port, path, headers=None, body=None, method="GET"):
    conn = http.client.HTTPConnection(
        "127.0.0.1", port, timeout=60, source_address=(source(), 0)
    )
    conn.request(method, path, body, headers or {})
    response = conn.getresponse()
    text = response.read().decode("utf-8", "replace")
    cookie = response.getheader("set-cookie")
    conn.close()
    return response.status, text, cookie


def http_token(a):
    auth = base64.b64encode(f"{a.user}:{a.token}".encode()).decode()
    status, text, _ = get(
        a.web,
        f"/git/{a.repo}/info/refs?service=git-upload-pack",
        {"Authorization": f"Basic {auth}"},
    )
    return status == 200, BUSY_STORE in text


def web_get(a):
    status, text, _ = get(a.web, "/login")
    return status == 200, BUSY_STORE in text


def log_in(a):
    status, text, cookie = get(a.web, "/login")
    if status != 200 or not cookie:
        return False, BUSY_STORE in text
    jar = cookie.split(";")[0]
    csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', text).group(1)
    body = urllib.parse.urlencode({"csrf": csrf, "user": a.user, "password": a.password})
    status, text, _ = get(
        a.web,
        "/login",
        {"Cookie": jar, "Content-Type": "application/x-www-form-urlencoded"},
        body,
        "POST",
    )
    if status != 303:
        ERRORS.setdefault("log-in", f"{status} {text[-300:]}")
    return status == 303, BUSY_STORE in text


def ssh_ls_remote(a):
    ssh = (
        f"ssh -i {a.key} -p {a.ssh} -o IdentitiesOnly=yes -o IdentityAgent=none "
        "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes -o LogLevel=ERROR "
        f"-o BindAddress={source()}"
    )
    run = subprocess.run(
        ["git", "ls-remote", f"ssh://git@127.0.0.1:{a.ssh}/{a.repo}"],
        env={**os.environ, "GIT_SSH_COMMAND": ssh},
        capture_output=True,
        timeout=120,
    )
    if run.returncode != 0:
        ERRORS.setdefault("ssh", run.stderr.decode("utf-8", "replace")[-300:])
    return run.returncode == 0, BUSY_STORE in run.stderr.decode("utf-8", "replace")


def shim(a):
    """ls-remote's server side as sshd starts it: git2fa-shell, which asks
    serve over its decide socket, then git upload-pack to a client that
    wants nothing."""
    run = subprocess.run(
        [a.shim, "--config", a.shim_config, *a.shim_key.split()],
        env={
            "PATH": "/usr/bin:/bin",
            "SSH_ORIGINAL_COMMAND": f"git-upload-pack '{a.repo}'",
            "SSH_CONNECTION": f"{source()} 50000 127.0.0.1 22",
        },
        input=b"0000",
        capture_output=True,
        timeout=120,
    )
    stderr = run.stderr.decode("utf-8", "replace")
    if run.returncode != 0:
        ERRORS.setdefault("forced command", stderr[-300:])
    return run.returncode == 0, BUSY_STORE in stderr


def client(kind, work, a, results, deadline, address):
    SOURCE.address = address
    while time.monotonic() < deadline:
        started = time.monotonic()
        try:
            ok, busy = work(a)
        except Exception:
            ok, busy = False, False
        results.add(kind, (time.monotonic() - started) * 1000, ok, busy)


def percentile(values, p):
    values = sorted(values)
    if not values:
        return 0.0
    return values[min(len(values) - 1, int(len(values) * p / 100))]


def main():
    p = argparse.ArgumentParser()
    for name in ["label", "key", "token", "user", "password", "repo", "shim", "shim-config", "shim-key"]:
        p.add_argument(f"--{name}", default="")
    for name in ["web", "ssh", "clients", "seconds", "burst", "pid"]:
        p.add_argument(f"--{name}", type=int, default=0)
    a = p.parse_args()
    # The mix: git over HTTP 40 %, web GETs 20 %, sshd's forced command
    # through serve 10 % (a web GET without --shim), git over SSH 20 %
    # (HTTP when serve has no SSH), log-ins 10 %.
    kinds = []
    for i in range(a.clients):
        share = i % 10
        if share < 4:
            kinds.append(("git over HTTP (token)", http_token))
        elif share == 4 and a.shim:
            kinds.append(("git2fa-shell asking serve (ls-remote's server side)", shim))
        elif share < 7:
            kinds.append(("web GET /login", web_get))
        elif share < 9:
            kinds.append(
                ("git over SSH (ls-remote)", ssh_ls_remote)
                if a.ssh
                else ("git over HTTP (token)", http_token)
            )
        else:
            kinds.append(("log-in", log_in))
    results = Results()
    samples = []
    deadline = time.monotonic() + a.seconds
    threads = [
        threading.Thread(
            target=client,
            args=(kind, work, a, results, deadline, f"127.0.{1 + i // 250}.{2 + i % 250}"),
            daemon=True,
        )
        for i, (kind, work) in enumerate(kinds)
    ]
    for t in threads:
        t.start()
    while time.monotonic() < deadline:
        samples.append((rss_kib(a.pid), open_files(a.pid)))
        time.sleep(1)
    for t in threads:
        t.join()
    samples.append((rss_kib(a.pid), open_files(a.pid)))
    # Two bursts of concurrent log-ins; RSS once each has passed.
    after = []
    for _ in range(2):
        burst = Results()
        def one(address):
            SOURCE.address = address
            burst.add("log-in", 0, *log_in(a))

        workers = [
            threading.Thread(target=one, args=(f"127.0.3.{2 + i}",), daemon=True)
            for i in range(a.burst)
        ]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        time.sleep(2)
        after.append(rss_kib(a.pid))

    total_busy = 0
    for kind, entry in sorted(results.by_kind.items()):
        total_busy += entry["busy"]
        print(
            f"| soak, {a.label}: {kind} | {len(entry['ms'])} operations, {entry['errors']} errors, "
            f"{entry['busy']} refused for a busy store; p50 {percentile(entry['ms'], 50):.0f} ms, "
            f"p99 {percentile(entry['ms'], 99):.0f} ms | | 0 refused for a busy store | "
            f"{'met' if entry['busy'] == 0 else 'MISSED'} |"
        )
    rss = [s[0] for s in samples]
    files = [s[1] for s in samples]
    print(
        f"| soak, {a.label}: serve over {a.seconds} s with {a.clients} clients | RSS {min(rss) / 1024:.0f} to "
        f"{max(rss) / 1024:.0f} MiB, open files {min(files)} to {max(files)} | | report | |"
    )
    print(
        f"| soak, {a.label}: serve's RSS after two bursts of {a.burst} concurrent log-ins | "
        f"{after[0] / 1024:.0f} MiB, then {after[1] / 1024:.0f} MiB | | <= 100 MiB | "
        f"{'met' if max(after) <= 100 * 1024 else 'MISSED'} |"
    )
    for kind, text in ERRORS.items():
        print(f"soak, {a.label}: first {kind} failure: {text!r}", file=sys.stderr)


if __name__ == "__main__":
    main()

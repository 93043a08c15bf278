"""How long git through `git2fa serve` stays refused when PostgreSQL
restarts under it. A probe asks serve for a repository's refs over HTTP
with a token (`info/refs`), every 20 ms, until the file STOP exists; the
caller restarts PostgreSQL meanwhile and writes the moments it stopped it
(DOWN) and saw it accept connections again (UP), as `time.time()` values.
Prints one markdown table row.

    python3 benches/recovery.py --web PORT --token TOKEN --repo app.git
        --user NAME --stop FILE --down FILE --up FILE
"""

import argparse
import base64
import http.client
import os
import time


def probe(a):
    basic = base64.b64encode(f"{a.user}:{a.token}".encode()).decode()
    conn = http.client.HTTPConnection("127.0.0.1", a.web, timeout=30)
    conn.request(
        "GET",
        f"/git/{a.repo}/info/refs?service=git-upload-pack",
        headers={"Authorization": f"Basic {basic}"},
    )
    status = conn.getresponse().status
    conn.close()
    return status == 200


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--web", type=int, required=True)
    for name in ["token", "repo", "user", "stop", "down", "up"]:
        p.add_argument(f"--{name}", required=True)
    a = p.parse_args()
    results = []
    while not os.path.exists(a.stop):
        began = time.time()
        try:
            ok = probe(a)
        except OSError:
            ok = False
        results.append((began, time.time(), ok))
        time.sleep(0.02)
    down = float(open(a.down).read())
    up = float(open(a.up).read())
    refused = [r for r in results if not r[2]]
    after_up = [r for r in results if r[0] >= up]
    first_ok = next((r for r in after_up if r[2]), None)
    failed_after_up = sum(1 for r in after_up if not r[2])
    if not refused or first_ok is None:
        outage = "none seen" if not refused else "never ended"
    else:
        outage = f"{first_ok[1] - refused[0][0]:.2f} s"
    recovered = (
        f"{(first_ok[1] - up) * 1000:.0f} ms" if first_ok is not None else "never"
    )
    print(
        f"| fail-over: PostgreSQL restarted (fast shutdown) under serve, git over HTTP every 20 ms | "
        f"PostgreSQL down {up - down:.2f} s; git refused for {outage} ({len(refused)} refusals); "
        f"the first request after PostgreSQL accepted connections again answered in {recovered}; "
        f"{failed_after_up} refused after it was back | | 0 refused once PostgreSQL is back | "
        f"{'met' if first_ok is not None and failed_after_up == 0 else 'MISSED'} |"
    )


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""What the console (/ui/) costs the admin loop: CPU per refresh on the control thread.

Starts one etcd (Debian's etcd-server) and three sluice nodes in a fleet on loopback, loads 15
days of synthetic stream-start history into the node the console asks (POST /v1/history, so
that the charts have every line), then:

- fetches the page's three files over HTTP (their bytes, and the time to the last byte: a lower
  bound of a browser's load; the browser's own figure is printed by
  tests/integration/test_console.py);
- makes N refreshes of what the page asks every 2 s (GET /v1/steering, /v1/plans, /v1/health,
  /v1/detection, /v1/fleet, /v1/dns, /v1/audit?since=...) on one kept-alive connection, as a
  browser does, and M chart requests of an hour and
  of a day (/v1/history/chart, which the page asks every 20 s and 2 min);
- reads the control thread's CPU time (the main thread: /proc/PID/task/PID/schedstat, in ns)
  around each series, less what the thread spends idle over the same wall time (measured first,
  with no requests), divided by the requests made.

Target (issue 23): < 1 ms of the admin loop per refresh; the workers take no part in it.

Usage: bench/console_poll.py [--sluice build/proxy/sluice] [--polls 300] [--charts 30] [--idle 2]
Last line: console_poll: polls=N cpu_us_per_poll=X chart_1h_cpu_us=X chart_24h_cpu_us=X
           page_bytes=N page_ms=X
Every process it starts is stopped by its PID; temporary files are removed.
"""

import argparse
import http.client
import os
import shutil
import tempfile
import time
import urllib.request

from fleet_propagation import REGIONS, TOKEN, call, config
from sluicetest.etcd import Etcd
from sluicetest.history import synthetic_history_csv
from sluicetest.origins import Origin
from sluicetest.process import SLUICE_BIN, Sluice, free_port

PAGE_FILES = ("/ui/", "/ui/console.js", "/ui/console.css")
REFRESH = ("/v1/steering", "/v1/plans", "/v1/health", "/v1/detection", "/v1/fleet", "/v1/dns")


def control_thread_ns(pid):
    with open("/proc/%d/task/%d/schedstat" % (pid, pid)) as f:
        return int(f.read().split()[0])


def post_csv(port, text):
    req = urllib.request.Request("http://127.0.0.1:%d/v1/history" % port, data=text.encode(),
                                 method="POST", headers={"Authorization": "Bearer " + TOKEN,
                                                         "Content-Type": "text/csv"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return r.status


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sluice", default=SLUICE_BIN)
    parser.add_argument("--polls", type=int, default=300)
    parser.add_argument("--charts", type=int, default=30)
    parser.add_argument("--idle", type=float, default=2.0,
                        help="seconds of the idle measure before each series")
    args = parser.parse_args()

    work = tempfile.mkdtemp(prefix="sluice-console-bench-")
    started = []
    etcd = None
    try:
        with open(os.path.join(work, "admin.token"), "w") as f:
            f.write(TOKEN + "\n")
        os.chmod(os.path.join(work, "admin.token"), 0o600)
        with open(os.path.join(work, "tunnel.key"), "w") as f:
            f.write("3f9c1a7e5b2d4f6081a3c5e7092b4d6f8a1c3e5f7092b4d6f8a1c3e5f7092b4d\n")
        os.chmod(os.path.join(work, "tunnel.key"), 0o600)
        etcd = Etcd().start()
        origin = Origin().start()
        started.append(origin)
        ports = {r: free_port() for r in REGIONS}
        admin_ports = {r: free_port() for r in REGIONS}
        nodes = {}
        for region in REGIONS:
            node = Sluice(config(region, ports, work, origin.port, etcd.url), port=ports[region],
                          admin_port=admin_ports[region], binary=args.sluice)
            node.start()
            started.append(node)
            nodes[region] = node
        port = admin_ports[REGIONS[0]]
        pid = nodes[REGIONS[0]].pid

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            status, body = call(port, "GET", "/v1/fleet")
            if status == 200 and len(body.get("nodes", [])) == 3:
                break
            time.sleep(0.1)  # a bench waiting for its set-up, not a test's synchronisation
        now = int(time.time())
        assert post_csv(port, synthetic_history_csv(now, REGIONS)) == 200

        # The page's files.
        page_bytes = 0
        t0 = time.monotonic()
        for path in PAGE_FILES:
            with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=10) as r:
                page_bytes += len(r.read())
        page_ms = (time.monotonic() - t0) * 1000

        def idle_rate():
            a, t = control_thread_ns(pid), time.monotonic()
            time.sleep(args.idle)
            return (control_thread_ns(pid) - a) / (time.monotonic() - t)

        # One kept-alive connection, as a browser's (it reuses its connections to the page's
        # origin): the cost measured is the requests', not TCP handshakes'.
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

        def get(path):
            conn.request("GET", path, headers={"Authorization": "Bearer " + TOKEN})
            r = conn.getresponse()
            r.read()
            return r.status

        def measure(requests):
            rate = idle_rate()
            a, t = control_thread_ns(pid), time.monotonic()
            for method, path in requests:
                status = get(path)
                assert status in (200, 404), (path, status)
            spent = control_thread_ns(pid) - a - rate * (time.monotonic() - t)
            return max(0.0, spent)

        next_seq = [0]

        def refresh_requests(n):
            out = []
            for _ in range(n):
                out.extend(("GET", p) for p in REFRESH)
                out.append(("GET", "/v1/audit?since=seq:%d&limit=200" % next_seq[0]))
            return out

        for method, path in refresh_requests(20):  # warm up
            get(path)
        poll_ns = measure(refresh_requests(args.polls))
        # Where it goes: each request of a refresh alone.
        each = {}
        for method, path in refresh_requests(1):
            each[path.split("?")[0]] = measure([(method, path)] * args.polls) / args.polls / 1000
        print("per request (us of the control thread): " +
              " ".join("%s=%.0f" % (p, us) for p, us in each.items()))
        chart_1h_ns = measure([("GET", "/v1/history/chart?window=3600")] * args.charts)
        chart_24h_ns = measure([("GET", "/v1/history/chart?window=86400")] * args.charts)
        print("console poll: %d refreshes of %d requests, %d charts of 1 h and of 24 h, against "
              "%s with 15 days of history for 3 regions" % (args.polls, len(REFRESH) + 1,
                                                             args.charts, REGIONS[0]))
        print("console_poll: polls=%d cpu_us_per_poll=%.0f chart_1h_cpu_us=%.0f "
              "chart_24h_cpu_us=%.0f page_bytes=%d page_ms=%.1f" % (
                  args.polls, poll_ns / args.polls / 1000, chart_1h_ns / args.charts / 1000,
                  chart_24h_ns / args.charts / 1000, page_bytes, page_ms))
        return 0
    finally:
        for p in reversed(started):
            p.stop()
            if isinstance(p, Sluice):
                shutil.rmtree(p.dir, True)
        if etcd:
            etcd.cleanup()
        shutil.rmtree(work, True)


if __name__ == "__main__":
    raise SystemExit(main())

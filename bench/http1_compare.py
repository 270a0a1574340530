#!/usr/bin/env python3
"""Side-by-side HTTP/1.1 proxy comparison: sluice against nginx, measured in one run.

Both proxies run one worker pinned to CPU 0 with upstream keep-alive; the origin (nginx, one
worker) and the load generators run on CPU 1. Every figure is measured for both proxies in
interleaved rounds, so the ratios are comparable even though absolute numbers drift on a
shared machine.

Figures:
  - requests/s, p50 and p99 with wrk, 50 keep-alive connections, a small response;
  - proxy CPU time (user + system) per request at a fixed offered rate below saturation
    (wrk with a per-request delay), from /proc/<pid>/stat;
  - system calls per proxied request (strace -c -f on the proxy while h2load sends exactly
    N requests);
  - resident memory per idle keep-alive client connection (10,000 connections that each made
    one request and then wait).

Usage: bench/http1_compare.py [--sluice build/proxy/sluice] [--duration 10] [--rounds 3]
       bench/http1_compare.py --quick        (a short smoke run)
Needs: wrk, h2load (nghttp2-client), nginx, strace, taskset (apt-get install wrk nghttp2-client
nginx-light strace util-linux).
"""

import argparse
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

from sluicetest.nginx import Nginx, hello_origin
from sluicetest.process import ROOT, Sluice, cpu_seconds, free_port, rss_kib, wait_for_port

PROXY_CPU = "0"
LOAD_CPU = "1"


def start_sluice(binary, port, origin_port, workdir, name="sluice", admin=True):
    """sluice on the command line, one worker on PROXY_CPU; admin: on a free port (False: the
    binary's default)."""
    return Sluice(args=["--listen", "127.0.0.1:%d" % port, "--origin", "127.0.0.1:%d" % origin_port,
                        "--workers", "1", "--log-level", "warn"],
                  port=port, admin=admin, binary=binary, directory=workdir, name=name,
                  cpu=PROXY_CPU, stop_timeout=15).start(wait=False)


def parse_latency(text, label):
    m = re.search(r"^\s+%s\s+([\d.]+)(us|ms|s)\s*$" % label, text, re.M)
    if not m:
        return float("nan")
    value, unit = float(m.group(1)), m.group(2)
    return value * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk(port, duration, connections, script=None, extra=()):
    """`extra`: more wrk arguments, e.g. ["-H", "Authorization: Bearer ..."]."""
    cmd = ["taskset", "-c", LOAD_CPU, "wrk", "-t1", "-c%d" % connections, "-d%ds" % duration,
           "--latency"] + list(extra)
    if script:
        cmd += ["-s", script]
    cmd.append("http://127.0.0.1:%d/" % port)
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors", out)
    return {"rps": rps, "requests": requests, "p50": parse_latency(out, "50%"),
            "p99": parse_latency(out, "99%"), "errors": bool(errors)}


def cpu_per_request(port, pids, duration, script):
    before = cpu_seconds(pids)
    result = wrk(port, duration, 50, script)
    used = cpu_seconds(pids) - before
    return used / max(result["requests"], 1) * 1e6, result["rps"]


def syscalls_per_request(port, pids, requests, extra=()):
    out_path = tempfile.mktemp(prefix="strace-")
    tracer = subprocess.Popen(["strace", "-c", "-f", "-o", out_path] +
                              sum((["-p", str(p)] for p in pids), []),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # Wait until every thread is traced.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        traced = all(
            all(open("/proc/%d/task/%s/status" % (p, t)).read().find("TracerPid:\t0") < 0
                for t in os.listdir("/proc/%d/task" % p)) for p in pids)
        if traced:
            break
        time.sleep(0.05)
    time.sleep(0.2)
    subprocess.run(["taskset", "-c", LOAD_CPU, "h2load", "--h1", "-n", str(requests), "-c", "50"] +
                   list(extra) + ["http://127.0.0.1:%d/" % port], capture_output=True, timeout=300)
    time.sleep(0.2)
    tracer.send_signal(signal.SIGINT)
    tracer.wait(30)
    with open(out_path) as f:
        text = f.read()
    os.unlink(out_path)
    m = re.search(r"^100\.00\s+[\d.]+\s+\d*\s+(\d+)\s+(\d+)?\s*total", text, re.M)
    if not m:  # strace could not attach (no ptrace here) or saw nothing
        raise ValueError("strace counted nothing: %s" % text.strip()[:200])
    return int(m.group(1)) / requests, text


SOURCE_ADDRESS_SHARE = 20000  # client sockets per 127.0.0.x source (ephemeral range ~28k)
FD_MARGIN = 500  # descriptors left for everything else, on either side


def raise_fd_limit(wanted):
    """Raises this process's RLIMIT_NOFILE to the hard limit, or to `wanted` beyond it when
    that is allowed (root with CAP_SYS_RESOURCE); never lowers it (the processes this one
    starts later inherit it). Returns the soft limit reached."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if wanted > hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, wanted))
            return wanted
        except (ValueError, OSError):
            pass
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def open_files_limit(pid):
    """The soft descriptor limit of a running process (/proc/PID/limits)."""
    with open("/proc/%d/limits" % pid) as f:
        for line in f:
            if line.startswith("Max open files"):
                value = line.split()[3]
                return 1 << 30 if value == "unlimited" else int(value)
    return 1 << 30


def connect_from(port, index):
    """A connection to 127.0.0.1:port from 127.0.0.<1 + index // SOURCE_ADDRESS_SHARE>: each
    source address has its own ephemeral ports, so the count is not capped near 28k."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        # Pick the port at connect(), by the whole 4-tuple, not at bind() (IP_BIND_ADDRESS_NO_PORT).
        s.setsockopt(socket.IPPROTO_IP, getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24), 1)
        s.bind(("127.0.0.%d" % (1 + index // SOURCE_ADDRESS_SHARE), 0))
        s.connect(("127.0.0.1", port))
    except OSError:
        s.close()
        raise
    return s


def read_response(s, answered=b"hello world"):
    """Reads until `answered` arrived; raises if the connection closes first."""
    response = b""
    while answered not in response:
        chunk = s.recv(4096)
        if not chunk:
            raise RuntimeError("connection closed before the response")
        response += chunk
    return response


def upstream_connections(pids, origin_port):
    """Established TCP connections the processes `pids` hold to 127.0.0.1:origin_port."""
    inodes = set()
    for pid in pids:
        for fd in os.listdir("/proc/%d/fd" % pid):
            try:
                target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    count = 0
    with open("/proc/%d/net/tcp" % pids[0]) as f:
        next(f)
        for line in f:
            fields = line.split()
            remote_port = int(fields[2].split(":")[1], 16)
            if remote_port == origin_port and fields[3] == "01" and fields[9] in inodes:
                count += 1
    return count


def idle_memory(port, pids, count, upstream=0, origin_port=None, extra=(), cap=None, warm=0,
                heap=None):
    """Resident memory of idle connections, in bytes per connection.

    Downstream: `count` keep-alive connections each make one request, one at a time (so the
    proxy reuses one origin connection: the figure is what an idle client connection keeps),
    then all wait while the proxy's resident memory is read. Upstream (upstream > 0, with the
    origin's /slow, which answers about one request per millisecond): first `warm` more
    connections send a request each at once and stay open, so that the proxy's caches of
    request state fill (sluice keeps up to 1,024 request heads, 256 parsers and 256 buffers per
    worker) and the origin connections they open go idle into its pool; then `upstream` more
    connections (plus as many as the proxy already pools), still holding the first ones, send
    a request each at once, so the proxy opens up to `upstream` new origin connections, which
    go idle into its pool with the answers. The growth is that burst's idle downstream
    connections (at the figure above) plus the new pooled ones; their share divided by the new
    origin connections counted (/proc/PID/net/tcp) is the upstream figure. Resident memory is
    only ever added, so allocator caches cannot hide any of it; the resident growth of a burst
    also holds the allocator's free memory (what the burst's requests used and gave back, on
    pages shared with the new connections).

    heap: a function returning the proxy's bytes in live heap allocations (sluice's
    sluice_heap_allocated_bytes), or None; with it the result also has down_heap and up_heap:
    the same figures counted in live allocations, which the allocator's free memory is not
    (nan without it). Live bytes also fall when the proxy frees something meanwhile (pooled
    connections timing out), so over a few hundred connections they are rough. Each reading
    scrapes the heap count before the resident size, so the scrape's own memory is in both
    readings of a pair.

    Descriptors: the client's limit is raised to the hard limit (or beyond, when allowed); the
    count is capped by it, by the proxy's own limit and by `cap` (the proxy's connection cap),
    leaving FD_MARGIN spare, and `note` says why when the count measured is below the one
    asked for. Returns a dict: down (bytes per idle downstream connection), count (connections
    measured), note, down_heap, and with upstream: up (bytes per idle pooled upstream
    connection), up_heap, pooled (origin connections opened), up_count (downstream connections
    of that phase); without it up and up_heap are nan, pooled and up_count 0."""
    # Connections already idle in the proxy's pool (from earlier loads, and from the warm-up)
    # would serve the first requests of the burst: it is made that much bigger, so `upstream`
    # new ones open.
    if not origin_port or not upstream:
        upstream = warm = 0
    # At most: the warm-up's origin connections all pooled, and in the burst.
    burst_size = (upstream + warm + upstream_connections(pids, origin_port)) if upstream else 0
    later = warm + burst_size  # client connections after the measured idle ones
    wanted = count + later + FD_MARGIN
    client_limit = raise_fd_limit(wanted)
    proxy_limit = min(open_files_limit(p) for p in pids)
    limits = {"this client's descriptor limit (hard %d%s)" % (
                  resource.getrlimit(resource.RLIMIT_NOFILE)[1],
                  ", not raisable here" if client_limit < wanted else ""):
              client_limit - later - FD_MARGIN,
              "the proxy's descriptor limit (%d)" % proxy_limit:
              proxy_limit - warm - 2 * burst_size - FD_MARGIN}  # + an origin one per burst one
    if cap:
        limits["the proxy's connection cap (%d)" % cap] = cap - later - 100
    measured, note = count, ""
    for reason, allowed in sorted(limits.items(), key=lambda kv: kv[1]):
        if allowed < measured:
            measured = max(allowed, 1)
            note = "asked for %d idle connections, measured %d: %s" % (count, measured, reason)
    fields = "".join("%s\r\n" % h for h in list(extra)[1::2])  # ["-H", "Name: value", ...]
    request = ("GET / HTTP/1.1\r\nHost: bench\r\n%s\r\n" % fields).encode()
    slow = ("GET /slow HTTP/1.1\r\nHost: bench\r\n%s\r\n" % fields).encode()
    sockets = []
    heap = heap or (lambda: float("nan"))

    def reading():  # (resident KiB, live heap bytes): the heap scraped first
        live = heap()
        return rss_kib(pids), live

    try:
        before, heap_before = reading()
        for i in range(measured):
            s = connect_from(port, i)
            sockets.append(s)
            s.sendall(request)
            read_response(s)
        time.sleep(1.0)
        after, heap_after = reading()
        nan = float("nan")
        result = {"down": (after - before) * 1024 / measured, "count": measured, "note": note,
                  "down_heap": (heap_after - heap_before) / measured,
                  "up": nan, "up_heap": nan, "pooled": 0, "up_count": 0}
        if upstream:
            refused = 0
            if warm:
                refused += slow_burst(port, sockets, measured, warm, slow)
                time.sleep(1.0)
            after, heap_after = reading()
            pooled_before = upstream_connections(pids, origin_port)
            burst_size = upstream + pooled_before
            refused += slow_burst(port, sockets, measured + warm, burst_size, slow)
            if refused:
                result["note"] = "; ".join(filter(None, [
                    note, "%d of the %d burst requests refused or failed" % (
                        refused, warm + burst_size)]))
            time.sleep(1.0)
            rss_end, heap_end = reading()
            grown, heap_grown = (rss_end - after) * 1024, heap_end - heap_after
            pooled = upstream_connections(pids, origin_port) - pooled_before
            per_pooled = lambda growth, down: ((growth - burst_size * down) / pooled  # noqa: E731
                                               if pooled else nan)
            result.update(pooled=pooled, up_count=burst_size,
                          up=per_pooled(grown, result["down"]),
                          up_heap=per_pooled(heap_grown, result["down_heap"]))
        return result
    finally:
        for s in sockets:
            s.close()


def slow_burst(port, sockets, first, size, request):
    """`size` new connections (source indexes from `first`, appended to `sockets`) send
    `request` at once, once all are accepted; returns how many were refused or failed (a proxy
    may refuse part of a burst: sluice-full's shedding)."""
    burst = [connect_from(port, first + i) for i in range(size)]
    sockets.extend(burst)
    time.sleep(0.5)  # every connection accepted before the first request
    for s in burst:
        s.sendall(request)
    refused = 0
    for s in burst:
        s.settimeout(60)
        try:
            refused += not read_response(s, b"\r\n\r\n").startswith(b"HTTP/1.1 200")
        except (OSError, RuntimeError):
            refused += 1
    return refused


def idle_rss_per_connection(port, pids, count, extra=()):
    """Bytes of resident memory per idle downstream keep-alive connection (idle_memory)."""
    return idle_memory(port, pids, count, extra=extra)["down"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sluice", default=os.path.join(ROOT, "build/proxy/sluice"))
    parser.add_argument("--baseline", help="another sluice binary (an older build, say) measured "
                        "side by side as a 'baseline' row; it runs with its default flags")
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--idle-connections", type=int, default=10000)
    parser.add_argument("--syscall-requests", type=int, default=50000)
    parser.add_argument("--quick", action="store_true", help="short smoke run")
    args = parser.parse_args()
    if args.quick:
        args.duration, args.rounds, args.idle_connections, args.syscall_requests = 2, 1, 500, 2000
    for tool in ("wrk", "h2load", "nginx", "strace", "taskset"):
        if not shutil.which(tool):
            sys.exit("missing %s: apt-get install wrk nghttp2-client nginx-light strace" % tool)
    if os.cpu_count() < 2:
        sys.exit("needs two CPUs: the proxy on one, load and origin on the other")

    work = tempfile.mkdtemp(prefix="sluice-bench-")
    origin_port, nginx_port, sluice_port = free_port(), free_port(), free_port()
    delay_script = os.path.join(work, "delay.lua")
    with open(delay_script, "w") as f:
        f.write("function delay() return 5 end\n")  # ~50 conns / 5 ms: below saturation

    origin = hello_origin(work, origin_port, LOAD_CPU)
    nginx = Nginx(work, "proxy", "listen 127.0.0.1:%d; location / { proxy_pass http://origin; "
                  "proxy_http_version 1.1; proxy_set_header Connection \"\"; }" % nginx_port,
                  PROXY_CPU, upstream="upstream origin { server 127.0.0.1:%d; keepalive 64; }"
                  % origin_port).start()
    # The admin listener on a free port, so a baseline sluice can keep the default one.
    sluice = start_sluice(args.sluice, sluice_port, origin_port, work)
    baseline = baseline_port = None
    if args.baseline:
        baseline_port = free_port()
        baseline = start_sluice(args.baseline, baseline_port, origin_port, work, name="baseline",
                                admin=False)
    rows = ["origin", "nginx", "sluice"] + (["baseline"] if baseline else [])
    try:
        for port in (origin_port, nginx_port, sluice_port, baseline_port):
            if port:
                wait_for_port(port)
        time.sleep(0.5)
        proxies = {"nginx": (nginx, nginx_port), "sluice": (sluice, sluice_port)}
        if baseline:
            proxies["baseline"] = (baseline, baseline_port)
        results = {name: {"rps": [], "p50": [], "p99": [], "cpu_us": [], "rate": []}
                   for name in rows}

        for name, (proc, port) in proxies.items():  # warm up pools and caches
            wrk(port, 1, 50)
        for r in range(args.rounds):
            for name, port in [("origin", origin_port)] + [(n, p) for n, (_, p) in
                                                           proxies.items()]:
                res = wrk(port, args.duration, 50)
                for key in ("rps", "p50", "p99"):
                    results[name][key].append(res[key])
                print("round %d %-7s %9.0f req/s  p50 %.3f ms  p99 %.3f ms" %
                      (r + 1, name, res["rps"], res["p50"], res["p99"]), flush=True)
            for name, (proc, port) in proxies.items():
                cpu, rate = cpu_per_request(port, proc.worker_pids(), args.duration, delay_script)
                results[name]["cpu_us"].append(cpu)
                results[name]["rate"].append(rate)
                print("round %d %-7s %6.2f us CPU per request at %.0f req/s" %
                      (r + 1, name, cpu, rate), flush=True)

        syscalls = {}
        for name, (proc, port) in proxies.items():
            syscalls[name], detail = syscalls_per_request(port, proc.worker_pids(),
                                                          args.syscall_requests)
            print("%s system calls:\n%s" % (name, detail), flush=True)
        idle = {}
        for name, (proc, port) in proxies.items():
            idle[name] = idle_rss_per_connection(port, proc.worker_pids(), args.idle_connections)

        med = lambda xs: statistics.median(xs) if xs else float("nan")
        print("\n%-8s %12s %8s %9s %9s %12s %10s %12s %14s" %
              ("", "req/s", "vs nginx", "p50 ms", "p99 ms", "CPU us/req", "vs nginx",
               "syscalls/req", "idle B/conn"))
        for name in rows:
            rps = med(results[name]["rps"])
            ratio = rps / med(results["nginx"]["rps"])
            cpu = med(results[name]["cpu_us"])
            cpu_ratio = cpu / med(results["nginx"]["cpu_us"]) if name != "origin" else float("nan")
            print("%-8s %12.0f %8.2f %9.3f %9.3f %12s %10s %12s %14s" % (
                name, rps, ratio, med(results[name]["p50"]), med(results[name]["p99"]),
                "%.2f" % cpu if name != "origin" else "-",
                "%.2f" % cpu_ratio if name != "origin" else "-",
                "%.2f" % syscalls[name] if name in syscalls else "-",
                "%.0f" % idle[name] if name in idle else "-"))
        print("\n(%d rounds of %ds, wrk -t1 -c50; CPU per request at a fixed offered rate of "
              "about %.0f req/s; syscalls over %d requests with h2load --h1 -c50; idle memory over "
              "%d connections)" % (args.rounds, args.duration, med(results["sluice"]["rate"]),
                                   args.syscall_requests, args.idle_connections))
    finally:
        if baseline:
            baseline.stop()
        sluice.stop()
        nginx.stop()
        origin.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

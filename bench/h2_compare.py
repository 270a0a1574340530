#!/usr/bin/env python3
"""Side-by-side HTTP/2 over TLS: sluice against nginx and nghttpx, measured in one run.

Each proxy terminates TLS with the same certificate (ECDSA P-256, made here with openssl),
runs one worker pinned to CPU 0 and keeps its connections to the origin alive; the origin
(nginx, one worker) and h2load run on CPU 1. Rounds are interleaved, so the ratios compare
like with like even though absolute numbers drift on a shared machine.

Figures:
  - requests/s and mean request time with h2load over TLS, 50 connections x 10 streams;
  - TLS handshakes: full handshakes (ECDHE + ECDSA, TLS 1.3, no resumption), each on a new
    connection with one request, 500 at a time; reported as the rate reached and as the
    proxy's CPU time per handshake (and so handshakes per second of one core).

Usage: bench/h2_compare.py [--sluice build/proxy/sluice] [--duration 10] [--rounds 3]
       bench/h2_compare.py --quick        (a short smoke run)
Needs: h2load (nghttp2-client), nginx, nghttpx (nghttp2-proxy), openssl, taskset.
"""

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

from http1_compare import LOAD_CPU, PROXY_CPU
from sluicetest.certs import Pki
from sluicetest.nginx import Nginx, hello_origin
from sluicetest.process import ROOT, Process, Sluice, cpu_seconds, free_port, wait_for_port


def start_sluice(binary, port, origin_port, cert, key, workdir):
    return Sluice("""
workers: 1
log_level: warn
admin: {address: "off"}
listeners:
  - address: 127.0.0.1:%d
    tls: {cert_file: %s, key_file: %s}
clusters:
  - name: origin
    endpoints: [127.0.0.1:%d]
    pool: {max_idle: 1024, max_requests: 0}
routes: [{cluster: origin}]
""" % (port, cert, key, origin_port), port=port, admin=False, binary=binary, directory=workdir,
                  cpu=PROXY_CPU, stop_timeout=15).start(wait=False)


def proxy_process(cmd, log_path, wrapper=()):
    """A proxy other than sluice and nginx, pinned to PROXY_CPU, started (under `wrapper`, a
    command such as valgrind, if given)."""
    proc = Process(cmd, log_path, cpu=PROXY_CPU, stop_timeout=15)
    proc.wrapper = list(wrapper)
    return proc.start()


def start_nghttpx(port, origin_port, cert, key, workdir):
    return proxy_process(["nghttpx", "--frontend=127.0.0.1,%d" % port,
                          "--backend=127.0.0.1,%d" % origin_port, "--workers=1",
                          "--log-level=WARN", "--backend-keep-alive-timeout=300s",
                          "--errorlog-file=/dev/stderr", "--accesslog-file=/dev/null", key, cert],
                         os.path.join(workdir, "nghttpx.log"))


def h2load(args, timeout):
    cmd = ["taskset", "-c", LOAD_CPU, "h2load"] + args
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout).stdout
    m = re.search(r"finished in ([\d.]+)(ms|s), ([\d.]+) req/s", out)
    done = re.search(r"requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded", out)
    mean = re.search(r"time for request:\s+\S+\s+\S+\s+([\d.]+)(us|ms|s)", out)
    codes = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
    elapsed = float(m.group(1)) / (1000.0 if m.group(2) == "ms" else 1.0)
    mean_ms = float(mean.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[mean.group(2)]
    return {"rps": float(m.group(3)), "elapsed": elapsed, "succeeded": int(done.group(3)),
            "total": int(done.group(1)), "mean_ms": mean_ms,
            "4xx": int(codes.group(3)), "5xx": int(codes.group(4)),
            "answered": sum(int(codes.group(i)) for i in range(1, 5))}


def throughput(port, duration):
    return h2load(["-c", "50", "-m", "10", "-D", str(duration), "--warm-up-time=1s",
                   "https://127.0.0.1:%d/" % port], duration + 60)


def handshakes(port, pids, batches, per_batch=500, extra=()):
    """Full handshakes, one request each: (handshakes/s reached, proxy CPU us per handshake).
    Every connection that got an answer counts (a proxy that sheds or refuses the request has
    still paid for the handshake)."""
    before, elapsed, count = cpu_seconds(pids), 0.0, 0
    for _ in range(batches):
        r = h2load(["-n", str(per_batch), "-c", str(per_batch), "-m", "1"] + list(extra) +
                   ["https://127.0.0.1:%d/" % port], 120)
        elapsed += r["elapsed"]
        count += r["answered"]
    used = cpu_seconds(pids) - before
    return count / elapsed, used / max(count, 1) * 1e6


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sluice", default=os.path.join(ROOT, "build/proxy/sluice"))
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batches", type=int, default=6, help="handshake batches of 500")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.duration, args.rounds, args.batches = 2, 1, 1
    if os.cpu_count() < 2:
        sys.exit("needs two CPUs: the proxy on one, load and origin on the other")
    for tool in ("h2load", "nginx", "nghttpx", "openssl", "taskset"):
        if not shutil.which(tool):
            sys.exit("missing %s (apt-get install nghttp2-client nginx-light nghttp2-proxy)" % tool)

    work = tempfile.mkdtemp(prefix="sluice-h2-bench-")
    cert, key = Pki(work).self_signed("server")
    origin_port = free_port()
    ports = {"nginx": free_port(), "nghttpx": free_port(), "sluice": free_port()}
    origin = hello_origin(work, origin_port, LOAD_CPU)
    proxies = {
        "nginx": Nginx(work, "proxy",
                       "listen 127.0.0.1:%d ssl http2; ssl_certificate %s; ssl_certificate_key %s; "
                       "ssl_protocols TLSv1.2 TLSv1.3; http2_max_requests 1000000; "
                       "location / { proxy_pass http://origin; proxy_http_version 1.1; "
                       "proxy_set_header Connection \"\"; }" % (ports["nginx"], cert, key),
                       PROXY_CPU, upstream="upstream origin { server 127.0.0.1:%d; keepalive 1024; }"
                       % origin_port).start(),
        "nghttpx": start_nghttpx(ports["nghttpx"], origin_port, cert, key, work),
        "sluice": start_sluice(args.sluice, ports["sluice"], origin_port, cert, key, work),
    }
    results = {name: {"rps": [], "mean": [], "hs_rate": [], "hs_cpu": []} for name in proxies}
    try:
        for port in [origin_port] + list(ports.values()):
            wait_for_port(port)
        for r in range(args.rounds):
            for name, proxy in proxies.items():
                t = throughput(ports[name], args.duration)
                if t["succeeded"] < t["total"]:
                    print("warning: %s failed %d requests" % (name, t["total"] - t["succeeded"]))
                results[name]["rps"].append(t["rps"])
                results[name]["mean"].append(t["mean_ms"])
                rate, cpu = handshakes(ports[name], proxy.worker_pids(), args.batches)
                results[name]["hs_rate"].append(rate)
                results[name]["hs_cpu"].append(cpu)
                print("round %d %-8s %9.0f req/s  mean %.3f ms  %6.0f handshakes/s  %.0f us "
                      "CPU/handshake" % (r + 1, name, t["rps"], t["mean_ms"], rate, cpu),
                      flush=True)
    finally:
        for proxy in proxies.values():
            proxy.stop()
        origin.stop()
        shutil.rmtree(work, True)

    med = statistics.median
    base_rps = med(results["nginx"]["rps"])
    base_cpu = med(results["nginx"]["hs_cpu"])
    print("\nHTTP/2 over TLS, 50 connections x 10 streams, %d s x %d rounds (medians)" % (
        args.duration, args.rounds))
    print("| proxy | req/s | vs nginx | mean ms | handshakes/s reached | CPU us/handshake | "
          "handshakes/s per core | vs nginx |")
    print("|---|---|---|---|---|---|---|---|")
    for name in ("nginx", "nghttpx", "sluice"):
        r = results[name]
        cpu = med(r["hs_cpu"])
        print("| %s | %.0f | %.2f | %.3f | %.0f | %.0f | %.0f | %.2f |" % (
            name, med(r["rps"]), med(r["rps"]) / base_rps, med(r["mean"]), med(r["hs_rate"]),
            cpu, 1e6 / cpu if cpu else float("nan"), base_cpu / cpu if cpu else float("nan")))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""How long a steering change takes to reach every node of a fleet.

Starts one etcd (Debian's etcd-server) and three sluice nodes, one per region, sharing a
steering table through it, all on loopback. Then makes N changes, each through the admin API
of the next node in turn, and for each one measures the time from sending the PUT until each
of the two other nodes serves the new table version (their /v1/steering, polled in a tight
loop). Prints percentiles over all 2N measurements, and the CSV of every one with --csv.

Usage: bench/fleet_propagation.py [--sluice build/proxy/sluice] [--changes 200] [--csv FILE]
Needs: etcd (apt-get install etcd-server).
Every process it starts is stopped by its PID; temporary files are removed.
"""

import argparse
import os
import shutil
import statistics
import tempfile
import time

from sluicetest import admin
from sluicetest.etcd import Etcd
from sluicetest.origins import Origin
from sluicetest.process import SLUICE_BIN, Sluice, free_port

REGIONS = ("us-east-1", "us-west-2", "eu-west-1")
TOKEN = "p" * 48


def call(port, method, path, body=None):
    return admin.call(port, method, path, TOKEN, body)


def config(local, ports, admin_dir, origin_port, etcd_url):
    regions = "".join("    %s:\n      tunnel: [127.0.0.1:%d]\n" % (r, ports[r]) for r in REGIONS)
    return """
workers: 1
listeners: [{address: 127.0.0.1:%(port)d}]
clusters: [{name: app, endpoints: [127.0.0.1:%(origin)d]}]
routes: [{cluster: app}]
proxy:
  trust_client_headers: true  # the clients here stand for the apps' own gateway
steering:
  local_region: %(local)s
  member_id: [{header: x-member-id}]
  tunnel: {insecure: true, key_file: %(dir)s/tunnel.key}
  regions:
%(regions)s
admin:
  tokens: [{name: bench, role: admin, token_file: %(dir)s/admin.token}]
fleet:
  etcd: {endpoints: [%(etcd)s]}
  prefix: /sluice/bench/
  node: bench-%(local)s
""" % {"port": ports[local], "origin": origin_port, "local": local, "dir": admin_dir,
       "regions": regions, "etcd": etcd_url}


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sluice", default=SLUICE_BIN)
    parser.add_argument("--changes", type=int, default=200)
    parser.add_argument("--csv", help="write every measurement here")
    args = parser.parse_args()
    binary = os.path.abspath(args.sluice)

    work = tempfile.mkdtemp(prefix="sluice-fleet-bench-")
    for name, text in (("admin.token", TOKEN), ("tunnel.key", "3f9c1a7e5b2d4f6081a3c5e7092b4d6f8a1c3e5f7092b4d6f8a1c3e5f7092b4d")):
        with open(os.path.join(work, name), "w") as f:
            f.write(text + "\n")
    etcd = Etcd()
    origin = Origin(name="origin")
    nodes = {}
    try:
        etcd.start()
        origin.start()
        ports = {r: free_port() for r in REGIONS}
        for region in REGIONS:
            nodes[region] = Sluice(config(region, ports, work, origin.port, etcd.url),
                                   port=ports[region], binary=binary).start()
        deadline = time.monotonic() + 20
        while not all(call(n.admin_port, "GET", "/v1/fleet")[1].get("connected")
                      for n in nodes.values()):
            if time.monotonic() > deadline:
                raise SystemExit("the nodes did not connect to etcd")
            time.sleep(0.05)

        delays = []  # (change, writer, reader, seconds)
        writes = []  # the PUT's own time: the transaction in etcd included
        for i in range(args.changes):
            writer = REGIONS[i % 3]
            started = time.monotonic()
            status, body = call(nodes[writer].admin_port, "PUT", "/v1/steering/regions/us-east-1",
                                {"fraction": (i % 100) + 1 if i % 100 != 99 else 0,
                                 "saviors": {"eu-west-1": 100},
                                 # no region serves traffic here: the guardrail would refuse
                                 "force": True})
            writes.append(time.monotonic() - started)
            if status != 200:
                raise SystemExit("change %d refused: %s" % (i, body))
            version = body["version"]
            waiting = [r for r in REGIONS if r != writer]
            deadline = started + 10
            while waiting:
                for region in list(waiting):
                    if call(nodes[region].admin_port, "GET", "/v1/steering")[1]["version"] >= version:
                        delays.append((i, writer, region, time.monotonic() - started))
                        waiting.remove(region)
                if time.monotonic() > deadline:
                    raise SystemExit("change %d never reached %s" % (i, waiting))
        seconds = [d[3] for d in delays]
        print("fleet propagation: %d changes through 3 nodes in turn, %d measurements "
              "(from sending the PUT to another node serving the new version)" %
              (args.changes, len(seconds)))
        print("  p50 %.1f ms  p90 %.1f ms  p99 %.1f ms  max %.1f ms  mean %.1f ms" % (
            percentile(seconds, 50) * 1000, percentile(seconds, 90) * 1000,
            percentile(seconds, 99) * 1000, max(seconds) * 1000,
            statistics.mean(seconds) * 1000))
        print("  the PUT itself (written to etcd, then answered): p50 %.1f ms  p99 %.1f ms" % (
            percentile(writes, 50) * 1000, percentile(writes, 99) * 1000))
        if args.csv:
            with open(args.csv, "w") as f:
                f.write("change,writer,reader,seconds\n")
                for change, writer, reader, s in delays:
                    f.write("%d,%s,%s,%.6f\n" % (change, writer, reader, s))
    finally:
        for node in nodes.values():
            node.stop()
            shutil.rmtree(node.dir, True)
        origin.stop()
        etcd.cleanup()
        shutil.rmtree(work, True)


if __name__ == "__main__":
    main()

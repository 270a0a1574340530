"""The fleet end to end: three sluice nodes (one per region) sharing one steering table in a real
etcd on loopback, started and stopped by the test.

- a change through any node reaches every node within 1 s (the propagation time is printed);
- the leader is killed mid-ramp: another node takes over within the lease TTL and the ramp goes
  on from its step, none skipped or repeated (checked in etcd's own history of the state key);
- etcd is stopped under traffic: requests keep flowing on the last table, changes get 503, the
  ramp pauses, and everything resumes once etcd is back;
- two writers race with the same table version: exactly one wins;
- on a three-member etcd, the member that is raft's leader dies (and, in the worst case, it is
  the member every node talks to): the nodes go on, a change reaches all three within seconds,
  one node leads, and the member rejoins once started again.
"""

import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

from harness import SANITIZED, ProxyTestCase
from sluicetest import admin
from sluicetest.etcd import Etcd, EtcdCluster
from sluicetest.process import SLUICE_BIN, SLUICECTL_BIN, Sluice, free_port
from sluicetest.secret_files import write_secrets

REGIONS = ("us-east-1", "us-west-2", "eu-west-1")
ADMIN_TOKEN = "f" * 48
KEY = "3f9c1a7e5b2d4f6081a3c5e7092b4d6f8a1c3e5f7092b4d6f8a1c3e5f7092b4d"
LEASE_TTL = 2  # seconds


class FleetTestCase(ProxyTestCase):
    ETCD_TLS = False
    WAIT_INTERVAL = 0.02

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="sluice-fleet-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        write_secrets(self.dir, (("admin.token", ADMIN_TOKEN), ("tunnel.key", KEY)))
        self.etcd = self.start_etcd()
        self.origin = self.start_origin(name="origin")
        self.ports = {r: free_port() for r in REGIONS}
        self.admin_ports = {r: free_port() for r in REGIONS}
        self.nodes = {}
        self.etcd_extra = ""  # more keys of fleet.etcd
        self.origin_ports = {}  # region: its origin's port, instead of the shared origin
        # us-east-1 lists an endpoint where nothing listens first: it fails over to the next;
        # eu-west-1 names etcd by host name (localhost, resolved by sluice).
        self.dead_endpoint = "%s://127.0.0.1:%d" % ("https" if self.ETCD_TLS else "http",
                                                    free_port())

    def start_etcd(self):
        """The store the nodes share (stopped and removed after the test)."""
        etcd = Etcd(tls=self.ETCD_TLS)
        self.addCleanup(etcd.cleanup)
        return etcd.start()

    def etcd_endpoints(self, local):
        """fleet.etcd.endpoints of the node of region `local`, without the brackets."""
        if local == "us-east-1":
            return self.dead_endpoint + ", " + self.etcd.url
        if local == "eu-west-1":
            return self.etcd.url.replace("127.0.0.1", "localhost")
        return self.etcd.url

    def config(self, local, regions=REGIONS):
        regions = "".join("    %s:\n      tunnel: [127.0.0.1:%d]\n" % (r, self.ports[r])
                          for r in regions)
        return """
workers: 1
listeners: [{address: 127.0.0.1:%(port)d}]
clusters:
  - name: app
    endpoints: [127.0.0.1:%(origin)d]
    connect_timeout: 500ms
routes:
  - cluster: app
proxy:
  trust_client_headers: true  # the clients here stand for the apps' own gateway
steering:
  local_region: %(local)s
  member_id: [{header: x-member-id}]
  tunnel: {insecure: true, key_file: %(dir)s/tunnel.key, connect_timeout: 300ms}
  regions:
%(regions)s
admin:
  tokens:
    - {name: ops-%(local)s, role: admin, token_file: %(dir)s/admin.token}
controller:
  state_file: %(dir)s/%(local)s-state.json
  audit_log: %(dir)s/%(local)s-audit.jsonl
  gates: {recheck: 200ms, health_interval: 200ms, rollback_after: 1000}
fleet:
  etcd:
    endpoints: [%(etcd)s]
    timeout: 1s
%(etcd_extra)s  prefix: /sluice/test/
  node: node-%(local)s
  lease_ttl: %(ttl)ds
  publish_interval: 500ms
""" % {"port": self.ports[local], "origin": self.origin_ports.get(local, self.origin.port),
       "local": local, "dir": self.dir,
       "regions": regions, "ttl": LEASE_TTL,
       "etcd": self.etcd_endpoints(local),
       "etcd_extra": self.etcd_extra}

    def start_node(self, local, regions=REGIONS):
        proxy = Sluice(self.config(local, regions), port=self.ports[local],
                       admin_port=self.admin_ports[local])
        self.addCleanup(shutil.rmtree, proxy.dir, True)
        proxy.start()
        self.addCleanup(self.stop_node, proxy)
        self.nodes[local] = proxy
        return proxy

    def stop_node(self, proxy):
        if getattr(proxy, "killed", False):
            proxy.stop()
            return
        self._stop_and_check(proxy)

    def start_fleet(self):
        for region in REGIONS:
            self.start_node(region)
        # Every node in sync and one leader.
        self.wait_for(lambda: all(self.fleet(r).get("connected") for r in REGIONS),
                      what="every node connected to etcd")
        self.wait_for(lambda: self.leader() is not None, what="a leader")
        self.wait_for(lambda: all(len(self.fleet(r)["nodes"]) == 3 for r in REGIONS),
                      what="every node's view published")
        # The leader summed the three views, and every node has its sums (what a node's gates,
        # capacity and detection read of the fleet).
        self.wait_for(lambda: all(self.fleet_sums_complete(r) for r in REGIONS),
                      what="the leader's sums on every node")

    def fleet_sums_complete(self, region):
        sums = self.fleet(region).get("regions", {})
        return all(sums.get(r, {}).get("nodes") == 1 for r in REGIONS)

    def api(self, region, method, path, body=None):
        return admin.call(self.admin_ports[region], method, path, ADMIN_TOKEN, body)

    def fleet(self, region):
        status, body = self.api(region, "GET", "/v1/fleet")
        self.assertEqual(status, 200, body)
        return body

    def steering(self, region):
        status, body = self.api(region, "GET", "/v1/steering")
        self.assertEqual(status, 200, body)
        return body

    def leader(self):
        """The region whose node says it leads (None when none does)."""
        leading = []
        for region, proxy in self.nodes.items():
            if getattr(proxy, "killed", False):
                continue
            if self.fleet(region).get("this_node_leads"):
                leading.append(region)
        self.assertLessEqual(len(leading), 1, "two nodes lead at once: %s" % leading)
        return leading[0] if leading else None

    def metrics(self, region):
        return admin.metrics(self.admin_ports[region])[0]

    def wait_for(self, predicate, timeout=20.0, what="condition"):
        return super().wait_for(predicate, timeout, what)

    def wait_context(self):
        return "".join("\n--- %s\n%s" % (r, p.log_text()[-3000:]) for r, p in self.nodes.items())

    def plan_steps(self, history):
        """The step of the first plan in each stored state, with repeats of one step (a holding
        ramp's rewrites) folded."""
        steps = []
        for _, text in history:
            state = json.loads(text)
            if not state.get("plans"):
                continue
            step = state["plans"][0]["step"]
            if not steps or steps[-1] != step:
                steps.append(step)
        return steps


class Propagation(FleetTestCase):
    def test_three_nodes_see_a_change_within_a_second(self):
        self.start_fleet()
        delays = []
        for i in range(12):
            writer = REGIONS[i % 3]
            version = self.steering(writer)["version"]
            started = time.monotonic()
            status, body = self.api(writer, "PUT", "/v1/steering/regions/us-east-1",
                                    {"fraction": (i + 1) * 5, "saviors": {"eu-west-1": 100}})
            self.assertEqual(status, 200, body)
            self.assertEqual(body["version"], version + 1)
            # Every other node serves the new version.
            waiting = {r for r in REGIONS if r != writer}
            deadline = started + 5
            while waiting and time.monotonic() < deadline:
                for region in list(waiting):
                    if self.steering(region)["version"] == version + 1:
                        delays.append(time.monotonic() - started)
                        waiting.discard(region)
                time.sleep(0.005)
            self.assertFalse(waiting, "nodes that never saw version %d" % (version + 1))
        print("\nfleet propagation over 3 nodes (%d changes, admin PUT to the node serving it): "
              "median %.1f ms, max %.1f ms" % (len(delays), statistics.median(delays) * 1000,
                                               max(delays) * 1000))
        if not SANITIZED:
            self.assertLess(max(delays), 1.0, delays)
        # The node whose first endpoint is dead went on to the next one.
        self.assertEqual(self.fleet("us-east-1")["etcd"], self.etcd.url)
        # Every node keeps the last-known-good copy and says it serves the same table.
        final = self.steering(REGIONS[0])["version"]
        for region in REGIONS:
            with open(os.path.join(self.dir, "%s-state.json" % region)) as f:
                self.assertEqual(json.load(f)["version"], final)
        self.wait_for(lambda: all(n["version"] == final for n in self.fleet(REGIONS[1])["nodes"]),
                      what="every node's view at version %d" % final)
        # sluicectl status from any node: the leader, the revision, every node's version.
        result = subprocess.run(
            [SLUICECTL_BIN, "--admin", "http://127.0.0.1:%d" % self.admin_ports["eu-west-1"],
             "--token", ADMIN_TOKEN, "status"],
            stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
        out = result.stdout.decode()
        self.assertEqual(result.returncode, 0, result.stderr.decode())
        leader = self.leader()
        self.assertRegex(out, r"fleet: node node-eu-west-1, etcd \S+ revision \d+, leader "
                              r"node-%s" % leader)
        for region in REGIONS:
            self.assertRegex(out, r"node-%s +%s +%d " % (region, region, final))
        samples = self.metrics("us-west-2")
        self.assertEqual(samples[("sluice_fleet_connected", frozenset())], 1)
        self.assertEqual(samples[("sluice_fleet_nodes", frozenset())], 3)
        self.assertGreaterEqual(
            samples[("sluice_fleet_writes_total", frozenset({("outcome", "written")}))], 4)

    def test_sluicectl_changes_a_fleet_once_through_any_node(self):
        self.start_fleet()
        version = self.steering("us-east-1")["version"]
        argv = [SLUICECTL_BIN, "--token", ADMIN_TOKEN]
        for region in ("eu-west-1", "us-east-1", "us-west-2"):
            argv += ["--admin", "http://127.0.0.1:%d" % self.admin_ports[region]]
        result = subprocess.run(argv + ["evacuate", "us-west-2", "--to", "us-east-1=100",
                                        "--ramp", "5,10", "--hold", "0s"],
                                stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
        out = result.stdout.decode()
        self.assertEqual(result.returncode, 0, out + result.stderr.decode())
        self.assertEqual(out.count("same fleet as http://127.0.0.1:%d, changed there"
                                   % self.admin_ports["eu-west-1"]), 2, out)
        self.wait_for(lambda: all(self.steering(r)["regions"]["us-west-2"]["fraction"] == "10%"
                                  for r in REGIONS), what="the ramp done everywhere")
        status, plans = self.api("us-east-1", "GET", "/v1/plans")
        self.assertEqual(len(plans["plans"]), 1, plans)
        # One plan (starting it injects the savior's standbys: one version), two steps: three.
        self.assertEqual(self.steering("us-west-2")["version"], version + 3)

    def test_two_writers_race_and_exactly_one_wins(self):
        self.start_fleet()
        for round_ in range(8):
            version = self.steering("us-east-1")["version"]
            self.wait_for(lambda: self.steering("us-west-2")["version"] == version,
                          what="both writers at version %d" % version)
            results = {}
            barrier = threading.Barrier(2)

            def write(region, fraction):
                barrier.wait()
                results[region] = self.api(region, "PUT", "/v1/steering/regions/eu-west-1",
                                           {"fraction": fraction, "version": version,
                                            "saviors": {"us-east-1": 100}})

            threads = [threading.Thread(target=write, args=("us-east-1", 10 + round_)),
                       threading.Thread(target=write, args=("us-west-2", 50 + round_))]
            for t in threads:
                t.start()
            for t in threads:
                t.join(30)
            statuses = sorted(status for status, _ in results.values())
            self.assertEqual(statuses, [200, 409], results)
            winner = [r for r, (status, _) in results.items() if status == 200][0]
            expected = "%d%%" % ((10 if winner == "us-east-1" else 50) + round_)
            self.wait_for(lambda: all(
                self.steering(r)["regions"]["eu-west-1"]["fraction"] == expected
                for r in REGIONS), what="every node at the winner's %s" % expected)
            self.assertEqual(self.steering("eu-west-1")["version"], version + 1)
        # Without a version both changes are made, one after the other: none is lost.
        version = self.steering("us-east-1")["version"]
        results = []
        threads = [threading.Thread(target=lambda r=r: results.append(
            self.api(r, "PUT", "/v1/steering/regions/us-west-2", {"healthy": r == "us-east-1"})))
            for r in ("us-east-1", "eu-west-1")]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        self.assertEqual(sorted(s for s, _ in results), [200, 200], results)
        self.wait_for(lambda: self.steering("us-west-2")["version"] == version + 2,
                      what="both changes stored")


class PropagationThroughTheGateway(Propagation):
    """The same with `fleet.etcd.api: json`: keep-alives and watches through etcd's JSON
    gateway, as every call was before etcd's gRPC API (and as a node falls back to)."""

    def setUp(self):
        super().setUp()
        self.etcd_extra = "    api: json\n"

    def start_fleet(self):
        super().start_fleet()
        for region in REGIONS:
            self.assertEqual(self.fleet(region)["etcd_api"], "json")


class Leadership(FleetTestCase):
    def test_leader_killed_mid_ramp_another_continues_from_its_step(self):
        self.start_fleet()
        leader = self.leader()
        # The plan is started through a node that does not lead.
        other, evacuated = [r for r in REGIONS if r != leader]
        savior = other  # a region that stays up: the gates ask about it before each step
        ramp = [5, 10, 20, 30, 40, 50, 60, 70, 80, 100]
        status, body = self.api(other, "POST", "/v1/plans",
                                {"kind": "evacuate", "region": evacuated,
                                 "saviors": {savior: 100}, "ramp": ramp, "hold": "700ms"})
        self.assertEqual(status, 201, body)
        plan_id = body["plan"]["id"]
        self.wait_for(lambda: self.api(other, "GET", "/v1/plans/%d" % plan_id)[1]["plan"]["step"]
                      >= 2, what="the ramp at its third step")
        proxy = self.nodes[leader]
        proxy.killed = True
        os.kill(proxy.proc.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        new_leader = self.wait_for(self.leader, timeout=LEASE_TTL + 5, what="a new leader")
        took_over = time.monotonic() - killed_at
        print("\nleader %s killed: %s took over after %.2f s (lease TTL %d s)"
              % (leader, new_leader, took_over, LEASE_TTL))
        self.assertNotEqual(new_leader, leader)
        if not SANITIZED:
            self.assertLess(took_over, LEASE_TTL + 1.5)
        self.wait_for(lambda: self.api(other, "GET", "/v1/plans/%d" % plan_id)[1]["plan"]["state"]
                      == "done", timeout=30, what="the ramp done")
        for region in REGIONS:
            if region != leader:
                self.assertEqual(self.steering(region)["regions"][evacuated]["fraction"], "100%")
        # etcd's history of the state: every step once, in order, by whichever leader took it.
        history = self.etcd.history("/sluice/test/state")
        self.assertEqual(self.plan_steps(history), list(range(-1, len(ramp))), history[-1])
        fractions = []
        for _, text in history:
            bp = json.loads(text)["regions"][evacuated]["evacuated_bp"]
            if not fractions or fractions[-1] != bp:
                fractions.append(bp)
        self.assertEqual(fractions, [0] + [p * 100 for p in ramp])
        # The dead node's view expired with its lease.
        self.wait_for(lambda: len(self.fleet(other)["nodes"]) == 2, timeout=LEASE_TTL + 5,
                      what="the dead node's view gone")


class StoreLost(FleetTestCase):
    def test_etcd_stopped_under_traffic(self):
        self.start_fleet()
        ramp = [10, 20, 30, 40, 50, 60]
        status, body = self.api("us-east-1", "POST", "/v1/plans",
                                {"kind": "evacuate", "region": "eu-west-1",
                                 "saviors": {"us-east-1": 100}, "ramp": ramp, "hold": "1s"})
        self.assertEqual(status, 201, body)
        plan_id = body["plan"]["id"]

        def step():
            return self.api("us-west-2", "GET", "/v1/plans/%d" % plan_id)[1]["plan"]["step"]

        counts = {"ok": 0, "failed": 0}
        errors = []
        stop = threading.Event()

        def traffic():
            i = 0
            deadline = time.monotonic() + 120
            while not stop.is_set() and time.monotonic() < deadline:
                region = REGIONS[i % 3]
                i += 1
                try:
                    req = urllib.request.Request(
                        "http://127.0.0.1:%d/item" % self.ports[region],
                        headers={"x-member-id": "member-%d" % (i % 50)})
                    with urllib.request.urlopen(req, timeout=5) as r:
                        r.read()
                        counts["ok" if r.status == 200 else "failed"] += 1
                except Exception as e:  # noqa: BLE001: every failure is counted
                    counts["failed"] += 1
                    errors.append(repr(e))
                time.sleep(0.005)

        loader = threading.Thread(target=traffic)
        loader.start()
        try:
            self.wait_for(lambda: step() >= 1, what="the ramp under way")
            self.etcd.stop()
            stopped_at = time.monotonic()
            # Every node notices and says so in its metrics.
            self.wait_for(lambda: all(
                self.metrics(r)[("sluice_fleet_connected", frozenset())] == 0 for r in REGIONS),
                timeout=10, what="connected 0 everywhere")
            paused_at = step()
            status, body = self.api("us-west-2", "PUT", "/v1/steering/regions/us-east-1",
                                    {"fraction": 1, "saviors": {"eu-west-1": 100},
                                     "force": True})  # a second region: only when forced
            self.assertEqual(status, 503, body)
            self.assertIn("unreachable", body["error"])
            # The ramp holds (hold is 1 s: three would have passed).
            time.sleep(3)
            self.assertEqual(step(), paused_at)
            # watch says so, and does not claim the gates pass.
            watch = subprocess.run(
                [SLUICECTL_BIN, "--token", ADMIN_TOKEN, "--admin",
                 "http://127.0.0.1:%d" % self.admin_ports["us-west-2"], "watch", "--count", "1"],
                stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
            out = watch.stdout.decode()
            self.assertEqual(watch.returncode, 0, out + watch.stderr.decode())
            self.assertIn("THE STORE IS UNREACHABLE", out)
            self.assertIn("gates: unknown (the store is unreachable)", out)
            self.assertNotIn("passing", out)
            self.assertFalse(any(self.fleet(r)["this_node_leads"] for r in REGIONS))
            self.assertGreater(
                self.metrics("eu-west-1")[("sluice_fleet_seconds_since_sync", frozenset())], 2)
            served_while_down = counts["ok"]
            print("\netcd down for %.1f s: ramp paused at step %d" %
                  (time.monotonic() - stopped_at, paused_at))
            self.etcd.start()
            self.wait_for(lambda: all(self.fleet(r)["connected"] for r in REGIONS), timeout=20,
                          what="every node back in sync")
            self.wait_for(lambda: self.api("us-west-2", "GET", "/v1/plans/%d" % plan_id)[1]
                          ["plan"]["state"] == "done", timeout=30, what="the ramp done")
        finally:
            stop.set()
            loader.join(30)
        self.assertEqual(counts["failed"], 0, errors[:5])
        self.assertGreater(served_while_down, 0)
        history = self.etcd.history("/sluice/test/state")
        self.assertEqual(self.plan_steps(history), list(range(-1, len(ramp))))
        for region in REGIONS:
            self.assertEqual(self.steering(region)["regions"]["eu-west-1"]["fraction"], "60%")


class SlowEtcd(FleetTestCase):
    def test_a_slow_etcd_keeps_the_link_until_time_outs_come_in_a_row(self):
        # One node, etcd frozen (SIGSTOP: the connections stay, nothing answers). Its calls
        # that time out keep the link (etcd may be only slow) until 4 s after the first;
        # thawed, it is back in sync.
        region = "us-west-2"
        node = self.start_node(region)
        self.wait_for(lambda: self.fleet(region).get("connected"), what="the node in sync")
        self.wait_for(lambda: self.fleet(region)["this_node_leads"], what="the node leading")
        self.etcd.process.signal(signal.SIGSTOP)
        thawed = [False]

        def thaw():
            if not thawed[0]:
                thawed[0] = True
                self.etcd.process.signal(signal.SIGCONT)

        self.addCleanup(thaw)
        self.wait_for(lambda: "etcd is slow (etcd did not answer in time" in node.log_text(),
                      timeout=15, what="a time-out that keeps the link")
        self.wait_for(lambda: "lost the steering store (etcd did not answer in time"
                      in node.log_text(), timeout=15, what="the link lost after three")
        log = node.log_text()
        slow = log.index("etcd is slow (")
        self.assertLess(slow, log.index("lost the steering store ("), log[-3000:])
        self.assertRegex(log, r"keeping the link \(no answer for [0-9.a-z]+ of 4s\)")
        self.assertFalse(self.fleet(region)["connected"])
        thaw()
        self.wait_for(lambda: self.fleet(region).get("connected"), timeout=20,
                      what="the node back in sync")


class Http1OnlyRelay:
    """A TCP relay to etcd that answers HTTP/2's preface with HTTP/1.1 (a proxy in front of the
    JSON gateway that knows no HTTP/2): everything else goes through both ways."""

    PREFACE = b"PRI * HTTP/2.0"

    def __init__(self, target_port):
        self.target_port = target_port
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.closing = False
        self.sockets = []
        self.threads = [threading.Thread(target=self.accept, daemon=True)]
        self.threads[0].start()

    def accept(self):
        while not self.closing:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self.sockets.append(client)
            thread = threading.Thread(target=self.serve, args=(client,), daemon=True)
            self.threads.append(thread)
            thread.start()

    def serve(self, client):
        try:
            first = client.recv(65536)
            if first.startswith(self.PREFACE[:len(first)]) and first:
                client.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n"
                               b"Connection: close\r\n\r\n")
                client.close()
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            upstream.settimeout(None)
            self.sockets.append(upstream)
            upstream.sendall(first)
            back = threading.Thread(target=self.pump, args=(upstream, client), daemon=True)
            self.threads.append(back)
            back.start()
            self.pump(client, upstream)
        except OSError:
            pass

    @staticmethod
    def pump(source, sink):
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    sink.shutdown(socket.SHUT_WR)
                    return
                sink.sendall(data)
        except OSError:
            pass

    def close(self):
        self.closing = True
        self.listener.close()
        for s in list(self.sockets):
            try:
                s.close()
            except OSError:
                pass
        for thread in self.threads:
            thread.join(5)


class EtcdApi(FleetTestCase):
    def test_keep_alives_and_watches_over_grpc_with_a_gateway_only_endpoint_beside(self):
        # us-west-2 reaches etcd through a relay that knows no HTTP/2: it finds out at its
        # first gRPC connection and uses the JSON gateway; the two others use gRPC. A change
        # reaches all three, and each keeps its lease alive the one way (it would lose its view
        # and leadership otherwise).
        relay = Http1OnlyRelay(self.etcd.client_port)
        self.addCleanup(relay.close)
        relayed = "http://127.0.0.1:%d" % relay.port
        plain = self.etcd_endpoints
        self.etcd_endpoints = lambda local: relayed if local == "us-west-2" else plain(local)
        self.start_fleet()
        self.wait_for(lambda: "its JSON gateway for the next 1m" in
                      self.nodes["us-west-2"].log_text(), what="the node told HTTP/2 is refused")
        refused_at = time.monotonic()
        self.wait_for(lambda: self.fleet("us-west-2")["etcd_api"] == "json",
                      what="the refused node on the gateway")
        for region in ("us-east-1", "eu-west-1"):
            self.assertEqual(self.fleet(region)["etcd_api"], "grpc")
        before = {r: self.fleet(r)["etcd_wire"] for r in REGIONS}
        for fraction in (10, 20):
            status, body = self.api("us-east-1", "PUT", "/v1/steering/regions/us-east-1",
                                    {"fraction": fraction, "saviors": {"eu-west-1": 100}})
            self.assertEqual(status, 200, body)
            self.wait_for(lambda: all(self.steering(r)["regions"]["us-east-1"]["fraction"]
                                      == "%d%%" % fraction for r in REGIONS),
                          what="%d%% on every node" % fraction)
        # Three lease TTLs: every node's keep-alives went through, whichever the API.
        time.sleep(3 * LEASE_TTL)
        for region in REGIONS:
            fleet = self.fleet(region)
            self.assertTrue(fleet["connected"], (region, fleet))
            self.assertEqual(len(fleet["nodes"]), 3, (region, fleet))
            wire, was = fleet["etcd_wire"], before[region]
            used, unused = (("keepalives_json", "keepalives_grpc") if region == "us-west-2"
                            else ("keepalives_grpc", "keepalives_json"))
            self.assertGreaterEqual(wire[used] - was[used], 3, (region, was, wire))
            # (The refused node tries gRPC again a minute after the refusal: not within this
            # test unless its waits took most of their bounds.)
            if region != "us-west-2" or time.monotonic() - refused_at < 55:
                self.assertEqual(wire[unused], was[unused], (region, was, wire))
        log = self.nodes["us-west-2"].log_text()
        self.assertNotIn("lost the steering store", log, log[-3000:])


class OriginsDown(FleetTestCase):
    def test_a_node_whose_origins_are_dead_keeps_publishing_a_valid_view(self):
        self.origin_ports["us-east-1"] = free_port()  # nothing listens there
        self.start_fleet()
        key = "/sluice/test/nodes/node-us-east-1"
        # us-east-1's own members: every attempt at its origins fails (counted, retries too).
        for i in range(40):
            req = urllib.request.Request("http://127.0.0.1:%d/item" % self.ports["us-east-1"],
                                         headers={"x-member-id": "member-%d" % i})
            try:
                with urllib.request.urlopen(req, timeout=5) as r:
                    r.read()
            except urllib.error.HTTPError as e:
                e.read()

        def view():
            got = self.etcd.get(key)
            return json.loads(got[1]) if got else {}

        self.wait_for(lambda: view().get("origins_down"),
                      what="us-east-1's published view saying its origins are down")
        published = view()
        self.assertLessEqual(published["local"]["errors"], published["local"]["requests"],
                             published)
        self.assertGreaterEqual(published["local"]["requests"], 20, published)
        # It keeps publishing, and the others keep taking its view (never "ignoring" it).
        first = self.etcd.get(key)[0]
        self.wait_for(lambda: self.etcd.get(key)[0] > first, what="a newer view of us-east-1")
        for region in ("us-west-2", "eu-west-1"):
            self.wait_for(lambda region=region: any(
                n["node"] == "node-us-east-1" and n["age_seconds"] < 1.5
                for n in self.fleet(region)["nodes"]), what="a fresh view on " + region)
            self.assertNotIn("ignoring the view", self.nodes[region].log_text())
        # And the others' gates use it: us-east-1 cannot be the only savior of an evacuation.
        status, body = self.api("us-west-2", "PUT", "/v1/steering/regions/us-west-2",
                                {"fraction": 10, "saviors": {"us-east-1": 100}})
        self.assertEqual(status, 409, body)
        self.assertIn("origins are down", body["error"])


class Security(FleetTestCase):
    """etcd over TLS with client certificates and with authentication on: the nodes verify
    etcd's certificate, present their own, and log in with a user that may touch only the
    fleet's prefix."""
    ETCD_TLS = True

    def test_tls_client_certificates_and_a_password(self):
        with open(os.path.join(self.dir, "etcd.password"), "w") as f:
            f.write("edge-password\n")
        self.etcd.enable_auth("sluice", "edge-password", "/sluice/test/")
        self.etcd_extra = ("    ca_file: %s\n    cert_file: %s\n    key_file: %s\n"
                           "    username: sluice\n    password_file: %s/etcd.password\n"
                           % (self.etcd.path("ca.crt"), self.etcd.path("client.crt"),
                              self.etcd.path("client.key"), self.dir))
        self.start_fleet()
        status, body = self.api("us-west-2", "PUT", "/v1/steering/regions/us-east-1",
                                {"fraction": 30, "saviors": {"eu-west-1": 100}})
        self.assertEqual(status, 200, body)
        self.wait_for(lambda: all(self.steering(r)["regions"]["us-east-1"]["fraction"] == "30%"
                                  for r in REGIONS), what="the change everywhere")
        history = self.etcd.history("/sluice/test/state")
        self.assertEqual(json.loads(history[-1][1])["regions"]["us-east-1"]["evacuated_bp"], 3000)
        # The calls go over kept-alive connections, and a node's later connections (its two
        # watches, a second call at once) resume its first TLS session instead of a full
        # handshake.
        for region in REGIONS:
            wire = self.fleet(region)["etcd_wire"]
            self.assertGreater(wire["requests"], wire["connections"], (region, wire))
            self.assertGreaterEqual(wire["tls_resumed"], 1, (region, wire))
            self.assertGreaterEqual(wire["tls_handshakes"], 1, (region, wire))

    def test_refusals_are_clear(self):
        # A wrong password: etcd's answer in the fleet status, and the node serves on.
        with open(os.path.join(self.dir, "etcd.password"), "w") as f:
            f.write("wrong\n")
        self.etcd.enable_auth("sluice", "edge-password", "/sluice/test/")
        tls = "    ca_file: %s\n    cert_file: %s\n    key_file: %s\n" % (
            self.etcd.path("ca.crt"), self.etcd.path("client.crt"), self.etcd.path("client.key"))
        self.etcd_extra = tls + "    username: sluice\n    password_file: %s/etcd.password\n" % (
            self.dir)
        self.start_node("us-east-1")
        self.wait_for(lambda: "refused user" in self.fleet("us-east-1").get("error", ""),
                      what="the authentication error")
        self.assertIn("authentication failed", self.fleet("us-east-1")["error"])
        # Without a client certificate etcd ends the handshake; with a CA that did not sign
        # etcd's certificate the node does.
        other_ca = Etcd(tls=True)
        self.addCleanup(shutil.rmtree, other_ca.dir, True)
        self.etcd_extra = "    ca_file: %s\n" % self.etcd.path("ca.crt")
        self.start_node("us-west-2")
        self.etcd_extra = "    ca_file: %s\n    cert_file: %s\n    key_file: %s\n" % (
            other_ca.path("ca.crt"), self.etcd.path("client.crt"), self.etcd.path("client.key"))
        self.start_node("eu-west-1")
        self.wait_for(lambda: "TLS" in self.fleet("us-west-2").get("error", ""),
                      what="the refused handshake")
        self.wait_for(lambda: "certificate" in self.fleet("eu-west-1").get("error", ""),
                      what="the unverified certificate")
        for region in REGIONS:
            self.assertFalse(self.fleet(region)["connected"])
            # (forced: with the store down, eu-west-1's report says nothing either)
            self.assertEqual(self.api(region, "PUT", "/v1/steering/regions/us-east-1",
                                      {"fraction": 10, "saviors": {"eu-west-1": 100},
                                       "force": True})[0], 503)
            self.assertEqual(
                subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                                "http://127.0.0.1:%d/" % self.ports[region]],
                               capture_output=True, timeout=10).stdout.decode(), "200")


class Misfit(FleetTestCase):
    def test_a_node_missing_a_region_serves_but_never_writes_or_leads(self):
        for region in ("us-west-2", "eu-west-1"):
            self.start_node(region)
        self.wait_for(lambda: self.leader() is not None, what="a leader")
        # us-east-1's configuration does not know eu-west-1.
        self.start_node("us-east-1", regions=("us-east-1", "us-west-2"))
        self.wait_for(lambda: "lacks (eu-west-1)" in
                      self.steering("us-east-1")["fleet"].get("error", ""),
                      what="the misfit reported")
        # It says it cannot lead: the leader counts it out and never names it its standby
        # (the other node, of a third region, is).
        misfit = self.fleet("us-east-1")
        self.assertFalse(misfit["this_node_can_lead"])
        leader = self.leader()
        other = ({"us-west-2", "eu-west-1"} - {leader}).pop()
        other_node = self.fleet(other)["node"]

        def leader_sees_the_misfit():
            status, body = self.api(leader, "GET", "/v1/fleet")
            return (status == 200 and body.get("node_count") == 3
                    and body.get("candidates") == 2 and body.get("standbys") == [other_node])
        self.wait_for(leader_sees_the_misfit, what="the leader counting the misfit out")
        self.assertNotIn(misfit["node"], self.fleet(leader)["standbys"])
        self.assertTrue(self.fleet(other)["this_node_can_lead"])
        status, body = self.api("us-east-1", "PUT", "/v1/steering/regions/us-west-2",
                                {"fraction": 5, "saviors": {"us-east-1": 100}})
        self.assertEqual(status, 409, body)
        self.assertIn("lacks (eu-west-1)", body["error"])
        # It still takes the fleet's changes to the regions it knows.
        status, body = self.api("us-west-2", "PUT", "/v1/steering/regions/us-east-1",
                                {"fraction": 20, "saviors": {"us-west-2": 100}})
        self.assertEqual(status, 200, body)
        self.wait_for(lambda: self.steering("us-east-1")["regions"]["us-east-1"]["fraction"]
                      == "20%", what="the change on the misfit")
        # With the others gone it does not take the lead, and the stored table keeps eu-west-1.
        for region in ("us-west-2", "eu-west-1"):
            self.assertEqual(self.nodes[region].stop(), 0)
            self.nodes[region].killed = True
        time.sleep(2 * LEASE_TTL + 0.5)
        self.assertFalse(self.fleet("us-east-1")["this_node_leads"])
        history = self.etcd.history("/sluice/test/state")
        self.assertIn("eu-west-1", json.loads(history[-1][1])["regions"])


class FleetOnAThreeMemberEtcdTest(FleetTestCase):
    """Issue 27: one etcd member of three is lost. Every node lists the three members in the
    same order, so all talk to member 0 until a call to it fails. The member lost is made raft's
    leader first (etcd's MoveLeader) and killed (SIGKILL: no hand-over of its leadership), so
    the other two elect a new one; in the worst case it is also the member the nodes talk to,
    so they fail over at the same time. Raft's election timeout is 500 ms here; the fleet's
    etcd timeout 1 s."""

    RECOVERY = 15.0  # seconds from the loss until a change is on every node

    def start_etcd(self):
        self.cluster = EtcdCluster(size=3)
        self.addCleanup(self.cluster.cleanup)
        self.cluster.start()
        return self.cluster.members[0]  # self.etcd: the member the nodes talk to first

    def etcd_endpoints(self, local):
        return ", ".join(self.cluster.urls)

    def look(self, lost):
        """One look at every node's fleet status: the regions that said the store was lost
        are added to `lost`; two nodes leading at once fails the test (leader())."""
        for region in REGIONS:
            if not self.fleet(region)["connected"]:
                lost.add(region)
        return self.leader()

    def change_everywhere(self, writer, fraction, timeout, lost):
        """Sets us-east-1's fraction through `writer`, asking again while the node refuses
        (503 without the store), and waits until every node serves it. Returns the seconds
        it took and the refusals [(status, error)]."""
        started = time.monotonic()
        refused = []

        def put():
            self.look(lost)
            status, body = self.api(writer, "PUT", "/v1/steering/regions/us-east-1",
                                    {"fraction": fraction, "saviors": {"eu-west-1": 100}})
            if status == 200:
                return body
            refused.append((status, body.get("error") if isinstance(body, dict) else body))
            return None

        body = self.wait_for(put, timeout=timeout, what="a change taken by %s" % writer)
        expected = "%d%%" % fraction

        def everywhere():
            self.look(lost)
            return all(self.steering(r)["version"] >= body["version"] and
                       self.steering(r)["regions"]["us-east-1"]["fraction"] == expected
                       for r in REGIONS)

        self.wait_for(everywhere, timeout=max(1.0, started + timeout - time.monotonic()),
                      what="%s on every node" % expected)
        return time.monotonic() - started, refused

    def lose_raft_leader(self, index, what):
        """Makes member `index` raft's leader, kills it with the fleet running, and checks the
        fleet goes on and the member rejoins."""
        self.start_fleet()
        self.assertEqual({self.fleet(r)["etcd"] for r in REGIONS}, {self.cluster.urls[0]})
        lost = set()
        self.change_everywhere("us-west-2", 10, 5, lost)
        self.assertEqual(lost, set(), "a node lost the store with every member up")
        self.cluster.move_leader(index)
        leader_before = self.leader()

        self.cluster.stop_member(index)
        took, refused = self.change_everywhere("us-east-1", 20, self.RECOVERY, lost)
        self.wait_for(self.cluster.healthy, timeout=5, what="the two members agreeing on a leader")
        new_raft_leader = self.cluster.leader_index()
        endpoints = {r: self.fleet(r)["etcd"] for r in REGIONS}
        print("\netcd member %d of 3 lost (%s, raft leader): a change through us-east-1 was "
              "on all 3 nodes after %.2f s; raft leader now member %s; the change refused %d "
              "time(s)%s; nodes that reported the store lost: %s; fleet leader %s -> %s; "
              "members the nodes talk to: %s"
              % (index, what, took, new_raft_leader, len(refused),
                 " (%s)" % refused[-1][1] if refused else "", sorted(lost) or "none",
                 leader_before, self.leader(),
                 ", ".join("%s %d" % (r, self.cluster.urls.index(url))
                           for r, url in sorted(endpoints.items()))))
        # Every node is in sync with the store, through a member that is up.
        self.wait_for(lambda: all(self.fleet(r)["connected"] for r in REGIONS),
                      timeout=self.RECOVERY, what="every node connected")
        for region, url in endpoints.items():
            self.assertNotEqual(url, self.cluster.urls[index], region)
        self.assertIsNotNone(self.wait_for(self.leader, timeout=LEASE_TTL + 5,
                                           what="one fleet leader"))
        # A change through each of the others too.
        for i, writer in enumerate(("eu-west-1", "us-west-2")):
            self.change_everywhere(writer, 30 + i, 5, lost)

        # The member comes back on its data and catches up.
        self.cluster.start_member(index)
        self.wait_for(self.cluster.healthy, timeout=10, what="the cluster healthy")
        state = "/sluice/test/state"
        survivor = self.cluster.members[(index + 1) % 3]
        self.wait_for(lambda: self.cluster.members[index].get(state) == survivor.get(state),
                      timeout=10, what="the state on the rejoined member")
        self.change_everywhere("us-west-2", 40, 5, lost)
        self.assertEqual(self.cluster.members[index].get(state), survivor.get(state))
        self.assertIsNotNone(self.leader())
        if not SANITIZED:
            self.assertLess(took, self.RECOVERY)

    def test_raft_leader_lost_while_the_nodes_talk_to_a_follower(self):
        self.lose_raft_leader(1, "not the nodes' endpoint")

    def test_raft_leader_lost_that_every_node_talks_to(self):
        self.lose_raft_leader(0, "every node's endpoint")


class Bench(ProxyTestCase):
    def test_the_propagation_benchmark_runs(self):
        """bench/fleet_propagation.py on a tiny run: it starts, measures and cleans up."""
        script = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                              "../../bench/fleet_propagation.py")
        result = subprocess.run([sys.executable, script, "--changes", "3"],
                                stdin=subprocess.DEVNULL, capture_output=True, timeout=120,
                                env=dict(os.environ, SLUICE_BIN=SLUICE_BIN))
        out = result.stdout.decode()
        self.assertEqual(result.returncode, 0, out + result.stderr.decode())
        self.assertRegex(out, r"3 changes through 3 nodes in turn, 6 measurements")
        self.assertRegex(out, r"p50 [\d.]+ ms  p90 [\d.]+ ms  p99 [\d.]+ ms  max [\d.]+ ms")

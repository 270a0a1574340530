"""Steering end to end: three sluice processes as three regions on loopback, each with its own
origin. Which origin sees which member is predicted by steering_model.py, an independent model
of the documented decision, so every assertion is "exactly these members, exactly there".
"""

import http.client
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import unittest

from harness import ProxyTestCase
from sluicetest.process import SLUICE_BIN, SLUICECTL_BIN, free_port
from sluicetest.secret_files import write_secrets
import steering_model

EAST, WEST, EU = "us-east-1", "us-west-2", "eu-west-1"
REGIONS = (EAST, WEST, EU)
KEY = "3f9c1a7e5b2d4f6081a3c5e7092b4d6f8a1c3e5f7092b4d6f8a1c3e5f7092b4d"


def request(port, path="/x", member=None, headers=None, method="GET", body=None):
    """One request on its own connection: (status, headers dict, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        h = dict(headers or {})
        if member is not None:
            h["x-member-id"] = member
        conn.request(method, path, body=body, headers=h)
        response = conn.getresponse()
        data = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, data
    finally:
        conn.close()


class Regions(ProxyTestCase):
    """Starts three regions; `evacuations` is {region: (basis points, {savior: weight})}."""

    def start_regions(self, evacuations, misrouted="proxy_home", failover=True, overrides=None):
        work = tempfile.mkdtemp(prefix="sluice-steering-")
        self.addCleanup(shutil.rmtree, work, True)
        self.key_file = write_secrets(work, (("tunnel.key", KEY),))["tunnel.key"]
        self.evacuations = evacuations
        self.cluster_extra = getattr(self, "cluster_extra", "")  # more keys of cluster app
        self.ports = {r: free_port() for r in (EAST, WEST, EU)}
        self.origins = {r: self.start_origin(name=r) for r in (EAST, WEST, EU)}
        self.sluices = {}
        for region in (EAST, WEST, EU):
            table = (overrides or {}).get(region, evacuations)
            self.sluices[region] = self.start_sluice(
                self.config(region, table, misrouted, failover), port=self.ports[region])
        return self.sluices

    def config(self, local, evacuations, misrouted, failover):
        regions = []
        for region in (EAST, WEST, EU):
            lines = ["    %s:" % region, "      tunnel: [127.0.0.1:%d]" % self.ports[region]]
            bp, saviors = evacuations.get(region, (0, {}))
            if bp:
                lines.append("      evacuate: %dbp" % bp)
            if saviors:
                lines.append("      saviors: {%s}" % ", ".join(
                    "%s: %d" % (s, w) for s, w in saviors.items()))
            regions.append("\n".join(lines))
        return """
workers: 1
log_level: debug
listeners: [{address: 127.0.0.1:{port}}]
clusters:
  - name: app
    endpoints: [127.0.0.1:%d]
    connect_timeout: 500ms
    response_timeout: 5s
%s
routes:
  - cluster: app
proxy:
  trust_client_headers: true  # the clients here stand for the apps' own gateway
steering:
  local_region: %s
  misrouted: %s
  failover: %s
  member_id: [{header: x-member-id}]
  home_region: [{header: x-home-region}]
  tunnel: {insecure: true, key_file: %s, connect_timeout: 300ms}
  regions:
%s
""" % (self.origins[local].port, self.cluster_extra, local, misrouted,
       "true" if failover else "false", self.key_file, "\n".join(regions))

    def members_seen(self, region):
        return sorted({r.header("x-member-id") for r in self.origins[region].received()})


class Steering(Regions):
    def test_evacuation_and_misrouted_members_end_to_end(self):
        evacuations = {EAST: (2500, {EU: 70, WEST: 30})}
        self.start_regions(evacuations)
        expected = {EAST: set(), WEST: set(), EU: set()}
        # Members of us-east-1 arriving in us-east-1: a quarter leaves, by the model.
        for i in range(400):
            member = "member-%d" % i
            served = steering_model.decide(member, EAST, evacuations, regions=REGIONS)
            expected[served].add(member)
            status, headers, _ = request(self.ports[EAST], member=member)
            self.assertEqual(status, 200)
            self.assertEqual(headers.get("sluice-region"), served, member)
        # Misrouted: eu-west-1 members landing in us-east-1 are tunneled home; us-east-1 members
        # landing in us-west-2 go home too, or to a savior when their bucket moved.
        for i in range(100):
            member = "eu-%d" % i
            expected[EU].add(member)
            status, headers, _ = request(self.ports[EAST], member=member,
                                         headers={"x-home-region": EU})
            self.assertEqual((status, headers.get("sluice-region")), (200, EU))
        for i in range(100):
            member = "east-%d" % i
            served = steering_model.decide(member, WEST, evacuations, home=EAST, regions=REGIONS)
            expected[served].add(member)
            status, headers, _ = request(self.ports[WEST], member=member,
                                         headers={"x-home-region": EAST})
            self.assertEqual((status, headers.get("sluice-region")), (200, served), member)
        for region in (EAST, WEST, EU):
            self.assertEqual(self.members_seen(region), sorted(expected[region]), region)
        moved = len([m for m in expected[EU] | expected[WEST] if m.startswith("member-")])
        print("\n400 us-east-1 members at 25%%: %d moved (eu-west-1 %d, us-west-2 %d)" % (
            moved, len([m for m in expected[EU] if m.startswith("member-")]),
            len([m for m in expected[WEST] if m.startswith("member-")])))
        self.assertTrue(60 <= moved <= 140)
        # What the origins saw: no hop marker, and the real client in X-Forwarded-For.
        for r in self.origins[EU].received():
            self.assertIsNone(r.header("sluice-hop"))
            self.assertEqual(r.header("x-forwarded-for"), "127.0.0.1, 127.0.0.1")

    def test_serve_local_serves_misrouted_members_where_they_land(self):
        self.start_regions({}, misrouted="serve_local")
        for i in range(20):
            status, headers, _ = request(self.ports[EAST], member="eu-%d" % i,
                                         headers={"x-home-region": EU})
            self.assertEqual((status, headers.get("sluice-region")), (200, EAST))
        self.assertEqual(len(self.members_seen(EAST)), 20)
        self.assertEqual(self.members_seen(EU), [])

    def test_a_tunnel_target_that_is_down_falls_back_without_client_errors(self):
        evacuations = {EAST: (5000, {EU: 70, WEST: 30})}
        self.start_regions(evacuations)
        self.sluices[EU].stop()
        statuses = []
        for i in range(200):
            member = "member-%d" % i
            served = steering_model.decide(member, EAST, evacuations, skip={EU}, regions=REGIONS)
            status, headers, _ = request(self.ports[EAST], member=member)
            statuses.append(status)
            self.assertEqual(headers.get("sluice-region"), served, member)
        # Misrouted members whose home is down are served here.
        for i in range(20):
            status, headers, _ = request(self.ports[EAST], member="eu-%d" % i,
                                         headers={"x-home-region": EU})
            statuses.append(status)
            self.assertEqual(headers.get("sluice-region"), EAST)
        self.assertEqual(set(statuses), {200})
        self.assertEqual(self.origins[EU].received(), [])

    def test_a_region_whose_origins_die_keeps_serving_through_a_savior(self):
        self.start_regions({EAST: (0, {EU: 50, WEST: 50})})
        self.origins[EAST].stop()
        results, lock = [], threading.Lock()
        deadline = time.monotonic() + 2.0

        def run(worker):
            i = 0
            while time.monotonic() < deadline and i < 400:
                member = "m-%d-%d" % (worker, i)
                status, headers, _ = request(self.ports[EAST], member=member)
                with lock:
                    results.append((status, headers.get("sluice-region")))
                i += 1

        threads = [threading.Thread(target=run, args=(w,)) for w in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        regions = {}
        for _, region in results:
            regions[region] = regions.get(region, 0) + 1
        print("\n%d GETs while us-east-1's origin was dead: %s" % (len(results), regions))
        self.assertGreater(len(results), 50)
        self.assertEqual({s for s, _ in results}, {200})
        self.assertNotIn(EAST, regions)
        self.assertGreater(regions.get(EU, 0), 0)
        self.assertGreater(regions.get(WEST, 0), 0)
        # A POST whose body never reached an origin (connect refused) fails over too.
        status, headers, _ = request(self.ports[EAST], member="poster", method="POST",
                                     body=b"payload")
        self.assertEqual(status, 200)
        self.assertIn(headers.get("sluice-region"), (EU, WEST))

    def test_a_failover_is_not_refused_by_the_failed_clusters_spent_retry_budget(self):
        # When a region's origins die, every request in flight fails at once and their retry
        # budget is spent: the failover goes to another cluster, whose budget decides.
        self.cluster_extra = "    retry_budget: {ratio: 0, min_retries: 0}"
        self.start_regions({EAST: (0, {EU: 50, WEST: 50})})
        self.origins[EAST].reset_all = True
        seen = {}
        for i in range(20):
            status, headers, _ = request(self.ports[EAST], member="m-%d" % i)
            self.assertEqual(status, 200, "GET %d" % i)
            seen[headers.get("sluice-region")] = seen.get(headers.get("sluice-region"), 0) + 1
        self.assertNotIn(EAST, seen)
        self.assertGreater(len(self.origins[EAST].received()), 0)  # the resets did happen

    def test_the_compound_case_sends_nobody_back_into_the_dead_region(self):
        # us-east-1 is dead and wholly evacuated; one savior (eu-west-1) starts its own
        # evacuation, the other (us-west-2) goes down. Before, both counted as unusable and
        # us-east-1's members "stayed": every one of their requests hit the dead origin.
        evacuations = {EAST: (10000, {EU: 70, WEST: 30}), EU: (1000, {WEST: 100})}
        self.start_regions(evacuations, failover=False)
        self.sluices[WEST].stop()
        # us-east-1's origin stays up only to count: every request it gets is one too many.
        statuses = {}
        for i in range(300):
            member = "member-%d" % i
            served = steering_model.decide(member, EAST, evacuations, skip={WEST},
                                           regions=REGIONS)
            self.assertEqual(served, EU, member)
            status, headers, _ = request(self.ports[EAST], member=member)
            statuses[status] = statuses.get(status, 0) + 1
            self.assertEqual(headers.get("sluice-region"), EU, member)
        self.assertEqual(statuses, {200: 300})
        self.assertEqual(self.origins[EAST].received(), [])

    def test_a_forged_marker_is_stripped_counted_and_ignored(self):
        self.start_regions({})
        forged = "v2;from=%s;ts=%d;nonce=%s;id=x;mac=%s" % (EU, int(time.time()), "0" * 16,
                                                             "0" * 64)
        status, headers, _ = request(self.ports[EAST], member="eu-1",
                                     headers={"x-home-region": EU, "sluice-hop": forged})
        # Steered like any request: home is eu-west-1, so it is tunneled there.
        self.assertEqual((status, headers.get("sluice-region")), (200, EU))
        self.assertTrue(self.sluices[EAST].wait_for_log(r"sluice-hop marker ignored \(bad_mac\)"))
        stale = "v2;from=%s;ts=1000;nonce=%s;id=x;mac=%s" % (EU, "0" * 16, "0" * 64)
        request(self.ports[EAST], member="a", headers={"sluice-hop": stale})
        self.assertTrue(self.sluices[EAST].wait_for_log(r"sluice-hop marker ignored \(stale\)"))
        for region in (EAST, EU):
            for r in self.origins[region].received():
                self.assertIsNone(r.header("sluice-hop"))

    def test_a_tunneled_request_is_never_tunneled_again(self):
        # us-west-2's own table (unlike the others') evacuates all of us-west-2 to eu-west-1:
        # a member tunneled home to us-west-2 from us-east-1 is still served there.
        west_table = {WEST: (10000, {EU: 100})}
        self.start_regions({}, overrides={WEST: west_table})
        status, headers, _ = request(self.ports[EAST], member="w-1",
                                     headers={"x-home-region": WEST})
        self.assertEqual((status, headers.get("sluice-region")), (200, WEST))
        self.assertEqual(self.members_seen(WEST), ["w-1"])
        self.assertEqual(self.members_seen(EU), [])
        # The same member straight to us-west-2 is evacuated by its table.
        status, headers, _ = request(self.ports[WEST], member="w-1",
                                     headers={"x-home-region": WEST})
        self.assertEqual(headers.get("sluice-region"), EU)


class Demo(unittest.TestCase):
    def test_the_three_region_demo_runs_and_steers_as_documented(self):
        ports = (8081, 8082, 8083, 9081, 9082, 9083, 9911, 9912, 9913, 12379, 12380)
        for port in ports:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    self.skipTest("port %d is taken: the demo uses fixed ports" % port)
        root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "../..")
        result = subprocess.run([os.path.join(root, "conf/regions/demo.sh"), "--check"],
                                stdin=subprocess.DEVNULL, capture_output=True, timeout=60,
                                env=dict(os.environ, SLUICE_BIN=SLUICE_BIN,
                                         SLUICECTL_BIN=SLUICECTL_BIN))
        self.assertEqual(result.returncode, 0, result.stdout.decode() + result.stderr.decode())
        self.assertIn(b"demo check passed", result.stdout)
        for port in ports:  # everything it started is gone
            with socket.socket() as s:
                self.assertNotEqual(s.connect_ex(("127.0.0.1", port)), 0, port)


if __name__ == "__main__":
    unittest.main()

"""The DNS step end to end (issue 22) against a real authoritative server (knot on loopback):
three sluice nodes in a fleet on a real etcd, and the zone drill.test. whose shared name
api.drill.test. holds one A record per region.

- an evacuation that reaches 100% ends with the DNS step: the region's record goes out, the
  plan says dns: applied, and a restore puts the record back first;
- a record someone else added meanwhile stays (the update holds what it read as its
  prerequisites and only removes the region's own record); re-applying changes nothing;
- a wrong TSIG key, a zone that refuses updates, and a server that is down each give a clear
  plan state (failed, or pending with the retries), never a stuck or undone ramp; a server
  that comes back gets the update;
- a dead edge: a region whose node is killed (its lease expires, its tunnel stops answering)
  is declared dead by the leader in auto mode and evacuated at once, DNS first;
- a configuration with a bad dns section is refused at --check with the reason.
"""

import os
import signal
import subprocess
import unittest

from sluicetest import knot as knot_harness
from sluicetest.knot import Knot
from sluicetest.process import ROOT, SLUICE_BIN
from test_fleet import FleetTestCase, REGIONS

ADDRESSES = {"us-east-1": "127.0.0.11", "us-west-2": "127.0.0.12", "eu-west-1": "127.0.0.13"}
NAME = "api.drill.test."


@unittest.skipIf(knot_harness.missing(), knot_harness.missing() or "")
class DnsStep(FleetTestCase):
    ALLOW_UPDATE = True

    def setUp(self):
        super().setUp()
        self.knot = Knot(records=[("api", "A", a) for a in ADDRESSES.values()], ttl=5,
                         allow_update=self.ALLOW_UPDATE)
        self.addCleanup(self.knot.cleanup)
        self.knot.start()
        self.key_file = self.knot.key_file

    def config(self, local, regions=REGIONS):
        records = "".join("    %s: [{name: api, type: A, data: %s}]\n" % (r, ADDRESSES[r])
                          for r in regions)
        return super().config(local, regions) + """
dns:
  zone: drill.test.
  servers: [%s]
  key_file: %s
  ttl: 5s
  timeout: 1s
  records:
%s""" % (self.knot.address, self.key_file, records)

    def records(self):
        return self.knot.query(NAME)

    def plan(self, region, plan_id):
        status, body = self.api(region, "GET", "/v1/plans/%d" % plan_id)
        self.assertEqual(status, 200, body)
        return body["plan"]

    def evacuate(self, region="us-east-1", **extra):
        body = {"kind": "evacuate", "region": region, "ramp": [100], "hold": "0s",
                "saviors": {r: 50 for r in REGIONS if r != region}}
        body.update(extra)
        status, reply = self.api(self.leader(), "POST", "/v1/plans", body)
        self.assertEqual(status, 201, reply)
        return reply["plan"]["id"]

    def wait_dns(self, plan_id, states=("applied",), what=None):
        leader = self.leader()
        self.wait_for(lambda: self.plan(self.leader() or leader, plan_id)["dns"] in states,
                      what=what or "plan %d dns in %s" % (plan_id, states))
        return self.plan(self.leader() or leader, plan_id)

    def audit(self, region):
        path = os.path.join(self.dir, "%s-audit.jsonl" % region)
        with open(path) as f:
            return f.read()


class Evacuation(DnsStep):
    def test_the_dns_step_takes_the_record_out_and_a_restore_puts_it_back(self):
        self.start_fleet()
        self.assertEqual(self.records(), sorted(ADDRESSES.values()))
        plan_id = self.evacuate()
        plan = self.wait_dns(plan_id)
        self.assertEqual(plan["state"], "done")
        self.assertIn("-api.drill.test. A 127.0.0.11", plan["dns_message"])
        self.assertEqual(self.records(), ["127.0.0.12", "127.0.0.13"])
        status, dns = self.api(self.leader(), "GET", "/v1/dns")
        self.assertEqual((status, dns["state"], dns["applied_out"]), (200, "applied", ["us-east-1"]))
        self.assertIn("DNS applied", self.audit(self.leader()))
        serial = self.knot.serial()
        # A restore puts the record back before its first step.
        status, reply = self.api(self.leader(), "POST", "/v1/plans",
                                 {"kind": "restore", "region": "us-east-1", "ramp": [0],
                                  "hold": "0s"})
        self.assertEqual(status, 201, reply)
        plan = self.wait_dns(reply["plan"]["id"])
        self.assertIn("+api.drill.test. A 127.0.0.11", plan["dns_message"])
        self.assertEqual(self.records(), sorted(ADDRESSES.values()))
        self.assertGreater(self.knot.serial(), serial)

    def test_a_record_added_by_someone_else_stays_and_nothing_is_sent_twice(self):
        self.start_fleet()
        ok, out = self.knot.update(["add api 5 A 127.0.0.99"])
        self.assertTrue(ok, out)
        plan_id = self.evacuate()
        self.wait_dns(plan_id)
        self.assertEqual(self.records(), ["127.0.0.12", "127.0.0.13", "127.0.0.99"])
        serial = self.knot.serial()
        # A new leader reads the zone again: it already says so, and nothing is sent.
        old = self.leader()
        self.nodes[old].killed = True
        self.nodes[old].stop()
        self.wait_for(lambda: self.leader() not in (None, old), what="a new leader")

        def in_place():
            leader = self.leader()
            if leader is None:
                return None
            status, dns = self.api(leader, "GET", "/v1/dns")
            return status == 200 and dns.get("state") == "applied" and dns
        dns = self.wait_for(in_place, what="the new leader's DNS state")
        self.assertIn("already in place", dns["message"])
        self.assertEqual(dns["applied_out"], ["us-east-1"])
        self.assertEqual(self.knot.serial(), serial)

    def test_starting_with_every_region_in_leaves_a_hand_edit_alone(self):
        ok, out = self.knot.update(["del api A 127.0.0.12"])
        self.assertTrue(ok, out)
        self.start_fleet()

        def idle():
            leader = self.leader()
            if leader is None:
                return False
            status, dns = self.api(leader, "GET", "/v1/dns")
            return status == 200 and dns.get("state") == "idle (no region out)"
        self.wait_for(idle, what="the leader's DNS control idle")
        self.assertEqual(self.records(), ["127.0.0.11", "127.0.0.13"])

    def test_a_plan_without_the_dns_step_leaves_the_zone_alone(self):
        self.start_fleet()
        plan_id = self.evacuate(dns=False)
        self.wait_for(lambda: self.plan(self.leader(), plan_id)["state"] == "done",
                      what="the plan done")
        self.assertEqual(self.plan(self.leader(), plan_id)["dns"], "none")
        self.assertEqual(self.records(), sorted(ADDRESSES.values()))

    def test_a_server_that_is_down_is_retried_and_the_ramp_goes_on(self):
        self.start_fleet()
        self.knot.stop()
        plan_id = self.evacuate()
        plan = self.wait_dns(plan_id, ("pending",), "the DNS step retried")
        self.wait_for(lambda: "attempt" in self.plan(self.leader(), plan_id)["dns_message"],
                      what="a retry said so")
        self.assertEqual(self.plan(self.leader(), plan_id)["state"], "done")  # ramp not held
        self.assertEqual(self.steering(self.leader())["regions"]["us-east-1"]["fraction"],
                         "100%")
        self.knot.restart()
        self.wait_dns(plan_id)
        self.assertEqual(self.records(), ["127.0.0.12", "127.0.0.13"])


class WrongKey(DnsStep):
    def setUp(self):
        super().setUp()
        # A key of the same name with another secret.
        self.key_file = os.path.join(self.dir, "wrong.key")
        with open(self.key_file, "w") as f:
            f.write('key "%s" { algorithm hmac-sha256; secret "%s"; };\n'
                    % (self.knot.key_name, "c2x1aWNlLXdyb25nLWtleS0wMTIzNDU2Nzg5YWJjZGVm"))
        os.chmod(self.key_file, 0o600)

    def test_a_wrong_key_fails_clearly_and_changes_nothing(self):
        self.start_fleet()
        plan = self.wait_dns(self.evacuate(), ("failed",))
        self.assertIn("refused TSIG key", plan["dns_message"])
        self.assertEqual(plan["state"], "done")
        self.assertEqual(self.records(), sorted(ADDRESSES.values()))


class UpdatesRefused(DnsStep):
    ALLOW_UPDATE = False

    def test_a_zone_that_refuses_updates_fails_clearly(self):
        self.start_fleet()
        plan = self.wait_dns(self.evacuate(), ("failed",))
        self.assertRegex(plan["dns_message"], "refused|REFUSED|NOTAUTH")
        self.assertEqual(self.records(), sorted(ADDRESSES.values()))


class DeadEdge(DnsStep):
    def test_a_dead_edge_is_evacuated_at_once_dns_first(self):
        self.start_fleet()
        leader = self.leader()
        victim = next(r for r in REGIONS if r != leader)
        status, body = self.api(leader, "PUT", "/v1/detection", {"mode": "auto"})
        self.assertEqual(status, 200, body)
        def edge(state):
            status, body = self.api(leader, "GET", "/v1/detection")
            return status == 200 and body.get("edges", {}).get(victim, {}).get("state") == state

        self.wait_for(lambda: edge("alive"), what="the victim's edge alive")
        node = self.nodes[victim]
        node.killed = True
        os.kill(node.pid, signal.SIGKILL)
        node.proc.wait(10)
        self.wait_for(lambda: edge("dead"), what="the victim's edge dead")
        self.assertIn("edge: %s suspect -> dead" % victim, self.audit(leader))
        # The plan is written through the fleet after the verdict: wait for it to be there.
        def victim_plan():
            status, plans = self.api(leader, "GET", "/v1/plans")
            if status != 200:
                return None
            return next((p for p in plans["plans"] if p["region"] == victim), None)

        plan = self.wait_for(victim_plan, what="the dead edge's plan")
        self.assertEqual(plan["steps_bp"], [10000])
        self.wait_dns(plan["id"])
        self.assertNotIn(ADDRESSES[victim], self.records())


class Check(unittest.TestCase):
    def check(self, text):
        directory = self.enterContext(__import__("tempfile").TemporaryDirectory())
        path = os.path.join(directory, "sluice.yaml")
        with open(os.path.join(directory, "good.key"), "w") as f:
            f.write("hmac-sha256:k:c2x1aWNlLWNoZWNrLWtleS0wMTIzNDU2Nzg5YWJjZGVm\n")
        with open(os.path.join(directory, "bad.key"), "w") as f:
            f.write("hmac-md5:k:c2x1aWNl\n")
        with open(path, "w") as f:
            f.write(text)
        return subprocess.run([SLUICE_BIN, "--check", "--config", path], capture_output=True,
                              text=True, timeout=30, stdin=subprocess.DEVNULL)

    BASE = """
listeners: [{address: 127.0.0.1:1}]
clusters: [{name: app, endpoints: [127.0.0.1:2]}]
routes: [{cluster: app}]
steering:
  local_region: a
  tunnel: {insecure: true, key_file: good.key}
  regions:
    a: {tunnel: [127.0.0.1:3]}
    b: {tunnel: [127.0.0.1:4]}
dns:
  zone: drill.test.
  servers: [127.0.0.1:53]
  key_file: %s
  records:
    a: [{name: api, type: %s, data: 127.0.0.11}]
    b: [{name: api, type: A, data: 127.0.0.12}]
"""

    def test_good_and_bad_dns_sections(self):
        r = self.check(self.BASE % ("good.key", "A"))
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.check(self.BASE % ("bad.key", "A"))
        self.assertEqual(r.returncode, 1)
        self.assertIn("only hmac-sha256", r.stderr)
        r = self.check(self.BASE % ("good.key", "MX"))
        self.assertEqual(r.returncode, 1)
        self.assertIn("only A and AAAA", r.stderr)
        r = self.check(self.BASE % ("missing.key", "A"))
        self.assertEqual(r.returncode, 1)
        self.assertIn("missing.key", r.stderr)
        # The example key file in conf/dns/ is one sluice reads.
        r = self.check(self.BASE % (os.path.join(ROOT, "conf/dns/tsig.key.example"), "A"))
        self.assertEqual(r.returncode, 0, r.stderr)

    @unittest.skipIf(knot_harness.missing(), knot_harness.missing() or "")
    def test_the_example_knot_configuration_is_valid(self):
        r = subprocess.run(["knotc", "-c", os.path.join(ROOT, "conf/dns/knot.conf"), "conf-check"],
                           capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)


if __name__ == "__main__":
    unittest.main()

"""Savior capacity end to end (issue 21): three sluice nodes (one per region) in a fleet on a
real etcd, each with its own origin and one hot standby origin, members starting streams in
every region, each node with a configured capacity (us-west-2 small, eu-west-1 large):

- the preview predicts each savior's load, and "auto" weights follow the headroom;
- an evacuation that would take the small savior past its capacity is refused (409, figures);
- an auto evacuation injects the saviors' standbys on their nodes before the first step, a
  second evacuation is refused while it runs, and the restore takes the standbys out;
- cohort rows and the misrouted mode are live state, set through the API;
- a scale hook runs before the ramp; a failing one holds the plan with its output.
"""

import http.client
import json
import os
import subprocess

from sluicetest.process import SLUICECTL_BIN
from test_detection import Starts
from test_fleet import ADMIN_TOKEN, REGIONS, FleetTestCase

def served_by(port, headers):
    """The region that served one GET through `port` (or its status when not 200)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/x", headers=headers)
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            return "status %d" % response.status
        return response.getheader("sluice-region")
    finally:
        conn.close()


# Requests per second each node can serve with its regular endpoint (a standby adds as much).
CAPACITY = {"us-east-1": 100, "eu-west-1": 200, "us-west-2": 10}


class CapacityFleet(FleetTestCase):
    HOOK = ""

    def config(self, local, regions=REGIONS):
        text = super().config(local, regions)
        standby = self.standby_origins[local].port
        text = text.replace(
            "    endpoints: [127.0.0.1:%d]\n" % self.origin_ports[local],
            "    endpoints: [127.0.0.1:%d, {address: 127.0.0.1:%d, standby: true}]\n"
            % (self.origin_ports[local], standby))
        text = text.replace("  member_id: [{header: x-member-id}]\n",
                            "  member_id: [{header: x-member-id}]\n"
                            "  cohorts: [{header: x-cohort, values: {sa: south-america}}]\n")
        text = text.replace("  gates: {", "%s  gates: {" % self.HOOK)
        return text + "capacity: {requests_per_second: %d}\n" % CAPACITY[local]

    def setUp(self):
        super().setUp()
        self.standby_origins = {}
        for region in REGIONS:
            self.origin_ports[region] = self.start_origin(name="origin-" + region).port
            self.standby_origins[region] = self.start_origin(name="standby-" + region)

    def health(self, region):
        status, body = self.api(region, "GET", "/v1/health")
        self.assertEqual(status, 200, body)
        return body

    def warm_up(self):
        self.start_fleet()
        self.starts = Starts(self.ports).start()
        self.addCleanup(self.starts.stop)

        def loaded():
            caps = self.health(self.leader() or "us-east-1").get("regions_capacity", {})
            return all(caps.get(r, {}).get("load_rps", 0) > 15 for r in REGIONS)

        self.wait_for(loaded, what="every region's load measured")

    def preview(self, body):
        return self.api(self.leader(), "POST", "/v1/plans:preview", body)

    def audit(self, region):
        with open(os.path.join(self.dir, "%s-audit.jsonl" % region)) as f:
            return [json.loads(line)["action"] for line in f if line.strip()]

    def plan(self, region, plan_id):
        status, body = self.api(region, "GET", "/v1/plans/%d" % plan_id)
        self.assertEqual(status, 200, body)
        return body["plan"]


class Capacity(CapacityFleet):
    def test_auto_split_preview_refusal_standbys_and_one_region_at_a_time(self):
        self.warm_up()
        leader = self.leader()
        caps = self.health(leader)["regions_capacity"]
        self.assertEqual(caps["eu-west-1"]["capacity_rps"], 200)
        self.assertEqual(caps["eu-west-1"]["standby_capacity_rps"], 400)
        self.assertEqual(caps["us-west-2"]["standby_endpoints"], 1)

        # Equal weights would take us-west-2 (about 25 rps of its own: no headroom even with its
        # standby, 20) past its capacity: the preview says so and the plan is refused.
        fixed = {"kind": "evacuate", "region": "us-east-1", "ramp": ["50%", "100%"],
                 "hold": "1s", "saviors": {"eu-west-1": 1, "us-west-2": 1}}
        status, p = self.preview(fixed)
        self.assertEqual(status, 200, p)
        self.assertTrue(p["would_refuse"], p)
        self.assertEqual(p["busiest"], "us-west-2")
        by_region = {s["region"]: s for s in p["saviors"]}
        self.assertAlmostEqual(by_region["us-west-2"]["share"], 0.5)
        self.assertEqual(by_region["us-west-2"]["capacity_rps"], 20)
        self.assertEqual(len(by_region["us-west-2"]["extra_rps"]), 2)
        self.assertGreater(by_region["us-west-2"]["predicted_utilization"], 1.0)
        status, body = self.api(leader, "POST", "/v1/plans", fixed)
        self.assertEqual(status, 409, body)
        self.assertIn("us-west-2", body["error"])
        self.assertIn("past its capacity", body["error"])

        # auto: the headroom is eu-west-1's; sluicectl --dry-run prints the same prediction.
        auto = dict(fixed, saviors="auto")
        status, p = self.preview(auto)
        self.assertEqual(status, 200, p)
        self.assertFalse(p["would_refuse"], p)
        self.assertEqual(p["saviors_weights"], {"eu-west-1": 100}, p)
        self.assertLess(p["max_utilization"], 0.5)
        ctl = [SLUICECTL_BIN, "--token-file", os.path.join(self.dir, "admin.token"), "--admin",
               "http://127.0.0.1:%d" % self.admin_ports[leader]]
        dry = subprocess.run(ctl + ["evacuate", "us-east-1", "--to", "auto", "--ramp", "50,100",
                                    "--hold", "1s", "--dry-run"],
                             capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
        self.assertEqual(dry.returncode, 0, dry.stderr)
        self.assertIn("eu-west-1", dry.stdout)
        self.assertIn("(by capacity)", dry.stdout)

        status, body = self.api(leader, "POST", "/v1/plans", auto)
        self.assertEqual(status, 201, body)
        plan_id = body["plan"]["id"]
        self.assertTrue(body["plan"]["auto_split"])
        self.assertEqual(body["plan"]["injected"], ["eu-west-1"])
        # A second evacuation while this one runs: refused, naming the first.
        status, second = self.api(leader, "POST", "/v1/plans",
                                  {"kind": "evacuate", "region": "us-west-2",
                                   "saviors": {"eu-west-1": 1}})
        self.assertEqual(status, 409, second)
        self.assertIn("us-east-1", second["error"])

        self.wait_for(lambda: self.plan(leader, plan_id)["state"] == "done", timeout=30,
                      what="the auto evacuation done")
        # The standbys serve on the savior's node, and they were in before the first step.
        mine = self.health("eu-west-1")["capacity"]
        self.assertEqual(mine["standbys"], ["*"])
        self.assertEqual(mine["injected_endpoints"], 1)
        self.assertEqual(self.health("us-west-2")["capacity"]["injected_endpoints"], 0)
        actions = self.audit(leader)
        inject = next(i for i, a in enumerate(actions) if "inject the hot standbys" in a)
        ready = next(i for i, a in enumerate(actions) if "saviors ready" in a)
        first = next(i for i, a in enumerate(actions) if "step 1/2" in a)
        self.assertLess(inject, ready, actions)
        self.assertLess(ready, first, actions)
        self.assertIn("1/1 nodes", actions[ready])

        status, body = self.api(leader, "POST", "/v1/plans",
                                {"kind": "restore", "region": "us-east-1", "ramp": ["0%"],
                                 "hold": "1s"})
        self.assertEqual(status, 201, body)
        self.wait_for(lambda: self.health("eu-west-1")["capacity"]["injected_endpoints"] == 0,
                      what="the standbys taken out after the restore")
        self.assertEqual(self.health("eu-west-1")["capacity"]["standby_endpoints"], 1)
        self.assertEqual(self.steering(leader)["regions"]["us-east-1"]["evacuated_bp"], 0)

    def test_standbys_cohort_rows_and_misrouted_mode_through_the_api(self):
        self.start_fleet()
        leader = self.leader()
        ctl = [SLUICECTL_BIN, "--token-file", os.path.join(self.dir, "admin.token"), "--admin",
               "http://127.0.0.1:%d" % self.admin_ports[leader]]
        run = subprocess.run(ctl + ["inject", "app", "--region", "us-west-2"],
                             capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
        self.assertEqual(run.returncode, 0, run.stderr)
        self.wait_for(lambda: self.health("us-west-2")["capacity"]["injected_endpoints"] == 1,
                      what="us-west-2's standby injected through the fleet")
        self.assertEqual(self.health("eu-west-1")["capacity"]["injected_endpoints"], 0)
        run = subprocess.run(ctl + ["uninject", "app", "--region", "us-west-2"],
                             capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
        self.assertEqual(run.returncode, 0, run.stderr)
        self.wait_for(lambda: self.health("us-west-2")["capacity"]["injected_endpoints"] == 0,
                      what="us-west-2's standby out again")

        run = subprocess.run(ctl + ["set", "us-east-1", "--cohort", "south-america=us-west-2",
                                    "--misrouted", "serve_local"],
                             capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
        self.assertEqual(run.returncode, 0, run.stderr)
        for region in REGIONS:
            self.wait_for(lambda: self.steering(region)["regions"]["us-east-1"].get(
                "cohort_saviors") == {"south-america": {"us-west-2": 1}},
                what="the cohort row on %s" % region)
        self.assertEqual(self.steering("us-east-1")["misrouted"], "serve_local")
        self.assertEqual(self.steering("eu-west-1")["misrouted"], "proxy_home")
        # An unknown cohort: a clear error, nothing changed.
        status, body = self.api(leader, "PUT", "/v1/steering/regions/us-east-1",
                                {"cohorts": {"atlantis": {"us-west-2": 1}}})
        self.assertEqual(status, 400, body)
        self.assertIn("atlantis", body["error"])
        status, body = self.api(leader, "POST", "/v1/plans",
                                {"kind": "evacuate", "region": "us-east-1",
                                 "saviors": {"eu-west-1": 1},
                                 "cohorts": {"atlantis": {"us-west-2": 1}}})
        self.assertEqual(status, 400, body)
        self.assertIn("atlantis", body["error"])
        # A plan carries cohort rows: members of the cohort go to their row's savior, and the
        # restore puts the rows back as they were (none).
        status, _ = self.api(leader, "PUT", "/v1/steering/regions/us-east-1", {"cohorts": {}})
        self.assertEqual(status, 200)
        status, body = self.api(leader, "POST", "/v1/plans",
                                {"kind": "evacuate", "region": "us-east-1", "ramp": ["100%"],
                                 "hold": "1s", "saviors": {"eu-west-1": 1},
                                 "cohorts": {"south-america": {"us-west-2": 1}}})
        self.assertEqual(status, 201, body)
        self.wait_for(lambda: self.steering("us-east-1")["regions"]["us-east-1"]["evacuated_bp"]
                      == 10000, what="us-east-1 evacuated")
        for member in range(20):
            self.assertEqual(served_by(self.ports["us-east-1"],
                                       {"x-member-id": "m%d" % member, "x-cohort": "sa"}),
                             "us-west-2")
            self.assertEqual(served_by(self.ports["us-east-1"], {"x-member-id": "m%d" % member}),
                             "eu-west-1")
        status, body = self.api(leader, "POST", "/v1/plans",
                                {"kind": "restore", "region": "us-east-1", "ramp": ["0%"],
                                 "hold": "1s"})
        self.assertEqual(status, 201, body)
        self.wait_for(lambda: self.steering(leader)["regions"]["us-east-1"]["evacuated_bp"] == 0
                      and self.steering(leader)["regions"]["us-east-1"]["cohort_saviors"] == {},
                      what="the restore with the cohort rows put back")


class ScaleHook(CapacityFleet):
    def setUp(self):
        super().setUp()
        self.hook_input = os.path.join(self.dir, "hook-input.json")
        self.fail_marker = os.path.join(self.dir, "fail")
        script = ("cat > %s; if [ -e %s ]; then echo quota exceeded for $SLUICE_REGION; exit 3; "
                  "fi; echo scaled $SLUICE_SAVIORS" % (self.hook_input, self.fail_marker))
        self.HOOK = ("  hooks:\n    scale: {exec: [/bin/sh, -c, %s], timeout: 10s, "
                     "capacity_timeout: 5s}\n" % json.dumps(script))

    def test_the_hook_runs_before_the_ramp_and_a_failing_one_holds_it(self):
        self.start_fleet()
        leader = self.leader()
        with open(self.fail_marker, "w"):
            pass
        body = {"kind": "evacuate", "region": "us-east-1", "ramp": ["100%"], "hold": "1s",
                "saviors": {"eu-west-1": 1}}
        status, started = self.api(leader, "POST", "/v1/plans", body)
        self.assertEqual(status, 201, started)
        plan_id = started["plan"]["id"]
        self.wait_for(lambda: self.plan(leader, plan_id)["hook"] == "failed",
                      what="the hook's failure recorded")
        plan = self.plan(leader, plan_id)
        self.assertEqual(plan["state"], "holding")
        self.assertIn("quota exceeded for us-east-1", plan["gate_message"])
        self.assertIn("exited with status 3", plan["hook_output"])
        self.assertEqual(self.steering(leader)["regions"]["us-east-1"]["evacuated_bp"], 0)
        with open(self.hook_input) as f:
            call = json.load(f)
        self.assertEqual(call["region"], "us-east-1")
        self.assertEqual(call["saviors"], {"eu-west-1": 1})

        status, _ = self.api(leader, "DELETE", "/v1/plans/%d" % plan_id)
        self.assertEqual(status, 200)
        os.unlink(self.fail_marker)
        status, started = self.api(leader, "POST", "/v1/plans", body)
        self.assertEqual(status, 201, started)
        plan_id = started["plan"]["id"]
        self.wait_for(lambda: self.plan(leader, plan_id)["state"] == "done", timeout=30,
                      what="the evacuation done once the hook succeeded")
        self.assertEqual(self.plan(leader, plan_id)["hook_output"], "scaled eu-west-1=1\n")

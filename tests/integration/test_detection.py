"""The sick-region detector end to end (issue 20): three sluice nodes (one per region) in a fleet
on a real etcd, each region with its own origin, members starting streams (POST /start) in every
region. With a week of history imported through sluicectl:

- one region's origin dies: the detector calls it sick within seconds and evacuates it by itself
  (a plan started by "detector", audited, counted in the metrics), no person involved;
- two regions' origins die together: "multi_region_dip", an alert, and no evacuation;
- one node alone (no fleet): bad history is refused with its line, history survives kill -9, a
  damaged store is moved aside, and the mode set through the API is kept across a restart.
"""

import http.client
import json
import os
import random
import shutil
import signal
import subprocess
import tempfile
import threading
import time

from harness import ProxyTestCase
from sluicetest import admin
from sluicetest.process import SLUICECTL_BIN, Sluice, free_port
from sluicetest.prometheus import PROMTOOL_BIN, Prometheus
from sluicetest.secret_files import write_secrets
from test_fleet import ADMIN_TOKEN, KEY, REGIONS, FleetTestCase

DETECTION = """detection:
  mode: %s
  dip_for: %s
  window: 2s
  min_expected_sps: 2
  evacuate: {steps: [50%%, 100%%], hold: 1s}
"""


class Starts:
    """Members starting streams in every region: POST /start, each thread on its own keep-alive
    connection to one region's sluice, bounded in time and count."""

    def __init__(self, ports, per_second=25, limit_s=300):
        self.ports = ports
        self.per_second = per_second
        self.interval = 1.0 / per_second
        self.stop_at = time.monotonic() + limit_s
        self.stopped = threading.Event()
        self.threads = [threading.Thread(target=self.run, args=(region,), daemon=True)
                        for region in ports]

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def stop(self):
        self.stopped.set()
        for t in self.threads:
            t.join(10)

    def run(self, region):
        rng = random.Random(region)
        conn = None
        next_at = time.monotonic()
        while not self.stopped.is_set() and time.monotonic() < self.stop_at:
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.ports[region], timeout=5)
                conn.request("POST", "/start", body=b"",
                             headers={"x-member-id": "%s-%d" % (region, rng.randrange(10 ** 6))})
                conn.getresponse().read()
            except (OSError, http.client.HTTPException):
                if conn is not None:
                    conn.close()
                conn = None
            next_at += self.interval
            self.stopped.wait(max(0.0, next_at - time.monotonic()))
        if conn is not None:
            conn.close()


def history_csv(levels, days=8, now=None):
    """Flat history at these levels ({region: (entry, serving, requests)}), one row a minute."""
    now = int(now or time.time()) // 60 * 60
    lines = ["# sluice-history/1",
             "time,span,region,entry_sps,serving_sps,requests_per_second"]
    for region, (entry, serving, requests) in levels.items():
        for t in range(now - days * 86400, now - 60, 60):
            lines.append("%d,60,%s,%.3f,%.3f,%.3f" % (t, region, entry, serving, requests))
    return "\n".join(lines) + "\n"


class DetectionFleet(FleetTestCase):
    DIP_FOR = "3s"
    def config(self, local, regions=REGIONS):
        text = super().config(local, regions)
        # Every region lists the others as its saviors; stream starts are POST /start.
        for r in REGIONS:
            others = ", ".join("%s: 50" % o for o in REGIONS if o != r)
            text = text.replace("    %s:\n      tunnel: [127.0.0.1:%d]\n" % (r, self.ports[r]),
                                "    %s:\n      tunnel: [127.0.0.1:%d]\n      saviors: {%s}\n"
                                % (r, self.ports[r], others))
        return text + """metrics:
  stream_starts: [{method: POST, path_prefix: /start, status: 2xx}]
""" + DETECTION % ("auto", self.DIP_FOR)

    def detection(self, region):
        status, body = self.api(region, "GET", "/v1/detection")
        return body if status == 200 else {}

    def wait_context(self):
        return "".join("\n--- detection on %s\n%s" % (r, json.dumps(self.detection(r), indent=1))
                       for r in self.nodes)

    def warm_up_and_seed(self):
        """Traffic in every region, then a week of history at the measured levels, imported into
        every node with sluicectl; returns once every region is judged ok."""
        self.region_origins = {}
        for region in REGIONS:
            self.region_origins[region] = self.start_origin(name="origin-" + region)
            self.origin_ports[region] = self.region_origins[region].port
        self.start_fleet()
        self.starts = Starts(self.ports).start()
        self.addCleanup(self.starts.stop)

        def measured():
            regions = self.detection(self.leader() or "us-east-1").get("regions", {})
            # The load's full rate (25/s a region) in every region's 2 s window.
            if all(regions.get(r, {}).get("entry_sps", 0) > 20 for r in REGIONS):
                return regions
            return None

        self.wait_for(measured, what="every region's stream starts measured")
        # The history at the load's own levels: each region's members start 25 streams a
        # second, entering and served there (the measured levels of the first seconds can be
        # short while the nodes' windows fill).
        levels = {r: (self.starts.per_second,) * 3 for r in REGIONS}
        path = os.path.join(self.dir, "week.csv")
        with open(path, "w") as f:
            f.write(history_csv(levels))
        ctl = [SLUICECTL_BIN, "--token-file", os.path.join(self.dir, "admin.token")]
        for r in REGIONS:
            ctl += ["--admin", "http://127.0.0.1:%d" % self.admin_ports[r]]
        result = subprocess.run(ctl + ["history", "import", path], capture_output=True,
                                text=True, timeout=60, stdin=subprocess.DEVNULL)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout.count("rows imported"), 3, result.stdout)

        def all_ok():
            d = self.detection(self.leader() or "us-east-1")
            return all(d.get("regions", {}).get(r, {}).get("verdict") == "ok" for r in REGIONS)

        self.wait_for(all_ok, what="every region judged ok")

    def test_a_dead_regions_origin_is_detected_and_evacuated_by_itself(self):
        self.warm_up_and_seed()
        leader = self.leader()
        fault = time.monotonic()
        # us-east-1's origin dies: its members' starts fail there (no failover configured).
        self.region_origins["us-east-1"].stop()

        def evacuated():
            r = self.steering(leader)["regions"]["us-east-1"]
            return r["evacuated_bp"] == 10000

        def sick_seen():
            return self.detection(leader).get("global", {}).get("verdict") in ("sick",) or \
                self.detection(leader).get("regions", {}).get("us-east-1", {}).get(
                    "verdict") == "evacuated"

        self.wait_for(sick_seen, what="us-east-1 judged sick")
        verdict_s = time.monotonic() - fault
        self.wait_for(evacuated, timeout=30, what="us-east-1 evacuated by the detector")
        evacuated_s = time.monotonic() - fault
        print("\nfault -> sick %.1f s, fault -> 100%% evacuated %.1f s" % (verdict_s, evacuated_s))
        self.assertLess(verdict_s, 15)
        # The plan was the detector's, through the same controller as a person's.
        status, plans = self.api(leader, "GET", "/v1/plans")
        self.assertEqual(status, 200)
        mine = [p for p in plans["plans"] if p["region"] == "us-east-1"]
        self.assertEqual(len(mine), 1, plans)
        self.assertEqual(mine[0]["actor"], "detector")
        self.assertEqual(mine[0]["steps_bp"], [5000, 10000])
        with open(os.path.join(self.dir, "%s-audit.jsonl" % leader)) as f:
            audit = [json.loads(line) for line in f if line.strip()]
        self.assertTrue(any(a["actor"] == "detector" and "us-east-1 dipping -> sick"
                            in a["action"] for a in audit), audit[-10:])
        self.assertTrue(any(a["actor"] == "detector" and a["action"].startswith("plan")
                            for a in audit), audit[-10:])
        self.assertEqual(admin.metric(self.admin_ports[leader],
                                      "sluice_detection_evacuations_total"), 1)
        self.wait_for(lambda: admin.metric(self.admin_ports[leader], 'sluice_detection_state'
                                           '{region="us-east-1",state="evacuated"}') == 1,
                      what="the evacuated state in the metrics")
        # Only the leader acted: the others saw the same verdict and held.
        for r in REGIONS:
            if r != leader:
                self.assertEqual(admin.metric(self.admin_ports[r],
                                              "sluice_detection_evacuations_total"), 0)

    def test_two_regions_dipping_together_is_an_alert_only(self):
        # Both regions' views must show their dips within dip_for of each other: on a busy
        # machine a view can come late, so this test allows more than the one above.
        self.DIP_FOR = "8s"
        self.warm_up_and_seed()
        leader = self.leader()
        self.region_origins["us-east-1"].stop()
        self.region_origins["us-west-2"].stop()
        self.wait_for(lambda: self.detection(leader).get("global", {}).get("verdict")
                      == "multi_region_dip", what="a multi-region dip")
        # It stays an alert: no plan, nothing evacuated, for longer than a verdict takes.
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline:
            self.assertNotEqual(self.detection(leader)["global"]["verdict"], "sick")
            time.sleep(0.5)
        status, plans = self.api(leader, "GET", "/v1/plans")
        self.assertEqual(plans["plans"], [])
        self.assertTrue(all(r["evacuated_bp"] == 0
                            for r in self.steering(leader)["regions"].values()))


class DetectionAlone(ProxyTestCase):
    """One node, no fleet: the history's safety and the API."""

    def config(self, d):
        return """
workers: 1
listeners: [{address: 127.0.0.1:%(port)d}]
clusters:
  - name: app
    endpoints: [127.0.0.1:%(origin)d]
routes:
  - cluster: app
steering:
  local_region: us-east-1
  member_id: [{header: x-member-id}]
  tunnel: {insecure: true, key_file: %(dir)s/tunnel.key}
  regions:
    us-east-1: {tunnel: [127.0.0.1:%(port)d], saviors: {us-west-2: 100}}
    us-west-2: {tunnel: [127.0.0.1:%(peer)d], saviors: {us-east-1: 100}}
metrics:
  stream_starts: [{method: POST, path_prefix: /start, status: 2xx}]
admin:
  tokens: [{name: ops, role: admin, token_file: %(dir)s/admin.token}]
controller:
  state_file: %(dir)s/state.json
""" % d + DETECTION % ("alert", "3s")

    def test_history_import_export_restart_damage_and_mode(self):
        work = tempfile.mkdtemp(prefix="sluice-detect-")
        self.addCleanup(shutil.rmtree, work, True)
        write_secrets(work, (("admin.token", ADMIN_TOKEN), ("tunnel.key", KEY)))
        origin = self.start_origin()
        port, admin_port = free_port(), free_port()
        d = {"port": port, "origin": origin.port, "dir": work, "peer": free_port()}
        def start():
            proxy = Sluice(self.config(d), port=port, admin_port=admin_port)
            self.addCleanup(shutil.rmtree, proxy.dir, True)
            self.addCleanup(proxy.stop)
            proxy.start()
            return proxy

        proxy = start()

        def api(method, path, body=None):
            return admin.call(admin_port, method, path, ADMIN_TOKEN, body)

        # Bad history: refused whole, with its line; nothing imported.
        now = int(time.time())
        good = history_csv({"us-east-1": (50, 50, 200), "us-west-2": (40, 40, 160)}, days=8)
        for text, message in (
                ("", "empty"),
                (good.replace("us-west-2", "mars-1", 1), "not one of the steering table's"),
                (good + "%d,60,us-east-1,1,1,1\n" % (now // 60 * 60 + 3600), "in the future"),
                (good.replace(",50.000,", ",x,", 1), "entry_sps: must be a number")):
            status, body = api("POST", "/v1/history", text)
            self.assertEqual(status, 400, body)
            self.assertIn(message, body["error"])
        self.assertEqual(api("GET", "/v1/detection")[1]["history"]["slots"], 0)
        status, body = api("POST", "/v1/history", good)
        self.assertEqual(status, 200, body)
        self.assertEqual(body["imported"], good.count("\n") - 2)
        # Exported again between two times.
        status, text = api("GET", "/v1/history?from=%d&to=%d" % (now - 3 * 86400, now - 3 * 86400
                                                                 + 600))
        self.assertEqual(status, 200)
        self.assertEqual(len([l for l in text.splitlines() if ",us-east-1," in l]), 10, text)
        status, body = api("GET", "/v1/history?since=1")
        self.assertEqual(status, 400)
        # The mode set through the API, audited and kept across a restart.
        status, body = api("PUT", "/v1/detection", {"mode": "auto"})
        self.assertEqual((status, body["mode"], body["mode_set_by"]), (200, "auto", "ops"))
        self.assertEqual(api("PUT", "/v1/detection", {"mode": "on"})[0], 400)
        # kill -9: the imported week is still there after a restart (never a corrupt store).
        slots = api("GET", "/v1/detection")[1]["history"]["slots"]
        os.kill(proxy.proc.pid, signal.SIGKILL)
        proxy.proc.wait(10)
        proxy = start()
        body = api("GET", "/v1/detection")[1]
        self.assertGreaterEqual(body["history"]["slots"], slots)
        self.assertEqual((body["mode"], body["mode_set_by"]), ("auto", "ops"))
        self.wait_for(lambda: api("GET", "/v1/detection")[1].get("regions", {}).get(
            "us-east-1", {}).get("expected") is not None, what="an expected value from the history")
        # A damaged store is moved aside, said so, and a new one started.
        self.assertEqual(proxy.stop(), 0, proxy.log_text()[-3000:])
        history = os.path.join(work, "state.json.history.db")
        for suffix in ("-wal", "-shm"):
            if os.path.exists(history + suffix):
                os.unlink(history + suffix)
        with open(history, "r+b") as f:
            f.write(b"garbage!" * 64)
        proxy = start()
        self.wait_for(lambda: "was damaged" in proxy.log_text(), what="the damage reported")
        self.assertTrue(any(n.startswith("state.json.history.db.damaged-")
                            for n in os.listdir(work)))
        self.assertEqual(api("GET", "/v1/detection")[1]["history"]["slots"], 0)
        self.assertEqual(proxy.stop(), 0, proxy.log_text()[-3000:])


class DetectionPrometheus(ProxyTestCase):
    """detection.baseline: prometheus, against Debian's prometheus on loopback with history
    backfilled through promtool tsdb create-blocks-from openmetrics (the hours around the same
    time a week and a day ago, and the last two hours: what the detector asks for)."""

    def start_prometheus(self, work):
        now = int(time.time()) // 60 * 60
        lines = []
        for name, rate in (("sluice_entry_stream_starts", 50), ("sluice_stream_starts", 40),
                           ("sluice_entry_requests", 200)):
            lines.append("# TYPE %s counter" % name)
            for region in REGIONS:
                # What the detector asks for: the hours around the same time a week and a day
                # ago, and the last two hours (a counter that keeps counting across the gaps).
                for lag in (7 * 86400, 86400, 0):
                    for t in range(now - lag - 7200, min(now - lag + 7200, now - 120), 60):
                        lines.append('%s_total{region="%s"} %d %d'
                                     % (name, region, (t - now + 8 * 86400) * rate, t))
        lines.append("# EOF")
        with open(os.path.join(work, "week.om"), "w") as f:
            f.write("\n".join(lines) + "\n")
        data = os.path.join(work, "tsdb")
        subprocess.run([PROMTOOL_BIN, "tsdb", "create-blocks-from", "openmetrics", "-q",
                        os.path.join(work, "week.om"), data], check=True, timeout=180,
                       stdin=subprocess.DEVNULL, capture_output=True)
        prom = Prometheus("global: {scrape_interval: 15s}\nscrape_configs: []\n", data_dir=data)
        self.addCleanup(prom.cleanup)
        return prom.start().port

    def node(self, work, url):
        port, admin_port = free_port(), free_port()
        regions = "".join("    %s: {tunnel: [127.0.0.1:%d], saviors: {%s: 100}}\n"
                          % (r, port if r == "us-east-1" else free_port(),
                             "us-west-2" if r == "us-east-1" else "us-east-1") for r in REGIONS)
        config = """
workers: 1
listeners: [{address: 127.0.0.1:%d}]
clusters:
  - name: app
    endpoints: [127.0.0.1:%d]
routes:
  - cluster: app
steering:
  local_region: us-east-1
  member_id: [{header: x-member-id}]
  tunnel: {insecure: true, key_file: %s/tunnel.key}
  regions:
%s
admin:
  tokens: [{name: ops, role: admin, token_file: %s/admin.token}]
detection:
  mode: alert
  baseline: prometheus
  prometheus: {url: "%s", rate: 2m, timeout: 2s}
""" % (port, self.origin.port, work, regions, work, url)
        proxy = self.start_sluice(config, port=port, admin_port=admin_port)
        return lambda: admin.call(admin_port, "GET", "/v1/detection", ADMIN_TOKEN)[1]

    def test_baselines_from_prometheus_and_bad_answers(self):
        work = tempfile.mkdtemp(prefix="sluice-prom-")
        self.addCleanup(shutil.rmtree, work, True)
        write_secrets(work, (("admin.token", ADMIN_TOKEN), ("tunnel.key", KEY)))
        self.origin = self.start_origin()
        prom = self.start_prometheus(work)
        detection = self.node(work, "http://127.0.0.1:%d" % prom)
        def judged():
            d = detection()
            regions = d.get("regions", {})
            if all(regions.get(r, {}).get("baseline_7d") for r in REGIONS):
                return d
            return None

        fetched = self.wait_for(judged, timeout=30, what="baselines fetched from prometheus")
        self.assertEqual(fetched["baseline"]["source"], "prometheus")
        for region in REGIONS:
            r = fetched["regions"][region]
            for lag in ("baseline_1d", "baseline_7d"):
                self.assertIsNotNone(r[lag], (region, fetched))
                self.assertAlmostEqual(r[lag]["entry_sps"], 50, delta=1)
                self.assertAlmostEqual(r[lag]["serving_sps"], 40, delta=1)
                self.assertAlmostEqual(r[lag]["requests_per_second"], 200, delta=4)
            self.assertAlmostEqual(r["expected_entry_sps"], 50, delta=1)
        # Nothing listens: the error says so, and no region gets a verdict.
        dead = self.node(work, "http://127.0.0.1:%d" % free_port())
        body = self.wait_for(lambda: dead() if dead().get("baseline", {}).get("error") else None,
                             what="the unreachable prometheus reported")
        self.assertIn("connect", body["baseline"]["error"])
        self.assertTrue(all(r["verdict"] == "no_verdict" for r in body["regions"].values()), body)
        # Something that is not Prometheus: a clear message, no verdict.
        other = self.node(work, "http://127.0.0.1:%d" % self.origin.port)
        body = self.wait_for(lambda: other() if other().get("baseline", {}).get("error") else None,
                             what="the wrong answer reported")
        self.assertIn("prometheus answer", body["baseline"]["error"])
        self.assertTrue(all(r["verdict"] == "no_verdict" for r in body["regions"].values()), body)

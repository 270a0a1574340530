"""The control plane end to end: the admin API with real tokens, /metrics scraped and parsed,
sluicectl driving ramps against running sluices, the state file across restarts, health gates
fed by a peer region's /v1/health, and standby injection.
"""

import http.client
import json
import os
import re
import selectors
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

from harness import ProxyTestCase
from sluicetest import metrics
from sluicetest.admin import call
from sluicetest.certs import Pki
from sluicetest.process import SLUICE_BIN, SLUICECTL_BIN, free_port
from sluicetest.secret_files import write_secrets

EAST, WEST = "us-east-1", "us-west-2"
ADMIN_TOKEN = "a" * 48
READ_TOKEN = "r" * 48
KEY = "3f9c1a7e5b2d4f6081a3c5e7092b4d6f8a1c3e5f7092b4d6f8a1c3e5f7092b4d"  # random-looking: sluice refuses guessable keys


def get(port, path, method="GET", body=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=body, headers={"x-member-id": "m"})
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


class ControlPlane(ProxyTestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="sluice-admin-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        write_secrets(self.dir, (("admin.token", ADMIN_TOKEN), ("read.token", READ_TOKEN),
                                 ("tunnel.key", KEY)))
        self.state = os.path.join(self.dir, "state.json")
        self.audit = os.path.join(self.dir, "audit.jsonl")
        self.ports = {EAST: free_port(), WEST: free_port()}
        self.admin_ports = {EAST: free_port(), WEST: free_port()}
        self.origin = self.start_origin(name="east-origin")

    def config(self, local, origin_port, spare=None):
        extra_cluster = extra_route = ""
        if spare:
            extra_cluster = ("  - name: spare\n    endpoints: [127.0.0.1:%d, "
                             "{address: 127.0.0.1:%d, standby: true}]" % (origin_port, spare))
            extra_route = "  - name: spare\n    path_prefix: /spare\n    cluster: spare\n"
        return """
workers: 1
listeners: [{address: 127.0.0.1:%(port)d}]
clusters:
  - name: app
    endpoints: [127.0.0.1:%(origin)d]
    connect_timeout: 500ms
%(extra)s
routes:
%(extra_route)s  - name: play
    path_prefix: /play
    cluster: app
  - cluster: app
proxy:
  trust_client_headers: true  # the clients here stand for the apps' own gateway
steering:
  local_region: %(local)s
  member_id: [{header: x-member-id}]
  tunnel: {insecure: true, key_file: %(dir)s/tunnel.key, connect_timeout: 300ms}
  regions:
    us-east-1:
      tunnel: [127.0.0.1:%(east)d]
      saviors: {us-west-2: 100}
    us-west-2:
      tunnel: [127.0.0.1:%(west)d]
admin:
  tokens:
    - {name: ops, role: admin, token_file: %(dir)s/admin.token}
    - {name: dash, role: read, token_file: %(dir)s/read.token}
controller:
  state_file: %(dir)s/%(local)s-state.json
  audit_log: %(dir)s/%(local)s-audit.jsonl
  gates: {recheck: 200ms, health_interval: 200ms, rollback_after: 100}
metrics:
  stream_starts: [{method: POST, path_prefix: /play, status: 2xx}]
""" % {"port": self.ports[local], "origin": origin_port, "extra": extra_cluster, "extra_route": extra_route, "local": local,
       "dir": self.dir, "east": self.ports[EAST], "west": self.ports[WEST]}

    def start_region(self, local, origin_port=None, spare=None, edit=None):
        text = self.config(local, origin_port or self.origin.port, spare)
        if edit:
            text = edit(text)
        return self.start_sluice(text, port=self.ports[local],
                                 admin_port=self.admin_ports[local])

    def sluicectl(self, *args, token=ADMIN_TOKEN, region=EAST, timeout=30):
        argv = [SLUICECTL_BIN, "--admin", "http://127.0.0.1:%d" % self.admin_ports[region]]
        if token:
            argv += ["--token", token]
        result = subprocess.run(argv + list(args), stdin=subprocess.DEVNULL, capture_output=True,
                                timeout=timeout)
        return result.returncode, result.stdout.decode(), result.stderr.decode()

    def steering(self, region=EAST):
        status, body = call(self.admin_ports[region], "GET", "/v1/steering", READ_TOKEN)
        self.assertEqual(status, 200, body)
        return body


class AdminApi(ControlPlane):
    def test_tokens_roles_and_errors(self):
        east = self.start_region(EAST)
        port = east.admin_port
        self.assertEqual(call(port, "GET", "/healthz"), (200, "ok\n"))
        self.assertEqual(call(port, "GET", "/readyz"), (200, "ready\n"))
        self.assertEqual(call(port, "GET", "/v1/steering")[0], 401)
        self.assertEqual(call(port, "GET", "/v1/steering", "x" * 48)[0], 401)
        status, body = call(port, "PUT", "/v1/steering/regions/us-east-1", READ_TOKEN,
                            {"fraction": 10})
        self.assertEqual((status, body["error"]), (403, 'token "dash" may only read'))
        status, body = call(port, "PUT", "/v1/steering/regions/us-east-1", ADMIN_TOKEN, "{bad")
        self.assertEqual((status, body["error"]), (400, "the body is not valid JSON"))
        status, body = call(port, "PUT", "/v1/steering/regions/us-east-1", ADMIN_TOKEN,
                            {"fraction": 10, "saviors": {"us-west-2": 1000}})
        self.assertEqual(status, 400)
        self.assertIn("saviors.us-west-2", body["error"])
        # us-west-2, the only savior, is not running: refused unless forced.
        status, body = call(port, "PUT", "/v1/steering/regions/us-east-1", ADMIN_TOKEN,
                            {"fraction": 10, "version": 1})
        self.assertEqual(status, 409, body)
        self.assertIn("no savior can take us-east-1's members (us-west-2: unreachable", body["error"])
        status, body = call(port, "PUT", "/v1/steering/regions/us-east-1", ADMIN_TOKEN,
                            {"fraction": 10, "version": 1, "force": True})
        self.assertEqual((status, body["version"]), (200, 2), body)
        status, body = call(port, "PUT", "/v1/steering/regions/us-east-1", ADMIN_TOKEN,
                            {"fraction": 20, "version": 1, "force": True})
        self.assertEqual(status, 409)
        self.assertIn("version 2", body["error"])
        self.assertEqual(call(port, "PUT", "/v1/steering/regions/mars-1", ADMIN_TOKEN,
                              {"fraction": 1})[0], 404)
        self.assertEqual(self.steering()["regions"][EAST]["fraction"], "10%")
        # A body over the limit is refused without being read whole.
        raw = self.client(port)
        raw.send(b"POST /v1/plans HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer %s\r\n"
                 b"Content-Length: 2097152\r\n\r\n" % ADMIN_TOKEN.encode())
        self.assertEqual(raw.read_response()[0], 413)
        # The audit trail names who did what.
        with open(os.path.join(self.dir, "us-east-1-audit.jsonl")) as f:
            records = [json.loads(line) for line in f]
        self.assertEqual(len(records), 1)
        self.assertEqual(records[0]["actor"], "ops")
        self.assertEqual((records[0]["version_before"], records[0]["version_after"]), (1, 2))

    def test_metrics_scrape(self):
        east = self.start_region(EAST)
        for _ in range(20):
            self.assertEqual(get(east.port, "/x"), 200)
        for _ in range(5):
            self.assertEqual(get(east.port, "/play/1", method="POST", body=b"{}"), 200)
        status, text = call(east.admin_port, "GET", "/metrics")
        self.assertEqual(status, 200)
        samples, types = metrics.parse(text)
        for family, kind in types.items():
            self.assertTrue(family.startswith("sluice_"), family)
            if kind == "counter":
                self.assertTrue(family.endswith("_total"), family)
            if kind == "histogram":
                self.assertTrue(family.endswith("_seconds"), family)

        def value(name, **labels):
            return samples.get((name, frozenset(labels.items())))

        self.assertEqual(value("sluice_requests_total", route="/", cluster="app", code="2xx",
                               decision="local"), 20)
        self.assertEqual(value("sluice_requests_total", route="play", cluster="app", code="2xx",
                               decision="local"), 5)
        self.assertEqual(value("sluice_request_duration_seconds_count", route="/"), 20)
        self.assertEqual(value("sluice_request_duration_seconds_bucket", route="/", le="+Inf"), 20)
        self.assertEqual(value("sluice_upstream_responses_total", cluster="app", code="2xx"), 25)
        # One request at a time: the one worker reuses its pooled connection to the origin.
        opened = value("sluice_upstream_connections_total", cluster="app")
        self.assertEqual(opened, 1, text)
        self.assertEqual(value("sluice_stream_starts_total", region=EAST), 5)
        self.assertEqual(value("sluice_steering_table_version"), 1)
        self.assertEqual(value("sluice_steering_evacuated_ratio", region=EAST), 0)
        self.assertEqual(value("sluice_ready"), 1)
        self.assertGreaterEqual(value("sluice_downstream_connections_total"), 25)

    def test_a_damaged_state_file_stops_the_start_and_is_kept(self):
        path = os.path.join(self.dir, "us-east-1-state.json")
        with open(path, "w") as f:
            f.write('{"format": "sluice-steering-state/1", "version": ')
        result = subprocess.run(
            [SLUICE_BIN, "--config", self.write_config(EAST), "--admin",
             "127.0.0.1:%d" % self.admin_ports[EAST]],
            stdin=subprocess.DEVNULL, capture_output=True, timeout=20)
        self.assertEqual(result.returncode, 1)
        self.assertIn(b"is damaged", result.stderr)
        self.assertIn(path.encode(), result.stderr)
        with open(path) as f:
            self.assertEqual(f.read(), '{"format": "sluice-steering-state/1", "version": ')

    def write_config(self, local):
        path = os.path.join(self.dir, local + ".yaml")
        with open(path, "w") as f:
            f.write(self.config(local, self.origin.port))
        return path

    def test_standby_injection(self):
        standby = self.start_origin(name="standby")
        east = self.start_region(EAST, spare=standby.port)
        for _ in range(10):
            self.assertEqual(get(east.port, "/spare/x"), 200)
        self.assertEqual(len(standby.received()), 0)
        code, out, err = self.sluicectl("inject", "spare")
        self.assertEqual(code, 0, err)
        self.assertIn("standby endpoints of spare injected", out)
        self.wait_for(lambda: get(east.port, "/spare/x") == 200 and standby.received(),
                      what="the standby to take traffic")
        code, _, err = self.sluicectl("inject", "nope")
        self.assertEqual(code, 1)
        self.assertIn('404 no cluster named "nope"', err)


class Ramps(ControlPlane):
    def test_sluicectl_ramps_an_evacuation_through_the_gates(self):
        west_origin = self.start_origin(name="west-origin")
        self.start_region(WEST, west_origin.port)
        east = self.start_region(EAST)
        # The gate needs us-west-2's own report first.
        self.wait_for(lambda: call(east.admin_port, "GET", "/v1/health", READ_TOKEN)[1]
                      .get("peers", {}).get(WEST, {}).get("reachable"), what="us-west-2's health")
        code, out, err = self.sluicectl("evacuate", EAST, "--to", "us-west-2=100", "--ramp",
                                        "10,50,100", "--hold", "300ms")
        self.assertEqual(code, 0, err)
        self.assertRegex(out, r"plan 1 started: evacuate us-east-1 to us-west-2=100, "
                              r"ramp 10%,50%,100%")
        code, out, err = self.sluicectl("watch", "--interval", "100ms", "--count", "100",
                                        "--until-done")
        self.assertEqual(code, 0, err)
        self.assertIn("100%", out)
        body = self.steering()
        self.assertEqual((body["regions"][EAST]["evacuated_bp"], body["version"]), (10000, 4))
        # Every member of us-east-1 now lands in us-west-2.
        for i in range(20):
            conn = http.client.HTTPConnection("127.0.0.1", east.port, timeout=10)
            conn.request("GET", "/x", headers={"x-member-id": "m%d" % i})
            response = conn.getresponse()
            response.read()
            conn.close()
            self.assertEqual((response.status, response.getheader("sluice-region")), (200, WEST))
        code, out, err = self.sluicectl("status", "--json")
        self.assertEqual(code, 0, err)
        plans = json.loads(out)["endpoints"][0]["plans"]
        self.assertEqual([(p["id"], p["state"]) for p in plans], [(1, "done")])
        # The restore ramps back down.
        code, out, err = self.sluicectl("restore", EAST, "--ramp", "50,0", "--hold", "200ms")
        self.assertEqual(code, 0, err)
        self.wait_for(lambda: self.steering()["regions"][EAST]["evacuated_bp"] == 0,
                      what="the restore")

    def test_an_unreachable_savior_holds_the_ramp(self):
        east = self.start_region(EAST)  # us-west-2 is not running
        # Nobody could take the members: refused, with the reason.
        code, out, err = self.sluicectl("evacuate", EAST, "--to", "us-west-2=100", "--hold", "0s")
        self.assertEqual(code, 1)
        self.assertIn("us-west-2: unreachable", err)
        # Forced, the plan starts and its gate holds it.
        code, out, err = self.sluicectl("evacuate", EAST, "--to", "us-west-2=100", "--hold", "0s",
                                        "--force")
        self.assertEqual(code, 0, err)
        status = self.wait_for(
            lambda: (lambda p: p if p["state"] == "holding" else None)(
                call(east.admin_port, "GET", "/v1/plans/1", READ_TOKEN)[1]["plan"]),
            what="the gate to hold")
        self.assertIn("us-west-2 unreachable", status["gate_message"])
        self.assertEqual(self.steering()["regions"][EAST]["evacuated_bp"], 0)
        code, out, _ = self.sluicectl("status")
        self.assertIn("us-west-2 unreachable", out)
        # A direct change is refused while the plan runs, unless forced.
        code, _, err = self.sluicectl("set", EAST, "--fraction", "5")
        self.assertEqual(code, 1)
        self.assertIn("409", err)
        code, out, err = self.sluicectl("abort", "1")
        self.assertEqual((code, out.strip()), (0, "http://127.0.0.1:%d: plan 1 aborted"
                                               % self.admin_ports[EAST]))
        code, out, err = self.sluicectl("set", EAST, "--fraction", "5", "--force")
        self.assertEqual(code, 0, err)
        self.assertIn("evacuated 5%", out)

    def test_a_restart_in_the_middle_of_a_ramp_resumes_it(self):
        west_origin = self.start_origin(name="west-origin")
        self.start_region(WEST, west_origin.port)
        east = self.start_region(EAST)
        self.wait_for(lambda: call(east.admin_port, "GET", "/v1/health", READ_TOKEN)[1]
                      .get("peers", {}).get(WEST, {}).get("reachable"), what="us-west-2's health")
        code, _, err = self.sluicectl("evacuate", EAST, "--to", "us-west-2=100", "--ramp",
                                      "10,20,30", "--hold", "2s")
        self.assertEqual(code, 0, err)
        self.assertEqual(self.steering()["regions"][EAST]["evacuated_bp"], 1000)
        self.assertEqual(east.stop(), 0)
        with open(os.path.join(self.dir, "us-east-1-state.json")) as f:
            saved = json.load(f)
        self.assertEqual((saved["plans"][0]["state"], saved["plans"][0]["step"]), ("running", 0))
        east.start()
        self.assertEqual(self.steering()["regions"][EAST]["evacuated_bp"], 1000)
        self.assertTrue(east.wait_for_log("steering state restored"), east.log_text())
        self.wait_for(lambda: self.steering()["regions"][EAST]["evacuated_bp"] == 3000,
                      timeout=20, what="the ramp to finish after the restart")
        self.assertEqual(self.steering()["version"], 4)

    def test_peers_by_host_name_and_without_a_catch_all_route_are_polled(self):
        west_origin = self.start_origin(name="west-origin")
        # us-west-2 routes only /play: its /v1/health answer must not depend on a route.
        def replaced(text, old, new):
            self.assertIn(old, text)
            return text.replace(old, new)

        self.start_region(WEST, west_origin.port,
                          edit=lambda t: replaced(t, "  - cluster: app\nproxy:", "proxy:"))
        # us-east-1 knows us-west-2's tunnel by name.
        east = self.start_region(EAST, edit=lambda t: replaced(
            t, "tunnel: [127.0.0.1:%d]" % self.ports[WEST], "tunnel: [localhost:%d]" % self.ports[WEST]))
        self.wait_for(lambda: call(east.admin_port, "GET", "/v1/health", READ_TOKEN)[1]
                      .get("peers", {}).get(WEST, {}).get("reachable"), what="us-west-2's health by name")
        self.assertEqual(west_origin.received(), [])  # the polls never reached an origin

    def test_sluicectl_usage_and_connection_errors(self):
        self.start_region(EAST)
        code, _, err = self.sluicectl("status", token="wrong" * 8)
        self.assertEqual(code, 1)
        self.assertIn("401", err)
        code, _, err = self.sluicectl("evacuate", EAST)
        self.assertEqual(code, 2)
        self.assertIn("--to", err)
        code, _, err = self.sluicectl("frobnicate")
        self.assertEqual(code, 2)
        code, _, err = self.sluicectl("evacuate", EAST + "\r\nX-Injected: 1", "--to", "us-west-2=100")
        self.assertEqual(code, 2)
        self.assertIn("control character", err)
        result = subprocess.run([SLUICECTL_BIN, "--admin", "http://127.0.0.1:%d" % free_port(),
                                 "--timeout", "2s", "status"], capture_output=True, timeout=20)
        self.assertEqual(result.returncode, 1)
        self.assertIn(b"refused", result.stderr)


AUDIT_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
AUDIT_KEYS = ["seq", "time", "actor", "action", "version_before", "version_after", "warning"]


class Audit(ControlPlane):
    """GET /v1/audit and `sluicectl history`: the node's own audit trail, in memory."""

    def change(self, fraction):
        status, body = call(self.admin_ports[EAST], "PUT", "/v1/steering/regions/us-east-1",
                            ADMIN_TOKEN, {"fraction": fraction, "force": True})
        self.assertEqual(status, 200, body)

    def audit_page(self, query="", token=READ_TOKEN):
        conn = http.client.HTTPConnection("127.0.0.1", self.admin_ports[EAST], timeout=10)
        try:
            conn.request("GET", "/v1/audit" + query, headers={"Authorization": "Bearer " + token})
            response = conn.getresponse()
            # Pairs in the order sent: the console relies on the documented shape.
            return response.status, json.loads(response.read(), object_pairs_hook=list)
        finally:
            conn.close()

    def test_audit_answers_changes_oldest_first_and_pages_by_seq_or_time(self):
        self.start_region(EAST)
        status, body = self.audit_page()
        self.assertEqual((status, body), (200, [("events", []), ("next", 1), ("dropped", 0)]))
        before = time.time()
        for fraction in (10, 20, 30):
            self.change(fraction)
        status, body = self.audit_page()
        self.assertEqual(status, 200, body)
        self.assertEqual([key for key, _ in body], ["events", "next", "dropped"])
        events = [dict(pairs) for pairs in dict(body)["events"]]
        for pairs in dict(body)["events"]:
            self.assertEqual([key for key, _ in pairs], AUDIT_KEYS)
        self.assertEqual([e["seq"] for e in events], [1, 2, 3])
        self.assertEqual([e["actor"] for e in events], ["ops"] * 3)
        self.assertEqual([(e["version_before"], e["version_after"]) for e in events],
                         [(1, 2), (2, 3), (3, 4)])
        self.assertEqual([e["warning"] for e in events], [False] * 3)
        self.assertIn("10%", events[0]["action"])
        self.assertIn("30%", events[2]["action"])
        for e in events:
            self.assertRegex(e["time"], AUDIT_TIME)
        self.assertEqual((dict(body)["next"], dict(body)["dropped"]), (4, 0))
        # The same trail as the audit file's.
        with open(os.path.join(self.dir, "us-east-1-audit.jsonl")) as f:
            lines = [json.loads(line) for line in f]
        self.assertEqual([line["action"] for line in lines], [e["action"] for e in events])

        _, after = call(self.admin_ports[EAST], "GET", "/v1/audit?since=seq:1", READ_TOKEN)
        self.assertEqual([e["seq"] for e in after["events"]], [2, 3])
        _, nothing_new = call(self.admin_ports[EAST], "GET", "/v1/audit?since=seq:3", READ_TOKEN)
        self.assertEqual(nothing_new, {"events": [], "next": 4, "dropped": 0})
        _, newest = call(self.admin_ports[EAST], "GET", "/v1/audit?limit=2", ADMIN_TOKEN)
        self.assertEqual([e["seq"] for e in newest["events"]], [2, 3])
        _, since = call(self.admin_ports[EAST], "GET", "/v1/audit?since=%.3f" % (before - 1),
                        READ_TOKEN)
        self.assertEqual(len(since["events"]), 3)
        _, future = call(self.admin_ports[EAST], "GET",
                         "/v1/audit?since=2999-01-01T00:00:00%2B01:00", READ_TOKEN)
        self.assertEqual(future, {"events": [], "next": 4, "dropped": 0})
        for query, field in (("?since=tomorrow", "since"), ("?limit=0", "limit"),
                             ("?limit=1001", "limit"), ("?since=seq:x", "since")):
            status, body = call(self.admin_ports[EAST], "GET", "/v1/audit" + query, READ_TOKEN)
            self.assertEqual(status, 400, query)
            self.assertTrue(body["error"].startswith(field + ":"), body)
        self.assertEqual(call(self.admin_ports[EAST], "GET", "/v1/audit")[0], 401)

    def test_audit_works_without_an_audit_file(self):
        self.start_region(EAST, edit=lambda text: re.sub(r"  audit_log: .*\n", "", text))
        self.change(5)
        _, body = call(self.admin_ports[EAST], "GET", "/v1/audit", READ_TOKEN)
        self.assertEqual([e["seq"] for e in body["events"]], [1])
        self.assertFalse(os.path.exists(os.path.join(self.dir, "us-east-1-audit.jsonl")))

    def test_sluicectl_history_table_json_since_and_limit(self):
        self.start_region(EAST)
        for fraction in (10, 20, 30):
            self.change(fraction)
        code, out, err = self.sluicectl("history", token=READ_TOKEN)
        self.assertEqual(code, 0, err)
        lines = out.splitlines()
        self.assertEqual(lines[0].split(), ["SEQ", "TIME", "ACTOR", "VERSION", "ACTION"])
        self.assertEqual(len(lines), 4, out)
        self.assertEqual(lines[1].split()[0], "1")
        self.assertRegex(lines[1].split()[1], AUDIT_TIME)
        self.assertEqual(lines[1].split()[2:4], ["ops", "1->2"])
        self.assertIn("10%", lines[1])
        self.assertIn("30%", lines[3])
        code, out, err = self.sluicectl("history", "--since", "seq:1", "--limit", "1",
                                        token=READ_TOKEN)
        self.assertEqual(code, 0, err)
        self.assertEqual([line.split()[0] for line in out.splitlines()[1:]], ["3"])
        code, out, err = self.sluicectl("history", "--since", "1h", "--json", token=READ_TOKEN)
        self.assertEqual(code, 0, err)
        result = json.loads(out)["results"][0]
        self.assertTrue(result["ok"])
        self.assertEqual([e["seq"] for e in result["audit"]["events"]], [1, 2, 3])
        self.assertEqual(result["audit"]["next"], 4)
        code, _, err = self.sluicectl("history", "--limit", "0")
        self.assertEqual(code, 2)
        self.assertIn("--limit", err)
        code, _, err = self.sluicectl("history", "--since", "whenever")
        self.assertEqual(code, 2)
        self.assertIn("--since", err)
        code, _, err = self.sluicectl("history", "--since", "2026-13-45T00:00:00Z")
        self.assertEqual(code, 1)
        self.assertIn("400 since:", err)

    def test_sluicectl_history_follow_shows_new_events_until_sigint(self):
        self.start_region(EAST)
        self.change(10)
        argv = [SLUICECTL_BIN, "--admin", "http://127.0.0.1:%d" % self.admin_ports[EAST],
                "--token", READ_TOKEN, "history", "--follow"]
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        self.addCleanup(lambda: proc.poll() is None and proc.kill())
        self.addCleanup(proc.stdout.close)
        self.addCleanup(proc.stderr.close)
        selector = selectors.DefaultSelector()
        selector.register(proc.stdout, selectors.EVENT_READ)
        self.addCleanup(selector.close)
        output = []  # raw bytes as they come (no buffered reader: select() must see them all)

        def line_with(text, timeout=15.0):
            deadline = time.monotonic() + timeout
            while True:
                for line in b"".join(output).decode().splitlines():
                    if text in line:
                        return line
                left = deadline - time.monotonic()
                if left <= 0 or not selector.select(timeout=left):
                    break
                chunk = os.read(proc.stdout.fileno(), 65536)
                if not chunk:
                    break
                output.append(chunk)
            self.fail("no line with %r from history --follow: %r" % (text, b"".join(output)))

        self.assertIn("10%", line_with("1->2"))
        self.change(40)
        self.assertIn("40%", line_with("2->3"))
        self.change(50)
        line_with("3->4")
        os.kill(proc.pid, signal.SIGINT)
        self.assertEqual(proc.wait(timeout=10), 0, proc.stderr.read())
        rest = proc.stdout.read()
        # Each event once: a poll asks only for what came after the last one seen.
        everything = (b"".join(output) + rest).decode()
        self.assertEqual(everything.count("1->2"), 1, everything)
        self.assertEqual(everything.count("2->3"), 1, everything)


class Health(ControlPlane):
    def test_sluicectl_health_shows_each_region_with_dashes_for_the_unknown(self):
        west = self.start_region(WEST)
        east = self.start_region(EAST)
        # Rates over no request are no figures ("-"): give each region some traffic.
        for port in (west.port, east.port):
            for _ in range(5):
                self.assertEqual(get(port, "/x"), 200)

        def both_measured():
            rows = {row["region"]: row for row in self.health_json()["regions"]}
            return rows[EAST]["error_rate"] is not None and rows[WEST]["p99_ms"] is not None

        self.wait_for(both_measured, what="us-east-1 to have polled us-west-2's /v1/health")
        doc = self.health_json()
        self.assertTrue(doc["ok"])
        self.assertEqual(doc["region"], EAST)
        rows = {row["region"]: row for row in doc["regions"]}
        self.assertEqual(sorted(rows), [EAST, WEST])
        east, west = rows[EAST], rows[WEST]
        self.assertTrue(east["local"])
        self.assertFalse(west["local"])
        for key in ("verdict", "sps", "expected_sps", "ratio", "error_rate", "shed_rate",
                    "p99_ms", "capacity_rps", "load_rps", "utilization"):
            self.assertIn(key, east)
        self.assertIsInstance(east["error_rate"], (int, float))
        self.assertIsInstance(west["p99_ms"], (int, float))
        # The detector judges once its window has samples: before that, no verdict is invented.
        self.assertIn(type(east["verdict"]), (str, type(None)))
        code, out, err = self.sluicectl("health", token=READ_TOKEN)
        self.assertEqual(code, 0, err)
        lines = out.splitlines()
        self.assertIn("region us-east-1", lines[0])
        self.assertEqual(lines[1].split()[:10], ["REGION", "VERDICT", "SPS", "EXPECTED", "RATIO",
                                                 "ERR", "SHED", "P99", "CAPACITY", "UTIL"])
        table = {line.split()[0]: line.split() for line in lines[2:]}
        self.assertEqual(sorted(table), [EAST, WEST])
        self.assertIn("this node's region", out)
        # What the node did not give shows as "-" (no baseline yet: nothing is expected).
        if east["verdict"] is None:
            self.assertEqual(table[EAST][1], "-")
        if east["expected_sps"] is None:
            self.assertEqual(table[EAST][3], "-")
        self.assertRegex(table[EAST][5], r"^\d+\.\d\d%$")

    def health_json(self):
        code, out, err = self.sluicectl("health", "--json", token=READ_TOKEN)
        self.assertEqual(code, 0, err)
        return json.loads(out)["endpoints"][0]


class AdminTls(ControlPlane):
    """admin.tls: the admin listener over HTTPS, and sluicectl verifying it."""

    def setUp(self):
        super().setUp()
        self.pki = Pki(os.path.join(self.dir, "pki"))
        os.makedirs(self.pki.dir)
        self.ca = self.pki.ca()
        self.cert, self.key = self.pki.leaf("admin", sans=("IP:127.0.0.1",))

    def with_tls(self, text):
        return text.replace("admin:\n", "admin:\n  tls: {cert_file: %s, key_file: %s}\n"
                            % (self.cert, self.key), 1)

    def ctl(self, url, *args, env=None):
        argv = [SLUICECTL_BIN, "--admin", url, "--token", READ_TOKEN, "--timeout", "5s"]
        result = subprocess.run(argv + list(args), stdin=subprocess.DEVNULL, capture_output=True,
                                timeout=30, env=dict(os.environ, **(env or {})))
        return result.returncode, result.stdout.decode(), result.stderr.decode()

    def test_sluicectl_over_https_verifies_the_certificate(self):
        self.start_region(EAST, edit=self.with_tls)
        url = "https://127.0.0.1:%d" % self.admin_ports[EAST]
        code, out, err = self.ctl(url, "--cacert", self.ca, "status")
        self.assertEqual(code, 0, err)
        self.assertIn(EAST, out)
        code, out, err = self.ctl(url, "history", env={"SLUICE_ADMIN_CACERT": self.ca})
        self.assertEqual(code, 0, err)
        # Another CA: refused, saying why.
        other = self.pki.ca("other")
        code, out, err = self.ctl(url, "--cacert", other, "status")
        self.assertEqual(code, 1, out)
        self.assertIn("certificate does not verify", err)
        self.assertIn(other, err)
        # The system's CA bundle does not know the test CA either.
        code, _, err = self.ctl(url, "status", env={"SLUICE_ADMIN_CACERT": ""})
        self.assertEqual(code, 1)
        self.assertIn("certificate does not verify", err)
        # The certificate names 127.0.0.1, not localhost: the name is checked too.
        code, _, err = self.ctl("https://localhost:%d" % self.admin_ports[EAST], "--cacert",
                                self.ca, "status")
        self.assertEqual(code, 1)
        self.assertIn("does not verify: hostname mismatch", err)
        # Plain HTTP to the HTTPS listener.
        code, _, err = self.ctl("http://127.0.0.1:%d" % self.admin_ports[EAST], "status")
        self.assertEqual(code, 1)
        self.assertIn("https", err)
        code, _, err = self.ctl(url, "--cacert", os.path.join(self.dir, "nope.pem"), "status")
        self.assertEqual(code, 2)
        self.assertIn("--cacert: cannot read", err)
        # Other clients see the same listener (curl, verified).
        result = self.curl("--cacert", self.ca, url + "/healthz")
        self.assertEqual(result.stdout, b"ok\n", result.stderr)

    def test_a_new_certificate_is_taken_without_a_restart(self):
        self.start_region(EAST, edit=self.with_tls)
        url = "https://127.0.0.1:%d" % self.admin_ports[EAST]
        self.assertEqual(self.ctl(url, "--cacert", self.ca, "status")[0], 0)
        renewed = Pki(os.path.join(self.dir, "renewed"))
        os.makedirs(renewed.dir)
        new_ca = renewed.ca()
        cert, key = renewed.leaf("admin", sans=("IP:127.0.0.1",))
        # Key first, then the certificate: the watcher tries again on each change.
        os.replace(key, self.key)
        os.replace(cert, self.cert)
        self.wait_for(lambda: self.ctl(url, "--cacert", new_ca, "status")[0] == 0,
                      what="the admin listener to present the renewed certificate")
        self.assertEqual(self.ctl(url, "--cacert", self.ca, "status")[0], 1)

    def test_a_bad_certificate_stops_the_start_naming_the_file(self):
        with open(self.cert, "w") as f:
            f.write("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
        path = os.path.join(self.dir, "east.yaml")
        with open(path, "w") as f:
            f.write(self.with_tls(self.config(EAST, self.origin.port)))
        for args in (["--check"], []):
            result = subprocess.run(
                [SLUICE_BIN] + args + ["--config", path, "--admin",
                                       "127.0.0.1:%d" % self.admin_ports[EAST]],
                stdin=subprocess.DEVNULL, capture_output=True, timeout=20)
            self.assertNotEqual(result.returncode, 0)
            self.assertIn(b"admin.tls", result.stderr)
            self.assertIn(self.cert.encode(), result.stderr)


class AccessLog(ProxyTestCase):
    def read_lines(self, path, count, timeout=10.0):
        deadline = time.monotonic() + timeout
        lines = []
        while time.monotonic() < deadline:
            if os.path.exists(path):
                with open(path) as f:
                    lines = [json.loads(line) for line in f if line.strip()]
                if len(lines) >= count:
                    return lines
            time.sleep(0.05)
        self.fail("%d lines in %s, expected %d" % (len(lines), path, count))

    def test_one_json_line_per_request_and_reopen_on_sigusr1(self):
        origin = self.start_origin()
        work = tempfile.mkdtemp(prefix="sluice-access-")
        self.addCleanup(shutil.rmtree, work, True)
        path = os.path.join(work, "access.jsonl")
        proxy = self.start_sluice("""
workers: 2
listeners: [{address: 127.0.0.1:{port}}]
clusters: [{name: app, endpoints: [127.0.0.1:%d]}]
routes:
  - {name: api, path_prefix: /api, cluster: app}
access_log: {path: %s}
""" % (origin.port, path))
        conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
        for i in range(10):
            conn.request("POST", "/api/items/%d?token=SECRET" % i, body=b"12345",
                         headers={"x-request-id": "req-%d" % i,
                                  "Authorization": "Bearer SECRET"})
            response = conn.getresponse()
            response.read()
            self.assertEqual(response.status, 200)
        conn.request("GET", "/nowhere")
        conn.getresponse().read()
        conn.close()
        lines = self.read_lines(path, 11)
        first = [l for l in lines if l["request_id"] == "req-0"][0]
        self.assertEqual((first["method"], first["path"], first["status"], first["route"],
                          first["cluster"], first["bytes_in"], first["decision"]),
                         ("POST", "/api/items/0", 200, "api", "app", 5, "off"))
        self.assertEqual(first["endpoint"], "127.0.0.1:%d" % origin.port)
        self.assertRegex(first["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        self.assertGreater(first["duration_ms"], 0)
        self.assertEqual(len([l for l in lines if l["status"] == 404 and l["route"] == ""]), 1)
        with open(path) as f:
            self.assertNotIn("SECRET", f.read())
        # Log rotation: rename, SIGUSR1, and new lines go to a new file.
        os.rename(path, path + ".1")
        proxy.signal(signal.SIGUSR1)
        self.assertTrue(proxy.wait_for_log("access log reopened"), proxy.log_text())
        conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
        conn.request("GET", "/api/after")
        conn.getresponse().read()
        conn.close()
        after = self.read_lines(path, 1)
        self.assertEqual(after[0]["path"], "/api/after")

    def test_sampling_keeps_every_error(self):
        origin = self.start_origin()
        work = tempfile.mkdtemp(prefix="sluice-access-")
        self.addCleanup(shutil.rmtree, work, True)
        path = os.path.join(work, "access.jsonl")
        proxy = self.start_sluice("""
workers: 1
listeners: [{address: 127.0.0.1:{port}}]
clusters:
  - {name: app, endpoints: [127.0.0.1:%d]}
  - {name: dead, endpoints: [127.0.0.1:%d], connect_timeout: 200ms}
routes:
  - {path_prefix: /dead, cluster: dead}
  - {cluster: app}
access_log: {path: %s, sample: 0}
""" % (origin.port, free_port(), path))
        for i in range(20):
            self.assertEqual(get(proxy.port, "/ok"), 200)
        for i in range(3):
            self.assertEqual(get(proxy.port, "/dead"), 502)
        lines = self.read_lines(path, 3)
        time.sleep(0.5)
        lines = self.read_lines(path, 3)
        self.assertEqual([l["status"] for l in lines], [502, 502, 502])


if __name__ == "__main__":
    unittest.main()

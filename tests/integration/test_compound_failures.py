"""The control plane's judgement of a region when things fail together (issue 18), with the real
binary on loopback: gate figures that are rates over the same events, a restore refused into a
region whose origins are down, and a node with dead origins that still says so.

(The compound steering case, an evacuated region whose saviors are evacuating or down, is in
test_steering.py, next to the steering model it is checked against.)
"""

import os
import shutil
import tempfile
import unittest

from harness import ProxyTestCase
from sluicetest.admin import call
from sluicetest.process import free_port
from sluicetest.secret_files import write_secrets

KEY = "3f9c1a7e5b2d4f6081a3c5e7092b4d6f8a1c3e5f7092b4d6f8a1c3e5f7092b4d"
ADMIN_TOKEN = "9d4f6e1a8c3b7d2e9f4a6c1b5e0b7c2a"


class CompoundFailures(ProxyTestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="sluice-compound-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        write_secrets(self.dir, (("tunnel.key", KEY), ("admin.token", ADMIN_TOKEN)))

    def start_east(self, origin_port, evacuate="0%", health_check=""):
        config = """
workers: 1
log_level: info
listeners: [{address: 127.0.0.1:{port}}]
clusters:
  - name: app
    endpoints: [127.0.0.1:%(origin)d]
    connect_timeout: 200ms
%(check)s
routes:
  - cluster: app
    filters: [{retry: {attempts: 2, on: [gateway_error]}}]
steering:
  local_region: us-east-1
  tunnel: {insecure: true, key_file: %(dir)s/tunnel.key}
  failover: false
  regions:
    us-east-1: {tunnel: [127.0.0.1:%(east)d], evacuate: %(evacuate)s, saviors: {us-west-2: 100}}
    us-west-2: {tunnel: [127.0.0.1:%(west)d]}
controller: {gates: {window: 30s, health_interval: 200ms}}
admin:
  tokens: [{name: ops, role: admin, token_file: %(dir)s/admin.token}]
"""
        east_port = free_port()
        text = config % {"origin": origin_port, "check": health_check, "dir": self.dir,
                         "east": east_port, "west": free_port(), "evacuate": evacuate}
        return self.start_sluice(text, port=east_port, admin_port=free_port())

    def local_view(self, east):
        status, body = call(east.admin_port, "GET", "/v1/health", ADMIN_TOKEN)
        return body.get("local") if status == 200 else None

    def test_half_failing_origin_reads_half(self):
        # Every other attempt fails and each failure is retried: clients see no error, the
        # origin fails half of what it is sent. Counting failed attempts over requests read
        # 100% here (and 128% or 0% for a dead region).
        origin = self.start_origin()
        east = self.start_east(origin.port)
        statuses = []
        for _ in range(40):
            c = self.client(east.port)
            c.send(b"GET /flaky HTTP/1.1\r\nHost: h\r\n\r\n")
            statuses.append(c.read_response()[0])
        self.assertEqual(statuses, [200] * 40)

        def sampled():
            view = self.local_view(east)
            return view if view and view.get("requests", 0) >= 80 else None
        view = self.wait_for(sampled, what="the window holding the 80 attempts")
        self.assertEqual(view["requests"], 80)
        # Failed attempts over attempts: within two points of the truth.
        self.assertAlmostEqual(view["error_rate"], 0.5, delta=0.02)
        self.assertFalse(view["origins_down"])

    def test_a_restore_into_dead_origins_is_refused(self):
        dead = free_port()  # nothing listens: every health check fails
        east = self.start_east(dead, evacuate="100%", health_check=(
            "    health_check: {path: /health, interval: 200ms, timeout: 100ms, rise: 1, "
            "fall: 1}"))

        def down():
            view = self.local_view(east)
            return view if view and view.get("origins_down") else None
        view = self.wait_for(down, what="the dead origins seen as down")
        self.assertIn("fails its health checks", view["origins_detail"])
        status, body = call(east.admin_port, "POST", "/v1/plans", ADMIN_TOKEN,
                            {"kind": "restore", "region": "us-east-1"})
        self.assertEqual(status, 409, body)
        self.assertIn("origins are down", body["error"])
        # Forced, the operator may; nothing else changed meanwhile.
        status, body = call(east.admin_port, "GET", "/v1/steering", ADMIN_TOKEN)
        self.assertEqual(body["regions"]["us-east-1"]["evacuated_bp"], 10000)
        self.assertTrue(east.wait_for_log("the local origins are down"), east.log_text())


if __name__ == "__main__":
    unittest.main()

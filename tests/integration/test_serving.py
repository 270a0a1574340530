"""GET /v1/serving, the endpoint DNS providers' health checks poll: answered on the traffic
listener (before routes and filters) and on the admin listener (no token), 200 while the local
region takes its own traffic, 503 while it is evacuated at 100% or while the process drains.
"""

import hashlib
import http.client
import json
import shutil
import signal
import socket
import tempfile
import unittest

from harness import ProxyTestCase
from sluicetest import admin
from sluicetest.process import free_port
from sluicetest.secret_files import write_secrets

EAST, WEST = "us-east-1", "us-west-2"
ADMIN_TOKEN = "a" * 48
API_KEY = "k" * 40
KEY = "3f9c1a7e5b2d4f6081a3c5e7092b4d6f8a1c3e5f7092b4d6f8a1c3e5f7092b4d"


def ask(port, method="GET", path="/v1/serving"):
    """(status, headers lower-case -> value, body bytes) of one request on its own connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path)
        response = conn.getresponse()
        body = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, body
    finally:
        conn.close()


def refused(port):
    """True when nothing accepts connections on `port` any more."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return False
    except OSError:
        return True


class Serving(ProxyTestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="sluice-serving-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        write_secrets(self.dir, (("admin.token", ADMIN_TOKEN), ("tunnel.key", KEY)))
        self.origin = self.start_origin()

    def start(self, steering=True):
        digest = hashlib.sha256(API_KEY.encode()).hexdigest()
        port = free_port()
        text = """
workers: 1
log_level: debug
listeners: [{address: 127.0.0.1:{port}}]
clusters:
  - name: app
    endpoints: [127.0.0.1:%(origin)d]
    connect_timeout: 500ms
    response_timeout: 10s
routes:
  - path_prefix: /slow
    cluster: app
  - cluster: app
    filters:
      - auth: {api_keys: [{name: partner, sha256: %(digest)s}]}
admin:
  tokens:
    - {name: ops, role: admin, token_file: %(dir)s/admin.token}
""" % {"origin": self.origin.port, "digest": digest, "dir": self.dir}
        if steering:
            text += """
controller:
  state_file: %(dir)s/state.json
  audit_log: %(dir)s/audit.jsonl
steering:
  local_region: us-east-1
  member_id: [{header: x-member-id}]
  tunnel: {insecure: true, key_file: %(dir)s/tunnel.key, connect_timeout: 300ms}
  regions:
    us-east-1:
      tunnel: [127.0.0.1:%(port)d]
      saviors: {us-west-2: 100}
    us-west-2:
      tunnel: [127.0.0.1:%(west)d]
""" % {"dir": self.dir, "port": port, "west": free_port()}
        self.proxy = self.start_sluice(text, port=port)
        return self.proxy

    def listeners(self):
        return (("traffic", self.proxy.port), ("admin", self.proxy.admin_port))

    def serving(self, port):
        """(status, parsed body) of GET /v1/serving."""
        status, headers, body = ask(port)
        self.assertEqual(headers["content-type"], "application/json")
        self.assertEqual(headers["cache-control"], "no-store")
        return status, json.loads(body)

    def evacuate(self, fraction):
        # us-west-2, the only savior, is not running: the change is forced.
        status, body = admin.call(self.proxy.admin_port, "PUT", "/v1/steering/regions/us-east-1",
                                  ADMIN_TOKEN, {"fraction": fraction, "force": True})
        self.assertEqual(status, 200, body)

    def wait_serving(self, expected_status, reason):
        for name, port in self.listeners():
            self.wait_for(lambda: self.serving(port)[0] == expected_status, 10,
                          "%s listener to answer %d" % (name, expected_status))
            status, body = self.serving(port)
            self.assertEqual((status, body["reason"]), (expected_status, reason), name)
            self.assertEqual(body["serving"], expected_status == 200, name)
            self.assertEqual(body["region"], EAST, name)

    def test_follows_the_local_regions_evacuation_on_both_listeners(self):
        self.start()
        for name, port in self.listeners():
            self.assertEqual(self.serving(port), (200, {"serving": True, "region": EAST,
                                                        "evacuated": "0%",
                                                        "reason": "serving"}), name)
        # Half evacuated: the region still serves the other half of its members.
        self.evacuate(50)
        self.wait_for(lambda: self.serving(self.proxy.port)[1]["evacuated"] == "50%", 10,
                      "the workers' table at 50%")
        self.wait_serving(200, "serving")
        self.evacuate(100)
        self.wait_serving(503, "evacuated")
        for name, port in self.listeners():
            self.assertEqual(self.serving(port)[1]["evacuated"], "100%", name)
            # HEAD, as health checkers send it: the same status, no body.
            status, _, body = ask(port, "HEAD")
            self.assertEqual((status, body), (503, b""), name)
        self.evacuate(0)
        self.wait_serving(200, "serving")
        self.assertEqual(self.origin.received(), [])

    def test_methods_and_paths(self):
        self.start()
        for name, port in self.listeners():
            status, headers, body = ask(port, "HEAD")
            self.assertEqual((status, body), (200, b""), name)
            status, headers, _ = ask(port, "POST")
            self.assertEqual(status, 405, name)
            self.assertEqual(headers["allow"], "GET, HEAD", name)
        # The traffic listener answers exactly /v1/serving, whatever the query, and never runs
        # the route's filters for it (the auth filter answers 401 to everything else).
        self.assertEqual(ask(self.proxy.port, path="/v1/serving?probe=route53")[0], 200)
        for path in ("/v1/serving/", "/v1//serving", "/v1/servingx", "/v1/%73erving", "/x"):
            self.assertEqual(ask(self.proxy.port, path=path)[0], 401, path)
        self.assertEqual(self.origin.received(), [])

    def test_without_steering_serving_unless_draining(self):
        self.start(steering=False)
        for name, port in self.listeners():
            self.assertEqual(self.serving(port), (200, {"serving": True, "region": None,
                                                        "evacuated": None,
                                                        "reason": "serving"}), name)

    def test_draining_answers_503(self):
        self.start()
        fresh = self.client(self.proxy.port)  # connected, sends its request during the drain
        busy = self.client(self.proxy.port, timeout=15)
        busy.send(b"GET /slow?ms=3000 HTTP/1.1\r\nHost: a\r\n\r\n")  # keeps the drain going
        self.wait_for(lambda: admin.metric(self.proxy.admin_port,
                                           "sluice_downstream_connections") == 2, 10,
                      "two open connections")
        self.proxy.signal(signal.SIGTERM)
        self.wait_for(lambda: self.serving(self.proxy.admin_port)[0] == 503, 10,
                      "the admin listener to answer 503")
        self.assertEqual(self.serving(self.proxy.admin_port)[1]["reason"], "draining")
        status, _, body = ask(self.proxy.admin_port, "HEAD")
        self.assertEqual((status, body), (503, b""))
        # The worker closed its listener once it began draining; a connection it had already
        # accepted still gets one answer (within the drain's grace for idle connections).
        self.wait_for(lambda: refused(self.proxy.port), 10, "the traffic listener closed")
        fresh.send(b"GET /v1/serving HTTP/1.1\r\nHost: a\r\n\r\n")
        status, headers, body = fresh.read_response()
        self.assertEqual((status, json.loads(body)["reason"]), (503, "draining"))
        self.assertEqual(busy.read_response()[0], 200)
        fresh.close()  # answered inline, it is not closed by sluice before its idle timeout
        self.proxy.proc.wait(15)
        self.assertEqual(self.proxy.proc.returncode, 0)


if __name__ == "__main__":
    unittest.main()

"""Filter chains end to end: header rules, rate limits, the connection cap, and load shedding
that keeps critical traffic alive while bulk traffic is shed."""

import json
import socket
import threading
import time
import unittest

from harness import SANITIZED, ProxyTestCase, RawClient, basic_config

ROUTE_WITH_FILTERS = """
routes:
  - path_prefix: /limited
    cluster: app
    filters:
      - rate_limit: {rate: 2/s, burst: 3}
  - cluster: app
    filters:
      - headers:
          request: {add: {X-Edge: sluice}, set: {X-Env: prod}, remove: [X-Debug]}
          response: {remove: [x-origin], set: {Cache-Control: no-store}}
"""


def with_routes(config, routes):
    head = config[:config.index("routes:")]
    tail = config[config.index("routes:"):]
    tail = tail[tail.index("\n", tail.index("- cluster: app")) + 1:]
    return head + routes.strip("\n") + "\n" + tail


class HeaderRulesAndRateLimits(ProxyTestCase):
    def setUp(self):
        self.origin = self.start_origin()
        self.proxy = self.start_sluice(with_routes(basic_config([self.origin.port]), ROUTE_WITH_FILTERS))

    def test_header_rules_change_both_heads(self):
        c = self.client(self.proxy.port)
        c.send(b"GET /headers HTTP/1.1\r\nHost: a\r\nX-Debug: 1\r\nX-Env: dev\r\n\r\n")
        status, headers, body = c.read_response()
        self.assertEqual(status, 200)
        seen = {n.lower(): v for n, v in json.loads(body)["headers"]}
        self.assertEqual(seen["x-edge"], "sluice")
        self.assertEqual(seen["x-env"], "prod")
        self.assertNotIn("x-debug", seen)
        self.assertNotIn("x-origin", headers)
        self.assertEqual(headers["cache-control"], ["no-store"])

    def test_rate_limit_answers_429_with_retry_after(self):
        c = self.client(self.proxy.port)
        statuses = []
        for i in range(6):
            c.send(b"GET /limited/%d HTTP/1.1\r\nHost: a\r\n\r\n" % i)
            status, headers, _ = c.read_response()
            statuses.append(status)
            if status == 429:
                self.assertIn("retry-after", headers)
        self.assertEqual(statuses[:3], [200, 200, 200])  # the burst
        self.assertIn(429, statuses[3:])
        # Other routes are not limited, and the connection stays usable.
        c.send(b"GET /free HTTP/1.1\r\nHost: a\r\n\r\n")
        self.assertEqual(c.read_response()[0], 200)


class ConnectionCap(ProxyTestCase):
    def test_connections_over_the_cap_are_closed(self):
        origin = self.start_origin()
        proxy = self.start_sluice(basic_config([origin.port], extra="limits:\n  max_connections: 2\n"))
        time.sleep(0.3)  # the harness's readiness probe must be closed and uncounted first
        first = self.client(proxy.port)
        second = self.client(proxy.port)
        for c in (first, second):
            c.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            self.assertEqual(c.read_response()[0], 200)
        third = self.client(proxy.port)
        self.assertTrue(third.closed_by_peer())
        first.close()
        time.sleep(0.2)
        fourth = self.client(proxy.port)
        fourth.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        self.assertEqual(fourth.read_response()[0], 200)


SHED_CONFIG = """
workers: 1
log_level: info
listeners:
  - address: 127.0.0.1:{port}
clusters:
  - name: app
    endpoints: [127.0.0.1:%d]
    response_timeout: 10s
    pool: {max_idle: 64}
    concurrency:
      algorithm: gradient2
      initial_limit: 16
      min_limit: 8
      max_limit: 64
      window: 50ms
      min_window_samples: 5
      partitions: [{name: critical, share: 0.75}, {name: bulk, share: 0.25}]
proxy: {trust_client_headers: true}
routes:
  - cluster: app
    filters:
      - shed:
          partition: bulk
          classify: [{header: x-priority, value: critical, partition: critical}]
"""


@unittest.skipIf(SANITIZED, "rates and timings are asserted in the normal build only")
class Overload(ProxyTestCase):
    def test_critical_traffic_survives_while_bulk_is_shed(self):
        # An origin that serves 4 requests at a time, 20 ms each: more load only queues.
        origin = self.start_origin(capacity=4, service_ms=20)
        proxy = self.start_sluice(SHED_CONFIG % origin.port)
        results = {"critical": [], "bulk": []}
        lock = threading.Lock()
        stop = threading.Event()

        def client(kind):
            header = b"X-Priority: critical\r\n" if kind == "critical" else b""
            c = RawClient(proxy.port, timeout=15)
            try:
                while not stop.is_set():
                    c.send(b"GET /work HTTP/1.1\r\nHost: a\r\n" + header + b"\r\n")
                    status = c.read_response()[0]
                    with lock:
                        results[kind].append(status)
                    if status != 200:
                        time.sleep(0.01)
            finally:
                c.close()

        # Light load first: the limiter learns the healthy latency.
        warm = [threading.Thread(target=client, args=("bulk",)) for _ in range(2)]
        for t in warm:
            t.start()
        time.sleep(0.7)
        # Then overload: 16 bulk and 3 critical clients against 4 origin slots.
        load = [threading.Thread(target=client, args=("bulk",)) for _ in range(16)]
        load += [threading.Thread(target=client, args=("critical",)) for _ in range(3)]
        for t in load:
            t.start()
        time.sleep(3.0)
        stop.set()
        for t in warm + load:
            t.join(20)

        def success(kind):
            statuses = results[kind]
            return sum(1 for s in statuses if s == 200) / max(len(statuses), 1)

        critical_ok = success("critical")
        bulk_shed = sum(1 for s in results["bulk"] if s == 503)
        print("\ncritical: %d requests, %.1f%% ok; bulk: %d requests, %.1f%% ok, %d shed" % (
            len(results["critical"]), 100 * critical_ok, len(results["bulk"]),
            100 * success("bulk"), bulk_shed))
        self.assertGreater(len(results["critical"]), 20)
        self.assertGreaterEqual(critical_ok, 0.95)
        self.assertGreater(bulk_shed, 0)
        self.assertLess(success("bulk"), critical_ok)


if __name__ == "__main__":
    unittest.main()

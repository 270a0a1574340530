"""Upstream resilience end to end: a dead origin is invisible to GETs, a black hole is ejected
and readmitted, the retry budget caps retries when everything fails, large POSTs are never
replayed, circuit breakers answer 503, health checks take endpoints out and back, hot standbys
join with slow start, and endpoints may be host names."""

import http.server
import re
import signal
import socket
import ssl
import threading
import time
import unittest

from harness import SANITIZED, ProxyTestCase, RawClient
from sluicetest.certs import Pki


def config(endpoints, cluster_extra="", route_filters="", workers=1):
    eps = "\n".join("      - %s" % e for e in endpoints)
    filters = ("    filters:\n" + route_filters) if route_filters else ""
    return """
workers: %d
log_level: debug
listeners: [{address: 127.0.0.1:{port}}]
clusters:
  - name: app
    balancer: round_robin
    connect_timeout: 300ms
    response_timeout: 3s
    endpoints:
%s
%s
routes:
  - cluster: app
%s
""" % (workers, eps, cluster_extra, filters)


RETRY = """      - retry: {attempts: 3, on: [connect_failure, reset, timeout, gateway_error]}
"""


def load(port, seconds, clients, path=b"/x", method=b"GET", body=b""):
    """Bounded load from `clients` threads; returns the list of statuses (0: connection error)."""
    results = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def run():
        c = None
        while time.monotonic() < stop:
            try:
                if c is None:
                    c = RawClient(port, timeout=10)
                extra = b"Content-Length: %d\r\n" % len(body) if body else b""
                c.send(method + b" " + path + b" HTTP/1.1\r\nHost: a\r\n" + extra + b"\r\n" + body)
                status = c.read_response()[0]
            except (OSError, EOFError):
                status = 0
                if c:
                    c.close()
                c = None
            with lock:
                results.append(status)
        if c:
            c.close()

    threads = [threading.Thread(target=run) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 20)
    return results


class DeadOrigins(ProxyTestCase):
    def test_killing_one_origin_under_load_is_invisible_for_gets(self):
        a = self.start_origin(name="a")
        b = self.start_origin(name="b")
        proxy = self.start_sluice(config(["127.0.0.1:%d" % a.port, "127.0.0.1:%d" % b.port],
                                         "    outlier_detection: {consecutive_failures: 2, base_ejection: 5s}",
                                         RETRY))
        killer = threading.Timer(0.5, b.stop)
        killer.start()
        results = load(proxy.port, 2.0, 6)
        killer.join()
        errors = [s for s in results if s != 200]
        print("\n%d GETs while an origin died: %d errors" % (len(results), len(errors)))
        self.assertGreater(len(results), 100)
        why = [line for line in proxy.log_text().splitlines() if " warn " in line]
        self.assertEqual(errors, [], "\n".join(why[-20:]))
        self.assertGreater(len(b.received()), 0)  # b did serve before it died

    def test_black_holed_endpoint_is_ejected_then_readmitted(self):
        good = self.start_origin(name="good")
        # A listener whose backlog is full: connects to it time out, like a dead host's.
        hole = socket.socket()
        hole.bind(("127.0.0.1", 0))
        hole.listen(0)
        hole_port = hole.getsockname()[1]
        fillers = []
        for _ in range(4):
            s = socket.socket()
            s.setblocking(False)
            try:
                s.connect(("127.0.0.1", hole_port))
            except BlockingIOError:
                pass
            fillers.append(s)
        proxy = self.start_sluice(config(
            ["127.0.0.1:%d" % good.port, "127.0.0.1:%d" % hole_port],
            "    outlier_detection: {consecutive_failures: 2, base_ejection: 2s, max_ejection_percent: 50}\n"
            "    panic_threshold: 0", RETRY))
        c = self.client(proxy.port)
        for _ in range(6):  # the hole costs a connect timeout, then a retry elsewhere
            c.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            self.assertEqual(c.read_response()[0], 200)
        self.assertTrue(proxy.wait_for_log("connect timed out"))
        # Ejected: requests no longer wait for the hole.
        started = time.monotonic()
        for _ in range(20):
            c.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            self.assertEqual(c.read_response()[0], 200)
        self.assertLess(time.monotonic() - started, 1.0)
        # The host comes back (an origin on the same port); after the ejection it gets traffic.
        hole.close()
        for s in fillers:
            s.close()
        back = self.start_origin(name="back", port=hole_port)
        deadline = time.monotonic() + 6
        while time.monotonic() < deadline and not back.received():
            c.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            self.assertEqual(c.read_response()[0], 200)
            time.sleep(0.05)
        self.assertGreater(len(back.received()), 0)


@unittest.skipIf(SANITIZED, "counts of requests under timing-dependent load")
class RetryBudget(ProxyTestCase):
    def test_when_everything_fails_the_budget_caps_retries(self):
        failing = [self.start_origin(name="f%d" % i, delay=0.05) for i in range(2)]
        proxy = self.start_sluice(config(
            ["127.0.0.1:%d" % o.port for o in failing],
            "    outlier_detection: {consecutive_failures: 0}\n"
            "    retry_budget: {ratio: 0.2, min_retries: 3}",
            "      - retry: {attempts: 5, on: [gateway_error]}\n"))
        results = load(proxy.port, 2.0, 20, path=b"/status/503")
        attempts = sum(len(o.received()) for o in failing)
        ratio = attempts / max(len(results), 1)
        print("\n%d requests, %d upstream attempts (%.2f per request; 5 without a budget)" % (
            len(results), attempts, ratio))
        self.assertTrue(all(s == 503 for s in results))
        self.assertLess(ratio, 1.5)  # a budget of 20% of 20 in flight, not 4 retries each


class Replay(ProxyTestCase):
    def test_post_larger_than_the_replay_buffer_is_not_retried(self):
        resetter = self.start_origin(name="resetter")
        healthy = self.start_origin(name="healthy")
        proxy = self.start_sluice(config(
            ["127.0.0.1:%d" % resetter.port, "127.0.0.1:%d" % healthy.port],
            "    outlier_detection: {consecutive_failures: 0}",
            "      - retry: {attempts: 3, methods: any, replay_buffer: 1KiB, on: [reset]}\n"))
        c = self.client(proxy.port)
        small_results, large_results = [], []
        for i in range(4):  # round robin: every other attempt meets the resetter first
            c.send(b"POST /reset HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n" + b"s" * 100)
            small_results.append(c.read_response()[0])
        for i in range(4):
            c = self.client(proxy.port)
            c.send(b"POST /reset HTTP/1.1\r\nHost: a\r\nContent-Length: 10000\r\n\r\n" + b"L" * 10000)
            large_results.append(c.read_response()[0])
        # /reset closes without an answer on both origins: small bodies are retried (every
        # attempt fails), large ones are sent once.
        self.assertEqual(set(small_results), {502})
        self.assertEqual(set(large_results), {502})
        large_attempts = sum(1 for o in (resetter, healthy) for r in o.received() if r.body_length == 10000)
        small_attempts = sum(1 for o in (resetter, healthy) for r in o.received() if r.body_length == 100)
        self.assertEqual(large_attempts, 4)
        self.assertEqual(small_attempts, 12)  # three attempts each


class Breakers(ProxyTestCase):
    def test_requests_over_the_limit_get_an_immediate_503(self):
        slow = self.start_origin(delay=1.0)
        proxy = self.start_sluice(config(["127.0.0.1:%d" % slow.port],
                                         "    circuit_breakers: {max_requests: 2}"))
        busy = [self.client(proxy.port) for _ in range(2)]
        for c in busy:
            c.send(b"GET /hold HTTP/1.1\r\nHost: a\r\n\r\n")
        time.sleep(0.3)
        c = self.client(proxy.port)
        started = time.monotonic()
        c.send(b"GET /third HTTP/1.1\r\nHost: a\r\n\r\n")
        status, headers, _ = c.read_response()
        self.assertEqual(status, 503)
        self.assertEqual(headers.get("retry-after"), ["1"])
        self.assertLess(time.monotonic() - started, 0.5)
        self.assertTrue(proxy.wait_for_log("circuit breaker: too many requests in flight"))
        for b in busy:
            self.assertEqual(b.read_response()[0], 200)


class HealthChecks(ProxyTestCase):
    def test_failing_health_check_takes_an_endpoint_out_and_back(self):
        a = self.start_origin(name="a")
        b = self.start_origin(name="b")
        proxy = self.start_sluice(config(
            ["127.0.0.1:%d" % a.port, "127.0.0.1:%d" % b.port],
            "    health_check: {path: /health, interval: 100ms, timeout: 50ms, rise: 1, fall: 2}\n"
            "    panic_threshold: 0"))
        b.health_status = 500
        self.assertTrue(proxy.wait_for_log("127.0.0.1:%d fails its health check" % b.port))
        time.sleep(0.1)
        before = len(b.received())
        c = self.client(proxy.port)
        for _ in range(10):
            c.send(b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
            self.assertEqual(c.read_response()[1]["x-origin"], ["a"])
        self.assertEqual(len([r for r in b.received()[before:] if r.target == "/x"]), 0)
        b.health_status = 200
        self.assertTrue(proxy.wait_for_log("127.0.0.1:%d is healthy again" % b.port))
        time.sleep(0.1)
        seen = set()
        for _ in range(10):
            c.send(b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
            seen.add(c.read_response()[1]["x-origin"][0])
        self.assertEqual(seen, {"a", "b"})

    def test_health_checks_speak_tls_to_a_tls_cluster(self):
        pki = Pki()
        self.addCleanup(pki.cleanup)
        pki.ca()
        cert, key = pki.leaf("origin")

        class Health(http.server.BaseHTTPRequestHandler):
            status = 200

            def do_GET(self):
                self.send_response(Health.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Health)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.addCleanup(server.server_close)
        self.addCleanup(server.shutdown)
        port = server.server_address[1]
        proxy = self.start_sluice(config(
            ["127.0.0.1:%d" % port],
            "    tls: {ca_file: %s}\n"
            "    health_check: {path: /health, interval: 200ms, timeout: 150ms, rise: 1, fall: 2}"
            % pki.path("ca.crt")))
        # The check reads the status over TLS: a 503 is a status, not a broken exchange.
        Health.status = 503
        self.assertTrue(proxy.wait_for_log(re.escape(
            "127.0.0.1:%d fails its health check (status other than 2xx)" % port)),
            proxy.log_text())
        Health.status = 200
        self.assertTrue(proxy.wait_for_log("127.0.0.1:%d is healthy again" % port))


@unittest.skipIf(SANITIZED, "shares of traffic over time")
class Standby(ProxyTestCase):
    def test_standby_joins_within_a_second_of_injection_and_ramps_up(self):
        main = self.start_origin(name="main")
        spare = self.start_origin(name="spare")
        endpoints = ["127.0.0.1:%d" % main.port,
                     "{address: 127.0.0.1:%d, standby: true}" % spare.port]
        proxy = self.start_sluice(config(endpoints, "    slow_start: 3s").replace(
            "round_robin", "least_outstanding"))
        self.assertEqual(set(load(proxy.port, 0.5, 2)), {200})
        self.assertEqual(len(spare.received()), 0)  # a standby takes nothing
        proxy.write_config(config(endpoints, "    slow_start: 3s\n    inject_standby: true")
                           .replace("round_robin", "least_outstanding")
                           .replace("{port}", str(proxy.port)))
        proxy.signal(signal.SIGHUP)
        injected = time.monotonic()
        self.assertTrue(proxy.wait_for_log("configuration reloaded"))
        shares = []
        for _ in range(3):  # three one-second windows of the slow start
            main_before, spare_before = len(main.received()), len(spare.received())
            load(proxy.port, 1.0, 2)
            m = len(main.received()) - main_before
            s = len(spare.received()) - spare_before
            shares.append(s / max(m + s, 1))
        first_spare = spare.received()[0] if spare.received() else None
        print("\nspare's share per second after injection: %s" % ", ".join("%.2f" % x for x in shares))
        self.assertIsNotNone(first_spare)
        self.assertLess(time.monotonic() - injected, 5)
        self.assertGreater(shares[0], 0)     # traffic within the first second
        self.assertLess(shares[0], 0.35)     # but only a slice of it
        self.assertGreater(shares[2], shares[0])  # rising as the slow start goes on


class Names(ProxyTestCase):
    def test_endpoint_by_host_name(self):
        origin = self.start_origin()
        proxy = self.start_sluice(config(["localhost:%d" % origin.port],
                                         "    outlier_detection: {consecutive_failures: 1}",
                                         RETRY))
        self.assertTrue(proxy.wait_for_log(r"localhost resolves to \d+ addresses"))
        c = self.client(proxy.port)
        for _ in range(5):  # localhost may also mean ::1, where nothing listens: retried
            c.send(b"GET /named HTTP/1.1\r\nHost: a\r\n\r\n")
            self.assertEqual(c.read_response()[0], 200)
        self.assertGreaterEqual(len(origin.received()), 5)

    def test_unresolvable_name_answers_502_and_is_logged(self):
        proxy = self.start_sluice(config(["no-such-host.invalid:80"]))
        self.assertTrue(proxy.wait_for_log("resolving no-such-host.invalid failed"))
        c = self.client(proxy.port)
        c.send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        self.assertEqual(c.read_response()[0], 503)


if __name__ == "__main__":
    unittest.main()

"""sluice_drill_load --dns: the drill's clients find the edge through a real authoritative DNS
server (knot, tests/sluicetest/knot.py), on a tiny load against two HTTP servers on 127.0.0.11
and 127.0.0.12 (one port).

- a region whose home address is in the answer connects there; one whose home is not spreads
  over the answer; after a record is deleted (a signed update), the region whose home it was
  moves to the other address once the TTL ran out;
- with no DNS server answering, every request fails with outcome dns, and the run still ends
  in time with every request accounted for.
"""
import collections
import os
import socket
import subprocess
import sys
import time
import unittest

from sluicetest.knot import Knot, missing
from sluicetest.process import SLUICE_BIN, Process, free_port, wait_until

LOAD = os.path.join(os.path.dirname(os.path.dirname(SLUICE_BIN)), "bench/sluice_drill_load")
HOMES = {"r11": "127.0.0.11", "r12": "127.0.0.12", "r13": "127.0.0.13"}


def answers(ip, port):
    try:
        with socket.create_connection((ip, port), 0.5):
            return True
    except OSError:
        return False


@unittest.skipIf(missing(), missing() or "")
class DrillLoadDns(unittest.TestCase):
    def load(self, dns, port, duration, on_line=None, timeout=2):
        """Runs the load; returns (exit status, stderr, {(second, entry, address): opened},
        {outcome: requests}, the d line's fields). on_line(line, started) is called for each
        line as it comes."""
        cmd = [LOAD, "--rate", "60", "--duration", str(duration), "--timeout", str(timeout),
               "--members", "300", "--post-percent", "0", "--dns", dns,
               "--name", "api.drill.test.", "--port", str(port)]
        for entry, ip in HOMES.items():
            cmd += ["--entry", "%s=%s:%d" % (entry, ip, port)]
        started = time.monotonic()
        opened, outcomes, summary = collections.Counter(), collections.Counter(), None
        with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) as proc:
            self.addCleanup(proc.kill)
            for line in proc.stdout:
                fields = line.strip().split(",")
                if fields[0] == "a":
                    opened[(int(fields[1]), fields[2], fields[3])] += int(fields[4])
                elif fields[0] == "c":
                    outcomes[fields[4]] += int(fields[6])
                elif fields[0] == "d":
                    summary = [int(x) for x in fields[1:]]
                if on_line:
                    on_line(line, started)
            stderr = proc.stderr.read()
            return proc.wait(timeout=30), stderr, opened, outcomes, summary

    def test_regions_connect_home_and_move_after_the_ttl(self):
        knot = Knot(records=[("api", "A", "127.0.0.11"), ("api", "A", "127.0.0.12")], ttl=1)
        self.addCleanup(knot.cleanup)
        knot.start()
        port = free_port()
        for ip in ("127.0.0.11", "127.0.0.12"):
            server = Process([sys.executable, "-m", "http.server", "-b", ip, str(port)],
                             os.path.join(knot.dir, "http-%s.log" % ip)).start()
            self.addCleanup(server.stop)
            self.assertTrue(wait_until(lambda: answers(ip, port), 10), ip)
        updated = []  # seconds into the load when the update was applied

        def delete_home_of_r11(line, started):
            # The first state line comes one second into the load (it may say second -1: the
            # loop's clock is in milliseconds).
            if line.startswith("s,") and not updated:
                ok, output = knot.update(["del api A 127.0.0.11"])
                self.assertTrue(ok, output)
                updated.append(time.monotonic() - started)
        rc, stderr, opened, outcomes, summary = self.load(knot.address, port, 6,
                                                          delete_home_of_r11)
        self.assertEqual(rc, 0, stderr)
        self.assertEqual(set(outcomes), {"http_4xx"}, outcomes)  # http.server: 404 for all
        before = {(e, a) for (s, e, a) in opened if s == 0}
        self.assertEqual({a for e, a in before if e == "r11"}, {"127.0.0.11"}, opened)
        self.assertEqual({a for (s, e, a) in opened if e == "r12"}, {"127.0.0.12"}, opened)
        self.assertEqual({a for e, a in before if e == "r13"}, {"127.0.0.11", "127.0.0.12"})
        # The TTL (1 s) after the update, and a second for the next query and slack.
        moved = int(updated[0] + 2) + 1
        after = {(e, a) for (s, e, a) in opened if s >= moved}
        self.assertTrue(after, "the update came too late to check: %.1f s" % updated[0])
        self.assertEqual({a for e, a in after}, {"127.0.0.12"}, opened)
        lookups, failed = summary
        self.assertEqual(failed, 0)
        self.assertGreaterEqual(lookups, 3)  # at least once per TTL
        self.assertLessEqual(lookups, 12)

    def test_no_dns_answer_fails_requests_as_dns(self):
        dead = "127.0.0.1:%d" % free_port()  # nothing listens (UDP)
        begun = time.monotonic()
        # The lookup fails after 2 x 1 s, before the requests waiting for it time out.
        rc, stderr, opened, outcomes, summary = self.load(dead, free_port(), 1, timeout=3)
        self.assertEqual(rc, 0, stderr)
        self.assertLess(time.monotonic() - begun, 10)
        self.assertEqual(opened, {})
        self.assertEqual(set(outcomes), {"dns"}, outcomes)
        self.assertGreaterEqual(sum(outcomes.values()), 55)
        self.assertGreaterEqual(summary[1], 1)
        self.assertIn("no answer", stderr)


if __name__ == "__main__":
    unittest.main()

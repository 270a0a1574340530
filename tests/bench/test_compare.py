"""bench/compare.py starts every proxy, drives each, and prints a table that parses: a tiny run
(--quick), so the suite knows the harness works; the figures themselves come from full runs."""
import math
import os
import re
import subprocess
import sys
import unittest

from sluicetest.process import ROOT, SLUICE_BIN

PROXIES = ("nginx", "haproxy", "nghttpx", "sluice", "sluice-full")


class CompareSmoke(unittest.TestCase):
    def test_quick_run_prints_a_full_table(self):
        result = subprocess.run([sys.executable, os.path.join(ROOT, "bench/compare.py"),
                                 "--quick", "--sluice", SLUICE_BIN],
                                capture_output=True, text=True, timeout=400,
                                stdin=subprocess.DEVNULL)
        self.assertEqual(result.returncode, 0, result.stdout[-3000:] + result.stderr[-3000:])
        rows = {}
        for line in result.stdout.splitlines():
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if len(cells) == 17 and cells[0] in PROXIES + ("origin",):
                rows[cells[0]] = cells
        self.assertEqual(set(rows), set(PROXIES) | {"origin"}, result.stdout)
        for name in PROXIES:
            rps, vs_nginx, p99, cpu, instr, h2 = (rows[name][1], rows[name][2], rows[name][5],
                                                  rows[name][6], rows[name][8], rows[name][12])
            self.assertGreater(float(rps), 0, name)
            self.assertGreater(float(vs_nginx), 0, name)
            self.assertGreater(float(p99), 0, name)
            self.assertGreater(float(cpu), 0, name)
            self.assertGreater(float(h2), 0, name)
            # callgrind's user-space instructions per request: a proxy spends thousands.
            self.assertGreater(float(instr), 1000, name)
        # The line for machines: every row's instructions and idle memory.
        line = re.search(r"^compare: (.*)$", result.stdout, re.M)
        self.assertIsNotNone(line, result.stdout)
        fields = dict(kv.split("=") for kv in line.group(1).split())
        for key in ("nginx", "haproxy", "nghttpx", "sluice", "full"):
            self.assertGreater(float(fields[key + "_instr"]), 1000, line.group(0))
            self.assertIn(key + "_idle_kib", fields)
            self.assertIn(key + "_upstream_idle_kib", fields)
            self.assertIn(key + "_allocs", fields)
            # Full TLS handshakes cost hundreds of microseconds of CPU, never nothing.
            self.assertGreater(float(fields[key + "_handshake_us"]), 10, line.group(0))
        # sluice's idle figures also in live heap bytes, read from its /metrics (nan when the
        # count is missing; the quick run's few hundred connections make the value itself
        # rough, see idle_memory).
        for key in ("sluice", "full"):
            for field in ("_idle_heap_kib", "_upstream_idle_heap_kib"):
                self.assertFalse(math.isnan(float(fields[key + field])), line.group(0))
        # The plain path allocates nothing per request: what the runs' difference holds is the
        # control thread's periodic work (one allocation per request would show as 1.0).
        self.assertLess(float(fields["sluice_allocs"]), 0.1, line.group(0))
        self.assertEqual(int(fields["idle_connections"]), 200, line.group(0))
        self.assertGreater(int(fields["upstream_idle_connections"]), 1, line.group(0))
        # Every request went through the chain and the steering decision; none was refused.
        counted = re.search(r"^sluice-full counted: (.*)$", result.stdout, re.M).group(1)
        self.assertRegex(counted, r'steering_requests\{outcome="local",region=""\} [1-9]')
        for line in re.findall(r'rejected_requests\{[^}]*\} \d+', counted):
            self.assertTrue(line.endswith(" 0"), line)
        # Upstream keep-alive held: far fewer origin connections than requests.
        requests = int(re.search(r'steering_requests\{outcome="local",region=""\} (\d+)',
                                 counted).group(1))
        opened = int(re.search(r'upstream_connections\{cluster="origin"\} (\d+)', counted).group(1))
        self.assertGreaterEqual(opened, 1, counted)
        self.assertLess(opened, requests / 10, counted)
        self.assertNotIn("FAILED", result.stdout)
        self.assertNotIn("ERRORS", result.stdout)


if __name__ == "__main__":
    unittest.main()

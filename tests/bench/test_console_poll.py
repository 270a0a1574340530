"""bench/console_poll.py on a tiny run: it starts etcd and three nodes, loads history, measures
the console's refreshes and charts, and ends with its machine-readable line (checked here, not
its figures: a smoke run on a loaded machine measures nothing)."""
import os
import re
import subprocess
import sys
import unittest

from sluicetest.process import ROOT, SLUICE_BIN

LAST_LINE = re.compile(
    r"^console_poll: polls=(\d+) cpu_us_per_poll=(\d+) chart_1h_cpu_us=(\d+) "
    r"chart_24h_cpu_us=(\d+) page_bytes=(\d+) page_ms=(\d+\.\d)$")


class ConsolePollSmoke(unittest.TestCase):
    def test_tiny_run_prints_its_line(self):
        result = subprocess.run(
            [sys.executable, os.path.join(ROOT, "bench/console_poll.py"), "--polls", "5",
             "--charts", "2", "--idle", "0.2", "--sluice", SLUICE_BIN],
            capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
            env=dict(os.environ, PYTHONPATH=os.pathsep.join(
                [os.path.join(ROOT, "tests"), os.path.join(ROOT, "bench")])))
        report = result.stdout[-4000:] + result.stderr[-3000:]
        self.assertEqual(result.returncode, 0, report)
        last = result.stdout.strip().splitlines()[-1]
        m = LAST_LINE.match(last)
        self.assertIsNotNone(m, report)
        self.assertEqual(int(m.group(1)), 5)
        # The page's three files, and nothing of a chart library: under the 300 KB target.
        self.assertGreater(int(m.group(5)), 10000)
        self.assertLess(int(m.group(5)), 300 * 1024)
        self.assertIn("per request (us of the control thread): /v1/steering=", report)


if __name__ == "__main__":
    unittest.main()

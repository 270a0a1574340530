"""bench/drill.py runs the three-region failover drill end to end on a tiny load (--quick):
etcd, three sluice processes, six origins, the origins of one region killed, an evacuation by
sluicectl. The run must meet its own targets (no failed GET, POST failures within 0.1%, the
ramp at 100% in time) and leave a CSV and a PNG that parse."""
import csv
import os
import subprocess
import sys
import tempfile
import unittest

from sluicetest.process import ROOT, SLUICE_BIN

BUILD = os.path.dirname(os.path.dirname(SLUICE_BIN))


class DrillSmoke(unittest.TestCase):
    def test_quick_drill_meets_its_targets(self):
        out = tempfile.mkdtemp(prefix="sluice-drill-test-")
        result = subprocess.run(
            [sys.executable, os.path.join(ROOT, "bench/drill.py"), "--quick", "--out", out,
             "--sluice", os.path.join(BUILD, "proxy/sluice"),
             "--sluicectl", os.path.join(BUILD, "ctl/sluicectl"),
             "--load", os.path.join(BUILD, "bench/sluice_drill_load")],
            capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
        self.assertEqual(result.returncode, 0, result.stdout[-4000:] + result.stderr[-3000:])
        self.assertIn("targets met", result.stdout)
        self.assertRegex(result.stdout, r"us-east-1 origins killed")
        # Between the kill and the ramp, us-east-1's own requests found its origins dead and
        # were failed over (a drill whose origins outlived the kill shows none).
        self.assertRegex(result.stdout, r"failovers to a savior: [1-9]")
        with open(os.path.join(out, "drill.csv")) as f:
            rows = list(csv.DictReader(f))
        self.assertGreaterEqual(len(rows), 6)
        self.assertEqual(sum(int(r["get_failed"]) for r in rows), 0)
        # Before the kill us-east-1 served its own starts; by the end its members were served by
        # the two other regions, and the table said 100%.
        self.assertGreater(sum(int(r["starts_us-east-1"]) for r in rows[:3]), 0)
        last = rows[-2]
        self.assertEqual(int(last["starts_us-east-1"]), 0, rows)
        self.assertEqual(float(rows[-1]["evacuated_pct"]), 100.0)
        with open(os.path.join(out, "drill.png"), "rb") as f:
            self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")
        for name in ("drill.csv", "drill.png"):
            os.unlink(os.path.join(out, name))
        os.rmdir(out)


if __name__ == "__main__":
    unittest.main()

"""bench/capacity.py runs the savior capacity bench end to end on a short run (--quick): etcd,
three sluice nodes in a fleet, nine capacity-limited nginx origins (a hot standby per node), a
steady load, and us-east-1 evacuated twice, with equal fixed weights and with "saviors": "auto".

The run must meet its own quick targets (exit 0) and end with one machine-readable line, checked
here: the preview's prediction of each savior's load within 15% at the last step, nothing shed
and no savior past its capacity with auto, the smaller savior past its capacity with equal
weights, a second evacuation refused with 409; and the CSV it writes with --out must hold every
step of both runs."""
import csv
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

from sluicetest.process import ROOT, SLUICE_BIN

BUILD = os.path.dirname(os.path.dirname(SLUICE_BIN))
NUMBER = r"(\d+(?:\.\d+)?|-)"
LAST_LINE = re.compile(
    r"^capacity: preview_error_pct=(?P<preview_error_pct>%(n)s) "
    r"shed_pct_auto=(?P<shed_pct_auto>%(n)s) shed_pct_fixed=(?P<shed_pct_fixed>%(n)s) "
    r"max_util_auto=(?P<max_util_auto>%(n)s) max_util_fixed=(?P<max_util_fixed>%(n)s) "
    r"second_evacuation=(?P<second_evacuation>\d+|-)$" % {"n": NUMBER})


class CapacityBenchSmoke(unittest.TestCase):
    def test_quick_capacity_run_meets_its_targets(self):
        out = tempfile.mkdtemp(prefix="sluice-capacity-test-")
        self.addCleanup(shutil.rmtree, out, ignore_errors=True)
        result = subprocess.run(
            [sys.executable, os.path.join(ROOT, "bench/capacity.py"), "--quick", "--out", out,
             "--sluice", os.path.join(BUILD, "proxy/sluice"),
             "--sluicectl", os.path.join(BUILD, "ctl/sluicectl"),
             "--load", os.path.join(BUILD, "bench/sluice_drill_load")],
            capture_output=True, text=True, timeout=420, stdin=subprocess.DEVNULL)
        report = result.stdout[-8000:] + result.stderr[-3000:]
        last = LAST_LINE.match(result.stdout.rstrip("\n").split("\n")[-1])
        self.assertIsNotNone(last, report)
        self.assertEqual(result.returncode, 0, report)
        self.assertIn("targets met", result.stdout)
        v = {k: None if x == "-" else float(x) for k, x in last.groupdict().items()}
        self.assertNotIn(None, v.values(), report)
        self.assertLessEqual(v["preview_error_pct"], 15.0, report)
        # auto: the split by capacity keeps both saviors within it, and nothing is shed.
        self.assertLessEqual(v["shed_pct_auto"], 1.0, report)
        self.assertLessEqual(v["max_util_auto"], 1.0, report)
        # equal weights: the smaller savior past its capacity, shedding.
        self.assertGreater(v["max_util_fixed"], 1.0, report)
        self.assertGreater(v["shed_pct_fixed"], v["shed_pct_auto"], report)
        self.assertEqual(v["second_evacuation"], 409, report)
        self.assertRegex(result.stdout, r"fixed: refused without force: 409 .*past its capacity")

        with open(os.path.join(out, "capacity.csv")) as f:
            rows = list(csv.DictReader(f))
        for run in ("fixed", "auto"):
            steps = {float(r["step"]) for r in rows if r["run"] == run}
            self.assertEqual(steps, {10.0, 50.0, 100.0}, rows)
        last_auto = [r for r in rows if r["run"] == "auto" and float(r["step"]) == 100.0]
        self.assertEqual(len(last_auto), 2, rows)
        for r in last_auto:
            self.assertLessEqual(float(r["utilization"]), 1.0, r)
            self.assertLessEqual(float(r["shed_pct"]), 1.0, r)
        with open(os.path.join(out, "capacity.txt")) as f:
            self.assertEqual(f.read().rstrip("\n").split("\n")[-1], last.group(0))


if __name__ == "__main__":
    unittest.main()

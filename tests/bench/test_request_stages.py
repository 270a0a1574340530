"""bench/request_stages.py on tiny counts: every stage benchmark runs under callgrind, the
whole request is counted through a real sluice, and the breakdown and its two lines parse.
The figures come from full runs; here only that each is there and sensible."""
import os
import re
import shutil
import subprocess
import sys
import unittest

from sluicetest.process import ROOT, SLUICE_BIN

BENCH = os.path.join(os.path.dirname(os.path.dirname(SLUICE_BIN)), "bench/sluice_bench")
STAGES = ("parse", "normalise", "route", "filters", "steering", "serialise")


@unittest.skipUnless(shutil.which("valgrind"), "valgrind is not installed")
class RequestStagesSmoke(unittest.TestCase):
    def test_quick_run_prints_every_stage(self):
        result = subprocess.run([sys.executable, os.path.join(ROOT, "bench/request_stages.py"),
                                 "--quick", "--sluice", SLUICE_BIN, "--bench", BENCH],
                                capture_output=True, text=True, timeout=500,
                                stdin=subprocess.DEVNULL)
        self.assertEqual(result.returncode, 0, result.stdout[-3000:] + result.stderr[-3000:])
        for prefix in ("stages", "stages_default"):
            line = re.search(r"^%s: (.*)$" % prefix, result.stdout, re.M)
            self.assertIsNotNone(line, result.stdout)
            fields = dict(kv.split("=") for kv in line.group(1).split())
            self.assertEqual(list(fields), list(STAGES) + ["sum", "whole", "ratio"])
            values = {k: float(v) for k, v in fields.items()}
            for stage in ("parse", "normalise", "route", "serialise"):
                self.assertGreater(values[stage], 0, line.group(0))
            self.assertAlmostEqual(sum(values[s] for s in STAGES), values["sum"], delta=6)
            # The stages are part of a request, never more than all of it.
            self.assertGreater(values["whole"], values["sum"], line.group(0))
            self.assertGreater(values["ratio"], 0.02, line.group(0))
            self.assertLess(values["ratio"], 1, line.group(0))
        full = dict(kv.split("=") for kv in re.search(r"^stages: (.*)$", result.stdout,
                                                       re.M).group(1).split())
        default = dict(kv.split("=") for kv in re.search(
            r"^stages_default: (.*)$", result.stdout, re.M).group(1).split())
        # The full chain (a token verified, shedding, a rate limit) costs more than none, and
        # steering is only decided with regions configured.
        self.assertGreater(float(full["filters"]), float(default["filters"]))
        self.assertGreater(float(full["steering"]), 0)
        self.assertEqual(float(default["steering"]), 0)


if __name__ == "__main__":
    unittest.main()

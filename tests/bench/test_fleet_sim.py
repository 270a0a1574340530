"""bench/fleet_sim.py on a tiny fleet: 12 simulated nodes (sluice_fleet_sim, real sluice::Fleet
objects) against one etcd. The figures come from full runs; here only that every phase runs and
its line parses: every change reached every node, and a leader's death was taken over within
its lease."""
import os
import re
import json
import shutil
import subprocess
import sys
import tempfile
import unittest

from sluicetest.etcd import ETCD_BIN
from sluicetest.process import ROOT, SLUICE_BIN

SIM = os.environ.get("FLEET_SIM_BIN", os.path.join(os.path.dirname(os.path.dirname(SLUICE_BIN)),
                                                   "bench/sluice_fleet_sim"))
LEASE_TTL = 5


@unittest.skipUnless(os.path.exists(ETCD_BIN), "etcd is not installed")
class FleetSimSmoke(unittest.TestCase):
    def test_small_fleet_runs_every_phase(self):
        work = tempfile.mkdtemp(prefix="sluice-fleet-sim-test-")
        self.addCleanup(shutil.rmtree, work, ignore_errors=True)
        rows_file = os.path.join(work, "rows.json")
        result = subprocess.run([sys.executable, os.path.join(ROOT, "bench/fleet_sim.py"),
                                 "--sim", SIM, "--sizes", "12", "--changes", "3", "--settle", "2",
                                 "--lease-ttl", str(LEASE_TTL), "--json", rows_file],
                                capture_output=True, text=True, timeout=120,
                                stdin=subprocess.DEVNULL)
        output = result.stdout[-3000:] + result.stderr[-3000:]
        self.assertEqual(result.returncode, 0, output)
        last = result.stdout.strip().splitlines()[-1]
        self.assertRegex(last, r"^fleet: ", output)
        fields = dict(kv.split("=", 1) for kv in last[len("fleet: "):].split())
        self.assertEqual(fields["nodes"], "12", last)
        self.assertEqual(fields["api"], "grpc", last)
        self.assertGreater(float(fields["full_ms"]), 0, last)
        self.assertGreaterEqual(float(fields["full_ms"]), float(fields["p99_ms"]), last)
        self.assertEqual(fields["missing"], "0", last)
        self.assertGreater(float(fields["node_rx_bytes_per_s"]), 0, last)
        # An abrupt death: the lease must expire (up to its TTL after the last keep-alive), then
        # another node campaigns within a publish interval or so.
        failover = float(fields["failover_s"])
        self.assertGreater(failover, 0, last)
        self.assertLess(failover, LEASE_TTL + 3, last)
        self.assertEqual(fields["retries"], "0", last)
        # Where the failover's time went: the lease had at most its TTL left when the leader
        # died (counted from its last keep-alive sent), etcd cannot have deleted the key before
        # that, and the first node saw the deletion no later than the new leader led (the
        # simulator looks every 2 ms).
        with open(rows_file) as f:
            row = json.load(f)[0]
        self.assertLessEqual(row["failover_lease_left_s"], LEASE_TTL, row)
        self.assertGreaterEqual(row["failover_seen_s"], row["failover_lease_left_s"] - 0.05, row)
        self.assertLessEqual(row["failover_seen_s"], row["failover_s"] + 0.05, row)
        self.assertEqual(row["write_errors"], [], row)
        self.assertEqual(len(row["failover_standbys"]), 1, row)
        # The table has a row for the size, with etcd's side measured.
        self.assertIsNotNone(re.search(r"^\s+12\s", result.stdout, re.M), result.stdout)


if __name__ == "__main__":
    unittest.main()

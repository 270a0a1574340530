"""bench/handshakes.py on a small storm (--quick): a few hundred clients primed on one sluice move
to a savior sluice that serves steady traffic, once with shared ticket keys and once without,
after the full and resumed handshakes are measured against sluice and nginx. The figures come
from full runs; here only that every part runs, its line parses, and that with shared keys the
clients really resume on the other process (and without them, they cannot)."""
import os
import re
import shutil
import subprocess
import sys
import unittest

from sluicetest.process import ROOT, SLUICE_BIN

STORM_BIN = os.environ.get("HANDSHAKE_STORM_BIN",
                           os.path.join(os.path.dirname(os.path.dirname(SLUICE_BIN)),
                                        "bench/sluice_handshake_storm"))


@unittest.skipUnless(shutil.which("h2load") and shutil.which("nginx"),
                     "h2load or nginx is not installed")
class HandshakesSmoke(unittest.TestCase):
    def test_quick_storm_resumes_with_shared_keys(self):
        result = subprocess.run([sys.executable, os.path.join(ROOT, "bench/handshakes.py"),
                                 "--quick", "--sluice", SLUICE_BIN, "--storm-tool", STORM_BIN],
                                capture_output=True, text=True, timeout=240,
                                stdin=subprocess.DEVNULL)
        output = result.stdout[-4000:] + result.stderr[-3000:]
        self.assertEqual(result.returncode, 0, output)
        last = result.stdout.strip().splitlines()[-1]
        self.assertRegex(last, r"^handshakes: ", output)
        fields = dict(kv.split("=", 1) for kv in last[len("handshakes: "):].split())
        self.assertEqual(set(fields), {"full_us", "nginx_full_us", "resume_us", "storm_clients",
                                       "storm_p99_ratio", "storm_errors", "resumed_pct"}, last)
        for name in ("full_us", "nginx_full_us", "resume_us"):
            self.assertGreater(float(fields[name]), 0, last)
        self.assertGreater(int(fields["storm_clients"]), 0, last)
        self.assertGreater(float(fields["storm_p99_ratio"]), 0, last)
        self.assertGreaterEqual(int(fields["storm_errors"]), 0, last)
        # Shared keys: a ticket from the evacuated sluice opens a session on the savior.
        self.assertGreater(float(fields["resumed_pct"]), 0, last)
        # The table's rows: with shared keys most clients resume, with their own keys none can.
        rows = {m.group(1): m.group(2).split() for m in
                re.finditer(r"^\s+(shared|own)\s+(.*)$", result.stdout, re.M)}
        self.assertEqual(set(rows), {"shared", "own"}, result.stdout)
        # Columns after the keys: clients ok errors resumed full resumed% ...
        self.assertGreater(int(rows["shared"][3]), 0, rows)
        self.assertEqual(int(rows["own"][3]), 0, rows)
        self.assertGreater(int(rows["own"][4]), 0, rows)


if __name__ == "__main__":
    unittest.main()

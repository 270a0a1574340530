"""The DNS test harness itself (tests/sluicetest/knot.py): a real knotd on loopback serves the
records it was given over UDP and TCP, applies a TSIG-signed dynamic update at once, and
refuses an update signed with a wrong key, or any update when the zone allows none.
"""

import base64
import os
import unittest

from sluicetest.knot import Knot, missing

RECORDS = [("api", "A", "127.0.0.11"), ("api", "A", "127.0.0.12"),
           ("www", "CNAME", "api"), ("txt", "TXT", '"hello world"')]


@unittest.skipIf(missing(), missing() or "")
class KnotHarnessTest(unittest.TestCase):
    def start(self, **kwargs):
        knot = Knot(records=RECORDS, ttl=2, **kwargs)
        self.addCleanup(knot.cleanup)
        return knot.start()

    def test_serves_the_records_over_udp_and_tcp(self):
        knot = self.start()
        for tcp in (True, False):
            self.assertEqual(knot.query("api", tcp=tcp), ["127.0.0.11", "127.0.0.12"])
        self.assertEqual(knot.query("api.drill.test.", "A"), ["127.0.0.11", "127.0.0.12"])
        self.assertEqual(knot.query("www", "CNAME"), ["api.drill.test."])
        self.assertEqual(knot.query("txt", "TXT"), ['"hello world"'])
        self.assertEqual(knot.query("nothing-here"), [])
        self.assertEqual(knot.serial(), 1)
        with open(knot.key_file) as f:
            self.assertIn('secret "%s";' % knot.secret, f.read())
        self.assertEqual(len(base64.b64decode(knot.secret)), 32)

    def test_signed_update_is_applied_at_once_and_kept_over_a_restart(self):
        knot = self.start()
        ok, output = knot.update(["del api A 127.0.0.11", "add api 2 A 127.0.0.13"])
        self.assertTrue(ok, output)
        self.assertEqual(knot.query("api"), ["127.0.0.12", "127.0.0.13"])
        self.assertEqual(knot.serial(), 2)
        knot.restart()
        self.assertEqual(knot.query("api"), ["127.0.0.12", "127.0.0.13"])
        # The zone file is as it was written: the update lives in the journal.
        with open(knot.path("zone.db")) as f:
            self.assertIn("127.0.0.11", f.read())

    def test_update_with_a_wrong_key_is_refused(self):
        knot = self.start()
        wrong = "hmac-sha256:%s:%s" % (knot.key_name, base64.b64encode(os.urandom(32)).decode())
        ok, output = knot.update(["del api A 127.0.0.11"], key_spec=wrong)
        self.assertFalse(ok)
        self.assertIn("BADSIG", output)
        self.assertEqual(knot.query("api"), ["127.0.0.11", "127.0.0.12"])
        self.assertEqual(knot.serial(), 1)

    def test_zone_without_updates_refuses_even_the_right_key(self):
        knot = self.start(allow_update=False)
        ok, output = knot.update(["del api A 127.0.0.11"])
        self.assertFalse(ok, output)
        self.assertEqual(knot.query("api"), ["127.0.0.11", "127.0.0.12"])


if __name__ == "__main__":
    unittest.main()

"""Cohorts from a CIDR file end to end: three sluice processes as three regions on loopback.
us-east-1 evacuates all its members, its latam cohort to us-west-2 and everyone else to
eu-west-1; the cohort comes from a CIDR file matched against the client address (each client
connects from its own loopback address). The file is rewritten while sluice runs: the new
mapping is in force without a restart, and a bad file or an unknown cohort leaves the old one.
"""

import http.client
import os
import shutil
import signal
import tempfile
import unittest

from harness import ProxyTestCase
from sluicetest.process import free_port
from sluicetest.secret_files import write_secrets

EAST, WEST, EU = "us-east-1", "us-west-2", "eu-west-1"
KEY = "3f9c1a7e5b2d4f6081a3c5e7092b4d6f8a1c3e5f7092b4d6f8a1c3e5f7092b4d"
TRUSTED_PROXY = "127.0.0.5"  # proxy.trusted_proxies of us-east-1


def served_by(port, source, headers=None):
    """The region that served one GET made from the loopback address `source`."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10, source_address=(source, 0))
    try:
        conn.request("GET", "/x", headers=dict(headers or {}, **{"x-member-id": source}))
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            return "status %d" % response.status
        return response.getheader("sluice-region")
    finally:
        conn.close()


class CohortCidrFile(ProxyTestCase):
    def setUp(self):
        self.work = tempfile.mkdtemp(prefix="sluice-cohorts-")
        self.addCleanup(shutil.rmtree, self.work, True)
        self.key_file = write_secrets(self.work, (("tunnel.key", KEY),))["tunnel.key"]
        self.cidr_file = os.path.join(self.work, "cohorts.cidr")
        self.replace_file("127.0.0.2/32 latam\n127.0.0.0/8 loopback\n")
        self.ports = {r: free_port() for r in (EAST, WEST, EU)}
        self.origins = {r: self.start_origin(name=r) for r in (EAST, WEST, EU)}
        self.sluices = {}
        for region in (EAST, WEST, EU):
            # us-east-1's configuration sits beside the CIDR file, which it names relatively.
            self.sluices[region] = self.start_sluice(
                self.config(region), port=self.ports[region], name=region,
                directory=self.work if region == EAST else None)

    def replace_file(self, text):
        """Writes the CIDR file the way the README says: a new file moved over the old one."""
        temporary = self.cidr_file + ".new"
        with open(temporary, "w") as f:
            f.write(text)
        os.replace(temporary, self.cidr_file)

    def config(self, local):
        regions = "\n".join("    %s: {tunnel: [127.0.0.1:%d]}" % (r, self.ports[r])
                            for r in (EAST, WEST, EU) if r != EAST)
        # Only us-east-1 reads the file; the others know no cohort (and so have no cohort row).
        cohorts, row = "", ""
        if local == EAST:
            cohorts = "  cohorts:\n    - cidr_file: cohorts.cidr\n"
            row = "      cohorts: {latam: {us-west-2: 100}}\n"
        return """
workers: 2
log_level: debug
listeners: [{address: 127.0.0.1:{port}}]
clusters:
  - name: app
    endpoints: [127.0.0.1:%d]
    connect_timeout: 500ms
    response_timeout: 5s
routes:
  - cluster: app
proxy:
  trusted_proxies: [%s/32]
steering:
  local_region: %s
  misrouted: serve_local
  member_id: [{header: x-member-id}]
%s  tunnel: {insecure: true, key_file: %s, connect_timeout: 300ms}
  regions:
    us-east-1:
      tunnel: [127.0.0.1:%d]
      evacuate: 100%%
      saviors: {eu-west-1: 100}
%s%s
""" % (self.origins[local].port, TRUSTED_PROXY, local, cohorts, self.key_file,
       self.ports[EAST], row, regions)

    def region_of(self, source, headers=None):
        return served_by(self.ports[EAST], source, headers)

    def test_the_client_address_picks_the_cohort_and_a_new_file_takes_effect_live(self):
        self.assertEqual(self.region_of("127.0.0.2"), WEST)  # latam: its own savior row
        self.assertEqual(self.region_of("127.0.0.3"), EU)    # loopback: the default row
        # Behind a trusted proxy: the client it forwarded for. From anyone else the field is
        # the client's own say, and the address counts.
        forwarded = {"x-forwarded-for": "203.0.113.9, 127.0.0.2"}
        self.assertEqual(self.region_of(TRUSTED_PROXY, forwarded), WEST)
        self.assertEqual(self.region_of("127.0.0.3", forwarded), EU)

        # The file changes: 127.0.0.3 is latam now, 127.0.0.2 no longer.
        self.replace_file("# moved\n127.0.0.3/32 latam\n127.0.0.0/8 loopback\n")
        self.wait_for(lambda: self.region_of("127.0.0.3") == WEST and
                      self.region_of("127.0.0.2") == EU, timeout=10,
                      what="127.0.0.3 to be latam after the file changed, 127.0.0.2 no longer")
        self.assertTrue(self.sluices[EAST].wait_for_log(
            r"cohorts reloaded from .*cohorts\.cidr \(2 ranges\)"))

        # A file that does not parse: logged with its line, and the map in use stays.
        self.replace_file("127.0.0.2/32 latam\n127.0.0.0/33 loopback\n")
        self.assertTrue(self.sluices[EAST].wait_for_log(
            r"cohort CIDR file not reloaded, keeping the map in use: .*cohorts\.cidr:2: prefix "
            r"length must be 0\.\.32 for IPv4", timeout=10))
        self.assertEqual(self.region_of("127.0.0.3"), WEST)
        self.assertEqual(self.region_of("127.0.0.2"), EU)

        # A cohort the running configuration does not know: refused until a reload.
        self.replace_file("127.0.0.2/32 emea\n")
        self.assertTrue(self.sluices[EAST].wait_for_log(
            r"cohorts\.cidr:1: cohort \"emea\" is not one the running configuration knows "
            r"\(latam, loopback\); a new cohort takes a configuration reload \(SIGHUP\)",
            timeout=10))
        self.assertEqual(self.region_of("127.0.0.3"), WEST)

        # A configuration reload reads the file again, new cohorts and all: the cohort ids
        # change (emea comes first now), and no worker keeps a map made for the old list.
        self.replace_file("127.0.0.2/32 emea\n127.0.0.3/32 latam\n")
        self.assertTrue(self.sluices[EAST].wait_for_log(
            r"not reloaded.*cohorts\.cidr:1: cohort \"emea\"(.|\n)*not reloaded.*cohorts\.cidr:1: "
            r"cohort \"emea\"", timeout=10))
        self.sluices[EAST].signal(signal.SIGHUP)
        self.assertTrue(self.sluices[EAST].wait_for_log(r"configuration reloaded from", timeout=10))
        self.assertEqual(self.region_of("127.0.0.3"), WEST)  # latam
        self.assertEqual(self.region_of("127.0.0.2"), EU)    # emea: no row of its own

        # A good file again is taken.
        self.replace_file("127.0.0.2/32 latam\n")
        self.wait_for(lambda: self.region_of("127.0.0.2") == WEST and
                      self.region_of("127.0.0.3") == EU, timeout=10,
                      what="127.0.0.2 to be latam again, 127.0.0.3 no longer")
        # Every request above was answered by the origin of the region it names, none by the
        # evacuated one's.
        self.assertEqual(self.origins[EAST].received(), [])


if __name__ == "__main__":
    unittest.main()

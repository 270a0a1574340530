"""Tunnels kept warm: two regions on loopback, each sluice with warm HTTP/2 connections to the
other's before any request, PING-checked while idle, replaced when the peer restarts or stops
answering. (Tunnels at distance, through an emulated WAN, are measured by bench/wan.py.)
"""

import http.client
import re
import shutil
import signal
import tempfile
import unittest

from harness import ProxyTestCase
from sluicetest import admin
from sluicetest.process import free_port
from sluicetest.secret_files import write_secrets

EAST, WEST = "us-east-1", "us-west-2"
KEY = "3f9c1a7e5b2d4f6081a3c5e7092b4d6f8a1c3e5f7092b4d6f8a1c3e5f7092b4d"
WARM = 2
PING_INTERVAL_MS = 300
IDLE_S = 1  # each sluice's downstream idle timeout: the peer's PINGs keep its tunnels open


def tunneled_request(port):
    """A member of us-west-2 entering us-east-1: tunneled home. (status, served-by region)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/x", headers={"x-member-id": "m-1", "x-home-region": WEST})
        response = conn.getresponse()
        response.read()
        return response.status, response.getheader("sluice-region")
    finally:
        conn.close()


class WarmTunnels(ProxyTestCase):
    def setUp(self):
        work = tempfile.mkdtemp(prefix="sluice-tunnels-")
        self.addCleanup(shutil.rmtree, work, True)
        self.key_file = write_secrets(work, (("tunnel.key", KEY),))["tunnel.key"]
        self.ports = {r: free_port() for r in (EAST, WEST)}
        self.origins = {r: self.start_origin(name=r) for r in (EAST, WEST)}
        self.sluices = {r: self.start_region(r) for r in (EAST, WEST)}

    def config(self, local):
        regions = "".join("    %s:\n      tunnel: [127.0.0.1:%d]\n" % (r, self.ports[r])
                          for r in (EAST, WEST))
        return """
workers: 1
log_level: debug
listeners: [{address: 127.0.0.1:{port}}]
clusters:
  - name: app
    endpoints: [127.0.0.1:%d]
routes:
  - cluster: app
proxy:
  trust_client_headers: true
timeouts: {downstream_idle: %ds}
steering:
  local_region: %s
  misrouted: proxy_home
  member_id: [{header: x-member-id}]
  home_region: [{header: x-home-region}]
  tunnel: {insecure: true, key_file: %s, connect_timeout: 300ms, connections: %d,
           warm_connections: %d, ping_interval: %dms}
  regions:
%s""" % (self.origins[local].port, IDLE_S, local, self.key_file, WARM, WARM, PING_INTERVAL_MS,
       regions)

    def start_region(self, region):
        return self.start_sluice(self.config(region), port=self.ports[region])

    def open_connections(self, region):
        return admin.metric(self.sluices[region].admin_port, "sluice_downstream_connections")

    def tunnel_connections_opened(self, region, peer):
        return admin.metric(self.sluices[region].admin_port,
                            'sluice_upstream_connections_total{cluster="region:%s"}' % peer)

    def test_tunnels_are_open_before_the_first_request_and_it_opens_none(self):
        # Each region holds the other's warm connections, and nothing else.
        for region in (EAST, WEST):
            self.wait_for(lambda r=region: self.open_connections(r) == WARM,
                          what="%d warm tunnel connections into %s" % (WARM, region))
        # (More were tried when east started before west listened.)
        opened = self.tunnel_connections_opened(EAST, WEST)
        self.assertGreaterEqual(opened, WARM)
        self.assertEqual(tunneled_request(self.ports[EAST]), (200, WEST))
        self.assertEqual(tunneled_request(self.ports[EAST]), (200, WEST))
        self.assertEqual(self.tunnel_connections_opened(EAST, WEST), opened)
        # Idle, they stay: after five PINGs answered on each (1.5 s, past west's 1 s idle
        # timeout, which PINGs start again), they are the same connections.
        east = self.sluices[EAST]
        self.wait_for(lambda: len(re.findall(r"upstream 127\.0\.0\.1:%d: keep-alive PING "
                                             r"answered" % self.ports[WEST],
                                             east.log_text())) >= 5 * WARM,
                      what="keep-alive PINGs answered")
        self.assertNotIn("no answer to a keep-alive PING", east.log_text())
        self.assertEqual(self.tunnel_connections_opened(EAST, WEST), opened)
        self.assertEqual(self.open_connections(WEST), WARM)

    def test_a_peer_that_restarts_is_warmed_again(self):
        self.wait_for(lambda: self.open_connections(WEST) == WARM, what="warm tunnels into west")
        self.sluices[WEST].stop()
        self.sluices[WEST] = self.start_region(WEST)
        # East connects again by itself (a back-off from 100 ms, doubling while refused).
        self.wait_for(lambda: self.open_connections(WEST) == WARM, timeout=20,
                      what="east's tunnels warm again into the new west")
        opened = self.tunnel_connections_opened(EAST, WEST)
        self.assertEqual(tunneled_request(self.ports[EAST]), (200, WEST))
        self.assertEqual(self.tunnel_connections_opened(EAST, WEST), opened)

    def test_an_unanswered_ping_closes_the_connection_and_another_replaces_it(self):
        self.wait_for(lambda: self.open_connections(WEST) == WARM, what="warm tunnels into west")
        before = self.tunnel_connections_opened(EAST, WEST)
        west = self.sluices[WEST]
        west.signal(signal.SIGSTOP)  # alive to TCP, silent to HTTP/2
        try:
            self.assertTrue(self.sluices[EAST].wait_for_log(
                r"no answer to a keep-alive PING", timeout=10),
                "east never gave up on a silent peer:\n" + self.sluices[EAST].log_text()[-3000:])
        finally:
            west.signal(signal.SIGCONT)
        # (Each connection has its own PING timer: at least one gave up while west was stopped.)
        self.wait_for(lambda: self.tunnel_connections_opened(EAST, WEST) >= before + 1,
                      timeout=20, what="east's replacement connections")
        self.wait_for(lambda: self.open_connections(WEST) == WARM, timeout=20,
                      what="only the replacements open into west")
        self.assertEqual(tunneled_request(self.ports[EAST]), (200, WEST))


if __name__ == "__main__":
    unittest.main()

"""Session ticket keys shared beyond one process, end to end with real TLS clients (Python's ssl
module offering the ticket it got):

- fleet.ticket_keys with share: fleet: a client that got its ticket in one region resumes on
  every other region's node (a savior after an evacuation); the keys rotate ahead of use, and
  a rotated key still opens tickets; a document in etcd that does not open is ignored by every
  node (they keep their keys, the leader does not overwrite it) until someone deletes it;
- share: region: a second node of the region resumes the region's clients, another region does
  not;
- without a fleet, ticket_key_files shared by two processes: either resumes the other's
  clients; a reload with a new file keeps the old key for the old tickets.
"""

import base64
import json
import os
import shutil
import signal
import socket
import ssl
import tempfile

from harness import ProxyTestCase
from sluicetest import admin
from sluicetest.certs import Pki
from sluicetest.process import Sluice, free_port
from sluicetest.secret_files import write_secrets
from test_fleet import REGIONS, FleetTestCase

SEAL_KEY = "9a" * 32
PREFIX = "/sluice/test/"


def client_context():
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def tls_get(port, context, session=None):
    """One HTTP/1.1 request over TLS to 127.0.0.1:port offering `session`: (the session it
    ends with, whether it resumed the one offered)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="localhost", session=session) as conn:
            conn.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            while conn.recv(65536):  # to the end: the ticket comes after the handshake
                pass
            return conn.session, conn.session_reused


def resumes(first_port, second_port):
    """Whether a client with the ticket `first_port` gave resumes on `second_port`."""
    context = client_context()
    session, _ = tls_get(first_port, context)
    _, reused = tls_get(second_port, context, session)
    return reused


class TicketKeysTestCase(FleetTestCase):
    SHARE = "fleet"
    ROTATION = "1h"

    def setUp(self):
        super().setUp()
        os.makedirs(os.path.join(self.dir, "pki"))
        pki = Pki(os.path.join(self.dir, "pki"))
        self.cert, self.key = pki.self_signed("edge")
        os.chmod(self.key, 0o600)
        write_secrets(self.dir, (("seal.key", SEAL_KEY),))
        self.tls_ports = {r: free_port() for r in REGIONS}

    def config(self, local, regions=REGIONS, suffix="", tls_port=None):
        text = super().config(local, regions)
        listener = "listeners: [{address: 127.0.0.1:%d}]" % self.ports[local]
        self.assertIn(listener, text)
        port = self.ports[local] if not suffix else self.extra_port
        text = text.replace(listener, (
            "listeners:\n"
            "  - {address: 127.0.0.1:%d}\n"
            "  - {address: 127.0.0.1:%d, tls: {cert_file: %s, key_file: %s}}") % (
                port, tls_port or self.tls_ports[local], self.cert, self.key))
        text = text.replace("node: node-%s\n" % local, "node: node-%s%s\n" % (local, suffix))
        text = text.replace("%s-state.json" % local, "%s%s-state.json" % (local, suffix))
        text = text.replace("%s-audit.jsonl" % local, "%s%s-audit.jsonl" % (local, suffix))
        return text + "  ticket_keys: {seal_key_file: %s/seal.key, rotation: %s, share: %s}\n" % (
            self.dir, self.ROTATION, self.SHARE)

    def tickets(self, region):
        return self.fleet(region)["ticket_keys"]

    def wait_for_keys(self, regions, what="every node's shared ticket keys"):
        """Until every node of `regions` has installed keys (a current and the next)."""
        self.wait_for(lambda: all(self.tickets(r).get("keys", 0) >= 2 for r in regions),
                      what=what)

    def etcd_put(self, key, value):
        reply = self.etcd.call("/v3/kv/put", {"key": b64(key), "value": b64(value)})
        self.assertNotIn("error", reply)

    def etcd_delete(self, key):
        reply = self.etcd.call("/v3/kv/deleterange", {"key": b64(key)})
        self.assertNotIn("error", reply)


def b64(text):
    return base64.b64encode(text.encode()).decode()


class FleetWideKeys(TicketKeysTestCase):
    SHARE = "fleet"

    def test_a_client_resumes_in_every_region_and_bad_keys_in_etcd_change_nothing(self):
        self.start_fleet()
        self.wait_for_keys(REGIONS)
        self.wait_for(lambda: len({self.tickets(r)["encrypting"] for r in REGIONS}) == 1,
                      what="one encrypting key on every node")
        status = self.tickets("us-east-1")
        self.assertEqual(status["share"], "fleet")
        self.assertEqual(status["key"], PREFIX + "tickets")
        self.assertEqual(status["listeners"], 1)
        # Sealed in etcd: no key in clear, only the sealed document.
        _, stored = self.etcd.get(PREFIX + "tickets")
        doc = json.loads(stored)
        self.assertEqual(set(doc), {"format", "nonce", "sealed"})
        self.assertEqual(doc["format"], "sluice-ticket-keys/1")
        # A client moved from any region to any other resumes there.
        for first in REGIONS:
            for second in REGIONS:
                self.assertTrue(resumes(self.tls_ports[first], self.tls_ports[second]),
                                (first, second))
        self.assertGreaterEqual(admin.metric(self.admin_ports["eu-west-1"],
                                             'sluice_tls_handshakes_total{resumed="true"}'), 3)

        # A document that does not open (another seal key, or garbage): every node warns,
        # keeps its keys and still resumes; the leader leaves it alone.
        context = client_context()
        ticket, _ = tls_get(self.tls_ports["us-east-1"], context)
        self.etcd_put(PREFIX + "tickets", json.dumps(
            {"format": "sluice-ticket-keys/1", "nonce": "AAAAAAAAAAAAAAAA",
             "sealed": base64.b64encode(os.urandom(64)).decode()}))
        self.wait_for(lambda: all(self.tickets(r)["rejected"] >= 1 for r in REGIONS),
                      what="every node rejecting the bad document")
        for region in REGIONS:
            self.assertIn("does not open", self.tickets(region)["error"])
            self.assertEqual(self.tickets(region)["keys"], status["keys"])
        self.assertTrue(tls_get(self.tls_ports["us-west-2"], context, ticket)[1])
        revision, _ = self.etcd.get(PREFIX + "tickets")
        before = {r: self.tickets(r)["installs"] for r in REGIONS}
        leader = self.leader()
        checks = self.tickets(leader)["leader_checks"]
        self.wait_for(lambda: self.tickets(leader)["leader_checks"] >= checks + 3,
                      what="three of the leader's schedule checks")
        self.assertEqual(self.etcd.get(PREFIX + "tickets")[0], revision)  # not overwritten
        # Deleted: the leader makes new keys, every node installs them; old tickets still open
        # (the keys replaced are kept a rotation).
        self.etcd_delete(PREFIX + "tickets")
        self.wait_for(lambda: all(self.tickets(r)["installs"] > before[r] for r in REGIONS),
                      what="new keys installed everywhere")
        self.wait_for(lambda: len({self.tickets(r)["encrypting"] for r in REGIONS}) == 1,
                      what="one encrypting key on every node")
        self.assertNotEqual(self.tickets("us-east-1")["encrypting"], status["encrypting"])
        self.assertTrue(tls_get(self.tls_ports["eu-west-1"], context, ticket)[1])
        self.assertTrue(resumes(self.tls_ports["eu-west-1"], self.tls_ports["us-west-2"]))


class RotationInTheFleet(TicketKeysTestCase):
    ROTATION = "4s"  # at least twice the publish interval; short, to watch a rotation

    def test_keys_rotate_ahead_of_use_and_tickets_survive_a_rotation(self):
        self.start_fleet()
        self.wait_for_keys(REGIONS)
        context = client_context()
        ticket, _ = tls_get(self.tls_ports["us-east-1"], context)
        first = self.tickets("us-east-1")["encrypting"]
        self.wait_for(lambda: all(self.tickets(r)["encrypting"] not in ("", first)
                                  for r in REGIONS), what="a rotation on every node")
        # Issued under the key before: it still opens on every node for one more rotation.
        self.assertTrue(tls_get(self.tls_ports["us-west-2"], context, ticket)[1])
        # And across the rotation, nodes never disagree for long: a fresh ticket resumes
        # anywhere.
        self.assertTrue(resumes(self.tls_ports["eu-west-1"], self.tls_ports["us-east-1"]))


class RegionKeys(TicketKeysTestCase):
    SHARE = "region"

    def test_a_second_node_of_the_region_resumes_another_region_does_not(self):
        self.start_fleet()
        self.extra_port = free_port()
        extra_tls = free_port()
        proxy = Sluice(self.config("us-east-1", suffix="b", tls_port=extra_tls),
                       port=self.extra_port, admin_port=free_port())
        self.addCleanup(shutil.rmtree, proxy.dir, True)
        proxy.start()
        self.addCleanup(self.stop_node, proxy)
        self.wait_for_keys(REGIONS)
        self.assertEqual(self.tickets("us-east-1")["key"], PREFIX + "tickets/us-east-1")
        self.wait_for(lambda: resumes(self.tls_ports["us-east-1"], extra_tls), timeout=10,
                      what="the second us-east-1 node resuming the first one's clients")
        self.assertTrue(resumes(extra_tls, self.tls_ports["us-east-1"]))
        self.assertFalse(resumes(self.tls_ports["us-east-1"], self.tls_ports["us-west-2"]))
        for region in REGIONS:
            self.assertIsNotNone(self.etcd.get(PREFIX + "tickets/" + region), region)


class KeyFiles(ProxyTestCase):
    """No fleet: nginx's way, files shared by the processes and rotated by a reload."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="sluice-ticket-files-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.origin = self.start_origin(name="origin")
        os.makedirs(os.path.join(self.dir, "pki"))
        pki = Pki(os.path.join(self.dir, "pki"))
        self.cert, self.key = pki.self_signed("edge")
        os.chmod(self.key, 0o600)

    def key_file(self, name):
        path = os.path.join(self.dir, name)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(os.urandom(80))
        return path

    def start(self, files):
        port = free_port()
        proxy = Sluice("""
listeners:
  - address: 127.0.0.1:%d
    tls: {cert_file: %s, key_file: %s, ticket_key_files: [%s]}
clusters: [{name: app, endpoints: [127.0.0.1:%d]}]
routes: [{cluster: app}]
""" % (port, self.cert, self.key, ", ".join(files), self.origin.port), port=port)
        self.addCleanup(shutil.rmtree, proxy.dir, True)
        proxy.start()
        self.addCleanup(proxy.stop)
        proxy.tls_port = port
        return proxy

    def test_two_processes_share_keys_and_a_reload_rotates_them(self):
        current = self.key_file("current.key")
        a = self.start([current])
        b = self.start([current])
        self.assertTrue(resumes(a.tls_port, b.tls_port))
        self.assertTrue(resumes(b.tls_port, a.tls_port))
        context = client_context()
        old_ticket, _ = tls_get(a.tls_port, context)
        # The rotation: a new key first, the old one second (decrypt only), then a reload.
        new = self.key_file("new.key")
        for proxy in (a, b):
            with open(proxy.config_path) as f:
                config = f.read().replace("ticket_key_files: [%s]" % current,
                                          "ticket_key_files: [%s, %s]" % (new, current))
            proxy.write_config(config)
            proxy.signal(signal.SIGHUP)
            self.assertTrue(proxy.wait_for_log("configuration reloaded", timeout=10))
        self.assertTrue(tls_get(b.tls_port, context, old_ticket)[1])
        self.assertTrue(resumes(a.tls_port, b.tls_port))
        # A third process with the new key only opens what is issued now: the new key encrypts.
        c = self.start([new])
        self.assertTrue(resumes(a.tls_port, c.tls_port))
        self.assertFalse(tls_get(c.tls_port, context, old_ticket)[1])

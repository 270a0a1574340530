"""One etcd member on loopback (Debian's etcd-server), for the fleet tests and benches.

Its data, log and certificates live in a temporary directory; it is stopped by its PID, and
restart() keeps the data and the ports. With tls=True it serves HTTPS and wants client
certificates; enable_auth() turns etcd's users and roles on.
"""

import base64
import http.client
import json
import os
import shutil
import ssl
import tempfile

from sluicetest.certs import Pki
from sluicetest.process import Process, free_port, wait_until

ETCD_BIN = os.environ.get("ETCD_BIN", shutil.which("etcd") or "/usr/bin/etcd")


def _b64(text):
    return base64.b64encode(text.encode()).decode()


def _data_parent():
    """Where etcd keeps its data: in memory when the machine has room there. etcd syncs its log
    to disk before it applies a write or a lease's expiry; on a disk shared with a busy build,
    one sync can take seconds, and a lease then outlives its TTL by as long (a test of a
    leader's death waits for exactly that). etcd preallocates 64 MiB per log file, so a small
    /dev/shm (a container's default) is not used."""
    try:
        st = os.statvfs("/dev/shm")
        if os.access("/dev/shm", os.W_OK) and st.f_bavail * st.f_frsize >= 1 << 30:
            return "/dev/shm"
    except OSError:
        pass
    return None


class Etcd:
    def __init__(self, tls=False):
        self.dir = tempfile.mkdtemp(prefix="sluice-etcd-", dir=_data_parent())
        self.client_port = free_port()
        self.peer_port = free_port()
        self.tls = tls
        self.url = "%s://127.0.0.1:%d" % ("https" if tls else "http", self.client_port)
        self.process = None
        self.token = None  # set once authentication is on
        if tls:
            self.make_certificates()

    def make_certificates(self):
        """ca.crt; server.crt for etcd (127.0.0.1 and localhost; etcd's gateway also presents
        it as a client to etcd's own gRPC port); client.crt and client.key for sluice."""
        pki = Pki(self.dir)
        pki.ca("ca", subject="/CN=sluice test CA")
        pki.leaf("server", usage="serverAuth,clientAuth")
        # etcd 3.4's gateway refuses a client certificate with a CommonName once
        # authentication is on: sluice's carries an organization only.
        pki.leaf("client", sans=(), usage="clientAuth", subject="/O=sluice edge")

    def path(self, name):
        return os.path.join(self.dir, name)

    def start(self):
        if not os.path.exists(ETCD_BIN):
            raise AssertionError("etcd is not installed (apt-get install etcd-server; "
                                 "scripts/setup.sh test does it)")
        peer = "http://127.0.0.1:%d" % self.peer_port
        self.process = Process(
            [ETCD_BIN, "--name", "test", "--data-dir", os.path.join(self.dir, "data"),
             "--listen-client-urls", self.url, "--advertise-client-urls", self.url,
             "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
             "--initial-cluster", "test=" + peer, "--log-level", "warn"] +
            (["--cert-file", self.path("server.crt"), "--key-file", self.path("server.key"),
              "--trusted-ca-file", self.path("ca.crt"), "--client-cert-auth"] if self.tls else []),
            self.path("etcd.log"), append=True).start()

        def ready():
            if not self.process.running():
                return "exited"
            try:
                return self.call("/v3/maintenance/status", {}) is not None
            except (OSError, ValueError, http.client.HTTPException):
                return False
        state = wait_until(ready, 20, 0.05)
        if state == "exited":
            raise AssertionError("etcd exited with %s" % self.process.proc.returncode)
        if not state:
            raise TimeoutError("etcd did not answer on %s" % self.url)
        return self

    def stop(self):
        if self.process:
            self.process.stop()

    def restart(self):
        self.stop()
        return self.start()

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, True)

    def call(self, path, body):
        """One JSON gateway call; the parsed reply."""
        if self.tls:
            context = ssl.create_default_context(cafile=self.path("ca.crt"))
            context.load_cert_chain(self.path("client.crt"), self.path("client.key"))
            conn = http.client.HTTPSConnection("127.0.0.1", self.client_port, timeout=5,
                                               context=context)
        else:
            conn = http.client.HTTPConnection("127.0.0.1", self.client_port, timeout=5)
        try:
            headers = {"Authorization": self.token} if self.token else {}
            conn.request("POST", path, body=json.dumps(body), headers=headers)
            response = conn.getresponse()
            return json.loads(response.read().decode())
        finally:
            conn.close()

    def enable_auth(self, user, password, prefix):
        """etcd's authentication on, with `user` allowed to read and write `prefix` only."""
        end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        for path, body in (("/v3/auth/user/add", {"name": "root", "password": "root-pw"}),
                           ("/v3/auth/role/add", {"name": "root"}),
                           ("/v3/auth/user/grant", {"user": "root", "role": "root"}),
                           ("/v3/auth/user/add", {"name": user, "password": password}),
                           ("/v3/auth/role/add", {"name": "edge"}),
                           ("/v3/auth/role/grant", {"name": "edge", "perm": {
                               "permType": "READWRITE", "key": _b64(prefix),
                               "range_end": _b64(end)}}),
                           ("/v3/auth/user/grant", {"user": user, "role": "edge"}),
                           ("/v3/auth/enable", {})):
            reply = self.call(path, body)
            if "error" in reply:
                raise AssertionError("%s: %s" % (path, reply))
        self.token = self.call("/v3/auth/authenticate",
                               {"name": "root", "password": "root-pw"})["token"]

    def get(self, key):
        """(mod_revision, value) of `key` now, or None when it is not there."""
        reply = self.call("/v3/kv/range", {"key": _b64(key)})
        for kv in reply.get("kvs", []):
            return int(kv["mod_revision"]), base64.b64decode(kv.get("value", "")).decode()
        return None

    def history(self, key):
        """Every value `key` had, oldest first: [(mod_revision, value)]."""
        encoded = _b64(key)
        head = int(self.call("/v3/kv/range", {"key": encoded})["header"]["revision"])
        values, seen = [], set()
        for revision in range(1, head + 1):
            reply = self.call("/v3/kv/range", {"key": encoded, "revision": str(revision)})
            for kv in reply.get("kvs", []):
                mod = int(kv["mod_revision"])
                if mod not in seen:
                    seen.add(mod)
                    values.append((mod, base64.b64decode(kv.get("value", "")).decode()))
        return values

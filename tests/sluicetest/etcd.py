"""etcd on loopback (Debian's etcd-server), for the fleet tests and benches: one member (Etcd)
or a cluster of several (EtcdCluster).

A member's data, log and certificates live in a temporary directory; it is stopped by its PID,
and restart() keeps the data and the ports. With tls=True it serves HTTPS and wants client
certificates; enable_auth() turns etcd's users and roles on.
"""

import base64
import http.client
import json
import os
import shutil
import signal
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
    """One member: a cluster of its own unless EtcdCluster makes it one of several (name,
    cluster_args: the flags that say who the others are)."""

    def __init__(self, tls=False, name="test"):
        self.dir = tempfile.mkdtemp(prefix="sluice-etcd-", dir=_data_parent())
        self.client_port = free_port()
        self.peer_port = free_port()
        self.tls = tls
        self.name = name
        self.url = "%s://127.0.0.1:%d" % ("https" if tls else "http", self.client_port)
        self.peer_url = "http://127.0.0.1:%d" % self.peer_port
        self.cluster_args = ["--initial-cluster", "%s=%s" % (name, self.peer_url)]
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
        self.launch()
        self.wait_ready()
        return self

    def launch(self):
        """Starts the process without waiting for it to answer: a member of a new cluster
        answers only once a quorum of its members runs."""
        if not os.path.exists(ETCD_BIN):
            raise AssertionError("etcd is not installed (apt-get install etcd-server; "
                                 "scripts/setup.sh test does it)")
        self.process = Process(
            [ETCD_BIN, "--name", self.name, "--data-dir", os.path.join(self.dir, "data"),
             "--listen-client-urls", self.url, "--advertise-client-urls", self.url,
             "--listen-peer-urls", self.peer_url, "--initial-advertise-peer-urls", self.peer_url,
             "--log-level", "warn"] + self.cluster_args +
            (["--cert-file", self.path("server.crt"), "--key-file", self.path("server.key"),
              "--trusted-ca-file", self.path("ca.crt"), "--client-cert-auth"] if self.tls else []),
            self.path("etcd.log"), append=True).start()

    def status(self):
        """etcd's /v3/maintenance/status reply, or None while it does not answer."""
        try:
            return self.call("/v3/maintenance/status", {})
        except (OSError, ValueError, http.client.HTTPException):
            return None

    def wait_ready(self, timeout=20):
        """Returns once the launched member answers; raises if it exits or never does."""
        def ready():
            if not self.process.running():
                return "exited"
            return self.status() is not None
        state = wait_until(ready, timeout, 0.05)
        if state == "exited":
            raise AssertionError("etcd exited with %s" % self.process.proc.returncode)
        if not state:
            raise TimeoutError("etcd did not answer on %s" % self.url)

    def stop(self):
        if self.process:
            self.process.stop()

    def kill(self):
        """SIGKILL by its PID: a crash, where stop() lets a raft leader hand its leadership
        over first."""
        if self.process and self.process.running():
            self.process.signal(signal.SIGKILL)
            self.process.proc.wait(5)
        self.stop()  # closes the log

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


class EtcdCluster:
    """`size` members on loopback making one new cluster (one --initial-cluster, one token),
    each an Etcd with its own ports and data. Raft's heartbeat and election timeout are short
    (50 ms, 500 ms) so that a test of a member's loss waits for a new raft leader briefly.
    stop_member(i) stops one by its PID, start_member(i) starts it again on its data."""

    def __init__(self, size=3, heartbeat_ms=50, election_ms=500):
        self.members = [Etcd(name="member%d" % i) for i in range(size)]
        initial = ",".join("%s=%s" % (m.name, m.peer_url) for m in self.members)
        token = "sluice-test-%d" % self.members[0].client_port
        for m in self.members:
            m.cluster_args = ["--initial-cluster", initial, "--initial-cluster-state", "new",
                              "--initial-cluster-token", token,
                              "--heartbeat-interval", str(heartbeat_ms),
                              "--election-timeout", str(election_ms)]

    @property
    def urls(self):
        return [m.url for m in self.members]

    def start(self, timeout=20):
        for m in self.members:
            m.launch()
        for m in self.members:
            m.wait_ready(timeout)
        if not wait_until(self.healthy, timeout, 0.05):
            raise TimeoutError("the etcd cluster has no leader: %s" % self.statuses())
        return self

    def running(self):
        return [i for i, m in enumerate(self.members) if m.process and m.process.running()]

    def statuses(self):
        """Each member's status reply (None for one that does not answer), by index."""
        return [m.status() for m in self.members]

    def leader_index(self):
        """The index of the member that is raft's leader, by its own word; None when none
        says so."""
        for i, status in enumerate(self.statuses()):
            if status and status.get("leader") and status["leader"] == \
                    status.get("header", {}).get("member_id"):
                return i
        return None

    def healthy(self):
        """True when every running member answers and all name the same leader, one of them."""
        running = self.running()
        statuses = [self.members[i].status() for i in running]
        if not running or any(s is None for s in statuses):
            return False
        leaders = {s.get("leader") for s in statuses}
        ids = {s.get("header", {}).get("member_id") for s in statuses}
        return len(leaders) == 1 and leaders <= ids

    def move_leader(self, index, timeout=10):
        """Makes member `index` raft's leader (etcd's MoveLeader, asked of the current one)."""
        def moved():
            leader = self.leader_index()
            if leader == index:
                return True
            if leader is not None:
                target = self.members[index].status()
                if target:
                    self.members[leader].call("/v3/maintenance/transfer-leadership",
                                              {"targetID": target["header"]["member_id"]})
            return False
        if not wait_until(moved, timeout, 0.05):
            raise TimeoutError("member %d did not become the leader: %s"
                               % (index, self.statuses()))

    def stop_member(self, index, crash=True):
        """Stops member `index` by its PID: SIGKILL by default, so that a raft leader goes
        without handing its leadership over (the others elect one after the election
        timeout); crash=False stops it gracefully."""
        if crash:
            self.members[index].kill()
        else:
            self.members[index].stop()

    def start_member(self, index, timeout=20):
        """Starts a stopped member again on its data; returns once it answers (it has
        rejoined: a member answers once it has published itself to the cluster)."""
        self.members[index].launch()
        self.members[index].wait_ready(timeout)

    def stop(self):
        for m in self.members:
            m.stop()

    def cleanup(self):
        for m in self.members:
            m.cleanup()

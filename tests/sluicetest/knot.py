"""One authoritative DNS server on loopback (Debian's knot), for the DNS tests and the drill.

Knot serves one zone (drill.test. by default) from a zone file written here: its SOA, its NS
(ns.<zone>, 127.0.0.1) and the records given as (name, type, data), with one TTL. Dynamic
updates signed with the server's TSIG key are applied at once and kept in the journal only
(the zone file is never rewritten), so queries see them immediately. With
allow_update=False an ACL denies updates, even signed ones (knotd answers NOTAUTH,
TSIG error BADKEY).

Its configuration, zone file, journal and log live in a temporary directory (or a given one);
it is stopped by its PID, and restart() keeps the journal and the port. Requests go through
knot-dnsutils: kdig for queries, knsupdate for updates.
"""

import base64
import grp
import os
import pwd
import shutil
import subprocess
import tempfile

from sluicetest.process import Process, free_port, wait_until

KNOTD_BIN = os.environ.get("KNOTD_BIN", shutil.which("knotd") or "/usr/sbin/knotd")
KDIG_BIN = shutil.which("kdig") or "/usr/bin/kdig"
KNSUPDATE_BIN = shutil.which("knsupdate") or "/usr/bin/knsupdate"


def missing():
    """None when knotd, kdig and knsupdate are installed, else what to install (for a skip)."""
    for path, package in ((KNOTD_BIN, "knot"), (KDIG_BIN, "knot-dnsutils"),
                          (KNSUPDATE_BIN, "knot-dnsutils")):
        if not os.path.exists(path):
            return ("%s is not installed (apt-get install %s; scripts/setup.sh test does it)"
                    % (os.path.basename(path), package))
    return None


def _absolute(name, zone):
    """`name` as a fully qualified name: "@" is the zone, a name without a final dot is under
    the zone."""
    if name in ("@", ""):
        return zone
    return name if name.endswith(".") else "%s.%s" % (name, zone)


class Knot:
    """records: [(name, type, data)], names relative to the zone or absolute. ttl: the TTL of
    every record (the SOA's minimum too, so negative answers are cached as long)."""

    def __init__(self, zone="drill.test.", records=(), ttl=60, allow_update=True,
                 directory=None, key_name="sluice-test-key"):
        self.zone = zone if zone.endswith(".") else zone + "."
        self.records = list(records)
        self.ttl = ttl
        self.allow_update = allow_update
        self.dir = directory or tempfile.mkdtemp(prefix="sluice-knot-")
        self.port = free_port()
        self.key_name = key_name
        self.secret = base64.b64encode(os.urandom(32)).decode()
        self.process = None
        # knotd creates its databases but not their directory (updates fail "not exists").
        os.makedirs(self.path("db"), exist_ok=True)
        self.write_key_file()
        self.write_zone_file()
        self.write_config()

    def path(self, name):
        return os.path.join(self.dir, name)

    @property
    def key_spec(self):
        """The TSIG key as kdig -y / knsupdate -y take it."""
        return "hmac-sha256:%s:%s" % (self.key_name, self.secret)

    @property
    def key_file(self):
        """A file with the TSIG key in BIND's format (knsupdate -k, nsupdate -k)."""
        return self.path("tsig.key")

    @property
    def address(self):
        return "127.0.0.1:%d" % self.port

    def write_key_file(self):
        with open(self.key_file, "w") as f:
            f.write('key "%s" {\n\talgorithm hmac-sha256;\n\tsecret "%s";\n};\n'
                    % (self.key_name, self.secret))
        os.chmod(self.key_file, 0o600)

    def write_zone_file(self):
        ns = "ns." + self.zone
        lines = ["$ORIGIN %s" % self.zone, "$TTL %d" % self.ttl,
                 "@ SOA %s hostmaster.%s 1 3600 600 86400 %d" % (ns, self.zone, self.ttl),
                 "@ NS %s" % ns, "%s A 127.0.0.1" % ns]
        for name, rtype, data in self.records:
            lines.append("%s %d %s %s" % (_absolute(name, self.zone), self.ttl, rtype, data))
        with open(self.path("zone.db"), "w") as f:
            f.write("\n".join(lines) + "\n")

    def write_config(self):
        # knotd runs as whoever starts it (its default user is root); one worker of each kind
        # is plenty on loopback. zonefile-sync -1: updates live in the journal, the zone file
        # stays as written.
        text = """server:
    rundir: "%(dir)s"
    user: %(user)s
    listen: 127.0.0.1@%(port)d
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1

control:
    listen: "%(dir)s/knot.sock"

log:
  - target: stderr
    any: info

database:
    storage: "%(dir)s/db"

key:
  - id: %(key)s
    algorithm: hmac-sha256
    secret: %(secret)s

acl:
  - id: update-with-key
    key: %(key)s
    action: update
  - id: no-update
    key: %(key)s
    action: update
    deny: on

zone:
  - domain: %(zone)s
    storage: "%(dir)s"
    file: zone.db
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: changes
    acl: %(acl)s
""" % {"dir": self.dir, "port": self.port, "key": self.key_name,
              "user": "%s:%s" % (pwd.getpwuid(os.getuid()).pw_name,
                                 grp.getgrgid(os.getgid()).gr_name),
              "secret": self.secret, "zone": self.zone,
              "acl": "update-with-key" if self.allow_update else "no-update"}
        with open(self.path("knot.conf"), "w") as f:
            f.write(text)

    def start(self, timeout=20):
        problem = missing()
        if problem:
            raise AssertionError(problem)
        self.process = Process([KNOTD_BIN, "-c", self.path("knot.conf")],
                               self.path("knot.log"), append=True).start()

        def ready():
            if not self.process.running():
                return "exited"
            return self.serial() is not None
        state = wait_until(ready, timeout, 0.05)
        if state == "exited":
            raise AssertionError("knotd exited with %s:\n%s"
                                 % (self.process.proc.returncode, self.process.log_text()))
        if not state:
            raise TimeoutError("knotd did not answer for %s on %s" % (self.zone, self.address))
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

    def dig(self, name, rtype="A", tcp=True, timeout=2):
        """kdig's +short answer lines for `name` (relative to the zone or absolute), or None when
        no answer came (no server, a timeout, a refusal)."""
        cmd = [KDIG_BIN, "@127.0.0.1", "-p", str(self.port), "+short", "+retry=0",
               "+time=%d" % timeout, "+tcp" if tcp else "+notcp",
               _absolute(name, self.zone), rtype]
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout + 3)
        except subprocess.TimeoutExpired:
            return None
        if out.returncode != 0:
            return None
        # +short prints one rdata a line; a failure prints ";; ..." diagnostics instead.
        lines = [line.strip() for line in out.stdout.splitlines()]
        if any(line.startswith(";;") for line in lines):
            return None
        return [line for line in lines if line]

    def query(self, name, rtype="A", tcp=True):
        """The sorted rdata strings of the answer (an empty list for no records); raises when
        the server does not answer."""
        lines = self.dig(name, rtype, tcp)
        if lines is None:
            raise AssertionError("no answer from knot for %s %s" % (name, rtype))
        return sorted(lines)

    def serial(self):
        """The zone's SOA serial (over TCP), or None when the server does not answer."""
        lines = self.dig("@", "SOA")
        if not lines:
            return None
        try:
            return int(lines[0].split()[2])
        except (IndexError, ValueError):
            return None

    def update(self, commands, key_spec=None, timeout=5):
        """Sends one dynamic update: `commands` are knsupdate lines ("add api 2 A 127.0.0.13",
        "del api A 127.0.0.11"), names relative to the zone. Signed with the server's key (or
        `key_spec`). Returns (ok, knsupdate's output)."""
        script = ["server 127.0.0.1 %d" % self.port, "zone %s" % self.zone,
                  "origin %s" % self.zone] + list(commands) + ["send", "quit"]
        cmd = [KNSUPDATE_BIN, "-t", str(timeout), "-r", "0", "-y", key_spec or self.key_spec]
        try:
            out = subprocess.run(cmd, input="\n".join(script) + "\n", capture_output=True,
                                 text=True, timeout=timeout + 5)
        except subprocess.TimeoutExpired as e:
            return False, "knsupdate timed out: %s" % e
        return out.returncode == 0, out.stdout + out.stderr

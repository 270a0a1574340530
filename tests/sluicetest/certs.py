"""Keys and certificates made with the openssl command line, ECDSA P-256 unless a test asks for
something else: a test CA, leaf certificates it signs, self-signed certificates, OCSP responses.
"""

import os
import shutil
import subprocess
import tempfile


def openssl(*args, cwd=None, data=None, timeout=60):
    """Runs `openssl args...` with `data` on its standard input; returns its standard output.
    Raises subprocess.CalledProcessError if it fails."""
    stdin = subprocess.DEVNULL if data is None else None
    return subprocess.run(["openssl"] + list(args), cwd=cwd, input=data, stdin=stdin,
                          capture_output=True, check=True, timeout=timeout).stdout


class Pki:
    """Certificates in a directory (a new temporary one by default): <name>.crt and <name>.key
    for each CA and leaf, valid for two days."""

    def __init__(self, directory=None):
        self.dir = directory or tempfile.mkdtemp(prefix="sluice-pki-")

    def path(self, name):
        return os.path.join(self.dir, name)

    def run(self, *args):
        return openssl(*args, cwd=self.dir)

    def ca(self, name="ca", subject=None):
        """A self-signed CA (subject "/CN=sluice test <name>" unless given); returns its path."""
        self.run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                 "-keyout", name + ".key", "-out", name + ".crt", "-days", "2",
                 "-subj", subject or "/CN=sluice test %s" % name)
        with open(self.path(name + ".index"), "w"):  # the OCSP responder's database
            pass
        return self.path(name + ".crt")

    def leaf(self, name, sans=("IP:127.0.0.1", "DNS:localhost"), ca="ca", usage="serverAuth",
             cn=None, subject=None):
        """A certificate signed by the CA `ca`; returns (cert, key) paths. sans: subjectAltName
        entries ("DNS:x", "IP:y"); usage: extendedKeyUsage; subject: "/CN=<cn or name>" unless
        given."""
        with open(self.path(name + ".ext"), "w") as f:
            if sans:
                f.write("subjectAltName=%s\n" % ",".join(sans))
            f.write("extendedKeyUsage=%s\n" % usage)
        self.run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                 "-keyout", name + ".key", "-out", name + ".csr",
                 "-subj", subject or "/CN=%s" % (cn or name))
        self.run("x509", "-req", "-in", name + ".csr", "-CA", ca + ".crt", "-CAkey", ca + ".key",
                 "-CAcreateserial", "-out", name + ".crt", "-days", "2", "-extfile", name + ".ext")
        return self.path(name + ".crt"), self.path(name + ".key")

    def self_signed(self, name, cn="localhost", sans=("DNS:localhost", "IP:127.0.0.1")):
        """A self-signed server certificate (no CA); returns (cert, key) paths."""
        self.run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                 "-keyout", name + ".key", "-out", name + ".crt", "-days", "2",
                 "-subj", "/CN=" + cn, "-addext", "subjectAltName=" + ",".join(sans))
        return self.path(name + ".crt"), self.path(name + ".key")

    def ocsp_response(self, name, ca="ca"):
        """A signed 'good' OCSP response for the leaf `name`, as DER; returns its path."""
        self.run("ocsp", "-issuer", ca + ".crt", "-cert", name + ".crt", "-reqout", name + ".oreq",
                 "-no_nonce")
        self.run("ocsp", "-index", ca + ".index", "-rsigner", ca + ".crt", "-rkey", ca + ".key",
                 "-CA", ca + ".crt", "-reqin", name + ".oreq", "-respout", name + ".ocsp",
                 "-ndays", "1")
        return self.path(name + ".ocsp")

    def cleanup(self):
        shutil.rmtree(self.dir, True)

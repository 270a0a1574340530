"""Authentication end to end, with keys and tokens made by the openssl command in the test:
RS256, ES256 and HS256 tokens checked against a JWKS file, every kind of bad token refused
with 401, public routes open, and a changed JWKS file picked up without a restart."""

import base64
import hashlib
import hmac
import json
import os
import shutil
import tempfile
import time
import unittest

from harness import ProxyTestCase
from sluicetest.certs import openssl


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def der_ecdsa_to_raw(der):
    """DER SEQUENCE { INTEGER r, INTEGER s } -> r || s, 32 bytes each."""
    assert der[0] == 0x30
    i = 2 if der[1] < 0x80 else 3
    out = b""
    for _ in range(2):
        assert der[i] == 0x02
        length = der[i + 1]
        value = der[i + 2:i + 2 + length].lstrip(b"\x00")
        out += value.rjust(32, b"\x00")
        i += 2 + length
    return out


class Keys:
    def __init__(self, directory, name):
        self.rsa = os.path.join(directory, name + "-rsa.pem")
        self.ec = os.path.join(directory, name + "-ec.pem")
        openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", self.rsa)
        openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", self.ec)
        self.secret = os.urandom(32)
        self.name = name

    def jwks(self):
        modulus = openssl("rsa", "-in", self.rsa, "-noout", "-modulus").decode().strip().split("=")[1]
        point = openssl("pkey", "-in", self.ec, "-pubout", "-outform", "DER")[-65:]
        return [
            {"kty": "RSA", "kid": self.name + "-rsa", "n": b64url(bytes.fromhex(modulus)), "e": "AQAB"},
            {"kty": "EC", "crv": "P-256", "kid": self.name + "-ec", "x": b64url(point[1:33]),
             "y": b64url(point[33:65])},
            {"kty": "oct", "kid": self.name + "-hs", "k": b64url(self.secret)},
        ]

    def token(self, alg, claims, kid=None, header=None):
        kid = kid or self.name + {"RS256": "-rsa", "ES256": "-ec", "HS256": "-hs"}[alg]
        header = header or {"alg": alg, "kid": kid, "typ": "JWT"}
        signing_input = (b64url(json.dumps(header).encode()) + "." +
                         b64url(json.dumps(claims).encode())).encode()
        if alg == "HS256":
            signature = hmac.new(self.secret, signing_input, hashlib.sha256).digest()
        elif alg == "RS256":
            signature = openssl("dgst", "-sha256", "-sign", self.rsa, data=signing_input)
        else:
            signature = der_ecdsa_to_raw(openssl("dgst", "-sha256", "-sign", self.ec, data=signing_input))
        return signing_input.decode() + "." + b64url(signature)


def claims(**extra):
    now = int(time.time())
    c = {"sub": "member-7", "iss": "https://login.test", "aud": "sluice", "exp": now + 600,
         "tier": "gold", "home_region": "us-east-1"}
    c.update(extra)
    return c


class Auth(ProxyTestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="sluice-auth-")
        cls.keys = Keys(cls.dir, "k1")
        cls.other = Keys(cls.dir, "k9")  # never published
        cls.jwks_path = os.path.join(cls.dir, "jwks.json")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, True)

    def setUp(self):
        with open(self.jwks_path, "w") as f:
            json.dump({"keys": self.keys.jwks()}, f)
        self.origin = self.start_origin()
        self.proxy = self.start_sluice("""
workers: 1
log_level: debug
listeners: [{address: 127.0.0.1:{port}}]
clusters: [{name: app, endpoints: [127.0.0.1:%d]}]
routes:
  - path_prefix: /public
    cluster: app
  - cluster: app
    filters:
      - auth:
          jwks_file: %s
          issuer: https://login.test
          audience: sluice
          leeway: 5s
          api_keys: [{name: partner, sha256: %s}]
      - headers:
          request: {set: {X-Seen: by-sluice}}
""" % (self.origin.port, self.jwks_path, hashlib.sha256(b"partner-key").hexdigest()))

    def get(self, path, token=None, extra=b""):
        c = self.client(self.proxy.port)
        auth = b"Authorization: Bearer " + token.encode() + b"\r\n" if token else b""
        c.send(b"GET " + path + b" HTTP/1.1\r\nHost: a\r\n" + auth + extra + b"\r\n")
        return c.read_response()

    def test_each_algorithm_is_accepted(self):
        for alg in ("RS256", "ES256", "HS256"):
            status, _, body = self.get(b"/private", self.keys.token(alg, claims()))
            self.assertEqual(status, 200, alg)
        # The origin got the request the filters passed on.
        self.assertEqual(self.origin.received()[-1].header("x-seen"), "by-sluice")

    def test_bad_tokens_are_refused(self):
        now = int(time.time())
        good = self.keys.token("RS256", claims())
        head, payload, signature = good.split(".")
        forged_claims = b64url(json.dumps(claims(sub="admin")).encode())
        bad = {
            "expired": self.keys.token("RS256", claims(exp=now - 60)),
            "wrong_key": self.other.token("RS256", claims(), kid="k1-rsa"),
            "alg_none": b64url(b'{"alg":"none","kid":"k1-rsa"}') + "." + payload + ".",
            "wrong_alg": self.keys.token("HS256", claims(), kid="k1-rsa"),
            "tampered_payload": head + "." + forged_claims + "." + signature,
            "unknown_kid": self.other.token("ES256", claims(), kid="k9-ec"),
            "wrong_audience": self.keys.token("ES256", claims(aud="someone-else")),
            "not_yet_valid": self.keys.token("HS256", claims(nbf=now + 3600)),
        }
        for name, token in bad.items():
            status, headers, body = self.get(b"/private", token)
            self.assertEqual(status, 401, name)
            self.assertIn("error=\"invalid_token\"", headers["www-authenticate"][0], name)
        status, headers, _ = self.get(b"/private")
        self.assertEqual(status, 401)
        self.assertEqual(headers["www-authenticate"], ['Bearer realm="sluice"'])
        self.assertEqual(len(self.origin.received()), 0)
        log = self.proxy.log_text()
        for token in bad.values():
            self.assertNotIn(token, log)  # tokens never reach the log

    def test_api_keys_and_public_routes(self):
        self.assertEqual(self.get(b"/private", extra=b"X-Api-Key: partner-key\r\n")[0], 200)
        self.assertEqual(self.get(b"/private", extra=b"X-Api-Key: guessed\r\n")[0], 401)
        self.assertEqual(self.get(b"/public/page")[0], 200)

    def test_changed_jwks_file_is_picked_up(self):
        rotated = Keys(self.dir, "k2")
        old_token = self.keys.token("ES256", claims())
        new_token = rotated.token("ES256", claims())
        self.assertEqual(self.get(b"/private", old_token)[0], 200)
        self.assertEqual(self.get(b"/private", new_token)[0], 401)
        time.sleep(1.1)  # a different modification time for the poller
        with open(self.jwks_path + ".tmp", "w") as f:
            json.dump({"keys": rotated.jwks()}, f)
        os.replace(self.jwks_path + ".tmp", self.jwks_path)
        self.assertTrue(self.proxy.wait_for_log("signing keys reloaded", timeout=10))
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and self.get(b"/private", new_token)[0] != 200:
            time.sleep(0.1)
        self.assertEqual(self.get(b"/private", new_token)[0], 200)
        self.assertEqual(self.get(b"/private", old_token)[0], 401)  # the cache forgot it
        # A broken file is refused and the keys in force stay.
        time.sleep(1.1)
        with open(self.jwks_path, "w") as f:
            f.write("{broken")
        self.assertTrue(self.proxy.wait_for_log("keys not reloaded, keeping the ones in force", timeout=10))
        self.assertEqual(self.get(b"/private", new_token)[0], 200)


if __name__ == "__main__":
    unittest.main()

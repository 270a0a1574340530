"""Packaging: the package lists, cmake --install, the systemd unit, the Docker image and the
three-region compose file.

Images cannot be built here (no registry for base images), so what can be checked without one
is: the Dockerfile installs from the same package lists as scripts/setup.sh, its runtime list is
exactly what the built binaries link, no secret is copied in, every configuration the compose
file mounts passes `sluice --check`, Prometheus's passes `promtool check config`, and the
compose topology (etcd, three origins, three sluices, Prometheus) runs natively on loopback with
the same configurations and ports, each service on an address of its own.
"""

import json
import os
import random
import re
import shutil
import socket
import subprocess
import tempfile
import time
import unittest
import urllib.request

import yaml

from sluicetest.process import SLUICE_BIN, SLUICECTL_BIN, Process, wait_until
from sluicetest.secret_files import write_secrets

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "../.."))
REGIONS = ("us-east-1", "us-west-2", "eu-west-1")
SANITIZED = os.environ.get("SLUICE_SANITIZED") == "1"
BUILD_DIR = os.environ.get("SLUICE_BUILD_DIR", "")


def read(path):
    with open(os.path.join(ROOT, path)) as f:
        return f.read()


def package_list(name):
    lines = (re.sub(r"#.*", "", line).strip() for line in read("scripts/packages/%s.txt" % name)
             .splitlines())
    return [line for line in lines if line]


def linked_packages(binary):
    """The Debian packages that own the shared libraries `binary` links."""
    out = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
    packages = set()
    for path in re.findall(r"=> (/\S+)", out):
        for candidate in ("/usr" + path if not path.startswith("/usr") else path, path):
            owner = subprocess.run(["dpkg", "-S", candidate], capture_output=True, text=True)
            if owner.returncode == 0:
                packages.add(owner.stdout.split(":")[0])
                break
        else:
            raise AssertionError("no Debian package owns %s (linked by %s)" % (path, binary))
    return packages


class PackageLists(unittest.TestCase):
    def test_setup_and_the_dockerfile_install_from_the_same_lists(self):
        setup = read("scripts/setup.sh")
        for name in ("build", "tools", "test"):
            self.assertIn("packages %s)" % name, setup)
        docker = read("docker/Dockerfile")
        self.assertIn("COPY scripts/packages/build.txt", docker)
        self.assertIn("COPY scripts/packages/runtime.txt", docker)
        # No package list of its own: every apt-get install goes through install-packages.
        self.assertEqual(docker.count("apt-get install"), 1, "one install helper, from lists")
        for name in ("build", "runtime", "tools", "test"):
            self.assertTrue(package_list(name), name)

    @unittest.skipIf(SANITIZED, "a sanitizer build links the sanitizer runtimes too")
    def test_the_runtime_list_is_exactly_what_the_binaries_link(self):
        linked = linked_packages(SLUICE_BIN) | linked_packages(SLUICECTL_BIN)
        base = {"libc6", "libgcc-s1", "libstdc++6"}  # in every debian:12 image
        self.assertEqual(set(package_list("runtime")), linked - base)
        # And the build list has the -dev package of each.
        build = set(package_list("build"))
        for dev in ("libuv1-dev", "libssl-dev", "libnghttp2-dev", "prometheus-cpp-dev",
                    "libyaml-cpp-dev", "libabsl-dev"):
            self.assertIn(dev, build)


class DockerImage(unittest.TestCase):
    def test_no_secret_goes_into_the_image_and_it_checks_its_health(self):
        docker = read("docker/Dockerfile")
        ignore = read(".dockerignore").split()
        for secret in ("conf/regions/tunnel.key", "conf/regions/admin.token", "conf/tls/*.key"):
            self.assertIn(secret, ignore)
        copies = re.findall(r"^COPY (?!--from)(.*)$", docker, re.M)
        for line in copies:
            self.assertNotRegex(line, r"\.key|\.token|conf/regions/?\s|conf/\s", line)
        self.assertRegex(docker, r"HEALTHCHECK .*\n?.*sluicectl.*ready")
        self.assertRegex(docker, r"COPY --from=build .*/sluice .*/sluicectl")
        self.assertIn("USER sluice", docker)
        container = yaml.safe_load(read("docker/conf/sluice.yaml"))
        self.assertTrue(container["listeners"][0]["address"].startswith("0.0.0.0:"))
        self.assertTrue(container["admin"]["address"].startswith("0.0.0.0:9901"))

    def test_sluicectl_ready_is_the_health_check(self):
        # What HEALTHCHECK runs: nonzero while nothing serves.
        result = subprocess.run([SLUICECTL_BIN, "--admin", "http://127.0.0.1:1", "--timeout",
                                 "1s", "ready"], capture_output=True, timeout=20,
                                stdin=subprocess.DEVNULL)
        self.assertEqual(result.returncode, 1, result.stdout)


def compose():
    return yaml.safe_load(read("docker/compose.yaml"))


def mounted_configs():
    """(service, file in docker/) of every sluice configuration compose mounts."""
    mounts = []
    for name, service in compose()["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.endswith(".yaml"):
                mounts.append((name, os.path.normpath(os.path.join("docker", source))))
    return mounts


def localize(text, addresses, secrets, state):
    """A compose configuration for the native run: service names and 0.0.0.0 become the
    services' loopback addresses, /run/secrets and /var/lib/sluice local directories."""
    for name, address in sorted(addresses.items(), key=lambda kv: -len(kv[0])):
        text = re.sub(r"(?<![\w-])%s(?=:\d)" % re.escape(name), address, text)
    text = text.replace("/run/secrets/", secrets + "/").replace("/var/lib/sluice/", state + "/")
    return text


class Compose(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="sluice-compose-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.secrets = os.path.join(self.dir, "secrets")
        os.mkdir(self.secrets)
        self.token = os.urandom(24).hex()
        write_secrets(self.secrets, (("tunnel_key", os.urandom(32).hex()),
                                     ("admin_token", self.token)))

    def test_every_mounted_configuration_passes_check(self):
        mounts = mounted_configs()
        self.assertEqual(sorted(s for s, _ in mounts if s.startswith("sluice-")),
                         sorted("sluice-" + r for r in REGIONS))
        for service, path in mounts + [("image", "docker/conf/sluice.yaml")]:
            if service == "prometheus":
                continue
            text = localize(read(path), {}, self.secrets, self.dir)
            local = os.path.join(self.dir, os.path.basename(path))
            with open(local, "w") as f:
                f.write(text)
            result = subprocess.run([SLUICE_BIN, "--check", "--config", local],
                                    capture_output=True, timeout=30, stdin=subprocess.DEVNULL)
            self.assertEqual(result.returncode, 0, "%s: %s" % (path, result.stderr.decode()))
        promtool = shutil.which("promtool")
        self.assertIsNotNone(promtool, "promtool (Debian's prometheus) is in the test packages")
        result = subprocess.run([promtool, "check", "config",
                                 os.path.join(ROOT, "docker/prometheus.yml")],
                                capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)

    def bindable(self, address, ports):
        for port in ports:
            with socket.socket() as s:
                try:
                    s.bind((address, port))
                except OSError:
                    return False
        return True

    def pick_addresses(self, services, ports):
        """A loopback /24 where every service's ports are free on its own address."""
        rng = random.Random()
        for _ in range(50):
            net = "127.%d.%d." % (rng.randrange(1, 255), rng.randrange(0, 255))
            addresses = {name: net + str(i + 1) for i, name in enumerate(services)}
            if all(self.bindable(addresses[s], ports[s]) for s in services):
                return addresses
        self.fail("no free loopback /24 for the compose topology")

    def start(self, name, command, address, port):
        process = Process(command, os.path.join(self.dir, name + ".log"))
        process.start()
        self.addCleanup(process.stop)
        self.processes[name] = process

        def up():
            if not process.running():
                return "exited"
            try:
                with socket.create_connection((address, port), timeout=0.5):
                    return True
            except OSError:
                return False
        state = wait_until(up, 20)
        if state != True:  # noqa: E712: "exited" is true too
            self.fail("%s did not listen on %s:%d (%s):\n%s" % (
                name, address, port, state, process.log_text()[-3000:]))

    def get(self, address, port, path, headers=None, timeout=5):
        request = urllib.request.Request("http://%s:%d%s" % (address, port, path),
                                         headers=headers or {})
        with urllib.request.urlopen(request, timeout=timeout) as r:
            return r.status, dict(r.headers), r.read()

    def test_the_compose_topology_runs_natively(self):
        services = compose()["services"]
        ports = {"etcd": [2379, 2380], "prometheus": [9090]}
        for r in REGIONS:
            ports["origin-" + r] = [9000]
            ports["sluice-" + r] = [8080, 9901]
        self.assertEqual(set(services), set(ports))
        addresses = self.pick_addresses(sorted(ports), ports)
        self.processes = {}
        etcd = addresses["etcd"]
        self.start("etcd", [shutil.which("etcd") or "/usr/bin/etcd", "--name", "compose",
                            "--data-dir", os.path.join(self.dir, "etcd"), "--log-level", "warn",
                            "--listen-client-urls", "http://%s:2379" % etcd,
                            "--advertise-client-urls", "http://%s:2379" % etcd,
                            "--listen-peer-urls", "http://%s:2380" % etcd,
                            "--initial-advertise-peer-urls", "http://%s:2380" % etcd,
                            "--initial-cluster", "compose=http://%s:2380" % etcd],
                   etcd, 2379)
        for r in REGIONS:
            self.assertEqual(services["origin-" + r]["command"], ["--region", r])
            self.start("origin-" + r, ["python3", os.path.join(ROOT, "conf/regions/origin.py"),
                                       "--region", r, "--address", addresses["origin-" + r],
                                       "--port", "9000"], addresses["origin-" + r], 9000)
        for r in REGIONS:
            name = "sluice-" + r
            self.assertEqual(services[name]["command"], ["--config", "/etc/sluice/%s.yaml" % r])
            text = localize(read("docker/regions/%s.yaml" % r), addresses, self.secrets,
                            os.path.join(self.dir, r))
            text = text.replace("0.0.0.0:", addresses[name] + ":")
            os.mkdir(os.path.join(self.dir, r))
            config = os.path.join(self.dir, r + ".yaml")
            with open(config, "w") as f:
                f.write(text)
            self.start(name, [SLUICE_BIN, "--config", config], addresses[name], 8080)
            self.addCleanup(self.check_log, name)
            wait_until(lambda name=name: self.ready(addresses[name]), 20)
        prometheus = os.path.join(self.dir, "prometheus.yml")
        with open(prometheus, "w") as f:
            f.write(localize(read("docker/prometheus.yml"), addresses, "", ""))
        self.start("prometheus", [shutil.which("prometheus") or "/usr/bin/prometheus",
                                  "--config.file=" + prometheus,
                                  "--storage.tsdb.path=" + os.path.join(self.dir, "tsdb"),
                                  "--web.listen-address=%s:9090" % addresses["prometheus"]],
                   addresses["prometheus"], 9090)

        east = addresses["sluice-us-east-1"]
        status, headers, body = self.get(east, 8080, "/", {"x-member-id": "alice"})
        self.assertEqual((status, headers.get("sluice-region")), (200, "us-east-1"))
        # An evacuation through one region's admin API reaches the others through etcd.
        ctl = [SLUICECTL_BIN, "--token", self.token]
        for r in REGIONS:
            ctl += ["--admin", "http://%s:9901" % addresses["sluice-" + r]]
        result = subprocess.run(ctl + ["set", "us-east-1", "--fraction", "100", "--to",
                                       "eu-west-1=100", "--force"],
                                capture_output=True, timeout=30, stdin=subprocess.DEVNULL)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)

        def evacuated():
            try:
                _, headers, body = self.get(east, 8080, "/", {"x-member-id": "alice"})
            except OSError:
                return False
            return headers.get("sluice-region") == "eu-west-1" and \
                json.loads(body)["origin_region"] == "eu-west-1"
        self.assertTrue(wait_until(evacuated, 20), self.logs())
        result = subprocess.run(ctl + ["status"], capture_output=True, timeout=30,
                                stdin=subprocess.DEVNULL)
        self.assertEqual(result.stdout.decode().count("100%"), 3, result.stdout)
        # Prometheus scrapes the three sluices.
        def scraped():
            try:
                _, _, body = self.get(addresses["prometheus"], 9090, "/api/v1/targets")
            except OSError:
                return False
            targets = json.loads(body)["data"]["activeTargets"]
            return len(targets) == 3 and all(t["health"] == "up" for t in targets)
        self.assertTrue(wait_until(scraped, 40), self.logs())

    def ready(self, address):
        try:
            return self.get(address, 9901, "/readyz")[0] == 200
        except OSError:
            return False

    def logs(self):
        return "".join("\n--- %s\n%s" % (n, p.log_text()[-2000:])
                       for n, p in self.processes.items())

    def check_log(self, name):
        process = self.processes[name]
        code = process.stop()
        self.assertEqual(code, 0, process.log_text()[-3000:])


@unittest.skipUnless(BUILD_DIR, "needs SLUICE_BUILD_DIR (ctest sets it)")
class Install(unittest.TestCase):
    def test_cmake_install_puts_everything_under_the_prefix(self):
        prefix = tempfile.mkdtemp(prefix="sluice-install-")
        self.addCleanup(shutil.rmtree, prefix, True)
        result = subprocess.run(["cmake", "--install", BUILD_DIR, "--prefix", prefix],
                                capture_output=True, timeout=120, stdin=subprocess.DEVNULL)
        self.assertEqual(result.returncode, 0, result.stderr)
        for path in ("bin/sluice", "bin/sluicectl", "etc/sluice/sluice.yaml",
                     "lib/systemd/system/sluice.service", "lib/sysusers.d/sluice.conf",
                     "share/doc/sluice/README.md", "share/doc/sluice/DESIGN.md",
                     "share/doc/sluice/examples/regions/us-east-1.yaml"):
            self.assertTrue(os.path.exists(os.path.join(prefix, path)), path)
        for root, _, files in os.walk(prefix):
            for name in files:
                self.assertNotRegex(name, r"\.(key|token|pem)$", os.path.join(root, name))
        installed = os.path.join(prefix, "bin/sluice")
        result = subprocess.run([installed, "--check", "--config",
                                 os.path.join(prefix, "etc/sluice/sluice.yaml")],
                                capture_output=True, timeout=30, stdin=subprocess.DEVNULL)
        self.assertEqual(result.returncode, 0, result.stderr)
        # An operator's configuration survives a second install.
        with open(os.path.join(prefix, "etc/sluice/sluice.yaml"), "a") as f:
            f.write("# mine\n")
        subprocess.run(["cmake", "--install", BUILD_DIR, "--prefix", prefix], check=True,
                       capture_output=True, timeout=120, stdin=subprocess.DEVNULL)
        with open(os.path.join(prefix, "etc/sluice/sluice.yaml")) as f:
            self.assertTrue(f.read().endswith("# mine\n"))

    def test_the_systemd_unit_passes_systemd_analyze_verify(self):
        analyze = shutil.which("systemd-analyze")
        self.assertIsNotNone(analyze, "systemd (systemd-analyze) is in the test packages")
        with open(os.path.join(BUILD_DIR, "packaging/sluice.service")) as f:
            unit = f.read()
        # What verify checks needs the binary where the unit says; point it at this build's.
        exec_start = re.search(r"^ExecStart=(\S+)", unit, re.M).group(1)
        unit = unit.replace(exec_start, os.path.abspath(SLUICE_BIN))
        directory = tempfile.mkdtemp(prefix="sluice-unit-")
        self.addCleanup(shutil.rmtree, directory, True)
        path = os.path.join(directory, "sluice.service")
        with open(path, "w") as f:
            f.write(unit)
        result = subprocess.run([analyze, "verify", path], capture_output=True, text=True,
                                timeout=60, stdin=subprocess.DEVNULL)
        # Lines about other units on this machine are not ours; any about sluice.service are.
        ours = [line for line in (result.stdout + result.stderr).splitlines()
                if "sluice.service" in line]
        self.assertEqual(ours, [], result.stdout + result.stderr)
        for directive in ("Type=notify", "NotifyAccess=all", "ExecReload=/bin/kill -HUP $MAINPID",
                          "TimeoutStopSec=45s", "LimitNOFILE=", "StateDirectory=sluice",
                          "LogsDirectory=sluice", "AmbientCapabilities=CAP_NET_BIND_SERVICE",
                          "NoNewPrivileges=yes", "ProtectSystem=strict", "PrivateTmp=yes",
                          "User=sluice"):
            self.assertIn(directive, unit)
        # Its stop timeout covers the shipped configuration's drain timeout with a margin.
        drain = (yaml.safe_load(read("conf/sluice.yaml")).get("timeouts") or {}).get(
            "drain", "30s")
        self.assertRegex(drain, r"^\d+s$")
        stop = int(re.search(r"^TimeoutStopSec=(\d+)s$", unit, re.M).group(1))
        self.assertGreaterEqual(stop, int(drain[:-1]) + 10)


if __name__ == "__main__":
    unittest.main()

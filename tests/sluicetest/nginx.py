"""nginx for the benches: their fast origins (one answering "hello world", one per drill region)
and the nginx proxy that sluice is compared with.

Each runs one master and one worker on a configuration written to <workdir>/<name>/nginx.conf,
and is stopped by its PIDs: SIGQUIT to the master (it finishes and reaps its worker), SIGKILL
to the master and then the worker when that does not end it in time.
"""

import os
import signal
import subprocess

from sluicetest.process import Process, child_pids, port_open, wait_until

CONF = """
worker_processes 1;
%(affinity)s
%(rlimit)s
daemon off;
master_process on;
pid %(dir)s/nginx.pid;
error_log %(dir)s/error.log %(error_level)s;
events { worker_connections %(connections)d; }
http {
  access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 300s;
  client_body_temp_path %(dir)s;
  proxy_temp_path %(dir)s;
  %(upstream)s
  server { %(server)s }
}
"""


class Nginx(Process):
    """nginx with `server_block` inside one server { } and `upstream` beside it. cpu: "0" or
    "1", the CPU its worker is pinned to (worker_cpu_affinity). port: where it listens, checked
    to refuse connections after kill(). start() starts it."""

    def __init__(self, workdir, name, server_block, cpu=None, upstream="", port=None,
                 worker_connections=25000, rlimit_nofile=30000, error_level="warn"):
        self.dir = os.path.join(workdir, name)
        os.makedirs(self.dir, exist_ok=True)
        self.conf = os.path.join(self.dir, "nginx.conf")
        self.port = port
        with open(self.conf, "w") as f:
            f.write(CONF % {
                "affinity": "" if cpu is None else
                "worker_cpu_affinity %s;" % ("01" if cpu == "0" else "10"),
                "rlimit": "worker_rlimit_nofile %d;" % rlimit_nofile if rlimit_nofile else "",
                "dir": self.dir, "error_level": error_level, "connections": worker_connections,
                "upstream": upstream, "server": server_block})
        super().__init__(["nginx", "-c", self.conf, "-p", self.dir], stop_signal=signal.SIGQUIT)

    def worker_pids(self):
        """The workers only: what serves requests."""
        return child_pids(self.proc.pid)

    def kill(self):
        """SIGKILL to the master, then to its worker: connections reset, the port refuses. The
        master goes first: a master that outlived its worker would fork a new one (which, once
        the master is gone too, serves on as an orphan)."""
        workers = self.worker_pids()
        for pid in [self.proc.pid] + workers:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait(5)
        # Something that still answers after this would make a drill against a live origin.
        if self.port and not wait_until(lambda: not port_open(self.port, timeout=0.2), 2, 0.05):
            raise RuntimeError("origin on port %d still accepts after SIGKILL" % self.port)

    def stop(self, timeout=None):
        if self.running():
            os.kill(self.proc.pid, self.stop_signal)
            try:
                self.proc.wait(self.stop_timeout if timeout is None else timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.proc.returncode


def hello_origin(workdir, port, cpu):
    """The benches' origin: "hello world\\n" (12 bytes) for every request. /slow answers the
    same, but at most about 1,000 requests per second, the rest waiting their turn: a burst of
    requests there keeps that many origin connections of a proxy busy at once (so its pool
    grows, bench/http1_compare.py idle_memory)."""
    # limit_req runs after `return` would have answered: the answer comes by try_files.
    server = ("listen 127.0.0.1:%d; location / { return 200 \"hello world\\n\"; } "
              "location = /slow { limit_req zone=slow burst=1000000; try_files /.none @hello; } "
              "location @hello { return 200 \"hello world\\n\"; }" % port)
    return Nginx(workdir, "origin", server, cpu, port=port,
                 upstream="limit_req_zone $server_port zone=slow:1m rate=1000r/s;").start()


def region_origin(workdir, name, port, region):
    """A drill origin: every request answered with its region (body and X-Origin-Region),
    /health with "ok"."""
    return Nginx(workdir, name, """
    listen 127.0.0.1:%(port)d reuseport;
    location /health { return 200 "ok\\n"; }
    location / {
      add_header X-Origin-Region %(region)s;
      return 200 "%(region)s\\n";
    }
  """ % {"port": port, "region": region}, port=port, worker_connections=4096,
                 rlimit_nofile=None, error_level="crit").start()


def brownout_region_origin(origin, region, mode="503", percent=50, tarpit_port=None):
    """Turns a running region_origin into a sick one and reloads it (SIGHUP; the master and its
    port stay, new workers take the new configuration). `percent` of the requests other than
    /health, picked per request (split_clients on $request_id), are answered badly: mode "503"
    answers them 503 at once; mode "slow" answers them 200 only after 3 s, by proxying them to
    `tarpit_port`, where something listens and never answers (the caller's). /health stays
    healthy: health checks do not see a brownout. Returns once a new worker runs and the old one
    is gone (with reuseport, an old worker that finishes its last requests still takes new
    connections on its own socket), or after 5 s."""
    split = """split_clients "${request_id}" $drill_brownout { %g%% "1"; * ""; }""" % percent
    if mode == "503":
        bad = "return 503;"
        extra = ""
    elif mode == "slow":
        if not tarpit_port:
            raise ValueError("a slow brownout needs a tarpit port")
        bad = "return 418;"
        extra = """
    location @slow {
      proxy_pass http://127.0.0.1:%(tarpit)d;
      proxy_connect_timeout 3s;
      proxy_read_timeout 3s;
      error_page 502 504 = @late;
    }
    location @late {
      add_header X-Origin-Region %(region)s;
      return 200 "%(region)s\\n";
    }""" % {"tarpit": tarpit_port, "region": region}
    else:
        raise ValueError("unknown brownout mode %r" % mode)
    server = """
    listen 127.0.0.1:%(port)d reuseport;
    recursive_error_pages on;
    location /health { return 200 "ok\\n"; }
    location / {
      error_page 418 = @slow;
      if ($drill_brownout) { %(bad)s }
      add_header X-Origin-Region %(region)s;
      return 200 "%(region)s\\n";
    }%(extra)s
  """ % {"port": origin.port, "region": region, "bad": bad, "extra": extra}
    if mode == "503":
        server = server.replace("      error_page 418 = @slow;\n", "")
    # The same settings as region_origin's, with the new blocks.
    with open(origin.conf, "w") as f:
        f.write(CONF % {"affinity": "", "rlimit": "", "dir": origin.dir, "error_level": "crit",
                        "connections": 4096, "upstream": split, "server": server})
    check = subprocess.run(["nginx", "-t", "-q", "-c", origin.conf, "-p", origin.dir],
                           capture_output=True, text=True)
    if check.returncode != 0:
        raise RuntimeError("brownout configuration refused: %s" % check.stderr.strip())
    before = set(origin.worker_pids())
    origin.signal(signal.SIGHUP)
    if not wait_until(lambda: set(origin.worker_pids()) - before, 5, 0.02):
        raise RuntimeError("nginx %s did not reload" % origin.dir)
    wait_until(lambda: not set(origin.worker_pids()) & before, 5, 0.02)

"""Helpers shared by the integration tests (tests/integration), the bench scripts (bench/) and
their smoke tests (tests/bench): processes on loopback, stopped by their PID, and what they need.

    process   free ports, waiting for readiness, Process (any command) and Sluice
    certs     the openssl command: a test CA, certificates it signs, OCSP responses
    etcd      an etcd member on loopback (Debian's etcd-server)
    metrics   the Prometheus text format parser
    admin     sluice's admin API with a bearer token, and its /metrics
    origins   the recording Python origin of the integration tests
    nginx     nginx origins and the nginx proxy of the benches
    debian    apt-get install of missing tools

ctest runs the tests with PYTHONPATH=<repo>/tests; bench/sluicetest is a symlink to this folder,
so `python3 bench/compare.py` finds it beside the script. Nothing here edits sys.path.
"""

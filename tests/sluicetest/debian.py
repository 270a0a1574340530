"""The tools a bench needs, from Debian: which are missing, and apt-get install of them (as root)
with /usr/sbin/policy-rc.d exiting 101 meanwhile, so the services the packages bring (nginx,
haproxy, etcd) are not started. `packages` maps a command to the package that provides it.
"""

import os
import shutil
import subprocess
import sys

POLICY = "/usr/sbin/policy-rc.d"


def missing(packages):
    """The packages whose command is not on PATH, sorted."""
    return sorted({packages[tool] for tool in packages if not shutil.which(tool)})


def install_missing(packages, recommends=True):
    """apt-get install the missing packages (recommends=False: --no-install-recommends). Exits
    with a message if some are missing and this is not root."""
    names = missing(packages)
    if not names:
        return
    if os.geteuid() != 0:
        sys.exit("missing %s; run as root with --install, or apt-get install them" %
                 " ".join(names))
    created = not os.path.exists(POLICY)
    if created:
        with open(POLICY, "w") as f:
            f.write("#!/bin/sh\nexit 101\n")
        os.chmod(POLICY, 0o755)
    try:
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "install", "-y", "-q"] +
                       ([] if recommends else ["--no-install-recommends"]) + names,
                       check=True, env=env, stdin=subprocess.DEVNULL)
    finally:
        if created:
            os.unlink(POLICY)


def require(packages):
    """Exits with what to install if a command is missing."""
    for tool, package in packages.items():
        if not shutil.which(tool):
            sys.exit("missing %s (apt-get install %s, or run with --install)" % (tool, package))

"""Secret files for the sluice a test starts (tunnel keys, admin tokens), written as an operator
should: readable by their owner only, so sluice has nothing to warn about."""

import os


def write_secrets(directory, files):
    """Writes each (name, text) of `files` into `directory` as `text` and a newline, mode 0600.
    Returns {name: path}."""
    paths = {}
    for name, text in files:
        path = os.path.join(directory, name)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text + "\n")
        paths[name] = path
    return paths

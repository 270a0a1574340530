"""The Prometheus text format (0.0.4), as sluice's /metrics writes it: one strict parser.

A sample's labels are a tuple of (name, value) pairs in the order of the text (values as
written, escapes kept); lookups by label set use frozenset(labels).
"""

import re

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def samples(text):
    """[(name, labels, value)] for every sample line, in order. Comments and blank lines are
    skipped; any other line raises ValueError."""
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        if not m:
            raise ValueError("not a sample line: %r" % line)
        out.append((m.group(1), tuple(LABEL.findall(m.group(3) or "")), float(m.group(4))))
    return out


def parse(text):
    """-> ({(name, frozenset(labels)): value}, {family: type from its # TYPE line})."""
    types = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            types[name] = kind
    return {(name, frozenset(labels)): value for name, labels, value in samples(text)}, types


def total(text, selector):
    """The sum of the samples a selector matches: a name, optionally with labels that must all
    be present, as in 'sluice_tls_handshakes_total{protocol="h2",resumed="false"}'."""
    name, _, wanted = selector.partition("{")
    wanted = set(LABEL.findall(wanted))
    return sum((value for sample, labels, value in samples(text)
                if sample == name and wanted <= set(labels)), 0.0)


def format_labels(labels):
    """The labels as the text writes them: 'a="x",b="y"'."""
    return ",".join('%s="%s"' % pair for pair in labels)

"""Synthetic stream-start history for the detector and the console: a daily curve per region,
in the CSV of POST /v1/history (steering/signal_history.h)."""

import math


def synthetic_history_csv(now, regions, days=15, fine_hours=24):
    """`days` of minutes and `fine_hours` of 10 s slots up to `now` (Unix seconds): region i has
    a daily sine of stream starts per second around 150 x (i + 1), five requests per start."""
    rows = ["# sluice-history/1", "time,span,region,entry_sps,serving_sps,requests_per_second"]

    def value(i, t):
        return 100 * (i + 1) * (1.5 + math.sin(2 * math.pi * (t % 86400) / 86400))

    for i, region in enumerate(regions):
        for t in range((now - days * 86400) // 60 * 60, now - 120, 60):
            v = value(i, t)
            rows.append("%d,60,%s,%.2f,%.2f,%.2f" % (t, region, v, v, v * 5))
        for t in range((now - fine_hours * 3600) // 10 * 10, now - 20, 10):
            v = value(i, t)
            rows.append("%d,10,%s,%.2f,%.2f,%.2f" % (t, region, v, v, v * 5))
    return "\n".join(rows) + "\n"

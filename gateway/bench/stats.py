"""Figures from samples and from /proc: medians, percentiles, resident memory and CPU time."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence


def median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile: with few rounds p99 is the worst round, which is what it should say."""
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def rss_kib(pid: int | str = "self") -> int:
    """Resident set size of a process in KiB (VmRSS), without psutil."""
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


def cpu_seconds() -> float:
    """User plus system CPU time of this process."""
    t = os.times()
    return t.user + t.system

"""Facts about the machine the process runs on (cores), read without importing any runtime."""

from __future__ import annotations

import os
from pathlib import Path


def physical_cores() -> int:
    """Physical CPU cores this process may use (hyper-threads not counted)."""
    allowed = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    cores: set[tuple[str, str]] = set()
    block: dict[str, str] = {}
    try:
        lines = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        lines = []
    for line in [*lines, ""]:
        key, _, value = line.partition(":")
        if key.strip():
            block[key.strip()] = value.strip()
        elif "core id" in block:
            cores.add((block.get("physical id", "0"), block["core id"]))
            block = {}
    return max(1, min(allowed, len(cores) or allowed))


def available_memory() -> int:
    """Bytes of memory available to new allocations now (``MemAvailable``; else total / 2)."""
    try:
        for line in Path("/proc/meminfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")) // 2
    except (ValueError, OSError, AttributeError):
        return 2**31

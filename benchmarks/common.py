"""Shared helpers for benchmark scripts: machine info, peak memory, timing, data paths."""

from __future__ import annotations

import os
import platform
import resource
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info() -> dict[str, object]:
    """CPU model, core count, OS, Python and key library versions."""
    from importlib import metadata

    info: dict[str, object] = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }
    for pkg in ("numpy", "scikit-learn", "torch", "timm", "onnxruntime"):
        with suppress(metadata.PackageNotFoundError):
            info[pkg] = metadata.version(pkg)
    try:
        import torch

        info["torch_threads"] = torch.get_num_threads()
        info["cuda"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    except ImportError:
        pass
    return info


def peak_rss_mb() -> float:
    """Peak resident memory of this process (and finished children), in MB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, kids) / 1024.0


@contextmanager
def timer(results: dict[str, float], key: str) -> Iterator[None]:
    """Store the wall seconds of the block in ``results[key]``."""
    start = time.perf_counter()
    yield
    results[key] = round(time.perf_counter() - start, 2)


def print_machine() -> None:
    for k, v in machine_info().items():
        print(f"  {k}: {v}")

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


SIMD_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8")


def cpu_flags() -> str:
    """The SIMD flags that decide which kernels run (AVX2, AVX-512, VNNI for int8), as listed by the CPU."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                have = set(line.split(":", 1)[1].split())
                return " ".join(f for f in SIMD_FLAGS if f in have) or "none of " + ", ".join(SIMD_FLAGS)
    except OSError:
        pass
    return "unknown"


def machine_info() -> dict[str, object]:
    """CPU model and SIMD flags, core count, OS, Python and key library versions."""
    from importlib import metadata

    info: dict[str, object] = {
        "cpu": cpu_model(),
        "cpu_flags": cpu_flags(),
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }
    for pkg in ("numpy", "scikit-learn", "torch", "timm", "onnxruntime", "ai-edge-litert"):
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

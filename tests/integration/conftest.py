"""Fixtures for whole-pipeline tests: a messy real folder and a CLI runner."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tests.conftest import draw_shape, make_image_folder

from imgrec.cli.main import main


def add_odd_images(root: Path, seed: int = 5) -> dict[str, Path]:
    """Add the awkward files a real photo folder has: modes, EXIF rotation, corruption."""
    rng = np.random.default_rng(seed)
    odd: dict[str, Path] = {}
    base = lambda kind: draw_shape(kind, rng, 48)  # noqa: E731
    odd["gray"] = root / "circle" / "gray L.png"
    base("circle").convert("L").save(odd["gray"])
    odd["cmyk"] = root / "square" / "cmyk.jpg"
    base("square").convert("CMYK").save(odd["cmyk"], "JPEG")
    odd["rgba"] = root / "stripes" / "alpha.png"
    base("stripes").convert("RGBA").save(odd["rgba"])
    odd["16bit"] = root / "circle" / "deep16.png"
    arr16 = np.asarray(base("circle").convert("L"), dtype=np.uint16) * 257
    Image.fromarray(arr16).save(odd["16bit"])
    odd["exif"] = root / "square" / "rotated.jpg"
    im = base("square")
    exif = im.getexif()
    exif[0x0112] = 6
    im.save(odd["exif"], "JPEG", exif=exif.tobytes())
    odd["corrupt"] = root / "circle" / "corrupt.jpg"
    odd["corrupt"].write_bytes(b"\xff\xd8\xff\xe0" + bytes(200))
    return odd


@pytest.fixture(scope="session")
def messy_folder(tmp_path_factory) -> Path:
    """Three classes x 24 images, in a path with a space, plus odd and one corrupt file."""
    root = tmp_path_factory.mktemp("data") / "my photos"
    make_image_folder(root, per_class=24, seed=3)
    add_odd_images(root)
    return root


@pytest.fixture
def cli(capsys):
    """Run ``imgrec ...`` in-process; returns (exit code, stdout, stderr)."""

    def run(*args: str) -> tuple[int, str, str]:
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


def run_subprocess(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run the real console script in a child process."""
    exe = shutil.which("imgrec", path=str(Path(sys.executable).parent)) or "imgrec"
    return subprocess.run([exe, *map(str, args)], capture_output=True, text=True, timeout=timeout)

"""MediaPipe's selfie segmenter for ``imgrec cutout``: a local file, or the official file downloaded
on request (served here from 127.0.0.1), checked by its sha256 and cached; nothing otherwise."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from tests.imported_segmenters import SELFIE, photo, segmentation_file

from imgrec.errors import DataError, MissingInputError, ModelFileError, UsageError
from imgrec.inference import Predictor
from imgrec.models import selfie

pytestmark = [pytest.mark.realdata]


@contextmanager
def serving(payload: bytes) -> Iterator[tuple[str, list[str]]]:
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/selfie_segmentation.tflite", hits
    finally:
        server.shutdown()
        thread.join()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("IMGREC_HOME", str(tmp_path))
    for key in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(key, raising=False)
    return tmp_path


def test_the_pinned_digest_is_the_shared_file(home):
    from imgrec.models.external import file_sha256

    assert file_sha256(segmentation_file(SELFIE)) == selfie.SELFIE_FILE.sha256


def test_download_on_request_sha256_checked_then_cached(home, monkeypatch):
    payload = segmentation_file(SELFIE).read_bytes()
    with pytest.raises(UsageError, match=r"--weights selfie_segmentation\.tflite"):
        selfie.selfie_file()  # nothing asked: no network, a message naming the file
    with serving(payload) as (url, hits):
        monkeypatch.setattr(selfie, "SELFIE_FILE", dataclasses.replace(selfie.SELFIE_FILE, url=url))
        path = selfie.selfie_file(download=True)
        assert path.parent == home / "weights" and path.read_bytes() == payload and len(hits) == 1
        assert selfie.selfie_file() == path and len(hits) == 1  # the cached copy, no second request
        model, meta = selfie.selfie_segmenter()
        (seg,) = Predictor(model, meta).predict(photo("face.jpg"))
        assert float((seg.mask == 1).mean()) > 0.4
        bad = dataclasses.replace(selfie.SELFIE_FILE, url=url + "?v=2", sha256="0" * 64)
        monkeypatch.setattr(selfie, "SELFIE_FILE", bad)
        with pytest.raises(DataError, match="sha256"):
            selfie.selfie_file(download=True)
    assert len(list((home / "weights").iterdir())) == 1  # the mismatching download was not kept


def test_offline_download_and_wrong_files_say_what_to_pass(home, monkeypatch, tmp_path):
    dead = dataclasses.replace(selfie.SELFIE_FILE, url="http://127.0.0.1:9/selfie_segmentation.tflite")
    monkeypatch.setattr(selfie, "SELFIE_FILE", dead)
    with pytest.raises(MissingInputError, match=r"--weights selfie_segmentation\.tflite"):
        selfie.selfie_file(download=True)
    with pytest.raises(MissingInputError, match="not found"):
        selfie.selfie_file(tmp_path / "absent.tflite")
    deeplab = segmentation_file("deeplabv3_mnv2_pascal_quant.tflite")
    with pytest.raises(ModelFileError, match="class indices"):
        selfie.selfie_segmenter(deeplab)

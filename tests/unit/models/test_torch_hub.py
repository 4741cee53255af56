"""Weight downloads against a real HTTP server on 127.0.0.1, and reading state-dict files."""

from __future__ import annotations

import hashlib
import http.server
import socket
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from imgrec.errors import ConfigError, DataError, MissingInputError, ModelFileError
from imgrec.models import hub


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path, list[str]]]:
    """Serve ``tmp_path/www`` on a free loopback port; yields (base URL, folder, request paths)."""
    www = tmp_path / "www"
    www.mkdir()
    seen: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # keep test output clean
            pass

        def do_GET(self) -> None:
            seen.append(self.path)
            super().do_GET()

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(www)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", www, seen
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def test_download_streams_into_the_cache_once(server, tmp_path: Path) -> None:
    base, www, seen = server
    payload = bytes(range(256)) * 5000
    (www / "net.safetensors").write_bytes(payload)
    digest = hashlib.sha256(payload).hexdigest()
    path = hub.download(f"{base}/net.safetensors", tmp_path / "cache", sha256=digest)
    assert path.read_bytes() == payload and path.name.endswith("-net.safetensors")
    assert hub.download(f"{base}/net.safetensors", tmp_path / "cache", sha256=digest) == path
    assert seen == ["/net.safetensors"]  # the second call used the cached file
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [path.name]  # no temp files left


def test_sha256_mismatch_keeps_nothing(server, tmp_path: Path) -> None:
    base, www, _ = server
    (www / "w.pth").write_bytes(b"weights")
    with pytest.raises(DataError, match="sha256"):
        hub.download(f"{base}/w.pth", tmp_path / "cache", sha256="0" * 64)
    assert list((tmp_path / "cache").iterdir()) == []


def test_http_errors_and_unreachable_hosts_are_clear(server, tmp_path: Path) -> None:
    base, _, _ = server
    with pytest.raises(MissingInputError, match="HTTP 404"):
        hub.download(f"{base}/missing.pth", tmp_path)
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(MissingInputError, match="Cannot reach"):
        hub.download(f"http://127.0.0.1:{port}/w.pth", tmp_path)
    assert not hub.reachable("127.0.0.1", port, timeout=1)
    with pytest.raises(ConfigError, match="http"):
        hub.download("ftp://example.org/w.pth", tmp_path)


def test_cache_dir_follows_imgrec_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("IMGREC_HOME", str(tmp_path))
    assert hub.cache_dir() == tmp_path / "weights"
    monkeypatch.delenv("IMGREC_HOME")
    assert hub.cache_dir() == Path.home() / ".cache" / "imgrec" / "weights"


def test_weights_url_builds_a_model(server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from safetensors.torch import save_file

    from imgrec.models import create_model

    base, www, _ = server
    donor = create_model("cnn-bn", ["a", "b"], image_size=12)
    save_file(donor.state_tensors(), str(www / "donor.safetensors"))
    monkeypatch.setenv("IMGREC_HOME", str(tmp_path / "home"))
    m = create_model("cnn-bn", ["a", "b", "c"], image_size=12, weights=f"{base}/donor.safetensors")
    assert torch.equal(m.module.features[0].weight, donor.module.features[0].weight)
    assert len(list((tmp_path / "home" / "weights").iterdir())) == 1


def test_read_state_dict_unwraps_and_rejects(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    torch.save({"model": {"w": torch.ones(2)}, "step": 4}, tmp_path / "ckpt.pt")
    assert list(hub.read_state_dict(tmp_path / "ckpt.pt")) == ["w"]
    torch.save({"step": 4}, tmp_path / "empty.pt")
    with pytest.raises(ModelFileError, match="no tensors"):
        hub.read_state_dict(tmp_path / "empty.pt")
    (tmp_path / "bad.safetensors").write_bytes(b"garbage")
    with pytest.raises(ModelFileError, match="not a valid safetensors"):
        hub.read_state_dict(tmp_path / "bad.safetensors")

"""`imgrec serve` flags -> ServeConfig, and its refusals before any server starts."""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys

import pytest

from imgrec.cli import serve_cmd
from imgrec.errors import MissingInputError, OutputError


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="imgrec")
    serve_cmd.register(parser.add_subparsers())
    return parser.parse_args(["serve", *argv])


def test_defaults_bind_loopback_port_8000():
    args = _parse("runs/a")
    assert (args.host, args.port, args.api_key_file) == ("127.0.0.1", 8000, None)
    assert serve_cmd._overrides(args) == {}


def test_flags_become_serve_config_values():
    from imgrec.serve import ServeConfig

    args = _parse(
        "runs/a", "--max-batch-size", "1", "--max-wait-ms", "2.5", "--queue-size", "9",
        "--max-upload-mb", "1.5", "--workers-threads", "3", "--request-timeout-s", "4", "--threads", "1",
    )  # fmt: skip
    cfg = ServeConfig.from_dict(serve_cmd._overrides(args))
    assert (cfg.max_batch_size, cfg.max_wait_ms, cfg.queue_size, cfg.workers_threads) == (1, 2.5, 9, 3)
    assert cfg.max_upload_bytes == int(1.5 * 1024 * 1024) and cfg.request_timeout_s == 4.0
    assert cfg.model_threads == 1


def test_a_missing_run_is_missing_input_exit_66(tmp_path):
    args = _parse(str(tmp_path / "runs" / "nope-1"))
    with pytest.raises(MissingInputError, match="nope-1") as info:
        serve_cmd.cmd_serve(args)
    assert info.value.exit_code == 66


def test_a_port_in_use_is_an_output_error():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(OutputError, match="another --port"):
            serve_cmd._bind("127.0.0.1", taken.getsockname()[1])


def test_bind_port_zero_picks_a_free_port_and_the_url_names_it():
    sock = serve_cmd._bind("127.0.0.1", 0)
    try:
        port = sock.getsockname()[1]
        assert port > 0 and serve_cmd._url("127.0.0.1", port) == f"http://127.0.0.1:{port}/"
    finally:
        sock.close()
    assert serve_cmd._url("::1", 80) == "http://[::1]:80/"


def test_importing_imgrec_serve_does_not_import_fastapi():
    code = "import sys, imgrec.serve; print('fastapi' in sys.modules, 'uvicorn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_listening_socket_is_tcp_so_asyncio_disables_nagle():
    """Without proto=IPPROTO_TCP asyncio skips TCP_NODELAY and keep-alive replies stall ~40 ms."""
    import socket

    from imgrec.cli.serve_cmd import _bind

    sock = _bind("127.0.0.1", 0)
    try:
        assert sock.proto == socket.IPPROTO_TCP
    finally:
        sock.close()

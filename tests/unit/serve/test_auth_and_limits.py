"""API keys, the config, and the upload limit counted while the body streams in."""

from __future__ import annotations

import asyncio
import logging

import pytest
from tests.unit.serve.helpers import make_predictor, png_bytes

from imgrec.errors import ConfigError, MissingInputError
from imgrec.serve import ServeConfig, create_app, load_api_keys
from imgrec.serve.auth import key_matches

PREDICT = "/v1/models/bright/predict"
KEYS = ("first-key-123", "second-key-456")


@pytest.fixture
def secured(make_client):
    return make_client(api_keys=KEYS)


def _post(client, **headers):
    return client.post(PREDICT, files={"file": ("a.png", png_bytes(), "image/png")}, headers=headers)


def test_missing_key_is_401_and_wrong_key_403(secured):
    r = _post(secured)
    assert r.status_code == 401 and r.json()["error"]["code"] == "auth_required"
    assert r.headers["www-authenticate"] == "Bearer"
    for headers in ({"Authorization": "Bearer nope"}, {"X-API-Key": "first-key-12"}):
        r = _post(secured, **headers)
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    assert secured.get("/v1/models").status_code == 401
    assert secured.get("/metrics").status_code == 401


def test_either_header_with_any_configured_key_is_accepted(secured):
    assert _post(secured, Authorization="Bearer second-key-456").status_code == 200
    assert _post(secured, **{"X-API-Key": "first-key-123"}).status_code == 200
    assert secured.get("/metrics", headers={"X-API-Key": "first-key-123"}).status_code == 200


def test_health_readiness_and_the_page_stay_open(secured):
    assert secured.get("/healthz").status_code == 200
    assert secured.get("/readyz").status_code == 200
    page = secured.get("/")
    assert page.status_code == 200 and 'data-auth="true"' in page.text


def test_keys_never_reach_the_logs_or_the_openapi_document(secured, caplog):
    caplog.set_level(logging.DEBUG)
    _post(secured, Authorization="Bearer wrong-key-789")
    _post(secured, Authorization="Bearer first-key-123")
    text = caplog.text + secured.get("/openapi.json").text
    assert "first-key-123" not in text and "wrong-key-789" not in text
    assert "first-key-123" not in repr(ServeConfig(api_keys=KEYS))


def test_key_matches_checks_every_key():
    assert key_matches("b", ["a", "b"]) and not key_matches("c", ["a", "b"]) and not key_matches("", ["a"])
    assert not key_matches("ä", ["a"])


def test_load_api_keys_from_file_and_environment(tmp_path):
    path = tmp_path / "keys.txt"
    path.write_text("# team keys\nalpha\n\n  beta  \n#gamma\n", encoding="utf-8")
    assert load_api_keys(path, environ={}) == ("alpha", "beta")
    assert load_api_keys(path, environ={"IMGREC_API_KEYS": "env1, beta,"}) == ("env1", "beta", "alpha")
    assert load_api_keys(None, environ={}) == ()


def test_load_api_keys_refuses_missing_and_empty_files(tmp_path):
    with pytest.raises(MissingInputError):
        load_api_keys(tmp_path / "absent.txt", environ={})
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing here\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="no key"):
        load_api_keys(empty, environ={})


@pytest.mark.parametrize(
    ("values", "match"),
    [
        ({"max_batch_size": 0}, "max_batch_size"),
        ({"max_wait_ms": -1}, "max_wait_ms"),
        ({"model_threads": 0}, "model_threads"),
        ({"top_k_default": 10, "top_k_max": 5}, "top_k_default"),
        ({"allowed_formats": ("JPEG", "HEIC")}, "HEIC"),
        ({"nope": 1}, "Unknown ServeConfig key"),
    ],
)
def test_serve_config_validates(values, match):
    with pytest.raises(ConfigError, match=match):
        ServeConfig.from_dict(values)


def test_model_threads_default_to_the_cores_the_decode_threads_leave():
    from imgrec.machine import physical_cores

    assert ServeConfig(workers_threads=1).threads_per_model == max(1, physical_cores() - 1)
    assert ServeConfig(workers_threads=64).threads_per_model == 1
    assert ServeConfig(model_threads=3).threads_per_model == 3


def test_serve_config_from_strings_and_describe():
    cfg = ServeConfig.from_dict({"max-batch-size": "4", "max_wait_ms": "2.5", "request_timeout_s": "3"})
    assert (cfg.max_batch_size, cfg.max_wait_ms, cfg.request_timeout_s) == (4, 2.5, 3.0)
    assert all(ServeConfig.describe().values())
    assert cfg.decode_limits.max_bytes == cfg.max_upload_bytes


def test_a_chunked_upload_is_cut_off_at_the_limit_without_reading_it_all():
    """No Content-Length: the body is counted chunk by chunk and refused once over the limit."""
    app = create_app({"bright": make_predictor()}, ServeConfig(max_upload_bytes=100_000))
    pulled, sent = [], []
    chunk = b"\xff" * 65536

    async def receive():
        pulled.append(len(chunk))
        return {"type": "http.request", "body": chunk, "more_body": len(pulled) < 10_000}

    async def send(message):
        sent.append(message)

    async def main():
        service = app.state.service
        await service.start()
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
            "path": PREDICT, "raw_path": PREDICT.encode(), "query_string": b"", "root_path": "",
            "headers": [(b"content-type", b"image/jpeg"), (b"transfer-encoding", b"chunked")],
            "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80),
        }  # fmt: skip
        await app(scope, receive, send)
        await service.stop()

    asyncio.run(main())
    assert sent[0]["status"] == 413
    assert len(pulled) <= 3  # 100 kB limit, 64 kB chunks: stopped on the second or third
    assert b"payload_too_large" in b"".join(m.get("body", b"") for m in sent[1:])

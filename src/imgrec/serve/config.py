"""``ServeConfig``: every limit of the HTTP service in one frozen dataclass, and API keys.

Example:
    >>> cfg = ServeConfig.from_dict({"max_batch_size": "8", "max_wait_ms": "2"})
    >>> cfg.max_batch_size, cfg.max_wait_ms
    (8, 2.0)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from imgrec.config import _check, _Config, _why
from imgrec.errors import ConfigError, MissingInputError
from imgrec.imaging import ALLOWED_FORMATS, DEFAULT_LIMITS, DecodeLimits

API_KEYS_ENV = "IMGREC_API_KEYS"


@dataclass(frozen=True)
class ServeConfig(_Config):
    """Limits and behaviour of ``create_app`` / ``imgrec serve``."""

    max_upload_bytes: int = _why("request bodies above this are refused with 413 while they stream in", 20 << 20)
    allowed_formats: tuple[str, ...] = _why(
        "image formats accepted, sniffed from bytes (415 otherwise)", ALLOWED_FORMATS
    )
    max_pixels: int = _why(
        "width x height above which an image is refused with 422 (decompression bombs); the CLI's limit too",
        DEFAULT_LIMITS.max_pixels,
    )
    max_images_per_request: int = _why("files one request may carry; more is a 400", 32)
    max_batch_size: int | None = _why(
        "images per model call; None: each model's own batch size (32 classify, 8 detect); 1: no micro-batching",
        None,
    )
    max_wait_ms: float = _why("how long a batch waits for more images after its first one", 5.0)
    queue_size: int = _why("images waiting per model; beyond it requests get 503 overloaded at once", 256)
    request_timeout_s: float = _why("deadline of one request; past it the answer is 503 deadline_exceeded", 30.0)
    workers_threads: int = _why("threads decoding and preparing uploads, off the event loop", 2)
    model_threads: int | None = _why(
        "CPU threads for the model math (torch, ONNX Runtime, BLAS); None: the physical cores the decode "
        "threads leave, at least 1",
        None,
    )
    top_k_default: int = _why("classes returned per image when the request does not say", 5)
    top_k_max: int = _why("largest top_k a request may ask for (422 above)", 100)
    retry_after_s: int = _why("seconds sent in Retry-After with 503 answers", 1)
    graceful_timeout_s: float = _why("on SIGTERM, how long in-flight requests get to finish", 30.0)
    api_keys: tuple[str, ...] = _why("accepted API keys; empty means no authentication", (), repr=False)

    def validate(self) -> None:
        for name in ("max_upload_bytes", "max_pixels", "max_images_per_request"):
            _check(getattr(self, name) >= 1, f"{name} must be >= 1; received {getattr(self, name)}.")
        _check(
            self.max_batch_size is None or self.max_batch_size >= 1,
            f"max_batch_size must be >= 1 or None; received {self.max_batch_size}.",
        )
        for name in ("queue_size", "workers_threads", "top_k_default", "top_k_max"):
            _check(getattr(self, name) >= 1, f"{name} must be >= 1; received {getattr(self, name)}.")
        _check(
            self.model_threads is None or self.model_threads >= 1,
            f"model_threads must be >= 1 or None; received {self.model_threads}.",
        )
        _check(self.max_wait_ms >= 0, f"max_wait_ms must be >= 0; received {self.max_wait_ms}.")
        _check(self.request_timeout_s > 0, f"request_timeout_s must be > 0; received {self.request_timeout_s}.")
        _check(self.top_k_default <= self.top_k_max, "top_k_default must not exceed top_k_max.")
        _check(self.retry_after_s >= 0 and self.graceful_timeout_s >= 0, "retry/graceful times must be >= 0.")
        bad = [f for f in self.allowed_formats if f not in ALLOWED_FORMATS]
        _check(not bad, f"allowed_formats {bad} are not decodable; choose from {', '.join(ALLOWED_FORMATS)}.")
        _check(all(k.strip() == k and k for k in self.api_keys), "API keys must be non-empty, without spaces around.")

    def __post_init__(self) -> None:
        object.__setattr__(self, "allowed_formats", tuple(self.allowed_formats))
        object.__setattr__(self, "api_keys", tuple(self.api_keys))
        self.validate()

    @property
    def decode_limits(self) -> DecodeLimits:
        """The limits every uploaded image is decoded under."""
        return DecodeLimits(max_pixels=self.max_pixels, max_bytes=self.max_upload_bytes, formats=self.allowed_formats)

    @property
    def threads_per_model(self) -> int:
        """``model_threads``, or the physical cores left after the decode threads (at least 1).

        Idle math threads spin at every parallel step, so a model that takes every core competes
        with the decode threads and the event loop: on a 2-core machine under load, 2 torch
        threads served 8x fewer requests/s than 1 (benchmarks/serve_load.py --threads).
        """
        if self.model_threads is not None:
            return self.model_threads
        from imgrec.machine import physical_cores

        return max(1, physical_cores() - self.workers_threads)

    @property
    def auth_enabled(self) -> bool:
        return bool(self.api_keys)


def load_api_keys(path: str | Path | None = None, environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """API keys from a file (one per line; lines starting with ``#`` are comments) and the ``IMGREC_API_KEYS`` variable.

    Args:
        path: a key file; a missing file raises MissingInputError, one without keys ConfigError.
        environ: where to read ``IMGREC_API_KEYS`` (comma-separated); defaults to ``os.environ``.

    Example:
        >>> load_api_keys(environ={"IMGREC_API_KEYS": "k1, k2"})
        ('k1', 'k2')
    """
    env = os.environ if environ is None else environ
    keys = [k.strip() for k in env.get(API_KEYS_ENV, "").split(",") if k.strip()]
    if path is not None:
        keys += _read_key_file(Path(path))
    return tuple(dict.fromkeys(keys))


def _read_key_file(path: Path) -> list[str]:
    if not path.is_file():
        raise MissingInputError(f"API key file not found: {path}")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"Cannot read the API key file {path}: {exc}") from None
    keys = [k for k in (line.strip() for line in lines) if k and not k.startswith("#")]
    if not keys:
        raise ConfigError(
            f"The API key file {path} holds no key; expected one key per line (# starts a comment). "
            "Add a key, or leave out --api-key-file to serve without authentication."
        )
    return keys

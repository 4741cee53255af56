"""Where weights come from: http(s) downloads into a cache, timm's published weights, local files.

Downloads stream to a temp file that is checked and renamed into place. Nothing here runs at
import (torch is imported inside the functions), and nothing touches the network unless called.

Example:
    >>> cache_dir().name in ("weights",)
    True
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import logging
import os
import re
import socket
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from imgrec.errors import (
    ConfigError,
    DataError,
    ImgrecError,
    MissingInputError,
    ModelFileError,
    OutputError,
)

log = logging.getLogger(__name__)
CHUNK = 1 << 20
TIMEOUT_S = 30.0


def cache_dir() -> Path:
    """Where downloaded weights are kept: ``$IMGREC_HOME/weights`` or ``~/.cache/imgrec/weights``."""
    home = os.environ.get("IMGREC_HOME")
    base = Path(home) if home else Path.home() / ".cache" / "imgrec"
    return base / "weights"


def is_url(value: str) -> bool:
    """True for ``http://`` and ``https://`` addresses."""
    return urllib.parse.urlsplit(str(value)).scheme in ("http", "https")


def file_name(url: str) -> str:
    """A safe local file name for ``url`` (its last path part, prefixed by a short hash)."""
    part = Path(urllib.parse.urlsplit(url).path).name or "weights"
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", part)
    return f"{hashlib.sha256(url.encode()).hexdigest()[:8]}-{safe}"


def download(url: str, dest_dir: str | Path | None = None, sha256: str | None = None) -> Path:
    """Download ``url`` into ``dest_dir`` (default :func:`cache_dir`) unless already there.

    The body is streamed into a temp file in ``dest_dir`` and renamed into place only when
    complete (and, with ``sha256``, only when the digest matches), so an interrupted download
    never leaves a half file under the final name.

    Args:
        url: an http(s) address.
        dest_dir: folder to keep the file in.
        sha256: expected hex digest; a mismatch raises DataError and keeps nothing.

    Returns:
        The local path.

    Example:
        >>> # path = download("https://example.org/resnet18.safetensors", sha256="ab12...")
    """
    if not is_url(url):
        raise ConfigError(f"Expected an http:// or https:// URL; received {url!r}.")
    folder = Path(dest_dir) if dest_dir is not None else cache_dir()
    target = folder / file_name(url)
    if target.is_file() and (sha256 is None or _digest(target) == sha256.lower()):
        log.info("using cached %s", target)
        return target
    _mkdir(folder)
    tmp = _fetch(url, folder)
    try:
        _check_digest(tmp, url, sha256)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    log.info("downloaded %s to %s", url, target)
    return target


def download_prefixed(url: str) -> Path:
    """:func:`download` a file whose name ends in the first hex digits of its sha256
    (``deeplabv3_resnet50_coco-cd0a2569.pth``, torchvision's convention), and check them.

    Raises:
        ModelFileError: the name carries no digest, or the file does not match it (nothing is kept).
    """
    stem = file_name(url).rsplit(".", 1)[0]
    prefix = stem.rsplit("-", 1)[-1].lower() if "-" in stem else ""
    if len(prefix) < 6 or any(c not in "0123456789abcdef" for c in prefix):
        raise ModelFileError(f"{url}: expected a file name ending in -<sha256 prefix>; received {file_name(url)!r}.")
    path = download(url)
    if not _digest(path).startswith(prefix):
        path.unlink(missing_ok=True)
        raise ModelFileError(f"The file downloaded from {url} does not match the sha256 prefix {prefix!r}.")
    return path


def _mkdir(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"Cannot create the download folder {folder}: {exc.strerror or exc}") from None


def _fetch(url: str, folder: Path) -> Path:
    """Stream the body into a temp file in ``folder``; return its path."""
    fd, name = tempfile.mkstemp(prefix=".download-", dir=folder)
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as out, _open(url) as resp:
            while chunk := resp.read(CHUNK):
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
    except ImgrecError:
        tmp.unlink(missing_ok=True)
        raise
    except (OSError, http.client.HTTPException) as exc:
        tmp.unlink(missing_ok=True)
        raise MissingInputError(f"Download of {url} failed part-way: {exc}. Try again.") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def _open(url: str):  # type: ignore[no-untyped-def]
    request = urllib.request.Request(url, headers={"User-Agent": "imgrec"})
    try:
        return urllib.request.urlopen(request, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as exc:
        raise MissingInputError(
            f"Download of {url} failed: HTTP {exc.code} {exc.reason}. Check the address, or "
            "download the file yourself and pass its local path."
        ) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise MissingInputError(
            f"Cannot reach {url}: {reason}. Are you offline? Download the file on a connected "
            "machine and pass its local path instead."
        ) from None


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(CHUNK):
            h.update(block)
    return h.hexdigest()


def _check_digest(path: Path, url: str, sha256: str | None) -> None:
    if sha256 is None:
        return
    got = _digest(path)
    if got != sha256.lower():
        raise DataError(
            f"The file downloaded from {url} has sha256 {got}, but {sha256.lower()} was expected. "
            "The file changed or the download was corrupted; nothing was kept. Check the digest."
        )


# ---------------------------------------------------------------- timm's published weights


def cached_pretrained(timm_name: str) -> Path | None:
    """A local copy of timm's published weights for ``timm_name`` (Hugging Face or torch.hub cache)."""
    import timm

    cfg = timm.get_pretrained_cfg(timm_name)
    if cfg is None:
        return None
    if cfg.hf_hub_id:
        from huggingface_hub import try_to_load_from_cache

        for fname in filter(None, (cfg.hf_hub_filename, "model.safetensors", "pytorch_model.bin")):
            hit = try_to_load_from_cache(cfg.hf_hub_id, fname)
            if isinstance(hit, str):
                return Path(hit)
    if cfg.url:
        import torch.hub

        path = Path(torch.hub.get_dir()) / "checkpoints" / Path(urllib.parse.urlsplit(str(cfg.url)).path).name
        if path.is_file():
            return path
    return None


def pretrained_host(timm_name: str) -> str:
    """The server timm would download ``timm_name``'s weights from."""
    import timm

    cfg = timm.get_pretrained_cfg(timm_name)
    if cfg is not None and cfg.hf_hub_id:
        endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
        return urllib.parse.urlsplit(endpoint).hostname or "huggingface.co"
    if cfg is not None and cfg.url:
        return urllib.parse.urlsplit(str(cfg.url)).hostname or ""
    raise ConfigError(
        f"timm publishes no pretrained weights for {timm_name}; train from scratch or pass weights=FILE."
    )


def reachable(host: str, port: int = 443, timeout: float = 3.0) -> bool:
    """Whether a TCP connection to ``host`` opens quickly (always True behind a proxy)."""
    if any(os.environ.get(k) for k in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return True
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError:
        return False
    return True


@contextlib.contextmanager
def quiet_downloads() -> Iterator[None]:
    """Silence Hugging Face's retry warnings and progress bars (the library never prints)."""
    from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

    logger = logging.getLogger("huggingface_hub")
    level, bars_off = logger.level, are_progress_bars_disabled()
    logger.setLevel(logging.ERROR)
    disable_progress_bars()
    try:
        yield
    finally:
        logger.setLevel(level)
        if not bars_off:
            enable_progress_bars()


# ---------------------------------------------------------------- local files

MIN_MATCH = 0.5  # fraction of a model's (non-head) values a weights file must fill
STATE_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin", ".ckpt")
_NESTED = ("state_dict", "model", "model_state", "model_state_dict", "module")


def read_state_dict(path: str | Path) -> dict[str, Any]:
    """Read a state dict: ``.safetensors``, or ``.pth/.pt/.bin/.ckpt`` with ``torch.load(weights_only=True)``.

    A dict nested under ``"state_dict"``/``"model"`` is unwrapped; entries that are not tensors
    are dropped. Nothing in the file is executed.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingInputError(f"Weights file not found: {path}")
    suffix = path.suffix.lower()
    if suffix not in STATE_SUFFIXES:
        raise ConfigError(
            f"Unsupported weights file {path.name!r}: expected one of {', '.join(STATE_SUFFIXES)}."
        )
    raw = _read_safetensors(path) if suffix == ".safetensors" else _read_torch(path)
    return _tensors_only(_unwrap(raw), path)


def _read_safetensors(path: Path) -> Any:
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except Exception as exc:  # safetensors raises its own untyped errors
        raise ModelFileError(f"{path} is not a valid safetensors file: {exc}") from None


def _read_torch(path: Path) -> Any:
    import torch

    try:
        return torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # UnpicklingError, RuntimeError, EOFError... all mean "bad file"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelFileError(
            f"{path} is not a PyTorch state dict that can be loaded safely ({first}). Expected "
            "a file saved with torch.save(model.state_dict(), ...) or a .safetensors file."
        ) from None


def _unwrap(obj: Any) -> Any:
    while isinstance(obj, Mapping):
        inner = next((obj[k] for k in _NESTED if isinstance(obj.get(k), Mapping)), None)
        if inner is None:
            break
        obj = inner
    return obj


def _tensors_only(obj: Any, path: Path) -> dict[str, Any]:
    import torch

    if not isinstance(obj, Mapping):
        raise ModelFileError(f"{path} holds a {type(obj).__name__}, not a state dict (a mapping of name -> tensor).")
    tensors = {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise ModelFileError(f"{path} holds no tensors; expected a state dict of model weights.")
    if len(tensors) < len(obj):
        log.info("%s: ignored %d entries that are not tensors", path, len(obj) - len(tensors))
    return tensors


def match_state(own: Mapping[str, Any], state: Mapping[str, Any], heads: set[str], source: str) -> dict[str, Any]:
    """The tensors of ``state`` that fit a model whose state dict is ``own``.

    ``module.``/``_orig_mod.`` prefixes are stripped; head tensors of another shape (another
    class count) are left out so the head keeps its fresh initialization; an RGB stem kernel
    is summed for a 1-channel model. Missing and unexpected keys are logged; a file that fills
    less than half of the non-head weights raises ModelFileError (a wrong model file).
    """
    state = {_strip(k): v for k, v in state.items()}
    kept, new_head = {}, []
    for key, value in state.items():
        fitted = _fit_tensor(value, own[key]) if key in own else None
        if fitted is not None:
            kept[key] = fitted
        elif key in heads:
            new_head.append(key)
    _check_coverage(own, heads, kept, source)
    if new_head:
        log.info("%s: new head (the file has another class count): %s", source, ", ".join(new_head))
    missing = sorted(set(own) - set(kept) - heads)
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        log.warning("%s: %d missing keys %s; %d unexpected keys %s", source, len(missing), missing[:5],
                    len(unexpected), unexpected[:5])
    return kept


def best_prefix_fit(
    own: Mapping[str, Any], state: Mapping[str, Any], prefixes: tuple[str, ...]
) -> dict[str, Any]:
    """The tensors of ``state`` that fit ``own`` key for key and shape for shape, after removing
    whichever of ``prefixes`` fills the most (a backbone taken from another model's file)."""
    best: dict[str, Any] = {}
    for prefix in prefixes:
        cut = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        fit = {k: v for k, v in cut.items() if k in own and tuple(own[k].shape) == tuple(v.shape)}
        best = fit if len(fit) > len(best) else best
    return best


def _strip(key: str) -> str:
    for prefix in ("module.", "_orig_mod."):
        while key.startswith(prefix):
            key = key[len(prefix):]
    return key


def _fit_tensor(value: Any, target: Any) -> Any:
    """``value`` shaped like ``target``: as is, an RGB stem kernel summed for 1 channel, or None."""
    if value.shape == target.shape:
        return value
    rgb_to_gray = (
        value.ndim == 4 and target.ndim == 4 and value.shape[1] == 3 and target.shape[1] == 1
        and value.shape[0] == target.shape[0] and value.shape[2:] == target.shape[2:]
    )
    return value.sum(dim=1, keepdim=True) if rgb_to_gray else None


def _check_coverage(own: Mapping[str, Any], heads: set[str], kept: Mapping[str, Any], source: str) -> None:
    body = [k for k in own if k not in heads and own[k].is_floating_point()]
    total = sum(own[k].numel() for k in body) or 1
    filled = sum(own[k].numel() for k in body if k in kept)
    if filled / total < MIN_MATCH:
        raise ModelFileError(
            f"{source} does not fit this architecture: it fills {filled / total:.0%} of the "
            f"model's weights ({sum(k in kept for k in body)} of {len(body)} tensors). "
            "Expected a state dict saved from the same architecture; check the file and the model name."
        )

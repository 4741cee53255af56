"""Torch model -> ONNX graph that takes prepared uint8 NHWC images and returns probabilities.

The exported graph is the network wrapped so that users feed what every imgrec backend is
fed — the prepared uint8 batch ``(N, S, S, 3)`` — and get probabilities: the cast, the
NHWC -> NCHW transpose, the mean/std normalization (one multiply and one add) and the softmax
are inside it. The batch axis is dynamic.

The TorchScript exporter is the default: on the CNNs imgrec trains it gives the smaller graph
(global pooling stays ``GlobalAveragePool``; the dynamo exporter spells it with
``as_strided``/``Gather`` and shape arithmetic) in a fraction of the time. ``exporter="dynamo"``
uses ``torch.export``; "auto" falls back to dynamo when TorchScript cannot trace a model.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from imgrec.errors import ModelFileError, UsageError
from imgrec.models.base import Classifier
from imgrec.models.onnx_backend import INPUT_LAYOUT, INPUT_NAME, META_PREFIX, OUTPUT_NAME

log = logging.getLogger(__name__)

EXPORTERS = ("auto", "torchscript", "dynamo")
DEFAULT_OPSET = 17
FORMAT = "imgrec-onnx"
FORMAT_VERSION = "1"


def _wrapper(model: Any) -> Any:
    """An ``nn.Module``: uint8 NHWC -> normalized float NCHW -> network -> softmax."""
    import torch
    from torch import nn

    class PreparedImageClassifier(nn.Module):
        scale: torch.Tensor
        shift: torch.Tensor

        def __init__(self) -> None:
            super().__init__()
            c = model.in_chans
            mean = torch.tensor(model.preprocessing.mean[:c], dtype=torch.float32).view(1, c, 1, 1)
            std = torch.tensor(model.preprocessing.std[:c], dtype=torch.float32).view(1, c, 1, 1)
            self.net, self.channels = model.module, c
            self.register_buffer("scale", 1.0 / (255.0 * std))
            self.register_buffer("shift", -mean / std)

        def forward(self, image: torch.Tensor) -> torch.Tensor:
            x = image if self.channels == 3 else image[..., : self.channels]
            x = x.permute(0, 3, 1, 2).to(torch.float32) * self.scale + self.shift
            return torch.softmax(self.net(x).float(), dim=1)

    return PreparedImageClassifier().eval()


def export_torch(model: Classifier, path: Path, *, opset: int = DEFAULT_OPSET, exporter: str = "auto") -> str:
    """Write the ONNX graph of a torch classifier to ``path`` (no metadata yet).

    Returns:
        The exporter that produced the file ("torchscript" or "dynamo").
    """
    if exporter not in EXPORTERS:
        raise UsageError(f"exporter must be one of {', '.join(EXPORTERS)}; received {exporter!r}.")
    import torch

    module = getattr(model, "module", None)
    if model.family != "torch" or module is None:
        raise UsageError(f"{model.name} is a {model.family} model; only torch models export to ONNX graphs.")
    device = next(iter(module.parameters()), torch.zeros(0)).device
    model.to("cpu")  # type: ignore[attr-defined]
    try:
        wrapped = _wrapper(model)
        size = model.preprocessing.size
        example = torch.zeros((2, size, size, 3), dtype=torch.uint8)
        with torch.inference_mode(False), torch.no_grad():
            return _run_exporter(wrapped, example, path, opset, exporter)
    finally:
        model.to(device)  # type: ignore[attr-defined]


def _run_exporter(wrapped: Any, example: Any, path: Path, opset: int, exporter: str) -> str:
    if exporter in ("auto", "torchscript"):
        try:
            _torchscript(wrapped, example, path, opset)
            return "torchscript"
        except Exception as exc:  # tracing failures come as many types
            reason = _reason(exc)
            if exporter == "torchscript":
                raise ModelFileError(f"The TorchScript exporter failed: {reason}") from None
            log.info("TorchScript export failed (%s); trying the dynamo exporter", reason)
    _dynamo(wrapped, example, path, max(opset, 18))
    return "dynamo"


@contextlib.contextmanager
def _native_output_captured() -> Iterator[None]:
    """Send what native code writes to stdout/stderr (fds 1 and 2) to a scratch file meanwhile.

    When the TorchScript exporter fails, torch's C++ side prints the whole graph to stdout, which
    would corrupt ``imgrec export --json``; the fallback exporter runs next anyway.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    try:
        with tempfile.TemporaryFile() as sink:
            os.dup2(sink.fileno(), 1)
            os.dup2(sink.fileno(), 2)
            try:
                yield
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os.dup2(saved[0], 1)
                os.dup2(saved[1], 2)
    finally:
        for fd in saved:
            os.close(fd)


def _reason(exc: Exception) -> str:
    """The gist of an exporter error: torch appends the graph (and the IR value) to its messages."""
    text = (str(exc).strip().splitlines() or [""])[0].split(" [Caused by", 1)[0]
    return f"{type(exc).__name__}: {text[:300]}"


def _torchscript(wrapped: Any, example: Any, path: Path, opset: int) -> None:
    import torch

    with warnings.catch_warnings(), _native_output_captured():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation and tracer warnings
        torch.onnx.export(
            wrapped, (example,), str(path), dynamo=False, opset_version=opset, verbose=False,
            input_names=[INPUT_NAME], output_names=[OUTPUT_NAME], do_constant_folding=True,
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
        )


def _dynamo(wrapped: Any, example: Any, path: Path, opset: int) -> None:
    import torch

    batch = torch.export.Dim("batch", min=1, max=65536)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                wrapped, (example,), str(path), dynamo=True, opset_version=opset, verbose=False,
                input_names=[INPUT_NAME], output_names=[OUTPUT_NAME], dynamic_shapes=({0: batch},),
                external_data=False, optimize=True,
            )
    except Exception as exc:
        raise ModelFileError(f"The dynamo ONNX exporter failed: {type(exc).__name__}: {str(exc)[:500]}") from None


def metadata(model: Classifier, extra: Mapping[str, Any] | None = None) -> dict[str, str]:
    """The ``imgrec.*`` metadata_props of an export (values are strings; structures are JSON)."""
    from imgrec import __version__

    entries: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model": model.name,
        "family": model.family,
        "classes": json.dumps(model.classes),
        "preprocessing": json.dumps(model.preprocessing.to_dict()),
        "model_args": json.dumps(model.model_args, default=str),
        "input": f"{INPUT_NAME}: uint8 [batch, {model.preprocessing.size}, {model.preprocessing.size}, 3]",
        "input_layout": INPUT_LAYOUT,
        "output": f"{OUTPUT_NAME}: float32 [batch, {model.num_classes}], softmax",
        "imgrec_version": __version__,
        "quantization": "none",
        **(extra or {}),
    }
    return {META_PREFIX + k: v if isinstance(v, str) else json.dumps(v) for k, v in entries.items()}


def write_with_metadata(src: Path, dst: Path, props: Mapping[str, str]) -> None:
    """Copy the ONNX file ``src`` to ``dst`` with ``props`` set in its metadata_props."""
    import onnx

    proto = onnx.load(str(src))
    keep = [(p.key, p.value) for p in proto.metadata_props if p.key not in props]
    del proto.metadata_props[:]
    for key, value in [*keep, *props.items()]:
        proto.metadata_props.add(key=key, value=value)
    proto.producer_name, proto.doc_string = "imgrec", f"imgrec image classifier {props.get(META_PREFIX + 'model')}"
    onnx.save(proto, str(dst))

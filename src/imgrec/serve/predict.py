"""One admitted predict request: decode in threads, batch through the model, shape the answer."""

from __future__ import annotations

import asyncio
import time
from typing import Any, cast

import numpy as np

from imgrec.errors import ImgrecError
from imgrec.serve.batching import NotRunning, QueueFull
from imgrec.serve.errors import ApiError, unavailable
from imgrec.serve.service import ServedModel, Service
from imgrec.serve.uploads import Upload, prepare_upload
from imgrec.tasks.detect import Detections
from imgrec.tasks.embed import Embedding
from imgrec.tasks.instance import Instances
from imgrec.tasks.segment import Segmentation
from imgrec.transforms.frame import Geometry

MASK_FORMATS = ("rle", "png")


async def answer(
    service: Service, served: ServedModel, uploads: list[Upload], options: dict[str, Any], started: float,
    masks: str = "rle",
) -> list[dict[str, Any]]:  # fmt: skip
    """Per-image results in upload order, within the request deadline.

    The caller holds the request's admission slots (``Service.admit``). A request whose only
    image is bad raises that image's error (its 4xx); in a multi-image request bad images
    become error entries and the others are still predicted. ``masks="png"``: segmentation
    entries also carry their index mask as a base64 PNG (``mask_png``).
    """
    remaining = service.config.request_timeout_s - (time.monotonic() - started)
    try:
        results = await asyncio.wait_for(_predict(service, served, uploads, options), max(remaining, 0.001))
    except asyncio.TimeoutError:
        raise unavailable(
            "deadline_exceeded",
            f"The request was not answered within {service.config.request_timeout_s:g} s; retry later.",
            service.retry,
        ) from None
    _count(service, served.name, results)
    if len(results) == 1 and isinstance(results[0], ImgrecError):
        raise ApiError.from_imgrec(results[0])
    return [_entry(r, u, masks) for r, u in zip(results, uploads, strict=True)]


async def _predict(
    service: Service, served: ServedModel, uploads: list[Upload], options: dict[str, Any]
) -> list[Any]:
    """Decode in the pool, run through the batcher (``Predictor.forward``), then
    ``Predictor.postprocess`` in the pool (a mask upsampled to 12 megapixels takes a while; the
    event loop stays free): the same steps as ``Predictor.predict``."""
    loop = asyncio.get_running_loop()
    prep, limits = served.predictor.preprocessing, service.config.decode_limits
    prepared = await asyncio.gather(
        *(loop.run_in_executor(service.pool, prepare_upload, u, prep, limits) for u in uploads)
    )
    errors = {i: p for i, p in enumerate(prepared) if isinstance(p, ImgrecError)}
    ok = [i for i in range(len(prepared)) if i not in errors]
    results: dict[int, Any] = {}
    if ok:
        framed = [cast(tuple[np.ndarray, Geometry], prepared[i]) for i in ok]
        rows = await _model_rows(service, served, [arr for arr, _ in framed])
        names = [uploads[i].filename for i in ok]
        geometries = [g for _, g in framed]
        found = await loop.run_in_executor(service.pool, served.predictor.postprocess, rows, geometries, names, options)
        results = dict(zip(ok, found, strict=True))
    return [errors[i] if i in errors else results[i] for i in range(len(prepared))]


async def _model_rows(service: Service, served: ServedModel, images: list[np.ndarray]) -> list[np.ndarray]:
    try:
        return await served.batcher.submit(images)
    except QueueFull as exc:
        raise unavailable("overloaded", f"{exc} Retry after the Retry-After delay.", service.retry) from None
    except NotRunning:
        raise unavailable("not_ready", "The model is shutting down; retry shortly.", service.retry) from None


def _entry(result: Any, upload: Upload, masks: str = "rle") -> dict[str, Any]:
    if isinstance(result, ImgrecError):
        return {"filename": upload.filename, "error": {"code": result.code, "message": result.message}}
    if isinstance(result, Detections | Embedding):
        return {"filename": upload.filename, **{k: v for k, v in result.to_dict().items() if k != "path"}}
    if isinstance(result, Segmentation | Instances):
        entry = {"filename": upload.filename, **{k: v for k, v in result.to_dict().items() if k != "path"}}
        if masks == "png":
            import base64

            entry["mask_png"] = base64.b64encode(result.to_png()).decode("ascii")
        return entry
    return {
        "filename": upload.filename,
        "label": result.label,
        "score": round(result.score, 6),
        "top_k": [{"label": c.label, "score": round(c.score, 6)} for c in result.top_k],
    }


def _count(service: Service, model: str, results: list[Any]) -> None:
    bad = [r for r in results if isinstance(r, ImgrecError)]
    metrics = service.metrics
    if len(results) > len(bad):
        metrics.images.labels(model=model, outcome="predicted").inc(len(results) - len(bad))
    if bad:
        metrics.images.labels(model=model, outcome="error").inc(len(bad))
        if len(results) > 1:  # a single bad image is counted as the request's error
            for err in bad:
                metrics.errors.labels(code=err.code).inc()

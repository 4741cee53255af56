"""The API routes: predict, model listing, health, readiness and metrics."""

from __future__ import annotations

import asyncio
import time
from typing import Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse, Response

from imgrec.errors import ImgrecError
from imgrec.serve.auth import require_key
from imgrec.serve.errors import ApiError, unavailable
from imgrec.serve.predict import answer
from imgrec.serve.schemas import Health, ModelDetail, ModelList, PredictResponse, error_responses
from imgrec.serve.service import Service
from imgrec.serve.uploads import Upload, read_uploads

UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": (
            "One or many images: multipart fields `file` / `files`, or the raw bytes of one image "
            "(Content-Type image/* or application/octet-stream; an optional `X-Filename` header names it)."
        ),
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "file": {"type": "string", "format": "binary", "description": "one image"},
                        "files": {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                            "description": "several images (repeat the field)",
                        },
                    },
                }
            },
            "image/*": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}


def api_router(service: Service) -> APIRouter:
    """The ``/v1`` routes; they need an API key when the service has keys."""
    cfg = service.config
    deps = [Depends(require_key(cfg.api_keys))] if cfg.auth_enabled else []
    router = APIRouter(prefix="/v1", dependencies=deps, responses=error_responses(401, 403) if deps else None)

    @router.get("/models", tags=["models"], response_model=ModelList, summary="List the served models")
    async def list_models() -> dict[str, Any]:
        return {"models": [m.summary() for m in service.models.values()]}

    @router.get(
        "/models/{name}",
        tags=["models"],
        response_model=ModelDetail,
        responses=error_responses(404),
        summary="Classes, preprocessing and evaluation summary of one model",
    )
    async def get_model(name: str = Path(description="model name (see GET /v1/models)")) -> dict[str, Any]:
        return service.get(name).detail()

    _add_predict(router, service)
    return router


def _add_predict(router: APIRouter, service: Service) -> None:
    cfg = service.config

    @router.post(
        "/models/{name}/predict",
        tags=["predict"],
        response_model=PredictResponse,
        responses=error_responses(400, 404, 408, 413, 415, 422, 503),
        openapi_extra=UPLOAD_BODY,
        summary="Classify one or many images, detect the objects in them, segment them, or embed them",
    )
    async def predict(
        request: Request,
        name: str = Path(description="model name (see GET /v1/models)"),
        top_k: int = Query(cfg.top_k_default, ge=1, le=cfg.top_k_max, description="classify: classes per image"),
        threshold: float | None = Query(
            None, ge=0.0, le=1.0, description="classify: below this top score the label is 'unknown'; "
            "segment (one-channel models): the foreground probability threshold (0.5)",
        ),
        conf: float | None = Query(None, ge=0.0, le=1.0, description="detect: least box score (0.25)"),
        iou: float | None = Query(None, ge=0.0, le=1.0, description="detect: NMS IoU (0.45)"),
        max_det: int | None = Query(None, ge=1, le=10_000, description="detect: boxes per image at most (100)"),
        classes: str | None = Query(None, description="detect, segment: keep these classes only, comma-separated"),
        masks: Literal["rle", "png"] = Query(
            "rle", description="segment: `rle` (COCO RLE per class present) or `png`: also the whole index "
            "mask as a base64 palette PNG in `mask_png` (pixel value = class index); instance: the same, "
            "pixel value k = the k-th instance",
        ),
    ) -> Response:
        """Images from concurrent requests are micro-batched into shared model calls.

        A classifier answers `label`, `score` and `top_k` per image; a detector answers
        `detections` (`box` [x1, y1, x2, y2] in the original image's pixels, `label`, `score`)
        and `image_size`; a segmenter answers `image_size` and `segments` (per class present:
        `label`, `class_id`, `area` in pixels, `rle` = COCO RLE `{size: [h, w], counts}` at the
        original resolution, `score` when the model gives probabilities), plus `mask_png`
        with `masks=png`; an instance segmenter (Mask R-CNN) answers `image_size` and `instances`
        (a detection's fields plus `area` and `mask`, its COCO RLE), plus `mask_png` with
        `masks=png`; an embedder (an `embed` run, e.g. an imported face embedder) answers
        `embedder`, `dim` and the L2-normalized `embedding` (each image taken as one face crop).
        Per-image failures in a multi-image request come back as `error` entries; a request
        whose only image is bad gets that error's status (415 or 422).
        """
        started = time.monotonic()
        served = service.get(name)
        wanted = [c.strip() for c in classes.split(",") if c.strip()] if classes else None
        given = {"top_k": top_k, "threshold": threshold, "conf": conf, "iou": iou, "max_det": max_det,
                 "classes": wanted}  # fmt: skip
        options = _task_options(served.predictor, given)
        if masks != "rle" and served.predictor.task.name not in ("segment", "instance"):
            raise ApiError(422, "validation_error", f"masks={masks} is for segmentation models; {name} is a "
                           f"{served.predictor.task.name} model.")  # fmt: skip
        with service.admit(served, 1):  # the slot is held from before the body is read: 503s are fast
            uploads = await _read_within_deadline(request, cfg.max_images_per_request, cfg.request_timeout_s)
            with service.admit(served, len(uploads) - 1):
                results = await answer(service, served, uploads, options, started, masks)
        body = {
            "model": served.name,
            "predictions": results,
            "latency_ms": round((time.monotonic() - started) * 1000, 2),
            "request_id": request.state.request_id,
        }
        return JSONResponse(body)


def _task_options(predictor: Any, given: dict[str, Any]) -> dict[str, Any]:
    """The query parameters of the model's task, checked; another task's parameter is a 422."""
    detect = ("conf", "iou", "max_det", "classes")
    if predictor.task.name == "detect":
        chosen = {k: given[k] for k in detect}
    elif predictor.task.name in ("segment", "instance", "embed"):  # top_k always has its default: not the user's
        chosen = {k: v for k, v in given.items() if k != "top_k"}
    else:
        chosen = {"top_k": given["top_k"], "threshold": given["threshold"], **{k: given[k] for k in detect}}
    try:
        return dict(predictor.options(**chosen))
    except ImgrecError as exc:
        raise ApiError(422, "validation_error", str(exc)) from None


async def _read_within_deadline(request: Request, max_images: int, deadline_s: float) -> list[Upload]:
    """The uploads, or a 408 when the body is still arriving at the deadline (a slow client
    must not hold its admission slot for longer than a request may take)."""
    try:
        return await asyncio.wait_for(read_uploads(request, max_images), deadline_s)
    except asyncio.TimeoutError:
        raise ApiError(
            408,
            "request_timeout",
            f"The request body did not arrive within {deadline_s:g} s; send it faster or in smaller parts.",
            {"Connection": "close"},
        ) from None


def ops_router(service: Service) -> APIRouter:
    """Liveness, readiness (open) and Prometheus metrics (needs a key when keys are set)."""
    router = APIRouter(tags=["health"])

    @router.get("/healthz", response_model=Health, summary="Liveness: the process answers")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "models": list(service.models)}

    @router.get("/readyz", response_model=Health, responses=error_responses(503), summary="Readiness: models loaded")
    async def readyz() -> dict[str, Any]:
        if not service.ready:
            raise unavailable("not_ready", "Models are loading or the server is shutting down.", service.retry)
        return {"status": "ok", "models": [n for n, m in service.models.items() if m.batcher.running]}

    deps = [Depends(require_key(service.config.api_keys))] if service.config.auth_enabled else []

    @router.get(
        "/metrics",
        dependencies=deps,
        summary="Prometheus metrics",
        response_class=Response,
        responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
    )
    async def metrics() -> Response:
        payload, content_type = service.metrics.render()
        return Response(payload, media_type=content_type)

    return router

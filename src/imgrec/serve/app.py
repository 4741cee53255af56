"""``create_app``: trained runs in, a FastAPI app out (API, web page, metrics, micro-batching)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import cast

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse

from imgrec import __version__
from imgrec.errors import ImgrecError
from imgrec.inference import Predictor
from imgrec.serve import errors as api_errors
from imgrec.serve.config import ServeConfig
from imgrec.serve.errors import ApiError, error_response
from imgrec.serve.face_routes import faces_router
from imgrec.serve.faces import FaceService
from imgrec.serve.metrics import ServeMetrics
from imgrec.serve.middleware import BodyTooLarge, ServeMiddleware
from imgrec.serve.routes import api_router, ops_router
from imgrec.serve.service import Service, load_predictors
from imgrec.serve.web import static_files, web_router

log = logging.getLogger(__name__)

TAGS = [
    {"name": "predict", "description": "Classify, detect or embed images (micro-batched across concurrent requests)."},
    {"name": "models", "description": "The served models: classes, preprocessing, evaluation summary."},
    {"name": "faces", "description": "Face detection, collections, enrollment and search (`imgrec serve --faces`)."},
    {"name": "health", "description": "Liveness, readiness and Prometheus metrics."},
]


def create_app(
    runs: Sequence[str | Path] | Mapping[str, Predictor], config: ServeConfig | None = None,
    faces: FaceService | None = None,
) -> FastAPI:  # fmt: skip
    """Build the HTTP app serving trained models, face collections, or both.

    Args:
        runs: run directories (served under their folder names), or ``{name: Predictor}``
            (may be empty when ``faces`` is given).
        config: limits and behaviour; defaults to ``ServeConfig()``.
        faces: the face routes' store, detector and embedder (``FaceService.open("staff")``):
            adds ``/v1/faces/detect`` and ``/v1/collections/...``. The app closes its store on
            shutdown.

    Raises:
        MissingInputError: a run directory does not exist.
        ModelFileError: a run cannot be loaded.

    Example:
        >>> # app = create_app(["runs/hog-svm-1"], ServeConfig(max_batch_size=8))
        >>> # uvicorn.run(app, host="127.0.0.1", port=8000)
    """
    cfg = config or ServeConfig()
    metrics = ServeMetrics()
    threads = cfg.model_threads if isinstance(runs, Mapping) else cfg.threads_per_model  # given predictors keep theirs
    service = Service(load_predictors(runs, threads, allow_none=faces is not None), cfg, metrics)
    if faces is not None:
        faces.recognizer.limits = cfg.decode_limits

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await service.start()
        try:
            yield
        finally:
            await service.stop()
            if faces is not None:
                faces.close()

    app = FastAPI(
        title="imgrec",
        version=__version__,
        description="Self-hosted image recognition API.\n\nErrors:\n\n" + _error_doc(),
        openapi_tags=TAGS,
        lifespan=lifespan,
        redoc_url=None,
        docs_url=None,  # Swagger UI loads its assets from a CDN; /docs is our own page (serve/docs_page.py)
    )
    app.state.service = service
    app.state.faces = faces
    app.add_middleware(ServeMiddleware, max_body=cfg.max_upload_bytes, metrics=metrics)
    _add_handlers(app, metrics, cfg.max_upload_bytes)
    app.include_router(api_router(service))
    if faces is not None:
        app.include_router(faces_router(service, faces))
    app.include_router(ops_router(service))
    app.include_router(web_router(cfg.auth_enabled))
    app.mount("/static", static_files(), name="static")
    return app


def _error_doc() -> str:
    doc = api_errors.__doc__ or ""
    lines = doc.split("\n\n", 1)[-1].strip().splitlines()
    return "\n".join("    " + line.strip() for line in lines)


def _add_handlers(app: FastAPI, metrics: ServeMetrics, max_body: int) -> None:
    def reply(request: Request, exc: ApiError) -> JSONResponse:
        metrics.errors.labels(code=exc.code).inc()
        return error_response(exc.status, exc.code, exc.message, _rid(request), exc.headers)

    async def on_api_error(request: Request, exc: Exception) -> JSONResponse:
        return reply(request, cast(ApiError, exc))

    async def on_imgrec_error(request: Request, exc: Exception) -> JSONResponse:
        return reply(request, ApiError.from_imgrec(cast(ImgrecError, exc)))

    async def on_too_large(request: Request, exc: Exception) -> JSONResponse:
        limit_error = api_errors.payload_too_large(max_body)
        limit_error.headers["Connection"] = "close"
        return reply(request, limit_error)

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        return reply(request, _from_http(request, cast(StarletteHTTPException, exc)))

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        message = _validation_message(cast(RequestValidationError, exc))
        return reply(request, ApiError(422, "validation_error", message))

    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(ImgrecError, on_imgrec_error)
    app.add_exception_handler(BodyTooLarge, on_too_large)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(RequestValidationError, on_validation)


def _from_http(request: Request, exc: StarletteHTTPException) -> ApiError:
    code = api_errors.CODE_OF_STATUS.get(exc.status_code, "http_error")
    if exc.status_code == 404:
        message = f"No route {request.method} {request.url.path}; see /openapi.json for the API."
    elif exc.status_code == 405:
        allowed = (exc.headers or {}).get("Allow", "")
        message = f"Method {request.method} is not allowed here" + (f"; use {allowed}." if allowed else ".")
    else:
        message = str(exc.detail)
    return ApiError(exc.status_code, code, message, dict(exc.headers or {}))


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "request"
        parts.append(f"{where}: {err.get('msg', 'invalid value')}")
    return "Invalid request: " + "; ".join(parts) + "."


def _rid(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)

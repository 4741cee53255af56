"""The face routes (``imgrec serve --faces COLLECTION``): detect faces, manage collections and
their persons, enroll faces, search (identify every face of a photo).

Every route's work runs in the service's worker threads (model work one call at a time, see
:mod:`imgrec.serve.faces`), within ``request_timeout_s``. Library errors map onto the contract:
an unknown collection or person is 404 ``not_found``, a store conflict 409 ``conflict``, a
corrupt image 422 ``image_invalid``; an image without a face is 200 with an empty list.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse

from imgrec.errors import ImgrecError
from imgrec.serve.auth import require_key
from imgrec.serve.errors import ApiError, unavailable
from imgrec.serve.faces import FaceService, collection_out, item_error
from imgrec.serve.routes import UPLOAD_BODY
from imgrec.serve.schemas import (
    CollectionCreate,
    CollectionDeleted,
    CollectionList,
    CollectionOut,
    EnrollResponse,
    FaceDetectResponse,
    PersonList,
    PersonRemoved,
    SearchResponse,
    error_responses,
)
from imgrec.serve.service import Service
from imgrec.serve.uploads import Upload, read_uploads_and_fields

T = TypeVar("T")
COLLECTION = Path(description="the collection's name (GET /v1/collections)")
ENROLL_BODY: dict[str, Any] = {"requestBody": {**UPLOAD_BODY["requestBody"], "description": (
    "multipart/form-data: the person's name in a text field `person` (or the `person` query parameter) and "
    "their photo(s) in `file` / `files`; or one raw image body with `?person=`.")}}  # fmt: skip


def faces_router(service: Service, faces: FaceService) -> APIRouter:
    """The ``/v1/faces`` and ``/v1/collections`` routes (API keys as the other ``/v1`` routes)."""
    cfg = service.config
    deps = [Depends(require_key(cfg.api_keys))] if cfg.auth_enabled else []
    router = APIRouter(prefix="/v1", dependencies=deps, tags=["faces"],
                       responses=error_responses(401, 403) if deps else None)  # fmt: skip
    _collection_routes(router, service, faces)
    _person_routes(router, service, faces)
    _image_routes(router, service, faces)
    return router


async def run_off_loop(service: Service, fn: Callable[[], T]) -> T:
    """``fn()`` in the service's worker threads, within the request deadline (503 otherwise)."""
    if not service.ready or service.pool is None:
        raise unavailable("not_ready", "The service is starting or shutting down; retry shortly.", service.retry)
    loop = asyncio.get_running_loop()
    try:
        return await asyncio.wait_for(loop.run_in_executor(service.pool, fn), service.config.request_timeout_s)
    except asyncio.TimeoutError:
        raise unavailable("deadline_exceeded", f"The request was not answered within "
                          f"{service.config.request_timeout_s:g} s; retry later.", service.retry) from None  # fmt: skip


def _collection_routes(router: APIRouter, service: Service, faces: FaceService) -> None:
    @router.get("/collections", response_model=CollectionList, summary="List the face collections")
    async def list_collections() -> dict[str, Any]:
        infos = await run_off_loop(service, faces.store.collections.list)
        return {"collections": [collection_out(i) for i in infos], "served": faces.served}

    @router.post("/collections", status_code=201, response_model=CollectionOut, responses=error_responses(409, 422),
                 summary="Create a face collection for the served embedder")  # fmt: skip
    async def create_collection(body: CollectionCreate) -> dict[str, Any]:
        from imgrec.analyzers.faces import create_collection as create

        made = await run_off_loop(service, lambda: create(faces.store, body.name, faces.embedder, body.threshold))
        return collection_out(made.info)

    @router.get("/collections/{collection}", response_model=CollectionOut, responses=error_responses(404),
                summary="One face collection's record")  # fmt: skip
    async def get_collection(collection: str = COLLECTION) -> dict[str, Any]:
        return collection_out((await run_off_loop(service, lambda: faces.collection(collection))).info)

    @router.delete("/collections/{collection}", response_model=CollectionDeleted, responses=error_responses(404),
                   summary="Hard-delete a collection: every row, embedding and crop")  # fmt: skip
    async def delete_collection(collection: str = COLLECTION) -> dict[str, Any]:
        def work() -> int:
            size = faces.collection(collection).size()
            faces.store.collections.delete(collection)
            return size

        return {"collection": collection, "deleted_faces": await run_off_loop(service, work)}


def _person_routes(router: APIRouter, service: Service, faces: FaceService) -> None:
    @router.get("/collections/{collection}/persons", response_model=PersonList, responses=error_responses(404),
                summary="The persons of a collection and their face counts")  # fmt: skip
    async def list_persons(collection: str = COLLECTION) -> dict[str, Any]:
        persons = await run_off_loop(service, lambda: faces.collection(collection).persons())
        return {"collection": collection, "persons": [
            {"name": p.name, "faces": p.faces, "created": p.created.isoformat()} for p in persons]}  # fmt: skip

    @router.delete("/collections/{collection}/persons/{person}", response_model=PersonRemoved,
                   responses=error_responses(404), summary="Hard-delete a person: rows, embeddings, crops")  # fmt: skip
    async def remove_person(collection: str = COLLECTION, person: str = Path(description="the person's name")) -> dict:
        removed = await run_off_loop(service, lambda: faces.collection(collection).remove_person(person))
        return {"collection": collection, "person": person, "removed_faces": removed}


def _image_routes(router: APIRouter, service: Service, faces: FaceService) -> None:
    cfg = service.config

    @router.post("/collections/{collection}/faces", response_model=EnrollResponse, openapi_extra=ENROLL_BODY,
                 responses=error_responses(400, 404, 409, 413, 415, 422, 503),
                 summary="Enroll a person's faces from photos (the largest face of each; one transaction)")  # fmt: skip
    async def enroll(
        request: Request, collection: str = COLLECTION,
        person: str | None = Query(None, description="the person's name (or a form field `person`)"),
        all_faces: bool = Query(False, description="every face of each photo, not only the largest"),
    ) -> JSONResponse:  # fmt: skip
        uploads, fields = await _read(request, cfg.max_images_per_request, cfg.request_timeout_s, ("person",))
        name = person or fields.get("person")
        if not name:
            raise ApiError(422, "validation_error", "Name the person: a form field `person` or `?person=NAME`.")
        images = await run_off_loop(service, lambda: [_decode(u, cfg.decode_limits) for u in uploads])
        _raise_single(images)
        body = await run_off_loop(service, lambda: _enroll(faces, collection, name, uploads, images, all_faces))
        return JSONResponse({**body, "request_id": request.state.request_id})

    @router.post("/collections/{collection}/search", response_model=SearchResponse, openapi_extra=UPLOAD_BODY,
                 responses=error_responses(400, 404, 409, 413, 415, 422, 503),
                 summary="Identify every face of one photo: box, landmarks, best persons or 'unknown'")  # fmt: skip
    async def search(
        request: Request, collection: str = COLLECTION,
        top_k: int = Query(1, ge=1, le=cfg.top_k_max, description="best persons per face"),
    ) -> JSONResponse:  # fmt: skip
        started = time.monotonic()
        (upload,) = await _read_one(request, cfg.request_timeout_s)
        (image,) = await run_off_loop(service, lambda: [_decode(upload, cfg.decode_limits)])
        _raise_single([image])
        body = await run_off_loop(service, lambda: _search(faces, collection, image, top_k))
        h, w = image.array.shape[:2]
        return JSONResponse({**body, "filename": upload.filename, "image_size": [w, h],
                             "latency_ms": round((time.monotonic() - started) * 1000, 2),
                             "request_id": request.state.request_id})  # fmt: skip

    @router.post("/faces/detect", response_model=FaceDetectResponse, openapi_extra=UPLOAD_BODY,
                 responses=error_responses(400, 413, 415, 422, 503),
                 summary="Face boxes and 5 landmarks (eyes, nose, mouth corners) of each photo")  # fmt: skip
    async def detect(request: Request) -> JSONResponse:
        started = time.monotonic()
        uploads, _ = await _read(request, cfg.max_images_per_request, cfg.request_timeout_s, ())
        images = await run_off_loop(service, lambda: [_decode(u, cfg.decode_limits) for u in uploads])
        _raise_single(images)
        pairs = list(zip(uploads, images, strict=True))
        found = await run_off_loop(service, lambda: [_detect(faces, u, i) for u, i in pairs])
        return JSONResponse({"detector": faces.detector_name, "predictions": found,
                             "latency_ms": round((time.monotonic() - started) * 1000, 2),
                             "request_id": request.state.request_id})  # fmt: skip


async def _read(request: Request, max_images: int, deadline_s: float, fields: tuple[str, ...]) -> tuple:
    try:
        return await asyncio.wait_for(read_uploads_and_fields(request, max_images, fields), deadline_s)
    except asyncio.TimeoutError:
        raise ApiError(408, "request_timeout", f"The request body did not arrive within {deadline_s:g} s.",
                       {"Connection": "close"}) from None  # fmt: skip


async def _read_one(request: Request, deadline_s: float) -> list[Upload]:
    uploads, _ = await _read(request, 1, deadline_s, ())
    if len(uploads) != 1:
        raise ApiError(400, "bad_request", f"Search takes one image; received {len(uploads)}. Send one per request.")
    return uploads


def _decode(upload: Upload, limits: Any) -> Any:
    """The decoded upload, or its error (decode runs outside the model lock)."""
    from imgrec.analyzers.faces import decode_input

    try:
        return decode_input(upload.data, limits)
    except ImgrecError as exc:
        return exc


def _raise_single(images: list[Any]) -> None:
    """A request whose only image is bad gets that image's status (422 image_invalid, 415)."""
    if len(images) == 1 and isinstance(images[0], ImgrecError):
        raise ApiError.from_imgrec(images[0])


def _enroll(faces: FaceService, collection: str, person: str, uploads: list[Upload], images: list[Any],
            all_faces: bool) -> dict[str, Any]:  # fmt: skip
    target = faces.collection(collection)
    good = [i for i in images if not isinstance(i, ImgrecError)]
    rec = faces.recognizer
    prepared = faces.with_models(lambda: rec.prepare_enrollment(good, all_faces=all_faces))
    report = rec.commit_enrollment(target, person, prepared)
    done = iter(report.images)
    rows = [_unreadable(i, u) if isinstance(i, ImgrecError) else _enrolled(next(done), u)
            for u, i in zip(uploads, images, strict=True)]  # fmt: skip
    return {"collection": collection, "person": person, "added": len(report.added), "images": rows}


def _enrolled(image: Any, upload: Upload) -> dict[str, Any]:
    row = image.to_dict()
    row.pop("source", None)
    return {"filename": upload.filename, **row}


def _unreadable(exc: ImgrecError, upload: Upload) -> dict[str, Any]:
    return {"filename": upload.filename, "status": "error", "face_ids": [], "boxes": [],
            "message": f"{exc.code}: {exc.message}"}  # fmt: skip


def _search(faces: FaceService, collection: str, image: Any, top_k: int) -> dict[str, Any]:
    target = faces.collection(collection)
    rec = faces.recognizer
    found = faces.with_models(lambda: rec.faces(image, largest_first=True))
    matched = rec.match(target, found, top_k=top_k)
    return {"collection": collection, "threshold": target.info.threshold, "faces": [f.to_dict() for f in matched]}


def _detect(faces: FaceService, upload: Upload, image: Any) -> dict[str, Any]:
    from imgrec.analyzers.faces.embedders import find_faces

    if isinstance(image, ImgrecError):
        return item_error(image, upload.filename)
    found = faces.with_models(lambda: find_faces(image.array, faces.recognizer.detector, faces.recognizer.options))
    h, w = image.array.shape[:2]
    return {"filename": upload.filename, "image_size": [w, h], "detections": [d.to_dict() for d in found]}

"""Reading images out of a request: multipart ``file``/``files`` fields or a raw ``image/*`` body.

The byte limit is enforced underneath, while the body streams in (see ``middleware``).
Decoding goes through ``Preprocessing.decode`` (the one path from bytes to a model input)
with the service's limits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from starlette.datastructures import UploadFile
from starlette.requests import Request

from imgrec.errors import ImgrecError
from imgrec.imaging import DecodeLimits
from imgrec.serve.errors import ApiError
from imgrec.transforms.frame import Geometry
from imgrec.transforms.preprocess import Preprocessing

FILE_FIELDS = ("file", "files")
RAW_TYPES = ("application/octet-stream",)


@dataclass(frozen=True)
class Upload:
    """One uploaded image: its client-side name (if any) and its encoded bytes."""

    filename: str | None
    data: bytes


async def read_uploads(request: Request, max_images: int) -> list[Upload]:
    """The images of a predict request, in upload order.

    Raises:
        ApiError: 415 for a body that is neither multipart nor an image, 422 when no image
            was sent, 400 for more than ``max_images`` files or malformed multipart.
    """
    return (await read_uploads_and_fields(request, max_images))[0]


async def read_uploads_and_fields(
    request: Request, max_images: int, fields: tuple[str, ...] = ()
) -> tuple[list[Upload], dict[str, str]]:
    """:func:`read_uploads`, plus the multipart text ``fields`` asked for (a person's name beside
    the photos); a raw image body has none."""
    ctype = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if ctype == "multipart/form-data":
        return await _read_multipart(request, max_images, fields)
    if ctype.startswith("image/") or ctype in RAW_TYPES:
        body = await request.body()
        if not body:
            raise ApiError(422, "validation_error", "The request body is empty; send the image bytes.")
        return [Upload(_clean_name(request.headers.get("x-filename")), body)], {}
    raise ApiError(
        415,
        "unsupported_media_type",
        f"Content-Type {ctype or '(none)'!r} is not accepted; send multipart/form-data with the image(s) "
        "in a 'file' or 'files' field, or a raw body with an image/* Content-Type.",
    )


async def _read_multipart(
    request: Request, max_images: int, fields: tuple[str, ...] = ()
) -> tuple[list[Upload], dict[str, str]]:
    form = await request.form(max_files=max_images, max_fields=max_images + 8)
    try:
        texts = {k: v for k, v in form.multi_items() if k in fields and isinstance(v, str)}
        parts = [(key, value) for key, value in form.multi_items() if key in FILE_FIELDS]
        if not parts:
            raise ApiError(
                422,
                "validation_error",
                "No image in the form; put the image(s) in a multipart field named 'file' or 'files'.",
            )
        uploads = []
        for key, value in parts:
            if not isinstance(value, UploadFile):
                raise ApiError(422, "validation_error", f"Form field {key!r} must be a file upload, not a text value.")
            uploads.append(Upload(_clean_name(value.filename), await value.read()))
        return uploads, texts
    finally:
        await form.close()


def _clean_name(name: str | None) -> str | None:
    """The base name of a client-side file name (never a path), at most 255 characters."""
    if not name:
        return None
    base = name.replace("\\", "/").rsplit("/", 1)[-1].strip()
    return base[:255] or None


def prepare_upload(
    upload: Upload, prep: Preprocessing, limits: DecodeLimits
) -> tuple[np.ndarray, Geometry] | ImgrecError:
    """Decode and prepare one upload (runs in a worker thread), with its geometry (boxes map
    back through it); a bad image returns its error."""
    try:
        name = upload.filename or "image"
        return prep.decode_framed(upload.data, limits=limits, name=name)
    except ImgrecError as exc:
        return exc

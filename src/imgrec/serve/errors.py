"""The HTTP error contract: ``{"error": {"code", "message", "request_id"}}`` for every failure.

Codes and statuses (stable; clients may switch on ``code``):

    400 bad_request            malformed body, too many files, bad option
    401 auth_required          no API key sent while keys are configured
    403 forbidden              an API key that is not accepted
    404 not_found              unknown model, route, face collection or person
    405 method_not_allowed     wrong HTTP method for the route
    408 request_timeout        the request body did not arrive within ``request_timeout_s``
    409 conflict               clashes with the store: a collection name taken, another embedder's
                               collection, a face enrolled for another person
    413 payload_too_large      request body over ``max_upload_bytes``
    415 unsupported_media_type not an allowed image format (sniffed from the bytes)
    422 image_invalid          corrupt or truncated image
    422 image_too_large        over ``max_pixels``
    422 validation_error       query/body values out of range, a missing image field
    503 overloaded             the batch queue is full; retry after Retry-After seconds
    503 deadline_exceeded      not answered within ``request_timeout_s``; retry later
    503 not_ready              models not loaded yet, or shutting down
    503 store_unavailable      the database cannot be reached or written (retry later)
    500 internal_error         a bug: a generic message, details only in the server log
"""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse

from imgrec.errors import ImgrecError

# ImgrecError.code -> HTTP status (anything else raised on purpose is a 400 or a bug)
STATUS_OF_CODE = {
    "bad_request": 400,
    "bad_config": 400,
    "unknown_name": 404,
    "not_found": 404,
    "conflict": 409,
    "no_face": 422,
    "store_unavailable": 503,
    "store_too_new": 503,
    "unsupported_media_type": 415,
    "image_invalid": 422,
    "image_unreadable": 422,
    "image_too_large": 422,
    "bad_data": 422,
}
# HTTP status -> code for errors raised by the framework itself (unknown route, wrong method)
CODE_OF_STATUS = {
    400: "bad_request",
    401: "auth_required",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    503: "not_ready",
}
INTERNAL_MESSAGE = "Internal server error. It was logged on the server under this request id; please report it."


class ApiError(Exception):
    """An HTTP error with a stable code, turned into the contract's JSON body."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})

    @classmethod
    def from_imgrec(cls, exc: ImgrecError) -> ApiError:
        """Map a library error (decode, usage, store) onto its HTTP status; an unknown name
        (collection, person) is the contract's ``not_found``."""
        code = "not_found" if exc.code == "unknown_name" else exc.code
        status = STATUS_OF_CODE.get(exc.code, 400)
        return cls(status, code, exc.message, {"Retry-After": "1"} if status == 503 else None)


def unavailable(code: str, message: str, retry_after_s: int) -> ApiError:
    """A 503 with Retry-After (overloaded, deadline_exceeded, not_ready)."""
    return ApiError(503, code, message, {"Retry-After": str(retry_after_s)})


def payload_too_large(limit: int) -> ApiError:
    return ApiError(
        413, "payload_too_large", f"The request body is over the limit of {limit} bytes; send smaller or fewer images."
    )


def error_body(code: str, message: str, request_id: str | None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "request_id": request_id}}


def error_response(
    status: int, code: str, message: str, request_id: str | None, headers: dict[str, str] | None = None
) -> JSONResponse:
    """The JSON response of the contract (the request id header is added by the middleware)."""
    return JSONResponse(error_body(code, message, request_id), status_code=status, headers=headers)

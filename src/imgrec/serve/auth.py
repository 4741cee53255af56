"""Optional API keys: ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``.

Keys are compared with :func:`hmac.compare_digest` against every configured key (no early
exit, so timing does not tell which key nearly matched) and are never logged.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Sequence

from fastapi import Depends
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from imgrec.serve.errors import ApiError

_bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer <API key>")
_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="the API key in its own header")


def key_matches(given: str, keys: Sequence[str]) -> bool:
    """True when ``given`` equals one of ``keys`` (constant time per key, all keys checked).

    Example:
        >>> key_matches("s3cret", ["other", "s3cret"]), key_matches("x", ["s3cret"])
        (True, False)
    """
    raw = given.encode("utf-8")
    found = False
    for key in keys:
        found |= hmac.compare_digest(raw, key.encode("utf-8"))
    return found


def require_key(keys: Sequence[str]) -> Callable[..., Awaitable[None]]:
    """A FastAPI dependency: 401 ``auth_required`` without a key, 403 ``forbidden`` with a wrong one."""
    accepted = tuple(keys)

    async def check(
        bearer: HTTPAuthorizationCredentials | None = Depends(_bearer),
        header_key: str | None = Depends(_header),
    ) -> None:
        if not accepted:
            return
        given = bearer.credentials if bearer is not None else header_key
        if not given:
            raise ApiError(
                401,
                "auth_required",
                "This server needs an API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'.",
                {"WWW-Authenticate": "Bearer"},
            )
        if not key_matches(given, accepted):
            raise ApiError(403, "forbidden", "The API key is not accepted.")

    return check

"""Image bytes from an http(s) URL or a stream, under the same byte limit as files.

Nothing is decoded here: the bytes go on to :func:`imgrec.imaging.decode`, the one safe
decode path, which applies the format and pixel limits. A download:

- has one deadline for the whole exchange (connecting, every redirect, the body);
- follows at most ``max_redirects`` redirects, each hop checked again like the first;
- refuses addresses that are not public (loopback, private, link-local, shared, reserved,
  multicast): the host is resolved, every address it resolves to is checked, and the
  connection goes to a checked address (so a second DNS answer cannot point elsewhere),
  unless ``allow_private=True``;
- refuses a body larger than ``limits.max_bytes`` from its Content-Length, or as soon as
  more than that arrives, without reading the rest;
- refuses an answer whose Content-Type is not an image (a web page's address, say).

Connections go straight to the server (no proxy), through the standard library only.

Example:
    >>> is_url("https://example.org/bus.jpg"), is_url("photos/bus.jpg")
    (True, False)
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import time
import urllib.parse
from typing import BinaryIO

from imgrec.errors import ImageTooLargeError, ImgrecError, InvalidImageError, MissingInputError, UsageError
from imgrec.imaging.decode import DEFAULT_LIMITS, DecodeLimits

TIMEOUT_S = 10.0
MAX_REDIRECTS = 5
CHUNK = 1 << 16
REDIRECTS = (301, 302, 303, 307, 308)
BINARY_TYPES = ("", "application/octet-stream", "binary/octet-stream")


def is_url(value: str) -> bool:
    """True for ``http://`` and ``https://`` addresses."""
    return urllib.parse.urlsplit(str(value)).scheme.lower() in ("http", "https")


def fetch_url(
    url: str,
    *,
    limits: DecodeLimits = DEFAULT_LIMITS,
    timeout_s: float = TIMEOUT_S,
    max_redirects: int = MAX_REDIRECTS,
    allow_private: bool = False,
) -> bytes:
    """Download the image at ``url`` and return its (undecoded) bytes.

    Args:
        url: an http:// or https:// address.
        limits: ``max_bytes`` bounds the body (formats and pixels are checked at decode).
        timeout_s: deadline for the whole download, redirects included.
        max_redirects: redirects followed at most.
        allow_private: also fetch from loopback, private, link-local and reserved addresses.

    Raises:
        UsageError: not an http(s) URL, or an address that is not public (``url_not_allowed``).
        MissingInputError: unreachable, timed out (``fetch_timeout``), an HTTP error status
            (404 is ``not_found``), or too many redirects.
        InvalidImageError: the answer is not an image (``unsupported_media_type``).
        ImageTooLargeError: the body is over ``limits.max_bytes``.
    """
    deadline = time.monotonic() + timeout_s
    current = url
    for _hop in range(max_redirects + 1):
        conn, resp = _get(current, deadline, allow_private, url, timeout_s)
        try:
            if resp.status not in REDIRECTS:
                _check_answer(url, current, resp)
                return _read_body(resp, limits, url, deadline, timeout_s)
            current = _next_hop(url, current, resp)
        finally:
            conn.close()
    raise MissingInputError(
        f"{url} redirects more than {max_redirects} times (last to {current}); a redirect loop? "
        "Open it in a browser to find the image's final address and pass that.",
        code="too_many_redirects",
    )


def read_stream(stream: BinaryIO, limits: DecodeLimits = DEFAULT_LIMITS, name: str = "<stdin>") -> bytes:
    """Read one image's bytes from ``stream``, refusing more than ``limits.max_bytes``.

    Example:
        >>> import io
        >>> read_stream(io.BytesIO(b"\\x89PNG..."))[:4]
        b'\\x89PNG'
    """
    data = stream.read(limits.max_bytes + 1)
    if len(data) > limits.max_bytes:
        raise ImageTooLargeError(f"{name} holds more than {_mb(limits.max_bytes)}, the limit; stopped reading.")
    if not data:
        raise InvalidImageError(f"{name} is empty; expected the bytes of one image (imgrec predict RUN - < cat.jpg).")
    return bytes(data)


def refused_address(ip: str) -> str | None:
    """What kind of non-public address ``ip`` is (``"loopback"``, ``"private"``, ...), or None.

    Example:
        >>> refused_address("127.0.0.1"), refused_address("10.1.2.3"), refused_address("8.8.8.8")
        ('loopback', 'private', None)
    """
    addr = ipaddress.ip_address(ip.split("%", 1)[0])
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    for kind in ("loopback", "link_local", "multicast", "unspecified", "reserved", "private"):
        if getattr(addr, f"is_{kind}"):
            return kind.replace("_", "-")
    return None if addr.is_global else "non-public"


def _get(
    url: str, deadline: float, allow_private: bool, original: str, timeout_s: float
) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
    """Send the GET for one hop to a checked address; return the connection and its response."""
    parts = _split(url)
    host, port = parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)
    ip = _checked_address(url, host, port, allow_private)
    conn = _connection(parts.scheme, host, ip, port, _remaining(deadline, original, timeout_s))
    target = urllib.parse.urlunsplit(("", "", parts.path or "/", parts.query, ""))
    try:
        conn.request("GET", target, headers={"User-Agent": "imgrec", "Accept": "image/*"})
        return conn, conn.getresponse()
    except BaseException as exc:
        conn.close()
        raise _network_error(original, exc, timeout_s) from None


def _split(url: str) -> urllib.parse.SplitResult:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise UsageError(f"Expected an http:// or https:// URL with a host; received {url!r}.")
    try:
        parts.port  # noqa: B018  (raises on a port that is not a number)
    except ValueError:
        raise UsageError(f"The URL {url!r} has an invalid port.") from None
    return parts._replace(scheme=parts.scheme.lower())


def _checked_address(url: str, host: str, port: int, allow_private: bool) -> str:
    """Resolve ``host``; every address must be public (unless allowed). Returns the one to use."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise MissingInputError(
            f"Cannot resolve the host of {url}: {exc}. Check the address.", code="fetch_failed"
        ) from None
    ips = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not allow_private:
        for ip in ips:
            kind = refused_address(ip)
            if kind is not None:
                raise UsageError(
                    f"{url} resolves to {ip}, a {kind} address; imgrec fetches only public addresses so that "
                    "a URL cannot reach services inside your network. If you trust it, pass "
                    "--allow-private-urls (allow_private=True in Python).",
                    code="url_not_allowed",
                )
    return ips[0]


def _connection(scheme: str, host: str, ip: str, port: int, timeout: float) -> http.client.HTTPConnection:
    if scheme == "https":
        return _PinnedHTTPS(host, ip, port, timeout)
    return _PinnedHTTP(host, ip, port, timeout)


class _PinnedHTTP(http.client.HTTPConnection):
    """An HTTP connection to ``host`` that connects to the address already checked."""

    def __init__(self, host: str, ip: str, port: int, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._ip = ip

    def connect(self) -> None:
        self.sock = socket.create_connection((self._ip, self.port), self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    """HTTPS to the checked address, the certificate verified against ``host``."""

    def __init__(self, host: str, ip: str, port: int, timeout: float) -> None:
        self._tls = ssl.create_default_context()
        super().__init__(host, port, timeout=timeout, context=self._tls)
        self._ip = ip

    def connect(self) -> None:
        sock = socket.create_connection((self._ip, self.port), self.timeout)
        self.sock = self._tls.wrap_socket(sock, server_hostname=self.host)


def _check_answer(url: str, current: str, resp: http.client.HTTPResponse) -> None:
    where = url if current == url else f"{url} (redirected to {current})"
    if resp.status in (404, 410):
        raise MissingInputError(
            f"{where} answered {resp.status} {resp.reason}: there is no image there; check the address.",
            code="not_found",
        )
    if resp.status != 200:
        raise MissingInputError(f"{where} answered {resp.status} {resp.reason}; expected 200 OK.", code="fetch_failed")
    media = (resp.getheader("Content-Type") or "").split(";", 1)[0].strip().lower()
    if not media.startswith("image/") and media not in BINARY_TYPES:
        raise InvalidImageError(
            f"{where} is {media}, not an image; expected an image/* answer. Is it the address of a web "
            "page showing the image rather than of the image itself?",
            code="unsupported_media_type",
        )


def _next_hop(url: str, current: str, resp: http.client.HTTPResponse) -> str:
    location = resp.getheader("Location")
    if not location:
        raise MissingInputError(
            f"{url} answered {resp.status} (a redirect) without a Location to go to.", code="fetch_failed"
        )
    return urllib.parse.urljoin(current, location)


def _read_body(
    resp: http.client.HTTPResponse, limits: DecodeLimits, url: str, deadline: float, timeout_s: float
) -> bytes:
    declared = resp.getheader("Content-Length")
    if declared and declared.strip().isdigit() and int(declared) > limits.max_bytes:
        raise ImageTooLargeError(f"{url} is {_mb(int(declared))}; the limit is {_mb(limits.max_bytes)}.")
    body = bytearray()
    try:
        while chunk := resp.read(min(CHUNK, limits.max_bytes + 1 - len(body))):
            body += chunk
            if len(body) > limits.max_bytes:
                raise ImageTooLargeError(f"{url} sends more than {_mb(limits.max_bytes)}, the limit; stopped reading.")
            _remaining(deadline, url, timeout_s)
    except (OSError, http.client.HTTPException) as exc:
        raise _network_error(url, exc, timeout_s) from None
    return bytes(body)


def _remaining(deadline: float, url: str, timeout_s: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise _timeout(url, timeout_s)
    return left


def _network_error(url: str, exc: BaseException, timeout_s: float) -> BaseException:
    if isinstance(exc, ImgrecError | KeyboardInterrupt | SystemExit):
        return exc
    if isinstance(exc, TimeoutError | socket.timeout):
        return _timeout(url, timeout_s)
    if isinstance(exc, ssl.SSLError):
        return MissingInputError(f"Cannot fetch {url}: TLS failed ({exc}).", code="fetch_failed")
    if isinstance(exc, OSError | http.client.HTTPException):
        reason = getattr(exc, "strerror", None) or exc
        return MissingInputError(f"Cannot fetch {url}: {reason}. Is the address right and the server up?",
                                 code="fetch_failed")  # fmt: skip
    return exc


def _timeout(url: str, timeout_s: float) -> MissingInputError:
    return MissingInputError(
        f"{url} did not finish within {timeout_s:g} s (the download deadline); the server is slow or "
        "unreachable. Try again, or download the image yourself and pass its path.",
        code="fetch_timeout",
    )


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"

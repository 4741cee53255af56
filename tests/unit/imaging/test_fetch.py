"""URL downloads against a real local server: limits, redirects, timeouts, refused addresses."""

from __future__ import annotations

import io
import time

import pytest
from tests.unit.imaging.image_server import STREAM_TOTAL, image_server, png_bytes

from imgrec.errors import ImageTooLargeError, InvalidImageError, MissingInputError, UsageError
from imgrec.imaging import DecodeLimits, decode
from imgrec.imaging.fetch import fetch_url, read_stream, refused_address


@pytest.fixture(scope="module")
def server():
    with image_server() as (base, log):
        yield base, log


def test_a_loopback_url_is_refused_unless_allowed(server):
    base, log = server
    with pytest.raises(UsageError, match="loopback") as err:
        fetch_url(f"{base}/img.png")
    assert "--allow-private-urls" in str(err.value) and err.value.code == "url_not_allowed"
    assert log.hits["/img.png"] == 0  # refused before connecting
    data = fetch_url(f"{base}/img.png", allow_private=True)
    assert data == png_bytes() and decode(data).shape == (30, 40, 3)


def test_localhost_names_and_private_addresses_are_refused():
    with pytest.raises(UsageError, match="a loopback address"):
        fetch_url("http://localhost:9/x.png")
    assert [refused_address(ip) for ip in ("10.0.0.1", "169.254.169.254", "::1", "::ffff:127.0.0.1")] == [
        "private", "link-local", "loopback", "loopback",
    ]  # fmt: skip
    assert refused_address("0.0.0.0") == "unspecified" and refused_address("240.0.0.1") == "reserved"
    assert refused_address("93.184.216.34") is None


def test_a_redirect_is_followed_and_a_redirect_loop_is_bounded(server):
    base, log = server
    assert fetch_url(f"{base}/hop", allow_private=True) == png_bytes()
    with pytest.raises(MissingInputError, match="more than 5") as err:
        fetch_url(f"{base}/loop", allow_private=True)
    assert err.value.code == "too_many_redirects"
    assert log.hits["/loop"] == 6  # the first request and 5 redirects, no more


def test_an_oversized_body_is_refused_before_it_is_all_read(server):
    base, log = server
    small = DecodeLimits(max_bytes=100_000)
    with pytest.raises(ImageTooLargeError, match="limit"):
        fetch_url(f"{base}/big-declared", limits=small, allow_private=True)  # by its Content-Length
    started = time.monotonic()
    with pytest.raises(ImageTooLargeError, match="stopped reading"):
        fetch_url(f"{base}/big-stream", limits=small, allow_private=True)  # no length: by counting
    assert time.monotonic() - started < 5
    assert log.stream_done.wait(10)
    assert log.streamed < STREAM_TOTAL


def test_a_slow_server_times_out_with_a_clear_message(server):
    base, _ = server
    started = time.monotonic()
    with pytest.raises(MissingInputError, match=r"within 0\.5 s") as err:
        fetch_url(f"{base}/slow", timeout_s=0.5, allow_private=True)
    assert err.value.code == "fetch_timeout" and time.monotonic() - started < 2.5


def test_404_and_a_web_page_each_say_what_happened(server):
    base, _ = server
    with pytest.raises(MissingInputError, match="404") as err:
        fetch_url(f"{base}/missing", allow_private=True)
    assert err.value.code == "not_found"
    with pytest.raises(InvalidImageError, match="text/html, not an image") as err2:
        fetch_url(f"{base}/page", allow_private=True)
    assert err2.value.code == "unsupported_media_type"


def test_nothing_listening_and_bad_urls():
    with pytest.raises(MissingInputError, match="Cannot fetch") as err:
        fetch_url("http://127.0.0.1:9/x.png", allow_private=True, timeout_s=2)
    assert err.value.code == "fetch_failed"
    with pytest.raises(UsageError, match="http:// or https://"):
        fetch_url("ftp://example.org/x.png")


def test_stream_reading_obeys_the_byte_limit():
    assert read_stream(io.BytesIO(b"abc")) == b"abc"
    with pytest.raises(ImageTooLargeError, match="more than"):
        read_stream(io.BytesIO(bytes(11)), DecodeLimits(max_bytes=10))
    with pytest.raises(InvalidImageError, match="empty"):
        read_stream(io.BytesIO(b""))

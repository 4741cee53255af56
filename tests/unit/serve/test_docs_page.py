"""``GET /docs``: a self-contained page listing the API's routes from its OpenAPI schema."""

from __future__ import annotations

import re


def test_docs_is_a_self_contained_page_listing_every_route(client):
    res = client.get("/docs")
    assert res.status_code == 200 and res.headers["content-type"].startswith("text/html")
    page = res.text
    assert 'href="/openapi.json"' in page
    assert "http://" not in page and "https://" not in page
    assert not re.search(r"<script|<link|<img|@import|url\(", page)  # no asset to fetch, no script
    assert "script-src" not in res.headers["content-security-policy"]
    schema = client.get("/openapi.json").json()
    for path, ops in schema["paths"].items():
        assert f"<code>{path}</code>" in page
        for op in ops.values():
            assert op["summary"] in page
    assert "Classify one or many images" in page and "/v1/models/{name}/predict" in page


def test_docs_needs_no_key_when_the_api_does(make_client):
    keyed = make_client(api_keys=("k1",))
    assert keyed.get("/docs").status_code == 200
    assert keyed.get("/v1/models").status_code == 401

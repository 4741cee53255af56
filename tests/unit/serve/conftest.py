"""Fixtures: a TestClient factory over the real app with small real classifiers."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack

import pytest
from fastapi.testclient import TestClient
from tests.unit.serve.helpers import make_predictor

from imgrec.serve import ServeConfig, create_app


@pytest.fixture
def make_client() -> Iterator:
    """``make_client(predictors=None, **config) -> TestClient`` with the app's lifespan running."""
    with ExitStack() as stack:

        def build(predictors=None, raise_server_exceptions: bool = True, **config) -> TestClient:
            app = create_app(predictors or {"bright": make_predictor()}, ServeConfig(**config))
            client = TestClient(app, raise_server_exceptions=raise_server_exceptions)
            return stack.enter_context(client)

        yield build


@pytest.fixture
def client(make_client) -> TestClient:
    return make_client()

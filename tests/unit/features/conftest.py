"""Run the feature tests single-threaded: tiny BLAS/OpenMP jobs only lose time to thread wake-ups."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _one_thread():
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield

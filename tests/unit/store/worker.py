"""A separate process that enrolls and searches, for the crash and concurrency tests.

Usage: python worker.py MODE URL BLOBS [ARGS]
  slow-commit URL BLOBS STUCK  enroll batches p0, p1, ...; batch STUCK waits inside its commit
  forever     URL BLOBS        enroll batches until killed
  mixed       URL BLOBS ID N   enroll N persons (2 faces each) and search after each
"""

from __future__ import annotations

import sys
import time

import numpy as np
from sqlalchemy import event

from imgrec.errors import ConflictError
from imgrec.store import FaceSource, open_store

EMB = "toy-embedder"
DIM = 16
BATCH = 10


def embeddings(seed: int, n: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, DIM)).astype(np.float32)


def collection(store):
    try:
        return store.collections.create("staff", embedder=EMB, dim=DIM, threshold=0.5)
    except ConflictError:  # another worker made it first
        return store.collections.get("staff")


def batch_sources(i: int) -> list[FaceSource]:
    photo = f"photo {i}".encode()
    return [FaceSource.of_image(photo, box=(j, 0, j + 5, 5), crop=f"crop {i} {j}".encode()) for j in range(BATCH)]


def enroll_batches(store, stuck: int | None) -> None:
    c = collection(store)
    state = {"batch": -1}

    def on_commit(conn) -> None:
        if state["batch"] == stuck:
            print(f"IN_COMMIT {stuck}", flush=True)
            time.sleep(600)

    event.listen(store.engine, "commit", on_commit)
    i = 0
    while True:
        state["batch"] = i
        c.enroll(f"p{i}", embeddings(i, BATCH), embedder=EMB, sources=batch_sources(i))
        print(f"COMMITTED {i}", flush=True)
        i += 1


def mixed(store, worker: int, n: int) -> None:
    c = collection(store)
    for j in range(n):
        seed = worker * 1000 + j
        c.enroll(f"w{worker}-{j}", embeddings(seed, 2), embedder=EMB)
        hit = c.search(embeddings(seed, 2)[0], embedder=EMB, top_k=1)[0]
        if hit.person != f"w{worker}-{j}":
            raise SystemExit(f"search found {hit.person} for w{worker}-{j}")
    print("DONE", flush=True)


def main(argv: list[str]) -> None:
    mode, url, blobs = argv[:3]
    with open_store(url, blobs=blobs) as store:
        if mode == "slow-commit":
            enroll_batches(store, int(argv[3]))
        elif mode == "forever":
            enroll_batches(store, None)
        else:
            mixed(store, int(argv[3]), int(argv[4]))


if __name__ == "__main__":
    main(sys.argv[1:])

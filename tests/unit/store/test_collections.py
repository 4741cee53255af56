"""FaceCollection on both databases: create/get/list/delete, enroll (idempotent), search, refusals."""

from __future__ import annotations

import numpy as np
import pytest

from imgrec.errors import ConflictError, DataError, UnknownNameError, UsageError
from imgrec.store import FaceSource, open_store
from imgrec.store.blobs import sha256_hex

EMB = "toy-embedder"


def unit_rows(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    m = rng.normal(size=(n, dim)).astype(np.float32)
    return m / np.linalg.norm(m, axis=1, keepdims=True)


def sources(tag: str, n: int, crop: bool = False) -> list[FaceSource]:
    def crop_of(i: int) -> bytes | None:
        return f"crop {tag} {i}".encode() if crop else None

    return [FaceSource(sha256_hex(f"{tag}-{i}".encode()), box=(1, 2, 30 + i, 40), crop=crop_of(i)) for i in range(n)]


def test_create_get_list_delete(store):
    c = store.collections.create("staff", embedder=EMB, dim=8, threshold=0.5)
    assert (c.info.embedder, c.info.dim, c.info.threshold, c.info.size) == (EMB, 8, 0.5, 0)
    store.collections.create("visitors", embedder="other", dim=4, threshold=0.3)
    assert [i.name for i in store.collections.list()] == ["staff", "visitors"]
    assert store.collections.get("staff").info.id == c.info.id
    with pytest.raises(ConflictError, match="already exists"):
        store.collections.create("staff", embedder=EMB, dim=8, threshold=0.5)
    with pytest.raises(UnknownNameError, match="Did you mean 'staff'"):
        store.collections.get("staf")
    store.collections.delete("visitors")
    assert [i.name for i in store.collections.list()] == ["staff"]


@pytest.mark.parametrize(
    "kwargs",
    [{"embedder": "", "dim": 8, "threshold": 0.5}, {"embedder": EMB, "dim": 0, "threshold": 0.5},
     {"embedder": EMB, "dim": 8, "threshold": 1.5}, {"embedder": EMB, "dim": 8, "threshold": float("nan")}],
)
def test_create_refuses_bad_specs(store, kwargs):
    with pytest.raises(UsageError):
        store.collections.create("x", **kwargs)
    assert store.collections.list() == []


def test_enroll_and_search_match_brute_force(store):
    rng = np.random.default_rng(0)
    c = store.collections.create("staff", embedder=EMB, dim=16, threshold=0.0)
    faces = {f"p{i}": unit_rows(rng, 3, 16) for i in range(20)}
    for name, m in faces.items():
        assert len(c.enroll(name, m, embedder=EMB, sources=sources(name, 3)).added) == 3
    assert c.size() == 60
    names = np.repeat(list(faces), 3)
    matrix = np.concatenate(list(faces.values()))
    for q in unit_rows(rng, 5, 16):
        sims = matrix @ q
        found = c.search(q * 3.0, embedder=EMB, top_k=4, per_person=False)  # scale does not matter
        assert [m.person for m in found] == list(names[np.argsort(-sims)[:4]])
        np.testing.assert_allclose([m.similarity for m in found], np.sort(sims)[::-1][:4], atol=1e-5)
        per_person = c.search(q, embedder=EMB, top_k=5)
        assert len({m.person for m in per_person}) == 5
        assert per_person[0].person == names[np.argmax(sims)]


def test_unknown_under_threshold(store):
    c = store.collections.create("staff", embedder=EMB, dim=3, threshold=0.9)
    c.enroll("ada", [1.0, 0.0, 0.0], embedder=EMB)
    near = c.search([1.0, 0.1, 0.0], embedder=EMB)[0]
    far = c.search([0.3, 1.0, 0.0], embedder=EMB)[0]
    assert (near.label, near.known) == ("ada", True)
    assert (far.label, far.person, far.known) == ("unknown", "ada", False)
    assert far.similarity < 0.9 <= near.similarity


def test_enroll_is_idempotent_for_same_image_and_box(store):
    rng = np.random.default_rng(1)
    c = store.collections.create("staff", embedder=EMB, dim=8, threshold=0.5)
    m, src = unit_rows(rng, 4, 8), sources("ada", 4, crop=True)
    first = c.enroll("ada", m, embedder=EMB, sources=src)
    again = c.enroll("ada", m, embedder=EMB, sources=src)
    assert again.added == () and sorted(again.existing) == sorted(first.added)
    assert c.size() == 4 and [p.faces for p in c.persons()] == [4]
    doubled = c.enroll("ada", np.concatenate([m[:1], m[:1]]), embedder=EMB, sources=[src[0], src[0]])
    assert doubled.added == () and c.size() == 4
    assert first.face_ids == first.added and doubled.face_ids == (first.added[0],) * 2


def test_face_ids_say_which_given_source_was_new(store):
    rng = np.random.default_rng(5)
    c = store.collections.create("staff", embedder=EMB, dim=8, threshold=0.5)
    m, src = unit_rows(rng, 3, 8), sources("ada", 3)
    first = c.enroll("ada", m[1:2], embedder=EMB, sources=src[1:2])
    mixed = c.enroll("ada", np.concatenate([m, m[:1]]), embedder=EMB, sources=[*src, src[0]])
    assert len(mixed.added) == 2 and mixed.existing == first.added
    ids = mixed.face_ids
    assert ids[1] == first.added[0] and {ids[0], ids[2]} == set(mixed.added) and ids[3] == ids[0]


def test_same_face_for_another_person_is_a_conflict_and_leaves_nothing(store):
    rng = np.random.default_rng(2)
    c = store.collections.create("staff", embedder=EMB, dim=8, threshold=0.5)
    src = sources("ada", 2)
    c.enroll("ada", unit_rows(rng, 2, 8), embedder=EMB, sources=src)
    new_crop = FaceSource(src[1].sha256, src[1].box, crop=b"a crop never stored")
    with pytest.raises(ConflictError, match=r"already enrolled .* as 'ada'; received it for 'bob'"):
        c.enroll("bob", unit_rows(rng, 2, 8), embedder=EMB, sources=[sources("bob", 1)[0], new_crop])
    assert [p.name for p in c.persons()] == ["ada"] and c.size() == 2
    assert not store.blobs.exists(sha256_hex(b"a crop never stored"))


def test_other_embedder_or_dimension_is_refused_with_both_sides(store):
    c = store.collections.create("staff", embedder="arcface-r50", dim=8, threshold=0.5)
    with pytest.raises(ConflictError) as err:
        c.enroll("ada", np.ones((1, 8)), embedder="facenet-512")
    assert "'arcface-r50'" in str(err.value) and "'facenet-512'" in str(err.value)
    with pytest.raises(ConflictError, match=r"8-dimensional .* shape \(1, 512\)"):
        c.enroll("ada", np.ones((1, 512)), embedder="arcface-r50")
    with pytest.raises(ConflictError, match="facenet"):
        c.search(np.ones(8), embedder="facenet")
    assert c.size() == 0 and c.persons() == []


@pytest.mark.parametrize("bad", [[np.nan] * 4, [0.0] * 4, [[1.0, 2.0]]])
def test_bad_embeddings_are_refused(store, bad):
    c = store.collections.create("staff", embedder=EMB, dim=4, threshold=0.5)
    with pytest.raises((DataError, ConflictError)):
        c.enroll("ada", bad, embedder=EMB)
    assert c.size() == 0


def test_bad_arguments(store):
    c = store.collections.create("staff", embedder=EMB, dim=2, threshold=0.5)
    with pytest.raises(UsageError, match="person name"):
        c.enroll(" ada", [1.0, 0.0], embedder=EMB)
    with pytest.raises(UsageError, match="one source per embedding"):
        c.enroll("ada", [[1.0, 0.0]], embedder=EMB, sources=sources("x", 2))
    with pytest.raises(UsageError, match="top_k"):
        c.search([1.0, 0.0], embedder=EMB, top_k=0)
    with pytest.raises(UsageError, match="box"):
        FaceSource("0" * 64, box=(5, 5, 1, 1))
    with pytest.raises(UsageError, match="sha256"):
        FaceSource("not-a-hash")


def test_search_of_empty_collection(store):
    c = store.collections.create("staff", embedder=EMB, dim=2, threshold=0.5)
    assert c.search([1.0, 0.0], embedder=EMB) == []


def test_remove_person_and_search_forgets_them(store):
    rng = np.random.default_rng(3)
    c = store.collections.create("staff", embedder=EMB, dim=8, threshold=0.0)
    ada, bob = unit_rows(rng, 2, 8), unit_rows(rng, 2, 8)
    c.enroll("ada", ada, embedder=EMB, sources=sources("ada", 2, crop=True))
    c.enroll("bob", bob, embedder=EMB, sources=sources("bob", 2, crop=True))
    assert c.search(ada[0], embedder=EMB, top_k=1)[0].person == "ada"  # fills the search cache
    assert c.remove_person("ada") == 2
    assert {m.person for m in c.search(ada[0], embedder=EMB, top_k=5)} == {"bob"}
    assert [p.name for p in c.persons()] == ["bob"] and c.size() == 2
    with pytest.raises(UnknownNameError, match="No person 'ada' in collection 'staff'"):
        c.remove_person("ada")
    with pytest.raises(UnknownNameError, match="Did you mean 'bob'"):
        c.remove_person("bobb")


def test_another_store_object_sees_new_faces(store, db_url, blobs_dir):
    c = store.collections.create("staff", embedder=EMB, dim=2, threshold=0.5)
    c.enroll("ada", [1.0, 0.0], embedder=EMB)
    with open_store(db_url, blobs=blobs_dir) as other:
        view = other.collections.get("staff")
        assert view.search([1.0, 0.0], embedder=EMB)[0].person == "ada"  # cached now
        c.enroll("bob", [0.0, 1.0], embedder=EMB)
        assert view.search([0.0, 1.0], embedder=EMB)[0].person == "bob"  # revision moved: reloaded


def test_crops_are_content_addressed_files(store):
    c = store.collections.create("staff", embedder=EMB, dim=2, threshold=0.5)
    src = FaceSource.of_image(b"photo bytes", box=(0, 0, 10, 10), crop=b"crop bytes")
    c.enroll("ada", [1.0, 0.0], embedder=EMB, sources=[src])
    path = store.blobs.path(sha256_hex(b"crop bytes"))
    assert path.read_bytes() == b"crop bytes" and path.parent.parent == store.blobs.root


def test_the_fingerprint_tells_two_embedders_of_one_name_apart(store):
    c = store.collections.create("fp", embedder="mfn", dim=2, threshold=0.5, fingerprint="a" * 64,
                                 source="/runs/mfn", weights=None)  # fmt: skip
    info = store.collections.get("fp").info
    assert (info.fingerprint, info.source) == ("a" * 64, "/runs/mfn")
    c.enroll("ada", [1.0, 0.0], embedder="mfn", fingerprint="a" * 64)
    with pytest.raises(ConflictError, match=r"fingerprint aaaaaaaaaaaa.*bbbbbbbbbbbb.*not comparable"):
        c.enroll("bob", [0.0, 1.0], embedder="mfn", fingerprint="b" * 64)
    with pytest.raises(ConflictError, match="another file or input normalization"):
        c.search([1.0, 0.0], embedder="mfn", fingerprint="b" * 64)
    assert [m.person for m in c.search([1.0, 0.0], embedder="mfn")] == ["ada"]  # no fingerprint given: name only
    assert [p.name for p in c.persons()] == ["ada"]
    with pytest.raises(UsageError, match="fingerprint"):
        store.collections.create("bad", embedder="mfn", dim=2, threshold=0.5, fingerprint="x" * 65)


def test_search_cache_grows_by_the_added_faces_and_rereads_after_a_removal(store, monkeypatch):
    from imgrec.store import search

    if store.vectors == "pgvector":
        pytest.skip("pgvector searches in SQL: there is no matrix cache")
    full_reads = []
    real = search.load_matrix
    monkeypatch.setattr(search, "load_matrix", lambda *a: full_reads.append(1) or real(*a))
    rng = np.random.default_rng(5)
    c = store.collections.create("grow", embedder=EMB, dim=8, threshold=0.0)
    ada, bob, cy = unit_rows(rng, 3, 8), unit_rows(rng, 2, 8), unit_rows(rng, 1, 8)
    c.enroll("ada", ada, embedder=EMB, sources=sources("ada", 3))
    assert c.search(ada[1], embedder=EMB, top_k=1)[0].person == "ada" and len(full_reads) == 1
    c.enroll("bob", bob, embedder=EMB, sources=sources("bob", 2))
    top = c.search(bob[1], embedder=EMB, top_k=1)[0]
    assert (top.person, round(top.similarity, 5)) == ("bob", 1.0) and len(full_reads) == 1  # appended, not re-read
    cached = store.cache[c.info.id]
    assert len(cached.face_ids) == 5 and list(cached.face_ids) == sorted(cached.face_ids)
    c.remove_person("bob")  # bob held the largest ids: SQLite may give them to the next faces
    c.enroll("cy", cy, embedder=EMB, sources=sources("cy", 1))
    found = c.search(bob[1], embedder=EMB, top_k=5)
    assert {m.person for m in found} == {"ada", "cy"} and len(full_reads) == 2  # removal: read again
    assert c.search(cy[0], embedder=EMB, top_k=1)[0].person == "cy"

"""Face embedders: MobileFaceNet imported on real crops, dlib's ResNet against dlib's own chip path,
SFace's sha256-checked download (loopback), and the import options and bad files of --task embed."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from tests.conftest import shared_data_path
from tests.embed_helpers import import_mobilefacenet, johns, mobilefacenet_file, serving, tiny_onnx, yunet_file

from imgrec.errors import DataError, ModelFileError, UnknownNameError, UsageError
from imgrec.inference import Predictor
from imgrec.models import create_model, list_models, load_model
from imgrec.models.importer import ImportOptions, import_model
from imgrec.tasks import Embedding


@pytest.fixture(scope="module")
def mfn(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return import_mobilefacenet(tmp_path_factory.mktemp("mfn") / "run")


def test_imported_mobilefacenet_records_its_template_and_normalization(mfn: Path) -> None:
    meta = json.loads((mfn / "model.json").read_text())
    assert (meta["task"], meta["family"], meta["classes"]) == ("embed", "external", [])
    assert meta["embedding"] == {"dim": 128, "template": "arcface-112", "normalization": "l2", "similarity": "cosine"}
    prep = meta["preprocessing"]
    assert (prep["size"], prep["crop_pct"], prep["mean"], prep["std"]) == (112, 1.0, [0.485, 0.456, 0.406],
                                                                         [0.229, 0.224, 0.225])  # fmt: skip
    assert meta["provenance"]["sha256"] == meta["external"]["sha256"] and len(meta["external"]["sha256"]) == 64


def test_mobilefacenet_nearest_neighbour_is_the_same_person_for_all_55_crops(mfn: Path) -> None:
    """The crops are dlib chips (150 px), taken whole and resized to 112 by the run's preprocessing."""
    files = sorted(johns().glob("*/*.jpg"))
    persons = np.array([f.parent.name for f in files])
    found = Predictor.from_run(mfn).predict(files)
    assert len(found) == 55 and all(isinstance(e, Embedding) and e.embedder == "mobilefacenet" for e in found)
    x = np.stack([e.vector for e in found])
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)
    sims = x @ x.T
    np.fill_diagonal(sims, -1)
    assert (persons[sims.argmax(axis=1)] == persons).all()
    same = persons[:, None] == persons[None, :]
    np.fill_diagonal(same, False)
    assert sims[same].mean() > 0.75 > 0.6 > sims[~same & (sims > -1)].mean()


def test_norm_presets_and_explicit_mean_std(tmp_path: Path) -> None:
    options = ImportOptions(task="embed", norm="arcface", name="mfn-arc")
    run = import_model(mobilefacenet_file(), options, tmp_path / "a")
    meta = json.loads((run / "model.json").read_text())
    assert meta["model"] == "mfn-arc" and meta["preprocessing"]["mean"] == [0.5] * 3 == meta["preprocessing"]["std"]
    run = import_model(mobilefacenet_file(), ImportOptions(task="embed", mean=(0.0,) * 3, std=(1 / 255,) * 3,
                                                           template="dlib-150"), tmp_path / "b")  # fmt: skip
    meta = json.loads((run / "model.json").read_text())
    assert meta["embedding"]["template"] == "dlib-150" and meta["preprocessing"]["mean"] == [0.0] * 3
    with pytest.raises(UsageError, match="drop --mean/--std"):
        ImportOptions(task="embed", norm="raw", mean=(0.5,) * 3).resolved()
    with pytest.raises(UsageError, match="Unknown --norm"):
        ImportOptions(task="embed", norm="imagenett").resolved()
    with pytest.raises(UsageError, match="--task embed"):
        ImportOptions(task="classify", template="arcface-112").resolved()
    with pytest.raises(UnknownNameError, match="arcface-112"):
        import_model(mobilefacenet_file(), ImportOptions(task="embed", template="arcface-128"), tmp_path / "c")
    with pytest.raises(UsageError, match="no classes"):
        import_model(mobilefacenet_file(), ImportOptions(task="embed", classes=["a"]), tmp_path / "d")


def test_a_classifier_file_is_refused_as_an_embedder_and_a_logits_one_works(tmp_path: Path) -> None:
    """Decision: probabilities (a softmax at the end) are refused with the reason; logits are
    accepted as a generic embedding (ImageNet logits of MobileNetV2 here, 1000-d)."""
    softmax = tiny_onnx(tmp_path / "classifier.onnx", dim=10, softmax=True)
    with pytest.raises(ModelFileError, match=r"class probabilities .* --task classify"):
        import_model(softmax, ImportOptions(task="embed"), tmp_path / "a")
    assert not (tmp_path / "a" / "model.json").exists()
    mnv2 = shared_data_path("models", "imagenet-embeddings", "mobilenetv2-12-int8.onnx")
    run = import_model(mnv2, ImportOptions(task="embed", input_size=224), tmp_path / "b")
    (e,) = Predictor.from_run(run).predict(str(shared_data_path("test-images", "parrot.jpg")))
    assert e.dim == 1000 and abs(np.linalg.norm(e.vector) - 1) < 1e-5


def test_bad_files_are_refused_with_the_reason(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="12 outputs; an embedder gives one"):
        import_model(yunet_file(), ImportOptions(task="embed"), tmp_path / "a")
    text = tmp_path / "notes.onnx"
    text.write_bytes(b"not a model")
    with pytest.raises(ModelFileError):
        import_model(text, ImportOptions(task="embed"), tmp_path / "b")


def test_sface_is_downloaded_once_and_sha256_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from imgrec.models import face_embed

    monkeypatch.setenv("IMGREC_HOME", str(tmp_path))
    for key in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(key, raising=False)
    payload = tiny_onnx(tmp_path / "made.onnx").read_bytes()
    import hashlib

    digest = hashlib.sha256(payload).hexdigest()
    entry = face_embed.EMBEDDER_FILES["sface"]
    with serving(payload, "face_recognition_sface_2021dec.onnx") as url:
        monkeypatch.setitem(face_embed.EMBEDDER_FILES, "sface", dataclasses.replace(entry, url=url, sha256=digest))
        model = create_model("sface", [])
        assert model.path.parent == tmp_path / "weights" and model.path.read_bytes() == payload
        assert (model.task, model.dim, model.template, model.family) == ("embed", 128, "arcface-112", "faces")
        bad = dataclasses.replace(entry, url=url + "?v=2", sha256="0" * 64)
        monkeypatch.setitem(face_embed.EMBEDDER_FILES, "sface", bad)
        with pytest.raises(DataError, match="sha256"):
            create_model("sface", [])
    assert len(list((tmp_path / "weights").iterdir())) == 1  # the mismatching download was not kept


def test_sface_refuses_another_models_file_and_classes(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="is not a sface file"):
        create_model("sface", [], weights=yunet_file())
    with pytest.raises(ModelFileError, match="is not a sface file"):
        create_model("sface", [], weights=tiny_onnx(tmp_path / "t.onnx", dim=64))
    with pytest.raises(UsageError, match="no classes"):
        create_model("sface", ["face"], weights=tiny_onnx(tmp_path / "t.onnx"))
    assert set(list_models(task="embed")) == {"dlib-resnet", "sface"}


def test_dlib_150_alignment_agrees_with_dlibs_own_chip_path() -> None:
    """Our path (dlib-hog landmarks -> 5 points -> Umeyama onto dlib-150 -> the embedder) and
    dlib's (68-point shape -> get_face_chip(150, 0.25) -> compute_face_descriptor) give nearly the
    same descriptor for every face of two real photos: Euclidean distance far under dlib's
    same-person 0.6 (measured: 0.09 to 0.19)."""
    dlib = pytest.importorskip("dlib")
    from imgrec.imaging import load_image
    from imgrec.imaging.align import align_face
    from imgrec.models.face_classical import dlib_model_file

    embedder = create_model("dlib-resnet", [])
    detector = Predictor(create_model("dlib-hog", ["face"], upsample=0))
    shapes = dlib.shape_predictor(str(dlib_model_file("shape_predictor_68_face_landmarks.dat")))
    net = dlib.face_recognition_model_v1(str(dlib_model_file("dlib_face_recognition_resnet_model_v1.dat")))
    checked = 0
    for name in ("2008_001322.jpg", "2008_002079.jpg"):
        image = load_image(shared_data_path("faces-dlib", "faces", name))
        (faces,) = detector.predict(image, conf=0.5)
        for d in faces.detections:
            x1, y1, x2, y2 = (round(v) for v in d.box)
            shape = shapes(image, dlib.rectangle(x1, y1, x2 - 1, y2 - 1))
            theirs = np.asarray(net.compute_face_descriptor(image, shape))
            ours = embedder.embed(align_face(image, d.landmarks, template="dlib-150").image[None])[0]
            assert np.linalg.norm(ours - theirs) < 0.25
            assert ours @ theirs / np.linalg.norm(ours) / np.linalg.norm(theirs) > 0.985
            checked += 1
    assert checked == 5


def test_dlib_resnet_run_reloads_and_refuses_options(tmp_path: Path) -> None:
    pytest.importorskip("dlib")
    from imgrec.models import save_model

    run = save_model(create_model("dlib-resnet", []), tmp_path / "run")
    model, meta = load_model(run)
    assert (meta["embedding"]["template"], model.preprocessing.size, meta["files"]) == ("dlib-150", 150, {})
    with pytest.raises(UsageError, match="takes no options"):
        create_model("dlib-resnet", [], jitters=2)
    with pytest.raises(UsageError, match="150 px"):
        create_model("dlib-resnet", [], image_size=112)

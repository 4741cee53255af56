"""imaging.align: the similarity fit, the warp onto a template, and the unaligned fallback."""

from __future__ import annotations

import numpy as np
import pytest

from imgrec.errors import UnknownNameError, UsageError
from imgrec.imaging.align import TEMPLATES, align_face, similarity_transform, square_crop_matrix


def similarity(angle: float, scale: float, shift: tuple[float, float]) -> np.ndarray:
    c, s = np.cos(angle) * scale, np.sin(angle) * scale
    return np.array([[c, -s, shift[0]], [s, c, shift[1]]])


def apply(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return pts @ m[:, :2].T + m[:, 2]


def test_umeyama_recovers_a_rotation_scale_and_shift_exactly() -> None:
    src = np.random.default_rng(0).uniform(0, 200, (5, 2))
    truth = similarity(0.4, 1.7, (-30.0, 12.5))
    np.testing.assert_allclose(similarity_transform(src, apply(truth, src)), truth, atol=1e-9)


def test_least_squares_with_noise_and_no_reflection() -> None:
    rng = np.random.default_rng(1)
    src = rng.uniform(0, 100, (5, 2))
    truth = similarity(-0.3, 0.8, (5.0, 7.0))
    m = similarity_transform(src, apply(truth, src) + rng.normal(0, 0.5, (5, 2)))
    assert np.linalg.det(m[:, :2]) > 0 and np.abs(m[:, :2] - truth[:, :2]).max() < 0.02
    assert np.abs(m[:, 2] - truth[:, 2]).max() < 1.5
    mirrored = src * [-1, 1]
    assert np.linalg.det(similarity_transform(src, mirrored)[:, :2]) > 0  # never a flip, even when it would fit


def test_the_warp_puts_each_landmark_on_its_template_point() -> None:
    t = TEMPLATES["arcface-112"]
    truth = similarity(0.25, 3.1, (140.0, 60.0))
    landmarks = apply(truth, t.points)  # a face in a 500 x 400 photo, rotated and larger
    img = np.zeros((400, 500, 3), np.uint8)
    for k, (x, y) in enumerate(landmarks):
        img[int(np.rint(y)) - 3 : int(np.rint(y)) + 4, int(np.rint(x)) - 3 : int(np.rint(x)) + 4] = 50 * (k + 1)
    face = align_face(img, landmarks)
    assert face.aligned and face.image.shape == (112, 112, 3)
    for k, (x, y) in enumerate(t.points):
        assert face.image[int(np.rint(y)), int(np.rint(x)), 0] == pytest.approx(50 * (k + 1), abs=30)
    np.testing.assert_allclose(apply(face.matrix, landmarks), t.points, atol=1e-6)


def test_a_face_without_landmarks_is_a_square_crop_flagged_unaligned() -> None:
    img = np.zeros((300, 300, 3), np.uint8)
    img[100:200, 120:180] = 200  # the box: 60 x 100
    face = align_face(img, None, (120, 100, 180, 200), template="dlib-150", margin=0.2)
    assert not face.aligned and face.image.shape == (150, 150, 3)
    m = square_crop_matrix((120, 100, 180, 200), 150, 0.2)
    np.testing.assert_allclose(apply(m, np.array([[150.0, 150.0]])), [[75.0, 75.0]])  # centred
    rows = np.flatnonzero(face.image[:, 75, 0] > 100)
    assert rows[0] == pytest.approx(150 * 0.2 / 1.4, abs=2) and rows[-1] == pytest.approx(150 - 150 * 0.2 / 1.4, abs=2)


def test_bad_inputs_are_refused_with_what_was_received() -> None:
    img = np.zeros((50, 50, 3), np.uint8)
    with pytest.raises(UsageError, match="5 landmarks; received 3"):
        align_face(img, np.zeros((3, 2)))
    with pytest.raises(UsageError, match="neither"):
        align_face(img)
    with pytest.raises(UsageError, match="one point"):
        align_face(img, np.ones((5, 2)))
    with pytest.raises(UnknownNameError, match="arcface-112"):
        align_face(img, box=(0, 0, 10, 10), template="arcface")
    with pytest.raises(UsageError, match="RGB uint8"):
        align_face(img[..., 0], box=(0, 0, 10, 10))


def test_dlib_150_crops_match_dlibs_own_face_chips(shared_data) -> None:
    """The dlib-150 template reproduces dlib.get_face_chip on real photos (what its ResNet embedder takes)."""
    dlib = pytest.importorskip("dlib")
    from imgrec.imaging import load_image
    from imgrec.models.face_classical import dlib_model_file, landmarks_from_68

    img = load_image(shared_data("faces-dlib", "faces", "2008_002506.jpg"))
    sp5 = dlib.shape_predictor(str(dlib_model_file("shape_predictor_5_face_landmarks.dat")))
    sp68 = dlib.shape_predictor(str(dlib_model_file("shape_predictor_68_face_landmarks.dat")))
    for rect in dlib.get_frontal_face_detector()(img, 1):
        chip = np.asarray(dlib.get_face_chip(img, sp5(img, rect), 150, 0.25), np.float32)
        points = landmarks_from_68(np.array([(p.x, p.y) for p in sp68(img, rect).parts()]))
        ours = align_face(img, points, template="dlib-150").image.astype(np.float32)
        shifted = align_face(img, points + np.array([12.0, 0.0]), template="dlib-150").image.astype(np.float32)
        same, off = np.abs(ours - chip).mean(), np.abs(shifted - chip).mean()
        assert same < 0.6 * off, (same, off)  # much closer to dlib's chip than a crop 12 px to the side

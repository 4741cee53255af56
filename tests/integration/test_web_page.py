"""The web page in a real browser: upload images, see labels, bars and latency (Playwright + Chromium)."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from tests.conftest import make_image_folder

from imgrec.config import TrainConfig

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
CLASSES = {"circle", "square", "stripes"}


def _chromium() -> str:
    path = os.environ.get("IMGREC_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        path = ""
    if not path or not Path(path).exists():
        reason = "no browser for the web page test: needs the playwright package and Chromium at /usr/bin/chromium"
        if os.environ.get("CI") == "true":
            pytest.fail(reason + " (required under CI=true)")
        pytest.skip(reason)
    return path


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    executable = _chromium()
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture(scope="module")
def shapes_and_run(tmp_path_factory) -> tuple[Path, Path]:
    from imgrec.training import train

    root = tmp_path_factory.mktemp("web") / "shapes"
    make_image_folder(root, per_class=10, seed=6, size=64)
    return root, train(root, TrainConfig(model="hog-svm"), out=root.parent / "runs" / "hog-svm-1").path


@contextmanager
def live_server(app) -> Iterator[str]:
    """A real uvicorn server for ``app`` in a thread on a free loopback port."""
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    end = time.monotonic() + 20
    while not server.started and time.monotonic() < end:
        time.sleep(0.02)
    try:
        assert server.started, "uvicorn did not start"
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/"
    finally:
        server.should_exit = True
        thread.join(20)
        sock.close()


def test_upload_images_and_see_labels_bars_and_latency(browser, shapes_and_run, tmp_path):
    from playwright.sync_api import expect

    from imgrec.serve import create_app

    shapes, run = shapes_and_run
    images = [sorted((shapes / c).glob("*.png"))[0] for c in ("circle", "stripes", "square")]
    with live_server(create_app([run])) as url:
        page = browser.new_page(viewport={"width": 1180, "height": 820})
        page.goto(url)
        page.wait_for_selector("#model option[value='hog-svm-1']", state="attached")
        page.wait_for_selector("#model-info .chip")
        page.set_input_files("#file-input", [str(p) for p in images])
        expect(page.locator(".card .label:not(.pending)")).to_have_count(3, timeout=20_000)
        labels = page.locator(".card .label").all_inner_texts()
        assert len(labels) == 3 and set(labels) <= CLASSES
        assert page.locator(".card .bar-row").count() == 9  # top 5 asked, 3 classes each
        page.wait_for_timeout(600)  # let the bars' width transition finish for the screenshot
        widths = page.eval_on_selector_all(".bar-fill", "els => els.map(e => e.getBoundingClientRect().width)")
        assert all(w > 0 for w in widths) and max(widths) > 20
        assert "ms" in page.locator(".card .meta").first.inner_text()
        assert page.locator(".card.failed").count() == 0
        page.screenshot(path=str(tmp_path / "web_page.png"), full_page=True)
        page.close()


def test_with_api_keys_the_page_asks_for_a_key_then_works(browser, shapes_and_run):
    from imgrec.serve import ServeConfig, create_app

    shapes, run = shapes_and_run
    image = sorted((shapes / "circle").glob("*.png"))[0]
    with live_server(create_app([run], ServeConfig(api_keys=("page-key-1",)))) as url:
        page = browser.new_page()
        page.goto(url)
        page.wait_for_selector("#status.error")
        assert "API key" in page.locator("#status").inner_text()
        page.fill("#api-key", "page-key-1")
        page.dispatch_event("#api-key", "change")
        page.wait_for_selector("#model option[value='hog-svm-1']", state="attached")
        page.set_input_files("#file-input", str(image))
        page.wait_for_selector(".card .label:not(.pending)")
        assert page.locator(".card .label").inner_text() in CLASSES
        page.close()


def test_a_detection_model_gets_its_boxes_drawn_over_the_image(browser, tmp_path):
    pytest.importorskip("onnxruntime")
    from playwright.sync_api import expect
    from tests.conftest import shared_data_path

    from imgrec.models.importer import ImportOptions, import_model
    from imgrec.serve import create_app

    names = shared_data_path("coco128", "coco80.names")
    run = import_model(shared_data_path("models", "yolox-nano", "yolox_nano.onnx"),
                       ImportOptions(task="detect", layout="yolox", classes=names), tmp_path / "yolox")  # fmt: skip
    image = shared_data_path("coco128", "images", "train2017", "000000000009.jpg")
    with live_server(create_app([run])) as url:
        page = browser.new_page(viewport={"width": 1180, "height": 820})
        page.goto(url)
        page.wait_for_selector("#model option[value='yolox']", state="attached")
        page.set_input_files("#file-input", [str(image)])
        expect(page.locator(".card .label:not(.pending)")).to_have_count(1, timeout=20_000)
        assert "object" in page.locator(".card .label").inner_text()
        boxes = page.locator(".card .box")
        assert boxes.count() >= 3 and "bowl" in page.locator(".card .box-label").all_inner_texts()[0]
        frame = page.locator(".card .img-frame").bounding_box()
        first = boxes.first.bounding_box()
        assert frame and first and first["x"] >= frame["x"] - 1 and first["y"] >= frame["y"] - 1
        assert first["x"] + first["width"] <= frame["x"] + frame["width"] + 1
        page.screenshot(path=str(tmp_path / "web_detect.png"), full_page=True)
        page.close()


def test_served_faces_get_boxes_landmarks_and_names(browser, tmp_path):
    """`imgrec serve --faces`: the page offers the collection and draws each face's box, its 5
    landmarks and the matched name (or "unknown") over the photo."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("sqlalchemy")
    from playwright.sync_api import expect
    from tests.conftest import shared_data_path
    from tests.embed_helpers import import_mobilefacenet, johns, yunet_file

    from imgrec.analyzers.faces import FaceRecognizer, create_collection, face_detector, face_embedder
    from imgrec.serve import ServeConfig, create_app
    from imgrec.serve.faces import FaceService
    from imgrec.store import open_store

    rec = FaceRecognizer(face_detector("yunet", weights=yunet_file()),
                         face_embedder(import_mobilefacenet(tmp_path / "mfn")))  # fmt: skip
    store = open_store(tmp_path / "db")
    staff = create_collection(store, "staff", rec.embedder, threshold=0.36)
    savage = sorted((johns() / "John_Savage").glob("*.jpg"))
    rec.enroll(staff, "John Savage", savage[:3])
    group = shared_data_path("faces-dlib", "faces", "2008_002506.jpg")
    with live_server(create_app({}, ServeConfig(), faces=FaceService(store, rec, "staff"))) as url:
        page = browser.new_page(viewport={"width": 1180, "height": 820})
        page.goto(url)
        page.wait_for_selector("#model option[value='faces:staff']", state="attached")
        assert "3 faces" in page.locator("#model-info").inner_text()
        page.set_input_files("#file-input", [str(savage[6]), str(group)])
        expect(page.locator(".card .label:not(.pending)")).to_have_count(2, timeout=20_000)
        cards = page.locator(".card")
        one, three = cards.nth(0), cards.nth(1)  # in upload order: John Savage, then the group photo
        assert one.locator(".box-label").inner_text().startswith("John Savage")
        assert one.locator(".dot").count() == 5 and one.locator(".label").inner_text() == "1 of 1 known"
        assert three.locator(".box.unknown").count() == 3 and three.locator(".dot").count() == 15
        assert three.locator(".label").inner_text() == "0 of 3 known"
        page.screenshot(path=str(tmp_path / "web_faces.png"), full_page=True)
        page.close()


def _mask_pixels(page) -> int:
    """Opaque pixels of the first card's mask canvas (the overlay drawn from `mask_png`)."""
    page.wait_for_selector(".card canvas.mask", state="attached", timeout=20_000)
    return int(page.evaluate("""() => {
        const c = document.querySelector('.card canvas.mask');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        for (let i = 3; i < d.length; i += 4) n += d[i] > 0 ? 1 : 0;
        return n;
    }"""))


def test_a_segmentation_model_gets_its_mask_overlaid(browser, tmp_path):
    """The page asks a segmenter for masks=png and paints the person over the photo."""
    from playwright.sync_api import expect
    from tests.imported_segmenters import LANDSCAPE_ONNX, import_segmenter, photo

    from imgrec.serve import create_app

    pytest.importorskip("onnxruntime")
    run = import_segmenter(LANDSCAPE_ONNX, tmp_path / "selfie")
    with live_server(create_app([run])) as url:
        page = browser.new_page(viewport={"width": 1180, "height": 820})
        page.goto(url)
        page.wait_for_selector("#model option[value='selfie']", state="attached")
        page.set_input_files("#file-input", [str(photo("face.jpg"))])
        expect(page.locator(".card .label:not(.pending)")).to_have_count(1, timeout=20_000)
        assert "person" in page.locator(".card .label").inner_text()
        assert _mask_pixels(page) > 1000
        page.close()


def test_an_instance_model_gets_boxes_and_masks(browser, tmp_path):
    """An instance segmenter's answer: a box per object and the masks' index PNG over the photo."""
    torch = pytest.importorskip("torch")
    from playwright.sync_api import expect
    from tests.conftest import shared_data_path

    from imgrec.models import create_model, save_model
    from imgrec.serve import create_app

    torch.manual_seed(0)
    run = save_model(create_model("maskrcnn_mobilenet_v3_large_fpn", ["a", "b"], image_size=64), tmp_path / "mrcnn")
    image = shared_data_path("coco128", "images", "train2017", "000000000009.jpg")
    with live_server(create_app([run])) as url:
        page = browser.new_page(viewport={"width": 1180, "height": 820})
        page.goto(url)
        page.wait_for_selector("#model option[value='mrcnn']", state="attached")
        page.set_input_files("#file-input", [str(image)])
        expect(page.locator(".card .label:not(.pending)")).to_have_count(1, timeout=30_000)
        assert "object" in page.locator(".card .label").inner_text() and page.locator(".card .box").count() > 0
        assert _mask_pixels(page) > 0
        page.close()

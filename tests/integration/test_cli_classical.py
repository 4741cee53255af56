"""The whole classification path through the CLI on a messy real folder (classical model: fast)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def hog_run(messy_folder, tmp_path_factory) -> Path:
    from imgrec.cli.main import main

    out = tmp_path_factory.mktemp("runs") / "hog run"
    assert main(["train", str(messy_folder), "--model", "hog-svm", "--out", str(out), "--seed", "0"]) == 0
    return out


def test_train_writes_a_complete_run_and_lists_the_corrupt_file(hog_run):
    for name in ("model.json", "report.html", "metrics.json", "splits.json", "pipeline.json", "pipeline.npz"):
        assert (hog_run / name).is_file(), name
    meta = json.loads((hog_run / "model.json").read_text())
    assert meta["model"] == "hog-svm" and meta["classes"] == ["circle", "square", "stripes"]
    assert meta["data"]["bad_files"] == 1
    assert len(meta["data"]["fingerprint"]) == 16
    metrics = json.loads((hog_run / "metrics.json").read_text())
    assert json.dumps(metrics)  # machine-readable
    html = (hog_run / "report.html").read_text()
    assert "corrupt.jpg" in html


def test_train_output_names_skipped_files(messy_folder, tmp_path, cli):
    code, out, err = cli("train", messy_folder, "--model", "lbp-svm", "--out", tmp_path / "r")
    assert code == 0, err
    assert "corrupt.jpg" in out
    assert "Traceback" not in out + err


def test_predict_reports_bad_files_as_error_rows_and_predicts_the_rest(hog_run, messy_folder, cli):
    code, out, err = cli(
        "predict",
        hog_run,
        messy_folder / "circle",
        str(messy_folder / "square" / "*.jpg"),
        "--format",
        "json",
        "--top-k",
        "2",
    )
    assert code == 65, err  # one input failed: reported, the others predicted
    rows = json.loads(out)
    errors = [r for r in rows if "error" in r]
    assert [Path(r["path"]).name for r in errors] == ["corrupt.jpg"]
    assert errors[0]["error"]["code"] == "image_invalid"
    good = [r for r in rows if "error" not in r]
    assert len(good) >= 24 and all(len(r["top_k"]) == 2 for r in good)
    circles = [r for r in good if "/circle/" in r["path"]]
    assert sum(r["label"] == "circle" for r in circles) / len(circles) > 0.6


def test_predict_csv_and_threshold(hog_run, messy_folder, cli):
    code, out, _ = cli("predict", hog_run, messy_folder / "stripes", "--format", "csv", "--threshold", "1.0")
    assert code == 0
    lines = out.strip().splitlines()
    assert lines[0].startswith("path,label,score")
    assert all(",unknown," in line for line in lines[1:])  # nobody is 100% sure


def test_evaluate_on_own_test_split_and_on_a_folder(hog_run, messy_folder, cli):
    code, out, err = cli("evaluate", hog_run, "--format", "json")
    assert code == 0, err
    metrics = json.loads(out)
    assert metrics["accuracy"] > 1 / 3 and set(metrics["per_class"]) == {"circle", "square", "stripes"}
    code, out, err = cli("evaluate", hog_run, messy_folder)
    assert code == 0, err
    assert "per class" in out and (hog_run / "eval" / "my photos" / "report.html").is_file()


def test_compare_two_runs(hog_run, messy_folder, tmp_path, cli):
    other = tmp_path / "color"
    assert cli("train", messy_folder, "--model", "color-svm", "--out", other)[0] == 0
    code, out, err = cli("compare", hog_run, other, "--format", "json")
    assert code == 0, err
    rows = json.loads(out)["runs"]
    assert {r["model"] for r in rows} == {"hog-svm", "color-svm"}
    assert rows[0]["accuracy"] >= rows[1]["accuracy"]


def test_models_lists_names_with_family_and_size(cli):
    code, out, _ = cli("models", "--format", "json")
    assert code == 0
    rows = {r["model"]: r for r in json.loads(out)}
    assert rows["hog-svm"]["family"] == "classical"
    assert rows["resnet18"]["family"] == "torch" and rows["resnet18"]["input"] == 224
    assert {"cnn-small", "efficientnet_b0", "vit_small_patch16_224"} <= set(rows)


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (("train", "no/such/folder", "--model", "hog-svm"), 66, "no/such/folder"),
        (("predict", "no/such/run", "x.png"), 66, "no/such/run"),
        (("train", "digits", "--model", "resnet19"), 2, "resnet18"),
        (("train", "digits", "--set", "epoch=3"), 2, "epochs"),
    ],
)
def test_user_mistakes_exit_with_the_documented_code_and_no_traceback(cli, args, code, needle):
    got, out, err = cli(*args)
    assert got == code
    assert needle in out + err and "Traceback" not in out + err


def test_unwritable_output_exits_73(messy_folder, tmp_path, cli):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    got, out, err = cli("train", messy_folder, "--model", "hog-svm", "--out", blocker / "run")
    assert got == 73 and "Traceback" not in out + err


def test_a_folder_of_one_class_or_mostly_corrupt_files_exits_65(tmp_path, cli):
    one = tmp_path / "one"
    (one / "only").mkdir(parents=True)
    (one / "only" / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    got, out, err = cli("train", one, "--model", "hog-svm", "--out", tmp_path / "r1")
    assert got == 65 and "2 classes" in out + err

    from tests.conftest import make_image_folder

    many_bad = make_image_folder(tmp_path / "bad", per_class=6)
    for i in range(3):
        (many_bad / "circle" / f"broken{i}.jpg").write_bytes(b"\xff\xd8\xff" + bytes(10))
    got, out, err = cli("train", many_bad, "--model", "hog-svm", "--out", tmp_path / "r2")
    assert got == 65 and "broken0.jpg" in out + err


def test_data_check_split_preview(messy_folder, tmp_path, cli):
    report = tmp_path / "check.json"
    code, _out, err = cli("data", "check", messy_folder, "--out", report)
    assert code == 0, err
    data = json.loads(report.read_text())
    assert "corrupt.jpg" in json.dumps(data)
    manifest = tmp_path / "splits.json"
    assert cli("data", "split", messy_folder, "--seed", "3", "--out", manifest)[0] == 0
    first = manifest.read_text()
    assert cli("data", "split", messy_folder, "--seed", "3", "--out", manifest)[0] == 0
    assert manifest.read_text() == first  # reproducible
    png = tmp_path / "preview.png"
    assert cli("data", "preview", messy_folder, "--augment", "strong", "--out", png)[0] == 0
    assert png.read_bytes().startswith(b"\x89PNG")

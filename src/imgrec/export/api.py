"""``export_run``: a trained run in, checked ONNX files (fp32, optionally static int8) out.

Every file is checked against its source on real images before it is kept: the fp32 graph
against the torch model (top-1 agreement gate), the int8 graph against the fp32 graph
(accuracy-drop gate). A file that fails is not written and a ModelFileError (exit 65) carries
the figures. Files are staged in a hidden folder of the run and renamed into place, so a
reader never sees half a model; the figures are recorded in ``model.json`` under ``exports``.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from imgrec.errors import OutputError, UsageError
from imgrec.export import onnx_export, parity, quantize
from imgrec.export.classical import refuse_unexportable
from imgrec.export.probe_onnx import export_probe
from imgrec.export.samples import Samples, load_samples
from imgrec.files import temp_folder
from imgrec.models import Classifier, load_model, read_meta
from imgrec.models.artifact import update_meta, weight_bytes
from imgrec.models.onnx_backend import INT8_FILE, ONNX_FILE, load_onnx, load_onnx_file

FORMATS = ("onnx",)
CHECK_SPLITS = ("val", "test")
CALIBRATION_SPLITS = ("train",)
FP32_FAILED = (
    "model.onnx was not written. If the architecture exports differently, try --exporter dynamo; "
    "to accept it anyway, lower --min-agreement."
)
INT8_FAILED = (
    "model.int8.onnx was not written (model.onnx was). Calibrate on more representative images "
    "(--calibration FOLDER, more of them with --calibration-size), or raise --max-drop."
)
MAX_INT8_MAP_DROP = 2.0  # detectors' int8 gate, mAP@[.5:.95] points lost vs model.onnx (why: export/detect_int8.py)
SLOWER_MARGIN = 1.05  # int8 slower than fp32 by more than this factor gets a note (the timing is short)
STALE = "The file was changed or does not belong to this run's weights; export again: imgrec export {run}"


@dataclass
class ExportedFile:
    """One checked export.

    Attributes:
        backend: "onnx" or "onnx-int8" (the Predictor backend that loads it).
        path: the file.
        size_bytes: its size on disk.
        reference: what it was compared with ("torch" or "model.onnx").
        parity: the comparison figures.
        gate: the rule it passed, in words.
        details: exporter, opset, quantization settings, checksum.
        notes: what the user should know about the file (e.g. int8 slower than fp32 here).
    """

    backend: str
    path: Path
    size_bytes: int
    reference: str
    parity: parity.Parity
    gate: str
    details: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.path.name, "bytes": self.size_bytes, "reference": self.reference,
            "gate": self.gate, "passed": True, **self.parity.to_dict(), **self.details, "notes": list(self.notes),
        }


@dataclass
class ExportReport:
    """What ``export_run`` wrote: the files with their figures, and the source's size."""

    run_dir: Path
    source_bytes: int
    files: list[ExportedFile]

    def to_dict(self) -> dict[str, Any]:
        return {
            "run": str(self.run_dir), "source_bytes": self.source_bytes,
            "files": {f.backend: f.to_dict() for f in self.files},
        }


def export_run(
    run_dir: str | Path,
    *,
    format: str = "onnx",
    int8: bool = False,
    data: str | Path | None = None,
    calibration: str | Path | None = None,
    samples: int = 256,
    calibration_size: int = 256,
    min_agreement: float = 0.99,
    max_drop: float = 1.0,
    opset: int = onnx_export.DEFAULT_OPSET,
    exporter: str = "auto",
    max_map_drop: float = MAX_INT8_MAP_DROP,
) -> ExportReport:
    """Export a torch run to ``model.onnx`` (and ``model.int8.onnx`` with ``int8``), checked.

    Args:
        run_dir: the run directory.
        format: only "onnx".
        int8: also write the static int8 (QDQ, per-channel) model.
        data: images for the checks; default the run's validation (else test) split.
        calibration: images for int8 calibration; default the run's training split.
        samples: at most this many check images.
        calibration_size: at most this many calibration images.
        min_agreement: fp32 gate: the least top-1 agreement with the torch model (0.99 = 99%).
        max_drop: int8 gate: the most top-1 accuracy lost against fp32, in percentage points.
        opset: ONNX opset (the dynamo exporter uses at least 18).
        exporter: "auto", "torchscript" or "dynamo" (classifiers; detectors are traced by TorchScript).
        max_map_drop: int8 gate of detectors: the most mAP@[.5:.95] lost against model.onnx, in
            points (default 2.0; why: :mod:`imgrec.export.detect_int8`).

    Raises:
        UsageError: bad options, or a model that cannot be exported (classical features), or
            ``int8`` for a detector without a meaningful int8 form (torchvision's, Mask R-CNN),
            or for a segmenter.
        ModelFileError: an export failed its gate (the message has the figures).

    Example:
        >>> # report = export_run("runs/resnet18-1", int8=True, calibration="photos/val")
        >>> # report.files[0].parity.top1_agreement
    """
    run = Path(run_dir)
    _check_options(format, samples, calibration_size, min_agreement, max_drop)
    _check_points("max_map_drop", max_map_drop)
    refuse_unexportable(run, read_meta(run))
    if read_meta(run).get("task") in ("detect", "instance"):
        return _export_detection_run(run, int8, data, calibration, calibration_size, max_map_drop, opset)
    if read_meta(run).get("task") == "segment":
        return _export_segmentation_run(run, int8, data, opset)
    model, meta = _classifier(run)
    if model.family == "probe" and int8:
        raise UsageError(f"{run} is a linear probe: its backbone keeps its own precision; export without --int8.")
    check = load_samples(run, data, model.preprocessing, model.classes, splits=CHECK_SPLITS, limit=samples)
    files = [_export_fp32(run, model, check, min_agreement, opset, exporter)]
    if int8:
        calib = load_samples(
            run, calibration, model.preprocessing, model.classes, splits=CALIBRATION_SPLITS,
            limit=calibration_size, seed=1,
        )
        files.append(_export_int8(run, model, files[0].path, check, calib, max_drop))
    return ExportReport(run, _source_bytes(run, meta), files)


def _export_detection_run(
    run: Path, int8: bool, data: str | Path | None, calibration: str | Path | None, calibration_size: int,
    max_map_drop: float, opset: int,
) -> ExportReport:  # fmt: skip
    """model.onnx (mAP within 0.5 points of torch; instance segmenters: mask and box mAP) and,
    with ``int8``, model.int8.onnx (mAP drop against model.onnx at most ``max_map_drop``); every
    input is read before anything is written."""
    from imgrec.export.detect_export import MAX_MAP_DROP, check_dataset, export_detector
    from imgrec.export.detect_int8 import calibration_images, export_detector_int8, refuse_int8

    model, meta = load_model(run)
    if int8:
        refuse_int8(run, model)
    check = check_dataset(run, data, model.task)
    calib = calibration_images(run, model, calibration, calibration_size) if int8 else None
    files = [export_detector(run, model, check, MAX_MAP_DROP, opset)]
    if calib is not None:
        files.append(export_detector_int8(run, model, files[0].path, check, calib, max_map_drop))
    return ExportReport(run, _source_bytes(run, meta), files)


def _export_segmentation_run(run: Path, int8: bool, data: str | Path | None, opset: int) -> ExportReport:
    """model.onnx, its mIoU within 0.5 points of the torch model's (export/segment_export.py)."""
    from imgrec.export.segment_export import MAX_MIOU_DROP, check_dataset, export_segmenter

    if int8:
        raise UsageError(f"{run} is a segmenter: int8 export is not implemented for segmentation yet; export "
                         "without --int8.", code="not_quantizable")  # fmt: skip
    model, meta = load_model(run)
    files = [export_segmenter(run, model, check_dataset(run, data), MAX_MIOU_DROP, opset)]
    return ExportReport(run, _source_bytes(run, meta), files)


def _classifier(run: Path) -> tuple[Classifier, dict[str, Any]]:
    model, meta = load_model(run)
    if not isinstance(model, Classifier):
        raise UsageError(f"{run} holds a {model.task} model; ONNX export is implemented for classifiers so far.")
    return model, meta


def _check_options(fmt: str, samples: int, calibration_size: int, min_agreement: float, max_drop: float) -> None:
    if fmt not in FORMATS:
        raise UsageError(f"Export format {fmt!r} is not supported; choose one of: {', '.join(FORMATS)}.")
    if samples < 1 or calibration_size < 1:
        raise UsageError(f"samples and calibration_size must be >= 1; received {samples}, {calibration_size}.")
    parity.check_fraction("min_agreement", min_agreement)
    _check_points("max_drop", max_drop)


def _check_points(name: str, value: float) -> None:
    if not 0.0 <= value <= 100.0:
        raise UsageError(f"{name} is in percentage points, 0 to 100; received {value}.")


def _export_fp32(
    run: Path, model: Classifier, check: Samples, min_agreement: float, opset: int, exporter: str
) -> ExportedFile:
    with _staging(run) as tmp:
        if model.family == "probe":
            used = export_probe(model, tmp / "raw.onnx")
        else:
            used = onnx_export.export_torch(model, tmp / "raw.onnx", opset=opset, exporter=exporter)
        staged = tmp / ONNX_FILE
        onnx_export.write_with_metadata(tmp / "raw.onnx", staged, onnx_export.metadata(model, {"exporter": used}))
        candidate = load_onnx_file(staged)
        figures = parity.compare(model, candidate, check)
        parity.agreement_gate(figures, min_agreement, f"The ONNX export of {run}", FP32_FAILED)
        details = {"exporter": used, "opset": _opset(staged), **_stamp(staged)}
        path = _publish(staged, run / ONNX_FILE)
    done = ExportedFile("onnx", path, path.stat().st_size, model.family, figures,
                        f"top-1 agreement >= {min_agreement:.2%}", details)
    _record(run, done)
    return done


def _export_int8(
    run: Path, model: Classifier, fp32_path: Path, check: Samples, calib: Samples, max_drop: float
) -> ExportedFile:
    fp32 = load_onnx_file(fp32_path)
    with _staging(run) as tmp:
        settings = quantize.quantize_int8(fp32_path, tmp / "raw.onnx", calib.images)
        extra = {"quantization": quantize.SCHEME, "calibration": calib.describe()}
        staged = tmp / INT8_FILE
        onnx_export.write_with_metadata(tmp / "raw.onnx", staged, onnx_export.metadata(model, extra))
        figures = parity.compare(fp32, load_onnx_file(staged), check)
        drop = parity.drop_gate(figures, max_drop, f"The int8 export of {run}", INT8_FAILED)
        details = {**settings, "calibration": calib.describe(), "gated_drop_points": round(drop, 4), **_stamp(staged)}
        path = _publish(staged, run / INT8_FILE)
    done = ExportedFile("onnx-int8", path, path.stat().st_size, ONNX_FILE, figures,
                        f"accuracy drop <= {max_drop:g} points", details, _int8_notes(figures))
    _record(run, done)
    return done


def _int8_notes(figures: parity.Parity) -> list[str]:
    """A warning when the int8 file ran slower than fp32 in the check (kernels depend on the CPU)."""
    if figures.candidate_ms <= SLOWER_MARGIN * figures.reference_ms:
        return []
    return [
        f"int8 ran slower than fp32 on this CPU ({figures.candidate_ms:.2f} vs {figures.reference_ms:.2f} "
        "ms/image): its int8 kernels do not pay off for this architecture here (e.g. depthwise convolutions "
        "on CPUs without VNNI). Predictors use model.onnx unless asked for onnx-int8; compare with "
        "`imgrec benchmark RUN --backends onnx,onnx-int8` on the target machine."
    ]


def check_exports(
    run_dir: str | Path,
    *,
    data: str | Path | None = None,
    samples: int = 256,
    min_agreement: float = 0.99,
    max_drop: float = 1.0,
    max_map_drop: float = MAX_INT8_MAP_DROP,
) -> ExportReport:
    """Check the ONNX files a run already has against their sources, without exporting again:
    the gates of :func:`export_run` on the files as they are (classifiers: top-1 agreement and
    int8 accuracy drop on ``samples`` images; detectors, instance and semantic segmenters: their
    mAP / mask mAP / mIoU gates, :mod:`imgrec.export.check_tasks`).

    Raises:
        UsageError: the run has no ONNX export.
        ModelFileError: a file fails its gate (tampered with, or stale), or cannot be loaded.
    """
    run = Path(run_dir)
    _check_options("onnx", samples, 1, min_agreement, max_drop)
    _check_points("max_map_drop", max_map_drop)
    if not (run / ONNX_FILE).is_file():
        raise UsageError(f"{run} has no {ONNX_FILE} to check; create it with `imgrec export {run} --format onnx`.")
    meta = read_meta(run)
    if meta.get("task") in ("detect", "instance", "segment"):
        from imgrec.export.check_tasks import check_task_exports

        return cast(ExportReport, check_task_exports(run, meta, data, max_map_drop))
    model, meta = _classifier(run)
    check = load_samples(run, data, model.preprocessing, model.classes, splits=CHECK_SPLITS, limit=samples)
    fp32 = load_onnx(run, meta)
    figures = parity.compare(model, fp32, check)
    parity.agreement_gate(figures, min_agreement, str(run / ONNX_FILE), STALE.format(run=run))
    files = [ExportedFile("onnx", fp32.path, fp32.path.stat().st_size, model.family, figures,
                          f"top-1 agreement >= {min_agreement:.2%}", _stamp(fp32.path))]
    if (run / INT8_FILE).is_file():
        figures8 = parity.compare(fp32, load_onnx(run, meta, int8=True), check)
        parity.drop_gate(figures8, max_drop, str(run / INT8_FILE), STALE.format(run=run))
        files.append(ExportedFile("onnx-int8", run / INT8_FILE, (run / INT8_FILE).stat().st_size, ONNX_FILE,
                                  figures8, f"accuracy drop <= {max_drop:g} points", _stamp(run / INT8_FILE),
                                  _int8_notes(figures8)))
    return ExportReport(run, _source_bytes(run, meta), files)


# ---------------------------------------------------------------- files


def _staging(run: Path) -> contextlib.AbstractContextManager[Path]:
    """A hidden temporary folder inside the run (same file system: the final rename is atomic)."""
    return temp_folder(run, ".export-")


def _publish(staged: Path, final: Path) -> Path:
    """fsync the staged file and rename it over ``final``."""
    try:
        with open(staged, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(staged, 0o644)
        os.replace(staged, final)
    except OSError as exc:
        raise OutputError(f"Cannot write {final}: {exc.strerror or exc}") from None
    return final


def _stamp(path: Path) -> dict[str, Any]:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return {"sha256": digest.hexdigest()}


def _opset(path: Path) -> int | None:
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    return next((int(o.version) for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)


def _record(run: Path, done: ExportedFile) -> None:
    """Merge one export's figures into model.json under ``exports``."""
    exports = dict(read_meta(run).get("exports") or {})
    exports[done.backend] = {
        **done.to_dict(), "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    update_meta(run, exports=exports)


def _source_bytes(run: Path, meta: dict[str, Any]) -> int:
    return weight_bytes(run, meta)

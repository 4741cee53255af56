"""``imgrec export --check`` for detectors, instance and semantic segmenters: the run's existing
ONNX files through the gates their export passed, on the same kind of images, nothing written.

The export gates (:mod:`imgrec.export.detect_export`, :mod:`imgrec.export.segment_export`,
:mod:`imgrec.export.detect_int8`) run again on the files as they are now: ``model.onnx`` against
the torch model (mAP; mask and box mAP; mIoU within ``MAX_*_DROP`` points), ``model.int8.onnx``
against ``model.onnx`` (mAP drop at most ``max_map_drop``). A file that was edited, replaced by
another run's, or left behind by weights trained further fails with the figures; a file of
another task or other classes is refused when it is loaded (:func:`load_onnx`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from imgrec.errors import ModelFileError
from imgrec.models import load_model
from imgrec.models.onnx_backend import INT8_FILE, ONNX_FILE, load_onnx

STALE = "The file was changed or does not belong to this run's weights; export again: imgrec export {run}"


def check_task_exports(run: Path, meta: dict[str, Any], data: str | Path | None, max_map_drop: float) -> Any:
    """The :class:`~imgrec.export.api.ExportReport` of a detect, instance or segment run's exports.

    Raises:
        ModelFileError: a file misses its gate (the message has the figures), or cannot be loaded.
        DatasetError: the check images hold no labels of the run's task.
    """
    from imgrec.export.api import ExportedFile, ExportReport, _source_bytes, _stamp

    model, _ = load_model(run)
    task = str(meta.get("task"))
    ds, source = _check_dataset(run, data, task)
    fp32 = load_onnx(run, meta)
    figures, gate = _fp32_figures(task, model, fp32, ds, source)
    _fail_if(figures.gate_failure(gate[0]), run / ONNX_FILE, run)
    files = [ExportedFile("onnx", run / ONNX_FILE, (run / ONNX_FILE).stat().st_size, model.family, figures, gate[1],
                          _stamp(run / ONNX_FILE))]  # fmt: skip
    if task == "detect" and (run / INT8_FILE).is_file():
        from imgrec.export.detect_export import detection_parity

        figures8 = detection_parity(fp32, load_onnx(run, meta, int8=True), ds, source)
        failure = None if figures8.map_drop <= max_map_drop else _int8_failure(figures8, max_map_drop)
        _fail_if(failure, run / INT8_FILE, run)
        gate8 = f"mAP drop <= {max_map_drop:g} points"
        files.append(ExportedFile("onnx-int8", run / INT8_FILE, (run / INT8_FILE).stat().st_size, ONNX_FILE,
                                  figures8, gate8, _stamp(run / INT8_FILE)))  # type: ignore[arg-type]  # fmt: skip
    return ExportReport(run, _source_bytes(run, meta), files)


def _check_dataset(run: Path, data: str | Path | None, task: str) -> tuple[Any, str]:
    if task == "segment":
        from imgrec.export.segment_export import check_dataset

        return check_dataset(run, data)
    from imgrec.export.detect_export import check_dataset as check_boxes

    return check_boxes(run, data, task)


def _fp32_figures(task: str, model: Any, candidate: Any, ds: Any, source: str) -> tuple[Any, tuple[float, str]]:
    """model.onnx's figures against the torch model, and its gate: (points, in words)."""
    if task == "segment":
        from imgrec.export.segment_export import MAX_MIOU_DROP, segmentation_parity

        figures = segmentation_parity(model, candidate, ds, source)
        return figures, (MAX_MIOU_DROP, f"mIoU within {MAX_MIOU_DROP:g} points")
    from imgrec.export.detect_export import MAX_MAP_DROP, detection_parity

    words = "mask and box mAP" if task == "instance" else "mAP"
    return detection_parity(model, candidate, ds, source), (MAX_MAP_DROP, f"{words} within {MAX_MAP_DROP:g} points")


def _int8_failure(figures: Any, max_drop: float) -> str:
    return (f"mAP {figures.candidate_map:.4f} against model.onnx's {figures.reference_map:.4f} on {figures.images} "
            f"images ({figures.map_drop:+.2f} points; the gate is {max_drop:g})")  # fmt: skip


def _fail_if(failure: str | None, path: Path, run: Path) -> None:
    if failure is not None:
        raise ModelFileError(f"{path} fails its check: it scores {failure}. {STALE.format(run=run)}")

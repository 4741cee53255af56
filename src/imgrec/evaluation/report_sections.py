"""The sections of report.html, one function each; every one returns escaped HTML."""

from __future__ import annotations

import os
import platform
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from imgrec.config import TrainConfig
from imgrec.evaluation.classify import EvalResult
from imgrec.evaluation.diagnosis import Finding
from imgrec.evaluation.html_page import bar, cards, esc, fmt, kv_table, pct, png_img, table

WORST_CLASSES = 3
OVERFIT_GAP = 0.10


def summary_section(
    meta: Mapping[str, Any],
    results: Mapping[str, EvalResult],
    primary: str | None,
    findings: Sequence[Finding] = (),
) -> str:
    """Warnings about degenerate outcomes, headline numbers of the main split, one row per split."""
    items = [("model", str(meta.get("model", "?"))), ("family", str(meta.get("family", "?")))]
    if primary is not None:
        m = results[primary].metrics
        items += [
            (f"{primary} accuracy", pct(m["accuracy"])),
            (f"{primary} macro F1", f"{m['macro_f1']:.4f}"),
            (f"{primary} balanced acc.", pct(m["balanced_accuracy"])),
            (f"{primary} images", str(m["num_samples"])),
        ]
    items.append(("classes", str(len(meta.get("classes", [])) or "?")))
    if meta.get("num_params") is not None:
        items.append(("parameters", f"{int(meta['num_params']):,}"))
    warnings = "".join(f'<p class="warn"><b>{esc(f.code)}</b>: {esc(f.message)}</p>' for f in findings)
    return warnings + cards(items) + _splits_table(results)


def _splits_table(results: Mapping[str, EvalResult]) -> str:
    if not results:
        return '<p class="note">No evaluation was run.</p>'
    ks = sorted({k for r in results.values() for k in r.metrics["top_k_accuracy"]} - {"1"}, key=int)
    headers = ["split", "images", "accuracy", "balanced acc.", "macro F1", "weighted F1",
               "log loss", *[f"top-{k}" for k in ks], "ms / image", "unreadable"]
    rows = []
    for name, r in results.items():
        m = r.metrics
        rows.append([esc(name), esc(m["num_samples"]), pct(m["accuracy"]),
                     pct(m["balanced_accuracy"]), fmt(m["macro_f1"]),
                     fmt(m["weighted"]["f1"]), fmt(m["log_loss"]),
                     *[pct(m["top_k_accuracy"].get(k)) for k in ks], fmt(r.ms_per_image, 3),
                     esc(len(r.bad))])
    return table(headers, rows, numeric=range(1, len(headers)))


def training_section(meta: Mapping[str, Any]) -> str:
    """The weights kept and the training options that applied to this model's family."""
    training = dict(meta.get("training") or {})
    kept, cycles = training.pop("kept_weights", None), training.pop("cycles", None)
    family = meta.get("family")
    body = f'<p class="note">{esc(kept_weights_text(kept, family))}</p>' if training else ""
    if cycles:
        body += (f'<p class="note">Extended with --resume: the learning rate restarted (warm-up, then '
                 f"cosine) after epoch{'s' if len(cycles) > 2 else ''} "
                 f"{esc(', '.join(map(str, cycles[:-1])))}.</p>")
    body += kv_table(_applied(training, family))
    if family == "classical":
        body += ('<p class="note">A classical model is fitted in one pass: the options of the torch '
                 "training loop (epochs, optimizer, learning rate, warm-up, mixed precision, "
                 "augmentation...) had no effect on it and are not listed.</p>")
    if meta.get("model_args"):
        body += "<h3>model arguments</h3>" + kv_table(meta["model_args"])
    if meta.get("preprocessing"):
        body += "<h3>preprocessing</h3>" + kv_table(meta["preprocessing"])
    return body


def kept_weights_text(kept: Mapping[str, Any] | None, family: str | None = None) -> str:
    """One sentence: which epoch's weights the run keeps (``training.kept_weights``)."""
    if family == "classical":
        return "Weights kept: the single fit of the classical model (no epochs)."
    if not kept or not kept.get("epoch"):
        return "Weights kept: not recorded (a run from an older imgrec, or not trained here)."
    where = f"Weights kept: epoch {kept['epoch']} of {kept.get('of', '?')}"
    if kept.get("which") == "best":
        return f"{where}, the best by {kept['monitor']} ({fmt(kept['value'])})."
    return f"{where}, the last (no validation data to pick the best)."


def _applied(training: Mapping[str, Any], family: str | None) -> dict[str, Any]:
    """The recorded options that had an effect on this family (unknown keys are kept)."""
    known = set(TrainConfig.describe())
    applied = set(TrainConfig.fields_for(family))
    return {k: v for k, v in training.items() if k in applied or k not in known}


def data_section(
    meta: Mapping[str, Any],
    dataset: Any,
    results: Mapping[str, EvalResult],
    bad_files: Sequence[tuple[str, str]],
) -> str:
    """Dataset identity, split sizes (and why val or test is not the size asked), class counts and
    every unreadable file."""
    data = dict(meta.get("data") or {})
    if dataset is not None:
        data.setdefault("name", dataset.name)
        data.setdefault("root", dataset.root)
        data.setdefault("fingerprint", dataset.fingerprint())
        data.setdefault("class_counts", dataset.class_counts())
    counts = data.pop("class_counts", None)
    recorded_bad = data.pop("bad_files", None)
    notes = data.pop("split_notes", None) or []
    body = kv_table(data)
    if notes:
        body += "<h3>split notes</h3><ul>" + "".join(f"<li>{esc(n)}</li>" for n in notes) + "</ul>"
    if counts:
        body += "<h3>images per class</h3>" + _counts_table(counts)
    bad = _bad_rows(recorded_bad, bad_files, results)
    body += f"<h3>unreadable or skipped files ({len(bad)})</h3>"
    body += table(["split", "file", "error"], bad) if bad else '<p class="note">None.</p>'
    return body


def _counts_table(counts: Mapping[str, Any]) -> str:
    """Class counts, either ``{class: n}`` or ``{split: {class: n}}``."""
    if all(isinstance(v, Mapping) for v in counts.values()):
        splits = list(counts)
        names = list(dict.fromkeys(c for s in splits for c in counts[s]))
        rows = [[esc(c), *[esc(counts[s].get(c, 0)) for s in splits]] for c in names]
        return table(["class", *splits], rows, numeric=range(1, len(splits) + 1))
    top = max([int(v) for v in counts.values()] or [1]) or 1
    rows = [[esc(c), f"{bar(int(n) / top)}{esc(n)}"] for c, n in counts.items()]
    return table(["class", "images"], rows)


def _bad_rows(
    recorded: Any, given: Sequence[tuple[str, str]], results: Mapping[str, EvalResult]
) -> list[list[str]]:
    rows = [[esc("data"), f"<code>{esc(s)}</code>", esc(m)] for s, m in _as_pairs(recorded)]
    rows += [[esc("data"), f"<code>{esc(s)}</code>", esc(m)] for s, m in given]
    for name, r in results.items():
        rows += [[esc(name), f"<code>{esc(s)}</code>", esc(m)] for s, m in r.bad]
    return rows


def _as_pairs(recorded: Any) -> list[tuple[str, str]]:
    """Normalize a recorded bad-file list: pairs, or dicts with source/path and error/message."""
    if not isinstance(recorded, list):
        return []
    out = []
    for item in recorded:
        if isinstance(item, Mapping):
            out.append((str(item.get("source", item.get("path", "?"))),
                        str(item.get("error", item.get("message", "")))))
        elif isinstance(item, (list, tuple)) and item:
            out.append((str(item[0]), str(item[1]) if len(item) > 1 else ""))
    return out


def curves_section(history: Sequence[Mapping[str, Any]], png: bytes | None, degenerate: bool = False) -> str:
    """The learning curves figure and an overfitting note (not when the outcome is degenerate)."""
    if png is None:
        return '<p class="note">No per-epoch history (a classical model fits in one pass).</p>'
    last = history[-1]
    note = ""
    train, val = last.get("train_accuracy"), last.get("val_accuracy")
    if degenerate:
        note = '<p class="warn">The outcome is degenerate (see the summary): the curves show no usable model.</p>'
    elif train is not None and val is not None and float(train) - float(val) > OVERFIT_GAP:
        note = (f'<p class="warn">In the last epoch, training accuracy ({pct(float(train))}) is '
                f"{100 * (float(train) - float(val)):.1f} points above validation "
                f"({pct(float(val))}): the model is probably overfitting. Try stronger "
                "augmentation, more weight decay or early stopping.</p>")
    return note + png_img(png, "learning curves")


def per_class_section(result: EvalResult, split: str) -> str:
    """Precision/recall/F1/support per class, the worst classes highlighted."""
    m = result.metrics
    names = list(m["per_class"])
    cm = np.asarray(m["confusion_matrix"])
    worst = _worst_classes(m["per_class"])
    rows, marks = [], []
    for i, name in enumerate(names):
        pc = m["per_class"][name]
        rows.append([esc(name), fmt(pc["precision"]), fmt(pc["recall"]),
                     f"{bar(pc['f1'])}{fmt(pc['f1'])}", esc(pc["support"]),
                     _confused_with(cm, i, names)])
        marks.append("worst" if name in worst else "")
    intro = (f'<p class="note">Split: {esc(split)}. Highlighted: the {len(worst)} classes with the '
             "lowest F1, where more data or class weights help most. Macro F1 "
             f"{fmt(m['macro']['f1'])}, weighted F1 {fmt(m['weighted']['f1'])}.</p>")
    headers = ["class", "precision", "recall", "F1", "support", "most often mistaken for"]
    return intro + table(headers, rows, numeric=(1, 2, 4), row_classes=marks)


def _worst_classes(per_class: Mapping[str, Mapping[str, float]]) -> set[str]:
    scored = sorted((float(v["f1"]), c) for c, v in per_class.items() if v["support"] > 0)
    if len(scored) < 2:
        return set()
    return {c for f1, c in scored[: min(WORST_CLASSES, len(scored) - 1)] if f1 < 1.0}


def _confused_with(cm: np.ndarray, i: int, names: list[str]) -> str:
    row = cm[i].copy()
    row[i] = 0
    if row.sum() == 0:
        return "—"
    j = int(row.argmax())
    return f"{esc(names[j])} ({int(row[j])})"


def confusion_section(raw: bytes | None, normalized: bytes | None, split: str) -> str:
    """The raw and the row-normalized confusion matrices side by side."""
    if raw is None or normalized is None:
        return '<p class="note">No evaluation was run.</p>'
    return (f'<p class="note">Split: {esc(split)}. Rows are true classes; the normalized matrix '
            "shows each class's recall on the diagonal.</p>"
            f'<div class="figs">{png_img(raw, "confusion matrix")}'
            f'{png_img(normalized, "normalized confusion matrix")}</div>')


def errors_section(
    png: bytes | None, rows: Sequence[tuple[str, str, str, float]], split: str
) -> str:
    """The gallery of the most confidently wrong images and their files."""
    if not rows:
        return f'<p class="note">No misclassified image in {esc(split)}.</p>'
    body = f'<p class="note">Split: {esc(split)}. Most confident mistakes first.</p>'
    if png is not None:
        body += png_img(png, "most confidently wrong images")
    listing = [[esc(i + 1), f"<code>{esc(src)}</code>", esc(t), esc(p), f"{score:.3f}"]
               for i, (src, t, p, score) in enumerate(rows)]
    return body + "<details><summary>files</summary>" + table(
        ["#", "file", "true", "predicted", "confidence"], listing, numeric=(0, 4)) + "</details>"


def environment_section(meta: Mapping[str, Any]) -> str:
    """Library versions from model.json and the machine the report was written on."""
    machine = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }
    if meta.get("device"):
        machine["training device"] = meta["device"]
    return ("<h3>versions (training)</h3>" + kv_table(meta.get("versions") or {})
            + "<h3>machine (report)</h3>" + kv_table(machine))


def timing_section(meta: Mapping[str, Any], results: Mapping[str, EvalResult]) -> str:
    """Training timing from model.json and evaluation timing per split."""
    body = kv_table(meta.get("timing") or {})
    if results:
        rows = [[esc(n), fmt(r.seconds, 3), fmt(r.ms_per_image, 3), esc(r.metrics["num_samples"])]
                for n, r in results.items()]
        body += "<h3>evaluation</h3>" + table(
            ["split", "seconds (decode + predict)", "ms / image (predict)", "images"],
            rows, numeric=(1, 2, 3))
    return body


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux), or the platform's guess."""
    info = Path("/proc/cpuinfo")
    try:
        for line in info.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.lower().startswith(("model name", "hardware")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"

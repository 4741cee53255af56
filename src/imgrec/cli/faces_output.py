"""What the face-collection commands print (tables or JSON) and write (annotated photos, groups)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from imgrec.cli.output import console, shorten_path, table, to_json
from imgrec.errors import OutputError


def collection_dict(info: Any) -> dict[str, Any]:
    """A collection's record as JSON: name, embedder and where it loads from, dim, threshold, faces."""
    return {"name": info.name, "embedder": info.embedder, "embedder_source": info.source, "dim": info.dim,
            "threshold": info.threshold, "faces": info.size, "fingerprint": info.fingerprint,
            "created": info.created.isoformat()}  # fmt: skip


def emit_collection(info: Any, fmt: str, where: str) -> None:
    if fmt == "json":
        console.out(to_json(collection_dict(info)))
        return
    console.print(f"created collection {info.name!r} in {where}: {info.embedder} ({info.dim}-d, from "
                  f"{info.source or '?'}), threshold {info.threshold:g}", highlight=False)  # fmt: skip


def emit_collections(infos: list[Any], fmt: str, where: str) -> None:
    if fmt == "json":
        console.out(to_json([collection_dict(i) for i in infos]))
        return
    if not infos:
        console.print(f"no face collection in {where} (imgrec faces collections create NAME)", highlight=False)
        return
    rows = [[i.name, i.embedder, i.dim, i.threshold, i.size, i.created.strftime("%Y-%m-%d %H:%M")] for i in infos]
    console.print(table(f"face collections in {where}", ["name", "embedder", "dim", "threshold", "faces", "created"],
                        rows))  # fmt: skip


def emit_enrolled(report: Any, fmt: str, all_faces: bool) -> None:
    if fmt == "json":
        console.out(to_json(report.to_dict()))
        return
    rows = []
    for r in report.images:
        boxes = "; ".join(" ".join(f"{v:.0f}" for v in b) for b in r.boxes) if all_faces or len(r.boxes) > 1 else None
        said = r.message if r.message and r.message != "already enrolled" else None
        rows.append([shorten_path(str(r.source), 40), r.status, len(r.face_ids), boxes, said])
    cols = ["image", "status", "faces", "boxes (x1 y1 x2 y2)", "message"]
    keep = [i for i, c in enumerate(cols) if i < 3 or any(row[i] is not None for row in rows)]
    console.print(table(f"{report.person!r} in {report.collection!r}", [cols[i] for i in keep],
                        [[row[i] for i in keep] for row in rows], wrap=("message",)))  # fmt: skip
    console.print(f"added {len(report.added)} face(s); {len(report.skipped)} image(s) added nothing", highlight=False)
    if all_faces and report.added:
        console.print("--all-faces: check the boxes above; remove the person and enroll again if a stranger "
                      "was taken.", highlight=False)  # fmt: skip


def emit_identified(results: list[dict[str, Any]], fmt: str, threshold: float) -> None:
    if fmt == "json":
        console.out(to_json(results))
        return
    rows: list[list[Any]] = []
    for r in results:
        path = shorten_path(r["path"], 28)
        if "error" in r:
            rows.append([path, None, None, None, None, f"{r['error']['code']}: {r['error']['message']}"])
            continue
        if not r["faces"]:
            rows.append([path, None, "(no face)", None, None, None])
        for k, f in enumerate(r["faces"], 1):
            box = ",".join(f"{v:.0f}" for v in f["box"])
            others = ", ".join(f"{m['person']} {m['similarity']:.3f}" for m in f["matches"][1:]) or None
            rows.append([path, k, f["label"], f["similarity"], box, others])
    cols = ["image", "face", "who", "similarity", "box", "also"]
    console.print(table(f"threshold {threshold:g} (cosine)", cols, rows, key=2, wrap=("also",)))


def save_identified(image: Any, faces: list[Any], path: str, folder: str) -> Path:
    """Write ``image`` with each face's box, landmarks and "name similarity" into ``folder``."""
    import io

    from PIL import Image

    from imgrec.tasks.detect import Detection, Detections
    from imgrec.tasks.detect_draw import draw_detections

    named = tuple(Detection(f.detection.box, f.label, f.similarity if f.similarity is not None else 0.0, -1,
                            f.detection.landmarks) for f in faces)  # fmt: skip
    h, w = image.shape[:2]
    drawn = draw_detections(image, Detections(named, (w, h)))
    target = Path(folder) / f"{Path(path).stem}.jpg"
    buf = io.BytesIO()
    Image.fromarray(drawn).save(buf, "JPEG", quality=90)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(buf.getvalue())
    except OSError as exc:
        raise OutputError(f"Cannot write {target}: {exc.strerror or exc}") from None
    return target


def emit_verification(v: Any, fmt: str, embedder: str) -> None:
    if fmt == "json":
        console.out(to_json({**v.to_dict(), "embedder": embedder}))
        return
    verdict = "same person" if v.same else "different persons"
    console.print(f"{verdict}: similarity {v.similarity:.4f} {'>=' if v.same else '<'} threshold {v.threshold:g} "
                  f"({embedder}, cosine)", highlight=False)  # fmt: skip


def emit_persons(collection: Any, persons: list[Any], fmt: str) -> None:
    info = collection.info
    if fmt == "json":
        console.out(to_json({**collection_dict(info), "persons": [
            {"name": p.name, "faces": p.faces, "created": p.created.isoformat()} for p in persons]}))  # fmt: skip
        return
    rows = [[p.name, p.faces, p.created.strftime("%Y-%m-%d %H:%M")] for p in persons]
    title = f"{info.name!r}: {len(persons)} person(s), {info.size} face(s), {info.embedder}, "
    title += f"threshold {info.threshold:g}"
    console.print(table(title, ["person", "faces", "enrolled"], rows))


def write_groups(clusters: Any, out: Path, *, copy: bool) -> list[list[str]]:
    """``out/person-N/`` per group (largest first) holding its photos (hard links, or copies);
    returns the files written per group. A photo with faces in several groups goes into each."""
    written: list[list[str]] = []
    for n, group in enumerate(clusters.groups, 1):
        folder = out / f"person-{n}"
        names: list[str] = []
        for source in dict.fromkeys(f.source for f in group):
            target = folder / _unique(Path(source).name, names)
            _place(Path(source), target, copy)
            names.append(target.name)
        written.append([str(folder / name) for name in names])
    return written


def _unique(name: str, taken: list[str]) -> str:
    stem, suffix, k = Path(name).stem, Path(name).suffix, 1
    while name in taken:
        k += 1
        name = f"{stem}-{k}{suffix}"
    return name


def _place(source: Path, target: Path, copy: bool) -> None:
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            target.unlink()
        if not copy:
            try:
                os.link(source, target)
                return
            except OSError:
                pass  # another device, or links not allowed: copy
        shutil.copyfile(source, target)
    except OSError as exc:
        raise OutputError(f"Cannot write {target}: {exc.strerror or exc}") from None


def emit_clusters(clusters: Any, written: list[list[str]], fmt: str, out: str) -> None:
    if fmt == "json":
        data = clusters.to_dict()
        data["folders"] = [{"folder": str(Path(files[0]).parent) if files else None, "files": files}
                           for files in written]  # fmt: skip
        console.out(to_json(data))
        return
    rows = [[f"person-{n}", len(g), len(files), ", ".join(Path(f).name for f in files[:4]) + (" ..." if len(files) > 4
             else "")] for n, (g, files) in enumerate(zip(clusters.groups, written, strict=True), 1)]  # fmt: skip
    rows += [[None, None, None, f"{e.path}: {e.code}: {e.message}"] for e in clusters.errors]
    console.print(table(f"{len(clusters.groups)} person(s) in {out} (threshold {clusters.threshold:g})",
                        ["group", "faces", "photos", "files"], rows, wrap=("files",)))  # fmt: skip

"""Promptable segmentation with Segment Anything: one image embedding, many prompts.

:class:`SamSegmenter` wraps the ``segment-anything`` package's ``SamPredictor``. ``set_image``
decodes through imgrec's one safe path (a large JPEG at the reduced DCT scale that still gives
SAM its 1024-pixel long side) and computes the image embedding once; it is cached by the
decoded pixels, so prompting the same image again, or "segment everything" after prompts,
reuses it. Prompts are in the original image's pixels; each gives one mask (or SAM's three
candidates with ``multimask``), returned as the ``instance`` task's :class:`Instances` (box from
the mask, ``score`` = SAM's predicted IoU), so JSON with COCO RLE, drawing and cut-outs are shared.

Masks: SAM predicts low-resolution logits over its square input (256 x 256 for 1024). Each is
upsampled bilinearly straight to the original image's pixels through the image's
:class:`~imgrec.transforms.frame.Geometry` and thresholded at 0 (SAM's own threshold), one at
a time into an RLE. ``SamPredictor.predict_torch`` would also upsample every candidate to the
decoded image (B x 3 x H x W floats) before that, so the prompt and mask encoders and the mask
decoder are called here directly, with SAM's own modules.

Example:
    >>> # sam = load_sam("sam_vit_b_01ec64.pth")
    >>> # sam.set_image("dog.jpg")
    >>> # found = sam.predict(points=[(320, 240)])               # Instances, one mask
    >>> # found = sam.predict(points=[(320, 240), (40, 40)], labels=[1, 0], multimask=True)
    >>> # better = sam.predict(points=[(320, 240)], mask_input=sam.logits[0])   # refine
    >>> # rough = load_mask("rough.png").values != 0                         # (H, W), the image's pixels
    >>> # found = sam.predict(points=[(320, 240)], mask=rough)                 # a rough mask as prompt
    >>> # found.instances[0].mask().shape == image height, width
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from imgrec.analyzers.segment.prompts import Prompt, as_region, make_prompts, mask_logits
from imgrec.errors import InvalidImageError, UsageError
from imgrec.imaging import DEFAULT_LIMITS, DecodeLimits
from imgrec.tasks.instance import Instance, Instances
from imgrec.transforms.frame import Geometry, compose

CACHE_SIZE = 4  # image embeddings kept (vit_b: 4 MB each)
BATCH = 32  # prompts decoded per call


@dataclass(frozen=True)
class SamImage:
    """An image as SAM sees it: the decoded pixels and where they lie in the original.

    Attributes:
        array: RGB uint8 ``(h, w, 3)``, possibly a reduced-scale decode of a large JPEG.
        original: ``(width, height)`` of the full-resolution image (EXIF orientation applied).
        geometry: the model input's placement of the original (long side resized to the input side).
        path: the name of the input.
        key: a digest of the decoded pixels (the embedding cache key).
    """

    array: np.ndarray = field(repr=False)
    original: tuple[int, int]
    geometry: Geometry
    path: str | None
    key: str


def read_image(item: Any, side: int, limits: DecodeLimits = DEFAULT_LIMITS) -> SamImage:
    """Decode a path, bytes or RGB array for a SAM of input ``side``."""
    from imgrec.imaging.decode import decode_sized, open_image, read_bytes

    name = None
    if isinstance(item, np.ndarray):
        arr = _check_array(item)
        full = (arr.shape[1], arr.shape[0])
    else:
        if isinstance(item, (str, Path)):
            name, item = str(item), read_bytes(item, limits)
        if not isinstance(item, bytes):
            raise UsageError("SAM takes a file path, encoded bytes or an RGB uint8 array; "
                             f"received {type(item).__name__}.")
        w, h = open_image(item, limits, name or "image").size
        min_side = -(-side * min(w, h) // max(w, h))  # the long side stays >= side
        arr, full = decode_sized(item, limits=limits, min_side=min_side, name=name or "image")
    _check_aspect(arr.shape[:2], side, name or "the image")
    return SamImage(arr, full, sam_geometry(arr.shape[:2], full, side), name, _digest(arr))


def _check_aspect(hw: tuple[int, ...], side: int, name: str) -> None:
    """Refuse an image so thin that SAM's resize (long side to ``side``) leaves its short side 0 pixels."""
    h, w = int(hw[0]), int(hw[1])
    if int(min(h, w) * side / max(h, w) + 0.5) < 1:
        raise InvalidImageError(f"{name} is {w}x{h}: too thin for SAM, whose {side}-pixel input would leave its "
                                f"short side 0 pixels; expected an aspect ratio up to {2 * side - 1}:1 (crop or pad "
                                "the image).")  # fmt: skip


def sam_geometry(decoded_hw: tuple[int, ...], original: tuple[int, int], side: int) -> Geometry:
    """SAM's placement (``ResizeLongestSide``: long side to ``side``, rounded; padded bottom-right).

    Example:
        >>> sam_geometry((300, 400), (800, 600), 1024).scale
        (1.28, 1.28)
    """
    h, w = int(decoded_hw[0]), int(decoded_hw[1])
    s = side / max(h, w)
    nh, nw = int(h * s + 0.5), int(w * s + 0.5)
    return compose((w, h), original, (nw / w, nh / h), (0.0, 0.0), side)


def _check_array(arr: np.ndarray) -> np.ndarray:
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
        raise UsageError(f"SAM takes an RGB uint8 (H, W, 3) array; received {arr.dtype} {arr.shape}.")
    return np.ascontiguousarray(arr)


def _digest(arr: np.ndarray) -> str:
    h = hashlib.blake2b(repr(arr.shape).encode(), digest_size=16)
    h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()


def _caching_predictor(model: Any, size: int) -> Any:
    """A ``SamPredictor`` whose ``set_image`` reuses the embedding of pixels it has seen."""
    from segment_anything import SamPredictor

    class CachingPredictor(SamPredictor):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__(model)
            self.cache: OrderedDict[str, tuple[Any, Any, Any]] = OrderedDict()

        def set_image(self, image: np.ndarray, image_format: str = "RGB") -> None:
            key = _digest(image)
            if key in self.cache:
                self.cache.move_to_end(key)
                self.features, self.original_size, self.input_size = self.cache[key]
                self.is_image_set = True
                return
            super().set_image(image, image_format)
            self.cache[key] = (self.features, self.original_size, self.input_size)
            while len(self.cache) > size:
                self.cache.popitem(last=False)

    return CachingPredictor()


class SamSegmenter:
    """Segment Anything on one image at a time: ``set_image``, then any number of prompts.

    Attributes:
        model: the ``segment_anything`` ``Sam`` module.
        config: its sizes (:class:`~imgrec.models.sam.SamConfig`).
        image: the current :class:`SamImage` (None before ``set_image``).
        logits: the low-resolution logits of the last prediction's masks, ``(K, h, w)``, in the
            order of its instances: pass one back as ``mask_input`` to refine that mask.
    """

    def __init__(self, model: Any, config: Any, *, threads: int | None = None, cache_size: int = CACHE_SIZE) -> None:
        self.model, self.config = model, config
        self.image: SamImage | None = None
        self.logits = np.zeros((0, 0, 0), np.float32)
        self.set_threads(threads)
        self._predictor = _caching_predictor(model, cache_size)

    @property
    def side(self) -> int:
        """The model's square input side (1024 for every published SAM and MobileSAM)."""
        return int(self.model.image_encoder.img_size)

    @property
    def name(self) -> str:
        """``sam-vit-b`` / ``-vit-l`` / ``-vit-h``, ``sam-mobilesam``, ``sam-tinyvit``, else ``sam-custom``."""
        return f"sam-{(self.config.variant or 'custom').replace('_', '-')}"

    def set_threads(self, threads: int | None) -> None:
        """Torch's CPU threads (one pool per process)."""
        if threads is not None:
            import torch

            torch.set_num_threads(max(1, int(threads)))

    def set_image(self, image: Any, limits: DecodeLimits = DEFAULT_LIMITS) -> SamImage:
        """Decode ``image`` (path, bytes, RGB array) and compute its embedding (or reuse it)."""
        import torch

        self.image = image if isinstance(image, SamImage) else read_image(image, self.side, limits)
        with torch.inference_mode():
            self._predictor.set_image(self.image.array)
        return self.image

    def predict(
        self, points: Any = None, labels: Any = None, *, box: Any = None, boxes: Any = None,
        mask: Any = None, mask_input: Any = None, multimask: bool = False,
    ) -> Instances:  # fmt: skip
        """Masks for prompts on the current image (see :meth:`segment`).

        Args:
            points: ``(x, y)`` pairs in the original image's pixels, one prompt together.
            labels: per point, 1 = on the object (default), 0 = background.
            box: ``(x1, y1, x2, y2)`` around the object (with the points: the same prompt).
            boxes: several boxes, one prompt (and one mask) each.
            mask: a rough mask of the object, ``(H, W)`` in the original image's pixels (nonzero =
                the object), alone or with the points and box; SAM gets :meth:`mask_input` of it.
            mask_input: a previous mask's low-resolution logits (``self.logits[k]``) to refine.
            multimask: SAM's three candidates per prompt (an ambiguous point) instead of one.
        """
        prompts = make_prompts(points, labels, box, boxes, mask_input, mask)
        return self.segment(prompts, multimask=multimask)

    def mask_input(self, mask: Any) -> np.ndarray:
        """A rough mask of the object on the current image, ``(H, W)`` in its pixels (nonzero = the
        object), as SAM's mask prompt: ``(1, s, s)`` float32 logits over the padded input (256 x 256
        for SAM's 1024), the form ``SamPredictor.predict(mask_input=...)`` takes (see
        :func:`~imgrec.analyzers.segment.prompts.mask_logits`).

        Raises:
            UsageError: no image is set, or the mask's size is not the image's.
        """
        if self.image is None:
            raise UsageError("No image set: call set_image(image) before building a mask prompt for it.")
        prompt = Prompt(region=as_region(mask))
        prompt.check(self.image.original)
        return self._region_prompt(prompt.region)  # type: ignore[arg-type]

    def segment(self, prompts: Sequence[Prompt], *, multimask: bool = False, image: Any = None) -> Instances:
        """One mask per prompt (three with ``multimask``, best IoU first), in prompt order.

        Each :class:`Instance` has the prompt's label and class, ``score`` = SAM's predicted IoU,
        its box from the mask, and ``extra["prompt"]`` = the prompt's index.
        """
        if image is not None:
            self.set_image(image)
        if self.image is None:
            raise UsageError("No image set: call set_image(image) before predicting, or pass image=.")
        for p in prompts:
            p.check(self.image.original)
        found: list[Instance] = []
        logits: list[np.ndarray] = []
        for idx in _groups(prompts):
            for start in range(0, len(idx), BATCH):
                chunk = idx[start : start + BATCH]
                lows, ious = self._decode([prompts[i] for i in chunk], multimask)
                for i, low, iou in zip(chunk, lows, ious, strict=True):
                    for j in np.argsort(-iou, kind="stable").tolist():
                        found.append(_instance(low[j], float(iou[j]), self.image.geometry, prompts[i], i))
                        logits.append(low[j])
        order = sorted(range(len(found)), key=lambda k: found[k].extra["prompt"])
        self.logits = np.stack([logits[k] for k in order]) if order else np.zeros((0, 0, 0), np.float32)
        return Instances(tuple(found[k] for k in order), self.image.original, self.image.path)

    def _decode(self, prompts: Sequence[Prompt], multimask: bool) -> tuple[np.ndarray, np.ndarray]:
        """Low-resolution logits ``(B, M, h, w)`` and predicted IoUs ``(B, M)`` of same-signature prompts."""
        import torch

        g, m = self.image.geometry, self.model  # type: ignore[union-attr]
        if not self._predictor.is_image_set:  # "everything" resets SAM's predictor; the cache still holds it
            self.set_image(self.image)
        points = boxes = masks = None
        if prompts[0].points:
            xy = np.array([[(x, y) for x, y, _ in p.points] for p in prompts], np.float64)
            xy = xy * np.array(g.scale) + np.array(g.offset)
            lab = np.array([[v for _, _, v in p.points] for p in prompts], np.int64)
            points = (torch.as_tensor(xy, dtype=torch.float32), torch.as_tensor(lab, dtype=torch.int64))
        if prompts[0].box is not None:
            boxes = torch.as_tensor(g.to_input(np.array([p.box for p in prompts])), dtype=torch.float32)
        if prompts[0].signature[2]:  # a mask: a previous prediction's logits, or a rough mask's
            masks = torch.as_tensor(np.stack([self._mask_of(p) for p in prompts]))
        with torch.inference_mode():
            sparse, dense = m.prompt_encoder(points=points, boxes=boxes, masks=masks)
            low, iou = m.mask_decoder(image_embeddings=self._predictor.features,
                                      image_pe=m.prompt_encoder.get_dense_pe(), sparse_prompt_embeddings=sparse,
                                      dense_prompt_embeddings=dense, multimask_output=multimask)  # fmt: skip
        return low.float().numpy(), iou.float().numpy()

    def _mask_prompt(self, mask: Any) -> np.ndarray:
        side = 4 * int(self.model.prompt_encoder.image_embedding_size[0])
        arr = np.asarray(mask, np.float32)
        arr = arr.reshape(arr.shape[-2:]) if arr.ndim == 3 and arr.shape[0] == 1 else arr
        if arr.shape != (side, side):
            raise UsageError(f"mask_input is a previous prediction's low-resolution logits, ({side}, {side}) for this "
                             f"model (SamSegmenter.logits[k]); received shape {np.shape(mask)}.")  # fmt: skip
        return arr[None]

    def _mask_of(self, prompt: Prompt) -> np.ndarray:
        return self._mask_prompt(prompt.mask) if prompt.mask is not None else self._region_prompt(prompt.region)

    def _region_prompt(self, region: Any) -> np.ndarray:
        side = 4 * int(self.model.prompt_encoder.image_embedding_size[0])
        return mask_logits(region, self.image.geometry, side)[None]  # type: ignore[union-attr]

    def everything(self, image: Any = None, **options: Any) -> Instances:
        """Every object: SAM's automatic mask generator on a grid of points (see
        :func:`imgrec.analyzers.segment.everything.segment_everything` for the options)."""
        from imgrec.analyzers.segment.everything import segment_everything

        if image is not None:
            self.set_image(image)
        if self.image is None:
            raise UsageError("No image set: call everything(image) or set_image(image) first.")
        return segment_everything(self.model, self._predictor, self.image, **options)


def _groups(prompts: Sequence[Prompt]) -> list[list[int]]:
    groups: dict[tuple[int, bool, bool], list[int]] = {}
    for i, p in enumerate(prompts):
        groups.setdefault(p.signature, []).append(i)
    return list(groups.values())


def _instance(low: np.ndarray, iou: float, geometry: Geometry, prompt: Prompt, index: int) -> Instance:
    from imgrec.tasks.upsample import upsample

    binary = upsample(low, geometry) > 0.0  # SAM's mask_threshold, on logits
    return mask_instance(binary, iou, prompt.label, prompt.class_id, {"prompt": index, **prompt.extra})


def mask_instance(binary: np.ndarray, score: float, label: str, class_id: int, extra: dict[str, Any]) -> Instance:
    """An :class:`Instance` of a full-resolution bool mask, its box the mask's extent
    (``(0, 0, 0, 0)`` for an empty mask).

    Example:
        >>> m = np.zeros((4, 6), bool); m[1:3, 2:5] = True
        >>> inst = mask_instance(m, 0.9, "object", 0, {})
        >>> inst.box, inst.area
        ((2.0, 1.0, 5.0, 3.0), 6)
    """
    from imgrec.data.rle import encode_rle

    rows, cols = np.flatnonzero(binary.any(axis=1)), np.flatnonzero(binary.any(axis=0))
    box = (0.0, 0.0, 0.0, 0.0)
    if len(rows):
        box = (float(cols[0]), float(rows[0]), float(cols[-1] + 1), float(rows[-1] + 1))
    return Instance(box, label, score, class_id, encode_rle(binary), int(binary.sum()), extra)


def load_sam(
    weights: str | Path | None = None, *, sam_type: str | None = None, download: bool = False,
    threads: int | None = None,
) -> SamSegmenter:  # fmt: skip
    """A :class:`SamSegmenter` from a SAM checkpoint (``.pth`` read with ``weights_only=True``, or
    ``.safetensors``); vit_b / vit_l / vit_h are told from the shapes, ``sam_type`` insists on one.
    ``download=True`` without ``weights`` fetches the official file of ``sam_type`` (vit_b) once,
    checked by sha256."""
    from imgrec.models.sam import load_sam_model, sam_weights

    path = sam_weights(weights, sam_type, download=download)
    model, config = load_sam_model(path, sam_type)
    return SamSegmenter(model, config, threads=threads)

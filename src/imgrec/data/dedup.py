"""Duplicate search: exact (content digests) and near (perceptual hashes, then a check).

Every image is reduced to a 16x16 gray thumbnail (area average). From it come two 64-bit
difference hashes (dHash: signs of horizontal and of vertical gradients on an 8x9 / 9x8
grid). Near duplicates are pairs whose horizontal dHashes differ in at most ``d`` bits,
found without comparing all pairs: two such hashes agree exactly on at least one of
``d + 1`` disjoint bit sets (pigeonhole), so only items sharing a bit-set value are
compared. Candidates must also be within ``d`` bits on the vertical dHash and within a
small mean difference on the thumbnails, which keeps merely similar-looking images (two
plain T-shirts at 28x28) out while a re-encoded or resized copy stays in.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from PIL import Image

THUMB = 16
# mean absolute difference of two 16x16 thumbnails (0..255) up to which images are near
# duplicates: JPEG re-encodes and resized copies stay well under it
MAX_THUMB_DIFF = 3.0
# dHashes with fewer set (or unset) bits than this describe featureless images (flat
# colour, blank scans); they would all match each other, so they take no part in the
# near-duplicate search (identical ones are still exact duplicates)
MIN_HASH_BITS = 4
_GRADIENT_EPS = 0.5  # gray levels; flat areas give 0 bits, not float noise
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def thumbnail(img: np.ndarray) -> np.ndarray:
    """16x16 uint8 gray thumbnail (area average) of an RGB or gray uint8 image."""
    pil = Image.fromarray(np.ascontiguousarray(img))
    if pil.mode != "L":
        pil = pil.convert("L")
    return np.asarray(pil.resize((THUMB, THUMB), Image.Resampling.BOX), dtype=np.uint8)


def thumbnails(images: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """Thumbnails of a batch ``(N, H, W)`` or ``(N, H, W, 3)`` of uint8 images, vectorized."""
    n, h, w = images.shape[:3]
    rows, cols = _box_matrix(THUMB, h), _box_matrix(THUMB, w)
    out = np.empty((n, THUMB, THUMB), dtype=np.uint8)
    for lo in range(0, n, chunk):
        part = images[lo : lo + chunk].astype(np.float32)
        gray = part @ _LUMA if part.ndim == 4 else part
        out[lo : lo + chunk] = np.clip(np.rint(rows @ gray @ cols.T), 0, 255)
    return out


@lru_cache(maxsize=64)
def _box_matrix(n_out: int, n_in: int) -> np.ndarray:
    """``(n_out, n_in)`` weights of an area-average resize along one axis."""
    edges = np.linspace(0.0, n_in, n_out + 1)
    lo, hi = edges[:-1, None], edges[1:, None]
    px = np.arange(n_in)[None, :]
    overlap = np.clip(np.minimum(hi, px + 1) - np.maximum(lo, px), 0, None)
    return (overlap / overlap.sum(axis=1, keepdims=True)).astype(np.float32)


def dhashes(thumbs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Horizontal and vertical 64-bit dHashes (uint64) of ``(N, 16, 16)`` thumbnails.

    Example:
        >>> import numpy as np
        >>> h, v = dhashes(np.zeros((1, 16, 16), np.uint8))
        >>> int(h[0]), int(v[0])
        (0, 0)
    """
    t = np.asarray(thumbs, dtype=np.float32).reshape(-1, THUMB, THUMB)
    r8, r9 = _box_matrix(8, THUMB), _box_matrix(9, THUMB)
    wide = r8 @ t @ r9.T  # (N, 8, 9)
    tall = r9 @ t @ r8.T  # (N, 9, 8)
    h_bits = wide[:, :, 1:] > wide[:, :, :-1] + _GRADIENT_EPS
    v_bits = tall[:, 1:, :] > tall[:, :-1, :] + _GRADIENT_EPS
    return _pack(h_bits), _pack(v_bits)


def _pack(bits: np.ndarray) -> np.ndarray:
    packed = np.packbits(bits.reshape(len(bits), 64), axis=1)
    return packed.view(">u8").ravel().astype(np.uint64)


def popcount(x: np.ndarray) -> np.ndarray:
    """Number of set bits of each uint64."""
    x = np.asarray(x, dtype=np.uint64)
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(x)
    table = np.array([bin(i).count("1") for i in range(256)], dtype=np.int64)
    return table[np.ascontiguousarray(x).view(np.uint8)].reshape(*x.shape, 8).sum(axis=-1)


def near_pairs(thumbs: np.ndarray, max_distance: int, max_diff: float = MAX_THUMB_DIFF) -> np.ndarray:
    """Near-duplicate pairs ``(i, j, distance)`` with i < j, as an int64 ``(P, 3)`` array.

    Args:
        thumbs: ``(N, 16, 16)`` uint8 thumbnails.
        max_distance: largest horizontal (and vertical) dHash distance in bits.
        max_diff: largest mean absolute thumbnail difference (gray levels).
    """
    hh, vh = dhashes(thumbs)
    bits = popcount(hh)
    keep = np.flatnonzero((bits >= MIN_HASH_BITS) & (bits <= 64 - MIN_HASH_BITS))
    if max_distance < 0 or len(keep) < 2:
        return np.zeros((0, 3), np.int64)
    found = [_pairs_sharing_key(hh, vh, keep, key, max_distance) for key in _chunk_keys(hh[keep], max_distance + 1)]
    pairs = _unique_pairs(np.concatenate(found), len(hh))
    pairs = pairs[_thumb_diff(thumbs, pairs, max_diff) <= max_diff]
    dist = popcount(hh[pairs[:, 0]] ^ hh[pairs[:, 1]])
    return np.concatenate([pairs, dist[:, None].astype(np.int64)], axis=1)


def _unique_pairs(pairs: np.ndarray, n: int) -> np.ndarray:
    codes = np.sort(pairs[:, 0] * n + pairs[:, 1])
    codes = codes[np.r_[True, codes[1:] != codes[:-1]]] if len(codes) else codes
    return np.stack([codes // n, codes % n], axis=1)


def _chunk_keys(h: np.ndarray, n: int) -> list[np.ndarray]:
    """``n`` keys per hash from disjoint, interleaved bit sets (bit k goes to set k mod n)."""
    n = max(1, min(n, 64))
    bits = np.unpackbits(h.astype(">u8").view(np.uint8).reshape(-1, 8), axis=1)
    keys = []
    for k in range(n):
        part = bits[:, k::n].astype(np.int64)
        keys.append(part @ (np.int64(1) << np.arange(part.shape[1], dtype=np.int64)))
    return keys


def _pairs_sharing_key(
    hh: np.ndarray, vh: np.ndarray, items: np.ndarray, key: np.ndarray, max_distance: int
) -> np.ndarray:
    """Pairs among ``items`` with equal ``key`` and both dHashes within ``max_distance``.

    Small runs of equal keys are walked by offset (item i against i + 1, i + 2, ...), all
    runs at once; large runs are compared block-wise.
    """
    order = np.argsort(key, kind="stable")
    k, ids = key[order], items[order]
    starts = np.flatnonzero(np.r_[True, k[1:] != k[:-1]])
    sizes = np.diff(np.r_[starts, len(k)])
    big = sizes > _SMALL_RUN
    small_pos = np.flatnonzero(np.repeat(~big, sizes))
    out = [ids[_walk_runs(hh[ids], vh[ids], k, small_pos, max_distance)]]
    for lo, n in zip(starts[big].tolist(), sizes[big].tolist(), strict=True):
        out.append(_block_pairs(hh, vh, ids[lo : lo + n], max_distance))
    return _ordered(np.concatenate(out))


_SMALL_RUN = 48


def _walk_runs(hs: np.ndarray, vs: np.ndarray, k: np.ndarray, active: np.ndarray, max_distance: int) -> np.ndarray:
    """Positions (p, q) in sorted order with equal keys and close hashes."""
    out, d = [np.zeros((0, 2), np.int64)], 1
    while active.size:
        active = active[: np.searchsorted(active, len(k) - d)]
        active = active[k[active] == k[active + d]]
        near = popcount(hs[active] ^ hs[active + d]) <= max_distance
        near &= popcount(vs[active] ^ vs[active + d]) <= max_distance
        out.append(np.stack([active[near], active[near] + d], axis=1))
        d += 1
    return np.concatenate(out)


def _block_pairs(hh: np.ndarray, vh: np.ndarray, ids: np.ndarray, max_distance: int) -> np.ndarray:
    """All close pairs inside one large run, 256 rows at a time."""
    h, v = hh[ids], vh[ids]
    out = [np.zeros((0, 2), np.int64)]
    for lo in range(0, len(ids), 256):
        close = popcount(h[lo : lo + 256, None] ^ h[None, lo:]) <= max_distance
        close &= popcount(v[lo : lo + 256, None] ^ v[None, lo:]) <= max_distance
        r, c = np.nonzero(close)  # c counts from column lo
        upper = c > r
        out.append(np.stack([ids[r[upper] + lo], ids[c[upper] + lo]], axis=1))
    return np.concatenate(out)


def _ordered(pairs: np.ndarray) -> np.ndarray:
    return np.stack([pairs.min(axis=1), pairs.max(axis=1)], axis=1) if len(pairs) else pairs


def _thumb_diff(thumbs: np.ndarray, pairs: np.ndarray, max_diff: float) -> np.ndarray:
    """Mean absolute difference of the thumbnails of each pair (pairs already further apart
    than ``max_diff`` on 4x4 block means, a lower bound, are only bounded, not measured)."""
    coarse = thumbs.reshape(-1, 4, 4, 4, 4).mean(axis=(2, 4), dtype=np.float32).reshape(-1, 16)
    out = np.empty(len(pairs), dtype=np.float32)
    for lo in range(0, len(pairs), 65536):
        p = pairs[lo : lo + 65536]
        bound = np.abs(coarse[p[:, 0]] - coarse[p[:, 1]]).mean(axis=1)
        close = np.flatnonzero(bound <= max_diff)
        a = thumbs[p[close, 0]].astype(np.int16)
        b = thumbs[p[close, 1]].astype(np.int16)
        bound[close] = np.abs(a - b).reshape(len(close), THUMB * THUMB).mean(axis=1)
        out[lo : lo + 65536] = bound
    return out


def group_pairs(pairs: Sequence[tuple[int, int]] | np.ndarray) -> list[list[int]]:
    """Connected groups (sorted, each of 2+ items) of the items joined by ``pairs``."""
    parent: dict[int, int] = {}

    def find(x: int) -> int:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in np.asarray(pairs, dtype=np.int64).reshape(-1, 2).tolist():
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    groups: dict[int, list[int]] = defaultdict(list)
    for x in list(parent):
        groups[find(x)].append(x)
    return sorted(sorted(g) for g in groups.values())


def exact_groups(digests: Sequence[bytes | None]) -> list[list[int]]:
    """Groups (2+ items) of identical content digests; ``None`` digests are skipped."""
    by_digest: dict[bytes, list[int]] = defaultdict(list)
    for i, d in enumerate(digests):
        if d is not None:
            by_digest[d].append(i)
    return sorted(g for g in by_digest.values() if len(g) > 1)

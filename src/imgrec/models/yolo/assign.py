"""Which cells learn which object, and the losses: a task-aligned assigner (TOOD's idea).

For each ground-truth box, the candidate cells are those whose centre lies inside the box
(a box too small to hold any centre gets its nearest cell). Each candidate is scored by how
well the current prediction already does both tasks, ``alignment = score^alpha * IoU^beta``
(score: the predicted probability of the box's class, IoU: of the predicted box with the
ground truth); the ``top_k`` best candidates become that box's positives. A cell claimed by
several boxes goes to the one it overlaps most.

The classification target of a positive is its alignment normalized per box (the box's best
positive gets that box's best IoU), zero everywhere else: the score learns to rank by
localization quality. Losses: binary cross-entropy on all cells against those targets, and
GIoU on the positives, averaged with their targets as weights. The classification sum is
divided by the number of positives in the batch (at least one), so an image without boxes
trains the classifier toward "nothing".

Example:
    >>> import torch
    >>> points = torch.tensor([[4.0, 4.0, 8.0], [12.0, 4.0, 8.0], [28.0, 28.0, 8.0]])
    >>> a = assign(torch.full((3, 2), 0.5), torch.tensor([[0., 0, 16, 8]] * 3), points,
    ...            torch.tensor([[0.0, 0.0, 16.0, 8.0]]), torch.tensor([1]))
    >>> a.gt_index.tolist(), a.scores.argmax(1).tolist()
    ([0, 0, -1], [1, 1, 0])
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torchvision.ops import box_iou, generalized_box_iou_loss

TOP_K = 10
ALPHA, BETA = 1.0, 6.0  # TOOD's exponents: localization quality counts most
BOX_WEIGHT = 2.0
MIN_BOX_WEIGHT = 0.01  # early on, when no prediction overlaps yet, every positive still learns its box


@dataclass(frozen=True)
class Assignment:
    """One image's targets: ``gt_index`` (A,) the box each cell learns (-1: background),
    ``scores`` (A, C) the soft classification targets, ``boxes`` (A, 4) each cell's box."""

    gt_index: torch.Tensor
    scores: torch.Tensor
    boxes: torch.Tensor

    @property
    def positive(self) -> torch.Tensor:
        return self.gt_index >= 0


def candidates(points: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """(K, A) True where the cell centre lies inside the box; the nearest cell for boxes holding none."""
    xy = points[:, :2]
    inside = (xy[None, :, 0] > gt[:, None, 0]) & (xy[None, :, 0] < gt[:, None, 2])
    inside &= (xy[None, :, 1] > gt[:, None, 1]) & (xy[None, :, 1] < gt[:, None, 3])
    empty = ~inside.any(1)
    if empty.any():
        centres = (gt[empty, :2] + gt[empty, 2:]) / 2
        nearest = torch.cdist(centres, xy).argmin(1)
        inside[empty.nonzero()[:, 0], nearest] = True
    return inside


@torch.no_grad()
def assign(
    scores: torch.Tensor, boxes: torch.Tensor, points: torch.Tensor, gt: torch.Tensor, labels: torch.Tensor,
    top_k: int = TOP_K,
) -> Assignment:  # fmt: skip
    """Targets for one image from its predictions (``scores`` (A, C) probabilities, ``boxes``
    (A, 4)), the cells' ``points`` (A, 3) and the ground truth ``gt`` (K, 4), ``labels`` (K,)."""
    a, c = scores.shape
    if len(gt) == 0:
        return Assignment(torch.full((a,), -1, dtype=torch.long, device=scores.device),
                          scores.new_zeros((a, c)), boxes.new_zeros((a, 4)))  # fmt: skip
    iou = box_iou(gt, boxes).clamp_(0)  # (K, A)
    inside = candidates(points, gt)
    align = scores[:, labels].T.pow(ALPHA) * iou.pow(BETA) * inside
    best = align.topk(min(top_k, a), dim=1).indices
    chosen = torch.zeros_like(inside).scatter_(1, best, True) & inside
    overlap = torch.where(chosen, iou, torch.full_like(iou, -1.0))
    owner = overlap.argmax(0)  # the most-overlapped box of each cell
    positive = chosen.any(0)
    gt_index = torch.where(positive, owner, torch.full_like(owner, -1))
    return Assignment(gt_index, _soft_targets(align, iou, chosen, gt_index, labels, c), gt[owner])


def _soft_targets(
    align: torch.Tensor, iou: torch.Tensor, chosen: torch.Tensor, gt_index: torch.Tensor, labels: torch.Tensor,
    num_classes: int,
) -> torch.Tensor:  # fmt: skip
    """Alignment normalized per box so its best positive scores that box's best IoU."""
    align = align * chosen
    peak_align = align.amax(1, keepdim=True).clamp_min(1e-9)
    peak_iou = (iou * chosen).amax(1, keepdim=True)
    norm = (align / peak_align * peak_iou).amax(0)  # per cell, over the boxes that chose it
    positive = gt_index >= 0
    target = align.new_zeros((align.shape[1], num_classes))
    cells = positive.nonzero()[:, 0]
    target[cells, labels[gt_index[cells]]] = norm[cells]
    return target


def detection_losses(
    boxes: torch.Tensor, logits: torch.Tensor, points: torch.Tensor, gts: list[torch.Tensor],
    labels: list[torch.Tensor],
) -> dict[str, torch.Tensor]:  # fmt: skip
    """``loss_cls`` and ``loss_box`` for a batch: predictions ``boxes`` (N, A, 4), ``logits``
    (N, A, C), cell ``points`` (A, 3); per image its boxes (K, 4) and labels (K,)."""
    probs = logits.detach().float().sigmoid()
    pairs = zip(probs, boxes.detach().float(), gts, labels, strict=True)
    found = [assign(p, b, points, g, lab) for p, b, g, lab in pairs]
    targets = torch.stack([f.scores for f in found])
    positive = torch.stack([f.positive for f in found])
    count = positive.sum().clamp_min(1).float()
    cls = torch.nn.functional.binary_cross_entropy_with_logits(logits.float(), targets, reduction="sum") / count
    weight = targets.sum(-1)[positive].clamp_min(MIN_BOX_WEIGHT)
    if weight.numel():
        giou = generalized_box_iou_loss(boxes[positive].float(), torch.stack([f.boxes for f in found])[positive])
        box = (giou * weight).sum() / weight.sum()
    else:
        box = boxes.sum() * 0.0
    return {"loss_cls": cls, "loss_box": BOX_WEIGHT * box}

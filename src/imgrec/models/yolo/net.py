"""The network of imgrec's YOLO-style detector: timm backbone -> FPN + PAN neck -> decoupled head.

- Backbone: any timm model built with ``features_only=True, out_indices=(2, 3, 4)`` (strides 8,
  16 and 32 for the usual CNNs).
- Neck: 1x1 laterals to ``width`` channels, a top-down pass (upsample, concatenate, conv block)
  then a bottom-up pass (3x3 stride-2 conv, concatenate, conv block); every conv is
  conv + BatchNorm + SiLU.
- Head: per level, a classification branch and a box branch (``head_convs`` 3x3 convs each).
  The box branch predicts the distances from the cell centre to the four sides
  (``softplus(raw) * stride``); the classification bias starts so every score is about 0.01.

``YoloNet.forward`` takes normalized float NCHW and returns ``(boxes, logits, points)``:
x1 y1 x2 y2 boxes ``(N, A, 4)`` in input pixels, class logits ``(N, A, C)`` and the cell
centres with their stride ``(A, 3)``, A being the cells of all levels (stride 8 first).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

PRIOR = 0.01  # initial classification score of every cell
BOX_PRIOR = 2.0  # initial distance to each side, in strides


class ConvBnAct(nn.Sequential):
    """Conv (no bias) + BatchNorm + SiLU."""

    def __init__(self, cin: int, cout: int, k: int = 3, stride: int = 1) -> None:
        super().__init__(
            nn.Conv2d(cin, cout, k, stride, k // 2, bias=False), nn.BatchNorm2d(cout), nn.SiLU(inplace=True)
        )


def block(cin: int, cout: int) -> nn.Sequential:
    """The neck's fusion block: a 1x1 to ``cout`` channels, then a 3x3."""
    return nn.Sequential(ConvBnAct(cin, cout, 1), ConvBnAct(cout, cout, 3))


class Neck(nn.Module):
    """FPN (top-down) then PAN (bottom-up) over three levels, all at ``width`` channels."""

    def __init__(self, channels: list[int], width: int) -> None:
        super().__init__()
        self.lateral = nn.ModuleList(ConvBnAct(c, width, 1) for c in channels)
        self.top_down = nn.ModuleList(block(2 * width, width) for _ in channels[:-1])
        self.down = nn.ModuleList(ConvBnAct(width, width, 3, 2) for _ in channels[:-1])
        self.bottom_up = nn.ModuleList(block(2 * width, width) for _ in channels[:-1])

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        lat = [m(f) for m, f in zip(self.lateral, feats, strict=True)]
        td = [lat[-1]]
        for i in range(len(lat) - 2, -1, -1):  # coarse to fine
            up = F.interpolate(td[0], size=lat[i].shape[-2:], mode="nearest")
            td.insert(0, self.top_down[i](torch.cat([lat[i], up], 1)))
        out = [td[0]]
        for i in range(1, len(td)):  # fine to coarse
            down = self.down[i - 1](out[-1])
            if down.shape[-2:] != td[i].shape[-2:]:
                down = F.interpolate(down, size=td[i].shape[-2:], mode="nearest")
            out.append(self.bottom_up[i - 1](torch.cat([down, td[i]], 1)))
        return out


class Level(nn.Module):
    """The decoupled head of one level: class logits and side distances."""

    def __init__(self, width: int, num_classes: int, convs: int) -> None:
        super().__init__()
        self.cls = nn.Sequential(*(ConvBnAct(width, width) for _ in range(convs)))
        self.box = nn.Sequential(*(ConvBnAct(width, width) for _ in range(convs)))
        self.cls_pred = nn.Conv2d(width, num_classes, 1)
        self.box_pred = nn.Conv2d(width, 4, 1)
        _init(self.cls_pred, -math.log((1 - PRIOR) / PRIOR))
        _init(self.box_pred, math.log(math.expm1(BOX_PRIOR)))  # softplus^-1

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.cls_pred(self.cls(x)), self.box_pred(self.box(x))


def _init(conv: nn.Conv2d, bias: float) -> None:
    """Small weights and a set bias: every cell starts from the same prior."""
    nn.init.normal_(conv.weight, std=0.01)
    if conv.bias is not None:
        nn.init.constant_(conv.bias, bias)


class YoloNet(nn.Module):
    """Backbone, neck and head; see the module docstring for what ``forward`` returns."""

    def __init__(self, backbone: nn.Module, num_classes: int, width: int = 64, head_convs: int = 2) -> None:
        super().__init__()
        info = feature_info(backbone)
        self.backbone = backbone
        self.strides = [int(s) for s in info.reduction()]
        self.neck = Neck([int(c) for c in info.channels()], width)
        self.head = nn.ModuleList(Level(width, num_classes, head_convs) for _ in self.strides)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        feats = self.neck(list(self.backbone(x)))
        boxes, logits, points = [], [], []
        for level, f, stride in zip(self.head, feats, self.strides, strict=True):
            cls, dist = level(f)
            pts = cell_points(f.shape[-2], f.shape[-1], stride, f.device)
            ltrb = F.softplus(dist.float()).flatten(2).transpose(1, 2) * stride
            boxes.append(torch.cat([pts[:, :2] - ltrb[..., :2], pts[:, :2] + ltrb[..., 2:]], -1))
            logits.append(cls.flatten(2).transpose(1, 2))
            points.append(pts)
        return torch.cat(boxes, 1), torch.cat(logits, 1), torch.cat(points, 0)


def feature_info(backbone: nn.Module) -> Any:
    """timm's ``feature_info`` of a ``features_only`` model (channels and reduction per level)."""
    return backbone.feature_info


def cell_points(h: int, w: int, stride: int, device: torch.device) -> torch.Tensor:
    """Centres of an ``h x w`` grid of ``stride``-pixel cells, row-major, with the stride: (h*w, 3)."""
    ys, xs = torch.meshgrid(torch.arange(h, device=device), torch.arange(w, device=device), indexing="ij")
    centres = (torch.stack([xs.reshape(-1), ys.reshape(-1)], 1).float() + 0.5) * stride
    return torch.cat([centres, torch.full((h * w, 1), float(stride), device=device)], 1)

"""Small convolutional networks for low-resolution images (imported only when torch is needed).

Both follow timm's head protocol (``get_classifier()``, ``reset_classifier(n)``), so the
classifier wrapper, the weight loader and the trainer treat them like timm models.

Example:
    >>> import torch
    >>> net = CnnBn(num_classes=10, in_chans=1)
    >>> net(torch.zeros(2, 1, 28, 28)).shape
    torch.Size([2, 10])
"""

from __future__ import annotations

import torch
from torch import nn

from imgrec.errors import ConfigError


def _conv_bn(c_in: int, c_out: int, kernel: int = 3, stride: int = 1) -> list[nn.Module]:
    pad = (kernel - 1) // 2 if stride == 1 else kernel // 2 - 1
    return [
        nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=pad, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    ]


class _HeadMixin:
    """timm's classifier protocol on top of a ``head`` Linear layer."""

    head: nn.Linear

    def get_classifier(self) -> nn.Module:
        return self.head

    def reset_classifier(self, num_classes: int) -> None:
        self.head = nn.Linear(self.head.in_features, num_classes)


class CnnSmall(_HeadMixin, nn.Module):
    """The classic small CNN: Conv32-Pool-Conv64-Pool-Dense64-Dense(classes).

    Args:
        num_classes: outputs.
        in_chans: input channels (1 for grayscale).
        image_size: input side; the dense layer's width depends on it (>= 10).
        dropout: dropout before the classifier.
    """

    def __init__(self, num_classes: int, in_chans: int = 3, image_size: int = 28, dropout: float = 0.0):
        super().__init__()
        side = ((image_size - 2) // 2 - 2) // 2
        if side < 1:
            raise ConfigError(f"cnn-small needs images of at least 10 pixels; received {image_size}.")
        self.features = nn.Sequential(
            nn.Conv2d(in_chans, 32, 3), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3), nn.ReLU(inplace=True), nn.MaxPool2d(2),
        )
        self.pre_logits = nn.Sequential(
            nn.Flatten(), nn.Linear(64 * side * side, 64), nn.ReLU(inplace=True), nn.Dropout(dropout)
        )
        self.head = nn.Linear(64, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.pre_logits(self.features(x)))  # type: ignore[no-any-return]


class CnnBn(_HeadMixin, nn.Module):
    """A fast, strong CNN for small images: conv-BN-ReLU blocks, pooling, dropout, linear head.

    A stride-2 stem halves the resolution first (cheap on CPU), then conv-BN-ReLU stages
    with max-pooling between them. The features are average-pooled to a fixed 4x4 grid
    (adaptive pooling: any input side >= 8 works, like global pooling, but the coarse layout
    survives, which matters for centred objects such as Fashion-MNIST clothes; measured
    against global average pooling it learns faster), then dropout and a linear head.

    Args:
        num_classes: outputs.
        in_chans: input channels (1 for grayscale).
        dropout: dropout before the classifier.
        width: channels of the first stage (the others are 2x and 4x).
        grid: side of the pooled feature grid (1 = global average pooling).
    """

    def __init__(self, num_classes: int, in_chans: int = 3, dropout: float = 0.2, width: int = 32, grid: int = 4):
        super().__init__()
        w = width
        self.features = nn.Sequential(
            *_conv_bn(in_chans, w, kernel=4, stride=2),
            *_conv_bn(w, 2 * w),
            nn.MaxPool2d(2),
            *_conv_bn(2 * w, 4 * w),
            nn.AdaptiveAvgPool2d(grid),
            nn.Flatten(),
        )
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(4 * w * grid * grid, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.drop(self.features(x)))  # type: ignore[no-any-return]

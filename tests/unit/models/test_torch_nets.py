"""The small CNNs: shapes, gradients, head protocol, size limits."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from imgrec.errors import ConfigError  # noqa: E402
from imgrec.models.torch_nets import CnnBn, CnnSmall  # noqa: E402


@pytest.mark.parametrize("net", [CnnSmall(4, in_chans=1, image_size=28), CnnBn(4, in_chans=1)])
def test_forward_backward_on_28px_gray(net: torch.nn.Module) -> None:
    x = torch.randn(3, 1, 28, 28)
    out = net(x)
    assert out.shape == (3, 4)
    out.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())


@pytest.mark.parametrize("size", [10, 32, 45])
def test_cnn_small_takes_its_build_size(size: int) -> None:
    assert CnnSmall(2, 3, image_size=size)(torch.zeros(2, 3, size, size)).shape == (2, 2)


@pytest.mark.parametrize("size", [8, 13, 64])
def test_cnn_bn_takes_any_size(size: int) -> None:
    assert CnnBn(5, 3).eval()(torch.zeros(1, 3, size, size)).shape == (1, 5)


def test_cnn_small_rejects_tiny_images() -> None:
    with pytest.raises(ConfigError, match="at least 10 pixels"):
        CnnSmall(2, 3, image_size=9)


def test_head_protocol_resets_the_classifier() -> None:
    net = CnnBn(3)
    assert net.get_classifier() is net.head
    net.reset_classifier(7)
    assert net(torch.zeros(2, 3, 16, 16)).shape == (2, 7)

"""Architectures of the reference networks (:mod:`bayesactiv.zoo`).

Every hidden activation is its own :class:`torch.nn.ReLU` module with a readable
name, so that :func:`bayesactiv.record` can hook it by the name it has in
``module.named_modules()``. The three digits families follow seed 002 (MLP, CNN,
DenseNet); the Iris network is seed 001's 4-64-32-16-3 ReLU net.

All digits networks take images of shape ``(N, 1, 8, 8)`` (the MLP flattens them
itself), so one input tensor fits all of them.

Examples
--------
>>> import torch
>>> from bayesactiv.zoo.architectures import DigitsCNN
>>> net = DigitsCNN()
>>> net(torch.zeros(2, 1, 8, 8)).shape
torch.Size([2, 10])
>>> [n for n, m in net.named_modules() if isinstance(m, torch.nn.ReLU)]
['relu_conv1', 'relu_conv2', 'relu_fc1']
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

__all__ = [
    "ARCHITECTURES",
    "DenseBlock",
    "DenseLayer",
    "DigitsCNN",
    "DigitsDenseNet",
    "DigitsMLP",
    "IrisMLP",
    "parameter_count",
    "relu_names",
]


class IrisMLP(nn.Sequential):
    """Seed 001's Iris network: 4-64-32-16-3 with ReLU (``relu1``..``relu3``), logits out.

    Examples
    --------
    >>> IrisMLP()(torch.zeros(5, 4)).shape
    torch.Size([5, 3])
    """

    hidden = ("relu1", "relu2", "relu3")

    def __init__(self) -> None:
        super().__init__(
            OrderedDict(
                fc1=nn.Linear(4, 64),
                relu1=nn.ReLU(),
                fc2=nn.Linear(64, 32),
                relu2=nn.ReLU(),
                fc3=nn.Linear(32, 16),
                relu3=nn.ReLU(),
                fc4=nn.Linear(16, 3),
            )
        )


class DigitsMLP(nn.Sequential):
    """Digits MLP 64-256-128-64-10 (``relu1``..``relu3``); takes ``(N, 1, 8, 8)`` or ``(N, 64)``.

    Examples
    --------
    >>> DigitsMLP()(torch.zeros(3, 1, 8, 8)).shape
    torch.Size([3, 10])
    """

    hidden = ("relu1", "relu2", "relu3")

    def __init__(self) -> None:
        super().__init__(
            OrderedDict(
                flatten=nn.Flatten(),
                fc1=nn.Linear(64, 256),
                relu1=nn.ReLU(),
                fc2=nn.Linear(256, 128),
                relu2=nn.ReLU(),
                fc3=nn.Linear(128, 64),
                relu3=nn.ReLU(),
                fc4=nn.Linear(64, 10),
            )
        )


class DigitsCNN(nn.Sequential):
    """Small digits CNN.

    ``conv1`` 1->16 (3x3, pad 1) + ``relu_conv1`` at 8x8, max-pool to 4x4; ``conv2``
    16->32 (3x3, pad 1) + ``relu_conv2`` at 4x4; flatten (512) -> ``fc1`` 128 +
    ``relu_fc1`` -> ``fc2`` 10 logits.

    Examples
    --------
    >>> DigitsCNN()(torch.zeros(3, 1, 8, 8)).shape
    torch.Size([3, 10])
    """

    hidden = ("relu_conv1", "relu_conv2", "relu_fc1")

    def __init__(self) -> None:
        super().__init__(
            OrderedDict(
                conv1=nn.Conv2d(1, 16, 3, padding=1),
                relu_conv1=nn.ReLU(),
                pool1=nn.MaxPool2d(2),
                conv2=nn.Conv2d(16, 32, 3, padding=1),
                relu_conv2=nn.ReLU(),
                flatten=nn.Flatten(),
                fc1=nn.Linear(32 * 4 * 4, 128),
                relu_fc1=nn.ReLU(),
                fc2=nn.Linear(128, 10),
            )
        )


class DenseLayer(nn.Module):
    """One DenseNet layer: ``conv`` (3x3, pad 1) + ``relu``; output = input ++ new maps.

    Examples
    --------
    >>> DenseLayer(4, 2)(torch.zeros(1, 4, 8, 8)).shape
    torch.Size([1, 6, 8, 8])
    """

    def __init__(self, in_channels: int, growth: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, growth, 3, padding=1)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, self.relu(self.conv(x))], dim=1)


class DenseBlock(nn.Sequential):
    """A dense block of ``n_layers`` :class:`DenseLayer` (``layer1``, ``layer2``, ...).

    Examples
    --------
    >>> DenseBlock(4, 2, 3)(torch.zeros(1, 4, 8, 8)).shape
    torch.Size([1, 10, 8, 8])
    """

    def __init__(self, in_channels: int, growth: int, n_layers: int) -> None:
        super().__init__(
            OrderedDict(
                (f"layer{i + 1}", DenseLayer(in_channels + i * growth, growth))
                for i in range(n_layers)
            )
        )
        self.out_channels = in_channels + n_layers * growth


class DigitsDenseNet(nn.Sequential):
    """Small DenseNet-style digits network (no batch normalisation).

    ``stem`` conv 1->16 + ``relu_stem`` (8x8); ``block1``: 2 dense layers, growth 12
    (-> 40 maps, 8x8); transition ``trans`` 1x1 conv 40->24 + ``relu_trans``, 2x2
    average pool (4x4); ``block2``: 2 dense layers, growth 12 (-> 48 maps, 4x4);
    flatten (768) -> ``fc1`` 128 + ``relu_fc1`` -> ``fc2`` 10.

    Examples
    --------
    >>> DigitsDenseNet()(torch.zeros(2, 1, 8, 8)).shape
    torch.Size([2, 10])
    """

    hidden = (
        "relu_stem",
        "block1.layer1.relu",
        "block1.layer2.relu",
        "relu_trans",
        "block2.layer1.relu",
        "block2.layer2.relu",
        "relu_fc1",
    )

    def __init__(self) -> None:
        block1 = DenseBlock(16, 12, 2)
        block2 = DenseBlock(24, 12, 2)
        super().__init__(
            OrderedDict(
                stem=nn.Conv2d(1, 16, 3, padding=1),
                relu_stem=nn.ReLU(),
                block1=block1,
                trans=nn.Conv2d(block1.out_channels, 24, 1),
                relu_trans=nn.ReLU(),
                pool1=nn.AvgPool2d(2),
                block2=block2,
                flatten=nn.Flatten(),
                fc1=nn.Linear(block2.out_channels * 4 * 4, 128),
                relu_fc1=nn.ReLU(),
                fc2=nn.Linear(128, 10),
            )
        )


#: architecture key (as written in a model card) -> class
ARCHITECTURES: dict[str, type[nn.Module]] = {
    "iris-mlp": IrisMLP,
    "digits-mlp": DigitsMLP,
    "digits-cnn": DigitsCNN,
    "digits-densenet": DigitsDenseNet,
}


def relu_names(module: nn.Module) -> list[str]:
    """Names of the :class:`torch.nn.ReLU` modules of ``module``, in definition order.

    Examples
    --------
    >>> relu_names(IrisMLP())
    ['relu1', 'relu2', 'relu3']
    """
    return [name for name, m in module.named_modules() if isinstance(m, nn.ReLU)]


def parameter_count(module: nn.Module) -> int:
    """Number of trainable parameters of ``module``.

    Examples
    --------
    >>> parameter_count(IrisMLP())
    2979
    """
    return sum(p.numel() for p in module.parameters() if p.requires_grad)

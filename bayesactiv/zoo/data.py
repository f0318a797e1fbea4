"""The data the reference networks train on: scikit-learn's Iris and digits, split once.

Nothing is downloaded: both data sets ship with scikit-learn. :func:`torchvision_dataset`
reads MNIST-like data sets from a local folder.

Examples
--------
>>> from bayesactiv.zoo.data import dataset
>>> x, y = dataset("iris", "test")
>>> tuple(x.shape)
(30, 4)
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bayesactiv.zoo.recipes import (
    FAMILIES,
    RECIPES,
    SPLIT_SEED,
    TEST_SIZE,
    Recipe,
    UnknownError,
    recipe,
)

__all__ = [
    "check_split",
    "dataset",
    "digit_images",
    "family_arrays",
    "family_of",
    "shuffled_labels",
    "split_indices",
    "torchvision_dataset",
]


def check_split(split: str) -> str:
    """``split`` when it is ``"train"`` or ``"test"``; a ValueError otherwise.

    Examples
    --------
    >>> check_split("train")
    'train'
    """
    if split not in ("train", "test"):
        raise ValueError(f"split: expected 'train' or 'test', got {split!r}")
    return split


@cache
def family_arrays(family: str) -> dict[str, np.ndarray]:
    """Features, labels and split indices of one family (read-only arrays, cached).

    Examples
    --------
    >>> sorted(family_arrays("digits"))
    ['images', 'test', 'train', 'x', 'y']
    """
    from sklearn.datasets import load_digits, load_iris
    from sklearn.model_selection import train_test_split

    if family == "iris":
        features, labels = load_iris(return_X_y=True)
        idx_train, idx_test = train_test_split(
            np.arange(len(labels)), test_size=TEST_SIZE, random_state=SPLIT_SEED
        )
        # standardise with the training split's mean and standard deviation
        mean = features[idx_train].mean(axis=0)
        std = features[idx_train].std(axis=0)
        x = ((features - mean) / std).astype(np.float32)
        images = None
    else:
        features, labels = load_digits(return_X_y=True)
        idx_train, idx_test = train_test_split(
            np.arange(len(labels)),
            test_size=TEST_SIZE,
            random_state=SPLIT_SEED,
            stratify=labels,
        )
        images = (features / 16.0).reshape(-1, 8, 8)
        x = images.reshape(-1, 1, 8, 8).astype(np.float32)
    out = {
        "x": x,
        "y": labels.astype(np.int64),
        "train": np.asarray(idx_train, dtype=np.int64),
        "test": np.asarray(idx_test, dtype=np.int64),
    }
    if images is not None:
        out["images"] = images
    for a in out.values():
        a.flags.writeable = False
    return out


def family_of(name_or_family: str) -> tuple[str, Recipe | None]:
    """The data family of a network or family name, and the network's recipe (None for a family).

    Examples
    --------
    >>> family_of("digits-cnn")[0], family_of("iris")
    ('digits', ('iris', None))
    """
    if name_or_family in FAMILIES:
        return name_or_family, None
    try:
        found = recipe(name_or_family)
    except UnknownError:
        raise UnknownError(
            f"name_or_family: unknown network or data family {name_or_family!r}; "
            f"families: {', '.join(FAMILIES)}; networks: {', '.join(RECIPES)}"
        ) from None
    return found.family, found


def shuffled_labels(labels: np.ndarray, label_seed: int) -> np.ndarray:
    """The training labels shuffled once (a permutation keeps the class sizes).

    Examples
    --------
    >>> shuffled_labels(np.arange(5), 1).tolist()
    [4, 0, 1, 2, 3]
    """
    return np.random.default_rng(label_seed).permutation(labels)


def split_indices(name_or_family: str, split: str = "test") -> np.ndarray:
    """Positions in the scikit-learn data set of the samples of a split, in order.

    Examples
    --------
    >>> split_indices("iris", "test")[:3].tolist()
    [73, 18, 118]
    """
    family, _ = family_of(name_or_family)
    return family_arrays(family)[check_split(split)].copy()


def dataset(
    name_or_family: str, split: str = "test", *, true_labels: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs and labels of a split, exactly as used in training.

    Parameters
    ----------
    name_or_family : str
        A network name (see :func:`names`) or a data family (``"iris"``, ``"digits"``).
    split : {"test", "train"}
        Which part of the ``train_test_split(test_size=0.2, random_state=42)`` split.
    true_labels : bool
        For a memorizing network's training split, return the real labels instead
        of the shuffled ones it was trained on. Families and test splits always
        carry the real labels.

    Returns
    -------
    x : torch.Tensor
        float32; ``(N, 4)`` standardised features for Iris, ``(N, 1, 8, 8)`` images
        scaled to [0, 1] for digits.
    y : torch.Tensor
        int64 class labels, ``(N,)``.

    Examples
    --------
    >>> x, y = dataset("digits", "train")
    >>> tuple(x.shape), tuple(y.shape)
    ((1437, 1, 8, 8), (1437,))
    >>> _, y_mem = dataset("digits-mlp-memorize", "train")
    >>> bool((y_mem == y).all())
    False
    """
    family, recipe = family_of(name_or_family)
    split = check_split(split)
    arrays = family_arrays(family)
    idx = arrays[split]
    y = arrays["y"][idx]
    if recipe is not None and recipe.memorize and split == "train" and not true_labels:
        y = shuffled_labels(y, recipe.label_seed)
    return torch.from_numpy(arrays["x"][idx].copy()), torch.from_numpy(np.array(y))


def digit_images(indices: Any, split: str = "test") -> np.ndarray:
    """8x8 digit images (values in [0, 1]) of samples of a digits split.

    Parameters
    ----------
    indices : int or array-like of int
        Positions within the split, i.e. the ``sample`` coordinate of a recording
        made on ``dataset(..., split)`` in order.
    split : {"test", "train"}

    Returns
    -------
    numpy.ndarray
        ``(len(indices), 8, 8)`` float64 (``(8, 8)`` for a scalar index).

    Examples
    --------
    >>> digit_images([0, 5], "test").shape
    (2, 8, 8)
    """
    arrays = family_arrays("digits")
    idx = arrays[check_split(split)]
    pos = np.asarray(indices)
    if pos.dtype.kind not in "iu":
        raise TypeError(f"indices: expected integers, got dtype {pos.dtype}")
    if pos.size and (pos.min() < -len(idx) or pos.max() >= len(idx)):
        raise IndexError(
            f"indices: out of range for the digits {split} split of {len(idx)} samples"
        )
    return arrays["images"][idx[pos]].copy()


# --------------------------------------------------------------------------- torchvision


_TORCHVISION = {"mnist": "MNIST", "fashionmnist": "FashionMNIST", "cifar10": "CIFAR10"}


def torchvision_dataset(
    name: str, root: str | os.PathLike[str], split: str = "test"
) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST, FashionMNIST or CIFAR-10 from a local folder in torchvision's format.

    Nothing is downloaded (``download=False``); torchvision is imported only here.

    Parameters
    ----------
    name : {"mnist", "fashionmnist", "cifar10"}
        Case and dashes are ignored (``"Fashion-MNIST"`` works).
    root : path
        The folder passed to the torchvision data set class.
    split : {"test", "train"}

    Returns
    -------
    x : torch.Tensor
        float32 images in [0, 1], ``(N, C, H, W)``.
    y : torch.Tensor
        int64 labels.

    Examples
    --------
    Not executed here: it needs torchvision (an optional dependency) and the MNIST files
    on disk, and nothing is downloaded.

    >>> x, y = torchvision_dataset("mnist", "~/data")  # doctest: +SKIP
    >>> x.shape, y.shape  # doctest: +SKIP
    (torch.Size([10000, 1, 28, 28]), torch.Size([10000]))
    >>> torchvision_dataset("svhn", "~/data")
    Traceback (most recent call last):
    ...
    bayesactiv.zoo.recipes.UnknownError: name: unknown data set 'svhn'; available: mnist, fashionmnist, cifar10
    """
    key = name.lower().replace("-", "").replace("_", "") if isinstance(name, str) else name
    if key not in _TORCHVISION:
        raise UnknownError(f"name: unknown data set {name!r}; available: mnist, fashionmnist, cifar10")
    split = check_split(split)
    try:
        import torchvision
    except ImportError:
        raise ImportError(
            "torchvision_dataset needs torchvision, which is not installed "
            "(pip install torchvision)"
        ) from None
    root = Path(root).expanduser()
    if not root.exists():
        raise FileNotFoundError(f"root: {root} does not exist")
    cls = getattr(torchvision.datasets, _TORCHVISION[key])
    try:
        ds = cls(str(root), train=split == "train", download=False)
    except RuntimeError as err:
        raise FileNotFoundError(
            f"{_TORCHVISION[key]} not found under {root} (torchvision format, "
            f"download=False): {err}"
        ) from None
    data = ds.data
    data = torch.as_tensor(np.asarray(data))
    x = data.float() / 255.0
    x = x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2)
    return x.contiguous(), torch.as_tensor(np.asarray(ds.targets), dtype=torch.int64)

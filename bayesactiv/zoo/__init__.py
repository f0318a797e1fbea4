"""Reference networks: training recipes, model cards and small checkpoints.

The networks train on data that ships with scikit-learn (nothing is downloaded):

* ``iris-mlp`` -- seed 001's Iris network, 4-64-32-16-3 with ReLU;
* ``digits-mlp``, ``digits-cnn``, ``digits-densenet`` -- the three architecture
  families of seed 002 (MLP, CNN, DenseNet) on the 8x8 digits of
  :func:`sklearn.datasets.load_digits`, trained on the true labels (generalizing);
* ``digits-mlp-memorize``, ``digits-cnn-memorize``, ``digits-densenet-memorize`` --
  the same architectures trained on training labels shuffled once with a fixed
  seed, until they fit >= 99 % of them (memorizing).

The trained networks ship with the package, in ``bayesactiv/zoo/checkpoints/<name>/``
(:func:`checkpoints_dir`): ``card.json`` (the recipe and the accuracies measured at
every checkpoint) and ``epoch_NNNN.pt`` (state dicts at several epochs during
training). :func:`load` reads them from :func:`models_dir`: that folder, unless the
environment variable ``BAYESACTIV_MODELS`` points elsewhere. The human-readable
cards are in the repository's ``models/<name>/README.md``.

:func:`train` retrains a network from its recipe into a folder of the user
(:func:`default_train_dir` unless told), never into the installed package. It seeds
torch, enables ``torch.use_deterministic_algorithms`` and trains on one thread, so
training twice on one machine gives the same weights bit for bit. Another CPU model
rounds differently in the last bits, which many epochs amplify into slightly
different weights and a few differently classified samples; the shipped
checkpoints are the reference.

Examples
--------
>>> from bayesactiv import zoo
>>> zoo.names()[:2]
['iris-mlp', 'digits-mlp']
>>> net = zoo.load("iris-mlp")
>>> net.bayesactiv_network
'iris-mlp'
>>> x, y = zoo.dataset("iris-mlp", split="test")
>>> tuple(x.shape), zoo.last_hidden_layer("iris-mlp")
((30, 4), 'relu3')
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bayesactiv.data.checks import ArgumentError
from bayesactiv.zoo.architectures import ARCHITECTURES, parameter_count, relu_names

__all__ = [
    "RECIPES",
    "Recipe",
    "UnknownError",
    "card",
    "catalog",
    "checkpoints_dir",
    "dataset",
    "default_train_dir",
    "digit_images",
    "epochs",
    "hidden_layers",
    "last_hidden_layer",
    "load",
    "models_dir",
    "names",
    "render_card",
    "split_indices",
    "torchvision_dataset",
    "train",
    "train_all",
    "train_folder",
]

#: ``train_test_split`` arguments shared by every network (as in seed 001)
SPLIT_SEED = 42
TEST_SIZE = 0.2
#: the training accuracy on shuffled labels a memorizing network must reach
MEMORIZE_TARGET = 0.99
_FAMILIES = ("iris", "digits")
#: the folder of this package (``bayesactiv/zoo``)
_PACKAGE_ZOO = Path(__file__).resolve().parent


class UnknownError(KeyError):
    """An unknown network, data family or checkpoint epoch; the message lists the known ones."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True)
class Recipe:
    """How one reference network is trained.

    Parameters
    ----------
    name : str
        Network name, e.g. ``"digits-cnn"``.
    family : {"iris", "digits"}
        The data set.
    architecture : str
        Key of :data:`bayesactiv.zoo.architectures.ARCHITECTURES`.
    seed : int
        Seed of the initial weights and of the mini-batch order.
    lr : float
        Adam learning rate.
    batch_size : int or None
        Mini-batch size; None for full-batch training.
    epochs : int
        Passes over the training split.
    checkpoints : tuple of int
        Epochs at which the weights are saved (0 = initialisation); includes ``epochs``.
    label_seed : int or None
        Seed of the one-time shuffle of the training labels (memorizing networks).

    Examples
    --------
    >>> RECIPES["digits-mlp-memorize"].label_seed is not None
    True
    """

    name: str
    family: str
    architecture: str
    seed: int
    lr: float
    batch_size: int | None
    epochs: int
    checkpoints: tuple[int, ...]
    label_seed: int | None = None
    weight_decay: float = 0.0

    @property
    def memorize(self) -> bool:
        """True when the network is trained on shuffled training labels."""
        return self.label_seed is not None


RECIPES: dict[str, Recipe] = {
    r.name: r
    for r in (
        Recipe("iris-mlp", "iris", "iris-mlp", seed=0, lr=1e-3, batch_size=None, epochs=500,
               checkpoints=(0, 10, 50, 100, 250, 500)),
        Recipe("digits-mlp", "digits", "digits-mlp", seed=0, lr=1e-3, batch_size=128, epochs=40,
               checkpoints=(0, 1, 3, 10, 20, 40)),
        Recipe("digits-cnn", "digits", "digits-cnn", seed=0, lr=2e-3, batch_size=128, epochs=40,
               checkpoints=(0, 1, 3, 10, 20, 40)),
        Recipe("digits-densenet", "digits", "digits-densenet", seed=0, lr=2e-3, batch_size=128,
               epochs=40, checkpoints=(0, 1, 3, 10, 20, 40)),
        Recipe("digits-mlp-memorize", "digits", "digits-mlp", seed=0, lr=1e-3, batch_size=128,
               epochs=200, checkpoints=(0, 10, 50, 100, 150, 200), label_seed=1),
        Recipe("digits-cnn-memorize", "digits", "digits-cnn", seed=0, lr=2e-3, batch_size=128,
               epochs=150, checkpoints=(0, 10, 25, 50, 100, 150), label_seed=1),
        Recipe("digits-densenet-memorize", "digits", "digits-densenet", seed=0, lr=2e-3,
               batch_size=128, epochs=150, checkpoints=(0, 10, 25, 50, 100, 150), label_seed=1),
    )
}


# --------------------------------------------------------------------------- names


def names() -> list[str]:
    """Names of the reference networks.

    Examples
    --------
    >>> "digits-cnn-memorize" in names()
    True
    """
    return list(RECIPES)


def _recipe(name: str) -> Recipe:
    if not isinstance(name, str) or name not in RECIPES:
        raise UnknownError(
            f"name: unknown reference network {name!r}; available: {', '.join(RECIPES)}"
        )
    return RECIPES[name]


def checkpoints_dir() -> Path:
    """The package's folder of shipped reference networks (read-only for :func:`train`).

    Examples
    --------
    >>> checkpoints_dir().relative_to(Path(__file__).parent).as_posix()
    'checkpoints'
    >>> (checkpoints_dir() / "digits-mlp" / "card.json").is_file()
    True
    """
    return _PACKAGE_ZOO / "checkpoints"


def models_dir() -> Path:
    """The folder :func:`load`, :func:`card` and :func:`epochs` read by default.

    ``$BAYESACTIV_MODELS`` when set, else the shipped networks of :func:`checkpoints_dir`.

    Examples
    --------
    >>> import os
    >>> models_dir() == checkpoints_dir() or "BAYESACTIV_MODELS" in os.environ
    True
    """
    env = os.environ.get("BAYESACTIV_MODELS")
    if env:
        return Path(env).expanduser()
    return checkpoints_dir()


def default_train_dir() -> Path:
    """The folder :func:`train` writes into when given no ``out_dir``.

    ``$BAYESACTIV_MODELS`` when set (so that :func:`load` finds what was trained),
    else ``$XDG_DATA_HOME/bayesactiv/models``, with ``$XDG_DATA_HOME`` defaulting to
    ``~/.local/share``. Never a folder inside the installed package.

    Examples
    --------
    >>> import os
    >>> "BAYESACTIV_MODELS" in os.environ or default_train_dir().parts[-2:] == ("bayesactiv", "models")
    True
    """
    env = os.environ.get("BAYESACTIV_MODELS")
    if env:
        return Path(env).expanduser()
    data_home = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(data_home).expanduser() / "bayesactiv" / "models"


def _root(root: str | os.PathLike[str] | None) -> Path:
    return models_dir() if root is None else Path(root)


def _inside_package(path: Path) -> bool:
    resolved = path.expanduser().resolve()
    package = _PACKAGE_ZOO.parent
    return resolved == package or package in resolved.parents


def train_folder(
    name: str, out_dir: str | os.PathLike[str] | None = None, *, overwrite: bool = False
) -> Path:
    """The folder ``out_dir/<name>`` that :func:`train` would write, after its checks.

    :func:`train` makes these checks before it starts; a caller training several
    networks can make them all first.

    Parameters
    ----------
    name : str
        Network name, see :func:`names`.
    out_dir : path, optional
        Models folder (default :func:`default_train_dir`).
    overwrite : bool
        Accept a folder that already holds a trained network.

    Raises
    ------
    ArgumentError
        When ``out_dir`` lies inside the installed package (its shipped networks are
        the reference and must not be overwritten), or ``out_dir/<name>`` already
        holds a trained network (``card.json`` or ``epoch_*.pt``) and ``overwrite``
        is False.

    Examples
    --------
    >>> train_folder("digits-mlp", "/tmp/my-models").as_posix()
    '/tmp/my-models/digits-mlp'
    >>> train_folder("digits-mlp", checkpoints_dir())  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    bayesactiv.data.checks.ArgumentError: out_dir: ... is inside the installed bayesactiv package; ...
    """
    _recipe(name)
    if out_dir is not None and not isinstance(out_dir, (str, os.PathLike)):
        raise TypeError(f"out_dir: expected a path, got {type(out_dir).__name__}")
    root = default_train_dir() if out_dir is None else Path(out_dir).expanduser()
    if _inside_package(root):
        raise ArgumentError(
            f"out_dir: {root} is inside the installed bayesactiv package; its shipped "
            "networks are the reference: train into a folder of yours"
        )
    if not isinstance(overwrite, bool):
        raise TypeError(f"overwrite: expected True or False, got {type(overwrite).__name__}")
    folder = root / name
    holds_network = (folder / "card.json").exists() or any(folder.glob("epoch_*.pt"))
    if holds_network and not overwrite:
        raise ArgumentError(
            f"out_dir: {folder} already holds a trained {name}; pass overwrite=True "
            "(command line: --overwrite) to replace it, or choose another out_dir"
        )
    return folder


def hidden_layers(name: str) -> list[str]:
    """Module names whose outputs are the hidden-unit activations, in order.

    The names are those of ``load(name).named_modules()``; the last hidden layer
    comes last.

    Examples
    --------
    >>> hidden_layers("digits-cnn")
    ['relu_conv1', 'relu_conv2', 'relu_fc1']
    """
    return list(ARCHITECTURES[_recipe(name).architecture].hidden)


def last_hidden_layer(name: str) -> str:
    """Module name of the last hidden layer (the one seed 002 studies).

    Examples
    --------
    >>> last_hidden_layer("digits-densenet")
    'relu_fc1'
    """
    return hidden_layers(name)[-1]


# --------------------------------------------------------------------------- data


def _check_split(split: str) -> str:
    if split not in ("train", "test"):
        raise ValueError(f"split: expected 'train' or 'test', got {split!r}")
    return split


@cache
def _arrays(family: str) -> dict[str, np.ndarray]:
    """Features, labels and split indices of one family (read-only arrays)."""
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


def _family_of(name_or_family: str) -> tuple[str, Recipe | None]:
    if name_or_family in _FAMILIES:
        return name_or_family, None
    try:
        recipe = _recipe(name_or_family)
    except UnknownError:
        raise UnknownError(
            f"name_or_family: unknown network or data family {name_or_family!r}; "
            f"families: {', '.join(_FAMILIES)}; networks: {', '.join(RECIPES)}"
        ) from None
    return recipe.family, recipe


def _shuffled(labels: np.ndarray, label_seed: int) -> np.ndarray:
    """The training labels shuffled once (a permutation keeps the class sizes)."""
    return np.random.default_rng(label_seed).permutation(labels)


def split_indices(name_or_family: str, split: str = "test") -> np.ndarray:
    """Positions in the scikit-learn data set of the samples of a split, in order.

    Examples
    --------
    >>> split_indices("iris", "test")[:3].tolist()
    [73, 18, 118]
    """
    family, _ = _family_of(name_or_family)
    return _arrays(family)[_check_split(split)].copy()


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
    family, recipe = _family_of(name_or_family)
    split = _check_split(split)
    arrays = _arrays(family)
    idx = arrays[split]
    y = arrays["y"][idx]
    if recipe is not None and recipe.memorize and split == "train" and not true_labels:
        y = _shuffled(y, recipe.label_seed)
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
    arrays = _arrays("digits")
    idx = arrays[_check_split(split)]
    pos = np.asarray(indices)
    if pos.dtype.kind not in "iu":
        raise TypeError(f"indices: expected integers, got dtype {pos.dtype}")
    if pos.size and (pos.min() < -len(idx) or pos.max() >= len(idx)):
        raise IndexError(
            f"indices: out of range for the digits {split} split of {len(idx)} samples"
        )
    return arrays["images"][idx[pos]].copy()


# --------------------------------------------------------------------------- cards, loading


def _checkpoint_path(folder: Path, epoch: int) -> Path:
    return folder / f"epoch_{epoch:04d}.pt"


def card(name: str, *, root: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """The model card of a reference network.

    Parameters
    ----------
    name : str
        Network name.
    root : path, optional
        Models folder (default :func:`models_dir`).

    Examples
    --------
    >>> c = card("iris-mlp")
    >>> c["architecture"]["parameter_count"]
    2979
    """
    _recipe(name)
    path = _root(root) / name / "card.json"
    if not path.exists():
        raise FileNotFoundError(_no_card_message(name, path))
    return json.loads(path.read_text())


def _no_card_message(name: str, path: Path) -> str:
    if path.parent.parent == checkpoints_dir():
        return (
            f"{name}: no model card at {path}: this installation of bayesactiv lacks its "
            "shipped networks; reinstall it"
        )
    return (
        f"{name}: no model card at {path}; train it there with "
        f"bayesactiv.zoo.train({name!r}, out_dir=...) (or `bayesactiv train`), or load "
        "without root and with BAYESACTIV_MODELS unset to use the networks shipped with "
        "the package"
    )


def epochs(name: str, *, root: str | os.PathLike[str] | None = None) -> list[int]:
    """Epochs with a saved checkpoint (0 = initial weights), ascending.

    Examples
    --------
    >>> epochs("iris-mlp")[-1] == card("iris-mlp")["epochs"]
    True
    """
    return [c["epoch"] for c in card(name, root=root)["checkpoints"]]


def load(
    name: str, epoch: int | None = None, *, root: str | os.PathLike[str] | None = None
) -> nn.Module:
    """A reference network with the weights of one checkpoint, in eval mode.

    Parameters
    ----------
    name : str
        Network name, see :func:`names`.
    epoch : int, optional
        Checkpoint epoch (see :func:`epochs`); None loads the final weights.
    root : path, optional
        Models folder (default :func:`models_dir`).

    Returns
    -------
    torch.nn.Module
        In eval mode; its attribute ``bayesactiv_network`` holds ``name``, so that
        recordings name a zoo network the same way from Python and the command line.

    Examples
    --------
    >>> net = load("digits-cnn", epoch=0)
    >>> net.training, net.bayesactiv_network
    (False, 'digits-cnn')
    """
    recipe = _recipe(name)
    available = epochs(name, root=root)
    if epoch is None:
        epoch = available[-1]
    if isinstance(epoch, bool) or not isinstance(epoch, (int, np.integer)) or epoch not in available:
        raise UnknownError(
            f"epoch: {name} has no checkpoint at epoch {epoch!r}; available: {available}"
        )
    path = _checkpoint_path(_root(root) / name, int(epoch))
    if not path.exists():
        raise FileNotFoundError(f"{name}: checkpoint file {path} is missing")
    net = ARCHITECTURES[recipe.architecture]()
    net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    net.bayesactiv_network = name
    return net.eval()


# --------------------------------------------------------------------------- training


@torch.no_grad()
def _evaluate(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, Any]:
    was_training = net.training
    net.eval()
    logits = net(x)
    net.train(was_training)
    correct = int((logits.argmax(dim=1) == y).sum())
    return {
        "correct": correct,
        "n": len(y),
        "accuracy": correct / len(y),
        "loss": round(float(F.cross_entropy(logits, y)), 6),
    }


def _hidden_shapes(net: nn.Module, x: torch.Tensor, layers: list[str]) -> dict[str, list[int]]:
    shapes: dict[str, list[int]] = {}
    modules = dict(net.named_modules())
    handles = [
        modules[name].register_forward_hook(
            lambda _m, _i, out, name=name: shapes.__setitem__(name, list(out.shape[1:]))
        )
        for name in layers
    ]
    with torch.no_grad():
        net(x[:1])
    for h in handles:
        h.remove()
    return shapes


_DESCRIPTIONS = {
    "iris-mlp": "Seed 001's Iris network: 4-64-32-16-3, ReLU hidden layers, logits out.",
    "digits-mlp": "MLP 64-256-128-64-10 with ReLU hidden layers (input flattened).",
    "digits-cnn": (
        "CNN: conv 3x3 1->16 + ReLU (8x8), 2x2 max-pool, conv 3x3 16->32 + ReLU (4x4), "
        "flatten 512, dense 128 + ReLU, dense 10."
    ),
    "digits-densenet": (
        "DenseNet-style: stem conv 3x3 1->16 + ReLU; dense block of 2 layers (conv 3x3 + ReLU, "
        "growth 12, outputs concatenated: 40 maps at 8x8); transition conv 1x1 40->24 + ReLU, "
        "2x2 average pool; dense block of 2 layers (growth 12: 48 maps at 4x4); flatten 768, "
        "dense 128 + ReLU, dense 10. No batch normalisation."
    ),
}


def _data_card(recipe: Recipe, n_train: int, n_test: int) -> dict[str, Any]:
    if recipe.family == "iris":
        source = "sklearn.datasets.load_iris (150 samples, 4 features, 3 classes)"
        prep = "standardised with the mean and standard deviation of the training split"
        split = (
            f"sklearn.model_selection.train_test_split(test_size={TEST_SIZE}, "
            f"random_state={SPLIT_SEED})"
        )
    else:
        source = "sklearn.datasets.load_digits (1,797 8x8 images, 10 classes)"
        prep = "pixel values / 16 (range [0, 1]), shape (N, 1, 8, 8)"
        split = (
            f"sklearn.model_selection.train_test_split(test_size={TEST_SIZE}, "
            f"random_state={SPLIT_SEED}, stratify=y)"
        )
    if recipe.memorize:
        labels = (
            "training labels shuffled once: "
            f"numpy.random.default_rng({recipe.label_seed}).permutation(y_train); "
            "test labels are the true ones"
        )
    else:
        labels = "true labels"
    return {
        "source": source,
        "preprocessing": prep,
        "split": split,
        "split_seed": SPLIT_SEED,
        "n_train": n_train,
        "n_test": n_test,
        "labels": labels,
    }


def _save_atomic(obj: Any, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    if isinstance(obj, str):
        tmp.write_text(obj)
    else:
        torch.save(obj, tmp)
    os.replace(tmp, path)


def train(
    name: str,
    out_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
    *,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Retrain a reference network from its recipe and write its folder.

    Writes ``<out_dir>/<name>/epoch_NNNN.pt`` at every checkpoint epoch,
    ``card.json`` and ``README.md`` (the card rendered). Training runs in a hidden
    folder next to it and its files are moved into place only when it succeeded, so a
    failed or interrupted run leaves nothing behind. Training seeds torch with the
    recipe's seed, enables ``torch.use_deterministic_algorithms(True)`` and runs on
    one thread (the previous settings and the global RNG state are restored
    afterwards), so training twice on one machine gives the same weights bit for bit.
    Another CPU model may end with slightly different weights and accuracies; the
    shipped checkpoints (:func:`checkpoints_dir`) are the reference.

    Parameters
    ----------
    name : str
        Network name, see :func:`names`.
    out_dir : path, optional
        Models folder to write into (default :func:`default_train_dir`); never a
        folder inside the installed package.
    progress : bool
        Print one line per checkpoint to stderr.
    overwrite : bool
        Replace the card and checkpoints of a network already trained in
        ``<out_dir>/<name>`` (other files there are kept). Without it such a folder is
        refused before training starts.

    Returns
    -------
    dict
        The model card.

    Raises
    ------
    ArgumentError
        When ``out_dir`` is inside the package, or ``<out_dir>/<name>`` already holds
        a trained network and ``overwrite`` is False.
    RuntimeError
        When a memorizing network ends below 99 % training accuracy on its
        shuffled labels (the recipe needs more epochs on this machine); nothing is
        written then.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     c = train("iris-mlp", out_dir=d, progress=False)
    ...     c == card("iris-mlp", root=d)
    True
    >>> c["checkpoints"][-1]["test_accuracy"] >= 0.9
    True
    """
    folder = train_folder(name, out_dir, overwrite=overwrite)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}-", suffix=".partial", dir=folder.parent))
    try:
        info = _train_into(_recipe(name), staging, progress)
        _check_memorized(info)
        _save_atomic(json.dumps(info, indent=2) + "\n", staging / "card.json")
        _save_atomic(render_card(info), staging / "README.md")
        _move_into(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return info


def _move_into(staging: Path, folder: Path) -> None:
    """Move the trained files into ``folder``, the card last (it lists the checkpoints)."""
    folder.mkdir(exist_ok=True)
    files = sorted(staging.iterdir(), key=lambda p: p.name == "card.json")
    for path in files:
        os.replace(path, folder / path.name)


def _check_memorized(info: dict[str, Any]) -> None:
    last = info["checkpoints"][-1]
    if info["task"] == "memorize" and last["train_accuracy"] < MEMORIZE_TARGET:
        raise RuntimeError(
            f"{info['name']}: training accuracy on the shuffled labels is "
            f"{last['train_accuracy']:.4f} < {MEMORIZE_TARGET} after {info['epochs']} "
            "epochs; the recipe needs more epochs (nothing was written)"
        )


def _train_into(recipe: Recipe, folder: Path, progress: bool) -> dict[str, Any]:
    """Train ``recipe`` deterministically, saving its checkpoints in ``folder``; the card."""
    name = recipe.name
    x_train, y_train = dataset(name, "train")
    x_test, y_test = dataset(name, "test")
    n = len(y_train)
    batch = recipe.batch_size or n

    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    rng_state = torch.get_rng_state()
    start = time.perf_counter()
    try:
        torch.set_num_threads(1)
        torch.use_deterministic_algorithms(True)
        torch.manual_seed(recipe.seed)
        net = ARCHITECTURES[recipe.architecture]()
        order = torch.Generator().manual_seed(recipe.seed)
        optimizer = torch.optim.Adam(
            net.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay
        )
        checkpoints: list[dict[str, Any]] = []
        history: dict[str, list[float]] = {"epoch": [], "train_loss": [], "train_accuracy": []}
        first_fit: int | None = None

        def checkpoint(epoch: int) -> None:
            _save_atomic(net.state_dict(), _checkpoint_path(folder, epoch))
            tr = _evaluate(net, x_train, y_train)
            te = _evaluate(net, x_test, y_test)
            checkpoints.append(
                {
                    "epoch": epoch,
                    "file": _checkpoint_path(folder, epoch).name,
                    **{f"train_{k}": v for k, v in tr.items()},
                    **{f"test_{k}": v for k, v in te.items()},
                }
            )
            if progress:
                print(
                    f"{name} epoch {epoch:4d}: train {tr['accuracy']:.4f} "
                    f"test {te['accuracy']:.4f} ({time.perf_counter() - start:.1f} s)",
                    file=sys.stderr,
                )

        if 0 in recipe.checkpoints:
            checkpoint(0)
        net.train()
        for epoch in range(1, recipe.epochs + 1):
            perm = torch.randperm(n, generator=order)
            total = 0.0
            for lo in range(0, n, batch):
                idx = perm[lo : lo + batch]
                optimizer.zero_grad(set_to_none=True)
                loss = F.cross_entropy(net(x_train[idx]), y_train[idx])
                loss.backward()
                optimizer.step()
                total += float(loss.detach()) * len(idx)
            acc = _evaluate(net, x_train, y_train)["accuracy"]
            history["epoch"].append(epoch)
            history["train_loss"].append(round(total / n, 6))
            history["train_accuracy"].append(round(acc, 6))
            if first_fit is None and acc >= MEMORIZE_TARGET:
                first_fit = epoch
            if epoch in recipe.checkpoints:
                checkpoint(epoch)
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)
        torch.set_rng_state(rng_state)
    seconds = time.perf_counter() - start

    layers = list(ARCHITECTURES[recipe.architecture].hidden)
    assert relu_names(net) == layers, "hidden layer list out of sync with the architecture"
    return {
        "name": name,
        "family": recipe.family,
        "task": "memorize" if recipe.memorize else "generalize",
        "architecture": {
            "key": recipe.architecture,
            "class": f"{type(net).__module__}.{type(net).__qualname__}",
            "description": _DESCRIPTIONS[recipe.architecture],
            "parameter_count": parameter_count(net),
            "hidden_layers": layers,
            "last_hidden_layer": layers[-1],
            "hidden_shapes": _hidden_shapes(net, x_test, layers),
            "repr": repr(net),
        },
        "data": _data_card(recipe, n, len(y_test)),
        "label_shuffle_seed": recipe.label_seed,
        "seed": recipe.seed,
        "optimizer": {
            "name": "Adam",
            "lr": recipe.lr,
            "betas": list(optimizer.defaults["betas"]),
            "eps": optimizer.defaults["eps"],
            "weight_decay": recipe.weight_decay,
        },
        "loss": "cross-entropy on logits",
        "batch_size": recipe.batch_size,
        "epochs": recipe.epochs,
        "checkpoint_epochs": list(recipe.checkpoints),
        "checkpoints": checkpoints,
        "first_epoch_train_accuracy_ge_0.99": first_fit,
        "history": history,
        "determinism": (
            f"torch.manual_seed({recipe.seed}); mini-batch order from "
            f"torch.Generator().manual_seed({recipe.seed}); "
            "torch.use_deterministic_algorithms(True); torch.set_num_threads(1)"
        ),
        "notes": _notes(recipe),
        "training_seconds": round(seconds, 2),
        "versions": {
            "torch": torch.__version__,
            "numpy": np.__version__,
            "scikit-learn": _sklearn_version(),
            "python": platform.python_version(),
        },
        "machine": {
            "platform": platform.machine(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        },
    }


def _sklearn_version() -> str:
    import sklearn

    return sklearn.__version__


def _notes(recipe: Recipe) -> list[str]:
    notes = []
    if recipe.family == "iris":
        notes.append(
            "Differs from seed 001, which trains with MSE on one-hot targets and fits the "
            "scaler on all 150 samples: here cross-entropy on logits, scaler fitted on the "
            "training split only. Same split (test_size=0.2, random_state=42), same "
            "optimizer (Adam, lr 1e-3, full batch, 500 epochs)."
        )
    if recipe.memorize:
        notes.append(
            "Memorizing network (seed 002): trained on training labels shuffled once, so its "
            "test accuracy should be near chance (0.10)."
        )
    notes.append(
        "Accuracies are measured in eval mode on the whole split after the epoch's last "
        "step; the history's train_loss is the mean mini-batch loss during the epoch."
    )
    return notes


def render_card(info: dict[str, Any]) -> str:
    """Render a model card (as returned by :func:`card`) as Markdown.

    Examples
    --------
    >>> render_card(card("iris-mlp")).splitlines()[0]
    '# iris-mlp'
    """
    arch = info["architecture"]
    data = info["data"]
    opt = info["optimizer"]
    lines = [
        f"# {info['name']}",
        "",
        f"Reference network of `bayesactiv.zoo` ({info['task']}; family `{info['family']}`).",
        "Load it with `bayesactiv.zoo.load(" + repr(info["name"]) + ", epoch=None)`.",
        "",
        "## Architecture",
        "",
        arch["description"],
        "",
        f"- class: `{arch['class']}`",
        f"- parameters: {arch['parameter_count']:,}",
        "- hidden layers (module names, last hidden layer last): "
        + ", ".join(f"`{n}` {tuple(arch['hidden_shapes'][n])}" for n in arch["hidden_layers"]),
        "",
        "```",
        arch["repr"],
        "```",
        "",
        "## Data",
        "",
        f"- source: {data['source']}",
        f"- preprocessing: {data['preprocessing']}",
        f"- split: `{data['split']}` -> {data['n_train']} train / {data['n_test']} test",
        f"- labels: {data['labels']}",
        "",
        "## Training",
        "",
        f"- seed: {info['seed']}; label shuffling seed: {info['label_shuffle_seed']}",
        (
            f"- optimizer: {opt['name']} (lr {opt['lr']}, betas {tuple(opt['betas'])}, "
            f"eps {opt['eps']}, weight decay {opt['weight_decay']})"
        ),
        f"- loss: {info['loss']}",
        f"- batch size: {info['batch_size'] or 'full batch'}; epochs: {info['epochs']}",
        f"- checkpoint epochs: {', '.join(map(str, info['checkpoint_epochs']))}",
        (
            "- first epoch with training accuracy >= 0.99: "
            f"{info['first_epoch_train_accuracy_ge_0.99']}"
        ),
        f"- determinism: {info['determinism']}",
        f"- training time: {info['training_seconds']} s on one CPU thread",
        "- versions: " + ", ".join(f"{k} {v}" for k, v in info["versions"].items()),
        "",
        "## Accuracy at each checkpoint",
        "",
        "| epoch | file | train correct | train accuracy | test correct | test accuracy |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    for c in info["checkpoints"]:
        lines.append(
            f"| {c['epoch']} | `{c['file']}` | {c['train_correct']}/{c['train_n']} | "
            f"{c['train_accuracy']:.4f} | {c['test_correct']}/{c['test_n']} | "
            f"{c['test_accuracy']:.4f} |"
        )
    lines += ["", "## Notes", ""] + [f"- {n}" for n in info["notes"]] + [""]
    return "\n".join(lines)


def train_all(
    out_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
    *,
    overwrite: bool = False,
) -> dict[str, dict[str, Any]]:
    """Retrain every reference network (see :func:`train`).

    Every target folder is checked before the first network trains.

    Returns
    -------
    dict
        Network name -> model card.

    Examples
    --------
    Not executed here: retraining all seven networks takes minutes (one of them, as in
    :func:`train`'s example, takes seconds).

    >>> list(RECIPES)[:3]
    ['iris-mlp', 'digits-mlp', 'digits-cnn']
    >>> import tempfile
    >>> cards = train_all(out_dir=tempfile.mkdtemp(), progress=False)  # doctest: +SKIP
    >>> sorted(cards) == sorted(RECIPES)  # doctest: +SKIP
    True
    """
    for name in RECIPES:
        train_folder(name, out_dir, overwrite=overwrite)
    return {
        name: train(name, out_dir=out_dir, progress=progress, overwrite=overwrite)
        for name in RECIPES
    }


def catalog(*, root: str | os.PathLike[str] | None = None) -> list[dict[str, Any]]:
    """One summary row per reference network (for listings such as ``bayesactiv train --list``).

    Parameters
    ----------
    root : path, optional
        Models folder whose cards give the accuracies (default :func:`models_dir`);
        a network without a card there gets None accuracies.

    Returns
    -------
    list of dict
        Keys ``name``, ``family``, ``task`` (``"generalize"`` or ``"memorize"``),
        ``architecture``, ``epochs``, ``checkpoint_epochs``, ``train_accuracy`` and
        ``test_accuracy`` (at the final epoch).

    Examples
    --------
    >>> row = catalog()[1]
    >>> row["name"], row["task"], row["epochs"], row["test_accuracy"] > 0.9
    ('digits-mlp', 'generalize', 40, True)
    """
    rows = []
    for name, recipe in RECIPES.items():
        try:
            final = card(name, root=root)["checkpoints"][-1]
        except FileNotFoundError:
            final = {}
        rows.append(
            {
                "name": name,
                "family": recipe.family,
                "task": "memorize" if recipe.memorize else "generalize",
                "architecture": recipe.architecture,
                "epochs": recipe.epochs,
                "checkpoint_epochs": list(recipe.checkpoints),
                "train_accuracy": final.get("train_accuracy"),
                "test_accuracy": final.get("test_accuracy"),
            }
        )
    return rows


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
    bayesactiv.zoo.UnknownError: name: unknown data set 'svhn'; available: mnist, fashionmnist, cifar10
    """
    key = name.lower().replace("-", "").replace("_", "") if isinstance(name, str) else name
    if key not in _TORCHVISION:
        raise UnknownError(f"name: unknown data set {name!r}; available: mnist, fashionmnist, cifar10")
    split = _check_split(split)
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

"""Where the trained reference networks live, and reading them: cards, epochs, weights.

Examples
--------
>>> from bayesactiv.zoo.loading import load
>>> load("iris-mlp").bayesactiv_network
'iris-mlp'
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from bayesactiv.zoo.architectures import ARCHITECTURES
from bayesactiv.zoo.recipes import RECIPES, UnknownError, recipe

__all__ = [
    "PACKAGE_ZOO",
    "card",
    "catalog",
    "checkpoint_path",
    "checkpoints_dir",
    "epochs",
    "hidden_layers",
    "last_hidden_layer",
    "load",
    "models_dir",
    "models_root",
]

#: the folder of this package (``bayesactiv/zoo``)
PACKAGE_ZOO = Path(__file__).resolve().parent


def checkpoints_dir() -> Path:
    """The package's folder of shipped reference networks (read-only for :func:`train`).

    Examples
    --------
    >>> checkpoints_dir().relative_to(Path(__file__).parent).as_posix()
    'checkpoints'
    >>> (checkpoints_dir() / "digits-mlp" / "card.json").is_file()
    True
    """
    return PACKAGE_ZOO / "checkpoints"


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


def models_root(root: str | os.PathLike[str] | None) -> Path:
    """``root`` as a path, or :func:`models_dir` when it is None.

    Examples
    --------
    >>> models_root("/tmp/m").as_posix()
    '/tmp/m'
    """
    return models_dir() if root is None else Path(root)


def checkpoint_path(folder: Path, epoch: int) -> Path:
    """The file of the checkpoint at ``epoch`` in a network's folder.

    Examples
    --------
    >>> checkpoint_path(Path("m"), 7).as_posix()
    'm/epoch_0007.pt'
    """
    return folder / f"epoch_{epoch:04d}.pt"


def hidden_layers(name: str) -> list[str]:
    """Module names whose outputs are the hidden-unit activations, in order.

    The names are those of ``load(name).named_modules()``; the last hidden layer
    comes last.

    Examples
    --------
    >>> hidden_layers("digits-cnn")
    ['relu_conv1', 'relu_conv2', 'relu_fc1']
    """
    return list(ARCHITECTURES[recipe(name).architecture].hidden)


def last_hidden_layer(name: str) -> str:
    """Module name of the last hidden layer (the one seed 002 studies).

    Examples
    --------
    >>> last_hidden_layer("digits-densenet")
    'relu_fc1'
    """
    return hidden_layers(name)[-1]


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
    recipe(name)
    path = models_root(root) / name / "card.json"
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
    found = recipe(name)
    available = epochs(name, root=root)
    if epoch is None:
        epoch = available[-1]
    if isinstance(epoch, bool) or not isinstance(epoch, (int, np.integer)) or epoch not in available:
        raise UnknownError(
            f"epoch: {name} has no checkpoint at epoch {epoch!r}; available: {available}"
        )
    path = checkpoint_path(models_root(root) / name, int(epoch))
    if not path.exists():
        raise FileNotFoundError(f"{name}: checkpoint file {path} is missing")
    net = ARCHITECTURES[found.architecture]()
    net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    net.bayesactiv_network = name
    return net.eval()


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
    for name, entry in RECIPES.items():
        try:
            final = card(name, root=root)["checkpoints"][-1]
        except FileNotFoundError:
            final = {}
        rows.append(
            {
                "name": name,
                "family": entry.family,
                "task": entry.task,
                "architecture": entry.architecture,
                "epochs": entry.epochs,
                "checkpoint_epochs": list(entry.checkpoints),
                "train_accuracy": final.get("train_accuracy"),
                "test_accuracy": final.get("test_accuracy"),
            }
        )
    return rows

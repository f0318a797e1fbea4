"""Retraining the reference networks from their recipes, deterministically, into a user folder.

Training runs in a hidden staging folder whose files are moved into place only when
it succeeded. Its steps: :func:`deterministic_torch` (seeded, one thread,
deterministic algorithms, the previous settings restored), one checkpoint row per
saved epoch (:class:`CheckpointLog`), the epochs (:func:`fit_epochs`), then the card
(:func:`bayesactiv.zoo.cards.training_card`).

Examples
--------
>>> from bayesactiv.zoo.training import train_folder
>>> train_folder("iris-mlp", "/tmp/my-models").name
'iris-mlp'
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from bayesactiv.data.checks import ArgumentError
from bayesactiv.zoo.architectures import ARCHITECTURES, relu_names
from bayesactiv.zoo.cards import architecture_card, data_card, render_card, training_card
from bayesactiv.zoo.data import dataset
from bayesactiv.zoo.loading import PACKAGE_ZOO, checkpoint_path
from bayesactiv.zoo.recipes import MEMORIZE_TARGET, RECIPES, Recipe, recipe

__all__ = [
    "CheckpointLog",
    "default_train_dir",
    "deterministic_torch",
    "evaluate",
    "fit_epochs",
    "save_atomic",
    "train",
    "train_all",
    "train_folder",
]


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


def _inside_package(path: Path) -> bool:
    resolved = path.expanduser().resolve()
    package = PACKAGE_ZOO.parent
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
    >>> from bayesactiv.zoo.loading import checkpoints_dir
    >>> train_folder("digits-mlp", checkpoints_dir())  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    bayesactiv.data.checks.ArgumentError: out_dir: ... is inside the installed bayesactiv package; ...
    """
    recipe(name)
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


@torch.no_grad()
def evaluate(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, Any]:
    """Correct count, size, accuracy and loss of ``net`` on ``(x, y)``, in eval mode.

    The network's training mode is restored afterwards.

    Examples
    --------
    >>> from bayesactiv.zoo.architectures import IrisMLP
    >>> sorted(evaluate(IrisMLP(), torch.zeros(3, 4), torch.zeros(3, dtype=torch.int64)))
    ['accuracy', 'correct', 'loss', 'n']
    """
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


def save_atomic(obj: Any, path: Path) -> None:
    """Write text (a str) or a torch object to a temporary file renamed onto ``path``.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     save_atomic("hi", Path(d) / "a.txt")
    ...     (Path(d) / "a.txt").read_text()
    'hi'
    """
    tmp = path.with_name(path.name + ".tmp")
    if isinstance(obj, str):
        tmp.write_text(obj)
    else:
        torch.save(obj, tmp)
    os.replace(tmp, path)


@contextmanager
def deterministic_torch(seed: int) -> Iterator[None]:
    """Seed torch, use deterministic algorithms and one thread; restore all of it after.

    The global RNG state, the thread count and the determinism settings are those of
    before the block when it ends, even by an exception.

    Examples
    --------
    >>> threads = torch.get_num_threads()
    >>> with deterministic_torch(0):
    ...     torch.get_num_threads()
    1
    >>> torch.get_num_threads() == threads
    True
    """
    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    rng_state = torch.get_rng_state()
    try:
        torch.set_num_threads(1)
        torch.use_deterministic_algorithms(True)
        torch.manual_seed(seed)
        yield
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)
        torch.set_rng_state(rng_state)


class CheckpointLog:
    """Saves a network's weights at checkpoint epochs and keeps one card row per checkpoint.

    Parameters
    ----------
    name : str
        Network name (for the progress lines).
    folder : path
        Where the ``epoch_NNNN.pt`` files go.
    train, test : tuple of torch.Tensor
        ``(x, y)`` of the training and test splits, evaluated at every checkpoint.
    progress : bool
        Print one line per checkpoint to stderr.
    start : float
        ``time.perf_counter()`` when training started (for the progress lines).

    Examples
    --------
    >>> import tempfile
    >>> from bayesactiv.zoo.architectures import IrisMLP
    >>> x, y = torch.zeros(2, 4), torch.zeros(2, dtype=torch.int64)
    >>> with tempfile.TemporaryDirectory() as d:
    ...     log = CheckpointLog("iris-mlp", Path(d), (x, y), (x, y), progress=False, start=0.0)
    ...     log.save(IrisMLP(), 0)
    ...     log.rows[0]["file"], log.rows[0]["test_n"]
    ('epoch_0000.pt', 2)
    """

    def __init__(
        self,
        name: str,
        folder: Path,
        train: tuple[torch.Tensor, torch.Tensor],
        test: tuple[torch.Tensor, torch.Tensor],
        *,
        progress: bool,
        start: float,
    ) -> None:
        self.name, self.folder, self.train, self.test = name, folder, train, test
        self.progress, self.start = progress, start
        self.rows: list[dict[str, Any]] = []

    def save(self, net: nn.Module, epoch: int) -> None:
        """Save ``net``'s weights at ``epoch`` and append its row of accuracies."""
        path = checkpoint_path(self.folder, epoch)
        save_atomic(net.state_dict(), path)
        tr = evaluate(net, *self.train)
        te = evaluate(net, *self.test)
        self.rows.append(
            {
                "epoch": epoch,
                "file": path.name,
                **{f"train_{k}": v for k, v in tr.items()},
                **{f"test_{k}": v for k, v in te.items()},
            }
        )
        if self.progress:
            print(
                f"{self.name} epoch {epoch:4d}: train {tr['accuracy']:.4f} "
                f"test {te['accuracy']:.4f} ({time.perf_counter() - self.start:.1f} s)",
                file=sys.stderr,
            )


def _one_epoch(
    net: nn.Module,
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    perm: torch.Tensor,
    batch: int,
) -> float:
    """One pass over ``(x, y)`` in the order ``perm``; the summed loss times batch sizes."""
    total = 0.0
    for lo in range(0, len(y), batch):
        idx = perm[lo : lo + batch]
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(net(x[idx]), y[idx])
        loss.backward()
        optimizer.step()
        total += float(loss.detach()) * len(idx)
    return total


def fit_epochs(
    recipe: Recipe,
    net: nn.Module,
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    log: CheckpointLog,
) -> tuple[dict[str, list[float]], int | None]:
    """Train ``net`` for the recipe's epochs, saving the checkpoint epochs into ``log``.

    The mini-batch order comes from ``torch.Generator().manual_seed(recipe.seed)``.

    Returns
    -------
    history : dict
        ``epoch``, ``train_loss`` (mean mini-batch loss) and ``train_accuracy`` per epoch.
    first_fit : int or None
        The first epoch with training accuracy >= 0.99.

    Examples
    --------
    >>> import dataclasses, tempfile
    >>> from bayesactiv.zoo.architectures import IrisMLP
    >>> from bayesactiv.zoo.data import dataset
    >>> r = dataclasses.replace(RECIPES["iris-mlp"], epochs=2, checkpoints=(2,))
    >>> x, y = dataset("iris", "train")
    >>> net = IrisMLP()
    >>> with tempfile.TemporaryDirectory() as d:
    ...     log = CheckpointLog("iris-mlp", Path(d), (x, y), (x, y), progress=False, start=0.0)
    ...     history, first_fit = fit_epochs(r, net, torch.optim.Adam(net.parameters()), x, y, log)
    >>> history["epoch"], [row["epoch"] for row in log.rows]
    ([1, 2], [2])
    """
    n = len(y)
    batch = recipe.batch_size or n
    order = torch.Generator().manual_seed(recipe.seed)
    history: dict[str, list[float]] = {"epoch": [], "train_loss": [], "train_accuracy": []}
    first_fit: int | None = None
    net.train()
    for epoch in range(1, recipe.epochs + 1):
        total = _one_epoch(net, optimizer, x, y, torch.randperm(n, generator=order), batch)
        acc = evaluate(net, x, y)["accuracy"]
        history["epoch"].append(epoch)
        history["train_loss"].append(round(total / n, 6))
        history["train_accuracy"].append(round(acc, 6))
        if first_fit is None and acc >= MEMORIZE_TARGET:
            first_fit = epoch
        if epoch in recipe.checkpoints:
            log.save(net, epoch)
    return history, first_fit


def _train_into(recipe: Recipe, folder: Path, progress: bool) -> dict[str, Any]:
    """Train ``recipe`` deterministically, saving its checkpoints in ``folder``; the card."""
    x_train, y_train = dataset(recipe.name, "train")
    x_test, y_test = dataset(recipe.name, "test")
    start = time.perf_counter()
    with deterministic_torch(recipe.seed):
        net = ARCHITECTURES[recipe.architecture]()
        optimizer = torch.optim.Adam(
            net.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay
        )
        log = CheckpointLog(recipe.name, folder, (x_train, y_train), (x_test, y_test),
                            progress=progress, start=start)
        if 0 in recipe.checkpoints:
            log.save(net, 0)
        history, first_fit = fit_epochs(recipe, net, optimizer, x_train, y_train, log)
    seconds = time.perf_counter() - start

    layers = list(ARCHITECTURES[recipe.architecture].hidden)
    assert relu_names(net) == layers, "hidden layer list out of sync with the architecture"
    return training_card(
        recipe,
        net,
        optimizer,
        architecture=architecture_card(recipe, net, x_test, layers),
        data=data_card(recipe, len(y_train), len(y_test)),
        checkpoints=log.rows,
        history=history,
        first_fit=first_fit,
        seconds=seconds,
    )


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
    >>> from bayesactiv.zoo.loading import card as load_card
    >>> with tempfile.TemporaryDirectory() as d:
    ...     c = train("iris-mlp", out_dir=d, progress=False)
    ...     c == load_card("iris-mlp", root=d)
    True
    >>> c["checkpoints"][-1]["test_accuracy"] >= 0.9
    True
    """
    folder = train_folder(name, out_dir, overwrite=overwrite)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}-", suffix=".partial", dir=folder.parent))
    try:
        info = _train_into(recipe(name), staging, progress)
        _check_memorized(info)
        save_atomic(json.dumps(info, indent=2) + "\n", staging / "card.json")
        save_atomic(render_card(info), staging / "README.md")
        _move_into(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return info


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

"""The training recipes of the reference networks and the names they are known by.

Examples
--------
>>> from bayesactiv.zoo.recipes import RECIPES, recipe
>>> recipe("iris-mlp").epochs, len(RECIPES)
(500, 7)
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "FAMILIES",
    "MEMORIZE_TARGET",
    "RECIPES",
    "SPLIT_SEED",
    "TEST_SIZE",
    "Recipe",
    "UnknownError",
    "names",
    "recipe",
]

#: ``train_test_split`` arguments shared by every network (as in seed 001)
SPLIT_SEED = 42
TEST_SIZE = 0.2
#: the training accuracy on shuffled labels a memorizing network must reach
MEMORIZE_TARGET = 0.99
#: the data families the networks train on
FAMILIES = ("iris", "digits")


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

    @property
    def task(self) -> str:
        """``"memorize"`` or ``"generalize"``.

        Examples
        --------
        >>> RECIPES["digits-cnn"].task
        'generalize'
        """
        return "memorize" if self.memorize else "generalize"


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


def names() -> list[str]:
    """Names of the reference networks.

    Examples
    --------
    >>> "digits-cnn-memorize" in names()
    True
    """
    return list(RECIPES)


def recipe(name: str) -> Recipe:
    """The recipe of a reference network (looked up in :data:`RECIPES` at each call).

    Raises
    ------
    UnknownError
        For a name that is not in :data:`RECIPES`; the message lists the known ones.

    Examples
    --------
    >>> recipe("digits-cnn").architecture
    'digits-cnn'
    >>> recipe("resnet")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    bayesactiv.zoo.recipes.UnknownError: name: unknown reference network 'resnet'; available: ...
    """
    if not isinstance(name, str) or name not in RECIPES:
        raise UnknownError(
            f"name: unknown reference network {name!r}; available: {', '.join(RECIPES)}"
        )
    return RECIPES[name]

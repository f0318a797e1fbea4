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

One module per idea: :mod:`~bayesactiv.zoo.recipes` (recipes and names),
:mod:`~bayesactiv.zoo.data` (data sets and splits), :mod:`~bayesactiv.zoo.loading`
(where the networks live; cards, epochs, weights), :mod:`~bayesactiv.zoo.cards`
(model-card contents and Markdown), :mod:`~bayesactiv.zoo.training` (deterministic
retraining), :mod:`~bayesactiv.zoo.architectures` (the network classes) and
:mod:`~bayesactiv.zoo.text` (real sentences shipped with CPython, and the pretrained
MiniLM-L6 transformer of the ``transformer`` extra: :func:`sentences`,
:func:`load_minilm`, :data:`MINILM_LAYERS`).

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

from bayesactiv.zoo.cards import render_card
from bayesactiv.zoo.data import dataset, digit_images, split_indices, torchvision_dataset
from bayesactiv.zoo.loading import (
    card,
    catalog,
    checkpoints_dir,
    epochs,
    hidden_layers,
    last_hidden_layer,
    load,
    models_dir,
)
from bayesactiv.zoo.recipes import (  # noqa: F401 - module constants, as before the split
    MEMORIZE_TARGET,
    RECIPES,
    SPLIT_SEED,
    TEST_SIZE,
    Recipe,
    UnknownError,
    names,
)
from bayesactiv.zoo.text import MINILM_LAYERS, load_minilm, sentences
from bayesactiv.zoo.training import default_train_dir, train, train_all, train_folder

__all__ = [
    "MINILM_LAYERS",
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
    "load_minilm",
    "models_dir",
    "names",
    "render_card",
    "sentences",
    "split_indices",
    "torchvision_dataset",
    "train",
    "train_all",
    "train_folder",
]

"""Model cards: what a trained reference network's ``card.json`` holds, and its Markdown.

Examples
--------
>>> from bayesactiv.zoo.cards import render_card
>>> from bayesactiv.zoo.loading import card
>>> render_card(card("digits-mlp")).splitlines()[0]
'# digits-mlp'
"""

from __future__ import annotations

import platform
from typing import Any

import numpy as np
import torch
from torch import nn

from bayesactiv.zoo.architectures import parameter_count
from bayesactiv.zoo.recipes import SPLIT_SEED, TEST_SIZE, Recipe

__all__ = [
    "DESCRIPTIONS",
    "architecture_card",
    "data_card",
    "hidden_shapes",
    "notes",
    "render_card",
    "training_card",
]

#: architecture key -> one paragraph of the model card
DESCRIPTIONS = {
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


def hidden_shapes(net: nn.Module, x: torch.Tensor, layers: list[str]) -> dict[str, list[int]]:
    """Per-sample output shape of each named layer, from one forward pass on ``x[:1]``.

    Examples
    --------
    >>> from bayesactiv.zoo.architectures import DigitsCNN
    >>> hidden_shapes(DigitsCNN(), torch.zeros(1, 1, 8, 8), ["relu_conv2"])
    {'relu_conv2': [32, 4, 4]}
    """
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


def architecture_card(
    recipe: Recipe, net: nn.Module, x: torch.Tensor, layers: list[str]
) -> dict[str, Any]:
    """The card's ``architecture`` section for a network of ``recipe``.

    Examples
    --------
    >>> from bayesactiv.zoo.architectures import IrisMLP
    >>> from bayesactiv.zoo.recipes import RECIPES
    >>> arch = architecture_card(RECIPES["iris-mlp"], IrisMLP(), torch.zeros(1, 4), ["relu3"])
    >>> arch["parameter_count"], arch["hidden_shapes"]
    (2979, {'relu3': [16]})
    """
    return {
        "key": recipe.architecture,
        "class": f"{type(net).__module__}.{type(net).__qualname__}",
        "description": DESCRIPTIONS[recipe.architecture],
        "parameter_count": parameter_count(net),
        "hidden_layers": layers,
        "last_hidden_layer": layers[-1],
        "hidden_shapes": hidden_shapes(net, x, layers),
        "repr": repr(net),
    }


def data_card(recipe: Recipe, n_train: int, n_test: int) -> dict[str, Any]:
    """The card's ``data`` section: source, preprocessing, split and labels.

    Examples
    --------
    >>> from bayesactiv.zoo.recipes import RECIPES
    >>> data_card(RECIPES["iris-mlp"], 120, 30)["split_seed"]
    42
    """
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


def _sklearn_version() -> str:
    import sklearn

    return sklearn.__version__


def notes(recipe: Recipe) -> list[str]:
    """The card's notes on how ``recipe`` differs from the seeds and how accuracies are measured.

    Examples
    --------
    >>> from bayesactiv.zoo.recipes import RECIPES
    >>> len(notes(RECIPES["digits-cnn"])), len(notes(RECIPES["digits-cnn-memorize"]))
    (1, 2)
    """
    found = []
    if recipe.family == "iris":
        found.append(
            "Differs from seed 001, which trains with MSE on one-hot targets and fits the "
            "scaler on all 150 samples: here cross-entropy on logits, scaler fitted on the "
            "training split only. Same split (test_size=0.2, random_state=42), same "
            "optimizer (Adam, lr 1e-3, full batch, 500 epochs)."
        )
    if recipe.memorize:
        found.append(
            "Memorizing network (seed 002): trained on training labels shuffled once, so its "
            "test accuracy should be near chance (0.10)."
        )
    found.append(
        "Accuracies are measured in eval mode on the whole split after the epoch's last "
        "step; the history's train_loss is the mean mini-batch loss during the epoch."
    )
    return found


def training_card(
    recipe: Recipe,
    net: nn.Module,
    optimizer: torch.optim.Optimizer,
    *,
    architecture: dict[str, Any],
    data: dict[str, Any],
    checkpoints: list[dict[str, Any]],
    history: dict[str, list[float]],
    first_fit: int | None,
    seconds: float,
) -> dict[str, Any]:
    """The model card of a network trained from ``recipe`` (written as ``card.json``).

    ``architecture`` and ``data`` are the sections of :func:`architecture_card` and
    :func:`data_card`; ``checkpoints`` one row per saved epoch; ``history`` the
    per-epoch loss and accuracy; ``first_fit`` the first epoch at 99 % training
    accuracy (or None); ``seconds`` the training time.

    Examples
    --------
    >>> from bayesactiv.zoo.architectures import IrisMLP
    >>> from bayesactiv.zoo.recipes import RECIPES
    >>> r, net = RECIPES["iris-mlp"], IrisMLP()
    >>> c = training_card(r, net, torch.optim.Adam(net.parameters()), architecture={},
    ...                   data={}, checkpoints=[], history={}, first_fit=None, seconds=1.0)
    >>> c["task"], c["optimizer"]["betas"]
    ('generalize', [0.9, 0.999])
    """
    return {
        "name": recipe.name,
        "family": recipe.family,
        "task": recipe.task,
        "architecture": architecture,
        "data": data,
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
        "notes": notes(recipe),
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


def render_card(info: dict[str, Any]) -> str:
    """Render a model card (as returned by :func:`bayesactiv.zoo.card`) as Markdown.

    Examples
    --------
    >>> from bayesactiv.zoo.loading import card
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

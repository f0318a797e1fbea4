"""Tests of bayesactiv.zoo: the reference networks, their cards, data and retraining."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from bayesactiv import zoo
from bayesactiv.networks import ARCHITECTURES, parameter_count, relu_names

NAMES = zoo.names()
CHECKPOINTS = [(name, epoch) for name in NAMES for epoch in zoo.epochs(name)]
MEMORIZE = [n for n in NAMES if n.endswith("-memorize")]
GENERALIZE = [n for n in NAMES if not n.endswith("-memorize")]


@torch.no_grad()
def _correct(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> int:
    return int((net(x).argmax(dim=1) == y).sum())


def _same_environment(card: dict) -> bool:
    return (
        card["versions"]["torch"] == torch.__version__
        and card["machine"]["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    )


# ----------------------------------------------------------------------------- names, layers


def test_names_and_families():
    assert NAMES == [
        "iris-mlp",
        "digits-mlp",
        "digits-cnn",
        "digits-densenet",
        "digits-mlp-memorize",
        "digits-cnn-memorize",
        "digits-densenet-memorize",
    ]
    for name in MEMORIZE:
        assert zoo.RECIPES[name].memorize
        base = name.removesuffix("-memorize")
        assert zoo.RECIPES[name].architecture == zoo.RECIPES[base].architecture
        assert not zoo.RECIPES[base].memorize


@pytest.mark.parametrize("name", NAMES)
def test_hidden_layers_are_the_named_relus(name):
    net = zoo.load(name)
    layers = zoo.hidden_layers(name)
    assert layers == relu_names(net)
    assert zoo.last_hidden_layer(name) == layers[-1]
    modules = dict(net.named_modules())
    assert all(isinstance(modules[layer], torch.nn.ReLU) for layer in layers)
    # the last hidden layer feeds the output layer: its width is the output layer's input
    out_layer = list(net.children())[-1]
    x, _ = zoo.dataset(name, "test")
    seen = {}
    handle = modules[layers[-1]].register_forward_hook(lambda m, i, o: seen.update(o=o))
    with torch.no_grad():
        net(x[:3])
    handle.remove()
    assert seen["o"].shape == (3, out_layer.in_features)


# ----------------------------------------------------------------------------- checkpoints


@pytest.mark.parametrize(("name", "epoch"), CHECKPOINTS)
def test_checkpoint_accuracy_matches_card(name, epoch):
    net = zoo.load(name, epoch=epoch)
    assert not net.training
    entry = next(c for c in zoo.card(name)["checkpoints"] if c["epoch"] == epoch)
    for split in ("train", "test"):
        x, y = zoo.dataset(name, split)
        correct = _correct(net, x, y)
        assert correct == entry[f"{split}_correct"], (split, correct)
        assert entry[f"{split}_n"] == len(y)
        assert entry[f"{split}_accuracy"] == correct / len(y)


@pytest.mark.parametrize("name", NAMES)
def test_card_contents(name):
    card = zoo.card(name)
    recipe = zoo.RECIPES[name]
    folder = zoo.models_dir() / name
    assert card["name"] == name
    assert card["architecture"]["parameter_count"] == parameter_count(
        ARCHITECTURES[recipe.architecture]()
    )
    assert card["architecture"]["hidden_layers"] == zoo.hidden_layers(name)
    assert card["epochs"] == recipe.epochs and card["seed"] == recipe.seed
    assert card["label_shuffle_seed"] == recipe.label_seed
    assert card["checkpoint_epochs"] == list(recipe.checkpoints) == zoo.epochs(name)
    assert zoo.epochs(name)[-1] == recipe.epochs
    assert 5 <= len(zoo.epochs(name)) <= 7
    assert card["optimizer"]["name"] == "Adam" and card["optimizer"]["lr"] == recipe.lr
    assert card["batch_size"] == recipe.batch_size
    assert card["versions"]["torch"]
    files = sorted(p.name for p in folder.glob("epoch_*.pt"))
    assert files == [f"epoch_{e:04d}.pt" for e in zoo.epochs(name)]
    readme = (folder / "README.md").read_text()
    assert readme == zoo.render_card(card)
    last = card["checkpoints"][-1]
    assert f"{last['test_correct']}/{last['test_n']}" in readme
    split = card["data"]
    n_total = 150 if recipe.family == "iris" else 1797
    assert split["n_train"] + split["n_test"] == n_total
    assert split["n_test"] == int(np.ceil(0.2 * n_total))


def test_load_default_is_final_epoch():
    final = zoo.load("digits-mlp")
    last = zoo.load("digits-mlp", epoch=zoo.epochs("digits-mlp")[-1])
    for (k, a), (_, b) in zip(final.state_dict().items(), last.state_dict().items(), strict=True):
        assert torch.equal(a, b), k
    first = zoo.load("digits-mlp", epoch=0)
    assert not torch.equal(first.fc1.weight, final.fc1.weight)


def test_models_folder_is_small():
    size = sum(p.stat().st_size for p in zoo.models_dir().rglob("*") if p.is_file())
    assert size < 15 * 2**20, size


# ----------------------------------------------------------------------------- what was learnt


@pytest.mark.parametrize("name", GENERALIZE)
def test_generalizing_networks_learn(name):
    last = zoo.card(name)["checkpoints"][-1]
    assert last["test_accuracy"] >= 0.9
    assert zoo.card(name)["checkpoints"][0]["test_accuracy"] < 0.5  # epoch 0 is untrained


@pytest.mark.parametrize("name", MEMORIZE)
def test_memorizing_networks_memorize(name):
    net = zoo.load(name)
    x, y_shuffled = zoo.dataset(name, "train")
    _, y_true = zoo.dataset(name, "train", true_labels=True)
    n = len(y_true)
    assert _correct(net, x, y_shuffled) / n >= zoo.MEMORIZE_TARGET
    # chance is 0.1; with 360 test images 0.18 is 5 standard deviations above it
    xt, yt = zoo.dataset(name, "test")
    assert _correct(net, xt, yt) / len(yt) < 0.18
    # fitting the shuffled labels means missing the true ones (about 10 % agree by chance)
    agree = float((y_shuffled == y_true).float().mean())
    assert _correct(net, x, y_true) / n < agree + 0.08


# ----------------------------------------------------------------------------- data


def test_digits_split_and_preprocessing():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    images, labels = load_digits(return_X_y=True)
    xtr, ytr = zoo.dataset("digits", "train")
    xte, yte = zoo.dataset("digits", "test")
    assert xtr.shape == (1437, 1, 8, 8) and xte.shape == (360, 1, 8, 8)
    assert xtr.dtype == torch.float32 and ytr.dtype == torch.int64
    a_tr, a_te, b_tr, b_te = train_test_split(
        images / 16, labels, test_size=0.2, random_state=42, stratify=labels
    )
    np.testing.assert_allclose(xtr.reshape(1437, 64).numpy(), a_tr, rtol=1e-6)
    np.testing.assert_allclose(xte.reshape(360, 64).numpy(), a_te, rtol=1e-6)
    np.testing.assert_array_equal(ytr.numpy(), b_tr)
    np.testing.assert_array_equal(labels[zoo.split_indices("digits", "test")], b_te)
    assert 0.0 <= float(xtr.min()) and float(xtr.max()) <= 1.0
    # a network name gives the same inputs as its family
    x2, y2 = zoo.dataset("digits-cnn", "test")
    assert torch.equal(x2, xte) and torch.equal(y2, yte)


def test_iris_split_matches_seed_001():
    from sklearn.datasets import load_iris
    from sklearn.model_selection import train_test_split

    features, labels = load_iris(return_X_y=True)
    f_tr, f_te, y_tr, y_te = train_test_split(features, labels, test_size=0.2, random_state=42)
    xtr, ytr = zoo.dataset("iris-mlp", "train")
    xte, yte = zoo.dataset("iris", "test")
    assert xtr.shape == (120, 4) and xte.shape == (30, 4)
    np.testing.assert_array_equal(ytr.numpy(), y_tr)
    np.testing.assert_array_equal(yte.numpy(), y_te)
    expected = (f_te - f_tr.mean(axis=0)) / f_tr.std(axis=0)
    np.testing.assert_allclose(xte.numpy(), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(xtr.numpy().mean(axis=0), 0.0, atol=1e-5)


@pytest.mark.parametrize("name", MEMORIZE)
def test_memorizing_labels_are_one_fixed_shuffle(name):
    _, y_shuffled = zoo.dataset(name, "train")
    _, y_true = zoo.dataset(name, "train", true_labels=True)
    _, y_family = zoo.dataset("digits", "train")
    assert torch.equal(y_true, y_family)
    assert not torch.equal(y_shuffled, y_true)
    # a permutation: the class sizes are kept
    assert torch.equal(torch.bincount(y_shuffled), torch.bincount(y_true))
    assert torch.equal(y_shuffled, zoo.dataset(name, "train")[1])  # fixed, not redrawn
    _, y_test = zoo.dataset(name, "test")
    assert torch.equal(y_test, zoo.dataset("digits", "test")[1])  # test labels are true


def test_dataset_returns_copies():
    x, y = zoo.dataset("digits", "test")
    x[:] = -1.0
    y[:] = -1
    x2, y2 = zoo.dataset("digits", "test")
    assert float(x2.min()) >= 0.0 and int(y2.min()) >= 0


def test_digit_images():
    x, _ = zoo.dataset("digits", "train")
    imgs = zoo.digit_images([3, 0, 1436], split="train")
    assert imgs.shape == (3, 8, 8)
    np.testing.assert_allclose(imgs, x[[3, 0, 1436], 0].numpy(), rtol=1e-6)
    assert zoo.digit_images(7).shape == (8, 8)
    assert zoo.digit_images(np.array([], dtype=int)).shape == (0, 8, 8)
    with pytest.raises(IndexError, match="out of range for the digits test split of 360"):
        zoo.digit_images([360])
    with pytest.raises(TypeError, match="indices: expected integers"):
        zoo.digit_images([0.5])


# ----------------------------------------------------------------------------- errors


def test_unknown_name_lists_available():
    with pytest.raises(KeyError, match="unknown reference network 'resnet'.*iris-mlp.*digits-cnn"):
        zoo.load("resnet")
    with pytest.raises(zoo.UnknownError, match="available: iris-mlp"):
        zoo.card("resnet")
    with pytest.raises(zoo.UnknownError, match="families: iris, digits"):
        zoo.dataset("mnist")
    with pytest.raises(zoo.UnknownError):
        zoo.hidden_layers("digits")
    with pytest.raises(zoo.UnknownError):
        zoo.train("resnet")


def test_unknown_epoch_lists_available():
    available = zoo.epochs("digits-cnn")
    with pytest.raises(KeyError, match=r"no checkpoint at epoch 7; available: \[0, 1, 3"):
        zoo.load("digits-cnn", epoch=7)
    assert str(available) in _message(lambda: zoo.load("digits-cnn", epoch=7))
    with pytest.raises(zoo.UnknownError, match="epoch"):
        zoo.load("digits-cnn", epoch="40")
    with pytest.raises(zoo.UnknownError, match="epoch"):
        zoo.load("digits-cnn", epoch=True)


def _message(fn) -> str:
    try:
        fn()
    except Exception as err:  # noqa: BLE001 - any error; we read its message
        return str(err)
    raise AssertionError("no error raised")


def test_bad_split():
    with pytest.raises(ValueError, match="split: expected 'train' or 'test', got 'val'"):
        zoo.dataset("digits", "val")
    with pytest.raises(ValueError, match="split"):
        zoo.digit_images([0], split="validation")


def test_missing_models_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("BAYESACTIV_MODELS", str(tmp_path))
    assert zoo.models_dir() == tmp_path
    with pytest.raises(FileNotFoundError, match=r"no model card.*zoo.train\('iris-mlp'\)"):
        zoo.load("iris-mlp")
    monkeypatch.delenv("BAYESACTIV_MODELS")
    assert zoo.models_dir() == Path(zoo.__file__).resolve().parent.parent / "models"


def test_torchvision_dataset_errors(tmp_path):
    with pytest.raises(zoo.UnknownError, match="available: mnist, fashionmnist, cifar10"):
        zoo.torchvision_dataset("svhn", tmp_path)
    with pytest.raises(ValueError, match="split"):
        zoo.torchvision_dataset("mnist", tmp_path, split="val")
    try:
        import torchvision  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="needs torchvision"):
            zoo.torchvision_dataset("Fashion-MNIST", tmp_path)
    else:
        with pytest.raises(FileNotFoundError):
            zoo.torchvision_dataset("Fashion-MNIST", tmp_path / "absent")


# ----------------------------------------------------------------------------- retraining


def _check_retrained(name: str, out: Path) -> None:
    new = zoo.train(name, out_dir=out, progress=False)
    shipped = zoo.card(name)
    assert zoo.card(name, root=out) == new
    assert zoo.epochs(name, root=out) == zoo.epochs(name)
    if not _same_environment(shipped):
        pytest.skip(
            "bit-identical retraining is promised on the machine and torch version that "
            f"made the checkpoints ({shipped['versions']['torch']}, "
            f"{shipped['machine']['cpu_capability']})"
        )
    keys = ("epoch", "train_correct", "train_loss", "test_correct", "test_loss")
    for a, b in zip(new["checkpoints"], shipped["checkpoints"], strict=True):
        assert {k: a[k] for k in keys} == {k: b[k] for k in keys}
    assert new["history"] == shipped["history"]
    for epoch in zoo.epochs(name):
        a = zoo.load(name, epoch, root=out).state_dict()
        b = zoo.load(name, epoch).state_dict()
        assert a.keys() == b.keys()
        for k in a:
            assert torch.equal(a[k], b[k]), (name, epoch, k)


def test_retrain_is_deterministic_and_restores_settings(tmp_path):
    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    rng = torch.get_rng_state()
    first = zoo.train("iris-mlp", out_dir=tmp_path / "a", progress=False)
    second = zoo.train("iris-mlp", out_dir=tmp_path / "b", progress=False)
    assert torch.get_num_threads() == threads
    assert torch.are_deterministic_algorithms_enabled() == deterministic
    assert torch.equal(torch.get_rng_state(), rng)
    assert first["checkpoints"] == second["checkpoints"]
    for epoch in zoo.epochs("iris-mlp"):
        a = zoo.load("iris-mlp", epoch, root=tmp_path / "a").state_dict()
        b = zoo.load("iris-mlp", epoch, root=tmp_path / "b").state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a)
    written = json.loads((tmp_path / "a" / "iris-mlp" / "card.json").read_text())
    assert written["checkpoints"] == first["checkpoints"]


@pytest.mark.parametrize("name", ["iris-mlp", "digits-mlp"])
def test_retrain_reproduces_shipped(name, tmp_path):
    _check_retrained(name, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize(
    "name",
    ["digits-cnn", "digits-densenet", "digits-mlp-memorize", "digits-cnn-memorize",
     "digits-densenet-memorize"],
)
def test_retrain_reproduces_shipped_slow(name, tmp_path):
    _check_retrained(name, tmp_path)


def test_train_rejects_bad_out_dir():
    with pytest.raises(TypeError, match="out_dir: expected a path"):
        zoo.train("iris-mlp", out_dir=3)

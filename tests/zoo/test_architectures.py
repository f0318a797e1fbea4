"""Tests of bayesactiv.zoo.architectures: the architectures of the reference networks."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from bayesactiv.zoo.architectures import (
    ARCHITECTURES,
    DenseBlock,
    DenseLayer,
    DigitsMLP,
    IrisMLP,
    parameter_count,
    relu_names,
)

#: architecture -> (input shape of one sample, outputs, {hidden layer: activation shape})
SHAPES = {
    "iris-mlp": ((4,), 3, {"relu1": (64,), "relu2": (32,), "relu3": (16,)}),
    "digits-mlp": ((1, 8, 8), 10, {"relu1": (256,), "relu2": (128,), "relu3": (64,)}),
    "digits-cnn": (
        (1, 8, 8), 10, {"relu_conv1": (16, 8, 8), "relu_conv2": (32, 4, 4), "relu_fc1": (128,)}
    ),
    "digits-densenet": (
        (1, 8, 8),
        10,
        {
            "relu_stem": (16, 8, 8),
            "block1.layer1.relu": (12, 8, 8),
            "block1.layer2.relu": (12, 8, 8),
            "relu_trans": (24, 8, 8),
            "block2.layer1.relu": (12, 4, 4),
            "block2.layer2.relu": (12, 4, 4),
            "relu_fc1": (128,),
        },
    ),
}

#: parameters counted by hand: weights + biases of every layer
PARAMETERS = {
    "iris-mlp": (4 * 64 + 64) + (64 * 32 + 32) + (32 * 16 + 16) + (16 * 3 + 3),
    "digits-mlp": (64 * 256 + 256) + (256 * 128 + 128) + (128 * 64 + 64) + (64 * 10 + 10),
    "digits-cnn": (1 * 16 * 9 + 16) + (16 * 32 * 9 + 32) + (512 * 128 + 128) + (128 * 10 + 10),
    "digits-densenet": (
        (1 * 16 * 9 + 16)  # stem
        + (16 * 12 * 9 + 12) + (28 * 12 * 9 + 12)  # block1
        + (40 * 24 + 24)  # 1x1 transition
        + (24 * 12 * 9 + 12) + (36 * 12 * 9 + 12)  # block2
        + (768 * 128 + 128) + (128 * 10 + 10)
    ),
}


def _inputs(n: int, sample_shape: tuple[int, ...]) -> torch.Tensor:
    return torch.rand(n, *sample_shape, generator=torch.Generator().manual_seed(n))


def test_every_architecture_is_described():
    assert set(ARCHITECTURES) == set(SHAPES) == set(PARAMETERS)


@pytest.mark.parametrize("key", list(ARCHITECTURES))
def test_hidden_layers_are_the_relus_in_order(key):
    net = ARCHITECTURES[key]()
    assert list(net.hidden) == relu_names(net) == list(SHAPES[key][2])
    modules = dict(net.named_modules())
    assert all(isinstance(modules[name], nn.ReLU) for name in net.hidden)


@pytest.mark.parametrize("key", list(ARCHITECTURES))
def test_output_and_hidden_shapes(key):
    sample_shape, n_out, hidden = SHAPES[key]
    net = ARCHITECTURES[key]().eval()
    modules = dict(net.named_modules())
    seen = {}
    handles = [
        modules[name].register_forward_hook(lambda _m, _i, out, name=name: seen.update({name: out}))
        for name in hidden
    ]
    with torch.no_grad():
        out = net(_inputs(5, sample_shape))
    for handle in handles:
        handle.remove()
    assert out.shape == (5, n_out)
    assert {name: tuple(a.shape[1:]) for name, a in seen.items()} == hidden
    assert all(bool((a >= 0).all()) for a in seen.values())  # ReLU outputs


@pytest.mark.parametrize("key", list(ARCHITECTURES))
def test_parameter_count(key):
    net = ARCHITECTURES[key]()
    assert parameter_count(net) == PARAMETERS[key]
    first = next(net.parameters())
    first.requires_grad_(False)
    assert parameter_count(net) == PARAMETERS[key] - first.numel()  # trainable only


@pytest.mark.parametrize("key", list(ARCHITECTURES))
def test_no_batch_norm_or_dropout(key):
    # activations of a reference network depend on its input only, not on the batch
    net = ARCHITECTURES[key]()
    kinds = {type(m).__name__ for m in net.modules()}
    assert not any("Norm" in kind or "Dropout" in kind for kind in kinds), kinds
    x = _inputs(6, SHAPES[key][0])
    with torch.no_grad():
        whole = net(x)
        one_by_one = torch.cat([net(x[i : i + 1]) for i in range(len(x))])
    torch.testing.assert_close(whole, one_by_one)


def test_digits_mlp_takes_images_or_flat_vectors():
    net = DigitsMLP()
    x = _inputs(4, (1, 8, 8))
    with torch.no_grad():
        torch.testing.assert_close(net(x), net(x.reshape(4, 64)))


def test_dense_layer_concatenates_its_input_and_new_maps():
    layer = DenseLayer(4, 3)
    x = _inputs(2, (4, 5, 5))
    with torch.no_grad():
        out = layer(x)
        new = torch.relu(layer.conv(x))
    assert out.shape == (2, 7, 5, 5)
    assert torch.equal(out[:, :4], x)
    assert torch.equal(out[:, 4:], new)


def test_dense_block_grows_by_growth_per_layer():
    block = DenseBlock(5, 2, 3)
    assert block.out_channels == 11
    assert [name for name, _ in block.named_children()] == ["layer1", "layer2", "layer3"]
    assert [layer.conv.in_channels for layer in block] == [5, 7, 9]
    assert block(_inputs(1, (5, 4, 4))).shape == (1, 11, 4, 4)


def test_relu_names_follow_definition_order():
    net = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Sequential(nn.ReLU(), nn.Tanh()), nn.ReLU())
    assert relu_names(net) == ["1", "2.0", "3"]
    assert relu_names(IrisMLP()) == ["relu1", "relu2", "relu3"]


def test_same_seed_same_initial_weights():
    for key, cls in ARCHITECTURES.items():
        with torch.random.fork_rng():
            torch.manual_seed(3)
            a = cls().state_dict()
            torch.manual_seed(3)
            b = cls().state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a), key

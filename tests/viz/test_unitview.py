"""unit_activations reads the events record reads; the unit view's argument checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import bayesactiv as ba
from bayesactiv.data import DatasetError
from bayesactiv.data.checks import ArgumentError
from bayesactiv.viz.unitview import default_intervals, unit_activations, unit_view


def forward_output(net: nn.Module, x: torch.Tensor, layer: str) -> torch.Tensor:
    """The layer's output on the whole batch, from a plain forward hook, in eval mode."""
    outs: list[torch.Tensor] = []
    handle = dict(net.named_modules())[layer].register_forward_hook(
        lambda m, i, o: outs.append(o.detach().clone()))
    try:
        with torch.no_grad():
            net(x)
    finally:
        handle.remove()
    return outs[0]


def test_sequence_output_reads_feature_index_over_tokens():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 6), nn.ReLU()).eval()
    x = torch.randn(5, 4, 3)  # [batch, sequence, features]
    out = forward_output(net, x, "1")
    got = unit_activations(net, x, "1", 5)  # feature 5: beyond the 4 sequence positions
    np.testing.assert_allclose(got, out[:, :, 5].reshape(-1).numpy(), rtol=1e-6)
    ds = ba.record(net, x, "1", progress=False)
    assert int(ds["count"].values[5]) == int((got > 0).sum())
    assert int(ds["n"].values[5]) == got.size == 20


@pytest.mark.parametrize("spatial", ["any", "per_position"])
def test_convolution_follows_the_spatial_rule_of_record(spatial):
    torch.manual_seed(1)
    net = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU()).eval()
    x = torch.randn(7, 1, 4, 4)
    channel = forward_output(net, x, "1")[:, 2].reshape(7, -1).numpy()
    want = channel.max(axis=1) if spatial == "any" else channel.reshape(-1)
    got = unit_activations(net, x, "1", 2, spatial=spatial, batch_size=3)
    np.testing.assert_allclose(got, want, rtol=1e-6)
    ds = ba.record(net, x, "1", spatial=spatial, progress=False)
    assert int(ds["count"].values[2]) == int((got > 0).sum())


def test_every_submodule_mode_is_restored_and_dropout_is_off():
    torch.manual_seed(2)
    net = nn.Sequential(nn.Linear(4, 10), nn.Dropout(0.5), nn.ReLU(), nn.Linear(10, 3),
                        nn.Dropout(0.5))
    net.train()
    net[4].eval()  # mixed: a submodule in eval mode inside a network in training mode
    x = torch.randn(30, 4)
    first = unit_activations(net, x, "2", 1)
    second = unit_activations(net, x, "2", 1)
    np.testing.assert_array_equal(first, second)  # dropout off while re-running
    assert net.training and net[1].training and not net[4].training


def test_errors_name_the_argument():
    net = nn.Sequential(nn.Linear(2, 5), nn.ReLU())
    x = torch.randn(4, 2)
    with pytest.raises(ValueError, match="no module named 'nope'"):
        unit_activations(net, x, "nope", 0)
    with pytest.raises(ValueError, match="has 5 units"):
        unit_activations(net, x, "1", 9)
    with pytest.raises(ArgumentError, match="index: expected an integer >= 0"):
        unit_activations(net, x, "1", -1)
    with torch.device("meta"):
        ghost = nn.Sequential(nn.Linear(2, 5), nn.ReLU())
    with pytest.raises(ValueError, match="meta"):
        unit_activations(ghost, x, "1", 0)


def test_default_intervals_check_their_arguments():
    with pytest.raises(ArgumentError, match="prob: expected a number strictly between 0 and 1"):
        default_intervals(3, 10, prob=1.5)
    with pytest.raises(DatasetError, match="count: 11 exceeds n = 10"):
        default_intervals(11, 10)


def test_unit_view_checks_its_counts():
    ds = ba.make_dataset([3, 7], 10, network="net", layer="fc")
    with pytest.raises(ArgumentError, match="n_images: expected an integer >= 1"):
        unit_view(ds, 0, n_images=0)
    with pytest.raises(ArgumentError, match="prob"):
        unit_view(ds, 0, prob=90)


@pytest.mark.parametrize("count", [0, 37, 40])
def test_unit_view_interval_notes_stay_inside_the_figure(count):
    """An interval reaching 0 or 1 keeps its note and markers inside the figure."""
    ds = ba.make_dataset([count], 40, network="n", layer="l")
    fig = unit_view(ds, 0)
    fig.canvas.draw()
    box = fig.bbox
    ax_iv = fig.axes[0]
    notes = [t for t in ax_iv.texts if "[" in t.get_text()]
    assert len(notes) == 2
    renderer = fig.canvas.get_renderer()
    for text in notes + ax_iv.get_yticklabels():
        ext = text.get_window_extent(renderer)
        assert ext.x0 >= box.x0 - 0.5 and ext.x1 <= box.x1 + 0.5, text.get_text()

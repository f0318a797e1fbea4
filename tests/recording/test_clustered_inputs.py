"""Token and position events clustered by input: the streamed cluster sums, Hugging Face style
mapping batches, attention masks (padding is not an event) and labels from a key."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import bayesactiv as ba


class TinyLM(nn.Module):
    """Embedding -> MLP with a ReLU, called like a Hugging Face model: ``model(**batch)``."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.emb = nn.Embedding(30, 8)
        self.mlp = nn.Sequential(nn.Linear(8, 6), nn.ReLU())
        self.head = nn.Linear(6, 2)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None):
        return self.head(self.mlp(self.emb(input_ids)))


@pytest.fixture(scope="module")
def padded() -> dict[str, torch.Tensor]:
    """Nine sentences of lengths 1..12, padded to 12 tokens (padding id 0), with labels."""
    gen = torch.Generator().manual_seed(1)
    lengths = torch.tensor([12, 3, 5, 1, 9, 2, 4, 12, 7])
    ids = torch.randint(1, 30, (9, 12), generator=gen)
    mask = (torch.arange(12)[None, :] < lengths[:, None]).long()
    ids = ids * mask
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": torch.zeros_like(ids),
            "labels": torch.arange(9) % 2}


def hand_counts(net: TinyLM, batch: dict[str, torch.Tensor]) -> tuple[np.ndarray, np.ndarray]:
    """Fired tokens per (sentence, unit) and real tokens per sentence, from the forward pass."""
    with torch.no_grad():
        acts = net.mlp(net.emb(batch["input_ids"]))
    mask = batch["attention_mask"].bool()
    c = np.stack([(acts[i][mask[i]] > 0).sum(0).numpy() for i in range(acts.shape[0])])
    return c, mask.sum(1).numpy()


def test_padded_batch_is_counted_by_hand(padded):
    net = TinyLM()
    ds = ba.record(net, padded, ["mlp.1"], batch_size=4, labels="labels", keep_events=True,
                   progress=False)
    c, t = hand_counts(net, padded)
    assert int(ds["n"][0]) == int(t.sum()) == 55  # real tokens only, not 9 x 12
    np.testing.assert_array_equal(ds["count"].values, c.sum(0))
    np.testing.assert_array_equal(ds["cluster_n"].values, np.full(6, 9))
    np.testing.assert_array_equal(ds["cluster_fired"].values, (c > 0).sum(0))
    np.testing.assert_array_equal(ds["cluster_count_sq"].values, (c * c).sum(0))
    np.testing.assert_array_equal(ds["cluster_count_n"].values, (c * t[:, None]).sum(0))
    np.testing.assert_array_equal(ds["cluster_n_sq"].values, np.full(6, (t * t).sum()))
    # the kept events line up with the real tokens, their inputs and the labels from the key
    np.testing.assert_array_equal(ds["input"].values, np.repeat(np.arange(9), t))
    np.testing.assert_array_equal(ds["label"].values, np.repeat(np.arange(9) % 2, t))
    per_input = np.stack([ds["fired"].values[ds["input"].values == i].sum(0) for i in range(9)])
    np.testing.assert_array_equal(per_input, c)
    assert ba.data.clustered(ds).all() and ds.attrs["spatial"] == "token"


def test_iterable_of_mapping_batches_equals_one_mapping(padded):
    net = TinyLM()
    whole = ba.record(net, padded, "mlp.1", batch_size=4, labels="labels", progress=False)
    loader = [{k: v[i : i + 2] for k, v in padded.items()} for i in range(0, 9, 2)]
    parts = ba.record(net, loader, "mlp.1", labels="labels", progress=False)
    for name in ("count", "n", *ba.data.CLUSTER_VARS):
        np.testing.assert_array_equal(parts[name].values, whole[name].values)


def test_without_the_mask_every_position_is_an_event(padded):
    net = TinyLM()
    ds = ba.record(net, padded, "mlp.1", labels="labels", attention_mask=None, progress=False)
    assert int(ds["n"][0]) == 9 * 12
    np.testing.assert_array_equal(ds["cluster_n_sq"].values, np.full(6, 9 * 144))


def test_a_fully_padded_input_is_no_cluster(padded):
    net = TinyLM()
    batch = {k: v.clone() for k, v in padded.items()}
    batch["attention_mask"][3] = 0  # the one-token sentence: nothing real left
    ds = ba.record(net, batch, "mlp.1", labels="labels", progress=False)
    assert int(ds["n"][0]) == 54 and int(ds["cluster_n"][0]) == 8


def test_mapping_errors_name_what_is_wrong(padded):
    net = TinyLM()
    with pytest.raises(ValueError, match="labels: the key 'label' is not in the batch"):
        ba.record(net, padded, "mlp.1", labels="label", progress=False)
    bad = {**padded, "attention_mask": padded["attention_mask"][:, :5]}
    with pytest.raises(ValueError, match="positions but the attention mask marks 5 tokens"):
        ba.record(net, bad, "mlp.1", labels="labels", progress=False)
    odd = {**padded, "attention_mask": padded["attention_mask"] * 2}
    with pytest.raises(ValueError, match="attention_mask: 'attention_mask' must hold 0/1"):
        ba.record(net, odd, "mlp.1", labels="labels", progress=False)
    with pytest.raises(ValueError, match="disagree on the batch size"):
        ba.record(net, {**padded, "labels": torch.arange(4)}, "mlp.1", progress=False)
    with pytest.raises(TypeError, match="no tensor or array values"):
        ba.record(net, {"flag": True}, "mlp.1", progress=False)
    with pytest.raises(ValueError, match="labels: a key"):
        ba.record(net, torch.randint(0, 30, (4, 3)), "mlp.1", labels="labels", progress=False)
    with pytest.raises(TypeError, match="attention_mask: expected the key"):
        ba.record(net, padded, "mlp.1", attention_mask=1, progress=False)


def test_capture_leaves_padding_out(padded):
    net = TinyLM()
    batch = {k: v for k, v in padded.items() if k != "labels"}
    got = ba.capture(net, batch, "mlp.1", units=[2])
    with torch.no_grad():
        acts = net.mlp(net.emb(padded["input_ids"]))
    np.testing.assert_allclose(got[:, 0], acts[padded["attention_mask"].bool()][:, 2].numpy())


def test_positions_are_clustered_by_input():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU())
    net.eval()
    x = torch.randn(10, 1, 5, 5)
    ds = ba.record(net, x, "2", batch_size=3, progress=False)  # the default: per position
    with torch.no_grad():
        fired = (net(x) > 0).flatten(2)  # (input, channel, position)
    c = fired.sum(2).numpy()
    assert ds.attrs["spatial"] == "per_position" and int(ds["n"][0]) == 250
    np.testing.assert_array_equal(ds["count"].values, c.sum(0))
    np.testing.assert_array_equal(ds["cluster_count_sq"].values, (c * c).sum(0))
    np.testing.assert_array_equal(ds["cluster_fired"].values, (c > 0).sum(0))
    # the "any" view is in the same dataset: inputs on which a channel fired anywhere
    anywhere = ba.record(net, x, "2", spatial="any", progress=False)
    np.testing.assert_array_equal(anywhere["count"].values, ds["cluster_fired"].values)
    assert "cluster_n" not in anywhere.data_vars  # one event per input: today's dataset


def test_dense_layers_keep_todays_dataset_and_mix_with_tokens():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU())
    dense = ba.record(net, torch.randn(20, 3), "1", progress=False)
    assert not any(v.startswith("cluster") for v in dense.data_vars)
    tokens = ba.record(net, torch.randn(20, 5, 3), "1", progress=False, network="seq")
    both = ba.combine([dense, tokens])
    assert ba.data.clustered(both).tolist() == [False] * 4 + [True] * 4
    np.testing.assert_array_equal(both["cluster_n"].values[:4], dense["n"].values)
    np.testing.assert_array_equal(both["cluster_count_sq"].values[:4], dense["count"].values)


def test_layer_sums_are_streamed_by_hand(padded):
    net = TinyLM()
    ds = ba.record(net, padded, "mlp.1", batch_size=4, labels="labels", progress=False)
    c, t = hand_counts(net, padded)
    total = c.sum(1)
    np.testing.assert_array_equal(ds["layer_count_sq"].values, np.full(6, (total ** 2).sum()))
    np.testing.assert_array_equal(ds["layer_count_n"].values, np.full(6, (total * t).sum()))
    np.testing.assert_array_equal(ds["layer_count"].values, np.full(6, total.sum()))
    dense = ba.record(nn.Sequential(nn.Linear(3, 2), nn.ReLU()), torch.randn(5, 3), "1",
                      progress=False)
    both = ba.combine([ds, dense])  # a dense layer: its layer sums were not streamed
    assert both["layer_count"].values.tolist()[-2:] == [-1, -1]

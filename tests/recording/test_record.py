"""Tests of bayesactiv.record against hand-written forward hooks and numpy on full matrices."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
import torch
from torch import nn

import bayesactiv as ba
from bayesactiv.recording import Fixed, FractionOfMax, Quantile
from bayesactiv.recording import kernels as kernels_module
from bayesactiv.recording import recorder as record_module
from bayesactiv.recording import rules as rules_module

BATCH = 64


# ---------------------------------------------------------------- fixtures and helpers


@pytest.fixture(scope="module")
def digits() -> tuple[torch.Tensor, np.ndarray]:
    from sklearn.datasets import load_digits

    data = load_digits()
    x = torch.tensor(data.data, dtype=torch.float32)
    return (x - x.mean(0)) / (x.std(0) + 1e-3), data.target


@pytest.fixture(scope="module")
def mlp(digits) -> nn.Module:
    """A 64-32-16-10 ReLU network trained 100 mini-batch steps on sklearn's digits."""
    x, y = digits
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 16), nn.ReLU(),
                        nn.Linear(16, 10))
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    yt = torch.tensor(y)
    for step in range(100):
        start = (step * 256) % 1536
        opt.zero_grad()
        loss = nn.functional.cross_entropy(net(x[start : start + 256]), yt[start : start + 256])
        loss.backward()
        opt.step()
    net.eval()
    with torch.no_grad():
        assert (net(x).argmax(1) == yt).float().mean() > 0.9  # it learned
    return net


def hand_activations(net: nn.Module, x: torch.Tensor, layer: str, mode: str = "dense",
                     batch: int = BATCH) -> np.ndarray:
    """The [events, units] activation matrix from a plain forward hook, same batches as record."""
    outs: list[torch.Tensor] = []
    mod = dict(net.named_modules())[layer]
    handle = mod.register_forward_hook(lambda m, i, o: outs.append(o.detach().clone()))
    try:
        with torch.no_grad():
            for start in range(0, len(x), batch):
                net(x[start : start + batch])
    finally:
        handle.remove()
    out = torch.cat(outs).numpy()
    if mode == "dense":
        return out.astype(np.float64)
    if mode == "token":
        return out.reshape(-1, out.shape[-1]).astype(np.float64)
    flat = out.reshape(out.shape[0], out.shape[1], -1)
    if mode == "any":
        return flat.max(axis=2).astype(np.float64)
    return flat.transpose(0, 2, 1).reshape(-1, flat.shape[1]).astype(np.float64)


def expected_threshold(acts: np.ndarray, rule) -> np.ndarray:
    if isinstance(rule, Fixed):
        return np.full(acts.shape[1], rule.value)
    if isinstance(rule, FractionOfMax):
        return rule.fraction * acts.max(axis=0)
    return np.quantile(acts, rule.q, axis=0)


def check_summaries(ds, acts: np.ndarray, layer: str, window_size: int | None = None) -> None:
    sub = ds.sel(unit=ds["layer"] == layer)
    thr = sub["threshold"].values
    fired = acts > thr
    np.testing.assert_array_equal(sub["count"].values, fired.sum(axis=0))
    assert (sub["n"].values == acts.shape[0]).all()
    if window_size is not None:
        m = acts.shape[0] // window_size
        wc = fired[: m * window_size].reshape(m, window_size, -1).sum(axis=1)
        np.testing.assert_array_equal(sub["window_count"].values[: ds.sizes["window"]],
                                      wc[: ds.sizes["window"]])
    np.testing.assert_allclose(sub["act_min"].values, acts.min(0))
    np.testing.assert_allclose(sub["act_max"].values, acts.max(0))
    np.testing.assert_allclose(sub["act_mean"].values, acts.mean(0), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(sub["act_var"].values, acts.var(0), rtol=1e-5, atol=1e-8)
    live = acts.var(0) > 1e-8
    np.testing.assert_allclose(sub["act_skewness"].values[live],
                               scipy.stats.skew(acts, axis=0)[live], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(sub["act_kurtosis"].values[live],
                               scipy.stats.kurtosis(acts, axis=0)[live], rtol=1e-4, atol=1e-3)
    np.testing.assert_array_equal(sub["act_zero"].values, (acts == 0).sum(0))
    k = sub.sizes["rank"]
    top = -np.sort(-acts, axis=0)[:k].T
    np.testing.assert_allclose(sub["topk_value"].values, top)
    idx = sub["topk_sample"].values
    np.testing.assert_allclose(acts[idx, np.arange(acts.shape[1])[:, None]], top)
    edges = ds["hist_edges"].sel(hist_group=f"{ds.attrs['network']}/{layer}").values
    hist = ds["hist_count"].sel(hist_group=f"{ds.attrs['network']}/{layer}").values
    assert hist.sum() == acts.size
    assert edges[0] <= acts.min() and edges[-1] >= acts.max()
    ref = np.histogram(acts, edges)[0]
    assert np.abs(hist - ref).sum() <= 2e-3 * acts.size  # float32 binning at bin edges


# ---------------------------------------------------------------- dense layers


@pytest.mark.parametrize("rule", [Fixed(0.0), Fixed(0.3), FractionOfMax(0.5), Quantile(0.9),
                                  Quantile(0.37)], ids=repr)
def test_dense_matches_hand_hook(mlp, digits, rule):
    x, _ = digits
    ds = ba.record(mlp, x, ["1", "3"], threshold=rule, window_size=20, batch_size=BATCH,
                   progress=False, network="mlp")
    assert ds.attrs["threshold_rule"] == rule.describe()
    assert ds.attrs["network"] == "mlp" and ds.attrs["source"] == "Sequential"
    for layer in ("1", "3"):
        acts = hand_activations(mlp, x, layer)
        np.testing.assert_allclose(ds.sel(unit=ds["layer"] == layer)["threshold"].values,
                                   expected_threshold(acts, rule), rtol=1e-12, atol=1e-12)
        check_summaries(ds, acts, layer, window_size=20)
    assert ds["unit"].values[0] == "mlp/1/0"
    if isinstance(rule, Quantile):
        assert ds.attrs["threshold_approximate_units"] == 0


def test_quantile_ties_at_zero():
    # a ReLU unit that is 0 on 95% of inputs has its 0.9-quantile at 0 and fires on the other 5%
    lin = nn.Linear(1, 1)
    with torch.no_grad():
        lin.weight.fill_(1.0)
        lin.bias.zero_()
    net = nn.Sequential(lin, nn.ReLU())
    x = torch.cat([-torch.rand(950, 1), torch.rand(50, 1) + 0.1])[torch.randperm(1000)]
    ds = ba.record(net, x, "1", threshold=Quantile(0.9), progress=False)
    assert float(ds["threshold"][0]) == 0.0
    assert int(ds["count"][0]) == 50


def test_quantile_approximate_path_within_one_bin(monkeypatch):
    # with a tiny refinement buffer the quantile falls back to in-bin interpolation:
    # its error must stay within the documented bin width
    monkeypatch.setattr(rules_module, "_QUANTILE_BUFFER", 1)
    monkeypatch.setattr(rules_module, "_QUANTILE_BINS", 256)
    torch.manual_seed(1)
    net = nn.Sequential(nn.Linear(3, 5))
    x = torch.randn(20_000, 3)
    ds = ba.record(net, x, "0", threshold=Quantile(0.75), progress=False, batch_size=4096)
    acts = hand_activations(net, x, "0", batch=4096)
    exact = np.quantile(acts, 0.75, axis=0)
    width = (acts.max(0) - acts.min(0)) / 256
    assert ds.attrs["threshold_approximate_units"] > 0
    assert (np.abs(ds["threshold"].values - exact) <= width).all()


def test_fixed_threshold_compares_in_float64():
    # 0.1 is not a float32 number; fired must mean activation > 0.1 exactly
    net = nn.Sequential(nn.Identity())
    x = torch.tensor([[np.float32(0.1)], [np.nextafter(np.float32(0.1), np.float32(1))]])
    ds = ba.record(net, x, "0", threshold=0.1, progress=False)
    assert int(ds["count"][0]) == int((x.double() > 0.1).sum())


def test_iterable_with_labels_and_keep_events(mlp, digits):
    x, y = digits
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, torch.tensor(y)),
                                         batch_size=100)
    ds = ba.record(mlp, loader, ["1", "3"], keep_events=True, progress=False)
    np.testing.assert_array_equal(ds["label"].values, y)
    assert ds.sizes["sample"] == len(x)
    acts = hand_activations(mlp, x, "1", batch=100)
    np.testing.assert_array_equal(ds["fired"].sel(unit=ds["layer"] == "1").values, acts > 0)
    # labels= for tensors; numpy input
    ds2 = ba.record(mlp, x.numpy(), "1", labels=y, keep_events=True, progress=False)
    np.testing.assert_array_equal(ds2["label"].values, y)
    np.testing.assert_array_equal(ds2["count"].values, ds.sel(unit=ds["layer"] == "1")["count"])


def test_glob_selects_layers_in_module_order(mlp, digits):
    x, _ = digits
    ds = ba.record(mlp, x[:50], "[0-9]", progress=False)
    assert list(dict.fromkeys(ds["layer"].values.tolist())) == ["0", "1", "2", "3", "4"]
    assert ds.attrs["layer_modules"] == (
        '{"0": "Linear", "1": "ReLU", "2": "Linear", "3": "ReLU", "4": "Linear"}')


# ---------------------------------------------------------------- conv and tokens


@pytest.fixture(scope="module")
def cnn() -> nn.Module:
    torch.manual_seed(2)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 6, 3),
                         nn.ReLU()).eval()


@pytest.mark.parametrize("spatial", ["any", "per_position"])
def test_conv_channels(cnn, digits, spatial):
    x = digits[0][:300].reshape(-1, 1, 8, 8)
    ds = ba.record(cnn, x, ["1", "3"], spatial=spatial, window_size=10, keep_events=False,
                   progress=False, batch_size=BATCH)
    assert ds.attrs["spatial"] == spatial
    for layer, positions in (("1", 64), ("3", 36)):
        acts = hand_activations(cnn, x, layer, mode=spatial)
        check_summaries(ds, acts, layer, window_size=10)
        n = ds.sel(unit=ds["layer"] == layer)["n"].values
        assert (n == 300 * (positions if spatial == "per_position" else 1)).all()
    if spatial == "per_position":  # different event counts per layer: shortest windows kept
        assert ds.sizes["window"] == 300 * 36 // 10


def test_conv_per_position_keep_events_has_input_coord(cnn, digits):
    x = digits[0][:40].reshape(-1, 1, 8, 8)
    ds = ba.record(cnn, x, "1", spatial="per_position", keep_events=True, progress=False,
                   labels=digits[1][:40])
    assert ds.sizes["sample"] == 40 * 64
    np.testing.assert_array_equal(ds["input"].values, np.repeat(np.arange(40), 64))
    np.testing.assert_array_equal(ds["label"].values, np.repeat(digits[1][:40], 64))
    acts = hand_activations(cnn, x, "1", mode="per_position")
    np.testing.assert_array_equal(ds["fired"].values, acts > 0)


def test_token_events_transformer():
    torch.manual_seed(3)
    enc = nn.TransformerEncoderLayer(d_model=8, nhead=2, dim_feedforward=16, batch_first=True)
    net = nn.Sequential(enc, nn.Linear(8, 5), nn.ReLU()).eval()  # eval: dropout off
    x = torch.randn(50, 7, 8)
    ds = ba.record(net, x, ["0", "2"], threshold=Quantile(0.5), window_size=7,
                   progress=False, batch_size=16)
    assert ds.attrs["spatial"] == "token"
    for layer in ("0", "2"):
        acts = hand_activations(net, x, layer, mode="token", batch=16)
        assert acts.shape[0] == 350
        np.testing.assert_allclose(ds.sel(unit=ds["layer"] == layer)["threshold"].values,
                                   np.quantile(acts, 0.5, axis=0), rtol=1e-12, atol=1e-12)
        check_summaries(ds, acts, layer, window_size=7)


class TupleNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 6)
        self.pair = Pair()
        self.named = Named()

    def forward(self, x):
        a, b = self.pair(self.lin(x))
        return self.named(a + b)["out"]


class Pair(nn.Module):
    def forward(self, x):
        return torch.relu(x), -x


class Named(nn.Module):
    def forward(self, x):
        return {"out": x * 2, "aux": x}


def test_tuple_and_dict_outputs():
    torch.manual_seed(4)
    net = TupleNet()
    x = torch.randn(100, 4)
    with pytest.raises(ValueError, match=r"layer 'pair' returns a tuple.*output=index"):
        ba.record(net, x, "pair", progress=False)
    with pytest.raises(ValueError, match=r"'named' returns a dict.*output='key'"):
        ba.record(net, x, "named", progress=False)
    lin = net.lin(x).detach().numpy().astype(np.float64)
    ds = ba.record(net, x, "pair", output=0, progress=False)
    np.testing.assert_array_equal(ds["count"].values, (np.maximum(lin, 0) > 0).sum(0))
    ds = ba.record(net, x, "pair", output=1, progress=False)
    np.testing.assert_array_equal(ds["count"].values, (-lin > 0).sum(0))
    ds = ba.record(net, x, "named", output=lambda o: o["aux"], progress=False)
    assert ds.sizes["unit"] == 6
    with pytest.raises(ValueError, match="key 'nope' not in"):
        ba.record(net, x, "named", output="nope", progress=False)


# ---------------------------------------------------------------- streaming details


def test_dynamic_histogram_grows_exactly():
    # first batch spans a small range, later ones far more: merge-and-double keeps counts exact
    net = nn.Sequential(nn.Identity())
    g = torch.Generator().manual_seed(5)
    x = torch.cat([torch.rand(64, 3, generator=g) * 0.1, torch.randn(500, 3, generator=g) * 20])
    ds = ba.record(net, x, "0", batch_size=64, progress=False, hist_bins=32)
    acts = x.double().numpy()
    edges = ds["hist_edges"].values[0]
    hist = ds["hist_count"].values[0]
    assert hist.sum() == acts.size
    assert edges[0] <= acts.min() and edges[-1] >= acts.max()
    assert np.abs(hist - np.histogram(acts, edges)[0]).sum() <= 3
    check_summaries(ds, acts, "0")


def test_moments_stable_with_large_offset():
    net = nn.Sequential(nn.Identity())
    g = torch.Generator().manual_seed(6)
    x = (1e4 + torch.randn(5000, 2, generator=g, dtype=torch.float64)).float()
    ds = ba.record(net, x, "0", batch_size=100, progress=False)
    acts = x.double().numpy()
    np.testing.assert_allclose(ds["act_var"].values, acts.var(0), rtol=1e-3)
    np.testing.assert_allclose(ds["act_skewness"].values, scipy.stats.skew(acts), atol=0.02)


def test_summaries_off_and_topk_fewer_events_than_k():
    net = nn.Sequential(nn.Linear(3, 4))
    ds = ba.record(net, torch.randn(5, 3), "0", topk=8, progress=False)
    assert (ds["topk_sample"].values[:, 5:] == -1).all()
    assert (ds["topk_sample"].values[:, :5] >= 0).all()
    ds = ba.record(net, torch.randn(5, 3), "0", summaries=False, progress=False)
    assert "act_mean" not in ds and "hist_count" not in ds and "act_max" in ds


def test_windows_cross_batch_boundaries():
    net = nn.Sequential(nn.Identity())
    g = torch.Generator().manual_seed(7)
    x = torch.randn(103, 4, generator=g)
    ds = ba.record(net, x, "0", window_size=9, batch_size=5, progress=False)
    fired = x.numpy() > 0
    np.testing.assert_array_equal(ds["window_count"].values,
                                  fired[:99].reshape(11, 9, 4).sum(1))
    assert ds.attrs["window_size"] == 9


# ---------------------------------------------------------------- hooks, modes, errors


def _hook_count(net: nn.Module) -> int:
    return sum(len(m._forward_hooks) for m in net.modules())


def test_hooks_removed_and_modes_restored_after_error(mlp, digits):
    x = digits[0][:100].clone()
    mlp.train()
    mlp[1].eval()
    x[17, 3] = float("nan")
    with pytest.raises(ValueError, match=r"layer '1': NaN or infinite activations in units"):
        ba.record(mlp, x, ["1", "3"], progress=False)
    assert _hook_count(mlp) == 0
    assert mlp.training and mlp[0].training and not mlp[1].training
    with pytest.raises(ValueError, match="NaN or infinite"):
        ba.record(mlp, x, ["1"], threshold=Quantile(0.5), progress=False)
    assert _hook_count(mlp) == 0 and mlp.training
    ba.record(mlp, digits[0][:100], ["1"], progress=False)
    assert _hook_count(mlp) == 0 and mlp.training and not mlp[1].training
    mlp.eval()


def test_dropout_is_off_while_recording():
    torch.manual_seed(8)
    net = nn.Sequential(nn.Linear(5, 20), nn.Dropout(0.9), nn.ReLU()).train()
    x = torch.randn(200, 5)
    a = ba.record(net, x, "2", progress=False)
    b = ba.record(net, x, "2", progress=False)
    np.testing.assert_array_equal(a["count"].values, b["count"].values)
    assert net.training


def test_errors(mlp, digits):
    x = digits[0][:100]
    with pytest.raises(ValueError, match=r"no module named 'l1'.*did you mean"):
        ba.record(mlp, x, "l1", progress=False)
    with pytest.raises(ValueError, match=r"pattern 'fc\*' matches no module"):
        ba.record(mlp, x, "fc*", progress=False)
    with pytest.raises(ValueError, match="inputs: empty"):
        ba.record(mlp, x[:0], "1", progress=False)
    with pytest.raises(ValueError, match="inputs: empty"):
        ba.record(mlp, [], "1", progress=False)
    with pytest.raises(ValueError, match="window_size: must be >= 1"):
        ba.record(mlp, x, "1", window_size=0, progress=False)
    with pytest.raises(ValueError, match="one-shot iterator"):
        ba.record(mlp, (b for b in [x]), "1", threshold=Quantile(0.5), progress=False)
    with pytest.raises(ValueError, match="spatial"):
        ba.record(mlp, x, "1", spatial="all", progress=False)
    with pytest.raises(TypeError, match="threshold"):
        ba.record(mlp, x, "1", threshold="high", progress=False)
    with pytest.raises(ValueError, match="Quantile.q"):
        Quantile(1.5)
    # a one-shot generator is fine for a fixed threshold
    ds = ba.record(mlp, (b for b in [x[:50], x[50:]]), "1", progress=False)
    assert int(ds["n"][0]) == 100


def test_fraction_of_max_dead_units_never_fire_and_all_dead_layer_is_refused():
    lin = nn.Linear(2, 3)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0, 1.0], [1.0, 0.0], [0.0, 1.0]]))
        lin.bias.copy_(torch.tensor([0.0, -100.0, -100.0]))
    net = nn.Sequential(lin, nn.ReLU())
    x = torch.rand(50, 2)
    ds = ba.record(net, x, "1", threshold=FractionOfMax(0.5), progress=False)
    acts = torch.relu(lin(x)).detach().numpy()
    assert ds["count"].values.tolist() == [int((acts[:, 0] > 0.5 * acts[:, 0].max()).sum()), 0, 0]
    with torch.no_grad():
        lin.bias.copy_(torch.tensor([-100.0, -100.0, -100.0]))
    with pytest.raises(ValueError, match=r"does not apply to layer '1': every unit"):
        ba.record(net, x, "1", threshold=FractionOfMax(0.5), progress=False)


def test_reused_module_refused():
    class Reuse(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2, self.act = nn.Linear(3, 4), nn.Linear(4, 4), nn.ReLU()

        def forward(self, x):
            return self.act(self.fc2(self.act(self.fc1(x))))

    net = Reuse()
    with pytest.raises(RuntimeError, match="ran more than once"):
        ba.record(net, torch.randn(10, 3), "act", progress=False)
    assert _hook_count(net) == 0


def test_function_is_not_shadowed_by_its_module():
    import bayesactiv.recording.recorder

    assert ba.record is bayesactiv.recording.record
    net = nn.Sequential(nn.Linear(2, 2))
    ds = ba.record(net, torch.randn(4, 2), "0", progress=False)
    assert int(ds["n"][0]) == 4


@pytest.mark.parametrize("suffix", [".nc", ".zarr"])
def test_keep_events_round_trip(cnn, digits, tmp_path, suffix):
    x = digits[0][:30].reshape(-1, 1, 8, 8)
    ds = ba.record(cnn, x, "3", spatial="per_position", keep_events=True, window_size=8,
                   labels=digits[1][:30], progress=False)
    back = ba.open_dataset(ba.save(ds, tmp_path / f"acts{suffix}"))
    np.testing.assert_array_equal(back["fired"].values, ds["fired"].values)
    np.testing.assert_array_equal(back["input"].values, ds["input"].values)
    np.testing.assert_array_equal(back["label"].values, ds["label"].values)
    np.testing.assert_array_equal(back["window_count"].values, ds["window_count"].values)
    np.testing.assert_allclose(back["topk_value"].values, ds["topk_value"].values)
    assert back.attrs["threshold_params"] == ds.attrs["threshold_params"]
    assert back["unit"].values.tolist() == ds["unit"].values.tolist()


# ---------------------------------------------------------------- the fused CPU kernel


def _torch_path(monkeypatch) -> None:
    """Force the torch reductions (the path CUDA tensors take) instead of the numba kernel."""
    monkeypatch.setattr(kernels_module, "fast_path", lambda a: False)


def _assert_same_recording(fast, slow) -> None:
    for var in ("count", "n", "window_count", "act_min", "act_max", "act_zero", "topk_value",
                "hist_edges"):
        np.testing.assert_array_equal(fast[var].values, slow[var].values, err_msg=var)
    for var in ("act_mean", "act_var", "act_skewness", "act_kurtosis"):
        np.testing.assert_allclose(fast[var].values, slow[var].values, rtol=1e-4, atol=1e-5,
                                   err_msg=var)
    assert np.abs(fast["hist_count"].values - slow["hist_count"].values).sum() \
        <= 1e-3 * int(fast["n"].sum())


def test_kernel_and_torch_path_agree(monkeypatch):
    # uneven batches (1 to 97 events), windows across them, ReLU zeros, several blocks of units
    torch.manual_seed(9)
    net = nn.Sequential(nn.Linear(6, 700), nn.ReLU())
    sizes = [3, 97, 1, 40, 64, 5, 90]
    batches = [torch.randn(s, 6) for s in sizes]
    kw = {"window_size": 11, "progress": False, "topk": 5, "keep_events": True}
    fast = ba.record(net, batches, "1", **kw)
    _torch_path(monkeypatch)
    slow = ba.record(net, batches, "1", **kw)
    _assert_same_recording(fast, slow)
    np.testing.assert_array_equal(fast["fired"].values, slow["fired"].values)
    acts = hand_activations(net, torch.cat(batches), "1", batch=10_000)
    check_summaries(fast, acts, "1", window_size=11)


def test_kernel_parallel_blocks_match_numpy(monkeypatch):
    # a batch large enough for the multi-threaded kernel, float64 activations
    monkeypatch.setattr(kernels_module, "PARALLEL_MIN", 1)
    torch.manual_seed(10)
    net = nn.Sequential(nn.Linear(5, 300), nn.ReLU()).double()
    x = torch.randn(700, 5, dtype=torch.float64)
    ds = ba.record(net, x, "1", window_size=30, batch_size=350, progress=False)
    acts = hand_activations(net, x, "1", batch=350)
    check_summaries(ds, acts, "1", window_size=30)


def test_topk_ties_keep_the_earlier_event():
    # values from a small set: many ties at the top, across batches and 64-event chunks
    g = torch.Generator().manual_seed(11)
    x = torch.randint(0, 4, (300, 3), generator=g).float()
    ds = ba.record(nn.Sequential(nn.Identity()), x, "0", topk=6, batch_size=100,
                   progress=False)
    acts = x.numpy()
    order = np.argsort(-acts, axis=0, kind="stable")[:6].T  # earlier event first among ties
    np.testing.assert_array_equal(ds["topk_sample"].values, order)
    np.testing.assert_array_equal(ds["topk_value"].values,
                                  np.take_along_axis(acts, order.T, axis=0).T)


@pytest.mark.parametrize(("window", "sizes"), [(9, [5] * 20 + [3]), (4, [10, 10, 7]),
                                                (1, [3, 4]), (50, [7, 60, 33, 2])],
                         ids=["batch<window", "windows-in-batch", "window=1", "mixed"])
def test_windows_across_uneven_batches(window, sizes):
    g = torch.Generator().manual_seed(12)
    x = torch.randn(sum(sizes), 4, generator=g)
    batches = list(torch.split(x, sizes))
    ds = ba.record(nn.Sequential(nn.Identity()), batches, "0", window_size=window,
                   progress=False)
    fired = x.numpy() > 0
    m = len(x) // window
    np.testing.assert_array_equal(ds["window_count"].values,
                                  fired[: m * window].reshape(m, window, 4).sum(1))
    np.testing.assert_array_equal(ds["count"].values, fired.sum(0))


def test_histogram_range_grows_both_ways_exactly(monkeypatch):
    # the first batch spans [0, 1]; later batches reach far below and above
    g = torch.Generator().manual_seed(13)
    x = torch.cat([torch.rand(50, 5, generator=g), -30 * torch.rand(50, 5, generator=g),
                   torch.rand(50, 5, generator=g), 100 * torch.rand(50, 5, generator=g)])
    ds = ba.record(nn.Sequential(nn.Identity()), x, "0", batch_size=50, hist_bins=16,
                   progress=False)
    acts = x.double().numpy()
    edges, hist = ds["hist_edges"].values[0], ds["hist_count"].values[0]
    assert edges[0] <= acts.min() and edges[-1] >= acts.max()
    assert hist.sum() == acts.size
    assert np.abs(hist - np.histogram(acts, edges)[0]).sum() <= 2
    _torch_path(monkeypatch)
    slow = ba.record(nn.Sequential(nn.Identity()), x, "0", batch_size=50, hist_bins=16,
                     progress=False)
    np.testing.assert_array_equal(slow["hist_edges"].values, ds["hist_edges"].values)


def test_moments_on_ill_conditioned_data_beat_the_batch_merge(monkeypatch):
    # 1e4 + small noise in float32: the kernel's float64 power sums about a fixed shift are
    # accurate to ~1e-9; the per-batch float32 centring of the torch path is far worse
    g = torch.Generator().manual_seed(14)
    x = (1e4 + 1e-2 * torch.randn(6000, 3, generator=g, dtype=torch.float64)).float()
    x[:, 2] += torch.linspace(0, 5, 6000)  # a drifting mean: the first batch's shift is off
    acts = x.double().numpy()
    truth = {"act_var": acts.var(0), "act_skewness": scipy.stats.skew(acts),
             "act_kurtosis": scipy.stats.kurtosis(acts), "act_mean": acts.mean(0)}
    net = nn.Sequential(nn.Identity())
    fast = ba.record(net, x, "0", batch_size=128, progress=False)
    _torch_path(monkeypatch)
    slow = ba.record(net, x, "0", batch_size=128, progress=False)
    np.testing.assert_allclose(fast["act_mean"].values, truth["act_mean"], rtol=1e-12)
    np.testing.assert_allclose(fast["act_var"].values, truth["act_var"], rtol=1e-7)
    np.testing.assert_allclose(fast["act_skewness"].values, truth["act_skewness"], atol=1e-5)
    np.testing.assert_allclose(fast["act_kurtosis"].values, truth["act_kurtosis"], atol=1e-5)
    err_fast = np.abs(fast["act_var"].values / truth["act_var"] - 1).max()
    err_slow = np.abs(slow["act_var"].values / truth["act_var"] - 1).max()
    assert err_fast <= err_slow


def test_kernel_reports_infinite_activations():
    x = torch.randn(40, 3)
    x[13, 1] = float("inf")
    with pytest.raises(ValueError, match=r"NaN or infinite activations in units \[1\]"):
        ba.record(nn.Sequential(nn.Identity()), x, "0", progress=False)
    with pytest.raises(ValueError, match=r"NaN or infinite activations in units \[1\]"):
        ba.record(nn.Sequential(nn.Identity()), x, "0", progress=False, summaries=False)


def test_summaries_off_matches_summaries_on():
    torch.manual_seed(15)
    net = nn.Sequential(nn.Linear(4, 50), nn.ReLU())
    x = torch.randn(333, 4)
    on = ba.record(net, x, "1", window_size=7, batch_size=64, progress=False)
    off = ba.record(net, x, "1", window_size=7, batch_size=64, progress=False, summaries=False)
    for var in ("count", "window_count", "act_min", "act_max"):
        np.testing.assert_array_equal(on[var].values, off[var].values)


def test_spatial_max_matches_torch_amax_and_keeps_nan():
    g = torch.Generator().manual_seed(16)
    flat = torch.randn(7, 5, 9, generator=g)
    flat[2, 3, 4] = float("nan")
    flat[4, 1, 0] = float("nan")
    got = kernels_module.spatial_max(flat)
    np.testing.assert_array_equal(got.numpy(), flat.amax(2).numpy())
    assert got[2, 3].isnan() and got[4, 1].isnan()


# ---------------------------------------------------------------- devices, names, capture


def test_meta_device_is_refused_with_the_reason():
    with torch.device("meta"):
        net = nn.Sequential(nn.Linear(4, 8), nn.ReLU())
    with pytest.raises(ValueError, match=r"'meta' device, which holds shapes but no values; "
                                         r"load the weights first"):
        ba.record(net, torch.randn(10, 4), "1", progress=False)
    with pytest.raises(ValueError, match=r"'meta' device"):
        record_module.capture(net, torch.randn(10, 4), "1")
    cpu_net = nn.Sequential(nn.Linear(4, 8), nn.ReLU())
    with pytest.raises(ValueError, match=r"device: 'meta' holds shapes but no values"):
        ba.record(cpu_net, torch.randn(10, 4), "1", device="meta", progress=False)
    with pytest.raises(ValueError, match=r"device: the module's parameters are on cpu"):
        ba.record(cpu_net, torch.randn(10, 4), "1", device="cuda", progress=False)


def test_other_devices_record_as_on_cpu():
    torch.manual_seed(4)
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU())
    x = torch.randn(50, 4)
    on_cpu = ba.record(net, x, "1", device="cpu", progress=False)
    assert int(on_cpu["n"][0]) == 50
    if not torch.cuda.is_available():
        return
    on_gpu = ba.record(net.cuda(), x, "1", progress=False)
    np.testing.assert_array_equal(on_gpu["count"].values, on_cpu["count"].values)


def test_default_network_name_is_the_zoo_name_else_the_class():
    net = nn.Sequential(nn.Linear(2, 3), nn.ReLU())
    x = torch.randn(6, 2)
    assert ba.record(net, x, "1", progress=False)["network"].values[0] == "Sequential"
    net.bayesactiv_network = "digits-mlp"
    assert ba.record(net, x, "1", progress=False)["network"].values[0] == "digits-mlp"
    assert ba.record(net, x, "1", network="mine", progress=False)["network"].values[0] == "mine"


@pytest.mark.parametrize("spatial", ["any", "per_position"])
def test_capture_gives_the_events_record_reads_conv(cnn, digits, spatial):
    x = digits[0][:70].reshape(-1, 1, 8, 8)
    got = record_module.capture(cnn, x, "3", spatial=spatial, batch_size=BATCH)
    want = hand_activations(cnn, x, "3", mode=spatial)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(record_module.capture(cnn, x, "3", units=[5, 1], spatial=spatial),
                                  want[:, [5, 1]])
    ds = ba.record(cnn, x, "3", spatial=spatial, progress=False)
    np.testing.assert_array_equal(ds["count"].values, (got > 0).sum(0))


def test_capture_gives_the_events_record_reads_tokens():
    torch.manual_seed(5)
    net = nn.Sequential(nn.Linear(3, 6), nn.ReLU()).eval()
    x = torch.randn(9, 4, 3)  # [batch, sequence, features]: a unit is a feature, a token an event
    got = record_module.capture(net, x, "1", units=[2], batch_size=4)
    assert got.shape == (9 * 4, 1)
    np.testing.assert_array_equal(got, hand_activations(net, x, "1", mode="token", batch=4)[:, [2]])


def test_capture_restores_every_mode_and_removes_its_hook(mlp, digits):
    mlp.train()
    mlp[1].eval()
    try:
        record_module.capture(mlp, digits[0][:20], "3")
        assert mlp.training and mlp[0].training and not mlp[1].training
        with pytest.raises(ValueError, match=r"units: layer '3' has 16 units, so index 16"):
            record_module.capture(mlp, digits[0][:20], "3", units=[16])
        assert _hook_count(mlp) == 0
        assert mlp.training and mlp[2].training and not mlp[1].training
    finally:
        mlp.eval()


def test_capture_errors(mlp, digits):
    x = digits[0][:10]
    with pytest.raises(ValueError, match=r"no module named 'relu9'"):
        record_module.capture(mlp, x, "relu9")
    with pytest.raises(ValueError, match=r"matches 2 modules"):
        record_module.capture(mlp, x, "[13]")
    with pytest.raises(ValueError, match=r"units: expected an integer >= 0"):
        record_module.capture(mlp, x, "1", units=[-1])
    with pytest.raises(ValueError, match="spatial"):
        record_module.capture(mlp, x, "1", spatial="all")


# ---------------------------------------------------------------- the fused kernel and the dataset


def _kernel_args(a: np.ndarray, fill: int, w: int, k: int, block: int, keep: bool):
    rng = np.random.default_rng(3)
    e, u = a.shape
    nblocks = -(-u // block)
    top_v = np.sort(rng.normal(size=(k, u)), axis=0)[::-1].astype(a.dtype)
    return [a, (0.1 * rng.normal(size=u)).astype(a.dtype), fill, w,
            np.zeros(((fill + e - 1) // w + 1, u), np.int64), np.empty(u, a.dtype),
            np.empty(u, a.dtype), np.zeros(u, np.int64), keep,
            np.zeros((e, u) if keep else (0, 0), np.bool_), True, np.zeros(u, np.int64),
            np.zeros((4, u)), rng.normal(size=u), top_v, np.full((k, u), -1, np.int64), 5,
            np.zeros((nblocks, 8), np.int64), -0.5, 1.5, 8 / 2.0, np.zeros(nblocks, np.int64),
            block]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_kernel_equals_its_python_source_with_frequent_count_flushes(monkeypatch, dtype):
    # the compiled kernel keeps int32 counts and flushes them every 2**30 events; its Python
    # source, run with a flush every 4 events, must give the same outputs bit for bit
    kern = kernels_module.compiled()["fused_serial"]
    rng = np.random.default_rng(2)
    a = rng.normal(size=(37, 45)).astype(dtype)
    a[a < 0] = 0
    a[rng.random(a.shape) < 0.02] = 1.0  # ties in the top k
    a[0, 3], a[5, 7], a[9, 8] = np.inf, -np.inf, np.nan
    for fill, w, k, block, keep in [(0, 10, 3, 16, False), (4, 7, 0, 32, True),
                                    (0, 37, 2, 64, True)]:
        compiled_args = _kernel_args(a, fill, w, k, block, keep)
        python_args = _kernel_args(a, fill, w, k, block, keep)
        kern(*compiled_args)
        monkeypatch.setattr(kernels_module, "_FLUSH", 3)
        with np.errstate(invalid="ignore"):
            kernels_module._fused_kernel(*python_args)
        monkeypatch.undo()
        for i, (x, y) in enumerate(zip(compiled_args, python_args, strict=True)):
            if isinstance(x, np.ndarray):
                np.testing.assert_array_equal(x, y, err_msg=f"argument {i}")


def test_recorded_dataset_layout_is_pinned(cnn, digits):
    # one dataset built at once: the variables, coordinates and attributes in their order
    x, _ = digits
    net = nn.Sequential(cnn, nn.Flatten(), nn.LazyLinear(7), nn.ReLU())
    net(x[:2].reshape(-1, 1, 8, 8))
    ds = ba.record(net, x[:50].reshape(-1, 1, 8, 8), ["0.1", "3"], window_size=20,
                   keep_events=False, progress=False, batch_size=25)
    assert list(ds.data_vars) == [
        "count", "n", "window_count", "threshold", "act_min", "act_max", "act_mean", "act_var",
        "act_skewness", "act_kurtosis", "act_zero", "cluster_n", "cluster_fired",
        "cluster_count_sq", "cluster_count_n", "cluster_n_sq", "layer_count_sq",
        "layer_count_n", "layer_count", "topk_sample", "topk_value", "hist_count", "hist_edges"]
    assert list(ds.coords) == ["unit", "network", "layer", "index", "hist_group"]
    assert list(ds.attrs) == ["threshold_rule", "threshold_params", "spatial", "source",
                              "created", "bayesactiv_version", "window_size", "layer_spatial",
                              "network", "layer_modules"]
    for name in ("unit", "network", "layer", "hist_group"):
        values = ds[name].values
        assert values.dtype == object and all(type(v) is str for v in values), name
    assert ds["unit"].values[0] == "Sequential/0.1/0"
    assert ds["hist_group"].values.tolist() == ["Sequential/0.1", "Sequential/3"]
    assert ds.indexes["unit"].is_unique
    assert ba.validate(ds) is ds


def test_validate_refuses_duplicate_unit_ids():
    ds = ba.make_dataset([1, 2], 5, network="net", layer="fc")
    twice = ds.isel(unit=[0, 0])
    with pytest.raises(ba.data.DatasetError, match="unit: ids are not unique"):
        ba.validate(twice)


def test_moments_from_sums_equal_the_torch_formulas_bit_for_bit():
    from bayesactiv.recording.summaries import moments_from_sums

    rng = np.random.default_rng(4)
    shift = rng.normal(size=300) * 1e3
    sums = rng.normal(size=(4, 300)) * np.array([[1e2], [1e4], [1e6], [1e8]])
    sums[1] = np.abs(sums[1])
    n = 977
    t_shift, t_sums = torch.from_numpy(shift), torch.from_numpy(sums)
    s1, s2, s3, s4 = (t_sums[j] / n for j in range(4))
    d = s1
    expected = (t_shift + d, (s2 - d * d) * n, (s3 - 3 * d * s2 + 2 * d ** 3) * n,
                (s4 - 4 * d * s3 + 6 * d * d * s2 - 3 * d ** 4) * n)
    for got, want in zip(moments_from_sums(shift, sums, n), expected, strict=True):
        np.testing.assert_array_equal(got, want.numpy())


# ---------------------------------------------------------------- the dataset, built directly


def _identical_builds(ds_direct, ds_public) -> None:
    assert ds_direct.identical(ds_public)
    assert list(ds_direct.variables) == list(ds_public.variables)
    assert list(ds_direct.coords) == list(ds_public.coords)
    assert dict(ds_direct.sizes) == dict(ds_public.sizes)
    assert list(ds_direct.dims) == list(ds_public.dims)
    assert list(ds_direct.attrs) == list(ds_public.attrs)
    assert list(ds_direct.xindexes) == list(ds_public.xindexes)
    for name, index in ds_public.xindexes.items():
        mine = ds_direct.xindexes[name]
        assert type(mine) is type(index)
        assert mine.index.equals(index.index) and mine.index.name == index.index.name
        assert mine.index.dtype == index.index.dtype and mine.coord_dtype == index.coord_dtype
    for name, var in ds_public.variables.items():
        mine = ds_direct.variables[name]
        assert type(mine) is type(var) and mine.dtype == var.dtype, name
        assert type(mine._data) is type(var._data), name


@pytest.mark.parametrize("case", ["dense", "conv", "events", "tokens"])
def test_the_dataset_built_directly_is_xarrays(monkeypatch, case, mlp, cnn, digits):
    """record builds its dataset without xarray's constructor (whose alignment has nothing to
    do on its parts); the result is the constructor's, variable for variable and index for
    index."""
    import xarray as xr

    parts = []
    build = record_module._dataset

    def keep(data_vars, coords, attrs):
        parts.append((dict(data_vars), dict(coords), dict(attrs)))
        return build(data_vars, coords, attrs)

    monkeypatch.setattr(record_module, "_dataset", keep)
    x, y = digits
    if case == "dense":
        ds = ba.record(mlp, x[:50], ["1", "3"], window_size=7, progress=False)
    elif case == "conv":
        ds = ba.record(cnn, x[:20].reshape(-1, 1, 8, 8), ["1", "3"], progress=False)
    elif case == "events":
        ds = ba.record(cnn, x[:20].reshape(-1, 1, 8, 8), "1", keep_events=True,
                       labels=np.array([f"d{v}" for v in y[:20]], dtype=object),
                       progress=False)
    else:
        net = nn.Sequential(nn.Linear(4, 6), nn.ReLU())
        ds = ba.record(net, torch.randn(5, 3, 4), "1", keep_events=True, topk=2, hist_bins=4,
                       progress=False)
    data_vars, coords, attrs = parts[0]
    _identical_builds(ds, xr.Dataset(data_vars, coords=coords, attrs=attrs))


def test_bin_edges_and_round_down_array_equal_numpy_and_torch_bit_for_bit():
    from bayesactiv.recording.summaries import bin_edges

    rng = np.random.default_rng(5)
    ranges = [(0.0, 1.0), (0.0, 0.0), (5e-324, 1e-323), (0.0, 5e-324), (-1e308, 1e308),
              (1e16, 1e16 + 2)]
    for _ in range(500):
        lo = float(rng.normal() * 10.0 ** rng.integers(-10, 10))
        ranges.append((lo, lo + abs(float(rng.normal() * 10.0 ** rng.integers(-20, 10)))))
    with np.errstate(all="ignore"):
        for lo, hi in ranges:
            for bins in (1, 2, 3, 64, 2048):
                want = np.linspace(lo, hi, bins + 1)
                got = bin_edges(lo, hi, bins)
                assert got.dtype == want.dtype and got.tobytes() == want.tobytes(), (lo, hi)
    values = np.concatenate([rng.normal(size=2000) * 10.0 ** rng.integers(-40, 40, 2000),
                             [0.0, -0.0, 1e-45, 1e-46, 3.4e38, 3.5e38, -3.5e38, 0.1, 1 / 3]])
    for dt, tdt in ((np.float32, torch.float32), (np.float64, torch.float64)):
        got = rules_module.round_down_array(values, np.dtype(dt))
        want = rules_module.round_down(torch.from_numpy(values), tdt).numpy()
        assert got.dtype == want.dtype and got.tobytes() == want.tobytes()
        for j in [*range(0, 2000, 20), *range(2000, values.shape[0])]:  # one value (a Fixed rule)
            one = rules_module.round_down_array(values[j : j + 1], np.dtype(dt))
            assert one.dtype == want.dtype and one.tobytes() == want[j : j + 1].tobytes()


def test_record_keeps_the_callers_torch_thread_count():
    """Starting numba's thread pool must not reset torch's intra-op threads (checked in a new
    process, where the pool starts)."""
    import subprocess
    import sys

    code = ("import torch; torch.set_num_threads(1)\n"
            "import bayesactiv as ba\n"
            "net = torch.nn.Sequential(torch.nn.Linear(4, 2048), torch.nn.ReLU())\n"
            "ba.record(net, torch.randn(600, 4), ['1'], progress=False, batch_size=600)\n"
            "print(torch.get_num_threads())\n")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True).stdout
    assert out.split() == ["1"]

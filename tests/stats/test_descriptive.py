"""Tests of bayesactiv.stats.descriptive and bayesactiv.viz.plots on simulated activations."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import xarray as xr
from scipy import stats

import bayesactiv as ba
from bayesactiv.data import DatasetError
from bayesactiv.data.checks import ArgumentError
from bayesactiv.stats import baselines as bl
from bayesactiv.stats import descriptive as de
from bayesactiv.viz import plots


def simulate(n=3000, seed=0, k_top=5):
    """A ReLU-like activation matrix of two layers, summarised as the recorder would."""
    rng = np.random.default_rng(seed)
    pre = np.concatenate(
        [rng.normal(rng.normal(0, 1, 8), rng.uniform(0.5, 2, 8), (n, 8)),
         rng.gamma(2.0, 1.0, (n, 6)) - rng.uniform(0, 6, 6)], axis=1)
    pre[:, 0] = -1.0  # a dead unit
    pre[:, 8] = np.abs(pre[:, 8]) + 0.1  # a saturated unit
    act = np.maximum(pre, 0.0)
    layer = np.array(["fc1"] * 8 + ["fc2"] * 6)
    fired = act > 0
    ds = ba.make_dataset(fired.sum(0), n, network="net", layer=layer, fired=fired,
                         label=rng.integers(0, 3, n))
    ds["act_min"] = ("unit", act.min(0))
    ds["act_max"] = ("unit", act.max(0))
    ds["act_mean"] = ("unit", act.mean(0))
    ds["act_var"] = ("unit", act.var(0))
    ds["act_skewness"] = ("unit", stats.skew(act, axis=0))
    ds["act_kurtosis"] = ("unit", stats.kurtosis(act, axis=0))
    ds["act_zero"] = ("unit", (act == 0).sum(0))
    edges = np.stack([np.linspace(act[:, layer == g].min(), act[:, layer == g].max(), 41)
                      for g in ("fc1", "fc2")])
    counts = np.stack([np.histogram(act[:, layer == g], bins=edges[i])[0]
                       for i, g in enumerate(("fc1", "fc2"))])
    ds["hist_count"] = (("hist_group", "hist_bin"), counts)
    ds["hist_edges"] = (("hist_group", "hist_edge"), edges)
    ds = ds.assign_coords(hist_group=["net/fc1", "net/fc2"])
    order = np.argsort(-act, axis=0, kind="stable")[:k_top]
    top_s = order.T.copy()
    top_v = np.take_along_axis(act, order, axis=0).T.copy()
    top_s[0, :] = -1  # the dead unit never fired: no top inputs
    ds["topk_sample"] = (("unit", "rank"), top_s)
    ds["topk_value"] = (("unit", "rank"), top_v)
    return ba.validate(ds), act, layer


@pytest.fixture(scope="module")
def sim():
    return simulate()


def test_summary_matches_numpy_and_scipy(sim):
    ds, act, layer = sim
    s = de.activation_summary(ds)
    np.testing.assert_allclose(s["range"], act.max(0) - act.min(0))
    np.testing.assert_allclose(s["std"], act.std(0))
    for g in ("fc1", "fc2"):
        pooled = act[:, layer == g].ravel()
        row = s.sel(group=f"net/{g}")
        assert row["pooled_mean"].item() == pytest.approx(pooled.mean())
        assert row["pooled_var"].item() == pytest.approx(pooled.var())
        assert row["pooled_skewness"].item() == pytest.approx(stats.skew(pooled), rel=1e-8)
        assert row["pooled_kurtosis"].item() == pytest.approx(stats.kurtosis(pooled), rel=1e-8)
        assert row["pooled_min"].item() == pooled.min() and row["pooled_max"].item() == pooled.max()
    everything = act.ravel()
    assert s["pooled_kurtosis"].sel(group="net/*").item() == pytest.approx(
        stats.kurtosis(everything), rel=1e-8)


def test_zero_mode_dead_saturated(sim):
    ds, act, layer = sim
    z = de.zero_mode(ds)
    np.testing.assert_allclose(z["zero_fraction"], (act == 0).mean(0))
    assert z["group_zero_fraction"].sel(group="net/fc2").item() == pytest.approx(
        (act[:, layer == "fc2"] == 0).mean())
    d = de.dead_saturated(ds)
    assert d["dead"].values.tolist() == (act.max(0) == 0).tolist()
    assert d["saturated"].values.tolist() == (act.min(0) > 0).tolist()
    assert d["dead_fraction"].sel(group="net/fc1").item() == pytest.approx(
        (act[:, layer == "fc1"].max(0) == 0).mean())
    assert d["n_saturated"].sel(group="net/*").item() == (act.min(0) > 0).sum()


def test_histogram_cdf_density(sim):
    ds, act, layer = sim
    h = de.histogram(ds)
    widths = h["width"].values
    np.testing.assert_allclose((h["density"].values * widths).sum(1), 1.0)
    c = de.ecdf(ds)
    edges = c["edges"].values[1]
    pooled = act[:, layer == "fc2"].ravel()
    # exact at interior edges (the last bin of np.histogram is closed)
    ref = (pooled[None, :] < edges[1:-1, None]).mean(1)
    np.testing.assert_allclose(c["cdf"].values[1, 1:-1], ref)
    assert c["cdf"].values[1, -1] == 1.0
    kde = de.density(ds)
    x = kde["x"].values
    # integrates to about 1 (mass can leak past the range by about a bandwidth)
    area = np.trapezoid(kde["density"].values, x, axis=1)
    assert np.all((area > 0.8) & (area < 1.0 + 1e-9))
    assert np.all(kde["bandwidth"].values > 0)
    # on a smooth, wide distribution the binned KDE matches scipy's KDE
    rng = np.random.default_rng(1)
    values = rng.normal(3, 1, 20000)
    e = np.linspace(-2, 8, 201)
    smooth = ba.make_dataset([1], 1, network="n", layer="l")
    smooth["hist_count"] = (("hist_group", "hist_bin"), np.histogram(values, e)[0][None])
    smooth["hist_edges"] = (("hist_group", "hist_edge"), e[None])
    k = de.density(smooth.assign_coords(hist_group=["n/l"]), bandwidth=0.3)
    ref = stats.gaussian_kde(values, bw_method=0.3 / values.std(ddof=1))(k["x"].values[0])
    np.testing.assert_allclose(k["density"].values[0], ref, atol=0.01)
    with pytest.raises(ValueError, match="bandwidth"):
        de.density(ds, bandwidth=-1)


def test_coactivation_phi(sim):
    ds, act, _ = sim
    phi = de.coactivation(ds, "fc1")
    assert phi.dims == ("unit", "unit_other") and phi.shape == (8, 8)
    f = act[:, :8] > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        ref = np.corrcoef(f.T)
    ok = np.isfinite(ref)
    np.testing.assert_allclose(phi.values[ok], ref[ok], atol=1e-6)
    assert np.isnan(phi.values[0]).all()  # the dead unit is constant
    with pytest.raises(ValueError, match="layer"):
        de.coactivation(ds, "fc9")


def test_top_inputs(sim):
    ds, act, _ = sim
    t = de.top_inputs(ds, "net/fc1/3")
    assert t["sample"].values.tolist() == np.argsort(-act[:, 3], kind="stable")[:5].tolist()
    np.testing.assert_allclose(t["value"], np.sort(act[:, 3])[::-1][:5])
    assert "label" in t
    assert de.top_inputs(ds, 0).sizes["rank"] == 0  # the dead unit: nothing
    with pytest.raises(ValueError, match="unit"):
        de.top_inputs(ds, "net/fc1/99")


def _with_epochs(act: np.ndarray, layer: np.ndarray, epoch: np.ndarray) -> xr.Dataset:
    """The per-unit summaries of ``act`` in a dataset whose units carry an epoch."""
    fired = act > 0
    ds = ba.make_dataset(fired.sum(0), act.shape[0], network="net", layer=layer, epoch=epoch)
    ds["act_min"] = ("unit", act.min(0))
    ds["act_max"] = ("unit", act.max(0))
    ds["act_mean"] = ("unit", act.mean(0))
    ds["act_var"] = ("unit", act.var(0))
    ds["act_skewness"] = ("unit", stats.skew(act, axis=0))
    ds["act_kurtosis"] = ("unit", stats.kurtosis(act, axis=0))
    ds["act_zero"] = ("unit", (act == 0).sum(0))
    return ds


@pytest.mark.parametrize("func", [de.activation_summary, de.zero_mode, de.dead_saturated])
def test_aggregates_take_group_by(sim, func):
    ds, act, layer = sim
    epoch = np.array([0, 0, 0, 0, 7, 7, 7, 7, 0, 0, 0, 7, 7, 7])
    by_epoch = func(_with_epochs(act, layer, epoch), group_by=("network", "layer", "epoch"))
    assert by_epoch["group"].values.tolist() == [
        "net/fc1/0", "net/fc1/7", "net/fc2/0", "net/fc2/7", "net/*/0", "net/*/7"]
    assert by_epoch["group_epoch"].values.tolist() == [0, 7, 0, 7, 0, 7]
    for label in ("net/fc1/7", "net/*/0"):
        row = by_epoch.sel(group=label)
        lay, ep = str(row["group_layer"].values), int(row["group_epoch"])
        units = (epoch == ep) & ((layer == lay) | (lay == "*"))
        pooled = act[:, units]
        if func is de.activation_summary:
            assert row["pooled_mean"].item() == pytest.approx(pooled.mean())
            assert row["pooled_kurtosis"].item() == pytest.approx(stats.kurtosis(pooled.ravel()))
        elif func is de.zero_mode:
            assert row["group_zero_fraction"].item() == pytest.approx((pooled == 0).mean())
        else:
            assert row["n_dead"].item() == (pooled.max(0) == 0).sum()
            assert row["n_units"].item() == units.sum()
    # the default is the layer grouping, exactly as group_by=("network", "layer")
    assert func(ds).identical(func(ds, group_by=("network", "layer")))
    assert func(ds)["group"].values.tolist() == ["net/fc1", "net/fc2", "net/*"]
    with pytest.raises(ArgumentError, match="group_by"):
        func(ds, group_by=("layer", "sample"))


def test_density_arguments_are_checked(sim):
    ds, _, _ = sim
    for kwargs, name in (({"bandwidth": "0.3"}, "bandwidth"), ({"bandwidth": 0.0}, "bandwidth"),
                         ({"n_grid": 1}, "n_grid"), ({"n_grid": 20.5}, "n_grid")):
        with pytest.raises(ArgumentError, match=f"^{name}: "):
            de.density(ds, **kwargs)
    assert de.density(ds, n_grid=5)["x"].sizes["grid"] == 5


@pytest.mark.parametrize(
    ("func", "field", "how"),
    [
        (de.activation_summary, "act_mean", "record("),
        (de.zero_mode, "act_zero", "record("),
        (de.histogram, "hist_count", "record("),
        (de.ecdf, "hist_count", "record("),
        (de.density, "hist_count", "record("),
        (lambda d: de.coactivation(d, "l"), "fired", "keep_events=True"),
        (lambda d: de.top_inputs(d, 0), "topk_sample", "record("),
        (lambda d: plots.plot_histograms(d), "hist_count", "record("),
        (lambda d: plots.plot_coactivation(d, "l"), "fired", "keep_events=True"),
    ],
)
def test_missing_fields_are_named(func, field, how):
    bare = ba.make_dataset([1, 2], 10, network="n", layer="l")
    with pytest.raises(DatasetError, match=field) as err:
        func(bare)
    assert how in str(err.value)


def test_plots_return_figures(sim, tmp_path):
    ds, _, _ = sim
    figs = [
        plots.plot_histograms(ds, log=True, kde=True),
        plots.plot_cdf(ds),
        plots.plot_dead_saturated(ds),
        plots.plot_coactivation(ds, "fc1"),
        plots.plot_mc_curve(bl.monte_carlo_curve(ds, n_points=20)),
    ]
    for i, fig in enumerate(figs):
        assert isinstance(fig, matplotlib.figure.Figure)
        fig.savefig(tmp_path / f"{i}.png")
        matplotlib.pyplot.close(fig)
    assert len(figs[0].axes) == 2  # one panel per layer

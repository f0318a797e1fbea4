"""Tests of bayesactiv.compare on simulated firing with known truth."""

from __future__ import annotations

import importlib
import warnings

import numpy as np
import pytest
import xarray as xr

import bayesactiv as ba
from bayesactiv.comparison.contrasts import Comparison
from bayesactiv.data import DatasetError
from bayesactiv.data.checks import ArgumentError

compare_module = importlib.import_module("bayesactiv.comparison.contrasts")

N_INPUTS = 500
WINDOW = 25
FIT = {"draws": 300, "chains": 2, "tune": 300, "n_resamples": 1000}
# short chains keep the suite fast; their ESS is below models' warning level of 400, and
# every test checks the intervals against the simulated truth instead
pytestmark = pytest.mark.filterwarnings("ignore::bayesactiv.bayes.models.ConvergenceWarning")


def simulate(network, layers, rng, *, epoch=None, threshold_rule="activation > 0"):
    """Fired events of independent units; ``layers`` maps layer name -> true thetas."""
    fired_parts, names, thetas = [], [], []
    for name, theta in layers.items():
        fired_parts.append(rng.random((N_INPUTS, theta.size)) < theta)
        names += [name] * theta.size
        thetas.append(theta)
    fired = np.concatenate(fired_parts, axis=1)
    n_windows = N_INPUTS // WINDOW
    wc = fired[: n_windows * WINDOW].reshape(n_windows, WINDOW, -1).sum(axis=1)
    ds = ba.make_dataset(
        fired.sum(axis=0), N_INPUTS, network=network, layer=names, epoch=epoch, fired=fired,
        window_count=wc, window_size=WINDOW, threshold_rule=threshold_rule,
    )
    return ds, {name: theta for name, theta in zip(layers, thetas, strict=True)}


@pytest.fixture(scope="module")
def truth():
    rng = np.random.default_rng(20240501)
    a, ta = simulate("A", {"fc1": rng.beta(2, 8, 200), "fc2": rng.beta(3, 3, 60)}, rng)
    b, tb = simulate("B", {"fc1": rng.beta(4, 6, 200), "fc2": rng.beta(3, 3, 60)}, rng)
    return {"A": (a, ta), "B": (b, tb)}


@pytest.fixture(scope="module")
def networks(truth):
    """One joint fit: A (reference), B (higher fc1 rates), and C = an exact copy of A's data."""
    a, b = truth["A"][0], truth["B"][0]
    return ba.compare({"A": a, "B": b, "C": a}, seed=1, **FIT)


@pytest.fixture(scope="module")
def epoch_truth():
    """Epoch 0: Beta(5, 5) firing; epoch 5: lower rates and 30 of 120 units dead (theta = 0)."""
    rng = np.random.default_rng(7)
    e0, t0 = simulate("net", {"fc": rng.beta(5, 5, 120)}, rng)
    theta5 = np.concatenate([np.zeros(30), rng.beta(1.5, 8.5, 90)])
    e5, t5 = simulate("net", {"fc": theta5}, rng)
    return e0, t0["fc"], e5, t5["fc"]


@pytest.fixture(scope="module")
def epochs(epoch_truth):
    e0, _, e5, _ = epoch_truth
    return ba.compare({5: e5, 0: e0}, by="epoch", quantities=("mfr", "frac_dead"), seed=2, **FIT)


def row(cmp, contrast, quantity):
    return cmp.result.sel(contrast=contrast, quantity=quantity)


def synthetic_comparison(levels, layers, reference="digits-mlp", quantities=("mfr", "mf"), seed=0):
    """A Comparison built directly (no fit): normal draws per (level, layer) contrast."""
    rng = np.random.default_rng(seed)
    pairs = [(lev, lay) for lev in levels for lay in layers]
    contrasts = [f"{lay}: {lev} − {reference}" for lev, lay in pairs]
    coords = {"contrast": contrasts, "level": ("contrast", [lev for lev, _ in pairs]),
              "reference": ("contrast", [reference] * len(pairs)),
              "layer": ("contrast", [lay for _, lay in pairs])}
    diffs = xr.Dataset(
        {q: (("chain", "draw", "contrast"), rng.normal(0.1, 0.02, (2, 50, len(pairs))))
         for q in quantities}, coords=coords)
    result = xr.Dataset(
        {"mean": (("contrast", "quantity"), np.full((len(pairs), len(quantities)), 0.1))},
        coords={**coords, "quantity": list(quantities),
                "level_label": ("contrast", [lev for lev, _ in pairs]),
                "reference_label": ("contrast", [reference] * len(pairs)),
                "subject": ("contrast", [f"of layer {lay}" for _, lay in pairs])},
        attrs={"by": "network", "reference": reference, "prob": 0.9},
    )
    return Comparison(result, None, diffs, xr.Dataset())


def _label_extents(fig):
    """Window extents of the row labels of a Comparison forest plot, after drawing."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    label_axes = [ax for ax in fig.axes if ax.texts]
    forest_left = min(ax.get_window_extent(renderer).x0 for ax in fig.axes if ax.lines)
    extents = [t.get_window_extent(renderer) for ax in label_axes for t in ax.texts]
    return [t.get_text() for ax in label_axes for t in ax.texts], extents, forest_left


# ---------------------------------------------------------------- against simulated truth


def test_result_layout(networks):
    res = networks.result
    assert isinstance(networks, Comparison)
    assert res["quantity"].values.tolist() == ["mfr", "mf", "frac_dead", "mu", "kappa"]
    assert res["contrast"].values.tolist() == [
        "fc1: B − A", "fc2: B − A", "fc1: C − A", "fc2: C − A"
    ]
    for name in ("mean", "low", "high", "pd", "p_positive", "boot_estimate", "boot_low", "boot_high"):
        assert res[name].dims == ("contrast", "quantity")
    assert res.attrs["reference"] == "A" and res.attrs["by"] == "network"
    d = networks.differences
    assert set(d.data_vars) == {"mfr", "mf", "frac_dead", "mu", "kappa"}
    assert d["mfr"].dims == ("chain", "draw", "contrast")
    assert d.sizes["chain"] == 2 and d.sizes["draw"] == 300
    assert (res["low"] <= res["mean"]).all() and (res["mean"] <= res["high"]).all()
    assert ((res["pd"] >= 0) & (res["pd"] <= 1)).all()
    assert (res["p_positive"] + res["p_negative"] <= 1 + 1e-12).all()
    # pd >= 0.5 unless draws sit exactly on 0 (a fraction of dead units can)
    no_ties = (res["p_positive"] + res["p_negative"]) == 1
    assert (res["pd"].where(no_ties, 1) >= 0.5).all()


def test_mfr_difference_covers_truth_and_verdict(networks, truth):
    (_, ta), (_, tb) = truth["A"], truth["B"]
    true_diff = tb["fc1"].mean() - ta["fc1"].mean()  # about 0.2
    r = row(networks, "fc1: B − A", "mfr")
    assert float(r["low"]) < true_diff < float(r["high"])
    assert float(r["low"]) > 0.1
    assert float(r["pd"]) > 0.99
    # the posterior draws of the difference are the group draws subtracted, matched on layer
    gd = networks.fit.group_draws()
    pick = {k: gd[k].values for k in ("network", "layer")}
    ib = np.flatnonzero((pick["network"] == "B") & (pick["layer"] == "fc1"))[0]
    ia = np.flatnonzero((pick["network"] == "A") & (pick["layer"] == "fc1"))[0]
    expected = gd["mfr"].isel(group=ib) - gd["mfr"].isel(group=ia)
    got = networks.differences["mfr"].sel(contrast="fc1: B − A")
    np.testing.assert_allclose(got.values, expected.values)
    lines = [v for v in networks.verdicts(["mfr"]) if "layer fc1: B − A" in v]
    assert len(lines) == 1
    assert lines[0].startswith("MFR of layer fc1: B − A = 0.")
    assert "(90% CrI" in lines[0] and "P(>0) = 1.00" in lines[0]
    assert lines[0].endswith("higher in B.")


def test_identical_data_shows_no_difference(networks, truth):
    for layer in ("fc1", "fc2"):
        r = row(networks, f"{layer}: C − A", "mfr")
        assert float(r["low"]) < 0 < float(r["high"])
        assert float(r["boot_estimate"]) == 0.0
    line = next(v for v in networks.verdicts(["mfr"]) if "layer fc1: C − A" in v)
    assert line.endswith("interval includes 0: no difference shown at this level.")
    assert "higher" not in line and "lower" not in line
    # fc2 was simulated from the same Beta(3, 3) in A and B: the interval covers the
    # (small) difference of the realized mean thetas
    true_diff = truth["B"][1]["fc2"].mean() - truth["A"][1]["fc2"].mean()
    r = row(networks, "fc2: B − A", "mfr")
    assert float(r["low"]) < true_diff < float(r["high"])


def test_bootstrap_agrees_with_posterior_for_mfr(networks, truth):
    (a, ta), (b, tb) = truth["A"], truth["B"]
    r = row(networks, "fc1: B − A", "mfr")
    fc1 = a["layer"] == "fc1"
    observed = float((b["count"] / b["n"])[fc1.values].mean() - (a["count"] / a["n"])[fc1.values].mean())
    assert float(r["boot_estimate"]) == pytest.approx(observed, abs=1e-12)
    assert float(r["boot_estimate"]) == pytest.approx(float(r["mean"]), abs=0.01)
    boot_width = float(r["boot_high"] - r["boot_low"])
    post_width = float(r["high"] - r["low"])
    assert 0.5 < boot_width / post_width < 2.0
    assert float(r["boot_low"]) < tb["fc1"].mean() - ta["fc1"].mean() < float(r["boot_high"])
    # mu's frequentist analog is the MFR
    np.testing.assert_allclose(
        networks.result["boot_estimate"].sel(quantity="mu"),
        networks.result["boot_estimate"].sel(quantity="mfr"),
    )


def test_bootstrap_mf_matches_baselines_and_kappa_is_nan(networks, truth):
    (a, _), (b, _) = truth["A"], truth["B"]
    expected = float(ba.baselines.fano_factor(b)["mf"].sel(group="B/fc1")) - float(
        ba.baselines.fano_factor(a)["mf"].sel(group="A/fc1")
    )
    assert float(row(networks, "fc1: B − A", "mf")["boot_estimate"]) == pytest.approx(expected)
    kappa = networks.result.sel(quantity="kappa")
    assert np.isnan(kappa["boot_estimate"]).all() and np.isnan(kappa["boot_low"]).all()
    note = str(networks.result["boot_note"].sel(quantity="kappa").values)
    assert "no simple frequentist counterpart" in note


def test_epoch_comparison(epochs, epoch_truth):
    _, t0, _, t5 = epoch_truth
    res = epochs.result
    assert res.attrs["by"] == "epoch" and res.attrs["reference"] == "0"  # earliest epoch
    assert res["contrast"].values.tolist() == ["net/fc: epoch 5 − epoch 0"]
    assert res["level"].values.tolist() == [5]
    r = res.sel(quantity="mfr").isel(contrast=0)
    assert float(r["low"]) < t5.mean() - t0.mean() < float(r["high"])
    line = epochs.verdicts(["mfr"])[0]
    assert line.startswith("MFR of layer fc in network net: epoch 5 − epoch 0 = −0.")
    assert line.endswith("lower at epoch 5.") and "P(<0) = 1.00" in line
    # the 30 dead units: fraction dead rises by about 0.25
    true_dead = (t5 < 0.01).mean() - (t0 < 0.01).mean()
    r = res.sel(quantity="frac_dead").isel(contrast=0)
    assert float(r["low"]) <= true_dead <= float(r["high"])
    assert float(r["low"]) > 0.1
    assert float(r["boot_low"]) <= true_dead <= float(r["boot_high"])
    assert epochs.verdicts(["frac_dead"])[0].endswith("higher at epoch 5.")


def test_layer_comparison_reuses_the_fit(networks, monkeypatch):
    def no_refit(*args, **kwargs):
        raise AssertionError("compare refitted a FiringFit that already groups by layer")

    monkeypatch.setattr(compare_module, "fit_groups", no_refit)
    cmp = ba.compare(networks.fit, by="layer", reference="fc1", quantities=("mfr",), n_resamples=200)
    assert cmp.fit is networks.fit
    assert cmp.result["contrast"].values.tolist() == ["A: fc2 − fc1", "B: fc2 − fc1", "C: fc2 − fc1"]
    r = cmp.result.sel(contrast="A: fc2 − fc1", quantity="mfr")
    assert float(r["low"]) > 0.2  # Beta(3, 3) mean 0.5 vs Beta(2, 8) mean 0.2
    assert cmp.verdicts()[0].startswith("MFR of network A: fc2 − fc1 = 0.")


def test_last_layer_matching(truth):
    rng = np.random.default_rng(3)
    deep, _ = simulate("deep", {"h1": rng.beta(2, 2, 40), "h2": rng.beta(2, 8, 40)}, rng)
    shallow, _ = simulate("shallow", {"out": rng.beta(6, 4, 40)}, rng)
    with pytest.raises(DatasetError, match=r"layer.*deep.*lacks.*match='last'"):
        ba.compare([deep, shallow], reference="deep", n_resamples=0)
    cmp = ba.compare([deep, shallow], reference="deep", match="last", quantities=("mfr",),
                     seed=0, **FIT)
    assert cmp.result["contrast"].values.tolist() == ["out|h2: shallow − deep"]
    line = cmp.verdicts()[0]
    assert line.startswith("MFR of the last recorded layer (out vs h2): shallow − deep = 0.")
    assert line.endswith("higher in shallow.")


def test_rate_model_on_window_counts(truth):
    """Without fired events the bootstrap resamples window blocks; rate models have no mu/kappa."""
    a, b = (truth[k][0].drop_vars("fired").drop_dims("sample") for k in ("A", "B"))
    cmp = ba.compare([a, b], model="gamma_poisson", seed=4, **FIT)
    assert cmp.result["quantity"].values.tolist() == ["mfr", "mf", "frac_dead"]
    r = cmp.result.sel(contrast="fc1: B − A", quantity="mfr")
    true_diff = truth["B"][1]["fc1"].mean() - truth["A"][1]["fc1"].mean()
    assert float(r["low"]) < true_diff < float(r["high"])
    assert float(r["boot_low"]) < true_diff < float(r["boot_high"])
    assert float(r["boot_estimate"]) == pytest.approx(float(r["mean"]), abs=0.01)
    assert "window blocks" in str(cmp.result["boot_note"].sel(quantity="mfr").values)
    with pytest.raises(ValueError, match=r"quantities: the fit \(gamma_poisson\) provides no \['kappa'\]"):
        ba.compare(cmp.fit, by="layer", quantities=("mfr", "kappa"))


def test_counts_only_have_no_bootstrap():
    rng = np.random.default_rng(5)
    a = ba.make_dataset(rng.binomial(300, rng.beta(2, 8, 50)), 300, network="A", layer="fc")
    b = ba.make_dataset(rng.binomial(300, rng.beta(2, 8, 50)), 300, network="B", layer="fc")
    cmp = ba.compare([a, b], quantities=("mfr", "mf"), seed=0, **FIT)
    assert np.isnan(cmp.result["boot_estimate"]).all()
    assert np.isfinite(cmp.result["mean"]).all()
    notes = cmp.result["boot_note"].values.tolist()
    assert "needs fired events" in notes[0] and "window_size" in notes[1]


# ---------------------------------------------------------------- outputs


def test_to_dataframe_and_plot(networks, tmp_path):
    df = networks.to_dataframe()
    assert len(df) == 4 * 5
    for col in ("mean", "low", "high", "pd", "boot_estimate", "boot_low", "boot_high",
                "boot_note", "verdict"):
        assert col in df.columns
    assert df.loc[("fc1: B − A", "mfr"), "verdict"].endswith("higher in B.")
    path = tmp_path / "forest.png"
    fig = networks.plot(["mfr", "mf", "kappa"], path=str(path))
    assert path.stat().st_size > 10_000
    forest_axes = [ax for ax in fig.axes if any(line.get_linestyle() == "--" for line in ax.lines)]
    assert len(forest_axes) == 3  # one panel per quantity, each with its zero line
    import matplotlib.pyplot as plt

    plt.close(fig)


@pytest.mark.parametrize("levels", [["digits-mlp-memorize"],
                                    ["digits-mlp-memorize", "digits-mlp-memorize-wide-longer-name"]])
def test_plot_row_labels_are_not_clipped(levels):
    """Every row label lies inside the figure and ends before its panel begins."""
    import matplotlib.pyplot as plt

    cmp = synthetic_comparison(levels, ["relu1", "relu2", "relu3"])
    fig = cmp.plot()
    texts, extents, forest_left = _label_extents(fig)
    width, height = fig.canvas.get_width_height()
    assert len(texts) == 2 * 3 * len(levels)
    for text, box in zip(texts, extents, strict=True):
        assert box.x0 >= 0 and box.y0 >= 0 and box.x1 <= width and box.y1 <= height, text
        assert box.x1 <= forest_left, f"{text!r} runs under the panel"
    titles = [ax.get_title(loc="left") for ax in fig.axes if ax.get_title(loc="left")]
    if len(levels) == 1:
        # one level: it is named in each panel title, the rows keep the layer
        assert sorted(set(texts)) == ["relu1", "relu2", "relu3"]
        assert titles[0] == "MFR: digits-mlp-memorize − digits-mlp"
    else:
        assert "relu1: digits-mlp-memorize-wide-longer-name" in texts
        assert titles[0] == "MFR: level − digits-mlp"
    plt.close(fig)


def test_plot_rejects_unknown_quantities():
    with pytest.raises(ArgumentError, match=r"quantities: \['kappa'\] were not compared"):
        synthetic_comparison(["B"], ["fc"]).plot(["kappa"])


def test_function_is_not_shadowed_by_its_module():
    import bayesactiv.comparison.contrasts

    assert callable(ba.compare) and ba.compare is bayesactiv.comparison.compare


# ---------------------------------------------------------------- bad input


def test_needs_two_levels(truth):
    a = truth["A"][0]
    with pytest.raises(DatasetError, match=r"network: compare needs at least two networks"):
        ba.compare(a)


def test_reference_must_exist(truth):
    a, b = truth["A"][0], truth["B"][0]
    with pytest.raises(ValueError, match=r"reference: 'Z' is not among the networks compared"):
        ba.compare([a, b], reference="Z")


def test_mismatched_layers_named(truth):
    a, b = truth["A"][0], truth["B"][0]
    b_fc1 = b.isel(unit=np.flatnonzero(b["layer"].values == "fc1"))
    with pytest.raises(DatasetError, match=r"network 'B' lacks layer \['\(\\'fc2\\',\)'\]|fc2"):
        ba.compare([a, b_fc1])


def test_different_thresholds_warn(monkeypatch):
    rng = np.random.default_rng(1)
    a, _ = simulate("A", {"fc": rng.beta(2, 8, 30)}, rng)
    b, _ = simulate("B", {"fc": rng.beta(2, 8, 30)}, rng, threshold_rule="activation > 0.5")

    def stop(*args, **kwargs):
        raise RuntimeError("stop after validation")

    monkeypatch.setattr(compare_module, "fit_groups", stop)
    with (
        pytest.warns(UserWarning, match="threshold_rule: the datasets were thresholded differently"),
        pytest.raises(RuntimeError, match="stop after validation"),
    ):
        ba.compare([a, b])


def test_same_name_needs_dict(truth):
    a = truth["A"][0]
    with pytest.raises(DatasetError, match=r"unit: the datasets share unit ids.*dict network"):
        ba.compare([a, a])


def test_epoch_needs_epochs(truth):
    a, b = truth["A"][0], truth["B"][0]
    with pytest.raises(DatasetError, match=r"epoch: .*no epoch coordinate"):
        ba.compare([a, b], by="epoch")
    with pytest.raises(DatasetError, match=r"epoch: dict key 'late' is not an integer epoch"):
        ba.compare({0: a, "late": b}, by="epoch")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"by": "unit"}, r"by: expected one of 'network', 'layer', 'epoch'"),
        ({"quantities": ("mfr", "rate")}, r"quantities: unknown \['rate'\]"),
        ({"prob": 1.5}, r"prob: expected a number strictly between 0 and 1, got 1.5"),
        ({"prob": "0.9"}, r"prob: expected a number strictly between 0 and 1, got '0.9'"),
        ({"match": "first"}, r"match: expected one of 'name', 'last'"),
        ({"by": "layer", "match": "last"}, r"match: 'last'"),
        ({"draws": 0}, r"draws: expected an integer >= 1"),
        ({"chains": 1.5}, r"chains: expected an integer >= 1"),
        ({"n_resamples": -1}, r"n_resamples: expected an integer >= 0"),
        ({"window_size": 0}, r"window_size: expected an integer >= 1"),
        ({"seed": -3}, r"seed: expected an integer >= 0"),
        ({"reference": "Z"}, r"reference: 'Z' is not among the networks compared"),
    ],
)
def test_bad_arguments(truth, kwargs, message):
    """Every bad argument gets the one error type, before any fitting."""
    a, b = truth["A"][0], truth["B"][0]
    with pytest.raises(ArgumentError, match=message):
        ba.compare([a, b], **kwargs)


def test_bad_inputs():
    with pytest.raises(TypeError, match="datasets_or_fits: expected an activation dataset"):
        ba.compare(42)
    with pytest.raises(TypeError, match=r"datasets_or_fits: item 1 is a str"):
        ba.compare([ba.make_dataset([1], 5, network="a", layer="l"), "b.nc"])
    with pytest.raises(ValueError, match="nothing to compare"):
        ba.compare([])
    bad = xr.Dataset({"count": ("unit", [1])})
    with pytest.raises(DatasetError, match="n: missing variable"):
        ba.compare([bad, bad])


def test_verdict_wording_does_not_overreach():
    """Verdicts follow the interval only: direction words appear only when it excludes 0."""
    res = xr.Dataset(
        {
            "mean": (("contrast", "quantity"), [[-0.12], [0.004], [30.0]]),
            "low": (("contrast", "quantity"), [[-0.15], [-0.01], [12.5]]),
            "high": (("contrast", "quantity"), [[-0.09], [0.02], [51.0]]),
            "p_positive": (("contrast", "quantity"), [[0.0], [0.71], [1.0]]),
        },
        coords={
            "contrast": ["x", "y", "z"],
            "quantity": ["mfr"],
            "level_label": ("contrast", ["mem", "mem", "mem"]),
            "reference_label": ("contrast", ["gen", "gen", "gen"]),
            "subject": ("contrast", ["of layer relu3"] * 3),
        },
        attrs={"prob": 0.9, "by": "network", "reference": "gen"},
    )
    cmp = Comparison(res, None, xr.Dataset(), xr.Dataset())
    x, y, z = cmp.verdicts()
    assert x == ("MFR of layer relu3: mem − gen = −0.12 (90% CrI −0.15 to −0.09; "
                 "P(<0) = 1.00): lower in mem.")
    assert y == ("MFR of layer relu3: mem − gen = 0.00 (90% CrI −0.01 to 0.02; "
                 "P(>0) = 0.71): interval includes 0: no difference shown at this level.")
    assert z.endswith("= 30 (90% CrI 12 to 51; P(>0) = 1.00): higher in mem.")


def _clustered_network(network, theta, rng, n_inputs=80, tokens=16):
    """Tokens of an input fire given its propensity p ~ Beta(theta, 1 - theta) (phi = 1)."""
    p = rng.beta(theta, 1 - theta, size=(n_inputs, theta.size))
    input_index = np.repeat(np.arange(n_inputs), tokens)
    fired = rng.random((input_index.size, theta.size)) < p[input_index]
    ds = ba.make_dataset(fired.sum(0), input_index.size, network=network, layer="mlp",
                         fired=fired, attrs={"spatial": "token"})
    return ds.assign_coords(input=("sample", input_index))


def test_bootstrap_of_clustered_events_resamples_whole_inputs():
    """Tokens of one input are one cluster: the bootstrap draws inputs, not tokens."""
    rng = np.random.default_rng(31)
    theta = rng.uniform(0.1, 0.5, 40)
    a, b = _clustered_network("A", theta, rng), _clustered_network("B", theta, rng)
    cmp = ba.compare([a, b], quantities=("mfr",), seed=2, **FIT)
    tok = ba.compare([a.drop_vars("input"), b.drop_vars("input")], quantities=("mfr",), seed=2,
                     **FIT)
    note = str(cmp.result["boot_note"].sel(quantity="mfr").values)
    assert "whole inputs (clusters of 16 tokens on average)" in note
    r, t = cmp.result.sel(quantity="mfr").isel(contrast=0), tok.result.sel(quantity="mfr").isel(contrast=0)
    assert float(r["boot_estimate"]) == pytest.approx(float(t["boot_estimate"]))
    assert float(r["boot_low"]) < 0.0 < float(r["boot_high"])  # the same thetas in A and B
    width = float(r["boot_high"] - r["boot_low"])
    assert width > 2.5 * float(t["boot_high"] - t["boot_low"])


def test_clustered_mf_posterior_and_bootstrap_agree_in_sign():
    """Token events of two networks, one firing in bursts per input (phi=1) and one nearly
    independently (phi=30): the model's MF and the bootstrap's per-input Fano factor both
    say the first is higher."""
    import torch

    rng = np.random.default_rng(3)

    def tokens(phi: float, name: str):
        theta = rng.uniform(0.05, 0.4, 30)
        p = rng.beta(theta * phi, (1 - theta) * phi, (80, 30))
        fired = rng.random((80, 16, 30)) < p[:, None, :]
        acts = torch.from_numpy(np.where(fired, 1.0, -1.0).astype(np.float32))
        return ba.record(torch.nn.Sequential(torch.nn.Identity()), acts, "0", keep_events=True,
                         progress=False, summaries=False, network=name)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ba.ConvergenceWarning)
        cmp = ba.compare([tokens(1.0, "bursty"), tokens(30.0, "even")], reference="even",
                         quantities=("mfr", "mf"), draws=300, chains=2, n_resamples=300, seed=0)
    assert cmp.result.attrs["model"] == "clustered_beta_binomial"
    mf = cmp.result.sel(quantity="mf").isel(contrast=0)
    assert float(mf["mean"]) > 0 and float(mf["boot_estimate"]) > 0
    assert float(mf["low"]) > 0 and float(mf["boot_low"]) > 0

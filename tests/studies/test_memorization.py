"""Tests for bayesactiv.studies.memorization: the quick run end to end, and its argument checks."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bayesactiv import zoo
from bayesactiv.data.checks import ArgumentError
from bayesactiv.report import ReportError
from bayesactiv.studies.memorization import DemoPlan, _pick_epochs, run_demo

QUICK_NETWORKS = ("digits-mlp", "digits-mlp-memorize")


def _have_networks() -> bool:
    try:
        return all(zoo.epochs(name) for name in QUICK_NETWORKS)
    except FileNotFoundError:
        return False


needs_networks = pytest.mark.skipif(
    not _have_networks(),
    reason=f"reference networks {QUICK_NETWORKS} are not in {zoo.models_dir()} "
    "(train them with bayesactiv.zoo.train_all())",
)


def test_pick_epochs() -> None:
    assert _pick_epochs([0, 1, 3, 10, 20, 40], 3) == [0, 3, 40]
    assert _pick_epochs([0, 10, 50], None) == [0, 10, 50]
    assert _pick_epochs([0, 10], 3) == [0, 10]


def test_bad_arguments_fail_before_any_work(tmp_path: Path) -> None:
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    with pytest.raises(ReportError, match="does not hold a report"):
        run_demo(busy, quick=True, progress=False)
    assert (busy / "notes.txt").read_text() == "mine"
    with pytest.raises(ArgumentError, match="architectures: unknown"):
        run_demo(tmp_path / "r", plan=DemoPlan(architectures=("resnet",)), progress=False)
    with pytest.raises(ArgumentError, match="seed: expected an integer >= 0"):
        run_demo(tmp_path / "r", quick=True, progress=False, seed=-1)
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(("field", "value", "message"), [
    ("prob", 1.5, "prob: expected a number strictly between 0 and 1"),
    ("draws", 0, "draws: expected an integer >= 1"),
    ("n_resamples", 2.5, "n_resamples: expected an integer >= 1"),
    ("max_epochs", 0, "max_epochs: expected an integer >= 1"),
    ("detail_layers", "first", "detail_layers: expected one of 'all', 'last'"),
])
def test_plan_checks_its_values(field: str, value: object, message: str) -> None:
    with pytest.raises(ArgumentError, match=message):
        DemoPlan(**{field: value})


@pytest.fixture(scope="module")
def quick_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    if not _have_networks():
        pytest.skip("reference networks missing")
    out = tmp_path_factory.mktemp("demo") / "report"
    err = io.StringIO()  # the progress lines go to stderr
    with contextlib.redirect_stderr(err):
        path = run_demo(out, quick=True, progress=True, seed=0)
    return path, err.getvalue()


@pytest.mark.slow
@needs_networks
def test_quick_demo_files_and_progress(quick_report: tuple[Path, str]) -> None:
    path, log = quick_report
    assert (path / "report.html").is_file() and (path / "report.md").is_file()
    assert re.search(r"\[ 1/7\] record digits-mlp", log)
    assert f"report: {(path / 'report.html').resolve()}" in log
    # the long steps say what they are doing: each LOO model, each epoch fit, each report section
    for model in ("gamma_poisson", "negative_binomial", "binomial_window"):
        assert re.search(rf"\[\d/3\] {model}: fit and PSIS-LOO \.\.\.", log), model
        assert re.search(rf"\[\d/3\] {model}: elpd -?[\d.]+, max Pareto k [\d.]+ \(", log), model
    assert re.search(r"recorded digits-mlp-memorize/\S+ at 3 checkpoints", log)
    assert re.search(r"fitting 6 groups \(network x epoch\) jointly", log)
    assert re.search(r"report section 9/10 networks and layers \(", log)
    assert re.search(r"network 2/2 digits-mlp-memorize: units and 1 layer sections", log)
    for name in ("networks", "layers", "mf_null", "window_models", "compare_mlp",
                 "threshold_sensitivity", "threshold_sensitivity_differences", "train_vs_test", "epochs_mlp",
                 "units_digits-mlp", "units_digits-mlp-memorize", "fit_diagnostics", "timings"):
        assert (path / "tables" / f"{name}.csv").is_file(), name
        assert (path / "tables" / f"{name}.md").is_file(), name
    pngs = sorted((path / "figures").glob("*.png"))
    names = {p.stem for p in pngs}
    for stem in ("compare_mlp_forest", "epochs_mlp", "dead_saturated",
                 "caterpillar_digits-mlp_relu3", "unitview_digits-mlp-memorize_relu3",
                 "coactivation_digits-mlp_relu3", "activations_digits-mlp_relu3"):
        assert stem in names, stem
    html = (path / "report.html").read_text()
    assert html.count("data:image/png;base64,") == len(pngs)
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)


@pytest.mark.slow
@needs_networks
def test_quick_demo_html_sections(quick_report: tuple[Path, str]) -> None:
    html = (quick_report[0] / "report.html").read_text()
    for sid in ("overview", "memorization-comparison", "compare-mlp", "per-layer-mfr-and-mf",
                "mf-against-its-binomial-null", "poisson-or-not-window-count-models",
                "threshold-sensitivity", "training-versus-held-out-inputs",
                "epoch-trajectories", "epochs-mlp", "networks-and-layers", "digits-mlp",
                "digits-mlp-relu3", "digits-mlp-memorize-relu3", "methods-and-run"):
        assert re.search(rf'<h[234] id="{sid}">', html), sid
        assert f'href="#{sid}"' in html, sid
    # the text says which threshold, window and interval the numbers use
    assert "activation is <strong>&gt; 0</strong>" in html
    assert "<strong>20 inputs</strong>" in html
    assert "<strong>90% equal-tailed</strong>" in html


@pytest.mark.slow
@needs_networks
def test_quick_demo_tables_are_consistent(quick_report: tuple[Path, str]) -> None:
    tables = quick_report[0] / "tables"
    units = {n: pd.read_csv(tables / f"units_{n}.csv") for n in QUICK_NETWORKS}
    for name, u in units.items():
        shapes = zoo.card(name)["architecture"]["hidden_shapes"]
        assert len(u) == sum(int(np.prod(s[:1])) for s in shapes.values())
        np.testing.assert_allclose(u["rate"], u["count"] / u["n"])
        assert (u["post_low"] <= u["post_mean"]).all() and (u["post_mean"] <= u["post_high"]).all()
        assert u["p_dead"].between(0, 1).all()
        # 360 inputs without a spike: the posterior puts such a unit below 1% firing
        assert (u.loc[u["count"] == 0, "p_dead"] > 0.5).all()
        assert (u.loc[u["count"] > 20, "p_dead"] < 0.01).all()
        # the Wald interval is centred on the observed rate
        np.testing.assert_allclose((u["wald_low"] + u["wald_high"]) / 2, u["rate"], atol=1e-12)
    layers = pd.read_csv(tables / "layers.csv")
    for (net, lay), row in layers.set_index(["network", "layer"]).iterrows():
        u = units[net]
        assert row["mfr_plugin"] == pytest.approx(u.loc[u["layer"] == lay, "rate"].mean())
        assert row["mfr_boot_low"] <= row["mfr_plugin"] <= row["mfr_boot_high"]
        assert row["mfr_low"] <= row["mfr_mean"] <= row["mfr_high"]
    # MF beside its null: the null is (1 - p)(N - W)/(N - 1) averaged over units, below 1
    null = pd.read_csv(tables / "mf_null.csv")
    assert set(zip(null["network"], null["layer"])) == set(zip(layers["network"], layers["layer"]))
    assert null["MF null"].between(0, 1).all() and null["permutation p"].between(0, 1).all()
    np.testing.assert_allclose(null["MF / null"], null["MF"] / null["MF null"])
    models = pd.read_csv(tables / "window_models.csv")
    assert sorted(models["model"]) == ["binomial_window", "gamma_poisson", "negative_binomial"]
    # the convergence of the fits behind the LOO ranking is reported with the others
    diagnostics = pd.read_csv(tables / "fit_diagnostics.csv").set_index("fit")
    for model in models["model"]:
        assert f"digits-mlp window counts: {model}" in diagnostics.index, model
    assert (models["elpd_diff"] <= 0).all() and models["rank"].tolist() == [0, 1, 2]
    # the comparison's bootstrap estimate is the plug-in difference memorizing - generalizing
    comp = pd.read_csv(tables / "compare_mlp.csv")
    mfr = comp[comp["quantity"] == "mfr"].set_index("layer")
    plug = layers.set_index(["network", "layer"])["mfr_plugin"]
    for lay, row in mfr.iterrows():
        diff = plug[("digits-mlp-memorize", lay)] - plug[("digits-mlp", lay)]
        assert row["boot_estimate"] == pytest.approx(diff, abs=1e-9)
        assert isinstance(row["verdict"], str) and row["verdict"].startswith("MFR of layer")
    epochs = pd.read_csv(tables / "epochs_mlp.csv")
    for name in QUICK_NETWORKS:
        got = sorted(epochs.loc[epochs["network"] == name, "epoch"])
        available = zoo.epochs(name)
        assert got == _pick_epochs(available, DemoPlan.quick().max_epochs)
        assert got[0] == available[0] and got[-1] == available[-1]
    sens = pd.read_csv(tables / "threshold_sensitivity.csv")
    assert sorted(sens["rule"].unique()) == sorted(
        ["activation > 0", "50% of the unit's max", "unit's 90% quantile"])
    # a stricter rule cannot make a unit fire more often than "> 0" (ReLU outputs are >= 0)
    for name in QUICK_NETWORKS:
        s = sens[sens["network"] == name].set_index("rule")["mfr"]
        assert s["50% of the unit's max"] <= s["activation > 0"]
        assert s["unit's 90% quantile"] <= 0.1 + 1e-9

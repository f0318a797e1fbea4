"""Tests for bayesactiv.report (document, tables, sections, pipeline): the folder, escaping, atomic writes, and rendering in Chromium."""

from __future__ import annotations

import base64
import html
import re
import shutil
import subprocess
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from bayesactiv.data.checks import ArgumentError
from bayesactiv.report import (
    Report,
    ReportError,
    markdown_to_html,
    slugify,
    to_markdown_table,
)

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def _browser() -> str | None:
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return None


def _small_report() -> Report:
    rep = Report("Small <test> report", subtitle="Made by **tests**.")
    rep.section("Firing rates")
    rep.text("Per-unit firing probability with **90%** intervals.\n\n- one\n- two <b>bold?</b>")
    frame = pd.DataFrame(
        {"unit": [f"net/fc/{i}" for i in range(60)], "mean": np.linspace(0, 1, 60), "dead": False}
    )
    rep.table(frame, "units", caption="All units.", max_rows=10)
    rep.section("Layer fc", level=3)
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot(np.arange(10), np.arange(10) ** 2, color="tab:red")
    ax.set_title("a red curve")
    rep.figure(fig, "curve", caption="A curve.")
    rep.section("Layer fc detail", level=4)
    rep.text("Detail.")
    rep.section("Comparison")
    ds = xr.Dataset(
        {"diff": ("network", [0.1, -0.2])}, coords={"network": ["gen", "mem"]}
    )
    rep.table(ds, "comparison")
    return rep


def test_slugify_and_markdown_escape() -> None:
    assert slugify("Digits MLP / fc2") == "digits-mlp-fc2"
    assert slugify("???") == "section"
    out = markdown_to_html("<script>alert(1)</script> and `x<y` and *it* and **b**")
    assert "<script>" not in out
    assert "&lt;script&gt;" in out
    assert "<code>x&lt;y</code>" in out
    assert "<em>it</em>" in out and "<strong>b</strong>" in out
    assert markdown_to_html("- a\n- b") == "<ul><li>a</li><li>b</li></ul>"
    with pytest.raises(ReportError, match="text"):
        markdown_to_html(3)  # type: ignore[arg-type]


def test_markdown_table_escapes_pipes() -> None:
    md = to_markdown_table(pd.DataFrame({"a|b": ["x|y"], "v": [np.nan]}))
    assert md.splitlines()[0] == "| a\\|b | v |"
    assert "x\\|y" in md and "–" in md


def test_section_ids_unique_and_bad_input() -> None:
    rep = Report("R")
    rep.section("Same").section("Same").section("Other", id="custom")
    assert rep.section_ids() == ["same", "same-2", "custom"]
    with pytest.raises(ReportError, match="id"):
        rep.section("Again", id="custom")
    with pytest.raises(ArgumentError, match="level: expected an integer >= 2 and <= 4"):
        rep.section("X", level=5)
    with pytest.raises(ArgumentError, match="max_rows: expected an integer >= 1"):
        rep.table(pd.DataFrame({"a": [1]}), "zero", max_rows=0)
    with pytest.raises(ReportError, match="table name"):
        rep.table(pd.DataFrame({"a": [1]}), "bad name/..")
    rep.table(pd.DataFrame({"a": [1]}), "t")
    with pytest.raises(ReportError, match="already used"):
        rep.table(pd.DataFrame({"a": [1]}), "t")
    with pytest.raises(ReportError, match="expected a pandas DataFrame"):
        rep.table([1, 2], "list")  # type: ignore[arg-type]
    with pytest.raises(ReportError, match="matplotlib Figure"):
        rep.figure(object(), "f")
    with pytest.raises(ReportError, match="title"):
        Report("")


def test_write_folder_contents(tmp_path: Path) -> None:
    out = _small_report().write(tmp_path / "rep")
    assert (out / "report.html").is_file() and (out / "report.md").is_file()
    units = pd.read_csv(out / "tables" / "units.csv")
    assert len(units) == 60  # the files hold all rows even though HTML shows 10
    np.testing.assert_allclose(units["mean"], np.linspace(0, 1, 60))
    comp = pd.read_csv(out / "tables" / "comparison.csv")
    assert list(comp.columns) == ["network", "diff"]
    md = (out / "tables" / "units.md").read_text()
    assert md.count("\n") == 62
    png = (out / "figures" / "curve.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    page = (out / "report.html").read_text()
    # the figure is embedded, byte for byte, and nothing is fetched from outside
    assert base64.b64encode(png).decode() in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    assert "<script" not in page
    assert "Small &lt;test&gt; report" in page
    assert "showing the first 10 of 60 rows" in page
    assert page.count("<tr>") == 1 + 10 + 1 + 2  # header + shown rows, for both tables


def test_write_is_atomic_and_safe(tmp_path: Path) -> None:
    target = tmp_path / "rep"
    _small_report().write(target)
    (target / "stale.txt").write_text("old")
    Report("Second").section("Only").write(target)  # replaces a previous report
    assert not (target / "stale.txt").exists()
    assert "Second" in (target / "report.html").read_text()
    other = tmp_path / "precious"
    other.mkdir()
    (other / "data.csv").write_text("keep me")
    with pytest.raises(ReportError, match="does not hold a report"):
        Report("R").write(other)
    assert (other / "data.csv").read_text() == "keep me"
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert leftovers == []


def _run_browser(browser: str, args: list[str], tmp: Path) -> subprocess.CompletedProcess:
    base = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--hide-scrollbars",
        "--enable-logging=stderr",
        "--v=0",
        f"--user-data-dir={tmp / 'profile'}",
    ]
    return subprocess.run(base + args, check=False, capture_output=True, text=True, timeout=120)


def test_renders_in_headless_chromium(tmp_path: Path) -> None:
    browser = _browser()
    if browser is None:
        pytest.skip("no Chromium/Chrome browser found (install Debian's 'chromium' to run)")
    out = _small_report().write(tmp_path / "rep")
    url = (out / "report.html").resolve().as_uri()
    dom = _run_browser(browser, ["--dump-dom", url], tmp_path)
    assert dom.returncode == 0, dom.stderr[-2000:]
    for sec in ("firing-rates", "layer-fc", "layer-fc-detail", "comparison"):
        assert re.search(rf'<h[234] id="{sec}">', dom.stdout), sec
        assert f'href="#{sec}"' in dom.stdout  # listed in the table of contents
    assert '<nav class="toc" id="contents">' in dom.stdout
    assert re.search(r'<img alt="A curve\." src="data:image/png;base64,', dom.stdout)
    errors = [
        ln for ln in dom.stderr.splitlines()
        if "Uncaught" in ln or ("CONSOLE" in ln and "error" in ln.lower())
    ]
    assert errors == []
    shot = tmp_path / "shot.png"
    res = _run_browser(
        browser, [f"--screenshot={shot}", "--window-size=1280,1400", url], tmp_path
    )
    assert res.returncode == 0 and shot.exists(), res.stderr[-2000:]
    img = plt.imread(shot)
    assert img.shape[1] == 1280
    # the page is not blank: the sidebar, text and the red curve put varied pixels on it
    rgb = img[..., :3]
    assert rgb.std() > 0.05
    red = (rgb[..., 0] > 0.7) & (rgb[..., 1] < 0.45) & (rgb[..., 2] < 0.4)
    assert red.sum() > 50  # the embedded figure was decoded and drawn


# ----------------------------------------------------------------- analysis pieces


def _bernoulli_dataset(p: np.ndarray, n: int, seed: int, window: int = 20) -> xr.Dataset:
    import bayesactiv as ba

    fired = np.random.default_rng(seed).random((n, p.size)) < p
    wc = fired[: (n // window) * window].reshape(n // window, window, p.size).sum(axis=1)
    return ba.make_dataset(fired.sum(0), n, network="net", layer="fc", fired=fired,
                           window_count=wc, window_size=window)


def test_layer_bootstrap_plugin_values_and_coverage() -> None:
    from bayesactiv.report import layer_bootstrap

    p = np.array([0.05, 0.2, 0.5, 0.7, 0.9])
    ds = _bernoulli_dataset(p, 400, seed=0)
    row = layer_bootstrap(ds, n_resamples=300, seed=1).iloc[0]
    rate = ds["count"].values / 400
    assert row.mfr == pytest.approx(rate.mean())
    wc = ds["window_count"].values
    assert row.mf == pytest.approx(np.mean(wc.var(axis=0) / wc.mean(axis=0)))
    # the percentile interval of MFR covers the true mean firing probability about 90% of
    # the time (simulated truth; 150 replications, so allow sampling error)
    hits = 0
    for rep in range(150):
        r = layer_bootstrap(_bernoulli_dataset(p, 200, seed=100 + rep), n_resamples=200,
                            seed=rep).iloc[0]
        hits += r.mfr_boot_low <= p.mean() <= r.mfr_boot_high
    assert 0.80 <= hits / 150 <= 0.97
    with pytest.raises(ArgumentError, match="prob: expected a number strictly between 0 and 1"):
        layer_bootstrap(ds, prob=1.5)
    with pytest.raises(ArgumentError, match="n_resamples: expected an integer >= 1"):
        layer_bootstrap(ds, n_resamples=0)


def test_layer_bootstrap_without_events_or_windows() -> None:
    import bayesactiv as ba
    from bayesactiv.report import layer_bootstrap

    ds = ba.make_dataset([0, 5, 10], 10, network="n", layer="l")
    row = layer_bootstrap(ds, n_resamples=10).iloc[0]
    assert row.mfr == pytest.approx(0.5)
    assert np.isnan(row.mfr_boot_low) and np.isnan(row.mf)


def test_analysis_figures() -> None:
    import bayesactiv as ba
    from bayesactiv.viz.layers import activation_figure, caterpillar_figure, coactivation_figure

    frame = pd.DataFrame({"rate": [0.1, 0.5, 0.0], "post_mean": [0.12, 0.5, 0.01],
                          "post_low": [0.05, 0.4, 0.0], "post_high": [0.2, 0.6, 0.03],
                          "bootstrap_low": [0.04, 0.41, 0.0], "bootstrap_high": [0.18, 0.59, 0.0]})
    fig = caterpillar_figure(frame, title="t")
    # sorted by posterior mean: the first blue interval is the unit with mean 0.01
    segs = next(c for c in fig.axes[0].collections if c.get_label().startswith("posterior"))
    assert segs.get_segments()[0][:, 1].tolist() == [0.0, 0.03]
    plt.close(fig)
    with pytest.raises(ArgumentError, match="wald_low"):
        caterpillar_figure(frame, baseline="wald")
    ds = _bernoulli_dataset(np.array([0.3, 0.6, 0.0, 1.0]), 100, seed=3)
    fig = coactivation_figure(ds, "net", "fc")
    assert "2 units that never or always fired left out" in fig.axes[0].get_title()
    plt.close(fig)
    ds["hist_count"] = (("hist_group", "hist_bin"), [[5, 3, 2]])
    ds["hist_edges"] = (("hist_group", "hist_edge"), [[0.0, 1.0, 2.0, 3.0]])
    ds = ds.assign_coords(hist_group=["net/fc"])
    plt.close(activation_figure(ds, "net", "fc"))
    with pytest.raises(ArgumentError, match="no histogram"):
        activation_figure(ba.validate(ds), "net", "other")


# ----------------------------------------------------------------- unit view


def test_default_intervals_match_baselines() -> None:
    import bayesactiv as ba
    from bayesactiv.viz.unitview import default_intervals

    ds = ba.make_dataset([7], 40, network="n", layer="l")
    iv = default_intervals(7, 40, 0.9)
    for method, label in (("wald", "Wald 90%"), ("jeffreys", "Jeffreys 90%")):
        ref = ba.baselines.intervals(ds, method, confidence_level=0.9)
        assert iv[label][1] == pytest.approx(float(ref["low"][0]), abs=1e-9)
        assert iv[label][2] == pytest.approx(float(ref["high"][0]), abs=1e-9)


def test_unit_activations_match_forward_pass() -> None:
    import torch

    from bayesactiv.viz.unitview import unit_activations

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 3, 3, padding=1), torch.nn.ReLU(),
                              torch.nn.Flatten(), torch.nn.Linear(3 * 16, 5), torch.nn.ReLU())
    x = torch.randn(11, 1, 4, 4)
    with torch.no_grad():
        conv = net[1](net[0](x))
        dense = net(x)
    got = unit_activations(net, x, "1", 2, batch_size=4, spatial="any")
    np.testing.assert_allclose(got, conv[:, 2].amax(dim=(1, 2)).numpy(), rtol=1e-6)
    got = unit_activations(net, x, "1", 2, batch_size=4)  # default: one event per position
    np.testing.assert_allclose(got, conv[:, 2].reshape(-1).numpy(), rtol=1e-6)
    got = unit_activations(net, x.numpy(), "4", 3)
    np.testing.assert_allclose(got, dense[:, 3].numpy(), rtol=1e-6)
    with pytest.raises(ValueError, match="no module named"):
        unit_activations(net, x, "nope", 0)
    with pytest.raises(ValueError, match="has 5 units"):
        unit_activations(net, x, "4", 9)


def test_pick_unit_and_unit_view() -> None:
    import bayesactiv as ba
    from bayesactiv.viz.unitview import pick_unit, unit_view

    ds = ba.make_dataset([0, 4, 6, 10], 10, network="n", layer="l")
    ds["act_max"] = ("unit", [0.0, 3.0, 2.0, 9.0])
    ds["topk_sample"] = (("unit", "rank"), [[-1, -1], [2, 5], [1, 0], [0, 1]])
    ds["topk_value"] = (("unit", "rank"), [[0, 0], [3.0, 2.5], [2.0, 1.0], [9.0, 8.0]])
    assert pick_unit(ds) == "n/l/1"  # the saturated unit 3 has a larger max but always fires
    images = np.arange(10 * 4).reshape(10, 2, 2).astype(float)
    fig = unit_view(ds, "n/l/1", images=images, n_images=2, labels=list("abcdefghij"))
    titles = [ax.get_title() for ax in fig.axes]
    assert "label c\nact 3.00" in titles and "label f\nact 2.50" in titles
    plt.close(fig)
    with pytest.raises(ba.DatasetError, match="no unit 'n/l/9'"):
        unit_view(ds, "n/l/9")
    with pytest.raises(ValueError, match="one 2-d image per top sample"):
        unit_view(ds, 1, images=lambda idx: np.zeros((1, 2, 2)))
    with pytest.raises(ValueError, match="estimate, low, high"):
        unit_view(ds, 1, intervals={"bad": (0.1, 0.2)})


def test_report_from_datasets_two_networks(tmp_path: Path) -> None:
    """The ``bayesactiv report`` path: simulated truth in, a report with consistent tables out."""
    import bayesactiv as ba
    from bayesactiv.report import report_from_datasets

    rng = np.random.default_rng(7)
    truth = {"A": rng.beta(2, 6, 30), "B": rng.beta(6, 2, 30)}
    datasets = []
    for net, p in truth.items():
        fired = rng.random((400, p.size)) < p
        wc = fired.reshape(20, 20, p.size).sum(axis=1)
        datasets.append(ba.make_dataset(fired.sum(0), 400, network=net, layer="fc",
                                        fired=fired, window_count=wc, window_size=20))
    out = report_from_datasets(datasets, tmp_path / "rep", progress=False, draws=300,
                               chains=2, n_resamples=200, seed=0)
    units = pd.read_csv(out / "tables" / "units_A.csv")
    # the posterior ETIs cover the simulated firing probabilities at about the nominal rate
    covered = ((units["post_low"] <= truth["A"]) & (truth["A"] <= units["post_high"])).mean()
    assert covered >= 0.75
    comp = pd.read_csv(out / "tables" / "compare.csv")
    mfr = comp[comp["quantity"] == "mfr"].iloc[0]
    true_diff = truth["B"].mean() - truth["A"].mean()
    assert mfr["low"] < true_diff < mfr["high"] or abs(mfr["mean"] - true_diff) < 0.05
    assert mfr["low"] > 0 and "higher" in mfr["verdict"]
    html = (out / "report.html").read_text()
    for sid in ("overview", "comparison", "networks-and-layers", "a-fc", "b-fc"):
        assert f'id="{sid}"' in html
    with pytest.raises(ArgumentError, match="prob: expected a number strictly between 0 and 1"):
        report_from_datasets(datasets, tmp_path / "x", prob=2.0, progress=False)
    assert not (tmp_path / "x").exists()


# ----------------------------------------------------------------- wide tables


KAPPA_NOTE = ("no simple frequentist counterpart: kappa is the concentration of the "
              "hierarchical model's population of firing probabilities, not a statistic of the "
              "data")


def _wide_table() -> pd.DataFrame:
    rows = []
    for layer in ("relu1", "relu2"):
        for q in ("mfr", "kappa"):
            rows.append({"contrast": f"{layer}: digits-mlp-memorize − digits-mlp", "layer": layer,
                         "quantity": q, "mean": 0.1, "low": 0.05, "high": 0.15, "pd": 0.99,
                         "p_positive": 0.99, "p_negative": 0.01, "boot_estimate": 0.1,
                         "boot_low": 0.04, "boot_high": 0.16,
                         "boot_note": KAPPA_NOTE if q == "kappa" else ""})
    return pd.DataFrame(rows)


def test_tables_show_human_headers_and_long_notes_under_the_table(tmp_path: Path) -> None:
    rep = Report("R").section("S")
    rep.table(_wide_table(), "compare", headers={"pd": "pd"})
    step = "epochs of digits-mlp: record the last hidden layer at each checkpoint and fit them"
    steps = pd.DataFrame({"step": [step], "seconds": [3.0]})
    rep.table(steps, "timings")
    out = rep.write(tmp_path / "rep")
    page = (out / "report.html").read_text()
    heads = re.findall(r"<th[^>]*>([^<]*)</th>", page)
    assert heads[:5] == ["contrast", "layer", "quantity", "posterior mean", "posterior low"]
    assert "bootstrap note" in heads and "P(&gt; 0)" in heads and "pd" in heads
    assert not {"boot_note", "boot_low", "p_positive", "mean"} & set(heads)
    # the long note is written once, under the table, and the rows point to it
    assert html.unescape(page).count(KAPPA_NOTE) == 1
    assert re.search(r'<ol class="table-notes"><li id="note-compare-1">no simple', page)
    assert page.count('href="#note-compare-1">note 1</a>') == 2
    # a long text outside the note columns may wrap; a short one never does
    assert '<td class="text long">epochs of digits-mlp' in page
    assert '<td class="text">relu1</td>' in page
    md = (out / "report.md").read_text()
    assert "| contrast | layer | quantity | posterior mean |" in md
    assert f"1. {KAPPA_NOTE}" in md and "| note 1 |" in md
    # the files keep the raw names and every cell
    csv = pd.read_csv(out / "tables" / "compare.csv")
    assert list(csv.columns) == list(_wide_table().columns)
    assert csv["boot_note"].fillna("").tolist() == _wide_table()["boot_note"].tolist()
    assert (out / "tables" / "compare.md").read_text().startswith("| contrast | layer |")
    with pytest.raises(ReportError, match=r"notes: columns \['nope'\]"):
        rep.table(_wide_table(), "other", notes=["nope"])


def _row_heights(browser: str, page: Path, tmp: Path) -> list[float]:
    """Heights in CSS pixels of every table row of ``page``, as laid out by the browser."""
    probe = tmp / "probe.html"
    script = ("<script>document.body.setAttribute('data-rows', JSON.stringify("
              "[...document.querySelectorAll('tr')].map(r => r.getBoundingClientRect().height)))"
              "</script>")
    probe.write_text(page.read_text().replace("</body>", script + "</body>"))
    dom = _run_browser(browser, ["--window-size=1400,1000", "--dump-dom", probe.as_uri()], tmp)
    assert dom.returncode == 0, dom.stderr[-2000:]
    found = re.search(r'data-rows="([^"]*)"', dom.stdout)
    assert found, dom.stdout[:2000]
    return [float(v) for v in found.group(1).strip("[]").split(",")]


def test_wide_table_rows_stay_one_line_in_chromium(tmp_path: Path) -> None:
    browser = _browser()
    if browser is None:
        pytest.skip("no Chromium/Chrome browser found (install Debian's 'chromium' to run)")
    out = Report("R").section("S").table(_wide_table(), "compare").write(tmp_path / "rep")
    heights = _row_heights(browser, out / "report.html", tmp_path)
    assert len(heights) == 1 + 4
    assert max(heights[1:]) < 40  # one line of 13 px text; the old layout made 400 px rows


# ----------------------------------------------------------------- the report command


RULES = {"A": "activation > 0", "B": "activation > 0.5 x the unit's maximum over the recorded inputs"}


@pytest.fixture(scope="module")
def mixed_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list]:
    """Two networks recorded with different rules; layer "sat" fires on every input."""
    import bayesactiv as ba
    from bayesactiv.report import report_from_datasets

    rng = np.random.default_rng(11)
    datasets = []
    for net, rule in RULES.items():
        varying = rng.random((200, 12)) < rng.beta(2, 3, 12)
        fired = np.concatenate([varying, np.ones((200, 6), dtype=bool)], axis=1)
        wc = fired.reshape(10, 20, -1).sum(axis=1)
        ds = ba.make_dataset(
            fired.sum(0), 200, network=net, layer=["fc"] * 12 + ["sat"] * 6, fired=fired,
            window_count=wc, window_size=20, threshold_rule=rule,
            threshold_params={"rule": "Fixed" if net == "A" else "FractionOfMax"})
        ds["act_max"] = ("unit", rng.uniform(1, 5, 18))  # as a recording keeps it
        datasets.append(ds)
    out = tmp_path_factory.mktemp("mixed") / "rep"
    with pytest.warns(UserWarning) as caught:
        report_from_datasets(datasets, out, progress=False, draws=200, chains=2,
                             n_resamples=100, seed=0)
    return out, [str(w.message) for w in caught]


def test_report_states_each_rule_and_warns_when_they_differ(mixed_report) -> None:
    out, caught = mixed_report
    assert any(m.startswith("threshold_rule: the datasets were thresholded differently (A: "
                            "activation > 0; B: activation > 0.5 x the unit's maximum") for m in caught)
    page = (out / "report.html").read_text()
    header = re.search(r'<header class="title">(.*?)</header>', page, re.DOTALL).group(1)
    assert "A: fired = activation &gt; 0;" in header
    assert "B: fired = activation &gt; 0.5 x the unit&#x27;s maximum" in header
    assert not re.search(r"fired = activation &gt; 0\.(<|\s|$)", header)  # not one rule for both
    assert page.count('<div class="warning" role="note">') == 2  # overview and comparison
    assert "may come from the thresholds rather than the networks" in page
    b_fc = page[page.index('id="b-fc"'):page.index('id="b-sat"')]
    assert "fired = activation &gt; 0.5 x the unit&#x27;s maximum" in b_fc
    assert "**Warning:**" in (out / "report.md").read_text()


def test_subtitle_of_one_rule_names_it_once() -> None:
    import bayesactiv as ba
    from bayesactiv.report.pipeline import rules_subtitle

    a = ba.make_dataset([1, 2], 5, network="A", layer="l")
    b = ba.make_dataset([3, 4], 5, network="B", layer="l")
    assert rules_subtitle(["A", "B"], [a, b], None) == (
        "bayesactiv report of 2 activation datasets; fired = activation > 0.")
    assert rules_subtitle(["A"], [a], None) == (
        "bayesactiv report of 1 activation dataset; fired = activation > 0.")


def test_saturated_layer_is_described_in_words(mixed_report) -> None:
    out, _ = mixed_report
    figures = {p.stem for p in (out / "figures").glob("*.png")}
    assert {"caterpillar_A_fc", "coactivation_A_fc", "unitview_A_fc"} <= figures
    # every unit of "sat" fired on all 200 inputs: no degenerate plots, words instead
    assert not {"caterpillar_A_sat", "coactivation_A_sat"} & figures
    page = (out / "report.html").read_text()
    sat = page[page.index('id="a-sat"'):page.index('id="b"')]
    assert "Every unit fired on all 200 events (saturated)." in sat
    assert "No caterpillar plot: no unit of this layer varies" in sat
    assert "6 units fired on all 200 events: posterior means" in sat
    assert "No co-activation matrix: the phi coefficient" in sat
    # the unit view of an always-firing unit does not call it "some but not all"
    assert "unitview_A_sat" in figures
    caption = re.search(r'id="figure-unitview_A_sat">.*?<figcaption>(.*?)</figcaption>', sat,
                        re.DOTALL).group(1)
    assert caption.startswith("Unit view of A/sat/")
    assert ("every unit of this layer fired on all 200 events; this one has the strongest "
            "activation") in caption
    assert "some but not all" not in caption
    fc = page[page.index('id="a-fc"'):page.index('id="a-sat"')]
    assert "among the units that fire on some but not all events" in fc


def test_layer_status_words() -> None:
    from bayesactiv.report.sections import LayerStatus

    frame = pd.DataFrame({"count": [0, 0, 5, 10], "n": [10] * 4})
    mixed = LayerStatus.of(frame)
    assert mixed.summary() == ("Of these, 1 fired on some but not all events, 1 on every event "
                               "and 2 on none.")
    assert mixed.why_chosen(True).startswith("the strongest activation among the units that fire")
    dead = LayerStatus.of(pd.DataFrame({"count": [0, 0], "n": [10, 10]}))
    assert dead.summary() == "No unit fired on any event (all dead)."
    assert dead.why_chosen(False) == "no unit of this layer fired on any of the 10 events"
    full = LayerStatus.of(pd.DataFrame({"count": [10, 10], "n": [10, 10]}))
    assert full.why_chosen(True) == ("every unit of this layer fired on all 10 events; this one "
                                     "has the strongest activation")

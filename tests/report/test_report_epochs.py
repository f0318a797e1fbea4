"""``bayesactiv report`` on a training monitor's history: the "Training trajectory" section,
its figures and table, and the figure of every layer against epoch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch

import bayesactiv as ba
from bayesactiv.monitor import FiringMonitor
from bayesactiv.monitor.indicator import firing_trajectory
from bayesactiv.report import report_from_datasets
from bayesactiv.report.pipeline import training_trajectory
from bayesactiv.viz.trajectory import layer_trajectories_figure

EPOCHS = [0, 1, 2, 3]
#: recorded in this order on purpose: not the alphabetical one
LAYERS = ["3", "1"]
PNG = b"\x89PNG\r\n\x1a\n"

# (the overview's fit runs short here; these tests are about the trajectory)
pytestmark = pytest.mark.filterwarnings("ignore::bayesactiv.bayes.diagnostics.ConvergenceWarning")


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A tiny network trained four epochs under a monitor; its two histories saved."""
    root = tmp_path_factory.mktemp("history")
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 12), torch.nn.ReLU(), torch.nn.Linear(12, 6),
                              torch.nn.ReLU(), torch.nn.Linear(6, 2))
    x, y = torch.randn(128, 4), torch.randint(0, 2, (128,))
    mon = FiringMonitor(net, LAYERS, probe=x[:60], network="mlp", keep_events=True,
                        window_size=10)
    opt = torch.optim.SGD(net.parameters(), lr=0.5)
    for epoch in EPOCHS:
        with mon.training_batches(epoch):
            for i in range(0, 128, 32):
                opt.zero_grad()
                torch.nn.functional.cross_entropy(net(x[i:i + 32]), y[i:i + 32]).backward()
                opt.step()
        mon.observe(epoch)
    run, train = root / "run.zarr", root / "train.zarr"
    ba.save(mon.dataset(), run)
    ba.save(mon.training_dataset(), train)
    return run, train


def _check_trajectory_csv(path: Path, networks: list[str]) -> pd.DataFrame:
    table = pd.read_csv(path, dtype={"layer": str})
    assert list(dict.fromkeys(table["network"])) == networks
    for net in networks:
        rows = table[table["network"] == net]
        assert list(dict.fromkeys(rows["layer"])) == LAYERS  # recording order
        for layer in LAYERS:
            assert rows.loc[rows["layer"] == layer, "epoch"].tolist() == EPOCHS
        assert rows.set_index("layer")["units"].groupby(level=0).first().to_dict() == \
            {"3": 6, "1": 12}
    assert ((table["mfr_low"] < table["mfr"]) & (table["mfr"] < table["mfr_high"])).all()
    # (a fraction dead's mean may lie outside its interval: its draws are few values)
    assert (table["frac_dead_low"] <= table["frac_dead_high"]).all()
    for q in ("mfr", "frac_dead"):
        assert table[[q, f"{q}_low", f"{q}_high"]].stack().between(0, 1).all()
    return table


def test_report_of_a_history_draws_every_network(stores, tmp_path: Path) -> None:
    run, train = stores
    datasets = [ba.open_dataset(run), ba.open_dataset(train)]
    with pytest.warns(UserWarning, match="combine: dropped"):  # (the probe's events only)
        out = report_from_datasets(datasets, tmp_path / "rep", progress=False, draws=500,
                                   n_resamples=50)
    html = (out / "report.html").read_text()
    for sid in ("training-trajectory", "trajectory-mlp", "trajectory-mlp-train",
                "networks-and-layers"):
        assert f'id="{sid}"' in html
    # the section comes before the per-network tables
    assert html.index('id="training-trajectory"') < html.index('id="networks-and-layers"')
    for name in ("trajectory_mlp", "trajectory_mlp_train"):
        png = (out / "figures" / f"{name}.png").read_bytes()
        assert png.startswith(PNG)
        assert f'id="figure-{name}"' in html
    assert "Bayesian bootstrap over the probe&#39;s 60 inputs" in html
    assert "units taken as independent" in html
    table = _check_trajectory_csv(out / "tables" / "trajectory.csv", ["mlp", "mlp:train"])
    probe, batches = table[table["network"] == "mlp"], table[table["network"] == "mlp:train"]
    assert (probe["method"] == "inputs").all() and (batches["method"] == "units").all()
    assert probe["inputs"].eq(60).all()
    assert probe[["mf", "mf_low", "mf_high", "mf_null"]].notna().all().all()
    assert batches["mf"].isna().all()  # no windows on the training batches
    # the posterior MFR sits on the plug-in rate of each layer and epoch
    ds = datasets[0]
    for _, row in probe.iterrows():
        sel = (ds["layer"].values.astype(str) == row["layer"]) & \
            (ds["epoch"].values == row["epoch"])
        plugin = ds["count"].values[sel].sum() / ds["n"].values[sel].sum()
        assert abs(row["mfr"] - plugin) < 0.02
        assert row["mfr_low"] < plugin < row["mfr_high"]


def test_cli_report_of_a_monitor_store(stores, tmp_path: Path) -> None:
    run, _ = stores
    out = tmp_path / "cli-rep"
    done = subprocess.run([sys.executable, "-m", "bayesactiv.cli", "report", str(run), "-o",
                           str(out), "-q"], capture_output=True, text=True, timeout=600,
                          check=False)
    assert done.returncode == 0, done.stderr
    html = (out / "report.html").read_text()
    assert 'id="training-trajectory"' in html and 'id="trajectory-mlp"' in html
    assert (out / "figures" / "trajectory_mlp.png").read_bytes().startswith(PNG)
    assert sorted(p.name for p in (out / "figures").iterdir()) == ["trajectory_mlp.png"]
    _check_trajectory_csv(out / "tables" / "trajectory.csv", ["mlp"])


@pytest.mark.parametrize("epoch", [None, 5])
def test_no_trajectory_without_several_epochs(epoch, tmp_path: Path) -> None:
    ds = ba.make_dataset([2, 5, 9, 14], 40, network="net", layer="fc", epoch=epoch)
    out = report_from_datasets([ds], tmp_path / "rep", progress=False, draws=200,
                               n_resamples=50)
    assert 'id="training-trajectory"' not in (out / "report.html").read_text()
    assert not (out / "tables" / "trajectory.csv").exists()
    assert not any(p.name.startswith("trajectory") for p in (out / "figures").iterdir())


def test_training_trajectory_keeps_recording_order(stores) -> None:
    ds = ba.open_dataset(stores[0])
    table = training_trajectory(ds, draws=100)
    assert list(dict.fromkeys(table["layer"])) == LAYERS
    assert list(dict.fromkeys(firing_trajectory(ds, draws=100)["layer"])) == ["1", "3"]
    same = firing_trajectory(ds, draws=100).set_index(["layer", "epoch"]).sort_index()
    pd.testing.assert_frame_equal(table.set_index(["layer", "epoch"]).sort_index(), same)


# ------------------------------------------------------------------ the figure


@pytest.fixture(scope="module")
def trajectory(stores) -> pd.DataFrame:
    return firing_trajectory(ba.open_dataset(stores[0]), draws=100)


def test_figure_panels_lines_and_legend(trajectory: pd.DataFrame) -> None:
    fig = layer_trajectories_figure(trajectory, layers=LAYERS)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["MFR (mean firing probability)", "fraction of dead units",
                      "MF (mean Fano factor of window counts)", ""]
    # one line per layer; MF also draws each layer's null
    assert [len(ax.lines) for ax in fig.axes[:3]] == [2, 2, 4]
    assert [len(ax.collections) for ax in fig.axes[:3]] == [2, 2, 2]  # the bands
    assert not fig.axes[3].axison  # the legend's cell
    labels = [t.get_text() for t in fig.axes[3].get_legend().get_texts()]
    assert labels == ["layer 3 (6 units)", "layer 1 (12 units)", "90% interval",
                      "MF null: independent firing"]
    assert all(ax.get_xlabel() == "epoch" for ax in fig.axes[:3])
    assert fig.get_suptitle().startswith("mlp: firing over training")
    x, y = fig.axes[0].lines[0].get_data()
    rows = trajectory[trajectory["layer"] == "3"].sort_values("epoch")
    np.testing.assert_array_equal(x, EPOCHS)
    np.testing.assert_allclose(y, rows["mfr"])
    plt.close(fig)


def test_figure_default_order_accuracy_and_no_mf(trajectory: pd.DataFrame) -> None:
    acc = pd.DataFrame({"epoch": EPOCHS, "train_accuracy": [0.5, 0.6, 0.7, 0.8],
                        "test_accuracy": [0.5, 0.55, 0.6, 0.6]})
    fig = layer_trajectories_figure(trajectory, accuracy=acc, prob=0.8)
    assert len(fig.axes) == 4 and fig.axes[3].get_title() == "accuracy"
    assert len(fig.axes[3].lines) == 2
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels[:2] == ["layer 1 (12 units)", "layer 3 (6 units)"]  # the table's order
    assert "80% interval" in labels
    plt.close(fig)
    no_mf = trajectory.drop(columns=["mf", "mf_low", "mf_high", "mf_plugin", "mf_null"])
    fig = layer_trajectories_figure(no_mf, accuracy={0: 0.1, 3: 0.9})
    assert [ax.get_title() for ax in fig.axes] == ["MFR (mean firing probability)",
                                                   "fraction of dead units", "accuracy", ""]
    assert [len(ax.lines) for ax in fig.axes] == [2, 2, 1, 0]
    np.testing.assert_array_equal(fig.axes[2].lines[0].get_data()[1], [0.1, 0.9])
    plt.close(fig)
    fig = layer_trajectories_figure(no_mf, layers=["1"])
    assert [len(ax.lines) for ax in fig.axes] == [1, 1]
    plt.close(fig)


def test_figure_rejects_bad_input(trajectory: pd.DataFrame) -> None:
    two = pd.concat([trajectory, trajectory.assign(network="other")], ignore_index=True)
    with pytest.raises(ValueError, match="network: the trajectory holds 2 networks"):
        layer_trajectories_figure(two)
    fig = layer_trajectories_figure(two, network="other")
    assert fig.get_suptitle().startswith("other:")
    plt.close(fig)
    with pytest.raises(ValueError, match="network: 'nope' is not in the trajectory"):
        layer_trajectories_figure(two, network="nope")
    with pytest.raises(ValueError, match=r"trajectory: missing columns \['frac_dead'"):
        layer_trajectories_figure(trajectory.drop(columns=["frac_dead"]))
    with pytest.raises(TypeError, match="trajectory: expected the pandas DataFrame"):
        layer_trajectories_figure(trajectory.to_dict())
    with pytest.raises(ValueError, match="trajectory: the table has no rows"):
        layer_trajectories_figure(trajectory.iloc[:0])
    with pytest.raises(ValueError, match=r"layers: \['fc9'\] not in the trajectory"):
        layer_trajectories_figure(trajectory, layers=["3", "fc9"])
    with pytest.raises(ValueError, match="prob: expected a probability"):
        layer_trajectories_figure(trajectory, prob=90)
    with pytest.raises(ValueError, match=r"accuracy: expected fractions in \[0, 1\]"):
        layer_trajectories_figure(trajectory, accuracy={0: 55.0, 1: 80.0})
    with pytest.raises(ValueError, match="accuracy: a DataFrame needs an 'epoch' column"):
        layer_trajectories_figure(trajectory, accuracy=pd.DataFrame({"acc": [0.5]}))
    with pytest.raises(TypeError, match="accuracy: expected a mapping"):
        layer_trajectories_figure(trajectory, accuracy=[0.5, 0.6])
    plt.close("all")


def test_two_histories_made_by_hand(tmp_path: Path) -> None:
    """Histories from ``make_dataset(..., epoch=...)``: networks whose ids would collide."""
    epochs = [0, 0, 0, 2, 2, 2, 7, 7, 7]
    layers = ["b", "b", "a"] * 3
    datasets = [ba.make_dataset([5, 9, 30, 4, 6, 28, 1, 2, 20], 40, network=net, layer=layers,
                                epoch=epochs) for net in ("net a", "net.a")]
    assert "epoch" in ba.data.combine(datasets).coords
    out = report_from_datasets(datasets, tmp_path / "rep", progress=False, draws=300,
                               n_resamples=50)
    html = (out / "report.html").read_text()
    assert 'id="trajectory-net-a"' in html and 'id="trajectory-net-a-2"' in html
    assert "training-batch history" not in html  # no ``:train`` network here
    assert sorted(p.name for p in (out / "figures").iterdir()) == \
        ["trajectory_net.a.png", "trajectory_net_a.png"]
    table = pd.read_csv(out / "tables" / "trajectory.csv")
    assert list(dict.fromkeys(table["network"])) == ["net a", "net.a"]
    assert table.groupby("network")["layer"].apply(lambda s: list(dict.fromkeys(s))).tolist() \
        == [["b", "a"], ["b", "a"]]
    assert table["epoch"].unique().tolist() == [0, 2, 7]
    assert "mf" not in table  # no window counts
    first = table[(table["network"] == "net a") & (table["layer"] == "a")]
    np.testing.assert_allclose(first["mfr"], [30 / 40, 28 / 40, 20 / 40], atol=0.03)

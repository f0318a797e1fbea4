"""Tests of the optional extras: the Lightning callback and the TensorBoard scalars."""

from __future__ import annotations

import importlib
import sys
import warnings

import numpy as np
import pytest
import torch
from torch import nn

import bayesactiv as ba
from bayesactiv.monitor import FiringMonitor, firing_scalars

pl = pytest.importorskip("lightning.pytorch")
event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
from bayesactiv.monitor.lightning import FiringMonitorCallback
from bayesactiv.monitor.tensorboard import SummaryWriter, write_scalars


def _scalars(log_dir) -> dict[str, list[tuple[int, float]]]:
    acc = event_accumulator.EventAccumulator(str(log_dir))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


class Classifier(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 8), nn.ReLU(),
                                  nn.Linear(8, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def training_step(self, batch, index):
        x, y = batch
        return nn.functional.cross_entropy(self(x), y)

    def validation_step(self, batch, index):
        x, y = batch
        return nn.functional.cross_entropy(self(x), y)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-2)


def _loader(n: int, seed: int, shuffle: bool = False) -> torch.utils.data.DataLoader:
    g = torch.Generator().manual_seed(seed)
    x, y = torch.randn(n, 6, generator=g), torch.randint(0, 3, (n,), generator=g)
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=16,
                                       shuffle=shuffle, generator=g)


def test_lightning_callback_observes_and_counts_each_epoch(tmp_path, monkeypatch):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    model = Classifier()
    probe = torch.randn(40, 6, generator=torch.Generator().manual_seed(9))
    mon = FiringMonitor(model, ["body.1", "body.3"], probe=probe, network="clf",
                        store=tmp_path / "run.zarr", window_size=5)
    log_dir = tmp_path / "tb"
    with SummaryWriter(str(log_dir)) as writer:
        callback = FiringMonitorCallback(mon, count_training=True, writer=writer)
        trainer = pl.Trainer(max_epochs=3, accelerator="cpu", logger=False,
                             enable_checkpointing=False, enable_progress_bar=False,
                             enable_model_summary=False, default_root_dir=str(tmp_path / "pl"),
                             num_sanity_val_steps=2, callbacks=[callback])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # (Lightning's advice on data loader workers)
            trainer.fit(model, _loader(80, 1, shuffle=True), _loader(32, 2))
    assert list(cwd.iterdir()) == []  # nothing written outside tmp_path's own folders
    assert mon.epochs == [0, 1, 2] and mon.training_epochs == [0, 1, 2]
    # the last observe saw the final weights: exactly what record gives now
    last = mon.dataset().isel(unit=mon.dataset()["epoch"].values == 2)
    now = ba.record(model, probe, ["body.1", "body.3"], network="clf", window_size=5,
                    progress=False)
    np.testing.assert_array_equal(last["count"].values, now["count"].values)
    np.testing.assert_array_equal(last["window_count"].values, now["window_count"].values)
    # every training batch counted once per epoch; sanity and validation passes not at all
    counted = mon.training_dataset()
    assert (counted["n"].values == 80).all()
    assert sorted(set(ba.open_dataset(tmp_path / "run.zarr")["epoch"].values.tolist())) == [0, 1, 2]
    # the scalars of both sources, one per epoch
    scalars = _scalars(log_dir)
    expected = firing_scalars(ba.combine([mon.dataset(), counted], mismatch="drop"))
    for row in expected.itertuples(index=False):
        for quantity in ("mfr", "frac_silent", "frac_saturated", "units"):
            tag = f"firing/{row.network}/{row.layer}/{quantity}"
            values = dict(scalars[tag])
            assert values[row.epoch] == pytest.approx(getattr(row, quantity), rel=1e-6), tag
    assert [step for step, _ in scalars["firing/clf/body.1/mf"]] == [0, 1, 2]
    assert [step for step, _ in scalars["firing/clf:train/body.3/mfr"]] == [0, 1, 2]
    assert "firing/clf:train/body.3/mf" not in scalars  # no windows on training batches


def test_lightning_callback_alarm_stops_training(tmp_path):
    """An alarm whose margin any change exceeds fires at its first watched epochs; the
    trainer stops there, and the p_change of each epoch is written."""
    from bayesactiv.monitor import FiringAlarm

    torch.manual_seed(3)
    model = Classifier()
    probe = torch.randn(40, 6, generator=torch.Generator().manual_seed(9))
    mon = FiringMonitor(model, ["body.1"], probe=probe, network="clf", keep_events=True)
    alarm = FiringAlarm(margin=0.0, level=0.5, direction="either", reference=None, start=0,
                        consecutive=1, draws=200)
    log_dir = tmp_path / "tb"
    with SummaryWriter(str(log_dir)) as writer:
        callback = FiringMonitorCallback(mon, writer=writer, alarm=alarm, stop_on_alarm=True)
        trainer = pl.Trainer(max_epochs=20, accelerator="cpu", logger=False,
                             enable_checkpointing=False, enable_progress_bar=False,
                             enable_model_summary=False, default_root_dir=str(tmp_path / "pl"),
                             callbacks=[callback])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            trainer.fit(model, _loader(80, 1, shuffle=True))
    result = callback.alarm_result
    assert result.fired and mon.epochs[-1] == result.epoch < 19
    assert result.table.equals(alarm.check(mon.dataset()).table)
    steps = [step for step, _ in _scalars(log_dir)["firing_alarm/clf/body.1/p_change"]]
    assert steps == mon.epochs


def test_lightning_callback_checks_its_arguments():
    model = Classifier()
    with pytest.raises(TypeError, match="expected a FiringMonitor"):
        FiringMonitorCallback(model)
    with pytest.raises(ValueError, match="has no probe"):
        FiringMonitorCallback(FiringMonitor(model, "body.1"))
    with pytest.raises(ValueError, match="both False"):
        FiringMonitorCallback(FiringMonitor(model, "body.1"), observe=False)
    with pytest.raises(TypeError, match="writer"):
        FiringMonitorCallback(FiringMonitor(model, "body.1", probe=torch.randn(4, 6)),
                              writer="tb")
    with_probe = FiringMonitor(model, "body.1", probe=torch.randn(4, 6))
    with pytest.raises(TypeError, match="alarm: expected a FiringAlarm"):
        FiringMonitorCallback(with_probe, alarm=0.05)
    with pytest.raises(ValueError, match="stop_on_alarm: needs an alarm"):
        FiringMonitorCallback(with_probe, stop_on_alarm=True)


def test_tensorboard_scalars_read_back(tmp_path):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 12), nn.ReLU(), nn.Linear(12, 3))
    x = torch.randn(50, 6)
    mon = FiringMonitor(net, "1", probe=x, network="mlp", window_size=10)
    opt = torch.optim.SGD(net.parameters(), lr=0.5)
    with SummaryWriter(str(tmp_path)) as writer:
        for epoch in range(3):
            opt.zero_grad()
            net(x).square().mean().backward()
            opt.step()
            assert write_scalars(writer, mon.observe(epoch)) == 5
    scalars = _scalars(tmp_path)
    ds = mon.dataset()
    rate = (ds["count"] / ds["n"]).values.reshape(3, 12)
    assert [s for s, _ in scalars["firing/mlp/1/mfr"]] == [0, 1, 2]
    np.testing.assert_allclose([v for _, v in scalars["firing/mlp/1/mfr"]], rate.mean(1),
                               rtol=1e-6)
    np.testing.assert_allclose([v for _, v in scalars["firing/mlp/1/frac_silent"]],
                               (rate == 0).mean(1), rtol=1e-6)
    np.testing.assert_allclose([v for _, v in scalars["firing/mlp/1/units"]], [12, 12, 12])
    wc = ds["window_count"].values.reshape(-1, 3, 12)
    fano = wc.var(0) / wc.mean(0)
    np.testing.assert_allclose([v for _, v in scalars["firing/mlp/1/mf"]],
                               np.nanmean(np.where(wc.mean(0) > 0, fano, np.nan), axis=1),
                               rtol=1e-6)
    with pytest.raises(TypeError, match="SummaryWriter"):
        write_scalars("tb", ds)


@pytest.mark.parametrize("module, blocked, extra", [
    ("bayesactiv.monitor.tensorboard", ["torch.utils.tensorboard"], "tensorboard"),
    ("bayesactiv.monitor.lightning", ["lightning.pytorch", "pytorch_lightning"], "Lightning"),
])
def test_missing_extra_names_it(monkeypatch, module, blocked, extra):
    for name in blocked:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.delitem(sys.modules, module)
    with pytest.raises(ImportError, match=rf"needs .*{extra}.*bayesactiv\[monitor\]"):
        importlib.import_module(module)

"""The validation study of the firing monitor: its scenarios, runs and scoring."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

import bayesactiv as ba
from bayesactiv.monitor import FiringAlarm
from bayesactiv.studies import watching
from bayesactiv.studies.watching import SCENARIOS, Run, run, signals, splits, study, summary


def test_splits_are_disjoint_and_fixed():
    a, b = splits(0), splits(1)
    assert torch.equal(a["validation"][0], b["validation"][0])  # the probe never changes
    assert not torch.equal(a["train"][1], b["train"][1])  # the pool's order does
    pool = {tuple(v) for v in a["train"][0].reshape(len(a["train"][0]), -1).tolist()}
    val = {tuple(v) for v in a["validation"][0].reshape(300, -1).tolist()}
    assert len(pool & val) <= 5  # (the digits hold a few exact duplicates)


@pytest.mark.parametrize("name, wrong", [("noise-20", 0.2), ("noise-40", 0.4)])
def test_label_noise_corrupts_that_fraction_with_other_classes(name, wrong):
    y = splits(0)["train"][1]
    noisy, flipped = watching._labels(SCENARIOS[name], y, 0)
    assert flipped.mean() == pytest.approx(wrong, abs=1e-3)
    assert (noisy.numpy()[flipped] != y.numpy()[flipped]).all()
    assert (noisy.numpy()[~flipped] == y.numpy()[~flipped]).all()


def test_shuffled_labels_keep_the_class_counts():
    y = splits(0)["train"][1]
    shuffled, _ = watching._labels(SCENARIOS["shuffled"], y, 0)
    assert np.array_equal(np.bincount(shuffled.numpy()), np.bincount(y.numpy()))
    assert (shuffled != y).float().mean() > 0.8


def test_a_run_is_reproducible_and_its_history_is_the_monitors():
    a = run("noise-40", seed=3, epochs=3)
    b = run("noise-40", seed=3, epochs=3)
    pd.testing.assert_frame_equal(a.metrics, b.metrics)
    assert np.array_equal(a.history["count"].values, b.history["count"].values)
    assert sorted(set(a.history["layer"].values.tolist())) == ["relu1", "relu2", "relu3"]
    assert int(a.history["n"][0]) == 300 and "fired" in a.history
    assert a.metrics["test_acc"].iloc[-1] > 0.2  # it learned something in 3 epochs


def test_cnn_watches_its_dense_layer():
    r = run("true", seed=0, architecture="digits-cnn", epochs=1)
    assert set(r.history["layer"].values.tolist()) == {"relu_fc1"}


def _fake(scenario, seed, acc, mfr, val_loss):
    """A run whose one layer fires at ``mfr[e]`` on 300 inputs (shared uniforms)."""
    u = np.random.default_rng(seed).random((300, 20))
    parts = [ba.dataset.set_epoch(ba.make_dataset((u < r).sum(0), 300, network="digits-mlp",
                                                  layer="relu1", fired=u < r), e)
             for e, r in enumerate(mfr)]
    metrics = pd.DataFrame({"epoch": range(len(acc)), "test_acc": acc, "val_loss": val_loss,
                            "train_loss": 0.0, "train_acc": 0.0, "val_acc": 0.0})
    return Run(scenario, "digits-mlp", seed, metrics, ba.combine(parts), 0.0)


def test_signals_score_the_alarm_early_stopping_and_the_accuracy_peak():
    acc = [0.1, 0.5, 0.8, 0.9, 0.92, 0.91, 0.85, 0.8, 0.75, 0.7]
    mfr = [0.5, 0.6, 0.7, 0.72, 0.72, 0.65, 0.6, 0.55, 0.5, 0.5]
    val = [2.0, 1.0, 0.5, 0.4, 0.35, 0.36, 0.4, 0.5, 0.6, 0.7]
    out = signals(_fake("noise-40", 0, acc, mfr, val),
                  alarm=FiringAlarm(margin=0.05, reference="peak", start=2), patience=3)
    assert out["peak_epoch"] == 4 and out["peak_acc"] == 0.92
    assert out["alarm_epoch"] == 6 and out["alarm_layer"] == "relu1"  # 0.72 -> 0.65, 0.6
    assert out["alarm_acc"] == 0.85
    assert (out["es_best"], out["es_epoch"], out["es_acc"]) == (4, 7, 0.92)


def test_study_calibrates_on_design_seeds_and_scores_the_others():
    flat = [0.5, 0.6, 0.7, 0.7, 0.69, 0.7, 0.69, 0.7]
    falling = [0.5, 0.6, 0.7, 0.7, 0.6, 0.5, 0.45, 0.4]
    acc = [0.1, 0.5, 0.8, 0.9, 0.9, 0.9, 0.9, 0.9]
    val = [2.0, 1.0, 0.5, 0.4, 0.35, 0.34, 0.33, 0.32]
    runs = [_fake("true", s, acc, flat, val) for s in range(4)] + \
        [_fake("noise-40", s, acc, falling, val) for s in (2, 3)]
    monkey = pytest.MonkeyPatch()
    monkey.setattr(watching, "oui_rise", lambda h, start=5: pd.DataFrame(
        {"epoch": [5, 6, 7], "oui": 0.3, "rise": 0.0}))
    try:
        scored, margins = study(runs, design_seeds=(0, 1), start=2, draws=300)
    finally:
        monkey.undo()
    assert sorted(scored["seed"].tolist()) == [2, 2, 3, 3]
    assert 0.01 <= margins["digits-mlp"]["mfr_margin"] < 0.1
    table = summary(scored).set_index("scenario")
    assert table.loc["true", "firing alarm: fired"] == "0/2"
    assert table.loc["noise-40", "firing alarm: fired"] == "2/2"


def test_bad_scenario_and_architecture():
    with pytest.raises(ba.ArgumentError, match="scenario"):
        run("weird")
    with pytest.raises(ba.ArgumentError, match="architecture"):
        run("true", architecture="resnet")


def test_the_oui_alarm_fires_after_its_rise_holds_two_epochs(monkeypatch):
    acc = [0.1, 0.5, 0.8, 0.9, 0.92, 0.91, 0.85, 0.8, 0.75, 0.7]
    flat = [0.5] * 10
    val = [2.0 - 0.1 * e for e in range(10)]
    monkeypatch.setattr(watching, "oui_rise", lambda h, start=5: pd.DataFrame(
        {"epoch": [5, 6, 7, 8, 9], "oui": 0.0, "rise": [0.0, 0.2, 0.05, 0.2, 0.3]}))
    out = signals(_fake("noise-40", 0, acc, flat, val), oui_margin=0.1)
    assert (out["oui_epoch"], out["oui_acc"]) == (9, 0.7)

"""The command line: help texts, exit codes and one-line errors."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import bayesactiv as ba
from bayesactiv.cli import EXIT_BAD_INPUT, build_parser, main

COMMANDS = ["record", "train", "fit", "compare", "report", "demo"]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bayesactiv.cli", *args], capture_output=True, text=True, timeout=600, check=False
    )


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_explains_its_options(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert f"usage: bayesactiv {command}" in out
    parser = build_parser()
    sub = parser._subparsers._group_actions[0].choices[command]
    for action in sub._actions:
        if action.option_strings and action.dest != "help":
            assert action.help, f"{command} {action.option_strings} has no help text"


def test_missing_file_is_one_line_error(capsys):
    assert main(["fit", "no-such-file.nc"]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err.strip()
    assert err == "bayesactiv: error: no such dataset file: no-such-file.nc"


def test_malformed_dataset_file(tmp_path, capsys):
    bad = tmp_path / "bad.nc"
    bad.write_text("garbage")
    assert main(["compare", str(bad), str(bad)]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a readable netcdf" in err and "Traceback" not in err


def test_dataset_breaking_the_contract(tmp_path, capsys):
    ds = ba.make_dataset([1, 2], 5, network="n", layer="l")
    path = ba.save(ds, tmp_path / "ok.nc")
    import xarray as xr

    raw = xr.open_dataset(path, engine="h5netcdf").load()
    raw["count"].values[0] = 9  # count > n
    raw.to_netcdf(tmp_path / "broken.nc", engine="h5netcdf")
    assert main(["fit", str(tmp_path / "broken.nc")]) == EXIT_BAD_INPUT
    assert "count: exceeds n" in capsys.readouterr().err


def test_unknown_network_subprocess(tmp_path):
    proc = run_cli("record", "no-such-network", "-o", str(tmp_path / "x.nc"), "-q")
    assert proc.returncode == EXIT_BAD_INPUT
    assert proc.stderr.startswith("bayesactiv: error:") and "no-such-network" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "x.nc").exists()


def test_unknown_layer_subprocess(tmp_path):
    proc = run_cli("record", "iris-mlp", "--layers", "relu9", "-o", str(tmp_path / "x.nc"), "-q")
    assert proc.returncode == EXIT_BAD_INPUT
    assert "relu9" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "x.nc").exists()


def test_record_then_fit_on_the_command_line(tmp_path):
    out = tmp_path / "iris.nc"
    proc = run_cli("record", "iris-mlp", "--window-size", "6", "--keep-events", "-o", str(out), "-q")
    assert proc.returncode == 0, proc.stderr
    ds = ba.open_dataset(out)
    assert set(ds["layer"].values) >= {"relu1", "relu2", "relu3"} or ds.sizes["unit"] == 64 + 32 + 16
    assert "fired" in ds and "window_count" in ds
    assert np.all(ds["n"].values == 30)  # the held-out Iris split


# ---------------------------------------------------------------- version, train, help


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"bayesactiv {ba.__version__}"


def test_train_list_names_the_reference_networks(capsys):
    from bayesactiv import zoo
    assert main(["train", "--list"]) == 0
    assert capsys.readouterr().out.split() == zoo.names()


def test_train_without_a_network_is_one_line_error(capsys):
    assert main(["train"]) == EXIT_BAD_INPUT
    assert "train --list" in capsys.readouterr().err


def _no_training(*args, **kwargs):
    raise AssertionError("training started")


def test_train_writes_into_a_user_folder_it_names(tmp_path, monkeypatch, capsys):
    from bayesactiv import zoo
    monkeypatch.delenv("BAYESACTIV_MODELS", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    seen = []

    def fake_train(name, out_dir=None, progress=True):
        seen.append((name, out_dir))
        return {"checkpoints": [{"epoch": 1, "train_accuracy": 1.0, "test_accuracy": 0.5}]}

    monkeypatch.setattr(zoo, "train", fake_train)
    assert main(["train", "iris-mlp", "-q"]) == 0
    folder = tmp_path / "data" / "bayesactiv" / "models"
    assert seen == [("iris-mlp", folder)]
    assert f"training into {folder}" in capsys.readouterr().out
    assert main(["train", "iris-mlp", "-q", "--out-dir", str(tmp_path / "mine")]) == 0
    assert seen[-1] == ("iris-mlp", tmp_path / "mine")


def test_train_refuses_the_package_folder_before_training(monkeypatch, capsys):
    from bayesactiv import zoo
    monkeypatch.setattr(zoo, "train", _no_training)
    assert main(["train", "iris-mlp", "--out-dir", str(zoo.checkpoints_dir())]) == EXIT_BAD_INPUT
    assert "inside the installed bayesactiv package" in capsys.readouterr().err
    assert main(["train", "no-such-net", "--out-dir", "/tmp"]) == EXIT_BAD_INPUT


@pytest.mark.parametrize("command", COMMANDS)
def test_every_option_states_its_default(command):
    sub = build_parser()._subparsers._group_actions[0].choices[command]
    formatter = sub.formatter_class(prog=f"bayesactiv {command}")
    for action in sub._actions:
        if not action.option_strings or action.dest in ("help", "version") or action.required:
            continue
        assert "default" in formatter._expand_help(action), (command, action.option_strings)


# ---------------------------------------------------------------- checks before the long work


@pytest.fixture
def no_long_work(monkeypatch):
    """Make any fit, comparison, recording or network loading fail the test."""
    from bayesactiv import bayes, comparison, recording, report, zoo

    def refuse(*args, **kwargs):
        raise AssertionError("the long work started before the options were checked")

    # the CLI imports these from the rooms when a command runs: patch them there
    monkeypatch.setattr(bayes, "fit", refuse)
    monkeypatch.setattr(comparison, "compare", refuse)
    monkeypatch.setattr(recording, "record", refuse)
    monkeypatch.setattr(zoo, "load", refuse)
    monkeypatch.setattr(report, "report_from_datasets", refuse)


@pytest.fixture
def dataset_file(tmp_path) -> str:
    return str(ba.save(ba.make_dataset([1, 2], 5, network="n", layer="l"), tmp_path / "d.nc"))


BAD_NUMBERS = [
    (["fit", "{d}", "--draws", "0"], "--draws: expected an integer >= 1"),
    (["fit", "{d}", "--chains", "0"], "--chains: expected an integer >= 1"),
    (["fit", "{d}", "--tune", "-1"], "--tune: expected an integer >= 0"),
    (["fit", "{d}", "--seed", "-3"], "--seed: expected an integer >= 0"),
    (["fit", "{d}", "--prob", "1.5"], "--prob: expected a number strictly between 0 and 1"),
    (["compare", "{d}", "{d}", "--prob", "0"], "--prob: expected a number strictly between"),
    (["compare", "{d}", "{d}", "--draws", "-5"], "--draws: expected an integer >= 1"),
    (["compare", "{d}", "{d}", "--target-accept", "1"], "--target-accept: expected a number > 0"),
    (["report", "{d}", "--prob", "90", "-o", "{t}/r"], "--prob: expected a number strictly"),
    (["record", "digits-mlp", "-o", "{t}/x.nc", "--window-size", "0"], "--window-size: expected"),
    (["record", "digits-mlp", "-o", "{t}/x.nc", "--batch-size", "0"], "--batch-size: expected"),
    (["record", "digits-mlp", "-o", "{t}/x.nc", "--epoch", "-1"], "--epoch: expected"),
    (["record", "digits-mlp", "-o", "{t}/x.nc", "--threshold", "nan"], "--threshold: expected a finite"),
    (["record", "digits-mlp", "-o", "{t}/x.nc", "--fraction-of-max", "2"], "--fraction-of-max: expected"),
    (["record", "digits-mlp", "-o", "{t}/x.nc", "--quantile", "-0.1"], "--quantile: expected"),
    (["record", "digits-mlp", "-o", "{t}/x.nc", "--quantile", "0.5", "--threshold", "1"],
     "choose one of --threshold, --fraction-of-max, --quantile"),
]


@pytest.mark.parametrize(("argv", "message"), BAD_NUMBERS)
def test_bad_numbers_fail_before_the_work(argv, message, no_long_work, dataset_file, tmp_path,
                                          capsys):
    argv = [a.format(d=dataset_file, t=tmp_path) for a in argv]
    assert main(argv) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert err.startswith("bayesactiv: error: ") and err.count("\n") == 1 and message in err


def _bad_outputs(tmp_path):
    (tmp_path / "folder.nc").mkdir()
    (tmp_path / "notzarr.zarr").mkdir()
    (tmp_path / "notzarr.zarr" / "mine.txt").write_text("keep me")
    (tmp_path / "fit_units.csv").mkdir()
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("keep me")
    return [
        (["record", "digits-mlp", "-o", "{t}/x.txt"], "use a '.nc' or '.zarr' suffix"),
        (["record", "digits-mlp", "-o", "{t}/missing/x.nc"], "does not exist"),
        (["record", "digits-mlp", "-o", "{t}/folder.nc"], "is a directory"),
        (["record", "digits-mlp", "-o", "{t}/notzarr.zarr"], "is not a zarr store"),
        (["fit", "{d}", "-o", "{t}/missing/fit"], "does not exist"),
        (["fit", "{d}", "-o", "{t}/fit"], "fit_units.csv' is a directory"),
        (["fit", "{d}", "-o", "{t}"], "is a directory; give a prefix"),
        (["compare", "{d}", "{d}", "-o", "{t}"], "is a directory; give a file name"),
        (["compare", "{d}", "{d}", "-o", "{t}/missing/c.csv"], "does not exist"),
        (["report", "{d}", "-o", "{t}/full"], "non-empty folder that does not hold a report"),
    ]


def test_bad_outputs_fail_before_the_work(no_long_work, dataset_file, tmp_path, capsys):
    for argv, message in _bad_outputs(tmp_path):
        argv = [a.format(d=dataset_file, t=tmp_path) for a in argv]
        assert main(argv) == EXIT_BAD_INPUT, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, (argv, err)
    assert (tmp_path / "notzarr.zarr" / "mine.txt").read_text() == "keep me"
    assert (tmp_path / "full" / "notes.txt").read_text() == "keep me"


@pytest.mark.skipif(not hasattr(__import__("os"), "geteuid") or __import__("os").geteuid() == 0,
                    reason="root writes into read-only folders")
def test_read_only_output_folder_fails_before_the_work(no_long_work, dataset_file, tmp_path,
                                                       capsys):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        assert main(["fit", dataset_file, "-o", str(folder / "fit")]) == EXIT_BAD_INPUT
    finally:
        folder.chmod(0o755)
    assert "is not writable" in capsys.readouterr().err


# ---------------------------------------------------------------- file modes


class _FakeFit:
    def groups(self, prob):
        import xarray as xr

        return xr.Dataset({"mu_mean": ("group", [0.5])}, coords={"group": ["n/l"]})

    def units(self, prob):
        import xarray as xr

        return xr.Dataset({"post_mean": ("unit", [0.2, 0.4])}, coords={"unit": ["n/l/0", "n/l/1"]})

    def summary(self):
        import pandas as pd

        return pd.DataFrame({"r_hat": [1.0]})


class _FakeComparison:
    def verdicts(self):
        return ["a verdict"]

    def to_dataframe(self):
        import pandas as pd

        return pd.DataFrame({"diff": [0.1]})


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_csv_files_follow_the_umask(umask, tmp_path, monkeypatch, dataset_file):
    import os

    from bayesactiv import bayes, comparison

    monkeypatch.setattr(bayes, "fit", lambda *a, **k: _FakeFit())
    monkeypatch.setattr(comparison, "compare", lambda *a, **k: _FakeComparison())
    previous = os.umask(umask)
    try:
        assert main(["fit", dataset_file, "-q", "-o", str(tmp_path / "fit")]) == 0
        assert main(["compare", dataset_file, dataset_file, "-q", "-o", str(tmp_path / "c.csv")]) == 0
    finally:
        os.umask(previous)
    for name in ("fit_units.csv", "fit_groups.csv", "c.csv"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o666 & ~umask, name
    assert "n/l/1" in (tmp_path / "fit_units.csv").read_text()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


# ---------------------------------------------------------------- one naming rule


def test_python_and_command_line_name_a_zoo_network_alike(tmp_path):
    from bayesactiv import zoo
    x, _ = zoo.dataset("digits-mlp", split="test")
    from_python = ba.record(zoo.load("digits-mlp"), x[:40], ["relu1"], progress=False)
    out = tmp_path / "mlp.nc"
    assert main(["record", "digits-mlp", "--layers", "relu1", "-q", "-o", str(out)]) == 0
    from_cli = ba.open_dataset(out)
    assert set(from_python["network"].values) == set(from_cli["network"].values) == {"digits-mlp"}


def test_target_accept_reaches_the_sampler(tmp_path, monkeypatch, dataset_file):
    seen = {}

    def fake_fit(ds, **kwargs):
        seen.update(kwargs)
        return _FakeFit()

    from bayesactiv import bayes

    monkeypatch.setattr(bayes, "fit", fake_fit)
    assert main(["fit", dataset_file, "-q"]) == 0
    assert "target_accept" not in seen  # the sampler's own default
    assert main(["fit", dataset_file, "-q", "--target-accept", "0.95"]) == 0
    assert seen["target_accept"] == 0.95

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

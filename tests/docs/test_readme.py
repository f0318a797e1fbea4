"""Every example of the README runs, and without a single warning.

The README's ``python`` block and the ``bayesactiv`` lines of its ``bash`` blocks run
in a temporary folder, with every warning turned into an error. Skipped, because
they take minutes: ``make demo``/``make test`` (they run the demo and this suite),
``bayesactiv train NAME`` (retrains a network from scratch; tests/test_zoo.py
checks training; ``train --list`` runs) and ``bayesactiv demo`` (tests/test_demo.py runs it). Point
``BAYESACTIV_README`` at another file to check a proposed README before it lands.

The dataset table is checked against a real recording: every variable it names
exists, with the dims it states.
"""

from __future__ import annotations

import os
import re
import shlex
import warnings
from pathlib import Path

import pytest

import bayesactiv as ba
from bayesactiv.cli import main

ROOT = Path(__file__).resolve().parents[2]
SKIPPED_COMMANDS = {"train": "retrains a network (minutes)", "demo": "the whole study (minutes)"}


def readme_text() -> str:
    return Path(os.environ.get("BAYESACTIV_README", ROOT / "README.md")).read_text()


def fenced_blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL)


def command_lines(text: str) -> list[list[str]]:
    """The ``bayesactiv`` command lines of the bash blocks, minus those that take minutes."""
    lines = []
    for block in fenced_blocks(text, "bash"):
        for line in block.splitlines():
            words = shlex.split(line, comments=True)
            if not words or words[0] == "make":  # make demo / make test: minutes
                continue
            assert words[0] == "bayesactiv", f"README: unexpected command line {line!r}"
            if words[1] not in SKIPPED_COMMANDS or "--list" in words:
                lines.append(words[1:])
    return lines


def test_the_readme_has_the_examples_this_file_runs():
    text = readme_text()
    assert len(fenced_blocks(text, "python")) >= 1
    commands = [words[0] for words in command_lines(text)]
    assert {"record", "fit", "compare", "report"} <= set(commands)


def _table_rows(text: str) -> list[tuple[list[str], list[str]]]:
    section = text.split("## The activation dataset", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not cells[0].startswith("`"):
            continue
        names = [n for n in re.findall(r"`([^`]+)`", cells[0]) if " " not in n]
        names += [n for part in re.findall(r"`([^`]+)`", cells[0]) if " " in part
                  for n in part.split() if n.isidentifier()]
        dims = [d.strip() for d in cells[1].strip("()").split(",")]
        rows.append((names, dims))
    return rows


def test_the_dataset_table_names_real_variables_and_dims():
    import torch

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU())
    dense = ba.record(net, torch.randn(40, 3), "1", window_size=10, keep_events=True,
                      progress=False)
    tokens = ba.record(net, torch.randn(40, 5, 3), "1", progress=False)  # clustered events
    rows = _table_rows(readme_text())
    assert len(rows) >= 6
    for names, dims in rows:
        for name in names:
            ds = dense if name in dense else tokens
            assert name in ds, f"README's dataset table names {name!r}, which a recording lacks"
            assert list(ds[name].dims) == dims, f"{name}: README says {dims}, is {ds[name].dims}"


def _errors_on_every_warning() -> None:
    warnings.simplefilter("error")


@pytest.mark.slow
def test_the_python_example_runs_without_warnings(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    monkeypatch.chdir(tmp_path)
    blocks = fenced_blocks(readme_text(), "python")
    try:
        with warnings.catch_warnings():
            _errors_on_every_warning()
            for number, code in enumerate(blocks):
                if "load_minilm" in code:  # the transformer study: notebook 05 and
                    continue  # tests/zoo/test_text.py run it (a minute at full size)
                exec(compile(code, f"README.md python block {number + 1}", "exec"), {})  # noqa: S102
    finally:
        plt.close("all")
    assert (tmp_path / "digits-mlp.nc").exists() or "ba.save" not in "".join(blocks)


@pytest.mark.slow
def test_the_command_line_example_runs_without_warnings(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with warnings.catch_warnings():
        _errors_on_every_warning()
        for words in command_lines(readme_text()):
            code = main(words)
            err = capsys.readouterr().err
            assert code == 0, f"bayesactiv {shlex.join(words)}: exit {code}: {err}"
            assert "warning" not in err.lower(), f"bayesactiv {shlex.join(words)}: {err}"

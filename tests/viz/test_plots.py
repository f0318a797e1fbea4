"""Figures leave the matplotlib backend to the user, and say in words what they cannot show."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

import bayesactiv as ba
from bayesactiv.viz import plots

INLINE = "module://matplotlib_inline.backend_inline"
# the comparison tests, wherever they sit in the tests tree (basenames are unique)
_TEST_COMPARE = next(Path(__file__).resolve().parents[1].rglob("test_compare.py"))


def _backend_after(code: str, tmp_path: Path) -> str:
    """Run ``code`` in a fresh interpreter that first selects the notebook backend."""
    script = "\n".join([
        "import matplotlib",
        f"matplotlib.use({INLINE!r})",
        textwrap.dedent(code),
        'print("BACKEND", matplotlib.get_backend())',
    ])
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=300, env=env, cwd=tmp_path, check=False)
    assert res.returncode == 0, res.stderr[-3000:]
    return res.stdout.split("BACKEND", 1)[1].strip()


def test_importing_the_figure_modules_keeps_the_notebook_backend(tmp_path: Path) -> None:
    code = """
        import bayesactiv.viz.plots, bayesactiv.report.document, bayesactiv.comparison.contrasts, bayesactiv.studies.memorization
    """
    assert _backend_after(code, tmp_path) == INLINE


def test_comparison_plot_and_demo_keep_the_notebook_backend(tmp_path: Path) -> None:
    """Before pyplot is imported, neither Comparison.plot nor run_demo may switch to Agg."""
    code = f"""
        import sys
        sys.path.insert(0, {str(_TEST_COMPARE.parent)!r})
        from test_compare import synthetic_comparison
        synthetic_comparison(["B"], ["fc"]).plot()
        import os
        from bayesactiv.studies.memorization import run_demo
        os.makedirs("busy")
        open("busy/notes.txt", "w").write("mine")
        try:
            run_demo("busy", quick=True, progress=False)
        except ValueError:
            pass
    """
    assert _backend_after(code, tmp_path) == INLINE


def test_coactivation_of_a_layer_where_no_unit_varies_says_so() -> None:
    fired = np.ones((40, 3), dtype=bool)
    fired[:, 0] = False
    ds = ba.make_dataset(fired.sum(0), 40, network="n", layer="l", fired=fired)
    fig = plots.plot_coactivation(ds, "l")
    assert any("no unit varies" in t.get_text() for t in fig.axes[0].texts)
    plt.close(fig)
    f = np.random.default_rng(0).random((40, 3)) < 0.5
    fig = plots.plot_coactivation(ba.make_dataset(f.sum(0), 40, network="n", layer="l", fired=f),
                                  "l")
    assert not fig.axes[0].texts
    plt.close(fig)

"""The notebooks run top to bottom with small settings (BAYESACTIV_SMALL=1) and show their figures."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))
NO_WIDGETS = "IProgress not found"


def _kernel_env() -> dict[str, str]:
    """The environment of a notebook kernel: its own (inline) matplotlib backend, not Agg."""
    return {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}


def _outputs(book: nbformat.NotebookNode) -> list[dict]:
    return [o for c in book.cells if c.cell_type == "code" for o in c.get("outputs", [])]


def _output_text(output: dict) -> str:
    if output.get("output_type") == "stream":
        return output.get("text", "")
    data = output.get("data", {})
    return "".join(str(data.get(kind, "")) for kind in ("text/plain", "text/html"))


def _run(book: nbformat.NotebookNode, path: Path) -> nbformat.NotebookNode:
    client = NotebookClient(book, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(path)}})
    client.execute(env=_kernel_env())
    return book


def test_there_are_six_notebooks_without_outputs():
    assert [p.name[:2] for p in NOTEBOOKS] == ["01", "02", "03", "04", "05", "06"]
    for path in NOTEBOOKS:
        book = nbformat.read(path, as_version=4)
        assert all(not c.get("outputs") for c in book.cells if c.cell_type == "code"), path.name
        assert book.cells[0].cell_type == "markdown" and "Question" in book.cells[0].source


def test_notebooks_leave_the_backend_to_jupyter():
    """A notebook that selects Agg shows no figure."""
    for path in NOTEBOOKS:
        book = nbformat.read(path, as_version=4)
        code = "\n".join(c.source for c in book.cells if c.cell_type == "code")
        assert "matplotlib.use(" not in code, path.name


def test_a_kernel_shows_figures_inline_and_progress_without_warning(tmp_path):
    """What the notebooks rely on: tqdm finds ipywidgets, and pyplot figures come out as PNG."""
    book = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("from tqdm.auto import tqdm\nimport bayesactiv as ba"),
        nbformat.v4.new_code_cell("import matplotlib.pyplot as plt\n"
                                  "fig, ax = plt.subplots()\n_ = ax.plot([0, 1], [1, 0])"),
    ])
    _run(book, tmp_path)
    outputs = _outputs(book)
    assert not [o for o in outputs if NO_WIDGETS in _output_text(o)]
    assert any("image/png" in o.get("data", {}) for o in book.cells[1].outputs)


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes(path, tmp_path, monkeypatch):
    monkeypatch.setenv("BAYESACTIV_SMALL", "1")
    book = _run(nbformat.read(path, as_version=4), tmp_path)
    outputs = _outputs(book)
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert not [o for o in outputs if NO_WIDGETS in _output_text(o)]
    draws = [c for c in book.cells if c.cell_type == "code" and "plt.subplots(" in c.source]
    for cell in draws:  # every figure a cell draws is displayed inline
        assert any("image/png" in o.get("data", {}) for o in cell.outputs), cell.source[:60]

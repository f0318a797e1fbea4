"""Report folder writer: CSV and Markdown tables, PNG figures, one self-contained HTML file.

A :class:`Report` collects sections, short explanatory text, tables and
matplotlib figures, and writes them as a folder::

    out_dir/
        report.html      one file, images embedded as base64, no external resources
        report.md        the same report as Markdown (figures linked, tables inline)
        tables/NAME.csv  every table in full
        tables/NAME.md   every table as a Markdown pipe table
        figures/NAME.png every figure

The folder is written atomically: everything goes to a temporary folder beside
``out_dir`` that is renamed into place only when complete. Tables in the HTML and
``report.md`` show human headers (:data:`~bayesactiv.report.tables.COLUMN_HEADERS`) and
long notes as numbered notes under the table; the files under ``tables/`` keep the raw
column names. All text is escaped; :meth:`Report.text` understands a small, safe subset
of Markdown (:func:`~bayesactiv.report.markdown.markdown_to_html`). The page's markup is
the template ``templates/report.html``, its style ``templates/report.css`` (inlined).

Examples
--------
>>> import tempfile, pandas as pd
>>> import matplotlib.pyplot as plt
>>> from bayesactiv.report.document import Report
>>> rep = Report("Firing of a small network")
>>> _ = rep.section("Rates").text("Firing rate per unit, **90%** intervals.")
>>> _ = rep.table(pd.DataFrame({"unit": ["a", "b"], "rate": [0.1, 0.25]}), "rates")
>>> fig, ax = plt.subplots()
>>> _ = ax.plot([0, 1], [0, 1])
>>> _ = rep.figure(fig, "line")
>>> path = rep.write(tempfile.mkdtemp() + "/report")
>>> sorted(p.name for p in path.iterdir())
['figures', 'report.html', 'report.md', 'tables']
"""

from __future__ import annotations

import base64
import functools
import io
import os
import re
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd
import xarray as xr
from markupsafe import Markup

from bayesactiv.data.checks import check_int
from bayesactiv.report.errors import ReportError, check_out_dir
from bayesactiv.report.markdown import inline_markdown, markdown_to_html, slugify, to_markdown_table
from bayesactiv.report.tables import (
    COLUMN_HEADERS,
    NOTE_COLUMNS,
    as_frame,
    table_markdown,
    table_view,
)

__all__ = ["Report", "page_template", "unwrap_figure"]

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@functools.cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.PackageLoader("bayesactiv.report", "templates"),
                              autoescape=True, keep_trailing_newline=True,
                              undefined=jinja2.StrictUndefined)


def page_template() -> tuple[jinja2.Template, str]:
    """The page template and the stylesheet it inlines (``templates/report.{html,css}``).

    Examples
    --------
    >>> template, css = page_template()
    >>> template.name, css.startswith(":root")
    ('report.html', True)
    """
    env = _environment()
    css = env.loader.get_source(env, "report.css")[0]
    return env.get_template("report.html"), css


@dataclass
class _Item:
    kind: str  # "section", "text", "warning", "table", "figure"
    payload: dict[str, Any] = field(default_factory=dict)


class Report:
    """Collect sections, text, tables and figures; write them as a report folder.

    Parameters
    ----------
    title : str
        The report title (first heading and HTML ``<title>``).
    subtitle : str, optional
        One line under the title (Markdown subset allowed).

    Examples
    --------
    >>> from bayesactiv.report.document import Report
    >>> rep = Report("Demo")
    >>> rep.section("Intro").text("Hello *world*.") is rep
    True
    """

    def __init__(self, title: str, *, subtitle: str | None = None) -> None:
        if not isinstance(title, str) or not title.strip():
            raise ReportError("title: expected a non-empty string")
        self.title = title
        self.subtitle = subtitle
        self._items: list[_Item] = []
        self._ids: set[str] = {"contents", "top"}
        self._tables: dict[str, pd.DataFrame] = {}
        self._figures: dict[str, bytes] = {}

    # -- building ------------------------------------------------------------
    def section(self, title: str, *, level: int = 2, id: str | None = None) -> Report:
        """Start a section (``level`` 2) or subsection (3, 4); returns the report for chaining.

        Parameters
        ----------
        title : str
            Heading text.
        level : {2, 3, 4}
            Heading level; the table of contents nests by level.
        id : str, optional
            HTML id for the heading (default: from the title, made unique).

        Examples
        --------
        >>> from bayesactiv.report.document import Report
        >>> rep = Report("R").section("Rates").section("Layer fc1", level=3)
        >>> rep.section_ids()
        ['rates', 'layer-fc1']
        """
        level = check_int(level, "level", minimum=2, maximum=4)
        if not isinstance(title, str) or not title.strip():
            raise ReportError("section title: expected a non-empty string")
        base = slugify(id if id is not None else title)
        if id is not None and base in self._ids:
            raise ReportError(f"id: {id!r} is already used by another section")
        slug, k = base, 2
        while slug in self._ids:
            slug, k = f"{base}-{k}", k + 1
        self._ids.add(slug)
        self._items.append(_Item("section", {"title": title, "level": level, "id": slug}))
        return self

    def section_ids(self) -> list[str]:
        """The HTML ids of all sections so far, in order."""
        return [it.payload["id"] for it in self._items if it.kind == "section"]

    def text(self, md: str) -> Report:
        """Add explanatory text (the safe Markdown subset of :func:`markdown_to_html`).

        Examples
        --------
        >>> from bayesactiv.report.document import Report
        >>> _ = Report("R").text("Intervals are **90%** equal-tailed.")
        """
        markdown_to_html(md)  # validates
        self._items.append(_Item("text", {"md": md}))
        return self

    def warning(self, md: str) -> Report:
        """Add a warning the reader must not miss: a framed block headed **Warning**.

        Examples
        --------
        >>> from bayesactiv.report.document import Report
        >>> 'class="warning"' in Report("R").warning("Rules differ.").to_html()
        True
        """
        markdown_to_html(md)  # validates
        self._items.append(_Item("warning", {"md": md}))
        return self

    def table(
        self,
        data: pd.DataFrame | xr.Dataset | xr.DataArray,
        name: str,
        *,
        caption: str | None = None,
        max_rows: int = 40,
        digits: int = 3,
        show: Sequence[str] | None = None,
        headers: Mapping[str, str] | None = None,
        notes: Sequence[str] | None = None,
    ) -> Report:
        """Add a table: shown in the HTML (first ``max_rows`` rows), written in full as CSV and MD.

        The HTML and ``report.md`` show human headers (:data:`COLUMN_HEADERS`, updated
        by ``headers``), and the texts of the ``notes`` columns as numbered notes under
        the table (equal texts share one number), so no row grows tall. The files under
        ``tables/`` keep the raw column names and every cell.

        Parameters
        ----------
        data : pandas.DataFrame or xarray.Dataset or xarray.DataArray
            Datasets are flattened with ``to_dataframe()``; index levels become columns.
        name : str
            File stem for ``tables/NAME.csv`` and ``tables/NAME.md`` (letters, digits,
            ``_``, ``-``, ``.``), unique within the report.
        caption : str, optional
            Shown under the table.
        max_rows : int
            Rows shown in the HTML; the files always hold all rows.
        digits : int
            Significant digits for floats in HTML and Markdown (CSV keeps full precision).
        show : sequence of str, optional
            Columns shown in the HTML and inline Markdown (default: all); the files keep all.
        headers : mapping, optional
            Raw column name -> header shown, over :data:`COLUMN_HEADERS`.
        notes : sequence of str, optional
            Columns shown as notes (default: those of :data:`NOTE_COLUMNS` in the table).

        Examples
        --------
        >>> import pandas as pd
        >>> from bayesactiv.report.document import Report
        >>> rep = Report("R").table(pd.DataFrame({"post_mean": [0.5], "x": [2]}), "xs",
        ...                         caption="Two numbers.", headers={"x": "events seen"})
        >>> print(rep.to_markdown().splitlines()[2])
        | posterior mean | events seen |
        """
        self._check_name(name, self._tables, "table")
        max_rows = check_int(max_rows, "max_rows", minimum=1)
        digits = check_int(digits, "digits", minimum=1)
        frame = as_frame(data)
        if show is not None:
            missing = [c for c in show if c not in frame.columns]
            if missing:
                raise ReportError(f"show: columns {missing} are not in table {name!r}")
        notes = [c for c in NOTE_COLUMNS if c in frame.columns] if notes is None else list(notes)
        missing = [c for c in notes if c not in frame.columns]
        if missing:
            raise ReportError(f"notes: columns {missing} are not in table {name!r}")
        shown_headers = {**COLUMN_HEADERS, **dict(headers or {})}
        self._tables[name] = frame
        self._items.append(_Item("table", {"name": name, "caption": caption, "max_rows": max_rows,
                                           "digits": digits, "show": show,
                                           "headers": shown_headers, "notes": notes}))
        return self

    def figure(
        self,
        fig: Any,
        name: str,
        *,
        caption: str | None = None,
        dpi: int = 100,
        close: bool = True,
    ) -> Report:
        """Add a matplotlib figure (rendered to PNG now; closed afterwards unless ``close=False``).

        Parameters
        ----------
        fig : matplotlib.figure.Figure
            Anything with ``savefig``; a PlotCollection-like object with a ``.viz`` or
            ``.figure`` attribute is unwrapped.
        name : str
            File stem for ``figures/NAME.png``, unique within the report.
        caption : str, optional
            Shown under the figure.
        dpi : int
            Resolution of the PNG.
        close : bool
            Close the figure after rendering, to free memory.

        Examples
        --------
        >>> import matplotlib.pyplot as plt
        >>> from bayesactiv.report.document import Report
        >>> fig, ax = plt.subplots()
        >>> _ = Report("R").figure(fig, "empty", caption="Nothing yet.")
        """
        self._check_name(name, self._figures, "figure")
        dpi = check_int(dpi, "dpi", minimum=10)
        fig = unwrap_figure(fig)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
        if close:
            import matplotlib.pyplot as plt

            plt.close(fig)
        self._figures[name] = buf.getvalue()
        self._items.append(_Item("figure", {"name": name, "caption": caption}))
        return self

    def _check_name(self, name: str, taken: dict, what: str) -> None:
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise ReportError(
                f"{what} name: {name!r} is not a valid file stem (use letters, digits, '_', '-', '.')"
            )
        if name in taken:
            raise ReportError(f"{what} name: {name!r} is already used in this report")

    # -- rendering -----------------------------------------------------------

    # -- rendering -----------------------------------------------------------
    def _toc(self) -> list[dict[str, Any]]:
        """The sections as a tree (``children``), nested by level."""
        root: list[dict[str, Any]] = []
        stack: list[tuple[int, list]] = [(1, root)]
        for it in self._items:
            if it.kind != "section":
                continue
            sec = it.payload
            while stack[-1][0] >= sec["level"]:
                stack.pop()
            node = {"id": sec["id"], "title": sec["title"], "children": []}
            stack[-1][1].append(node)
            stack.append((sec["level"], node["children"]))
        return root

    def _shown(self, name: str, show: Sequence[str] | None) -> pd.DataFrame:
        frame = self._tables[name]
        return frame if show is None else frame[list(show)]

    def _table_args(self, p: Mapping[str, Any]) -> dict[str, Any]:
        return {"caption": p["caption"], "max_rows": p["max_rows"], "digits": p["digits"],
                "headers": p.get("headers") or {}, "notes": p.get("notes", ())}

    def _block(self, it: _Item) -> dict[str, Any]:
        """What the template draws for one item."""
        p = it.payload
        if it.kind == "section":
            return {"kind": "section", **p}
        if it.kind in ("text", "warning"):
            md = p["md"] if it.kind == "text" else "**Warning:** " + p["md"]
            return {"kind": it.kind, "html": Markup(markdown_to_html(md))}
        if it.kind == "table":
            view = table_view(p["name"], self._shown(p["name"], p.get("show")),
                              **self._table_args(p))
            return {**view, "caption": Markup(view["caption"]) if view["caption"] else None}
        caption = p["caption"]
        return {"kind": "figure", "name": p["name"], "alt": caption or p["name"],
                "data": base64.b64encode(self._figures[p["name"]]).decode("ascii"),
                "caption": Markup(inline_markdown(caption)) if caption else None}

    def to_html(self) -> str:
        """The whole report as one self-contained HTML document (no external resources).

        Examples
        --------
        >>> from bayesactiv.report.document import Report
        >>> "<h2 id=\\"a\\">A</h2>" in Report("R").section("A").to_html()
        True
        """
        from bayesactiv.version import __version__

        template, css = page_template()
        return template.render(
            title=self.title, css=Markup(css), version=__version__,
            subtitle=Markup(inline_markdown(self.subtitle)) if self.subtitle else None,
            created=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            toc=self._toc(), blocks=[self._block(it) for it in self._items],
        )

    def to_markdown(self) -> str:
        """The report as Markdown: tables inline (first rows), figures linked to ``figures/``."""
        out = [f"# {self.title}", ""]
        if self.subtitle:
            out += [self.subtitle, ""]
        for it in self._items:
            p = it.payload
            if it.kind == "section":
                out += ["#" * p["level"] + " " + p["title"], ""]
            elif it.kind == "text":
                out += [p["md"].strip(), ""]
            elif it.kind == "warning":
                out += ["> **Warning:** " + " ".join(p["md"].split()), ""]
            elif it.kind == "table":
                out += table_markdown(p["name"], self._shown(p["name"], p.get("show")),
                                      **self._table_args(p))
            elif it.kind == "figure":
                out += [f"![{p['caption'] or p['name']}](figures/{p['name']}.png)", ""]
                if p["caption"]:
                    out += [f"*{p['caption']}*", ""]
        return "\n".join(out)

    def write(self, out_dir: str | os.PathLike) -> Path:
        """Write the report folder atomically and return its path.

        An existing ``out_dir`` is replaced only when it is empty or holds a
        previous report (a ``report.html``); anything else raises, so a typo
        cannot wipe an unrelated folder.

        Parameters
        ----------
        out_dir : str or path-like

        Returns
        -------
        pathlib.Path
            ``out_dir``, now holding ``report.html``, ``report.md``, ``tables/`` and ``figures/``.

        Examples
        --------
        >>> import tempfile
        >>> from bayesactiv.report.document import Report
        >>> path = Report("R").section("A").write(tempfile.mkdtemp() + "/out")
        >>> (path / "report.html").exists()
        True
        """
        out = Path(out_dir)
        check_out_dir(out)
        parent = out.absolute().parent
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=parent))
        try:
            (tmp / "tables").mkdir()
            (tmp / "figures").mkdir()
            for name, frame in self._tables.items():
                frame.to_csv(tmp / "tables" / f"{name}.csv", index=False)
                (tmp / "tables" / f"{name}.md").write_text(
                    to_markdown_table(frame) + "\n", encoding="utf-8"
                )
            for name, png in self._figures.items():
                (tmp / "figures" / f"{name}.png").write_bytes(png)
            (tmp / "report.md").write_text(self.to_markdown(), encoding="utf-8")
            (tmp / "report.html").write_text(self.to_html(), encoding="utf-8")
            os.chmod(tmp, 0o755)
            backup = None
            if out.exists():
                backup = parent / f".{out.name}.old-{os.getpid()}"
                os.replace(out, backup)
            os.replace(tmp, out)
            if backup is not None:
                shutil.rmtree(backup, ignore_errors=True)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        return out



def unwrap_figure(fig: Any) -> Any:
    """The matplotlib figure of ``fig`` (a Figure, or an object holding one).

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> fig = plt.figure()
    >>> unwrap_figure(fig) is fig
    True
    """
    if hasattr(fig, "savefig"):
        return fig
    for attr in ("figure", "fig"):
        inner = getattr(fig, attr, None)
        if inner is not None and hasattr(inner, "savefig"):
            return inner
    viz = getattr(fig, "viz", None)  # arviz PlotCollection
    if viz is not None:
        try:
            inner = viz["chart"].item()
        except (KeyError, AttributeError, TypeError, ValueError):
            inner = None
        if inner is not None and hasattr(inner, "savefig"):
            return inner
    raise ReportError(f"figure: expected a matplotlib Figure, got {type(fig).__name__}")

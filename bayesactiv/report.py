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
``out_dir`` that is renamed into place only when complete. All text is escaped;
:meth:`Report.text` understands a small, safe subset of Markdown (paragraphs,
``- `` lists, ``**bold**``, ``*italic*`` and ```code```).

Examples
--------
>>> import tempfile, pandas as pd
>>> import matplotlib.pyplot as plt
>>> from bayesactiv.report import Report
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
import html
import io
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

__all__ = ["Report", "ReportError", "markdown_to_html", "slugify", "to_markdown_table"]

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class ReportError(ValueError):
    """Bad input to the report writer (a bad name, a duplicate, an unsupported object)."""


# ----------------------------------------------------------------- text helpers


def slugify(text: str) -> str:
    """Turn a heading into an HTML id: lower case, ``-`` between words.

    Examples
    --------
    >>> slugify("Digits MLP / fc2 (last hidden)")
    'digits-mlp-fc2-last-hidden'
    """
    slug = re.sub(r"[^a-z0-9]+", "-", str(text).lower()).strip("-")
    return slug or "section"


def _inline(text: str) -> str:
    """Escape ``text`` and apply inline Markdown (code, bold, italic)."""
    parts = re.split(r"(`[^`]+`)", text)
    out = []
    for part in parts:
        if len(part) >= 2 and part.startswith("`") and part.endswith("`"):
            out.append(f"<code>{html.escape(part[1:-1])}</code>")
            continue
        esc = html.escape(part)
        esc = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", esc)
        esc = re.sub(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])", r"<em>\1</em>", esc)
        out.append(esc)
    return "".join(out)


def markdown_to_html(md: str) -> str:
    """Render a small, safe subset of Markdown to HTML; everything else is escaped.

    Supported: blank-line separated paragraphs, ``- `` / ``* `` bullet lists,
    ``**bold**``, ``*italic*`` and ```code```. Raw HTML in the input is shown
    as text, never interpreted.

    Examples
    --------
    >>> markdown_to_html("A **bold** <b>claim</b>")
    '<p>A <strong>bold</strong> &lt;b&gt;claim&lt;/b&gt;</p>'
    """
    if not isinstance(md, str):
        raise ReportError(f"text: expected a str, got {type(md).__name__}")
    blocks = re.split(r"\n\s*\n", md.strip())
    out = []
    for block in blocks:
        lines = [ln.rstrip() for ln in block.strip().splitlines() if ln.strip()]
        if not lines:
            continue
        if all(re.match(r"^\s*[-*]\s+", ln) for ln in lines):
            items = "".join(f"<li>{_inline(re.sub(r'^\s*[-*]\s+', '', ln))}</li>" for ln in lines)
            out.append(f"<ul>{items}</ul>")
        else:
            out.append(f"<p>{_inline(' '.join(ln.strip() for ln in lines))}</p>")
    return "\n".join(out)


def _fmt(value: Any, digits: int) -> str:
    if value is None:
        return ""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (float, np.floating)):
        if np.isnan(value):
            return "–"
        if value != 0 and (abs(value) >= 10 ** (digits + 2) or abs(value) < 10 ** -(digits + 1)):
            return f"{value:.{digits}e}"
        return f"{value:.{digits}g}" if abs(value) >= 1 else f"{value:.{digits}f}"
    return str(value)


def _as_frame(data: Any) -> pd.DataFrame:
    if isinstance(data, pd.DataFrame):
        frame = data
    elif isinstance(data, pd.Series):
        frame = data.to_frame()
    elif isinstance(data, (xr.Dataset, xr.DataArray)):
        if isinstance(data, xr.DataArray):
            data = data.to_dataset(name=data.name or "value")
        frame = data.to_dataframe()
    else:
        raise ReportError(
            f"table: expected a pandas DataFrame or an xarray Dataset/DataArray, "
            f"got {type(data).__name__}"
        )
    if not isinstance(frame.index, pd.RangeIndex) or frame.index.name is not None:
        frame = frame.reset_index()
    return frame


def to_markdown_table(frame: pd.DataFrame, *, digits: int = 3) -> str:
    """Format a DataFrame as a GitHub-flavoured Markdown pipe table.

    Examples
    --------
    >>> import pandas as pd
    >>> print(to_markdown_table(pd.DataFrame({"a": [1], "b": [0.5]})))
    | a | b |
    |---|---|
    | 1 | 0.500 |
    """
    def cell(v: Any) -> str:
        return _fmt(v, digits).replace("|", "\\|").replace("\n", " ")

    head = "| " + " | ".join(cell(c) for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    rows = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([head, rule, *rows])


# ----------------------------------------------------------------- the report


@dataclass
class _Item:
    kind: str  # "section", "text", "table", "figure"
    payload: dict[str, Any] = field(default_factory=dict)


_CSS = """
:root { --fg:#1d2330; --muted:#5b6473; --line:#d9dee7; --accent:#2a5db0; --bg:#ffffff;
        --soft:#f5f7fa; }
* { box-sizing: border-box; }
body { margin:0; font: 15px/1.55 system-ui, -apple-system, "Segoe UI", Roboto, Helvetica,
       Arial, sans-serif; color:var(--fg); background:var(--bg); }
.layout { display:flex; align-items:flex-start; }
nav.toc { position:sticky; top:0; width:270px; flex:0 0 270px; height:100vh; overflow:auto;
          padding:20px 16px; background:var(--soft); border-right:1px solid var(--line);
          font-size:13px; }
nav.toc h2 { font-size:14px; margin:0 0 8px; text-transform:uppercase; letter-spacing:.05em;
             color:var(--muted); }
nav.toc ul { list-style:none; padding-left:0; margin:0; }
nav.toc ul ul { padding-left:14px; }
nav.toc li { margin:3px 0; }
nav.toc a { color:var(--fg); text-decoration:none; }
nav.toc a:hover { color:var(--accent); text-decoration:underline; }
main { flex:1 1 auto; min-width:0; max-width:1100px; padding:24px 40px 80px; }
header.title h1 { margin:0 0 4px; font-size:28px; }
header.title p.meta { margin:0 0 18px; color:var(--muted); font-size:13px; }
h2 { margin-top:42px; padding-bottom:6px; border-bottom:2px solid var(--line); font-size:22px; }
h3 { margin-top:30px; font-size:18px; }
h4 { margin-top:22px; font-size:16px; }
p, ul { max-width:820px; }
code { background:var(--soft); padding:1px 4px; border-radius:3px; font-size:13px; }
figure { margin:16px 0 24px; }
figure img { max-width:100%; height:auto; border:1px solid var(--line); border-radius:4px; }
figcaption, .caption { color:var(--muted); font-size:13px; margin-top:4px; max-width:820px; }
.table-wrap { overflow-x:auto; margin:12px 0 4px; max-width:100%; }
table { border-collapse:collapse; font-size:13px; font-variant-numeric: tabular-nums; }
th, td { border-bottom:1px solid var(--line); padding:4px 10px; text-align:right;
         white-space:nowrap; }
th { background:var(--soft); position:sticky; top:0; }
td.text, th.text { text-align:left; }
tr:hover td { background:#eef3fb; }
.note { color:var(--muted); font-size:12px; margin:2px 0 18px; }
a.file { color:var(--accent); }
@media (max-width: 900px) { nav.toc { display:none; } main { padding:16px; } }
@media print { nav.toc { display:none; } }
"""


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
    >>> from bayesactiv.report import Report
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
    def section(self, title: str, *, level: int = 2, id: str | None = None) -> Report:  # noqa: A002
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
        >>> from bayesactiv.report import Report
        >>> rep = Report("R").section("Rates").section("Layer fc1", level=3)
        >>> rep.section_ids()
        ['rates', 'layer-fc1']
        """
        if level not in (2, 3, 4):
            raise ReportError(f"level: expected 2, 3 or 4, got {level!r}")
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
        >>> from bayesactiv.report import Report
        >>> _ = Report("R").text("Intervals are **90%** equal-tailed.")
        """
        markdown_to_html(md)  # validates
        self._items.append(_Item("text", {"md": md}))
        return self

    def table(
        self,
        data: pd.DataFrame | xr.Dataset | xr.DataArray,
        name: str,
        *,
        caption: str | None = None,
        max_rows: int = 40,
        digits: int = 3,
    ) -> Report:
        """Add a table: shown in the HTML (first ``max_rows`` rows), written in full as CSV and MD.

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

        Examples
        --------
        >>> import pandas as pd
        >>> from bayesactiv.report import Report
        >>> _ = Report("R").table(pd.DataFrame({"x": [1, 2]}), "xs", caption="Two numbers.")
        """
        self._check_name(name, self._tables, "table")
        if max_rows < 1:
            raise ReportError(f"max_rows: expected >= 1, got {max_rows}")
        frame = _as_frame(data)
        self._tables[name] = frame
        self._items.append(
            _Item("table", {"name": name, "caption": caption, "max_rows": max_rows, "digits": digits})
        )
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
        >>> from bayesactiv.report import Report
        >>> fig, ax = plt.subplots()
        >>> _ = Report("R").figure(fig, "empty", caption="Nothing yet.")
        """
        self._check_name(name, self._figures, "figure")
        fig = _unwrap_figure(fig)
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
    def _toc_html(self) -> str:
        sections = [it.payload for it in self._items if it.kind == "section"]
        if not sections:
            return ""
        root: list = []  # nodes: (payload, children)
        stack: list[tuple[int, list]] = [(1, root)]
        for sec in sections:
            while stack[-1][0] >= sec["level"]:
                stack.pop()
            node = (sec, [])
            stack[-1][1].append(node)
            stack.append((sec["level"], node[1]))

        def render(nodes: list) -> str:
            items = "".join(
                f'<li><a href="#{sec["id"]}">{html.escape(sec["title"])}</a>'
                f"{render(kids) if kids else ''}</li>"
                for sec, kids in nodes
            )
            return f"<ul>{items}</ul>"

        return render(root)

    def _table_html(self, name: str, caption: str | None, max_rows: int, digits: int) -> str:
        frame = self._tables[name]
        shown = frame.head(max_rows)
        textual = [not pd.api.types.is_numeric_dtype(frame[c]) for c in frame.columns]
        head = "".join(
            f'<th class="{"text" if t else "num"}">{html.escape(str(c))}</th>'
            for c, t in zip(frame.columns, textual, strict=True)
        )
        rows = []
        for row in shown.itertuples(index=False):
            cells = "".join(
                f'<td class="{"text" if t else "num"}">{html.escape(_fmt(v, digits))}</td>'
                for v, t in zip(row, textual, strict=True)
            )
            rows.append(f"<tr>{cells}</tr>")
        note = f"{len(frame)} rows" if len(frame) <= max_rows else (
            f"showing the first {max_rows} of {len(frame)} rows"
        )
        links = (
            f'<a class="file" href="tables/{name}.csv">tables/{name}.csv</a>, '
            f'<a class="file" href="tables/{name}.md">tables/{name}.md</a>'
        )
        cap = f'<div class="caption">{_inline(caption)}</div>' if caption else ""
        return (
            f'<div class="table-wrap" id="table-{name}"><table><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table></div>{cap}'
            f'<p class="note">{note}; full table: {links}</p>'
        )

    def _figure_html(self, name: str, caption: str | None) -> str:
        data = base64.b64encode(self._figures[name]).decode("ascii")
        alt = html.escape(caption or name, quote=True)
        cap = f"<figcaption>{_inline(caption)}</figcaption>" if caption else ""
        return (
            f'<figure id="figure-{name}"><img alt="{alt}" src="data:image/png;base64,{data}">'
            f"{cap}</figure>"
        )

    def to_html(self) -> str:
        """The whole report as one self-contained HTML document (no external resources).

        Examples
        --------
        >>> from bayesactiv.report import Report
        >>> "<h2 id=\\"a\\">A</h2>" in Report("R").section("A").to_html()
        True
        """
        from bayesactiv import __version__

        body = []
        for it in self._items:
            p = it.payload
            if it.kind == "section":
                lvl = p["level"]
                body.append(f'<h{lvl} id="{p["id"]}">{html.escape(p["title"])}</h{lvl}>')
            elif it.kind == "text":
                body.append(markdown_to_html(p["md"]))
            elif it.kind == "table":
                body.append(self._table_html(p["name"], p["caption"], p["max_rows"], p["digits"]))
            elif it.kind == "figure":
                body.append(self._figure_html(p["name"], p["caption"]))
        created = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        sub = f"<p>{_inline(self.subtitle)}</p>" if self.subtitle else ""
        toc = self._toc_html()
        nav = f'<nav class="toc" id="contents"><h2>Contents</h2>{toc}</nav>' if toc else ""
        return (
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{html.escape(self.title)}</title>\n<style>{_CSS}</style>\n</head>\n"
            f'<body id="top">\n<div class="layout">{nav}<main>'
            f'<header class="title"><h1>{html.escape(self.title)}</h1>{sub}'
            f'<p class="meta">bayesactiv {html.escape(__version__)} &middot; generated {created}'
            "</p></header>\n" + "\n".join(body) + "\n</main></div>\n</body>\n</html>\n"
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
            elif it.kind == "table":
                frame = self._tables[p["name"]]
                out += [to_markdown_table(frame.head(p["max_rows"]), digits=p["digits"]), ""]
                more = f" (first {p['max_rows']} of {len(frame)} rows)" if len(frame) > p[
                    "max_rows"] else ""
                cap = (p["caption"] + " ") if p["caption"] else ""
                out += [f"{cap}Full table: `tables/{p['name']}.csv`{more}.", ""]
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
        >>> from bayesactiv.report import Report
        >>> path = Report("R").section("A").write(tempfile.mkdtemp() + "/out")
        >>> (path / "report.html").exists()
        True
        """
        out = Path(out_dir)
        if out.exists():
            if not out.is_dir():
                raise ReportError(f"out_dir: {str(out)!r} exists and is not a folder")
            if any(out.iterdir()) and not (out / "report.html").exists():
                raise ReportError(
                    f"out_dir: {str(out)!r} is a non-empty folder that does not hold a report; "
                    "pick a new or empty folder"
                )
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


def _unwrap_figure(fig: Any) -> Any:
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

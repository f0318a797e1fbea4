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
``report.md`` show human headers (:data:`COLUMN_HEADERS`) and long notes as numbered
notes under the table; the files under ``tables/`` keep the raw column names. All
text is escaped; :meth:`Report.text` understands a small, safe subset of Markdown (paragraphs,
``- `` lists, ``**bold**``, ``*italic*`` and ```code```).

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
import html
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

import numpy as np
import pandas as pd
import xarray as xr

from bayesactiv.data.checks import check_int, check_prob, check_seed

__all__ = [
    "COLUMN_HEADERS",
    "NOTE_COLUMNS",
    "UNIT_ID_PARTS",
    "Report",
    "ReportError",
    "markdown_to_html",
    "slugify",
    "to_markdown_table",
]

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")

# a text cell longer than this may wrap (over a minimum width); shorter ones never do
_LONG_TEXT = 60

#: Columns of a per-unit table that the unit id ``network/layer/index`` already names
#: (shown in the files, left out of the HTML).
UNIT_ID_PARTS: tuple[str, ...] = ("network", "layer", "index")

#: Columns whose texts a table shows as numbered notes under it rather than in its rows.
NOTE_COLUMNS: tuple[str, ...] = ("boot_note", "verdict")


def _quantity_headers() -> dict[str, str]:
    names = {"mfr": "MFR", "mf": "MF", "frac_dead": "fraction dead", "mu": "μ", "kappa": "κ"}
    return {f"{q}_{s}": f"{name} {s}" for q, name in names.items() for s in ("mean", "low", "high")}


#: Headers shown for the raw column names of the analysis tables (HTML and report.md;
#: the CSV and Markdown files under ``tables/`` keep the raw names).
COLUMN_HEADERS: dict[str, str] = {
    "n_units": "units",
    "count": "fired (count)",
    "n": "events (n)",
    "rate": "observed rate",
    "post_mean": "posterior mean",
    "post_low": "posterior low",
    "post_high": "posterior high",
    "p_dead": "P(dead)",
    "p_status": "P(status)",
    "wald_low": "Wald low",
    "wald_high": "Wald high",
    "bootstrap_low": "bootstrap low",
    "bootstrap_high": "bootstrap high",
    "mfr": "MFR plug-in",
    "mfr_plugin": "MFR plug-in",
    "mfr_boot_low": "MFR bootstrap low",
    "mfr_boot_high": "MFR bootstrap high",
    "mf": "MF plug-in",
    "mf_plugin": "MF plug-in",
    "mf_boot_low": "MF bootstrap low",
    "mf_boot_high": "MF bootstrap high",
    **_quantity_headers(),
    "mean": "posterior mean",
    "low": "posterior low",
    "high": "posterior high",
    "pd": "P(direction)",
    "p_positive": "P(> 0)",
    "p_negative": "P(< 0)",
    "boot_estimate": "bootstrap estimate",
    "boot_low": "bootstrap low",
    "boot_high": "bootstrap high",
    "boot_note": "bootstrap note",
}


class ReportError(ValueError):
    """Bad input to the report writer (a bad name, a duplicate, an unsupported object)."""


def check_out_dir(out: Path) -> None:
    """Refuse an output folder that is a file, or a non-empty folder that holds no report.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> check_out_dir(Path(tempfile.mkdtemp()) / "new")
    """
    if out.exists():
        if not out.is_dir():
            raise ReportError(f"out_dir: {str(out)!r} exists and is not a folder")
        if any(out.iterdir()) and not (out / "report.html").exists():
            raise ReportError(
                f"out_dir: {str(out)!r} is a non-empty folder that does not hold a report; "
                "pick a new or empty folder"
            )


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
        if value != 0 and (abs(value) >= 10 ** (digits + 2) or abs(value) < 10**-digits):
            return f"{value:.{max(digits - 1, 1)}e}"
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


@dataclass
class _Cells:
    """What a table shows: headers, formatted cells (text, note number) and the notes."""

    headers: list[str]
    textual: list[bool]
    rows: list[list[tuple[str, int | None]]]
    notes: list[str]

    def to_markdown(self) -> str:
        def cell(text: str, note: int | None) -> str:
            shown = text if note is None else f"note {note}"
            return shown.replace("|", "\\|").replace("\n", " ")

        head = "| " + " | ".join(cell(h, None) for h in self.headers) + " |"
        rule = "|" + "|".join("---" for _ in self.headers) + "|"
        body = ["| " + " | ".join(cell(t, k) for t, k in row) + " |" for row in self.rows]
        return "\n".join([head, rule, *body])


def _display_cells(frame: pd.DataFrame, max_rows: int, digits: int,
                   headers: Mapping[str, str], notes: Sequence[str]) -> _Cells:
    """Format the first ``max_rows`` rows; the texts of ``notes`` columns become notes."""
    textual = [not pd.api.types.is_numeric_dtype(frame[c]) for c in frame.columns]
    in_notes = [c in notes for c in frame.columns]
    numbers: dict[str, int] = {}
    rows = []
    for row in frame.head(max_rows).itertuples(index=False):
        cells: list[tuple[str, int | None]] = []
        for value, as_note in zip(row, in_notes, strict=True):
            text = _fmt(value, digits)
            if as_note and text.strip():
                cells.append(("", numbers.setdefault(text, len(numbers) + 1)))
            else:
                cells.append((text, None))
        rows.append(cells)
    shown = [str(headers.get(c, c)) for c in frame.columns]
    return _Cells(shown, textual, rows, list(numbers))


# ----------------------------------------------------------------- the report


@dataclass
class _Item:
    kind: str  # "section", "text", "warning", "table", "figure"
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
th { background:var(--soft); position:sticky; top:0; white-space:normal; min-width:4em;
     max-width:9em; vertical-align:bottom; line-height:1.25; }
td.text, th.text { text-align:left; }
td.long { white-space:normal; min-width:22em; max-width:40em; }
tr:hover td { background:#eef3fb; }
a.note-ref { color:var(--accent); font-size:12px; }
ol.table-notes { color:var(--muted); font-size:12px; margin:4px 0 2px; padding-left:22px;
                 max-width:820px; }
ol.table-notes li:target { background:#fff6d5; }
.note { color:var(--muted); font-size:12px; margin:2px 0 18px; }
.warning { border-left:4px solid #c77700; background:#fff6e5; padding:8px 14px; margin:14px 0;
           max-width:820px; }
.warning p { margin:4px 0; }
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
        frame = _as_frame(data)
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

    def _shown(self, name: str, show: Sequence[str] | None) -> pd.DataFrame:
        frame = self._tables[name]
        return frame if show is None else frame[list(show)]

    def _table_html(self, name: str, caption: str | None, max_rows: int, digits: int,
                    show: Sequence[str] | None = None, headers: Mapping[str, str] | None = None,
                    notes: Sequence[str] = ()) -> str:
        frame = self._shown(name, show)
        cells = _display_cells(frame, max_rows, digits, headers or {}, notes)
        head = "".join(
            f'<th class="{"text" if t else "num"}">{html.escape(h)}</th>'
            for h, t in zip(cells.headers, cells.textual, strict=True)
        )

        def td(text: str, note: int | None, textual: bool) -> str:
            body = (html.escape(text) if note is None else
                    f'<a class="note-ref" href="#note-{name}-{note}">note {note}</a>')
            kind = ("text long" if len(text) > _LONG_TEXT else "text") if textual else "num"
            return f'<td class="{kind}">{body}</td>'

        rows = [
            "<tr>" + "".join(td(text, note, t) for (text, note), t
                             in zip(row, cells.textual, strict=True)) + "</tr>"
            for row in cells.rows
        ]
        notes = ""
        if cells.notes:
            items = "".join(f'<li id="note-{name}-{k}">{html.escape(text)}</li>'
                            for k, text in enumerate(cells.notes, start=1))
            notes = f'<ol class="table-notes">{items}</ol>'
        count = f"{len(frame)} rows" if len(frame) <= max_rows else (
            f"showing the first {max_rows} of {len(frame)} rows"
        )
        links = (
            f'<a class="file" href="tables/{name}.csv">tables/{name}.csv</a>, '
            f'<a class="file" href="tables/{name}.md">tables/{name}.md</a>'
        )
        cap = f'<div class="caption">{_inline(caption)}</div>' if caption else ""
        return (
            f'<div class="table-wrap" id="table-{name}"><table><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table></div>{cap}{notes}'
            f'<p class="note">{count}; full table: {links}</p>'
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
        >>> from bayesactiv.report.document import Report
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
            elif it.kind == "warning":
                body.append(f'<div class="warning" role="note">'
                            f'{markdown_to_html("**Warning:** " + p["md"])}</div>')
            elif it.kind == "table":
                body.append(self._table_html(p["name"], p["caption"], p["max_rows"], p["digits"],
                                             p.get("show"), p.get("headers"), p.get("notes", ())))
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
            elif it.kind == "warning":
                out += ["> **Warning:** " + " ".join(p["md"].split()), ""]
            elif it.kind == "table":
                frame = self._shown(p["name"], p.get("show"))
                cells = _display_cells(frame, p["max_rows"], p["digits"], p.get("headers") or {},
                                       p.get("notes", ()))
                out += [cells.to_markdown(), ""]
                if cells.notes:
                    out += [f"{k}. {text}" for k, text in enumerate(cells.notes, start=1)] + [""]
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


# ----------------------------------------------------------------- analysis sections
#
# The pieces below turn an activation dataset, its baselines and a fitted firing
# model into report sections. :mod:`bayesactiv.studies.memorization` and :func:`report_from_datasets`
# (the ``bayesactiv report`` command) share them.


def layer_bootstrap(
    ds: xr.Dataset, *, n_resamples: int = 1000, prob: float = 0.9, seed: int | None = 0
) -> pd.DataFrame:
    """Plug-in MFR and MF of each layer with percentile-bootstrap intervals.

    MFR (mean over units of ``count / n``) is resampled over inputs, all units of a
    layer sharing the resampled inputs (needs ``fired``; without it MFR gets no
    interval). MF (mean over units of the variance/mean of window counts, ddof 0,
    units that never fired in the windows left out) is resampled over windows (needs
    ``window_count``).

    Parameters
    ----------
    ds : xarray.Dataset
        An activation dataset.
    n_resamples : int
        Bootstrap resamples.
    prob : float
        Interval mass.
    seed : int, optional

    Returns
    -------
    pandas.DataFrame
        One row per (network, layer): ``mfr``, ``mfr_boot_low``, ``mfr_boot_high``,
        ``mf``, ``mf_boot_low``, ``mf_boot_high``, ``n_units``.

    Examples
    --------
    >>> import numpy as np, bayesactiv as ba
    >>> f = np.random.default_rng(0).random((200, 5)) < 0.3
    >>> ds = ba.make_dataset(f.sum(0), 200, network="n", layer="l", fired=f)
    >>> row = layer_bootstrap(ds, n_resamples=200).iloc[0]
    >>> bool(row.mfr_boot_low < row.mfr < row.mfr_boot_high)
    True
    """
    from bayesactiv.stats.baselines import fano
    from bayesactiv.data.dataset import validate

    prob = check_prob(prob)
    n_resamples = check_int(n_resamples, "n_resamples", minimum=1)
    seed = check_seed(seed)
    validate(ds)
    rng = np.random.default_rng(seed)
    q = [(1 - prob) / 2, (1 + prob) / 2]
    net = ds["network"].values.astype(str)
    lay = ds["layer"].values.astype(str)
    keys = list(dict.fromkeys(zip(net, lay, strict=True)))
    rate = ds["count"].values / np.maximum(ds["n"].values, 1)
    rows = []
    w_in = None
    if "fired" in ds:
        n_in = ds.sizes["sample"]
        w_in = rng.multinomial(n_in, np.full(n_in, 1.0 / n_in), size=n_resamples).astype(np.float32)
    w_win = None
    if "window_count" in ds:
        n_win = ds.sizes["window"]
        w_win = rng.integers(0, n_win, size=(n_resamples, n_win))
    for network, layer in keys:
        cols = np.flatnonzero((net == network) & (lay == layer))
        row: dict[str, Any] = {"network": network, "layer": layer, "n_units": cols.size,
                               "mfr": float(rate[cols].mean())}
        if w_in is not None:
            fired = ds["fired"].values[:, cols].astype(np.float32)
            boot = (w_in @ fired).mean(axis=1) / fired.shape[0]
            row["mfr_boot_low"], row["mfr_boot_high"] = np.quantile(boot, q)
        else:
            row["mfr_boot_low"] = row["mfr_boot_high"] = np.nan
        if w_win is not None:
            wc = ds["window_count"].values[:, cols].astype(np.float64)
            row["mf"] = _nanmean(fano(wc[None]))[0]
            boot_mf = _nanmean(fano(wc[w_win]))  # fano: (resample, unit)
            boot_mf = boot_mf[np.isfinite(boot_mf)]
            lo_hi = np.quantile(boot_mf, q) if boot_mf.size else (np.nan, np.nan)
            row["mf_boot_low"], row["mf_boot_high"] = lo_hi
        else:
            row["mf"] = row["mf_boot_low"] = row["mf_boot_high"] = np.nan
        rows.append(row)
    cols_order = ["network", "layer", "n_units", "mfr", "mfr_boot_low", "mfr_boot_high", "mf",
                  "mf_boot_low", "mf_boot_high"]
    return pd.DataFrame(rows)[cols_order]


def _nanmean(values: np.ndarray) -> np.ndarray:
    """Mean over the last axis ignoring NaN; NaN (no warning) where all are NaN."""
    ok = np.isfinite(values)
    k = ok.sum(axis=-1)
    total = np.where(ok, values, 0.0).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(k > 0, total / np.maximum(k, 1), np.nan)


def caterpillar_figure(
    frame: pd.DataFrame, *, title: str = "", prob: float = 0.9, baseline: str = "bootstrap"
) -> Any:
    """Sorted caterpillar plot: each unit's posterior interval with a frequentist one beside it.

    Parameters
    ----------
    frame : pandas.DataFrame
        One row per unit with ``rate`` (count/n), ``post_mean``, ``post_low``,
        ``post_high`` and ``{baseline}_low``, ``{baseline}_high``.
    title : str
    prob : float
        The interval mass (for the legend).
    baseline : str
        Prefix of the frequentist interval columns (``"bootstrap"`` or ``"wald"``).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import pandas as pd
    >>> f = pd.DataFrame({"rate": [.1, .5], "post_mean": [.12, .5], "post_low": [.05, .4],
    ...                   "post_high": [.2, .6], "bootstrap_low": [.04, .41],
    ...                   "bootstrap_high": [.18, .59]})
    >>> fig = caterpillar_figure(f, title="layer")
    """
    import matplotlib.pyplot as plt

    prob = check_prob(prob)
    need = ["post_mean", "post_low", "post_high", f"{baseline}_low", f"{baseline}_high", "rate"]
    missing = [c for c in need if c not in frame]
    if missing:
        raise ReportError(f"frame: caterpillar plot needs columns {missing}")
    f = frame.sort_values("post_mean").reset_index(drop=True)
    k = len(f)
    x = np.arange(k)
    width = min(12.0, max(6.0, 0.04 * k + 5))
    fig, ax = plt.subplots(figsize=(width, 3.6), layout="constrained")
    off = 0.18 if k <= 80 else 0.0
    lw = 2.0 if k <= 40 else (1.2 if k <= 150 else 0.7)
    ax.vlines(x + off, f[f"{baseline}_low"], f[f"{baseline}_high"], color="tab:orange",
              lw=lw, alpha=0.75 if off else 0.5, label=f"{baseline} {prob:.0%}")
    ax.vlines(x - off, f["post_low"], f["post_high"], color="tab:blue", lw=lw,
              alpha=0.9 if off else 0.6, label=f"posterior {prob:.0%} ETI")
    ms = 3 if k <= 150 else 1.5
    ax.plot(x - off, f["post_mean"], "o", color="tab:blue", ms=ms)
    ax.plot(x + off, f["rate"], "o", color="tab:orange", ms=ms, mfc="white")
    ax.set_xlim(-1, k)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("units, sorted by posterior mean firing probability")
    ax.set_ylabel("firing probability")
    ax.set_title(title, fontsize=11)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    return fig


def activation_figure(ds: xr.Dataset, network: str, layer: str, *, threshold: float | None = 0.0
                      ) -> Any:
    """Histogram and empirical CDF of one layer's raw activations (from the recording).

    Examples
    --------
    >>> import bayesactiv as ba
    >>> ds = ba.make_dataset([1], 4, network="n", layer="l")
    >>> ds["hist_count"] = (("hist_group", "hist_bin"), [[3, 1]])
    >>> ds["hist_edges"] = (("hist_group", "hist_edge"), [[0.0, 1.0, 2.0]])
    >>> fig = activation_figure(ds.assign_coords(hist_group=["n/l"]), "n", "l")
    """
    import matplotlib.pyplot as plt

    from bayesactiv.stats import descriptive
    group = f"{network}/{layer}"
    hist = descriptive.histogram(ds)
    cdf = descriptive.ecdf(ds)
    groups = hist["hist_group"].values.astype(str).tolist()
    if group not in groups:
        raise ReportError(f"hist_group: no histogram for {group!r} (have {groups[:5]})")
    h = hist.sel(hist_group=group)
    c = cdf.sel(hist_group=group)
    edges = h["edges"].values
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.2), layout="constrained")
    dens = h["density"].values
    a1.stairs(dens, edges, fill=True, color="tab:blue", alpha=0.7)
    a1.set_yscale("log" if np.nanmax(dens) > 50 * np.nanmedian(dens[dens > 0]) else "linear")
    a1.set_xlabel("activation")
    a1.set_ylabel("density")
    a1.set_title(f"histogram of activations ({int(h['total'])} values)", fontsize=10)
    a2.plot(c["edges"].values, c["cdf"].values, color="tab:blue")
    a2.set_xlabel("activation")
    a2.set_ylabel("fraction ≤ activation")
    a2.set_ylim(0, 1.02)
    a2.set_title("empirical CDF", fontsize=10)
    a2.grid(alpha=0.3)
    if threshold is not None:
        for ax in (a1, a2):
            ax.axvline(threshold, color="k", ls=":", lw=1, label=f"threshold {threshold:g}")
        a2.legend(fontsize=8, loc="lower right")
    return fig


def coactivation_figure(ds: xr.Dataset, network: str, layer: str) -> Any:
    """Heatmap of the phi coefficient between the units of one layer, sorted by firing rate.

    Examples
    --------
    >>> import numpy as np, bayesactiv as ba
    >>> f = np.random.default_rng(1).random((50, 4)) < 0.5
    >>> fig = coactivation_figure(ba.make_dataset(f.sum(0), 50, network="n", layer="l",
    ...                                            fired=f), "n", "l")
    """
    import matplotlib.pyplot as plt

    from bayesactiv.stats import descriptive
    phi = descriptive.coactivation(ds, layer, network=network)
    sub = ds.sel(unit=phi["unit"].values)
    rate = sub["count"].values / np.maximum(sub["n"].values, 1)
    varying = np.flatnonzero(np.isfinite(np.diag(phi.values)))
    order = varying[np.argsort(-rate[varying], kind="stable")]
    mat = phi.values[np.ix_(order, order)]
    k = mat.shape[0]
    n_const = phi.shape[0] - k
    fig, ax = plt.subplots(figsize=(5.6, 4.6), layout="constrained")
    cmap = plt.get_cmap("RdBu_r").with_extremes(bad="0.85")
    if k:
        im = ax.imshow(np.ma.masked_invalid(mat), cmap=cmap, vmin=-1, vmax=1,
                       interpolation="nearest")
        fig.colorbar(im, ax=ax, label="phi (correlation of firing)", shrink=0.85)
    ax.set_xlabel(f"unit rank by firing rate (of {k})")
    ax.set_ylabel("unit rank by firing rate")
    extra = f"\n({n_const} units that never or always fired left out)" if n_const else ""
    ax.set_title(f"co-activation of {network}/{layer}{extra}", fontsize=10)
    if k == 0:
        ax.text(0.5, 0.5, "no unit varies", ha="center", va="center", transform=ax.transAxes)
    return fig


def forest_figure(frame: pd.DataFrame, *, quantities: Sequence[str] = ("mfr", "mf", "frac_dead"),
                  prob: float = 0.9, title: str = "") -> Any:
    """Forest plot of differences per layer: posterior ETI beside the bootstrap interval.

    Parameters
    ----------
    frame : pandas.DataFrame
        :meth:`bayesactiv.comparison.Comparison.to_dataframe` reset to columns: ``layer``,
        ``quantity``, ``mean``, ``low``, ``high``, ``boot_estimate``, ``boot_low``,
        ``boot_high``.
    quantities : sequence of str
        One panel each.
    prob : float
        Interval mass (for the legend).
    title : str

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import pandas as pd
    >>> f = pd.DataFrame({"layer": ["a"], "quantity": ["mfr"], "mean": [0.1], "low": [0.05],
    ...                   "high": [0.15], "boot_estimate": [0.1], "boot_low": [0.04],
    ...                   "boot_high": [0.16]})
    >>> fig = forest_figure(f, quantities=["mfr"])
    """
    import matplotlib.pyplot as plt

    prob = check_prob(prob)
    need = ["layer", "quantity", "mean", "low", "high", "boot_estimate", "boot_low", "boot_high"]
    missing = [c for c in need if c not in frame]
    if missing:
        raise ReportError(f"frame: forest plot needs columns {missing}")
    layers = list(dict.fromkeys(frame["layer"].astype(str)))
    names = {"mfr": "MFR", "mf": "MF", "frac_dead": "fraction dead", "mu": "mu",
             "kappa": "kappa"}
    fig, axes = plt.subplots(1, len(quantities), figsize=(3.6 * len(quantities) + 1.2,
                                                          0.9 + 0.42 * len(layers)),
                             sharey=True, layout="constrained", squeeze=False)
    y = np.arange(len(layers))
    for ax, q in zip(axes[0], quantities, strict=True):
        sub = frame[frame["quantity"] == q]
        sub = sub.set_index(sub["layer"].astype(str)).reindex(layers)
        ax.hlines(y - 0.12, sub["low"], sub["high"], color="tab:blue", lw=2.5,
                  label=f"posterior {prob:.0%} ETI")
        ax.plot(sub["mean"], y - 0.12, "o", color="tab:blue", ms=4)
        ax.hlines(y + 0.12, sub["boot_low"], sub["boot_high"], color="tab:orange", lw=2.5,
                  label=f"bootstrap {prob:.0%}")
        ax.plot(sub["boot_estimate"], y + 0.12, "o", color="tab:orange", ms=4, mfc="white")
        ax.axvline(0, color="0.4", ls="--", lw=0.8)
        ax.set_title(names.get(q, q), fontsize=10)
        ax.grid(axis="x", alpha=0.3)
    axes[0, 0].set_yticks(y, layers, fontsize=8)
    axes[0, 0].set_ylim(len(layers) - 0.5, -0.5)
    axes[0, -1].legend(fontsize=7, loc="best")
    if title:
        fig.suptitle(title, fontsize=11)
    return fig


def unit_frame(
    ds: xr.Dataset, fit: Any, *, prob: float = 0.9, n_resamples: int = 1000, seed: int | None = 0
) -> pd.DataFrame:
    """Per-unit table: observed rate, posterior mean/ETI and P(dead), Wald and bootstrap intervals.

    Parameters
    ----------
    ds : xarray.Dataset
        An activation dataset; its units must be among those ``fit`` was fitted to.
    fit : FiringFit
        A fit (possibly of more units, e.g. a joint fit of several networks).
    prob : float
        Interval mass.
    n_resamples : int
        Bootstrap resamples (bootstrap columns are NaN without ``fired``/``window_count``).
    seed : int, optional

    Returns
    -------
    pandas.DataFrame
        ``unit``, ``network``, ``layer``, ``index``, ``count``, ``n``, ``rate``,
        ``post_mean``, ``post_low``, ``post_high``, ``p_dead``, ``wald_low``, ``wald_high``,
        ``bootstrap_low``, ``bootstrap_high``.

    Examples
    --------
    >>> import bayesactiv as ba
    >>> ds = ba.make_dataset([0, 2, 3, 5, 6, 8, 9, 12], 20, network="net", layer="fc1")
    >>> f = ba.fit(ds, draws=2000, tune=1000, chains=2, seed=0)
    >>> frame = unit_frame(ds, f)
    >>> frame["unit"].tolist()[:3], frame["rate"].tolist()[:3]
    (['net/fc1/0', 'net/fc1/1', 'net/fc1/2'], [0.0, 0.1, 0.15])
    >>> bool(frame["post_mean"].between(0, 1).all())
    True
    >>> bool(frame["bootstrap_low"].isna().all())  # no fired events or windows to resample
    True
    """
    from bayesactiv.stats import baselines
    from bayesactiv.data.dataset import validate

    prob = check_prob(prob)
    n_resamples = check_int(n_resamples, "n_resamples", minimum=1)
    seed = check_seed(seed)
    validate(ds)
    post = fit.units(prob)
    ids = ds["unit"].values.astype(str)
    have = set(post["unit"].values.astype(str).tolist())
    missing = [u for u in ids if u not in have]
    if missing:
        raise ReportError(f"fit: units {missing[:3]} of the dataset were not fitted")
    post = post.sel(unit=ds["unit"].values)
    wald = baselines.intervals(ds, "wald", confidence_level=prob)
    count, n = ds["count"].values, ds["n"].values
    frame = pd.DataFrame({
        "unit": ids,
        "network": ds["network"].values.astype(str),
        "layer": ds["layer"].values.astype(str),
        "index": ds["index"].values,
        "count": count,
        "n": n,
        "rate": count / np.maximum(n, 1),
        "post_mean": post["mean"].values,
        "post_low": post["low"].values,
        "post_high": post["high"].values,
        "p_dead": post["p_dead"].values,
        "wald_low": wald["low"].values,
        "wald_high": wald["high"].values,
    })
    if "fired" in ds or "window_count" in ds:
        boot = baselines.bootstrap(ds, n_resamples=n_resamples, confidence_level=prob, seed=seed)
        frame["bootstrap_low"] = boot["low"].values
        frame["bootstrap_high"] = boot["high"].values
    else:
        frame["bootstrap_low"] = frame["bootstrap_high"] = np.nan
    return frame


def _p_saturated(fit: Any, units: list[str], epsilon: float) -> np.ndarray:
    """P(theta_u > 1 - epsilon | data) for a few units, from their posterior draws."""
    if not units:
        return np.zeros(0)
    draws = fit.unit_draws(units, max_draws=2000)
    other = [d for d in draws.dims if d != "unit"]
    return (draws > 1 - epsilon).mean(other).values


def layer_section(
    rep: Report,
    ds: xr.Dataset,
    units: pd.DataFrame,
    fit: Any,
    network: str,
    layer: str,
    *,
    prob: float = 0.9,
    module: Any = None,
    inputs: Any = None,
    images: Any = None,
    n_images: int = 8,
    level: int = 4,
) -> Report:
    """Add the detailed section of one layer: caterpillar, dead/saturated, activations,
    co-activation and a unit view.

    Parameters
    ----------
    rep : Report
    ds : xarray.Dataset
        The activation dataset holding the layer.
    units : pandas.DataFrame
        :func:`unit_frame` rows (of at least this layer).
    fit : FiringFit
        The fit the posterior columns came from (for P(saturated)).
    network, layer : str
    prob : float
        Interval mass of ``units``.
    module, inputs : optional
        The torch network and its inputs: the unit view then shows exact activations
        (:func:`bayesactiv.viz.unitview.unit_activations`).
    images : callable or array, optional
        Image source for the unit view's top inputs.
    n_images : int
    level : int
        Heading level.

    Returns
    -------
    Report

    Examples
    --------
    >>> import tempfile
    >>> import bayesactiv as ba
    >>> ds = ba.make_dataset([0, 2, 3, 5, 6, 8, 9, 12], 20, network="net", layer="fc1")
    >>> f = ba.fit(ds, draws=2000, tune=1000, chains=2, seed=0)
    >>> rep = Report("Firing of net")
    >>> layer_section(rep, ds, unit_frame(ds, f), f, "net", "fc1") is rep
    True
    >>> path = rep.write(tempfile.mkdtemp() + "/report")
    >>> sorted(p.name for p in (path / "figures").iterdir())
    ['caterpillar_net_fc1.png', 'unitview_net_fc1.png']
    """
    from bayesactiv.viz.unitview import pick_unit, threshold_value, unit_activations, unit_view

    prob = check_prob(prob)
    n_images = check_int(n_images, "n_images", minimum=1)
    pct = f"{100 * prob:g}%"
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", f"{network}_{layer}")
    u = units[(units["network"] == network) & (units["layer"] == layer)]
    if u.empty:
        raise ReportError(f"units: no rows for network {network!r}, layer {layer!r}")
    status = _LayerStatus.of(u)
    rep.section(f"{network} / {layer}", level=level, id=f"{network}-{layer}")
    rep.text(
        f"{len(u)} units; fired = {_threshold_rule(ds)}, over {status.events} events. "
        f"{status.summary()} Observed MFR {u['rate'].mean():.3f}; posterior mean MFR "
        f"{u['post_mean'].mean():.3f}."
    )
    baseline = "bootstrap" if u["bootstrap_low"].notna().all() else "wald"
    if status.varying:
        rep.figure(caterpillar_figure(u, title=f"{network} / {layer}", prob=prob,
                                      baseline=baseline),
                   f"caterpillar_{stem}",
                   caption=f"Units sorted by posterior mean; blue {pct} posterior ETI, orange the "
                           f"{pct} {baseline} interval beside it (open circle: observed rate).")
    else:
        rep.text(_constant_layer_text(u, status, pct))
    dead = u[(u["count"] == 0) | (u["p_dead"] > 0.5)]
    sat = u[u["count"] == u["n"]]
    if len(dead) or len(sat):
        eps = float(getattr(fit, "epsilon", 0.01))
        table = pd.concat([
            dead.assign(status="dead", p_status=dead["p_dead"]),
            sat.assign(status="saturated", p_status=_p_saturated(fit, sat["unit"].tolist(), eps)),
        ], ignore_index=True)
        rep.table(table[["unit", "status", "count", "n", "post_mean", "post_low", "post_high",
                         "p_status", "wald_low", "wald_high"]],
                  f"dead_saturated_{stem}", max_rows=20,
                  caption=f"Dead units (never fired, or P(θ < {eps:g}) > 0.5) and saturated "
                          f"units (always fired); P(status) is the posterior probability of "
                          f"being dead (θ < {eps:g}) or saturated (θ > {1 - eps:g}).")
    else:
        rep.text("No unit of this layer was dead or saturated on these inputs.")
    threshold = threshold_value(ds)
    if "hist_count" in ds and f"{network}/{layer}" in ds["hist_group"].values.astype(str):
        rep.figure(activation_figure(ds, network, layer, threshold=threshold),
                   f"activations_{stem}",
                   caption="Histogram (density) and empirical CDF of all activations of the "
                           "layer" + (f"; dotted line: the threshold {threshold:g}."
                                      if threshold is not None else "."))
    if "fired" in ds and status.varying >= 2:
        rep.figure(coactivation_figure(ds, network, layer), f"coactivation_{stem}",
                   caption="Phi coefficient (correlation of firing) between the units that "
                           "vary, sorted by firing rate.")
    elif "fired" in ds:
        rep.text("No co-activation matrix: the phi coefficient (correlation of firing) is "
                 "undefined for a unit that fired on every event or on none, and "
                 + ("only one unit" if status.varying == 1 else "no unit")
                 + " of this layer fired on some but not all events.")
    summaries = any(v in ds for v in ("act_mean", "act_max", "hist_count", "topk_value"))
    if not status.varying and not summaries and (module is None or inputs is None):
        rep.text("No unit view: every unit of this layer fired on all events or on none, and "
                 "the recording holds no activations to show.")
        return rep
    chosen = pick_unit(ds, network=network, layer=layer)
    row = u[u["unit"] == chosen].iloc[0]
    intervals = {
        f"posterior {pct} ETI": (row["post_mean"], row["post_low"], row["post_high"]),
        f"Wald {pct}": (row["rate"], row["wald_low"], row["wald_high"]),
    }
    if np.isfinite(row["bootstrap_low"]):
        intervals[f"bootstrap {pct}"] = (row["rate"], row["bootstrap_low"], row["bootstrap_high"])
    acts = None
    if module is not None and inputs is not None:
        acts = unit_activations(module, inputs, layer, int(row["index"]))
    rep.figure(unit_view(ds, chosen, intervals=intervals, activations=acts, images=images,
                         n_images=n_images),
               f"unitview_{stem}",
               caption=f"Unit view of {chosen} ({status.why_chosen('act_max' in ds)}): its "
                       "firing intervals, its activations"
                       + (" on every input (network re-run)" if acts is not None else
                          " (approximate, from the recorded summaries)")
                       + (", and the inputs that activate it most, with their labels."
                          if images is not None else "."))
    return rep


@dataclass(frozen=True)
class _LayerStatus:
    """How many units of a layer never fired, always fired, or varied."""

    events: int
    never: int
    always: int
    varying: int

    @classmethod
    def of(cls, units: pd.DataFrame) -> _LayerStatus:
        never = int((units["count"] == 0).sum())
        always = int((units["count"] == units["n"]).sum())
        return cls(int(units["n"].iloc[0]), never, always, len(units) - never - always)

    def summary(self) -> str:
        total = self.never + self.always + self.varying
        if self.always == total:
            return f"Every unit fired on all {self.events} events (saturated)."
        if self.never == total:
            return "No unit fired on any event (all dead)."
        if self.varying == total:
            return "Every unit fired on some but not all events."
        parts = [(self.varying, "on some but not all events"), (self.always, "on every event"),
                 (self.never, "on none")]
        said = [f"{k} {what}" for k, what in parts if k]
        said[0] = said[0].replace(" on ", " fired on ", 1)
        return "Of these, " + ", ".join(said[:-1]) + f" and {said[-1]}."

    def why_chosen(self, by_activation: bool) -> str:
        best = "the strongest activation" if by_activation else "the highest firing rate"
        if self.varying:
            return f"{best} among the units that fire on some but not all events"
        if self.never == 0:
            return f"every unit of this layer fired on all {self.events} events; this one has {best}"
        if self.always == 0:
            return f"no unit of this layer fired on any of the {self.events} events"
        return (f"every unit of this layer fired on all or none of the {self.events} events; "
                f"this one has {best}")


def _constant_layer_text(units: pd.DataFrame, status: _LayerStatus, pct: str) -> str:
    """Words instead of a caterpillar plot of identical intervals (no unit varies)."""
    parts = []
    for label, rows in (("fired on all", units[units["count"] == units["n"]]),
                        ("fired on none of the", units[units["count"] == 0])):
        if rows.empty:
            continue
        parts.append(
            f"{len(rows)} {'unit' if len(rows) == 1 else 'units'} {label} {status.events} "
            f"events: posterior means {_span(rows['post_mean'])}, {pct} ETIs within "
            f"[{rows['post_low'].min():.3f}, {rows['post_high'].max():.3f}]"
        )
    return ("No caterpillar plot: no unit of this layer varies, so it would show identical "
            "intervals. " + "; ".join(parts) + ".")


def _span(values: pd.Series) -> str:
    low, high = float(values.min()), float(values.max())
    return f"{low:.3f}" if f"{low:.3f}" == f"{high:.3f}" else f"{low:.3f} to {high:.3f}"


def _threshold_rule(ds: xr.Dataset) -> str:
    """The dataset's firing rule in words (its ``threshold_rule`` attribute)."""
    return str(ds.attrs.get("threshold_rule", "not recorded"))


def _dataset_name(ds: xr.Dataset, position: int) -> str:
    """A short name for a dataset in the report: its networks, else its position."""
    networks = list(dict.fromkeys(ds["network"].values.astype(str))) if "network" in ds.coords else []
    return ", ".join(networks) if networks else f"dataset {position + 1}"


def _rules_subtitle(names: Sequence[str], datasets: Sequence[xr.Dataset],
                    mismatch: str | None) -> str:
    head = f"bayesactiv report of {len(datasets)} activation dataset{'s' if len(datasets) > 1 else ''}"
    if mismatch is None:
        return f"{head}; fired = {_threshold_rule(datasets[0])}."
    rules = "; ".join(f"{name}: fired = {_threshold_rule(ds)}"
                      for name, ds in zip(names, datasets, strict=True))
    return f"{head}, thresholded differently ({rules})."


def report_from_datasets(
    datasets: Sequence[xr.Dataset],
    out_dir: str | os.PathLike,
    *,
    prob: float = 0.9,
    seed: int | None = 0,
    progress: bool = True,
    draws: int = 1000,
    chains: int = 2,
    n_resamples: int = 1000,
) -> Path:
    """Baselines, a joint fit and (for several networks) a comparison, written as a report.

    What ``bayesactiv report`` runs on saved activation datasets: per network a layer
    table (posterior MFR/MF/fraction dead beside plug-in values with bootstrap
    intervals) and a per-unit table; per layer the detailed :func:`layer_section`; with
    two or more networks, their posterior differences against the first.

    Parameters
    ----------
    datasets : sequence of xarray.Dataset
        Activation datasets (combined with :func:`bayesactiv.combine`).
    out_dir : str or path-like
        The report folder.
    prob : float
        Interval mass.
    seed : int, optional
    progress : bool
        One line per step on stderr.
    draws, chains : int
        Posterior draws per chain and chains.
    n_resamples : int
        Bootstrap resamples.

    Returns
    -------
    pathlib.Path

    Examples
    --------
    >>> import tempfile
    >>> import bayesactiv as ba
    >>> ds = ba.make_dataset([0, 2, 3, 5, 6, 8, 9, 12], 20, network="net", layer="fc1")
    >>> path = report_from_datasets([ds], tempfile.mkdtemp() + "/report", progress=False,
    ...                             draws=2000, n_resamples=200)
    >>> sorted(p.name for p in path.iterdir())
    ['figures', 'report.html', 'report.md', 'tables']
    >>> sorted(p.name for p in (path / "tables").iterdir() if p.suffix == ".csv")
    ['dead_saturated_net_fc1.csv', 'layers.csv', 'units_net.csv']
    """
    import sys
    import warnings

    import bayesactiv as ba
    from bayesactiv.comparison.contrasts import threshold_mismatch

    prob = check_prob(prob)
    seed = check_seed(seed)
    draws = check_int(draws, "draws", minimum=1)
    chains = check_int(chains, "chains", minimum=1)
    n_resamples = check_int(n_resamples, "n_resamples", minimum=1)
    if isinstance(datasets, xr.Dataset):
        datasets = [datasets]
    datasets = [ba.validate(ds) for ds in datasets]
    if not datasets:
        raise ReportError("datasets: nothing to report")
    names = [_dataset_name(ds, i) for i, ds in enumerate(datasets)]
    mismatch = threshold_mismatch(names, datasets)
    if mismatch is not None:
        warnings.warn(f"threshold_rule: {mismatch}", UserWarning, stacklevel=2)

    def say(msg: str) -> None:
        if progress:
            print(msg, file=sys.stderr, flush=True)

    data = ba.combine(datasets)
    group_by = ("network", "layer") + (("epoch",) if "epoch" in data.coords else ())
    say(f"fit: {data.sizes['unit']} units, groups by {', '.join(group_by)}")
    fit = ba.fit(data, "beta_binomial", group_by=group_by, draws=draws, chains=chains, seed=seed)
    pct = f"{100 * prob:g}%"
    rep = Report("Firing of hidden units", subtitle=_rules_subtitle(names, datasets, mismatch))
    rep.section("Overview")
    if mismatch is not None:
        rep.warning(mismatch[0].upper() + mismatch[1:] + ".")
    rep.text(
        f"Hierarchical beta-binomial model per {' × '.join(group_by)} ({chains} chains × "
        f"{draws} draws); intervals are **{pct} equal-tailed** posterior intervals, beside Wald "
        f"and percentile-bootstrap intervals ({n_resamples} resamples) at **{pct}**."
    )
    g = fit.groups(prob)
    gf = pd.DataFrame({k: g[k].values for k in group_by})
    for q in ("mfr", "mf", "frac_dead", "mu", "kappa"):
        for s in ("mean", "low", "high"):
            gf[f"{q}_{s}"] = g[f"{q}_{s}"].values
    boot = pd.concat([layer_bootstrap(ds, n_resamples=n_resamples, prob=prob, seed=seed)
                      for ds in datasets], ignore_index=True)
    rep.table(gf.merge(boot, on=["network", "layer"], how="left") if "epoch" not in group_by
              else gf, "layers", max_rows=80,
              caption=f"Per group: posterior mean, low and high end of the {pct} ETI of MFR, MF, "
                      f"fraction of dead units, μ and κ, and the plug-in MFR and MF with "
                      f"{pct} bootstrap intervals.")
    networks = list(dict.fromkeys(data["network"].values.astype(str)))
    if len(networks) > 1 and "epoch" not in group_by:
        say("compare networks")
        cmp = ba.compare(fit, by="network", reference=networks[0], prob=prob, seed=seed,
                         n_resamples=n_resamples)
        df = cmp.to_dataframe().reset_index()
        rep.section("Comparison")
        if mismatch is not None:
            rep.warning("These differences mix the networks with their threshold rules (see "
                        "the overview).")
        if "layer" in df:
            rep.figure(forest_figure(df, prob=prob), "compare_forest",
                       caption=f"Differences against {networks[0]}: posterior {pct} ETI (blue) "
                               f"and bootstrap {pct} (orange).")
        several = df["level"].astype(str).nunique() > 1
        shown = [c for c in ("level", "layer", "quantity", "mean", "low", "high", "pd",
                             "boot_estimate", "boot_low", "boot_high", "boot_note")
                 if c in df and (c != "level" or several)]
        level = "level" if several else str(df["level"].iloc[0])
        rep.table(df, "compare", max_rows=60, show=shown,
                  caption=f"Posterior difference {level} − {networks[0]} per layer: mean, {pct} "
                          "ETI and probability of direction, beside the plug-in difference and "
                          f"its {pct} bootstrap interval. The CSV also holds P(> 0), P(< 0) and "
                          "the verdicts below.")
        rep.text("\n".join(f"- {v}" for v in df["verdict"]))
    rep.section("Networks and layers")
    for ds in datasets:
        for network in dict.fromkeys(ds["network"].values.astype(str)):
            sub = ds.isel(unit=np.flatnonzero(ds["network"].values.astype(str) == network))
            say(f"report {network}")
            units = unit_frame(sub, fit, prob=prob, n_resamples=n_resamples, seed=seed)
            rep.section(network, level=3)
            rep.table(units.drop(columns="network"), f"units_{re.sub(r'[^A-Za-z0-9_.-]', '_', network)}",
                      max_rows=15, show=[c for c in units.columns if c not in UNIT_ID_PARTS],
                      caption=f"Per-unit firing probability: posterior mean and {pct} ETI, "
                              f"P(dead) = P(θ < {float(getattr(fit, 'epsilon', 0.01)):g}), Wald "
                              f"and bootstrap {pct} intervals (the CSV also holds each unit's "
                              "layer and index).")
            if "epoch" in sub.coords:
                continue
            for layer in dict.fromkeys(sub["layer"].values.astype(str)):
                layer_section(rep, sub, units, fit, network, layer, prob=prob)
    path = rep.write(out_dir)
    say(f"report: {(Path(path) / 'report.html').resolve()}")
    return path

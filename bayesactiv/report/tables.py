"""What a report table shows: human headers, formatted cells, long texts as numbered notes.

The files under ``tables/`` keep the raw column names and every cell; the HTML page
and ``report.md`` show :data:`COLUMN_HEADERS` and the texts of :data:`NOTE_COLUMNS`
as numbered notes under the table, so that no row grows tall.

Examples
--------
>>> import pandas as pd
>>> from bayesactiv.report.tables import display_cells
>>> cells = display_cells(pd.DataFrame({"post_mean": [0.5], "verdict": ["higher"]}),
...                       10, 3, {"post_mean": "posterior mean"}, ["verdict"])
>>> cells.headers, cells.rows, cells.notes
(['posterior mean', 'verdict'], [[('0.500', None), ('', 1)]], ['higher'])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import xarray as xr

from bayesactiv.report.errors import ReportError
from bayesactiv.report.markdown import format_value, inline_markdown

__all__ = ["COLUMN_HEADERS", "LONG_TEXT", "NOTE_COLUMNS", "UNIT_ID_PARTS", "DisplayCells",
           "as_frame", "display_cells", "table_markdown", "table_view"]

#: A text cell longer than this may wrap (over a minimum width); shorter ones never do.
LONG_TEXT = 60

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


def as_frame(data: Any) -> pd.DataFrame:
    """A table as a DataFrame with a plain index (xarray objects flattened, index levels as columns).

    Examples
    --------
    >>> import xarray as xr
    >>> as_frame(xr.Dataset({"d": ("net", [0.1])}, coords={"net": ["a"]})).columns.tolist()
    ['net', 'd']
    """
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


@dataclass
class DisplayCells:
    """What a table shows: headers, formatted cells (text, note number) and the notes."""

    headers: list[str]
    textual: list[bool]
    rows: list[list[tuple[str, int | None]]]
    notes: list[str]

    def to_markdown(self) -> str:
        """The shown cells as a pipe table; a note cell reads ``note K``."""
        def cell(text: str, note: int | None) -> str:
            shown = text if note is None else f"note {note}"
            return shown.replace("|", "\\|").replace("\n", " ")

        head = "| " + " | ".join(cell(h, None) for h in self.headers) + " |"
        rule = "|" + "|".join("---" for _ in self.headers) + "|"
        body = ["| " + " | ".join(cell(t, k) for t, k in row) + " |" for row in self.rows]
        return "\n".join([head, rule, *body])


def display_cells(frame: pd.DataFrame, max_rows: int, digits: int,
                  headers: Mapping[str, str], notes: Sequence[str]) -> DisplayCells:
    """Format the first ``max_rows`` rows; the texts of ``notes`` columns become notes."""
    textual = [not pd.api.types.is_numeric_dtype(frame[c]) for c in frame.columns]
    in_notes = [c in notes for c in frame.columns]
    numbers: dict[str, int] = {}
    rows = []
    for row in frame.head(max_rows).itertuples(index=False):
        cells: list[tuple[str, int | None]] = []
        for value, as_note in zip(row, in_notes, strict=True):
            text = format_value(value, digits)
            if as_note and text.strip():
                cells.append(("", numbers.setdefault(text, len(numbers) + 1)))
            else:
                cells.append((text, None))
        rows.append(cells)
    shown = [str(headers.get(c, c)) for c in frame.columns]
    return DisplayCells(shown, textual, rows, list(numbers))


def _cell_class(text: str, textual: bool) -> str:
    if not textual:
        return "num"
    return "text long" if len(text) > LONG_TEXT else "text"


def table_view(name: str, frame: pd.DataFrame, *, caption: str | None, max_rows: int,
               digits: int, headers: Mapping[str, str], notes: Sequence[str]) -> dict[str, Any]:
    """What the page template needs to draw one table (its markup is in the template).

    Examples
    --------
    >>> import pandas as pd
    >>> view = table_view("t", pd.DataFrame({"x": [1.5]}), caption=None, max_rows=5, digits=3,
    ...                   headers={}, notes=[])
    >>> view["head"], view["rows"], view["count"]
    ([('x', 'num')], [[('num', '1.5', None)]], '1 rows')
    """
    cells = display_cells(frame, max_rows, digits, headers, notes)
    count = f"{len(frame)} rows" if len(frame) <= max_rows else (
        f"showing the first {max_rows} of {len(frame)} rows"
    )
    return {
        "kind": "table",
        "name": name,
        "head": [(h, "text" if t else "num") for h, t in zip(cells.headers, cells.textual,
                                                               strict=True)],
        "rows": [[(_cell_class(text, t), text, note)
                  for (text, note), t in zip(row, cells.textual, strict=True)]
                 for row in cells.rows],
        "notes": cells.notes,
        "caption": inline_markdown(caption) if caption else None,
        "count": count,
    }


def table_markdown(name: str, frame: pd.DataFrame, *, caption: str | None, max_rows: int,
                   digits: int, headers: Mapping[str, str], notes: Sequence[str]) -> list[str]:
    """The lines of one table in ``report.md``: the shown rows, its notes, caption and file.

    Examples
    --------
    >>> import pandas as pd
    >>> table_markdown("t", pd.DataFrame({"x": [1]}), caption="One.", max_rows=5, digits=3,
    ...                headers={}, notes=[])[-2]
    'One. Full table: `tables/t.csv`.'
    """
    cells = display_cells(frame, max_rows, digits, headers, notes)
    out = [cells.to_markdown(), ""]
    if cells.notes:
        out += [f"{k}. {text}" for k, text in enumerate(cells.notes, start=1)] + [""]
    more = f" (first {max_rows} of {len(frame)} rows)" if len(frame) > max_rows else ""
    cap = (caption + " ") if caption else ""
    return out + [f"{cap}Full table: `tables/{name}.csv`{more}.", ""]

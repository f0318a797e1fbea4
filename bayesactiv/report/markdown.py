"""The report's text: a small, safe Markdown subset to HTML, value formatting, pipe tables, ids.

Examples
--------
>>> from bayesactiv.report.markdown import markdown_to_html
>>> markdown_to_html("- one\\n- *two*")
'<ul><li>one</li><li><em>two</em></li></ul>'
"""

from __future__ import annotations

import html
import re
from typing import Any

import numpy as np
import pandas as pd

from bayesactiv.report.errors import ReportError

__all__ = ["format_value", "inline_markdown", "markdown_to_html", "slugify", "to_markdown_table"]


def slugify(text: str) -> str:
    """Turn a heading into an HTML id: lower case, ``-`` between words.

    Examples
    --------
    >>> slugify("Digits MLP / fc2 (last hidden)")
    'digits-mlp-fc2-last-hidden'
    """
    slug = re.sub(r"[^a-z0-9]+", "-", str(text).lower()).strip("-")
    return slug or "section"


def inline_markdown(text: str) -> str:
    """Escape ``text`` and apply inline Markdown (code, bold, italic).

    Examples
    --------
    >>> inline_markdown("**a** < `b*`")
    '<strong>a</strong> &lt; <code>b*</code>'
    """
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
            items = "".join(f"<li>{inline_markdown(re.sub(r'^\s*[-*]\s+', '', ln))}</li>"
                            for ln in lines)
            out.append(f"<ul>{items}</ul>")
        else:
            out.append(f"<p>{inline_markdown(' '.join(ln.strip() for ln in lines))}</p>")
    return "\n".join(out)


def format_value(value: Any, digits: int) -> str:
    """One table cell as text: ``digits`` significant digits, ``–`` for NaN.

    Examples
    --------
    >>> format_value(0.123456, 3), format_value(float("nan"), 3), format_value(12345.0, 3)
    ('0.123', '–', '1.23e+04')
    """
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
        return format_value(v, digits).replace("|", "\\|").replace("\n", " ")

    head = "| " + " | ".join(cell(c) for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    rows = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([head, rule, *rows])

"""The report: the document writer (Markdown + self-contained HTML), its tables and sections,
and the pipeline behind ``bayesactiv report``.

Modules, from the bottom up: :mod:`~bayesactiv.report.errors` (what is refused),
:mod:`~bayesactiv.report.markdown` (text), :mod:`~bayesactiv.report.tables` (what a table
shows), :mod:`~bayesactiv.report.document` (the :class:`Report` and its page template),
:mod:`~bayesactiv.report.bootstrap` (per-layer plug-in values and their bootstrap),
:mod:`~bayesactiv.report.sections` (per-unit tables and layer sections) and
:mod:`~bayesactiv.report.pipeline` (``bayesactiv report``).
"""

from bayesactiv.report.bootstrap import layer_bootstrap
from bayesactiv.report.document import Report
from bayesactiv.report.errors import ReportError, check_out_dir
from bayesactiv.report.markdown import markdown_to_html, slugify, to_markdown_table
from bayesactiv.report.pipeline import report_from_datasets
from bayesactiv.report.sections import layer_section, unit_frame
from bayesactiv.report.tables import COLUMN_HEADERS, NOTE_COLUMNS, UNIT_ID_PARTS

__all__ = ["COLUMN_HEADERS", "NOTE_COLUMNS", "UNIT_ID_PARTS", "Report", "ReportError", "check_out_dir",
           "layer_bootstrap", "layer_section", "markdown_to_html", "report_from_datasets", "slugify",
           "to_markdown_table", "unit_frame"]

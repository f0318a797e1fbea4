"""The report: the document writer (Markdown + self-contained HTML), its tables and sections,
and the pipeline behind ``bayesactiv report``.
"""

from bayesactiv.report.document import (
    COLUMN_HEADERS,
    NOTE_COLUMNS,
    UNIT_ID_PARTS,
    Report,
    ReportError,
    check_out_dir,
    layer_bootstrap,
    layer_section,
    markdown_to_html,
    report_from_datasets,
    slugify,
    to_markdown_table,
    unit_frame,
)

__all__ = ["COLUMN_HEADERS", "NOTE_COLUMNS", "UNIT_ID_PARTS", "Report", "ReportError", "check_out_dir",
           "layer_bootstrap", "layer_section", "markdown_to_html", "report_from_datasets", "slugify",
           "to_markdown_table", "unit_frame"]

"""What the report writer refuses: :class:`ReportError`, and output folders that hold no report."""

from __future__ import annotations

from pathlib import Path

__all__ = ["ReportError", "check_out_dir"]


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

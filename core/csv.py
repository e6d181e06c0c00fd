from __future__ import annotations


def csv_cell(value: object) -> str:
    """The text of a CSV cell that a spreadsheet shows as text, never runs as a formula."""
    text = "" if value is None else str(value)
    # A leading = + - @ makes spreadsheets evaluate the cell as a formula.
    if text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + text
    return text

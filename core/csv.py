from __future__ import annotations

import re

# What makes a spreadsheet evaluate a cell as a formula: = + - @ (and a tab or carriage return
# before them) at the start of a cell.
_TRIGGERS = "=+-@\t\r"
# A reader may split a cell wherever one of these stands, whatever separator the file was written
# with: `;` is the usual list separator in EU locales, and the tab and `|` are common too. Each
# piece that would start with a trigger is defused with a leading apostrophe.
_PIECE_START = re.compile(r"(^|[,;\t|\r\n])([ \"]*)(?=[" + re.escape(_TRIGGERS) + "])")


def csv_cell(value: object) -> str:
    """The text of a CSV cell that a spreadsheet shows as text, never runs as a formula, whatever
    separator the reader splits it with."""
    text = "" if value is None else str(value)
    return _PIECE_START.sub(lambda match: f"{match.group(1)}{match.group(2)}'", text)

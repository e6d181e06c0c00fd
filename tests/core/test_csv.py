import re

import pytest

from core.csv import csv_cell


@pytest.mark.parametrize(
    "text",
    [
        "=1+1",
        "+cmd",
        "-2+3",
        "@SUM(A1)",
        "\t=x",
        "Acme Oy;=cmd|' /C calc'!A0;",
        "Acme Oy,=cmd",
        "Acme\t+cmd",
        "a|@x",
        'Acme; "=HYPERLINK(1)"',
        "line\n=formula",
    ],
)
def test_no_piece_of_a_cell_starts_a_formula_whatever_the_separator(text):
    cell = csv_cell(text)
    for piece in re.split(r"[,;\t|\r\n]", cell):
        assert not piece.lstrip(' "').startswith(("=", "+", "-", "@")), (cell, piece)


@pytest.mark.parametrize("text", ["Acme AI Oy", "lumi:acme_llm leonardo:acme_2", "1.2e+25", ""])
def test_ordinary_text_is_left_alone(text):
    assert csv_cell(text) == text

"""Numbers as people type them into forms and on the command line."""

import math
import re

_SUFFIXES = {
    "k": 1e3,
    "thousand": 1e3,
    "m": 1e6,
    "million": 1e6,
    "b": 1e9,
    "bn": 1e9,
    "billion": 1e9,
    "t": 1e12,
    "trillion": 1e12,
}
_NUMBER = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?)\s*([a-z]*)$")


def parse_number(text: str) -> float:
    """Read a number the way people type it: 7e9, 7 000 000 000, 7,000,000,000, 7B, 7 billion.

    Raises ValueError with a message meant for the person who typed it.
    """
    cleaned = re.sub(r"[\s,_\u00a0\u202f']", "", text.strip().lower())
    cleaned = cleaned.replace("×10^", "e").replace("x10^", "e").replace("*10^", "e")
    match = _NUMBER.match(cleaned)
    if not match or (match.group(2) and match.group(2) not in _SUFFIXES):
        raise ValueError(
            f"We could not read “{text.strip()}” as a number. "
            "Write it like 7000000000, 7e9 or 7 billion."
        )
    value = float(match.group(1)) * _SUFFIXES.get(match.group(2), 1.0)
    if not math.isfinite(value):
        raise ValueError(f"“{text.strip()}” is too large.")
    return value


def parse_share(text: str) -> float:
    """A utilisation typed as 0.4 or 40 %."""
    stripped = text.strip()
    if stripped.endswith("%"):
        return parse_number(stripped[:-1]) / 100
    return parse_number(stripped)

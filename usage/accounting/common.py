"""What every accounting format shares: the limits a line must keep, errors, account names,
times in a time zone, elapsed times and job states."""

import re
from collections.abc import Callable
from datetime import UTC, datetime, tzinfo
from functools import lru_cache

# A line longer than this (in characters) is rejected unread. sacct lines are short; PBS lines
# grow with the job: TORQUE's exec_host names every core (`n01/0+n01/1+...`), so a job on
# some 80,000 cores writes a megabyte. Both parsers take a `max_line_length` of their own.
LINE_LENGTH_LIMIT = 1_000_000
# More scheduler GPUs than one job can hold on any machine this product serves; the check
# against the partition's real size comes later, in the import.
GPU_CEILING = 4096
# More elapsed time than any allocation lasts: a corrupted or mistyped figure.
ELAPSED_LIMIT_SECONDS = 3653 * 86400  # ten years, leap days included
# Fugaku has about 159,000 nodes; a count far beyond that is no node count.
_NODE_CEILING = 1_000_000
# Slurm prints NO_VAL64 (2**64 - 2) as ConsumedEnergyRaw when a node reported no reading.
_ENERGY_LIMIT = 2**63
# Digits in the largest whole number read anywhere (2**63 has 19): longer text is out of range
# before int() is asked, which also keeps int() from refusing text past 4,300 digits.
_DIGITS_LIMIT = 19
# Values up to this length go through the caches; longer ones are read once and forgotten, so
# a few hostile lines cannot fill memory with megabyte-long cache keys.
_CACHED_TEXT_LIMIT = 512


class AccountingFormatError(ValueError):
    """The input as a whole cannot be read (as opposed to one bad line)."""


class UnknownSliceProfile(ValueError):
    """A MIG slice whose profile the partition's slice profiles do not list."""


class _LineError(ValueError):
    """One line cannot be read; the message is the operator-facing reason."""


_REJECTED_TEXT_LIMIT = 500


def account_problem(name: str) -> str | None:
    """Why `name` cannot be an account, as the end of a sentence; None when it can.

    Every name a scheduler accepts passes: hyphens (`ec110-guest`), dots, underscores, leading
    digits, upper case (`SCSG0001`), non-ASCII letters. Refused are the empty name and names
    with whitespace or control characters, which no scheduler writes into its accounting:
    they come from a damaged file or a wrong delimiter.
    """
    if not name:
        return "has no account."
    if name.isprintable() and " " not in name:
        return None
    if any(character.isspace() for character in name):
        return f"has an account with whitespace in it: {_shown(name)}."
    return f"has an account with a control character in it: {_shown(name)}."


def _shown(text: str, limit: int = 80) -> str:
    """`text` quoted for a rejection reason, cut to `limit` characters."""
    return repr(text) if len(text) <= limit else repr(text[: limit - 3] + "...")


_NO_TIME = frozenset({"", "Unknown", "None"})

# SLURM_TIME_FORMAT values that print ISO 8601 local time, the one format with a fast path.
_ISO_FORMATS = frozenset({"", "standard", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"})
_EPOCH_FORMAT = "%s"
# C strftime directives that Python's strptime lacks, written with those it has.
_STRFTIME_SPELLINGS = {
    "F": "%Y-%m-%d",
    "T": "%H:%M:%S",
    "D": "%m/%d/%y",
    "R": "%H:%M",
    "r": "%I:%M:%S %p",
    "e": "%d",
    "k": "%H",
    "l": "%I",
    "h": "%b",
    "P": "%p",
    "n": " ",
    "t": " ",
}
_STRPTIME_DIRECTIVES = frozenset("aAbBcdfGHIjmMpSuUVwWxXyYzZ%")


def _strptime_pattern(time_format: str) -> str:
    """`time_format` (a C strftime pattern, as SLURM_TIME_FORMAT takes) in the spelling of
    Python's strptime, or AccountingFormatError naming what cannot be read back."""
    pattern: list[str] = []
    pieces = iter(time_format.split("%"))
    pattern.append(next(pieces))
    pending_percent = False
    for piece in pieces:
        if pending_percent:  # the piece after "%%"
            pattern.append(piece)
            pending_percent = False
            continue
        if not piece:  # "%%": a literal percent sign, then plain text
            pattern.append("%%")
            pending_percent = True
            continue
        directive, rest = piece[0], piece[1:]
        if directive in "EO" and rest:  # glibc's alternative-numeral modifiers
            directive, rest = rest[0], rest[1:]
        if directive in _STRFTIME_SPELLINGS:
            pattern.append(_STRFTIME_SPELLINGS[directive])
        elif directive in _STRPTIME_DIRECTIVES:
            pattern.append("%" + directive)
        else:
            raise AccountingFormatError(
                f"The time format {time_format!r} uses %{directive}, which cannot be read back"
                " into a date and time."
            )
        pattern.append(rest)
    result = "".join(pattern)
    # A pattern without year, day or hour (`%a %T`, SLURM_TIME_FORMAT=relative's cousins)
    # reads back as another time than was written: refuse it rather than misdate every job.
    sample = datetime(2024, 11, 13, 21, 8, tzinfo=UTC)
    try:
        back = datetime.strptime(sample.strftime(result), result)
    except ValueError:
        back = None
    if back is None or back.replace(tzinfo=None) != sample.replace(tzinfo=None):
        raise AccountingFormatError(
            f"The time format {time_format!r} does not carry a full date and time (year, month,"
            " day, hour and minute); sacct must print times that can be read back."
        )
    return result


def _epoch(text: str) -> datetime:
    if len(text) > 12 or not (text.isascii() and text.isdigit()):  # 12 digits reach year 9999
        raise ValueError(f"{text!r} is not a time in seconds since 1970")
    try:
        return datetime.fromtimestamp(int(text), UTC)
    except (OverflowError, OSError, ValueError):
        raise ValueError(f"{text!r} is out of range") from None


@lru_cache(maxsize=32)
def _time_reader(time_format: str | None) -> Callable[[str], datetime]:
    """A function from sacct's text of a time to a datetime, naive unless the text says its
    offset; raises ValueError."""
    if time_format is None or time_format in _ISO_FORMATS:

        def iso_or_epoch(text: str) -> datetime:
            if text.isdigit():
                return _epoch(text)
            return datetime.fromisoformat(text)

        return iso_or_epoch
    if time_format == _EPOCH_FORMAT:
        return _epoch
    if time_format == "relative":
        raise AccountingFormatError(
            "SLURM_TIME_FORMAT=relative drops the year and the date of recent jobs; run sacct"
            " with SLURM_TIME_FORMAT=standard (or unset)."
        )
    pattern = _strptime_pattern(time_format)
    if pattern in _ISO_FORMATS:  # `%FT%T`, `%F %T`
        return _time_reader(None)
    strptime = datetime.strptime

    def from_pattern(text: str) -> datetime:
        return strptime(text, pattern)

    return from_pattern


# The directives of an all-numeric pattern: strftime pads them with zeros, strptime also
# takes them without.
_NUMERIC_DIRECTIVES = {
    "Y": r"(?P<Y>\d{4})",
    "m": r"(?P<m>\d\d?)",
    "d": r"(?P<d>\d\d?)",
    "H": r"(?P<H>\d\d?)",
    "M": r"(?P<M>\d\d?)",
    "S": r"(?P<S>\d\d?)",
}
_NUMERIC_SPELLINGS = {"F": "%Y-%m-%d", "T": "%H:%M:%S", "R": "%H:%M"}


@lru_cache(maxsize=32)
def _iso_rewriter(time_format: str) -> Callable[[str], str] | None:
    """For a pattern of year, month, day, hour, minute (and second) in digits, with any text
    between them (`%Y/%m/%d-%H:%M:%S`, `%d.%m.%Y %T`): a function that rewrites a time in it
    as ISO 8601 text, which then takes the fast path; None for any other pattern.

    datetime.strptime costs about 8 us a call; one regular expression and an f-string do
    the same for these patterns in a fraction of it."""
    for directive, spelling in _NUMERIC_SPELLINGS.items():
        time_format = time_format.replace("%" + directive, spelling)
    parts: list[str] = []
    seen: set[str] = set()
    for token in re.finditer(r"%(.?)|[^%]+", time_format):
        directive = token.group(1)
        if directive is None:
            parts.append(re.escape(token.group()))
        elif directive == "%":
            parts.append("%")
        elif directive in _NUMERIC_DIRECTIVES and directive not in seen:
            parts.append(_NUMERIC_DIRECTIVES[directive])
            seen.add(directive)
        else:
            return None
    if not seen.issuperset("YmdHM"):
        return None
    fullmatch = re.compile("".join(parts)).fullmatch
    with_seconds = "S" in seen

    def rewrite(text: str) -> str:
        found = fullmatch(text)
        if found is None:
            raise ValueError(f"{text!r} is not in the format {time_format!r}")
        year, month, day, hour, minute = found.group("Y", "m", "d", "H", "M")
        second = found.group("S") if with_seconds else "00"
        return f"{year}-{month:0>2}-{day:0>2}T{hour:0>2}:{minute:0>2}:{second:0>2}"

    return rewrite


def _in_utc(value: datetime, tz: tzinfo, text: str) -> datetime:
    if value.tzinfo is None:
        value = value.replace(tzinfo=tz)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{text!r} is out of range") from None


def parse_time(text: str, tz: tzinfo, time_format: str | None = None) -> datetime | None:
    """A sacct time as an aware UTC datetime; None for `Unknown`, `None` or empty.

    What SLURM_TIME_FORMAT can make sacct print (sacct(1), ENVIRONMENT VARIABLES):
    - unset or `standard`: ISO 8601 `2024-11-13T09:08:07`; read as ISO 8601 in general, so a
      space for the `T`, fractions of a second and an offset of the time's own (`+02:00`,
      `Z`) are read too;
    - `%s`: seconds since 1970 (also recognised without `time_format`: digits only);
    - any other strftime pattern (`%Y/%m/%d-%H:%M:%S`, `%F %T`, `%d %b %Y %H:%M`) given as
      `time_format`, if it carries year, month, day, hour and minute; `relative` does not.

    A time without an offset is local wall-clock time, read in `tz` (the cluster's zone, a
    `zoneinfo.ZoneInfo`). In the autumn hour that happens twice the text cannot say which one
    is meant; it is read as the first (summer-time) one, and a time skipped in spring is read
    with the offset in force before the change (PEP 495, fold=0). `TZ=UTC sacct ...` avoids
    both. Raises ValueError when the text is not a date and time.
    """
    text = text.strip()
    if text in _NO_TIME:
        return None
    return _in_utc(_time_reader(time_format)(text), tz, text)


def _is_number(text: str) -> bool:
    # int() also takes " 7", "+7", "1_0" and non-ASCII digits; none of them is a count
    return text.isascii() and text.isdigit()


def _whole(text: str, what: str, limit: int) -> int:
    """`text` as a whole number up to `limit`, or _LineError naming `what`."""
    if not _is_number(text):
        raise _LineError(f"{what} {_shown(text)} is not a whole number.")
    if len(text) > _DIGITS_LIMIT or int(text) > limit:
        raise _LineError(f"{what} {_shown(text)} is out of range (more than {limit:,}).")
    return int(text)


def parse_elapsed(text: str) -> int:
    """Seconds in a Slurm/PBS duration: `[D-]HH:MM:SS`, `MM:SS`, either with `.fraction`.

    sacct(1) prints Elapsed as `[days-]hours:minutes:seconds[.microseconds]`, leaving the
    hours out under an hour (`05:06`, and `22:53.824` with milliseconds). Hours may exceed 23
    (`96:00:00`, as PBS writes walltime). Fractions of a second are dropped: usage is counted
    in whole seconds, as `ElapsedRaw` does. Raises ValueError for anything else.
    """
    if len(text) > 40:  # 10**19 days fit in far less; longer text is no duration
        raise ValueError(f"not a duration: {_shown(text)}")
    return _parse_elapsed(text)


@lru_cache(maxsize=4096)
def _parse_elapsed(text: str) -> int:
    rest = text.strip()
    days = 0
    if "-" in rest:
        day_text, rest = rest.split("-", 1)
        if not _is_number(day_text) or len(day_text) > _DIGITS_LIMIT:
            raise ValueError(f"not a duration: {text!r}")
        days = int(day_text)
    parts = rest.split(":")
    if len(parts) == 3:
        hours_text, minutes_text, seconds_text = parts
    elif len(parts) == 2 and not days:
        hours_text = "0"
        minutes_text, seconds_text = parts
    else:
        raise ValueError(f"not a duration: {text!r}")
    seconds_text = seconds_text.split(".", 1)[0] if "." in seconds_text else seconds_text
    if not (_is_number(hours_text) and _is_number(minutes_text) and _is_number(seconds_text)):
        raise ValueError(f"not a duration: {text!r}")
    minutes, seconds = int(minutes_text), int(seconds_text)
    if minutes > 59 or seconds > 59:
        raise ValueError(f"not a duration: {text!r}")
    return ((days * 24 + int(hours_text)) * 60 + minutes) * 60 + seconds


# Slurm job states in which the job has not ended, so its usage may still grow. REQUEUED,
# REQUEUE_HOLD and REQUEUE_FED are not here: with `sacct -D` they mark an earlier run that did
# end (End is set) and was replaced by a new run with its own Submit time; while such a job
# has no End yet, the `End == Unknown` rule marks it running anyway.
_UNFINISHED_STATES = frozenset(
    {
        "PENDING",
        "RUNNING",
        "SUSPENDED",
        "RESIZING",
        "CONFIGURING",
        "COMPLETING",
        "STOPPED",
        "SIGNALING",
        "STAGE_OUT",
        "RESV_DEL_HOLD",
    }
)


@lru_cache(maxsize=256)
def normalise_state(text: str) -> str:
    """`CANCELLED by 2101477` -> `CANCELLED`; a name this code has never seen is kept."""
    words = text.split(None, 1)
    return words[0].upper() if words else ""


def _too_long(job_id: str, field: str, text: str) -> _LineError:
    # Only a reported figure is held to this; End - Start is what the two times say it is.
    return _LineError(
        f"Job {job_id} has {field} {_shown(text, 30)}, more than ten years: not a real run time."
    )

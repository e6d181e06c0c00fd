"""Read scheduler accounting into job records: Slurm `sacct --parsable2` and PBS/TORQUE logs.

Pure functions over lines of text, no Django and no I/O: the usage import streams a file through
`parse_sacct` or `parse_pbs` and writes what comes out. Each input line becomes exactly one of

- `JobRecord`   one run of one job allocation, with its GPU count and elapsed time;
- `StepSkipped` a Slurm step line (`123.batch`, `123.0`) or a PBS record that is not a run's
                end: it repeats usage already on the allocation line, so counting it would
                double it;
- `Rejected`    a malformed line, with its number and a sentence an operator can act on.

Blank lines and sacct's header line yield nothing. Input that cannot be read at all (a header
or field list without the required fields, an empty field name or delimiter, a time format
that names no full date) raises `AccountingFormatError` before any line is yielded. Anything
wrong with one line - a NUL byte, a number past 64 bits, a reported elapsed time over ten
years, more GPUs than any job has, a line over `LINE_LENGTH_LIMIT` characters - rejects that
line alone, with its number.

Speed matters: an import of a million jobs plus two million step lines must parse in a few
seconds, so step lines are recognised from their id field alone, the UTC offset of local
times is looked up once per wall-clock hour, and TRES strings, which repeat, are read once.
"""

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from functools import lru_cache
from operator import itemgetter
from types import MappingProxyType
from typing import NamedTuple

from allocations.names import account_key  # the one rule for comparing account names
from systems.estimates import NVIDIA_MIG_SHARES  # what a slice of an A100/H100 is worth

__all__ = [
    "ELAPSED_LIMIT_SECONDS",
    "GPU_CEILING",
    "LINE_LENGTH_LIMIT",
    "MIG_PROFILES",
    "SACCT_OPTIONAL",
    "SACCT_REQUIRED",
    "AccountingFormatError",
    "JobRecord",
    "Rejected",
    "StepSkipped",
    "UnknownSliceProfile",
    "account_key",
    "account_problem",
    "gpu_equivalents",
    "mig_profile",
    "normalise_state",
    "parse_alloc_gres_gpus",
    "parse_alloc_tres_gpus",
    "parse_elapsed",
    "parse_pbs",
    "parse_sacct",
    "parse_time",
]

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


class JobRecord(NamedTuple):
    """One run of one job allocation, as the scheduler reported it.

    A named tuple rather than a frozen dataclass: a million of them are built per import, and
    a frozen dataclass's __init__ assigns each field through object.__setattr__, several
    times the cost of building a tuple.
    """

    line_no: int
    job_key: str  # unique per run; see parse_sacct / parse_pbs for how it is built
    job_id_raw: str
    job_id: str  # what people see: "123", "123_4", "123+1", "123_[1-5]"
    account: str  # as the scheduler printed it; compare with `account_key`
    user: str
    partition: str
    state: str  # "CANCELLED by 1234" -> "CANCELLED"; unknown names kept, upper-case
    submit: datetime | None  # aware, UTC
    start: datetime | None  # aware, UTC; None while pending
    end: datetime | None  # aware, UTC; None while running
    elapsed_seconds: int  # so far, for a running job
    gpus: int  # whole scheduler GPUs (gres/gpu units), counted once; MIG slices not included
    nodes: int
    energy_joules: int | None  # measured by the scheduler, None when not measured
    job_name: str
    running: bool  # not finished: a later import may report more usage for the same job_key
    # Typed GPU entries as listed, type name -> count: (("a100", 1),) for
    # `gres/gpu:a100=1,gres/gpu=1`, (("1g.10gb", 7),) for seven MIG slices. Slices are in
    # here and not in `gpus`: what a slice is worth depends on the partition's hardware, see
    # `gpu_share` and `gpu_equivalents`.
    gpu_types: tuple[tuple[str, int], ...] = ()
    # The line named no GPUs at all (no GPU field, or every one empty), as opposed to naming
    # none allocated: `gpus` is 0 for want of data, and the import should say how often.
    no_gpu_field: bool = False

    @property
    def gpu_seconds(self) -> int:
        return self.gpus * self.elapsed_seconds

    @property
    def account_key(self) -> str:
        return account_key(self.account)

    @property
    def gpu_slices(self) -> int:
        """MIG slices among the typed GPU entries (each one gres/gpu unit to Slurm)."""
        return sum(count for name, count in self.gpu_types if mig_profile(name) is not None)

    def gpu_share(self, profiles: Mapping[str, float] | None = None) -> float:
        """Whole GPUs plus each MIG slice's share of a GPU, by `profiles` (see
        `gpu_equivalents`; default `MIG_PROFILES`). Raises UnknownSliceProfile."""
        return gpu_equivalents(self.gpu_types, self.gpus + self.gpu_slices, profiles)


# JobRecord(a, b, ...) goes through the Python-level __new__ that NamedTuple generates, which
# binds every field as an argument; building the tuple directly costs a third as much. The
# readers below fill every field, in order.
_new_record = tuple.__new__


@dataclass(frozen=True, slots=True)
class Rejected:
    line_no: int
    reason: str
    text: str  # the line as read, at most 500 characters


@dataclass(frozen=True, slots=True)
class StepSkipped:
    line_no: int


class AccountingFormatError(ValueError):
    """The input as a whole cannot be read (as opposed to one bad line)."""


class UnknownSliceProfile(ValueError):
    """A MIG slice whose profile the partition's slice profiles do not list."""


class _LineError(ValueError):
    """One line cannot be read; the message is the operator-facing reason."""


_REJECTED_TEXT_LIMIT = 500

# ---------------------------------------------------------------------------------------------
# Building blocks, exposed so they can be tested and reused on their own.
# ---------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------
# GPUs: TRES and GRES strings, MIG slices
# ---------------------------------------------------------------------------------------------

# Share of one GPU per MIG compute slice on NVIDIA A100 and H100 (seven slices per card); a
# profile `1g.10gb` or `1g.10gb+me` is looked up as itself, then without its memory (`1g`).
# Other cards slice differently (an A30 has four: 1g = 1/4), so a partition declares its own.
MIG_PROFILES: Mapping[str, float] = MappingProxyType(NVIDIA_MIG_SHARES)
# NVIDIA's profile names: `<compute slices>g.<memory>gb`, with `<n>c.` in front for a compute
# instance inside a larger GPU instance and `+me` (media extensions) behind. Slurm names a MIG
# GRES type after its profile (`gres/gpu:1g.10gb`); sites that autodetect may prefix the card
# (`a100_1g.10gb`, `nvidia_a100-sxm4-80gb_3g.40gb`).
_MIG_NAME = re.compile(r"(?:^|[_\-])((?:\d+c\.)?\d+g\.\d+gb(?:\+[a-z]+)?)$", re.IGNORECASE)


def mig_profile(gpu_type: str) -> str | None:
    """The MIG profile a GPU type name stands for (`1g.10gb` for `a100_1g.10gb`), lower-case,
    or None when the type is a whole card (`a100`, `rtx30`)."""
    return _mig_profile(gpu_type) if len(gpu_type) <= 200 else None


@lru_cache(maxsize=1024)
def _mig_profile(gpu_type: str) -> str | None:
    found = _MIG_NAME.search(gpu_type)
    return found.group(1).lower() if found else None


def _slice_share(gpu_type: str, profile: str, profiles: Mapping[str, float]) -> float:
    share = profiles.get(profile)
    if share is None:  # `1g.10gb` -> `1g`, `1g.10gb+me` -> `1g`, `1c.3g.40gb` -> `1c.3g`
        share = profiles.get(profile.rsplit(".", 1)[0])
    if share is None:
        known = ", ".join(sorted(profiles)) or "none"
        raise UnknownSliceProfile(
            f"GPU type {gpu_type!r} is a MIG slice of profile {profile!r}, which is not among"
            f" the slice profiles declared for the partition ({known})."
        )
    if not 0 < share <= 1:
        raise ValueError(f"MIG profile {profile!r} is declared as {share} GPUs; a slice is 0-1.")
    return share


def gpu_equivalents(
    typed_counts: Mapping[str, int] | Iterable[tuple[str, int]],
    untyped_count: int | None,
    profiles: Mapping[str, float] | None = None,
) -> float:
    """Whole GPUs that a job's GPU entries are worth, MIG slices counted by their share.

    `typed_counts` are the typed entries (type -> count: `JobRecord.gpu_types`, or a mapping),
    `untyped_count` the untyped total (`gres/gpu=N`), None when the line lists none.
    `profiles` maps a MIG profile (`1g.10gb`) or the profile without its memory (`1g`,
    `1c.3g`) to its share of one GPU; default `MIG_PROFILES` (A100/H100: 1g = 1/7 ... 7g = 1).

    How the entries combine. Slurm counts each MIG slice as one `gres/gpu` unit, so on a MIG
    partition `gres/gpu=7,gres/gpu:1g.10gb=7` is one job holding seven 1g slices: the total
    counts the same seven units the typed entry names, and the typed entry says what they
    are. It is read as 7 x 1/7 = 1 GPU, never as 7 (nor 14). In general the untyped total
    counts every unit once; typed slice entries take their units out of it at their share,
    and what remains are whole GPUs (`gres/gpu=3,gres/gpu:a100=1,gres/gpu:1g.10gb=2` is
    1 + 2/7). Without a total, typed entries that are not slices count whole.

    A slice can only be recognised when Slurm tracks its type (AccountingStorageTRES lists
    `gres/gpu:<type>`, slurm.conf(5)); a bare `gres/gpu=7` from a MIG node counts 7.
    Raises UnknownSliceProfile naming a slice profile that `profiles` does not list.
    """
    profiles = MIG_PROFILES if profiles is None else profiles
    lowered = {name.lower(): share for name, share in profiles.items()}
    items = typed_counts.items() if isinstance(typed_counts, Mapping) else typed_counts
    whole_typed = slices = 0
    share = 0.0
    for gpu_type, count in items:
        profile = mig_profile(gpu_type)
        if profile is None:
            whole_typed += count
        else:
            slices += count
            share += count * _slice_share(gpu_type, profile, lowered)
    whole = whole_typed if untyped_count is None else max(untyped_count - slices, 0)
    return whole + share


# What a GPU field says: (whole GPUs, typed entries, gres/gpu units), or None when it lists
# no GPU entry at all (a CPU job's `cpu=4,mem=8G,node=1`).
_GpuReading = tuple[int, tuple[tuple[str, int], ...], int]
_NO_GPUS: _GpuReading = (0, (), 0)


def _gpu_count(name: str, count: str) -> int:
    if not _is_number(count):
        raise ValueError(f"{name}={_shown(count)[1:-1]} is not a whole number")
    if len(count) > _DIGITS_LIMIT:
        raise ValueError(f"{name}={count[:20]}... is out of range")
    return int(count)


def _gpu_reading(total: int | None, typed: dict[str, int]) -> _GpuReading:
    types = tuple(typed.items())
    slices = sum(count for name, count in types if mig_profile(name) is not None)
    # with a total, the slices are among its units; without one, each typed entry is its own
    whole = max(total - slices, 0) if total is not None else sum(c for _, c in types) - slices
    return (whole, types, whole + slices)


@lru_cache(maxsize=4096)
def _tres_gpus(text: str) -> _GpuReading | None:
    if "gres/gpu" not in text:
        return None
    total: int | None = None
    typed: dict[str, int] = {}
    for item in text.split(","):
        name, _, count = item.partition("=")
        if name == "gres/gpu":
            total = _gpu_count(name, count)
        elif name.startswith("gres/gpu:"):
            gpu_type = name[9:]
            typed[gpu_type] = typed.get(gpu_type, 0) + _gpu_count(name, count)
    if total is None and not typed:
        return None  # gres/gpumem, gres/gpuutil: about GPUs, but no count of them
    return _gpu_reading(total, typed)


def parse_alloc_tres_gpus(text: str) -> int:
    """Whole scheduler GPUs in a Slurm TRES string (`AllocTRES`, `ReqTRES`) such as
    `billing=19,cpu=1,gres/gpu:a100=1,gres/gpu=1`.

    Slurm lists the typed count (`gres/gpu:a100=1`) next to the total (`gres/gpu=1`) for the
    same devices, so the total alone is the answer; typed entries are summed only when no total
    is listed. MIG slices (`gres/gpu:1g.10gb=7`) are not whole GPUs and are left out: see
    `gpu_equivalents`. `gres/gpumem`, `gres/gpuutil`, `gres/shard` and `gres/mps` are not
    GPUs. Raises ValueError when a GPU count is not a whole number.
    """
    reading = _tres_gpus(text) if len(text) <= _CACHED_TEXT_LIMIT else _tres_gpus.__wrapped__(text)
    return 0 if reading is None else reading[0]


@lru_cache(maxsize=4096)
def _gres_gpus(text: str) -> _GpuReading | None:
    if "gpu" not in text:
        return None
    if "(" in text:  # `gpu:2(IDX:0,2)`: device indexes, which hold commas of their own
        first, *rest = text.split("(")
        text = first + "".join(piece.partition(")")[2] for piece in rest)
    total: int | None = None
    typed: dict[str, int] = {}
    for item in text.split(","):
        parts = item.strip().split(":")
        if parts[0] == "gres":  # `gres:gpu:2`, as scontrol writes TresPerNode
            parts = parts[1:]
        if parts[0].removeprefix("gres/") != "gpu":
            continue
        rest = [part for part in parts[1:] if part and part != "no_consume"]
        count = 1  # `--gres=gpu` asks for one
        if rest and _is_number(rest[-1]):
            count = _gpu_count("gpu", rest.pop())
        if not rest:
            total = (total or 0) + count
        elif len(rest) == 1:
            typed[rest[0]] = typed.get(rest[0], 0) + count
        else:
            raise ValueError(f"{_shown(item)} is not a GPU entry (gpu[:type]:count)")
    if total is None and not typed:
        return None
    return _gpu_reading(total, typed)


def parse_alloc_gres_gpus(text: str) -> int:
    """Whole scheduler GPUs in a Slurm GRES string (`AllocGRES`, `ReqGRES`, which older Slurm
    prints instead of TRES): `gpu:2`, `gpu:tesla:2`, `gpu:2(IDX:0-1)`, several joined by
    commas; the same rules as `parse_alloc_tres_gpus`."""
    reading = _gres_gpus(text) if len(text) <= _CACHED_TEXT_LIMIT else _gres_gpus.__wrapped__(text)
    return 0 if reading is None else reading[0]


@lru_cache(maxsize=4096)
def _tres_nodes(text: str) -> int:
    for item in text.split(","):
        if item.startswith("node="):
            count = item[5:]
            return int(count) if _is_number(count) and len(count) <= _DIGITS_LIMIT else 0
    return 0


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


# ---------------------------------------------------------------------------------------------
# Slurm sacct
# ---------------------------------------------------------------------------------------------

# Each entry is a group of alternatives: one field of each group must be present.
SACCT_REQUIRED: tuple[tuple[str, ...], ...] = (
    ("JobIDRaw", "JobID"),
    ("Account",),
    ("Start",),
    ("End", "ElapsedRaw", "Elapsed"),
    ("AllocTRES", "AllocGRES"),
    ("State",),
)
SACCT_OPTIONAL: tuple[str, ...] = (
    "JobID",
    "Partition",
    "User",
    "Submit",
    "NNodes",
    "ConsumedEnergyRaw",
    "JobName",
    "AllocGRES",
    "ReqTRES",
    "ReqGRES",
)
# The order in which one line's values are taken out of it, in one C call (itemgetter).
_SACCT_READ = (
    "JobIDRaw",
    "JobID",
    "Account",
    "User",
    "Partition",
    "State",
    "Submit",
    "Start",
    "End",
    "ElapsedRaw",
    "Elapsed",
    "AllocTRES",
    "NNodes",
    "ConsumedEnergyRaw",
    "JobName",
    "AllocGRES",
    "ReqTRES",
    "ReqGRES",
)
_SACCT_KNOWN = {name.lower(): name for name in _SACCT_READ}
_DEFAULT_DELIMITER = "|"


def parse_sacct(
    lines: Iterable[str],
    *,
    tz: tzinfo,
    fields: Sequence[str] | None = None,
    on_fields: Callable[[frozenset[str]], None] | None = None,
    delimiter: str | None = None,
    time_format: str | None = None,
    max_line_length: int = LINE_LENGTH_LIMIT,
) -> Iterator[JobRecord | Rejected | StepSkipped]:
    """Read `sacct --parsable2` (or `--parsable`, one trailing delimiter) output.

    Without `fields` the first non-empty line is sacct's header and fields may come in any
    order; with `fields` (what was given to `sacct --format`: a list, or the comma-separated
    text, any case, `%width` suffixes allowed) there is no header, and a header line that is
    there anyway is recognised and skipped. Line numbers count every physical line, header and
    blank lines included.

    `delimiter` is what was given to `sacct --delimiter` (one or more characters, `☃` too);
    by default `|`, or, with a header that has no `|`, the run of characters between its first
    two field names. Times: see `parse_time`; `time_format` is the SLURM_TIME_FORMAT that
    sacct ran with, needed only when it was neither unset, `standard` nor `%s`. A line longer
    than `max_line_length` characters is rejected without being split (a step line is
    skipped as ever: only its id field is looked at).

    Job key: `JobIDRaw@<Submit in UTC, ISO 8601>`, or `JobIDRaw` alone without a Submit.
    JobIDRaw is unique per job but not per run: `sacct -D` lists each requeued run of a job
    under the same JobIDRaw. Slurm resets a job's submit time when it requeues it, so that the
    new run gets its own accounting record; slurmdbd's job table is keyed on
    (id_job, time_submit) (sacct(1) on Submit: "If a job is requeued the submit time is reset";
    Slurm's `batch_requeue_fini` "so that subsequent jobs appear in a separate accounting
    record"). Submit is also the one time that stays put over a run's life: Start moves from
    `Unknown` to a time when a pending job starts, End when it ends. So the key of a run is the
    same in a PENDING, a RUNNING and the final COMPLETED pull, and differs between requeued
    runs. UTC keeps it independent of the zone and the format sacct printed in.

    GPUs come from the first of these that lists a GPU entry: `AllocTRES`, `AllocGRES`, and,
    for a job that never ran (no Start, or no time elapsed: cancelled while pending),
    `ReqTRES` and `ReqGRES` (what a job that ran asked for is not what it had). A line where
    every field that applies is absent or empty gets 0 GPUs and `no_gpu_field`; a line whose
    field lists resources but no GPU (`cpu=4,mem=8G,node=1`) is a CPU job. MIG slices are kept
    apart in `gpu_types`, see `gpu_equivalents`.

    `on_fields(names)` is called once the fields of the input are known (the header read, or
    `fields` checked), before the first record, with the canonical names of those present.
    """
    if delimiter is not None:
        _check_delimiter(delimiter)
    read_time = _time_reader(time_format)  # a format that cannot be read fails now
    options = _SacctOptions(delimiter, time_format, read_time, max_line_length)
    if fields is None:
        return _read_sacct(iter(lines), tz, None, on_fields, options)
    names = _field_list_names(fields)  # a bad list fails now
    return _read_sacct(iter(lines), tz, names, on_fields, options)


class _SacctOptions(NamedTuple):
    delimiter: str | None
    time_format: str | None
    read_time: Callable[[str], datetime]
    max_line_length: int


def _check_delimiter(delimiter: str) -> None:
    if not delimiter:
        raise AccountingFormatError(
            "The delimiter is empty: give the characters passed to sacct --delimiter"
            " (without it, sacct separates fields with '|')."
        )
    if "\n" in delimiter or "\r" in delimiter:
        raise AccountingFormatError(
            f"The delimiter {delimiter!r} holds a line break; sacct output has one job per line."
        )


def _read_sacct(
    lines: Iterator[str],
    tz: tzinfo,
    names: list[str] | None,
    on_fields: Callable[[frozenset[str]], None] | None,
    options: _SacctOptions,
    *,
    line_no: int = 0,
    source: str = "--fields",
) -> Iterator[JobRecord | Rejected | StepSkipped]:
    """The items of `lines`; with `names`, `lines` are data lines that follow line `line_no`
    of the input (read in pieces: see usage.sacct_arrow), `source` naming where the names
    came from."""
    delimiter = options.delimiter or _DEFAULT_DELIMITER
    max_length = options.max_line_length
    if names is None:
        source = "the header"
        for text in lines:
            line_no += 1
            if len(text) > max_length:
                raise AccountingFormatError(
                    f"The first line is {len(text):,} characters long: no sacct header."
                )
            if text.strip():
                header = text.rstrip("\r\n").lstrip("\ufeff")
                delimiter = options.delimiter or _header_delimiter(header)
                names = _header_names(header.split(delimiter), delimiter)
                break
        else:
            return
    layout = _SacctLayout(names)
    if on_fields is not None:
        on_fields(layout.present)
    read_line = _sacct_line_reader(layout, tz, options)
    width = layout.width
    step_field = layout.step_field
    # The job id is taken from a line only when the delimiter ends it (or it is the line's
    # last field): a line that the delimiter does not split is no step, whatever dots it has.
    id_is_last = step_field == width - 1
    for text in lines:
        line_no += 1
        # A step line repeats its allocation's usage: recognise it from the id field alone,
        # before paying for a full split, because a dump has about two of them per job. This
        # takes one pass over the line at most, whatever its length; a step is never read
        # further, so a step line over the length limit is skipped like any other.
        if step_field == 0:
            cut = text.find(delimiter)
            job_id = text[:cut] if cut >= 0 else ""
        else:
            head = text.split(delimiter, step_field + 1)
            job_id = (
                head[step_field]
                if len(head) > step_field + 1 or (id_is_last and len(head) == width)
                else ""
            )
        if "." in job_id:
            yield StepSkipped(line_no)
            continue
        if len(text) > max_length:
            yield _rejected(
                line_no,
                f"The line is {len(text):,} characters long, over the limit of {max_length:,}.",
                text,
            )
            continue
        line = text.rstrip("\r\n")
        if "\x00" in line:
            yield _rejected(line_no, "The line holds NUL bytes: the file is damaged here.", line)
            continue
        parts = line.split(delimiter)
        if len(parts) != width:
            if not line or line.isspace():
                continue
            if len(parts) == width + 1 and not parts[-1]:
                parts.pop()  # --parsable ends every line with a delimiter
            else:
                reason = f"The line has {len(parts)} fields but {source} names {width}."
                if len(parts) == 1:
                    reason += f" Are its fields separated by {delimiter!r} (sacct --delimiter)?"
                yield _rejected(line_no, reason, line)
                continue
        try:
            yield read_line(line_no, parts)
        except _LineError as error:
            # sacct's header line: repeated by concatenated dumps, or present although
            # --fields was given; it describes the data and is not itself a job
            if _is_header(parts[:width], names):
                continue
            yield _rejected(line_no, str(error), line)


def _header_delimiter(header: str) -> str:
    """The delimiter of a header line without `|`: what separates its first two names.

    Field names are letters and digits, so the first run of other characters is the delimiter
    when splitting by it leaves nothing but names. A delimiter with letters in it cannot be
    told apart from the names; it has to be given.
    """
    if _DEFAULT_DELIMITER in header:
        return _DEFAULT_DELIMITER
    found = re.match(r"[A-Za-z][A-Za-z0-9]*([^A-Za-z0-9]+)[A-Za-z]", header)
    if found is None:
        return _DEFAULT_DELIMITER
    candidate = found.group(1)
    names = header.split(candidate)
    if names and not names[-1]:
        names.pop()  # --parsable
    if all(name.isascii() and name.isalnum() for name in names):
        return candidate
    return _DEFAULT_DELIMITER


def _is_header(parts: list[str], names: list[str]) -> bool:
    return [_canonical_field(part).lower() for part in parts] == [name.lower() for name in names]


def _rejected(line_no: int, reason: str, line: str) -> Rejected:
    return Rejected(line_no, reason, line[:_REJECTED_TEXT_LIMIT].rstrip("\r\n"))


def _header_names(names: list[str], delimiter: str) -> list[str]:
    if len(names) > 1 and not names[-1]:
        names = names[:-1]  # --parsable header
    names = [name.strip() for name in names]
    _check_names(names, "The sacct header", delimiter)
    return names


def _field_list_names(fields: Sequence[str]) -> list[str]:
    if isinstance(fields, str):
        fields = fields.split(",")
    names = [_canonical_field(name) for name in fields]
    _check_names(names, "The field list")
    return names


def _canonical_field(name: str) -> str:
    # sacct --format takes names in any case and with a %width; the header it prints has neither
    name = name.strip().split("%", 1)[0]
    return _SACCT_KNOWN.get(name.lower(), name)


def _check_names(names: list[str], what: str, delimiter: str | None = None) -> None:
    present = set(names)
    missing = [group for group in SACCT_REQUIRED if present.isdisjoint(group)]
    if not missing:
        if not all(names):
            raise AccountingFormatError(f"{what} has an empty field name: {'|'.join(names)!r}.")
        return
    wanted = ", ".join(" or ".join(group) for group in missing)
    message = f"{what} lacks required sacct fields: {wanted}."
    lower = {name.lower(): name for name in names}
    near = [lower[n.lower()] for group in missing for n in group if n.lower() in lower]
    if near:
        message += f" Field names are case-sensitive: found {', '.join(near)}."
    elif what == "The sacct header":
        if len(names) == 1:
            message += (
                f" It is one single field when split by {delimiter!r}: give the delimiter"
                " passed to sacct --delimiter."
            )
        message += (
            " If the input has no header line (sacct --noheader), give the list passed to"
            " sacct --format."
        )
    raise AccountingFormatError(message)


class _SacctLayout:
    """Where each field sits in a line of this input."""

    def __init__(self, names: list[str]) -> None:
        self.width = len(names)
        position: dict[str, int] = {}
        for index, name in enumerate(names):
            position.setdefault(name, index)
        # A field this input lacks is read from one past the end of the line, where the reader
        # appends an empty value: absent and empty then mean the same thing.
        self.getter = itemgetter(*(position.get(name, self.width) for name in _SACCT_READ))
        self.step_field = min(position[name] for name in ("JobID", "JobIDRaw") if name in position)
        self.has_end = "End" in position
        self.present = frozenset(position)


_HOURS_REMEMBERED = 100_000  # about eleven years of distinct wall-clock hours
_EXACT = (None, None)  # an hour in which the zone changes offset: convert each time exactly
# `Unknown` and the like: no offset, no hour, and a third item so that it is no equal tuple
# folded into the same constant as _EXACT; it is told apart by identity.
_NOT_A_TIME = (None, None, "not a time")


def _utc_converters(
    tz: tzinfo, options: _SacctOptions
) -> tuple[Callable[[str], datetime | None], Callable[[str, datetime], str]]:
    """`utc(text)`, as parse_time(text, tz, time_format) but fast, and `utc_iso(text, value)`,
    the ISO text in UTC of what utc(text) returned (`2024-11-13T07:30:40Z`).

    `datetime.replace(tzinfo=...)` and `astimezone` with a ZoneInfo cost about 1.5 us each in
    CPython 3.11, and a job has three times. Within one wall-clock hour the UTC offset is the
    same unless the zone changes offset in that hour, so it is looked up once per hour and
    subtracted from the time parsed as if it were UTC; an hour with a change takes the exact
    path. The same per-hour entry gives the ISO text without formatting a datetime. Times in
    an all-digits strftime pattern are rewritten as ISO text and take the same path; those in
    other patterns, and epoch seconds, are converted exactly.
    """
    time_format = options.time_format
    if time_format is None or time_format in _ISO_FORMATS:
        return _iso_converters(tz, options.read_time)
    rewrite = _iso_rewriter(time_format)
    if rewrite is None:
        read_time = options.read_time

        def exact(text: str) -> datetime | None:
            text = text.strip()
            if text in _NO_TIME:
                return None
            return _in_utc(read_time(text), tz, text)

        return exact, _any_iso
    iso_utc, iso_key = _iso_converters(tz, _time_reader(None))

    def utc(text: str) -> datetime | None:
        if text in _NO_TIME:
            return None
        return iso_utc(rewrite(text))

    def utc_iso(text: str, value: datetime) -> str:
        return iso_key(rewrite(text), value)

    return utc, utc_iso


def _any_iso(text: str, value: datetime) -> str:
    return value.isoformat().removesuffix("+00:00") + "Z"


def _iso_converters(
    tz: tzinfo, read_time: Callable[[str], datetime]
) -> tuple[Callable[[str], datetime | None], Callable[[str, datetime], str]]:
    """The fast `utc` and `utc_iso` of `_utc_converters`, for ISO 8601 text (or epoch
    seconds, which `read_time` takes on the exact path)."""

    def exact(text: str) -> datetime | None:
        text = text.strip()
        if text in _NO_TIME:
            return None
        return _in_utc(read_time(text), tz, text)

    # `Unknown`, `None` and the empty text have entries of their own: one look-up per time
    # tells them and a known hour apart. (A text shorter than 13 characters is its own key.)
    no_time = dict.fromkeys(_NO_TIME, _NOT_A_TIME)
    hours: dict[str, tuple] = dict(no_time)
    from_iso = datetime.fromisoformat

    def learn(text: str) -> tuple:
        if not (len(text) >= 16 and text[4] == "-" and text[10] in "T " and text[13] == ":"):
            return _EXACT
        try:
            hour = from_iso(text[:13] + ":00")
        except ValueError:
            return _EXACT
        last = hour + timedelta(minutes=59, seconds=59)
        offsets = {
            tz.utcoffset(moment.replace(fold=fold)) for moment in (hour, last) for fold in (0, 1)
        }
        entry: tuple[timedelta | None, str | None] = _EXACT
        if len(offsets) == 1 and None not in offsets and datetime.min.year < hour.year < 9999:
            offset = offsets.pop()
            whole_hours = not offset % timedelta(hours=1)
            entry = (offset, (hour - offset).isoformat()[:13] if whole_hours else None)
        if len(hours) >= _HOURS_REMEMBERED:
            hours.clear()
            hours.update(no_time)
        hours[text[:13]] = entry
        return entry

    def utc(text: str) -> datetime | None:
        hour = hours.get(text[:13]) or learn(text)
        offset = hour[0]
        if offset is not None:
            try:
                return from_iso(text + "+00:00") - offset
            except (ValueError, OverflowError):
                pass  # an offset of its own, not a time at all, or year 1 / 9999
        elif hour is _NOT_A_TIME:
            return None
        return exact(text)

    def utc_iso(text: str, value: datetime) -> str:
        hour = hours.get(text[:13])
        if hour is not None and hour[1] is not None and len(text) == 19:
            return hour[1] + text[13:] + "Z"
        return _any_iso(text, value)

    return utc, utc_iso


def _sacct_line_reader(
    layout: _SacctLayout, tz: tzinfo, options: _SacctOptions
) -> Callable[[int, list[str]], JobRecord]:
    getter = layout.getter
    has_end = layout.has_end
    utc, utc_iso = _utc_converters(tz, options)
    time_format = options.time_format
    # Values that repeat from line to line, read once: a dict look-up is cheaper than a call
    # through lru_cache. Only short values that passed every check are kept, and not too many.
    good_accounts: set[str] = set()
    states: dict[str, str] = {}
    gpu_tres: dict[str, _GpuReading] = {}
    elapsed_limit = ELAPSED_LIMIT_SECONDS

    def read_state(job_id: str, text: str) -> str:
        state = normalise_state(text) if len(text) <= 64 else normalise_state.__wrapped__(text)
        if not state:
            raise _LineError(f"Job {job_id} has no state.")
        if len(text) <= 64 and len(states) < 4096:
            states[text] = state
        return state

    def read_gpus(
        job_id: str, tres: str, gres: str, req_tres: str, req_gres: str, never_ran: bool
    ) -> tuple[_GpuReading, bool]:
        """(GPU reading, no_gpu_field) of a line whose AllocTRES is not in `gpu_tres`."""
        if tres:
            try:
                reading = (
                    _tres_gpus(tres)
                    if len(tres) <= _CACHED_TEXT_LIMIT
                    else _tres_gpus.__wrapped__(tres)
                )
            except ValueError as error:
                raise _LineError(f"AllocTRES {_shown(tres)}: {error}.") from None
            if reading is not None:
                _check_gpu_ceiling(job_id, reading)
                if len(tres) <= _CACHED_TEXT_LIMIT and len(gpu_tres) < 4096:
                    gpu_tres[tres] = reading
                return reading, False
            if not (gres or req_tres or req_gres):
                return _NO_GPUS, False  # a CPU job: AllocTRES lists its resources, no GPU
        reading, no_gpu_field = _other_gpu_fields(tres, gres, req_tres, req_gres, never_ran)
        if reading is None:
            return _NO_GPUS, no_gpu_field
        _check_gpu_ceiling(job_id, reading)
        return reading, no_gpu_field

    def read_line(line_no: int, parts: list[str]) -> JobRecord:
        parts.append("")
        (
            job_id_raw,
            job_id,
            account,
            user,
            partition,
            state_text,
            submit_text,
            start_text,
            end_text,
            elapsed_raw_text,
            elapsed_text,
            tres_text,
            nodes_text,
            energy_text,
            job_name,
            gres_text,
            req_tres_text,
            req_gres_text,
        ) = getter(parts)
        job_id = job_id or job_id_raw
        job_id_raw = job_id_raw or job_id
        if not job_id_raw:
            raise _LineError("The line has no job id.")
        if account not in good_accounts:
            problem = account_problem(account)
            if problem is not None:
                raise _LineError(f"Job {job_id} {problem}")
            if len(good_accounts) < 100_000:
                good_accounts.add(account)
        state = states.get(state_text) or read_state(job_id, state_text)

        try:
            submit = utc(submit_text)
            start = utc(start_text)
            end = utc(end_text)
        except ValueError:
            raise _LineError(
                _bad_time_reason(
                    utc, time_format, Submit=submit_text, Start=start_text, End=end_text
                )
            ) from None
        # Without an End field the state alone tells a finished job from a running one.
        running = state in _UNFINISHED_STATES or (end is None and has_end)
        if running:
            end = None  # whatever sacct shows as End of an unfinished job is not when it ended

        if start is None:
            elapsed = 0  # never started, used nothing
        elif elapsed_raw_text:
            try:
                elapsed = int(elapsed_raw_text)
            except ValueError:
                elapsed = -1
            if not 0 <= elapsed <= elapsed_limit:
                elapsed = _odd_elapsed_raw(job_id, elapsed_raw_text)
        elif elapsed_text:
            try:
                elapsed = parse_elapsed(elapsed_text)
            except ValueError:
                raise _LineError(
                    f"Elapsed {_shown(elapsed_text)} is not a duration ([D-]HH:MM:SS)."
                ) from None
            if elapsed > elapsed_limit:
                raise _too_long(job_id, "Elapsed", elapsed_text)
        elif end is not None:
            elapsed = int((end - start).total_seconds())
            if elapsed < 0:
                raise _LineError(f"Job {job_id} ends before it starts.")
        else:
            elapsed = 0  # running, and the input has no elapsed field to say for how long
        if end is None and not running and start is not None:
            end = start + timedelta(seconds=elapsed)  # finished, in an input without End

        # GPUs: the common case, an AllocTRES seen before that names them, is one look-up.
        reading = gpu_tres.get(tres_text)
        if reading is None:
            reading, no_gpu_field = read_gpus(
                job_id,
                tres_text,
                gres_text,
                req_tres_text,
                req_gres_text,
                start is None or not elapsed,
            )
        else:
            no_gpu_field = False
        gpus, gpu_types, _ = reading

        if not nodes_text:
            nodes = (
                _tres_nodes(tres_text)
                if len(tres_text) <= _CACHED_TEXT_LIMIT
                else _tres_nodes.__wrapped__(tres_text)
            )
        elif nodes_text.isdecimal() and len(nodes_text) < 7:
            nodes = int(nodes_text)
        else:
            nodes = _whole(nodes_text, "NNodes", _NODE_CEILING)

        energy = None
        if energy_text and _is_number(energy_text) and len(energy_text) <= _DIGITS_LIMIT:
            energy = int(energy_text)
            if not 0 < energy < _ENERGY_LIMIT:
                energy = None

        job_key = job_id_raw if submit is None else f"{job_id_raw}@{utc_iso(submit_text, submit)}"

        return _new_record(
            JobRecord,
            (
                line_no,
                job_key,
                job_id_raw,
                job_id,
                account,
                user,
                partition,
                state,
                submit,
                start,
                end,
                elapsed,
                gpus,
                nodes,
                energy,
                job_name,
                running,
                gpu_types,
                no_gpu_field,
            ),
        )

    return read_line


def _check_gpu_ceiling(job_id: str, reading: _GpuReading) -> None:
    if reading[2] > GPU_CEILING:
        raise _LineError(
            f"Job {job_id} has {reading[2]:,} GPUs, more than the {GPU_CEILING:,} any job can hold."
        )


def _odd_elapsed_raw(job_id: str, text: str) -> int:
    """ElapsedRaw that is not a short run of digits: out of range, negative, or no number."""
    if _is_number(text):
        if len(text) <= _DIGITS_LIMIT and int(text) <= ELAPSED_LIMIT_SECONDS:
            return int(text)  # leading zeros
        raise _too_long(job_id, "ElapsedRaw", text)
    try:
        value = int(text) if len(text) <= _DIGITS_LIMIT + 2 else None
    except ValueError:
        value = None
    if value is None:
        raise _LineError(f"ElapsedRaw {_shown(text)} is not a whole number of seconds.")
    if value < 0:
        raise _LineError(f"Job {job_id} has a negative ElapsedRaw {text}.")
    if value > ELAPSED_LIMIT_SECONDS:
        raise _too_long(job_id, "ElapsedRaw", text)
    return value


def _too_long(job_id: str, field: str, text: str) -> _LineError:
    # Only a reported figure is held to this; End - Start is what the two times say it is.
    return _LineError(
        f"Job {job_id} has {field} {_shown(text, 30)}, more than ten years: not a real run time."
    )


def _other_gpu_fields(
    tres_text: str, gres_text: str, req_tres_text: str, req_gres_text: str, never_ran: bool
) -> tuple[_GpuReading | None, bool]:
    """(GPU reading, no_gpu_field) from the fields after AllocTRES, which named no GPU."""
    sources = [("AllocGRES", gres_text, _gres_gpus)]
    if never_ran:  # what was asked for is all there is to know of a job that never ran
        sources += [("ReqTRES", req_tres_text, _tres_gpus), ("ReqGRES", req_gres_text, _gres_gpus)]
    said = bool(tres_text)
    for name, text, read in sources:
        if not text:
            continue
        said = True
        try:
            reading = read(text) if len(text) <= _CACHED_TEXT_LIMIT else read.__wrapped__(text)
        except ValueError as error:
            raise _LineError(f"{name} {_shown(text)}: {error}.") from None
        if reading is not None:
            return reading, False
    return None, not said


def _bad_time_reason(
    utc: Callable[[str], datetime | None], time_format: str | None, **texts: str
) -> str:
    for name, text in texts.items():
        try:
            utc(text)
        except ValueError:
            reason = f"{name} {_shown(text)} is not a date and time"
            if time_format is not None and time_format not in _ISO_FORMATS:
                reason += f" in the format {time_format!r}"
            return reason + "."
    return "A time is not a date and time."  # unreachable: one of them failed to parse


# ---------------------------------------------------------------------------------------------
# PBS / TORQUE
# ---------------------------------------------------------------------------------------------

# PBS Pro puts every job without `qsub -P` in this project: it names no one.
_PBS_DEFAULT_PROJECT = "_pbs_project_default"
# Record types that close one run of a job: E (the job ended) and R (it was rerun: the run that
# was cut short ends here, and the job goes back to the queue for another).
_PBS_RUN_ENDS = frozenset({"E", "R"})
_RERUN_STATE = "REQUEUED"  # Slurm's name for a run that ended because the job was requeued


def parse_pbs(
    lines: Iterable[str], *, tz: tzinfo, max_line_length: int = LINE_LENGTH_LIMIT
) -> Iterator[JobRecord | Rejected | StepSkipped]:
    """Read PBS Pro / TORQUE accounting logs (`MM/DD/YYYY HH:MM:SS;E;<jobid>;key=value ...`).

    Usage is on the records that end a run: `E` (job end) and `R` (rerun: PBS Pro's
    `qrerun` or a node failure, TORQUE's rerun attempt). An R record that carries the run
    (`start=`) becomes a record of its own with state REQUEUED, so the cut-short run counts
    once, beside the E of the run that finished the job; one without a start (TORQUE may
    log no more than the requestor) is skipped, as is every other record type (Q, S, D, A,
    ...). The record's own timestamp is local time in `tz` and serves as the end when the
    record has no `end=`.

    - account: `account=` (TORQUE `qsub -A`, unquoted when written `account="abc"`), else
      `project=` (PBS Pro `qsub -P`, except its placeholder `_pbs_project_default`), else the
      job's Unix `group=`: sites without accounts tell projects apart by group, and four of
      the nine records in the real sample have nothing else. A group that is no allocation's
      account ends up unmatched, not lost. Case is kept (`SCSG0001`).
    - GPUs, from the first that names any: `Resource_List.ngpus` (PBS Pro, the job's total);
      the sum over `Resource_List.select` chunks (`2:ncpus=64:ngpus=4+1:ngpus=2` is 10);
      the vnodes of `exec_vnode` (`(node1:ngpus=4)+(node2:ngpus=4)` is 8); the `gpus=` of a
      TORQUE nodes spec (`Resource_List.nodes=2:ppn=8:gpus=4` is 8). A record with none of
      these resources gets 0 GPUs and `no_gpu_field`.
    - elapsed: `resources_used.walltime`, else end - start.
    - state: `Exit_status` 0 (or absent) is COMPLETED, anything else FAILED; R is REQUEUED.
    - job_id is the sequence number (`6` of `6.edge.ccr.buffalo.edu`), job_key is
      `<job_id>@<start epoch>` (`/R` behind it for a rerun record): the server suffix is not
      needed to tell runs apart once the start is part of the key, and logs write the same
      job with and without it.
    """
    for line_no, text in enumerate(lines, start=1):
        if len(text) > max_line_length:
            yield _rejected(
                line_no,
                f"The line is {len(text):,} characters long, over the limit of"
                f" {max_line_length:,}.",
                text,
            )
            continue
        line = text.rstrip("\r\n")
        if not line or line.isspace():
            continue
        head = line.split(";", 3)
        if len(head) != 4 or not head[1]:
            yield _rejected(
                line_no,
                "The line is not a PBS accounting record ('MM/DD/YYYY HH:MM:SS;type;job id;...').",
                line,
            )
            continue
        stamp, kind, job_id_raw, message = head
        if kind not in _PBS_RUN_ENDS:
            yield StepSkipped(line_no)
            continue
        if "\x00" in line:
            yield _rejected(line_no, "The line holds NUL bytes: the file is damaged here.", line)
            continue
        try:
            record = _pbs_run_record(line_no, stamp, kind, job_id_raw, message, tz)
        except _LineError as error:
            yield _rejected(line_no, str(error), line)
            continue
        yield StepSkipped(line_no) if record is None else record


def _pbs_attributes(message: str) -> dict[str, str]:
    """`key=value` pairs separated by spaces; a value may hold spaces inside double quotes,
    and a word without `=` continues the value before it.

    Continued values are gathered in lists and joined once: adding to a string that a dict
    holds copies it each time, quadratic in a long quoted value."""
    attributes: dict[str, str] = {}
    continued: dict[str, list[str]] = {}
    last = None
    if '"' not in message:  # nearly every record: no quotes to follow or strip
        for word in message.split(" "):
            if not word:
                continue
            key, sep, value = word.partition("=")
            if sep or last is None:
                attributes[key] = value
                if continued:
                    continued.pop(key, None)
                last = key
            else:
                _continue_value(attributes, continued, last, word)
        for key, words in continued.items():
            attributes[key] = " ".join(words)
        return attributes
    quoted = False
    for word in message.split(" "):
        if not word:
            continue
        if quoted:
            _continue_value(attributes, continued, last, word)
            quoted = not word.endswith('"')
            continue
        key, sep, value = word.partition("=")
        if not sep and last is not None:
            _continue_value(attributes, continued, last, word)
            continue
        attributes[key] = value
        if continued:
            continued.pop(key, None)
        last = key
        quoted = value.startswith('"') and not (len(value) > 1 and value.endswith('"'))
    for key, words in continued.items():
        attributes[key] = " ".join(words)
    return {key: value.strip('"') for key, value in attributes.items()}


def _continue_value(
    attributes: dict[str, str], continued: dict[str, list[str]], key: str, word: str
) -> None:
    words = continued.get(key)
    if words is None:
        words = continued[key] = [attributes[key]]
    words.append(word)


def _pbs_run_record(
    line_no: int, stamp: str, kind: str, job_id_raw: str, message: str, tz: tzinfo
) -> JobRecord | None:
    attributes = _pbs_attributes(message)
    get = attributes.get
    rerun = kind == "R"
    if rerun and not get("start"):
        return None  # a rerun before the job ran, or a TORQUE note without the run in it
    logged = _pbs_stamp(stamp, tz)
    job_id = job_id_raw.split(".", 1)[0]
    if not job_id:
        raise _LineError("The record has no job id.")

    account = get("account") or ""
    if not account:
        project = get("project") or ""
        account = project if project != _PBS_DEFAULT_PROJECT else ""
    account = account or get("group") or ""
    if not account:
        raise _LineError(f"Job {job_id} has no account, project or group.")
    if not account.isprintable() or " " in account:
        raise _LineError(f"Job {job_id} {account_problem(account)}")

    submit = _pbs_epoch("qtime", get("qtime")) or _pbs_epoch("ctime", get("ctime"))
    start = _pbs_epoch("start", get("start"))
    end = _pbs_epoch("end", get("end")) or logged

    walltime = get("resources_used.walltime")
    if start is None:
        elapsed = 0
    elif walltime:
        try:
            elapsed = parse_elapsed(walltime)
        except ValueError:
            raise _LineError(
                f"resources_used.walltime {_shown(walltime)} is not a duration (HH:MM:SS)."
            ) from None
        if elapsed > ELAPSED_LIMIT_SECONDS:
            raise _too_long(job_id, "resources_used.walltime", walltime)
    else:
        elapsed = int((end - start).total_seconds())
        if elapsed < 0:
            raise _LineError(f"Job {job_id} ends before it starts.")

    spec_name = "Resource_List.nodes"
    spec = get(spec_name) or ""
    nodect = get("Resource_List.nodect") or ""
    if nodect and not _is_number(nodect):
        # some TORQUE builds write a whole nodes spec (`1:ppn=24:gpu=4`) into nodect
        if not spec:
            spec_name, spec = "Resource_List.nodect", nodect
        nodect = ""
    spec_nodes, spec_gpus = _torque_nodes(spec, spec_name)
    if not nodect:
        nodes = spec_nodes
    elif len(nodect) < 7:  # digits, checked above
        nodes = int(nodect)
    else:
        nodes = _whole(nodect, "Resource_List.nodect", _NODE_CEILING)
    ngpus = get("Resource_List.ngpus")
    if ngpus is not None and ngpus.isdecimal() and len(ngpus) < 4:
        gpus, no_gpu_field = int(ngpus), False
    else:
        gpus, no_gpu_field = _pbs_gpus(get, spec, spec_gpus)
        if gpus > GPU_CEILING:
            raise _LineError(
                f"Job {job_id} has {gpus:,} GPUs, more than the {GPU_CEILING:,} any job can hold."
            )

    exit_status = get("Exit_status")
    if rerun:
        state = _RERUN_STATE
    elif exit_status is None:
        state = "COMPLETED"
    else:
        if not _is_number(exit_status.removeprefix("-")) or len(exit_status) > 12:
            raise _LineError(f"Exit_status {_shown(exit_status)} is not a number.")
        state = "COMPLETED" if int(exit_status) == 0 else "FAILED"

    start_key = get("start") if start is not None else None
    job_key = f"{job_id}@{start_key}" if start_key else job_id
    if rerun:
        job_key += "/R"
    return _new_record(
        JobRecord,
        (
            line_no,
            job_key,
            job_id_raw,
            job_id,
            account,
            get("user") or "",
            get("queue") or "",
            state,
            submit,
            start,
            end,
            elapsed,
            gpus,
            nodes,
            None,
            get("jobname") or "",
            False,
            (),
            no_gpu_field,
        ),
    )


def _pbs_gpus(get: Callable[[str], str | None], spec: str, spec_gpus: int) -> tuple[int, bool]:
    """(GPUs, no_gpu_field) of a PBS record, from the first resource that names GPUs."""
    ngpus = get("Resource_List.ngpus")
    if ngpus is not None:
        return _whole(ngpus, "Resource_List.ngpus", GPU_CEILING), False
    select = get("Resource_List.select") or ""
    if "ngpus=" in select:
        return _chunk_gpus(select, "Resource_List.select", counted=True), False
    exec_vnode = get("exec_vnode") or ""
    if "ngpus=" in exec_vnode:
        vnodes = exec_vnode.replace("(", "").replace(")", "")
        return _chunk_gpus(vnodes, "exec_vnode", counted=False), False
    return spec_gpus, not (select or exec_vnode or spec)


def _chunk_gpus(text: str, name: str, *, counted: bool) -> int:
    """GPUs of `+`-joined chunks `[N:]res=value:...`: a select statement's chunks start with
    how many of them are wanted (1 when left out); exec_vnode's start with the vnode's name."""
    gpus = 0
    for chunk in text.split("+"):
        first, *resources = chunk.split(":")
        count = 1
        if counted:
            if _is_number(first):
                count = _whole(first, f"{name} chunk count", _NODE_CEILING)
            else:
                resources.append(first)
        for resource in resources:
            key, _, value = resource.partition("=")
            if key == "ngpus":
                gpus += count * _whole(value, f"{name} ngpus", GPU_CEILING)
                if gpus > GPU_CEILING:
                    return gpus  # the caller rejects it; no need to add up the rest
    return gpus


def _pbs_stamp(stamp: str, tz: tzinfo) -> datetime:
    try:
        date, time = stamp.split(" ")
        month, day, year = date.split("/")
        hour, minute, second = time.split(":")
        local = datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), tzinfo=tz
        )
    except ValueError:
        raise _LineError(f"Record time {_shown(stamp)} is not 'MM/DD/YYYY HH:MM:SS'.") from None
    return local.astimezone(UTC)


def _pbs_epoch(name: str, text: str | None) -> datetime | None:
    if not text or text == "0":
        return None
    if len(text) <= 12 and text.isascii() and text.isdigit():  # 12 digits reach year 9999
        try:
            return datetime.fromtimestamp(int(text), UTC)
        except (OverflowError, OSError, ValueError):
            pass
    raise _LineError(f"{name} {_shown(text)} is not a time in seconds since 1970.")


def _torque_nodes(spec: str, name: str) -> tuple[int, int]:
    """(nodes, GPUs) of a TORQUE nodes spec: `N[:ppn=P][:gpus=G][:feature]` joined by `+`;
    a host name instead of N is one node, and gpus= is per node."""
    if not spec:
        return (0, 0)
    nodes = gpus = 0
    for chunk in spec.split("+"):
        count_text, *properties = chunk.split(":")
        if not _is_number(count_text):
            count = 1
        elif len(count_text) < 7:
            count = int(count_text)
        else:
            count = _whole(count_text, name, _NODE_CEILING)
        nodes += count
        for item in properties:
            key, _, value = item.partition("=")
            if key in ("gpus", "gpu") and value:
                if not _is_number(value):
                    raise _LineError(f"{name} {_shown(spec)}: {item} is not a whole number.")
                gpus += count * _whole(value, name, GPU_CEILING)
        if nodes > _NODE_CEILING:
            raise _LineError(
                f"{name} {_shown(spec)} is out of range (more than {_NODE_CEILING:,} nodes)."
            )
    return (nodes, gpus)

"""Read scheduler accounting into job records: Slurm `sacct --parsable2` and PBS/TORQUE logs.

Pure functions over lines of text, no Django and no I/O: the usage import streams a file through
`parse_sacct` or `parse_pbs` and writes what comes out. Each input line becomes exactly one of

- `JobRecord`   one run of one job allocation, with its GPU count and elapsed time;
- `StepSkipped` a Slurm step line (`123.batch`, `123.0`) or a PBS record that is not a job end:
                it repeats usage already on the allocation line, so counting it would double it;
- `Rejected`    a malformed line, with a sentence an operator can act on.

Blank lines and sacct's header line yield nothing. Input that cannot be read at all (a header
or field list without the required fields, an empty field name) raises `AccountingFormatError`
before any line is yielded.

Speed matters: an import of a million jobs plus two million step lines must parse in a few
seconds, so step lines are recognised from their id field alone, and the UTC offset of local
times is looked up once per wall-clock hour.
"""

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from functools import lru_cache
from operator import itemgetter
from typing import NamedTuple

__all__ = [
    "SACCT_OPTIONAL",
    "SACCT_REQUIRED",
    "AccountingFormatError",
    "JobRecord",
    "Rejected",
    "StepSkipped",
    "normalise_state",
    "parse_alloc_tres_gpus",
    "parse_elapsed",
    "parse_pbs",
    "parse_sacct",
    "parse_time",
]


class JobRecord(NamedTuple):
    """One run of one job allocation, as the scheduler reported it.

    A named tuple rather than a frozen dataclass: a million of them are built per import, and
    a frozen dataclass's __init__ assigns each of the 17 fields through object.__setattr__,
    several times the cost of building a tuple.
    """

    line_no: int
    job_key: str  # unique per run; see parse_sacct / parse_pbs for how it is built
    job_id_raw: str
    job_id: str  # what people see: "123", "123_4", "123+1", "123_[1-5]"
    account: str
    user: str
    partition: str
    state: str  # "CANCELLED by 1234" -> "CANCELLED"; unknown names kept, upper-case
    submit: datetime | None  # aware, UTC
    start: datetime | None  # aware, UTC; None while pending
    end: datetime | None  # aware, UTC; None while running
    elapsed_seconds: int  # so far, for a running job
    gpus: int  # scheduler GPUs (gres/gpu units), counted once
    nodes: int
    energy_joules: int | None  # measured by the scheduler, None when not measured
    job_name: str
    running: bool  # not finished: a later import may report more usage for the same job_key

    @property
    def gpu_seconds(self) -> int:
        return self.gpus * self.elapsed_seconds


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


class _LineError(ValueError):
    """One line cannot be read; the message is the operator-facing reason."""


_REJECTED_TEXT_LIMIT = 500

# ---------------------------------------------------------------------------------------------
# Building blocks, exposed so they can be tested and reused on their own.
# ---------------------------------------------------------------------------------------------

_NO_TIME = frozenset({"", "Unknown", "None"})


def parse_time(text: str, tz: tzinfo) -> datetime | None:
    """A sacct time as an aware UTC datetime; None for `Unknown`, `None` or empty.

    sacct prints local wall-clock time without an offset, so it is read in `tz` (the cluster's
    zone, a `zoneinfo.ZoneInfo`). In the autumn hour that happens twice the text cannot say
    which one is meant; it is read as the first (summer-time) one, and a time skipped in spring
    is read with the offset in force before the change (PEP 495, fold=0). `TZ=UTC sacct ...`
    avoids both. A time that carries its own offset (`...+02:00`, `...Z`) keeps it.
    Raises ValueError when the text is not a date and time.
    """
    text = text.strip()
    if text in _NO_TIME:
        return None
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        value = value.replace(tzinfo=tz)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{text!r} is out of range") from None


def _is_number(text: str) -> bool:
    # int() also takes " 7", "+7", "1_0" and non-ASCII digits; none of them is a count
    return text.isascii() and text.isdigit()


@lru_cache(maxsize=4096)
def parse_elapsed(text: str) -> int:
    """Seconds in a Slurm/PBS duration: `[D-]HH:MM:SS`, `MM:SS`, either with `.fraction`.

    Hours may exceed 23 (`96:00:00`, as PBS writes walltime). Fractions of a second are
    dropped: usage is counted in whole seconds, as `ElapsedRaw` does.
    Raises ValueError for anything else.
    """
    rest = text.strip()
    days = 0
    if "-" in rest:
        day_text, rest = rest.split("-", 1)
        if not _is_number(day_text):
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


@lru_cache(maxsize=4096)
def parse_alloc_tres_gpus(text: str) -> int:
    """Scheduler GPUs in a Slurm TRES string such as `billing=19,cpu=1,gres/gpu:a100=1,gres/gpu=1`.

    Slurm lists the typed count (`gres/gpu:a100=1`) next to the total (`gres/gpu=1`) for the
    same devices, so the total alone is the answer; typed entries are summed only when no total
    is listed. `gres/gpumem`, `gres/gpuutil`, `gres/shard` and `gres/mps` are not GPUs.
    Raises ValueError when a GPU count is not a whole number.
    """
    if "gres/gpu" not in text:
        return 0
    total: int | None = None
    typed = 0
    for item in text.split(","):
        name, _, count = item.partition("=")
        if name == "gres/gpu":
            total = _tres_count(name, count)
        elif name.startswith("gres/gpu:"):
            typed += _tres_count(name, count)
    return typed if total is None else total


def _tres_count(name: str, count: str) -> int:
    if not _is_number(count):
        raise ValueError(f"{name}={count} is not a whole number")
    return int(count)


@lru_cache(maxsize=4096)
def _tres_nodes(text: str) -> int:
    for item in text.split(","):
        if item.startswith("node="):
            count = item[5:]
            return int(count) if _is_number(count) else 0
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
    ("AllocTRES",),
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
)
_SACCT_KNOWN = {name.lower(): name for name in _SACCT_READ}

# Slurm prints NO_VAL64 (2**64 - 2) as ConsumedEnergyRaw when a node reported no reading.
_ENERGY_LIMIT = 2**63


def parse_sacct(
    lines: Iterable[str],
    *,
    tz: tzinfo,
    fields: Sequence[str] | None = None,
    on_fields: Callable[[frozenset[str]], None] | None = None,
) -> Iterator[JobRecord | Rejected | StepSkipped]:
    """Read `sacct --parsable2` (or `--parsable`, one trailing `|`) output.

    Without `fields` the first non-empty line is sacct's header and fields may come in any
    order; with `fields` (what was given to `sacct --format`: a list, or the comma-separated
    text, any case, `%width` suffixes allowed) there is no header. Times are local wall-clock
    in `tz`, see `parse_time`. Line numbers count every physical line, header and blank lines
    included.

    Job key: `JobIDRaw@<Submit in UTC, ISO 8601>`, or `JobIDRaw` alone without a Submit.
    JobIDRaw is unique per job but not per run: `sacct -D` lists each requeued run of a job
    under the same JobIDRaw. Slurm resets a job's submit time when it requeues it, so that the
    new run gets its own accounting record; slurmdbd's job table is keyed on
    (id_job, time_submit) (sacct(1) on Submit: "If a job is requeued the submit time is reset";
    Slurm's `batch_requeue_fini` "so that subsequent jobs appear in a separate accounting
    record"). Submit is also the one time that stays put over a run's life: Start moves from
    `Unknown` to a time when a pending job starts, End when it ends. So the key of a run is the
    same in a PENDING, a RUNNING and the final COMPLETED pull, and differs between requeued
    runs. UTC keeps it independent of the zone sacct printed in.

    `on_fields(names)` is called once the fields of the input are known (the header read, or
    `fields` checked), before the first record, with the canonical names of those present.
    """
    if fields is None:
        return _read_sacct(iter(lines), tz, None, on_fields)
    names = _field_list_names(fields)  # a bad list fails now
    return _read_sacct(iter(lines), tz, names, on_fields)


def _read_sacct(
    lines: Iterator[str],
    tz: tzinfo,
    names: list[str] | None,
    on_fields: Callable[[frozenset[str]], None] | None,
) -> Iterator[JobRecord | Rejected | StepSkipped]:
    line_no = 0
    source = "--fields"
    if names is None:
        source = "the header"
        for text in lines:
            line_no += 1
            if text.strip():
                names = _header_names(text.rstrip("\r\n").lstrip("\ufeff").split("|"))
                break
        else:
            return
    layout = _SacctLayout(names)
    if on_fields is not None:
        on_fields(layout.present)
    read_line = _sacct_line_reader(layout, tz)
    width = layout.width
    step_field = layout.step_field
    for text in lines:
        line_no += 1
        # A step line repeats its allocation's usage: recognise it from the id field alone,
        # before paying for a full split, because a dump has about two of them per job.
        if step_field == 0:
            cut = text.find("|")
            job_id = text if cut < 0 else text[:cut]
        else:
            head = text.split("|", step_field + 1)
            job_id = head[step_field] if len(head) > step_field else ""
        if "." in job_id:
            yield StepSkipped(line_no)
            continue
        line = text.rstrip("\r\n")
        parts = line.split("|")
        if len(parts) != width:
            if not line or line.isspace():
                continue
            if len(parts) == width + 1 and not parts[-1]:
                parts.pop()  # --parsable ends every line with a separator
            else:
                yield _rejected(
                    line_no,
                    f"The line has {len(parts)} fields but {source} names {width}.",
                    line,
                )
                continue
        try:
            yield read_line(line_no, parts)
        except _LineError as error:
            # sacct's header line: repeated by concatenated dumps, or present although
            # --fields was given; it describes the data and is not itself a job
            if _is_header(parts[:width], names):
                continue
            yield _rejected(line_no, str(error), line)


def _is_header(parts: list[str], names: list[str]) -> bool:
    return [_canonical_field(part).lower() for part in parts] == [name.lower() for name in names]


def _rejected(line_no: int, reason: str, line: str) -> Rejected:
    return Rejected(line_no, reason, line[:_REJECTED_TEXT_LIMIT])


def _header_names(names: list[str]) -> list[str]:
    if len(names) > 1 and not names[-1]:
        names = names[:-1]  # --parsable header
    names = [name.strip() for name in names]
    _check_names(names, "The sacct header")
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


def _check_names(names: list[str], what: str) -> None:
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


def _utc_converters(
    tz: tzinfo,
) -> tuple[Callable[[str], datetime | None], Callable[[str, datetime], str]]:
    """`utc(text)`, as parse_time(text, tz) but fast, and `utc_iso(text, value)`, the ISO text
    in UTC of what utc(text) returned (`2024-11-13T07:30:40Z`).

    `datetime.replace(tzinfo=...)` and `astimezone` with a ZoneInfo cost about 1.5 us each in
    CPython 3.11, and a job has three times. Within one wall-clock hour the UTC offset is the
    same unless the zone changes offset in that hour, so it is looked up once per hour and
    subtracted from the time parsed as if it were UTC; an hour with a change takes the exact
    path. The same per-hour entry gives the ISO text without formatting a datetime.
    """
    hours: dict[str, tuple[timedelta | None, str | None]] = {}
    from_iso = datetime.fromisoformat

    def learn(text: str) -> tuple[timedelta | None, str | None]:
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
        hours[text[:13]] = entry
        return entry

    def utc(text: str) -> datetime | None:
        if text in _NO_TIME:
            return None
        hour = hours.get(text[:13]) or learn(text)
        if hour[0] is not None:
            try:
                return from_iso(text + "+00:00") - hour[0]
            except (ValueError, OverflowError):
                pass  # an offset of its own, not a time at all, or year 1 / 9999
        return parse_time(text, tz)

    def utc_iso(text: str, value: datetime) -> str:
        hour = hours.get(text[:13])
        if hour is not None and hour[1] is not None and len(text) == 19:
            return hour[1] + text[13:] + "Z"
        return value.isoformat().removesuffix("+00:00") + "Z"

    return utc, utc_iso


def _sacct_line_reader(layout: _SacctLayout, tz: tzinfo) -> Callable[[int, list[str]], JobRecord]:
    getter = layout.getter
    has_end = layout.has_end
    utc, utc_iso = _utc_converters(tz)

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
        ) = getter(parts)
        job_id = job_id or job_id_raw
        job_id_raw = job_id_raw or job_id
        if not job_id_raw:
            raise _LineError("The line has no job id.")
        if not account:
            raise _LineError(f"Job {job_id} has no account.")
        state = normalise_state(state_text)
        if not state:
            raise _LineError(f"Job {job_id} has no state.")

        try:
            submit = utc(submit_text)
            start = utc(start_text)
            end = utc(end_text)
        except ValueError:
            raise _LineError(
                _bad_time_reason(tz, Submit=submit_text, Start=start_text, End=end_text)
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
                raise _LineError(
                    f"ElapsedRaw {elapsed_raw_text!r} is not a whole number of seconds."
                ) from None
            if elapsed < 0:
                raise _LineError(f"Job {job_id} has a negative ElapsedRaw {elapsed_raw_text}.")
        elif elapsed_text:
            try:
                elapsed = parse_elapsed(elapsed_text)
            except ValueError:
                raise _LineError(
                    f"Elapsed {elapsed_text!r} is not a duration ([D-]HH:MM:SS)."
                ) from None
        elif end is not None:
            elapsed = int((end - start).total_seconds())
            if elapsed < 0:
                raise _LineError(f"Job {job_id} ends before it starts.")
        else:
            elapsed = 0  # running, and the input has no elapsed field to say for how long
        if end is None and not running and start is not None:
            end = start + timedelta(seconds=elapsed)  # finished, in an input without End

        try:
            gpus = parse_alloc_tres_gpus(tres_text)
        except ValueError as error:
            raise _LineError(f"AllocTRES {tres_text!r}: {error}.") from None

        if nodes_text:
            if not _is_number(nodes_text):
                raise _LineError(f"NNodes {nodes_text!r} is not a whole number.")
            nodes = int(nodes_text)
        else:
            nodes = _tres_nodes(tres_text)

        energy = None
        if energy_text and _is_number(energy_text):
            energy = int(energy_text)
            if not 0 < energy < _ENERGY_LIMIT:
                energy = None

        job_key = job_id_raw if submit is None else f"{job_id_raw}@{utc_iso(submit_text, submit)}"

        return JobRecord(
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
        )

    return read_line


def _bad_time_reason(tz: tzinfo, **texts: str) -> str:
    for name, text in texts.items():
        try:
            parse_time(text, tz)
        except ValueError:
            return f"{name} {text!r} is not a date and time."
    return "A time is not a date and time."  # unreachable: one of them failed to parse


# ---------------------------------------------------------------------------------------------
# PBS / TORQUE
# ---------------------------------------------------------------------------------------------

# PBS Pro puts every job without `qsub -P` in this project: it names no one.
_PBS_DEFAULT_PROJECT = "_pbs_project_default"


def parse_pbs(lines: Iterable[str], *, tz: tzinfo) -> Iterator[JobRecord | Rejected | StepSkipped]:
    """Read PBS Pro / TORQUE accounting logs (`MM/DD/YYYY HH:MM:SS;E;<jobid>;key=value ...`).

    Only `E` (job end) records carry usage; every other record type (Q, S, D, A, R, ...) is
    yielded as StepSkipped. The record's own timestamp is local time in `tz` and serves as the
    end when the record has no `end=`.

    - account: `account=` (TORQUE `qsub -A`), else `project=` (PBS Pro `qsub -P`, except its
      placeholder `_pbs_project_default`), else the job's Unix `group=`: sites without
      accounts tell projects apart by group, and four of the nine records in the real sample
      have nothing else.
      A group that is no allocation's account ends up unmatched, not lost.
    - GPUs: `Resource_List.ngpus` (PBS Pro, the job's total), else the `gpus=` of a TORQUE
      nodes spec (`Resource_List.nodes=2:ppn=8:gpus=4` is 8 GPUs), else 0.
    - elapsed: `resources_used.walltime`, else end - start.
    - state: `Exit_status` 0 (or absent) is COMPLETED, anything else FAILED.
    - job_id is the sequence number (`6` of `6.edge.ccr.buffalo.edu`), job_key is
      `<job_id>@<start epoch>`: the server suffix is not needed to tell runs apart once the
      start is part of the key, and logs write the same job with and without it.
    """
    for line_no, text in enumerate(lines, start=1):
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
        if kind != "E":
            yield StepSkipped(line_no)
            continue
        try:
            yield _pbs_end_record(line_no, stamp, job_id_raw, message, tz)
        except _LineError as error:
            yield _rejected(line_no, str(error), line)


def _pbs_attributes(message: str) -> dict[str, str]:
    """`key=value` pairs separated by spaces; a value may hold spaces inside double quotes,
    and a word without `=` continues the value before it."""
    attributes: dict[str, str] = {}
    last = None
    quoted = False
    for word in message.split(" "):
        if not word:
            continue
        if quoted or (last is not None and "=" not in word):
            attributes[last] += " " + word
            quoted = quoted and not word.endswith('"')
            continue
        key, _, value = word.partition("=")
        attributes[key] = value
        last = key
        quoted = value.startswith('"') and not (len(value) > 1 and value.endswith('"'))
    return {key: value.strip('"') for key, value in attributes.items()}


def _pbs_end_record(
    line_no: int, stamp: str, job_id_raw: str, message: str, tz: tzinfo
) -> JobRecord:
    logged = _pbs_stamp(stamp, tz)
    attributes = _pbs_attributes(message)
    get = attributes.get
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
                f"resources_used.walltime {walltime!r} is not a duration (HH:MM:SS)."
            ) from None
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
    nodes = int(nodect) if nodect else spec_nodes

    ngpus = get("Resource_List.ngpus")
    if ngpus is None:
        gpus = spec_gpus
    elif _is_number(ngpus):
        gpus = int(ngpus)
    else:
        raise _LineError(f"Resource_List.ngpus {ngpus!r} is not a whole number.")

    exit_status = get("Exit_status")
    if exit_status is None:
        state = "COMPLETED"
    else:
        if not _is_number(exit_status.removeprefix("-")):
            raise _LineError(f"Exit_status {exit_status!r} is not a number.")
        state = "COMPLETED" if int(exit_status) == 0 else "FAILED"

    start_key = get("start") if start is not None else None
    return JobRecord(
        line_no,
        f"{job_id}@{start_key}" if start_key else job_id,
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
    )


def _pbs_stamp(stamp: str, tz: tzinfo) -> datetime:
    try:
        date, time = stamp.split(" ")
        month, day, year = date.split("/")
        hour, minute, second = time.split(":")
        local = datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), tzinfo=tz
        )
    except ValueError:
        raise _LineError(f"Record time {stamp!r} is not 'MM/DD/YYYY HH:MM:SS'.") from None
    return local.astimezone(UTC)


def _pbs_epoch(name: str, text: str | None) -> datetime | None:
    if not text or text == "0":
        return None
    try:
        if not _is_number(text):
            raise ValueError(text)
        return datetime.fromtimestamp(int(text), UTC)
    except (ValueError, OverflowError, OSError):
        raise _LineError(f"{name} {text!r} is not a time in seconds since 1970.") from None


def _torque_nodes(spec: str, name: str) -> tuple[int, int]:
    """(nodes, GPUs) of a TORQUE nodes spec: `N[:ppn=P][:gpus=G][:feature]` joined by `+`;
    a host name instead of N is one node, and gpus= is per node."""
    if not spec:
        return (0, 0)
    nodes = gpus = 0
    for chunk in spec.split("+"):
        count_text, *properties = chunk.split(":")
        count = int(count_text) if _is_number(count_text) else 1
        nodes += count
        for item in properties:
            key, _, value = item.partition("=")
            if key in ("gpus", "gpu") and value:
                if not _is_number(value):
                    raise _LineError(f"{name} {spec!r}: {item} is not a whole number.")
                gpus += count * int(value)
    return (nodes, gpus)

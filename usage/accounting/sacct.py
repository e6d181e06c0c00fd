"""Slurm `sacct --parsable2` / `--parsable` output, a header line or a field list, read line by
line (see usage.sacct_arrow for the same reading in columns)."""

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime, timedelta, tzinfo
from operator import itemgetter
from typing import NamedTuple

from usage.accounting.common import (
    _CACHED_TEXT_LIMIT,
    _DIGITS_LIMIT,
    _ENERGY_LIMIT,
    _ISO_FORMATS,
    _NO_TIME,
    _NODE_CEILING,
    _UNFINISHED_STATES,
    ELAPSED_LIMIT_SECONDS,
    GPU_CEILING,
    LINE_LENGTH_LIMIT,
    AccountingFormatError,
    _in_utc,
    _is_number,
    _iso_rewriter,
    _LineError,
    _shown,
    _time_reader,
    _too_long,
    _whole,
    account_problem,
    normalise_state,
    parse_elapsed,
)
from usage.accounting.gpus import (
    _NO_GPUS,
    _GpuReading,
    _gres_gpus,
    _tres_gpus,
    _tres_nodes,
)
from usage.accounting.records import (
    JobRecord,
    Rejected,
    StepSkipped,
    _new_record,
    _rejected,
)

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

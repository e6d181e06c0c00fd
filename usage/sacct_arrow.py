"""`sacct --parsable2` files read column by column with pyarrow: the usage import's fast path.

`parse_sacct` reads a line at a time in Python, about 4 us a line; a million jobs come with
two or three million step lines, so that is most of an import. Here a file is read in pieces
of a few megabytes, each split into lines and fields, checked and converted by pyarrow's
compiled kernels; values that repeat (accounts, states, AllocTRES strings, wall-clock hours)
are read once per piece by the same Python functions `parse_sacct` uses.

A piece is taken this way only when every line in it is one `parse_sacct` would read the
plain way: the full number of fields, an ISO 8601 time or none, digits where numbers go, an
AllocTRES string that names the GPUs or, on a CPU job, the only GPU field filled, no MIG
slice, no value longer than the database stores, and an hour in which the time zone does
not change its offset. Any other line (a rejected one, a daylight-saving edge, a repeated
header, a MIG job, bytes that are not UTF-8, a carriage return) sends its whole piece through
`parse_sacct`, so both paths read every line alike; `chunk_items` does that.

Pure functions over bytes, no Django: see usage.importer for what is done with the columns.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, tzinfo
from typing import BinaryIO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from usage.accounting.common import (
    _ISO_FORMATS,
    _NO_TIME,
    _UNFINISHED_STATES,
    ELAPSED_LIMIT_SECONDS,
    GPU_CEILING,
    LINE_LENGTH_LIMIT,
    AccountingFormatError,
    _in_utc,
    _time_reader,
    account_problem,
    normalise_state,
)
from usage.accounting.gpus import (
    _tres_gpus,
    mig_profile,
)
from usage.accounting.sacct import (
    _DEFAULT_DELIMITER,
    _check_delimiter,
    _field_list_names,
    _header_delimiter,
    _header_names,
    _read_sacct,
    _SacctLayout,
    _SacctOptions,
)

# A piece of the file read at once (then extended to the end of its last line): big enough
# that per-piece costs vanish, small enough that its columns take a few tens of megabytes
# (the import gathers pieces into batches of its own size).
CHUNK_BYTES = 4 << 20

_NO_TIMES = pa.array(sorted(_NO_TIME), pa.string())
# Seconds from 0001-01-01T00:00 to 1970: added to a time read, they make its hour a count of
# 0 or more, which integer division floors.
_BEFORE_1970 = 62_135_596_800
_YEAR_ONE = datetime(1, 1, 1)
_SPAN_HOURS = 100_000  # eleven years: the most hours `ArrowSacct._offsets` keeps
_MONTH_HOURS = 720
_NEEDED = ("JobIDRaw", "Account", "State", "Start", "End", "ElapsedRaw", "AllocTRES", "NNodes")


class SacctColumns:
    """One piece's job lines as columns (`table`), and what else it held."""

    __slots__ = ("table", "steps", "last_line_no", "item_lines")

    def __init__(
        self, table: pa.Table | None, steps: int, last_line_no: int, item_lines: pa.Array
    ) -> None:
        self.table = table
        self.steps = steps
        self.last_line_no = last_line_no
        self.item_lines = item_lines  # the numbers of its lines that are not blank


class ArrowSacct:
    """A sacct file read in pieces. `usable` is False when its layout or time format is not
    one the fast path reads; the caller then parses it the plain way from the start."""

    def __init__(
        self,
        raw: BinaryIO,
        *,
        tz: tzinfo,
        fields: list[str] | None,
        delimiter: str | None,
        time_format: str | None,
        limits: dict[str, int],
        errors: str = "replace",
    ) -> None:
        self.raw = raw
        self.tz = tz
        self.errors = errors
        self.limits = limits
        self.usable = False
        self.line_no = 0
        self._pieces = 0  # read by `chunks`
        self._counted = (-1, 0)  # the number of the piece `columns` read last, its lines
        if delimiter is not None:
            _check_delimiter(delimiter)
        self.options = _SacctOptions(
            delimiter, time_format, _time_reader(time_format), LINE_LENGTH_LIMIT
        )
        if fields is None:
            self.source = "the header"
            header = None
            while True:
                line = raw.readline()
                if not line:
                    return
                self.line_no += 1
                if b"\r" in line.rstrip(b"\r\n") or len(line) > LINE_LENGTH_LIMIT:
                    return
                text = line.decode("utf-8", errors)
                if text.strip():
                    header = text.rstrip("\r\n").lstrip("\ufeff")
                    break
            self.delimiter = delimiter or _header_delimiter(header)
            try:
                names = _header_names(header.split(self.delimiter), self.delimiter)
            except AccountingFormatError:
                return
        else:
            self.source = "--fields"
            self.delimiter = delimiter or _DEFAULT_DELIMITER
            names = _field_list_names(fields)
        self.names = names
        self.layout = _SacctLayout(names)
        self.position: dict[str, int] = {}
        for index, name in enumerate(names):
            self.position.setdefault(name, index)
        # pyarrow's reader splits at one character; `☃` is three bytes
        self.usable = (
            len(self.delimiter.encode()) == 1
            and self.delimiter not in "\n\r"
            and (time_format is None or time_format in _ISO_FORMATS)
        ) and all(
            name in self.position or (name == "JobIDRaw" and "JobID" in self.position)
            for name in _NEEDED
        )
        self._hours: dict[int, int | None] = {}
        # the first hour, the offsets of it and of those after, as a list and an array
        self._span: tuple[int, list, pa.Array] = (0, [], pa.array([], pa.int64()))
        self._exact: dict[str, int | None] = {}
        self._tres: dict[str, tuple[int, bool] | None] = {}
        self._accounts: dict[str, bool] = {}
        self._states: dict[str, str | None] = {}

    def chunks(self) -> Iterator[tuple[int, bytearray]]:
        """(number of the line before the piece, the piece's bytes), whole lines only.

        Every piece is read into the same buffer, so its pages are not faulted in afresh for
        each piece: a piece is done with (its columns are copies) before the next is read."""
        pa.set_memory_pool(_memory_pool())
        line_no = self.line_no
        # room for the rest of the piece's last line; a longer one grows the buffer
        piece = bytearray(CHUNK_BYTES + LINE_LENGTH_LIMIT)
        while True:
            if len(piece) < CHUNK_BYTES:
                piece.extend(bytes(CHUNK_BYTES - len(piece)))
            del piece[CHUNK_BYTES:]
            with memoryview(piece) as room:
                read = self.raw.readinto(room)
            if not read:
                return
            del piece[read:]
            if not piece.endswith(b"\n"):
                piece += self.raw.readline()
            self._pieces += 1
            yield line_no, piece
            line_no += self.line_count(piece)

    def line_count(self, data: bytes | bytearray) -> int:
        """Lines in a piece, counted as a file opened with newline="" (what the import's
        callers open) counts them: a lone carriage return ends a line too."""
        counted, lines = self._counted
        if counted == self._pieces:
            return lines
        if b"\r" in data:
            return sum(1 for _ in io.StringIO(data.decode("utf-8", self.errors), newline=""))
        return data.count(b"\n") + (not data.endswith(b"\n"))

    def chunk_items(self, data: bytes, line_no: int) -> Iterator:
        """The piece parsed the plain way: what parse_sacct yields for these lines."""
        text = io.StringIO(data.decode("utf-8", self.errors), newline="")
        return _read_sacct(
            text, self.tz, self.names, None, self.options, line_no=line_no, source=self.source
        )

    # -- the columns --------------------------------------------------------------------------

    def columns(self, data: bytes, line_no: int) -> SacctColumns | None:
        """The piece's job lines as columns, or None when one of its lines needs parse_sacct."""
        if not self.usable or b"\r" in data or b"\x00" in data:
            return None
        refused = []

        def refuse(row) -> str:
            refused.append(row)
            return "skip"

        width = self.layout.width
        try:
            table = pa_csv.read_csv(
                pa.py_buffer(data),
                read_options=pa_csv.ReadOptions(
                    autogenerate_column_names=True,
                    use_threads=False,
                    block_size=len(data) + 1,
                ),
                parse_options=pa_csv.ParseOptions(
                    delimiter=self.delimiter,
                    quote_char=False,
                    escape_char=False,
                    double_quote=False,
                    newlines_in_values=False,
                    ignore_empty_lines=False,
                    invalid_row_handler=refuse,
                ),
                convert_options=pa_csv.ConvertOptions(
                    column_types={f"f{index}": pa.string() for index in range(width + 1)},
                    strings_can_be_null=False,
                    quoted_strings_can_be_null=False,
                    # bytes that are all ASCII are UTF-8: checking them again costs a sixth
                    # of the reading
                    check_utf8=not data.isascii(),
                ),
            )
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return None  # not UTF-8, or no line at all: parse_sacct reads it
        # a blank line or one with another number of fields is refused by the reader
        if refused:
            return None
        if table.num_columns == width + 1:  # --parsable: every line ends with the delimiter
            if pc.any(pc.not_equal(table.column(width), "")).as_py():
                return None
        elif table.num_columns != width:
            return None
        line_bytes = _line_bytes(table)
        # Every line is a row when the rows hold every byte: their fields, the delimiters
        # between them and a line feed after each (the last may have none). Counting the line
        # feeds instead costs a third of a second per million jobs.
        lines = table.num_rows
        held = (pc.sum(line_bytes).as_py() or 0) + lines * table.num_columns
        if held - (not data.endswith(b"\n")) != len(data):
            return None
        self._counted = (self._pieces, lines)  # the piece's lines, counted once
        # bytes are at least as many as characters: a line that might be too long is left to
        # parse_sacct, which counts
        if (
            len(data) > LINE_LENGTH_LIMIT
            and pc.any(pc.greater(line_bytes, LINE_LENGTH_LIMIT - width)).as_py()
        ):
            return None
        last_line_no = line_no + lines
        numbers = _counted_from(line_no + 1, lines)
        is_step = pc.match_substring(table.column(self.layout.step_field), ".")
        steps = pc.sum(is_step).as_py() or 0
        if steps:
            jobs = pc.invert(is_step)
            table, job_lines = table.filter(jobs), numbers.filter(jobs)
        else:
            job_lines = numbers
        if table.num_rows == 0:
            return SacctColumns(None, steps, last_line_no, numbers)
        columns = self._job_columns(table, job_lines)
        if columns is None:
            return None
        return SacctColumns(columns, steps, last_line_no, numbers)

    def _field(self, table: pa.Table, name: str) -> pa.Array:
        index = self.position.get(name)
        if index is None:
            return pa.nulls(table.num_rows, pa.string()).fill_null("")
        return table.column(index).combine_chunks()

    def _job_columns(self, parts: pa.Table, numbers: pa.Array) -> pa.Table | None:
        field = self._field
        limits = self.limits
        ok: list[pa.Array] = []

        raw = field(parts, "JobIDRaw")
        shown = field(parts, "JobID")
        raw = pc.if_else(pc.equal(raw, ""), shown, raw)
        job_id = pc.if_else(pc.equal(shown, ""), raw, shown)
        ok.append(pc.not_equal(raw, ""))
        ok.append(pc.less_equal(pc.utf8_length(job_id), limits["job_id"]))

        account = field(parts, "Account")
        accounts_ok = _looked_up(account, self._accounts, self._account_ok, pa.bool_())
        ok.append(accounts_ok.fill_null(False))

        state_text = field(parts, "State")
        state = _looked_up(state_text, self._states, _state, pa.string())
        ok.append(pc.is_valid(state))

        submit, submit_read = self._utc_seconds(field(parts, "Submit"))
        start, start_read = self._utc_seconds(field(parts, "Start"))
        end, end_read = self._utc_seconds(field(parts, "End"))
        ok += [submit_read, start_read, end_read]
        running = pc.or_(pc.is_in(state, pa.array(sorted(_UNFINISHED_STATES))), pc.is_null(end))
        end = pc.if_else(running, pa.scalar(None, pa.int64()), end)

        elapsed_text = field(parts, "ElapsedRaw")
        elapsed_ok = _digits(elapsed_text, 12)
        elapsed = pc.cast(pc.if_else(elapsed_ok, elapsed_text, "0"), pa.int64())
        in_range = pc.and_(elapsed_ok, pc.less_equal(elapsed, ELAPSED_LIMIT_SECONDS))
        ok.append(pc.or_(pc.is_null(start), in_range))
        elapsed = pc.if_else(pc.is_null(start), 0, elapsed)

        tres = field(parts, "AllocTRES")
        reading = _looked_up(
            tres, self._tres, self._gpus, pa.struct([("gpus", pa.int64()), ("cpu", pa.bool_())])
        )
        ok.append(pc.is_valid(reading))
        gpus = pc.struct_field(reading, "gpus").fill_null(0)
        cpu = pc.struct_field(reading, "cpu").fill_null(False)
        others = [field(parts, name) for name in ("AllocGRES", "ReqTRES", "ReqGRES")]
        others_empty = pc.and_(
            pc.and_(pc.equal(others[0], ""), pc.equal(others[1], "")), pc.equal(others[2], "")
        )
        ok.append(pc.or_(pc.invert(cpu), others_empty))

        nodes_text = field(parts, "NNodes")
        nodes_ok = _digits(nodes_text, 6)
        ok.append(nodes_ok)
        nodes = pc.cast(pc.if_else(nodes_ok, nodes_text, "0"), pa.int64())

        energy_text = field(parts, "ConsumedEnergyRaw")
        energy_digits = pc.binary_length(energy_text)
        energy_digits = pc.if_else(pc.ascii_is_decimal(energy_text), energy_digits, 0)
        ok.append(pc.not_equal(energy_digits, 19))
        energy_ok = pc.and_(pc.greater(energy_digits, 0), pc.less_equal(energy_digits, 18))
        energy = pc.cast(pc.if_else(energy_ok, energy_text, "0"), pa.int64())
        energy = pc.if_else(pc.greater(energy, 0), energy, pa.scalar(None, pa.int64()))

        user = field(parts, "User")
        partition = field(parts, "Partition")
        job_name = field(parts, "JobName")
        for values, limit in (
            (account, limits["account"]),
            (user, limits["user"]),
            (partition, limits["partition_name"]),
            (job_name, limits["job_name"]),
            (state, limits["state"]),
        ):
            ok.append(pc.less_equal(pc.utf8_length(values), limit).fill_null(True))

        # `<JobIDRaw>@<submit in UTC>`, `123@2026-01-05T08:00:00Z`; the JobIDRaw alone without one
        utc = pc.cast(pc.cast(submit, pa.timestamp("s")), pa.string())  # `2026-01-05 08:00:00`
        job_key = pc.if_else(
            pc.is_null(submit),
            raw,
            pc.binary_join_element_wise(
                raw, "@", pc.replace_substring(utc, " ", "T"), "Z", pa.scalar("", pa.string())
            ),
        )
        ok.append(pc.less_equal(pc.utf8_length(job_key), limits["job_key"]))

        good = ok[0]
        for each in ok[1:]:
            good = pc.and_(good, each)
        if not pc.all(good.fill_null(False)).as_py():
            return None
        return pa.table(
            {
                "job_key": job_key,
                "account": account,
                "job_id": job_id,
                "user": user,
                "partition_name": partition,
                "job_name": job_name,
                "state": state,
                "running": running,
                "submit": submit,
                "start": start,
                "end": end,
                "elapsed_seconds": elapsed,
                "gpus": gpus,
                "nodes": nodes,
                "energy_joules": energy,
                "line_no": numbers,
            }
        )

    def _utc_seconds(self, text: pa.Array) -> tuple[pa.Array, pa.Array]:
        """(seconds since 1970 in UTC, or null for no time; whether the fast path read it)."""
        none = pc.is_in(text, _NO_TIMES)
        spaced = pc.replace_substring(text, "T", " ", max_replacements=1)
        naive = pc.strptime(spaced, format="%Y-%m-%d %H:%M:%S", unit="s", error_is_null=True)
        # strptime also takes what fromisoformat refuses (one-digit fields, 30 February,
        # second 60) and rolls it over; a time is read here only if it reads back as written
        read = pc.equal(pc.cast(naive, pa.string()), spaced).fill_null(False)
        naive = pc.cast(naive, pa.int64())
        hour = pc.divide(pc.add(naive, _BEFORE_1970), 3600)
        offset = self._offsets(hour)
        seconds = pc.subtract(naive, offset)
        # an hour in which the zone changes its offset (or one of a zone off by a fraction of
        # an hour, or at the ends of the calendar): each distinct time of it converted as
        # parse_sacct converts it
        exact = pc.and_(read, pc.is_null(offset)).fill_null(False)
        if pc.any(exact).as_py():
            times = _looked_up(text.filter(exact), self._exact, self._exact_time, pa.int64())
            seconds = pc.replace_with_mask(seconds, exact, times)
        good = pc.or_(none, pc.and_(read, pc.is_valid(seconds)))
        seconds = pc.if_else(none, pa.scalar(None, pa.int64()), seconds)
        return seconds, good.fill_null(False)

    def _offsets(self, hours: pa.Array) -> pa.Array:
        """`_hour` of each of `hours`. The offsets of every hour from the earliest to the latest
        met so far are kept as one array, which each piece's hours index: a piece spans a few
        days of them, a year has 8,760. The array grows by a month at a time; a piece that
        would stretch it past `_SPAN_HOURS` looks its hours up one by one instead."""
        span = pc.min_max(hours)
        low, high = span["min"].as_py(), span["max"].as_py()
        if low is None:
            return pa.nulls(len(hours), pa.int64())
        first, offsets, known = self._span
        end = first + len(offsets)  # the hour after the last known
        if not offsets:
            first = end = low
        if max(high + 1, end) - min(low, first) > _SPAN_HOURS:
            return _looked_up(hours, self._hours, self._hour, pa.int64())
        if low < first or high >= end:
            low = min(low, first)
            high = max(high, end - 1)
            if low < first:
                low = max(low - _MONTH_HOURS, high + 1 - _SPAN_HOURS)
            if high >= end:
                high = min(high + _MONTH_HOURS, low - 1 + _SPAN_HOURS)
            offsets = [
                *(self._hour(hour) for hour in range(low, first)),
                *offsets,
                *(self._hour(hour) for hour in range(end, high + 1)),
            ]
            first, known = low, pa.array(offsets, pa.int64())
            self._span = first, offsets, known
        return pc.take(known, pc.subtract(hours, first))

    def _exact_time(self, text: str) -> int | None:
        try:
            return int(_in_utc(datetime.fromisoformat(text), self.tz, text).timestamp())
        except ValueError:
            return None

    def _hour(self, hour: int) -> int | None:
        """The zone's UTC offset in seconds all through the wall-clock hour that starts `hour`
        hours after 0001-01-01T00:00; None when the offset changes in the hour or is not
        whole hours (parse_sacct converts each time of such an hour exactly), and for no time."""
        if hour is None:
            return None
        try:
            start = _YEAR_ONE + timedelta(hours=hour)
        except OverflowError:
            return None
        if not datetime.min.year < start.year < 9999:
            return None
        last = start + timedelta(minutes=59, seconds=59)
        tz = self.tz
        offsets = {tz.utcoffset(at.replace(fold=fold)) for at in (start, last) for fold in (0, 1)}
        if len(offsets) != 1 or None in offsets:
            return None
        offset = offsets.pop()
        if offset % timedelta(hours=1):
            return None
        return int(offset.total_seconds())

    def _account_ok(self, account: str) -> bool:
        return account_problem(account) is None

    @staticmethod
    def _gpus(tres: str) -> dict | None:
        """{gpus, cpu} for an AllocTRES string read as parse_sacct reads it, None when the
        line needs parse_sacct (a MIG slice, too many GPUs, a count that is no number)."""
        if not tres or len(tres) > 512:
            return None
        try:
            reading = _tres_gpus(tres)
        except ValueError:
            return None
        if reading is None:
            return {"gpus": 0, "cpu": True}
        whole, types, units = reading
        if units > GPU_CEILING or any(mig_profile(name) is not None for name, _ in types):
            return None
        return {"gpus": whole, "cpu": False}


def _memory_pool() -> pa.MemoryPool:
    """Arrow's memory for the columns, in the import's parsing process: jemalloc. The C
    library's allocator hands a batch's freed pages back and faults them in again (about 0.4 s
    more of the parsing process's time per million jobs); Arrow's jemalloc hands them back at
    once as well unless told to keep them, which a forked parsing process does (see
    usage.importer.batches._ARROW_MALLOC_CONF); mimalloc, Arrow's default, keeps them but
    takes a sixth more peak memory. The C library's where Arrow is built without jemalloc."""
    try:
        return pa.jemalloc_memory_pool()
    except NotImplementedError:
        return pa.system_memory_pool()


def _line_bytes(table: pa.Table) -> pa.Array:
    """Bytes of each line's fields, delimiters left out: no fewer characters than that."""
    total = pc.binary_length(table.column(0))
    for column in table.columns[1:]:
        total = pc.add(total, pc.binary_length(column))
    return total


def _digits(text: pa.Array, most: int) -> pa.Array:
    """Whether each value is 1 to `most` ASCII digits (a regular expression takes longer)."""
    return pc.and_(pc.ascii_is_decimal(text), pc.less_equal(pc.binary_length(text), most))


_COUNTING = pa.array([], pa.int64())


def _counted_from(first: int, count: int) -> pa.Array:
    """first, first + 1, ... (`count` numbers): a slice of one array kept for every piece,
    which costs a fraction of making each piece's from a range."""
    global _COUNTING
    if len(_COUNTING) < count:
        _COUNTING = pa.array(range(max(count, 2 * len(_COUNTING))), pa.int64())
    return pc.add(_COUNTING.slice(0, count), first)


def _state(text: str) -> str | None:
    return normalise_state(text) or None if len(text) <= 64 else None


def _looked_up(values: pa.Array, cache: dict, read: Callable, kind: pa.DataType) -> pa.Array:
    """`read(value)` for each of `values`, called once per distinct value (and remembered in
    `cache` while it stays small)."""
    distinct = pc.unique(values)
    results = []
    for value in distinct.to_pylist():
        if value in cache:
            results.append(cache[value])
            continue
        result = read(value)
        if len(cache) < 100_000:
            cache[value] = result
        results.append(result)
    return pc.take(pa.array(results, kind), pc.index_in(values, distinct))

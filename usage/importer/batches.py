"""The input read into batches of rows: line by line, or in columns (usage.sacct_arrow), in
this process or in a forked parsing process while this one writes."""

from __future__ import annotations

import bisect
import codecs
import contextlib
import ctypes
import importlib.util
import io
import logging
import multiprocessing
import os
import pickle
import signal
import sys
from collections.abc import Callable, Generator, Iterable, Iterator
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.db import (
    connections,
)
from django.utils import timezone

from allocations.names import account_key
from systems.models import Cluster
from usage.accounting import (
    JobRecord,
    Rejected,
    parse_pbs,
    parse_sacct,
)
from usage.importer.errors import (
    UsageImportError,
)
from usage.importer.rows import (
    _KEY_LIMIT,
    DATA_FIELDS,
    KEPT_WHEN_ABSENT,
    NEW_RUN_COLUMNS,
    Row,
    _limits,
    _Places,
    _row,
)
from usage.models import UsageImport

logger = logging.getLogger(__name__)


INPUT_FORMATS = ("sacct", "pbs")


def time_zone_for(cluster: Cluster, name: str | None = None) -> tzinfo:
    """The zone sacct printed its times in: `name` if given, else the cluster's site zone."""
    name = name or cluster.site.time_zone
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise UsageImportError(f"'{name}' is not a known IANA time zone.") from exc


def _parsed(
    lines: Iterable[str],
    input_format: str,
    tz: tzinfo,
    fields: list[str] | str | None,
    kept: set[str],
    delimiter: str | None = None,
    time_format: str | None = None,
) -> Iterator:
    """The parsed items; `kept` receives the DATA_FIELDS the input cannot speak for."""

    def absent(present: frozenset[str]) -> None:
        kept.update(field for name, field in KEPT_WHEN_ABSENT.items() if name not in present)

    if input_format == "sacct":
        items = parse_sacct(
            lines,
            tz=tz,
            fields=fields,
            on_fields=absent,
            delimiter=delimiter,
            time_format=time_format,
        )
    elif input_format == "pbs":
        if fields:
            raise UsageImportError("--fields applies to sacct input only.")
        if delimiter is not None or time_format is not None:
            raise UsageImportError("--delimiter and --time-format apply to sacct input only.")
        items = parse_pbs(lines, tz=tz)
    else:
        raise UsageImportError(
            f"Unknown input format '{input_format}'; use one of {', '.join(INPUT_FORMATS)}."
        )
    return iter(items)


class _Batch:
    """What one write transaction gets: the rows (as the writer's `encode` made them), and the
    rejected lines (`Rejected`), progress marks (line numbers) and step lines met since the
    previous batch, in input order."""

    __slots__ = ("notes", "steps", "data", "size")

    def __init__(self, notes: list, steps: int, data, size: int) -> None:
        self.notes = notes
        self.steps = steps
        self.data = data
        self.size = size


def _batches(
    items: Iterator,
    *,
    places: _Places,
    batch_size: int,
    progress_every: int,
    encode: Callable[[list[Row]], object],
    final: bool = True,
    next_progress: int | None = None,
) -> Generator[_Batch, None, int | None]:
    """Group parsed items into batches of at most `batch_size` distinct runs; the last batch
    (possibly empty) always comes, so the final counts are saved (with `final`; else only
    when it holds something). `next_progress`: the first line to report progress at, if not
    `progress_every`; returns the next one."""
    notes: list = []
    steps = 0
    batch: dict[str, Row] = {}
    if next_progress is None:
        next_progress = progress_every or None
    for item in items:
        if next_progress is not None and item.line_no >= next_progress:
            notes.append(item.line_no)
            next_progress = (item.line_no // progress_every + 1) * progress_every
        kind = type(item)
        if kind is JobRecord:
            row = _row(item, places)
            if type(row) is str:
                notes.append(Rejected(item.line_no, row, ""))
                continue
            if row[0] in batch:
                # A run twice in one input (concatenated pulls): write what came first, so
                # the second is judged against it exactly as if it came in a later import.
                yield _Batch(notes, steps, encode(list(batch.values())), len(batch))
                notes, steps, batch = [], 0, {}
            batch[row[0]] = row
            if len(batch) >= batch_size:
                yield _Batch(notes, steps, encode(list(batch.values())), len(batch))
                notes, steps, batch = [], 0, {}
        elif kind is Rejected:
            notes.append(item)
        else:
            steps += 1
    if final or batch or notes or steps:
        yield _Batch(notes, steps, encode(list(batch.values())), len(batch))
    return next_progress


def _raw_file(lines: object):
    """The binary file under `lines`, when it is a seekable UTF-8 text file not read yet."""
    if not isinstance(lines, io.TextIOWrapper) or not _is_open_file(lines):
        return None
    try:
        stdin = sys.stdin.fileno()
    except (AttributeError, OSError, ValueError):
        stdin = None  # none, or a stand-in without a descriptor (a test runner's)
    try:
        # Standard input is read as a stream: the parsing process (multiprocessing) closes
        # sys.stdin, which a stand-in for it may own.
        if lines.fileno() == stdin:
            return None
        if not lines.seekable() or lines.tell() != 0:
            return None
        if codecs.lookup(lines.encoding).name != "utf-8":
            return None
    except (OSError, ValueError, LookupError, io.UnsupportedOperation):
        return None
    return lines.buffer


def _has_pyarrow() -> bool:
    # found, not imported: the parsing process imports it, the importer needs none of it
    return importlib.util.find_spec("pyarrow") is not None


class _ArrowRows:
    """Batch rows written from columns (`_arrow_copy`), in _BATCH_COLUMNS order, as `data`:
    COPY's text format, or its CSV format (`csv`) when a value holds a character the text
    format escapes; their `lowest` and `highest` run key (None when not known: the server
    finds them); `new`: the same rows as the usage table stores new runs (`_NewRuns`), when
    asked for. The bytes are held, not subclassed: a subclass of bytes is copied twice more
    on its way through the pipe from the parsing process."""

    __slots__ = ("data", "csv", "lowest", "highest", "new")

    def __init__(self, data: bytes, *, csv: bool = False) -> None:
        self.data = data
        self.csv = csv
        self.lowest: str | None = None
        self.highest: str | None = None
        self.new: _NewRuns | None = None


class _NewRuns:
    """A batch's rows as the usage table stores them (NEW_RUN_COLUMNS, `_arrow_copy`), what
    they count as if every one is a new run, and what they add to the monthly sums (`monthly`:
    the arguments of the database's usage_monthly_usage_add): what the writer copies straight
    into the table when no stored run lies in the batch's key range."""

    __slots__ = ("rows", "counts", "monthly")

    def __init__(self, rows: _ArrowRows, monthly: tuple[list, ...], **counts: int) -> None:
        self.rows = rows
        self.monthly = monthly
        self.counts = counts  # by _Counts' names


class NewRunsWanted:
    """Whether batches should come as new runs too (`_ArrowRows.new`). The writer says so after
    each batch: yes when its key range held no stored run, so an import of new jobs gets them
    and a re-import soon stops paying for them. In memory shared with a forked parsing
    process, which reads it for every batch it makes."""

    def __init__(self) -> None:
        self._wanted = multiprocessing.RawValue(ctypes.c_bool, True)

    def __bool__(self) -> bool:
        return self._wanted.value

    def set(self, wanted: bool) -> None:
        self._wanted.value = wanted


def _arrow_batches(
    lines,
    raw,
    *,
    tz: tzinfo,
    fields: list[str] | None,
    delimiter: str | None,
    time_format: str | None,
    places: _Places,
    batch_size: int,
    progress_every: int,
    encode: Callable[[list[Row]], object],
    run: UsageImport | None = None,
    wanted: NewRunsWanted | None = None,
) -> Iterator[_Batch]:
    """`_batches` for a sacct file read again from its start in columns (usage.sacct_arrow):
    a piece whose every line the columns read is one batch; any other piece goes through
    `_batches` line by line, and so does a whole file whose layout the columns do not read.
    With `run`, batches come as the new runs of that import run too while `wanted` says so."""
    from usage.sacct_arrow import ArrowSacct

    lines.seek(0)
    reader = ArrowSacct(
        raw,
        tz=tz,
        fields=fields,
        delimiter=delimiter,
        time_format=time_format,
        limits={**_limits, "job_key": _KEY_LIMIT},
        errors=lines.errors or "strict",
    )
    if not reader.usable:
        lines.seek(0)
        items = _parsed(lines, "sacct", tz, fields, set(), delimiter, time_format)
        yield from _batches(
            items,
            places=places,
            batch_size=batch_size,
            progress_every=progress_every,
            encode=encode,
        )
        return
    import pyarrow as pa
    import pyarrow.compute as pc

    next_progress = progress_every or None
    # Pieces read in columns wait here until they make a batch of `batch_size` runs.
    tables: list = []
    notes: list = []
    steps = size = 0
    first = True
    backslash = False  # whether the pieces of the waiting tables hold one
    lowest = highest = ""  # their lowest and highest run key

    def waiting() -> _Batch:
        nonlocal tables, notes, steps, size, backslash
        if tables:
            table = pa.concat_tables(tables)
            data = _arrow_copy(table, backslash=backslash)
            data.lowest, data.highest = lowest, highest
            if run is not None and (wanted is None or wanted):
                data.new = _new_runs(table, run, backslash=backslash)
        else:
            data = encode([])
        batch = _Batch(notes, steps, data, size)
        tables, notes, steps, size, backslash = [], [], 0, 0, False
        return batch

    for line_no, data in reader.chunks():
        columns = reader.columns(data, line_no)
        rows = span = None
        if columns is not None and columns.table is not None:
            # a run twice in the piece (no span) goes line by line: the second is judged
            # against the first
            span = _key_span(columns.table["job_key"])
            if span is not None:
                rows = _arrow_rows(columns.table, places)
        if columns is None or (columns.table is not None and rows is None):
            if tables or notes or steps:
                yield waiting()
            next_progress = yield from _batches(
                reader.chunk_items(data, line_no),
                places=places,
                batch_size=batch_size,
                progress_every=progress_every,
                encode=encode,
                final=False,
                next_progress=next_progress,
            )
            continue
        if rows is not None and tables:
            # a run that comes again is judged against what came first: a batch of its own;
            # a piece whose keys lie outside the waiting ones' span holds none of theirs
            again = span[0] <= highest and span[1] >= lowest
            if again:
                keys = pa.concat_arrays([table["job_key"].combine_chunks() for table in tables])
                again = pc.any(pc.is_in(rows["job_key"], value_set=keys)).as_py()
            if again or size + rows.num_rows > batch_size:
                yield waiting()
        steps += columns.steps
        if next_progress is not None and columns.last_line_no >= next_progress:
            # the first line at or past each mark, as `_batches` reports them
            numbers = columns.item_lines.to_pylist()
            at = bisect.bisect_left(numbers, next_progress)
            while at < len(numbers):
                notes.append(numbers[at])
                next_progress = (numbers[at] // progress_every + 1) * progress_every
                at = bisect.bisect_left(numbers, next_progress, at)
        if rows is not None:
            lowest, highest = (min(lowest, span[0]), max(highest, span[1])) if tables else span
            tables.append(rows)
            size += rows.num_rows
            backslash = backslash or b"\\" in data
            if first:  # the writer starts on the first piece while the next ones are read
                first = False
                yield waiting()
    if tables or notes or steps:
        yield waiting()
    yield _Batch([], 0, encode([]), 0)


def _key_span(keys) -> tuple[str, str] | None:
    """The lowest and highest of a piece's run keys, in byte order as COLLATE "C" compares,
    or None when a key comes twice. Keys in ascending order (sacct's, within a file) are
    distinct and span from the first to the last, which costs less than hashing them."""
    import pyarrow.compute as pc

    if len(keys) == 1 or pc.all(pc.less(keys[:-1], keys[1:])).as_py():
        return keys[0].as_py(), keys[-1].as_py()
    if pc.count_distinct(keys).as_py() != len(keys):
        return None
    span = pc.min_max(keys)
    return span["min"].as_py(), span["max"].as_py()


def _arrow_rows(table, places: _Places):
    """`_row` over a table of job lines (usage.sacct_arrow) whose run keys are distinct: the
    batch columns, or None when a line needs `_row` itself (a rejection: more GPUs than its
    partition has)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from usage.sacct_arrow import _looked_up

    size = table.num_rows
    epoch = datetime(1970, 1, 1, tzinfo=UTC)

    def owner_of(account: str) -> dict:
        key = places.keys.get(account)
        if key is None:
            key = account_key(account)
        owner = places.owners.get(key)
        if owner is None:
            return {"key": key, "id": None, "from": None, "until": None}
        since = until = None
        if owner.usage_from is not None:
            since = int((owner.usage_from - epoch).total_seconds())
            until = int((owner.usage_until - epoch).total_seconds())
        return {"key": key, "id": owner.id, "from": since, "until": until}

    kind = pa.struct(
        [
            ("key", pa.large_string()),
            ("id", pa.int64()),
            ("from", pa.int64()),
            ("until", pa.int64()),
        ]
    )
    owners = _looked_up(table["account"], {}, owner_of, kind)
    partitions = _looked_up(
        table["partition_name"],
        {},
        lambda name: {
            "size": places.partitions[name][0] if name in places.partitions else None,
            "id": places.partition_ids.get(name),
        },
        pa.struct([("size", pa.int64()), ("id", pa.int64())]),
    )
    gpus = table["gpus"]
    if pc.any(pc.greater(gpus, pc.struct_field(partitions, "size"))).as_py():
        return None
    owner_id = pc.struct_field(owners, "id")
    since = pc.struct_field(owners, "from")
    until = pc.struct_field(owners, "until")
    when = pc.coalesce(table["start"], table["submit"])
    inside = pc.or_kleene(
        pc.or_kleene(pc.is_null(when), pc.is_null(since)),
        pc.and_kleene(pc.greater_equal(when, since), pc.less(when, until)),
    ).fill_null(True)
    has_owner = pc.is_valid(owner_id)
    false = pa.nulls(size, pa.bool_()).fill_null(False)
    return pa.table(
        {
            "job_key": table["job_key"],
            "account": table["account"],
            "account_key": pc.struct_field(owners, "key"),
            "job_id": table["job_id"],
            "user": table["user"],
            "partition_name": table["partition_name"],
            "job_name": table["job_name"],
            "state": table["state"],
            "running": table["running"],
            "submit": table["submit"],
            "start": table["start"],
            "end": table["end"],
            "elapsed_seconds": table["elapsed_seconds"],
            "gpus": gpus,
            "gpu_slices": pa.nulls(size, pa.int64()).fill_null(0),
            "nodes": table["nodes"],
            "gpu_seconds": pc.multiply(gpus, table["elapsed_seconds"]),
            "energy_joules": table["energy_joules"],
            "allocation_id": pc.if_else(inside, owner_id, pa.scalar(None, pa.int64())),
            "partition_id": pc.struct_field(partitions, "id"),
            "outside_window": pc.and_(has_owner, pc.invert(inside)),
            "no_gpu_field": false,
            "line_no": table["line_no"],
        }
    )


def _arrow_copy(table, *, backslash: bool = True) -> _ArrowRows:
    """The table as COPY data: its text format (tab-separated, `\\N` for NULL), which the
    server reads in about two thirds of the time of its CSV format, unless a text value holds
    a backslash, tab, line break or double quote; then CSV, which quotes such a value.
    `backslash`: whether a text value may hold a backslash; False when the bytes the table
    was read from hold none, which spares looking through its text columns."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pa_csv

    sink = pa.BufferOutputStream()
    if not backslash or not any(
        pc.any(pc.match_substring(column, "\\")).as_py()
        for column in table.columns
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type)
    ):
        options = pa_csv.WriteOptions(
            include_header=False, delimiter="\t", null_string="\\N", quoting_style="none"
        )
        try:  # refused for a tab, line break or double quote in a value
            pa_csv.write_csv(table, sink, options)
        except pa.ArrowInvalid:
            sink = pa.BufferOutputStream()
        else:
            return _ArrowRows(sink.getvalue().to_pybytes())
    pa_csv.write_csv(table, sink, pa_csv.WriteOptions(include_header=False))
    return _ArrowRows(sink.getvalue().to_pybytes(), csv=True)


def _new_runs(table, run: UsageImport, *, backslash: bool) -> _NewRuns:
    """`_arrow_rows`' table as new runs of `run`, stamped with the present time (`backslash`:
    as for `_arrow_copy`)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    size = table.num_rows

    def every(value, kind):
        return pa.nulls(size, kind).fill_null(pa.scalar(value, kind))

    columns = {
        name: table[name] for name in ("job_key", *DATA_FIELDS, "allocation_id", "partition_id")
    }
    utc = pa.scalar("+00", pa.string())
    for name in ("submit", "start", "end"):
        # as text with its offset: pyarrow writes a time with a zone many times slower
        text = pc.cast(pc.cast(columns[name], pa.timestamp("s")), pa.string())
        columns[name] = pc.binary_join_element_wise(text, utc, pa.scalar("", pa.string()))
    columns["cluster_id"] = every(run.cluster_id, pa.int64())
    columns["import_run_id"] = every(run.pk, pa.int64())
    columns["updated_at"] = every(timezone.now().isoformat(), pa.string())
    imported = pc.count(table["allocation_id"]).as_py()
    outside = pc.sum(table["outside_window"]).as_py() or 0
    return _NewRuns(
        _arrow_copy(
            pa.table({name: columns[name] for name in NEW_RUN_COLUMNS}), backslash=backslash
        ),
        _monthly_sums(table),
        imported=imported,
        outside_window=outside,
        unmatched=size - imported - outside,
        no_gpu_field=pc.sum(table["no_gpu_field"]).as_py() or 0,
    )


def _monthly_sums(table) -> tuple[list, ...]:
    """What `_arrow_rows`' table adds to the monthly sums (usage.models.MonthlyUsage), by the
    rule of the database's usage_monthly_usage_add_records: each run with an allocation and a
    start counts in the UTC month it started in, its GPU-seconds as unmetered when it has no
    measured energy, what its GPUs held from start to end when it ended. Grouped by
    allocation, partition and month, a list per column."""
    import pyarrow as pa
    import pyarrow.compute as pc

    start = pc.cast(table["start"], pa.timestamp("s"))
    end = pc.cast(table["end"], pa.timestamp("s"))
    energy = table["energy_joules"]
    gpu_seconds = table["gpu_seconds"]
    gpus = pc.cast(table["gpus"], pa.int64())
    seconds = pc.subtract(pc.cast(end, pa.int64()), pc.cast(start, pa.int64()))
    held = pc.multiply(gpus, pc.max_element_wise(seconds, 0))
    counted = pa.table(
        {
            "allocation": table["allocation_id"],
            "partition": table["partition_id"],
            "month": pc.cast(pc.floor_temporal(start, unit="month"), pa.date32()),
            "record": pa.nulls(table.num_rows, pa.int64()).fill_null(1),
            "gpu_seconds": gpu_seconds,
            "energy": energy.fill_null(0),
            "unmetered": pc.if_else(pc.is_null(energy), gpu_seconds, 0),
            "held": held.fill_null(0),
            "gpus": gpus,
        }
    ).filter(pc.and_(pc.is_valid(table["allocation_id"]), pc.is_valid(start)))
    sums = counted.group_by(["allocation", "partition", "month"], use_threads=False).aggregate(
        [(name, "sum") for name in ("record", "gpu_seconds", "energy", "unmetered", "held")]
        + [("gpus", "max")]
    )
    return tuple(
        sums[name].to_pylist()
        for name in (
            "allocation",
            "partition",
            "month",
            "record_sum",
            "gpu_seconds_sum",
            "energy_sum",
            "unmetered_sum",
            "held_sum",
            "gpus_max",
        )
    )


def _is_open_file(lines: object) -> bool:
    if not isinstance(lines, io.IOBase):
        return False
    try:
        lines.fileno()
    except (OSError, ValueError):
        return False
    return True


def _can_fork() -> bool:
    # A daemonic process (a multiprocessing pool worker) may not have children.
    return (
        "fork" in multiprocessing.get_all_start_methods()
        and not multiprocessing.current_process().daemon
    )


class _ParseFailed:
    """An exception raised while parsing in the child, carried back to the parent."""

    def __init__(self, exc: BaseException) -> None:
        try:
            pickle.dumps(exc)
        except Exception:
            exc = RuntimeError(f"{type(exc).__name__}: {exc}")
        self.exc = exc


_PR_SET_PDEATHSIG = 1  # prctl(2), <linux/prctl.h>


def _die_with(parent: int) -> None:
    """Make this (forked) process end with `parent`, however the parent ends.

    Linux delivers SIGKILL to it when the parent dies (prctl PR_SET_PDEATHSIG); a parent that
    died before that was set has already left it to another parent, which getppid() shows.
    Elsewhere `_produce` looks at getppid() between batches."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            logger.debug("prctl(PR_SET_PDEATHSIG) is not available")
    if os.getppid() != parent:
        os._exit(1)


def _let_go_of_connections() -> None:
    """Close this process's copies of the parent's database sockets. The parent's connections
    are its own: a copy held here would keep its session, with its transaction and locks,
    alive on the server after the parent is killed."""
    for alias in connections:
        raw = getattr(connections[alias], "connection", None)
        fileno = getattr(raw, "fileno", None)
        if fileno is None:
            continue
        with contextlib.suppress(Exception):  # a closed connection has no socket to let go of
            os.close(fileno())


def _heap_trim() -> Callable[[], object]:
    """A call that hands the heap's free pages back to the system (glibc's malloc_trim). The
    parsing process frees the pieces it read and a batch's COPY data once it is sent (the
    columns are Arrow's, see usage.sacct_arrow._memory_pool); kept by the heap, those pages
    would raise its resident size batch after batch. Does nothing where the C library has no
    such call."""
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return lambda: None
    trim.argtypes = [ctypes.c_size_t]
    return lambda: trim(0)


# jemalloc's settings for Arrow's memory in the parsing process, read when pyarrow is first
# imported there: a piece's freed pages are kept for the next piece, not handed back to the
# system at once and faulted in again (four page faults in five, and half a second of system
# time per million jobs). The process ends with the import, and its peak is the same.
_ARROW_MALLOC_CONF = (
    "JE_ARROW_MALLOC_CONF",
    "dirty_decay_ms:-1,muzzy_decay_ms:-1,background_thread:false",
)


def _produce(batches: Iterator[_Batch], sender, parent: int) -> None:
    _die_with(parent)
    _let_go_of_connections()
    if "pyarrow" not in sys.modules:  # else its settings are read already
        os.environ.setdefault(*_ARROW_MALLOC_CONF)
    # The parent stops this process when it is interrupted; the signals are for the parent.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    trim = _heap_trim()
    try:
        for batch in batches:
            if os.getppid() != parent:
                return  # the parent is gone: nobody reads what comes next
            sender.send(batch)
            del batch
            trim()
    except BaseException as exc:  # noqa: BLE001 - everything goes back to the parent
        sender.send(_ParseFailed(exc))
    else:
        sender.send(None)
    finally:
        sender.close()


def _forked(batches: Iterator[_Batch]) -> Iterator[_Batch]:
    """`batches`, produced by a forked child process while this one writes the previous one.

    Parsing is pure Python and the writes mostly wait for PostgreSQL, so the two overlap on two
    cores. The pipe holds no more than the batch in transit, so memory stays flat. The child
    inherits the open input; it closes its copies of the database sockets without a word to
    the server and leaves through os._exit, so the parent's sessions stay the parent's alone,
    and it dies with the parent (see _die_with): a killed import leaves no process behind.
    """
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_produce, args=(batches, sender, os.getpid()), daemon=True)
    child.start()
    sender.close()
    batch = False
    try:
        while True:
            try:
                batch = receiver.recv()
            except EOFError:
                raise RuntimeError(
                    f"The parsing process ended unexpectedly (exit code {child.exitcode})."
                ) from None
            if batch is None:
                return
            if type(batch) is _ParseFailed:
                raise batch.exc
            yield batch
    finally:
        if child.is_alive() and batch is not None:
            child.kill()  # the write failed: stop parsing
        child.join()
        receiver.close()


def _chain(first, rest: Iterator) -> Iterator:
    yield first
    yield from rest

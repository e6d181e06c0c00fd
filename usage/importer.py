"""The usage import: scheduler accounting in, one usage record per job run, every line counted once.

`usage_import` streams parsed lines (see `usage.accounting`) in batches, one transaction per batch,
so memory stays flat whatever the input size and a long import shows progress in the admin.
Every non-step line lands in exactly one of the counters of `UsageImport`:

- imported   a run not seen before, that counts against an allocation of the cluster;
- updated    a run seen before, and this line supersedes what is stored;
- unchanged  a run seen before, and this line says nothing newer (a re-import, an overlapping
             window, a stale pull of a job that has since finished);
- unmatched  the account has no allocation on the cluster: the record is kept (inserted or
             updated by the same rules) and attributed once the allocation exists;
- rejected   the line cannot be stored: malformed (see usage.accounting), a MIG slice of a
             profile its partition does not declare, more GPUs than its partition has, a
             value the database refuses (that line alone: `_write_batch`), or a run stored
             already with its times shifted by a UTC offset (`time_shifted`); its number and
             reason are kept on the import run;
- outside_window  the account has an allocation, but the run started outside its usage window
             (allocations.models.usage_window): kept, never counted against a grant.

Informational counts say more about lines already in a bucket: `no_gpu_field`, runs on a GPU
partition whose line named no GPU at all.

Attribution (which allocation, if any, a run counts against), GPU-seconds with MIG slices at
their partition's share, and the partition's size check are decided per line in Python
(`_row`), the same for both write paths.

"Newer" (`supersedes`): a finished run beats a running one; of two running versions the one
with more elapsed time wins (a pending one that has since started beats it too); two finished
versions that differ take the later import, which is how a site's correction reaches us.

Two write paths count identically: on PostgreSQL each batch is COPied into a temporary table and
merged with one statement (insert the new runs, update the superseded ones); elsewhere (SQLite)
the batch's existing records are fetched in bulk and written with bulk_create / bulk_update.
On PostgreSQL a file is parsed in a forked child process while the parent writes, so parsing
and the database work overlap; a seekable sacct file is read there in columns by pyarrow
(usage/sacct_arrow.py: pieces of a few megabytes, `_arrow_rows` doing `_row`'s work per column),
and a piece with any line the columns do not read plainly goes through `parse_sacct` and `_row`
line by line, so both read every line alike.
"""

from __future__ import annotations

import bisect
import codecs
import contextlib
import ctypes
import importlib.util
import io
import json
import logging
import multiprocessing
import os
import pickle
import signal
import sys
from collections.abc import Callable, Generator, Iterable, Iterator
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.db import (
    DatabaseError,
    DataError,
    IntegrityError,
    connection,
    connections,
    transaction,
)
from django.db.models import F, Q
from django.utils import timezone

from allocations.models import Allocation
from allocations.names import account_key
from systems.models import Cluster, Partition
from usage.accounting import (
    MIG_PROFILES,
    AccountingFormatError,
    JobRecord,
    Rejected,
    UnknownSliceProfile,
    parse_pbs,
    parse_sacct,
)
from usage.models import UsageImport, UsageRecord
from usage.services import (
    INTERRUPTED_REASON,
    usage_attribute,
    usage_import_hold,
    usage_import_release,
    usage_imports_sweep,
)

logger = logging.getLogger(__name__)


BATCH_SIZE = 5_000  # the portable path; each batch is one transaction


# PostgreSQL: per-statement and per-commit costs are paid per batch, per-row costs are not
# reduced by batching further; 20,000 rows of COPY text stay well inside temp_buffers.
COPY_BATCH_SIZE = 20_000


REJECTED_KEPT = 1_000


INPUT_FORMATS = ("sacct", "pbs")


# The stored fields that describe a run; two versions of a run are "identical" when all agree.
DATA_FIELDS = (
    "account",
    "account_key",
    "job_id",
    "user",
    "partition_name",
    "job_name",
    "state",
    "running",
    "submit",
    "start",
    "end",
    "elapsed_seconds",
    "gpus",
    "gpu_slices",
    "nodes",
    "gpu_seconds",
    "energy_joules",
)

# What a row carries behind the job key and DATA_FIELDS: how the run is attributed and where it
# came from. Row = (job_key, *DATA_FIELDS, *ROW_TAIL).
ROW_TAIL = ("allocation_id", "outside_window", "no_gpu_field", "line_no")
_DATA_END = 1 + len(DATA_FIELDS)


# Informative sacct fields an input may leave out: a run already stored keeps its value then,
# rather than losing a measured energy or a job name to a narrower `--format` list.
KEPT_WHEN_ABSENT = {
    "User": "user",
    "Partition": "partition_name",
    "JobName": "job_name",
    "ConsumedEnergyRaw": "energy_joules",
}


_RUNNING = DATA_FIELDS.index("running")


_START = DATA_FIELDS.index("start")


_ELAPSED = DATA_FIELDS.index("elapsed_seconds")


_PARTITION_NAME = DATA_FIELDS.index("partition_name")


_SUBMIT = DATA_FIELDS.index("submit")


_END = DATA_FIELDS.index("end")


_JOB_ID = DATA_FIELDS.index("job_id")


_limits = {name: UsageRecord._meta.get_field(name).max_length for name in DATA_FIELDS}


_KEY_LIMIT = UsageRecord._meta.get_field("job_key").max_length


_ACCOUNT_LIMIT = _limits["account"]


_JOB_ID_LIMIT = _limits["job_id"]


_USER_LIMIT = _limits["user"]


_PARTITION_LIMIT = _limits["partition_name"]


_JOB_NAME_LIMIT = _limits["job_name"]


_STATE_LIMIT = _limits["state"]


class UsageImportError(ValueError):
    """The input cannot be read at all; nothing was written."""


Row = tuple  # (job_key, *DATA_FIELDS values, *ROW_TAIL values)


def supersedes(new: Row, old: Row) -> bool:
    """Whether `new` (a run's DATA_FIELDS values) should replace the stored `old` ones.

    Mirrored in SQL by `_SUPERSEDES_SQL`; both paths must agree line for line.
    """
    if not new[_RUNNING]:
        return old[_RUNNING] or new != old
    if not old[_RUNNING]:
        return False  # a finished run is never replaced by a running version of it
    if new[_ELAPSED] != old[_ELAPSED]:
        return new[_ELAPSED] > old[_ELAPSED]
    return new[_START] is not None and old[_START] is None


# A UTC offset is a whole number of quarter hours and never more than 26 hours off another.
_OFFSET_STEP = timedelta(minutes=15)
_OFFSET_SPAN = timedelta(hours=26)


def _offset_apart(new, old) -> bool:
    """Whether two times differ by what two UTC offsets can: a non-zero whole number of
    quarter hours, at most 26 hours."""
    gap = new - old
    return bool(gap) and abs(gap) <= _OFFSET_SPAN and not gap % _OFFSET_STEP


def time_shifted(new: Row, old: tuple) -> bool:
    """Whether the new run `new` (a row) is a stored run `old` (submit, start, end) read in
    another time zone: the same job id, every time moved by a UTC offset, the same duration.

    A run's key holds its Submit in UTC (see parse_sacct), so the same lines imported once in
    the right zone and once in a wrong one would make two runs of one job. Requeued runs of a
    job (`sacct -D`) are told apart by the same key and are not shifted copies of each other:
    Slurm resets Submit to the moment of the requeue, and the new run starts when it starts,
    so their times do not differ by whole quarter hours to the second, and their durations
    differ. Mirrored in SQL by `_shifted_sql`; both must agree.
    """
    submit, start, end = new[_SUBMIT + 1], new[_START + 1], new[_END + 1]
    old_submit, old_start, old_end = old
    if submit is None or old_submit is None or not _offset_apart(submit, old_submit):
        return False
    if start is not None and old_start is not None:
        if not _offset_apart(start, old_start):
            return False
        if end is not None and old_end is not None and end - start != old_end - old_start:
            return False
    return True


def _shift_reason(job_id: str, submit, old_submit, old_run: int | None) -> str:
    hours = (old_submit - submit).total_seconds() / 3600
    shift = f"{abs(hours):g} h {'later' if hours > 0 else 'earlier'}"
    run = f" by import run {old_run}" if old_run else ""
    return (
        f"Job {job_id} is stored already{run} with its times {shift} "
        f"(submitted {old_submit:%Y-%m-%d %H:%M:%S} UTC): the same run read in another time "
        "zone. Not added. If the stored times are the wrong ones, delete those records and "
        "import again with the right --timezone."
    )


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


class _Owner:
    """An allocation as the import needs it: whose usage a run is, and whether it counts."""

    __slots__ = ("id", "usage_from", "usage_until", "profiles")

    def __init__(self, pk: int, usage_from, usage_until, profiles: dict[str, float]) -> None:
        self.id = pk
        self.usage_from = usage_from
        self.usage_until = usage_until
        self.profiles = profiles


class _Places:
    """What a run's line is checked against on this cluster, read once per import (before the
    parsing process forks, which then has it too): the allocations by account key, with their
    usage windows, and the partitions by name, with their size and GPU slice profiles."""

    def __init__(self, cluster: Cluster) -> None:
        partitions = list(Partition.objects.filter(cluster=cluster))
        profiles = {partition.pk: partition.slice_profiles() for partition in partitions}
        self.partitions = {
            partition.name: (partition.total_gpus, profiles[partition.pk])
            for partition in partitions
        }
        # account -> account_key, GPU types -> MIG slices among them: both repeat line to line
        self.keys: dict[str, str] = {}
        self.slices: dict[tuple, int] = {}
        self.owners = {
            key: _Owner(pk, usage_from, usage_until, profiles.get(partition_id, MIG_PROFILES))
            for pk, key, usage_from, usage_until, partition_id in Allocation.objects.filter(
                cluster=cluster
            ).values_list("id", "account_key", "usage_from", "usage_until", "partition_id")
        }


def _row(record: JobRecord, places: _Places) -> Row | str:
    """The values to store for one run, or the reason the line cannot be stored."""
    # One unpacking instead of a descriptor call per field: this runs a million times.
    (
        line_no,
        job_key,
        _job_id_raw,
        job_id,
        account,
        user,
        partition_name,
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
    ) = record
    if len(job_key) > _KEY_LIMIT or len(job_id) > _JOB_ID_LIMIT:
        return f"Job id {job_id[:80]!r} is longer than this site stores."
    if len(account) > _ACCOUNT_LIMIT:
        return f"Account {account[:80]!r} is longer than {_ACCOUNT_LIMIT} characters."
    if "\x00" in job_name or "\x00" in user:
        # PostgreSQL text cannot hold NUL; the name is informative only
        job_name = job_name.replace("\x00", "")
        user = user.replace("\x00", "")
    key = places.keys.get(account)
    if key is None:
        key = account_key(account)
        if len(places.keys) < 100_000:
            places.keys[account] = key
    owner = places.owners.get(key)
    partition = places.partitions.get(partition_name)

    slices = 0
    if gpu_types:
        slices = places.slices.get(gpu_types)
        if slices is None:
            slices = record.gpu_slices
            if len(places.slices) < 4096:
                places.slices[gpu_types] = slices
    if slices:
        # a slice is worth what the partition it ran on declares (its allocation's partition
        # when the line names none; the A100/H100 table on a partition this site does not know)
        if partition is not None:
            profiles = partition[1]
        elif owner is not None and not partition_name:
            profiles = owner.profiles
        else:
            profiles = MIG_PROFILES
        try:
            share = record.gpu_share(profiles)
        except (UnknownSliceProfile, ValueError) as error:
            where = f" on partition {partition_name}" if partition_name else ""
            return f"Job {job_id}{where}: {error}"
        gpu_seconds = round(share * elapsed)
    else:
        share = gpus
        gpu_seconds = gpus * elapsed
    if partition is not None and share > partition[0]:
        return (
            f"Job {job_id} has {share:g} GPUs, more than partition {partition_name} has"
            f" ({partition[0]:,})."
        )

    allocation_id = None
    outside = False
    if owner is not None:
        when = start or submit
        if when is None or owner.usage_from is None or owner.usage_from <= when < owner.usage_until:
            allocation_id = owner.id
        else:
            outside = True
    # "no GPU field" says something only of a GPU partition: every partition this site knows,
    # and the allocation's when the line names none. A CPU partition's lines name no GPUs.
    if no_gpu_field:
        no_gpu_field = partition is not None or (owner is not None and not partition_name)
    return (
        job_key,
        account,
        key,
        job_id,
        user[:_USER_LIMIT],
        partition_name[:_PARTITION_LIMIT],
        job_name[:_JOB_NAME_LIMIT],
        state[:_STATE_LIMIT],
        running,
        submit,
        start,
        end,
        elapsed,
        gpus,
        slices,
        nodes,
        gpu_seconds,
        energy,
        allocation_id,
        outside,
        no_gpu_field,
        line_no,
    )


class _Counts:
    __slots__ = (*UsageImport.BUCKETS, *UsageImport.INFORMATIONAL)

    def __init__(self) -> None:
        for name in self.__slots__:
            setattr(self, name, 0)

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__slots__}

    def add(self, other: _Counts) -> None:
        for name in self.__slots__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


def usage_import(
    *,
    cluster: Cluster,
    lines: Iterable[str],
    input_format: str = "sacct",
    tz: tzinfo | str | None = None,
    fields: list[str] | str | None = None,
    delimiter: str | None = None,
    time_format: str | None = None,
    source: str,
    actor=None,
    site_token=None,
    filename: str = "",
    batch_size: int | None = None,
    on_rejected: Callable[[Rejected], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
    progress_every: int = 100_000,
    parallel: bool | None = None,
    run: UsageImport | None = None,
) -> UsageImport:
    """Import accounting lines for `cluster`; returns the finished `UsageImport` run.

    Raises `UsageImportError` (nothing written) when the input cannot be read at all: an
    unknown format or time zone, a header or field list lacking required fields, an empty
    delimiter or a time format that cannot be read back. `delimiter` and `time_format` are
    what sacct ran with (`--delimiter`, SLURM_TIME_FORMAT); see `parse_sacct`.
    `on_rejected` is called for every rejected line (the run keeps the first 1,000);
    `on_progress(line_no)` about every `progress_every` lines.
    `parallel`: parse in a forked process while this one writes (default: on PostgreSQL when
    `lines` is an open file, where inputs are large enough for the overlap to pay).
    `run`: a queued (or interrupted) run to import into, e.g. a pushed upload's.

    Killing the process at any moment leaves what its committed batches wrote and nothing
    else: each batch is one transaction, the parsing process dies with this one, and the
    run, held by this process (`usage.services.usage_import_hold`), is marked `interrupted`
    by the next import or sweep; SIGTERM and Ctrl-C mark it so at once. Importing the same
    input again completes it.
    """
    if tz is None or isinstance(tz, str):
        tz = time_zone_for(cluster, tz)
    if isinstance(fields, str):
        fields = [name for name in fields.split(",") if name.strip()] or None
    kept: set[str] = set()
    # A seekable UTF-8 file of sacct output is read again in columns (usage.sacct_arrow)
    # once its header has been checked here.
    raw = (
        _raw_file(lines)
        if input_format == "sacct" and connection.vendor == "postgresql" and parallel is not False
        else None
    )
    try:
        items = _parsed(lines, input_format, tz, fields, kept, delimiter, time_format)
        # The header is read with the first item: a bad one must fail before anything is written.
        first = next(items, None)
    except AccountingFormatError as exc:
        raise UsageImportError(str(exc)) from exc

    usage_imports_sweep(cluster=cluster)
    run = _run_start(
        run,
        cluster=cluster,
        source=source,
        input_format=input_format,
        filename=filename[:255],
        started_by=actor if actor is not None and actor.is_authenticated else None,
        site_token=site_token,
    )
    counts = _Counts()
    rejected_kept: list[dict] = []

    def reject(item: Rejected) -> None:
        counts.rejected += 1
        if len(rejected_kept) < REJECTED_KEPT:
            reason, text = _storable(item.reason), _storable(item.text)
            rejected_kept.append({"line": item.line_no, "reason": reason, "text": text})
        if on_rejected is not None:
            on_rejected(item)

    stream = writer = None
    try:
        usage_attribute(cluster=cluster)
        places = _Places(cluster)
        writer_class = _PostgresWriter if connection.vendor == "postgresql" else _OrmWriter
        # Only sacct keys hold a time read in a declared zone; PBS logs write seconds since 1970.
        writer = writer_class(cluster, run, frozenset(kept), shifts=input_format == "sacct")
        if parallel is None:
            parallel = writer_class is _PostgresWriter and _is_open_file(lines)
        if raw is not None and writer_class is _PostgresWriter and _has_pyarrow():
            batches = _arrow_batches(
                lines,
                raw,
                tz=tz,
                fields=fields,
                delimiter=delimiter,
                time_format=time_format,
                places=places,
                batch_size=batch_size or writer.batch_size,
                progress_every=progress_every if on_progress is not None else 0,
                encode=writer.encode,
            )
        else:
            batches = _batches(
                items if first is None else _chain(first, items),
                places=places,
                batch_size=batch_size or writer.batch_size,
                progress_every=progress_every if on_progress is not None else 0,
                encode=writer.encode,
            )
        stream = _forked(batches) if parallel and _can_fork() else batches
        writer.prepare()
        saved = [*counts.as_dict(), "rejected_lines", "heartbeat_at"]
        for batch in stream:
            for note in batch.notes:
                if type(note) is int:
                    on_progress(note)
                else:
                    reject(note)
            counts.steps_skipped += batch.steps
            with transaction.atomic():
                if batch.size:
                    counts.add(_write_batch(writer, batch.data, batch.size, reject))
                run.rejected_lines = rejected_kept
                for name, value in counts.as_dict().items():
                    setattr(run, name, value)
                run.heartbeat_at = timezone.now()
                run.save(update_fields=saved)
    except BaseException as exc:
        interrupted = isinstance(exc, KeyboardInterrupt | SystemExit)
        _run_finish(
            run,
            status=UsageImport.Status.INTERRUPTED if interrupted else UsageImport.Status.FAILED,
            error=(f"{INTERRUPTED_REASON} ({exc})" if interrupted else "")
            or f"{type(exc).__name__}: {exc}"[:10_000],
        )
        raise
    finally:
        if stream is not None:
            stream.close()
        if writer is not None:
            writer.close()
        usage_import_release(run)
    _run_finish(run, status=UsageImport.Status.DONE)
    return run


def usage_input_check(
    *,
    cluster: Cluster,
    lines: Iterable[str],
    input_format: str = "sacct",
    tz: tzinfo | str | None = None,
    fields: list[str] | str | None = None,
    delimiter: str | None = None,
    time_format: str | None = None,
) -> None:
    """Raise UsageImportError when usage_import would refuse this input as a whole (reading its
    header and first line only): what a push is told at once, before it is queued."""
    if tz is None or isinstance(tz, str):
        tz = time_zone_for(cluster, tz)
    if isinstance(fields, str):
        fields = [name for name in fields.split(",") if name.strip()] or None
    try:
        next(_parsed(lines, input_format, tz, fields, set(), delimiter, time_format), None)
    except AccountingFormatError as exc:
        raise UsageImportError(str(exc)) from exc


def _storable(text: str) -> str:
    """`text` as a JSON column can hold it: shown as read, but PostgreSQL's JSON holds neither
    a NUL character nor half of a surrogate pair (what a file read with surrogateescape has)."""
    return text.replace("\x00", "\u2400").encode("utf-8", "replace").decode("utf-8")


class UsageImportBusy(Exception):
    """The run to import into is not waiting for an import: done, or another process's."""


class UsageImportInterrupted(KeyboardInterrupt):
    """The importing process was asked to stop by signal `signum` (SIGTERM): the run ends
    `interrupted`."""

    def __init__(self, message: str, signum: int = signal.SIGTERM) -> None:
        super().__init__(message)
        self.signum = signum


def _run_start(run: UsageImport | None, **fields) -> UsageImport:
    """The run, `running` and held by this process: a new one, or a queued or interrupted
    run (a pushed upload) starting again from zero."""
    with transaction.atomic():
        if run is None:
            run = UsageImport.objects.create(status=UsageImport.Status.RUNNING, **fields)
        else:
            waiting = (UsageImport.Status.QUEUED, UsageImport.Status.INTERRUPTED)
            claimed = UsageImport.objects.filter(pk=run.pk, status__in=waiting).update(
                status=UsageImport.Status.RUNNING,
                started_at=timezone.now(),
                finished_at=None,
                error="",
                rejected_lines=[],
                attempts=F("attempts") + 1,
                **dict.fromkeys(_Counts.__slots__, 0),
            )
            if not claimed:
                raise UsageImportBusy(f"Import run {run.pk} is not waiting to be imported.")
            run.refresh_from_db()
        usage_import_hold(run)
    return run


def _run_finish(run: UsageImport, *, status: str, error: str = "") -> None:
    """Record how the run ended, on a fresh connection if the import broke this one."""
    run.status, run.error, run.finished_at = status, error, timezone.now()
    fields = {"status": status, "error": error, "finished_at": run.finished_at}
    try:
        UsageImport.objects.filter(pk=run.pk).update(**fields)
    except DatabaseError:
        if connection.in_atomic_block:
            raise
        connection.close()
        UsageImport.objects.filter(pk=run.pk).update(**fields)


def _data_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [DataError, IntegrityError, UnicodeError, OverflowError]
    if connection.vendor == "postgresql":
        import psycopg  # COPY goes through psycopg's own cursor, which raises its own errors

        errors += [psycopg.DataError, psycopg.IntegrityError]
    return tuple(errors)


def _write_batch(writer, data, size: int, reject: Callable[[Rejected], None]) -> _Counts:
    """Write one batch in a savepoint; when the database refuses a value in it (a text it
    cannot store, a number past a column's range), write each half again, down to the line at
    fault, which is rejected alone with its number: one bad line never costs the batch."""
    try:
        with transaction.atomic():
            counts, rejections = writer.write(data, size)
    except _data_errors() as error:
        if size == 1:
            reason = str(error).strip().splitlines()[0] if str(error).strip() else ""
            reject(
                Rejected(
                    writer.line_of(data),
                    f"The database cannot store this line ({type(error).__name__}: {reason}).",
                    "",
                )
            )
            return _Counts()
    else:
        for rejection in rejections:
            reject(rejection)
        return counts
    half = size // 2
    first, second = writer.split(data)
    counts = _write_batch(writer, first, half, reject)
    counts.add(_write_batch(writer, second, size - half, reject))
    return counts


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


class _CsvRows(bytes):
    """Batch rows in COPY's CSV format, in _BATCH_COLUMNS order (_copy_data's are text)."""

    __slots__ = ()


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
) -> Iterator[_Batch]:
    """`_batches` for a sacct file read again from its start in columns (usage.sacct_arrow):
    a piece whose every line the columns read is one batch; any other piece goes through
    `_batches` line by line, and so does a whole file whose layout the columns do not read."""
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

    def waiting() -> _Batch:
        nonlocal tables, notes, steps, size
        data = _csv_rows(pa.concat_tables(tables)) if tables else encode([])
        batch = _Batch(notes, steps, data, size)
        tables, notes, steps, size = [], [], 0, 0
        return batch

    for line_no, data in reader.chunks():
        columns = reader.columns(data, line_no)
        rows = None
        if columns is not None and columns.table is not None:
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
            keys = pa.concat_arrays([table["job_key"].combine_chunks() for table in tables])
            # a run that comes again is judged against what came first: a batch of its own
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
            tables.append(rows)
            size += rows.num_rows
    if tables or notes or steps:
        yield waiting()
    yield _Batch([], 0, encode([]), 0)


def _arrow_rows(table, places: _Places):
    """`_row` over a table of job lines (usage.sacct_arrow): the batch columns, or None when a
    line needs `_row` itself (a rejection: more GPUs than its partition has) or a run comes
    twice (the second must be judged against the first)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from usage.sacct_arrow import _looked_up

    size = table.num_rows
    if pc.count_distinct(table["job_key"]).as_py() != size:
        return None
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
    sizes = _looked_up(
        table["partition_name"],
        {},
        lambda name: places.partitions[name][0] if name in places.partitions else None,
        pa.int64(),
    )
    gpus = table["gpus"]
    if pc.any(pc.greater(gpus, sizes)).as_py():
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
            "outside_window": pc.and_(has_owner, pc.invert(inside)),
            "no_gpu_field": false,
            "line_no": table["line_no"],
        }
    )


def _csv_rows(table) -> _CsvRows:
    import pyarrow as pa
    import pyarrow.csv as pa_csv

    sink = pa.BufferOutputStream()
    pa_csv.write_csv(table, sink, pa_csv.WriteOptions(include_header=False))
    return _CsvRows(sink.getvalue().to_pybytes())


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


def _produce(batches: Iterator[_Batch], sender, parent: int) -> None:
    _die_with(parent)
    _let_go_of_connections()
    # The parent stops this process when it is interrupted; the signals are for the parent.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        for batch in batches:
            if os.getppid() != parent:
                return  # the parent is gone: nobody reads what comes next
            sender.send(batch)
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


class _OrmWriter:
    """Portable path: fetch the batch's stored runs, compare in Python, bulk write."""

    _CHUNK = 500  # keeps `job_key IN (...)` under SQLite's variable limit
    batch_size = BATCH_SIZE

    def __init__(
        self, cluster: Cluster, run: UsageImport, kept: frozenset[str], *, shifts: bool
    ) -> None:
        self.cluster = cluster
        self.run = run
        self.partitions = dict(Partition.objects.filter(cluster=cluster).values_list("name", "id"))
        self.kept = [DATA_FIELDS.index(name) for name in DATA_FIELDS if name in kept]
        self.shifts = shifts

    @staticmethod
    def encode(rows: list[Row]) -> list[Row]:
        return rows

    def prepare(self) -> None:
        pass

    @staticmethod
    def split(rows: list[Row]) -> tuple[list[Row], list[Row]]:
        half = len(rows) // 2
        return rows[:half], rows[half:]

    @staticmethod
    def line_of(rows: list[Row]) -> int:
        return rows[0][-1]

    def _stored(self, keys: list[str]) -> dict[str, UsageRecord]:
        """The stored runs with these keys and, when shifts are checked, every stored run of
        their jobs (keys `<JobIDRaw>@...`: `@` and `A` are neighbours in byte order, which
        SQLite compares text in)."""
        stored: dict[str, UsageRecord] = {}
        if self.shifts:
            stems = sorted({key.split("@", 1)[0] for key in keys if "@" in key})
            exact = [key for key in keys if "@" not in key]
            step = self._CHUNK // 5
            for start in range(0, len(stems), step):
                ranges = Q()
                for stem in stems[start : start + step]:
                    ranges |= Q(job_key__gt=f"{stem}@", job_key__lt=f"{stem}A")
                for record in UsageRecord.objects.filter(ranges, cluster=self.cluster):
                    stored[record.job_key] = record
        else:
            exact = keys
        for start in range(0, len(exact), self._CHUNK):
            for record in UsageRecord.objects.filter(
                cluster=self.cluster, job_key__in=exact[start : start + self._CHUNK]
            ):
                stored[record.job_key] = record
        return stored

    def write(self, rows: list[Row], size: int) -> tuple[_Counts, list[Rejected]]:
        counts = _Counts()
        rejections: list[Rejected] = []
        stored = self._stored([row[0] for row in rows])
        runs_of: dict[str, list[str]] = {}
        if self.shifts:
            for key in sorted(stored):  # key order, as the unique index gives them
                runs_of.setdefault(key.split("@", 1)[0], []).append(key)
        now = timezone.now()
        new, changed = [], []
        for row in rows:
            job_key, values = row[0], row[1:_DATA_END]
            allocation_id, outside, no_gpu_field, line_no = row[_DATA_END:]
            old = stored.get(job_key)
            if runs_of and "@" in job_key:
                # the first run of the job, in key order, that is this run or it shifted:
                # what _PostgresWriter's look-up finds
                for key in runs_of.get(job_key.split("@", 1)[0], ()):
                    run = stored[key]
                    if key == job_key:
                        break
                    if time_shifted(row, (run.submit, run.start, run.end)):
                        reason = _shift_reason(
                            row[_JOB_ID + 1], row[_SUBMIT + 1], run.submit, run.import_run_id
                        )
                        rejections.append(Rejected(line_no, reason, ""))
                        old = False
                        break
                if old is False:
                    continue
            if old is not None and self.kept:
                values = list(values)
                for index in self.kept:
                    values[index] = getattr(old, DATA_FIELDS[index])
                values = tuple(values)
            if old is None:
                outcome = "imported"
                record = UsageRecord(cluster=self.cluster, job_key=job_key)
                new.append(record)
            elif supersedes(values, tuple(getattr(old, name) for name in DATA_FIELDS)):
                outcome = "updated"
                record = old
                changed.append(record)
            else:
                outcome = "unchanged"
                record = None
            if outside:
                counts.outside_window += 1
            elif allocation_id is None:
                counts.unmatched += 1
            else:
                setattr(counts, outcome, getattr(counts, outcome) + 1)
            counts.no_gpu_field += no_gpu_field
            if record is not None:
                for name, value in zip(DATA_FIELDS, values, strict=True):
                    setattr(record, name, value)
                record.allocation_id = allocation_id
                record.partition_id = self.partitions.get(values[_PARTITION_NAME])
                record.import_run = self.run
                record.updated_at = now
        UsageRecord.objects.bulk_create(new, batch_size=self._CHUNK)
        UsageRecord.objects.bulk_update(
            changed,
            [*DATA_FIELDS, "allocation", "partition", "import_run", "updated_at"],
            batch_size=self._CHUNK,
        )
        return counts, rejections

    def close(self) -> None:
        pass


def _q(name: str) -> str:
    return connection.ops.quote_name(name)


def _supersedes_sql(new: Callable[[str], str], old: Callable[[str], str]) -> str:
    """SQL twin of `supersedes`; `new(field)` and `old(field)` give the two values' SQL."""
    new_row = ", ".join(new(name) for name in DATA_FIELDS)
    old_row = ", ".join(old(name) for name in DATA_FIELDS)
    running, elapsed, start = "running", "elapsed_seconds", "start"
    return (
        f"((NOT {new(running)} AND ({old(running)} OR ({new_row}) IS DISTINCT FROM ({old_row})))"
        f" OR ({new(running)} AND {old(running)} AND ("
        f"{new(elapsed)} > {old(elapsed)}"
        f" OR ({new(elapsed)} = {old(elapsed)}"
        f" AND {new(start)} IS NOT NULL AND {old(start)} IS NULL))))"
    )


def _apart_sql(new: str, old: str) -> str:
    """SQL twin of `_offset_apart`."""
    gap = f"extract(epoch FROM {new} - {old})::numeric"
    step, span = int(_OFFSET_STEP.total_seconds()), int(_OFFSET_SPAN.total_seconds())
    return f"({new} <> {old} AND abs({gap}) <= {span} AND mod({gap}, {step}) = 0)"


def _shifted_sql(new: Callable[[str], str], old: Callable[[str], str]) -> str:
    """SQL twin of `time_shifted`; `new(field)` and `old(field)` give the two runs' times."""
    submit, start, end = (new(name) for name in ("submit", "start", "end"))
    old_submit, old_start, old_end = (old(name) for name in ("submit", "start", "end"))
    return (
        f"{submit} IS NOT NULL AND {old_submit} IS NOT NULL AND {_apart_sql(submit, old_submit)}"
        f" AND ({start} IS NULL OR {old_start} IS NULL OR ({_apart_sql(start, old_start)}"
        f" AND ({end} IS NULL OR {old_end} IS NULL OR {end} - {start} = {old_end} - {old_start})))"
    )


_BATCH_TABLE = "hpcgate_usage_batch"


_BATCH_COLUMNS = (
    ("job_key", "text"),
    ("account", "text"),
    ("account_key", "text"),
    ("job_id", "text"),
    ("user", "text"),
    ("partition_name", "text"),
    ("job_name", "text"),
    ("state", "text"),
    ("running", "boolean"),
    # times travel as seconds since the epoch: formatting a datetime as text costs several
    # times more in Python than the server's to_timestamp()
    ("submit", "double precision"),
    ("start", "double precision"),
    ("end", "double precision"),
    ("elapsed_seconds", "bigint"),
    ("gpus", "integer"),
    ("gpu_slices", "integer"),
    ("nodes", "integer"),
    ("gpu_seconds", "bigint"),
    ("energy_joules", "bigint"),
    ("allocation_id", "integer"),
    ("outside_window", "boolean"),
    ("no_gpu_field", "boolean"),
    ("line_no", "integer"),
)


_BATCH_SELECT = ", ".join(
    f"to_timestamp({_q(name)}) AS {_q(name)}" if kind == "double precision" else _q(name)
    for name, kind in _BATCH_COLUMNS
)


def _run_range_sql(key: str, *, shifts: bool) -> tuple[str, str]:
    """(low, high) SQL of the run key `key`: the key range, in byte order, that holds every
    stored run the look-up compares it with. With shifts that is every run of its job (keys
    `<JobIDRaw>@...`, migration 0004); a key without `@` (no Submit), and every key without
    shifts, is the range of itself alone. The ranges of two jobs never overlap, so the range
    of the lowest key and that of the highest bound the ranges of all keys between."""
    if not shifts:
        return key, f"{key} || chr(1)"
    stem, at = f"split_part({key}, '@', 1)", f"strpos({key}, '@') > 0"
    return (
        f"CASE WHEN {at} THEN {stem} || '@' ELSE {key} END",
        f"CASE WHEN {at} THEN {stem} || 'A' ELSE {key} || chr(1) END",
    )


class _PostgresWriter:
    """Set-based path: COPY the batch into a temporary table, merge it with one statement.

    When no stored run lies in the key range the batch spans (a batch of jobs newer than any
    stored, as in a first import), its rows are inserted without a look-up. Otherwise the
    statement looks each batch row's stored run up through the unique index (LATERAL ...
    LIMIT 1: a planner without fresh statistics on a growing table would otherwise hash-join
    all of it for every batch), inserts the runs not stored yet with a plain INSERT and updates
    the ones this batch supersedes. Runs whose stored version is already as new are not
    touched at all, so a re-import writes nothing.

    A plain INSERT costs half of an `INSERT ... ON CONFLICT` (no speculative insertion), and is
    safe because every batch transaction first takes a per-cluster advisory lock: concurrent
    imports into one cluster take turns batch by batch, and each merge statement sees what the
    other committed before it. The unique constraint stays as the backstop.
    """

    batch_size = COPY_BATCH_SIZE
    _LOCK_CLASS = 0x75736167  # pg_advisory_xact_lock(class, cluster id): "usag"

    def __init__(
        self, cluster: Cluster, run: UsageImport, kept: frozenset[str], *, shifts: bool
    ) -> None:
        self.cluster = cluster
        self.run = run
        table = _q(UsageRecord._meta.db_table)
        low, high = _run_range_sql("b.job_key", shifts=shifts)
        lowest, _ = _run_range_sql("keys.lowest", shifts=shifts)
        _, highest = _run_range_sql("keys.highest", shifts=shifts)
        self.stored_in_range_sql = f"""
            SELECT EXISTS (
                SELECT FROM {table} found, (
                    SELECT {lowest} AS low, {highest} AS high FROM (
                        SELECT min(job_key COLLATE "C") AS lowest,
                               max(job_key COLLATE "C") AS highest
                        FROM {_BATCH_TABLE}
                    ) keys
                ) span
                WHERE found.cluster_id = %(cluster)s
                  AND found.job_key >= span.low AND found.job_key < span.high
            )"""  # noqa: S608 - identifiers from model metadata only
        if shifts:
            # One look-up finds the first stored run of the job, in key order, that is this run:
            # the same key, or this run read in another time zone (see time_shifted). Both can
            # be stored only if they were before the check existed; then the line is refused,
            # naming the shifted copy, whichever comes first. No sort: it costs more than the
            # look-up. _OrmWriter.write follows the same order.
            shifted = _shifted_sql(lambda name: f"b.{_q(name)}", lambda name: f"found.{_q(name)}")
            found = f"""LEFT JOIN LATERAL (
                    SELECT * FROM {table} found
                    WHERE found.cluster_id = %(cluster)s
                      AND found.job_key >= ({low}) COLLATE "C"
                      AND found.job_key < ({high}) COLLATE "C"
                      AND (found.job_key = b.job_key OR ({shifted}))
                    LIMIT 1
                ) found ON TRUE"""  # noqa: S608
        else:
            found = f"""LEFT JOIN LATERAL (
                    SELECT * FROM {table} found
                    WHERE found.cluster_id = %(cluster)s AND found.job_key = b.job_key
                    LIMIT 1
                ) found ON TRUE"""  # noqa: S608
        exact = "found.job_key = b.job_key"  # NULL when nothing was found

        def value(name: str) -> str:
            """What the batch row stores for `name`: for a field the input lacks, the stored
            run's value when there is one."""
            if name in kept:
                return f"CASE WHEN {exact} THEN found.{_q(name)} ELSE b.{_q(name)} END"
            return f"b.{_q(name)}"

        columns = ", ".join(f"{_q(name)} {kind}" for name, kind in _BATCH_COLUMNS)
        self.create_sql = f"CREATE TEMPORARY TABLE IF NOT EXISTS {_BATCH_TABLE} ({columns})"
        self.copy_sql = (
            f"COPY {_BATCH_TABLE} ({', '.join(_q(name) for name, _ in _BATCH_COLUMNS)}) FROM STDIN"
        )
        self.copy_csv_sql = f"{self.copy_sql} (FORMAT csv)"
        stored = [*DATA_FIELDS, "allocation_id", "partition_id"]
        inserted = ["cluster_id", "job_key", *stored, "import_run_id", "updated_at"]
        updates = ", ".join(f"{_q(name)} = s.{_q(name)}" for name in stored)
        values = ", ".join(f"{value(name)} AS {_q(name)}" for name in DATA_FIELDS)
        partition = f"""LEFT JOIN {_q(Partition._meta.db_table)} p
                    ON p.cluster_id = %(cluster)s AND p.name = {value("partition_name")}"""
        newer = _supersedes_sql(value, lambda name: f"found.{_q(name)}")

        def merge_sql(found: str) -> str:
            # The stored run is joined last (cheapest plan) unless the partition is read from it.
            joins = f"{found}\n{partition}" if "partition_name" in kept else f"{partition}\n{found}"
            # Only identifiers from model metadata are interpolated; values go in as parameters.
            return f"""
            WITH src AS MATERIALIZED (
                SELECT b.job_key, {values}, b.allocation_id, b.outside_window, b.no_gpu_field,
                       b.line_no, p.id AS partition_id,
                       CASE WHEN {exact} THEN found.id END AS stored_id,
                       CASE WHEN NOT ({exact}) THEN found.submit END AS shifted_submit,
                       CASE WHEN NOT ({exact}) THEN found.import_run_id END AS shifted_run,
                       coalesce({exact}, false) AND {newer} AS newer
                FROM (SELECT {_BATCH_SELECT} FROM {_BATCH_TABLE}) b
                {joins}
            ),
            inserted AS (
                INSERT INTO {table} ({", ".join(_q(name) for name in inserted)})
                SELECT %(cluster)s, job_key, {", ".join(_q(name) for name in stored)},
                       %(run)s, %(now)s
                FROM src WHERE stored_id IS NULL AND shifted_submit IS NULL
                RETURNING allocation_id
            ),
            updated AS (
                UPDATE {table} SET {updates}, import_run_id = %(run)s, updated_at = %(now)s
                FROM src s WHERE s.newer AND {table}.id = s.stored_id
                RETURNING s.allocation_id
            )
            SELECT
                count(*) FILTER (
                    WHERE allocation_id IS NULL AND NOT outside_window AND shifted_submit IS NULL
                ),
                count(*) FILTER (WHERE outside_window AND shifted_submit IS NULL),
                count(*) FILTER (WHERE no_gpu_field AND shifted_submit IS NULL),
                (SELECT count(*) FROM inserted WHERE allocation_id IS NOT NULL),
                (SELECT count(*) FROM updated WHERE allocation_id IS NOT NULL),
                coalesce(
                    json_agg(
                        json_build_array(
                            line_no, job_id, extract(epoch FROM submit),
                            extract(epoch FROM shifted_submit), shifted_run
                        )
                    ) FILTER (WHERE shifted_submit IS NOT NULL),
                    '[]'
                )
            FROM src
            """  # noqa: S608

        self.merge_sql = merge_sql(found)
        # Nothing stored in the batch's key range: every row is a new run.
        self.insert_sql = f"""
            WITH inserted AS (
                INSERT INTO {table} ({", ".join(_q(name) for name in inserted)})
                SELECT %(cluster)s, b.job_key, {", ".join(f"b.{_q(name)}" for name in DATA_FIELDS)},
                       b.allocation_id, p.id, %(run)s, %(now)s
                FROM (SELECT {_BATCH_SELECT} FROM {_BATCH_TABLE}) b
                LEFT JOIN {_q(Partition._meta.db_table)} p
                    ON p.cluster_id = %(cluster)s AND p.name = b.partition_name
                RETURNING allocation_id
            )
            SELECT
                count(*) FILTER (WHERE allocation_id IS NULL AND NOT outside_window),
                count(*) FILTER (WHERE outside_window),
                count(*) FILTER (WHERE no_gpu_field),
                (SELECT count(*) FROM inserted WHERE allocation_id IS NOT NULL),
                0,
                '[]'::json
            FROM {_BATCH_TABLE}
            """  # noqa: S608
        self.ready = False

    @staticmethod
    def encode(rows: list[Row]) -> bytes:
        return _copy_data(rows)

    @staticmethod
    def split(data: bytes) -> tuple[bytes, bytes]:
        if type(data) is _CsvRows:  # read from lines split at line feeds: none inside a value
            lines = data.split(b"\n")[:-1]
            half = len(lines) // 2
            return (
                _CsvRows(b"".join(line + b"\n" for line in lines[:half])),
                _CsvRows(b"".join(line + b"\n" for line in lines[half:])),
            )
        lines = data.splitlines(keepends=True)  # COPY text escapes line breaks inside values
        half = len(lines) // 2
        return b"".join(lines[:half]), b"".join(lines[half:])

    @staticmethod
    def line_of(data: bytes) -> int:
        separator = b"," if type(data) is _CsvRows else b"\t"
        return int(data.split(b"\n", 1)[0].rsplit(separator, 1)[1])

    def prepare(self) -> None:
        """Make the session's batch table, outside any batch's transaction (a batch that is
        rolled back must not take it along)."""
        if not self.ready:
            with connection.cursor() as cursor:
                cursor.execute(self.create_sql)
            self.ready = True

    def write(self, data: bytes, size: int) -> tuple[_Counts, list[Rejected]]:
        self.prepare()
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(%s, %s)", [self._LOCK_CLASS, self.cluster.pk]
            )
            # Compiling a batch-sized plan costs more than it saves.
            cursor.execute(f"SET LOCAL jit = off; TRUNCATE {_BATCH_TABLE}")
            copy_sql = self.copy_csv_sql if type(data) is _CsvRows else self.copy_sql
            with cursor.cursor.copy(copy_sql) as copy:
                copy.write(data)
            cursor.execute(self.stored_in_range_sql, {"cluster": self.cluster.pk})
            merge_sql = self.merge_sql if cursor.fetchone()[0] else self.insert_sql
            cursor.execute(
                merge_sql,
                {"cluster": self.cluster.pk, "run": self.run.pk, "now": timezone.now()},
            )
            unmatched, outside, no_gpu_field, imported, updated, shifted = cursor.fetchone()
        if isinstance(shifted, str):
            shifted = json.loads(shifted)
        counts = _Counts()
        counts.unmatched = unmatched
        counts.outside_window = outside
        counts.no_gpu_field = no_gpu_field
        counts.imported = imported
        counts.updated = updated
        counts.unchanged = size - unmatched - outside - imported - updated - len(shifted)
        rejections = [
            Rejected(
                line_no,
                _shift_reason(job_id, _utc(float(submit)), _utc(float(old_submit)), old_run),
                "",
            )
            for line_no, job_id, submit, old_submit, old_run in shifted
        ]
        return counts, rejections

    def close(self) -> None:
        if self.ready:
            try:
                with connection.cursor() as cursor:
                    cursor.execute(f"DROP TABLE IF EXISTS {_BATCH_TABLE}")
            except Exception:  # a failed transaction leaves it to the session's end
                logger.debug("temporary usage batch table left to the session's end")


def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


_COPY_SPECIAL = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


_NULL = "\\N"


_BOOLEAN = ("f", "t")  # indexed by a bool


def _copy_data(rows: list[Row]) -> bytes:
    """The rows as PostgreSQL COPY text (tab-separated, `\\N` for NULL, times as seconds since
    the epoch), in _BATCH_COLUMNS order: one line per row.

    psycopg's `write_row` adapts value by value in Python; one f-string per row is several
    times faster, and the escaping is only paid by the rare line with a backslash, tab or
    line break in it. Text that is not valid Unicode (a lone surrogate) is passed on as the
    bytes it stands for: the server refuses that row, and the import rejects it alone.
    """
    lines = []
    append = lines.append
    for (
        job_key,
        account,
        key,
        job_id,
        user,
        partition_name,
        job_name,
        state,
        running,
        submit,
        start,
        end,
        elapsed_seconds,
        gpus,
        gpu_slices,
        nodes,
        gpu_seconds,
        energy_joules,
        allocation_id,
        outside_window,
        no_gpu_field,
        line_no,
    ) in rows:
        text = (
            f"{job_key}\t{account}\t{key}\t{job_id}\t{user}\t{partition_name}\t{job_name}\t{state}"
        )
        # Times as seconds since 1970, inline (three calls a row add up), and as an int when
        # whole, which sacct's are: an int is written several times faster than a float.
        if submit is not None:
            submit = submit.timestamp() if submit.microsecond else int(submit.timestamp())
        if start is not None:
            start = start.timestamp() if start.microsecond else int(start.timestamp())
        if end is not None:
            end = end.timestamp() if end.microsecond else int(end.timestamp())
        if "\\" in text or "\n" in text or "\r" in text or text.count("\t") != 7:
            text = "\t".join(
                value.translate(_COPY_SPECIAL)
                for value in (job_key, account, key, job_id, user, partition_name, job_name, state)
            )
        append(
            f"{text}\t{_BOOLEAN[running]}\t{_NULL if submit is None else submit}\t"
            f"{_NULL if start is None else start}\t{_NULL if end is None else end}\t"
            f"{elapsed_seconds}\t{gpus}\t{gpu_slices}\t{nodes}\t{gpu_seconds}\t"
            f"{_NULL if energy_joules is None else energy_joules}\t"
            f"{_NULL if allocation_id is None else allocation_id}\t"
            f"{_BOOLEAN[outside_window]}\t{_BOOLEAN[no_gpu_field]}\t{line_no}\n"
        )
    return "".join(lines).encode("utf-8", "surrogatepass")

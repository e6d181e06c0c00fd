"""Writing a batch: on PostgreSQL a COPY into a temporary table merged with one statement,
elsewhere bulk writes through the ORM; both count alike (`_Counts`)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from django.db import (
    connection,
)
from django.db.models import Q
from django.utils import timezone

from systems.models import Cluster, Partition
from usage.accounting import (
    Rejected,
)
from usage.importer.batches import (
    NewRunsWanted,
    _ArrowRows,
)
from usage.importer.rows import (
    _DATA_END,
    _JOB_ID,
    _OFFSET_SPAN,
    _OFFSET_STEP,
    _PARTITION_NAME,
    _SUBMIT,
    DATA_FIELDS,
    NEW_RUN_COLUMNS,
    Row,
    _shift_reason,
    supersedes,
    time_shifted,
)
from usage.models import (
    MONTHLY_USAGE_COUNTED,
    UsageImport,
    UsageRecord,
    job_runs_range,
    monthly_usage_added_sql,
)

logger = logging.getLogger(__name__)


BATCH_SIZE = 5_000  # the portable path; each batch is one transaction


# PostgreSQL: per-statement and per-commit costs are paid per batch, per-row costs are not
# reduced by batching further; 20,000 rows of COPY text stay well inside temp_buffers.
COPY_BATCH_SIZE = 20_000

# The runs a batch inserts are added to the monthly sums (usage.models.MonthlyUsage) by the
# statement that inserts them, or after the COPY that does, from the sums the parsing process
# made (`_NewRuns.monthly`). The database's triggers count the runs a merge updates.
_ADDED_MONTHLY = f"added AS ({monthly_usage_added_sql('inserted')})"
_ADD_MONTHLY_SQL = (
    "SELECT usage_monthly_usage_add(%s::bigint[], %s::bigint[], %s::date[], %s::bigint[],"
    " %s::bigint[], %s::bigint[], %s::bigint[], %s::bigint[], %s::integer[], NULL::integer[])"
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


class _OrmWriter:
    """Portable path: fetch the batch's stored runs, compare in Python, bulk write."""

    _CHUNK = 500  # keeps `job_key IN (...)` under SQLite's variable limit
    batch_size = BATCH_SIZE

    def __init__(
        self, cluster: Cluster, run: UsageImport, kept: frozenset[str], *, shifts: bool
    ) -> None:
        self.cluster = cluster
        self.run = run
        # a run keeps its stored partition when the input names none
        self.partitions = (
            dict(Partition.objects.filter(cluster=cluster).values_list("name", "id"))
            if "partition_name" in kept
            else None
        )
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
                    low, high = job_runs_range(stem)
                    ranges |= Q(job_key__gte=low, job_key__lt=high)
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
            allocation_id, partition_id, outside, no_gpu_field, line_no = row[_DATA_END:]
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
                if self.partitions is not None:
                    partition_id = self.partitions.get(values[_PARTITION_NAME])
                record.partition_id = partition_id
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
    ("job_key", 'text COLLATE "C"'),  # compared and ordered as the unique index orders keys
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
    ("partition_id", "integer"),
    ("outside_window", "boolean"),
    ("no_gpu_field", "boolean"),
    ("line_no", "integer"),
)


_BATCH_SELECT = ", ".join(
    f"to_timestamp({_q(name)}) AS {_q(name)}" if kind == "double precision" else _q(name)
    for name, kind in _BATCH_COLUMNS
)


_BATCH_KEYS_SQL = f"SELECT min(job_key), max(job_key) FROM {_BATCH_TABLE}"  # noqa: S608


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


def _run_range(key: str, *, shifts: bool) -> tuple[str, str]:
    """`_run_range_sql` of a key known here: a batch's range is asked with the ranges of its
    lowest and highest key (for a batch read in columns, before its rows are sent)."""
    if not shifts or "@" not in key:
        return key, f"{key}\x01"
    return job_runs_range(key.split("@", 1)[0])


class _PostgresWriter:
    """Set-based path: COPY the batch into a temporary table, merge it with one statement.

    First the stored runs in the key range the batch spans are counted, up to twice the
    batch's size. When there are none (a batch of jobs newer than any stored, as in a first
    import), the rows are inserted without a look-up: a batch that came as new runs too
    (`_NewRuns`) is copied straight into the table, any other through the temporary table.
    When there are few (an input in sacct's order, imported again), that range is read once
    through the unique index and hash-joined to the batch. Otherwise (runs of other inputs in
    between, an unsorted input) each batch row's stored run is looked up through the unique
    index (LATERAL ... LIMIT 1): a plan that reads the whole range would read more than the
    batch. Either way the statement inserts the runs not stored yet with a plain INSERT and
    updates the ones this batch supersedes. Runs whose stored version is already as new are
    not touched at all, so a re-import writes nothing.

    A plain INSERT costs half of an `INSERT ... ON CONFLICT` (no speculative insertion), and is
    safe because every batch transaction first takes a per-cluster advisory lock: concurrent
    imports into one cluster take turns batch by batch, and each merge statement sees what the
    other committed before it. The unique constraint stays as the backstop.
    """

    batch_size = COPY_BATCH_SIZE
    # The stored range is joined whole while it holds at most this many runs per batch row.
    JOIN_FACTOR = 2
    _LOCK_CLASS = 0x75736167  # pg_advisory_xact_lock(class, cluster id): "usag"

    def __init__(
        self, cluster: Cluster, run: UsageImport, kept: frozenset[str], *, shifts: bool
    ) -> None:
        self.cluster = cluster
        self.run = run
        self.shifts = shifts
        self.wanted = NewRunsWanted()
        table = _q(UsageRecord._meta.db_table)
        low, high = _run_range_sql("b.job_key", shifts=shifts)
        # The stored runs in the key range the batch spans (`_key_range`).
        in_span = f"""{table} found
                WHERE found.cluster_id = %(cluster)s
                  AND found.job_key >= %(low)s AND found.job_key < %(high)s"""
        self.stored_in_range_sql = f"""
            SELECT count(*) FROM (SELECT FROM {in_span} LIMIT %(limit)s) stored
            """  # noqa: S608 - identifiers from model metadata only
        self.copy_new_sql = (
            f"COPY {table} ({', '.join(_q(name) for name in NEW_RUN_COLUMNS)}) FROM STDIN"
        )
        if shifts:
            # One look-up finds the first stored run of the job, in key order, that is this run:
            # the same key, or this run read in another time zone (see time_shifted). Both can
            # be stored only if they were before the check existed; then the line is refused,
            # naming the shifted copy, whichever comes first. _OrmWriter.write follows the same
            # order.
            shifted = _shifted_sql(lambda name: f"b.{_q(name)}", lambda name: f"found.{_q(name)}")
            looked_up = f"""LEFT JOIN LATERAL (
                    SELECT * FROM {table} found
                    WHERE found.cluster_id = %(cluster)s
                      AND found.job_key >= ({low}) COLLATE "C"
                      AND found.job_key < ({high}) COLLATE "C"
                      AND (found.job_key = b.job_key OR ({shifted}))
                    ORDER BY found.job_key
                    LIMIT 1
                ) found ON TRUE"""  # noqa: S608
            # The same runs found by a hash join on the job (the key before its `@`): a key
            # with an `@` meets the stored keys of its job that have one, as the look-up's
            # range holds them; a key without one meets itself alone.
            joined = f"""LEFT JOIN (
                    SELECT found.*, split_part(found.job_key, '@', 1) AS job FROM {in_span}
                ) found ON found.job = split_part(b.job_key, '@', 1)
                    AND (found.job_key = b.job_key OR (
                        strpos(b.job_key, '@') > 0 AND strpos(found.job_key, '@') > 0
                        AND {shifted}))"""  # noqa: S608
        else:
            looked_up = f"""LEFT JOIN LATERAL (
                    SELECT * FROM {table} found
                    WHERE found.cluster_id = %(cluster)s AND found.job_key = b.job_key
                    LIMIT 1
                ) found ON TRUE"""  # noqa: S608
            joined = f"""LEFT JOIN (SELECT found.* FROM {in_span}) found
                    ON found.job_key = b.job_key"""  # noqa: S608
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
        stored = [*DATA_FIELDS, "allocation_id", "partition_id"]
        inserted = ["cluster_id", "job_key", *stored, "import_run_id", "updated_at"]
        batch_fields = ", ".join(f"b.{_q(name)}" for name in DATA_FIELDS)
        # An update leaves the fields the input lacks as they are stored.
        updates = ", ".join(
            [f"{_q(name)} = b.{_q(name)}" for name in DATA_FIELDS if name not in kept]
            + [f"{_q(name)} = s.{_q(name)}" for name in ("allocation_id", "partition_id")]
        )
        # The batch row names its partition (`_Places`); a run whose input names none keeps
        # the stored one's, looked up again by name.
        if "partition_name" in kept:
            partition = f"""LEFT JOIN {_q(Partition._meta.db_table)} p
                    ON p.cluster_id = %(cluster)s AND p.name = {value("partition_name")}"""
            partition_id = "p.id"
        else:
            partition, partition_id = "", "b.partition_id"
        newer = _supersedes_sql(value, lambda name: f"found.{_q(name)}")

        def merge_sql(found: str, *, first_only: bool) -> str:
            """The merge statement with the stored runs joined by `found`; `first_only`: the
            join may match a batch row more than once, keep the first stored run in key order."""
            distinct = "DISTINCT ON (b.job_key)" if first_only else ""
            order = "ORDER BY b.job_key, found.job_key" if first_only else ""
            # Only identifiers from model metadata are interpolated; values go in as parameters.
            # What each row comes to is decided first, narrow; the rows to write are then read
            # again from the batch, by key (none in a re-import).
            return f"""
            WITH src AS MATERIALIZED (
                SELECT {distinct} b.job_key, b.job_id, b.submit, b.allocation_id,
                       b.outside_window, b.no_gpu_field, b.line_no,
                       {partition_id} AS partition_id,
                       CASE WHEN {exact} THEN found.id END AS stored_id,
                       CASE WHEN NOT ({exact}) THEN found.submit END AS shifted_submit,
                       CASE WHEN NOT ({exact}) THEN found.import_run_id END AS shifted_run,
                       coalesce({exact}, false) AND {newer} AS newer
                FROM (SELECT {_BATCH_SELECT} FROM {_BATCH_TABLE}) b
                {found}
                {partition}
                {order}
            ),
            inserted AS (
                INSERT INTO {table} ({", ".join(_q(name) for name in inserted)})
                SELECT %(cluster)s, b.job_key, {batch_fields},
                       s.allocation_id, s.partition_id, %(run)s, %(now)s
                FROM src s JOIN (SELECT {_BATCH_SELECT} FROM {_BATCH_TABLE}) b
                    ON b.job_key = s.job_key
                WHERE s.stored_id IS NULL AND s.shifted_submit IS NULL
                RETURNING {MONTHLY_USAGE_COUNTED}
            ),
            {_ADDED_MONTHLY},
            updated AS (
                UPDATE {table} SET {updates}, import_run_id = %(run)s, updated_at = %(now)s
                FROM src s JOIN (SELECT {_BATCH_SELECT} FROM {_BATCH_TABLE}) b
                    ON b.job_key = s.job_key
                WHERE s.newer AND {table}.id = s.stored_id
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
            FROM src LEFT JOIN added ON TRUE
            """  # noqa: S608

        self.lookup_sql = merge_sql(looked_up, first_only=False)
        self.join_sql = merge_sql(joined, first_only=shifts)
        # Nothing stored in the batch's key range: every row is a new run.
        self.insert_sql = f"""
            WITH inserted AS (
                INSERT INTO {table} ({", ".join(_q(name) for name in inserted)})
                SELECT %(cluster)s, b.job_key, {batch_fields},
                       b.allocation_id, b.partition_id, %(run)s, %(now)s
                FROM (SELECT {_BATCH_SELECT} FROM {_BATCH_TABLE}) b
                RETURNING {MONTHLY_USAGE_COUNTED}
            ),
            {_ADDED_MONTHLY}
            SELECT
                count(*) FILTER (WHERE allocation_id IS NULL AND NOT outside_window),
                count(*) FILTER (WHERE outside_window),
                count(*) FILTER (WHERE no_gpu_field),
                (SELECT count(*) FROM inserted WHERE allocation_id IS NOT NULL),
                0,
                '[]'::json
            FROM {_BATCH_TABLE} LEFT JOIN added ON TRUE
            """  # noqa: S608
        self.ready = False

    @staticmethod
    def encode(rows: list[Row]) -> bytes:
        return _copy_data(rows)

    @staticmethod
    def split(data: bytes | _ArrowRows) -> tuple[bytes, bytes] | tuple[_ArrowRows, _ArrowRows]:
        if type(data) is _ArrowRows:  # read from lines split at line feeds: none inside a value
            lines = data.data.split(b"\n")[:-1]
            half = len(lines) // 2
            return (
                _ArrowRows(b"".join(line + b"\n" for line in lines[:half]), csv=data.csv),
                _ArrowRows(b"".join(line + b"\n" for line in lines[half:]), csv=data.csv),
            )
        lines = data.splitlines(keepends=True)  # COPY text escapes line breaks inside values
        half = len(lines) // 2
        return b"".join(lines[:half]), b"".join(lines[half:])

    @staticmethod
    def line_of(data: bytes | _ArrowRows) -> int:
        separator = b"," if type(data) is _ArrowRows and data.csv else b"\t"
        return int(_copied(data).split(b"\n", 1)[0].rsplit(separator, 1)[1])

    def prepare(self) -> None:
        """Make the session's batch table, outside any batch's transaction (a batch that is
        rolled back must not take it along)."""
        if not self.ready:
            with connection.cursor() as cursor:
                cursor.execute(self.create_sql)
            self.ready = True

    def _key_range(self, lowest: str, highest: str) -> dict[str, str]:
        """The key range that holds every stored run a batch with these lowest and highest run
        keys could be: the ranges of two jobs never overlap (`_run_range`)."""
        low, _ = _run_range(lowest, shifts=self.shifts)
        _, high = _run_range(highest, shifts=self.shifts)
        return {"cluster": self.cluster.pk, "low": low, "high": high}

    def _stored_in_range(self, cursor, key_range: dict[str, str], size: int) -> int:
        """The stored runs in the key range, counted up to JOIN_FACTOR * size + 1; the parsing
        process is told whether to make the next batches as new runs too."""
        cursor.execute(
            self.stored_in_range_sql, {**key_range, "limit": self.JOIN_FACTOR * size + 1}
        )
        stored = cursor.fetchone()[0]
        self.wanted.set(stored == 0)
        return stored

    def write(self, data: bytes | _ArrowRows, size: int) -> tuple[_Counts, list[Rejected]]:
        self.prepare()
        keys_known = type(data) is _ArrowRows and data.lowest is not None
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(%s, %s)", [self._LOCK_CLASS, self.cluster.pk]
            )
            # Compiling a batch-sized plan costs more than it saves.
            cursor.execute("SET LOCAL jit = off")
            if keys_known:
                key_range = self._key_range(data.lowest, data.highest)
                stored = self._stored_in_range(cursor, key_range, size)
                new = data.new
                if stored == 0 and new is not None:
                    with cursor.cursor.copy(_copy_sql(self.copy_new_sql, new.rows)) as copy:
                        copy.write(new.rows.data)
                    if new.monthly[0]:
                        cursor.execute(_ADD_MONTHLY_SQL, new.monthly)
                    counts = _Counts()
                    for name, value in new.counts.items():
                        setattr(counts, name, value)
                    return counts, []
            cursor.execute(f"TRUNCATE {_BATCH_TABLE}")
            with cursor.cursor.copy(_copy_sql(self.copy_sql, data)) as copy:
                copy.write(_copied(data))
            if not keys_known:
                cursor.execute(_BATCH_KEYS_SQL)
                key_range = self._key_range(*cursor.fetchone())
                stored = self._stored_in_range(cursor, key_range, size)
            if stored == 0:
                merge_sql = self.insert_sql
            elif stored <= self.JOIN_FACTOR * size:
                merge_sql = self.join_sql
            else:
                merge_sql = self.lookup_sql
            cursor.execute(merge_sql, {**key_range, "run": self.run.pk, "now": timezone.now()})
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


def _copy_sql(sql: str, data: bytes | _ArrowRows) -> str:
    """`sql`, a COPY of text-format data, for the format `data` is in."""
    return f"{sql} (FORMAT csv)" if type(data) is _ArrowRows and data.csv else sql


def _copied(data: bytes | _ArrowRows) -> bytes:
    """The COPY data of a batch: made from lines (`encode`) or from columns (`_ArrowRows`)."""
    return data.data if type(data) is _ArrowRows else data


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
        partition_id,
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
            f"{_NULL if partition_id is None else partition_id}\t"
            f"{_BOOLEAN[outside_window]}\t{_BOOLEAN[no_gpu_field]}\t{line_no}\n"
        )
    return "".join(lines).encode("utf-8", "surrogatepass")

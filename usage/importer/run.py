"""One import run: the input checked, read, written batch by batch and counted, the run
recorded from start to end."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import tzinfo

from django.db import (
    DatabaseError,
    DataError,
    IntegrityError,
    connection,
    transaction,
)
from django.db.models import F
from django.utils import timezone

from systems.models import Cluster
from usage.accounting import (
    AccountingFormatError,
    Rejected,
)
from usage.importer.batches import (
    _arrow_batches,
    _batches,
    _can_fork,
    _chain,
    _forked,
    _has_pyarrow,
    _is_open_file,
    _parsed,
    _raw_file,
    time_zone_for,
)
from usage.importer.errors import (
    UsageImportBusy,
    UsageImportError,
)
from usage.importer.rows import (
    _Places,
)
from usage.importer.writers import (
    _Counts,
    _OrmWriter,
    _PostgresWriter,
)
from usage.models import UsageImport
from usage.services import (
    INTERRUPTED_REASON,
    usage_attribute,
    usage_import_hold,
    usage_import_release,
    usage_imports_sweep,
)

logger = logging.getLogger(__name__)


REJECTED_KEPT = 1_000


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
    stopped: Callable[[], BaseException | None] | None = None,
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
    `stopped()`: asked before each batch and at the end; an exception it gives stops the import
    there, as if raised (a signal handler's exception is lost where Python cannot raise it, in
    a finaliser: the handler also leaves it here).

    Killing the process at any moment leaves what its committed batches wrote and nothing
    else: each batch is one transaction, the parsing process dies with this one, and the
    run, held by this process (`usage.services.usage_import_hold`), is marked `interrupted`
    by the next import or sweep; SIGTERM and Ctrl-C mark it so at once. Importing the same
    input again completes it.
    """
    tz, fields = _reading(cluster, tz, fields)
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
                run=run,
                wanted=writer.wanted,
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

        def go_on() -> None:
            stop = stopped() if stopped is not None else None
            if stop is not None:
                raise stop

        for batch in stream:
            go_on()
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
        go_on()
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


def _reading(
    cluster: Cluster, tz: tzinfo | str | None, fields: list[str] | str | None
) -> tuple[tzinfo, list[str] | None]:
    """The zone the input's times are in (a name, else the cluster's site zone) and its field
    list (`--fields`' comma list as given)."""
    if tz is None or isinstance(tz, str):
        tz = time_zone_for(cluster, tz)
    if isinstance(fields, str):
        fields = [name for name in fields.split(",") if name.strip()] or None
    return tz, fields


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
    tz, fields = _reading(cluster, tz, fields)
    try:
        next(_parsed(lines, input_format, tz, fields, set(), delimiter, time_format), None)
    except AccountingFormatError as exc:
        raise UsageImportError(str(exc)) from exc


def _storable(text: str) -> str:
    """`text` as a JSON column can hold it: shown as read, but PostgreSQL's JSON holds neither
    a NUL character nor half of a surrogate pair (what a file read with surrogateescape has)."""
    return text.replace("\x00", "\u2400").encode("utf-8", "replace").decode("utf-8")


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

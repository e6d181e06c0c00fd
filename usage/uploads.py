"""Accounting pushed over HTTP: stored, queued, imported by a worker, never in the web request.

A push of a month of a large centre's accounting is hundreds of megabytes; importing it takes
longer than a web server waits for a request. So the request only stores the upload (under
`USAGE_SPOOL_DIR/.uploads/`, which web and workers share), checks that its header can be read,
and queues an import run; a Celery task imports it (`usage_upload_import`), and the client
follows the run's state at its URL.

Nothing is lost at a bad moment: a run queued by a web process killed before the message went
out, or left `interrupted` by a killed worker, is queued again by the sweep (`usage_uploads_
requeue`, with the spool's periodic task); a run given up after `MAX_ATTEMPTS` imports that
did not finish ends `failed`. Importing an upload again never counts a run twice.
"""

from __future__ import annotations

import codecs
import secrets
from collections.abc import Iterable, Iterator
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core.tasks import publish
from systems.models import Cluster
from usage.importer import (
    UsageImportBusy,
    UsageImportError,
    logger,
    usage_import,
    usage_input_check,
)
from usage.models import UsageImport

MAX_ATTEMPTS = 3
# A queued run whose message may have been lost (its web process killed at the wrong moment)
# is queued again after this long; a second message for it is harmless.
REQUEUE_AFTER = timedelta(minutes=5)
_CHUNK = 1 << 16


def upload_dir() -> Path:
    return Path(settings.USAGE_SPOOL_DIR) / ".uploads"


def text_lines(chunks: Iterable[bytes]) -> Iterator[str]:
    """Lines of a byte stream decoded as UTF-8 (bad bytes replaced), one chunk at a time."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    rest = ""
    for chunk in chunks:
        text = rest + decoder.decode(chunk)
        lines = text.split("\n")
        rest = lines.pop()
        yield from lines
    rest += decoder.decode(b"", final=True)
    if rest:
        yield rest


def _store(chunks: Iterable[bytes]) -> Path:
    folder = upload_dir()
    folder.mkdir(parents=True, exist_ok=True)
    name = secrets.token_hex(16)
    partial = folder / f".{name}.part"
    try:
        with partial.open("xb") as target:
            for chunk in chunks:
                target.write(chunk)
        return partial.replace(folder / name)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def _file_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as source:
        while chunk := source.read(_CHUNK):
            yield chunk


def usage_upload_queue(
    *,
    cluster: Cluster,
    chunks: Iterable[bytes],
    input_format: str = "sacct",
    tz: str | None = None,
    fields: str | None = None,
    delimiter: str | None = None,
    time_format: str | None = None,
    actor=None,
    site_token=None,
    filename: str = "",
) -> UsageImport:
    """Store a pushed upload and queue its import; returns the queued run.

    Raises UsageImportError (nothing kept, nothing queued) when the input cannot be read at
    all: the same check `import_usage` makes before writing anything."""
    options = {"timezone": tz, "fields": fields, "delimiter": delimiter, "time_format": time_format}
    options = {key: value for key, value in options.items() if value}
    path = _store(chunks)
    try:
        usage_input_check(
            cluster=cluster,
            lines=text_lines(_file_chunks(path)),
            input_format=input_format,
            tz=tz,
            fields=fields,
            delimiter=delimiter,
            time_format=time_format,
        )
        with transaction.atomic():
            run = UsageImport.objects.create(
                cluster=cluster,
                source=UsageImport.Source.API,
                status=UsageImport.Status.QUEUED,
                input_format=input_format,
                filename=filename[:255],
                started_by=actor if actor is not None and actor.is_authenticated else None,
                site_token=site_token,
                upload=path.name,
                options=options,
            )
            transaction.on_commit(lambda: _publish(run.pk))
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return run


def _publish(run_id: int) -> None:
    from usage.tasks import usage_upload_import as task

    publish(task, run_id)


def usage_upload_import(*, run_id: int) -> str:
    """Import a queued (or interrupted) upload into its run; what the Celery task runs."""
    run = UsageImport.objects.select_related("cluster__site").filter(pk=run_id).first()
    if run is None or not run.upload:
        return "gone"
    if run.status not in (UsageImport.Status.QUEUED, UsageImport.Status.INTERRUPTED):
        return f"skipped: run {run.pk} is {run.status}"
    path = upload_dir() / run.upload
    if run.attempts >= MAX_ATTEMPTS or not path.is_file():
        why = (
            f"given up after {run.attempts} imports that did not finish"
            if path.is_file()
            else "its upload is gone"
        )
        _fail(run, f"Not imported: {why}.")
        return f"failed: {why}"
    options = run.options or {}
    try:
        usage_import(
            cluster=run.cluster,
            lines=text_lines(_file_chunks(path)),
            input_format=run.input_format,
            tz=options.get("timezone"),
            fields=options.get("fields"),
            delimiter=options.get("delimiter"),
            time_format=options.get("time_format"),
            source=run.source,
            filename=run.filename,
            run=run,
        )
    except UsageImportBusy as exc:
        return f"skipped: {exc}"
    except UsageImportError as exc:
        _fail(run, f"{exc} Nothing was imported.")
    except KeyboardInterrupt:  # the worker is shutting down: the sweep queues it again
        raise
    except Exception:
        logger.exception("usage upload %s failed", run.pk)
    run.refresh_from_db()
    if run.status in (UsageImport.Status.DONE, UsageImport.Status.FAILED):
        _forget(run)
    return run.status


def _fail(run: UsageImport, error: str) -> None:
    UsageImport.objects.filter(pk=run.pk).exclude(status=UsageImport.Status.DONE).update(
        status=UsageImport.Status.FAILED, error=error, finished_at=timezone.now()
    )
    _forget(run)


def _forget(run: UsageImport) -> None:
    if run.upload:
        (upload_dir() / run.upload).unlink(missing_ok=True)
        UsageImport.objects.filter(pk=run.pk).update(upload="")


def usage_uploads_requeue() -> list[int]:
    """Queue again the uploads nobody is importing: queued for a while (their message may have
    been lost with the web process that sent it) or interrupted (their worker was killed).
    Call after `usage_imports_sweep`, which tells interrupted runs from running ones."""
    waiting = UsageImport.objects.exclude(upload="").filter(source=UsageImport.Source.API)
    stale = waiting.filter(
        status=UsageImport.Status.QUEUED, started_at__lt=timezone.now() - REQUEUE_AFTER
    )
    interrupted = waiting.filter(status=UsageImport.Status.INTERRUPTED)
    ids = sorted({*stale.values_list("pk", flat=True), *interrupted.values_list("pk", flat=True)})
    for run_id in ids:
        _publish(run_id)
    return ids


def usage_uploads_forget_orphans(*, older_than: timedelta = timedelta(days=1)) -> int:
    """Delete stored uploads no run names (a web process killed between storing an upload and
    queueing its run); returns how many."""
    folder = upload_dir()
    if not folder.is_dir():
        return 0
    named = set(UsageImport.objects.exclude(upload="").values_list("upload", flat=True))
    limit = timezone.now().timestamp() - older_than.total_seconds()
    removed = 0
    for entry in folder.iterdir():
        name = entry.name.removeprefix(".").removesuffix(".part")
        if name not in named and entry.lstat().st_mtime < limit:
            entry.unlink(missing_ok=True)
            removed += 1
    return removed

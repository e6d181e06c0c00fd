"""Scheduler exports: render allocations in the four formats of the README and keep the history.

``slurm`` and ``commands`` are what reach the scheduler, so only they set ``first_exported_at``
(freezing the account name) and store a snapshot: the baseline the next ``commands`` export diffs
against. ``json`` and ``csv`` are reports and migrations; they change nothing.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from django.db import transaction
from django.http import HttpResponse
from django.utils import timezone

from allocations.models import Allocation, SchedulerExport
from allocations.selectors import allocations_for_scheduler, slurm_account_from
from allocations.slurm import render_commands, render_load_file, snapshot, snapshot_after_load
from allocations.transfer import allocations_for_transfer, allocations_to_json
from core.csv import csv_cell
from systems.models import Cluster

Format = SchedulerExport.Format


SCHEDULER_FORMATS = (Format.SLURM, Format.COMMANDS)


CSV_COLUMNS = [
    "cluster",
    "partition",
    "account",
    "organisation",
    "registration_id",
    "country",
    "project",
    "model",
    "state",
    "exhausted",
    "gpu_hours",
    "gpu_minutes",
    "start",
    "end",
    "users",
]


class ExportError(Exception):
    """The export cannot be produced as asked (unknown format, missing cluster...)."""


@dataclass(frozen=True)
class ExportResult:
    content: str
    snapshot: dict | None
    allocation_ids: tuple[int, ...]

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.content.encode("utf-8")).hexdigest()


def export_baseline(cluster: Cluster) -> dict | None:
    """The snapshot of the last export that reached ``cluster``'s scheduler, if any."""
    previous = (
        SchedulerExport.objects.filter(
            cluster=cluster, format__in=SCHEDULER_FORMATS, snapshot__isnull=False
        )
        .order_by("-created_at", "-id")
        .values_list("snapshot", flat=True)
        .first()
    )
    return previous


def _scheduler_export(fmt: str, cluster: Cluster) -> ExportResult:
    allocations = list(allocations_for_scheduler(cluster))
    accounts = [slurm_account_from(allocation) for allocation in allocations]
    previous = export_baseline(cluster)
    try:
        if fmt == Format.SLURM:
            content = render_load_file(cluster.name, accounts)
            state = snapshot_after_load(previous, accounts)
        else:
            content = render_commands(cluster.name, previous, accounts)
            state = snapshot(accounts)
    except ValueError as error:
        raise ExportError(str(error)) from error
    return ExportResult(content, state, tuple(a.pk for a in allocations))


def allocations_to_csv(cluster: Cluster | None = None) -> tuple[str, tuple[int, ...]]:
    allocations = list(allocations_for_transfer(cluster))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for allocation in allocations:
        organisation = allocation.organisation
        row = [
            allocation.cluster.name,
            allocation.partition.name,
            allocation.account,
            organisation.legal_name,
            organisation.registration_id,
            organisation.country,
            allocation.project,
            allocation.model_name,
            allocation.state,
            "yes" if allocation.is_exhausted else "no",
            allocation.gpu_hours,
            allocation.gpu_minutes,
            allocation.start.isoformat(),
            allocation.end.isoformat(),
            " ".join(user.username for user in allocation.users.all()),
        ]
        writer.writerow([csv_cell(value) for value in row])
    return buffer.getvalue(), tuple(a.pk for a in allocations)


def export_build(*, fmt: str, cluster: Cluster | None) -> ExportResult:
    """Render an export without recording it (a dry run)."""
    if fmt not in Format.values:
        raise ExportError(f"Unknown format '{fmt}': use one of {', '.join(Format.values)}.")
    if fmt in SCHEDULER_FORMATS:
        if cluster is None:
            raise ExportError(f"The {fmt} format is per cluster: name the cluster.")
        return _scheduler_export(fmt, cluster)
    if fmt == Format.JSON:
        content, ids = allocations_to_json(cluster)
    else:
        content, ids = allocations_to_csv(cluster)
    return ExportResult(content, None, ids)


def export_create(*, fmt: str, cluster: Cluster | None, actor=None) -> SchedulerExport:
    """Render, store with its checksum and, for scheduler formats, move the baseline."""
    with transaction.atomic():
        if cluster is not None:
            # Two exports of one cluster at once would both diff against the same baseline.
            Cluster.objects.select_for_update().filter(pk=cluster.pk).first()
        result = export_build(fmt=fmt, cluster=cluster)
        now = timezone.now()
        export = SchedulerExport.objects.create(
            cluster=cluster,
            format=fmt,
            checksum=result.checksum,
            snapshot=result.snapshot,
            content=result.content,
            allocations=len(result.allocation_ids),
            created_by=actor,
            created_at=now,
        )
        if fmt in SCHEDULER_FORMATS:
            Allocation.objects.filter(
                pk__in=result.allocation_ids, first_exported_at__isnull=True
            ).update(first_exported_at=now)
    return export


def export_filename(export: SchedulerExport) -> str:
    where = export.cluster.name if export.cluster_id else "all"
    extension = {"slurm": "cfg", "commands": "sh", "json": "json", "csv": "csv"}[export.format]
    return f"hpcgate-{where}-{export.format}-{export.created_at:%Y%m%dT%H%M%S}.{extension}"


CONTENT_TYPES = {
    "slurm": "text/plain; charset=utf-8",
    "commands": "text/x-shellscript; charset=utf-8",
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
}


def export_response(export: SchedulerExport) -> HttpResponse:
    """The stored export as a download, with its checksum for the operator to verify."""
    response = HttpResponse(
        export.content.encode("utf-8"), content_type=CONTENT_TYPES[export.format]
    )
    response["Content-Disposition"] = f'attachment; filename="{export_filename(export)}"'
    response["X-Checksum-SHA256"] = export.checksum
    return response


def write_atomically(path: Path, content: str) -> None:
    """Write to a temporary file beside ``path`` and rename it: readers never see half a file."""
    directory = path.parent if str(path.parent) else Path(".")
    descriptor, temporary = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8", newline="") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise

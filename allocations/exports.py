"""Scheduler exports: render allocations in the four formats of the README and keep the history.

``slurm`` and ``commands`` are what reach the scheduler, so only they set ``first_exported_at``
(freezing the account name) and store a snapshot: the baseline the next ``commands`` export diffs
against. ``json`` and ``csv`` are reports and migrations; they change nothing.

A cluster's site agent gets its changes as ``commands`` exports too (``export_pending``), made
for it and reported back once applied (``export_mark_applied``). An operator's export is taken
to be run by the operator; an agent's counts as reaching Slurm only once the agent says so, so a
change the agent failed to apply is handed out again rather than lost.
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
from django.db.models import Q
from django.db.models.functions import Coalesce
from django.http import HttpResponse
from django.utils import timezone

from allocations.models import Allocation, SchedulerExport
from allocations.selectors import scheduler_accounts
from allocations.slurm import (
    commands_between,
    render_commands,
    render_load_file,
    snapshot,
    snapshot_after_load,
)
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


class ExportApplyError(Exception):
    """The site agent's report cannot be recorded; ``reason`` says why."""

    REFUSED = "refused"  # another cluster's export, or not the agent's
    CHECKSUM = "checksum"  # the agent ran something else
    CONFLICT = "conflict"  # a newer export has been applied since

    def __init__(self, message: str, *, reason: str):
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class ExportResult:
    content: str
    snapshot: dict | None
    allocation_ids: tuple[int, ...]
    # Commands in a `commands` export (None for the other formats).
    changes: int | None = None

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.content.encode("utf-8")).hexdigest()


def _reached_scheduler(cluster: Cluster):
    """Exports of ``cluster`` that reached its Slurm, the latest first: operators' scheduler
    exports from when they were made, site-agent exports from when they were applied."""
    return (
        SchedulerExport.objects.filter(
            cluster=cluster, format__in=SCHEDULER_FORMATS, snapshot__isnull=False
        )
        .filter(Q(for_site_agent=False) | Q(applied_at__isnull=False))
        .order_by(Coalesce("applied_at", "created_at").desc(), "-id")
    )


def export_baseline(cluster: Cluster) -> dict | None:
    """The snapshot of the last export that reached ``cluster``'s scheduler, if any."""
    return _reached_scheduler(cluster).values_list("snapshot", flat=True).first()


def _scheduler_export(fmt: str, cluster: Cluster) -> ExportResult:
    accounts, ids = scheduler_accounts(cluster)
    previous = export_baseline(cluster)
    try:
        if fmt == Format.SLURM:
            content = render_load_file(cluster.name, accounts)
            state = snapshot_after_load(previous, accounts)
        else:
            changes = len(commands_between(cluster.name, previous, accounts))
            content = render_commands(cluster.name, previous, accounts)
            state = snapshot(accounts)
            return ExportResult(content, state, ids, changes)
    except ValueError as error:
        raise ExportError(str(error)) from error
    return ExportResult(content, state, ids)


def allocations_to_csv(cluster: Cluster | None = None) -> tuple[str, tuple[int, ...]]:
    rows = allocations_for_transfer(cluster)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        values = [
            row["cluster__name"],
            row["partition__name"],
            row["account"],
            row["organisation__legal_name"],
            row["organisation__registration_id"],
            row["organisation__country"],
            row["project"],
            row["model_name"],
            row["state"],
            "yes" if row["exhausted_at"] is not None else "no",
            row["gpu_hours"],
            row["gpu_hours"] * 60,
            row["start"].isoformat(),
            row["end"].isoformat(),
            " ".join(row["users"]),
        ]
        writer.writerow([csv_cell(value) for value in values])
    return buffer.getvalue(), tuple(row["pk"] for row in rows)


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


def export_pending(*, cluster: Cluster) -> SchedulerExport | None:
    """The ``commands`` that bring ``cluster``'s Slurm from the last export that reached it to
    now, for its site agent; None when there is nothing to change.

    Asked again before the agent reports it applied, the same export comes back as long as it
    still says the same; when the allocations changed meanwhile, a new one (diffing from the same
    baseline) replaces it.
    """
    with transaction.atomic():
        Cluster.objects.select_for_update().filter(pk=cluster.pk).first()
        result = _scheduler_export(Format.COMMANDS, cluster)
        if not result.changes:
            return None
        pending = (
            SchedulerExport.objects.filter(
                cluster=cluster,
                format=Format.COMMANDS,
                for_site_agent=True,
                applied_at__isnull=True,
                checksum=result.checksum,
            )
            .order_by("-created_at", "-id")
            .first()
        )
        if pending is not None and pending.snapshot == result.snapshot:
            return pending
        now = timezone.now()
        export = SchedulerExport.objects.create(
            cluster=cluster,
            format=Format.COMMANDS,
            checksum=result.checksum,
            snapshot=result.snapshot,
            content=result.content,
            allocations=len(result.allocation_ids),
            created_at=now,
            for_site_agent=True,
        )
        # Handed to the agent, the names may reach Slurm from now on.
        Allocation.objects.filter(
            pk__in=result.allocation_ids, first_exported_at__isnull=True
        ).update(first_exported_at=now)
    return export


def export_mark_applied(*, export_id: int, site_token, checksum: str) -> SchedulerExport:
    """Record that the site agent of ``site_token`` ran the export: it becomes the baseline.

    Reporting the same export again changes nothing (the first report stands). Refused when the
    export is another cluster's or not made for the agent, when ``checksum`` is not the
    export's (the agent ran something else), and, as a conflict, when a newer agent export has
    been applied since: recording the older one would move the baseline back.
    """
    with transaction.atomic():
        # No select_related: PostgreSQL cannot lock the nullable side of the cluster join.
        export = SchedulerExport.objects.select_for_update().filter(pk=export_id).first()
        if export is None or export.cluster_id != site_token.cluster_id:
            raise ExportApplyError(
                f"No export {export_id} for cluster {site_token.cluster.name}.",
                reason=ExportApplyError.REFUSED,
            )
        if not export.for_site_agent:
            raise ExportApplyError(
                f"Export {export_id} was not made for the site agent.",
                reason=ExportApplyError.REFUSED,
            )
        if checksum != export.checksum:
            raise ExportApplyError(
                f"Export {export_id} has checksum {export.checksum}, not {checksum}: "
                "what was applied is not this export.",
                reason=ExportApplyError.CHECKSUM,
            )
        if export.applied_at is not None:
            return export
        newer = SchedulerExport.objects.filter(
            cluster_id=export.cluster_id,
            for_site_agent=True,
            applied_at__isnull=False,
            created_at__gt=export.created_at,
        ).first()
        if newer is not None:
            raise ExportApplyError(
                f"Export {newer.pk}, newer than {export_id}, was applied at "
                f"{newer.applied_at:%Y-%m-%d %H:%M:%S}; fetch the pending changes again.",
                reason=ExportApplyError.CONFLICT,
            )
        export.applied_at = timezone.now()
        export.applied_by_token = site_token
        export.save(update_fields=["applied_at", "applied_by_token"])
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

import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from allocations.exports import (
    SCHEDULER_FORMATS,
    ExportError,
    export_build,
    export_create,
    write_atomically,
)
from allocations.models import SchedulerExport
from systems.models import Cluster


class Command(BaseCommand):
    help = (
        "Export allocations: a sacctmgr load file (slurm) or the sacctmgr commands since the last "
        "export (commands) for one cluster, or JSON/CSV. Each export is recorded with its checksum."
    )

    def add_arguments(self, parser):
        parser.add_argument("--format", required=True, choices=SchedulerExport.Format.values)
        parser.add_argument("--cluster", help="Cluster name; required for slurm and commands.")
        parser.add_argument(
            "-o", "--output", help="Write to this file (atomically) instead of standard output."
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Print the export without recording it (the commands baseline stays put).",
        )

    def handle(self, *args, **options):
        fmt = options["format"]
        cluster = None
        if options["cluster"]:
            cluster = Cluster.objects.filter(name=options["cluster"]).first()
            if cluster is None:
                known = ", ".join(Cluster.objects.values_list("name", flat=True)) or "none"
                raise CommandError(f"Unknown cluster '{options['cluster']}' (known: {known}).")
        elif fmt in SCHEDULER_FORMATS:
            raise CommandError(f"--cluster is required for the {fmt} format.")
        output = Path(options["output"]) if options["output"] else None
        try:
            with transaction.atomic():
                if options["dry_run"]:
                    result = export_build(fmt=fmt, cluster=cluster)
                    content, checksum, count = (
                        result.content,
                        result.checksum,
                        len(result.allocation_ids),
                    )
                else:
                    export = export_create(fmt=fmt, cluster=cluster, actor=None)
                    content, checksum, count = export.content, export.checksum, export.allocations
                # Written inside the transaction: if the file cannot be written, the export is
                # not recorded and the next commands export still starts from the old baseline.
                if output is not None:
                    write_atomically(output, content)
        except ExportError as error:
            raise CommandError(str(error)) from error
        except OSError as error:
            raise CommandError(f"Cannot write {output}: {error.strerror or error}") from error
        where = f" for cluster {cluster.name}" if cluster else ""
        summary = (
            f"Exported {count} allocation{'s' if count != 1 else ''} as {fmt}{where}"
            f"{' (dry run, not recorded)' if options['dry_run'] else ''}; sha256={checksum}"
        )
        if output is None:
            self.stdout.write(content, ending="")
            # stdout carries the export itself; the summary must not end up inside it.
            sys.stderr.write(summary + "\n")
        else:
            self.stdout.write(f"{summary}; written to {output}")

import signal
import sys
import threading

from django.core.management.base import BaseCommand, CommandError

from systems.models import Cluster
from usage.importer import (
    INPUT_FORMATS,
    UsageImportError,
    UsageImportInterrupted,
    usage_import,
)
from usage.models import UsageImport


class Command(BaseCommand):
    help = (
        "Import scheduler accounting (sacct --parsable2 output or PBS/TORQUE accounting logs) for "
        "one cluster. Re-importing the same or an overlapping file never counts a job twice. The "
        "last line of output is the summary: imported=N updated=N unchanged=N steps_skipped=N "
        "unmatched=N rejected=N outside_window=N, then informational counts (no_gpu_field=N). "
        "Stopped (SIGTERM, Ctrl-C) or killed, it keeps what it wrote; the run shows as "
        "interrupted and importing the same file again completes it."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", metavar="FILE|-", help="Accounting file, or - for stdin.")
        parser.add_argument("--cluster", required=True, help="Cluster name, as in sacct output.")
        parser.add_argument("--format", choices=INPUT_FORMATS, default="sacct", dest="input_format")
        parser.add_argument(
            "--timezone",
            help="IANA zone the times were printed in (default: the cluster's site time zone; "
            "'UTC' if sacct ran with TZ=UTC).",
        )
        parser.add_argument(
            "--fields",
            help="Comma list given to sacct --format, for input without a header line.",
        )
        parser.add_argument(
            "--delimiter",
            help="What was passed to sacct --delimiter (default '|', or what the header shows).",
        )
        parser.add_argument(
            "--time-format",
            dest="time_format",
            metavar="STRFTIME",
            help="The SLURM_TIME_FORMAT sacct ran with, when its times are neither ISO 8601 nor "
            "seconds since 1970 (e.g. '%%Y/%%m/%%d-%%H:%%M:%%S').",
        )
        parser.add_argument(
            "--progress",
            action="store_true",
            help="Report progress on stderr every 100,000 lines (default when stderr is a TTY).",
        )

    def handle(self, *args, **options):
        if options["delimiter"] == "":
            raise CommandError(
                "--delimiter is empty: give the characters passed to sacct --delimiter, or leave"
                " the option out for '|'."
            )
        cluster = Cluster.objects.select_related("site").filter(name=options["cluster"]).first()
        if cluster is None:
            known = ", ".join(Cluster.objects.values_list("name", flat=True)) or "none"
            raise CommandError(f"Unknown cluster '{options['cluster']}' (known: {known}).")
        path = options["file"]
        try:
            # Bytes that are not UTF-8 (a job name in Latin-1) must not stop an import.
            handle = (
                open(sys.stdin.fileno(), encoding="utf-8", errors="replace", closefd=False)  # noqa: SIM115
                if path == "-"
                else open(path, encoding="utf-8", errors="replace", newline="")  # noqa: SIM115
            )
        except OSError as exc:
            raise CommandError(f"Cannot read {path}: {exc.strerror or exc}.") from exc

        stderr = self.stderr

        def rejected(item) -> None:
            stderr.write(f"line {item.line_no}: rejected: {item.reason}")

        def progress(line_no: int) -> None:
            stderr.write(f"... {line_no:,} lines read")

        show_progress = options["progress"] or sys.stderr.isatty()

        stops: list[UsageImportInterrupted] = []

        def stop(signum, frame):
            said = (
                "Ctrl-C" if signum == signal.SIGINT else f"stopped by {signal.Signals(signum).name}"
            )
            stops.append(UsageImportInterrupted(said, signum))
            raise stops[-1]

        # SIGTERM and Ctrl-C end the import: the run is marked interrupted on the way out. The
        # import also asks between batches, for a stop raised where Python drops it.
        main = threading.current_thread() is threading.main_thread()
        previous = (
            {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
            if main
            else {}
        )
        try:
            with handle:
                run = usage_import(
                    cluster=cluster,
                    lines=handle,
                    input_format=options["input_format"],
                    tz=options["timezone"],
                    fields=options["fields"],
                    delimiter=options["delimiter"],
                    time_format=options["time_format"],
                    source=UsageImport.Source.COMMAND,
                    filename="<stdin>" if path == "-" else path,
                    on_rejected=rejected,
                    on_progress=progress if show_progress else None,
                    stopped=lambda: stops[0] if stops else None,
                )
        except UsageImportError as exc:
            raise CommandError(f"{path}: {exc} Nothing was imported.") from exc
        except KeyboardInterrupt as exc:  # SIGTERM (above) or Ctrl-C
            # As a shell reports a command its signal stopped: 130 for Ctrl-C, 143 for SIGTERM.
            signum = getattr(exc, "signum", signal.SIGINT)
            raise CommandError(
                f"{path}: interrupted ({str(exc) or 'Ctrl-C'}). What was imported so far is kept; "
                "import the same file again to complete it.",
                returncode=128 + signum,
            ) from exc
        except OSError as exc:
            raise CommandError(f"Cannot read {path}: {exc.strerror or exc}.") from exc
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        self.stdout.write(run.summary)

import shutil
import subprocess
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from allocations.drift import (
    QOS_COMMAND,
    DriftInputError,
    association_command,
    differences,
    render_repair,
)
from allocations.exports import write_atomically
from allocations.selectors import slurm_accounts_for
from systems.models import Cluster

# Exit statuses: 0 Slurm matches hpcgate, 1 differences, 2 the check could not be made.
DIFFERENT = 1
CANNOT_CHECK = 2


class Command(BaseCommand):
    help = (
        "Compare what Slurm holds for a cluster (sacctmgr show assoc and show qos) with what "
        "hpcgate says it should hold: one line per difference, exit 1 when there is any. "
        "Without FILE, runs sacctmgr on this host."
    )

    def add_arguments(self, parser):
        parser.add_argument("--cluster", required=True, help="Cluster name.")
        parser.add_argument(
            "file",
            nargs="?",
            help=(
                "Output of `sacctmgr -nP show assoc where cluster=C format="
                "Cluster,Account,User,QOS,DefaultQOS,GrpTRESMins,GrpSubmitJobs` "
                "(a header line is allowed), or - for standard input."
            ),
        )
        parser.add_argument(
            "--qos",
            metavar="FILE",
            help="Output of `sacctmgr -nP show qos format=Name,Flags,GrpTRESMins` (or -). "
            "Without it, a FILE check does not look at the QOS themselves.",
        )
        parser.add_argument(
            "--repair",
            metavar="FILE",
            help="Write the sacctmgr commands that repair the differences to FILE (- for "
            "standard output; the differences then go to standard error).",
        )
        parser.add_argument(
            "--ignore",
            action="append",
            default=[],
            metavar="PATTERN",
            help="Accounts of the site's own that hpcgate does not manage (shell pattern, "
            "repeatable): not reported.",
        )

    def handle(self, *args, **options):
        cluster = Cluster.objects.filter(name=options["cluster"]).first()
        if cluster is None:
            known = ", ".join(Cluster.objects.values_list("name", flat=True)) or "none"
            raise CommandError(
                f"Unknown cluster '{options['cluster']}' (known: {known}).",
                returncode=CANNOT_CHECK,
            )
        if options["file"] is None and options["qos"] is not None:
            raise CommandError("--qos goes with FILE: without FILE, sacctmgr is run for both.")
        if options["file"] is None:
            association_text = _run(association_command(cluster.name))
            qos_text = _run(QOS_COMMAND)
        else:
            association_text = _read(options["file"])
            qos_text = _read(options["qos"]) if options["qos"] else None
        accounts = slurm_accounts_for(cluster)
        try:
            found = differences(
                cluster.name, accounts, association_text, qos_text, ignore=options["ignore"]
            )
        except DriftInputError as error:
            raise CommandError(str(error), returncode=CANNOT_CHECK) from error

        repair = options["repair"]
        lines = self.stderr if repair == "-" else self.stdout
        for difference in found:
            lines.write(difference.line)
        if repair == "-":
            self.stdout.write(render_repair(cluster.name, found), ending="")
        elif repair:
            try:
                write_atomically(Path(repair), render_repair(cluster.name, found))
            except OSError as error:
                raise CommandError(
                    f"Cannot write {repair}: {error.strerror or error}", returncode=CANNOT_CHECK
                ) from error
        summary = (
            f"slurm_check: cluster {cluster.name}, {len(accounts)} hpcgate account"
            f"{'s' if len(accounts) != 1 else ''}: {len(found)} difference"
            f"{'s' if len(found) != 1 else ''}"
        )
        if qos_text is None:
            summary += " (QOS not compared: give --qos)"
        if repair and repair != "-":
            summary += f"; repairs written to {repair}"
        self.stderr.write(summary)
        if found:
            sys.exit(DIFFERENT)


def _read(path: str) -> str:
    try:
        if path == "-":
            return sys.stdin.read()
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeError) as error:
        raise CommandError(f"Cannot read {path}: {error}", returncode=CANNOT_CHECK) from error


def _run(command: list[str]) -> str:
    if shutil.which(command[0]) is None:
        raise CommandError(
            f"{command[0]} is not on this host: run `{' '.join(command)}` where it is and give "
            "its output as FILE (and --qos FILE).",
            returncode=CANNOT_CHECK,
        )
    try:
        # A fixed sacctmgr argument list; the cluster name in it comes from the database.
        done = subprocess.run(  # noqa: S603
            command, capture_output=True, text=True, timeout=120, check=False
        )
    except subprocess.TimeoutExpired as error:
        raise CommandError(
            f"{' '.join(command)}: no answer in 120 s", returncode=CANNOT_CHECK
        ) from error
    if done.returncode != 0:
        raise CommandError(
            f"{' '.join(command)} exited {done.returncode}: {done.stderr.strip()}",
            returncode=CANNOT_CHECK,
        )
    return done.stdout

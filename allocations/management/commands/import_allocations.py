import json
import sys

from django.core.management.base import BaseCommand, CommandError

from allocations.transfer import allocations_import


class Command(BaseCommand):
    help = (
        "Create or update organisations and allocations from Allocation JSON (see the README). "
        "Idempotent on (cluster, account); nothing is written when any entry is invalid."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="JSON file, or - for standard input.")

    def handle(self, *args, **options):
        name = options["file"]
        try:
            if name == "-":
                text = sys.stdin.read()
            else:
                with open(name, encoding="utf-8") as handle:
                    text = handle.read()
        except OSError as error:
            raise CommandError(f"Cannot read {name}: {error.strerror or error}") from error
        except UnicodeDecodeError as error:
            raise CommandError(f"{name} is not UTF-8 text: {error}") from error
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise CommandError(
                f"{name}: not valid JSON at line {error.lineno} column {error.colno}: {error.msg}"
            ) from error
        except RecursionError:
            raise CommandError(f"{name}: the JSON is nested too deeply to read.") from None
        report = allocations_import(data)
        if report.errors:
            for message in report.errors:
                self.stderr.write(message)
            count = len(report.errors)
            raise CommandError(
                f"{count} invalid entr{'ies' if count != 1 else 'y'}; nothing was imported."
            )
        self.stdout.write(report.summary)

"""Reads of the compliance records: the large-run register as rows and as CSV."""

import csv
import io

from core import formats
from core.csv import csv_cell

REGISTER_COLUMNS = [
    "scope",
    "subject",
    "category",
    "compute_flop",
    "basis",
    "projected_flop",
    "method",
    "policy_version",
    "first_crossed_on",
    "notification_deadline",
    "notified_on",
    "allocations",
    "systems",
]


def figure(level: str, value: float) -> str:
    """An alert's value as people read it: a share of the grant, or FLOP."""
    return formats.alert_figure(level, value)


def register_rows(entries):
    for entry in entries:
        allocations = sorted(entry.allocations.all(), key=lambda a: (a.cluster.name, a.account))
        yield {
            "scope": entry.scope,
            "subject": entry.subject,
            "category": entry.category,
            "compute_flop": f"{entry.compute_flop:.2g}",
            "basis": entry.basis,
            "projected_flop": f"{entry.projected_flop:.2g}",
            "method": entry.method,
            "policy_version": entry.policy.version,
            "first_crossed_on": entry.first_crossed_on.isoformat(),
            "notification_deadline": (
                entry.notification_deadline.isoformat() if entry.notification_deadline else ""
            ),
            "notified_on": entry.notified_on.isoformat() if entry.notified_on else "",
            "allocations": " ".join(f"{a.cluster.name}:{a.account}" for a in allocations),
            "systems": " ".join(sorted({a.cluster.name for a in allocations})),
        }


def register_csv(entries) -> str:

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=REGISTER_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(
        {key: csv_cell(value) for key, value in row.items()} for row in register_rows(entries)
    )
    return buffer.getvalue()

"""The Allocation JSON (see the README): export, and import from hpcgate or another tool.

Export then import then export gives the same bytes: entries sorted by cluster and account, keys in
the contract's order, users sorted, no timestamps. Import checks every entry first and writes
nothing unless all of them are valid; it is idempotent on (cluster, account).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import date

from django.db import transaction

from allocations.models import Allocation, AllocationUser
from allocations.names import account_key, account_name_problem, user_name_problem
from allocations.selectors import cluster_users_by_allocation
from allocations.services import allocation_create, allocation_event_record
from allocations.signals import allocation_window_changed
from organisations.models import Organisation
from systems.models import Cluster, Partition

ENTRY_KEYS = (
    "organisation",
    "project",
    "cluster",
    "partition",
    "account",
    "gpu_hours",
    "start",
    "end",
    "state",
    "users",
    "model",
    "lifecycle_state",
)
REQUIRED_KEYS = frozenset(ENTRY_KEYS) - {"model", "lifecycle_state"}
# `state` speaks the exchange format's three values; `lifecycle_state` carries the allocation's
# own, so that an export imports back as it was. Not started yet counts as suspended (no job may
# run), closed as expired.
EXCHANGE_STATES = {
    Allocation.State.SCHEDULED: "suspended",
    Allocation.State.ACTIVE: "active",
    Allocation.State.SUSPENDED: "suspended",
    Allocation.State.EXPIRED: "expired",
    Allocation.State.CLOSED: "expired",
}
ORGANISATION_KEYS = ("name", "country", "registration_id", "controlled_by")
_DATE_RE = re.compile(r"\A\d{4}-\d{2}-\d{2}\Z")
_COUNTRY_RE = re.compile(r"\A[A-Z]{2}\Z")


TRANSFER_FIELDS = (
    "pk",
    "organisation__legal_name",
    "organisation__country",
    "organisation__registration_id",
    "organisation__controlled_by_registration_id",
    "project",
    "cluster__name",
    "partition__name",
    "account",
    "gpu_hours",
    "start",
    "end",
    "state",
    "exhausted_at",
    "model_name",
)


def allocations_for_transfer(cluster: Cluster | None = None) -> list[dict]:
    """The allocations of `cluster` (or all), sorted by cluster and account, as rows of
    TRANSFER_FIELDS with `users` (their cluster users, sorted): two queries whatever their
    number, no model objects (an export holds every allocation of a centre)."""
    allocations = Allocation.objects.all()
    if cluster is not None:
        allocations = allocations.filter(cluster=cluster)
    users = cluster_users_by_allocation(allocations)
    rows = list(allocations.order_by("cluster__name", "account").values(*TRANSFER_FIELDS))
    for row in rows:
        row["users"] = users.get(row["pk"], [])
    return rows


def allocation_to_entry(row: dict) -> dict:
    """One entry of the Allocation JSON from a row of allocations_for_transfer."""
    return {
        "organisation": {
            "name": row["organisation__legal_name"],
            "country": row["organisation__country"],
            "registration_id": row["organisation__registration_id"],
            "controlled_by": row["organisation__controlled_by_registration_id"] or None,
        },
        "project": row["project"],
        "cluster": row["cluster__name"],
        "partition": row["partition__name"],
        "account": row["account"],
        "gpu_hours": row["gpu_hours"],
        "start": row["start"].isoformat(),
        "end": row["end"].isoformat(),
        "state": EXCHANGE_STATES[row["state"]],
        "users": row["users"],
        "model": row["model_name"] or None,
        "lifecycle_state": row["state"],
    }


def allocations_to_json(cluster: Cluster | None = None) -> tuple[str, tuple[int, ...]]:
    rows = allocations_for_transfer(cluster)
    document = {"allocations": [allocation_to_entry(row) for row in rows]}
    content = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    return content, tuple(row["pk"] for row in rows)


# Import


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    organisations_created: int = 0
    organisations_updated: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def summary(self) -> str:
        return (
            f"created={self.created} updated={self.updated} unchanged={self.unchanged} "
            f"organisations_created={self.organisations_created} "
            f"organisations_updated={self.organisations_updated}"
        )


@dataclass(frozen=True)
class _Entry:
    organisation: tuple[str, str, str, str]  # registration id, country, name, controlled by
    project: str
    partition: Partition
    account: str
    gpu_hours: int
    start: date
    end: date
    state: str
    users: tuple[str, ...]
    model: str


class _Invalid(Exception):
    pass


def _text(value, where: str, *, max_length: int, required: bool = True) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise _Invalid(f"{where}: must be a string")
    if required and not value.strip():
        raise _Invalid(f"{where}: must not be empty")
    if len(value) > max_length:
        raise _Invalid(f"{where}: at most {max_length} characters")
    if any(ord(character) < 32 for character in value):
        raise _Invalid(f"{where}: must not contain control characters")
    return value


def _date(value, where: str) -> date:
    if not isinstance(value, str) or not _DATE_RE.match(value):
        raise _Invalid(f"{where}: must be a date written YYYY-MM-DD")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise _Invalid(f"{where}: {value!r} is not a calendar date") from None


def _entry(raw, where: str, partitions: dict[tuple[str, str], Partition]) -> _Entry:
    if not isinstance(raw, dict):
        raise _Invalid(f"{where}: must be an object")
    unknown = sorted(set(raw) - set(ENTRY_KEYS))
    if unknown:
        raise _Invalid(f"{where}.{unknown[0]}: unknown field")
    missing = [key for key in ENTRY_KEYS if key in REQUIRED_KEYS and key not in raw]
    if missing:
        raise _Invalid(f"{where}.{missing[0]}: required")

    organisation = raw["organisation"]
    if not isinstance(organisation, dict):
        raise _Invalid(f"{where}.organisation: must be an object")
    unknown = sorted(set(organisation) - set(ORGANISATION_KEYS))
    if unknown:
        raise _Invalid(f"{where}.organisation.{unknown[0]}: unknown field")
    name = _text(organisation.get("name"), f"{where}.organisation.name", max_length=200)
    country = organisation.get("country")
    if not isinstance(country, str) or not _COUNTRY_RE.match(country):
        raise _Invalid(f"{where}.organisation.country: must be a two-letter code such as FI")
    registration_id = _text(
        organisation.get("registration_id"), f"{where}.organisation.registration_id", max_length=64
    )
    controlled_by = _text(
        organisation.get("controlled_by"),
        f"{where}.organisation.controlled_by",
        max_length=64,
        required=False,
    )

    cluster = raw["cluster"]
    partition_name = raw["partition"]
    if not isinstance(cluster, str) or not any(key[0] == cluster for key in partitions):
        raise _Invalid(f"{where}.cluster: {cluster!r} is not a known cluster")
    partition = partitions.get((cluster, partition_name if isinstance(partition_name, str) else ""))
    if partition is None:
        raise _Invalid(f"{where}.partition: {partition_name!r} is not a partition of {cluster}")
    account = raw["account"]
    problem = account_name_problem(account)
    if problem:
        raise _Invalid(f"{where}.account: {problem}")
    gpu_hours = raw["gpu_hours"]
    if isinstance(gpu_hours, bool) or not isinstance(gpu_hours, int) or gpu_hours <= 0:
        raise _Invalid(f"{where}.gpu_hours: must be a whole number above 0")
    if gpu_hours > 2**53:
        raise _Invalid(f"{where}.gpu_hours: too large")
    start = _date(raw["start"], f"{where}.start")
    end = _date(raw["end"], f"{where}.end")
    if end < start:
        raise _Invalid(f"{where}.end: must not be before start ({start.isoformat()})")
    state = raw["state"]
    if state not in Allocation.State.values:
        exchange = ", ".join(sorted(set(EXCHANGE_STATES.values())))
        raise _Invalid(f"{where}.state: must be one of {exchange}")
    lifecycle = raw.get("lifecycle_state")
    if lifecycle is not None:
        if lifecycle not in Allocation.State.values:
            raise _Invalid(
                f"{where}.lifecycle_state: must be one of {', '.join(Allocation.State.values)}"
            )
        if EXCHANGE_STATES[lifecycle] != state:
            raise _Invalid(
                f"{where}.lifecycle_state: {lifecycle} contradicts state {state} "
                f"(a {lifecycle} allocation is exchanged as {EXCHANGE_STATES[lifecycle]})"
            )
        state = lifecycle
    users = raw["users"]
    if not isinstance(users, list):
        raise _Invalid(f"{where}.users: must be a list of cluster user names")
    for position, user in enumerate(users):
        problem = user_name_problem(user)
        if problem:
            raise _Invalid(f"{where}.users[{position}]: {problem}")
    if len(set(users)) != len(users):
        raise _Invalid(f"{where}.users: a user is listed twice")
    model = _text(raw.get("model"), f"{where}.model", max_length=120, required=False)
    project = _text(raw["project"], f"{where}.project", max_length=200)
    return _Entry(
        organisation=(registration_id, country, name, controlled_by),
        project=project,
        partition=partition,
        account=account,
        gpu_hours=gpu_hours,
        start=start,
        end=end,
        state=state,
        users=tuple(sorted(users)),
        model=model,
    )


def _entries(data, report: ImportReport) -> list[_Entry]:
    if not isinstance(data, dict) or not isinstance(data.get("allocations"), list):
        report.errors.append('allocations: the document must be {"allocations": [...]}')
        return []
    partitions = {(p.cluster.name, p.name): p for p in Partition.objects.select_related("cluster")}
    entries: list[_Entry] = []
    seen_accounts: dict[tuple[str, str], int] = {}
    seen_organisations: dict[tuple[str, str], tuple[int, tuple]] = {}
    for position, raw in enumerate(data["allocations"]):
        where = f"allocations[{position}]"
        try:
            entry = _entry(raw, where, partitions)
            key = (entry.partition.cluster.name, account_key(entry.account))
            if key in seen_accounts:
                raise _Invalid(
                    f"{where}.account: {entry.account!r} on {key[0]} is already in "
                    f"allocations[{seen_accounts[key]}]"
                )
            organisation_key = entry.organisation[:2]
            first = seen_organisations.setdefault(organisation_key, (position, entry.organisation))
            if first[1] != entry.organisation:
                raise _Invalid(
                    f"{where}.organisation: differs from allocations[{first[0]}].organisation "
                    "with the same registration_id and country"
                )
        except _Invalid as error:
            report.errors.append(str(error))
            continue
        seen_accounts[key] = position
        entries.append(entry)
    return entries


def _organisations_apply(entries: list[_Entry], report: ImportReport) -> dict:
    by_key: dict[tuple[str, str], Organisation] = {}
    for registration_id, country, name, controlled_by in {e.organisation for e in entries}:
        organisation = (
            Organisation.objects.filter(registration_id=registration_id, country=country)
            .order_by("pk")
            .first()
        )
        if organisation is None:
            organisation = Organisation.objects.create(
                legal_name=name,
                country=country,
                registration_id=registration_id,
                controlled_by_registration_id=controlled_by,
            )
            report.organisations_created += 1
        elif (organisation.legal_name, organisation.controlled_by_registration_id) != (
            name,
            controlled_by,
        ):
            organisation.legal_name = name
            organisation.controlled_by_registration_id = controlled_by
            organisation.save(update_fields=["legal_name", "controlled_by_registration_id"])
            report.organisations_updated += 1
        by_key[(registration_id, country)] = organisation
    return by_key


def _allocation_apply(entry: _Entry, organisation, existing: Allocation | None, actor) -> str:
    fields = {
        "account": entry.account,  # the same account in the case the file gives
        "organisation": organisation,
        "project": entry.project,
        "partition": entry.partition,
        "gpu_hours": entry.gpu_hours,
        "start": entry.start,
        "end": entry.end,
        "state": entry.state,
        "model_name": entry.model,
    }
    if existing is None:
        allocation_create(
            organisation=organisation,
            project=entry.project,
            partition=entry.partition,
            account=entry.account,
            gpu_hours=entry.gpu_hours,
            start=entry.start,
            end=entry.end,
            model_name=entry.model,
            users=entry.users,
            actor=actor,
            state=entry.state,
            action="imported",
        )
        return "created"
    changed = [name for name, value in fields.items() if getattr(existing, name) != value]
    current_users = {user.username for user in existing.users.all()}
    if current_users != set(entry.users):
        changed.append("users")
        existing.users.exclude(username__in=entry.users).delete()
        AllocationUser.objects.bulk_create(
            AllocationUser(allocation=existing, username=name, added_by=actor)
            for name in sorted(set(entry.users) - current_users)
        )
    if not changed:
        return "unchanged"
    from_state = existing.state
    window = (existing.usage_from, existing.usage_until)
    for name, value in fields.items():
        setattr(existing, name, value)
    existing.save()
    if (existing.usage_from, existing.usage_until) != window:
        allocation_window_changed.send(sender=Allocation, allocation=existing)
    allocation_event_record(
        existing,
        "imported",
        from_state=from_state if from_state != entry.state else "",
        to_state=entry.state if from_state != entry.state else "",
        actor=actor,
        reason="changed: " + ", ".join(changed),
    )
    return "updated"


def allocations_import(data, *, actor=None) -> ImportReport:
    """Create or update organisations and allocations from parsed Allocation JSON.

    Returns a report; when ``report.errors`` is not empty nothing was written.
    """
    report = ImportReport()
    entries = _entries(data, report)
    if report.errors:
        return report
    with transaction.atomic():
        existing = {
            (a.cluster_id, a.account_key): a
            for a in Allocation.objects.select_for_update()
            .filter(account_key__in={account_key(e.account) for e in entries})
            .prefetch_related("users")
        }
        organisations = _organisations_apply(entries, report)
        for entry in entries:
            outcome = _allocation_apply(
                entry,
                organisations[entry.organisation[:2]],
                existing.get((entry.partition.cluster_id, account_key(entry.account))),
                actor,
            )
            setattr(report, outcome, getattr(report, outcome) + 1)
    return report

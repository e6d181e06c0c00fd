"""The governance officer's annual report: compute, energy and emissions per year."""

import heapq
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date

from django.db import connection
from django.db.models import Count, Q

from allocations.models import Allocation
from compliance.models import Alert, MisuseReport
from compliance.thresholds import (
    FOOTPRINT_GPUS,
    MEMORY_LEVELS,
    PLAN_LEVELS,
    SPLIT_RUN_LEVELS,
    level_figure,
)
from organisations.models import Organisation
from systems.estimates import BELOW_GPAI, SECONDS_PER_HOUR, classify
from systems.models import AccessMode, Cluster, Partition, Site, ThresholdPolicy
from usage.selectors import JOULES_PER_KWH, TERA, year_usage_sql

TOP_EFFORTS = 10


@dataclass
class Row:
    label: str
    gpu_hours: float = 0.0
    flop: float = 0.0
    energy_kwh: float = 0.0
    facility_kwh: float = 0.0
    co2e_kg: float = 0.0

    def add(self, other: "Row") -> None:
        self.gpu_hours += other.gpu_hours
        self.flop += other.flop
        self.energy_kwh += other.energy_kwh
        self.facility_kwh += other.facility_kwh
        self.co2e_kg += other.co2e_kg

    def as_dict(self) -> dict:
        return {
            "label": self.label,
            "gpu_hours": round(self.gpu_hours, 1),
            "flop": float(f"{self.flop:.2g}") if self.flop else 0.0,
            "energy_kwh": round(self.energy_kwh, 1),
            "facility_energy_kwh": round(self.facility_kwh, 1),
            "co2e_kg": round(self.co2e_kg, 1),
        }


@dataclass
class AnnualReport:
    year: int
    policy: ThresholdPolicy
    anonymised: bool
    total: Row
    by_system: list[Row]
    by_access_mode: list[Row]
    bands: dict[str, int]
    largest: list[dict] = field(default_factory=list)
    split_runs: dict = field(default_factory=dict)
    reports: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {
            "year": self.year,
            "policy_version": self.policy.version,
            "utilisation": self.policy.default_utilisation,
            "anonymised": self.anonymised,
            "total": self.total.as_dict(),
            "by_system": [r.as_dict() for r in self.by_system],
            "by_access_mode": [r.as_dict() for r in self.by_access_mode],
            "efforts_per_band": self.bands,
            "largest_efforts": self.largest,
            "split_runs": self.split_runs,
            "confidential_reports": self.reports,
        }


def annual_report(*, year: int, anonymise: bool = False) -> AnnualReport | None:
    """Figures of the usage that started in ``year``, under the policy in force at its end.

    Compute is hardware-based (GPU-seconds x peak x policy utilisation); energy is measured where
    the scheduler reported it and estimated from partition power elsewhere.
    """
    policy = ThresholdPolicy.objects.in_force(date(year, 12, 31))
    if policy is None:
        return None
    utilisation = policy.default_utilisation
    usage = _usage_per_allocation(year=year)
    total = Row("All systems")
    systems: dict[str, Row] = {}
    modes: dict[str, Row] = {}
    for allocation in usage:
        it_kwh = allocation.it_joules / JOULES_PER_KWH
        facility = it_kwh * allocation.pue
        row = Row(
            label="",
            gpu_hours=allocation.gpu_seconds / SECONDS_PER_HOUR,
            flop=allocation.peak_tflop_seconds * TERA * utilisation,
            energy_kwh=it_kwh,
            facility_kwh=facility,
            co2e_kg=facility * allocation.grid,
        )
        systems.setdefault(allocation.system, Row(allocation.system)).add(row)
        mode = _mode_label(allocation.access_mode_kind)
        modes.setdefault(mode, Row(mode)).add(row)
        total.add(row)
    bands, largest = _efforts(usage=usage, policy=policy, anonymise=anonymise)
    return AnnualReport(
        year=year,
        policy=policy,
        anonymised=anonymise,
        total=total,
        by_system=sorted(systems.values(), key=lambda r: -r.flop),
        by_access_mode=sorted(modes.values(), key=lambda r: -r.flop),
        bands=bands,
        largest=largest,
        split_runs=_split_runs(year=year, anonymise=anonymise),
        reports=_reports(year=year),
    )


def _mode_label(kind: str | None) -> str:
    return AccessMode.Kind(kind).label if kind else "Imported or without a call"


@dataclass
class _AllocationUsage:
    """The year's usage of one allocation, with what the report groups it by."""

    effort: str
    organisation: str
    system: str
    access_mode_kind: str | None
    pue: float
    grid: float
    gpu_seconds: int
    peak_tflop_seconds: float
    it_joules: float


def _usage_per_allocation(*, year: int) -> list[_AllocationUsage]:
    """Usage that started in ``year`` per allocation, in one query.

    The year's usage per allocation and partition (`year_usage_sql`: monthly sums the database
    keeps, or the records grouped on their own columns) alone meets the partitions,
    allocations, clusters, sites, access modes and organisations: per record, compute is
    GPU-seconds x the peak of the partition it ran on (else of its allocation's), energy is
    measured where reported, else GPU-seconds x that partition's power.
    """
    grouped, params = year_usage_sql(year)
    table = {
        name: connection.ops.quote_name(model._meta.db_table)
        for name, model in (
            ("allocation", Allocation),
            ("organisation", Organisation),
            ("cluster", Cluster),
            ("site", Site),
            ("access_mode", AccessMode),
            ("partition", Partition),
        )
    }
    described = (
        "allocation.model_key, allocation.account, "
        "organisation.legal_name, cluster.name, cluster.display_name, mode.kind, "
        "site.pue, site.grid_kg_co2e_per_kwh"
    )
    sql = f"""
        SELECT {described},
               SUM(used.used_gpu_seconds),
               SUM(CAST(used.used_gpu_seconds AS DOUBLE PRECISION)
                   * CAST(COALESCE(ran.peak_tflops, granted.peak_tflops) AS DOUBLE PRECISION)),
               SUM(COALESCE(CAST(used.measured_joules AS DOUBLE PRECISION), 0)
                   + COALESCE(CAST(used.estimated_gpu_seconds AS DOUBLE PRECISION), 0)
                     * COALESCE(ran.power_watts, granted.power_watts))
        FROM ({grouped}) used
        JOIN {table["allocation"]} allocation ON allocation.id = used.allocation_ref
        JOIN {table["organisation"]} organisation
            ON organisation.id = allocation.organisation_id
        JOIN {table["cluster"]} cluster ON cluster.id = allocation.cluster_id
        JOIN {table["site"]} site ON site.id = cluster.site_id
        LEFT JOIN {table["access_mode"]} mode ON mode.id = allocation.access_mode_id
        JOIN {table["partition"]} granted ON granted.id = allocation.partition_id
        LEFT JOIN {table["partition"]} ran ON ran.id = used.partition_ref
        GROUP BY allocation.id, {described}
    """  # noqa: S608 - table names from model metadata, values as parameters
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return [
        _AllocationUsage(
            effort=model_key or f"{cluster}:{account}",
            organisation=organisation,
            system=system,
            access_mode_kind=kind,
            pue=float(pue),
            grid=float(grid),
            gpu_seconds=int(gpu_seconds or 0),
            peak_tflop_seconds=float(peak_tflop_seconds or 0.0),
            it_joules=float(it_joules or 0.0),
        )
        for (
            model_key, account, organisation, cluster, system, kind, pue, grid,
            gpu_seconds, peak_tflop_seconds, it_joules,
        ) in rows
    ]  # fmt: skip


def _efforts(*, usage: list[_AllocationUsage], policy: ThresholdPolicy, anonymise: bool):
    """Training efforts (declared models; an allocation without one stands alone) of the year:
    how many fall in each band, and the largest with their organisations and systems."""
    utilisation = policy.default_utilisation
    flop: dict[str, float] = defaultdict(float)
    for allocation in usage:
        flop[allocation.effort] += allocation.peak_tflop_seconds * TERA * utilisation
    figures = policy.figures()
    bands = {BELOW_GPAI: 0, "gpai": 0, "systemic_risk": 0}
    for value in flop.values():
        bands[classify(value, figures)] += 1
    ranked = heapq.nsmallest(TOP_EFFORTS, flop, key=lambda name: (-flop[name], name))
    organisations: dict[str, set[str]] = {name: set() for name in ranked}
    systems: dict[str, set[str]] = {name: set() for name in ranked}
    for allocation in usage:
        if allocation.effort in organisations:
            organisations[allocation.effort].add(allocation.organisation)
            systems[allocation.effort].add(allocation.system)
    largest = []
    aliases: dict[str, str] = {}
    for rank, name in enumerate(ranked, start=1):
        names = sorted(organisations[name])
        shown = name
        if anonymise:
            shown = f"Effort {rank}"
            names = [aliases.setdefault(o, f"Organisation {_letters(len(aliases))}") for o in names]
        largest.append(
            {
                "rank": rank,
                "effort": shown,
                "organisations": names,
                "systems": sorted(systems[name]),
                "flop": float(f"{flop[name]:.2g}"),
                "classification": classify(flop[name], figures),
            }
        )
    return bands, largest


def _split_runs(*, year: int, anonymise: bool) -> dict:
    """The year's alerts of split runs: concurrent footprints, memory levels and plans against
    accounting, each with what it was read from, and whether the register cites it."""
    alerts = (
        Alert.objects.filter(level__in=SPLIT_RUN_LEVELS, raised_at__year=year)
        .annotate(citations=Count("register_entries"))
        .order_by("raised_at", "pk")
    )
    rows, aliases = [], {}
    for alert in alerts:
        subject = alert.subject
        if anonymise:
            kind = {"organisation": "Group", "model": "Model"}.get(alert.scope, "Allocation")
            subject = aliases.setdefault(
                (alert.scope, alert.subject_key), f"{kind} {_letters(len(aliases))}"
            )
        rows.append(
            {
                "level": alert.level,
                "scope": alert.scope,
                "subject": subject,
                "value": level_figure(alert.level, alert.value),
                "threshold": level_figure(alert.level, alert.threshold),
                "raised_on": alert.raised_at.date().isoformat(),
                "cited_in_register": alert.citations > 0,
            }
        )
    return {
        "footprint_alerts": sum(1 for r in rows if r["level"] == FOOTPRINT_GPUS),
        "memory_alerts": sum(1 for r in rows if r["level"] in MEMORY_LEVELS),
        "plan_deviations": sum(1 for r in rows if r["level"] in PLAN_LEVELS),
        "alerts": rows,
    }


def _reports(*, year: int) -> dict:
    """How many confidential reports came in and how they were handled: counts only, never
    what they say or whom they concern."""
    received = MisuseReport.objects.filter(received_on__year=year)
    counts = received.aggregate(
        received=Count("pk"),
        closed=Count("pk", filter=Q(status=MisuseReport.Status.CLOSED)),
    )
    on_time = sum(
        1
        for received_on, acknowledged_on in received.values_list("received_on", "acknowledged_on")
        if acknowledged_on is not None
        and (acknowledged_on - received_on).days <= MisuseReport.ACKNOWLEDGE_DAYS
    )
    return {**counts, "acknowledged_within_7_days": on_time}


def _letters(n: int) -> str:
    letters = ""
    n += 1
    while n:
        n, rem = divmod(n - 1, 26)
        letters = chr(65 + rem) + letters
    return letters
